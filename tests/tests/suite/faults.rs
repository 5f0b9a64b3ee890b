//! The fault-injection suite (issue 8, "Prove it"): the product's own retries and
//! re-runs against AWS calls that throttle, fail or lose their answer
//! (`integration_tests::fault_proxy` in front of moto), BambooHR answering 429s, 5xx,
//! dropped connections and cut bodies (the simulator's faults), and runs and
//! dispatcher invocations killed at random points. After each scenario the
//! [`invariants`] are read from the store and the targets: no accepted change lost, no
//! user duplicated at any target, no older state delivered after newer, every event
//! delivered or dead-lettered.
//!
//! CI runs one round of each scenario (a short bounded run). By hand, for longer:
//! `FAULTS_ROUNDS=N` rounds, `FAULTS_LONG=1` five rounds on companies twice as large;
//! `FAULTS_SEED=S` replays the seeds a failing run printed; `FAULTS_SHARE=x` faults a
//! share x of DynamoDB calls (twice that of the others) instead of 0.1.

mod harness;
mod invariants;
mod processes;

use std::collections::BTreeMap;
use std::time::Duration;

use bamboohr_simulator::{Fault, FaultPlan, RetryAfter};
use domain::SyncMode;
use integration_tests::fault_proxy::{FaultShares, Service};
use rand::seq::IndexedRandom;
use rand::Rng;
use sync_engine::ingest::{ingest, InboundWebhook, IngestError, DEFAULT_TOLERANCE};
use time::OffsetDateTime;

use processes::Part;

use harness::{company_size, rounds, seed, World, WEBHOOK_KEY};
use invariants::{
    assert_all, assert_every_accepted_webhook_change_is_stored, assert_the_store_matches_bamboohr,
    duplicate_deliveries_at_the_receiver,
};

