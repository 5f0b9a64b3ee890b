//! The poller's modes against DynamoDB, EventBridge and SQS on moto and the BambooHR
//! simulator: incremental, full and targeted runs, date-driven lifecycle transitions
//! on an injected clock, group moves, the safeguard hold and release, deletion only
//! after a complete listing, the lease, checkpoint resume after a killed run, a run out
//! of invocation time scheduling its own continuation on EventBridge Scheduler,
//! restricted fields, and 429s in the middle of a sync.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use bamboohr_simulator::{Fault, FaultPlan, RetryAfter, SimConfig, SimEmployee, Simulator};
use domain::{
    Directory, DirectoryId, DirectoryState, EmployeeId, GroupSource, RunStatus, SyncMode,
    SyncRequest, SyncRun, UserState,
};
use function_support::scheduler::SchedulerSettings;
use integration_tests::{unique, TestStack};
use lambda_runtime::{Context, LambdaEvent};
use poller::Poller;
use ports::{Clock, DirectorySecrets, FixedClock, Scheduler};
use secrecy::SecretString;
use sync_engine::operate::{resolve_hold, run_sync, HoldDecision};
use sync_engine::reconcile::run::RunOptions;
use sync_engine::Engine;
use time::{Duration, OffsetDateTime};

const KEY: &str = "poller-key";

struct Fixture {
    engine: Engine,
    sdk: aws_config::SdkConfig,
    clock: Arc<FixedClock>,
    sim: Simulator,
    _server: bamboohr_simulator::SimServer,
    dir: DirectoryId,
}

impl Fixture {
    /// A directory on moto synced from a simulator with `employees` employees.
    async fn new(employees: usize, configure: impl FnOnce(&mut Directory)) -> Self {
        let sim = Simulator::generate(SimConfig {
            api_key: KEY.into(),
            seed: 5,
            employees,
            ..SimConfig::default()
        });
        Self::with_simulator(sim, configure).await
    }

