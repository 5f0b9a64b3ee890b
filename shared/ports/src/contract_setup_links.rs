//! Contract checks of [`crate::SetupLinkStore`], run by [`crate::contract::run_all`].

use domain::DirectoryId;
use time::OffsetDateTime;

use crate::setup_link_store::{SetupLink, SetupLinkState, SetupSession};
use crate::store::{Store, StoreError};

fn dir_id(tag: &str, n: &str) -> DirectoryId {
    DirectoryId::parse(format!("{tag}-{n}")).expect("contract ids are valid")
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000 + secs).expect("valid timestamp")
}

/// A setup link as the engine creates it, for contract checks and seeds.
pub fn link(dir: &DirectoryId, id: &str) -> SetupLink {
    SetupLink {
        directory_id: dir.clone(),
        id: id.to_string(),
        token_hash: "ab".repeat(32),
        created_at: at(0),
        created_by: "arn:aws:iam::1:user/alice".into(),
        expires_at: at(7 * 86_400),
        revoked_at: None,
        revoked_by: None,
        bamboohr_base_url: None,
        sessions: Vec::new(),
        attempts: Vec::new(),
        last_used_at: None,
        linked_employees: None,
        version: 1,
    }
}

/// Setup links are created once, changed only by a writer holding the stored version,
/// read back whole (sessions, attempts, revocation), and listed per directory in id
/// order.
pub async fn setup_links_are_written_conditionally_and_listed_per_directory(
    store: &dyn Store,
    tag: &str,
) {
    let dir = dir_id(tag, "setup");
    let other = dir_id(tag, "setup-other");
    assert!(store.get_setup_link(&dir, "sl2").await.unwrap().is_none());
    let second = link(&dir, "sl2");
    store.put_setup_link(&second, None).await.unwrap();
    let err = store.put_setup_link(&second, None).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { .. }),
        "a second create of a link must conflict: {err}"
    );
    let first = link(&dir, "sl1");
    store.put_setup_link(&first, None).await.unwrap();
    store
        .put_setup_link(&link(&other, "sl9"), None)
        .await
        .unwrap();

    let mut changed = second.clone();
    changed.version = 2;
    changed.sessions.push(SetupSession {
        secret_hash: "cd".repeat(32),
        expires_at: at(3_600),
    });
    changed.attempts = vec![at(10), at(20)];
    changed.revoked_at = Some(at(30));
    changed.revoked_by = Some("bob".into());
    changed.linked_employees = Some(25);
    store.put_setup_link(&changed, Some(1)).await.unwrap();
    let err = store.put_setup_link(&changed, Some(1)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { .. }),
        "a stale write of a link must conflict: {err}"
    );

    let got = store.get_setup_link(&dir, "sl2").await.unwrap().unwrap();
    assert_eq!(got, changed);
    assert_eq!(got.state(at(40)), SetupLinkState::Revoked);
    assert_eq!(
        store
            .get_setup_link(&dir, "sl1")
            .await
            .unwrap()
            .unwrap()
            .state(at(7 * 86_400)),
        SetupLinkState::Expired
    );
    let ids: Vec<String> = store
        .list_setup_links(&dir)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(ids, vec!["sl1".to_string(), "sl2".to_string()]);
    assert!(store.get_setup_link(&other, "sl1").await.unwrap().is_none());
    assert_eq!(store.list_setup_links(&other).await.unwrap().len(), 1);
}

/// Every check of the setup link part.
pub async fn run_all(store: &dyn Store, tag: &str) {
    setup_links_are_written_conditionally_and_listed_per_directory(store, tag).await;
}
