//! The demo's receiving app: a local HTTP endpoint that checks each delivery's
//! Standard Webhooks signature and prints what arrived.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use sync_engine::signing::{verify_standard_webhook, WebhookSecret};

/// One delivery the receiver accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// Event type, e.g. `user.created`.
    pub event_type: String,
    /// The object id.
    pub object_id: String,
    /// The object version.
    pub version: u64,
    /// For user events: BambooHR employee id and state.
    pub employee: Option<(String, String)>,
}

struct Inner {
    secret: WebhookSecret,
    received: AtomicUsize,
    /// Deliveries still to print one line each; past it they are only counted, so a
    /// large company shows progress instead of thousands of lines.
    lines_left: AtomicUsize,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Inner>,
    /// Where targets should POST.
    pub url: String,
}

impl Receiver {
    /// Starts the receiver on a free loopback port, printing a line for each of the
    /// first `lines` deliveries.
    pub async fn start(secret: WebhookSecret, lines: usize) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            secret,
            received: AtomicUsize::new(0),
            lines_left: AtomicUsize::new(lines),
        });
        let app = Router::new()
            .route("/hooks/app", post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hooks/app", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { inner, url })
    }

    /// How many deliveries were accepted.
    pub fn count(&self) -> usize {
        self.inner.received.load(Ordering::SeqCst)
    }

    /// Prints a line for each of the next `lines` deliveries (0: none).
    pub fn print_next(&self, lines: usize) {
        self.inner.lines_left.store(lines, Ordering::SeqCst);
    }
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !verify_standard_webhook(
        &inner.secret,
        h("webhook-id"),
        h("webhook-timestamp"),
        &body,
        h("webhook-signature"),
    ) {
        println!("receiver: refused a delivery with a bad signature");
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let data = &event["data"];
    let received = Received {
        event_type: text(&event["type"]),
        object_id: text(&event["objectId"]),
        version: event["version"].as_u64().unwrap_or_default(),
        employee: data
            .get("employeeId")
            .map(|e| (text(e), text(&data["state"]))),
    };
    let print = inner
        .lines_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if print {
        match &received.employee {
            Some((emp, state)) => println!(
                "delivered {:<13} {} v{} (employee {emp}, {state})",
                received.event_type, received.object_id, received.version
            ),
            None => println!(
                "delivered {:<13} {} v{}",
                received.event_type, received.object_id, received.version
            ),
        }
    }
    inner.received.fetch_add(1, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}
