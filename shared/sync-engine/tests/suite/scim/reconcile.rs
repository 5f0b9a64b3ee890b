//! The target reconciliation against scim2-server: drift repaired (a deleted account
//! recreated, a suspended one reactivated), identical accounts left untouched, a
//! settings change re-rendering exactly the accounts it changes, filters changing who
//! is admitted, and managers resolved for reports delivered before them.

use domain::{ScimConfig, ScimNameSource};
use ports::Store;
use serde_json::json;
use sync_engine::deliver::targets::scim::reconcile::RepairAction;

use super::harness::*;

#[tokio::test]
async fn reconciliation_recreates_a_deleted_account_reactivates_a_suspended_one_and_leaves_an_identical_one_untouched(
) {
    let h = scim_harness(ScimConfig::default()).await;
    for (id, first, last) in [
        ("401", "Ada", "Lovelace"),
        ("402", "Alan", "Turing"),
        ("403", "Grace", "Hopper"),
    ] {
        h.deliver(employee(&h.dir, id, first, last)).await;
    }
    // By hand at the provider: one account deleted, one suspended.
    h.admin_deletes(&h.account_of("401").await).await;
    h.admin_sets(&h.account_of("402").await, json!({"active": false}))
        .await;
    let untouched = h.account_of("403").await;

    h.take_sent();
    let report = h.reconcile().await;
    let sent = h.take_sent();
    let writes: Vec<&(String, String)> = sent.iter().filter(|(m, _)| m != "GET").collect();
    assert_eq!(writes.len(), 2, "one POST and one PATCH: {sent:#?}");
    assert_eq!(writes[0].0, "POST");
    assert_eq!(writes[1].0, "PATCH");
    let untouched_path = format!("/v2/Users/{}", untouched["id"].as_str().unwrap());
    assert!(
        sent.iter().all(|(_, p)| !p.starts_with(&untouched_path)),
        "no request about the identical account: {sent:#?}"
    );
    assert_eq!(report.accounts_read, 2);
    assert_eq!(report.pages_read, 1, "two accounts fit one page of two");
    assert_eq!(report.users_checked, 3);
    assert_eq!(
        (report.recreated, report.reactivated, report.unchanged),
        (1, 1, 1),
        "{report:#?}"
    );
    assert_eq!(
        report.repairs_attempted(),
        2,
        "no write for the identical account"
    );
    assert_eq!(report.failed, 0);
    let actions: Vec<(&str, RepairAction)> = report
        .repairs
        .iter()
        .map(|r| (r.employee_id.as_str(), r.action))
        .collect();
    assert_eq!(
        actions,
        [
            ("401", RepairAction::Recreate),
            ("402", RepairAction::Reactivate)
        ]
    );

    assert_eq!(h.accounts().await.len(), 3);
    assert_eq!(h.account_of("401").await["active"], true);
    assert_eq!(h.account_of("402").await["active"], true);
    let after = h.account_of("403").await;
    assert_eq!(after["meta"]["version"], untouched["meta"]["version"]);

    // Nothing drifted since: a second run reads and writes nothing else.
    let before = versions(&h.accounts().await);
    h.take_sent();
    let again = h.reconcile().await;
    assert_eq!(again.unchanged, 3, "{again:#?}");
    assert_eq!(again.repairs_attempted(), 0);
    assert_eq!(again.pages_read, 2);
    let sent = h.take_sent();
    assert_eq!(
        sent.len(),
        2,
        "two listing pages and nothing else: {sent:#?}"
    );
    assert!(sent
        .iter()
        .all(|(m, p)| m == "GET" && p.contains("startIndex=") && p.contains("count=2")));
    assert_eq!(versions(&h.accounts().await), before);
}

#[tokio::test]
async fn switching_the_name_source_to_preferred_updates_exactly_the_accounts_whose_rendering_changed(
) {
    let h = scim_harness(ScimConfig::default()).await;
    let mut amelie = employee(&h.dir, "411", "Amélie", "Lovelace");
    amelie.preferred_name = Some("Ami".into());
    let mut same = employee(&h.dir, "412", "Alan", "Turing");
    same.preferred_name = Some("Alan".into());
    let none = employee(&h.dir, "413", "Grace", "Hopper");
    for u in [amelie, same, none] {
        h.deliver(u).await;
    }
    let before = versions(&h.accounts().await);

    h.reconfigure(|scim, _| scim.name_source = ScimNameSource::Preferred)
        .await;
    let amelie_path = format!(
        "/v2/Users/{}",
        h.account_of("411").await["id"].as_str().unwrap()
    );
    h.take_sent();
    let report = h.reconcile().await;
    let writes: Vec<(String, String)> = h
        .take_sent()
        .into_iter()
        .filter(|(m, _)| m != "GET")
        .collect();
    assert_eq!(writes, [("PATCH".to_string(), amelie_path)]);
    assert_eq!((report.updated, report.unchanged), (1, 2), "{report:#?}");
    assert_eq!(report.repairs[0].employee_id, "411");
    assert_eq!(report.repairs[0].action, RepairAction::Update);
    assert!(
        report.repairs[0].reason.contains("name"),
        "{}",
        report.repairs[0].reason
    );
    assert!(!report.repairs[0].reason.contains("Ami"), "no HR values");

    let after = versions(&h.accounts().await);
    assert_ne!(after["411"], before["411"]);
    assert_eq!(after["412"], before["412"]);
    assert_eq!(after["413"], before["413"]);
    assert_eq!(h.account_of("411").await["name"]["givenName"], "Ami");
}

