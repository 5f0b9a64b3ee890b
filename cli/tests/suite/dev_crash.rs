//! `dev` killed (SIGKILL) in the middle of a delivery loses nothing: the change is in
//! the durable change queue until the dispatcher handled it, so the next `dev`
//! delivers it to every target.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;

use crate::dev_demo::{http, wait_for, Running};

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the test's app receiver got: (path, body) per request, and whether it still
/// holds the first request to `/held` open.
#[derive(Default)]
struct Apps {
    got: Mutex<Vec<(String, serde_json::Value)>>,
    holding: Mutex<bool>,
}

async fn receive(
    State(apps): State<Arc<Apps>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    apps.got.lock().unwrap().push((name.clone(), body.clone()));
    let hold = name == "held" && body["type"] == "user.updated" && {
        let mut holding = apps.holding.lock().unwrap();
        let first = !*holding;
        *holding = true;
        first
    };
    if hold {
        // Never answers: the delivery is in flight when `dev` is killed.
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    StatusCode::NO_CONTENT
}

fn updates_of(apps: &Apps, app: &str, employee: &str) -> Vec<u64> {
    apps.got
        .lock()
        .unwrap()
        .iter()
        .filter(|(name, body)| {
            name == app && body["type"] == "user.updated" && body["data"]["employeeId"] == employee
        })
        .map(|(_, body)| body["version"].as_u64().unwrap_or_default())
        .collect()
}

fn spawn_dev(dir: &std::path::Path, demo: bool) -> (Running, std::sync::mpsc::Receiver<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bamboohr-sync"));
    cmd.arg("dev");
    if demo {
        cmd.args(["--demo", "--employees", "5"]);
    }
    let mut child = cmd
        .args(["--poll-seconds", "3600", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the CLI starts");
    let stdout = child.stdout.take().unwrap();
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
    (Running(child), lines)
}

fn cli(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_bamboohr-sync"))
        .arg("--local-data-dir")
        .arg(dir)
        .args(args)
        .env("BAMBOOHR_SYNC_TARGET_SECRET", WHSEC)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dev_killed_mid_delivery_delivers_the_change_to_every_target_after_a_restart() {
    let apps = Arc::new(Apps::default());
    let app = Router::new()
        .route("/hooks/{name}", post(receive))
        .with_state(apps.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let dir = tempfile::tempdir().unwrap();
    let (running, lines) = spawn_dev(dir.path(), true);
    let mut running = Some(running);
    let (sim_url, employee) = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        let sim = wait_for(&lines, &mut seen, |l| l.contains("BambooHR simulator"));
        wait_for(&lines, &mut seen, |l| l.starts_with("first sync delivered"));
        let employee = seen
            .iter()
            .find_map(|l| Some(l.split("(employee ").nth(1)?.split(',').next()?.to_string()))
            .expect("the first sync delivered employees");
        (sim.rsplit(' ').next().unwrap().to_string(), employee)
    })
    .await
    .unwrap();

    // Two apps of the test's own, added from another process while `dev` serves; the
    // demo's in-process app goes, as it dies with the process.
    let d = dir.path().to_path_buf();
    let (held, ok) = (format!("{base}/held"), format!("{base}/ok"));
    tokio::task::spawn_blocking(move || {
        for (id, url) in [("held", &held), ("ok", &ok)] {
            cli(
                &d,
                &[
                    "targets",
                    "add",
                    "demo",
                    "--id",
                    id,
                    "--kind",
                    "app-webhook",
                    "--url",
                    url,
                ],
            );
        }
        cli(&d, &["targets", "remove", "demo", "demo-app"]);
    })
    .await
    .unwrap();

    // BambooHR (the simulator) changes the employee and posts its signed webhook.
    let (sim, emp) = (sim_url.clone(), employee.clone());
    let status = tokio::task::spawn_blocking(move || {
        http(
            &sim,
            "PATCH",
            &format!("/_sim/employees/{emp}"),
            r#"{"jobTitle":"Chief Demo Officer"}"#,
        )
    })
    .await
    .unwrap();
    assert_eq!(status, 204, "the simulator took the change");

    // The held app has the delivery in flight: kill `dev` now, as SIGKILL would.
    until("the held delivery", || *apps.holding.lock().unwrap()).await;
    let mut killed = running.take().unwrap();
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();
    drop(killed);
    assert!(
        updates_of(&apps, "held", &employee).len() == 1,
        "only the held attempt so far"
    );

    // The next `dev` takes the change back from the queue and delivers it.
    let (_again, _lines) = spawn_dev(dir.path(), false);
    until("the change at every target", || {
        !updates_of(&apps, "held", &employee).is_empty()
            && updates_of(&apps, "held", &employee).len() >= 2
            && !updates_of(&apps, "ok", &employee).is_empty()
    })
    .await;
    let held = updates_of(&apps, "held", &employee);
    assert_eq!(
        held.last(),
        Some(&2),
        "the held app got version 2: {held:?}"
    );
    assert_eq!(updates_of(&apps, "ok", &employee).last(), Some(&2));
}
