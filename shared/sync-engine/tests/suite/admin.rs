//! Operator services against the BambooHR simulator and the embedded adapters:
//! connect checks credentials for real, every service leaves an audit entry, and a
//! completed sync leaves one evidence row per distinct snapshot.

use crate::common;

use bamboohr_simulator::{Fault, FaultPlan, SimConfig, Simulator};
use common::{app_target, harness, receiver};
use domain::{DirectoryId, DirectoryState, SyncMode, SyncRequest, TargetId};
use embedded_adapters::InProcessScheduler;
use ports::{AuditAction, Scheduler, TargetSecrets};
use secrecy::SecretString;
use sync_engine::error::ConnectProblem;
use sync_engine::operate::run_sync;
use sync_engine::operate::{self, ConnectRequest, Credential, SettingsChange};
use sync_engine::reconcile::run::RunOptions;
use sync_engine::EngineError;

const OPERATOR: &str = "arn:aws:iam::123456789012:user/ops";

async fn simulator(cfg: SimConfig) -> (Simulator, String) {
    let sim = Simulator::generate(cfg);
    let server = sim.serve().await.unwrap();
    let url = server.base_url.clone();
    // The server lives as long as the test process.
    std::mem::forget(server);
    (sim, url)
}

fn request(id: &str, base_url: &str, key: &str) -> ConnectRequest {
    ConnectRequest {
        directory_id: DirectoryId::parse(id).unwrap(),
        subdomain: "globex".into(),
        base_url: Some(base_url.to_string()),
        credential: Credential::ApiKey(SecretString::from(key.to_string())),
        time_zone: Some("Europe/Paris".into()),
        register_webhook_at: None,
    }
}

fn actions(entries: &[ports::AuditEntry]) -> Vec<AuditAction> {
    entries.iter().rev().map(|e| e.action).collect()
}

#[tokio::test]
async fn connecting_with_a_good_key_saves_the_secret_the_directory_and_its_schedule_and_audits_it()
{
    let (_sim, url) = simulator(SimConfig {
        api_key: "good-key".into(),
        employees: 4,
        ..SimConfig::default()
    })
    .await;
    let h = harness("k", None, vec![]).await;
    let scheduler = InProcessScheduler::new();

    let out = operate::connect(
        &h.engine,
        &scheduler,
        request("globex", &url, "good-key"),
        OPERATOR,
    )
    .await
    .unwrap();
    assert!(!out.reauthenticated);
    assert_eq!(out.employees, 4);
    let id = DirectoryId::parse("globex").unwrap();
    let d = h.engine.store.get_directory(&id).await.unwrap().unwrap();
    assert_eq!(d.state, DirectoryState::Active);
    assert_eq!(d.connected_at, Some(common::now()));
    assert_eq!(d.time_zone, "Europe/Paris");
    let secret = h.engine.secrets.get(&d.secret_name).await.unwrap();
    assert!(secret.bamboohr_api_key.is_some());
    let schedule = scheduler
        .get_directory_schedule(&id)
        .await
        .unwrap()
        .unwrap();
    assert!(schedule.enabled);

    h.clock.advance(time::Duration::seconds(1));
    // Connecting again replaces the credential: a re-authentication.
    let again = operate::connect(
        &h.engine,
        &scheduler,
        request("globex", &url, "good-key"),
        OPERATOR,
    )
    .await
    .unwrap();
    assert!(again.reauthenticated);
    let audit = h.engine.store.list_audit(&id, 10).await.unwrap();
    assert_eq!(
        actions(&audit),
        vec![AuditAction::Connect, AuditAction::Reauthentication]
    );
    assert!(audit.iter().all(|e| e.actor == OPERATOR));
    let text = serde_json::to_string(&audit).unwrap();
    assert!(!text.contains("good-key"), "no secret in the audit log");
}

