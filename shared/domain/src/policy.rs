//! Pure decisions the engine takes about domain values: which change event a user
//! write causes, whether the mass-change safeguard trips, whether a target's filter
//! admits a user, and what "today" is in a directory's time zone. They live here, not
//! in the engine, so that they are tested without any store and read in one place.

use time::{Date, OffsetDateTime};

use crate::directory::Directory;
use crate::error::DomainError;
use crate::event::{ChangeEvent, EventType};
use crate::target::{Target, TargetFilter};
use crate::user::{DirectoryUser, UserState};

impl ChangeEvent {
    /// The event a user write causes: `user.deleted` for a deleted user, `user.created`
    /// for a new one (or one coming back from deleted), else `user.updated`.
    pub fn for_user_write(
        before: Option<&DirectoryUser>,
        after: &DirectoryUser,
        at: OffsetDateTime,
    ) -> ChangeEvent {
        let event_type = match (before, after.state) {
            (_, UserState::Deleted) => EventType::UserDeleted,
            (None, _) => EventType::UserCreated,
            (Some(b), _) if b.state == UserState::Deleted => EventType::UserCreated,
            (Some(_), _) => EventType::UserUpdated,
        };
        let mut event = ChangeEvent::for_user(event_type, after, at);
        if let (EventType::UserUpdated, Some(b)) = (event_type, before) {
            event.previous_attributes = Some(after.previous_attributes(b));
        }
        event
    }

    /// An event of a given type carrying `user` as it is now.
    pub fn for_user(
        event_type: EventType,
        user: &DirectoryUser,
        at: OffsetDateTime,
    ) -> ChangeEvent {
        ChangeEvent::new(
            event_type,
            user.directory_id.clone(),
            user.id.as_str(),
            user.version,
            at,
            serde_json::to_value(user).expect("a DirectoryUser serializes"),
        )
    }
}

impl Directory {
    /// Whether a run that would deactivate or delete `gone` of `active_before` live
    /// users must be held for an operator: at least the safeguard's minimum count and
    /// more than its share, unless an operator released the last hold.
    pub fn safeguard_trips(&self, active_before: u64, gone: u64) -> bool {
        if self.safeguard_released {
            return false;
        }
        let sg = &self.safeguard;
        gone >= u64::from(sg.min_count) && (gone as f64) > sg.max_share * active_before as f64
    }

    /// The start of the safeguard's webhook window at `now`.
    fn window_start(&self, now: OffsetDateTime) -> OffsetDateTime {
        now - time::Duration::minutes(i64::from(self.safeguard.window_minutes))
    }

    /// Webhook deactivations and deletions applied in the safeguard's window up to
    /// `now` (the minute `now` falls in included).
    pub fn webhook_removals_in_window(&self, now: OffsetDateTime) -> u64 {
        let start = self.window_start(now);
        self.webhook_removals
            .iter()
            .filter(|b| b.minute + time::Duration::MINUTE > start)
            .map(|b| b.count)
            .sum()
    }

    /// Counts `n` webhook deactivations and deletions at `now` in the window, and drops
    /// the minutes that have left it.
    pub fn count_webhook_removals(&mut self, now: OffsetDateTime, n: u64) {
        let start = self.window_start(now);
        self.webhook_removals
            .retain(|b| b.minute + time::Duration::MINUTE > start);
        if n == 0 {
            return;
        }
        let minute = now
            .replace_second(0)
            .and_then(|t| t.replace_nanosecond(0))
            .unwrap_or(now);
        match self
            .webhook_removals
            .iter_mut()
            .find(|b| b.minute == minute)
        {
            Some(b) => b.count += n,
            None => self
                .webhook_removals
                .push(crate::directory::RemovalBucket { minute, count: n }),
        }
    }

    /// The calendar day at `now` in the directory's time zone; an error names a zone
    /// the sync does not know (the caller decides on a fallback).
    pub fn today(&self, now: OffsetDateTime) -> Result<Date, DomainError> {
        Ok(TimeZone::parse(&self.time_zone)?.today(now))
    }
}

impl Target {
    /// Whether this target's filter lets `user` through; the error is the reason a
    /// delivery is skipped (never a field value).
    pub fn admits(&self, user: &DirectoryUser) -> Result<(), String> {
        self.filter.admits(user, true)
    }
}

