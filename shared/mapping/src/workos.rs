//! WorkOS Directory Sync's event format, for app-webhook targets that ask for it: an
//! app written against WorkOS's `dsync.*` webhooks consumes these unchanged.
//!
//! The shapes follow WorkOS's official SDK (the `workos` crate's `DsyncUserCreated`,
//! `DirectoryUser`, `DirectoryGroup`, ... types; the crate's tests deserialize every
//! event rendered here into them). Events map as:
//!
//! | ours | WorkOS |
//! |---|---|
//! | `directory.connected` | `dsync.activated` |
//! | `directory.revoked` | `dsync.deleted` |
//! | `user.created` / `user.updated` / `user.deleted` | `dsync.user.created` / `.updated` / `.deleted` |
//! | `group.created` / `group.updated` / `group.deleted` | `dsync.group.created` / `.updated` / `.deleted` |
//! | `group.user_added` / `group.user_removed` | `dsync.group.user_added` / `.user_removed` |
//!
//! `directory.sync_completed`, `sync_failed`, `stale`, `held` and `target_disabled`
//! have no WorkOS counterpart and are not sent to a WorkOS-format target.
//!
//! Values: `organization_id` is the directory id (this sync has no organizations);
//! `idp_id` is the BambooHR employee id (users) or `<source>:<value>` (groups); a
//! user's `state` is `active` when active and `inactive` otherwise (pending future
//! hires, leavers, deleted users); `custom_attributes` carries WorkOS's predefined
//! attributes this sync has (`department_name`, `division_name`, `job_title`,
//! `employee_number`, `employment_start_date`, `manager_id` = the manager's
//! `idp_id`, `display_name`, `addresses`, `emails`) and the directory's own custom
//! attributes under their names; `raw_attributes` is the user's raw attributes as the
//! directory's allowlist kept them. `previous_attributes` on `dsync.user.updated`
//! holds, in WorkOS's names, the previous value of each attribute the change altered
//! (for `custom_attributes` and `raw_attributes`, only the keys that changed).

use serde_json::{json, Map, Value};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use domain::{
    Address, ChangeEvent, Directory, DirectoryUser, EmailKind, EventType, Group, UserState,
};

/// WorkOS's timestamp form: UTC with milliseconds (`2021-06-25T19:07:33.155Z`).
const TIMESTAMP: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// An instant as WorkOS writes it.
pub fn timestamp(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(TIMESTAMP)
        .unwrap_or_default()
}

/// The WorkOS event name of one of ours, or none when WorkOS has no counterpart.
pub fn event_name(event_type: EventType) -> Option<&'static str> {
    Some(match event_type {
        EventType::DirectoryConnected => "dsync.activated",
        EventType::DirectoryRevoked => "dsync.deleted",
        EventType::UserCreated => "dsync.user.created",
        EventType::UserUpdated => "dsync.user.updated",
        EventType::UserDeleted => "dsync.user.deleted",
        EventType::GroupCreated => "dsync.group.created",
        EventType::GroupUpdated => "dsync.group.updated",
        EventType::GroupDeleted => "dsync.group.deleted",
        EventType::GroupUserAdded => "dsync.group.user_added",
        EventType::GroupUserRemoved => "dsync.group.user_removed",
        EventType::DirectorySyncCompleted
        | EventType::DirectorySyncFailed
        | EventType::DirectoryStale
        | EventType::DirectoryHeld
        | EventType::DirectoryTargetDisabled => return None,
    })
}

/// The event envelope (`object: "event"`), with our stable event id.
pub fn envelope(event: &ChangeEvent, name: &str, data: Value) -> Value {
    json!({
        "object": "event",
        "id": event.id.as_str(),
        "event": name,
        "data": data,
        "created_at": timestamp(event.occurred_at),
    })
}

fn opt(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::String(s.clone()))
}

fn address(kind: &str, a: &Address, primary: bool) -> Value {
    let street: Vec<&str> = [&a.line1, &a.line2]
        .into_iter()
        .filter_map(|l| l.as_deref())
        .collect();
    let raw: Vec<&str> = [
        &a.line1,
        &a.line2,
        &a.city,
        &a.region,
        &a.postal_code,
        &a.country,
    ]
    .into_iter()
    .filter_map(|l| l.as_deref())
    .collect();
    json!({
        "type": kind,
        "street_address": (!street.is_empty()).then(|| street.join(", ")),
        "locality": a.city,
        "region": a.region,
        "postal_code": a.postal_code,
        "country": a.country,
        "raw_address": raw.join(", "),
        "primary": primary,
    })
}

