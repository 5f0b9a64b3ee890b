//! Parsing the command line's ids and naming states: the small helpers every noun's
//! commands share.

use domain::{DirectoryId, DirectoryState, EmployeeId, TargetId};

use crate::error::CliError;

pub(super) fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

pub(super) fn dir_id(s: &str) -> Result<DirectoryId, CliError> {
    DirectoryId::parse(s).map_err(|e| usage(format!("directory id {s:?}: {e}")))
}

pub(super) fn target_id(s: &str) -> Result<TargetId, CliError> {
    TargetId::parse(s).map_err(|e| usage(format!("target id {s:?}: {e}")))
}

pub(super) fn employee_id(s: &str) -> Result<EmployeeId, CliError> {
    EmployeeId::parse(s).map_err(|e| usage(format!("employee id {s:?}: {e}")))
}

pub(super) fn state_name(s: DirectoryState) -> &'static str {
    match s {
        DirectoryState::Active => "active",
        DirectoryState::Paused => "paused",
        DirectoryState::Held => "held",
        DirectoryState::Revoked => "revoked",
    }
}
