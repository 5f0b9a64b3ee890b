//! Outbound requests under the stack's policy: a redirect is never followed (a 307
//! would re-send the HR data to wherever it points), a deployed stack refuses plain
//! HTTP and private addresses when a target is configured and again when one is
//! delivered to, and nothing is sent to a refused URL.

use crate::common;

use std::sync::{Arc, Mutex};

use axum::response::IntoResponse;
use common::{app_target, harness};
use domain::{DirectoryUser, EmployeeId, TargetFilter, TargetId, TargetKind, UserState};
use ports::{Store, TargetSecrets, UserWrite};
use secrecy::SecretString;
use sync_engine::deliver::dispatch::{dispatch, TargetOutcome};
use sync_engine::operate::{self, TargetSpec};
use sync_engine::outbound_http::Policy;
use sync_engine::EngineError;

/// A server that answers every request with `status` (and a Location to `location`),
/// counting the requests it got.
async fn answering(status: u16, location: Option<String>) -> (String, Arc<Mutex<usize>>) {
    let hits = Arc::new(Mutex::new(0usize));
    let h = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let h = h.clone();
        let location = location.clone();
        async move {
            *h.lock().unwrap() += 1;
            let mut resp = axum::http::StatusCode::from_u16(status)
                .unwrap()
                .into_response();
            if let Some(l) = location {
                resp.headers_mut().insert("location", l.parse().unwrap());
            }
            resp
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

async fn store_user(h: &common::Harness) -> domain::ChangeEvent {
    let mut u = DirectoryUser::new(
        h.dir.clone(),
        EmployeeId::parse("7").unwrap(),
        UserState::Active,
    );
    u.first_name = Some("Ada".into());
    u.version = 1;
    u.refresh_fingerprint();
    let event = domain::ChangeEvent::for_user_write(None, &u, common::now());
    h.store
        .write_user(&UserWrite {
            user: u,
            expected_version: None,
            events: vec![event.clone()],
        })
        .await
        .unwrap();
    event
}

#[tokio::test]
async fn a_target_answering_a_redirect_is_not_followed_and_fails_for_good() {
    let (elsewhere, elsewhere_hits) = answering(204, None).await;
    let (url, hits) = answering(307, Some(elsewhere)).await;
    let h = harness("k", None, vec![app_target("app", &url)]).await;
    let event = store_user(&h).await;
    let report = dispatch(&h.engine, &event).await.unwrap();
    match &report.targets[0].1 {
        TargetOutcome::Failed { reason, retryable } => {
            assert!(!retryable, "a redirect is not retried");
            assert!(reason.contains("redirect"), "{reason}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(*hits.lock().unwrap(), 1);
    assert_eq!(
        *elsewhere_hits.lock().unwrap(),
        0,
        "the body never reached the redirect's host"
    );
}

#[tokio::test]
async fn a_deployed_stack_refuses_plain_http_and_private_targets_when_they_are_added() {
    let h = harness("k", None, vec![]).await;
    let engine = h.engine.clone().with_outbound(Policy::deployed(true));
    for url in [
        "http://api.example.com/hook",
        "http://127.0.0.1:8080/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.8/hook",
    ] {
        let spec = TargetSpec {
            target: app_target("app", url),
            secrets: Some(TargetSecrets {
                signing_secrets: vec![SecretString::from(common::WHSEC)],
                ..Default::default()
            }),
        };
        let err = operate::add_target(&engine, &h.dir, spec, "test")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, EngineError::InvalidInput { what, .. } if what == "target url"),
            "{url}: {err}"
        );
    }
    let scim = TargetSpec {
        target: domain::Target {
            id: TargetId::parse("idp").unwrap(),
            kind: TargetKind::Scim {
                base_url: "http://scim.example.com/v2".into(),
                scim: Default::default(),
            },
            filter: TargetFilter::default(),
            enabled: true,
        },
        secrets: None,
    };
    assert!(operate::add_target(&engine, &h.dir, scim, "test")
        .await
        .is_err());
    // The local stack's policy takes loopback HTTP (its receivers and simulator).
    let spec = TargetSpec {
        target: app_target("app", "http://127.0.0.1:8080/hook"),
        secrets: Some(TargetSecrets {
            signing_secrets: vec![SecretString::from(common::WHSEC)],
            ..Default::default()
        }),
    };
    operate::add_target(&h.engine, &h.dir, spec, "test")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stored_plain_http_target_gets_nothing_from_a_deployed_stack() {
    let (url, hits) = answering(204, None).await;
    let mut h = harness("k", None, vec![app_target("app", &url)]).await;
    h.engine = h.engine.clone().with_outbound(Policy::deployed(false));
    let event = store_user(&h).await;
    let report = dispatch(&h.engine, &event).await.unwrap();
    match &report.targets[0].1 {
        TargetOutcome::Failed { reason, retryable } => {
            assert!(!retryable);
            assert!(reason.contains("https"), "{reason}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(*hits.lock().unwrap(), 0, "nothing was sent");
    let d = h.store.get_directory(&h.dir).await.unwrap().unwrap();
    assert_eq!(d.targets.len(), 1);
}
