//! The same employee, sent through each BambooHR surface, becomes the same DirectoryUser.

use std::collections::BTreeMap;

use domain::{DirectoryId, DirectoryUser, UserState};
use mapping::{apply, record_from_fields, ApplyContext, Field, FieldValue, MappingConfig};
use serde_json::{json, Value};
use time::macros::date;

fn ctx() -> ApplyContext {
    ApplyContext {
        directory_id: DirectoryId::parse("acme").unwrap(),
        today: date!(2025 - 06 - 15),
        pre_start_days: 7,
        source_timestamp: None,
        group_sources: Vec::new(),
    }
}

fn cfg() -> MappingConfig {
    MappingConfig {
        custom_field_map: BTreeMap::from([(
            "customLitmosAccess".to_string(),
            "litmosAccess".to_string(),
        )]),
        aliases: BTreeMap::from([("LMS".to_string(), "customLitmosAccess".to_string())]),
        ..MappingConfig::default()
    }
}

fn map(fields: Value, restricted: &[&str]) -> DirectoryUser {
    let restricted: Vec<String> = restricted.iter().map(|s| s.to_string()).collect();
    let record =
        record_from_fields("1234", fields.as_object().unwrap(), &restricted, &cfg()).unwrap();
    apply(None, &record, &ctx())
}

/// Everything but the raw attributes, which keep each surface's own keys.
fn mapped(mut user: DirectoryUser) -> DirectoryUser {
    user.raw_attributes.clear();
    user
}

fn employee_endpoint() -> Value {
    json!({
        "id": "1234", "employeeNumber": "E-77", "firstName": "José", "middleName": "María",
        "lastName": "Ñúñez", "preferredName": "Pepe", "workEmail": "Pepe.Nunez@acme.test",
        "homeEmail": "pepe@home.test", "workPhone": "+34 91 000 0000",
        "mobilePhone": "+34 600 000 000", "homePhone": null, "jobTitleName": "Chef",
        "departmentName": "Kitchen", "divisionName": "Spain", "locationName": "Madrid",
        "reportsToId": "88", "reportsToName": "Ana Ruiz", "address1": "Calle Mayor 1",
        "address2": "2º B", "city": "Madrid", "state": "MD", "zipcode": "28013",
        "country": "Spain", "hireDate": "2019-04-01", "terminationDate": "0000-00-00",
        "status": "Active", "employmentStatusName": "Full-Time",
        "customLitmosAccess": "Yes", "photoUrl": null,
    })
}

fn dataset() -> Value {
    json!({
        "employeeId": 1234, "employeeNumber": "E-77", "firstName": "José",
        "middleName": "María", "lastName": "Ñúñez", "preferredName": "Pepe",
        "email": "Pepe.Nunez@acme.test", "homeEmail": "pepe@home.test",
        "workPhone": "+34 91 000 0000", "mobilePhone": "+34 600 000 000", "homePhone": "",
        "jobInformationJobTitle": "Chef", "jobInformationDepartment": "Kitchen",
        "jobInformationDivision": "Spain", "jobInformationLocation": "Madrid",
        "supervisorEId": "88", "addressLineOne": "Calle Mayor 1", "addressLineTwo": "2º B",
        "city": "Madrid", "state": "MD", "zipCode": "28013", "country": "Spain",
        "hireDate": "2019-04-01", "terminationDate": null, "status": "Active",
        "employmentStatus": "Full-Time", "customLitmosAccess": true,
    })
}

fn webhook() -> Value {
    json!({
        "Employee #": "E-77", "First Name": "José", "Middle Name": "María",
        "Last Name": "Ñúñez", "Preferred Name": "Pepe", "Work Email": "Pepe.Nunez@acme.test",
        "Home Email": "pepe@home.test", "Work Phone": "+34 91 000 0000",
        "Mobile Phone": "+34 600 000 000", "Home Phone": "", "Job Title": "Chef",
        "Department": "Kitchen", "Division": "Spain", "Location": "Madrid",
        "Reporting to": "Ana Ruiz", "Supervisor EID": "88", "Address Line 1": "Calle Mayor 1",
        "Address Line 2": "2º B", "City": "Madrid", "State": "MD", "Zip Code": "28013",
        "Country": "Spain", "Hire Date": "2019-04-01", "Termination Date": "",
        "Status": "Active", "Employment Status": "Full-Time", "LMS": "Yes",
    })
}

#[test]
fn each_vocabulary_maps_to_the_same_directory_user() {
    let from_endpoint = map(employee_endpoint(), &["photoUrl"]);
    let from_dataset = map(dataset(), &[]);
    let from_webhook = map(webhook(), &[]);

    assert_eq!(from_endpoint.first_name.as_deref(), Some("José"));
    assert_eq!(from_endpoint.display_name.as_deref(), Some("Pepe Ñúñez"));
    assert_eq!(from_endpoint.work_email(), Some("Pepe.Nunez@acme.test"));
    assert_eq!(
        from_endpoint.manager_employee_id.as_ref().unwrap().as_str(),
        "88"
    );
    assert_eq!(from_endpoint.state, UserState::Active);
    assert_eq!(
        from_endpoint.custom_attributes["litmosAccess"],
        json!("Yes")
    );

    // The dataset's JSON `true` checkbox reads "Yes", as the other surfaces send it.
    assert_eq!(mapped(from_endpoint.clone()), mapped(from_webhook.clone()));
    assert_eq!(mapped(from_dataset.clone()), mapped(from_webhook.clone()));
    assert_eq!(from_endpoint.fingerprint, from_webhook.fingerprint);
    assert_eq!(from_dataset.fingerprint, from_webhook.fingerprint);
}