#[tokio::test]
async fn a_bad_key_a_missing_permission_and_an_unknown_subdomain_are_each_named_and_nothing_is_saved(
) {
    let (sim, url) = simulator(SimConfig {
        api_key: "good-key".into(),
        employees: 2,
        ..SimConfig::default()
    })
    .await;
    let (_restricted, restricted_url) = simulator(SimConfig {
        api_key: "good-key".into(),
        employees: 2,
        restricted_fields: vec!["email".into()],
        ..SimConfig::default()
    })
    .await;
    let h = harness("k", None, vec![]).await;
    let scheduler = InProcessScheduler::new();

    let bad = operate::connect(
        &h.engine,
        &scheduler,
        request("d1", &url, "wrong"),
        OPERATOR,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(bad, EngineError::Connect(ConnectProblem::BadApiKey { .. })),
        "{bad}"
    );
    assert!(bad.to_string().starts_with("bad API key"));

    let withheld = operate::connect(
        &h.engine,
        &scheduler,
        request("d2", &restricted_url, "good-key"),
        OPERATOR,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            withheld,
            EngineError::Connect(ConnectProblem::MissingPermission { .. })
        ),
        "{withheld}"
    );
    assert!(withheld.to_string().contains("email"));

    sim.inject(FaultPlan::next(Fault::Status {
        status: 403,
        retry_after: None,
    }));
    let forbidden = operate::connect(
        &h.engine,
        &scheduler,
        request("d3", &url, "good-key"),
        OPERATOR,
    )
    .await
    .unwrap_err();
    assert!(
        forbidden.to_string().starts_with("missing permission"),
        "{forbidden}"
    );

    let unknown = operate::connect(
        &h.engine,
        &scheduler,
        request("d4", &format!("{url}/not-a-company"), "good-key"),
        OPERATOR,
    )
    .await
    .unwrap_err();
    assert!(
        unknown.to_string().starts_with("unknown subdomain"),
        "{unknown}"
    );

    for (n, e) in [bad, withheld, forbidden, unknown].iter().enumerate() {
        assert!(!e.to_string().contains('\n'), "one line: {e}");
        assert!(!e.to_string().contains("good-key"));
        let id = DirectoryId::parse(format!("d{}", n + 1)).unwrap();
        assert!(h.engine.store.get_directory(&id).await.unwrap().is_none());
        assert!(scheduler
            .get_directory_schedule(&id)
            .await
            .unwrap()
            .is_none());
    }
}

#[tokio::test]
async fn settings_changes_are_validated_ask_for_a_full_sync_and_are_audited() {
    let h = harness("k", None, vec![]).await;
    let scheduler = InProcessScheduler::new();
    let bad_zone = operate::update_settings(
        &h.engine,
        &scheduler,
        &h.dir,
        &SettingsChange {
            time_zone: Some("Mars/Olympus".into()),
            ..SettingsChange::default()
        },
        OPERATOR,
    )
    .await
    .unwrap_err();
    assert!(bad_zone.to_string().contains("time zone"), "{bad_zone}");

    let d = operate::update_settings(
        &h.engine,
        &scheduler,
        &h.dir,
        &SettingsChange {
            incremental_every_minutes: Some(60),
            group_sources: Some(vec!["department".into()]),
            stale_after_minutes: Some(240),
            time_zone: Some("America/New_York".into()),
            ..SettingsChange::default()
        },
        OPERATOR,
    )
    .await
    .unwrap();
    assert_eq!(
        d.changed["incrementalEveryMinutes"].after,
        serde_json::json!(60),
        "the change is reported with its value after"
    );
    let d = d.directory;
    assert!(d.cursors.full_requested);
    assert_eq!(d.schedule.incremental_every_minutes, 60);
    assert_eq!(d.stale_after_minutes, Some(240));
    let s = scheduler
        .get_directory_schedule(&h.dir)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.every_minutes, 60);
    let audit = h.engine.store.list_audit(&h.dir, 10).await.unwrap();
    assert_eq!(actions(&audit), vec![AuditAction::SettingsChange]);
    assert_eq!(
        audit[0].details["changed"],
        serde_json::json!({
            "incrementalEveryMinutes": {"before": 30, "after": 60},
            "groupSources": {"before": [], "after": [{"field": "department"}]},
            "staleAfterMinutes": {"before": null, "after": 240},
            "timeZone": {"before": "UTC", "after": "America/New_York"},
        }),
        "each changed setting, before and after"
    );
}

