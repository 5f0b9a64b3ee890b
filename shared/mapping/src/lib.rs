//! Maps BambooHR's three field vocabularies to the one [`domain::DirectoryUser`], and a
//! `DirectoryUser` to what targets take (SCIM 2.0 users, Litmos-style upsert bodies).
//!
//! The crate is pure: no I/O, no AWS, no Lambda. The flow is
//! [`record_from_fields`] (JSON from the employee endpoints, datasets or a field-based
//! webhook -> a parsed, possibly partial [`EmployeeRecord`]), then [`apply()`] (record on
//! top of the stored user -> the new user, state and fingerprint recomputed), then
//! [`to_scim_user`] / [`to_upsert_body`] per target. Errors and `Debug` output name
//! fields, never their values.

#![warn(missing_docs)]

pub mod apply;
pub mod country;
pub mod error;
pub mod field;
pub mod groups;
pub mod read;
pub mod record;
pub mod scim;
pub mod state;
pub mod upsert;
pub mod workos;

pub use apply::{apply, ApplyContext};
pub use country::CountryCodes;
pub use error::MappingError;
pub use field::{dataset_fields, employee_endpoint_fields, Field, FieldValue};
pub use groups::{user_groups, GroupRef};
pub use read::user_field;
pub use record::{
    is_truthy, parse_date, parse_timestamp, record_from_fields, EmployeeRecord, MappingConfig,
};
pub use record::{RawAllowlist, RAW_TOTAL_MAX_BYTES, RAW_VALUE_MAX_BYTES};
pub use scim::{
    phone_value, to_scim_user, to_scim_user_with_manager, ScimOptions, UsernameSource,
    SCIM_ENTERPRISE_SCHEMA, SCIM_USER_SCHEMA,
};
pub use state::{derive_state, next_transition, refresh_state};
pub use upsert::{to_upsert_body, was_terminated, UPSERT_FIELDS};
