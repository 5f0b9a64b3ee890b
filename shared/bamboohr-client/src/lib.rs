//! A client for BambooHR's REST API, as the sync engine uses it: the employee dataset
//! (datasets v2) for full reads, the employee list for reads by id, the changed-employees
//! feed for incremental reads, single employees, and training types and records (the
//! onboarding evidence).
//!
//! Every call is bounded: a per-request timeout, a number of attempts and a total time
//! budget; at most `max_concurrency` requests of one client are in flight. Throttling
//! (429, and 503 with Retry-After) is honoured exactly; other transient failures back off
//! exponentially with full jitter; failures a retry cannot fix are returned at once as a
//! typed [`BambooError`].

#![warn(missing_docs)]

mod account;
mod auth;
mod client;
mod error;
mod model;
mod options;
mod refresh;
mod training;

pub use account::{CreatedWebhook, FieldInfo, ListField, ListOption, NewWebhook, WebhookInfo};
pub use async_trait::async_trait;
pub use auth::{Auth, OAuth, RefreshedTokens, TokenSink};
pub use client::{BambooClient, ClientStats, IDS_PER_REQUEST, MAX_DATASET_PAGE_SIZE};
pub use error::BambooError;
pub use model::{ChangeAction, ChangedEmployee, DatasetPage, EmployeesPage, RawEmployee};
pub use options::ClientOptions;
pub use secrecy::SecretString;
pub use training::{TrainingRecord, TrainingType};
