//! test-peers against real Python processes: moto answers, a peer script reports its
//! port and dies with its handle.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn moto_is_shared_and_answers_http() {
    let a = test_peers::moto();
    let b = test_peers::moto();
    assert!(std::ptr::eq(a, b), "one moto per process");
    let port: u16 = a
        .endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("endpoint ends with a port");
    let resp = http_get(port, "/moto-api/").unwrap();
    assert!(resp.starts_with("HTTP/1."), "{resp}");
}

#[test]
fn a_peer_reports_its_port_and_is_killed_on_drop() {
    let peer = test_peers::spawn_python_peer(
        &fixture("echo_peer.py"),
        &["one", "two"],
        &[("ECHO_PEER_VALUE", "from-env")],
    );
    let port = peer.port;
    let resp = http_get(port, "/").unwrap();
    assert!(resp.contains(r#""argv": ["one", "two"]"#), "{resp}");
    assert!(resp.contains("from-env"), "{resp}");
    assert_eq!(peer.base_url(), format!("http://127.0.0.1:{port}"));

    drop(peer);
    let deadline = Instant::now() + Duration::from_secs(5);
    while http_get(port, "/").is_ok() {
        assert!(Instant::now() < deadline, "peer still answers after drop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_peer_that_fails_to_start_shows_its_log() {
    let err = std::panic::catch_unwind(|| {
        test_peers::spawn_python_peer(&fixture("failing_peer.py"), &[], &[])
    })
    .expect_err("the peer cannot start");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("exited before printing READY"), "{msg}");
    assert!(msg.contains("cannot start: no such thing"), "{msg}");
}
