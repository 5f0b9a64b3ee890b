//! The onboarding completion rate of the compliance evidence (seed 002).
//!
//! BambooHR's public API has no onboarding-task endpoint, so the rate is derived from
//! what is there, training types and training records:
//!
//! - **hires**: users (not deleted) whose hire date lies in the last
//!   `onboarding_window_days` days (the directory setting, default 30), today
//!   included;
//! - **required trainings**: training types marked required with a due-from-hire-date
//!   window (`GET /api/v1/training/type`);
//! - a hire **completed on time** when, for every required training, a record of
//!   that type (`GET /api/v1/training/record/employee/{id}`) was completed no later
//!   than hire date + the type's due days;
//! - a hire is **in progress** when not complete but no due date has passed yet;
//! - **rate** = completed on time / hires (none without hires). With no required
//!   training every hire is complete.
//!
//! The API key's owner needs access to training settings (types) and to the employees'
//! training (records). A key without it gets 403: the evidence then says "not
//! available for this key" and the run goes on. Documented in docs/EVIDENCE.md.

use std::collections::BTreeMap;

use bamboohr_client::{BambooError, TrainingRecord, TrainingType};
use domain::{Directory, EmployeeId, UserState};
use futures::StreamExt;
use ports::{OnboardingEvidence, UserFingerprint};
use time::{Date, Duration};
use tracing::warn;

use crate::deps::Engine;

/// Training records read at once (the client bounds its own concurrency too).
const PARALLEL_READS: usize = 4;

/// One hire in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hire {
    /// BambooHR's employee id.
    pub employee_id: EmployeeId,
    /// The hire date.
    pub hire_date: Date,
}

/// The hires among `users` in the `window_days` days up to `today`.
pub fn hires_in_window(users: &[UserFingerprint], today: Date, window_days: u32) -> Vec<Hire> {
    let since = today - Duration::days(i64::from(window_days));
    users
        .iter()
        .filter(|u| u.state != UserState::Deleted)
        .filter_map(|u| {
            let hired = u.lifecycle.hire_date?;
            (hired > since && hired <= today).then(|| Hire {
                employee_id: u.employee_id.clone(),
                hire_date: hired,
            })
        })
        .collect()
}