fn emails(user: &DirectoryUser) -> Value {
    Value::Array(
        user.emails
            .iter()
            .map(|e| {
                json!({
                    "primary": e.primary,
                    "type": match e.kind { EmailKind::Work => "work", EmailKind::Home => "home" },
                    "value": e.value,
                })
            })
            .collect(),
    )
}

/// The user's WorkOS `custom_attributes`: predefined attributes this sync has, then
/// the directory's own custom attributes.
fn custom_attributes(user: &DirectoryUser) -> Map<String, Value> {
    let mut out = Map::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            out.insert(k.to_string(), v);
        }
    };
    put("department_name", opt(&user.department));
    put("division_name", opt(&user.division));
    put("job_title", opt(&user.job_title));
    put("employee_number", opt(&user.employee_number));
    put("display_name", opt(&user.display_name));
    put(
        "manager_id",
        user.manager_employee_id
            .as_ref()
            .map_or(Value::Null, |m| Value::String(m.to_string())),
    );
    put(
        "employment_start_date",
        user.hire_date.map_or(Value::Null, |d| {
            Value::String(timestamp(d.midnight().assume_utc()))
        }),
    );
    let mut addresses = Vec::new();
    if let Some(a) = &user.work_address {
        addresses.push(address("work", a, true));
    }
    if let Some(a) = &user.home_address {
        addresses.push(address("home", a, user.work_address.is_none()));
    }
    if !addresses.is_empty() {
        put("addresses", Value::Array(addresses));
    }
    if !user.emails.is_empty() {
        put("emails", emails(user));
    }
    for (k, v) in &user.custom_attributes {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// A [`DirectoryUser`] as WorkOS's `directory_user` object. `at` is the change's
/// instant (`updated_at`; also `created_at` for users stored before their creation
/// time was recorded). A value a target's projection removed is left out.
pub fn directory_user(user: &DirectoryUser, at: OffsetDateTime) -> Value {
    let state = match user.state {
        UserState::Active => "active",
        UserState::Pending | UserState::Inactive | UserState::Deleted => "inactive",
    };
    let mut v = json!({
        "object": "directory_user",
        "id": user.id.as_str(),
        "directory_id": user.directory_id.as_str(),
        "organization_id": user.directory_id.as_str(),
        "idp_id": user.employee_id.as_str(),
        "email": user.primary_email(),
        "first_name": user.first_name,
        "last_name": user.last_name,
        "name": user.display_name,
        "emails": emails(user),
        "job_title": user.job_title,
        "username": user.username,
        "state": state,
        "raw_attributes": user.raw_attributes,
        "custom_attributes": custom_attributes(user),
        "created_at": timestamp(user.created_at.unwrap_or(at)),
        "updated_at": timestamp(at),
    });
    if let Some(obj) = v.as_object_mut() {
        obj.retain(|_, value| !value.is_null());
    }
    v
}

/// A [`Group`] as WorkOS's `directory_group` object.
pub fn directory_group(group: &Group, at: OffsetDateTime) -> Value {
    json!({
        "object": "directory_group",
        "id": group.id.as_str(),
        "idp_id": format!("{}:{}", group.source, group.name),
        "directory_id": group.directory_id.as_str(),
        "organization_id": group.directory_id.as_str(),
        "name": group.name,
        "raw_attributes": { "source": group.source, "name": group.name },
        "created_at": timestamp(at),
        "updated_at": timestamp(at),
    })
}

/// The directory as WorkOS's `directory` object in `dsync.activated` (`deleted`
/// false, state `active`) or `dsync.deleted` (state `deleting`).
pub fn directory(directory: &Directory, at: OffsetDateTime, deleted: bool) -> Value {
    let created = directory.connected_at.unwrap_or(at);
    let mut v = json!({
        "object": "directory",
        "id": directory.id.as_str(),
        "organization_id": directory.id.as_str(),
        "type": "bamboohr",
        "state": if deleted { "deleting" } else { "active" },
        "name": directory.subdomain,
        "created_at": timestamp(created),
        "updated_at": timestamp(at),
    });
    if !deleted {
        v["external_key"] = json!(directory.subdomain);
        v["domains"] = json!([]);
    }
    v
}

/// WorkOS's `previous_attributes` for a user update: `previous` (the changed
/// attributes' previous values in our names, from [`ChangeEvent::previous_attributes`])
/// laid over the current user gives the user before; both are rendered and compared,
/// so the result names WorkOS attributes. An unreadable `previous` gives an empty map.
pub fn previous_attributes(
    user: &DirectoryUser,
    previous: &Map<String, Value>,
    at: OffsetDateTime,
) -> Map<String, Value> {
    let mut before = serde_json::to_value(user).expect("a DirectoryUser serializes");
    if let Some(obj) = before.as_object_mut() {
        for (k, v) in previous {
            obj.insert(k.clone(), v.clone());
        }
    }
    let Ok(before) = serde_json::from_value::<DirectoryUser>(before) else {
        return Map::new();
    };
    let was = directory_user(&before, at);
    let now = directory_user(user, at);
    let (Some(was), Some(now)) = (was.as_object(), now.as_object()) else {
        return Map::new();
    };
    let mut out = Map::new();
    let keys: std::collections::BTreeSet<&String> = was.keys().chain(now.keys()).collect();
    for k in keys {
        if matches!(k.as_str(), "updated_at" | "created_at") {
            continue;
        }
        let old = was.get(k).cloned().unwrap_or(Value::Null);
        let new = now.get(k).cloned().unwrap_or(Value::Null);
        if old == new {
            continue;
        }
        match (k.as_str(), &old, &new) {
            ("custom_attributes" | "raw_attributes", Value::Object(o), Value::Object(n)) => {
                let inner: Map<String, Value> = o
                    .keys()
                    .chain(n.keys())
                    .filter(|ik| o.get(*ik) != n.get(*ik))
                    .map(|ik| (ik.clone(), o.get(ik).cloned().unwrap_or(Value::Null)))
                    .collect();
                out.insert(k.clone(), Value::Object(inner));
            }
            _ => {
                out.insert(k.clone(), old);
            }
        }
    }
    out
}

/// `data` of a `dsync.group.user_added|user_removed` event.
pub fn membership(user: &DirectoryUser, group: &Group, at: OffsetDateTime) -> Value {
    json!({
        "directory_id": user.directory_id.as_str(),
        "user": directory_user(user, at),
        "group": directory_group(group, at),
    })
}

/// The stored objects a WorkOS event is rendered from.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The directory the event is about or belongs to.
    pub directory: &'a Directory,
    /// The user (user and membership events), already cut to the target's projection.
    pub user: Option<&'a DirectoryUser>,
    /// The group (membership events; group events carry theirs).
    pub group: Option<&'a Group>,
}

