//! `bamboohr-sync dev`: the whole system in one process on the embedded adapters. The
//! same handlers as on Lambda run here: the webhook handler behind a local HTTP server,
//! the poller handler driven by the in-process scheduler on a timer (schedules rebuilt
//! from the directory records at every tick, so `directories update|pause|resume`
//! made while `dev` was stopped take effect), and the dispatcher handler fed from the
//! in-process bus in SQS-shaped batches. One loopback port serves the webhook
//! endpoint, the admin API and the setup page (`/setup/`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use axum::routing::post;
use axum::Router;
use bamboohr_simulator::{SimConfig, Simulator};
use base64::Engine as _;
use clap::Args;
use domain::{
    Directory, DirectoryId, DirectoryState, SyncMode, SyncRequest, Target, TargetFilter, TargetId,
    TargetKind,
};
use embedded_adapters::{
    InProcessForeignBus, InProcessRetryQueue, InProcessScheduler, SqliteChangeQueue,
};
use lambda_runtime::{Context, LambdaEvent};
use ports::{DirectorySecrets, SecretStore, Store, SystemClock, TargetSecrets};
use rand::RngCore;
use secrecy::SecretString;
use sync_engine::operate::retention::RevokedRetention;
use sync_engine::signing::WebhookSecret;
use sync_engine::Engine;

use crate::error::DevError;
use crate::output::Output;
use crate::receiver::Receiver;

/// Options of `bamboohr-sync dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Start the BambooHR simulator with a generated company and a local receiving app.
    #[arg(long)]
    demo: bool,
    /// Where the local store and secrets live (state survives restarts).
    #[arg(long, default_value = ".dev-data")]
    data_dir: PathBuf,
    /// Employees in the generated company.
    #[arg(long, default_value_t = 25)]
    employees: usize,
    /// Seed of the generated company (the same seed gives the same company).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Port of the local webhook endpoint (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Seconds between scheduled syncs.
    #[arg(long, default_value_t = 60)]
    poll_seconds: u64,
    /// Exit after the first sync has been delivered.
    #[arg(long)]
    once: bool,
    /// Print nothing but errors (with `--output json`, only the JSON summary).
    #[arg(long)]
    quiet: bool,
    /// Connect this real BambooHR company first (as `directories connect` does; the
    /// API key from $BAMBOOHR_API_KEY or, with --secret-stdin, stdin), then serve it.
    #[arg(long, conflicts_with = "demo")]
    subdomain: Option<String>,
    /// The directory id for --subdomain (default: the subdomain).
    #[arg(long, requires = "subdomain")]
    directory_id: Option<String>,
    /// BambooHR base URL instead of https://<subdomain>.bamboohr.com.
    #[arg(long, requires = "subdomain")]
    base_url: Option<String>,
    /// Read the API key for --subdomain from the first line of stdin.
    #[arg(long, requires = "subdomain")]
    secret_stdin: bool,
    /// Days a revoked directory's history is kept before the daily sweep purges it
    /// (the deployed stack's `RevokedRetentionDays`); 1 to 3650.
    #[arg(long, env = "REVOKED_RETENTION_DAYS", default_value_t = RevokedRetention::DEFAULT_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(RevokedRetention::MAX_DAYS)))]
    revoked_retention_days: u32,
}

const DEMO_DIRECTORY: &str = "demo";
const DEMO_TARGET: &str = "demo-app";

fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    b
}

/// What the demo set up.
struct Demo {
    directory_id: DirectoryId,
    receiver: Receiver,
    simulator_url: String,
    _simulator: bamboohr_simulator::SimServer,
}

/// Deliveries the demo prints one line each before it shows progress instead.
const EVENT_LINES: usize = 20;

/// Where the local stack's messages go: text for people (unless `--quiet`), or, with
/// `--output json`, one JSON summary for scripts; progress only on a terminal.
struct Console {
    human: bool,
}

impl Console {
    fn new(args: &DevArgs, mode: Output) -> Self {
        Self {
            human: mode == Output::Human && !args.quiet,
        }
    }

    /// One line for people.
    fn say(&self, line: impl std::fmt::Display) {
        if self.human {
            println!("{line}");
        }
    }

    /// A progress bar of `total` events delivered (drawn only on a terminal).
    fn progress(&self, total: usize) -> indicatif::ProgressBar {
        if !self.human {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} delivering {pos}/{len} events [{elapsed_precise}] {wide_bar}",
            )
            .expect("the template is static and valid"),
        );
        bar
    }
}

