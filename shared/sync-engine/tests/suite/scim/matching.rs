//! Finding, adopting and updating accounts at scim2-server: the manager's SCIM id,
//! the work email as a match key, a rehire under a new employee id, and updates that
//! write only the attributes the target owns.

use domain::{Phone, PhoneKind, ScimConfig, UserState};
use ports::{AuditAction, AuditStore};
use serde_json::json;
use sync_engine::deliver::dispatch::TargetOutcome;

use super::harness::*;

#[tokio::test]
async fn the_manager_value_is_the_managers_scim_id_once_the_manager_has_an_account() {
    let h = scim_harness(ScimConfig::default()).await;
    let mut report = employee(&h.dir, "201", "Ada", "Lovelace");
    report.manager_employee_id = Some(domain::EmployeeId::parse("200").unwrap());
    h.deliver(report).await;
    // The manager has no account yet: no manager rather than an id the target cannot
    // resolve.
    let before = h.account_of("201").await;
    assert!(before[ENTERPRISE].get("manager").is_none(), "{before}");

    h.deliver(employee(&h.dir, "200", "Charles", "Babbage"))
        .await;
    let manager = h.account_of("200").await;

    // The report's next delivery carries the manager's resource id.
    let mut later = h.stored("201").await;
    later.job_title = Some("Analyst".into());
    h.deliver(later).await;
    let after = h.account_of("201").await;
    assert_eq!(after[ENTERPRISE]["manager"]["value"], manager["id"]);
    assert_ne!(after[ENTERPRISE]["manager"]["value"], "200");
}

#[tokio::test]
async fn an_account_with_the_same_work_email_and_another_username_is_adopted_not_duplicated() {
    let h = scim_harness(ScimConfig::default()).await;
    let existing = h
        .pre_create(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "alovelace",
            "emails": [{"value": "Ada.Lovelace@acme.test", "type": "work", "primary": true}],
            "active": true,
        }))
        .await;
    h.deliver(employee(&h.dir, "202", "Ada", "Lovelace")).await;
    let account = h.only_account().await;
    assert_eq!(account["id"], existing["id"]);
    assert_eq!(account["userName"], "alovelace", "its username is kept");
    assert_eq!(account["externalId"], "202");
    assert_eq!(account["displayName"], "Ada Lovelace");
}

#[tokio::test]
async fn a_rehire_entered_as_a_new_employee_adopts_the_terminated_records_account_and_is_audited() {
    let h = scim_harness(ScimConfig::default()).await;
    h.deliver(employee(&h.dir, "203", "Alan", "Turing")).await;
    let mut left = h.stored("203").await;
    left.state = UserState::Inactive;
    h.deliver(left).await;
    let old = h.only_account().await;
    assert_eq!(old["active"], false);

    // BambooHR: the rehire is a new employee record with the same work email.
    h.deliver(employee(&h.dir, "303", "Alan", "Turing")).await;
    let account = h.only_account().await;
    assert_eq!(
        account["id"], old["id"],
        "the old account, not a second one"
    );
    assert_eq!(account["externalId"], "303");
    assert_eq!(account["active"], true);
    assert_eq!(account["userName"], "alan.turing");

    let audit = h.store.list_audit(&h.dir, 10).await.unwrap();
    let adoption = audit
        .iter()
        .find(|e| e.details["change"] == "scim_account_adopted")
        .expect("the adoption is audited");
    assert_eq!(adoption.action, AuditAction::TargetChange);
    assert_eq!(adoption.details["accountId"], old["id"]);
    assert_eq!(adoption.details["fromEmployeeId"], "203");
    assert_eq!(adoption.details["toEmployeeId"], "303");

    // The old record's later deliveries never switch the rehire's account off.
    let mut gone = h.stored("203").await;
    gone.state = UserState::Deleted;
    let outcome = h.push(gone).await;
    assert!(
        matches!(outcome, TargetOutcome::Skipped { .. }),
        "{outcome:?}"
    );
    assert_eq!(h.only_account().await["active"], true);
    // Nor does the reconciliation: the account is the rehire's, and already right.
    let report = h.reconcile().await;
    assert_eq!(
        (report.unchanged, report.repairs_attempted()),
        (2, 0),
        "{report:#?}"
    );
}

#[tokio::test]
async fn with_adoption_turned_off_a_rehire_does_not_take_over_the_old_account() {
    let h = scim_harness(ScimConfig {
        adopt_inactive_accounts: false,
        ..ScimConfig::default()
    })
    .await;
    h.deliver(employee(&h.dir, "204", "Grace", "Hopper")).await;
    let mut left = h.stored("204").await;
    left.state = UserState::Inactive;
    h.deliver(left).await;

    let outcome = h.push(employee(&h.dir, "304", "Grace", "Hopper")).await;
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
    let account = h.only_account().await;
    assert_eq!(account["externalId"], "204");
    assert_eq!(account["active"], false);
}

#[tokio::test]
async fn an_active_employees_account_found_by_work_email_is_never_taken_over() {
    let h = scim_harness(ScimConfig::default()).await;
    h.deliver(employee(&h.dir, "205", "Sam", "Jones")).await;
    let outcome = h.push(employee(&h.dir, "305", "Sam", "Jones")).await;
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
    assert_eq!(h.only_account().await["externalId"], "205");
}

#[tokio::test]
async fn an_update_leaves_attributes_this_target_does_not_own_as_the_server_has_them() {
    let h = scim_harness(ScimConfig::default()).await;
    h.deliver(employee(&h.dir, "206", "Edsger", "Dijkstra"))
        .await;
    let account = h.only_account().await;
    // Set at the provider by its admins: a core attribute and an enterprise one that
    // the seed table does not map.
    h.admin_sets(
        &account,
        json!({"nickName": "EWD", "profileUrl": "https://people.acme.test/ewd",
               ENTERPRISE: {"costCenter": "CC-42"}}),
    )
    .await;

    let mut moved = h.stored("206").await;
    moved.department = Some("Research".into());
    moved.job_title = Some("Fellow".into());
    h.deliver(moved).await;
    let after = h.only_account().await;
    assert_eq!(after["title"], "Fellow");
    assert_eq!(after[ENTERPRISE]["department"], "Research");
    assert_eq!(after["nickName"], "EWD");
    assert_eq!(after["profileUrl"], "https://people.acme.test/ewd");
    assert_eq!(after[ENTERPRISE]["costCenter"], "CC-42");
}

#[tokio::test]
async fn a_phone_mastered_at_the_provider_survives_when_the_target_does_not_own_phone_numbers() {
    let mut config = ScimConfig::default();
    config.owned_attributes.retain(|a| a != "phoneNumbers");
    let h = scim_harness(config).await;
    h.deliver(employee(&h.dir, "207", "Barbara", "Liskov"))
        .await;
    let account = h.only_account().await;
    assert!(account.get("phoneNumbers").is_none());
    h.admin_sets(
        &account,
        json!({"phoneNumbers": [{"value": "+1 617 555 0199", "type": "work"}]}),
    )
    .await;

    let mut u = h.stored("207").await;
    u.phones = vec![Phone {
        value: "+1 555 0100".into(),
        kind: PhoneKind::Work,
        extension: None,
    }];
    u.job_title = Some("Professor".into());
    h.deliver(u).await;
    let after = h.only_account().await;
    assert_eq!(after["title"], "Professor");
    assert_eq!(
        after["phoneNumbers"],
        json!([{"value": "+1 617 555 0199", "type": "work"}])
    );
}
