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
    let status_inactive = status.is_some_and(|s| s.trim().eq_ignore_ascii_case("inactive"));
    if terminated || (status_inactive && !future_hire) {
        UserState::Inactive
    } else {
        UserState::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

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
