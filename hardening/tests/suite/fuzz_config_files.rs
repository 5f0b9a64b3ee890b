//! Fuzzing of the configuration and state files the system reads: a directory's secret
//! (`ports::DirectorySecrets`, as Secrets Manager or the local secrets file holds it),
//! the local secrets file itself (`embedded_adapters::FileSecrets`), and the local
//! store's database (`embedded_adapters::SqliteStore`). Inputs are arbitrary bytes,
//! arbitrary JSON, valid files cut short and valid files with random parts replaced.
//!
//! Properties: nothing panics; a file is read or refused with a typed error; an error
//! never repeats a secret or an HR value from the file; a secret that parses survives
//! its own round trip unchanged.
//!
//! 256 cases by default; `PROPTEST_CASES=100000` for a long run.

use std::sync::Arc;

use domain::{Directory, DirectoryId, DirectoryUser, EmployeeId, UserState};
use embedded_adapters::{FileSecrets, SqliteStore};
use ports::{DirectorySecrets, SecretStore, SecretsError, Store, StoreError, UserWrite};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

/// Planted as every secret and HR value: no error may repeat it.
const CANARY: &str = "Canary-Secret-5150";

fn secret_template() -> Value {
    json!({
        "bamboohrApiKey": CANARY,
        "oauth": {"accessToken": CANARY, "refreshToken": CANARY, "expiresAt": 1795420800,
                  "clientId": "client", "clientSecret": CANARY},
        "webhookKeys": [CANARY, CANARY],
        "webhookUrlToken": CANARY,
        "targets": {
            "app": {"signingSecrets": [CANARY]},
            "scim": {"bearerToken": CANARY},
            "lms": {"urlParams": {"apikey": CANARY}}
        }
    })
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        "\\PC{0,10}".prop_map(Value::String),
        Just(json!(CANARY)),
        Just(json!([CANARY])),
        Just(json!({"x": CANARY})),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map("[a-zA-Z]{0,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bytes of a file derived from `template`: arbitrary, arbitrary JSON, cut short, or
/// with random nodes replaced.
fn file_from(template: Value) -> impl Strategy<Value = Vec<u8>> {
    let full = template.to_string().into_bytes();
    let cut = {
        let full = full.clone();
        (0..full.len()).prop_map(move |n| full[..n].to_vec())
    };
    prop_oneof![
        1 => vec(any::<u8>(), 0..128),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => cut,
        4 => vec((any::<usize>(), json_value()), 0..3).prop_map(move |changes| {
            let mut doc = template.clone();
            for (at, with) in changes {
                let all = hardening::json_pointers(&doc);
                if let Some(slot) = doc.pointer_mut(&all[at % all.len()]) {
                    *slot = with;
                }
            }
            doc.to_string().into_bytes()
        }),
    ]
}

/// Whether Debug output, what a careless log line would print, shows a planted
/// value. The OAuth client id is not a secret (it is shown on purpose), so a planted
/// value there is set aside.
fn debug_shows_a_secret(mut s: DirectorySecrets) -> bool {
    if let Some(o) = s.oauth.as_mut() {
        o.client_id = None;
    }
    format!("{s:?}").contains(CANARY)
}

fn config() -> Config {
    Config {
        failure_persistence: None,
        ..Config::default()
    }
}

#[test]
fn arbitrary_directory_secrets_parse_or_are_refused_without_quoting_them() {
    TestRunner::new(config())
        .run(&file_from(secret_template()), |bytes| {
            let text = String::from_utf8_lossy(&bytes);
            match DirectorySecrets::from_json("acme", &text) {
                Ok(s) => {
                    let again = DirectorySecrets::from_json("acme", s.to_json().expose_secret())
                        .map_err(|e| TestCaseError::fail(format!("round trip: {e}")))?;
                    let (first, second) = (s.to_json(), again.to_json());
                    prop_assert_eq!(first.expose_secret(), second.expose_secret());
                    prop_assert!(!debug_shows_a_secret(s), "Debug shows a secret");
                }
                Err(e) => {
                    prop_assert!(matches!(e, SecretsError::Malformed { .. }), "{e:?}");
                    prop_assert!(!e.to_string().contains(CANARY), "{e}");
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn an_arbitrary_local_secrets_file_is_read_or_refused_without_quoting_it() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    let template = json!({ "acme": secret_template(), "globex": {"bamboohrApiKey": CANARY} });
    TestRunner::new(config())
        .run(&file_from(template), |bytes| {
            std::fs::write(&path, &bytes).unwrap();
            let store = FileSecrets::open(&path);
            match rt.block_on(store.get("acme")) {
                Ok(s) => prop_assert!(!debug_shows_a_secret(s), "Debug shows a secret"),
                Err(e) => prop_assert!(!e.to_string().contains(CANARY), "{e}"),
            }
            Ok(())
        })
        .unwrap();
}

/// A valid store database holding one directory and one user whose values are the
/// canary, as bytes.
fn store_template(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> Vec<u8> {
    let path = dir.join("template.db");
    rt.block_on(async {
        let store = SqliteStore::open(&path).unwrap();
        let id = DirectoryId::parse("acme").unwrap();
        let d = Directory::new(id.clone(), "acme", "acme").unwrap();
        store.put_directory(&d, None).await.unwrap();
        let mut u = DirectoryUser::new(id, EmployeeId::parse("42").unwrap(), UserState::Active);
        u.first_name = Some(CANARY.into());
        u.job_title = Some(CANARY.into());
        u.version = 1;
        u.fingerprint = u.compute_fingerprint();
        store
            .write_user(&UserWrite {
                user: u,
                expected_version: None,
                events: vec![],
            })
            .await
            .unwrap();
    });
    // A checkpoint folds the write-ahead log into the file, so the bytes are whole.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(conn);
    std::fs::read(&path).unwrap()
}

/// Arbitrary bytes, the template cut short, and the template with bytes replaced.
fn database_from(template: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let cut = {
        let full = template.clone();
        (0..full.len()).prop_map(move |n| full[..n].to_vec())
    };
    prop_oneof![
        1 => vec(any::<u8>(), 0..4096),
        1 => cut,
        4 => vec((any::<usize>(), any::<u8>()), 1..16).prop_map(move |changes| {
            let mut bytes = template.clone();
            for (at, with) in changes {
                let at = at % bytes.len();
                bytes[at] = with;
            }
            bytes
        }),
    ]
}

#[test]
fn an_arbitrary_store_database_opens_or_is_refused_without_quoting_it() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let template = store_template(&rt, dir.path());
    let case = std::sync::atomic::AtomicU64::new(0);
    TestRunner::new(config())
        .run(&database_from(template), |bytes| {
            // A fresh file each case: SQLite keeps a -wal beside the file it opened.
            let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = dir.path().join(format!("state-{n}.db"));
            std::fs::write(&path, &bytes).unwrap();
            match SqliteStore::open(&path) {
                Ok(store) => {
                    // What opened must be usable, or refuse each call with a typed error.
                    let store: Arc<dyn Store> = Arc::new(store);
                    let id = DirectoryId::parse("acme").unwrap();
                    rt.block_on(async {
                        for e in [
                            store.list_directories().await.err(),
                            store.get_directory(&id).await.err(),
                            store
                                .get_user(&id, &EmployeeId::parse("42").unwrap())
                                .await
                                .err(),
                        ]
                        .into_iter()
                        .flatten()
                        {
                            prop_assert!(!e.to_string().contains(CANARY), "{e}");
                        }
                        Ok(())
                    })?;
                }
                Err(e) => {
                    prop_assert!(
                        matches!(
                            e,
                            StoreError::Corrupt { .. } | StoreError::Unavailable { .. }
                        ),
                        "{e:?}"
                    );
                    prop_assert!(!e.to_string().contains(CANARY), "{e}");
                }
            }
            Ok(())
        })
        .unwrap();
}