#[tokio::test]
async fn the_daily_evidence_preset_syncs_daily_goes_stale_after_two_days_and_is_audited_by_name() {
    let h = harness("k", None, vec![]).await;
    let scheduler = InProcessScheduler::new();
    let updated = operate::update_settings(
        &h.engine,
        &scheduler,
        &h.dir,
        &SettingsChange {
            preset: Some(operate::SettingsPreset::DailyEvidence),
            ..SettingsChange::default()
        },
        OPERATOR,
    )
    .await
    .unwrap();
    let d = updated.directory;
    assert_eq!(d.schedule.incremental_every_minutes, 1440);
    assert_eq!(d.schedule.full_every_hours, 24);
    assert_eq!(d.stale_after_minutes, Some(2880));
    assert_eq!(d.stale_threshold_minutes(), 2 * 24 * 60);
    let s = scheduler
        .get_directory_schedule(&h.dir)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.every_minutes, 1440, "the schedule follows: once a day");
    let audit = h.engine.store.list_audit(&h.dir, 10).await.unwrap();
    assert_eq!(audit[0].action, AuditAction::SettingsChange);
    assert_eq!(audit[0].details["preset"], "daily_evidence");
    assert_eq!(
        audit[0].details["changed"]["staleAfterMinutes"],
        serde_json::json!({"before": null, "after": 2880})
    );
    assert_eq!(
        audit[0].details["changed"]["incrementalEveryMinutes"]["after"],
        1440
    );

    // A setting given beside the preset wins over it.
    let updated = operate::update_settings(
        &h.engine,
        &scheduler,
        &h.dir,
        &SettingsChange {
            preset: Some(operate::SettingsPreset::DailyEvidence),
            stale_after_minutes: Some(3 * 24 * 60),
            ..SettingsChange::default()
        },
        OPERATOR,
    )
    .await
    .unwrap();
    assert_eq!(updated.directory.stale_after_minutes, Some(4320));
    assert_eq!(updated.directory.schedule.incremental_every_minutes, 1440);
}

