//! The page's one script and one stylesheet, compiled into the function: nothing is
//! fetched from anywhere else, so the page works with no internet beyond the stack,
//! and the Content-Security-Policy can allow `'self'` only.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};

/// The page's script: exchanges the link's token for a session, sends the forms as
/// JSON with the CSRF token, and shows errors beside their fields.
pub const SCRIPT: &str = include_str!("assets/portal.js");
/// The page's stylesheet (responsive, high contrast, visible focus).
pub const STYLE: &str = include_str!("assets/portal.css");

/// The asset at `path` (`/setup/assets/portal.js` or `…/portal.css`).
pub fn answer(path: &str) -> Response<Body> {
    let (body, kind) = if path.ends_with(".js") {
        (SCRIPT, "text/javascript; charset=utf-8")
    } else {
        (STYLE, "text/css; charset=utf-8")
    };
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", kind)
        .header("cache-control", "public, max-age=300")
        .body(Body::Text(body.to_string()))
        .expect("a static response is valid")
}
