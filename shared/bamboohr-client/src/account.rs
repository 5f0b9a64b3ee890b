//! Account-level operations: the field list and the list fields (to discover custom
//! fields and their names), the webhooks API (register, list, delete; the `privateKey`
//! BambooHR returns once, at creation, is kept as a secret), and the employee directory
//! as a fallback read.

use reqwest::Method;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::client::Call;
use crate::model::RawEmployee;
use crate::{BambooClient, BambooError};

/// One field of the account (`GET /api/v1/meta/fields`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldInfo {
    /// The field id (`"4"`, or a dotted subfield id such as `"4340.4"`).
    pub id: String,
    /// The display name, as field-based webhooks name it ("Work Email").
    pub name: String,
    /// The data type (`text`, `date`, `list`, `checkbox`, ...).
    pub field_type: String,
    /// The API alias (the name get-employee takes), when the field has one.
    pub alias: Option<String>,
    /// Whether BambooHR marks the field deprecated.
    pub deprecated: bool,
}

/// One option of a list field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOption {
    /// The option id.
    pub id: i64,
    /// The option's value.
    pub name: String,
    /// Archived options stay on historical records but cannot be chosen.
    pub archived: bool,
}

/// One list field with its options (`GET /api/v1/meta/lists`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListField {
    /// The field id.
    pub field_id: String,
    /// The display name.
    pub name: String,
    /// The API alias, when the field has one.
    pub alias: Option<String>,
    /// Whether the field takes several values.
    pub multiple: bool,
    /// The options.
    pub options: Vec<ListOption>,
}

/// A webhook to register (`POST /api/v1/webhooks`), always with `format: json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    /// A name for the webhook.
    pub name: String,
    /// Where BambooHR posts (BambooHR requires `https://`).
    pub url: String,
    /// Event types (`employee.created`, ...); empty means BambooHR's default, the
    /// field-based `employee_with_fields.*` events.
    pub events: Vec<String>,
    /// Fields whose change fires the webhook (required for update events).
    pub monitor_fields: Vec<String>,
    /// Fields to post, field id or alias -> the name used in the payload.
    pub post_fields: Vec<(String, String)>,
}

/// A registered webhook, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookInfo {
    /// The webhook id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Where it posts.
    pub url: String,
}