/// Why a WorkOS event could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRendered {
    /// WorkOS has no counterpart of this event: it is not sent.
    NoCounterpart(&'static str),
    /// An object the event needs is not stored (names it).
    Missing(&'static str),
}

/// The whole WorkOS event body for one of our events.
pub fn render(event: &ChangeEvent, subject: &Subject<'_>) -> Result<Value, NotRendered> {
    let name = event_name(event.event_type)
        .ok_or(NotRendered::NoCounterpart(event.event_type.as_str()))?;
    let at = event.occurred_at;
    let user = || subject.user.ok_or(NotRendered::Missing("user"));
    let data = match event.event_type {
        EventType::DirectoryConnected => directory(subject.directory, at, false),
        EventType::DirectoryRevoked => directory(subject.directory, at, true),
        EventType::UserCreated | EventType::UserDeleted => directory_user(user()?, at),
        EventType::UserUpdated => {
            let u = user()?;
            let mut v = directory_user(u, at);
            let previous = event
                .previous_attributes
                .as_ref()
                .map(|p| previous_attributes(u, p, at))
                .unwrap_or_default();
            v["previous_attributes"] = Value::Object(previous);
            v
        }
        EventType::GroupCreated | EventType::GroupUpdated | EventType::GroupDeleted => {
            let group: Group = serde_json::from_value(event.data.clone())
                .map_err(|_| NotRendered::Missing("group"))?;
            let mut v = directory_group(&group, at);
            if event.event_type == EventType::GroupUpdated {
                v["previous_attributes"] = json!({});
            }
            v
        }
        EventType::GroupUserAdded | EventType::GroupUserRemoved => {
            let group = subject.group.ok_or(NotRendered::Missing("group"))?;
            membership(user()?, group, at)
        }
        EventType::DirectorySyncCompleted
        | EventType::DirectorySyncFailed
        | EventType::DirectoryStale
        | EventType::DirectoryHeld
        | EventType::DirectoryTargetDisabled => {
            return Err(NotRendered::NoCounterpart(event.event_type.as_str()))
        }
    };
    Ok(envelope(event, name, data))
}
