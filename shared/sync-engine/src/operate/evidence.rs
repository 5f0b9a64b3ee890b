//! Compliance evidence: the snapshot of a directory (active headcount, terminations
//! and new hires in the last 30 days, delivery shares, the onboarding completion rate
//! of [`super::onboarding`]) with a fingerprint, so an identical snapshot is not
//! stored twice, and when evidence counts as stale.

use std::collections::BTreeMap;

use domain::{Directory, UserState};
use ports::{DeliveryQuery, DeliveryStatus, EvidenceRow, UserFingerprint};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::deps::Engine;
use crate::error::EngineError;

/// Evidence is stale when its newest row is older than the directory's stale
/// threshold, or when there is none. An identical snapshot is not stored again, so a
/// successful sync since the row (which found the same figures) keeps it current.
pub fn evidence_is_stale(d: &Directory, newest: Option<&EvidenceRow>, now: OffsetDateTime) -> bool {
    let Some(row) = newest else {
        return true;
    };
    let confirmed = match d.last_success {
        Some(s) if s > row.captured_at => s,
        _ => row.captured_at,
    };
    now - confirmed > Duration::minutes(i64::from(d.stale_threshold_minutes()))
}

/// The evidence snapshot of a directory now (not stored). `projection` is the
/// directory's fingerprint projection when the caller already holds a current copy;
/// without it, it is read.
pub async fn evidence_snapshot(
    engine: &Engine,
    d: &Directory,
    run_id: &str,
    projection: Option<&[UserFingerprint]>,
) -> Result<EvidenceRow, EngineError> {
    let now = engine.clock.now();
    let today = crate::reconcile::lifecycle::local_today(d, now);
    let month_ago = today - Duration::days(30);
    // The compact projection carries state and the hire and termination dates: no
    // user item is read, so this costs at most what a full sync's comparison costs.
    let read;
    let users: &[UserFingerprint] = match projection {
        Some(p) => p,
        None => {
            read = engine.store.user_fingerprints(&d.id).await?;
            &read
        }
    };
    let within = |date: Option<time::Date>| date.is_some_and(|x| x > month_ago && x <= today);
    let active: Vec<String> = users
        .iter()
        .filter(|u| u.state == UserState::Active)
        .map(|u| domain::UserId::derive(&d.id, &u.employee_id).to_string())
        .collect();
    let terminations = users
        .iter()
        .filter(|u| matches!(u.state, UserState::Inactive | UserState::Deleted))
        .filter(|u| within(u.lifecycle.termination_date))
        .count() as u64;
    let hires = users
        .iter()
        .filter(|u| u.state != UserState::Deleted && within(u.lifecycle.hire_date))
        .count() as u64;
    let delivered = engine
        .store
        .list_deliveries(
            &d.id,
            &DeliveryQuery {
                status: Some(DeliveryStatus::Delivered),
                ..DeliveryQuery::default()
            },
        )
        .await?;
    let mut target_share = BTreeMap::new();
    for t in &d.targets {
        let got: std::collections::HashSet<&str> = delivered
            .iter()
            .filter(|r| r.target_id == t.id)
            .map(|r| r.object_id.as_str())
            .collect();
        let got = active.iter().filter(|u| got.contains(u.as_str())).count();
        let share = if active.is_empty() {
            0.0
        } else {
            // Rounded, so the fingerprint does not move with float noise.
            ((got as f64 / active.len() as f64) * 10_000.0).round() / 10_000.0
        };
        target_share.insert(t.id.to_string(), share);
    }
    let active_headcount = active.len() as u64;
    let onboarding = super::onboarding::measure(engine, d, users, today).await;
    let fingerprint = {
        let mut figures = json!({
            "activeHeadcount": active_headcount,
            "terminationsLast30Days": terminations,
            "newHiresLast30Days": hires,
            "targetShare": target_share,
        });
        figures["onboarding"] = serde_json::to_value(&onboarding).expect("figures serialize");
        hex::encode(Sha256::digest(figures.to_string().as_bytes()))
    };
    Ok(EvidenceRow {
        directory_id: d.id.clone(),
        captured_at: now,
        run_id: run_id.to_string(),
        active_headcount,
        terminations_last_30_days: terminations,
        new_hires_last_30_days: hires,
        target_share,
        onboarding: Some(onboarding),
        fingerprint,
    })
}