/// A webhook just created. The private key is returned only now and cannot be read
/// again: store it (the directory's secret) before anything else.
#[derive(Debug, Clone)]
pub struct CreatedWebhook {
    /// The webhook id.
    pub id: String,
    /// The key BambooHR signs this webhook's payloads with.
    pub private_key: SecretString,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IdText {
    Text(String),
    Number(serde_json::Number),
}

impl IdText {
    fn into_string(self) -> String {
        match self {
            IdText::Text(s) => s,
            IdText::Number(n) => n.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct WireField {
    id: IdText,
    name: String,
    #[serde(rename = "type")]
    field_type: String,
    alias: Option<String>,
    #[serde(default)]
    deprecated: bool,
}

#[derive(Deserialize)]
struct WireOption {
    id: i64,
    name: String,
    archived: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireList {
    field_id: IdText,
    name: String,
    alias: Option<String>,
    multiple: Option<String>,
    #[serde(default)]
    options: Vec<WireOption>,
}

#[derive(Deserialize)]
struct WireWebhooks {
    webhooks: Vec<WireWebhook>,
}

#[derive(Deserialize)]
struct WireWebhook {
    id: IdText,
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: String,
}

/// A webhook definition as create and update send it (`format: json`).
fn webhook_body(new: &NewWebhook) -> Value {
    let mut body = json!({
        "name": new.name,
        "url": new.url,
        "format": "json",
        "monitorFields": new.monitor_fields,
        "postFields": new
            .post_fields
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<String, Value>>(),
    });
    if !new.events.is_empty() {
        body["events"] = json!(new.events);
    }
    body
}

#[derive(Deserialize)]
struct WireMonitorFields {
    fields: Vec<WireMonitorField>,
}

#[derive(Deserialize)]
struct WireMonitorField {
    id: IdText,
    #[serde(default)]
    name: String,
    #[serde(default)]
    alias: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCreated {
    id: IdText,
    private_key: String,
}

/// Parses `body` into `T`; the reason names the position only (serde's message may quote
/// values from the body).
fn parse<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, BambooError> {
    serde_json::from_slice(body).map_err(|e| BambooError::BadResponse {
        reason: format!(
            "{what} is not the documented shape (line {}, column {})",
            e.line(),
            e.column()
        ),
    })
}

fn yes(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.eq_ignore_ascii_case("yes"))
}

impl BambooClient {
    pub(crate) async fn get_json<T>(
        &self,
        op: &'static str,
        segments: &[&str],
        parse: impl Fn(&[u8]) -> Result<T, BambooError>,
    ) -> Result<T, BambooError> {
        let url = self.url(segments)?;
        self.execute(
            Call {
                op,
                resource: op,
                method: Method::GET,
                url,
                body: None,
                idempotent: true,
            },
            parse,
        )
        .await
    }

    /// Every field of the account (`GET /api/v1/meta/fields`), custom ones included.
    pub async fn meta_fields(&self) -> Result<Vec<FieldInfo>, BambooError> {
        self.get_json("meta_fields", &["api", "v1", "meta", "fields"], |b| {
            let wire: Vec<WireField> = parse(b, "the field list")?;
            Ok(wire
                .into_iter()
                .map(|f| FieldInfo {
                    id: f.id.into_string(),
                    name: f.name,
                    field_type: f.field_type,
                    alias: f.alias.filter(|a| !a.is_empty()),
                    deprecated: f.deprecated,
                })
                .collect())
        })
        .await
    }

    /// Every list field with its options (`GET /api/v1/meta/lists`).
    pub async fn list_fields(&self) -> Result<Vec<ListField>, BambooError> {
        self.get_json("list_fields", &["api", "v1", "meta", "lists"], |b| {
            let wire: Vec<WireList> = parse(b, "the list fields")?;
            Ok(wire
                .into_iter()
                .map(|l| ListField {
                    field_id: l.field_id.into_string(),
                    name: l.name,
                    alias: l.alias.filter(|a| !a.is_empty()),
                    multiple: yes(l.multiple.as_deref()),
                    options: l
                        .options
                        .into_iter()
                        .map(|o| ListOption {
                            id: o.id,
                            name: o.name,
                            archived: yes(o.archived.as_deref()),
                        })
                        .collect(),
                })
                .collect())
        })
        .await
    }

    /// The employee directory (`GET /api/v1/employees/directory`): active employees with
    /// the company's directory fields; a fallback for credentials that may not use the
    /// list or dataset endpoints. An empty directory (BambooHR answers 404) is empty.
    pub async fn directory(&self) -> Result<Vec<RawEmployee>, BambooError> {
        let read = self
            .get_json("directory", &["api", "v1", "employees", "directory"], |b| {
                let root: Value = parse(b, "the directory")?;
                let rows = root
                    .get("employees")
                    .and_then(Value::as_array)
                    .ok_or_else(|| BambooError::BadResponse {
                        reason: "the directory has no employees array".into(),
                    })?;
                rows.iter()
                    .enumerate()
                    .map(|(i, row)| {
                        let mut fields: Map<String, Value> =
                            row.as_object()
                                .cloned()
                                .ok_or_else(|| BambooError::BadResponse {
                                    reason: format!("employees[{i}] is not an object"),
                                })?;
                        let id = match fields.remove("id") {
                            // Trimmed like every other employee id the client reads, so
                            // a blank id is refused rather than stored.
                            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
                            Some(Value::Number(n)) => n.to_string(),
                            _ => {
                                return Err(BambooError::BadResponse {
                                    reason: format!("employees[{i}].id is missing"),
                                })
                            }
                        };
                        Ok(RawEmployee {
                            id,
                            fields,
                            restricted: Vec::new(),
                        })
                    })
                    .collect()
            })
            .await;
        match read {
            Err(BambooError::NotFound { .. }) => Ok(Vec::new()),
            other => other,
        }
    }

    /// Registers a webhook (`POST /api/v1/webhooks`, `format: json`). Keep the returned
    /// private key: BambooHR never shows it again.
    pub async fn create_webhook(&self, new: &NewWebhook) -> Result<CreatedWebhook, BambooError> {
        let body = webhook_body(new);
        let url = self.url(&["api", "v1", "webhooks"])?;
        // Not idempotent: a retry after a timeout or a 5xx could register a second webhook
        // whose key no answer carried. Only throttling (BambooHR did nothing) is retried;
        // other transient failures go back to the caller, who lists before trying again.
        self.execute(
            Call {
                op: "create_webhook",
                resource: "webhooks",
                method: Method::POST,
                url,
                body: Some(&body),
                idempotent: false,
            },
            |b| {
                let w: WireCreated = parse(b, "the created webhook")?;
                Ok(CreatedWebhook {
                    id: w.id.into_string(),
                    private_key: SecretString::from(w.private_key),
                })
            },
        )
        .await
    }

    /// Replaces a webhook's definition (`PUT /api/v1/webhooks/{id}`); its private key
    /// stays the same.
    pub async fn update_webhook(&self, id: &str, new: &NewWebhook) -> Result<(), BambooError> {
        let id = id.trim();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BambooError::InvalidRequest {
                status: None,
                reason: "a webhook id is an integer".into(),
            });
        }
        let body = webhook_body(new);
        let url = self.url(&["api", "v1", "webhooks", id])?;
        let resource = format!("webhook {id}");
        self.execute(
            Call {
                op: "update_webhook",
                resource: &resource,
                method: Method::PUT,
                url,
                body: Some(&body),
                // A full replacement: sending it twice leaves the same webhook.
                idempotent: true,
            },
            |_| Ok(()),
        )
        .await
    }

    /// The fields a webhook may monitor (`GET /api/v1/webhooks/monitor_fields`), as
    /// (id, name, alias); `monitorFields` takes the id or the alias.
    pub async fn monitor_fields(&self) -> Result<Vec<FieldInfo>, BambooError> {
        self.get_json(
            "monitor_fields",
            &["api", "v1", "webhooks", "monitor_fields"],
            |b| {
                let wire: WireMonitorFields = parse(b, "the monitor fields")?;
                Ok(wire
                    .fields
                    .into_iter()
                    .map(|f| FieldInfo {
                        id: f.id.into_string(),
                        name: f.name,
                        field_type: String::new(),
                        alias: f.alias.filter(|a| !a.is_empty()),
                        deprecated: false,
                    })
                    .collect())
            },
        )
        .await
    }

    /// The webhooks this credential registered (`GET /api/v1/webhooks`).
    pub async fn list_webhooks(&self) -> Result<Vec<WebhookInfo>, BambooError> {
        self.get_json("list_webhooks", &["api", "v1", "webhooks"], |b| {
            let wire: WireWebhooks = parse(b, "the webhook list")?;
            Ok(wire
                .webhooks
                .into_iter()
                .map(|w| WebhookInfo {
                    id: w.id.into_string(),
                    name: w.name,
                    url: w.url,
                })
                .collect())
        })
        .await
    }

    /// Deletes a webhook (`DELETE /api/v1/webhooks/{id}`).
    pub async fn delete_webhook(&self, id: &str) -> Result<(), BambooError> {
        let id = id.trim();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BambooError::InvalidRequest {
                status: None,
                reason: "a webhook id is an integer".into(),
            });
        }
        let url = self.url(&["api", "v1", "webhooks", id])?;
        let resource = format!("webhook {id}");
        self.execute(
            Call {
                op: "delete_webhook",
                resource: &resource,
                method: Method::DELETE,
                url,
                body: None,
                idempotent: true,
            },
            // The answer is a plain-text confirmation; the status says it all.
            |_| Ok(()),
        )
        .await
    }
}
