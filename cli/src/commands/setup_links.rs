//! `setup-links ...`: the links a customer's IT admin connects their BambooHR company
//! with, on the stack's setup page. `create` prints the link (with its token) once;
//! `list` shows ids, expiry and state, never a token; `revoke` stops one at once.

use std::io::Write;

use clap::Subcommand;
use serde::Deserialize;
use serde_json::json;

use super::args::dir_id;
use crate::error::CliError;
use crate::output::{emit, table, when, Output};
use crate::stack::Stack;

/// `setup-links ...`
#[derive(Debug, Subcommand)]
pub enum SetupLinksCmd {
    /// Create a setup link for a directory (connected or not) and print it once.
    Create {
        /// Directory id.
        directory: String,
        /// Days until the link stops working (1 to 30).
        #[arg(long, default_value_t = 7)]
        expires_in_days: u32,
        /// BambooHR base URL the page connects to instead of
        /// https://<subdomain>.bamboohr.com (a simulator or proxy).
        #[arg(long)]
        bamboohr_base_url: Option<String>,
    },
    /// A directory's setup links: ids, expiry and state (never a token).
    List {
        /// Directory id.
        directory: String,
    },
    /// Revoke a setup link: it and its page sessions stop working at once.
    Revoke {
        /// Directory id.
        directory: String,
        /// The link's id, as `list` shows it.
        link: String,
    },
}

/// A setup link as the admin API shows it.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct LinkView {
    id: String,
    state: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: time::OffsetDateTime,
    created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: time::OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    last_used_at: Option<time::OffsetDateTime>,
}

fn shape(e: serde_json::Error) -> CliError {
    CliError::Usage(format!("the admin API answered an unexpected shape: {e}"))
}

/// Runs a `setup-links` command.
pub(super) async fn run(
    stack: &Stack,
    cmd: SetupLinksCmd,
    mode: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match cmd {
        SetupLinksCmd::Create {
            directory,
            expires_in_days,
            bamboohr_base_url,
        } => {
            let id = dir_id(&directory)?;
            let mut body = json!({ "expiresInDays": expires_in_days });
            if let Some(url) = bamboohr_base_url {
                body["bamboohrBaseUrl"] = json!(url);
            }
            let answer = stack
                .client
                .post(&format!("/admin/directories/{id}/setup-links"), &body)
                .await?;
            let link: LinkView = serde_json::from_value(answer["link"].clone()).map_err(shape)?;
            emit(out, mode, &answer, |o| {
                writeln!(
                    o,
                    "{id}: setup link {} (expires {})",
                    link.id,
                    when(Some(link.expires_at))
                )?;
                match answer["url"].as_str() {
                    Some(url) => writeln!(o, "  send this to the customer's IT admin: {url}")?,
                    None => writeln!(
                        o,
                        "  token (the page's URL is <stack>/setup/#t=<token>): {}",
                        answer["token"].as_str().unwrap_or_default()
                    )?,
                }
                writeln!(
                    o,
                    "  it is shown only now; revoke it with `setup-links revoke {id} {}`",
                    link.id
                )
            })
        }
        SetupLinksCmd::List { directory } => {
            let id = dir_id(&directory)?;
            let links: Vec<LinkView> = stack
                .client
                .list(&format!("/admin/directories/{id}/setup-links"), &[])
                .await?;
            emit(out, mode, &links, |o| {
                let rows: Vec<Vec<String>> = links
                    .iter()
                    .map(|l| {
                        vec![
                            l.id.clone(),
                            l.state.clone(),
                            when(Some(l.expires_at)),
                            when(l.last_used_at),
                            when(Some(l.created_at)),
                            l.created_by.clone(),
                        ]
                    })
                    .collect();
                table(
                    o,
                    &["LINK", "STATE", "EXPIRES", "LAST USED", "CREATED", "BY"],
                    &rows,
                )
            })
        }
        SetupLinksCmd::Revoke { directory, link } => {
            let id = dir_id(&directory)?;
            let answer = stack
                .client
                .post(
                    &format!("/admin/directories/{id}/setup-links/{link}/revoke"),
                    &json!({}),
                )
                .await?;
            let view: LinkView = serde_json::from_value(answer.clone()).map_err(shape)?;
            emit(out, mode, &answer, |o| {
                writeln!(o, "{id}: setup link {} is {}", view.id, view.state)
            })
        }
    }
}
