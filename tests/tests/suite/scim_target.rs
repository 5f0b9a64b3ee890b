//! SCIM 2.0 delivery against the real `scim2-server` from PyPI (tests/peers/scim_server.py
//! serves it from memory on a free port, behind a bearer token). The engine runs on the
//! embedded adapters; each test stores users and drives `sync_engine::deliver::dispatch::dispatch`
//! with their change events, then reads the accounts back from the SCIM server.
//!
//! Every test starts its own server, so account counts are exact.

use std::path::PathBuf;
use std::sync::Arc;

use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryUser, Email, EmailKind, EmployeeId, Group,
    ScimConfig, ScimDeprovision, Target, TargetFilter, TargetId, TargetKind, UserState,
};
use embedded_adapters::{FileSecrets, InProcessBus, SqliteStore};
use integration_tests::unique;
use ports::{DirectorySecrets, FixedClock, SecretStore, Store, TargetSecrets, UserWrite};
use secrecy::SecretString;
use serde_json::{json, Value};
use sync_engine::deliver::dispatch::{dispatch, TargetOutcome};
use sync_engine::Engine;
use test_peers::PeerProcess;
use time::OffsetDateTime;

const TOKEN: &str = "scim-test-token";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn scim_server(env: &[(&str, &str)]) -> PeerProcess {
    let script = test_peers::workspace_root().join("tests/peers/scim_server.py");
    let mut all = vec![("SCIM_BEARER_TOKEN", TOKEN)];
    all.extend_from_slice(env);
    test_peers::spawn_python_peer(&script, &[], &all)
}

/// An engine with one directory whose only target is the SCIM server.
struct Harness {
    engine: Engine,
    store: Arc<SqliteStore>,
    dir: DirectoryId,
    scim: PeerProcess,
    secrets_file: PathBuf,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.secrets_file);
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_334_400).unwrap()
}

async fn harness(scim: PeerProcess) -> Harness {
    harness_with(scim, ScimConfig::default()).await
}

