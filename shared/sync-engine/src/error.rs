//! The engine's one error type: what failed, and whether trying again can help.

use bamboohr_client::BambooError;
use domain::DirectoryId;
use ports::{BusError, SecretsError, StoreError};

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No directory by that id.
    #[error("directory {0} not found")]
    DirectoryNotFound(DirectoryId),
    /// The directory exists but is paused, held or revoked.
    #[error("directory {id} is {state}")]
    DirectoryNotActive {
        /// Which directory.
        id: DirectoryId,
        /// Its state, lowercase.
        state: &'static str,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The secret store failed.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// BambooHR failed.
    #[error("BambooHR: {0}")]
    BambooHr(#[from] BambooError),
    /// The directory's secret lacks what the operation needs.
    #[error("directory {id} has no {what} configured")]
    MissingCredential {
        /// Which directory.
        id: DirectoryId,
        /// What is missing, e.g. "BambooHR API key".
        what: &'static str,
    },
    /// The directory has no target by that id.
    #[error("target {0} not found")]
    TargetNotFound(domain::TargetId),
    /// The engine was built without a capability the operation needs.
    #[error("this engine has no {0} configured")]
    MissingCapability(&'static str),
    /// BambooHR did not accept the credentials being connected.
    #[error(transparent)]
    Connect(#[from] ConnectProblem),
    /// A setup link could not be used (unknown, expired, revoked, rate limited).
    #[error(transparent)]
    SetupLink(#[from] SetupLinkProblem),
    /// An operator's input was refused (nothing was changed).
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What was refused, e.g. "time zone".
        what: String,
        /// Why.
        reason: String,
    },
    /// The scheduler failed.
    #[error(transparent)]
    Scheduler(#[from] ports::SchedulerError),
    /// A write kept losing to concurrent writers.
    #[error("gave up writing {what} after {attempts} conflicting attempts")]
    TooManyConflicts {
        /// What was being written.
        what: String,
        /// How many attempts were made.
        attempts: u32,
    },
}

impl EngineError {
    /// Whether a later retry of the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::DirectoryNotFound(_) | Self::DirectoryNotActive { .. } => false,
            Self::MissingCredential { .. } => false,
            Self::TargetNotFound(_) | Self::MissingCapability(_) => false,
            Self::Store(e) => e.is_retryable(),
            Self::Secrets(e) => e.is_retryable(),
            Self::Bus(e) => e.is_retryable(),
            Self::BambooHr(e) => e.is_retryable(),
            Self::TooManyConflicts { .. } => true,
            Self::Connect(p) => p.is_retryable(),
            Self::SetupLink(p) => p.is_retryable(),
            Self::InvalidInput { .. } => false,
            Self::Scheduler(e) => e.is_retryable(),
        }
    }
}

/// Why BambooHR did not accept the credentials being connected. Each reads as one
/// line an operator can act on. Serialised (tagged by `problem`) in the admin API's
/// error answer, so a client such as the setup page can place it beside a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum ConnectProblem {
    /// 401.
    #[error("bad API key: BambooHR refused the credentials for {subdomain}")]
    BadApiKey {
        /// The company.
        subdomain: String,
    },
    /// 403, or essential fields withheld.
    #[error("missing permission: the credentials for {subdomain} cannot read {what}")]
    MissingPermission {
        /// The company.
        subdomain: String,
        /// What they cannot read.
        what: String,
    },
    /// 404 or a host that does not resolve.
    #[error("unknown subdomain: {subdomain} is not a BambooHR company ({detail})")]
    UnknownSubdomain {
        /// The company asked for.
        subdomain: String,
        /// What happened (status or connection failure).
        detail: String,
    },
    /// BambooHR throttled the check (429) and kept doing so.
    #[error("rate limited: BambooHR asked to wait before checking {subdomain} again")]
    RateLimited {
        /// The company.
        subdomain: String,
        /// Seconds BambooHR asked to wait, when it said.
        retry_after_seconds: Option<u64>,
    },
    /// BambooHR could not be reached or kept failing.
    #[error("BambooHR unreachable for {subdomain}: {reason}")]
    Unreachable {
        /// The company.
        subdomain: String,
        /// Why.
        reason: String,
    },
}

impl ConnectProblem {
    /// Only unreachability and throttling may pass by themselves.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::RateLimited { .. })
    }
}

/// Why a setup link could not be used. The page shows each as its own clear message;
/// none says more than the link's state (an unknown link and a wrong secret read the
/// same).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupLinkProblem {
    /// The directory has no link with this id (operator routes).
    #[error("setup link {0} not found")]
    NotFound(String),
    /// The token or session is not one this stack gave (or it was mistyped).
    #[error("this setup link is not valid")]
    Invalid,
    /// The link is past its expiry.
    #[error("this setup link has expired")]
    Expired,
    /// An operator revoked the link.
    #[error("this setup link was revoked")]
    Revoked,
    /// Too many attempts in the last minute.
    #[error("too many attempts with this setup link: try again in {retry_after_seconds} s")]
    RateLimited {
        /// Seconds until another attempt is allowed.
        retry_after_seconds: u64,
    },
}

impl SetupLinkProblem {
    /// Only the rate limit passes by itself.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. })
    }
}
