//! Outbound change events: a versioned schema carrying the full object (state transfer).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{DirectoryId, EventId};

/// The version of the outbound event schema; bumped on any incompatible change.
pub const EVENT_SCHEMA_VERSION: u32 = 1;

/// Every kind of outbound event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// A user appeared.
    #[serde(rename = "user.created")]
    UserCreated,
    /// A user's mapped fields or state changed.
    #[serde(rename = "user.updated")]
    UserUpdated,
    /// A user left BambooHR.
    #[serde(rename = "user.deleted")]
    UserDeleted,
    /// A group appeared.
    #[serde(rename = "group.created")]
    GroupCreated,
    /// A group changed.
    #[serde(rename = "group.updated")]
    GroupUpdated,
    /// A group has no members left.
    #[serde(rename = "group.deleted")]
    GroupDeleted,
    /// A user joined a group.
    #[serde(rename = "group.user_added")]
    GroupUserAdded,
    /// A user left a group.
    #[serde(rename = "group.user_removed")]
    GroupUserRemoved,
    /// A sync run finished.
    #[serde(rename = "directory.sync_completed")]
    DirectorySyncCompleted,
    /// A sync run failed.
    #[serde(rename = "directory.sync_failed")]
    DirectorySyncFailed,
    /// The directory has not synced for longer than its threshold.
    #[serde(rename = "directory.stale")]
    DirectoryStale,
    /// A run was held by the safeguard.
    #[serde(rename = "directory.held")]
    DirectoryHeld,
    /// The directory was connected.
    #[serde(rename = "directory.connected")]
    DirectoryConnected,
    /// The directory was revoked.
    #[serde(rename = "directory.revoked")]
    DirectoryRevoked,
    /// A target answered 410 Gone and was disabled; `data` names the target.
    #[serde(rename = "directory.target_disabled")]
    DirectoryTargetDisabled,
}

impl EventType {
    /// The dotted name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserCreated => "user.created",
            Self::UserUpdated => "user.updated",
            Self::UserDeleted => "user.deleted",
            Self::GroupCreated => "group.created",
            Self::GroupUpdated => "group.updated",
            Self::GroupDeleted => "group.deleted",
            Self::GroupUserAdded => "group.user_added",
            Self::GroupUserRemoved => "group.user_removed",
            Self::DirectorySyncCompleted => "directory.sync_completed",
            Self::DirectorySyncFailed => "directory.sync_failed",
            Self::DirectoryStale => "directory.stale",
            Self::DirectoryHeld => "directory.held",
            Self::DirectoryConnected => "directory.connected",
            Self::DirectoryRevoked => "directory.revoked",
            Self::DirectoryTargetDisabled => "directory.target_disabled",
        }
    }

    /// Whether the event is about a user (and so ordered per user).
    pub fn is_user_event(self) -> bool {
        matches!(
            self,
            Self::UserCreated | Self::UserUpdated | Self::UserDeleted
        )
    }
}

/// One outbound change. The `data` is the full object at `version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeEvent {
    /// Always [`EVENT_SCHEMA_VERSION`] when produced by this build.
    pub schema_version: u32,
    /// Stable id: the same change always has the same id.
    pub id: EventId,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The directory it happened in.
    pub directory_id: DirectoryId,
    /// The user, group or directory id the event is about.
    pub object_id: String,
    /// The object's version after the change.
    pub version: u64,
    /// When the change was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The full object.
    pub data: serde_json::Value,
    /// On `user.updated`: the previous value of every user attribute this change
    /// altered (serialized names). WorkOS-format targets send it as
    /// `previous_attributes`; this sync's own format leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ChangeEvent {
    /// Builds an event whose id is derived from directory, type, object and version.
    pub fn new(
        event_type: EventType,
        directory_id: DirectoryId,
        object_id: impl Into<String>,
        version: u64,
        occurred_at: OffsetDateTime,
        data: serde_json::Value,
    ) -> Self {
        let object_id = object_id.into();
        Self {
            schema_version: EVENT_SCHEMA_VERSION,
            id: EventId::derive(&directory_id, event_type.as_str(), &object_id, version),
            event_type,
            directory_id,
            object_id,
            version,
            occurred_at,
            data,
            previous_attributes: None,
        }
    }

    /// The FIFO message group: one directory's object is processed in order.
    pub fn ordering_key(&self) -> String {
        format!("{}:{}", self.directory_id, self.object_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_change_gets_the_same_event_id() {
        let d = DirectoryId::parse("acme").unwrap();
        let t = OffsetDateTime::UNIX_EPOCH;
        let a = ChangeEvent::new(
            EventType::UserCreated,
            d.clone(),
            "usr_1",
            1,
            t,
            serde_json::json!({}),
        );
        let b = ChangeEvent::new(
            EventType::UserCreated,
            d.clone(),
            "usr_1",
            1,
            t,
            serde_json::json!({"x":1}),
        );
        let c = ChangeEvent::new(
            EventType::UserUpdated,
            d,
            "usr_1",
            2,
            t,
            serde_json::json!({}),
        );
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
    }

    #[test]
    fn events_serialize_with_dotted_types_and_schema_version() {
        let d = DirectoryId::parse("acme").unwrap();
        let e = ChangeEvent::new(
            EventType::GroupUserAdded,
            d,
            "grp_1",
            3,
            OffsetDateTime::UNIX_EPOCH,
            serde_json::json!({}),
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "group.user_added");
        assert_eq!(v["schemaVersion"], 1);
        assert_eq!(v["occurredAt"], "1970-01-01T00:00:00Z");
        let back: ChangeEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }
}
