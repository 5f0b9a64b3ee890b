//! [`KmsEnvelopeSealer`]: `ports::CredentialSealer` on AWS KMS. Every seal asks KMS
//! for a fresh AES-256 data key (`GenerateDataKey`, key spec AES_256) under the
//! stack's key with the encryption context `directoryId = <directory>`, seals the
//! credential with it (AES-256-GCM, the directory as associated data) and keeps only
//! the data key's ciphertext blob beside it. Opening calls KMS `Decrypt` with the same
//! context: KMS refuses a blob with another directory's context, so a credential
//! copied into another directory's secret does not open, and IAM can scope `Decrypt`
//! on `kms:EncryptionContext:directoryId`. The plaintext data key lives only for the
//! call.

use std::collections::HashMap;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use aws_sdk_kms::Client;
use ports::{CredentialSealer, SealedCredential, SecretsError};
use secrecy::{ExposeSecret, SecretString};

use crate::clients;

/// The encryption-context key naming the directory.
pub const CONTEXT_KEY: &str = "directoryId";

/// Envelope encryption of credentials under a KMS key.
#[derive(Debug, Clone)]
pub struct KmsEnvelopeSealer {
    client: Client,
    key_id: String,
}

fn context(directory: &str) -> HashMap<String, String> {
    HashMap::from([(CONTEXT_KEY.to_string(), directory.to_string())])
}

fn aad(directory: &str) -> Vec<u8> {
    format!("{CONTEXT_KEY}={directory}").into_bytes()
}

fn refused(directory: &str, what: &str) -> SecretsError {
    SecretsError::Malformed {
        name: directory.to_string(),
        reason: format!("the sealed credential does not open for this directory ({what})"),
    }
}

impl KmsEnvelopeSealer {
    /// Data keys under `key_id` (key id, ARN or alias), with a client built from `sdk`.
    pub fn new(sdk: &SdkConfig, key_id: impl Into<String>) -> Self {
        Self::from_client(clients::kms(sdk), key_id)
    }

    /// Data keys under `key_id` using an existing client.
    pub fn from_client(client: Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
        }
    }
}

#[async_trait]
impl CredentialSealer for KmsEnvelopeSealer {
    async fn seal(
        &self,
        directory: &str,
        plaintext: &SecretString,
    ) -> Result<SealedCredential, SecretsError> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(context(directory)))
            .send()
            .await
            .map_err(|e| {
                let reason = clients::sdk_reason("GenerateDataKey", &e);
                tracing::warn!(directory, %reason, "data key not generated");
                SecretsError::Unavailable { reason }
            })?;
        let (Some(key), Some(blob)) = (out.plaintext(), out.ciphertext_blob()) else {
            return Err(SecretsError::Unavailable {
                reason: "GenerateDataKey answered without a key".into(),
            });
        };
        if key.as_ref().len() != 32 {
            return Err(SecretsError::Unavailable {
                reason: "GenerateDataKey answered a key that is not 256 bits".into(),
            });
        }
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key.as_ref()));
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.expose_secret().as_bytes(),
                    aad: &aad(directory),
                },
            )
            .map_err(|_| refused(directory, "the credential could not be sealed"))?;
        Ok(SealedCredential {
            encrypted_data_key: blob.as_ref().to_vec(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    async fn open(
        &self,
        directory: &str,
        sealed: &SealedCredential,
    ) -> Result<SecretString, SecretsError> {
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(sealed.encrypted_data_key.clone()))
            .set_encryption_context(Some(context(directory)))
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                use aws_sdk_kms::error::ProvideErrorMetadata;
                let code = e.code().unwrap_or_default().to_string();
                // A blob KMS will not open with this context (another directory's, or
                // changed) is refused for good; anything else may pass.
                if matches!(
                    code.as_str(),
                    "InvalidCiphertextException"
                        | "IncorrectKeyException"
                        | "AccessDeniedException"
                ) {
                    tracing::warn!(directory, code, "data key refused by KMS");
                    return Err(refused(directory, "KMS refused the data key"));
                }
                let reason = clients::sdk_reason("Decrypt", &e);
                tracing::warn!(directory, %reason, "data key not decrypted");
                return Err(SecretsError::Unavailable { reason });
            }
        };
        let Some(key) = out.plaintext() else {
            return Err(SecretsError::Unavailable {
                reason: "Decrypt answered without a key".into(),
            });
        };
        if key.as_ref().len() != 32 || sealed.nonce.len() != 12 {
            return Err(refused(
                directory,
                "the envelope is not the documented shape",
            ));
        }
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key.as_ref()));
        let plain = cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad(directory),
                },
            )
            .map_err(|_| refused(directory, "the credential does not open"))?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| refused(directory, "the credential is not text"))
    }
}
