//! [`LocalSealer`]: `ports::CredentialSealer` for the local stack, the embedded
//! equivalent of KMS envelope encryption. A master key (32 random bytes, kept in a
//! 0600 file in the data directory, as KMS keeps its key material) wraps a fresh
//! AES-256 data key per seal with AES-256-GCM, the directory as associated data: the
//! directory is the data key's encryption context, so a value sealed for one directory
//! does not open for another. The credential is sealed with the data key (AES-256-GCM,
//! the directory as associated data again).
//!
//! The wrapped data key is stored as `nonce || ciphertext+tag`.

use std::path::Path;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use async_trait::async_trait;
use ports::{CredentialSealer, SealedCredential, SecretsError};
use secrecy::{ExposeSecret, SecretString};

/// Bytes of an AES-GCM nonce.
const NONCE_BYTES: usize = 12;

/// The local envelope sealer.
pub struct LocalSealer {
    master: Aes256Gcm,
}

impl std::fmt::Debug for LocalSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalSealer")
    }
}

/// The encryption context of a directory's data key, as associated data.
fn context(directory: &str) -> Vec<u8> {
    format!("directoryId={directory}").into_bytes()
}

fn refused(directory: &str, what: &str) -> SecretsError {
    SecretsError::Malformed {
        name: directory.to_string(),
        reason: format!("the sealed credential does not open for this directory ({what})"),
    }
}

impl LocalSealer {
    /// A sealer on this master key.
    pub fn new(master: &[u8; 32]) -> Self {
        Self {
            master: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(master)),
        }
    }

    /// The sealer of a data directory: its master key is read from `path` (hex, mode
    /// 0600), or generated there on first use.
    pub fn open_or_create(path: &Path) -> Result<Self, SecretsError> {
        let unavailable = |e: std::io::Error| SecretsError::Unavailable {
            reason: format!("master key {}: {}", path.display(), e.kind()),
        };
        let malformed = || SecretsError::Malformed {
            name: path.display().to_string(),
            reason: "the master key is not 32 bytes in hex".into(),
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let text = SecretString::from(text);
                let bytes = hex::decode(text.expose_secret().trim()).map_err(|_| malformed())?;
                let key: [u8; 32] = bytes.try_into().map_err(|_| malformed())?;
                Ok(Self::new(&key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Aes256Gcm::generate_key(OsRng);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(unavailable)?;
                }
                let text = SecretString::from(hex::encode(key));
                write_private(path, text.expose_secret().as_bytes()).map_err(unavailable)?;
                let key: [u8; 32] = key.into();
                Ok(Self::new(&key))
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, path)
}

/// Splits `nonce || ciphertext`.
fn split(bytes: &[u8]) -> Option<(&Nonce<aes_gcm::aead::consts::U12>, &[u8])> {
    (bytes.len() > NONCE_BYTES).then(|| {
        let (nonce, rest) = bytes.split_at(NONCE_BYTES);
        (Nonce::from_slice(nonce), rest)
    })
}

#[async_trait]
impl CredentialSealer for LocalSealer {
    async fn seal(
        &self,
        directory: &str,
        plaintext: &SecretString,
    ) -> Result<SealedCredential, SecretsError> {
        let aad = context(directory);
        let data_key = Aes256Gcm::generate_key(OsRng);
        let key_nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let wrapped = self
            .master
            .encrypt(
                &key_nonce,
                Payload {
                    msg: data_key.as_slice(),
                    aad: &aad,
                },
            )
            .map_err(|_| refused(directory, "the data key could not be wrapped"))?;
        let mut encrypted_data_key = key_nonce.to_vec();
        encrypted_data_key.extend_from_slice(&wrapped);
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = Aes256Gcm::new(&data_key)
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.expose_secret().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| refused(directory, "the credential could not be sealed"))?;
        Ok(SealedCredential {
            encrypted_data_key,
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    async fn open(
        &self,
        directory: &str,
        sealed: &SealedCredential,
    ) -> Result<SecretString, SecretsError> {
        let aad = context(directory);
        let (key_nonce, wrapped) = split(&sealed.encrypted_data_key)
            .ok_or_else(|| refused(directory, "the data key is truncated"))?;
        let data_key = self
            .master
            .decrypt(
                key_nonce,
                Payload {
                    msg: wrapped,
                    aad: &aad,
                },
            )
            .map_err(|_| refused(directory, "the data key does not open"))?;
        if data_key.len() != 32 || sealed.nonce.len() != NONCE_BYTES {
            return Err(refused(
                directory,
                "the envelope is not the documented shape",
            ));
        }
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&data_key));
        let plain = cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| refused(directory, "the credential does not open"))?;
        let text = String::from_utf8(plain)
            .map_err(|_| refused(directory, "the credential is not text"))?;
        Ok(SecretString::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_local_sealer_passes_the_sealer_contract() {
        let sealer = LocalSealer::new(&[7; 32]);
        ports::contract_sealer::a_sealed_credential_opens_for_its_directory_only(&sealer, "local")
            .await;
    }

    #[tokio::test]
    async fn the_master_key_is_created_once_with_owner_only_permissions_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("master.key");
        let first = LocalSealer::open_or_create(&path).unwrap();
        let sealed = first.seal("acme", &SecretString::from("k")).await.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = LocalSealer::open_or_create(&path).unwrap();
        assert_eq!(
            again.open("acme", &sealed).await.unwrap().expose_secret(),
            "k"
        );
        let other = LocalSealer::new(&[1; 32]);
        assert!(
            other.open("acme", &sealed).await.is_err(),
            "another master key"
        );
    }
}