/// Runs the local stack until Ctrl-C (or after the first sync with `--once`).
pub async fn run(args: DevArgs, mode: Output) -> Result<(), DevError> {
    let console = Console::new(&args, mode);
    // One `dev` per data directory: an OS file lock, released when this process ends
    // however it ends. CLI commands in other terminals need no lock (SQLite
    // coordinates their writes).
    let _lock = embedded_adapters::DataDirLock::acquire(&args.data_dir)
        .map_err(|e| DevError::Handler(e.to_string()))?;
    // The directory holds HR data and secrets: only its owner may list or enter it,
    // also when it existed before (the lock creates a missing one 0700).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&args.data_dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let store: Arc<dyn Store> = Arc::new(
        crate::stack::open_local_store(&args.data_dir)
            .map_err(|e| DevError::Handler(e.to_string()))?,
    );
    let secrets: Arc<dyn SecretStore> = Arc::new(
        crate::stack::local_secrets(&args.data_dir)
            .map_err(|e| DevError::Handler(e.to_string()))?,
    );
    let queues = crate::stack::local_queue_db(&args.data_dir)
        .map_err(|e| DevError::Handler(e.to_string()))?;
    // The change queue stands where SQS FIFO stands on AWS: an event is published
    // (and leaves the outbox) only once it is in the database, and leaves the queue
    // only once the dispatcher handled it, so a crash at any point loses nothing.
    let changes = Arc::new(SqliteChangeQueue::from_db(
        queues.clone(),
        Arc::new(SystemClock),
    ));
    // Whoever leased changes before this process took the lock has died.
    changes
        .release_leases()
        .map_err(|e| DevError::Handler(e.to_string()))?;
    // Failed deliveries wait in the data directory's retry queue (run by
    // `retry_loop`), as they wait in the SQS retry queue on AWS: they and the dead
    // letters outlive this process, and `status` and `replay dead-letters` read them.
    let retry_queue = Arc::new(
        crate::stack::retry_queue_in(queues.clone(), &args.data_dir)
            .map_err(|e| std::io::Error::other(e.to_string()))?,
    );
    let engine = Engine::new(
        store.clone(),
        secrets.clone(),
        changes.clone(),
        Arc::new(SystemClock),
    )
    .with_retry_queue(retry_queue.clone())
    .with_foreign_bus(Arc::new(InProcessForeignBus::default()));

    if let Some(subdomain) = &args.subdomain {
        connect_company(&engine, &args, subdomain).await?;
    }
    // An empty stack starts too: a setup link for a brand-new directory, or a
    // connect, is how its first directory arrives (said below, once serving).
    let empty = !args.demo
        && !store
            .list_directories()
            .await?
            .iter()
            .any(|d| d.state != DirectoryState::Revoked);

    // Dispatcher: drains the in-process bus through the dispatcher handler.
    let dispatched = Arc::new(AtomicUsize::new(0));
    tokio::spawn(dispatch_loop(engine.clone(), changes, dispatched.clone()));
    tokio::spawn(retry_loop(engine.clone(), retry_queue));

    // Webhook endpoint and admin API on one loopback port.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let webhook_base = format!("{base_url}/webhooks/bamboohr");
    let webhook_deps = Arc::new(webhook::Deps::new(engine.clone()));
    let admin_api = Arc::new(
        admin::AdminApi::new(
            engine
                .clone()
                .with_scheduler(Arc::new(InProcessScheduler::from_db(queues.clone()))),
            Some(webhook_base.clone()),
        )
        .with_setup_base_url(Some(base_url.clone())),
    );
    // The setup page a setup link opens, on the same port (plain HTTP on loopback, so
    // its session cookie is not marked Secure).
    // It changes configuration through the same admin API, in this process.
    let portal = Arc::new(portal::Portal::new(
        engine.clone(),
        admin::client::AdminClient::new(admin::client::Transport::InProcess {
            api: admin_api.clone(),
            actor: "portal:local".into(),
        })
        .map_err(|e| DevError::Handler(e.to_string()))?,
        portal::Cookies::Loopback,
    ));
    let admin_token = {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    };
    let app = Router::new()
        .route(
            "/webhooks/bamboohr/{directory_id}",
            post(webhook::local::axum_route),
        )
        .with_state(webhook_deps)
        .merge(portal::local::router(portal))
        .merge(admin::local::router(
            admin_api,
            admin::local::LocalAuth {
                token: SecretString::from(admin_token.clone()),
                actor: crate::stack::local_actor(),
            },
        ));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    // CLI commands in other terminals find the admin API here; the file goes when
    // `dev` stops (a crashed `dev` leaves it naming a port nobody answers on, which
    // commands notice).
    let endpoint_file = AdminEndpointFile::write(&args.data_dir, &base_url, &admin_token)?;

    let demo = if args.demo {
        Some(start_demo(&args, store.as_ref(), secrets.as_ref(), &webhook_base).await?)
    } else {
        None
    };

    match &demo {
        Some(d) => {
            console.say("bamboohr-sync dev (demo)");
            console.say(format!("  BambooHR simulator : {}", d.simulator_url));
            console.say(format!(
                "  webhook endpoint   : {webhook_base}/{}",
                d.directory_id
            ));
            console.say(format!("  receiving app      : {}", d.receiver.url));
            d.receiver
                .print_next(if console.human { EVENT_LINES } else { 0 });
        }
        None => {
            console.say("bamboohr-sync dev");
            console.say(format!(
                "  webhook endpoint   : {webhook_base}/<directory id>"
            ));
            console.say(format!("  setup page         : {base_url}/setup/"));
        }
    }
    console.say(format!(
        "  data directory     : {}",
        args.data_dir.display()
    ));
    console.say("");
    if empty {
        // Said on stderr too, so `--quiet` and `--output json` runs see it.
        let line = format!(
            "no directory is connected yet: create a setup link for a new one with \
             `bamboohr-sync setup-links create <directory id>` (its page is served at \
             {base_url}/setup/), or connect one with `bamboohr-sync directories connect`; \
             `dev --demo` runs a simulated company"
        );
        if console.human {
            console.say(&line);
        } else {
            eprintln!("{line}");
        }
    }

    if let Some(d) = &demo {
        let before = d.receiver.count();
        let already = dispatched.load(Ordering::SeqCst);
        let request = SyncRequest {
            directory_id: d.directory_id.clone(),
            mode: SyncMode::Full,
        };
        let run = sync_once(&engine, &request, &console).await?;
        let published = run.counts.events_published as usize;
        let bar = console.progress(published);
        wait_for_dispatch(&dispatched, already, published, &bar).await;
        bar.finish_and_clear();
        let delivered = d.receiver.count() - before;
        if delivered > EVENT_LINES {
            console.say(format!(
                "  ({} more deliveries not printed)",
                delivered - EVENT_LINES
            ));
        }
        console.say(format!(
            "first sync delivered {delivered} events to the receiving app"
        ));
        if mode == Output::Json {
            let c = &run.counts;
            println!(
                "{}",
                serde_json::json!({
                    "directoryId": d.directory_id,
                    "employeesSeen": c.seen,
                    "created": c.created,
                    "updated": c.updated,
                    "unchanged": c.unchanged,
                    "skipped": c.skipped,
                    "eventsPublished": c.events_published,
                    "eventsDelivered": delivered,
                })
            );
        }
        // After the first sync, each change is worth its own line again.
        d.receiver
            .print_next(if console.human { usize::MAX } else { 0 });
        if args.once {
            return Ok(());
        }
    }
    console.say(format!(
        "serving; checking schedules every {}s; Ctrl-C to stop",
        args.poll_seconds
    ));
    let scheduler = InProcessScheduler::from_db(queues);
    if args.once && demo.is_none() {
        let already = dispatched.load(Ordering::SeqCst);
        let published = run_due(&engine, &scheduler, &console).await?;
        let bar = console.progress(published);
        wait_for_dispatch(&dispatched, already, published, &bar).await;
        bar.finish_and_clear();
        return Ok(());
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(args.poll_seconds.max(1)));
    if demo.is_some() {
        // The demo just ran its first sync.
        ticker.tick().await;
    }
    let retention = RevokedRetention::days(args.revoked_retention_days)
        .map_err(|e| DevError::Handler(e.to_string()))?;
    // The deployed stack sweeps daily (stale directories, revoked ones past their
    // retention); the local stack at start and then once a day.
    let mut last_sweep: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
                    last_sweep = Some(std::time::Instant::now());
                    if let Err(e) = sweep(&engine, retention, &console).await {
                        eprintln!("sweep failed: {e}");
                    }
                }
                if let Err(e) = run_due(&engine, &scheduler, &console).await {
                    eprintln!("scheduled sync failed: {e}");
                }
            }
            _ = tokio::signal::ctrl_c() => {
                console.say("stopping");
                drop(endpoint_file);
                return Ok(());
            }
        }
    }
}