#[tokio::test]
async fn pause_resume_and_revoke_follow_the_schedule_and_revoke_deletes_the_secret_but_keeps_history(
) {
    let h = harness("k", None, vec![]).await;
    let scheduler = InProcessScheduler::new();
    let paused = operate::pause(&h.engine, &scheduler, &h.dir, OPERATOR)
        .await
        .unwrap();
    assert_eq!(paused.state, DirectoryState::Paused);
    assert!(
        !scheduler
            .get_directory_schedule(&h.dir)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    h.clock.advance(time::Duration::seconds(1));
    operate::resume(&h.engine, &scheduler, &h.dir, OPERATOR)
        .await
        .unwrap();
    assert!(
        scheduler
            .get_directory_schedule(&h.dir)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );

    h.clock.advance(time::Duration::seconds(1));
    let revoked = operate::revoke(&h.engine, &scheduler, &h.dir, OPERATOR)
        .await
        .unwrap();
    assert_eq!(revoked.state, DirectoryState::Revoked);
    assert!(scheduler
        .get_directory_schedule(&h.dir)
        .await
        .unwrap()
        .is_none());
    assert!(h.engine.secrets.get("acme").await.is_err());
    let audit = h.engine.store.list_audit(&h.dir, 10).await.unwrap();
    assert_eq!(
        actions(&audit),
        vec![AuditAction::Pause, AuditAction::Resume, AuditAction::Revoke]
    );
    // A revoked directory cannot be resumed, and its record stays.
    assert!(operate::resume(&h.engine, &scheduler, &h.dir, OPERATOR)
        .await
        .is_err());
    assert!(h
        .engine
        .store
        .get_directory(&h.dir)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn a_completed_sync_is_audited_and_leaves_one_evidence_row_per_distinct_snapshot() {
    let (_sim, url) = simulator(SimConfig {
        api_key: "k".into(),
        employees: 6,
        seed: 3,
        ..SimConfig::default()
    })
    .await;
    let r = receiver().await;
    let h = harness("k", Some(url), vec![app_target("app", &r.url)]).await;
    let full = SyncRequest {
        directory_id: h.dir.clone(),
        mode: SyncMode::Full,
    };
    run_sync(&h.engine, &full, &RunOptions::default())
        .await
        .unwrap();
    let rows = h.engine.store.list_evidence(&h.dir, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].active_headcount > 0);
    assert_eq!(
        rows[0].target_share.get("app"),
        Some(&0.0),
        "nothing dispatched yet"
    );

    // The same company again: the same snapshot, not stored twice.
    h.clock.advance(time::Duration::minutes(1));
    run_sync(&h.engine, &full, &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        h.engine
            .store
            .list_evidence(&h.dir, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let audit = h.engine.store.list_audit(&h.dir, 10).await.unwrap();
    assert_eq!(actions(&audit), vec![AuditAction::Sync, AuditAction::Sync]);
    assert_eq!(audit[0].actor, operate::POLLER_ACTOR);

    let status = operate::status(&h.engine, &h.dir, Some(0)).await.unwrap();
    assert!(!status.stale);
    assert!(!status.evidence_stale);
    assert_eq!(
        status.last_run.unwrap().status,
        domain::RunStatus::Completed
    );
    assert_eq!(status.users.get("active"), Some(&rows[0].active_headcount));
    assert_eq!(status.targets.len(), 1);
    assert!(!status.targets[0].failing);
}

#[tokio::test]
async fn targets_are_added_tested_with_a_signed_ping_and_removed_with_their_secrets() {
    let r = receiver().await;
    let h = harness("k", None, vec![]).await;
    let spec = operate::TargetSpec {
        target: app_target("app", &r.url),
        secrets: Some(TargetSecrets {
            signing_secrets: vec![SecretString::from(common::WHSEC)],
            ..TargetSecrets::default()
        }),
    };
    operate::add_target(&h.engine, &h.dir, spec.clone(), OPERATOR)
        .await
        .unwrap();
    assert!(operate::add_target(&h.engine, &h.dir, spec, OPERATOR)
        .await
        .is_err());

    let id = TargetId::parse("app").unwrap();
    let test = operate::test_target(&h.engine, &h.dir, &id).await.unwrap();
    assert!(test.ok, "{test:?}");
    assert_eq!(r.got().len(), 1);
    assert_eq!(r.got()[0].body["type"], "ping");

    r.respond_with(500);
    let failing = operate::test_target(&h.engine, &h.dir, &id).await.unwrap();
    assert_eq!((failing.ok, failing.status), (false, Some(500)));

    h.clock.advance(time::Duration::seconds(1));
    operate::remove_target(&h.engine, &h.dir, &id, OPERATOR)
        .await
        .unwrap();
    let secrets = h.engine.secrets.get("acme").await.unwrap();
    assert!(!secrets.targets.contains_key("app"));
    let audit = h.engine.store.list_audit(&h.dir, 10).await.unwrap();
    assert_eq!(
        actions(&audit),
        vec![AuditAction::TargetChange, AuditAction::TargetChange]
    );
}

#[tokio::test]
async fn a_failed_sync_is_audited_as_a_failure_and_leaves_no_evidence_and_old_evidence_goes_stale()
{
    let (sim, url) = simulator(SimConfig {
        api_key: "k".into(),
        employees: 3,
        ..SimConfig::default()
    })
    .await;
    let h = harness("k", Some(url), vec![]).await;
    let full = SyncRequest {
        directory_id: h.dir.clone(),
        mode: SyncMode::Full,
    };
    run_sync(&h.engine, &full, &RunOptions::default())
        .await
        .unwrap();
    let status = operate::status(&h.engine, &h.dir, None).await.unwrap();
    assert!(!status.evidence_stale);

    sim.inject(
        FaultPlan::next(Fault::Status {
            status: 401,
            retry_after: None,
        })
        .times(u64::MAX),
    );
    h.clock.advance(time::Duration::minutes(5));
    let failed = run_sync(&h.engine, &full, &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(failed.status, domain::RunStatus::Failed);
    let audit = h.engine.store.list_audit(&h.dir, 10).await.unwrap();
    assert_eq!(
        actions(&audit),
        vec![AuditAction::Sync, AuditAction::SyncFailure]
    );
    assert_eq!(
        h.engine
            .store
            .list_evidence(&h.dir, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // Past the stale threshold (twice the 30-minute schedule) without a successful
    // sync, the evidence is stale.
    h.clock.advance(time::Duration::minutes(61));
    let status = operate::status(&h.engine, &h.dir, None).await.unwrap();
    assert!(status.stale);
    assert!(status.evidence_stale);
}

#[tokio::test]
async fn connecting_can_register_a_bamboohr_webhook_whose_key_is_kept() {
    let (_sim, url) = simulator(SimConfig {
        api_key: "good-key".into(),
        employees: 2,
        ..SimConfig::default()
    })
    .await;
    let h = harness("k", None, vec![]).await;
    let scheduler = InProcessScheduler::new();
    let mut req = request("hooked", &url, "good-key");
    req.register_webhook_at = Some("https://hooks.example.com/webhooks/bamboohr/hooked".into());
    let out = operate::connect(&h.engine, &scheduler, req, OPERATOR)
        .await
        .unwrap();
    assert!(out.webhook_id.is_some());
    let secret = h.engine.secrets.get("hooked").await.unwrap();
    assert_eq!(
        secret.webhook_keys.len(),
        1,
        "BambooHR's private key is kept"
    );
    let audit = h
        .engine
        .store
        .list_audit(&DirectoryId::parse("hooked").unwrap(), 10)
        .await
        .unwrap();
    // The harness's clock stands still: entries are found by action, not position.
    let connect = audit
        .iter()
        .find(|e| e.action == ports::AuditAction::Connect)
        .expect("the connect is audited");
    assert_eq!(connect.details["webhookRequested"], true);
    assert!(
        audit
            .iter()
            .any(|e| e.action == ports::AuditAction::WebhookChange),
        "so is the webhook registration"
    );
}

#[tokio::test]
async fn an_incremental_run_that_changed_nobody_takes_no_new_snapshot_but_a_change_does() {
    let (sim, url) = simulator(SimConfig {
        api_key: "k".into(),
        employees: 4,
        seed: 9,
        ..SimConfig::default()
    })
    .await;
    let h = harness("k", Some(url), vec![]).await;
    let req = |mode| SyncRequest {
        directory_id: h.dir.clone(),
        mode,
    };
    run_sync(&h.engine, &req(SyncMode::Full), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        h.engine
            .store
            .list_evidence(&h.dir, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    h.clock.advance(time::Duration::minutes(30));
    let quiet = run_sync(
        &h.engine,
        &req(SyncMode::Incremental),
        &RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(quiet.status, domain::RunStatus::Completed);
    assert_eq!(
        h.engine
            .store
            .list_evidence(&h.dir, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // A termination today changes the figures: the next run records them.
    let id = sim.employees()[0].employee_id.clone();
    sim.terminate(&id, common::now().date());
    h.clock.advance(time::Duration::minutes(30));
    run_sync(&h.engine, &req(SyncMode::Full), &RunOptions::default())
        .await
        .unwrap();
    let rows = h.engine.store.list_evidence(&h.dir, 10).await.unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows[0].terminations_last_30_days,
        rows[1].terminations_last_30_days + 1
    );
    assert_eq!(rows[0].active_headcount + 1, rows[1].active_headcount);
}
