//! The end-state checks every fault scenario ends with, read from the store and the
//! targets, each named for the guarantee it checks (docs/ARCHITECTURE.md, DESIGN.md
//! "Guarantees" 1 and 2).

use std::collections::{BTreeMap, BTreeSet};

use domain::{DirectoryUser, EmployeeId, TargetId, UserState};
use ports::DeliveryStatus;
use time::OffsetDateTime;

use super::harness::{World, APP, SCIM};

/// Every check below, in order.
pub async fn assert_all(world: &World) {
    assert_the_outbox_is_empty(world).await;
    assert_every_event_was_handled_or_dead_lettered(world);
    assert_every_user_reached_every_target_at_its_newest_version(world).await;
    assert_versions_never_go_backwards_at_the_receiver(world);
    assert_no_user_is_created_twice_at_the_receiver(world);
    assert_no_user_is_duplicated_at_the_scim_target(world).await;
    assert_scim_accounts_hold_each_users_newest_state(world).await;
}

async fn users(world: &World) -> Vec<DirectoryUser> {
    world.engine.store.list_users(&world.dir).await.unwrap()
}

/// Nothing accepted is lost: after a completed sync the store holds what BambooHR
/// holds. Every live employee with a work email is an active user with BambooHR's
/// current job title, last name and work email; a deleted employee that was stored is
/// a deleted user; a terminated one is inactive.
pub async fn assert_the_store_matches_bamboohr(world: &World) {
    let today = OffsetDateTime::now_utc().date();
    for e in world.sim.employees() {
        let stored = world
            .engine
            .store
            .get_user(&world.dir, &EmployeeId::parse(&e.employee_id).unwrap())
            .await
            .unwrap();
        let id = &e.employee_id;
        if e.deleted {
            if let Some(u) = stored {
                assert_eq!(u.state, UserState::Deleted, "employee {id} was deleted");
            }
            continue;
        }
        if e.termination_date.is_some_and(|d| d <= today) {
            if let Some(u) = stored {
                assert_eq!(u.state, UserState::Inactive, "employee {id} was terminated");
            }
            continue;
        }
        let live = e.work_email.is_some() && e.hire_date.is_some_and(|h| h <= today);
        if !live {
            continue;
        }
        let u = stored.unwrap_or_else(|| panic!("employee {id} is missing from the store"));
        assert_eq!(u.state, UserState::Active, "employee {id} is active");
        assert_eq!(u.job_title, e.job_title, "employee {id}: newest job title");
        assert_eq!(
            u.last_name.as_deref(),
            Some(e.last_name.as_str()),
            "employee {id}"
        );
        assert_eq!(
            u.work_email(),
            e.work_email.as_deref(),
            "employee {id}: newest work email"
        );
    }
}

/// Nothing accepted is lost: every change a webhook was answered 2xx for is in the
/// store (employee id -> the job title its last accepted webhook carried).
pub async fn assert_every_accepted_webhook_change_is_stored(
    world: &World,
    accepted: &BTreeMap<String, Option<String>>,
) {
    for (id, title) in accepted {
        let u = world
            .engine
            .store
            .get_user(&world.dir, &EmployeeId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("accepted employee {id} is missing from the store"));
        assert_eq!(
            &u.job_title, title,
            "employee {id}: the last accepted job title"
        );
    }
}

/// Every change written was published: the outbox is empty.
pub async fn assert_the_outbox_is_empty(world: &World) {
    let pending = world
        .engine
        .store
        .pending_events(&world.dir, 100)
        .await
        .unwrap();
    assert!(
        pending.is_empty(),
        "{} events were never published: {:?}",
        pending.len(),
        pending.iter().map(|e| e.event_type).collect::<Vec<_>>()
    );
}

/// Every event that reached the change queue ended handled by the dispatcher (every
/// target delivered, skipped or handed to the retry path) or dead-lettered.
pub fn assert_every_event_was_handled_or_dead_lettered(world: &World) {
    let f = &world.fates;
    let lost: Vec<_> = f
        .seen
        .iter()
        .filter(|(id, _)| !f.handled.contains(*id) && !f.dead_lettered.contains(*id))
        .map(|(_, what)| what)
        .collect();
    assert!(
        lost.is_empty(),
        "events neither handled nor dead-lettered: {lost:?}"
    );
}

