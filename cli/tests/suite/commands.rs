//! Every operator command against the local stack, in-process through
//! `bamboohr_sync::run` (the binary's own entry point), with the BambooHR simulator as
//! the company and a local app receiving deliveries.

use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bamboohr_simulator::{SimConfig, Simulator};
use bamboohr_sync::{run, Cli, CliError};
use clap::Parser;
use serde_json::Value;

const KEY: &str = "sim-key-5c1d8e";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Local {
    data: tempfile::TempDir,
    sim_url: String,
    app_url: String,
    app_hits: Arc<AtomicUsize>,
    _sim: bamboohr_simulator::SimServer,
}

async fn local() -> Local {
    let sim = Simulator::generate(SimConfig {
        api_key: KEY.into(),
        employees: 8,
        seed: 11,
        ..SimConfig::default()
    });
    let server = sim.serve().await.unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Local {
        data: tempfile::tempdir().unwrap(),
        sim_url: server.base_url.clone(),
        app_url,
        app_hits: hits,
        _sim: server,
    }
}

impl Local {
    /// Runs `bamboohr-sync <args>` with `stdin`; the output, or the error.
    async fn cmd(&self, args: &[&str], stdin: &str) -> Result<String, CliError> {
        let mut argv = vec![
            "bamboohr-sync".to_string(),
            "--local-data-dir".to_string(),
            self.data.path().display().to_string(),
        ];
        argv.extend(args.iter().map(|s| s.to_string()));
        let cli = Cli::try_parse_from(argv).expect("the arguments parse");
        let mut out = Vec::new();
        let mut input = Cursor::new(stdin.as_bytes().to_vec());
        // Boxed: the command's future is large, and held inline by every await of
        // the long walkthrough test it overflowed the test thread's stack.
        Box::pin(run(cli, &mut out, &mut input)).await?;
        Ok(String::from_utf8(out).unwrap())
    }

