//! `bamboohr-sync dev --demo`, run as a user would: a subprocess.

use std::process::Command;

fn run_demo(data_dir: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bamboohr-sync"))
        .args(["dev", "--demo", "--once", "--employees", "12", "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("the CLI runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "dev --demo failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_demo_syncs_a_generated_company_and_delivers_every_user_to_the_local_app() {
    let dir = tempfile::tempdir().unwrap();
    let first = run_demo(dir.path());
    assert!(first.contains("12 employees seen"), "{first}");
    // Twelve user.created, then directory.sync_completed.
    assert!(first.contains("first sync delivered 13 events"), "{first}");
    assert_eq!(
        first.matches("delivered user.created").count(),
        12,
        "{first}"
    );

    // HR data and secrets: the directory is its owner's alone, and so is every file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.path()), 0o700);
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{path:?}");
        }
    }

    // State survives a restart: the same company is unchanged and nothing is re-sent.
    let second = run_demo(dir.path());
    assert!(
        second.contains("0 created, 0 updated, 12 unchanged"),
        "{second}"
    );
    // Only the run's directory.sync_completed: no user event.
    assert!(second.contains("first sync delivered 1 events"), "{second}");
    assert_eq!(second.matches("delivered user.").count(), 0, "{second}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_without_a_directory_starts_empty_and_a_setup_link_connects_a_brand_new_company() {
    let sim = bamboohr_simulator::Simulator::generate(bamboohr_simulator::SimConfig {
        api_key: "new-company-key".into(),
        employees: 4,
        ..bamboohr_simulator::SimConfig::default()
    });
    let server = sim.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_bamboohr-sync"))
        .args(["dev", "--poll-seconds", "3600", "--data-dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the CLI starts");
    let mut running = Running(child);
    let stdout = running.0.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // It starts, and says what to do next in one line.
    let mut seen = Vec::new();
    let said = tokio::task::block_in_place(|| {
        wait_for(&lines, &mut seen, |l| {
            l.starts_with("no directory is connected yet")
        })
    });
    assert!(said.contains("setup-links create"), "{said}");
    let base = said
        .split("served at ")
        .nth(1)
        .and_then(|rest| rest.split("/setup/").next())
        .expect("the line names the setup page")
        .to_string();
    tokio::task::block_in_place(|| wait_for(&lines, &mut seen, |l| l.starts_with("serving;")));

    // The operator makes a setup link for a directory that does not exist yet, from
    // another terminal.
    let created = Command::new(env!("CARGO_BIN_EXE_bamboohr-sync"))
        .arg("--local-data-dir")
        .arg(dir.path())
        .args([
            "--output",
            "json",
            "setup-links",
            "create",
            "newco",
            "--bamboohr-base-url",
        ])
        .arg(&server.base_url)
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let url = created["url"].as_str().expect("the link's URL").to_string();
    assert!(url.starts_with(&format!("{base}/setup/#t=")), "{url}");
    let token = url.split("#t=").nth(1).unwrap();

    // The customer's IT admin opens it and connects with their key, as the page's
    // script does.
    let http = reqwest::Client::new();
    let opened = http
        .post(format!("{base}/setup/session"))
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    let cookie = opened.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = http
        .get(format!("{base}/setup/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries its CSRF token")
        .to_string();
    let linked = http
        .post(format!("{base}/setup/connect"))
        .header("cookie", &cookie)
        .header("x-csrf-token", csrf)
        .json(&serde_json::json!({"subdomain": "newco", "apiKey": "new-company-key"}))
        .send()
        .await
        .unwrap();
    let status = linked.status();
    let body: serde_json::Value = linked.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["employees"], 4, "{body}");

    let listed = Command::new(env!("CARGO_BIN_EXE_bamboohr-sync"))
        .arg("--local-data-dir")
        .arg(dir.path())
        .args(["--output", "json", "directories", "list"])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("newco"),
        "{listed:?}"
    );
}

/// Kills the demo when the test ends, however it ends.
pub(crate) struct Running(pub(crate) std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines the demo prints, until `pred` matches one (or 60 s pass).
pub(crate) fn wait_for(
    lines: &std::sync::mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if pred(&line) {
                    return line;
                }
            }
            Err(_) => panic!("timed out; the demo printed:\n{}", seen.join("\n")),
        }
    }
}

