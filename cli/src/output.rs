//! Printing results: aligned text for people, one JSON document for scripts.

use std::io::Write;

use clap::ValueEnum;
use serde::Serialize;

use crate::error::CliError;

/// Human-readable text or JSON for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned text.
    Human,
    /// One JSON document.
    Json,
}

/// Prints `value` as JSON, or the text `human` renders.
pub fn emit<T: Serialize>(
    out: &mut dyn Write,
    mode: Output,
    value: &T,
    human: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), CliError> {
    match mode {
        Output::Json => {
            let text = serde_json::to_string_pretty(value).expect("results serialize");
            writeln!(out, "{text}")?;
        }
        Output::Human => human(out)?,
    }
    Ok(())
}

/// Rows under a header, each column as wide as its widest cell.
pub fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    if rows.is_empty() {
        writeln!(out, "(none)")?;
    }
    Ok(())
}

/// An RFC 3339 time, or `-`.
pub fn when(t: Option<time::OffsetDateTime>) -> String {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_else(|| "-".to_string())
}

/// A spinner on stderr for work that takes a while (a sync, a re-push). It draws only
/// when stderr is a terminal and the output is for people, so scripts and captured
/// logs see nothing of it.
pub fn spinner(mode: Output, message: String) -> indicatif::ProgressBar {
    let bar = if mode == Output::Human {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// A key list as a table (`first` names the key column): ids, which is newest, and
/// when each was added; never a key.
pub fn key_table(
    out: &mut dyn Write,
    first: &str,
    keys: &[ports::KeyInfo],
    roles: [&str; 2],
) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.id.clone(),
                if k.position == 0 { roles[0] } else { roles[1] }.into(),
                k.added_at
                    .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                    .map(|t| when(Some(t)))
                    .unwrap_or_else(|| "unknown".into()),
            ]
        })
        .collect();
    table(out, &[first, "ROLE", "ADDED"], &rows)
}
