//! Changing a directory's sync settings (fields, maps, groups, schedule, safeguard,
//! time zone), audited, with the schedule kept in step.

use std::collections::BTreeMap;

use domain::{Directory, DirectoryId, DirectoryState, GroupSource, MissingUserPolicy, Safeguard};
use ports::{AuditAction, Scheduler};
use serde_json::json;

use super::{audit, invalid, modify};
use crate::deps::Engine;
use crate::error::EngineError;
use crate::operate::schedule::reconcile_directory_schedule;

/// A change of a directory's sync settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct SettingsChange {
    /// Minutes between incremental runs.
    pub incremental_every_minutes: Option<u32>,
    /// Hours between full reconciliations.
    pub full_every_hours: Option<u32>,
    /// Extra BambooHR fields to fetch.
    pub extra_fields: Option<Vec<String>>,
    /// BambooHR field -> custom attribute name.
    pub custom_field_map: Option<BTreeMap<String, String>>,
    /// Fields groups are derived from.
    pub group_sources: Option<Vec<String>>,
    /// The mass-change safeguard.
    pub safeguard: Option<Safeguard>,
    /// Minutes without a successful sync before the directory is stale.
    pub stale_after_minutes: Option<u32>,
    /// IANA time zone.
    pub time_zone: Option<String>,
    /// What happens to users missing from a complete listing.
    pub missing_users: Option<MissingUserPolicy>,
    /// Days before the hire date a pending user becomes active.
    pub pre_start_days: Option<u32>,
}

impl SettingsChange {
    fn validate(&self) -> Result<(), EngineError> {
        if self.incremental_every_minutes == Some(0) {
            return Err(invalid(
                "schedule",
                "incremental interval must be at least 1 minute",
            ));
        }
        if self.full_every_hours == Some(0) {
            return Err(invalid("schedule", "full interval must be at least 1 hour"));
        }
        if let Some(sg) = &self.safeguard {
            if !(0.0..=1.0).contains(&sg.max_share) {
                return Err(invalid("safeguard", "max share must be between 0 and 1"));
            }
        }
        if self.stale_after_minutes == Some(0) {
            return Err(invalid("stale threshold", "must be at least 1 minute"));
        }
        if let Some(tz) = &self.time_zone {
            if domain::TimeZone::parse(tz).is_err() {
                return Err(invalid(
                    "time zone",
                    format!("{tz} is not an IANA time zone"),
                ));
            }
        }
        if let Some(sources) = &self.group_sources {
            if sources.iter().any(|s| s.trim().is_empty()) {
                return Err(invalid("group sources", "a group source names a field"));
            }
        }
        Ok(())
    }

    /// Applies the change; returns the names of the settings that changed.
    fn apply(&self, d: &mut Directory) -> Vec<&'static str> {
        let mut changed = Vec::new();
        macro_rules! set {
            ($field:expr, $value:expr, $name:literal) => {
                if let Some(v) = $value {
                    if $field != v {
                        $field = v;
                        changed.push($name);
                    }
                }
            };
        }
        set!(
            d.schedule.incremental_every_minutes,
            self.incremental_every_minutes,
            "incrementalEveryMinutes"
        );
        set!(
            d.schedule.full_every_hours,
            self.full_every_hours,
            "fullEveryHours"
        );
        set!(d.extra_fields, self.extra_fields.clone(), "extraFields");
        set!(
            d.custom_field_map,
            self.custom_field_map.clone(),
            "customFieldMap"
        );
        set!(
            d.group_sources,
            self.group_sources.as_ref().map(|s| s
                .iter()
                .map(|f| GroupSource { field: f.clone() })
                .collect::<Vec<_>>()),
            "groupSources"
        );
        set!(d.safeguard, self.safeguard.clone(), "safeguard");
        set!(
            d.stale_after_minutes,
            self.stale_after_minutes.map(Some),
            "staleAfterMinutes"
        );
        set!(d.time_zone, self.time_zone.clone(), "timeZone");
        set!(d.missing_users, self.missing_users, "missingUsers");
        set!(d.pre_start_days, self.pre_start_days, "preStartDays");
        changed
    }
}

/// Changes a directory's settings, asks for a full reconciliation (new fields, maps
/// and groups apply to every user), and updates its schedule.
pub async fn update_settings(
    engine: &Engine,
    scheduler: &dyn Scheduler,
    id: &DirectoryId,
    change: &SettingsChange,
    actor: &str,
) -> Result<Directory, EngineError> {
    change.validate()?;
    let mut changed = Vec::new();
    let d = modify(engine, id, |d| {
        if d.state == DirectoryState::Revoked {
            return Err(EngineError::DirectoryNotActive {
                id: d.id.clone(),
                state: "revoked",
            });
        }
        changed = change.apply(d);
        if changed.is_empty() {
            return Ok(false);
        }
        d.cursors.full_requested = true;
        Ok(true)
    })
    .await?;
    if !changed.is_empty() {
        reconcile_directory_schedule(scheduler, &d).await?;
        audit(
            engine,
            id,
            AuditAction::SettingsChange,
            actor,
            json!({ "changed": changed }),
        )
        .await?;
    }
    Ok(d)
}