/// The shares of calls faulted in the AWS scenarios: a tenth of DynamoDB's (a sync
/// makes hundreds, each retried by the SDK), a fifth of EventBridge's and SQS's.
/// `FAULTS_SHARE=x` sets DynamoDB's to x and the others to twice that (at most 0.9).
fn aws_shares() -> FaultShares {
    let dynamodb = std::env::var("FAULTS_SHARE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.10);
    let others = (dynamodb * 2.0).min(0.9);
    FaultShares::default()
        .with(Service::DynamoDb, dynamodb)
        .with(Service::EventBridge, others)
        .with(Service::Sqs, others)
        .with(Service::Scheduler, others)
}

/// Employees the directory syncs as active users: not deleted, with a work email,
/// hired, not terminated.
fn live_ids(world: &World) -> Vec<String> {
    let today = OffsetDateTime::now_utc().date();
    world
        .sim
        .employees()
        .into_iter()
        .filter(|e| {
            !e.deleted
                && e.work_email.is_some()
                && e.termination_date.is_none()
                && e.hire_date.is_some_and(|h| h <= today)
        })
        .map(|e| e.employee_id)
        .collect()
}

/// Changes BambooHR between two syncs: three new job titles (one with a new last
/// name), one termination today and one deletion; fewer than the safeguard's five.
fn change_some_employees(world: &mut World, tag: &str) {
    let ids = live_ids(world);
    let picked: Vec<String> = ids.choose_multiple(&mut world.rng, 5).cloned().collect();
    for (i, id) in picked.iter().take(3).enumerate() {
        let mut changes =
            BTreeMap::from([("jobTitle".to_string(), Some(format!("Title {tag} {i}")))]);
        if i == 0 {
            changes.insert("lastName".into(), Some(format!("Renamed{tag}")));
        }
        world.sim.update(id, changes);
    }
    world
        .sim
        .terminate(&picked[3], OffsetDateTime::now_utc().date());
    world.sim.delete(&picked[4]);
}

/// The scheduler's next tick: while a bus failure left events in the outbox, another
/// run publishes them (DESIGN: "repaired by the next run").
async fn next_ticks_empty_the_outbox(world: &mut World) {
    for _ in 0..10 {
        // The test's own look at the outbox goes through the fault proxy too: an
        // injected throttle past the SDK's retries is a fault of the look, not of the
        // product, so it is asked again.
        let mut pending = None;
        for _ in 0..5 {
            if let Ok(p) = world.engine.store.pending_events(&world.dir, 1).await {
                pending = Some(p);
                break;
            }
        }
        let pending = pending.expect("the outbox could be read in five tries");
        if pending.is_empty() {
            return;
        }
        world.sync_until_completed(SyncMode::Incremental).await;
        world.drain(0.0).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_faults_during_full_and_incremental_syncs_lose_no_change_and_never_deliver_older_after_newer(
) {
    for round in 0..rounds() {
        let mut w = World::new(seed("aws_faults_during_syncs", round), company_size(12)).await;
        w.receiver.fail_first_attempts(true);
        w.faults(aws_shares());

        w.sync_until_completed(SyncMode::Full).await;
        w.drain(0.0).await;
        change_some_employees(&mut w, "a");
        w.sync_until_completed(SyncMode::Incremental).await;
        w.drain(0.0).await;
        next_ticks_empty_the_outbox(&mut w).await;

        w.no_faults();
        assert!(w.proxy.stats().total_faults() > 0, "faults were injected");
        assert_the_store_matches_bamboohr(&w).await;
        assert_all(&w).await;
        w.report("aws_faults_during_syncs");
        println!(
            "aws_faults_during_syncs: {} repeated deliveries at the receiver",
            duplicate_deliveries_at_the_receiver(&w)
        );
    }
}

/// Display names of the fields BambooHR's field-based webhook carries here.
const WEBHOOK_FIELDS: [&str; 6] = [
    "First Name",
    "Last Name",
    "Work Email",
    "Job Title",
    "Department",
    "Hire Date",
];

/// Sends one signed webhook to the ingest path until it is accepted, as BambooHR
/// retries a 5xx; returns the attempts it took. Any 4xx-class refusal fails the test.
async fn deliver_until_accepted(world: &mut World, body: &[u8], signature: &str, ts: &str) -> u32 {
    for attempt in 1..=30 {
        if attempt < 4 {
            world.maybe_outage(0.4);
        }
        let req = InboundWebhook {
            body,
            content_type: Some("application/json"),
            signature: Some(signature),
            timestamp: Some(ts),
            url_token: None,
        };
        match ingest(&world.engine, &world.dir, req, DEFAULT_TOLERANCE).await {
            Ok(report) => {
                assert!(
                    report.skipped.is_empty(),
                    "nothing skipped: {:?}",
                    report.skipped
                );
                return attempt;
            }
            Err(IngestError::Internal(_)) => continue,
            Err(other) => panic!("the webhook was refused: {other}"),
        }
    }
    panic!("a webhook was not accepted in 30 attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_faults_during_webhook_ingest_and_dispatch_lose_no_accepted_change() {
    for round in 0..rounds() {
        let mut w = World::new(seed("aws_faults_during_webhooks", round), company_size(10)).await;
        w.receiver.fail_first_attempts(true);
        w.faults(aws_shares());
        let ids = live_ids(&w);
        let mut accepted: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut attempts = 0;
        let webhooks = 8;
        for k in 0..webhooks {
            let picked: Vec<String> = ids.choose_multiple(&mut w.rng, 3).cloned().collect();
            for id in &picked {
                let title = format!("Webhook title {k}");
                w.sim
                    .update(id, BTreeMap::from([("jobTitle".to_string(), Some(title))]));
            }
            let hook = w
                .sim
                .field_based_webhook(&picked, &WEBHOOK_FIELDS, WEBHOOK_KEY.as_bytes());
            let sig = hook.header("X-BambooHR-Signature").unwrap().to_string();
            let ts = hook.header("X-BambooHR-Timestamp").unwrap().to_string();
            attempts += deliver_until_accepted(&mut w, &hook.body, &sig, &ts).await;
            for id in picked {
                let title = w.sim.employee(&id).unwrap().job_title;
                accepted.insert(id, title);
            }
            // Dispatch runs beside ingest, as the dispatcher does on Lambda.
            if k % 3 == 2 {
                w.drain(0.0).await;
            }
        }
        w.drain(0.0).await;

        w.no_faults();
        assert!(w.proxy.stats().total_faults() > 0, "faults were injected");
        assert_every_accepted_webhook_change_is_stored(&w, &accepted).await;
        assert_all(&w).await;
        w.report("aws_faults_during_webhooks");
        println!(
            "aws_faults_during_webhooks: {webhooks} webhooks accepted after {attempts} attempts; {} repeated deliveries",
            duplicate_deliveries_at_the_receiver(&w)
        );
    }
}

/// A random BambooHR fault: 429 with Retry-After (seconds or an HTTP date), 503, 500,
/// a dropped connection, a body cut in half, or a slow answer.
fn bamboohr_fault(rng: &mut impl Rng) -> Fault {
    match rng.random_range(0..6) {
        0 => Fault::rate_limited(1),
        1 => Fault::Status {
            status: 429,
            retry_after: Some(RetryAfter::HttpDateIn(1)),
        },
        2 => Fault::unavailable(),
        3 => Fault::Status {
            status: 500,
            retry_after: None,
        },
        4 => Fault::DropConnection,
        _ => Fault::TruncateBody,
    }
}

/// Schedules `n` BambooHR faults on distinct requests among the next `3 n`.
fn inject_bamboohr_faults(world: &mut World, n: u64) {
    let mut at = 0;
    for _ in 0..n {
        at += world.rng.random_range(0..3);
        let fault = bamboohr_fault(&mut world.rng);
        world.sim.inject(FaultPlan::next(fault).after(at));
        at += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bamboohr_throttling_and_errors_mid_sync_are_waited_out_and_lose_no_change() {
    for round in 0..rounds() {
        let mut w = World::new(seed("bamboohr_faults", round), company_size(14)).await;
        inject_bamboohr_faults(&mut w, 4);
        let full = w.sync_until_completed(SyncMode::Full).await;
        w.drain(0.0).await;
        change_some_employees(&mut w, "b");
        inject_bamboohr_faults(&mut w, 3);
        let incremental = w.sync_until_completed(SyncMode::Incremental).await;
        w.drain(0.0).await;
        w.sim.clear_faults();
        next_ticks_empty_the_outbox(&mut w).await;

        assert_the_store_matches_bamboohr(&w).await;
        assert_all(&w).await;
        w.report("bamboohr_faults");
        println!(
            "bamboohr_faults: {} BambooHR requests, throttles met: full {}, incremental {}",
            w.sim.request_count(),
            full.counts.bamboohr_throttles,
            incremental.counts.bamboohr_throttles
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_and_dispatchers_killed_at_random_points_resume_without_loss_duplicates_or_regressions(
) {
    for round in 0..rounds() {
        let mut w = World::new(seed("killed", round), company_size(16)).await;
        w.receiver.fail_first_attempts(true);
        // Slow BambooHR a little so a kill can land between pages as well as between
        // the writes of one page.
        w.sim
            .inject(FaultPlan::next(Fault::delay(Duration::from_millis(150))).times(u64::MAX));
        let mut killed = 0;
        for _ in 0..3 {
            let after = Duration::from_millis(w.rng.random_range(100..2500));
            killed += u32::from(w.sync_killed_after(SyncMode::Full, after).await);
        }
        w.sync_until_completed(SyncMode::Full).await;
        w.drain(0.5).await;
        change_some_employees(&mut w, "k");
        let after = Duration::from_millis(w.rng.random_range(50..600));
        killed += u32::from(w.sync_killed_after(SyncMode::Incremental, after).await);
        w.sync_until_completed(SyncMode::Incremental).await;
        w.drain(0.5).await;
        w.sim.clear_faults();
        next_ticks_empty_the_outbox(&mut w).await;

        assert_the_store_matches_bamboohr(&w).await;
        assert_all(&w).await;
        w.report("killed");
        println!(
            "killed: {killed} syncs killed mid-run; {} repeated deliveries",
            duplicate_deliveries_at_the_receiver(&w)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_sigkilled_mid_sync_and_mid_delivery_leave_nothing_lost_duplicated_or_regressed()
{
    for round in 0..rounds() {
        let mut w = World::new(seed("sigkilled", round), company_size(16)).await;
        w.receiver.fail_first_attempts(true);
        // What a killed dispatcher had received comes back after this timeout.
        w.visibility_timeout(3).await;
        w.sim
            .inject(FaultPlan::next(Fault::delay(Duration::from_millis(100))).times(u64::MAX));
        let mut killed = 0;
        for _ in 0..2 {
            let child = processes::spawn(&w, Part::Sync(SyncMode::Full));
            let after = Duration::from_millis(w.rng.random_range(300..3000));
            if processes::kill_after(child, after).await {
                killed += 1;
                w.expire_lease().await;
            }
        }
        w.sync_until_completed(SyncMode::Full).await;
        let child = processes::spawn(&w, Part::Dispatch);
        let after = Duration::from_millis(w.rng.random_range(200..2500));
        killed += u32::from(processes::kill_after(child, after).await);
        w.drain(0.0).await;

        change_some_employees(&mut w, "p");
        let child = processes::spawn(&w, Part::Sync(SyncMode::Incremental));
        let after = Duration::from_millis(w.rng.random_range(100..1500));
        if processes::kill_after(child, after).await {
            killed += 1;
            w.expire_lease().await;
        }
        w.sync_until_completed(SyncMode::Incremental).await;
        let child = processes::spawn(&w, Part::Dispatch);
        let after = Duration::from_millis(w.rng.random_range(200..2000));
        killed += u32::from(processes::kill_after(child, after).await);
        w.drain(0.0).await;
        w.sim.clear_faults();
        next_ticks_empty_the_outbox(&mut w).await;

        assert_the_store_matches_bamboohr(&w).await;
        assert_all(&w).await;
        w.report("sigkilled");
        println!(
            "sigkilled: {killed} of 6 child processes SIGKILLed while running; {} repeated deliveries",
            duplicate_deliveries_at_the_receiver(&w)
        );
    }
}
