//! The webhook function needs only the webhook part of a directory's secrets: with the
//! BambooHR credential and the target credentials refused, as its IAM role and the
//! parts' resource policies refuse them, signed webhooks (and URL tokens) are accepted
//! and wrong signatures still get 401.

use std::sync::Arc;

use crate::common::*;

use lambda_http::http::StatusCode;
use ports::contract_secrets::OnlyParts;
use ports::{SecretPart, SecretStore};
use sync_engine::Engine;

/// The fixture, its engine reading secrets through `parts` only.
async fn with_only(parts: &[SecretPart]) -> Fixture {
    let mut f = fixture().await;
    let secrets: Arc<dyn SecretStore> = f.secrets.clone();
    let engine = Engine::new(
        f.store.clone(),
        Arc::new(OnlyParts::new(secrets, parts)),
        f.bus.clone(),
        f.clock.clone(),
    );
    f.deps = webhook::Deps::new(engine);
    f
}

#[tokio::test]
async fn signed_webhooks_are_accepted_with_only_the_webhook_part_readable() {
    let f = with_only(&[SecretPart::Webhook]).await;
    let resp = send(&f, Req::new("acme", ada("Ada")).signed(KEY)).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", json_body(&resp));
    assert!(f.user("acme", "42").await.is_some());

    let wrong = send(&f, Req::new("acme", ada("Eve")).signed(OTHER_KEY)).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn url_tokens_are_accepted_with_only_the_webhook_part_readable() {
    let f = with_only(&[SecretPart::Webhook]).await;
    let resp = send(
        &f,
        Req::new("tokenco", ada("Ada")).query("token", URL_TOKEN),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", json_body(&resp));
}

#[tokio::test]
async fn a_webhook_cannot_be_authenticated_without_the_webhook_part() {
    let f = with_only(&[SecretPart::Bamboohr, SecretPart::Targets]).await;
    let resp = send(&f, Req::new("acme", ada("Ada")).signed(KEY)).await;
    assert_ne!(resp.status(), StatusCode::OK);
    assert!(f.user("acme", "42").await.is_none());
}
