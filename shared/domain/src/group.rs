//! Groups derived from a user field (department, division, location, any list field).

use serde::{Deserialize, Serialize};

use crate::fingerprint::Fingerprint;
use crate::ids::{DirectoryId, GroupId, UserId};

/// A group of one directory, derived from the value of a source field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Stable id derived from directory, source and value.
    pub id: GroupId,
    /// The directory the group belongs to.
    pub directory_id: DirectoryId,
    /// The field the group comes from, e.g. `department`.
    pub source: String,
    /// The group's name: the field value.
    pub name: String,
    /// Members, sorted.
    pub member_ids: Vec<UserId>,
    /// Monotonic version.
    pub version: u64,
    /// Fingerprint of name and members.
    pub fingerprint: Fingerprint,
}

impl Group {
    /// A new group with no members.
    pub fn new(directory_id: DirectoryId, source: &str, name: &str) -> Self {
        Self {
            id: GroupId::derive(&directory_id, source, name),
            directory_id,
            source: source.to_string(),
            name: name.to_string(),
            member_ids: Vec::new(),
            version: 0,
            fingerprint: Fingerprint::EMPTY,
        }
    }

    /// Fingerprint over the group's content (not its version).
    pub fn compute_fingerprint(&self) -> Fingerprint {
        Fingerprint::of_json(&serde_json::json!({
            "source": self.source,
            "name": self.name,
            "members": self.member_ids,
        }))
    }
}
