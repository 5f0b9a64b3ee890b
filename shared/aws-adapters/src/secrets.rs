//! [`SecretsManagerStore`]: `ports::SecretStore` on AWS Secrets Manager, one secret per
//! directory named `<prefix><name>` (the stack uses `bamboohr-sync/<stack>/`, which its
//! IAM policies are scoped to).
//!
//! Values cross this module only as `SecretString`s and as the SDK's request fields,
//! which the SDK redacts from its own Debug output; errors and logs carry the secret's
//! name and AWS's error code, never a value.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
use aws_sdk_secretsmanager::operation::delete_secret::DeleteSecretError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
use aws_sdk_secretsmanager::Client;
use ports::{DirectorySecrets, SecretStore, SecretsError};
use secrecy::ExposeSecret;

use crate::clients;

/// Days a deleted secret can still be restored (the shortest window AWS allows), so a
/// directory disconnected by mistake can be reconnected with its credentials.
pub const RECOVERY_WINDOW_DAYS: i64 = 7;

/// Directory secrets in Secrets Manager.
#[derive(Debug, Clone)]
pub struct SecretsManagerStore {
    client: Client,
    prefix: String,
    kms_key_id: Option<String>,
}

impl SecretsManagerStore {
    /// Secrets named `<prefix><name>`, created under the account's default key.
    pub fn new(sdk: &SdkConfig, prefix: impl Into<String>) -> Self {
        Self::from_client(clients::secrets_manager(sdk), prefix, None)
    }

    /// Secrets named `<prefix><name>`; new secrets are encrypted with `kms_key_id` (key
    /// id, ARN or alias) when given.
    pub fn from_client(
        client: Client,
        prefix: impl Into<String>,
        kms_key_id: Option<String>,
    ) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            kms_key_id,
        }
    }

    /// Uses `kms_key_id` for secrets this store creates.
    pub fn with_kms_key(mut self, kms_key_id: impl Into<String>) -> Self {
        self.kms_key_id = Some(kms_key_id.into());
        self
    }

    /// The full Secrets Manager name of a directory secret.
    pub fn secret_id(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn unavailable<E, R>(secret: &str, op: &str, err: &SdkError<E, R>) -> SecretsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let reason = crate::clients::sdk_reason(op, err);
    tracing::warn!(secret, op, %reason, "secrets manager call failed");
    SecretsError::Unavailable { reason }
}

/// Secrets Manager answers InvalidRequestException for a secret scheduled for deletion;
/// only the message tells that case from other invalid requests.
fn marked_for_deletion(message: Option<&str>) -> bool {
    let m = message.unwrap_or_default().to_ascii_lowercase();
    m.contains("marked") && m.contains("delet")
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn get(&self, name: &str) -> Result<DirectorySecrets, SecretsError> {
        let id = self.secret_id(name);
        let out = match self.client.get_secret_value().secret_id(&id).send().await {
            Ok(out) => out,
            Err(e) => {
                return Err(match e.as_service_error() {
                    Some(GetSecretValueError::ResourceNotFoundException(_)) => {
                        SecretsError::NotFound { name: id }
                    }
                    // A secret scheduled for deletion is gone as far as the sync cares.
                    Some(GetSecretValueError::InvalidRequestException(ir))
                        if marked_for_deletion(ir.message()) =>
                    {
                        SecretsError::NotFound { name: id }
                    }
                    _ => unavailable(&id, "GetSecretValue", &e),
                });
            }
        };
        let Some(json) = out.secret_string() else {
            return Err(SecretsError::Malformed {
                name: id,
                reason: "the secret has no string value (binary secrets are not supported)".into(),
            });
        };
        let secrets = DirectorySecrets::from_json(&id, json)?;
        tracing::debug!(secret = %id, "secret read");
        Ok(secrets)
    }

    async fn put(&self, name: &str, secrets: &DirectorySecrets) -> Result<(), SecretsError> {
        let id = self.secret_id(name);
        let value = secrets.to_json();
        // Updating is the common case (token refresh); create only when absent, and
        // restore a secret that was deleted within its recovery window.
        let mut retried = false;
        loop {
            let put = self
                .client
                .put_secret_value()
                .secret_id(&id)
                .secret_string(value.expose_secret())
                .send()
                .await;
            let err = match put {
                Ok(_) => {
                    tracing::debug!(secret = %id, "secret updated");
                    return Ok(());
                }
                Err(e) => e,
            };
            match err.as_service_error() {
                Some(PutSecretValueError::ResourceNotFoundException(_)) => {
                    let mut create = self
                        .client
                        .create_secret()
                        .name(&id)
                        .secret_string(value.expose_secret())
                        .description("bamboohr-sync directory credentials");
                    if let Some(key) = &self.kms_key_id {
                        create = create.kms_key_id(key);
                    }
                    match create.send().await {
                        Ok(_) => {
                            tracing::info!(secret = %id, "secret created");
                            return Ok(());
                        }
                        // Created by someone else meanwhile: update it on the next turn.
                        Err(e)
                            if matches!(
                                e.as_service_error(),
                                Some(CreateSecretError::ResourceExistsException(_))
                            ) && !retried =>
                        {
                            retried = true;
                        }
                        Err(e) => return Err(unavailable(&id, "CreateSecret", &e)),
                    }
                }
                Some(PutSecretValueError::InvalidRequestException(ir))
                    if marked_for_deletion(ir.message()) && !retried =>
                {
                    self.client
                        .restore_secret()
                        .secret_id(&id)
                        .send()
                        .await
                        .map_err(|e| unavailable(&id, "RestoreSecret", &e))?;
                    tracing::info!(secret = %id, "secret restored from scheduled deletion");
                    retried = true;
                }
                _ => return Err(unavailable(&id, "PutSecretValue", &err)),
            }
        }
    }

    async fn delete(&self, name: &str) -> Result<(), SecretsError> {
        let id = self.secret_id(name);
        let out = self
            .client
            .delete_secret()
            .secret_id(&id)
            .recovery_window_in_days(RECOVERY_WINDOW_DAYS)
            .send()
            .await;
        match out {
            Ok(_) => {
                tracing::info!(secret = %id, recovery_days = RECOVERY_WINDOW_DAYS, "secret scheduled for deletion");
                Ok(())
            }
            Err(e) => match e.as_service_error() {
                Some(DeleteSecretError::ResourceNotFoundException(_)) => Ok(()),
                Some(DeleteSecretError::InvalidRequestException(ir))
                    if marked_for_deletion(ir.message()) =>
                {
                    Ok(())
                }
                _ => Err(unavailable(&id, "DeleteSecret", &e)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_messages_are_recognised_in_aws_and_moto_wording() {
        assert!(marked_for_deletion(Some(
            "You can't perform this operation on the secret because it was marked for deletion."
        )));
        assert!(marked_for_deletion(Some(
            "You tried to perform the operation on a secret that's currently marked deleted."
        )));
        assert!(!marked_for_deletion(Some("The parameter is invalid")));
        assert!(!marked_for_deletion(None));
    }
}
