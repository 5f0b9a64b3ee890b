//! Retention of revoked directories: a revoke keeps the directory's users, groups,
//! runs, deliveries and evidence for the stack's retention window, so an operator can
//! still answer "what did we send, and when" after disconnecting a customer; the
//! poller's daily sweep then purges them ([`purge_sweep`]).
//!
//! The audit trail is not purged: audit entries are append-only and no function may
//! delete them (on AWS they live in a table whose roles hold no delete permission), so
//! the trail outlives the purge. The purge itself is audited (`purge`, with the counts
//! of what was removed) and logged.

use serde_json::json;
use time::{Duration, OffsetDateTime};
use tracing::{info, warn};

use domain::{Directory, DirectoryId, DirectoryState};
use ports::{AuditAction, PurgeReport, StoreError};

use crate::deps::Engine;
use crate::error::EngineError;
use crate::operate::audit;

/// Who the purge is audited as.
pub const PURGE_ACTOR: &str = "function:poller";

/// How long a revoked directory's history is kept, in whole days (1 to 3650).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevokedRetention {
    days: u32,
}

impl RevokedRetention {
    /// The stack's default (`RevokedRetentionDays`).
    pub const DEFAULT_DAYS: u32 = 90;
    /// Longest window accepted: ten years.
    pub const MAX_DAYS: u32 = 3650;

    /// A window of `days`. Zero is refused: a revoke must never purge at the next
    /// sweep by accident of configuration.
    pub fn days(days: u32) -> Result<Self, EngineError> {
        if (1..=Self::MAX_DAYS).contains(&days) {
            Ok(Self { days })
        } else {
            Err(EngineError::InvalidInput {
                what: "revoked retention days".into(),
                reason: format!("must be between 1 and {}, got {days}", Self::MAX_DAYS),
            })
        }
    }

    /// Parses the configured number of days (e.g. the `REVOKED_RETENTION_DAYS` value).
    pub fn parse(text: &str) -> Result<Self, EngineError> {
        let days = text
            .trim()
            .parse::<u32>()
            .map_err(|_| EngineError::InvalidInput {
                what: "revoked retention days".into(),
                reason: format!("{text:?} is not a whole number of days"),
            })?;
        Self::days(days)
    }

    /// The window in days.
    pub fn in_days(self) -> u32 {
        self.days
    }

    /// When the history of a directory revoked at `deleted_at` may be purged.
    pub fn purge_after(self, deleted_at: OffsetDateTime) -> OffsetDateTime {
        deleted_at + Duration::days(i64::from(self.days))
    }
}

impl Default for RevokedRetention {
    fn default() -> Self {
        Self {
            days: Self::DEFAULT_DAYS,
        }
    }
}

/// One directory the sweep purged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purged {
    /// The directory.
    pub directory_id: DirectoryId,
    /// What was removed.
    pub report: PurgeReport,
}

/// Purges every revoked directory whose `deleted_at` plus `retention` has passed at
/// the engine's clock; directories revoked more recently, and any not revoked, are
/// untouched. A revoked directory without a revocation date (revoked before dates were
/// kept) gets one now, so its window starts today. One directory failing does not stop
/// the others; the first error is returned after all were tried, so the invocation
/// fails and is retried.
pub async fn purge_sweep(
    engine: &Engine,
    retention: RevokedRetention,
) -> Result<Vec<Purged>, EngineError> {
    let now = engine.clock.now();
    let mut purged = Vec::new();
    let mut first_error = None;
    for d in engine.store.list_directories().await? {
        if d.state != DirectoryState::Revoked {
            continue;
        }
        let outcome = match d.deleted_at {
            None => stamp_revocation_date(engine, &d, now).await.map(|()| None),
            Some(at) if now < retention.purge_after(at) => Ok(None),
            Some(at) => purge_one(engine, &d.id, at, retention).await.map(Some),
        };
        match outcome {
            Ok(Some(p)) => purged.push(p),
            Ok(None) => {}
            Err(e) => {
                warn!(directory_id = %d.id, error = %e, "purging a revoked directory failed");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(purged),
    }
}

async fn stamp_revocation_date(
    engine: &Engine,
    d: &Directory,
    now: OffsetDateTime,
) -> Result<(), EngineError> {
    let mut next = d.clone();
    next.version += 1;
    next.deleted_at = Some(now);
    match engine.store.put_directory(&next, Some(d.version)).await {
        // Someone changed it meanwhile (e.g. reconnected it); the next sweep decides.
        Ok(()) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn purge_one(
    engine: &Engine,
    id: &DirectoryId,
    deleted_at: OffsetDateTime,
    retention: RevokedRetention,
) -> Result<Purged, EngineError> {
    let report = engine.store.purge_directory(id).await?;
    // The log line first: should the audit write fail, what was removed is still said.
    info!(
        directory_id = %id,
        items = report.total(),
        users = report.users,
        groups = report.groups,
        runs = report.runs,
        deliveries = report.deliveries,
        evidence = report.evidence,
        retention_days = retention.in_days(),
        "revoked directory purged"
    );
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    audit(
        engine,
        id,
        AuditAction::Purge,
        PURGE_ACTOR,
        json!({
            "deletedAt": deleted_at.format(rfc3339).ok(),
            "retentionDays": retention.in_days(),
            "purged": report,
            "items": report.total(),
        }),
    )
    .await?;
    Ok(Purged {
        directory_id: id.clone(),
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_is_whole_days_between_one_and_ten_years() {
        assert_eq!(RevokedRetention::parse(" 30 ").unwrap().in_days(), 30);
        assert_eq!(RevokedRetention::default().in_days(), 90);
        for bad in ["0", "-1", "3651", "ninety", "1.5", ""] {
            assert!(RevokedRetention::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_purge_is_due_exactly_one_window_after_the_revoke() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let r = RevokedRetention::days(2).unwrap();
        assert_eq!(r.purge_after(at), at + Duration::hours(48));
    }
}
