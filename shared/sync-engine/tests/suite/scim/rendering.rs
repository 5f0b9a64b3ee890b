//! What a SCIM account holds, read back from scim2-server: the seed table row by row,
//! First Name in `givenName`, ISO countries, the work extension, and the work address
//! from the employee's Location.

use domain::{Address, DirectoryUser, Phone, PhoneKind, ScimConfig};
use mapping::{apply, record_from_fields, ApplyContext, MappingConfig};
use serde_json::{json, Value};

use super::harness::*;

/// A user built from a BambooHR field-based webhook payload (display names), as the
/// webhook ingest maps it.
fn from_webhook(h: &ScimHarness, id: &str, fields: Value) -> DirectoryUser {
    let record = record_from_fields(
        id,
        fields.as_object().unwrap(),
        &[],
        &MappingConfig::default(),
    )
    .unwrap();
    let ctx = ApplyContext {
        directory_id: h.dir.clone(),
        today: now().date(),
        pre_start_days: 7,
        source_timestamp: None,
        group_sources: Vec::new(),
    };
    apply(None, &record, &ctx)
}

#[tokio::test]
async fn the_seed_table_arrives_at_the_server_row_by_row() {
    let h = scim_harness(ScimConfig::default()).await;
    h.deliver(employee(&h.dir, "100", "Grace", "Hopper")).await;
    let manager_id = h.account_of("100").await["id"].clone();

    let amelie = from_webhook(
        &h,
        "101",
        json!({
            "Employee #": "E-101", "First Name": "Amélie", "Middle Name": "B",
            "Last Name": "Lovelace", "Preferred Name": "Ami",
            "Work Email": "amelie.lovelace@acme.test", "Home Email": "ami@home.test",
            "Status": "Active", "Hire Date": "2020-01-06", "Job Title": "Staff Engineer",
            "Department": "R&D", "Division": "North America", "Supervisor EID": "100",
            "Work Phone": "+1 801-555-0100", "Work Ext.": "123",
            "Mobile Phone": "+1 801-555-0101", "Home Phone": "+1 801-555-0102",
            "Location": "Lindon, Utah", "Location Street 1": "335 S 560 W",
            "Location Street 2": "Suite 100", "Location City": "Lindon",
            "Location State": "UT", "Location ZIP": "84042",
            "Location Country": "United States",
            "Address Line 1": "12 St James's Sq", "Address Line 2": "Flat 2",
            "City": "London", "State": "London", "Zip Code": "SW1Y 4LB",
            "Country": "United Kingdom",
        }),
    );
    h.deliver(amelie).await;
    let a = h.account_of("101").await;
    let e = &a[ENTERPRISE];
    let email = |kind: &str| {
        a["emails"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["type"] == kind)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let typed = |list: &str, kind: &str| {
        a[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["type"] == kind)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let rows: Vec<(&str, Value, Value)> = vec![
        (
            "Work Email -> primary work email",
            email("work")["value"].clone(),
            json!("amelie.lovelace@acme.test"),
        ),
        (
            "Work Email is primary",
            email("work")["primary"].clone(),
            json!(true),
        ),
        (
            "Work Email -> userName (part before @)",
            a["userName"].clone(),
            json!("amelie.lovelace"),
        ),
        (
            "Home Email -> home email",
            email("home")["value"].clone(),
            json!("ami@home.test"),
        ),
        (
            "Employee id -> externalId",
            a["externalId"].clone(),
            json!("101"),
        ),
        (
            "First Name -> givenName",
            a["name"]["givenName"].clone(),
            json!("Amélie"),
        ),
        (
            "Middle Name -> middleName",
            a["name"]["middleName"].clone(),
            json!("B"),
        ),
        (
            "Last Name -> familyName",
            a["name"]["familyName"].clone(),
            json!("Lovelace"),
        ),
        (
            "Preferred Name + Last Name -> displayName",
            a["displayName"].clone(),
            json!("Ami Lovelace"),
        ),
        ("Status Active -> active", a["active"].clone(), json!(true)),
        (
            "Job Title -> title",
            a["title"].clone(),
            json!("Staff Engineer"),
        ),
        (
            "Employee # -> employeeNumber",
            e["employeeNumber"].clone(),
            json!("E-101"),
        ),
        (
            "Department -> department",
            e["department"].clone(),
            json!("R&D"),
        ),
        (
            "Division -> division",
            e["division"].clone(),
            json!("North America"),
        ),
        (
            "Division -> organization",
            e["organization"].clone(),
            json!("North America"),
        ),
        (
            "Supervisor EID -> manager.value (the manager's SCIM id)",
            e["manager"]["value"].clone(),
            manager_id.clone(),
        ),
        (
            "Work Phone + Work Ext. -> work phone",
            typed("phoneNumbers", "work")["value"].clone(),
            json!("+1 801-555-0100;ext=123"),
        ),
        (
            "Mobile Phone -> mobile phone",
            typed("phoneNumbers", "mobile")["value"].clone(),
            json!("+1 801-555-0101"),
        ),
        (
            "Home Phone -> home phone",
            typed("phoneNumbers", "home")["value"].clone(),
            json!("+1 801-555-0102"),
        ),
        (
            "Location Street 1 and 2 -> work streetAddress",
            typed("addresses", "work")["streetAddress"].clone(),
            json!("335 S 560 W\nSuite 100"),
        ),
        (
            "Location City -> work locality",
            typed("addresses", "work")["locality"].clone(),
            json!("Lindon"),
        ),
        (
            "Location State -> work region",
            typed("addresses", "work")["region"].clone(),
            json!("UT"),
        ),
        (
            "Location ZIP -> work postalCode",
            typed("addresses", "work")["postalCode"].clone(),
            json!("84042"),
        ),
        (
            "Location Country -> work country (ISO)",
            typed("addresses", "work")["country"].clone(),
            json!("US"),
        ),
        (
            "Address Line 1 and 2 -> home streetAddress",
            typed("addresses", "home")["streetAddress"].clone(),
            json!("12 St James's Sq\nFlat 2"),
        ),
        (
            "City -> home locality",
            typed("addresses", "home")["locality"].clone(),
            json!("London"),
        ),
        (
            "Zip Code -> home postalCode",
            typed("addresses", "home")["postalCode"].clone(),
            json!("SW1Y 4LB"),
        ),
        (
            "Country -> home country (ISO)",
            typed("addresses", "home")["country"].clone(),
            json!("GB"),
        ),
    ];
    let wrong: Vec<String> = rows
        .iter()
        .filter(|(_, got, want)| got != want)
        .map(|(row, got, want)| format!("{row}: got {got}, want {want}"))
        .collect();
    assert!(wrong.is_empty(), "rows that differ:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn given_name_is_the_first_name_and_the_preferred_name_shows_only_in_display_name() {
    let h = scim_harness(ScimConfig::default()).await;
    let mut amelie = employee(&h.dir, "101", "Amélie", "Lovelace");
    amelie.preferred_name = Some("Ami".into());
    h.deliver(amelie).await;
    let a = h.only_account().await;
    assert_eq!(a["name"]["givenName"], "Amélie");
    assert_eq!(a["displayName"], "Ami Lovelace");
}

#[tokio::test]
async fn with_the_preferred_name_source_given_name_is_the_preferred_name() {
    let h = scim_harness(ScimConfig {
        name_source: domain::ScimNameSource::Preferred,
        ..ScimConfig::default()
    })
    .await;
    let mut amelie = employee(&h.dir, "101", "Amélie", "Lovelace");
    amelie.preferred_name = Some("Ami".into());
    h.deliver(amelie).await;
    assert_eq!(h.only_account().await["name"]["givenName"], "Ami");
}

fn with_addresses(h: &ScimHarness, home_country: &str, work_country: &str) -> DirectoryUser {
    let mut u = employee(&h.dir, "102", "Alan", "Turing");
    u.home_address = Some(Address {
        line1: Some("1 High St".into()),
        city: Some("Wilmslow".into()),
        postal_code: Some("SK9 1AA".into()),
        country: Some(home_country.into()),
        ..Address::default()
    });
    u.work_address = Some(Address {
        city: Some("New York".into()),
        region: Some("NY".into()),
        postal_code: Some("10001".into()),
        country: Some(work_country.into()),
        ..Address::default()
    });
    u
}

#[tokio::test]
async fn bamboohr_country_names_arrive_as_iso_3166_alpha_2_codes() {
    let h = scim_harness(ScimConfig::default()).await;
    h.deliver(with_addresses(&h, "United Kingdom", "United States"))
        .await;
    let a = h.only_account().await;
    assert_eq!(a["addresses"][0]["type"], "work");
    assert_eq!(a["addresses"][0]["country"], "US");
    assert_eq!(a["addresses"][1]["type"], "home");
    assert_eq!(a["addresses"][1]["country"], "GB");
}

#[tokio::test]
async fn an_unknown_country_is_left_out_and_the_rest_of_the_address_is_kept() {
    let h = scim_harness(ScimConfig::default()).await;
    h.deliver(with_addresses(&h, "Atlantis", "United States"))
        .await;
    let home = h.only_account().await["addresses"][1].clone();
    assert_eq!(home["type"], "home");
    assert_eq!(home["locality"], "Wilmslow");
    assert_eq!(home["postalCode"], "SK9 1AA");
    assert!(home.get("country").is_none(), "{home}");
}

#[tokio::test]
async fn a_targets_country_override_maps_a_name_the_iso_table_does_not_know() {
    let mut config = ScimConfig::default();
    config.country_codes.insert("UK".into(), "GB".into());
    let h = scim_harness(config).await;
    h.deliver(with_addresses(&h, "UK", "United States")).await;
    assert_eq!(h.only_account().await["addresses"][1]["country"], "GB");
}

#[tokio::test]
async fn a_work_phone_with_an_extension_arrives_with_ext_123() {
    let h = scim_harness(ScimConfig::default()).await;
    let mut u = employee(&h.dir, "103", "Grace", "Hopper");
    u.phones = vec![Phone {
        value: "+1 555 0100".into(),
        kind: PhoneKind::Work,
        extension: Some("123".into()),
    }];
    h.deliver(u).await;
    assert_eq!(
        h.only_account().await["phoneNumbers"],
        json!([{"value": "+1 555 0100;ext=123", "type": "work"}])
    );
}

#[tokio::test]
async fn the_location_address_arrives_as_the_work_address_and_the_home_address_as_home() {
    let h = scim_harness(ScimConfig::default()).await;
    let u = from_webhook(
        &h,
        "104",
        json!({
            "First Name": "Katherine", "Last Name": "Johnson",
            "Work Email": "katherine.johnson@acme.test", "Status": "Active",
            "Location Street 1": "1 Yonge St", "Location City": "Toronto",
            "Location State": "ON", "Location ZIP": "M5E 1E5", "Location Country": "Canada",
            "Address Line 1": "22 Queen St", "City": "Toronto", "Country": "Canada",
        }),
    );
    h.deliver(u).await;
    let addresses = h.only_account().await["addresses"].clone();
    assert_eq!(
        addresses[0],
        json!({"type": "work", "streetAddress": "1 Yonge St", "locality": "Toronto",
               "region": "ON", "postalCode": "M5E 1E5", "country": "CA"})
    );
    assert_eq!(
        addresses[1],
        json!({"type": "home", "streetAddress": "22 Queen St", "locality": "Toronto",
               "country": "CA"})
    );
}
