//! The CLI as an operator runs it (a subprocess): a bad API key, a missing permission
//! and an unknown subdomain each end with one line on stderr and a non-zero exit, and
//! no secret ever reaches the command line, the output or the logs.

use std::path::Path;
use std::process::{Command, Output};

use bamboohr_simulator::{Fault, FaultPlan, SimConfig, Simulator};

const KEY: &str = "sim-key-7f3a9b2e41";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn cli(data: &Path, args: &[&str], envs: &[(&str, &str)], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bamboohr-sync"));
    cmd.arg("--local-data-dir").arg(data).args(args);
    cmd.env_remove("BAMBOOHR_API_KEY")
        .env_remove("BAMBOOHR_SYNC_TARGET_SECRET");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let stdin = stdin.to_string();
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("the CLI starts");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

async fn connect(data: &Path, base_url: &str, key: &str) -> Output {
    cli(
        data,
        &[
            "directories",
            "connect",
            "--id",
            "acme",
            "--subdomain",
            "acme",
            "--base-url",
            base_url,
        ],
        &[("BAMBOOHR_API_KEY", key)],
        "",
    )
    .await
}

fn assert_one_line_failure(o: &Output, starts: &str) {
    let (stdout, stderr) = text(o);
    assert!(!o.status.success(), "must fail: {stdout}{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with(&format!("error: {starts}")),
        "{starts}: {stderr}"
    );
    assert!(!stderr.contains(KEY) && !stdout.contains(KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_key_a_missing_permission_and_an_unknown_subdomain_each_fail_with_one_line() {
    let sim = Simulator::generate(SimConfig {
        api_key: KEY.into(),
        employees: 3,
        ..SimConfig::default()
    });
    let server = sim.serve().await.unwrap();
    let restricted = Simulator::generate(SimConfig {
        api_key: KEY.into(),
        employees: 3,
        restricted_fields: vec!["hireDate".into()],
        ..SimConfig::default()
    });
    let restricted_server = restricted.serve().await.unwrap();
    let data = tempfile::tempdir().unwrap();

    let bad = connect(data.path(), &server.base_url, "not-the-key").await;
    assert_one_line_failure(&bad, "bad API key");

    let withheld = connect(data.path(), &restricted_server.base_url, KEY).await;
    assert_one_line_failure(&withheld, "missing permission");
    assert!(text(&withheld).1.contains("hireDate"));

    sim.inject(FaultPlan::next(Fault::Status {
        status: 403,
        retry_after: None,
    }));
    let forbidden = connect(data.path(), &server.base_url, KEY).await;
    assert_one_line_failure(&forbidden, "missing permission");

    let unknown = connect(
        data.path(),
        &format!("{}/no-such-company", server.base_url),
        KEY,
    )
    .await;
    assert_one_line_failure(&unknown, "unknown subdomain");

    // Nothing was saved by any of them.
    let list = cli(
        data.path(),
        &["--output", "json", "directories", "list"],
        &[],
        "",
    )
    .await;
    assert_eq!(text(&list).0.trim(), "[]");
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_appear_in_argv_output_logs_or_the_store() {
    let sim = Simulator::generate(SimConfig {
        api_key: KEY.into(),
        employees: 3,
        ..SimConfig::default()
    });
    let server = sim.serve().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let trace = [("BSYNC_LOG", "trace")];

    // There is no flag that takes a secret.
    let refused = cli(
        data.path(),
        &[
            "directories",
            "connect",
            "--id",
            "a",
            "--subdomain",
            "a",
            "--api-key",
            KEY,
        ],
        &[],
        "",
    )
    .await;
    assert!(!refused.status.success());
    let help = cli(data.path(), &["directories", "connect", "--help"], &[], "").await;
    assert!(!text(&help).0.contains("--api-key"));

    let mut captured = String::new();
    let connected = cli(
        data.path(),
        &[
            "directories",
            "connect",
            "--id",
            "acme",
            "--subdomain",
            "acme",
            "--base-url",
            &server.base_url,
        ],
        &[("BAMBOOHR_API_KEY", KEY), trace[0]],
        "",
    )
    .await;
    assert!(connected.status.success(), "{:?}", text(&connected));
    let added = cli(
        data.path(),
        &[
            "targets",
            "add",
            "acme",
            "--id",
            "app",
            "--kind",
            "app-webhook",
            "--url",
            "http://127.0.0.1:9/hook",
            "--secret-stdin",
        ],
        &trace,
        &format!("{WHSEC}\n"),
    )
    .await;
    assert!(added.status.success(), "{:?}", text(&added));
    for args in [
        vec!["sync", "acme", "--full"],
        vec!["status", "acme"],
        vec!["--output", "json", "directories", "show", "acme"],
        vec!["--output", "json", "targets", "list", "acme"],
        vec!["audit", "list", "acme"],
        vec!["--output", "json", "users", "list", "acme"],
    ] {
        let o = cli(data.path(), &args, &trace, "").await;
        assert!(o.status.success(), "{args:?}: {:?}", text(&o));
        let (out, err) = text(&o);
        captured.push_str(&out);
        captured.push_str(&err);
    }
    for o in [&connected, &added] {
        let (out, err) = text(o);
        captured.push_str(&out);
        captured.push_str(&err);
    }
    assert!(
        captured.contains("TRACE") || captured.contains("DEBUG"),
        "logs were captured"
    );
    for secret in [KEY, WHSEC, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
        assert!(!captured.contains(secret), "{secret} leaked");
    }
    // The store's database and its write-ahead log, as bytes: no secret in either.
    for entry in std::fs::read_dir(data.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("store.db"))
        {
            let bytes = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            assert!(!bytes.contains(KEY) && !bytes.contains(WHSEC), "{path:?}");
        }
    }
}

#[tokio::test]
async fn a_data_directory_of_an_earlier_version_is_refused_with_what_to_do() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("store.json"), "{}").unwrap();
    let o = cli(data.path(), &["users", "list", "acme"], &[], "").await;
    assert!(!o.status.success());
    let (_, err) = text(&o);
    assert!(
        err.contains("store.json") && err.contains("move the directory aside"),
        "{err}"
    );
    assert!(
        !data.path().join("store.db").exists(),
        "nothing is created beside the old store"
    );
}
