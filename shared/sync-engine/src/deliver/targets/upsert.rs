//! Delivery to a Litmos-style HTTP upsert target: one JSON POST per user with the
//! target's chosen fields, to a URL whose secret parts (an API key) come from the
//! secret store. Which users it receives is the target's filter (its "gate", e.g. a
//! "Litmos Access" checkbox); users lacking a required field (the work email always)
//! are skipped with a per-record reason, so the import results say why.
//!
//! One learner per employee: the target's own id for the learner, read from its
//! upsert answer, is remembered per (user, target) and sent back as `id`, so an email
//! change (a new username) updates the learner instead of creating a second one. A
//! user leaving the gate is sent once with `active: false` when the target's
//! [`domain::GateExit`] says so (the dispatcher decides when).

use std::collections::BTreeMap;

use domain::{ChangeEvent, DirectoryId, DirectoryUser, TargetId};
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

/// One HTTP upsert target as a delivery sees it.
pub(crate) struct UpsertTarget<'a> {
    pub(crate) directory: &'a DirectoryId,
    pub(crate) id: &'a TargetId,
    /// The URL without its secret parameters.
    pub(crate) url: &'a str,
    /// The secret URL parameters (e.g. the API key).
    pub(crate) params: Option<&'a BTreeMap<String, SecretString>>,
    pub(crate) fields: &'a [String],
    pub(crate) required: &'a [String],
}

/// The target's own id for the learner in an upsert answer: `id` or `Id` (Litmos's
/// spelling) at the top of a JSON object, text or a number. None when the answer has
/// no body, is not JSON, or names no id.
pub fn id_in_answer(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let id = value.get("id").or_else(|| value.get("Id"))?;
    match id {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl UpsertTarget<'_> {
    /// Sends one user event: the user's current state, deactivated when `gate_exit`
    /// (the user left the target's gate), with the target's own id for the learner
    /// when an earlier answer gave one. The id is what keeps one learner per employee:
    /// the username is the work email, so after an email change an upsert keyed on
    /// the username alone would create a second learner; with `id` the target updates
    /// the learner it has, username included. The id an answer carries is remembered
    /// per (user, target).
    pub(crate) async fn send(
        &self,
        engine: &Engine,
        event: &ChangeEvent,
        user: Option<&DirectoryUser>,
        gate_exit: bool,
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
        let mut body = match to_upsert_body(user, self.fields) {
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
        if let Some(field) = missing_required(&body, self.required) {
            return Attempt::plain(TargetOutcome::Skipped {
                reason: format!("required field missing: {field}"),
            });
        }
        let known = match engine
            .store
            .get_target_account(self.directory, self.id, user.id.as_str())
            .await
        {
            Ok(known) => known,
            Err(e) => {
                return Attempt::failed(
                    format!("the learner's id at the target could not be read: {e}"),
                    e.is_retryable(),
                )
            }
        };
        if let Value::Object(map) = &mut body {
            if gate_exit {
                map.insert("active".into(), Value::Bool(false));
            }
            if let Some(id) = &known {
                map.insert("id".into(), Value::String(id.clone()));
            }
        }
        let url = match with_secret_params(self.url, self.params) {
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
        let resp = match result {
            Ok(resp) => resp,
            Err(e) => return transport_failure(&e, "upsert POST"),
        };
        let attempt = judge(engine, &resp, event.version, "upsert POST");
        if !matches!(attempt.outcome, TargetOutcome::Delivered { .. }) {
            return attempt;
        }
        // An answer that cannot be read still delivered the user; only its id is lost.
        let answer = resp.bytes().await.unwrap_or_default();
        if let Some(id) = id_in_answer(&answer).filter(|id| known.as_ref() != Some(id)) {
            if let Err(e) = engine
                .store
                .put_target_account(self.directory, self.id, user.id.as_str(), &id)
                .await
            {
                // Unremembered, the next email change would create a second learner:
                // the delivery is retried (the same upsert again) until the id is kept.
                return Attempt::failed(
                    format!("the learner's id at the target could not be remembered: {e}"),
                    true,
                );
            }
        }
        attempt
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
    fn the_learner_id_is_read_from_id_or_litmos_id_as_text_or_number() {
        assert_eq!(id_in_answer(br#"{"id": "L-1"}"#), Some("L-1".into()));
        assert_eq!(id_in_answer(br#"{"Id": 42}"#), Some("42".into()));
        assert_eq!(id_in_answer(br#"{"Id": ""}"#), None);
        assert_eq!(id_in_answer(b""), None);
        assert_eq!(id_in_answer(b"ok"), None);
        assert_eq!(id_in_answer(br#"[{"id": "x"}]"#), None);
    }

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
