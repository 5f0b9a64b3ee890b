//! Fuzzing of signature handling: BambooHR's `X-BambooHR-Signature` /
//! `X-BambooHR-Timestamp` pair and Standard Webhooks' `webhook-signature` header and
//! `whsec_` secrets (`sync_engine::signing`). The webhook handler's own fuzz
//! (functions/webhook/tests/fuzz.rs) drives these through whole requests; here the
//! verifiers meet arbitrary header text directly.
//!
//! Properties: nothing panics; a correct signature verifies, also among other header
//! tokens; changing one byte of the body, the timestamp or the signature fails; any
//! header text without the correct signature fails.
//!
//! 256 cases by default; `PROPTEST_CASES=100000` for a long run.

use proptest::collection::vec;
use proptest::prelude::*;
use secrecy::SecretString;
use sync_engine::signing::{
    bamboohr_signature, parse_timestamp, standard_webhook_signature, verify_bamboohr,
    verify_standard_webhook, WebhookSecret,
};

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_bamboohr_signature_verifies_only_for_its_exact_body_and_timestamp(
        key in "[ -~]{1,40}",
        other_key in "[ -~]{1,40}",
        body in vec(any::<u8>(), 0..256),
        ts in "[ -~]{0,30}",
        flip in any::<usize>(),
    ) {
        let sig = bamboohr_signature(key.as_bytes(), &body, &ts);
        let keys = [SecretString::from(other_key.clone()), SecretString::from(key.clone())];
        prop_assert!(verify_bamboohr(&keys, &body, &ts, &sig));
        let padded = format!("  {}\n", sig.to_uppercase());
        prop_assert!(verify_bamboohr(&keys, &body, &ts, &padded));
        if !body.is_empty() {
            let mut changed = body.clone();
            changed[flip % body.len()] ^= 1;
            prop_assert!(!verify_bamboohr(&keys, &changed, &ts, &sig));
        }
        let later = format!("{ts}0");
        prop_assert!(!verify_bamboohr(&keys, &body, &later, &sig));
        let mut bad = sig.into_bytes();
        let i = flip % bad.len();
        bad[i] = if bad[i] == b'0' { b'1' } else { b'0' };
        prop_assert!(!verify_bamboohr(&keys, &body, &ts, &String::from_utf8(bad).unwrap()));
    }

    #[test]
    fn arbitrary_bamboohr_signature_headers_never_verify_or_panic(
        body in vec(any::<u8>(), 0..64),
        ts in "\\PC{0,40}",
        header in prop_oneof!["\\PC{0,80}", "[0-9a-fA-F]{0,70}"],
    ) {
        let keys = [SecretString::from("bamboohr-webhook-private-key")];
        prop_assume!(header.trim() != bamboohr_signature(b"bamboohr-webhook-private-key", &body, &ts));
        prop_assert!(!verify_bamboohr(&keys, &body, &ts, &header));
        let _ = parse_timestamp(&ts);
        let _ = parse_timestamp(&header);
    }

    #[test]
    fn a_standard_webhooks_signature_verifies_among_other_tokens_and_nothing_else_does(
        key in vec(any::<u8>(), 1..48),
        msg_id in "[ -~]{0,40}",
        timestamp in any::<i64>(),
        body in vec(any::<u8>(), 0..256),
        noise in vec(prop_oneof!["\\PC{0,30}", "v1,[A-Za-z0-9+/=]{0,60}", "v1a,[ -~]{0,20}"], 0..4),
    ) {
        use base64::Engine as _;
        let text = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(&key));
        let secret = WebhookSecret::parse(&SecretString::from(text)).unwrap();
        let sig = standard_webhook_signature(std::slice::from_ref(&secret), &msg_id, timestamp, &body);
        let ts = timestamp.to_string();
        let mut tokens: Vec<String> = noise.iter().map(|n| n.replace(' ', "")).collect();
        tokens.insert(tokens.len() / 2, sig.clone());
        prop_assert!(verify_standard_webhook(&secret, &msg_id, &ts, &body, &tokens.join(" ")));
        let noise_only: Vec<String> = noise.iter().map(|n| n.replace(' ', "")).collect();
        prop_assume!(!noise_only.contains(&sig));
        prop_assert!(!verify_standard_webhook(&secret, &msg_id, &ts, &body, &noise_only.join(" ")));
        let other_id = format!("{msg_id}x");
        prop_assert!(!verify_standard_webhook(&secret, &other_id, &ts, &body, &sig));
        prop_assert!(!verify_standard_webhook(&secret, &msg_id, "not-a-number", &body, &sig));
    }

    #[test]
    fn arbitrary_signing_secrets_parse_or_are_refused_without_panicking(
        text in prop_oneof!["\\PC{0,60}", "whsec_[A-Za-z0-9+/=]{0,60}", "whsec_"],
        msg_id in "[ -~]{0,20}",
        body in vec(any::<u8>(), 0..64),
    ) {
        if let Ok(secret) = WebhookSecret::parse(&SecretString::from(text)) {
            let sig = secret.sign(&msg_id, 1_795_420_800, &body);
            prop_assert!(sig.starts_with("v1,"));
            prop_assert!(verify_standard_webhook(&secret, &msg_id, "1795420800", &body, &sig));
        }
    }
}
