//! The lifecycle state of a user, derived from BambooHR's status and dates on a given day.
//!
//! State is a function of the data and of `today`, so a date-driven transition (a hire
//! date entering its pre-start window, a termination date arriving) happens on its date
//! even when BambooHR sends nothing.

use time::{Date, Duration};

use domain::UserState;

/// pending: hire date in the future beyond the pre-start window; inactive: status Inactive (and not a future hire) or termination date on/before today; active otherwise. A future termination date keeps the user active until that date. A rehire (hire date after the termination date, status Active) is active. BambooHR reports future hires with status Inactive.
pub fn derive_state(
    status: Option<&str>,
    hire_date: Option<Date>,
    termination_date: Option<Date>,
    today: Date,
    pre_start_days: u32,
) -> UserState {
    let future_hire = hire_date.is_some_and(|hire| hire > today);
    if let Some(hire) = hire_date {
        // Past the last representable date the window can never open late enough.
        let window_opens_after = today.checked_add(Duration::days(i64::from(pre_start_days)));
        if window_opens_after.is_some_and(|last| hire > last) {
            return UserState::Pending;
        }
    }
    // A termination before the (re)hire date belongs to an earlier employment.
    let terminated = termination_date
        .is_some_and(|term| term <= today && hire_date.is_none_or(|hire| hire <= term));
    // BambooHR may already report Inactive for an employee whose termination date is
    // ahead; the user stays active until that day.
    let termination_ahead = termination_date
        .is_some_and(|term| term > today && hire_date.is_none_or(|hire| hire <= term));
    let status_inactive = status.is_some_and(|s| s.trim().eq_ignore_ascii_case("inactive"));
    if terminated || (status_inactive && !future_hire && !termination_ahead) {
        UserState::Inactive
    } else {
        UserState::Active
    }
}

/// The next day on which [`derive_state`] will give a different answer for these
/// inputs with nothing else changing: the day a pending hire enters its pre-start window,
/// or the day a termination date ahead arrives. None when no date is ahead.
pub fn next_transition(
    status: Option<&str>,
    hire_date: Option<Date>,
    termination_date: Option<Date>,
    today: Date,
    pre_start_days: u32,
) -> Option<Date> {
    let now = derive_state(status, hire_date, termination_date, today, pre_start_days);
    let mut candidates: Vec<Date> = Vec::new();
    if let Some(hire) = hire_date {
        if let Some(opens) = hire.checked_sub(Duration::days(i64::from(pre_start_days))) {
            if opens > today {
                candidates.push(opens);
            }
        }
        if hire > today {
            candidates.push(hire);
        }
    }
    if let Some(term) = termination_date {
        if term > today {
            candidates.push(term);
        }
    }
    candidates.sort();
    candidates
        .into_iter()
        .find(|day| derive_state(status, hire_date, termination_date, *day, pre_start_days) != now)
}

