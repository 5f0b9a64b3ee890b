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
    /// Reading input or writing output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The local stack failed.
    #[error("{0}")]
    Dev(#[from] crate::dev::DevError),
}