    async fn ok(&self, args: &[&str]) -> String {
        self.cmd(args, "")
            .await
            .unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all).await).unwrap()
    }

    async fn connect(&self) -> String {
        self.cmd(
            &[
                "directories",
                "connect",
                "--id",
                "acme",
                "--subdomain",
                "acme",
                "--base-url",
                &self.sim_url,
                "--time-zone",
                "Europe/Berlin",
                "--secret-stdin",
            ],
            &format!("{KEY}\n"),
        )
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn an_operator_connects_configures_syncs_inspects_replays_and_revokes_a_directory() {
    let l = local().await;
    let connected = l.connect().await;
    assert!(
        connected.contains("connected acme (8 employees visible)"),
        "{connected}"
    );

    let list = l.json(&["directories", "list"]).await;
    assert_eq!(list[0]["id"], "acme");
    let shown = l.ok(&["directories", "show", "acme"]).await;
    assert!(shown.contains("Europe/Berlin"), "{shown}");

    let updated = l
        .ok(&[
            "directories",
            "update",
            "acme",
            "--group-source",
            "department",
            "--every-minutes",
            "15",
            "--stale-after-minutes",
            "90",
            "--safeguard-max-share",
            "0.5",
            "--safeguard-window-minutes",
            "90",
        ])
        .await;
    assert!(updated.contains("next run is a full sync"), "{updated}");
    let shown = l.ok(&["directories", "show", "acme"]).await;
    assert!(shown.contains("webhooks over 90 min"), "{shown}");
    let bad = l
        .cmd(
            &[
                "directories",
                "update",
                "acme",
                "--time-zone",
                "Nowhere/Else",
            ],
            "",
        )
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("time zone"), "{bad}");

    let added = l
        .cmd(
            &[
                "targets",
                "add",
                "acme",
                "--id",
                "app",
                "--kind",
                "app-webhook",
                "--url",
                &l.app_url,
                "--secret-stdin",
            ],
            &format!("{WHSEC}\n"),
        )
        .await
        .unwrap();
    assert!(added.contains("target app added"), "{added}");
    let targets = l.ok(&["targets", "list", "acme"]).await;
    assert!(
        targets.contains("app_webhook") && targets.contains("enabled"),
        "{targets}"
    );
    let tested = l.ok(&["targets", "test", "acme", "app"]).await;
    assert!(tested.starts_with("app: ok"), "{tested}");
    assert_eq!(l.app_hits.load(Ordering::SeqCst), 1, "one signed ping");

    let synced = l.json(&["sync", "acme", "--full"]).await;
    assert_eq!(synced["status"], "completed");
    assert_eq!(synced["counts"]["created"], 8);
    let run_id = synced["id"].as_str().unwrap().to_string();

    let users = l.json(&["users", "list", "acme"]).await;
    assert_eq!(users.as_array().unwrap().len(), 8);
    let employee = users[0]["employeeId"].as_str().unwrap().to_string();
    let user_id = users[0]["id"].as_str().unwrap().to_string();
    let shown = l.json(&["users", "show", "acme", &employee]).await;
    assert_eq!(shown["id"], user_id.as_str());
    let active = l
        .json(&["users", "list", "acme", "--state", "active"])
        .await;
    assert!(!active.as_array().unwrap().is_empty());

    let groups = l.ok(&["groups", "list", "acme"]).await;
    assert!(groups.contains("department"), "{groups}");

    let runs = l.ok(&["runs", "list", "acme"]).await;
    assert!(runs.contains(&run_id) && runs.contains("full"), "{runs}");
    let run = l.json(&["runs", "show", "acme", &run_id]).await;
    assert_eq!(run["counts"]["seen"], 8);

    // An event the bus refused for good shows as its id, size and reason.
    let refused = plant_quarantined(l.data.path()).await;
    let listed = l.ok(&["quarantine", "list", "acme"]).await;
    assert!(
        listed.contains(&refused) && listed.contains("MessageTooLong"),
        "{listed}"
    );
    assert!(!listed.contains("secret-salary"), "no event data: {listed}");

    // The local dispatcher runs in `dev`; a re-push delivers now, here.
    let pushed = l.ok(&["replay", "push", "acme", "--target", "app"]).await;
    assert!(
        pushed.contains("8 users re-pushed to app: 8 delivered"),
        "{pushed}"
    );
    assert_eq!(l.app_hits.load(Ordering::SeqCst), 9);
    let delivered = l
        .json(&[
            "deliveries",
            "list",
            "acme",
            "--target",
            "app",
            "--status",
            "delivered",
        ])
        .await;
    assert_eq!(delivered.as_array().unwrap().len(), 8);
    let one = l
        .json(&["deliveries", "list", "acme", "--user", &employee])
        .await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["objectId"], user_id.as_str());
    let one_push = l
        .ok(&[
            "replay",
            "push",
            "acme",
            "--target",
            "app",
            "--employee",
            &employee,
        ])
        .await;
    assert!(one_push.starts_with("1 users re-pushed"), "{one_push}");

    let status = l.json(&["status", "acme"]).await;
    assert_eq!(status[0]["state"], "active");
    assert_eq!(status[0]["stale"], false);
    assert_eq!(status[0]["users"]["active"], users_in(&active));
    assert_eq!(status[0]["targets"][0]["failing"], false);
    let human = l.ok(&["status"]).await;
    assert!(
        human.contains("last run") && human.contains("target app"),
        "{human}"
    );

    // A second full sync of the same company: the evidence snapshot is taken again
    // only if the figures moved (the re-push changed the share synced to the target).
    l.ok(&["sync", "acme", "--full"]).await;
    let evidence = l.json(&["evidence", "list", "acme"]).await;
    let rows = evidence.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{evidence}");
    assert_eq!(rows[0]["targetShare"]["app"], 1.0);
    assert_eq!(rows[0]["stale"], false);
    assert_eq!(rows[1]["targetShare"]["app"], 0.0);
    l.ok(&["sync", "acme", "--full"]).await;
    assert_eq!(
        l.json(&["evidence", "list", "acme"])
            .await
            .as_array()
            .unwrap()
            .len(),
        2,
        "an identical snapshot is not stored twice"
    );
    let ev_human = l.ok(&["evidence", "list", "acme"]).await;
    assert!(
        ev_human.contains("app=100%") && ev_human.contains("current"),
        "{ev_human}"
    );

    let not_held = l.cmd(&["hold", "release", "acme"], "").await.unwrap_err();
    assert!(not_held.to_string().contains("not held"), "{not_held}");
    // A delivery `dev` gave up on waits in the data directory's retry queue: the
    // status counts it and `replay dead-letters` puts it back for the next `dev` run.
    plant_dead_letter(l.data.path()).await;
    assert_eq!(l.json(&["status", "acme"]).await[0]["deadLetterDepth"], 1);
    assert!(l.ok(&["status", "acme"]).await.contains("dead letters   1"));
    let redriven = l
        .ok(&["replay", "dead-letters", "--directory", "acme"])
        .await;
    assert!(
        redriven.contains("1 dead letters put back on the retry path"),
        "{redriven}"
    );
    assert_eq!(l.json(&["status", "acme"]).await[0]["deadLetterDepth"], 0);
    let queue = bamboohr_sync::local_retry_queue(l.data.path()).unwrap();
    assert_eq!(queue.waiting(), 1, "waiting for the next dev run");
    let audit = l.json(&["audit", "list", "acme"]).await;
    assert_eq!(audit[0]["action"], "replay");
    assert_eq!(audit[0]["details"]["deadLetters"], 1);

    l.ok(&[
        "targets",
        "update",
        "acme",
        "--id",
        "app",
        "--kind",
        "app-webhook",
        "--url",
        &l.app_url,
        "--disabled",
    ])
    .await;
    assert!(l
        .ok(&["targets", "list", "acme"])
        .await
        .contains("disabled"));
    l.ok(&["targets", "remove", "acme", "app"]).await;
    assert!(l.ok(&["targets", "list", "acme"]).await.contains("(none)"));

    assert!(l
        .ok(&["directories", "pause", "acme"])
        .await
        .contains("paused"));
    assert!(l
        .ok(&["directories", "resume", "acme"])
        .await
        .contains("active"));
    let revoked = l.ok(&["directories", "revoke", "acme"]).await;
    assert!(revoked.contains("revoked"), "{revoked}");
    // The revocation date shows, in text and JSON: history is kept for the
    // retention window counted from it.
    let shown = l.json(&["directories", "show", "acme"]).await;
    let deleted_at = shown["deletedAt"]
        .as_str()
        .expect("deletedAt is set")
        .to_string();
    assert!(l
        .ok(&["directories", "show", "acme"])
        .await
        .contains(&format!("revoked at     {deleted_at}")));
    let listed = l.json(&["directories", "list"]).await;
    assert_eq!(listed[0]["deletedAt"], deleted_at.as_str());
    let table = l.ok(&["directories", "list"]).await;
    assert!(
        table.contains("REVOKED AT") && table.contains(&deleted_at),
        "{table}"
    );
    let secrets = std::fs::read_to_string(l.data.path().join("secrets.json")).unwrap();
    assert!(!secrets.contains(KEY), "the credential secret is deleted");
    // History stays: users, runs and the audit log.
    assert_eq!(
        l.json(&["users", "list", "acme"])
            .await
            .as_array()
            .unwrap()
            .len(),
        8
    );

    let audit = l.json(&["audit", "list", "acme"]).await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "connect",
        "settings_change",
        "target_change",
        "sync",
        "replay",
        "pause",
        "resume",
        "revoke",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    assert_eq!(actions.first(), Some(&"connect"));
    assert_eq!(actions.last(), Some(&"revoke"));
    assert!(audit[0]["actor"].as_str().unwrap().starts_with("local:"));
    let audit_text = l.ok(&["audit", "list", "acme"]).await;
    assert!(!audit_text.contains(KEY) && !audit_text.contains(WHSEC));
}

