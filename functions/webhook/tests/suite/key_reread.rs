//! A warm instance's secret cache behind the webhook: a key registered after the cache
//! was filled is accepted at once (a failed signature re-reads the directory's keys
//! past the cache), and a flood of bad signatures re-reads at most once a minute per
//! directory, every refusal the same uniform 401.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use lambda_http::http::StatusCode;
use ports::{CachingSecretStore, DirectorySecrets, SecretPart, SecretStore, SecretsError};
use secrecy::SecretString;
use sync_engine::Engine;

/// Counts the reads that reach the secret store behind the cache (Secrets Manager on
/// a deployed stack).
struct CountingReads {
    inner: Arc<embedded_adapters::FileSecrets>,
    reads: Arc<AtomicUsize>,
}

#[async_trait]
impl SecretStore for CountingReads {
    async fn get_parts(
        &self,
        name: &str,
        parts: &[SecretPart],
    ) -> Result<DirectorySecrets, SecretsError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get_parts(name, parts).await
    }
    async fn put_parts(
        &self,
        name: &str,
        parts: &[SecretPart],
        secrets: &DirectorySecrets,
    ) -> Result<(), SecretsError> {
        self.inner.put_parts(name, parts, secrets).await
    }
    async fn delete(&self, name: &str) -> Result<(), SecretsError> {
        self.inner.delete(name).await
    }
}

/// The fixture's directories, behind a five-minute cache as the deployed webhook
/// function reads them, with a counter of the reads that pass the cache.
async fn cached() -> (Fixture, webhook::Deps, Arc<AtomicUsize>) {
    let f = fixture().await;
    let reads = Arc::new(AtomicUsize::new(0));
    let cache = CachingSecretStore::new(
        CountingReads {
            inner: f.secrets.clone(),
            reads: reads.clone(),
        },
        Duration::from_secs(300),
    );
    let engine = Engine::new(
        f.store.clone(),
        Arc::new(cache),
        f.bus.clone(),
        f.clock.clone(),
    );
    (f, webhook::Deps::new(engine), reads)
}

async fn send_with(deps: &webhook::Deps, req: Req) -> lambda_http::Response<lambda_http::Body> {
    webhook::handler(deps, req.build()).await.unwrap()
}

const NEW_KEY: &str = "a-key-registered-a-moment-ago";

#[tokio::test]
async fn a_key_registered_after_the_cache_was_filled_is_accepted_at_once() {
    let (f, deps, reads) = cached().await;
    let first = send_with(&deps, Req::new("acme", ada("Ada")).signed(KEY)).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(reads.load(Ordering::SeqCst), 1, "the cache is filled");

    // Another instance (the admin API) registers a second key in the secret store.
    let mut keys = f.secrets.get("acme").await.unwrap();
    keys.webhook_keys.push(SecretString::from(NEW_KEY));
    f.secrets.put("acme", &keys).await.unwrap();

    let signed_new = send_with(&deps, Req::new("acme", ada("Augusta")).signed(NEW_KEY)).await;
    assert_eq!(
        signed_new.status(),
        StatusCode::OK,
        "{}",
        json_body(&signed_new)
    );
    assert_eq!(
        reads.load(Ordering::SeqCst),
        2,
        "one re-read past the cache"
    );
    // The re-read refreshed the cache: the next delivery reads nothing.
    let again = send_with(&deps, Req::new("acme", ada("Ada A.")).signed(NEW_KEY)).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(reads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_flood_of_bad_signatures_re_reads_the_keys_at_most_once_a_minute() {
    let (f, deps, reads) = cached().await;
    for i in 0..20 {
        let resp = send_with(
            &deps,
            Req::new("acme", ada(&format!("Forged {i}"))).signed("not-the-key"),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(json_body(&resp)["error"]["code"], "unauthorized");
        assert_eq!(
            json_body(&resp)["error"]["message"],
            webhook::UNAUTHORIZED_MESSAGE
        );
    }
    assert_eq!(
        reads.load(Ordering::SeqCst),
        2,
        "the first read and one re-read"
    );
    // Within the minute a new key is not re-read for: still the uniform 401.
    let mut keys = f.secrets.get("acme").await.unwrap();
    keys.webhook_keys.push(SecretString::from(NEW_KEY));
    f.secrets.put("acme", &keys).await.unwrap();
    let early = send_with(&deps, Req::new("acme", ada("Early")).signed(NEW_KEY)).await;
    assert_eq!(early.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(reads.load(Ordering::SeqCst), 2);

    // A minute later the next failure may re-read again, and the new key is found.
    f.clock.advance(time::Duration::seconds(61));
    let later = send_with(
        &deps,
        Req::new("acme", ada("Later")).signed_at(NEW_KEY, &(NOW + 61).to_string()),
    )
    .await;
    assert_eq!(later.status(), StatusCode::OK, "{}", json_body(&later));
    assert_eq!(reads.load(Ordering::SeqCst), 3);

    // Another directory's re-reads are its own.
    let other = send_with(&deps, Req::new("globex", ada("X")).signed("nope")).await;
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        reads.load(Ordering::SeqCst),
        5,
        "globex's first read and re-read"
    );
}
