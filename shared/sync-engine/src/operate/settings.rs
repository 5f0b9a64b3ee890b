//! Changing a directory's sync settings (fields, maps, aliases, groups, schedule,
//! safeguard, pre-start window, time zone), validated before anything is written
//! (field names against the company's `meta/fields`), audited with each changed
//! setting's value before and after, with the schedule and the registered webhook's
//! monitored fields kept in step. A preset (e.g. daily evidence) names a set of
//! settings applied together.

use std::collections::BTreeMap;

use domain::{Directory, DirectoryId, DirectoryState, GroupSource, MissingUserPolicy, Safeguard};
use ports::{AuditAction, Scheduler};
use serde::Serialize;
use serde_json::{json, Value};

use super::{audit, directory, invalid, modify};
use crate::deps::Engine;
use crate::error::EngineError;
use crate::operate::schedule::reconcile_directory_schedule;
use crate::operate::webhook::{follow_changes, MonitorFields};

/// Longest pre-start window, in days: a pending user becomes active at most this long
/// before the hire date.
pub const MAX_PRE_START_DAYS: u32 = 365;

/// Most fields a raw-attribute allowlist may name.
pub const MAX_RAW_ALLOWLIST: usize = 200;

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
    /// Field-based webhook names the BambooHR admin chose (e.g. "Litmos Access") ->
    /// the field they stand for.
    pub field_aliases: Option<BTreeMap<String, String>>,
    /// The raw-attribute allowlist: `Some(Some(fields))` sets it, `Some(None)` goes
    /// back to the default (extra fields and group sources).
    pub raw_attribute_allowlist: Option<Option<Vec<String>>>,
    /// Days back the evidence's onboarding completion rate counts hires (1 to
    /// [`MAX_ONBOARDING_WINDOW_DAYS`]).
    pub onboarding_window_days: Option<u32>,
    /// A named set of settings applied first; a setting given beside it wins.
    pub preset: Option<SettingsPreset>,
}

/// Longest onboarding window, in days.
pub const MAX_ONBOARDING_WINDOW_DAYS: u32 = 365;

/// A named set of settings for a common use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingsPreset {
    /// A compliance evidence store (seed 002): one sync a day (incremental and full
    /// every 24 hours), stale (alarm, `directory.stale`, stale evidence) after two
    /// days without a successful sync.
    DailyEvidence,
}

impl SettingsPreset {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DailyEvidence => "daily_evidence",
        }
    }

    /// `change` with the preset's settings where it gives none.
    fn fill(self, change: &SettingsChange) -> SettingsChange {
        let mut out = change.clone();
        match self {
            Self::DailyEvidence => {
                out.incremental_every_minutes.get_or_insert(24 * 60);
                out.full_every_hours.get_or_insert(24);
                out.stale_after_minutes.get_or_insert(2 * 24 * 60);
            }
        }
        out
    }
}

/// One changed setting, before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Changed {
    /// The value before.
    pub before: Value,
    /// The value after.
    pub after: Value,
}

/// What [`update_settings`] did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsUpdated {
    /// The directory as saved.
    pub directory: Directory,
    /// The settings that changed, by name, before and after.
    pub changed: BTreeMap<String, Changed>,
    /// What happened to the registered webhook's monitored fields.
    pub monitor_fields: MonitorFields,
}

impl SettingsChange {
    fn validate(&self) -> Result<(), EngineError> {
        if self.incremental_every_minutes == Some(0) {
            return Err(invalid(
                "incrementalEveryMinutes",
                "the incremental interval must be at least 1 minute",
            ));
        }
        if self.full_every_hours == Some(0) {
            return Err(invalid(
                "fullEveryHours",
                "the full interval must be at least 1 hour",
            ));
        }
        if let Some(sg) = &self.safeguard {
            if !(0.0..=1.0).contains(&sg.max_share) {
                return Err(invalid(
                    "safeguardMaxShare",
                    "the safeguard's max share must be between 0 and 1",
                ));
            }
        }
        if self.stale_after_minutes == Some(0) {
            return Err(invalid(
                "staleAfterMinutes",
                "the stale threshold must be at least 1 minute",
            ));
        }
        if let Some(tz) = &self.time_zone {
            if domain::TimeZone::parse(tz).is_err() {
                return Err(invalid(
                    "timeZone",
                    format!("{tz} is not an IANA time zone"),
                ));
            }
        }
        if let Some(sources) = &self.group_sources {
            if sources.iter().any(|s| s.trim().is_empty()) {
                return Err(invalid("groupSources", "a group source names a field"));
            }
        }
        if let Some(Some(allow)) = &self.raw_attribute_allowlist {
            if allow.iter().any(|s| s.trim().is_empty()) {
                return Err(invalid(
                    "rawAttributeAllowlist",
                    "every entry names a BambooHR field",
                ));
            }
            if allow.len() > MAX_RAW_ALLOWLIST {
                return Err(invalid(
                    "rawAttributeAllowlist",
                    format!("at most {MAX_RAW_ALLOWLIST} fields"),
                ));
            }
        }
        if let Some(days) = self.pre_start_days {
            if days > MAX_PRE_START_DAYS {
                return Err(invalid(
                    "preStartDays",
                    format!("pre-start days must be 0 to {MAX_PRE_START_DAYS}"),
                ));
            }
        }
        if let Some(days) = self.onboarding_window_days {
            if !(1..=MAX_ONBOARDING_WINDOW_DAYS).contains(&days) {
                return Err(invalid(
                    "onboardingWindowDays",
                    format!("the onboarding window must be 1 to {MAX_ONBOARDING_WINDOW_DAYS} days"),
                ));
            }
        }
        if let Some(sg) = &self.safeguard {
            if !(1..=domain::MAX_SAFEGUARD_WINDOW_MINUTES).contains(&sg.window_minutes) {
                return Err(invalid(
                    "safeguardWindowMinutes",
                    format!(
                        "the safeguard's webhook window must be 1 to {} minutes",
                        domain::MAX_SAFEGUARD_WINDOW_MINUTES
                    ),
                ));
            }
            if !sg.max_share.is_finite() {
                return Err(invalid(
                    "safeguardMaxShare",
                    "the safeguard's max share must be between 0 and 1",
                ));
            }
        }
        for (name, map) in [
            ("customFieldMap", self.custom_field_map.as_ref()),
            ("fieldAliases", self.field_aliases.as_ref()),
        ] {
            if let Some(map) = map {
                if map
                    .iter()
                    .any(|(k, v)| k.trim().is_empty() || v.trim().is_empty())
                {
                    return Err(invalid(name, "every entry needs a name and a value"));
                }
            }
        }
        Ok(())
    }

