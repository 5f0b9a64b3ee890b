//! Golden tests of the WorkOS event format: every event a WorkOS-format target is
//! sent, rendered from values as BambooHR sends them, deserializes into the event type
//! of WorkOS's official SDK (the `workos` crate), with the values an app reads.

use std::collections::BTreeMap;

use ::workos::enums::{DirectoryUserState, DsyncActivatedDataType};
use ::workos::models::{
    DsyncActivated, DsyncDeleted, DsyncGroupCreated, DsyncGroupDeleted, DsyncGroupUpdated,
    DsyncGroupUserAdded, DsyncGroupUserRemoved, DsyncUserCreated, DsyncUserDeleted,
    DsyncUserUpdated, EventSchema,
};
use domain::{ChangeEvent, Directory, DirectoryId, DirectoryUser, EventType, Group};
use mapping::workos::{render, NotRendered, Subject};
use mapping::{apply, record_from_fields, ApplyContext, MappingConfig};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use time::macros::{date, datetime};
use time::OffsetDateTime;

const AT: OffsetDateTime = datetime!(2026-03-02 09:30:00.25 UTC);

fn dir_id() -> DirectoryId {
    DirectoryId::parse("acme").unwrap()
}

fn directory() -> Directory {
    let mut d = Directory::new(dir_id(), "acme", "acme").unwrap();
    d.connected_at = Some(datetime!(2026-01-05 08:00 UTC));
    d
}

/// An employee as a field-based webhook sends one (display names, "Yes" checkboxes,
/// ISO dates).
fn employee(fields: Value) -> DirectoryUser {
    let cfg = MappingConfig {
        custom_field_map: BTreeMap::from([("Litmos Access".into(), "litmosAccess".into())]),
        raw_allowlist: vec!["Shirt Size".into()],
        ..MappingConfig::default()
    };
    let record = record_from_fields("42", fields.as_object().unwrap(), &[], &cfg).unwrap();
    let ctx = ApplyContext {
        directory_id: dir_id(),
        today: date!(2026 - 03 - 02),
        pre_start_days: 7,
        source_timestamp: None,
        group_sources: vec!["department".into()],
    };
    let mut u = apply(None, &record, &ctx);
    u.version = 1;
    u.created_at = Some(datetime!(2026-01-05 08:00:01 UTC));
    u
}

fn ada() -> DirectoryUser {
    employee(json!({
        "First Name": "Ada", "Last Name": "Lovelace", "Preferred Name": "Countess",
        "Work Email": "ada@acme.test", "Home Email": "ada@home.test",
        "Job Title": "Engineer", "Department": "R&D", "Division": "Labs",
        "Employee #": "E-42", "Hire Date": "2024-03-01", "Status": "Active",
        "Supervisor EID": "7", "Location": "London",
        "Work Address Line 1": "1 Analytical Way", "Work City": "London",
        "Work Country": "United Kingdom", "Address Line 1": "12 Byron St",
        "City": "London", "Country": "United Kingdom",
        "Litmos Access": "Yes", "Shirt Size": "M",
        "SSN": "123-45-6789", "Pay Rate": "100000.00 USD",
    }))
}

fn group() -> Group {
    let mut g = Group::new(dir_id(), "department", "R&D");
    g.version = 1;
    g.refresh_fingerprint();
    g
}

fn user_event(t: EventType, u: &DirectoryUser) -> ChangeEvent {
    ChangeEvent::for_user(t, u, AT)
}

fn body(event: &ChangeEvent, user: Option<&DirectoryUser>, group: Option<&Group>) -> String {
    let d = directory();
    let v = render(
        event,
        &Subject {
            directory: &d,
            user,
            group,
        },
    )
    .unwrap();
    serde_json::to_string(&v).unwrap()
}

/// Parses `body` into the SDK's generic event and its typed event, checking the
/// envelope.
fn parse<T: DeserializeOwned>(body: &str, name: &str) -> T {
    let generic: EventSchema = serde_json::from_str(body).expect("the SDK's EventSchema");
    assert_eq!(generic.object, "event");
    assert_eq!(generic.event, name);
    assert_eq!(generic.created_at, "2026-03-02T09:30:00.250Z");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{name}: {e}\n{body}"))
}

