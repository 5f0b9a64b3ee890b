//! Capability traits between the sync engine and the outside world.
//!
//! Each trait has an AWS adapter (`aws-adapters`) and an embedded adapter
//! (`embedded-adapters`); both pass the suite in [`contract`] so they cannot drift.
//! Nothing here does I/O itself.

pub mod audit_store;
pub mod bus;
pub mod clock;
#[cfg(feature = "contract")]
pub mod contract;
#[cfg(feature = "contract")]
pub mod contract_audit;
#[cfg(feature = "contract")]
pub mod contract_delivery;
#[cfg(feature = "contract")]
pub mod contract_purge;
#[cfg(feature = "contract")]
pub mod contract_retry;
#[cfg(feature = "contract")]
pub mod contract_scheduler;
#[cfg(feature = "contract")]
pub mod contract_sealer;
#[cfg(feature = "contract")]
pub mod contract_secrets;
#[cfg(feature = "contract")]
pub mod contract_setup_links;
#[cfg(feature = "contract")]
pub mod contract_sync;
pub mod delivery_store;
pub mod keys;
pub mod retry_queue;
pub mod scheduler;
pub mod sealer;
pub mod secrets;
pub mod setup_link_store;
pub mod store;
pub mod store_error;
pub mod sync_store;

pub use audit_store::{AuditAction, AuditEntry, AuditStore, EvidenceRow, OnboardingEvidence};
pub use bus::{BusError, EventBus, PublishOutcome, TeeBus};
pub use clock::{Clock, FixedClock, SystemClock};
pub use delivery_store::{
    BreakerState, DeliveryQuery, DeliveryRecord, DeliveryStatus, DeliveryStore,
};
pub use retry_queue::{
    ChangeDeadLetter, DeadLetter, ForeignBus, ForeignBusError, ReceivedDeadLetter, RetryEnvelope,
    RetryQueue, RetryTask,
};
pub use scheduler::{
    DirectorySchedule, OnceOutcome, Scheduler, SchedulerError, MAX_FLEXIBLE_WINDOW_MINUTES,
};
pub use sealer::{CredentialSealer, SealedCredential, ENVELOPE_SCHEME};
pub use secrets::{
    key_id, CachingSecretStore, DirectorySecrets, KeyInfo, OAuthTokens, SecretPart, SecretStore,
    SecretsError, TargetSecrets,
};
pub use setup_link_store::{SetupLink, SetupLinkState, SetupLinkStore, SetupSession};
pub use store::{
    LedgerAdvance, Lifecycle, PurgeReport, RefreshRequest, Store, StoreError, UserFingerprint,
    UserWrite,
};
pub use sync_store::{GroupWrite, QuarantinedEvent, SyncStore};