/// Re-derives a stored user's state for `today` (and its fingerprint); true when the
/// state changed. Deleted users stay deleted: only BambooHR brings them back.
pub fn refresh_state(user: &mut domain::DirectoryUser, today: Date, pre_start_days: u32) -> bool {
    if user.state == UserState::Deleted {
        return false;
    }
    let state = derive_state(
        user.employment_status.as_deref(),
        user.hire_date,
        user.termination_date,
        today,
        pre_start_days,
    );
    if state == user.state {
        return false;
    }
    user.state = state;
    user.refresh_fingerprint();
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn a_termination_date_ahead_keeps_an_inactive_status_active_until_that_day() {
        let term = date!(2026 - 12 - 01);
        let hire = Some(date!(2020 - 01 - 01));
        let before = date!(2026 - 11 - 30);
        assert_eq!(
            derive_state(Some("Inactive"), hire, Some(term), before, 7),
            UserState::Active
        );
        assert_eq!(
            derive_state(Some("Inactive"), hire, Some(term), term, 7),
            UserState::Inactive
        );
        assert_eq!(
            next_transition(Some("Inactive"), hire, Some(term), before, 7),
            Some(term)
        );
    }

    #[test]
    fn a_future_hire_transitions_when_its_pre_start_window_opens() {
        let hire = Some(date!(2026 - 12 - 10));
        let today = date!(2026 - 11 - 23);
        assert_eq!(
            derive_state(Some("Inactive"), hire, None, today, 7),
            UserState::Pending
        );
        assert_eq!(
            next_transition(Some("Inactive"), hire, None, today, 7),
            Some(date!(2026 - 12 - 03))
        );
        assert_eq!(
            next_transition(Some("Active"), Some(date!(2020 - 01 - 01)), None, today, 7),
            None
        );
    }

    const TODAY: Date = date!(2025 - 06 - 15);

    fn state(status: &str, hire: Option<Date>, term: Option<Date>) -> UserState {
        derive_state(Some(status), hire, term, TODAY, 7)
    }

    #[test]
    fn a_future_hire_beyond_the_pre_start_window_is_pending() {
        assert_eq!(
            state("Inactive", Some(date!(2025 - 07 - 01)), None),
            UserState::Pending
        );
        assert_eq!(
            state("Active", Some(date!(2025 - 06 - 23)), None),
            UserState::Pending
        );
    }

    #[test]
    fn a_future_hire_inside_the_pre_start_window_is_active() {
        assert_eq!(
            state("Inactive", Some(date!(2025 - 06 - 22)), None),
            UserState::Active
        );
        assert_eq!(
            state("Inactive", Some(date!(2025 - 06 - 16)), None),
            UserState::Active
        );
    }

    #[test]
    fn a_hire_date_today_or_earlier_is_active() {
        assert_eq!(state("Active", Some(TODAY), None), UserState::Active);
        assert_eq!(
            state("Active", Some(date!(2020 - 01 - 01)), None),
            UserState::Active
        );
    }

    #[test]
    fn a_future_termination_keeps_the_user_active_until_its_date() {
        let hire = Some(date!(2020 - 01 - 01));
        assert_eq!(
            state("Active", hire, Some(date!(2025 - 06 - 16))),
            UserState::Active
        );
        assert_eq!(state("Active", hire, Some(TODAY)), UserState::Inactive);
    }

    #[test]
    fn a_past_termination_is_inactive_even_if_the_status_still_says_active() {
        assert_eq!(
            state(
                "Active",
                Some(date!(2020 - 01 - 01)),
                Some(date!(2025 - 01 - 31))
            ),
            UserState::Inactive
        );
    }

    #[test]
    fn status_inactive_is_inactive() {
        assert_eq!(
            state("Inactive", Some(date!(2020 - 01 - 01)), None),
            UserState::Inactive
        );
        assert_eq!(
            derive_state(Some(" inactive "), None, None, TODAY, 7),
            UserState::Inactive
        );
    }

    #[test]
    fn a_rehire_after_a_termination_is_active() {
        assert_eq!(
            state(
                "Active",
                Some(date!(2025 - 03 - 01)),
                Some(date!(2024 - 12 - 31))
            ),
            UserState::Active
        );
    }

    #[test]
    fn a_future_rehire_beyond_the_window_is_pending() {
        assert_eq!(
            state(
                "Inactive",
                Some(date!(2025 - 09 - 01)),
                Some(date!(2024 - 12 - 31))
            ),
            UserState::Pending
        );
    }

    #[test]
    fn no_status_and_no_dates_is_active() {
        assert_eq!(derive_state(None, None, None, TODAY, 7), UserState::Active);
    }

    #[test]
    fn a_zero_day_window_makes_tomorrows_hire_pending() {
        assert_eq!(
            derive_state(Some("Active"), Some(date!(2025 - 06 - 16)), None, TODAY, 0),
            UserState::Pending
        );
    }

    #[test]
    fn extreme_dates_and_windows_do_not_overflow() {
        assert_eq!(
            derive_state(Some("Active"), Some(Date::MAX), None, Date::MAX, u32::MAX),
            UserState::Active
        );
        assert_eq!(
            derive_state(Some("Active"), Some(Date::MAX), None, Date::MIN, 0),
            UserState::Pending
        );
        assert_eq!(
            derive_state(Some("Active"), Some(Date::MAX), None, Date::MIN, u32::MAX),
            UserState::Active
        );
    }
}
