//! Setup links: an operator creates one for a directory and sends it to the customer's
//! IT admin, who connects their BambooHR company on the setup page (the portal) with
//! it. A link is single-purpose (one directory, the page's few actions), revocable,
//! and expires ([`DEFAULT_EXPIRY_DAYS`] by default).
//!
//! Its token (`<directory>.<link id>.<secret>`) is shown once, when it is created; the
//! store keeps only the SHA-256 of the secret, compared in constant time. The page
//! exchanges the token for a session ([`open_session`]): another random secret, kept
//! as a hash too, whose cookie the browser holds; each POST of the page carries the
//! session's CSRF token ([`csrf_token`]), derived from the session secret the server
//! never stores. Failed token exchanges and credential checks count against the
//! link's attempts ([`ATTEMPTS_PER_MINUTE`]). Creating and revoking a link are
//! audited; what the page changes is audited by the services it calls, under
//! [`link_actor`].

use domain::DirectoryId;
use ports::{AuditAction, SetupLink, SetupLinkState, SetupSession, StoreError};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use super::{audit, invalid};
use crate::deps::Engine;
use crate::error::EngineError;

/// Days a link works when the operator names no expiry.
pub const DEFAULT_EXPIRY_DAYS: u32 = 7;
/// The longest expiry an operator may give.
pub const MAX_EXPIRY_DAYS: u32 = 30;
/// Validation attempts (failed token exchanges, credential checks) a link allows per
/// minute.
pub const ATTEMPTS_PER_MINUTE: usize = 5;
/// How long a page session lasts (never past the link's expiry).
pub const SESSION_HOURS: i64 = 8;
/// Sessions kept per link; the oldest go first.
const MAX_SESSIONS: usize = 20;

pub use crate::error::SetupLinkProblem;

/// A setup link as operators see it: never its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupLinkView {
    /// The link's id.
    pub id: String,
    /// The directory it sets up.
    pub directory_id: DirectoryId,
    /// Active, expired or revoked, now.
    pub state: SetupLinkState,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who created it.
    pub created_by: String,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// When the page last used it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

impl SetupLinkView {
    /// The view of `link` at `now`.
    pub fn of(link: &SetupLink, now: OffsetDateTime) -> Self {
        Self {
            id: link.id.clone(),
            directory_id: link.directory_id.clone(),
            state: link.state(now),
            created_at: link.created_at,
            created_by: link.created_by.clone(),
            expires_at: link.expires_at,
            revoked_at: link.revoked_at,
            last_used_at: link.last_used_at,
        }
    }
}

/// What [`create_setup_link`] takes besides the directory.
#[derive(Debug, Clone, Default)]
pub struct NewSetupLink {
    /// Days until it expires (1 to [`MAX_EXPIRY_DAYS`]; default [`DEFAULT_EXPIRY_DAYS`]).
    pub expires_in_days: Option<u32>,
    /// The BambooHR base URL the page connects to instead of
    /// `https://<subdomain>.bamboohr.com` (a simulator or proxy).
    pub bamboohr_base_url: Option<String>,
}

/// A link just created, with its token: the only time the token exists outside the
/// customer's browser.
#[derive(Debug)]
pub struct CreatedSetupLink {
    /// The link.
    pub link: SetupLinkView,
    /// Its token, to put in the link's URL fragment.
    pub token: SecretString,
}

/// The actor the page's changes are audited under.
pub fn link_actor(link: &SetupLink) -> String {
    format!("setup-link:{}", link.id)
}

fn random_secret() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The CSRF token of a session: bound to the session secret, which only the browser's
/// HttpOnly cookie holds, so a page of another site can neither read nor make it.
pub fn csrf_token(session: &SecretString) -> String {
    hex::encode(Sha256::digest(
        format!("csrf\0{}", session.expose_secret()).as_bytes(),
    ))
}

/// Whether `given` is the CSRF token of `session` (constant time).
pub fn csrf_matches(session: &SecretString, given: &str) -> bool {
    same(&csrf_token(session), given)
}

/// Minutes an OAuth `state` of the page stays good: the time to consent at BambooHR.
pub const OAUTH_STATE_MINUTES: i64 = 10;

