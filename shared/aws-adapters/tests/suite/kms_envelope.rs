//! Envelope encryption of stored credentials on moto's KMS: the sealer contract (opens
//! for its directory only: KMS refuses the data key under another directory's
//! encryption context), and a sealing Secrets Manager store that passes the secret
//! store contract, keeps no credential in clear in Secrets Manager, and refuses a
//! sealed value copied into another directory's secret.

use crate::common;

use aws_adapters::{clients, KmsEnvelopeSealer, SecretsManagerStore};
use ports::{DirectorySecrets, SecretPart, SecretStore};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

async fn sealer() -> KmsEnvelopeSealer {
    let sdk = common::sdk().await;
    let key = clients::kms(&sdk)
        .create_key()
        .description("bamboohr-sync test credential key")
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    KmsEnvelopeSealer::new(&sdk, key)
}

#[tokio::test]
async fn the_kms_sealer_passes_the_sealer_contract() {
    let sealer = sealer().await;
    ports::contract_sealer::a_sealed_credential_opens_for_its_directory_only(&sealer, "kms").await;
}

#[tokio::test]
async fn a_sealing_secrets_manager_store_keeps_no_credential_in_clear_and_opens_per_directory() {
    let sdk = common::sdk().await;
    let store = SecretsManagerStore::new(&sdk, format!("{}/", common::unique("bsync/sealed")))
        .with_sealer(Arc::new(sealer().await));
    ports::contract_secrets::run_all(&store, "sealed").await;

    let secrets = DirectorySecrets {
        bamboohr_api_key: Some(SecretString::from("bamboo-key-51c2")),
        ..Default::default()
    };
    store.put("acme", &secrets).await.unwrap();
    let raw = store
        .client()
        .get_secret_value()
        .secret_id(store.part_id("acme", SecretPart::Bamboohr))
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_string();
    assert!(
        !raw.contains("bamboo-key-51c2"),
        "sealed in Secrets Manager"
    );
    assert!(raw.contains(ports::ENVELOPE_SCHEME));
    let back = store.get("acme").await.unwrap();
    assert_eq!(
        back.bamboohr_api_key.unwrap().expose_secret(),
        "bamboo-key-51c2"
    );

    // acme's sealed value planted in globex's secret: KMS will not open its data key
    // under globex's context.
    store
        .put("globex", &DirectorySecrets::default())
        .await
        .unwrap();
    store
        .client()
        .put_secret_value()
        .secret_id(store.part_id("globex", SecretPart::Bamboohr))
        .secret_string(&raw)
        .send()
        .await
        .unwrap();
    let refused = store.get("globex").await.unwrap_err();
    assert!(!refused.to_string().contains("bamboo-key-51c2"));

    // A store without the sealer refuses a sealed value rather than misreading it.
    let plain = SecretsManagerStore::new(&sdk, store.secret_id(""));
    assert!(plain.get("acme").await.is_err());
}