/// A minimal HTTP/1.1 request to the simulator's control API; the status code.
pub(crate) fn http(base: &str, method: &str, path: &str, body: &str) -> u16 {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn the_running_demo_applies_a_simulator_webhook_and_delivers_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_bamboohr-sync"))
        .args([
            "dev",
            "--demo",
            "--employees",
            "5",
            "--poll-seconds",
            "3600",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the CLI starts");
    let mut running = Running(child);
    let stdout = running.0.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let sim_line = wait_for(&lines, &mut seen, |l| l.contains("BambooHR simulator"));
    let sim_url = sim_line.rsplit(' ').next().unwrap().to_string();
    wait_for(&lines, &mut seen, |l| l.starts_with("first sync delivered"));
    let employee = seen
        .iter()
        .find_map(|l| {
            let rest = l.split("(employee ").nth(1)?;
            Some(rest.split(',').next()?.to_string())
        })
        .expect("the first sync delivered employees");

    // BambooHR (the simulator) changes the employee and posts its signed webhook to
    // the demo's endpoint.
    let status = http(
        &sim_url,
        "PATCH",
        &format!("/_sim/employees/{employee}"),
        r#"{"jobTitle":"Chief Demo Officer"}"#,
    );
    assert_eq!(status, 204, "the simulator took the change");
    let delivered = wait_for(&lines, &mut seen, |l| {
        l.contains("delivered user.updated") && l.contains(&format!("(employee {employee},"))
    });
    assert!(delivered.contains(" v2 "), "{delivered}");

    // While the demo serves, commands from another process read and write the same
    // data directory (SQLite coordinates them).
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_bamboohr-sync"))
            .arg("--local-data-dir")
            .arg(dir.path())
            .args(args)
            .env(
                "BAMBOOHR_SYNC_TARGET_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            )
            .output()
            .unwrap()
    };
    let users = cli(&["--output", "json", "users", "list", "demo"]);
    assert!(users.status.success(), "{users:?}");
    let users: serde_json::Value = serde_json::from_slice(&users.stdout).unwrap();
    assert_eq!(users.as_array().map(Vec::len), Some(5), "{users}");
    let added = cli(&[
        "targets",
        "add",
        "demo",
        "--id",
        "second-app",
        "--kind",
        "app-webhook",
        "--url",
        "http://127.0.0.1:9/hooks",
    ]);
    assert!(added.status.success(), "{added:?}");
    let targets = cli(&["--output", "json", "targets", "list", "demo"]);
    assert!(
        String::from_utf8_lossy(&targets.stdout).contains("second-app"),
        "{targets:?}"
    );

    // A second `dev` on the same data directory is refused, in one line.
    let second = Command::new(env!("CARGO_BIN_EXE_bamboohr-sync"))
        .args(["dev", "--demo", "--once", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("is in use by another bamboohr-sync dev"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_connects_a_real_company_by_subdomain_and_syncs_it_or_refuses_a_bad_key_in_one_line() {
    let sim = bamboohr_simulator::Simulator::generate(bamboohr_simulator::SimConfig {
        api_key: "dev-company-key".into(),
        employees: 3,
        ..bamboohr_simulator::SimConfig::default()
    });
    let server = sim.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |key: &'static str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bamboohr-sync"));
        cmd.args(["dev", "--subdomain", "globex", "--once", "--base-url"])
            .arg(&server.base_url)
            .arg("--data-dir")
            .arg(dir.path())
            .env("BAMBOOHR_API_KEY", key);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let bad = run("wrong-key").await.unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.starts_with("error: bad API key"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let ok = run("dev-company-key").await.unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains("connected globex (3 employees visible)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sync: 3 employees seen, 3 created"),
        "{stdout}"
    );
    assert!(!stdout.contains("dev-company-key"));
}