#[tokio::test]
async fn a_filter_change_creates_newly_admitted_users_and_deactivates_newly_excluded_ones() {
    let mut only_rnd = domain::TargetFilter::default();
    only_rnd
        .field_in
        .insert("department".into(), vec!["R&D".into()]);
    let h = scim_harness_filtered(ScimConfig::default(), only_rnd).await;
    h.deliver(employee(&h.dir, "421", "Ada", "Lovelace")).await;
    let mut sales = employee(&h.dir, "422", "Alan", "Turing");
    sales.department = Some("Sales".into());
    let outcome = h.push(sales).await;
    assert!(
        matches!(
            outcome,
            sync_engine::deliver::dispatch::TargetOutcome::Skipped { .. }
        ),
        "{outcome:?}"
    );
    assert_eq!(h.accounts().await.len(), 1);

    h.reconfigure(|_, filter| {
        filter
            .field_in
            .insert("department".into(), vec!["Sales".into()]);
    })
    .await;
    let report = h.reconcile().await;
    assert_eq!(
        (report.created, report.deprovisioned),
        (1, 1),
        "{report:#?}"
    );
    assert_eq!(h.account_of("421").await["active"], false);
    assert_eq!(h.account_of("422").await["active"], true);
}

#[tokio::test]
async fn a_report_delivered_before_its_manager_gets_the_managers_id_from_the_reconciliation() {
    let h = scim_harness(ScimConfig::default()).await;
    let mut report_user = employee(&h.dir, "431", "Ada", "Lovelace");
    report_user.manager_employee_id = Some(domain::EmployeeId::parse("430").unwrap());
    h.deliver(report_user).await;
    h.deliver(employee(&h.dir, "430", "Charles", "Babbage"))
        .await;
    assert!(h.account_of("431").await[ENTERPRISE]
        .get("manager")
        .is_none());

    let report = h.reconcile().await;
    assert_eq!((report.updated, report.unchanged), (1, 1), "{report:#?}");
    let manager = h.account_of("430").await;
    assert_eq!(
        h.account_of("431").await[ENTERPRISE]["manager"]["value"],
        manager["id"]
    );
}

#[tokio::test]
async fn a_settings_change_through_the_control_plane_is_reconciled_at_the_next_run_and_audited() {
    let h = scim_harness(ScimConfig::default()).await;
    let mut ada = employee(&h.dir, "501", "Amélie", "Durand");
    ada.preferred_name = Some("Ami".into());
    h.deliver(ada).await;
    h.deliver(employee(&h.dir, "502", "Bo", "Berg")).await;
    let d = h.store.get_directory(&h.dir).await.unwrap().unwrap();
    let mut target = d.targets[0].clone();
    let domain::TargetKind::Scim { scim, .. } = &mut target.kind else {
        unreachable!("the harness target is SCIM")
    };
    scim.name_source = ScimNameSource::Preferred;
    sync_engine::operate::update_target(
        &h.engine,
        &h.dir,
        sync_engine::operate::TargetSpec {
            target,
            secrets: None,
        },
        "operator",
    )
    .await
    .unwrap();
    let d = h.store.get_directory(&h.dir).await.unwrap().unwrap();
    assert!(
        d.cursors.reconcile_requested.contains(h.target.as_str()),
        "the change asks for a reconciliation"
    );

    h.take_sent();
    let done = sync_engine::operate::reconcile_due(&h.engine, &h.dir)
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    let report = done[0].1.as_ref().unwrap();
    assert_eq!(
        report.updated, 1,
        "only Amélie renders differently: {report:#?}"
    );
    let writes: Vec<(String, String)> = h
        .take_sent()
        .into_iter()
        .filter(|(m, _)| m != "GET")
        .collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        h.account_of("501").await["name"]["givenName"],
        "Ami",
        "the preferred name now"
    );
    // The harness's clock stands still, so entries are found by what they say.
    let audit = h.engine.store.list_audit(&h.dir, 10).await.unwrap();
    let reconciled = audit
        .iter()
        .find(|e| e.details["change"] == "reconciled")
        .expect("the reconciliation is audited");
    assert_eq!(reconciled.details["updated"], 1);
    assert_eq!(reconciled.actor, "function:poller");

    // Done: not due again until its interval passes.
    let again = sync_engine::operate::reconcile_due(&h.engine, &h.dir)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
}