    /// The BambooHR field names this change refers to, with the setting naming each.
    fn field_names(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        for f in self.extra_fields.iter().flatten() {
            out.push(("extraFields", f.as_str()));
        }
        for f in self.group_sources.iter().flatten() {
            out.push(("groupSources", f.as_str()));
        }
        for f in self.custom_field_map.iter().flat_map(|m| m.keys()) {
            out.push(("customFieldMap", f.as_str()));
        }
        for f in self.field_aliases.iter().flat_map(|m| m.values()) {
            out.push(("fieldAliases", f.as_str()));
        }
        for f in self.raw_attribute_allowlist.iter().flatten().flatten() {
            out.push(("rawAttributeAllowlist", f.as_str()));
        }
        out
    }

    /// Applies the change; returns each setting that changed, before and after.
    fn apply(&self, d: &mut Directory) -> BTreeMap<String, Changed> {
        let mut changed = BTreeMap::new();
        macro_rules! set {
            ($field:expr, $value:expr, $name:literal) => {
                if let Some(v) = $value {
                    if $field != v {
                        let before = serde_json::to_value(&$field).expect("settings serialize");
                        $field = v;
                        let after = serde_json::to_value(&$field).expect("settings serialize");
                        changed.insert($name.to_string(), Changed { before, after });
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
        set!(d.field_aliases, self.field_aliases.clone(), "fieldAliases");
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
        set!(
            d.raw_attribute_allowlist,
            self.raw_attribute_allowlist.clone(),
            "rawAttributeAllowlist"
        );
        set!(
            d.onboarding_window_days,
            self.onboarding_window_days,
            "onboardingWindowDays"
        );
        changed
    }
}

/// Checks that every field name in `change` is one of the company's fields (by alias,
/// id or display name, as `GET /api/v1/meta/fields` lists them) or a field the mapping
/// knows; the first unknown one is refused, naming the setting and the field.
async fn check_field_names(
    engine: &Engine,
    d: &Directory,
    change: &SettingsChange,
) -> Result<(), EngineError> {
    let names = change.field_names();
    let known_to_mapping = |n: &str| {
        mapping::employee_endpoint_fields().contains(&n)
            || mapping::dataset_fields().contains(&n)
            || mapping::Field::from_key(n).is_some()
    };
    if names.iter().all(|(_, n)| known_to_mapping(n)) {
        return Ok(());
    }
    let company = crate::source::connect::company_fields(engine, d).await?;
    for (setting, name) in names {
        let known = known_to_mapping(name)
            || company
                .iter()
                .any(|f| crate::source::connect::names_field(f, name));
        if !known {
            return Err(invalid(
                setting,
                format!(
                    "{name:?} is not a field of {} (GET /api/v1/meta/fields): {} name BambooHR fields",
                    d.subdomain,
                    match setting {
                        "extraFields" => "extra fields",
                        "groupSources" => "group sources",
                        "customFieldMap" => "custom field map keys",
                        "rawAttributeAllowlist" => "raw attribute allowlist entries",
                        _ => "field alias targets",
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// Changes a directory's settings, asks for a full reconciliation (new fields, maps
/// and groups apply to every user), updates its schedule and its webhook's monitored
/// fields, and audits each changed setting before and after.
pub async fn update_settings(
    engine: &Engine,
    scheduler: &dyn Scheduler,
    id: &DirectoryId,
    change: &SettingsChange,
    actor: &str,
) -> Result<SettingsUpdated, EngineError> {
    let filled;
    let change = match change.preset {
        Some(preset) => {
            filled = preset.fill(change);
            &filled
        }
        None => change,
    };
    change.validate()?;
    let current = directory(engine, id).await?;
    if current.state == DirectoryState::Revoked {
        return Err(EngineError::DirectoryNotActive {
            id: id.clone(),
            state: "revoked",
        });
    }
    check_field_names(engine, &current, change).await?;
    let mut changed = BTreeMap::new();
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
    if changed.is_empty() {
        return Ok(SettingsUpdated {
            directory: d,
            changed,
            monitor_fields: MonitorFields::Unchanged,
        });
    }
    reconcile_directory_schedule(scheduler, &d).await?;
    audit(
        engine,
        id,
        AuditAction::SettingsChange,
        actor,
        match change.preset {
            Some(preset) => json!({ "changed": changed, "preset": preset.as_str() }),
            None => json!({ "changed": changed }),
        },
    )
    .await?;
    let monitor_fields = follow_changes(engine, &d, actor).await;
    Ok(SettingsUpdated {
        directory: d,
        changed,
        monitor_fields,
    })
}
