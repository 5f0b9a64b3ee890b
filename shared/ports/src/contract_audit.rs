//! Contract checks of [`crate::AuditStore`], run by [`crate::contract::run_all`].

use std::collections::BTreeMap;

use domain::DirectoryId;
use time::OffsetDateTime;

use crate::audit_store::{AuditAction, AuditEntry, EvidenceRow};
use crate::store::{Store, StoreError};

fn dir_id(tag: &str, n: &str) -> DirectoryId {
    DirectoryId::parse(format!("{tag}-{n}")).expect("contract ids are valid")
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000 + secs).expect("valid timestamp")
}

fn evidence(dir: &DirectoryId, secs: i64, headcount: u64, fingerprint: &str) -> EvidenceRow {
    EvidenceRow {
        directory_id: dir.clone(),
        captured_at: at(secs),
        run_id: format!("run-{secs}"),
        active_headcount: headcount,
        terminations_last_30_days: 1,
        new_hires_last_30_days: 2,
        target_share: BTreeMap::from([("app".to_string(), 0.5)]),
        onboarding: None,
        fingerprint: fingerprint.to_string(),
    }
}

/// Audit entries are append-only: a second write of an id conflicts and the first
/// entry stays as it was; listings are newest first, bounded, and per directory.
pub async fn audit_entries_are_append_only_and_listed_newest_first(store: &dyn Store, tag: &str) {
    let dir = dir_id(tag, "audit");
    let other = dir_id(tag, "audit-other");
    let first = AuditEntry::new(
        dir.clone(),
        at(0),
        1,
        AuditAction::Connect,
        "arn:aws:iam::1:user/alice",
        serde_json::json!({"subdomain": "acme"}),
    );
    store.append_audit(&first).await.unwrap();
    let mut forged = first.clone();
    forged.actor = "mallory".into();
    forged.action = AuditAction::Revoke;
    let err = store.append_audit(&forged).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { .. }),
        "overwriting an audit entry must conflict: {err}"
    );
    let second = AuditEntry::new(
        dir.clone(),
        at(10),
        2,
        AuditAction::Pause,
        "bob",
        serde_json::Value::Null,
    );
    store.append_audit(&second).await.unwrap();
    store
        .append_audit(&AuditEntry::new(
            other.clone(),
            at(5),
            3,
            AuditAction::Sync,
            "poller",
            serde_json::Value::Null,
        ))
        .await
        .unwrap();

    let listed = store.list_audit(&dir, 10).await.unwrap();
    assert_eq!(listed, vec![second.clone(), first.clone()]);
    assert_eq!(store.list_audit(&dir, 1).await.unwrap(), vec![second]);
    assert_eq!(store.list_audit(&other, 10).await.unwrap().len(), 1);
    assert!(store
        .list_audit(&dir_id(tag, "audit-none"), 10)
        .await
        .unwrap()
        .is_empty());
}

/// An evidence row whose fingerprint is already stored for the directory is not stored
/// again; another directory may hold the same fingerprint; rows list newest first.
pub async fn evidence_is_stored_once_per_fingerprint(store: &dyn Store, tag: &str) {
    let dir = dir_id(tag, "evidence");
    let other = dir_id(tag, "evidence-other");
    assert!(store
        .put_evidence(&evidence(&dir, 0, 10, "fp-a"))
        .await
        .unwrap());
    assert!(!store
        .put_evidence(&evidence(&dir, 60, 10, "fp-a"))
        .await
        .unwrap());
    assert!(store
        .put_evidence(&evidence(&dir, 120, 11, "fp-b"))
        .await
        .unwrap());
    assert!(store
        .put_evidence(&evidence(&other, 0, 10, "fp-a"))
        .await
        .unwrap());

    let rows = store.list_evidence(&dir, 10).await.unwrap();
    assert_eq!(
        rows,
        vec![
            evidence(&dir, 120, 11, "fp-b"),
            evidence(&dir, 0, 10, "fp-a")
        ]
    );
    assert_eq!(store.list_evidence(&dir, 1).await.unwrap().len(), 1);
    assert_eq!(store.list_evidence(&other, 10).await.unwrap().len(), 1);
}

/// Evidence rows are put-only: a put of a stored fingerprint changes nothing (not
/// the time, run or figures first stored), the onboarding figures round-trip in
/// either state, and a purge of the directory leaves every row.
pub async fn evidence_rows_are_never_replaced_and_outlive_a_purge(store: &dyn Store, tag: &str) {
    use crate::audit_store::OnboardingEvidence;
    let dir = dir_id(tag, "evidence-kept");
    let mut measured = evidence(&dir, 0, 10, "fp-m");
    measured.onboarding = Some(OnboardingEvidence::Measured {
        window_days: 30,
        hires: 4,
        completed_on_time: 3,
        in_progress: 1,
        rate: Some(0.75),
        required_trainings: 2,
    });
    let mut unavailable = evidence(&dir, 60, 10, "fp-n");
    unavailable.onboarding = Some(OnboardingEvidence::NotAvailable {
        window_days: 30,
        reason: "training records are not available for this key (HTTP 403)".into(),
    });
    assert!(store.put_evidence(&measured).await.unwrap());
    assert!(store.put_evidence(&unavailable).await.unwrap());
    let mut again = measured.clone();
    again.captured_at = at(600);
    again.run_id = "run-later".into();
    again.onboarding = None;
    assert!(!store.put_evidence(&again).await.unwrap());
    let rows = store.list_evidence(&dir, 10).await.unwrap();
    assert_eq!(rows, vec![unavailable.clone(), measured.clone()]);

    store.purge_directory(&dir).await.unwrap();
    assert_eq!(
        store.list_evidence(&dir, 10).await.unwrap(),
        vec![unavailable, measured],
        "evidence is not purged"
    );
}

/// Every check of the audit part.
pub async fn run_all(store: &dyn Store, tag: &str) {
    audit_entries_are_append_only_and_listed_newest_first(store, tag).await;
    evidence_is_stored_once_per_fingerprint(store, tag).await;
    evidence_rows_are_never_replaced_and_outlive_a_purge(store, tag).await;
}
