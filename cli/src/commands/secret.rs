//! Where a command's secrets come from: an environment variable or the first line of
//! stdin, never the command line (where shells and process lists keep them).

use std::io::BufRead;

use clap::Args;
use secrecy::SecretString;

use super::args::usage;
use crate::error::CliError;

/// Where a secret comes from: an environment variable (named by a flag, with a
/// default) or the first line of stdin.
#[derive(Debug, Args, Clone)]
pub struct SecretSource {
    /// Read the secret from the first line of stdin instead of the environment.
    #[arg(long)]
    pub secret_stdin: bool,
}

/// The secret `source` names: the first line of `input`, or `env_var`. A missing or
/// blank one is a usage error naming both ways to give it.
pub(super) fn read_secret(
    source: &SecretSource,
    env_var: &str,
    what: &str,
    input: &mut dyn BufRead,
) -> Result<SecretString, CliError> {
    let value = if source.secret_stdin {
        let mut line = String::new();
        input.read_line(&mut line)?;
        line.trim().to_string()
    } else {
        std::env::var(env_var)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    if value.is_empty() {
        return Err(usage(format!(
            "no {what}: set {env_var} or pass --secret-stdin and write it to stdin"
        )));
    }
    Ok(SecretString::from(value))
}

/// The secret `source` names, or `None` when neither stdin was asked for nor `env_var`
/// is set (an update that keeps the target's secret).
pub(super) fn read_optional_secret(
    source: &SecretSource,
    env_var: &str,
    input: &mut dyn BufRead,
) -> Result<Option<SecretString>, CliError> {
    if source.secret_stdin || std::env::var(env_var).is_ok_and(|v| !v.trim().is_empty()) {
        read_secret(source, env_var, "secret", input).map(Some)
    } else {
        Ok(None)
    }
}