#[test]
fn dsync_activated_parses_as_the_sdks_event_with_the_directory() {
    let d = directory();
    let e = ChangeEvent::new(
        EventType::DirectoryConnected,
        dir_id(),
        "acme",
        1,
        AT,
        json!({}),
    );
    let ev: DsyncActivated = parse(&body(&e, None, None), "dsync.activated");
    assert_eq!(ev.data.object, "directory");
    assert_eq!(ev.data.id, d.id.as_str());
    assert_eq!(ev.data.type_, DsyncActivatedDataType::Bamboohr);
    assert_eq!(ev.data.state.as_str(), "active");
    assert_eq!(ev.data.created_at, "2026-01-05T08:00:00.000Z");
    assert_eq!(ev.id, e.id.as_str());
}

#[test]
fn dsync_deleted_parses_as_the_sdks_event_with_the_directory_deleting() {
    let e = ChangeEvent::new(
        EventType::DirectoryRevoked,
        dir_id(),
        "acme",
        2,
        AT,
        json!({}),
    );
    let ev: DsyncDeleted = parse(&body(&e, None, None), "dsync.deleted");
    assert_eq!(ev.data.state.as_str(), "deleting");
    assert_eq!(ev.data.type_.as_str(), "bamboohr");
    assert_eq!(ev.data.name, "acme");
}

#[test]
#[allow(deprecated)]
fn dsync_user_created_parses_as_the_sdks_directory_user() {
    let u = ada();
    let ev: DsyncUserCreated = parse(
        &body(&user_event(EventType::UserCreated, &u), Some(&u), None),
        "dsync.user.created",
    );
    let d = ev.data;
    assert_eq!(d.object, "directory_user");
    assert_eq!(d.id, u.id.as_str());
    assert_eq!(d.idp_id, "42");
    assert_eq!(d.directory_id, "acme");
    assert_eq!(d.email.as_deref(), Some("ada@acme.test"));
    assert_eq!(d.first_name.as_deref(), Some("Ada"));
    assert_eq!(d.last_name.as_deref(), Some("Lovelace"));
    assert_eq!(d.job_title.as_deref(), Some("Engineer"));
    assert_eq!(d.state, DirectoryUserState::Active);
    let emails = d.emails.unwrap();
    assert_eq!(emails.len(), 2);
    assert!(emails
        .iter()
        .any(|e| e.primary == Some(true) && e.type_.as_deref() == Some("work")));
    assert_eq!(d.custom_attributes["department_name"], "R&D");
    assert_eq!(d.custom_attributes["division_name"], "Labs");
    assert_eq!(d.custom_attributes["employee_number"], "E-42");
    assert_eq!(d.custom_attributes["manager_id"], "7");
    assert_eq!(
        d.custom_attributes["employment_start_date"],
        "2024-03-01T00:00:00.000Z"
    );
    assert_eq!(d.custom_attributes["litmosAccess"], "Yes");
    assert_eq!(d.custom_attributes["addresses"][0]["type"], "work");
    assert_eq!(d.created_at, "2026-01-05T08:00:01.000Z");
    assert_eq!(d.updated_at, "2026-03-02T09:30:00.250Z");
    // Raw attributes: the allowlisted ones, never the SSN or pay rate.
    assert_eq!(d.raw_attributes["Shirt Size"], "M");
    assert!(!d.raw_attributes.contains_key("SSN"));
    assert!(!d.raw_attributes.contains_key("Pay Rate"));
}

#[test]
fn dsync_user_updated_parses_with_previous_attributes_in_workos_names() {
    let before = ada();
    let mut after = before.clone();
    after.job_title = Some("Staff Engineer".into());
    after.department = Some("Platform".into());
    after.version = 2;
    after.refresh_fingerprint();
    let event = ChangeEvent::for_user_write(Some(&before), &after, AT);
    assert_eq!(event.event_type, EventType::UserUpdated);
    let ev: DsyncUserUpdated = parse(&body(&event, Some(&after), None), "dsync.user.updated");
    let prev = ev.data.previous_attributes.expect("previous_attributes");
    assert_eq!(prev["job_title"], "Engineer");
    assert_eq!(
        prev["custom_attributes"],
        json!({"department_name": "R&D", "job_title": "Engineer"})
    );
    assert!(!prev.contains_key("first_name"));
    assert_eq!(ev.data.state.as_str(), "active");
}