/// The rate from the hires, the company's training types and each hire's records
/// (pure: the definition in the module doc).
pub fn completion_rate(
    window_days: u32,
    today: Date,
    hires: &[Hire],
    types: &[TrainingType],
    records: &BTreeMap<EmployeeId, Vec<TrainingRecord>>,
) -> OnboardingEvidence {
    let required: Vec<(&str, u32)> = types
        .iter()
        .filter(|t| t.required)
        .filter_map(|t| Some((t.id.as_str(), t.due_from_hire_days?)))
        .collect();
    let mut completed_on_time = 0;
    let mut in_progress = 0;
    for hire in hires {
        let theirs = records
            .get(&hire.employee_id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut all_on_time = true;
        let mut any_overdue = false;
        for (type_id, days) in &required {
            let due = hire.hire_date + Duration::days(i64::from(*days));
            let on_time = theirs
                .iter()
                .any(|r| r.type_id == *type_id && r.completed.is_some_and(|c| c <= due));
            if !on_time {
                all_on_time = false;
                if due < today {
                    any_overdue = true;
                }
            }
        }
        if all_on_time {
            completed_on_time += 1;
        } else if !any_overdue {
            in_progress += 1;
        }
    }
    let hires_n = hires.len() as u64;
    let rate = (hires_n > 0)
        .then(|| ((completed_on_time as f64 / hires_n as f64) * 10_000.0).round() / 10_000.0);
    OnboardingEvidence::Measured {
        window_days,
        hires: hires_n,
        completed_on_time,
        in_progress,
        rate,
        required_trainings: required.len() as u64,
    }
}

fn not_available(window_days: u32, reason: impl Into<String>) -> OnboardingEvidence {
    OnboardingEvidence::NotAvailable {
        window_days,
        reason: reason.into(),
    }
}

/// Why training could not be read, as the evidence says it (no secret, no HR value).
fn reason_of(e: &BambooError) -> String {
    match e {
        BambooError::Forbidden { .. } => {
            "training records are not available for this key (BambooHR answered 403): its owner needs access to training".into()
        }
        BambooError::Unauthorized => "BambooHR refused the credentials (401)".into(),
        other => format!("training records could not be read: {other}"),
    }
}

/// One hire's training records.
async fn records_of(
    client: &bamboohr_client::BambooClient,
    employee: EmployeeId,
) -> (EmployeeId, Result<Vec<TrainingRecord>, BambooError>) {
    let got = client.employee_training_records(employee.as_str()).await;
    (employee, got)
}

/// Measures the rate of directory `d` as of `today` from its users' projection,
/// asking BambooHR for the training types and each hire's records. Never fails: what
/// cannot be read is reported as not available, with why.
pub async fn measure(
    engine: &Engine,
    d: &Directory,
    users: &[UserFingerprint],
    today: Date,
) -> OnboardingEvidence {
    let window = d.onboarding_window_days;
    let client = match crate::source::client::bamboohr_client(engine, d).await {
        Ok(c) => c,
        Err(e) => {
            warn!(directory_id = %d.id, reason = %e, "onboarding rate: no BambooHR client");
            return not_available(window, "no usable BambooHR credential for this directory");
        }
    };
    let types = match client.training_types().await {
        Ok(t) => t,
        Err(e) => {
            warn!(directory_id = %d.id, reason = %e, "onboarding rate: training types not read");
            return not_available(window, reason_of(&e));
        }
    };
    let hires = hires_in_window(users, today, window);
    let needs_records = types
        .iter()
        .any(|t| t.required && t.due_from_hire_days.is_some());
    let mut records = BTreeMap::new();
    if needs_records {
        // The futures are made first and then streamed: a closure inside the stream
        // would make `measure`'s future non-`Send` for callers that spawn a run.
        let pending: Vec<_> = hires
            .iter()
            .map(|h| records_of(&client, h.employee_id.clone()))
            .collect();
        let reads = futures::stream::iter(pending)
            .buffer_unordered(PARALLEL_READS)
            .collect::<Vec<_>>()
            .await;
        for (employee, got) in reads {
            match got {
                Ok(r) => {
                    records.insert(employee, r);
                }
                // A hire gone from BambooHR since the sync has no records.
                Err(BambooError::NotFound { .. }) => {}
                Err(e) => {
                    warn!(directory_id = %d.id, reason = %e, "onboarding rate: training records not read");
                    return not_available(window, reason_of(&e));
                }
            }
        }
    }
    completion_rate(window, today, &hires, &types, &records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn training(id: &str, required: bool, due: Option<u32>) -> TrainingType {
        TrainingType {
            id: id.into(),
            name: format!("T{id}"),
            required,
            due_from_hire_days: due,
            renewable: false,
            frequency_months: None,
        }
    }

    fn record(employee: &str, type_id: &str, completed: Date) -> TrainingRecord {
        TrainingRecord {
            id: format!("{employee}-{type_id}"),
            employee_id: employee.into(),
            type_id: type_id.into(),
            completed: Some(completed),
        }
    }

    fn hire(id: &str, on: Date) -> Hire {
        Hire {
            employee_id: EmployeeId::parse(id).unwrap(),
            hire_date: on,
        }
    }

    #[test]
    fn a_hire_counts_as_complete_only_with_every_required_training_done_by_its_due_date() {
        let today = date!(2026 - 03 - 31);
        let types = vec![
            training("1", true, Some(7)),
            training("2", true, Some(14)),
            training("3", false, None),
        ];
        let hires = vec![
            hire("10", date!(2026 - 03 - 01)), // both on time
            hire("11", date!(2026 - 03 - 01)), // one late
            hire("12", date!(2026 - 03 - 01)), // one missing, overdue
            hire("13", date!(2026 - 03 - 25)), // nothing yet, not due: in progress
        ];
        let mut records = BTreeMap::new();
        let e = |id: &str| EmployeeId::parse(id).unwrap();
        records.insert(
            e("10"),
            vec![
                record("10", "1", date!(2026 - 03 - 08)),
                record("10", "2", date!(2026 - 03 - 10)),
            ],
        );
        records.insert(
            e("11"),
            vec![
                record("11", "1", date!(2026 - 03 - 09)),
                record("11", "2", date!(2026 - 03 - 02)),
            ],
        );
        records.insert(e("12"), vec![record("12", "1", date!(2026 - 03 - 02))]);
        assert_eq!(
            completion_rate(30, today, &hires, &types, &records),
            OnboardingEvidence::Measured {
                window_days: 30,
                hires: 4,
                completed_on_time: 1,
                in_progress: 1,
                rate: Some(0.25),
                required_trainings: 2,
            }
        );
    }

    #[test]
    fn without_hires_there_is_no_rate_and_without_required_trainings_every_hire_is_complete() {
        let today = date!(2026 - 03 - 31);
        let none = completion_rate(30, today, &[], &[], &BTreeMap::new());
        assert!(matches!(
            none,
            OnboardingEvidence::Measured {
                hires: 0,
                rate: None,
                ..
            }
        ));
        let optional_only = completion_rate(
            30,
            today,
            &[hire("1", date!(2026 - 03 - 20))],
            &[training("9", false, None)],
            &BTreeMap::new(),
        );
        assert!(matches!(
            optional_only,
            OnboardingEvidence::Measured {
                completed_on_time: 1,
                rate: Some(r),
                required_trainings: 0,
                ..
            } if r == 1.0
        ));
    }

    #[test]
    fn the_window_counts_hires_up_to_today_and_not_before_it() {
        use ports::{Lifecycle, UserFingerprint};
        let fp = |id: &str, hired: Option<Date>, state: UserState| UserFingerprint {
            employee_id: EmployeeId::parse(id).unwrap(),
            version: 1,
            fingerprint: domain::Fingerprint::from_stored("x"),
            state,
            lifecycle: Lifecycle {
                status: None,
                hire_date: hired,
                termination_date: None,
            },
        };
        let today = date!(2026 - 03 - 31);
        let users = vec![
            fp("1", Some(date!(2026 - 03 - 31)), UserState::Active),
            fp("2", Some(date!(2026 - 03 - 01)), UserState::Active),
            fp("3", Some(date!(2026 - 03 - 02)), UserState::Active),
            fp("4", Some(date!(2026 - 04 - 01)), UserState::Pending),
            fp("5", Some(date!(2026 - 03 - 20)), UserState::Deleted),
            fp("6", None, UserState::Active),
        ];
        let ids: Vec<String> = hires_in_window(&users, today, 30)
            .into_iter()
            .map(|h| h.employee_id.to_string())
            .collect();
        assert_eq!(ids, ["1", "3"]);
    }
}
