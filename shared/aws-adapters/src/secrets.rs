//! [`SecretsManagerStore`]: `ports::SecretStore` on AWS Secrets Manager. Each part of a
//! directory's secrets ([`SecretPart`]) is its own secret, `<prefix><name>/<part>` (the
//! stack uses the prefix `bamboohr-sync/<stack>/`), so IAM can let each function read
//! only its part: the template grants `…/*/webhook-??????` to the webhook function,
//! `…/*/targets-??????` to the dispatcher, `…/*/bamboohr-??????` to the poller (and the
//! targets part, read only, for the SCIM reconciliations it runs), and everything under
//! the prefix to the admin API (scripts/check-iam.py asserts it).
//!
//! The control plane's store ([`SecretsManagerStore::with_kms_key`],
//! [`SecretsManagerStore::with_access_policy`]) creates each part encrypted with the
//! stack's KMS key, tagged with its part ([`PART_TAG`]), and puts a resource policy on
//! it that denies reading and writing its value to every principal but the roles of
//! the stack's functions that use that part ([`SecretAccessPolicy`]; re-applied on
//! every write, so it follows the template). The other functions' stores are
//! [`SecretsManagerStore::updating_only`]: they never create, restore or delete.
//!
//! Pre-split secrets (one secret `<prefix><name>` per directory, written by stacks
//! deployed before the split): a part whose own secret does not exist is read from
//! there. The control plane's first write to such a directory splits it (creates the
//! missing parts from it, then schedules it for deletion); until then the poller writes
//! refreshed OAuth tokens into it. The template keeps pre-split secrets readable by the
//! functions only while they are untagged (`LegacyDirectorySecrets`), which no part is.
//!
//! With a sealer ([`SecretsManagerStore::with_sealer`], the stack's
//! [`crate::KmsEnvelopeSealer`]), every part is written sealed with a data key of its
//! directory (KMS `GenerateDataKey`, encryption context `directoryId`; see
//! `ports::sealer`) before it goes into Secrets Manager, and opened on read with the
//! same context; values written before sealing was turned on are read as they are and
//! sealed at their next write.
//!
//! Values cross this module only as `SecretString`s and as the SDK's request fields,
//! which the SDK redacts from its own Debug output; errors and logs carry the secret's
//! name and AWS's error code, never a value.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
use aws_sdk_secretsmanager::operation::delete_secret::DeleteSecretError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
use aws_sdk_secretsmanager::types::Tag;
use aws_sdk_secretsmanager::Client;
use ports::{
    CredentialSealer, DirectorySecrets, SealedCredential, SecretPart, SecretStore, SecretsError,
};
use secrecy::{ExposeSecret, SecretString};

use crate::clients;

/// Days a deleted secret can still be restored (the shortest window AWS allows), so a
/// directory disconnected by mistake can be reconnected with its credentials.
pub const RECOVERY_WINDOW_DAYS: i64 = 7;

/// The tag every part carries (its value: the part, e.g. `webhook`). IAM tells parts
/// from pre-split secrets by it.
pub const PART_TAG: &str = "bamboohr-sync:part";

/// Who may read and write the value of each part: the role ARNs of the stack's
/// functions that use it. Becomes one resource policy per part, which denies
/// `GetSecretValue` and `PutSecretValue` to every other principal (an explicit deny,
/// so even an identity policy granting `secretsmanager:*` cannot read a part).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretAccessPolicy {
    readers: BTreeMap<SecretPart, Vec<String>>,
}

impl SecretAccessPolicy {
    /// A policy in which no part has readers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets the role `role_arn` read (and, where its IAM policy allows, write) `part`.
    pub fn allow(mut self, part: SecretPart, role_arn: impl Into<String>) -> Self {
        let readers = self.readers.entry(part).or_default();
        let arn = role_arn.into();
        if !readers.contains(&arn) {
            readers.push(arn);
        }
        self
    }

    /// The roles allowed to use `part`.
    pub fn readers(&self, part: SecretPart) -> &[String] {
        self.readers.get(&part).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The resource policy of `part`'s secrets (JSON).
    pub fn document(&self, part: SecretPart) -> String {
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "OnlyTheStackFunctionsThatUseThisPart",
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
                "Resource": "*",
                "Condition": {"StringNotEquals": {"aws:PrincipalArn": self.readers(part)}}
            }]
        })
        .to_string()
    }
}

