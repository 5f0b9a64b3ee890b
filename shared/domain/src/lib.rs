//! The normalized directory model shared by every part of bamboohr-sync.
//!
//! This crate is pure: no I/O, no AWS, no Lambda. Values enter it through
//! `parse`/`TryFrom` constructors so that code holding a [`DirectoryId`] or an
//! [`EmployeeId`] never has to re-check it.

pub mod directory;
pub mod error;
pub mod event;
pub mod fingerprint;
pub mod group;
pub mod ids;
pub mod policy;
pub mod run;
pub mod target;
pub mod user;

pub use directory::{
    AuthKind, Directory, DirectoryCursors, DirectoryState, GroupSource, Hold, MissingUserPolicy,
    RegisteredWebhook, RemovalBucket, Safeguard, Schedule, DEFAULT_ONBOARDING_WINDOW_DAYS,
    DEFAULT_SAFEGUARD_WINDOW_MINUTES, MAX_SAFEGUARD_WINDOW_MINUTES,
};
pub use error::DomainError;
pub use event::{ChangeEvent, EventType, EVENT_SCHEMA_VERSION};
pub use fingerprint::Fingerprint;
pub use group::Group;
pub use ids::{DirectoryId, EmployeeId, EventId, GroupId, TargetId, UserId};
pub use policy::TimeZone;
pub use run::{RunCounts, RunId, RunStatus, SkippedRecord, SyncMode, SyncRequest, SyncRun};
pub use target::{
    EventFormat, FieldProjection, GateExit, ScimConfig, ScimDeprovision, ScimMatchKey,
    ScimNameSource, ScimUserName, Target, TargetFilter, TargetKind, PROJECTION_IDENTITY,
    SCIM_SEED_OWNED_ATTRIBUTES,
};
pub use user::{Address, DirectoryUser, Email, EmailKind, Phone, PhoneKind, UserState};