#[test]
fn a_leaver_is_an_inactive_directory_user_and_a_deleted_one_is_dsync_user_deleted() {
    let mut u = ada();
    u.state = domain::UserState::Inactive;
    u.termination_date = Some(date!(2026 - 03 - 01));
    let ev: DsyncUserUpdated = parse(
        &body(&user_event(EventType::UserUpdated, &u), Some(&u), None),
        "dsync.user.updated",
    );
    assert_eq!(ev.data.state.as_str(), "inactive");
    u.state = domain::UserState::Deleted;
    let ev: DsyncUserDeleted = parse(
        &body(&user_event(EventType::UserDeleted, &u), Some(&u), None),
        "dsync.user.deleted",
    );
    assert_eq!(ev.data.state, DirectoryUserState::Inactive);
    assert_eq!(ev.data.idp_id, "42");
}

fn group_event(t: EventType, g: &Group) -> ChangeEvent {
    ChangeEvent::new(
        t,
        dir_id(),
        g.id.as_str(),
        g.version,
        AT,
        serde_json::to_value(g).unwrap(),
    )
}

#[test]
fn dsync_group_created_updated_and_deleted_parse_as_the_sdks_directory_group() {
    let g = group();
    let ev: DsyncGroupCreated = parse(
        &body(&group_event(EventType::GroupCreated, &g), None, None),
        "dsync.group.created",
    );
    assert_eq!(ev.data.object, "directory_group");
    assert_eq!(ev.data.name, "R&D");
    assert_eq!(ev.data.idp_id, "department:R&D");
    assert_eq!(ev.data.directory_id, "acme");
    let ev: DsyncGroupUpdated = parse(
        &body(&group_event(EventType::GroupUpdated, &g), None, None),
        "dsync.group.updated",
    );
    assert_eq!(ev.data.id, g.id.as_str());
    assert!(ev.data.previous_attributes.is_some());
    let mut gone = g.clone();
    gone.deleted = true;
    let ev: DsyncGroupDeleted = parse(
        &body(&group_event(EventType::GroupDeleted, &gone), None, None),
        "dsync.group.deleted",
    );
    assert_eq!(ev.data.name, "R&D");
}

fn membership_event(t: EventType, u: &DirectoryUser, g: &Group) -> ChangeEvent {
    ChangeEvent::new(
        t,
        dir_id(),
        g.membership_object_id(&u.id),
        u.version,
        AT,
        json!({"groupId": g.id, "userId": u.id, "employeeId": u.employee_id}),
    )
}

#[test]
fn dsync_group_user_added_and_removed_parse_with_the_user_and_the_group() {
    let u = ada();
    let g = group();
    let ev: DsyncGroupUserAdded = parse(
        &body(
            &membership_event(EventType::GroupUserAdded, &u, &g),
            Some(&u),
            Some(&g),
        ),
        "dsync.group.user_added",
    );
    assert_eq!(ev.data.directory_id, "acme");
    assert_eq!(ev.data.user.id, u.id.as_str());
    assert_eq!(ev.data.group.id, g.id.as_str());
    let ev: DsyncGroupUserRemoved = parse(
        &body(
            &membership_event(EventType::GroupUserRemoved, &u, &g),
            Some(&u),
            Some(&g),
        ),
        "dsync.group.user_removed",
    );
    assert_eq!(ev.data.user.idp_id, "42");
    assert_eq!(ev.data.group.name, "R&D");
}

#[test]
fn events_without_a_workos_counterpart_are_not_rendered() {
    let d = directory();
    for t in [
        EventType::DirectorySyncCompleted,
        EventType::DirectorySyncFailed,
        EventType::DirectoryStale,
        EventType::DirectoryHeld,
        EventType::DirectoryTargetDisabled,
    ] {
        let e = ChangeEvent::new(t, dir_id(), "acme", 1, AT, json!({}));
        let r = render(
            &e,
            &Subject {
                directory: &d,
                user: None,
                group: None,
            },
        );
        assert_eq!(r, Err(NotRendered::NoCounterpart(t.as_str())));
    }
}

#[test]
#[allow(deprecated)]
fn a_projected_user_still_parses_and_carries_only_the_projected_attributes() {
    let u = ada();
    let p = domain::FieldProjection::parse(&["emails".into(), "firstName".into()]).unwrap();
    let cut = p.clear_user(&u);
    let ev: DsyncUserCreated = parse(
        &body(&user_event(EventType::UserCreated, &cut), Some(&cut), None),
        "dsync.user.created",
    );
    assert_eq!(ev.data.first_name.as_deref(), Some("Ada"));
    assert_eq!(ev.data.email.as_deref(), Some("ada@acme.test"));
    assert_eq!(ev.data.last_name, None);
    assert_eq!(ev.data.job_title, None);
    assert!(ev.data.raw_attributes.is_empty());
    assert!(!ev.data.custom_attributes.contains_key("department_name"));
}