fn users_in(list: &Value) -> Value {
    Value::from(list.as_array().unwrap().len())
}

#[tokio::test]
async fn commands_on_an_unknown_directory_or_without_a_secret_fail_with_one_line() {
    let l = local().await;
    let missing = l
        .cmd(&["directories", "show", "nope"], "")
        .await
        .unwrap_err();
    assert_eq!(missing.to_string(), "directory nope not found");
    let no_key = l
        .cmd(
            &[
                "directories",
                "connect",
                "--id",
                "x",
                "--subdomain",
                "x",
                "--secret-stdin",
            ],
            "\n",
        )
        .await
        .unwrap_err();
    assert!(
        no_key.to_string().starts_with("no BambooHR API key"),
        "{no_key}"
    );
    let bad_status = l
        .cmd(&["deliveries", "list", "nope", "--status", "lost"], "")
        .await
        .unwrap_err();
    assert!(!bad_status.to_string().contains('\n'));
}

#[tokio::test]
async fn a_directory_connects_with_an_oauth_access_token_read_from_stdin() {
    let sim = Simulator::generate(SimConfig {
        api_key: KEY.into(),
        employees: 2,
        ..SimConfig::default()
    });
    sim.add_bearer_token("oauth-access-token-1");
    let server = sim.serve().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let argv = |extra: &[&str]| {
        let mut v = vec![
            "bamboohr-sync".to_string(),
            "--local-data-dir".to_string(),
            data.path().display().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        Cli::try_parse_from(v).unwrap()
    };
    let connect = [
        "directories",
        "connect",
        "--id",
        "oauth-co",
        "--subdomain",
        "oauthco",
        "--base-url",
        server.base_url.as_str(),
        "--oauth",
        "--secret-stdin",
    ];
    let mut out = Vec::new();
    let refused = run(
        argv(&connect),
        &mut out,
        &mut Cursor::new(b"revoked-token\n".to_vec()),
    )
    .await
    .unwrap_err();
    assert!(refused.to_string().starts_with("bad API key"), "{refused}");

    run(
        argv(&connect),
        &mut out,
        &mut Cursor::new(b"oauth-access-token-1\n".to_vec()),
    )
    .await
    .unwrap();
    let mut shown = Vec::new();
    run(
        argv(&["--output", "json", "directories", "show", "oauth-co"]),
        &mut shown,
        &mut Cursor::new(Vec::new()),
    )
    .await
    .unwrap();
    let v: Value = serde_json::from_slice(&shown).unwrap();
    assert_eq!(v["auth"], "o_auth");
    let secrets = std::fs::read_to_string(data.path().join("secrets.json")).unwrap();
    assert!(
        secrets.contains("oauth-co/bamboohr") && secrets.contains(ports::ENVELOPE_SCHEME),
        "the tokens are in the local secret file, sealed"
    );
    assert!(!secrets.contains("oauth-access-token-1"), "never in clear");
    assert!(!String::from_utf8_lossy(&out).contains("oauth-access-token-1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn targets_test_asks_a_real_scim_server_for_one_user_with_the_stored_token() {
    let script = test_peers::workspace_root().join("tests/peers/scim_server.py");
    let scim = test_peers::spawn_python_peer(
        &script,
        &[],
        &[("SCIM_BEARER_TOKEN", "scim-token-for-the-test")],
    );
    let l = local().await;
    l.connect().await;
    let base = format!("{}/v2", scim.base_url());
    l_cmd_add(&l, "idp", &base, "scim-token-for-the-test").await;
    l_cmd_add(&l, "idp-wrong", &base, "not-the-token").await;

    let ok = l.ok(&["targets", "test", "acme", "idp"]).await;
    assert!(ok.starts_with("idp: ok (scim answered 200"), "{ok}");
    let refused = l
        .cmd(&["targets", "test", "acme", "idp-wrong"], "")
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("scim answered 401"),
        "{refused}"
    );
}

async fn l_cmd_add(l: &Local, id: &str, base: &str, token: &str) {
    l.cmd(
        &[
            "targets",
            "add",
            "acme",
            "--id",
            id,
            "--kind",
            "scim",
            "--url",
            base,
            "--secret-stdin",
        ],
        &format!("{token}\n"),
    )
    .await
    .unwrap();
}

/// A dead letter of `acme`'s app target in the local retry queue, as `dev` leaves it
/// after the last retry failed.
/// Quarantines an event of acme in the local store, as the outbox does when the bus
/// refuses one for good; returns its id.
async fn plant_quarantined(data: &std::path::Path) -> String {
    use ports::SyncStore;
    let store = embedded_adapters::SqliteStore::open(data.join("store.db")).unwrap();
    let event = domain::ChangeEvent::new(
        domain::EventType::UserUpdated,
        domain::DirectoryId::parse("acme").unwrap(),
        "usr_huge",
        3,
        time::OffsetDateTime::now_utc(),
        serde_json::json!({"salary": "secret-salary"}),
    );
    store
        .quarantine_events(
            &event.directory_id,
            &[ports::QuarantinedEvent {
                event: event.clone(),
                reason: "MessageTooLong: the notice is 300000 bytes".into(),
                quarantined_at: time::OffsetDateTime::now_utc(),
            }],
        )
        .await
        .unwrap();
    event.id.to_string()
}

async fn plant_dead_letter(data: &std::path::Path) {
    use ports::RetryQueue;
    let now = time::OffsetDateTime::now_utc();
    let queue = bamboohr_sync::local_retry_queue(data).unwrap();
    let task = ports::RetryTask {
        target_id: domain::TargetId::parse("app").unwrap(),
        event: domain::ChangeEvent::new(
            domain::EventType::UserUpdated,
            domain::DirectoryId::parse("acme").unwrap(),
            "usr_planted",
            2,
            now,
            serde_json::json!({}),
        ),
        retries: 10,
        due_at: now,
        first_failed_at: now,
        last_error: "503".into(),
        force: false,
    };
    queue
        .dead_letter(&ports::DeadLetter {
            task,
            reason: "11 attempts failed".into(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn setup_links_are_created_listed_without_their_token_and_revoked() {
    let l = local().await;
    // A directory that is not connected yet: the link is what connects it.
    let created = l
        .json(&["setup-links", "create", "newco", "--expires-in-days", "3"])
        .await;
    let token = created["token"].as_str().unwrap().to_string();
    let id = created["link"]["id"].as_str().unwrap().to_string();
    assert!(token.starts_with(&format!("newco.{id}.")), "{created}");
    assert_eq!(created["link"]["state"], "active");
    let human = l.ok(&["setup-links", "create", "newco"]).await;
    assert!(human.contains("shown only now"), "{human}");

    let listed = l.ok(&["setup-links", "list", "newco"]).await;
    assert!(
        listed.contains(&id) && listed.contains("active"),
        "{listed}"
    );
    let secret = token.rsplit('.').next().unwrap();
    assert!(!listed.contains(secret), "a list never shows a token");
    let json = l.json(&["setup-links", "list", "newco"]).await;
    assert_eq!(json.as_array().unwrap().len(), 2);

    let revoked = l.ok(&["setup-links", "revoke", "newco", &id]).await;
    assert!(revoked.contains("revoked"), "{revoked}");
    let err = l
        .cmd(
            &["setup-links", "revoke", "newco", "sl0000000000000000"],
            "",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
    let err = l
        .cmd(
            &["setup-links", "create", "newco", "--expires-in-days", "31"],
            "",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("expiresInDays"), "{err}");
    // Audited under the operator; the audit route reads a connected directory's log.
    l.connect().await;
    let made = l.json(&["setup-links", "create", "acme"]).await;
    let acme_link = made["link"]["id"].as_str().unwrap();
    l.ok(&["setup-links", "revoke", "acme", acme_link]).await;
    let audit = l.ok(&["audit", "list", "acme"]).await;
    assert_eq!(audit.matches("setup_link_change").count(), 2, "{audit}");
}

#[tokio::test]
async fn the_stacks_oauth_client_is_set_from_stdin_shown_without_its_secret_audited_and_removed() {
    let l = local().await;
    let shown = l.json(&["oauth-client", "show"]).await;
    assert_eq!(shown["configured"], false, "{shown}");

    // The secret from stdin (or BAMBOOHR_OAUTH_CLIENT_SECRET), never the command line.
    let err = l
        .cmd(&["oauth-client", "set", "--client-id", "stack-app"], "")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("BAMBOOHR_OAUTH_CLIENT_SECRET"),
        "{err}"
    );
    let set = l
        .cmd(
            &[
                "oauth-client",
                "set",
                "--client-id",
                "stack-app",
                "--secret-stdin",
            ],
            "stack-app-client-secret-42\n",
        )
        .await
        .unwrap();
    assert!(
        set.contains("stack-app") && set.contains("Connect with BambooHR"),
        "{set}"
    );
    assert!(!set.contains("stack-app-client-secret-42"));
    let shown = l.json(&["oauth-client", "show"]).await;
    assert_eq!(shown["configured"], true);
    assert_eq!(shown["clientId"], "stack-app");
    assert!(!shown.to_string().contains("client-secret-42"));
    // A refused value names its field.
    let err = l
        .cmd(
            &[
                "oauth-client",
                "set",
                "--client-id",
                "has space",
                "--secret-stdin",
            ],
            "stack-app-client-secret-42\n",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("clientId"), "{err}");

    // Audited under the operator in the stack-wide scope, without the secret.
    let audit = l.ok(&["audit", "list", "_stack"]).await;
    assert_eq!(audit.matches("oauth_client_change").count(), 1, "{audit}");
    let audit = l.json(&["audit", "list", "_stack"]).await;
    assert!(!audit.to_string().contains("client-secret-42"), "{audit}");
    assert_eq!(audit[0]["details"]["after"]["clientId"], "stack-app");

    let removed = l.ok(&["oauth-client", "remove"]).await;
    assert!(removed.contains("not set"), "{removed}");
    let shown = l.json(&["oauth-client", "show"]).await;
    assert_eq!(shown["configured"], false);
}

#[tokio::test]
async fn an_operator_sets_a_workos_format_a_projection_and_the_raw_attribute_allowlist() {
    let l = local().await;
    l.connect().await;
    let hook = l.app_url.clone();
    l.cmd(
        &[
            "targets",
            "add",
            "acme",
            "--id",
            "wos",
            "--kind",
            "app-webhook",
            "--url",
            &hook,
            "--format",
            "workos",
            "--project",
            "firstName",
            "--project",
            "emails",
            "--secret-stdin",
        ],
        &format!("{WHSEC}\n"),
    )
    .await
    .unwrap();
    let targets = l.json(&["targets", "list", "acme"]).await;
    let wos = targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "wos")
        .unwrap();
    assert_eq!(wos["format"], "workos");
    assert_eq!(
        wos["projection"],
        serde_json::json!(["firstName", "emails"])
    );

    // A projection naming no user attribute, and a format on a kind without one, are
    // refused with one line naming the option.
    let bad = l
        .cmd(
            &[
                "targets",
                "add",
                "acme",
                "--id",
                "wos2",
                "--kind",
                "app-webhook",
                "--url",
                &hook,
                "--project",
                "payRate",
                "--secret-stdin",
            ],
            &format!("{WHSEC}\n"),
        )
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("projection"), "{bad}");
    let bad = l
        .cmd(
            &[
                "targets",
                "add",
                "acme",
                "--id",
                "bus",
                "--kind",
                "event-bridge",
                "--url",
                "arn:aws:events:us-east-1:123456789012:event-bus/customer",
                "--format",
                "workos",
            ],
            "",
        )
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("--format"), "{bad}");

    // The allowlist: set (checked against the company's fields), shown, reset.
    let set = l
        .json(&[
            "directories",
            "update",
            "acme",
            "--raw-attribute",
            "Employment Status",
        ])
        .await;
    assert_eq!(
        set["changed"]["rawAttributeAllowlist"]["after"],
        serde_json::json!(["Employment Status"])
    );
    let unknown = l
        .cmd(
            &[
                "directories",
                "update",
                "acme",
                "--raw-attribute",
                "Social Security Number Typo",
            ],
            "",
        )
        .await
        .unwrap_err();
    assert!(
        unknown.to_string().contains("rawAttributeAllowlist"),
        "{unknown}"
    );
    let reset = l
        .json(&["directories", "update", "acme", "--default-raw-attributes"])
        .await;
    assert_eq!(
        reset["changed"]["rawAttributeAllowlist"]["after"],
        serde_json::Value::Null
    );
    let audit = l.json(&["audit", "list", "acme"]).await;
    let changes: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"]["changed"]["rawAttributeAllowlist"].is_object())
        .collect();
    assert_eq!(
        changes.len(),
        2,
        "both changes audited with before and after"
    );
    assert_eq!(
        changes[1]["details"]["changed"]["rawAttributeAllowlist"]["before"],
        Value::Null
    );
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["details"]["target"] == "wos" && e["details"]["after"]["format"] == "workos"));
}

#[tokio::test]
async fn an_upsert_targets_gate_exit_choice_is_set_from_the_command_line_and_audited() {
    let l = local().await;
    l.connect().await;
    let lms = "http://127.0.0.1:9/v1/users/upsert";
    l.ok(&[
        "directories",
        "update",
        "acme",
        "--custom-field",
        "customLitmosAccess=litmosAccess",
    ])
    .await;
    l.ok(&[
        "targets",
        "add",
        "acme",
        "--id",
        "lms",
        "--kind",
        "http-upsert",
        "--url",
        lms,
        "--field-in",
        "litmosAccess=Yes",
        "--gate-exit",
        "leave",
    ])
    .await;
    let targets = l.json(&["targets", "list", "acme"]).await;
    assert_eq!(targets[0]["gate_exit"], "leave");
    assert_eq!(targets[0]["filter"]["fieldIn"]["litmosAccess"][0], "Yes");

    // Left out on an update: the default, deactivate.
    l.ok(&[
        "targets",
        "update",
        "acme",
        "--id",
        "lms",
        "--kind",
        "http-upsert",
        "--url",
        lms,
    ])
    .await;
    let targets = l.json(&["targets", "list", "acme"]).await;
    assert_eq!(targets[0]["gate_exit"], "deactivate");
    let audit = l.json(&["audit", "list", "acme"]).await;
    let change = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "target_change" && e["details"]["change"] == "updated")
        .expect("the update is audited");
    assert_eq!(change["details"]["before"]["gate_exit"], "leave");
    assert_eq!(change["details"]["after"]["gate_exit"], "deactivate");

    let refused = l
        .cmd(
            &[
                "targets",
                "add",
                "acme",
                "--id",
                "app2",
                "--kind",
                "app-webhook",
                "--url",
                lms,
                "--gate-exit",
                "leave",
            ],
            "",
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("--gate-exit"), "{refused}");
}

#[tokio::test]
async fn the_daily_evidence_preset_is_set_from_the_command_line_and_audited_by_name() {
    let l = local().await;
    l.connect().await;
    let updated = l
        .ok(&[
            "directories",
            "update",
            "acme",
            "--preset",
            "daily-evidence",
        ])
        .await;
    assert!(updated.contains("settings saved"), "{updated}");
    let shown = l.json(&["directories", "show", "acme"]).await;
    assert_eq!(shown["schedule"]["incrementalEveryMinutes"], 1440);
    assert_eq!(shown["schedule"]["fullEveryHours"], 24);
    assert_eq!(shown["staleAfterMinutes"], 2880);
    let audit = l.json(&["audit", "list", "acme"]).await;
    assert_eq!(audit[0]["action"], "settings_change");
    assert_eq!(audit[0]["details"]["preset"], "daily_evidence");
    assert_eq!(
        audit[0]["details"]["changed"]["staleAfterMinutes"]["after"],
        2880
    );
}
