//! Contract checks of [`SecretStore`]: parts are stored apart and read apart, a write
//! of one part leaves the others alone, deletion removes every part, and a pre-split
//! secret (one secret per directory, as stacks deployed before the split hold) is read
//! until the control plane's first write splits it. Secrets Manager (on moto) and the
//! local file store both pass them. Names derive from `tag`, so checks can share a store.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use crate::secrets::{key_id, DirectorySecrets, SecretPart, SecretStore, SecretsError};
use crate::TargetSecrets;

/// What a check needs of an adapter beyond the port: planting and finding a pre-split
/// secret (the directory's whole secret under its own name), which only old stacks hold
/// and the port never writes.
#[async_trait]
pub trait PreSplitSecrets: Sync {
    /// Stores `whole` as the pre-split secret `name`, as an old stack wrote it.
    async fn plant(&self, name: &str, whole: &DirectorySecrets);
    /// Whether the pre-split secret `name` still exists (and is not scheduled for
    /// deletion).
    async fn exists(&self, name: &str) -> bool;
}

fn secret(v: &str) -> SecretString {
    SecretString::from(v.to_string())
}

fn exposed(s: &Option<SecretString>) -> Option<String> {
    s.as_ref().map(|v| v.expose_secret().to_string())
}

/// A directory's secrets with every part filled in, values derived from `mark`.
pub fn sample(mark: &str) -> DirectorySecrets {
    let webhook_key = secret(&format!("webhook-key-{mark}-0123456789"));
    let signing = secret(&format!("whsec_{mark}"));
    let mut s = DirectorySecrets {
        bamboohr_api_key: Some(secret(&format!("api-key-{mark}"))),
        webhook_keys: vec![webhook_key.clone()],
        webhook_url_token: Some(secret(&format!("url-token-{mark}"))),
        ..Default::default()
    };
    s.targets.insert(
        "app".into(),
        TargetSecrets {
            signing_secrets: vec![signing.clone()],
            bearer_token: Some(secret(&format!("bearer-{mark}"))),
            ..Default::default()
        },
    );
    s.key_added_at.insert(key_id(&webhook_key), 1_000);
    s.key_added_at.insert(key_id(&signing), 2_000);
    s
}

fn same(a: &DirectorySecrets, b: &DirectorySecrets) -> bool {
    a.to_json().expose_secret() == b.to_json().expose_secret()
}

fn assert_same(got: &DirectorySecrets, want: &DirectorySecrets, what: &str) {
    // Compared through the stored form; only the field names are printed on failure.
    assert!(
        same(got, want),
        "{what}: the secrets read differ from those written"
    );
}

/// Every part round-trips, and a read of some parts sees only their fields.
pub async fn parts_round_trip_and_a_read_sees_only_the_parts_it_asks_for(
    store: &dyn SecretStore,
    tag: &str,
) {
    let name = format!("{tag}-parts");
    let all = sample("a");
    store.put(&name, &all).await.unwrap();
    assert_same(&store.get(&name).await.unwrap(), &all, "every part");
    for part in SecretPart::ALL {
        let got = store.get_parts(&name, &[part]).await.unwrap();
        assert_same(&got, &all.only(&[part]), part.as_str());
    }
    let two = [SecretPart::Webhook, SecretPart::Targets];
    assert_same(
        &store.get_parts(&name, &two).await.unwrap(),
        &all.only(&two),
        "webhook and targets",
    );
}

/// Writing one part replaces it and leaves the other parts as they were.
pub async fn writing_a_part_leaves_the_other_parts_as_they_were(
    store: &dyn SecretStore,
    tag: &str,
) {
    let name = format!("{tag}-one-part");
    let first = sample("first");
    store.put(&name, &first).await.unwrap();
    let second = sample("second");
    store
        .put_parts(&name, &[SecretPart::Targets], &second)
        .await
        .unwrap();
    let got = store.get(&name).await.unwrap();
    assert_eq!(
        exposed(&got.bamboohr_api_key),
        exposed(&first.bamboohr_api_key)
    );
    assert_eq!(
        exposed(&got.webhook_url_token),
        exposed(&first.webhook_url_token)
    );
    assert_same(
        &got.only(&[SecretPart::Targets]),
        &second.only(&[SecretPart::Targets]),
        "the targets part",
    );
    assert_same(
        &got.only(&[SecretPart::Webhook]),
        &first.only(&[SecretPart::Webhook]),
        "the webhook part",
    );
}

/// A secret never written is not found; one part written makes the others read as
/// empty; deleting removes every part and is idempotent.
pub async fn missing_parts_read_empty_and_deleting_removes_every_part(
    store: &dyn SecretStore,
    tag: &str,
) {
    let name = format!("{tag}-missing");
    assert!(matches!(
        store.get(&name).await,
        Err(SecretsError::NotFound { .. })
    ));
    store.delete(&name).await.unwrap();

    let all = sample("m");
    store
        .put_parts(&name, &[SecretPart::Webhook], &all)
        .await
        .unwrap();
    assert!(matches!(
        store.get_parts(&name, &[SecretPart::Bamboohr]).await,
        Err(SecretsError::NotFound { .. })
    ));
    let got = store.get(&name).await.unwrap();
    assert_same(&got, &all.only(&[SecretPart::Webhook]), "one part written");

    store.put(&name, &all).await.unwrap();
    store.delete(&name).await.unwrap();
    for part in SecretPart::ALL {
        assert!(
            matches!(
                store.get_parts(&name, &[part]).await,
                Err(SecretsError::NotFound { .. })
            ),
            "{part} must be gone"
        );
    }
    store.delete(&name).await.unwrap();
}