fn state_mac(session: &SecretString, issued: i64, subdomain: &str) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(session.expose_secret().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("oauth-state\0{issued}\0{subdomain}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The OAuth `state` for connecting `subdomain` from `session`'s page:
/// `<issued unix seconds>.<subdomain>.<HMAC keyed by the session secret>`. Bound to
/// the session (whose secret only the browser's HttpOnly cookie holds), so a callback
/// another site started, or one carrying another browser's code, is refused (CSRF,
/// RFC 6749 §10.12); it names the subdomain so the callback needs nothing stored.
pub fn oauth_state(session: &SecretString, subdomain: &str, now: OffsetDateTime) -> String {
    let issued = now.unix_timestamp();
    format!(
        "{issued}.{subdomain}.{}",
        state_mac(session, issued, subdomain)
    )
}

/// Why an OAuth `state` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthStateProblem {
    /// Not one this session made.
    Invalid,
    /// Older than [`OAUTH_STATE_MINUTES`].
    Expired,
}

/// The subdomain `state` was made for, when `session` made it and it is fresh.
pub fn oauth_state_subdomain(
    session: &SecretString,
    state: &str,
    now: OffsetDateTime,
) -> Result<String, OAuthStateProblem> {
    let mut parts = state.splitn(3, '.');
    let (Some(issued), Some(subdomain), Some(mac)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(OAuthStateProblem::Invalid);
    };
    let issued: i64 = issued.parse().map_err(|_| OAuthStateProblem::Invalid)?;
    if !same(&state_mac(session, issued, subdomain), mac) {
        return Err(OAuthStateProblem::Invalid);
    }
    let age = now.unix_timestamp() - issued;
    if !(0..=OAUTH_STATE_MINUTES * 60).contains(&age) {
        return Err(OAuthStateProblem::Expired);
    }
    Ok(subdomain.to_string())
}

/// `<directory>.<link id>.<secret>`, split; None when it has another shape.
fn split(token: &str) -> Option<(DirectoryId, String, String)> {
    let mut parts = token.trim().splitn(3, '.');
    let dir = DirectoryId::parse(parts.next()?).ok()?;
    let id = parts.next()?;
    let secret = parts.next()?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    (plain(id) && plain(secret)).then(|| (dir, id.to_string(), secret.to_string()))
}

/// Read-modify-write of a link, retried on conflicting writers; `change` returns
/// false to leave it as it is.
async fn modify_link<T>(
    engine: &Engine,
    dir: &DirectoryId,
    id: &str,
    mut change: impl FnMut(&mut SetupLink) -> Result<(bool, T), EngineError>,
) -> Result<(SetupLink, T), EngineError> {
    for attempt in 1..=4 {
        let mut link = engine
            .store
            .get_setup_link(dir, id)
            .await?
            .ok_or_else(|| SetupLinkProblem::NotFound(id.to_string()))?;
        let expected = link.version;
        let (write, out) = change(&mut link)?;
        if !write {
            return Ok((link, out));
        }
        link.version = expected + 1;
        match engine.store.put_setup_link(&link, Some(expected)).await {
            Ok(()) => return Ok((link, out)),
            Err(StoreError::Conflict { .. }) if attempt < 4 => continue,
            Err(StoreError::Conflict { what, .. }) => {
                return Err(EngineError::TooManyConflicts { what, attempts: 4 })
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns")
}

/// Creates a setup link for `dir` (which need not be connected yet), audited.
pub async fn create_setup_link(
    engine: &Engine,
    dir: &DirectoryId,
    new: NewSetupLink,
    actor: &str,
) -> Result<CreatedSetupLink, EngineError> {
    if super::oauth_client::is_reserved(dir) {
        return Err(invalid(
            "directory id",
            "_stack is reserved for the stack's own audit entries",
        ));
    }
    let days = new.expires_in_days.unwrap_or(DEFAULT_EXPIRY_DAYS);
    if !(1..=MAX_EXPIRY_DAYS).contains(&days) {
        return Err(invalid(
            "expiresInDays",
            format!("a setup link expires in 1 to {MAX_EXPIRY_DAYS} days"),
        ));
    }
    if let Some(url) = &new.bamboohr_base_url {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(invalid(
                "bamboohrBaseUrl",
                "must start with https:// (or http:// on loopback)",
            ));
        }
    }
    let now = engine.clock.now();
    let mut id_bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut id_bytes);
    let id = format!("sl{}", hex::encode(id_bytes));
    let secret = random_secret();
    let link = SetupLink {
        directory_id: dir.clone(),
        id: id.clone(),
        token_hash: hash(&secret),
        created_at: now,
        created_by: actor.to_string(),
        expires_at: now + Duration::days(i64::from(days)),
        revoked_at: None,
        revoked_by: None,
        bamboohr_base_url: new.bamboohr_base_url,
        sessions: Vec::new(),
        attempts: Vec::new(),
        last_used_at: None,
        linked_employees: None,
        version: 1,
    };
    engine.store.put_setup_link(&link, None).await?;
    let view = SetupLinkView::of(&link, now);
    audit(
        engine,
        dir,
        AuditAction::SetupLinkChange,
        actor,
        json!({"event": "created", "linkId": id, "expiresAt": view.expires_at
            .format(&time::format_description::well_known::Rfc3339).ok()}),
    )
    .await?;
    Ok(CreatedSetupLink {
        link: view,
        token: SecretString::from(format!("{dir}.{id}.{secret}")),
    })
}

/// Every link of `dir`, oldest first, without tokens.
pub async fn list_setup_links(
    engine: &Engine,
    dir: &DirectoryId,
) -> Result<Vec<SetupLinkView>, EngineError> {
    let now = engine.clock.now();
    let mut links = engine.store.list_setup_links(dir).await?;
    links.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(links.iter().map(|l| SetupLinkView::of(l, now)).collect())
}

/// Revokes a link: it stops working at once, sessions included. Revoking a revoked
/// link changes nothing and audits nothing.
pub async fn revoke_setup_link(
    engine: &Engine,
    dir: &DirectoryId,
    id: &str,
    actor: &str,
) -> Result<SetupLinkView, EngineError> {
    let now = engine.clock.now();
    let (link, revoked) = modify_link(engine, dir, id, |link| {
        if link.revoked_at.is_some() {
            return Ok((false, false));
        }
        link.revoked_at = Some(now);
        link.revoked_by = Some(actor.to_string());
        link.sessions.clear();
        Ok((true, true))
    })
    .await?;
    if revoked {
        audit(
            engine,
            dir,
            AuditAction::SetupLinkChange,
            actor,
            json!({"event": "revoked", "linkId": id}),
        )
        .await?;
    }
    Ok(SetupLinkView::of(&link, now))
}

/// Counts one attempt against the link's rate limit, refusing it when the last minute
/// already had [`ATTEMPTS_PER_MINUTE`].
fn count(link: &mut SetupLink, now: OffsetDateTime) -> Result<(), SetupLinkProblem> {
    link.attempts.retain(|t| now - *t < Duration::minutes(1));
    if link.attempts.len() >= ATTEMPTS_PER_MINUTE {
        let oldest = link.attempts.first().copied().unwrap_or(now);
        let wait = (Duration::minutes(1) - (now - oldest))
            .whole_seconds()
            .max(1);
        return Err(SetupLinkProblem::RateLimited {
            retry_after_seconds: u64::try_from(wait).unwrap_or(60),
        });
    }
    link.attempts.push(now);
    Ok(())
}

fn usable(link: &SetupLink, now: OffsetDateTime) -> Result<(), SetupLinkProblem> {
    match link.state(now) {
        SetupLinkState::Active => Ok(()),
        SetupLinkState::Expired => Err(SetupLinkProblem::Expired),
        SetupLinkState::Revoked => Err(SetupLinkProblem::Revoked),
    }
}

/// Exchanges a link's token for a page session: the link, and the session's cookie
/// value (`<directory>.<link id>.<session secret>`). A wrong secret counts as an
/// attempt; an expired or revoked link changes nothing.
pub async fn open_session(
    engine: &Engine,
    token: &str,
) -> Result<(SetupLink, SecretString), EngineError> {
    let (dir, id, secret) = split(token).ok_or(SetupLinkProblem::Invalid)?;
    let now = engine.clock.now();
    let session = random_secret();
    let session_hash = hash(&session);
    let result = modify_link(engine, &dir, &id, |link| {
        if !same(&hash(&secret), &link.token_hash) {
            // A wrong secret is an attempt: counted (and written) though it fails.
            return Ok(match count(link, now) {
                Ok(()) => (true, Err(SetupLinkProblem::Invalid)),
                Err(limited) => (false, Err(limited)),
            });
        }
        if let Err(e) = usable(link, now) {
            return Ok((false, Err(e)));
        }
        link.sessions.retain(|s| s.expires_at > now);
        if link.sessions.len() >= MAX_SESSIONS {
            link.sessions.remove(0);
        }
        link.sessions.push(SetupSession {
            secret_hash: session_hash.clone(),
            expires_at: (now + Duration::hours(SESSION_HOURS)).min(link.expires_at),
        });
        link.last_used_at = Some(now);
        Ok((true, Ok(())))
    })
    .await;
    match result {
        Ok((link, Ok(()))) => Ok((link, SecretString::from(format!("{dir}.{id}.{session}")))),
        Ok((_, Err(problem))) => Err(problem.into()),
        Err(EngineError::SetupLink(SetupLinkProblem::NotFound(_))) => {
            Err(SetupLinkProblem::Invalid.into())
        }
        Err(e) => Err(e),
    }
}

/// The link a session cookie belongs to, and the session's secret (for its CSRF
/// token). The link must still be active and the session live.
pub async fn session_link(
    engine: &Engine,
    cookie: &str,
) -> Result<(SetupLink, SecretString), EngineError> {
    let (dir, id, secret) = split(cookie).ok_or(SetupLinkProblem::Invalid)?;
    let link = engine
        .store
        .get_setup_link(&dir, &id)
        .await?
        .ok_or(SetupLinkProblem::Invalid)?;
    let now = engine.clock.now();
    usable(&link, now)?;
    let wanted = hash(&secret);
    let live = link
        .sessions
        .iter()
        .filter(|s| s.expires_at > now)
        .fold(false, |found, s| found | same(&s.secret_hash, &wanted));
    if !live {
        return Err(SetupLinkProblem::Invalid.into());
    }
    Ok((link, SecretString::from(secret)))
}

/// Counts a credential check against the link's rate limit (refused past
/// [`ATTEMPTS_PER_MINUTE`] a minute), before BambooHR is called.
pub async fn count_attempt(engine: &Engine, link: &SetupLink) -> Result<(), EngineError> {
    let now = engine.clock.now();
    let (_, out) = modify_link(engine, &link.directory_id, &link.id, |l| {
        usable(l, now)?;
        match count(l, now) {
            Ok(()) => Ok((true, Ok(()))),
            Err(e) => Ok((false, Err(e))),
        }
    })
    .await?;
    out.map_err(Into::into)
}

/// Records that the page linked the company, with the employee count BambooHR gave.
pub async fn record_linked(
    engine: &Engine,
    link: &SetupLink,
    employees: Option<u64>,
) -> Result<(), EngineError> {
    let now = engine.clock.now();
    modify_link(engine, &link.directory_id, &link.id, |l| {
        l.linked_employees = employees;
        l.last_used_at = Some(now);
        Ok((true, ()))
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_into_directory_link_and_secret_and_nothing_else() {
        let (d, id, s) = split("acme.sl0a.abc-_9").unwrap();
        assert_eq!(
            (d.as_str(), id.as_str(), s.as_str()),
            ("acme", "sl0a", "abc-_9")
        );
        for bad in [
            "",
            "acme",
            "acme.sl",
            "acme..x",
            "acme.sl.a.b",
            "ac me.sl.x",
            "acme.sl.x y",
        ] {
            assert!(split(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_csrf_token_is_bound_to_its_session() {
        let a = SecretString::from("one".to_string());
        let b = SecretString::from("two".to_string());
        assert!(csrf_matches(&a, &csrf_token(&a)));
        assert!(!csrf_matches(&b, &csrf_token(&a)));
        assert!(!csrf_matches(&a, ""));
    }

    #[test]
    fn an_oauth_state_names_its_subdomain_for_its_own_session_only_and_only_while_fresh() {
        let now = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        let a = SecretString::from("one".to_string());
        let b = SecretString::from("two".to_string());
        let state = oauth_state(&a, "acme", now);
        assert_eq!(oauth_state_subdomain(&a, &state, now).unwrap(), "acme");
        assert_eq!(
            oauth_state_subdomain(&b, &state, now),
            Err(OAuthStateProblem::Invalid),
            "another session's"
        );
        let forged = state.replacen("acme", "evil", 1);
        assert_eq!(
            oauth_state_subdomain(&a, &forged, now),
            Err(OAuthStateProblem::Invalid),
            "another subdomain"
        );
        for bad in ["", "x", "1.acme", "nan.acme.00"] {
            assert_eq!(
                oauth_state_subdomain(&a, bad, now),
                Err(OAuthStateProblem::Invalid)
            );
        }
        let later = now + Duration::minutes(OAUTH_STATE_MINUTES) + Duration::seconds(1);
        assert_eq!(
            oauth_state_subdomain(&a, &state, later),
            Err(OAuthStateProblem::Expired)
        );
    }

    #[test]
    fn a_sixth_attempt_within_a_minute_is_refused_until_the_first_is_a_minute_old() {
        let now = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        let mut link = SetupLink {
            directory_id: DirectoryId::parse("acme").unwrap(),
            id: "sl1".into(),
            token_hash: hash("x"),
            created_at: now,
            created_by: "ops".into(),
            expires_at: now + Duration::days(1),
            revoked_at: None,
            revoked_by: None,
            bamboohr_base_url: None,
            sessions: Vec::new(),
            attempts: Vec::new(),
            last_used_at: None,
            linked_employees: None,
            version: 1,
        };
        for i in 0..5 {
            count(&mut link, now + Duration::seconds(i)).unwrap();
        }
        let err = count(&mut link, now + Duration::seconds(10)).unwrap_err();
        assert_eq!(
            err,
            SetupLinkProblem::RateLimited {
                retry_after_seconds: 50
            }
        );
        count(&mut link, now + Duration::seconds(60)).unwrap();
    }
}
