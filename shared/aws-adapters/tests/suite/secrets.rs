//! `SecretsManagerStore` against moto: the secret store contract (parts, pre-split
//! secrets), not found, malformed secrets named but never quoted, delete, and what the
//! control plane's store puts on a secret it creates (the stack's key, the part tag, a
//! resource policy naming only the part's roles).

use crate::common;

use async_trait::async_trait;
use aws_adapters::{clients, SecretAccessPolicy, SecretsManagerStore, PART_TAG};
use ports::contract_secrets::{self, PreSplitSecrets};
use ports::{DirectorySecrets, SecretPart, SecretStore, SecretsError};
use secrecy::{ExposeSecret, SecretString};

async fn store() -> SecretsManagerStore {
    let sdk = common::sdk().await;
    SecretsManagerStore::new(&sdk, format!("{}/", common::unique("bamboohr-sync/test")))
}

fn secrets(key: &str) -> DirectorySecrets {
    DirectorySecrets {
        bamboohr_api_key: Some(SecretString::from(key.to_string())),
        webhook_keys: vec![SecretString::from("wk-1".to_string())],
        ..Default::default()
    }
}

fn api_key(s: &DirectorySecrets) -> String {
    s.bamboohr_api_key
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_string()
}

#[tokio::test]
async fn secrets_round_trip_and_updates_replace_them() {
    let store = store().await;
    store.put("acme", &secrets("k-1")).await.unwrap();
    let got = store.get("acme").await.unwrap();
    assert_eq!(api_key(&got), "k-1");
    assert_eq!(got.webhook_keys.len(), 1);

    store.put("acme", &secrets("k-2")).await.unwrap();
    assert_eq!(api_key(&store.get("acme").await.unwrap()), "k-2");

    // The credential really lives in its part's secret, under the prefixed name, and
    // the webhook part does not hold it.
    assert_eq!(
        store.part_id("acme", SecretPart::Bamboohr),
        format!("{}acme/bamboohr", store.secret_id(""))
    );
    assert!(raw(&store, SecretPart::Bamboohr).await.contains("k-2"));
    let webhook = raw(&store, SecretPart::Webhook).await;
    assert!(webhook.contains("wk-1") && !webhook.contains("k-2"));
}

async fn raw(store: &SecretsManagerStore, part: SecretPart) -> String {
    store
        .client()
        .get_secret_value()
        .secret_id(store.part_id("acme", part))
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_string()
}

struct PreSplit<'a>(&'a SecretsManagerStore);

#[async_trait]
impl PreSplitSecrets for PreSplit<'_> {
    async fn plant(&self, name: &str, whole: &DirectorySecrets) {
        self.0
            .client()
            .create_secret()
            .name(self.0.secret_id(name))
            .secret_string(whole.to_json().expose_secret())
            .send()
            .await
            .unwrap();
    }

    async fn exists(&self, name: &str) -> bool {
        match self
            .0
            .client()
            .describe_secret()
            .secret_id(self.0.secret_id(name))
            .send()
            .await
        {
            Ok(d) => d.deleted_date().is_none(),
            Err(_) => false,
        }
    }
}

#[tokio::test]
async fn secrets_manager_passes_the_secret_store_contract() {
    let store = store().await;
    contract_secrets::run_all(&store, "sm").await;
}

#[tokio::test]
async fn pre_split_secrets_are_read_until_the_control_planes_first_write_splits_them() {
    let store = store().await;
    contract_secrets::pre_split_secrets_are_read_until_the_first_write_splits_them(
        &store,
        &PreSplit(&store),
        "sm",
    )
    .await;
}