/// The data directory's [`admin::client::DEV_ADMIN_FILE`] while `dev` runs: written
/// owner-only, removed when dropped.
struct AdminEndpointFile(PathBuf);

impl AdminEndpointFile {
    fn write(data_dir: &std::path::Path, url: &str, token: &str) -> std::io::Result<Self> {
        let path = data_dir.join(admin::client::DEV_ADMIN_FILE);
        let text = serde_json::to_string(&admin::client::DevEndpoint {
            url: url.to_string(),
            token: token.to_string(),
        })
        .map_err(std::io::Error::other)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        use std::io::Write as _;
        options.open(&path)?.write_all(text.as_bytes())?;
        Ok(Self(path))
    }
}

impl Drop for AdminEndpointFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Puts every directory's schedule into the in-process scheduler (as
/// `reconcile_directory_schedule` does on AWS after each change), then runs what is
/// due now through the poller handler, as EventBridge Scheduler would.
/// Returns how many events the runs published.
async fn run_due(
    engine: &Engine,
    scheduler: &InProcessScheduler,
    console: &Console,
) -> Result<usize, DevError> {
    for d in engine.store.list_directories().await? {
        sync_engine::operate::schedule::reconcile_directory_schedule(scheduler, &d)
            .await
            .map_err(|e| DevError::Handler(e.to_string()))?;
    }
    let mut published = 0;
    for request in scheduler.due(time::OffsetDateTime::now_utc()) {
        published += sync_once(engine, &request, console)
            .await?
            .counts
            .events_published as usize;
    }
    Ok(published)
}

