//! Contract checks of [`crate::sealer::CredentialSealer`], run by each adapter's tests
//! (the KMS one against moto's KMS, the local one on its master key).

use secrecy::{ExposeSecret, SecretString};

use crate::sealer::{CredentialSealer, SealedCredential};

/// A sealed credential opens for its directory only: the same value comes back for
/// it; another directory's context, a changed byte of the ciphertext or of the
/// encrypted data key, fail without showing the value; every seal uses a fresh data
/// key and nonce, so sealing twice gives different bytes.
pub async fn a_sealed_credential_opens_for_its_directory_only(
    sealer: &dyn CredentialSealer,
    tag: &str,
) {
    let acme = format!("{tag}-acme");
    let globex = format!("{tag}-globex");
    let value = SecretString::from(r#"{"bamboohrApiKey":"key-0f3a9c"}"#);
    let sealed = sealer.seal(&acme, &value).await.expect("sealed");
    assert!(
        !String::from_utf8_lossy(&sealed.ciphertext).contains("key-0f3a9c"),
        "the ciphertext does not carry the value"
    );
    let opened = sealer.open(&acme, &sealed).await.expect("opened");
    assert_eq!(opened.expose_secret(), value.expose_secret());

    let stored = SealedCredential::from_envelope("x", &sealed.to_envelope())
        .unwrap()
        .unwrap();
    assert_eq!(
        sealer.open(&acme, &stored).await.unwrap().expose_secret(),
        value.expose_secret(),
        "the stored form opens as well"
    );

    let wrong = sealer.open(&globex, &sealed).await;
    let err = wrong.expect_err("another directory's context must not open it");
    assert!(!err.to_string().contains("key-0f3a9c"));

    let mut tampered = sealed.clone();
    let last = tampered.ciphertext.len() - 1;
    tampered.ciphertext[last] ^= 1;
    assert!(sealer.open(&acme, &tampered).await.is_err());
    let mut bad_key = sealed.clone();
    bad_key.encrypted_data_key[0] ^= 1;
    assert!(sealer.open(&acme, &bad_key).await.is_err());

    let again = sealer.seal(&acme, &value).await.expect("sealed again");
    assert_ne!(again.encrypted_data_key, sealed.encrypted_data_key);
    assert_ne!(again.ciphertext, sealed.ciphertext);
}