async fn harness_with(scim: PeerProcess, config: ScimConfig) -> Harness {
    let secrets_file = std::env::temp_dir().join(format!("{}.json", unique("scim-secrets")));
    let store = Arc::new(SqliteStore::in_memory());
    let secrets = Arc::new(FileSecrets::open(&secrets_file));
    let (bus, _events) = InProcessBus::new();
    let dir = DirectoryId::parse("acme").unwrap();
    let mut d = Directory::new(dir.clone(), "acme", "acme").unwrap();
    d.version = 1;
    d.targets = vec![Target {
        id: TargetId::parse("scim").unwrap(),
        kind: TargetKind::Scim {
            base_url: format!("{}/v2", scim.base_url()),
            scim: config,
        },
        filter: TargetFilter::default(),
        enabled: true,
    }];
    store.put_directory(&d, None).await.unwrap();
    let mut targets = std::collections::BTreeMap::new();
    targets.insert(
        "scim".to_string(),
        TargetSecrets {
            bearer_token: Some(SecretString::from(TOKEN)),
            ..Default::default()
        },
    );
    secrets
        .put(
            "acme",
            &DirectorySecrets {
                targets,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let clock = Arc::new(FixedClock::new(now()));
    let engine = Engine::new(store.clone(), secrets, Arc::new(bus), clock.clone())
        .with_retry_queue(Arc::new(embedded_adapters::InProcessRetryQueue::new(clock)));
    Harness {
        engine,
        store,
        dir,
        scim,
        secrets_file,
    }
}

fn employee(dir: &DirectoryId, id: &str, first: &str, last: &str) -> DirectoryUser {
    let mut u = DirectoryUser::new(
        dir.clone(),
        EmployeeId::parse(id).unwrap(),
        UserState::Active,
    );
    u.first_name = Some(first.into());
    u.last_name = Some(last.into());
    u.job_title = Some("Engineer".into());
    u.department = Some("R&D".into());
    u.emails = vec![Email {
        value: format!("{}.{}@acme.test", first.to_lowercase(), last.to_lowercase()),
        kind: EmailKind::Work,
        primary: true,
    }];
    u
}

impl Harness {
    /// Stores `user` as the next version of that employee and returns its event.
    async fn save(&self, mut user: DirectoryUser) -> ChangeEvent {
        let before = self
            .store
            .get_user(&self.dir, &user.employee_id)
            .await
            .unwrap();
        user.version = before.as_ref().map_or(1, |b| b.version + 1);
        user.fingerprint = user.compute_fingerprint();
        let event = domain::ChangeEvent::for_user_write(before.as_ref(), &user, now());
        self.store
            .write_user(&UserWrite {
                user,
                expected_version: before.map(|b| b.version),
                events: vec![event.clone()],
            })
            .await
            .unwrap();
        event
    }

    /// Stores `user` and dispatches its event; returns what the SCIM target did.
    async fn push(&self, user: DirectoryUser) -> TargetOutcome {
        let event = self.save(user).await;
        self.dispatch(&event).await
    }

    async fn dispatch(&self, event: &ChangeEvent) -> TargetOutcome {
        let report = dispatch(&self.engine, event).await.unwrap();
        assert_eq!(report.targets.len(), 1);
        report.targets.into_iter().next().unwrap().1
    }

    async fn stored(&self, id: &str) -> DirectoryUser {
        self.store
            .get_user(&self.dir, &EmployeeId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    /// Every account on the SCIM server.
    async fn accounts(&self) -> Vec<Value> {
        let list: Value = reqwest::Client::new()
            .get(format!("{}/v2/Users?count=1000", self.scim.base_url()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            list["totalResults"].as_u64().unwrap() as usize,
            list["Resources"].as_array().map_or(0, Vec::len),
            "the listing is complete"
        );
        list["Resources"].as_array().cloned().unwrap_or_default()
    }

    /// The only account on the server.
    async fn only_account(&self) -> Value {
        let mut all = self.accounts().await;
        assert_eq!(all.len(), 1, "exactly one account: {all:#?}");
        all.remove(0)
    }

    /// Creates an account directly at the SCIM server, as another provisioner would.
    async fn pre_create(&self, account: Value) -> Value {
        reqwest::Client::new()
            .post(format!("{}/v2/Users", self.scim.base_url()))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .body(account.to_string())
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn assert_delivered(outcome: &TargetOutcome) {
    assert!(
        matches!(outcome, TargetOutcome::Delivered { .. }),
        "expected a delivery, got {outcome:?}"
    );
}

#[tokio::test]
async fn a_new_employee_is_created_and_a_job_title_change_updates_the_same_account() {
    let h = harness(scim_server(&[])).await;
    let ada = employee(&h.dir, "101", "Ada", "Lovelace");

    let outcome = h.push(ada.clone()).await;
    assert!(
        matches!(
            outcome,
            TargetOutcome::Delivered {
                status: 201,
                version: 1
            }
        ),
        "{outcome:?}"
    );
    let created = h.only_account().await;
    assert_eq!(created["externalId"], "101");
    assert_eq!(created["userName"], "ada.lovelace");
    assert_eq!(created["active"], true);
    assert_eq!(created["title"], "Engineer");
    assert_eq!(created["displayName"], "Ada Lovelace");
    assert_eq!(created["emails"][0]["value"], "ada.lovelace@acme.test");
    assert_eq!(created[ENTERPRISE]["department"], "R&D");

    let mut promoted = h.stored("101").await;
    promoted.job_title = Some("Principal Engineer".into());
    let outcome = h.push(promoted).await;
    // scim2-server announces PATCH in its ServiceProviderConfig, so the update is a
    // PATCH of the changed attributes, answered 204 No Content.
    assert!(
        matches!(
            outcome,
            TargetOutcome::Delivered {
                status: 204,
                version: 2
            }
        ),
        "{outcome:?}"
    );
    let updated = h.only_account().await;
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(updated["title"], "Principal Engineer");
    assert_ne!(updated["meta"]["version"], created["meta"]["version"]);
}

#[tokio::test]
async fn a_leaver_is_deactivated_and_a_rehire_reactivates_the_same_account() {
    let h = harness(scim_server(&[])).await;
    assert_delivered(&h.push(employee(&h.dir, "102", "Alan", "Turing")).await);
    let created = h.only_account().await;

    let mut leaver = h.stored("102").await;
    leaver.state = UserState::Inactive;
    assert_delivered(&h.push(leaver).await);
    let deactivated = h.only_account().await;
    assert_eq!(deactivated["id"], created["id"]);
    assert_eq!(deactivated["active"], false);
    assert_eq!(deactivated["userName"], "alan.turing");

    let mut rehire = h.stored("102").await;
    rehire.state = UserState::Active;
    assert_delivered(&h.push(rehire).await);
    let reactivated = h.only_account().await;
    assert_eq!(reactivated["id"], created["id"]);
    assert_eq!(reactivated["active"], true);
}

#[tokio::test]
async fn a_work_email_change_updates_the_same_account_and_keeps_its_username() {
    let h = harness(scim_server(&[])).await;
    assert_delivered(&h.push(employee(&h.dir, "103", "Grace", "Hopper")).await);
    let created = h.only_account().await;

    let mut renamed = h.stored("103").await;
    renamed.last_name = Some("Murray".into());
    renamed.emails[0].value = "grace.murray@acme.test".into();
    assert_delivered(&h.push(renamed).await);
    let updated = h.only_account().await;
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(updated["emails"][0]["value"], "grace.murray@acme.test");
    assert_eq!(updated["displayName"], "Grace Murray");
    // The username was set when the account was created and is never overwritten.
    assert_eq!(updated["userName"], "grace.hopper");
}

#[tokio::test]
async fn a_pre_existing_account_matched_by_username_is_adopted_and_keeps_its_username() {
    let h = harness(scim_server(&[])).await;
    let existing = h
        .pre_create(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "Katherine.Johnson",
            "displayName": "K. Johnson",
            "active": true,
        }))
        .await;

    // Our username would be "katherine.johnson"; userName is not case-exact in SCIM,
    // so the lookup finds the account created by hand.
    assert_delivered(
        &h.push(employee(&h.dir, "104", "Katherine", "Johnson"))
            .await,
    );
    let adopted = h.only_account().await;
    assert_eq!(adopted["id"], existing["id"]);
    assert_eq!(adopted["userName"], "Katherine.Johnson");
    assert_eq!(adopted["externalId"], "104");
    assert_eq!(adopted["displayName"], "Katherine Johnson");

    // From now on it is found by externalId, and the username still stays.
    let mut promoted = h.stored("104").await;
    promoted.job_title = Some("Mathematician".into());
    assert_delivered(&h.push(promoted).await);
    let updated = h.only_account().await;
    assert_eq!(updated["id"], existing["id"]);
    assert_eq!(updated["userName"], "Katherine.Johnson");
    assert_eq!(updated["title"], "Mathematician");
}

#[tokio::test]
async fn a_409_on_create_is_resolved_by_updating_the_account_that_holds_the_username() {
    // The server lets another provisioner create "edsger.dijkstra" just before our
    // POST lands, after our lookups found nothing; scim2-server answers 409.
    let h = harness(scim_server(&[("SCIM_RACE_USERNAME", "edsger.dijkstra")])).await;
    let outcome = h.push(employee(&h.dir, "105", "Edsger", "Dijkstra")).await;
    assert!(
        matches!(outcome, TargetOutcome::Delivered { status: 204, .. }),
        "the conflict ends in an update (a PATCH): {outcome:?}"
    );
    let account = h.only_account().await;
    assert_eq!(account["userName"], "edsger.dijkstra");
    assert_eq!(account["externalId"], "105");
    assert_eq!(account["displayName"], "Edsger Dijkstra");
    assert_eq!(account["title"], "Engineer");
}

#[tokio::test]
async fn an_account_of_another_employee_with_the_same_username_is_never_taken_over() {
    let h = harness(scim_server(&[])).await;
    assert_delivered(&h.push(employee(&h.dir, "108", "Sam", "Jones")).await);
    let first = h.only_account().await;

    // Another Sam Jones, in another email domain: same local part, same userName.
    let mut namesake = employee(&h.dir, "109", "Sam", "Jones");
    namesake.emails[0].value = "sam.jones@labs.acme.test".into();
    namesake.job_title = Some("Intern".into());
    let outcome = h.push(namesake).await;
    assert!(
        matches!(
            outcome,
            TargetOutcome::Failed {
                retryable: false,
                ..
            }
        ),
        "{outcome:?}"
    );
    let after = h.only_account().await;
    assert_eq!(after["id"], first["id"]);
    assert_eq!(after["externalId"], "108");
    assert_eq!(after["title"], "Engineer");
    assert_eq!(after["meta"]["version"], first["meta"]["version"]);
}

#[tokio::test]
async fn an_employee_without_a_work_email_is_skipped_with_a_reason_and_never_created() {
    let h = harness(scim_server(&[])).await;
    let mut no_email = employee(&h.dir, "106", "Barbara", "Liskov");
    no_email.emails.clear();
    let outcome = h.push(no_email).await;
    assert_eq!(
        outcome,
        TargetOutcome::Skipped {
            reason: "the employee has no work email, which this target requires".into()
        }
    );
    assert!(h.accounts().await.is_empty());
}

#[tokio::test]
async fn a_leaver_never_seen_by_the_target_is_not_created() {
    let h = harness(scim_server(&[])).await;
    let mut leaver = employee(&h.dir, "107", "John", "Backus");
    leaver.state = UserState::Inactive;
    let outcome = h.push(leaver).await;
    assert!(
        matches!(outcome, TargetOutcome::Skipped { .. }),
        "{outcome:?}"
    );
    assert!(h.accounts().await.is_empty());
}

#[tokio::test]
async fn three_repeated_full_pushes_of_five_users_leave_exactly_five_accounts() {
    let h = harness(scim_server(&[])).await;
    let people = [
        ("201", "Ada", "Lovelace"),
        ("202", "Alan", "Turing"),
        ("203", "Grace", "Hopper"),
        ("204", "Edsger", "Dijkstra"),
        ("205", "Barbara", "Liskov"),
    ];
    let mut versions_after_first_round: Vec<Value> = Vec::new();
    for round in 1..=3 {
        for (id, first, last) in people {
            // A full push re-sends the current state: a new stored version of the same
            // content, so the ledger lets it through and SCIM matching has to hold.
            let user = if round == 1 {
                employee(&h.dir, id, first, last)
            } else {
                h.stored(id).await
            };
            let event = h.save(user).await;
            assert_delivered(&h.dispatch(&event).await);
            // A duplicate of the same event is stopped by the ledger.
            let again = h.dispatch(&event).await;
            assert!(matches!(again, TargetOutcome::Skipped { .. }), "{again:?}");
        }
        let accounts = h.accounts().await;
        assert_eq!(accounts.len(), 5, "after round {round}: {accounts:#?}");
        let mut external: Vec<&str> = accounts
            .iter()
            .map(|a| a["externalId"].as_str().unwrap())
            .collect();
        external.sort_unstable();
        assert_eq!(external, ["201", "202", "203", "204", "205"]);
        // Unchanged state is not written again: the accounts' ETags stay put.
        let versions: Vec<Value> = accounts
            .iter()
            .map(|a| a["meta"]["version"].clone())
            .collect();
        if round == 1 {
            versions_after_first_round = versions;
        } else {
            assert_eq!(versions, versions_after_first_round, "round {round}");
        }
    }
}

#[tokio::test]
async fn with_delete_configured_a_leaver_is_deleted_and_a_rehire_gets_a_new_account() {
    let h = harness_with(
        scim_server(&[]),
        ScimConfig {
            deprovision: ScimDeprovision::Delete,
            ..ScimConfig::default()
        },
    )
    .await;
    let ada = employee(&h.dir, "120", "Ada", "Lovelace");
    assert_delivered(&h.push(ada).await);
    let first = h.only_account().await;

    let mut leaver = h.stored("120").await;
    leaver.state = UserState::Inactive;
    assert_delivered(&h.push(leaver).await);
    assert!(h.accounts().await.is_empty(), "the account was deleted");

    let mut rehire = h.stored("120").await;
    rehire.state = UserState::Active;
    assert_delivered(&h.push(rehire).await);
    let second = h.only_account().await;
    assert_ne!(second["id"], first["id"]);
    assert_eq!(second["externalId"], "120");
}

impl Harness {
    /// Every group on the SCIM server.
    async fn groups(&self) -> Vec<Value> {
        let list: Value = reqwest::Client::new()
            .get(format!("{}/v2/Groups?count=1000", self.scim.base_url()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        list["Resources"].as_array().cloned().unwrap_or_default()
    }

    async fn dispatch_all(&self, events: &[ChangeEvent]) -> Vec<TargetOutcome> {
        let mut out = Vec::new();
        for e in events {
            out.push(self.dispatch(e).await);
        }
        out
    }
}

#[tokio::test]
async fn groups_are_pushed_with_their_members_and_a_late_membership_event_changes_nothing() {
    let h = harness_with(
        scim_server(&[]),
        ScimConfig {
            push_groups: true,
            ..ScimConfig::default()
        },
    )
    .await;
    let mut rnd = Group::new(h.dir.clone(), "department", "R&D");
    rnd.version = 1;
    rnd.refresh_fingerprint();
    ports::SyncStore::write_group(
        h.store.as_ref(),
        &ports::GroupWrite {
            group: rnd.clone(),
            expected_version: None,
            events: vec![],
        },
    )
    .await
    .unwrap();

    let mut ada = employee(&h.dir, "130", "Ada", "Lovelace");
    ada.group_ids = vec![rnd.id.clone()];
    let mut bob = employee(&h.dir, "131", "Bob", "Builder");
    bob.group_ids = vec![rnd.id.clone()];
    let mut members_added = Vec::new();
    for u in [ada, bob] {
        let event = h.save(u).await;
        assert_delivered(&h.dispatch(&event).await);
        let stored = h.stored(event.data["employeeId"].as_str().unwrap()).await;
        members_added.extend(sync_engine::reconcile::groups::membership_events(
            None,
            &stored,
            now(),
        ));
    }
    let created =
        sync_engine::reconcile::groups::group_event(domain::EventType::GroupCreated, &rnd, now());
    assert_delivered(&h.dispatch(&created).await);
    for outcome in h.dispatch_all(&members_added).await {
        assert_delivered(&outcome);
    }

    let groups = h.groups().await;
    assert_eq!(groups.len(), 1, "{groups:#?}");
    assert_eq!(groups[0]["displayName"], "R&D");
    assert_eq!(groups[0]["externalId"], rnd.id.as_str());
    let accounts = h.accounts().await;
    let id_of = |ext: &str| {
        accounts.iter().find(|a| a["externalId"] == ext).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let mut members: Vec<String> = groups[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect();
    members.sort();
    let mut expected = vec![id_of("130"), id_of("131")];
    expected.sort();
    assert_eq!(members, expected);

    // Bob leaves R&D; then the old "added" event for Bob arrives again, late.
    let before = h.stored("131").await;
    let mut moved = before.clone();
    moved.group_ids.clear();
    let event = h.save(moved).await;
    assert_delivered(&h.dispatch(&event).await);
    let after = h.stored("131").await;
    let removed = sync_engine::reconcile::groups::membership_events(Some(&before), &after, now());
    assert_eq!(removed.len(), 1);
    assert_delivered(&h.dispatch(&removed[0]).await);
    let late = members_added
        .iter()
        .find(|e| e.data["employeeId"] == "131")
        .unwrap();
    let outcome = h.dispatch(late).await;
    assert!(
        matches!(
            outcome,
            TargetOutcome::Skipped { .. } | TargetOutcome::Delivered { .. }
        ),
        "{outcome:?}"
    );
    let groups = h.groups().await;
    let members: Vec<&str> = groups[0]["members"]
        .as_array()
        .map(|m| m.iter().filter_map(|x| x["value"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(members, vec![id_of("130").as_str()], "Bob stays out");

    // A member whose account does not exist yet is retried, not dropped.
    let mut cy = employee(&h.dir, "132", "Cy", "Young");
    cy.group_ids = vec![rnd.id.clone()];
    h.save(cy).await;
    let cy = h.stored("132").await;
    let added = sync_engine::reconcile::groups::membership_events(None, &cy, now());
    let outcome = h.dispatch(&added[0]).await;
    assert!(
        matches!(outcome, TargetOutcome::Scheduled { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn the_remembered_resource_id_keeps_an_email_change_on_the_same_account_even_without_its_external_id(
) {
    let h = harness(scim_server(&[])).await;
    assert_delivered(&h.push(employee(&h.dir, "140", "Ada", "Lovelace")).await);
    let account = h.only_account().await;

    // An admin clears the account's externalId at the provider: lookups by employee
    // id no longer find it, and the new work email's userName matches nothing.
    let mut cleared = account.clone();
    let obj = cleared.as_object_mut().unwrap();
    obj.remove("externalId");
    obj.remove("meta");
    reqwest::Client::new()
        .put(format!(
            "{}/v2/Users/{}",
            h.scim.base_url(),
            account["id"].as_str().unwrap()
        ))
        .bearer_auth(TOKEN)
        .header("content-type", "application/scim+json")
        .body(cleared.to_string())
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    assert!(h.only_account().await.get("externalId").is_none());

    let mut renamed = h.stored("140").await;
    renamed.emails[0].value = "ada.byron@acme.test".into();
    assert_delivered(&h.push(renamed).await);
    let after = h.only_account().await;
    assert_eq!(after["id"], account["id"], "the same account, no duplicate");
    assert_eq!(after["userName"], "ada.lovelace", "its username is kept");
    assert_eq!(after["emails"][0]["value"], "ada.byron@acme.test");
    assert_eq!(after["externalId"], "140", "and it is tagged again");
}