/// Connects the company named by `--subdomain`, validating the key with BambooHR.
async fn connect_company(engine: &Engine, args: &DevArgs, subdomain: &str) -> Result<(), DevError> {
    let key = if args.secret_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim().to_string()
    } else {
        std::env::var(crate::commands::directories::API_KEY_ENV)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    if key.is_empty() {
        return Err(DevError::Handler(format!(
            "no BambooHR API key: set {} or pass --secret-stdin and write it to stdin",
            crate::commands::directories::API_KEY_ENV
        )));
    }
    let id = args.directory_id.as_deref().unwrap_or(subdomain);
    let directory_id = DirectoryId::parse(id)
        .map_err(|e| DevError::Handler(format!("directory id {id:?}: {e}")))?;
    let outcome = sync_engine::operate::connect(
        engine,
        &InProcessScheduler::new(),
        sync_engine::operate::ConnectRequest {
            directory_id,
            subdomain: subdomain.to_string(),
            base_url: args.base_url.clone(),
            credential: sync_engine::operate::Credential::ApiKey(SecretString::from(key)),
            time_zone: None,
            register_webhook_at: None,
        },
        &crate::stack::local_actor(),
    )
    .await?;
    println!(
        "connected {} ({} employees visible)",
        outcome.directory.id, outcome.employees
    );
    Ok(())
}