impl TargetFilter {
    /// Whether `user` passes this filter; `check_state` false ignores the state list
    /// (a user leaving the accepted states is still told it left).
    pub fn admits(&self, user: &DirectoryUser, check_state: bool) -> Result<(), String> {
        if check_state && !self.states.is_empty() && !self.states.contains(&user.state) {
            return Err(format!("filtered out: state {}", user.state.as_str()));
        }
        if self.require_work_email && user.work_email().is_none() {
            return Err("filtered out: no work email".into());
        }
        if self.field_in.is_empty() {
            return Ok(());
        }
        // Serialised once, and only for targets that filter on fields.
        let user_json = serde_json::to_value(user).expect("a DirectoryUser serializes");
        for (field, accepted) in &self.field_in {
            let value = user_json
                .get(field)
                .or_else(|| user.custom_attributes.get(field))
                .map(|v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
            if !value
                .map(|v| accepted.iter().any(|a| field_value_matches(&v, a)))
                .unwrap_or(false)
            {
                return Err(format!("filtered out: {field} not in the accepted values"));
            }
        }
        Ok(())
    }
}

/// Whether a user's field value is one a filter accepts: equal text, or, for a
/// checkbox, the same tick. BambooHR writes a checkbox "Yes"/"No" in the employees
/// endpoint and field-based webhooks, JSON `true`/`false` in datasets (the mapping
/// stores "Yes"/"No" for those), and an admin may type `true` in a gate; all of them
/// mean the same tick, so `litmosAccess=Yes` admits a user whose value reads "true".
fn field_value_matches(value: &str, accepted: &str) -> bool {
    if value == accepted {
        return true;
    }
    match (checkbox(value), checkbox(accepted)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// A checkbox tick written as BambooHR or an admin writes it ("Yes"/"No",
/// "true"/"false", any case); None for any other text.
fn checkbox(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

/// An IANA time zone the sync understands (its database is bundled, so Lambda needs
/// no tzdata).
#[derive(Debug, Clone)]
pub struct TimeZone(jiff::tz::TimeZone);

impl TimeZone {
    /// Parses an IANA zone name such as `Europe/Paris`.
    pub fn parse(name: &str) -> Result<Self, DomainError> {
        jiff::tz::TimeZone::get(name)
            .map(Self)
            .map_err(|_| DomainError::invalid("time zone", "not an IANA time zone name"))
    }

    /// The calendar day at `now` in this zone.
    pub fn today(&self, now: OffsetDateTime) -> Date {
        let Ok(ts) = jiff::Timestamp::from_second(now.unix_timestamp()) else {
            return now.date();
        };
        let local = ts.to_zoned(self.0.clone()).date();
        Date::from_calendar_date(
            i32::from(local.year()),
            time::Month::try_from(local.month() as u8).unwrap_or(time::Month::January),
            local.day() as u8,
        )
        .unwrap_or_else(|_| now.date())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{DirectoryId, EmployeeId, TargetId};
    use crate::target::TargetKind;

    fn dir(tz: &str) -> Directory {
        let mut d = Directory::new(DirectoryId::parse("acme").unwrap(), "acme", "s").unwrap();
        d.time_zone = tz.into();
        d
    }

    fn now() -> OffsetDateTime {
        // 2026-11-23 03:00 UTC is still the 22nd in Los Angeles and already the 23rd in Tokyo.
        OffsetDateTime::from_unix_timestamp(1_795_402_800).unwrap()
    }

    fn user(state: UserState) -> DirectoryUser {
        DirectoryUser::new(
            DirectoryId::parse("acme").unwrap(),
            EmployeeId::parse("7").unwrap(),
            state,
        )
    }

    #[test]
    fn webhook_removals_count_within_the_window_and_older_minutes_drop_out() {
        let mut d = dir("UTC");
        d.safeguard.window_minutes = 60;
        let t0 = now();
        d.count_webhook_removals(t0, 2);
        d.count_webhook_removals(t0 + time::Duration::seconds(20), 1);
        assert_eq!(d.webhook_removals.len(), 1, "one bucket per minute");
        d.count_webhook_removals(t0 + time::Duration::minutes(30), 4);
        assert_eq!(
            d.webhook_removals_in_window(t0 + time::Duration::minutes(30)),
            7
        );
        // An hour and a minute later the first minute has left the window.
        let later = t0 + time::Duration::minutes(61);
        assert_eq!(d.webhook_removals_in_window(later), 4);
        d.count_webhook_removals(later, 0);
        assert_eq!(d.webhook_removals.len(), 1, "the old minute is dropped");
        assert_eq!(
            d.webhook_removals_in_window(t0 + time::Duration::minutes(200)),
            0
        );
    }

    #[test]
    fn today_follows_the_directory_time_zone() {
        assert_eq!(now().date(), time::macros::date!(2026 - 11 - 23));
        assert_eq!(
            dir("America/Los_Angeles").today(now()).unwrap(),
            time::macros::date!(2026 - 11 - 22)
        );
        assert_eq!(
            dir("Asia/Tokyo").today(now()).unwrap(),
            time::macros::date!(2026 - 11 - 23)
        );
    }

    #[test]
    fn an_unknown_time_zone_is_refused_by_name() {
        assert!(dir("Mars/Olympus").today(now()).is_err());
        assert!(TimeZone::parse("Mars/Olympus").is_err());
        assert!(TimeZone::parse("Europe/London").is_ok());
    }

    #[test]
    fn a_user_write_causes_created_updated_or_deleted() {
        let active = user(UserState::Active);
        let deleted = user(UserState::Deleted);
        let at = now();
        let t = |b: Option<&DirectoryUser>, a: &DirectoryUser| {
            ChangeEvent::for_user_write(b, a, at).event_type
        };
        assert_eq!(t(None, &active), EventType::UserCreated);
        assert_eq!(t(Some(&active), &active), EventType::UserUpdated);
        assert_eq!(t(Some(&active), &deleted), EventType::UserDeleted);
        assert_eq!(t(Some(&deleted), &active), EventType::UserCreated);
        assert_eq!(t(None, &deleted), EventType::UserDeleted);
    }

    #[test]
    fn the_safeguard_trips_above_its_share_and_minimum_unless_released() {
        let mut d = dir("UTC");
        d.safeguard.max_share = 0.1;
        d.safeguard.min_count = 5;
        assert!(!d.safeguard_trips(100, 4), "under the minimum count");
        assert!(!d.safeguard_trips(100, 10), "exactly the share");
        assert!(d.safeguard_trips(100, 11));
        d.safeguard_released = true;
        assert!(!d.safeguard_trips(100, 50));
    }

    #[test]
    fn a_target_filter_admits_by_state_work_email_and_field_values() {
        let mut target = Target {
            id: TargetId::parse("app").unwrap(),
            kind: TargetKind::app_webhook("https://example.com/hook".into()),
            filter: TargetFilter::default(),
            enabled: true,
        };
        let mut u = user(UserState::Inactive);
        assert!(target.admits(&u).is_ok(), "an empty filter admits everyone");
        target.filter.states = vec![UserState::Active];
        assert_eq!(
            target.admits(&u).unwrap_err(),
            "filtered out: state inactive"
        );
        assert!(target.filter.admits(&u, false).is_ok(), "state not checked");
        u.state = UserState::Active;
        u.custom_attributes
            .insert("litmosAccess".into(), serde_json::json!("Yes"));
        target
            .filter
            .field_in
            .insert("litmosAccess".into(), vec!["Yes".into()]);
        assert!(target.admits(&u).is_ok());
        u.custom_attributes
            .insert("litmosAccess".into(), serde_json::json!("No"));
        assert_eq!(
            target.admits(&u).unwrap_err(),
            "filtered out: litmosAccess not in the accepted values"
        );
    }

    #[test]
    fn a_checkbox_gate_accepts_every_spelling_of_the_same_tick_and_nothing_else() {
        let mut target = Target {
            id: TargetId::parse("lms").unwrap(),
            kind: TargetKind::app_webhook("https://example.com/hook".into()),
            filter: TargetFilter::default(),
            enabled: true,
        };
        target
            .filter
            .field_in
            .insert("litmosAccess".into(), vec!["Yes".into()]);
        let mut u = user(UserState::Active);
        for ticked in [
            serde_json::json!("Yes"),
            serde_json::json!("true"),
            serde_json::json!("YES"),
        ] {
            u.custom_attributes.insert("litmosAccess".into(), ticked);
            assert!(target.admits(&u).is_ok());
        }
        for unticked in [
            serde_json::json!("No"),
            serde_json::json!("false"),
            serde_json::json!(""),
            serde_json::json!("Yesterday"),
        ] {
            u.custom_attributes
                .insert("litmosAccess".into(), unticked.clone());
            assert!(target.admits(&u).is_err(), "{unticked}");
        }
        u.custom_attributes.remove("litmosAccess");
        assert!(target.admits(&u).is_err(), "no value is not ticked");
    }
}
