//! Delivery to a Litmos-style HTTP upsert target: one JSON POST per user with the
//! target's chosen fields, to a URL whose secret parts (an API key) come from the
//! secret store. Which users it receives is the target's filter (its "gate", e.g. a
//! "Litmos Access" checkbox); users lacking a required field (the work email always)
//! are skipped with a per-record reason, so the import results say why.

use std::collections::BTreeMap;

use domain::{ChangeEvent, DirectoryUser};
use mapping::{to_upsert_body, MappingError};
use secrecy::SecretString;
use serde_json::Value;

use crate::deliver::attempt::{
    judge, transport_failure, with_secret_params, Attempt, TargetOutcome,
};
use crate::deps::Engine;

/// Why a user cannot be sent: the first required field without a value.
pub fn missing_required(body: &Value, required: &[String]) -> Option<String> {
    required
        .iter()
        .find(|field| match body.get(field.as_str()) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.trim().is_empty(),
            Some(_) => false,
        })
        .cloned()
}

/// Sends one user event to an upsert target.
pub(crate) async fn send(
    engine: &Engine,
    url: &str,
    params: Option<&BTreeMap<String, SecretString>>,
    fields: &[String],
    required: &[String],
    event: &ChangeEvent,
    user: Option<&DirectoryUser>,
) -> Attempt {
    if !event.event_type.is_user_event() {
        return Attempt::plain(TargetOutcome::Skipped {
            reason: format!(
                "HTTP upsert targets receive user events only, not {}",
                event.event_type.as_str()
            ),
        });
    }
    let Some(user) = user else {
        return Attempt::plain(TargetOutcome::Skipped {
            reason: "the user is not in the store, so there is no state to send".into(),
        });
    };
    let body = match to_upsert_body(user, fields) {
        Ok(body) => body,
        Err(e @ MappingError::MissingWorkEmail) => {
            return Attempt::plain(TargetOutcome::Skipped {
                reason: format!("required field missing: {e}"),
            })
        }
        Err(e) => {
            return Attempt::plain(TargetOutcome::Failed {
                reason: format!("the user cannot be rendered for this target: {e}"),
                retryable: e.is_retryable(),
            })
        }
    };
    if let Some(field) = missing_required(&body, required) {
        return Attempt::plain(TargetOutcome::Skipped {
            reason: format!("required field missing: {field}"),
        });
    }
    let url = match with_secret_params(url, params) {
        Ok(u) => u,
        Err(reason) => {
            return Attempt::plain(TargetOutcome::Failed {
                reason,
                retryable: false,
            })
        }
    };
    let result = engine
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(serde_json::to_vec(&body).expect("a JSON value serializes"))
        .send()
        .await;
    match result {
        Ok(resp) => judge(engine, &resp, event.version, "upsert POST"),
        Err(e) => transport_failure(&e, "upsert POST"),
    }
}

/// The probe: a `HEAD` of the URL without its secret parameters, so the API key is
/// not sent to a URL that may be wrong.
pub(crate) fn probe(engine: &Engine, url: &str) -> reqwest::RequestBuilder {
    engine.http.head(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_required_field_that_is_null_or_blank_is_named() {
        let body = json!({"username": "ada@acme.test", "jobTitle": null, "city": "  "});
        assert_eq!(missing_required(&body, &["username".into()]), None);
        assert_eq!(
            missing_required(&body, &["username".into(), "jobTitle".into()]),
            Some("jobTitle".into())
        );
        assert_eq!(
            missing_required(&body, &["city".into()]),
            Some("city".into())
        );
        assert_eq!(missing_required(&body, &["zip".into()]), Some("zip".into()));
    }
}
