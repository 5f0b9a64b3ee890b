//! Each function's work needs only its part of a directory's secrets: with every other
//! part refused, as the function's IAM role and the parts' resource policies refuse
//! them, the dispatcher delivers (target credentials) and the poller syncs (the
//! BambooHR credential); with only the wrong part, each fails.

use std::sync::Arc;

use crate::common;

use bamboohr_simulator::{SimConfig, Simulator};
use common::{app_target, full_sync, harness, receiver};
use domain::{ChangeEvent, DirectoryUser, EmployeeId, RunStatus, UserState};
use ports::contract_secrets::OnlyParts;
use ports::{SecretPart, Store, UserWrite};
use sync_engine::deliver::dispatch::{dispatch, TargetOutcome};

fn only(h: &mut common::Harness, parts: &[SecretPart]) {
    h.engine.secrets = Arc::new(OnlyParts::new(h.engine.secrets.clone(), parts));
}

async fn a_user_created(h: &common::Harness) -> ChangeEvent {
    let mut u = DirectoryUser::new(
        h.dir.clone(),
        EmployeeId::parse("7").unwrap(),
        UserState::Active,
    );
    u.first_name = Some("Ada".into());
    u.version = 1;
    u.refresh_fingerprint();
    let event = ChangeEvent::for_user_write(None, &u, common::now());
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
async fn the_dispatcher_delivers_with_only_the_target_credentials_readable() {
    let app = receiver().await;
    let mut h = harness("k", None, vec![app_target("app", &app.url)]).await;
    only(&mut h, &[SecretPart::Targets]);
    let event = a_user_created(&h).await;
    let report = dispatch(&h.engine, &event).await.unwrap();
    assert!(
        matches!(report.targets[0].1, TargetOutcome::Delivered { .. }),
        "{:?}",
        report.targets
    );
    assert_eq!(
        app.got().len(),
        1,
        "signed with the target's signing secret"
    );
}

#[tokio::test]
async fn the_dispatcher_cannot_deliver_with_only_another_part_readable() {
    let app = receiver().await;
    let mut h = harness("k", None, vec![app_target("app", &app.url)]).await;
    only(&mut h, &[SecretPart::Bamboohr, SecretPart::Webhook]);
    let event = a_user_created(&h).await;
    assert!(dispatch(&h.engine, &event).await.is_err());
    assert!(app.got().is_empty());
}

#[tokio::test]
async fn the_poller_syncs_with_only_the_bamboohr_credential_readable() {
    let simulator = Simulator::generate(SimConfig {
        api_key: "k".into(),
        seed: 3,
        employees: 5,
        ..SimConfig::default()
    });
    let server = simulator.serve().await.unwrap();
    let mut h = harness("k", Some(server.base_url.clone()), vec![]).await;
    only(&mut h, &[SecretPart::Bamboohr]);
    let run = full_sync(&h.engine, &h.dir).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.counts.seen, 5);

    only(&mut h, &[SecretPart::Webhook, SecretPart::Targets]);
    // Refused: an error, or a run recorded as failed.
    if let Ok(run) = full_sync(&h.engine, &h.dir).await {
        assert_eq!(run.status, RunStatus::Failed, "{:?}", run.errors);
    }
}
