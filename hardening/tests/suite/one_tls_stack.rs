//! One TLS stack: every HTTPS client of the workspace (reqwest for targets and
//! BambooHR, the AWS SDK's default client) is built on the same rustls and hyper, so a
//! TLS fix is one upgrade. The AWS SDK crates' `rustls` default feature would add the
//! legacy hyper 0.14 / rustls 0.21 client; the workspace turns it off, and this test
//! reads Cargo.lock to keep it off.

use std::collections::BTreeMap;

#[test]
fn cargo_lock_holds_one_version_of_each_tls_and_http_stack_crate() {
    let lock = std::fs::read_to_string(test_peers::workspace_root().join("Cargo.lock"))
        .expect("Cargo.lock is readable");
    let mut versions: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = \"") {
            name = n.strip_suffix('"');
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = \""), name) {
            versions.entry(n).or_default().push(v.trim_end_matches('"'));
            name = None;
        }
    }
    for crate_name in ["rustls", "hyper", "hyper-rustls", "tokio-rustls", "h2"] {
        let found = versions.get(crate_name).cloned().unwrap_or_default();
        assert!(
            found.len() <= 1,
            "{crate_name} comes in several versions: {found:?} (an AWS SDK crate with its \
             default features pulls the legacy TLS client back in)"
        );
    }
    assert!(
        versions
            .get("rustls")
            .is_some_and(|v| v[0].starts_with("0.23")),
        "{:?}",
        versions.get("rustls")
    );
}