/// Every stored user ended at every target at its newest version: the delivery log
/// says delivered (with the ledger at that version) or skipped on purpose, and the
/// receiver's last delivery of the user is that version; unless the user's event was
/// dead-lettered.
pub async fn assert_every_user_reached_every_target_at_its_newest_version(world: &World) {
    let dead: BTreeSet<&str> = world
        .fates
        .dead_lettered
        .iter()
        .filter_map(|id| world.fates.seen.get(id))
        .map(|(_, object, _)| object.as_str())
        .collect();
    let deliveries = world.receiver.deliveries();
    for u in users(world).await {
        let object = u.id.to_string();
        if dead.contains(object.as_str()) {
            continue;
        }
        for target in [APP, SCIM] {
            let tid = TargetId::parse(target).unwrap();
            let ledger = world
                .engine
                .store
                .ledger_get(&world.dir, &tid, &object)
                .await
                .unwrap();
            let record = world
                .engine
                .store
                .get_delivery(&world.dir, &tid, &object)
                .await
                .unwrap()
                .unwrap_or_else(|| {
                    let events: Vec<_> = world
                        .fates
                        .seen
                        .iter()
                        .filter(|(_, (_, o, _))| o == &object)
                        .map(|(id, what)| (id, what, world.fates.handled.contains(id)))
                        .collect();
                    panic!(
                        "no delivery of user {object} (employee {}, version {}, {:?}) to {target} (ledger {ledger:?}); its events on the queue: {events:?}",
                        u.employee_id, u.version, u.state
                    )
                });
            match record.status {
                DeliveryStatus::Delivered => assert_eq!(
                    ledger,
                    Some(u.version),
                    "user {object} at {target}: the ledger holds the newest version"
                ),
                DeliveryStatus::Skipped => assert_eq!(
                    record.version, u.version,
                    "user {object} at {target}: skipped at its newest version"
                ),
                other => panic!("user {object} at {target} ended {other:?}"),
            }
        }
        if u.state != UserState::Deleted || deliveries.iter().any(|d| d.object_id == object) {
            let last = deliveries
                .iter()
                .filter(|d| d.object_id == object && d.event_type.starts_with("user."))
                .map(|d| d.version)
                .max();
            assert_eq!(
                last,
                Some(u.version),
                "the app received user {object}'s newest version"
            );
        }
    }
}

/// No stale overwrite: per user, the versions the receiver got never go backwards.
pub fn assert_versions_never_go_backwards_at_the_receiver(world: &World) {
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for d in world.receiver.deliveries() {
        if !d.event_type.starts_with("user.") {
            continue;
        }
        let prev = last.entry(d.object_id.clone()).or_default();
        assert!(
            d.version >= *prev,
            "user {} went back from version {} to {}",
            d.object_id,
            *prev,
            d.version
        );
        *prev = d.version;
    }
}

/// No user is created twice at the app: one `user.created` event id per user (a
/// retried delivery repeats the same `webhook-id`, which receivers deduplicate).
pub fn assert_no_user_is_created_twice_at_the_receiver(world: &World) {
    let mut created: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for d in world.receiver.deliveries() {
        if d.event_type == "user.created" {
            created.entry(d.object_id).or_default().insert(d.webhook_id);
        }
    }
    for (user, ids) in created {
        assert_eq!(ids.len(), 1, "user {user} was created {} times", ids.len());
    }
}

/// Repeated deliveries at the receiver (same `webhook-id` more than once): harmless by
/// design, counted for the report.
pub fn duplicate_deliveries_at_the_receiver(world: &World) -> usize {
    let all = world.receiver.deliveries();
    let distinct: BTreeSet<(&str, u64, &str)> = all
        .iter()
        .map(|d| (d.object_id.as_str(), d.version, d.webhook_id.as_str()))
        .collect();
    all.len() - distinct.len()
}

/// No user is duplicated at the SCIM target: one account per userName and per
/// externalId (the employee id), and no account for a user the store does not hold.
pub async fn assert_no_user_is_duplicated_at_the_scim_target(world: &World) {
    let accounts = world.scim_accounts().await;
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_external: BTreeMap<String, usize> = BTreeMap::new();
    for a in &accounts {
        *by_name
            .entry(a["userName"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
        if let Some(x) = a["externalId"].as_str() {
            *by_external.entry(x.to_string()).or_default() += 1;
        }
    }
    for (name, n) in &by_name {
        assert_eq!(*n, 1, "{n} SCIM accounts share one userName ({name})");
    }
    for (x, n) in &by_external {
        assert_eq!(*n, 1, "{n} SCIM accounts for employee {x}");
    }
    let stored: BTreeSet<String> = users(world)
        .await
        .into_iter()
        .map(|u| u.employee_id.to_string())
        .collect();
    for x in by_external.keys() {
        assert!(stored.contains(x), "SCIM account for unknown employee {x}");
    }
}

/// No stale overwrite at SCIM: every active user with a work email has an account
/// there with its newest job title, active; a deactivated or deleted user's account,
/// if it has one, is inactive.
pub async fn assert_scim_accounts_hold_each_users_newest_state(world: &World) {
    let accounts = world.scim_accounts().await;
    let by_employee: BTreeMap<&str, &serde_json::Value> = accounts
        .iter()
        .filter_map(|a| Some((a["externalId"].as_str()?, a)))
        .collect();
    for u in users(world).await {
        let id = u.employee_id.as_str();
        let account = by_employee.get(id);
        match u.state {
            UserState::Active if u.work_email().is_some() => {
                let a = account.unwrap_or_else(|| panic!("no SCIM account for employee {id}"));
                assert_eq!(a["active"], true, "employee {id} is active at SCIM");
                assert_eq!(
                    a["title"].as_str(),
                    u.job_title.as_deref(),
                    "employee {id}: SCIM holds the newest job title"
                );
            }
            UserState::Inactive | UserState::Deleted => {
                if let Some(a) = account {
                    assert_eq!(a["active"], false, "employee {id} is deprovisioned at SCIM");
                }
            }
            _ => {}
        }
    }
}
