//! `oauth-client ...`: the stack's BambooHR OAuth client (a developer application
//! registered with BambooHR). With one set, the setup page offers "Connect with
//! BambooHR" beside the API-key form. The secret comes from
//! [`OAUTH_CLIENT_SECRET_ENV`] or stdin, never the command line, and is never shown.

use std::io::{BufRead, Write};

use clap::Subcommand;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::secret::{read_secret, SecretSource};
use crate::error::CliError;
use crate::output::{emit, Output};
use crate::stack::Stack;

/// Environment variable holding the OAuth client's secret for `oauth-client set`.
pub const OAUTH_CLIENT_SECRET_ENV: &str = "BAMBOOHR_OAUTH_CLIENT_SECRET";

/// `oauth-client ...`
#[derive(Debug, Subcommand)]
pub enum OAuthClientCmd {
    /// Whether the stack's BambooHR OAuth client is set, and its client id.
    Show,
    /// Set or replace it (the secret from BAMBOOHR_OAUTH_CLIENT_SECRET or
    /// --secret-stdin): the setup page then offers "Connect with BambooHR".
    Set {
        /// The client id BambooHR issued.
        #[arg(long)]
        client_id: String,
        /// Where the secret comes from.
        #[command(flatten)]
        secret: SecretSource,
    },
    /// Remove it: the setup page offers API keys only.
    Remove,
}

/// The OAuth client as the admin API shows it.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct View {
    configured: bool,
    client_id: Option<String>,
}

/// Runs an `oauth-client` command.
pub(super) async fn run(
    stack: &Stack,
    cmd: OAuthClientCmd,
    mode: Output,
    out: &mut dyn Write,
    input: &mut dyn BufRead,
) -> Result<(), CliError> {
    let path = "/admin/oauth-client";
    let answer = match cmd {
        OAuthClientCmd::Show => stack.client.get::<serde_json::Value>(path, &[]).await?,
        OAuthClientCmd::Set { client_id, secret } => {
            let secret = read_secret(
                &secret,
                OAUTH_CLIENT_SECRET_ENV,
                "OAuth client secret",
                input,
            )?;
            stack
                .client
                .post(
                    path,
                    &json!({
                        "clientId": client_id,
                        "clientSecret": secrecy::ExposeSecret::expose_secret(&secret),
                    }),
                )
                .await?
        }
        OAuthClientCmd::Remove => {
            stack
                .client
                .post(&format!("{path}/remove"), &json!({}))
                .await?
        }
    };
    let view: View = serde_json::from_value(answer)
        .map_err(|e| CliError::Usage(format!("the admin API answered an unexpected shape: {e}")))?;
    emit(out, mode, &view, |o| match &view.client_id {
        Some(id) if view.configured => writeln!(
            o,
            "BambooHR OAuth client: {id} (the setup page offers Connect with BambooHR)"
        ),
        _ => writeln!(
            o,
            "BambooHR OAuth client: not set (the setup page offers API keys only)"
        ),
    })
}
