//! Groups derived from the directory's group sources: created the first time a user is
//! written into them, counted and deleted (no members left) by a complete full
//! reconciliation, and membership events when a user joins or leaves one.

use std::collections::{BTreeMap, HashMap};

use domain::{ChangeEvent, Directory, DirectoryUser, EventType, Group, GroupId};
use mapping::GroupRef;
use ports::{GroupWrite, StoreError};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::deps::Engine;
use crate::error::EngineError;

/// Conflicting group writes retried before giving up.
const MAX_ATTEMPTS: u32 = 4;

/// The groups of one directory, read from the store the first time they are needed
/// and kept for the rest of a run (or webhook delivery).
pub struct GroupBook {
    sources: Vec<String>,
    known: Mutex<Option<HashMap<GroupId, Group>>>,
}

/// What the group step of a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GroupChanges {
    /// Groups created (or revived).
    pub created: u64,
    /// Groups deleted for having no members.
    pub deleted: u64,
    /// Group items written (creations, deletions, member counts).
    pub writes: u64,
}

impl GroupBook {
    /// A book for the directory's group sources.
    pub fn new(directory: &Directory) -> Self {
        Self {
            sources: directory
                .group_sources
                .iter()
                .map(|s| s.field.clone())
                .collect(),
            known: Mutex::new(None),
        }
    }

    /// The configured source fields.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    async fn load<'a>(
        &self,
        engine: &Engine,
        directory: &Directory,
        known: &'a mut Option<HashMap<GroupId, Group>>,
    ) -> Result<&'a mut HashMap<GroupId, Group>, StoreError> {
        if known.is_none() {
            let groups = engine.store.list_groups(&directory.id).await?;
            *known = Some(groups.into_iter().map(|g| (g.id.clone(), g)).collect());
        }
        Ok(known.as_mut().expect("loaded above"))
    }

    /// Makes sure every group in `refs` exists and is not deleted, writing the missing
    /// ones with a `group.created` event. Returns how many were created.
    pub async fn ensure(
        &self,
        engine: &Engine,
        directory: &Directory,
        refs: &[GroupRef],
        now: OffsetDateTime,
    ) -> Result<u64, EngineError> {
        if refs.is_empty() {
            return Ok(0);
        }
        let mut guard = self.known.lock().await;
        let mut created = 0;
        for r in refs {
            let mut attempts = 0;
            loop {
                attempts += 1;
                let known = self.load(engine, directory, &mut guard).await?;
                let existing = known.get(&r.id).cloned();
                if existing.as_ref().is_some_and(|g| !g.deleted) {
                    break;
                }
                let mut group = existing
                    .clone()
                    .unwrap_or_else(|| Group::new(directory.id.clone(), &r.source, &r.name));
                group.deleted = false;
                group.version = existing.as_ref().map_or(1, |g| g.version + 1);
                group.refresh_fingerprint();
                let event = group_event(EventType::GroupCreated, &group, now);
                let write = GroupWrite {
                    group: group.clone(),
                    expected_version: existing.as_ref().map(|g| g.version),
                    events: vec![event],
                };
                match engine.store.write_group(&write).await {
                    Ok(()) => {
                        crate::reconcile::outbox::note_written(&write.events);
                        known.insert(group.id.clone(), group);
                        created += 1;
                        break;
                    }
                    Err(StoreError::Conflict { what, .. }) => {
                        // Someone else wrote it (a webhook beside the poller): re-read.
                        *guard = None;
                        if attempts >= MAX_ATTEMPTS {
                            return Err(EngineError::TooManyConflicts { what, attempts });
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(created)
    }

    /// After a complete full listing: records each group's member count and deletes
    /// groups nobody belongs to any more (`group.deleted`).
    pub async fn reconcile(
        &self,
        engine: &Engine,
        directory: &Directory,
        members: &BTreeMap<GroupId, u64>,
        now: OffsetDateTime,
    ) -> Result<GroupChanges, EngineError> {
        let mut changes = GroupChanges::default();
        let mut guard = self.known.lock().await;
        let known = self.load(engine, directory, &mut guard).await?;
        let groups: Vec<Group> = known.values().cloned().collect();
        for stored in groups {
            let count = members.get(&stored.id).copied().unwrap_or(0);
            let mut next = stored.clone();
            next.member_count = Some(count);
            let mut events = Vec::new();
            if count == 0 && !stored.deleted {
                next.deleted = true;
                next.refresh_fingerprint();
            }
            if next == stored {
                continue;
            }
            next.version = stored.version + 1;
            if next.deleted && !stored.deleted {
                events.push(group_event(EventType::GroupDeleted, &next, now));
            }
            match engine
                .store
                .write_group(&GroupWrite {
                    group: next.clone(),
                    expected_version: Some(stored.version),
                    events,
                })
                .await
            {
                Ok(()) => {
                    changes.writes += 1;
                    if next.deleted && !stored.deleted {
                        changes.deleted += 1;
                    }
                    known.insert(next.id.clone(), next);
                }
                // A concurrent writer (a webhook creating the group again) wins; the
                // next full reconciliation counts again.
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(changes)
    }
}

/// A group event carrying the group as it is now.
pub fn group_event(event_type: EventType, group: &Group, at: OffsetDateTime) -> ChangeEvent {
    ChangeEvent::new(
        event_type,
        group.directory_id.clone(),
        group.id.as_str(),
        group.version,
        at,
        serde_json::to_value(group).expect("a Group serializes"),
    )
}

/// `group.user_added` / `group.user_removed` events for a user write from `before` to
/// `after`. Each membership is its own object (group and user), versioned by the
/// user's version, so per-membership order holds at every target.
pub fn membership_events(
    before: Option<&DirectoryUser>,
    after: &DirectoryUser,
    at: OffsetDateTime,
) -> Vec<ChangeEvent> {
    let old: &[GroupId] = before.map_or(&[], |b| b.group_ids.as_slice());
    let mut events = Vec::new();
    let mut push = |event_type: EventType, group: &GroupId| {
        events.push(ChangeEvent::new(
            event_type,
            after.directory_id.clone(),
            format!("{group}.{}", after.id),
            after.version,
            at,
            json!({
                "groupId": group,
                "userId": after.id,
                "employeeId": after.employee_id,
            }),
        ));
    };
    for g in &after.group_ids {
        if !old.contains(g) {
            push(EventType::GroupUserAdded, g);
        }
    }
    for g in old {
        if !after.group_ids.contains(g) {
            push(EventType::GroupUserRemoved, g);
        }
    }
    events
}
