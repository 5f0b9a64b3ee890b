//! Request bodies and list pages: a JSON body becomes a typed value before anything
//! changes (unknown fields refused, the refusal naming the field's path and never
//! quoting a value, since bodies may carry secrets), and a list answers one page with
//! the cursor of the next.

use base64::Engine as _;
use lambda_http::{Body, Request, RequestExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::{AdminError, MAX_LIMIT};

/// The JSON body as `T`; an absent or empty body reads as `{}`, so routes whose fields
/// are all optional need none.
pub fn body<T: DeserializeOwned>(req: &Request) -> Result<T, AdminError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => b"",
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        AdminError::bad_request(format!(
            "body: {}{}",
            if path == "." || path.is_empty() {
                String::new()
            } else {
                format!("{path}: ")
            },
            value_free(&inner)
        ))
    })
}

/// serde's message without the value it may quote (`invalid type: string "…",
/// expected u32` becomes `invalid type, expected u32`).
fn value_free(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let text = text
        .split(" at line ")
        .next()
        .unwrap_or_default()
        .to_string();
    for prefix in ["invalid type", "invalid value", "invalid length"] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return match rest.find(", expected") {
                Some(i) => format!("{prefix}{}", &rest[i..]),
                None => prefix.to_string(),
            };
        }
    }
    if e.is_syntax() || e.is_eof() {
        return format!("not JSON (line {}, column {})", e.line(), e.column());
    }
    text
}

/// Refuses any body but an empty one or `{}`.
pub fn no_body(req: &Request) -> Result<(), AdminError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Nothing {}
    body::<Nothing>(req).map(|_| ())
}

/// A query parameter.
pub fn query(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name).map(str::to_string))
}

/// The `limit` query parameter (1 to [`MAX_LIMIT`]), or `default`.
pub fn limit(req: &Request, default: usize) -> Result<usize, AdminError> {
    match query(req, "limit") {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| AdminError::bad_request(format!("limit must be 1 to {MAX_LIMIT}"))),
    }
}

fn encode_cursor(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn decode_cursor(cursor: &str) -> Result<String, AdminError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| AdminError::bad_request("cursor: not a cursor this API gave"))
}

/// One page of `items` (in their order, each with its sort key from `key`): those after
/// the request's `cursor`, at most its `limit` (default `default`), as `{"items",
/// "nextCursor"}` (`null` on the last page).
pub fn page<T: Serialize>(
    req: &Request,
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    default: usize,
) -> Result<Value, AdminError> {
    let limit = limit(req, default)?;
    let after = query(req, "cursor")
        .map(|c| decode_cursor(&c))
        .transpose()?;
    let mut rest = items.into_iter().skip_while(|i| match &after {
        Some(a) => key(i) != *a,
        None => false,
    });
    if after.is_some() && rest.next().is_none() {
        // The cursor's item is gone (or never was): start over rather than skip all.
        return Err(AdminError::bad_request(
            "cursor: its position no longer exists; list again from the start",
        ));
    }
    let chunk: Vec<T> = rest.by_ref().take(limit + 1).collect();
    let more = chunk.len() > limit;
    let chunk: Vec<T> = chunk.into_iter().take(limit).collect();
    let next = if more {
        chunk.last().map(|i| encode_cursor(&key(i)))
    } else {
        None
    };
    Ok(json!({"items": chunk, "nextCursor": next}))
}