#[test]
fn webhook_display_names_match_with_odd_spacing_and_case() {
    let tidy = map(webhook(), &[]);
    let odd = map(
        json!({
            "employee  #": "E-77", "FIRST NAME": "José", " middle name ": "María",
            "Last Name:": "Ñúñez", "preferred\tname": "Pepe", "WORK EMAIL :": "Pepe.Nunez@acme.test",
            "home email": "pepe@home.test", "work phone": "+34 91 000 0000",
            "mobile phone": "+34 600 000 000", "HOME PHONE": "", "job title": "Chef",
            "department:": "Kitchen", "DIVISION": "Spain", "location": "Madrid",
            "reporting to": "Ana Ruiz", "supervisor eid": "88", "address line 1": "Calle Mayor 1",
            "ADDRESS LINE 2": "2º B", "city:": "Madrid", "state": "MD", "zipcode": "28013",
            "country": "Spain", "hire date": "2019-04-01", "termination date": "",
            "status": "Active", "employment status": "Full-Time", "lms": "Yes",
        }),
        &[],
    );
    assert_eq!(mapped(odd), mapped(tidy));
}

#[test]
fn a_restricted_field_keeps_the_stored_value_while_an_empty_one_clears_it() {
    let stored = map(dataset(), &[]);
    let restricted: Vec<String> = vec!["workPhone".into(), "Home Email".into()];
    let record = record_from_fields(
        "1234",
        json!({"workPhone": null, "homeEmail": null, "mobilePhone": null})
            .as_object()
            .unwrap(),
        &restricted,
        &cfg(),
    )
    .unwrap();
    assert_eq!(record.fields[&Field::WorkPhone], FieldValue::Restricted);
    assert_eq!(record.fields[&Field::HomeEmail], FieldValue::Restricted);
    assert_eq!(record.fields[&Field::MobilePhone], FieldValue::Empty);
    let after = apply(Some(&stored), &record, &ctx());
    assert_eq!(
        mapping::user_field(&after, Field::WorkPhone).as_deref(),
        Some("+34 91 000 0000")
    );
    assert_eq!(
        mapping::user_field(&after, Field::HomeEmail).as_deref(),
        Some("pepe@home.test")
    );
    assert_eq!(mapping::user_field(&after, Field::MobilePhone), None);
}

#[test]
fn a_scim_user_and_an_upsert_body_come_out_of_a_mapped_webhook() {
    let user = map(webhook(), &[]);
    let scim = mapping::to_scim_user(&user, &mapping::ScimOptions::default()).unwrap();
    assert_eq!(scim["userName"], "Pepe.Nunez");
    assert_eq!(scim["externalId"], "1234");
    assert_eq!(scim["displayName"], "Pepe Ñúñez");
    let body = mapping::to_upsert_body(&user, &[]).unwrap();
    assert_eq!(body["username"], "Pepe.Nunez@acme.test");
    assert_eq!(body["zip"], "28013");
}

#[test]
fn a_litmos_gate_on_yes_admits_the_ticked_box_from_every_surface_and_refuses_the_unticked() {
    use domain::{Target, TargetFilter, TargetId, TargetKind};
    let mut filter = TargetFilter::default();
    filter
        .field_in
        .insert("litmosAccess".into(), vec!["Yes".into()]);
    let gate = Target {
        id: TargetId::parse("lms").unwrap(),
        kind: TargetKind::app_webhook("https://lms.example/hook".into()),
        filter,
        enabled: true,
    };
    let with = |mut fields: Value, key: &str, v: Value| {
        fields[key] = v;
        map(fields, &[])
    };
    // A field-based webhook as the simulator sends it: the custom field under its
    // display name, "Litmos Access", named by the directory's field alias (the
    // `fieldAliases` setting, as the README's `--field-alias` example sets it).
    let by_display_name = |v: Value| {
        let mut fields = webhook();
        fields.as_object_mut().unwrap().remove("LMS");
        fields["Litmos Access"] = v;
        let mut config = cfg();
        config
            .aliases
            .insert("Litmos Access".into(), "customLitmosAccess".into());
        let record = record_from_fields("1234", fields.as_object().unwrap(), &[], &config).unwrap();
        apply(None, &record, &ctx())
    };
    // Ticked, as each surface sends it: the employees endpoint and a field-based
    // webhook write "Yes", a dataset JSON true.
    for user in [
        with(employee_endpoint(), "customLitmosAccess", json!("Yes")),
        with(dataset(), "customLitmosAccess", json!(true)),
        with(webhook(), "LMS", json!("Yes")),
        by_display_name(json!("Yes")),
    ] {
        assert_eq!(user.custom_attributes["litmosAccess"], json!("Yes"));
        assert!(gate.admits(&user).is_ok());
    }
    // Unticked: "No", false, or cleared.
    for user in [
        with(employee_endpoint(), "customLitmosAccess", json!("No")),
        with(dataset(), "customLitmosAccess", json!(false)),
        with(webhook(), "LMS", json!("No")),
        with(webhook(), "LMS", json!("")),
        by_display_name(json!("No")),
    ] {
        assert!(gate.admits(&user).is_err());
    }
}
