//! Setup links over the embedded store with a fixed clock: the token is shown once and
//! stored only as a hash, a session needs a live link, revoking ends every session,
//! wrong secrets count against the attempt limit, and creating and revoking are audited.

use crate::common::harness;

use domain::DirectoryId;
use ports::{AuditAction, SetupLinkState};
use secrecy::ExposeSecret;
use sync_engine::operate::setup_links::{
    count_attempt, open_session, session_link, ATTEMPTS_PER_MINUTE,
};
use sync_engine::operate::{
    create_setup_link, list_setup_links, revoke_setup_link, NewSetupLink, SetupLinkProblem,
};
use sync_engine::EngineError;

const OPERATOR: &str = "arn:aws:iam::123456789012:user/ops";

fn problem(e: EngineError) -> SetupLinkProblem {
    match e {
        EngineError::SetupLink(p) => p,
        other => panic!("not a setup link problem: {other}"),
    }
}

#[tokio::test]
async fn a_link_opens_sessions_until_it_expires_and_its_token_is_stored_only_as_a_hash() {
    let h = harness("k", None, vec![]).await;
    let dir = DirectoryId::parse("newco").unwrap();
    let made = create_setup_link(&h.engine, &dir, NewSetupLink::default(), OPERATOR)
        .await
        .unwrap();
    let token = made.token.expose_secret().to_string();
    assert!(token.starts_with(&format!("newco.{}.", made.link.id)));
    assert_eq!(
        made.link.expires_at - made.link.created_at,
        time::Duration::days(7)
    );

    let stored = h
        .engine
        .store
        .get_setup_link(&dir, &made.link.id)
        .await
        .unwrap()
        .unwrap();
    let secret = token.rsplit('.').next().unwrap();
    assert!(!serde_json::to_string(&stored).unwrap().contains(secret));

    let (link, session) = open_session(&h.engine, &token).await.unwrap();
    assert_eq!(link.sessions.len(), 1);
    let (again, _) = session_link(&h.engine, session.expose_secret())
        .await
        .unwrap();
    assert_eq!(again.id, made.link.id);

    h.clock.advance(time::Duration::days(7));
    assert_eq!(
        problem(open_session(&h.engine, &token).await.unwrap_err()),
        SetupLinkProblem::Expired
    );
    assert_eq!(
        problem(
            session_link(&h.engine, session.expose_secret())
                .await
                .unwrap_err()
        ),
        SetupLinkProblem::Expired
    );
    let listed = list_setup_links(&h.engine, &dir).await.unwrap();
    assert_eq!(listed[0].state, SetupLinkState::Expired);
}

#[tokio::test]
async fn revoking_a_link_ends_its_sessions_and_is_audited_once() {
    let h = harness("k", None, vec![]).await;
    let dir = DirectoryId::parse("newco").unwrap();
    let made = create_setup_link(
        &h.engine,
        &dir,
        NewSetupLink {
            expires_in_days: Some(2),
            ..NewSetupLink::default()
        },
        OPERATOR,
    )
    .await
    .unwrap();
    let (_, session) = open_session(&h.engine, made.token.expose_secret())
        .await
        .unwrap();
    let view = revoke_setup_link(&h.engine, &dir, &made.link.id, OPERATOR)
        .await
        .unwrap();
    assert_eq!(view.state, SetupLinkState::Revoked);
    revoke_setup_link(&h.engine, &dir, &made.link.id, OPERATOR)
        .await
        .unwrap();
    assert_eq!(
        problem(
            session_link(&h.engine, session.expose_secret())
                .await
                .unwrap_err()
        ),
        SetupLinkProblem::Revoked
    );
    assert_eq!(
        problem(
            open_session(&h.engine, made.token.expose_secret())
                .await
                .unwrap_err()
        ),
        SetupLinkProblem::Revoked
    );
    let audit = h.engine.store.list_audit(&dir, 10).await.unwrap();
    // The clock stands still here, so the two entries share their time: compared as
    // a set, each once.
    let mut events: Vec<&str> = audit
        .iter()
        .filter(|e| e.action == AuditAction::SetupLinkChange)
        .map(|e| e.details["event"].as_str().unwrap())
        .collect();
    events.sort_unstable();
    assert_eq!(events, vec!["created", "revoked"], "revoked once");
    assert!(!serde_json::to_string(&audit)
        .unwrap()
        .contains(made.token.expose_secret().rsplit('.').next().unwrap()));

    let err = revoke_setup_link(&h.engine, &dir, "sl0000000000000000", OPERATOR)
        .await
        .unwrap_err();
    assert!(matches!(problem(err), SetupLinkProblem::NotFound(_)));
    let err = create_setup_link(
        &h.engine,
        &dir,
        NewSetupLink {
            expires_in_days: Some(31),
            ..NewSetupLink::default()
        },
        OPERATOR,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, EngineError::InvalidInput { .. }), "{err}");
}

#[tokio::test]
async fn wrong_secrets_and_credential_checks_share_a_limit_of_five_a_minute() {
    let h = harness("k", None, vec![]).await;
    let dir = DirectoryId::parse("newco").unwrap();
    let made = create_setup_link(&h.engine, &dir, NewSetupLink::default(), OPERATOR)
        .await
        .unwrap();
    let token = made.token.expose_secret().to_string();
    let (prefix, _) = token.rsplit_once('.').unwrap();
    let wrong = format!("{prefix}.{}", "A".repeat(43));
    for _ in 0..3 {
        assert_eq!(
            problem(open_session(&h.engine, &wrong).await.unwrap_err()),
            SetupLinkProblem::Invalid
        );
    }
    let (link, _) = open_session(&h.engine, &token).await.unwrap();
    for _ in 3..ATTEMPTS_PER_MINUTE {
        count_attempt(&h.engine, &link).await.unwrap();
    }
    assert!(matches!(
        problem(count_attempt(&h.engine, &link).await.unwrap_err()),
        SetupLinkProblem::RateLimited { .. }
    ));
    assert!(matches!(
        problem(open_session(&h.engine, &wrong).await.unwrap_err()),
        SetupLinkProblem::RateLimited { .. }
    ));
    h.clock.advance(time::Duration::seconds(61));
    count_attempt(&h.engine, &link).await.unwrap();
    // Garbage and unknown links read as invalid, never as "not found".
    for token in ["", "newco", "other.sl0000000000000000.x", "newco.sl..x"] {
        assert_eq!(
            problem(open_session(&h.engine, token).await.unwrap_err()),
            SetupLinkProblem::Invalid,
            "{token}"
        );
    }
}
