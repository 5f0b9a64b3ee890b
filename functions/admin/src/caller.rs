//! Who is calling: the IAM identity API Gateway's `AWS_IAM` authorizer verified and
//! put in the request context (`requestContext.authorizer.iam`). The write routes
//! audit under it. The caller's ARN is preferred (`arn:aws:sts::…:assumed-role/ops/
//! alice` names the person behind a role); the caller id (`AROA…:alice`) stands in
//! when API Gateway gave no ARN. Nothing from headers or the body is trusted for this:
//! a client could put any name there.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use crate::AdminError;

/// The header in which a client acting for someone else (the setup page, for a setup
/// link) names them. It is recorded after the verified identity, never instead of it.
pub const ON_BEHALF_OF: &str = "x-bsync-on-behalf-of";

/// The actor a change is audited under: the verified IAM identity, followed by whom
/// the caller acted for when it says so (`<arn> for setup-link:<id>`).
pub fn actor(req: &Request) -> Result<String, AdminError> {
    let who = identity(req)?;
    let behalf = req
        .headers()
        .get(ON_BEHALF_OF)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 100
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b))
        });
    Ok(match behalf {
        Some(b) => format!("{who} for {b}"),
        None => who,
    })
}

/// The verified IAM identity of the caller, or `Forbidden` when the request carries
/// none (it did not come through the IAM-authorised API, so nothing may change).
pub fn identity(req: &Request) -> Result<String, AdminError> {
    let iam = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            ctx.authorizer.as_ref().and_then(|a| a.iam.as_ref())
        }
        _ => None,
    };
    let name = iam.and_then(|iam| {
        [iam.user_arn.as_deref(), iam.caller_id.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .find(|s| !s.is_empty())
    });
    name.map(str::to_string).ok_or_else(|| {
        AdminError::Forbidden(
            "no IAM caller identity in the request: changes are made only through the \
             IAM-authorised admin API, audited under the caller"
                .into(),
        )
    })
}
