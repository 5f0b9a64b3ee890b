//! Groups derived from a user field (department, division, location, any list field).

use serde::{Deserialize, Serialize};

use crate::fingerprint::Fingerprint;
use crate::ids::{DirectoryId, GroupId, UserId};

/// A group of one directory, derived from the value of a source field.
///
/// Membership lives on the users (`DirectoryUser::group_ids`), so a group item stays
/// small however many members it has; `member_count` is what the last complete full
/// reconciliation counted.
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
    /// Members counted by the last complete full reconciliation.
    #[serde(default)]
    pub member_count: Option<u64>,
    /// Whether the group has no members left (kept so its id is never reused silently).
    #[serde(default)]
    pub deleted: bool,
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
            member_count: None,
            deleted: false,
            version: 0,
            fingerprint: Fingerprint::EMPTY,
        }
    }

    /// Fingerprint over the group's content (not its version, not its member count,
    /// which moves with every hire and is not a change of the group itself).
    pub fn compute_fingerprint(&self) -> Fingerprint {
        Fingerprint::of_json(&serde_json::json!({
            "source": self.source,
            "name": self.name,
            "deleted": self.deleted,
        }))
    }

    /// Recomputes `fingerprint` from the content.
    pub fn refresh_fingerprint(&mut self) {
        self.fingerprint = self.compute_fingerprint();
    }

    /// The outbound object id of a membership (`group.user_added|user_removed`): one
    /// per group and user, so each membership has its own ordered stream and ledger.
    pub fn membership_object_id(&self, user: &UserId) -> String {
        format!("{}.{}", self.id, user)
    }
}