/// Starts the simulator and the receiving app and writes the demo directory.
async fn start_demo(
    args: &DevArgs,
    store: &dyn Store,
    secrets: &dyn SecretStore,
    webhook_base: &str,
) -> Result<Demo, DevError> {
    // BambooHR: the simulator, with a fresh API key each start.
    let api_key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(18));
    let simulator = Simulator::generate(SimConfig {
        api_key: api_key.clone(),
        seed: args.seed,
        employees: args.employees,
        ..SimConfig::default()
    });
    let sim_server = simulator.serve().await?;

    // The receiving app, with a fresh signing secret each start.
    let whsec = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(random_bytes(24))
    );
    let signing = WebhookSecret::parse(&SecretString::from(whsec.clone()))
        .map_err(|e| DevError::Handler(e.to_string()))?;
    let receiver = Receiver::start(signing, EVENT_LINES).await?;

    let webhook_key = hex_key();
    let directory_id = DirectoryId::parse(DEMO_DIRECTORY).expect("static id is valid");
    // The simulator pushes a signed field-based webhook to our endpoint whenever one of
    // its employees changes (through its control API), as BambooHR would.
    simulator.set_webhook_target(
        &format!("{webhook_base}/{DEMO_DIRECTORY}"),
        webhook_key.as_bytes(),
    );
    let mut target_secrets = std::collections::BTreeMap::new();
    target_secrets.insert(
        DEMO_TARGET.to_string(),
        TargetSecrets {
            signing_secrets: vec![SecretString::from(whsec)],
            ..TargetSecrets::default()
        },
    );
    secrets
        .put(
            DEMO_DIRECTORY,
            &DirectorySecrets {
                bamboohr_api_key: Some(SecretString::from(api_key)),
                webhook_keys: vec![SecretString::from(webhook_key.clone())],
                targets: target_secrets,
                ..DirectorySecrets::default()
            },
        )
        .await?;
    let every_minutes = u32::try_from(args.poll_seconds.div_ceil(60).max(1)).unwrap_or(u32::MAX);
    upsert_demo_directory(
        store,
        &directory_id,
        &sim_server.base_url,
        &receiver.url,
        every_minutes,
    )
    .await?;
    Ok(Demo {
        directory_id,
        receiver,
        simulator_url: sim_server.base_url.clone(),
        _simulator: sim_server,
    })
}

fn hex_key() -> String {
    hex::encode(random_bytes(32))
}

async fn upsert_demo_directory(
    store: &dyn Store,
    id: &DirectoryId,
    bamboohr_url: &str,
    receiver_url: &str,
    every_minutes: u32,
) -> Result<(), DevError> {
    let existing = store.get_directory(id).await?;
    let expected = existing.as_ref().map(|d| d.version);
    let mut directory = match existing {
        Some(d) => d,
        None => {
            Directory::new(id.clone(), "demo", DEMO_DIRECTORY).expect("static subdomain is valid")
        }
    };
    directory.base_url = Some(bamboohr_url.to_string());
    directory.schedule.incremental_every_minutes = every_minutes;
    if directory.connected_at.is_none() {
        directory.connected_at = Some(time::OffsetDateTime::now_utc());
    }
    directory.targets = vec![Target {
        id: TargetId::parse(DEMO_TARGET).expect("static id is valid"),
        kind: TargetKind::app_webhook(receiver_url.to_string()),
        filter: TargetFilter::default(),
        enabled: true,
    }];
    directory.version = expected.unwrap_or(0) + 1;
    store.put_directory(&directory, expected).await?;
    Ok(())
}

/// How often the local stack runs the poller's sweep.
const SWEEP_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// Runs the poller's sweep (`{"sweep": true}`) as the stack's daily schedule would,
/// and prints what it found.
async fn sweep(
    engine: &Engine,
    retention: RevokedRetention,
    console: &Console,
) -> Result<(), DevError> {
    let poller = poller::Poller::new(engine.clone()).with_revoked_retention(retention);
    let payload = serde_json::json!({ "sweep": true });
    let response = poller::handler(&poller, LambdaEvent::new(payload, Context::default()))
        .await
        .map_err(|e| DevError::Handler(e.to_string()))?;
    for id in &response.purged {
        console.say(format!(
            "purged revoked directory {id} ({} days after it was revoked)",
            retention.in_days()
        ));
    }
    for id in &response.stale {
        console.say(format!("directory {id} is stale"));
    }
    Ok(())
}

/// Runs the poller handler once, as the schedule would, and prints its report.
async fn sync_once(
    engine: &Engine,
    request: &SyncRequest,
    console: &Console,
) -> Result<domain::SyncRun, DevError> {
    let id = &request.directory_id;
    let payload = serde_json::to_value(request).expect("a sync request serializes");
    let poller = poller::Poller::new(engine.clone());
    let response = poller::handler(&poller, LambdaEvent::new(payload, Context::default()))
        .await
        .map_err(|e| DevError::Handler(e.to_string()))?;
    let Some(run) = response.run else {
        return Err(DevError::Handler(format!("directory {id} was not synced")));
    };
    let r = &run.counts;
    console.say(format!(
        "sync: {} employees seen, {} created, {} updated, {} unchanged, {} skipped, {} events published",
        r.seen, r.created, r.updated, r.unchanged, r.skipped, r.events_published
    ));
    for s in &run.skipped {
        console.say(format!(
            "  skipped employee {}: {}",
            s.employee_id, s.reason
        ));
    }
    Ok(run)
}