#[tokio::test]
async fn a_function_that_may_not_create_writes_into_the_pre_split_secret_until_it_is_split() {
    let admin = store().await;
    let poller = admin.clone().updating_only();
    let old = PreSplit(&admin);
    old.plant("acme", &contract_secrets::sample("old")).await;

    // The poller refreshes OAuth tokens (here: the API key) before the split.
    let refreshed = secrets("refreshed-1");
    poller
        .put_parts("acme", &[SecretPart::Bamboohr], &refreshed)
        .await
        .unwrap();
    assert!(
        old.exists("acme").await,
        "an updating-only store never splits"
    );
    for part in SecretPart::ALL {
        let exists = admin
            .client()
            .describe_secret()
            .secret_id(admin.part_id("acme", part))
            .send()
            .await
            .is_ok();
        assert!(!exists, "an updating-only store never creates {part}");
    }
    let got = poller.get("acme").await.unwrap();
    assert_eq!(api_key(&got), "refreshed-1");
    assert_eq!(got.webhook_keys.len(), 1, "the other parts are kept");

    // The control plane's write splits it; the poller then writes its part.
    admin
        .put_parts("acme", &[SecretPart::Targets], &DirectorySecrets::default())
        .await
        .unwrap();
    assert!(!old.exists("acme").await);
    poller
        .put_parts("acme", &[SecretPart::Bamboohr], &secrets("refreshed-2"))
        .await
        .unwrap();
    let got = admin.get("acme").await.unwrap();
    assert_eq!(api_key(&got), "refreshed-2");
    assert_eq!(got.webhook_keys.len(), 1);
    assert!(got.targets.is_empty());

    // With neither a part nor a pre-split secret, an updating-only store writes nothing.
    let err = poller
        .put_parts("nobody", &[SecretPart::Bamboohr], &refreshed)
        .await
        .unwrap_err();
    assert!(matches!(err, SecretsError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn a_missing_secret_is_not_found_by_its_full_name() {
    let store = store().await;
    let err = store.get("nobody").await.unwrap_err();
    match &err {
        SecretsError::NotFound { name } => assert_eq!(name, &store.secret_id("nobody")),
        other => panic!("expected NotFound, got {other}"),
    }
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn malformed_secrets_name_the_secret_but_not_the_value() {
    let store = store().await;
    let client = store.client();
    for (name, value) in [
        ("wrong-type", r#"{"bamboohrApiKey": 98765432}"#),
        ("not-json", "hunter2-plaintext-key"),
        ("unknown-field", r#"{"apiKey": "leaky-value-1"}"#),
    ] {
        client
            .create_secret()
            .name(store.secret_id(name))
            .secret_string(value)
            .send()
            .await
            .unwrap();
        let err = store.get(name).await.unwrap_err();
        assert!(matches!(err, SecretsError::Malformed { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&store.secret_id(name)), "{msg}");
        for leak in ["98765432", "hunter2", "leaky-value-1"] {
            assert!(!msg.contains(leak), "{msg}");
        }
    }
}

#[tokio::test]
async fn deleting_is_idempotent() {
    let store = store().await;
    store.delete("never-existed").await.unwrap();

    store.put("gone", &secrets("k-1")).await.unwrap();
    store.delete("gone").await.unwrap();
    assert!(matches!(
        store.get("gone").await.unwrap_err(),
        SecretsError::NotFound { .. }
    ));
    // Deleting again during the recovery window is fine too.
    store.delete("gone").await.unwrap();
    // Not tested here: `put` after `delete` restoring the secret. AWS refuses
    // PutSecretValue on a secret scheduled for deletion (InvalidRequestException, which
    // the store answers with RestoreSecret); moto 5.2.5 accepts the put and leaves the
    // secret deleted, so moto cannot exercise that path.
}

const KEY_ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/0b9a8c7d-1111-2222-3333-444455556666";
const ADMIN: &str = "arn:aws:iam::123456789012:role/stack-AdminFunctionRole-A1";
const POLLER: &str = "arn:aws:iam::123456789012:role/stack-PollerFunctionRole-B2";
const WEBHOOK: &str = "arn:aws:iam::123456789012:role/stack-WebhookFunctionRole-C3";
const DISPATCHER: &str = "arn:aws:iam::123456789012:role/stack-DispatcherFunctionRole-D4";

/// The control plane's store as function_support builds it from the stack's settings.
async fn control_plane_store() -> SecretsManagerStore {
    let sdk = common::sdk().await;
    let policy = SecretAccessPolicy::new()
        .allow(SecretPart::Bamboohr, POLLER)
        .allow(SecretPart::Webhook, WEBHOOK)
        .allow(SecretPart::Targets, DISPATCHER);
    let policy = SecretPart::ALL
        .into_iter()
        .fold(policy, |p, part| p.allow(part, ADMIN));
    SecretsManagerStore::from_client(
        clients::secrets_manager(&sdk),
        format!("{}/", common::unique("bamboohr-sync/kms")),
        None,
    )
    .with_kms_key(KEY_ARN)
    .with_access_policy(policy)
}

#[tokio::test]
async fn secrets_the_control_plane_creates_use_the_stacks_key_and_carry_their_part_and_policy() {
    let store = control_plane_store().await;
    store.put("acme", &secrets("k-1")).await.unwrap();
    for (part, reader) in [
        (SecretPart::Bamboohr, POLLER),
        (SecretPart::Webhook, WEBHOOK),
        (SecretPart::Targets, DISPATCHER),
    ] {
        let id = store.part_id("acme", part);
        let described = store
            .client()
            .describe_secret()
            .secret_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(described.kms_key_id(), Some(KEY_ARN), "{part}");
        let tags: Vec<(&str, &str)> = described
            .tags()
            .iter()
            .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
            .collect();
        assert!(
            tags.contains(&(PART_TAG, part.as_str())),
            "{part}: {tags:?}"
        );

        let policy = store
            .client()
            .get_resource_policy()
            .secret_id(&id)
            .send()
            .await
            .unwrap();
        let doc: serde_json::Value =
            serde_json::from_str(policy.resource_policy().expect("a resource policy")).unwrap();
        let stmt = &doc["Statement"][0];
        assert_eq!(stmt["Effect"], "Deny", "{part}");
        assert_eq!(stmt["Principal"], "*", "{part}");
        let actions = stmt["Action"].to_string();
        assert!(actions.contains("secretsmanager:GetSecretValue"), "{part}");
        assert!(actions.contains("secretsmanager:PutSecretValue"), "{part}");
        let except: Vec<&str> = stmt["Condition"]["StringNotEquals"]["aws:PrincipalArn"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            except,
            [reader, ADMIN],
            "{part}: only its function and the admin API"
        );
    }
    assert_eq!(api_key(&store.get("acme").await.unwrap()), "k-1");
}

#[tokio::test]
async fn a_pre_split_secret_is_split_into_parts_under_the_stacks_key() {
    let store = control_plane_store().await;
    PreSplit(&store)
        .plant("acme", &contract_secrets::sample("old"))
        .await;
    store
        .put_parts("acme", &[SecretPart::Webhook], &secrets("unused"))
        .await
        .unwrap();
    for part in SecretPart::ALL {
        let described = store
            .client()
            .describe_secret()
            .secret_id(store.part_id("acme", part))
            .send()
            .await
            .unwrap();
        assert_eq!(described.kms_key_id(), Some(KEY_ARN), "{part}");
        assert!(store
            .client()
            .get_resource_policy()
            .secret_id(store.part_id("acme", part))
            .send()
            .await
            .unwrap()
            .resource_policy()
            .is_some());
    }
    let got = store.get("acme").await.unwrap();
    assert_eq!(api_key(&got), "api-key-old");
}
