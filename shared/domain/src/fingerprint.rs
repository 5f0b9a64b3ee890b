//! Content fingerprints: a short hash of canonical JSON, used to skip unchanged writes.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A SHA-256 digest (first 16 bytes, hex) of an object's canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of an object never fingerprinted.
    pub const EMPTY: Fingerprint = Fingerprint(String::new());

    /// serde_json's maps are ordered (BTreeMap) unless `preserve_order` is enabled, which
    /// this workspace does not do, so serialising a `Value` is canonical.
    pub fn of_json(v: &serde_json::Value) -> Self {
        let bytes = serde_json::to_vec(v).expect("a Value always serializes");
        let digest = Sha256::digest(&bytes);
        Self(hex::encode(&digest[..16]))
    }

    /// Wraps a stored fingerprint.
    pub fn from_stored(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_does_not_change_the_fingerprint() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"b":2,"a":1}"#).unwrap();
        assert_eq!(Fingerprint::of_json(&a), Fingerprint::of_json(&b));
    }
}