/// Waits until `count` more events than `already` were dispatched, showing progress;
/// gives up only when nothing moved for 30 s (a large company takes as long as it
/// takes, a stuck one does not hang `--once`).
async fn wait_for_dispatch(
    dispatched: &AtomicUsize,
    already: usize,
    count: usize,
    bar: &indicatif::ProgressBar,
) {
    const STALL: Duration = Duration::from_secs(30);
    let mut last = (dispatched.load(Ordering::SeqCst), std::time::Instant::now());
    loop {
        let now = dispatched.load(Ordering::SeqCst);
        bar.set_position(now.saturating_sub(already).min(count) as u64);
        if now >= already + count {
            return;
        }
        if now != last.0 {
            last = (now, std::time::Instant::now());
        } else if last.1.elapsed() > STALL {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs due retries once a second, as the retry queue's event source mapping does.
async fn retry_loop(engine: Engine, queue: Arc<InProcessRetryQueue>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let due = match queue.try_take_visible(time::OffsetDateTime::now_utc()) {
            Ok(due) => due,
            Err(e) => {
                eprintln!("the retry queue could not be read ({e}); trying again");
                continue;
            }
        };
        for task in due {
            if let Err(e) = sync_engine::deliver::replay::run_retry(&engine, &task).await {
                eprintln!("a retry failed ({e}); it is scheduled again");
                let _ = ports::RetryQueue::schedule(queue.as_ref(), &task, Duration::from_secs(30))
                    .await;
            }
        }
    }
}

/// How long a received change stays with this process: a change whose dispatch never
/// finished (the process died) is received again after it, or at once by the next
/// `dev` (which takes back every lease at start).
const CHANGE_LEASE: Duration = Duration::from_secs(120);

/// Receipts of a failed change are tried again after this many seconds times the
/// times it was received, up to five minutes; it stays in the queue until it goes.
const CHANGE_RETRY_STEP: u64 = 2;

/// Feeds the change queue to the dispatcher handler in SQS-shaped batches, as the
/// queue's event source mapping does on AWS: a handled change is acknowledged, a
/// failed one comes back later. Counts handled changes (and changes that failed five
/// times, which stay queued) so `--once` knows when the first sync is through.
async fn dispatch_loop(
    engine: Engine,
    queue: Arc<SqliteChangeQueue>,
    dispatched: Arc<AtomicUsize>,
) {
    loop {
        let batch = match queue
            .receive_wait(10, CHANGE_LEASE, Duration::from_secs(1))
            .await
        {
            Ok(batch) => batch,
            Err(e) => {
                eprintln!("the change queue could not be read ({e}); trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            continue;
        }
        let mut sqs = SqsEvent::default();
        sqs.records = batch
            .iter()
            .map(|r| dispatcher::change_queue_message(&r.event, &r.receipt))
            .collect();
        // The handler names failed messages by their message id, the event id.
        let failed: Vec<String> =
            match dispatcher::handler(&engine, LambdaEvent::new(sqs, Context::default())).await {
                Ok(resp) => resp
                    .batch_item_failures
                    .into_iter()
                    .map(|f| f.item_identifier)
                    .collect(),
                Err(_) => batch.iter().map(|r| r.event.id.to_string()).collect(),
            };
        let (bad, good): (Vec<_>, Vec<_>) = batch
            .iter()
            .partition(|r| failed.contains(&r.event.id.to_string()));
        let done: Vec<String> = good.iter().map(|r| r.receipt.clone()).collect();
        if let Err(e) = queue.ack(&done) {
            // Not acknowledged: the changes come back and are handled again, which the
            // ledger makes harmless.
            eprintln!("handled changes could not be acknowledged ({e})");
        }
        let mut settled = done.len();
        for r in &bad {
            let delay = (CHANGE_RETRY_STEP * u64::from(r.receive_count)).min(300);
            if let Err(e) = queue
                .change_visibility(std::slice::from_ref(&r.receipt), Duration::from_secs(delay))
            {
                eprintln!(
                    "a failed change could not be put back ({e}); it returns after its lease"
                );
            }
            if r.receive_count >= 5 {
                settled += 1;
            }
        }
        if !bad.is_empty() {
            eprintln!("{} changes failed; they are tried again", bad.len());
        }
        dispatched.fetch_add(settled, Ordering::SeqCst);
    }
}
