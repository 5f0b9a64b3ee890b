//! The onboarding completion rate of the compliance evidence, from the simulator's
//! training types and records (BambooHR's shapes): measured for a key that may read
//! training, "not available for this key" (and the run still completes) for one that
//! may not, and the window follows the directory setting.

use crate::common;

use bamboohr_simulator::{SimConfig, SimEmployee, SimTrainingType, Simulator};
use common::harness;
use domain::{RunStatus, SyncMode, SyncRequest};
use embedded_adapters::InProcessScheduler;
use ports::OnboardingEvidence;
use sync_engine::operate::{self, run_sync, SettingsChange};
use sync_engine::reconcile::run::RunOptions;
use time::macros::date;

fn employee(id: &str, first: &str, hired: time::Date) -> SimEmployee {
    SimEmployee {
        employee_id: id.into(),
        first_name: first.into(),
        last_name: "Tester".into(),
        work_email: Some(format!("{}@acme.test", first.to_lowercase())),
        hire_date: Some(hired),
        ..SimEmployee::default()
    }
}

#[tokio::test]
async fn the_onboarding_rate_is_measured_from_training_records_or_said_to_be_unavailable_for_the_key(
) {
    // The harness's today is 2026-11-23.
    let sim = Simulator::from_employees(
        SimConfig {
            api_key: "k".into(),
            ..SimConfig::default()
        },
        vec![
            employee("1", "Ann", date!(2026 - 11 - 01)),
            employee("2", "Bo", date!(2026 - 11 - 20)),
            employee("3", "Cy", date!(2025 - 01 - 06)),
        ],
    );
    let induction = sim.add_training_type(SimTrainingType {
        name: "Induction".into(),
        required: true,
        due_from_hire_days: Some(7),
        ..Default::default()
    });
    sim.add_training_type(SimTrainingType {
        name: "Optional".into(),
        ..Default::default()
    });
    sim.complete_training("1", induction, date!(2026 - 11 - 05))
        .unwrap();
    sim.complete_training("3", induction, date!(2025 - 03 - 01))
        .unwrap();
    let server = sim.serve().await.unwrap();
    let h = harness("k", Some(server.base_url.clone()), vec![]).await;
    let full = SyncRequest {
        directory_id: h.dir.clone(),
        mode: SyncMode::Full,
    };

    let run = run_sync(&h.engine, &full, &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    let rows = h.engine.store.list_evidence(&h.dir, 10).await.unwrap();
    assert_eq!(
        rows[0].onboarding,
        Some(OnboardingEvidence::Measured {
            window_days: 30,
            hires: 2,
            completed_on_time: 1,
            in_progress: 1,
            rate: Some(0.5),
            required_trainings: 1,
        }),
        "Ann on time, Bo not due yet, Cy hired long ago"
    );

    // A narrower window, set through the control plane: only Bo.
    operate::update_settings(
        &h.engine,
        &InProcessScheduler::new(),
        &h.dir,
        &SettingsChange {
            onboarding_window_days: Some(10),
            ..SettingsChange::default()
        },
        "ops",
    )
    .await
    .unwrap();
    h.clock.advance(time::Duration::minutes(1));
    run_sync(&h.engine, &full, &RunOptions::default())
        .await
        .unwrap();
    let rows = h.engine.store.list_evidence(&h.dir, 10).await.unwrap();
    assert!(matches!(
        rows[0].onboarding,
        Some(OnboardingEvidence::Measured {
            window_days: 10,
            hires: 1,
            completed_on_time: 0,
            in_progress: 1,
            ..
        })
    ));
    let audit = h.engine.store.list_audit(&h.dir, 10).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.details["changed"]["onboardingWindowDays"]
            == serde_json::json!({"before": 30, "after": 10})));

    // A key whose owner may not see training: not available, and the run completes.
    sim.deny_training_access(true);
    h.clock.advance(time::Duration::minutes(1));
    let run = run_sync(&h.engine, &full, &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    let rows = h.engine.store.list_evidence(&h.dir, 10).await.unwrap();
    match &rows[0].onboarding {
        Some(OnboardingEvidence::NotAvailable {
            window_days,
            reason,
        }) => {
            assert_eq!(*window_days, 10);
            assert!(reason.contains("not available for this key"), "{reason}");
            assert!(reason.contains("403"), "{reason}");
        }
        other => panic!("expected not available, got {other:?}"),
    }
    assert_eq!(rows[0].active_headcount, 3, "the other figures are there");
}
