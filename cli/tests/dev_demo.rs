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

#[test]
fn dev_without_demo_explains_what_to_do_and_exits_non_zero() {
    let out = Command::new(env!("CARGO_BIN_EXE_bamboohr-sync"))
        .args(["dev"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--demo"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one-line error: {stderr}");
}