    async fn with_simulator(sim: Simulator, configure: impl FnOnce(&mut Directory)) -> Self {
        let stack = TestStack::provision().await;
        let mut engine = function_support::aws_engine(&stack.sdk, &stack.config);
        let clock = Arc::new(FixedClock::new(OffsetDateTime::now_utc()));
        engine.clock = clock.clone();
        let server = sim.serve().await.unwrap();
        let dir = DirectoryId::parse(unique("dir")).unwrap();
        let secret = dir.to_string();
        engine
            .secrets
            .put(
                &secret,
                &DirectorySecrets {
                    bamboohr_api_key: Some(SecretString::from(KEY)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let mut directory = Directory::new(dir.clone(), "acme", &secret).unwrap();
        directory.base_url = Some(server.base_url.clone());
        directory.version = 1;
        configure(&mut directory);
        engine.store.put_directory(&directory, None).await.unwrap();
        Self {
            engine,
            sdk: stack.sdk.clone(),
            clock,
            sim,
            _server: server,
            dir,
        }
    }

    async fn run(&self, mode: SyncMode) -> SyncRun {
        self.run_with(mode, &small_pages()).await
    }

    async fn run_with(&self, mode: SyncMode, options: &RunOptions) -> SyncRun {
        run_sync(
            &self.engine,
            &SyncRequest {
                directory_id: self.dir.clone(),
                mode,
            },
            options,
        )
        .await
        .unwrap()
    }

    async fn user(&self, id: &str) -> domain::DirectoryUser {
        self.engine
            .store
            .get_user(&self.dir, &EmployeeId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    async fn directory(&self) -> Directory {
        self.engine
            .store
            .get_directory(&self.dir)
            .await
            .unwrap()
            .unwrap()
    }

    /// Ids of live employees with a work email (they map without a skip).
    fn live_ids(&self) -> Vec<String> {
        self.sim
            .employees()
            .into_iter()
            .filter(|e| {
                !e.deleted
                    && e.work_email.is_some()
                    && e.termination_date.is_none()
                    && e.hire_date
                        .is_some_and(|h| h <= OffsetDateTime::now_utc().date())
            })
            .map(|e| e.employee_id)
            .collect()
    }

    /// Dataset pages requested since recording started, by page number.
    fn dataset_pages(&self) -> Vec<u64> {
        self.sim
            .recorded()
            .into_iter()
            .filter(|x| x.path.ends_with("/datasets/employee/data"))
            .filter(|x| {
                x.request_body
                    .as_ref()
                    .is_some_and(|b| b.get("filter").is_none())
            })
            .filter_map(|x| x.request_body.and_then(|b| b["page"].as_u64()))
            .collect()
    }
}

/// Ten rows per datasets page, so a few dozen employees make several pages.
fn small_pages() -> RunOptions {
    RunOptions {
        page_size: Some(10),
        ..RunOptions::default()
    }
}

fn change(field: &str, value: &str) -> BTreeMap<String, Option<String>> {
    BTreeMap::from([(field.to_string(), Some(value.to_string()))])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_reads_only_changed_employees_and_applies_deletions() {
    let f = Fixture::new(20, |_| {}).await;
    let first = f.run(SyncMode::Incremental).await;
    assert_eq!(
        first.mode,
        SyncMode::Full,
        "no cursor yet: the first run is full"
    );
    assert_eq!(first.status, RunStatus::Completed);

    let ids = f.live_ids();
    f.sim
        .update(&ids[0], change("jobTitle", "Chief Cartographer"));
    f.sim.delete(&ids[1]);
    f.sim.start_recording();
    f.clock.set(OffsetDateTime::now_utc());
    let run = f.run(SyncMode::Incremental).await;
    assert_eq!(run.mode, SyncMode::Incremental);
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.counts.updated, 1);
    assert_eq!(run.counts.deleted, 1);
    assert_eq!(run.counts.created, 0);
    let recorded = f.sim.recorded();
    let changed = recorded
        .iter()
        .filter(|x| x.path.ends_with("/employees/changed"))
        .count();
    let fetches = recorded
        .iter()
        .filter(|x| x.path.ends_with("/datasets/employee/data"))
        .count();
    assert_eq!(changed, 1, "one changed-ids request");
    assert_eq!(fetches, 1, "one batched fetch for one changed id");
    assert_eq!(run.counts.bamboohr_requests, 2);
    assert_eq!(
        f.user(&ids[0]).await.job_title.as_deref(),
        Some("Chief Cartographer")
    );
    assert_eq!(f.user(&ids[1]).await.state, UserState::Deleted);
    let runs = f.engine.store.list_runs(&f.dir, 5).await.unwrap();
    assert_eq!(runs.len(), 2, "both runs are recorded");
    assert_eq!(runs[0].id, run.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_targeted_run_refreshes_only_the_employees_webhooks_asked_for() {
    let f = Fixture::new(10, |_| {}).await;
    f.run(SyncMode::Full).await;
    let ids = f.live_ids();
    f.sim.update(&ids[0], change("jobTitle", "Navigator"));
    f.sim.update(&ids[1], change("jobTitle", "Not asked for"));
    f.engine
        .store
        .record_refresh_requests(
            &f.dir,
            &[EmployeeId::parse(&ids[0]).unwrap()],
            f.clock.now(),
        )
        .await
        .unwrap();
    let run = f.run(SyncMode::Targeted).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.counts.seen, 1);
    assert_eq!(run.counts.updated, 1);
    assert_eq!(
        f.user(&ids[0]).await.job_title.as_deref(),
        Some("Navigator")
    );
    assert_ne!(
        f.user(&ids[1]).await.job_title.as_deref(),
        Some("Not asked for")
    );
    assert!(f
        .engine
        .store
        .pending_refresh_requests(&f.dir, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_dates_take_effect_on_their_day_and_a_rehire_reactivates_the_same_user() {
    let today = OffsetDateTime::now_utc().date();
    let f = Fixture::new(5, |d| {
        // No daily full run in between: the date sweep alone must do it.
        d.schedule.full_every_hours = 24 * 365;
        d.pre_start_days = 7;
        d.time_zone = "Pacific/Kiritimati".into();
    })
    .await;
    let starter = f.sim.hire(SimEmployee {
        first_name: "Future".into(),
        last_name: "Hire".into(),
        work_email: Some("future.hire@example.test".into()),
        hire_date: Some(today + Duration::days(10)),
        status: bamboohr_simulator::EmployeeStatus::Inactive,
        ..SimEmployee::default()
    });
    let leaver = f.live_ids()[0].clone();
    f.sim.terminate(&leaver, today + Duration::days(4));

    let first = f.run(SyncMode::Full).await;
    assert_eq!(first.status, RunStatus::Completed);
    assert_eq!(f.user(&starter).await.state, UserState::Pending);
    assert_eq!(
        f.user(&leaver).await.state,
        UserState::Active,
        "a termination date ahead keeps the user active"
    );

    // Five days later (Kiritimati is UTC+14, so its day may be one ahead): BambooHR
    // reports nothing, the date sweep applies both transitions.
    f.clock.set(OffsetDateTime::now_utc() + Duration::days(5));
    let later = f.run(SyncMode::Incremental).await;
    assert_eq!(later.mode, SyncMode::Incremental);
    assert_eq!(later.status, RunStatus::Completed);
    assert_eq!(
        f.user(&starter).await.state,
        UserState::Active,
        "the pre-start window opened"
    );
    let left = f.user(&leaver).await;
    assert_eq!(left.state, UserState::Inactive, "the termination date came");
    // The generated company may hold other dated employees; ours are among them.
    assert!(later.counts.deactivated >= 1);

    f.sim.rehire(&leaver, today);
    f.clock.set(OffsetDateTime::now_utc() + Duration::days(5));
    let rehired = f.run(SyncMode::Full).await;
    assert_eq!(rehired.status, RunStatus::Completed);
    let back = f.user(&leaver).await;
    assert_eq!(back.state, UserState::Active);
    assert_eq!(back.id, left.id, "the rehire is the same user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_moves_department_leaves_one_group_and_joins_another() {
    let f = Fixture::new(12, |d| {
        d.group_sources = vec![GroupSource {
            field: "department".into(),
        }]
    })
    .await;
    f.run(SyncMode::Full).await;
    let groups = f.engine.store.list_groups(&f.dir).await.unwrap();
    assert!(!groups.is_empty(), "departments become groups");
    assert!(groups.iter().all(|g| g.member_count.unwrap_or(0) > 0));

    let mover = f.live_ids()[0].clone();
    let before = f.user(&mover).await;
    f.sim.update(&mover, change("department", "Cartography"));
    f.clock.set(OffsetDateTime::now_utc());
    let run = f.run(SyncMode::Full).await;
    assert_eq!(run.counts.updated, 1);
    let after = f.user(&mover).await;
    assert_eq!(after.group_ids.len(), 1);
    assert_ne!(after.group_ids, before.group_ids);
    let groups = f.engine.store.list_groups(&f.dir).await.unwrap();
    let carto = groups
        .iter()
        .find(|g| g.name == "Cartography")
        .expect("the new department is a group");
    assert_eq!(carto.member_count, Some(1));
    assert!(!carto.deleted);
    // user.updated + group.created + group.user_added + group.user_removed, then
    // directory.sync_completed (and group.deleted if the old department emptied).
    let old = groups
        .iter()
        .find(|g| before.group_ids.contains(&g.id))
        .unwrap();
    let expected = 5 + u64::from(old.deleted);
    assert_eq!(run.counts.events_published, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_safeguard_holds_a_mass_termination_until_an_operator_releases_it() {
    let f = Fixture::new(20, |d| {
        d.safeguard.max_share = 0.2;
        d.safeguard.min_count = 3;
    })
    .await;
    f.run(SyncMode::Full).await;
    let ids = f.live_ids();
    let past = OffsetDateTime::now_utc().date() - Duration::days(1);
    for id in ids.iter().take(8) {
        f.sim.terminate(id, past);
    }
    f.clock.set(OffsetDateTime::now_utc());
    let held = f.run(SyncMode::Full).await;
    assert_eq!(held.status, RunStatus::Held);
    let d = f.directory().await;
    assert_eq!(d.state, DirectoryState::Held);
    let hold = d.hold.expect("the hold is recorded");
    assert_eq!(hold.would_deactivate, 8);
    for id in ids.iter().take(8) {
        assert_eq!(
            f.user(id).await.state,
            UserState::Active,
            "nothing was deactivated"
        );
    }
    let skipped = f.run(SyncMode::Incremental).await;
    assert_eq!(skipped.status, RunStatus::Skipped, "a held directory waits");

    resolve_hold(&f.engine, &f.dir, HoldDecision::Release, "test:operator")
        .await
        .unwrap();
    let released = f.run(SyncMode::Incremental).await;
    assert_eq!(released.mode, SyncMode::Full, "a release runs a full sync");
    assert_eq!(released.status, RunStatus::Completed);
    assert_eq!(released.counts.deactivated, 8);
    for id in ids.iter().take(8) {
        assert_eq!(f.user(id).await.state, UserState::Inactive);
    }
    let d = f.directory().await;
    assert_eq!(d.state, DirectoryState::Active);
    assert!(!d.safeguard_released, "the release is used once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_missing_from_an_incomplete_listing_are_not_deleted() {
    let f = Fixture::new(25, |_| {}).await;
    let first = f.run(SyncMode::Full).await;
    assert_eq!(first.status, RunStatus::Completed);
    assert_eq!(first.counts.pages, 3);
    let gone = f.live_ids()[0].clone();
    f.sim.delete(&gone);

    // Page 2 fails for good (after the fingerprint read, page 1 passes): the listing is
    // incomplete, so nobody is deleted.
    f.sim.inject(FaultPlan {
        fault: Fault::Status {
            status: 500,
            retry_after: None,
        },
        after: 1,
        count: u64::MAX,
    });
    f.clock.set(OffsetDateTime::now_utc());
    let failed = f.run(SyncMode::Full).await;
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.counts.deleted, 0);
    assert_eq!(f.user(&gone).await.state, UserState::Active);

    f.sim.clear_faults();
    f.clock.set(OffsetDateTime::now_utc());
    let complete = f.run(SyncMode::Full).await;
    assert_eq!(complete.status, RunStatus::Completed);
    assert_eq!(complete.counts.deleted, 1);
    assert_eq!(f.user(&gone).await.state, UserState::Deleted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_skipped_while_another_holds_the_directory_lease() {
    let f = Fixture::new(3, |_| {}).await;
    let now = f.clock.now();
    assert!(f
        .engine
        .store
        .acquire_lease(&f.dir, "someone-else", now, now + Duration::minutes(10))
        .await
        .unwrap());
    let skipped = f.run(SyncMode::Full).await;
    assert_eq!(skipped.status, RunStatus::Skipped);
    assert!(f.engine.store.list_users(&f.dir).await.unwrap().is_empty());

    // Once the other run's lease has run out, the directory syncs again.
    f.clock.advance(Duration::minutes(11));
    let run = f.run(SyncMode::Full).await;
    assert_eq!(run.status, RunStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_full_run_continues_from_its_checkpoint_without_rereading_finished_pages() {
    let f = Fixture::new(30, |_| {}).await;
    f.sim.start_recording();
    // Slow pages down so the run can be killed between pages 2 and 3.
    f.sim.inject(FaultPlan {
        fault: Fault::Delay { millis: 300 },
        after: 0,
        count: u64::MAX,
    });
    let engine = f.engine.clone();
    let request = SyncRequest {
        directory_id: f.dir.clone(),
        mode: SyncMode::Full,
    };
    let task = tokio::spawn(async move { run_sync(&engine, &request, &small_pages()).await });
    let mut waited = 0;
    while f
        .engine
        .store
        .get_checkpoint(&f.dir)
        .await
        .unwrap()
        .is_none()
        && waited < 600
    {
        tokio::time::sleep(StdDuration::from_millis(50)).await;
        waited += 1;
    }
    task.abort();
    assert!(
        task.await.unwrap_err().is_cancelled(),
        "the run was killed mid-way"
    );
    f.sim.clear_faults();
    let done_before_kill = f.dataset_pages();
    assert!(
        !done_before_kill.is_empty() && !done_before_kill.contains(&3),
        "killed before the last page: {done_before_kill:?}"
    );

    assert!(f
        .engine
        .store
        .get_checkpoint(&f.dir)
        .await
        .unwrap()
        .is_some());
    // The killed run's lease runs out; the next run continues from the checkpoint.
    f.clock.advance(Duration::minutes(17));
    let resumed = f.run(SyncMode::Full).await;
    assert_eq!(resumed.status, RunStatus::Completed);
    let pages = f.dataset_pages();
    let after_kill = &pages[done_before_kill.len()..];
    assert!(
        !after_kill.contains(&1),
        "page 1 is not read again: before {done_before_kill:?}, after {after_kill:?}"
    );
    assert!(after_kill.contains(&3));
    let users = f.engine.store.list_users(&f.dir).await.unwrap();
    assert_eq!(
        users.len() as u64 + resumed.counts.skipped,
        30,
        "every employee is synced exactly once"
    );
    assert_eq!(resumed.counts.deleted, 0);
    assert!(f
        .engine
        .store
        .get_checkpoint(&f.dir)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bamboohr_429s_in_the_middle_of_a_sync_slow_it_down_and_it_completes() {
    let f = Fixture::new(25, |_| {}).await;
    f.sim.inject(FaultPlan {
        fault: Fault::Status {
            status: 429,
            retry_after: Some(RetryAfter::Seconds(1)),
        },
        after: 1,
        count: 2,
    });
    let run = f.run(SyncMode::Full).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(
        run.counts.bamboohr_throttles, 2,
        "both 429s were met and waited out"
    );
    assert_eq!(run.counts.pages, 3);
    assert_eq!(run.counts.bamboohr_requests, 5, "three pages, two retries");
    assert_eq!(run.counts.created + run.counts.skipped, 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_out_of_invocation_time_schedules_its_own_continuation_which_finishes_it() {
    let f = Fixture::new(12, |_| {}).await;
    let schedules = aws_sdk_scheduler::Client::new(&f.sdk);
    let group = unique("bsync-schedules");
    schedules
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .unwrap();
    let settings = SchedulerSettings {
        group_name: group.clone(),
        role_arn: "arn:aws:iam::123456789012:role/bsync-scheduler".into(),
        dead_letter_arn: "arn:aws:sqs:us-east-1:123456789012:bsync-poller-dlq".into(),
    };
    let sdk = f.sdk.clone();
    // Built as the poller's main builds it: from the ARN the invocation names.
    let poller = Poller::with_scheduler_factory(
        f.engine.clone(),
        Box::new(move |arn| {
            function_support::scheduler::aws_scheduler(&sdk, &settings, arn)
                .ok()
                .map(|s| Arc::new(s) as Arc<dyn Scheduler>)
        }),
    );
    let invocation = |payload: serde_json::Value, seconds_left: Option<u64>| {
        let mut context = Context::default();
        // Lambda's alias-qualified ARN; the schedule must target the function itself.
        context.invoked_function_arn =
            "arn:aws:lambda:us-east-1:123456789012:function:bsync-poller:live".into();
        if let Some(secs) = seconds_left {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            context.deadline = now_ms + secs * 1000;
        }
        LambdaEvent::new(payload, context)
    };

    // Thirty seconds left is inside the run's one-minute margin: it checkpoints at
    // once and ends `continued`.
    let payload = serde_json::json!({"directoryId": f.dir.as_str(), "mode": "full"});
    let first = poller::handler(&poller, invocation(payload.clone(), Some(30)))
        .await
        .unwrap();
    let first = first.run.expect("a run was made");
    assert_eq!(first.status, RunStatus::Continued);
    assert!(f
        .engine
        .store
        .get_checkpoint(&f.dir)
        .await
        .unwrap()
        .is_some());

    let listed = schedules
        .list_schedules()
        .group_name(&group)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = listed.schedules().iter().filter_map(|s| s.name()).collect();
    assert_eq!(names.len(), 1, "one continuation schedule: {names:?}");
    let schedule = schedules
        .get_schedule()
        .group_name(&group)
        .name(names[0])
        .send()
        .await
        .unwrap();
    let expected_at = f.clock.now() + poller::CONTINUE_AFTER;
    let at = format!(
        "at({:04}-{:02}-{:02}T{:02}:{:02}:{:02})",
        expected_at.year(),
        u8::from(expected_at.month()),
        expected_at.day(),
        expected_at.hour(),
        expected_at.minute(),
        expected_at.second()
    );
    assert_eq!(schedule.schedule_expression(), Some(at.as_str()));
    let target = schedule.target().unwrap();
    assert_eq!(
        target.arn(),
        "arn:aws:lambda:us-east-1:123456789012:function:bsync-poller",
        "the alias qualifier is dropped"
    );
    let input: serde_json::Value = serde_json::from_str(target.input().unwrap()).unwrap();
    assert_eq!(input, payload);

    // What Scheduler then invokes, with a whole invocation ahead, finishes the run.
    f.clock.advance(poller::CONTINUE_AFTER);
    let second = poller::handler(&poller, invocation(input, None))
        .await
        .unwrap()
        .run
        .expect("a run was made");
    assert_eq!(second.status, RunStatus::Completed);
    assert!(f
        .engine
        .store
        .get_checkpoint(&f.dir)
        .await
        .unwrap()
        .is_none());
    let users = f.engine.store.list_users(&f.dir).await.unwrap();
    assert_eq!(users.len() as u64 + second.counts.skipped, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_the_api_key_may_not_see_never_clear_stored_values_in_any_mode() {
    let f = Fixture::new(8, |_| {}).await;
    assert_eq!(f.run(SyncMode::Full).await.status, RunStatus::Completed);
    let titles = |users: &[domain::DirectoryUser]| {
        users
            .iter()
            .map(|u| (u.employee_id.to_string(), u.job_title.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let before = titles(&f.engine.store.list_users(&f.dir).await.unwrap());
    assert!(before.values().any(Option::is_some));

    // The same company served to a key that may not see job titles.
    let restricted = Simulator::from_employees(
        SimConfig {
            api_key: KEY.into(),
            restricted_fields: vec!["jobInformationJobTitle".into()],
            ..SimConfig::default()
        },
        f.sim.employees(),
    );
    let server = restricted.serve().await.unwrap();
    let mut d = f.directory().await;
    let expected = d.version;
    d.version += 1;
    d.base_url = Some(server.base_url.clone());
    f.engine
        .store
        .put_directory(&d, Some(expected))
        .await
        .unwrap();

    f.clock.advance(Duration::minutes(1));
    let full = f.run(SyncMode::Full).await;
    assert_eq!(full.status, RunStatus::Completed);
    assert_eq!(
        full.counts.updated, 0,
        "a hidden field is not a cleared one"
    );

    // An incremental run of an employee whose visible fields changed keeps the title.
    let changed = f.live_ids()[0].clone();
    restricted.update(
        &changed,
        BTreeMap::from([("department".to_string(), Some("Moved".to_string()))]),
    );
    f.clock.advance(Duration::minutes(30));
    let incremental = f.run(SyncMode::Incremental).await;
    assert_eq!(incremental.status, RunStatus::Completed);
    assert_eq!(incremental.counts.updated, 1);
    let after = titles(&f.engine.store.list_users(&f.dir).await.unwrap());
    assert_eq!(before, after, "no stored job title was cleared");
    assert_eq!(f.user(&changed).await.department.as_deref(), Some("Moved"));
}
