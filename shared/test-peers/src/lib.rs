//! Starts the real protocol peers that integration tests talk to: one moto server per
//! test process (or the one `scripts/test` already started, via `MOTO_ENDPOINT`) and
//! Python helper scripts on free loopback ports.
//!
//! Tests run as parallel threads inside one process and as several processes (one per
//! test binary), so peers are shared and isolation comes from unique resource names
//! (tables, buses, queues), never from separate servers.
//!
//! Every Python child runs behind a small watchdog: its stdin is a pipe whose only write
//! end this process holds. When this process ends, however it ends (normal exit, panic,
//! SIGKILL), the kernel closes that end, the child reads EOF and exits. That is more
//! robust than `PR_SET_PDEATHSIG`, which fires when the *thread* that spawned the child
//! exits — and test threads exit long before the process does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a peer may take to come up before the test fails.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Python prelude run before the real program: a daemon thread that exits the whole
/// interpreter as soon as stdin reaches EOF, i.e. when the test process is gone.
const WATCHDOG: &str = "import os, sys, threading\n\
threading.Thread(target=lambda: (sys.stdin.buffer.read(), os._exit(0)), daemon=True).start()\n";

/// The workspace root: the nearest ancestor holding a `Cargo.toml` with a `[workspace]`
/// table, looked up from the current directory (cargo runs tests in their package's
/// directory), then from where this crate was compiled. The runtime lookup comes first
/// because a build shared between checkouts may hold another checkout's path.
pub fn workspace_root() -> PathBuf {
    let is_root = |dir: &Path| {
        std::fs::read_to_string(dir.join("Cargo.toml"))
            .map(|toml| toml.lines().any(|l| l.trim() == "[workspace]"))
            .unwrap_or(false)
    };
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    let starts = std::env::current_dir()
        .into_iter()
        .chain([compiled.clone()]);
    for start in starts {
        if let Some(root) = start.ancestors().find(|d| is_root(d)) {
            return root.to_path_buf();
        }
    }
    panic!("no workspace Cargo.toml above {}", compiled.display())
}

/// The Python interpreter that has the test peers installed: `$PEER_PYTHON`, else the
/// workspace's `.venv/bin/python`. A relative `$PEER_PYTHON` is read against the
/// workspace root, because cargo runs each package's tests and benches from that
/// package's directory, not from where the command was typed.
///
/// # Panics
/// When neither exists, with a message saying how to install the peers.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PEER_PYTHON").filter(|p| !p.is_empty()) {
        return resolve_peer_python(PathBuf::from(p), &workspace_root());
    }
    let venv = workspace_root().join(".venv/bin/python");
    if venv.exists() {
        return venv;
    }
    panic!(
        "test peers are not installed: run `bash scripts/test` once (it creates {}), or set PEER_PYTHON",
        venv.display()
    );
}

/// `given` as is when absolute or a bare program name (looked up on `PATH`), else
/// joined onto the workspace root.
fn resolve_peer_python(given: PathBuf, root: &Path) -> PathBuf {
    if given.is_absolute() || given.components().count() == 1 {
        given
    } else {
        root.join(given)
    }
}

/// A loopback port that was free a moment ago. Another process may take it before the
/// caller binds it; callers that start servers retry on a bind failure.
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// A running moto server.
#[derive(Debug)]
pub struct Moto {
    /// Base URL for the AWS SDK's `endpoint_url`, e.g. `http://127.0.0.1:40123`.
    pub endpoint: String,
}

/// What keeps this process's moto alive: the child and the write end of its stdin pipe.
/// Never dropped (statics are not), so the pipe closes only when the process ends.
struct MotoGuard {
    _child: Mutex<Child>,
    _stdin: Mutex<ChildStdin>,
}

static MOTO: OnceLock<Moto> = OnceLock::new();
static MOTO_GUARD: OnceLock<MotoGuard> = OnceLock::new();

/// The moto server of this test process: `$MOTO_ENDPOINT` when set (as `scripts/test`
/// does), otherwise one server started on first use and stopped when the process ends.
///
/// # Panics
/// When moto cannot be started or does not answer within 30 seconds.
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(|| {
        if let Some(endpoint) = std::env::var("MOTO_ENDPOINT")
            .ok()
            .filter(|e| !e.is_empty())
        {
            return Moto {
                endpoint: endpoint.trim_end_matches('/').to_string(),
            };
        }
        let (endpoint, guard) = start_moto();
        if MOTO_GUARD.set(guard).is_err() {
            unreachable!("moto is started once, inside MOTO's initializer");
        }
        Moto { endpoint }
    })
}

fn log_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("test-peers-{}-{name}.log", std::process::id()))
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Spawns `python -c <watchdog + program>` with `args` as its `sys.argv[1:]`.
fn spawn_watched(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    stdout: Stdio,
    log: &Path,
) -> (Child, ChildStdin) {
    let stderr = std::fs::File::create(log)
        .unwrap_or_else(|e| panic!("creating peer log {}: {e}", log.display()));
    let mut cmd = Command::new(python());
    cmd.arg("-c")
        .arg(format!("{WATCHDOG}{program}"))
        .args(args)
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(stderr);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", python().display()));
    let stdin = child.stdin.take().expect("stdin is piped");
    (child, stdin)
}

/// True when something on `port` answers an HTTP request.
fn answers_http(port: u16) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 8];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