/// A pre-split secret is read for every part until the first write through the store,
/// which splits it: the written part is the new one, the others keep the pre-split
/// values, and the pre-split secret is gone. Deleting also removes a pre-split secret.
pub async fn pre_split_secrets_are_read_until_the_first_write_splits_them(
    store: &dyn SecretStore,
    old: &dyn PreSplitSecrets,
    tag: &str,
) {
    let name = format!("{tag}-pre-split");
    let whole = sample("old");
    old.plant(&name, &whole).await;
    assert_same(&store.get(&name).await.unwrap(), &whole, "pre-split read");
    for part in SecretPart::ALL {
        assert_same(
            &store.get_parts(&name, &[part]).await.unwrap(),
            &whole.only(&[part]),
            part.as_str(),
        );
    }

    let newer = sample("new");
    store
        .put_parts(&name, &[SecretPart::Targets], &newer)
        .await
        .unwrap();
    assert!(
        !old.exists(&name).await,
        "the first write splits the pre-split secret"
    );
    let got = store.get(&name).await.unwrap();
    assert_same(
        &got.only(&[SecretPart::Targets]),
        &newer.only(&[SecretPart::Targets]),
        "written part",
    );
    let kept = [SecretPart::Bamboohr, SecretPart::Webhook];
    assert_same(&got.only(&kept), &whole.only(&kept), "split parts");

    let gone = format!("{tag}-pre-split-deleted");
    old.plant(&gone, &whole).await;
    store.delete(&gone).await.unwrap();
    assert!(!old.exists(&gone).await);
    assert!(matches!(
        store.get(&gone).await,
        Err(SecretsError::NotFound { .. })
    ));
}

/// A fresh read sees what was last written, part by part, like a plain read.
pub async fn a_fresh_read_sees_the_latest_write(store: &dyn SecretStore, tag: &str) {
    let name = format!("{tag}-fresh");
    store.put(&name, &sample("first")).await.unwrap();
    let _ = store
        .get_parts(&name, &[SecretPart::Webhook])
        .await
        .unwrap();
    let second = sample("second");
    store
        .put_parts(&name, &[SecretPart::Webhook], &second)
        .await
        .unwrap();
    let got = store
        .get_parts_fresh(&name, &[SecretPart::Webhook])
        .await
        .unwrap();
    assert_same(
        &got,
        &second.only(&[SecretPart::Webhook]),
        "a fresh read of the webhook part",
    );
    assert!(got.bamboohr_api_key.is_none() && got.targets.is_empty());
    store.delete(&name).await.unwrap();
}

/// Every check that needs only the port, on one store.
pub async fn run_all(store: &dyn SecretStore, tag: &str) {
    a_fresh_read_sees_the_latest_write(store, tag).await;
    parts_round_trip_and_a_read_sees_only_the_parts_it_asks_for(store, tag).await;
    writing_a_part_leaves_the_other_parts_as_they_were(store, tag).await;
    missing_parts_read_empty_and_deleting_removes_every_part(store, tag).await;
}

/// A secret store that lets through only `parts`, as IAM does for a function's role:
/// reading or writing any other part fails as AccessDenied would. Engine and function
/// tests wrap their store in it to prove a function needs no other part.
pub struct OnlyParts {
    inner: std::sync::Arc<dyn SecretStore>,
    parts: Vec<SecretPart>,
}

impl OnlyParts {
    /// `inner`, restricted to `parts`.
    pub fn new(inner: std::sync::Arc<dyn SecretStore>, parts: &[SecretPart]) -> Self {
        Self {
            inner,
            parts: parts.to_vec(),
        }
    }

    fn check(&self, name: &str, parts: &[SecretPart]) -> Result<(), SecretsError> {
        match parts.iter().find(|p| !self.parts.contains(p)) {
            Some(p) => Err(SecretsError::Unavailable {
                reason: format!(
                    "AccessDeniedException: this role may not use the {p} part of {name}"
                ),
            }),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl SecretStore for OnlyParts {
    async fn get_parts(
        &self,
        name: &str,
        parts: &[SecretPart],
    ) -> Result<DirectorySecrets, SecretsError> {
        self.check(name, parts)?;
        self.inner.get_parts(name, parts).await
    }

    async fn put_parts(
        &self,
        name: &str,
        parts: &[SecretPart],
        secrets: &DirectorySecrets,
    ) -> Result<(), SecretsError> {
        self.check(name, parts)?;
        self.inner.put_parts(name, parts, secrets).await
    }

    async fn get_parts_fresh(
        &self,
        name: &str,
        parts: &[SecretPart],
    ) -> Result<DirectorySecrets, SecretsError> {
        self.check(name, parts)?;
        self.inner.get_parts_fresh(name, parts).await
    }

    async fn delete(&self, name: &str) -> Result<(), SecretsError> {
        Err(SecretsError::Unavailable {
            reason: format!("AccessDeniedException: this role may not delete {name}"),
        })
    }
}
