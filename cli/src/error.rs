//! Why a command failed: one error type for every command and the `dev` stack, printed
//! by the binary as one line.

use sync_engine::EngineError;

/// Why a command failed; printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The engine refused or failed.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] ports::StoreError),
    /// Bad input.
    #[error("{0}")]
    Usage(String),
    /// The admin API refused or failed the request, or could not be called.
    #[error(transparent)]
    Api(#[from] admin::client::ClientError),
    /// Reading input or writing output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The local stack failed.
    #[error("{0}")]
    Dev(#[from] DevError),
}

/// Why the local stack stopped.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// A local file or port could not be used.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] ports::StoreError),
    /// The secret store failed.
    #[error("secrets: {0}")]
    Secrets(#[from] ports::SecretsError),
    /// A handler failed.
    #[error("{0}")]
    Handler(String),
    /// Connecting the company given by --subdomain failed.
    #[error("{0}")]
    Connect(#[from] sync_engine::EngineError),
}