/// Directory secrets in Secrets Manager.
#[derive(Clone)]
pub struct SecretsManagerStore {
    client: Client,
    prefix: String,
    kms_key_id: Option<String>,
    access: Option<SecretAccessPolicy>,
    creates: bool,
    sealer: Option<Arc<dyn CredentialSealer>>,
}

impl std::fmt::Debug for SecretsManagerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManagerStore")
            .field("prefix", &self.prefix)
            .field("creates", &self.creates)
            .field("sealed", &self.sealer.is_some())
            .finish_non_exhaustive()
    }
}

/// What a `PutSecretValue` found.
enum Update {
    Done,
    Missing,
    ScheduledForDeletion,
}

impl SecretsManagerStore {
    /// Secrets named `<prefix><name>/<part>`, created under the account's default key.
    pub fn new(sdk: &SdkConfig, prefix: impl Into<String>) -> Self {
        Self::from_client(clients::secrets_manager(sdk), prefix, None)
    }

    /// Secrets named `<prefix><name>/<part>`; new secrets are encrypted with
    /// `kms_key_id` (key id, ARN or alias) when given.
    pub fn from_client(
        client: Client,
        prefix: impl Into<String>,
        kms_key_id: Option<String>,
    ) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            kms_key_id,
            access: None,
            creates: true,
            sealer: None,
        }
    }

    /// Seals every part written from now on with `sealer` (a data key per directory)
    /// and opens sealed parts on read.
    pub fn with_sealer(mut self, sealer: Arc<dyn CredentialSealer>) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// Uses `kms_key_id` for secrets this store creates (the stack's `SecretsKey`).
    pub fn with_kms_key(mut self, kms_key_id: impl Into<String>) -> Self {
        self.kms_key_id = Some(kms_key_id.into());
        self
    }

    /// Puts `policy`'s resource policy on every part this store creates or writes.
    pub fn with_access_policy(mut self, policy: SecretAccessPolicy) -> Self {
        self.access = Some(policy);
        self
    }

    /// A store that only updates existing secrets: it never creates, restores or
    /// deletes one (the functions other than the control plane, whose roles may not).
    /// A part that does not exist yet is written into the directory's pre-split secret.
    pub fn updating_only(mut self) -> Self {
        self.creates = false;
        self
    }

    /// The full Secrets Manager name of a directory's pre-split secret (every part in
    /// one, as stacks deployed before the split hold).
    pub fn secret_id(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The full Secrets Manager name of one part of a directory's secrets.
    pub fn part_id(&self, name: &str, part: SecretPart) -> String {
        format!("{}{}", self.prefix, part.secret_name(name))
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

impl SecretsManagerStore {
    /// Reads one secret; `None` when it does not exist or is scheduled for deletion,
    /// and, when `denied_is_absent`, when this role may not read it.
    async fn read(
        &self,
        name: &str,
        id: &str,
        denied_is_absent: bool,
    ) -> Result<Option<DirectorySecrets>, SecretsError> {
        let out = match self.client.get_secret_value().secret_id(id).send().await {
            Ok(out) => out,
            Err(e) if denied_is_absent && e.code() == Some("AccessDeniedException") => {
                tracing::debug!(secret = %id, "not readable by this role; taken as absent");
                return Ok(None);
            }
            Err(e) => {
                return match e.as_service_error() {
                    Some(GetSecretValueError::ResourceNotFoundException(_)) => Ok(None),
                    // A secret scheduled for deletion is gone as far as the sync cares.
                    Some(GetSecretValueError::InvalidRequestException(ir))
                        if marked_for_deletion(ir.message()) =>
                    {
                        Ok(None)
                    }
                    _ => Err(unavailable(id, "GetSecretValue", &e)),
                };
            }
        };
        let Some(json) = out.secret_string() else {
            return Err(SecretsError::Malformed {
                name: id.to_string(),
                reason: "the secret has no string value (binary secrets are not supported)".into(),
            });
        };
        let secrets = match SealedCredential::from_envelope(id, json)? {
            None => DirectorySecrets::from_json(id, json)?,
            Some(sealed) => {
                let Some(sealer) = &self.sealer else {
                    return Err(SecretsError::Malformed {
                        name: id.to_string(),
                        reason: "sealed, and this store has no sealer to open it".into(),
                    });
                };
                let opened = sealer.open(name, &sealed).await?;
                DirectorySecrets::from_json(id, opened.expose_secret())?
            }
        };
        tracing::debug!(secret = %id, "secret read");
        Ok(Some(secrets))
    }

    /// The value written for `secrets` of directory `name`: sealed when a sealer is set.
    async fn stored(
        &self,
        name: &str,
        secrets: &DirectorySecrets,
    ) -> Result<SecretString, SecretsError> {
        let json = secrets.to_json();
        match &self.sealer {
            None => Ok(json),
            Some(sealer) => Ok(SecretString::from(
                sealer.seal(name, &json).await?.to_envelope(),
            )),
        }
    }

    /// Reads a directory's pre-split secret. A stack that no longer lets its functions
    /// read pre-split secrets (`LegacyDirectorySecrets` disabled) answers AccessDenied:
    /// there is none as far as this function is concerned.
    async fn read_pre_split(&self, name: &str) -> Result<Option<DirectorySecrets>, SecretsError> {
        self.read(name, &self.secret_id(name), true).await
    }

    async fn update(&self, id: &str, value: &SecretString) -> Result<Update, SecretsError> {
        let put = self
            .client
            .put_secret_value()
            .secret_id(id)
            .secret_string(value.expose_secret())
            .send()
            .await;
        match put {
            Ok(_) => {
                tracing::debug!(secret = %id, "secret updated");
                Ok(Update::Done)
            }
            Err(e) => match e.as_service_error() {
                Some(PutSecretValueError::ResourceNotFoundException(_)) => Ok(Update::Missing),
                Some(PutSecretValueError::InvalidRequestException(ir))
                    if marked_for_deletion(ir.message()) =>
                {
                    Ok(Update::ScheduledForDeletion)
                }
                _ => Err(unavailable(id, "PutSecretValue", &e)),
            },
        }
    }

    /// Creates a part's secret with the stack's key and tag; `false` when it exists
    /// already (created by someone else meanwhile).
    async fn create(
        &self,
        id: &str,
        part: SecretPart,
        value: &SecretString,
    ) -> Result<bool, SecretsError> {
        let mut create = self
            .client
            .create_secret()
            .name(id)
            .secret_string(value.expose_secret())
            .description(format!("bamboohr-sync directory credentials: {part}"))
            .tags(Tag::builder().key(PART_TAG).value(part.as_str()).build());
        if let Some(key) = &self.kms_key_id {
            create = create.kms_key_id(key);
        }
        match create.send().await {
            Ok(_) => {
                tracing::info!(secret = %id, "secret created");
                self.apply_policy(id, part).await?;
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(CreateSecretError::ResourceExistsException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable(id, "CreateSecret", &e)),
        }
    }

    async fn apply_policy(&self, id: &str, part: SecretPart) -> Result<(), SecretsError> {
        let Some(policy) = &self.access else {
            return Ok(());
        };
        self.client
            .put_resource_policy()
            .secret_id(id)
            .resource_policy(policy.document(part))
            .block_public_policy(true)
            .send()
            .await
            .map_err(|e| unavailable(id, "PutResourcePolicy", &e))?;
        tracing::debug!(secret = %id, "resource policy applied");
        Ok(())
    }

    /// Writes one part, creating (or restoring) its secret when this store may.
    /// `false` when the part does not exist and this store may not create it.
    async fn write_part(
        &self,
        name: &str,
        part: SecretPart,
        secrets: &DirectorySecrets,
    ) -> Result<bool, SecretsError> {
        let id = self.part_id(name, part);
        let value = self.stored(name, &secrets.only(&[part])).await?;
        let mut restored = false;
        let mut created = false;
        loop {
            match self.update(&id, &value).await? {
                Update::Done => {
                    self.apply_policy(&id, part).await?;
                    return Ok(true);
                }
                Update::Missing if !self.creates => return Ok(false),
                Update::Missing if !created => {
                    if self.create(&id, part, &value).await? {
                        return Ok(true);
                    }
                    // Created by someone else meanwhile: update it on the next turn.
                    created = true;
                }
                Update::ScheduledForDeletion if self.creates && !restored => {
                    self.client
                        .restore_secret()
                        .secret_id(&id)
                        .send()
                        .await
                        .map_err(|e| unavailable(&id, "RestoreSecret", &e))?;
                    tracing::info!(secret = %id, "secret restored from scheduled deletion");
                    restored = true;
                }
                Update::Missing | Update::ScheduledForDeletion => {
                    return Err(SecretsError::NotFound { name: id });
                }
            }
        }
    }

    /// Splits a pre-split secret: every part in `except` is being written anyway, the
    /// others are created from it unless they exist, then it is scheduled for deletion.
    async fn split_pre_split(&self, name: &str, except: &[SecretPart]) -> Result<(), SecretsError> {
        let Some(whole) = self.read_pre_split(name).await? else {
            return Ok(());
        };
        for part in SecretPart::ALL {
            if except.contains(&part) {
                continue;
            }
            let id = self.part_id(name, part);
            // An existing part is newer than the pre-split copy: keep it.
            let value = self.stored(name, &whole.only(&[part])).await?;
            self.create(&id, part, &value).await?;
        }
        self.delete_id(&self.secret_id(name)).await?;
        tracing::info!(secret = %self.secret_id(name), "pre-split secret split into parts");
        Ok(())
    }

    /// Writes `parts` into the directory's pre-split secret (a store that may not create
    /// parts, in a stack deployed before the split). `false` when there is none.
    async fn update_pre_split(
        &self,
        name: &str,
        parts: &[SecretPart],
        secrets: &DirectorySecrets,
    ) -> Result<bool, SecretsError> {
        let id = self.secret_id(name);
        let Some(mut whole) = self.read_pre_split(name).await? else {
            return Ok(false);
        };
        for part in parts {
            whole.take_part(*part, secrets);
        }
        let value = self.stored(name, &whole).await?;
        Ok(matches!(self.update(&id, &value).await?, Update::Done))
    }

    async fn delete_id(&self, id: &str) -> Result<(), SecretsError> {
        let out = self
            .client
            .delete_secret()
            .secret_id(id)
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
                _ => Err(unavailable(id, "DeleteSecret", &e)),
            },
        }
    }
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn get_parts(
        &self,
        name: &str,
        parts: &[SecretPart],
    ) -> Result<DirectorySecrets, SecretsError> {
        let reads =
            futures::future::try_join_all(parts.iter().map(|part| async move {
                self.read(name, &self.part_id(name, *part), false).await
            }))
            .await?;
        let mut out = DirectorySecrets::default();
        let mut found = false;
        let mut pre_split: Option<Option<DirectorySecrets>> = None;
        for (part, read) in parts.iter().zip(reads) {
            if let Some(s) = read {
                out.take_part(*part, &s);
                found = true;
                continue;
            }
            if pre_split.is_none() {
                pre_split = Some(self.read_pre_split(name).await?);
            }
            if let Some(Some(whole)) = &pre_split {
                out.take_part(*part, whole);
                found = true;
            }
        }
        if !found {
            return Err(SecretsError::NotFound {
                name: self.secret_id(name),
            });
        }
        Ok(out)
    }

    async fn put_parts(
        &self,
        name: &str,
        parts: &[SecretPart],
        secrets: &DirectorySecrets,
    ) -> Result<(), SecretsError> {
        let mut missing = Vec::new();
        for part in parts {
            if !self.write_part(name, *part, secrets).await? {
                missing.push(*part);
            }
        }
        if self.creates {
            // The control plane's write splits a pre-split secret, if there still is one
            // (one read when there is not).
            return self.split_pre_split(name, parts).await;
        }
        if missing.is_empty() {
            return Ok(());
        }
        // An updating-only store's parts do not exist yet: the directory is still in
        // its pre-split secret; update that. If the control plane split it meanwhile,
        // the parts exist now.
        if self.update_pre_split(name, &missing, secrets).await? {
            tracing::info!(secret = %self.secret_id(name), "pre-split secret updated");
            return Ok(());
        }
        for part in missing {
            if !self.write_part(name, part, secrets).await? {
                return Err(SecretsError::NotFound {
                    name: self.part_id(name, part),
                });
            }
        }
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<(), SecretsError> {
        for part in SecretPart::ALL {
            self.delete_id(&self.part_id(name, part)).await?;
        }
        self.delete_id(&self.secret_id(name)).await
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
