//! Fault injection: throttling, unavailability, slow answers, dropped connections and
//! truncated bodies, scheduled by request count so tests are deterministic.
//!
//! Dropping a connection needs a hand on the socket, so [`crate::Simulator::serve`] runs
//! the router on a listener whose connections carry a kill switch that the fault layer can
//! flip: the handler's answer is then never written and the connection closes.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// How a throttling or unavailable answer says when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryAfter {
    /// `Retry-After: N` (delta-seconds).
    Seconds(u64),
    /// `Retry-After: <HTTP-date>` N seconds from the moment of the answer.
    HttpDateIn(u64),
}

/// What goes wrong with a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer with this status (429, 503, 500, 403, ...) and an error body, optionally with
    /// Retry-After.
    Status {
        /// The HTTP status.
        status: u16,
        /// The Retry-After header, if any.
        #[serde(default)]
        retry_after: Option<RetryAfter>,
    },
    /// Wait this long, then answer normally.
    Delay {
        /// The delay in milliseconds.
        millis: u64,
    },
    /// Read the request, then close the connection without answering.
    DropConnection,
    /// Answer normally, but with the body cut in half (with a matching Content-Length).
    TruncateBody,
}

impl Fault {
    /// 429 with `Retry-After: secs`.
    pub fn rate_limited(secs: u64) -> Self {
        Fault::Status {
            status: 429,
            retry_after: Some(RetryAfter::Seconds(secs)),
        }
    }

    /// 503 without Retry-After.
    pub fn unavailable() -> Self {
        Fault::Status {
            status: 503,
            retry_after: None,
        }
    }

    /// A slow answer.
    pub fn delay(d: Duration) -> Self {
        Fault::Delay {
            millis: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// A fault applied to a run of API requests: the next `after` requests pass, then the
/// following `count` requests get the fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// What happens.
    pub fault: Fault,
    /// Requests that pass first (counted from when the plan is injected).
    #[serde(default)]
    pub after: u64,
    /// Requests that get the fault (`u64::MAX`: all later ones).
    #[serde(default = "one")]
    pub count: u64,
}

fn one() -> u64 {
    1
}

impl FaultPlan {
    /// The fault on the very next request only.
    pub fn next(fault: Fault) -> Self {
        Self {
            fault,
            after: 0,
            count: 1,
        }
    }

    /// Lets `k` requests pass first.
    pub fn after(mut self, k: u64) -> Self {
        self.after = k;
        self
    }

    /// Applies to `m` requests.
    pub fn times(mut self, m: u64) -> Self {
        self.count = m;
        self
    }
}

/// The plans in force, in injection order; the first plan due for a request wins, and
/// every plan counts every request.
#[derive(Debug, Default)]
pub(crate) struct FaultBook {
    plans: Vec<FaultPlan>,
}

impl FaultBook {
    pub(crate) fn inject(&mut self, plan: FaultPlan) {
        self.plans.push(plan);
    }

    pub(crate) fn clear(&mut self) {
        self.plans.clear();
    }

    /// The fault for the next request, if any, advancing every plan.
    pub(crate) fn next(&mut self) -> Option<Fault> {
        let mut chosen = None;
        for plan in &mut self.plans {
            if plan.after > 0 {
                plan.after -= 1;
            } else if plan.count > 0 {
                if plan.count != u64::MAX {
                    plan.count -= 1;
                }
                if chosen.is_none() {
                    chosen = Some(plan.fault.clone());
                }
            }
        }
        self.plans.retain(|p| p.after > 0 || p.count > 0);
        chosen
    }
}

/// The connection a request came in on, with its kill switch (request extension via
/// `ConnectInfo`).
#[derive(Debug, Clone)]
pub struct ConnHandle {
    /// The peer's address.
    pub peer: SocketAddr,
    killed: Arc<AtomicBool>,
}

impl ConnHandle {
    /// Makes the connection fail its next write and read: the answer is never sent.
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, SimListener>>
    for ConnHandle
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, SimListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A TCP listener whose connections can be killed by the fault layer.
pub(crate) struct SimListener(pub(crate) TcpListener);

impl axum::serve::Listener for SimListener {
    type Io = KillableStream;
    type Addr = ConnHandle;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, peer)) => {
                    let killed = Arc::new(AtomicBool::new(false));
                    let _ = stream.set_nodelay(true);
                    return (
                        KillableStream {
                            inner: stream,
                            killed: killed.clone(),
                        },
                        ConnHandle { peer, killed },
                    );
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(ConnHandle {
            peer: self.0.local_addr()?,
            killed: Arc::new(AtomicBool::new(false)),
        })
    }
}

/// A TCP stream that fails once killed, so hyper drops the connection unanswered.
pub(crate) struct KillableStream {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
}

impl KillableStream {
    fn killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

fn aborted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "dropped by fault injection",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.killed() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_lets_k_requests_pass_then_faults_m_requests() {
        let mut book = FaultBook::default();
        book.inject(FaultPlan::next(Fault::rate_limited(5)).after(2).times(2));
        let seen: Vec<bool> = (0..6).map(|_| book.next().is_some()).collect();
        assert_eq!(seen, [false, false, true, true, false, false]);
    }

    #[test]
    fn a_plan_for_all_later_requests_never_runs_out() {
        let mut book = FaultBook::default();
        book.inject(FaultPlan::next(Fault::unavailable()).times(u64::MAX));
        assert!((0..100).all(|_| book.next().is_some()));
        book.clear();
        assert!(book.next().is_none());
    }

    #[test]
    fn plans_parse_from_the_control_api_json() {
        let plan: FaultPlan = serde_json::from_str(
            r#"{"fault": {"kind": "status", "status": 429, "retry_after": {"seconds": 30}},
                "after": 3, "count": 2}"#,
        )
        .unwrap();
        assert_eq!(
            plan,
            FaultPlan::next(Fault::rate_limited(30)).after(3).times(2)
        );
        let plan: FaultPlan =
            serde_json::from_str(r#"{"fault": {"kind": "drop_connection"}}"#).unwrap();
        assert_eq!(plan.count, 1);
    }
}
