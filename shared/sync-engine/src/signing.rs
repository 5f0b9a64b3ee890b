//! Signatures: verifying BambooHR's inbound webhooks and signing outbound deliveries
//! per Standard Webhooks. Comparisons are constant-time (`Mac::verify_slice`).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::OffsetDateTime;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// BambooHR's signature: hex HMAC-SHA256 over the raw body followed by the
/// X-BambooHR-Timestamp header value.
pub fn bamboohr_signature(key: &[u8], body: &[u8], timestamp: &str) -> String {
    let mut m = mac(key);
    m.update(body);
    m.update(timestamp.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// True when `signature_hex` was made by any of `keys` (two may be active during a
/// rotation). Malformed hex never matches.
pub fn verify_bamboohr(
    keys: &[SecretString],
    body: &[u8],
    timestamp: &str,
    signature_hex: &str,
) -> bool {
    let Ok(given) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    keys.iter().any(|k| {
        let mut m = mac(k.expose_secret().as_bytes());
        m.update(body);
        m.update(timestamp.as_bytes());
        m.verify_slice(&given).is_ok()
    })
}

/// True when a webhook URL token equals the directory's. Both sides are hashed first so
/// the constant-time comparison does not even reveal the token's length.
pub fn verify_token(expected: &SecretString, given: &str) -> bool {
    use sha2::Digest;
    let a = Sha256::digest(expected.expose_secret().as_bytes());
    let b = Sha256::digest(given.as_bytes());
    subtle::ConstantTimeEq::ct_eq(a.as_slice(), b.as_slice()).into()
}

/// Parses X-BambooHR-Timestamp: unix seconds, RFC 3339 or other ISO 8601 forms.
pub fn parse_timestamp(value: &str) -> Option<OffsetDateTime> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<i64>() {
        return OffsetDateTime::from_unix_timestamp(secs).ok();
    }
    OffsetDateTime::parse(v, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(v, &Iso8601::DEFAULT))
        .ok()
}

/// Shortest signing key accepted for a new secret, in bytes (Standard Webhooks).
pub const MIN_SECRET_BYTES: usize = 24;
/// Longest signing key accepted for a new secret, in bytes (Standard Webhooks).
pub const MAX_SECRET_BYTES: usize = 64;

/// Why a new signing secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyStrength {
    /// Not `whsec_` + base64.
    #[error("signing secret must be `whsec_` followed by base64 key bytes")]
    Malformed,
    /// The key is too short or too long.
    #[error("signing secret key is {0} bytes; Standard Webhooks asks for {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES}")]
    Length(usize),
}

/// A Standard Webhooks signing secret (`whsec_` + base64 key bytes).
pub struct WebhookSecret(Vec<u8>);

/// Why a signing secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing secret must be `whsec_` followed by base64 key bytes")]
pub struct BadSecret;

impl WebhookSecret {
    /// Parses a `whsec_...` secret; a secret without the prefix is read as base64 too.
    pub fn parse(secret: &SecretString) -> Result<Self, BadSecret> {
        let s = secret.expose_secret();
        let b64 = s.strip_prefix("whsec_").unwrap_or(s);
        let key = B64.decode(b64).map_err(|_| BadSecret)?;
        if key.is_empty() {
            return Err(BadSecret);
        }
        Ok(Self(key))
    }

    /// Parses a secret being configured: as [`WebhookSecret::parse`], and its key must
    /// be 24 to 64 bytes, as Standard Webhooks asks (a short key makes signatures
    /// guessable). Secrets already stored still sign after this check tightened.
    pub fn parse_new(secret: &SecretString) -> Result<Self, KeyStrength> {
        let parsed = Self::parse(secret).map_err(|_| KeyStrength::Malformed)?;
        let n = parsed.0.len();
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&n) {
            return Err(KeyStrength::Length(n));
        }
        Ok(parsed)
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut m = mac(&self.0);
        m.update(msg_id.as_bytes());
        m.update(b".");
        m.update(timestamp.to_string().as_bytes());
        m.update(b".");
        m.update(body);
        format!("v1,{}", B64.encode(m.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header value: one signature per active secret, separated by
/// spaces, so receivers keep verifying through a secret rotation.
pub fn standard_webhook_signature(
    secrets: &[WebhookSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Verifies a Standard Webhooks delivery (used by the local stack's demo receiver; the
/// integration tests verify with the official library instead). Returns true when any
/// `v1,` signature in `signature_header` matches.
pub fn verify_standard_webhook(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: &str,
    body: &[u8],
    signature_header: &str,
) -> bool {
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    let mut m = mac(&secret.0);
    m.update(msg_id.as_bytes());
    m.update(b".");
    m.update(ts.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    let expected = m.finalize().into_bytes();
    signature_header.split(' ').any(|sig| {
        sig.strip_prefix("v1,")
            .and_then(|b64| B64.decode(b64).ok())
            .map(|given| {
                subtle::ConstantTimeEq::ct_eq(given.as_slice(), expected.as_slice()).into()
            })
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bamboohr_signature_verifies_with_either_rotated_key() {
        let body = br#"{"employees":[]}"#;
        let sig = bamboohr_signature(b"new-key", body, "1700000000");
        let keys = [SecretString::from("old-key"), SecretString::from("new-key")];
        assert!(verify_bamboohr(&keys, body, "1700000000", &sig));
        assert!(!verify_bamboohr(&keys[..1], body, "1700000000", &sig));
        assert!(!verify_bamboohr(&keys, body, "1700000001", &sig));
        assert!(!verify_bamboohr(&keys, body, "1700000000", "zz-not-hex"));
    }

    #[test]
    fn a_url_token_matches_only_itself() {
        let token = SecretString::from("s3cret-token");
        assert!(verify_token(&token, "s3cret-token"));
        assert!(!verify_token(&token, "s3cret-tokeN"));
        assert!(!verify_token(&token, ""));
        assert!(!verify_token(&token, "s3cret-token-and-more"));
    }

    #[test]
    fn timestamps_parse_as_unix_seconds_or_iso_8601() {
        assert_eq!(parse_timestamp("0"), Some(OffsetDateTime::UNIX_EPOCH));
        assert_eq!(
            parse_timestamp("1970-01-01T00:00:00Z"),
            Some(OffsetDateTime::UNIX_EPOCH)
        );
        assert_eq!(
            parse_timestamp("1970-01-01T00:00:00+00:00"),
            Some(OffsetDateTime::UNIX_EPOCH)
        );
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn standard_webhook_signatures_match_the_specification_example() {
        // The example from the Standard Webhooks specification.
        let secret = WebhookSecret::parse(&SecretString::from(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ))
        .unwrap();
        let sig = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn our_own_verifier_accepts_what_we_sign_and_nothing_else() {
        let secret = WebhookSecret::parse(&SecretString::from(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ))
        .unwrap();
        let header =
            standard_webhook_signature(std::slice::from_ref(&secret), "msg_1", 1700000000, b"{}");
        assert!(verify_standard_webhook(
            &secret,
            "msg_1",
            "1700000000",
            b"{}",
            &header
        ));
        assert!(!verify_standard_webhook(
            &secret,
            "msg_2",
            "1700000000",
            b"{}",
            &header
        ));
        assert!(!verify_standard_webhook(
            &secret,
            "msg_1",
            "1700000000",
            b"{ }",
            &header
        ));
    }

    #[test]
    fn secrets_that_are_not_base64_are_refused() {
        assert!(WebhookSecret::parse(&SecretString::from("whsec_***")).is_err());
        assert!(WebhookSecret::parse(&SecretString::from("whsec_")).is_err());
    }
}
