//! Envelope encryption of a directory's stored credentials with a per-directory data
//! key (seed 002): before a credential goes into the secret store it is encrypted with
//! a data key generated for that directory alone, and only the data key's encrypted
//! form is kept beside it.
//!
//! On AWS the data key comes from KMS (`GenerateDataKey` with the encryption context
//! `directoryId = <directory>`), so opening it needs KMS `Decrypt` with the same
//! context: a credential copied into another directory's secret does not open there,
//! and CloudTrail records every use. Locally a master key in the data directory
//! wraps the data keys, with the directory as the authenticated context. The
//! credential itself is sealed with AES-256-GCM, the directory again as associated
//! data.
//!
//! A sealed value is stored as [`SealedCredential::to_envelope`], a JSON object
//! recognisable by its `envelope` member, so stores tell sealed values from values
//! written before sealing was turned on (read as they are, sealed at the next write).

use async_trait::async_trait;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::secrets::SecretsError;

/// The `envelope` member of a sealed value: its scheme and version.
pub const ENVELOPE_SCHEME: &str = "aes256gcm-datakey-v1";

/// A credential sealed for one directory.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedCredential {
    /// The directory's data key, encrypted (by KMS, or by the local master key); it
    /// opens only with the directory's context.
    #[serde(with = "hex_bytes")]
    pub encrypted_data_key: Vec<u8>,
    /// The AES-GCM nonce (96 bits), fresh for every seal.
    #[serde(with = "hex_bytes")]
    pub nonce: Vec<u8>,
    /// The credential encrypted with the data key, its tag appended.
    #[serde(with = "hex_bytes")]
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for SealedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedCredential")
            .field("ciphertext_bytes", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    envelope: String,
    #[serde(flatten)]
    sealed: SealedCredential,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

impl SealedCredential {
    /// The stored form: `{"envelope": "<scheme>", "encryptedDataKey", "nonce",
    /// "ciphertext"}`, bytes in hex.
    pub fn to_envelope(&self) -> String {
        serde_json::to_string(&Envelope {
            envelope: ENVELOPE_SCHEME.into(),
            sealed: self.clone(),
        })
        .expect("an envelope serializes")
    }

    /// Reads a stored value: `Ok(None)` when it is not an envelope (a value written
    /// before sealing), an error naming `name` when it is one this code cannot read.
    pub fn from_envelope(name: &str, text: &str) -> Result<Option<Self>, SecretsError> {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
            return Ok(None);
        };
        let Some(scheme) = value.get("envelope") else {
            return Ok(None);
        };
        if scheme != ENVELOPE_SCHEME {
            return Err(SecretsError::Malformed {
                name: name.to_string(),
                reason: format!("unknown envelope scheme {scheme}"),
            });
        }
        serde_json::from_value::<Envelope>(value)
            .map(|e| Some(e.sealed))
            .map_err(|_| SecretsError::Malformed {
                name: name.to_string(),
                reason: "the envelope is not the documented shape".into(),
            })
    }
}

/// Seals and opens credentials with a per-directory data key.
#[async_trait]
pub trait CredentialSealer: Send + Sync {
    /// Encrypts `plaintext` for `directory` under a data key generated for it (the
    /// directory is the key's encryption context and the cipher's associated data).
    async fn seal(
        &self,
        directory: &str,
        plaintext: &SecretString,
    ) -> Result<SealedCredential, SecretsError>;

    /// Decrypts what [`CredentialSealer::seal`] sealed for `directory`. Fails (never
    /// with the value in the error) for another directory's value, a changed byte, or
    /// a data key the key service will not open.
    async fn open(
        &self,
        directory: &str,
        sealed: &SealedCredential,
    ) -> Result<SecretString, SecretsError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed() -> SealedCredential {
        SealedCredential {
            encrypted_data_key: vec![1, 2, 3],
            nonce: vec![0; 12],
            ciphertext: vec![0xab, 0xcd],
        }
    }

    #[test]
    fn an_envelope_round_trips_and_plain_json_is_not_one() {
        let text = sealed().to_envelope();
        assert!(text.contains(ENVELOPE_SCHEME));
        assert_eq!(
            SealedCredential::from_envelope("acme", &text).unwrap(),
            Some(sealed())
        );
        assert_eq!(
            SealedCredential::from_envelope("acme", r#"{"bamboohrApiKey": "k"}"#).unwrap(),
            None
        );
        assert_eq!(
            SealedCredential::from_envelope("acme", "not json").unwrap(),
            None
        );
    }

    #[test]
    fn an_unknown_scheme_or_a_broken_envelope_is_refused_naming_the_secret() {
        let other = r#"{"envelope": "rot13", "ciphertext": "00"}"#;
        let e = SealedCredential::from_envelope("acme/bamboohr", other).unwrap_err();
        assert!(e.to_string().contains("acme/bamboohr"));
        let broken = format!(r#"{{"envelope": "{ENVELOPE_SCHEME}", "nonce": "zz"}}"#);
        assert!(SealedCredential::from_envelope("acme", &broken).is_err());
        assert!(!format!("{:?}", sealed()).contains("abcd"));
    }
}
