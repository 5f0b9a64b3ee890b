//! Identifier newtypes. Each is parsed once at the edge and trusted afterwards.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::DomainError;

fn check_token(kind: &'static str, s: &str, max: usize, extra: &[char]) -> Result<(), DomainError> {
    if s.is_empty() {
        return Err(DomainError::invalid(kind, "must not be empty"));
    }
    if s.len() > max {
        return Err(DomainError::invalid(
            kind,
            format!("longer than {max} characters"),
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || extra.contains(c)))
    {
        let shown = if c.is_ascii_graphic() || c == ' ' {
            format!("'{c}'")
        } else {
            format!("U+{:04X}", c as u32)
        };
        return Err(DomainError::invalid(kind, format!("contains {shown}")));
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal, [$($extra:literal),*]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses the identifier, rejecting empty, over-long or oddly-charactered input.
            pub fn parse(s: impl Into<String>) -> Result<Self, DomainError> {
                let s = s.into();
                check_token($kind, &s, $max, &[$($extra),*])?;
                Ok(Self(s))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A connected BambooHR company, as named by the operator (`acme`, `acme-eu`).
    DirectoryId, "directory id", 64, ['-', '_']
);
string_id!(
    /// BambooHR's employee id: immutable for the life of the employee record.
    EmployeeId, "employee id", 32, ['-', '_']
);
string_id!(
    /// A delivery target of one directory (`app`, `scim-okta`).
    TargetId, "target id", 64, ['-', '_']
);
string_id!(
    /// The stable id of a [`crate::DirectoryUser`].
    UserId, "user id", 96, ['_', '-']
);
string_id!(
    /// The stable id of a [`crate::Group`].
    GroupId, "group id", 96, ['_', '-']
);
string_id!(
    /// The stable id of a [`crate::ChangeEvent`]: the same change always gets the same id,
    /// so receivers can discard duplicates.
    EventId, "event id", 96, ['_', '-']
);

fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(&h.finalize()[..12])
}

impl UserId {
    /// The user id is derived, not allocated, so the webhook and the poller agree on it
    /// without a lookup, and it never changes for an employee.
    pub fn derive(directory: &DirectoryId, employee: &EmployeeId) -> Self {
        Self(format!(
            "usr_{}",
            short_hash(&[directory.as_str(), employee.as_str()])
        ))
    }
}

impl GroupId {
    /// A group is identified by where it comes from (`department`) and its value.
    pub fn derive(directory: &DirectoryId, source: &str, value: &str) -> Self {
        Self(format!(
            "grp_{}",
            short_hash(&[directory.as_str(), source, &value.to_lowercase()])
        ))
    }
}

impl EventId {
    /// Derived from what the event says, so a change re-published by the outbox or a
    /// retried run keeps its id.
    pub fn derive(
        directory: &DirectoryId,
        event_type: &str,
        object_id: &str,
        version: u64,
    ) -> Self {
        Self(format!(
            "evt_{}",
            short_hash(&[
                directory.as_str(),
                event_type,
                object_id,
                &version.to_string()
            ])
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_ids_reject_empty_and_path_characters() {
        assert!(DirectoryId::parse("").is_err());
        assert!(DirectoryId::parse("a/b").is_err());
        assert!(DirectoryId::parse("acme-eu_1").is_ok());
        assert!(DirectoryId::parse("x".repeat(65)).is_err());
    }

    #[test]
    fn derived_user_ids_are_stable_and_directory_scoped() {
        let a = DirectoryId::parse("a").unwrap();
        let b = DirectoryId::parse("b").unwrap();
        let e = EmployeeId::parse("42").unwrap();
        assert_eq!(UserId::derive(&a, &e), UserId::derive(&a, &e));
        assert_ne!(UserId::derive(&a, &e), UserId::derive(&b, &e));
    }

    #[test]
    fn ids_round_trip_through_json_and_refuse_bad_input() {
        let id = EmployeeId::parse("123").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"123\"");
        assert!(serde_json::from_str::<EmployeeId>("\"1 2\"").is_err());
    }
}