fn start_moto() -> (String, MotoGuard) {
    // The port can be taken between free_port() and moto's bind; a few attempts make
    // that race irrelevant.
    let mut last_error = String::new();
    for _ in 0..3 {
        let port = free_port();
        let log = log_path(&format!("moto-{port}"));
        let port_arg = port.to_string();
        let (mut child, stdin) = spawn_watched(
            "import runpy\n\
             sys.argv = ['moto.server'] + sys.argv[1:]\n\
             runpy.run_module('moto.server', run_name='__main__', alter_sys=True)\n",
            &["-H", "127.0.0.1", "-p", &port_arg],
            &[],
            Stdio::null(),
            &log,
        );
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                last_error = format!("moto exited with {status}; log:\n{}", tail(&log));
                break;
            }
            if answers_http(port) {
                return (
                    format!("http://127.0.0.1:{port}"),
                    MotoGuard {
                        _child: Mutex::new(child),
                        _stdin: Mutex::new(stdin),
                    },
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "moto did not answer on 127.0.0.1:{port} within {STARTUP_TIMEOUT:?}; log:\n{}",
                    tail(&log)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("could not start moto: {last_error}");
}

/// A Python helper process; killed when dropped (and, through its watchdog, when the
/// test process ends without dropping it).
#[derive(Debug)]
pub struct PeerProcess {
    /// The port the peer said it listens on.
    pub port: u16,
    child: Child,
    _stdin: ChildStdin,
}

impl PeerProcess {
    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a Python script with the peers' interpreter and waits (up to 30 s) until it
/// prints `READY <port>` on stdout. The script picks its own port (binding port 0 avoids
/// races) and should print that line once it accepts connections.
///
/// The script runs as `__main__` with `sys.argv = [script, *args]` and its directory
/// first on `sys.path`, as with `python script`. Its stderr goes to a log file whose
/// tail is shown if it fails to start.
///
/// # Panics
/// When the script exits or stays silent before printing `READY <port>`.
pub fn spawn_python_peer(script: &Path, args: &[&str], env: &[(&str, &str)]) -> PeerProcess {
    let script = script
        .canonicalize()
        .unwrap_or_else(|e| panic!("peer script {}: {e}", script.display()));
    let name = script
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "peer".into());
    let log = log_path(&format!("{name}-{}", unique_suffix()));
    let script_arg = script.to_string_lossy().into_owned();
    let mut all_args = vec![script_arg.as_str()];
    all_args.extend_from_slice(args);
    let (mut child, stdin) = spawn_watched(
        "import os, runpy\n\
         sys.argv = sys.argv[1:]\n\
         sys.path.insert(0, os.path.dirname(sys.argv[0]))\n\
         runpy.run_path(sys.argv[0], run_name='__main__')\n",
        &all_args,
        env,
        Stdio::piped(),
        &log,
    );

    // Lines are read on a thread so the wait can time out; the thread keeps draining
    // stdout afterwards so a chatty peer never blocks on a full pipe.
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut ready_sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !ready_sent {
                if let Some(port) = line
                    .trim()
                    .strip_prefix("READY ")
                    .and_then(|p| p.trim().parse::<u16>().ok())
                {
                    ready_sent = true;
                    let _ = tx.send(port);
                }
            }
        }
    });

    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(port) => {
                return PeerProcess {
                    port,
                    child,
                    _stdin: stdin,
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // stdout closed without READY: the script is exiting; let it finish so
                // the log is complete.
                let status = child.wait();
                panic!(
                    "peer {} exited before printing READY ({status:?}); log:\n{}",
                    script.display(),
                    tail(&log)
                );
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "peer {} exited before printing READY ({status}); log:\n{}",
                script.display(),
                tail(&log)
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "peer {} did not print READY within {STARTUP_TIMEOUT:?}; log:\n{}",
                script.display(),
                tail(&log)
            );
        }
    }
}

/// A per-process counter, so two peers started from the same script get their own logs.
fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        let root = workspace_root();
        let toml = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(toml.contains("[workspace]"));
        assert!(root.join("shared/test-peers").is_dir());
    }

    #[test]
    fn a_relative_peer_python_is_read_against_the_workspace_root() {
        let root = Path::new("/repo");
        assert_eq!(
            resolve_peer_python(".venv/bin/python".into(), root),
            Path::new("/repo/.venv/bin/python")
        );
        assert_eq!(
            resolve_peer_python("/opt/py/bin/python".into(), root),
            Path::new("/opt/py/bin/python")
        );
        assert_eq!(
            resolve_peer_python("python3".into(), root),
            Path::new("python3")
        );
    }

    #[test]
    fn a_child_exits_when_its_stdin_pipe_closes() {
        // Closing the write end is exactly what the kernel does when this process dies.
        let log = log_path("watchdog");
        let (mut child, stdin) = spawn_watched(
            "import time\ntime.sleep(60)\n",
            &[],
            &[],
            Stdio::null(),
            &log,
        );
        std::thread::sleep(Duration::from_millis(200));
        assert!(child.try_wait().unwrap().is_none(), "still running");
        drop(stdin);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "{status}");
                break;
            }
            assert!(Instant::now() < deadline, "child outlived its pipe");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn free_ports_can_be_bound() {
        // Another process may take a port between the two binds (free_port says so),
        // so one of a few fresh ports must bind, not every one.
        let bound = (0..5).any(|_| {
            let port = free_port();
            assert_ne!(port, 0);
            TcpListener::bind(("127.0.0.1", port)).is_ok()
        });
        assert!(bound, "none of five free ports could be bound");
    }
}
