//! Unit tests of `employee.rs`.

use super::*;

#[test]
fn each_surface_has_its_own_name_for_the_job_title() {
    assert_eq!(
        Field::from_dataset_name("jobInformationJobTitle"),
        Some(Field::JobTitle)
    );
    assert_eq!(Field::from_get_name("jobTitle"), Some(Field::JobTitle));
    assert_eq!(Field::from_list_name("jobTitleName"), Some(Field::JobTitle));
    assert_eq!(Field::JobTitle.display_name(), "Job Title");
    assert_eq!(Field::from_dataset_name("jobTitle"), None);
}

#[test]
fn custom_fields_get_a_label_from_their_api_name() {
    assert_eq!(custom_display_name("customLitmosAccess"), "Litmos Access");
    let custom = ["customLitmosAccess".to_string()];
    assert_eq!(
        Field::from_display_name("Litmos Access", &custom),
        Some(Field::Custom("customLitmosAccess".into()))
    );
}

#[test]
fn an_employee_round_trips_through_json_with_plain_dates() {
    let e = SimEmployee {
        employee_id: "7".into(),
        first_name: "Zoë".into(),
        last_name: "Ng".into(),
        hire_date: parse_date("2020-02-29"),
        ..SimEmployee::default()
    };
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["hireDate"], "2020-02-29");
    assert_eq!(json["supervisorEId"], serde_json::Value::Null);
    let back: SimEmployee = serde_json::from_value(json).unwrap();
    assert_eq!(back, e);
}

/// BambooHR's OpenAPI, where the checkout has the reference material beside it.
fn openapi() -> Option<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/bamboohr/openapi.yaml");
    std::fs::read_to_string(path).ok()
}

/// The lines of one component schema (indented under it), from the OpenAPI text.
fn schema<'a>(spec: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("    {name}:");
    spec.lines()
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| l.starts_with("      ") || l.trim().is_empty())
        .collect()
}

/// The `- item` entries of a schema's first list under `key:`.
fn items<'a>(lines: &[&'a str], key: &str) -> Vec<&'a str> {
    lines
        .iter()
        .skip_while(|l| l.trim() != key)
        .skip(1)
        .take_while(|l| l.trim_start().starts_with("- "))
        .map(|l| l.trim_start().trim_start_matches("- ").trim())
        .collect()
}

#[test]
fn the_list_endpoint_knows_every_optional_field_of_the_openapi() {
    let Some(spec) = openapi() else {
        assert!(
            std::env::var("CI").is_err(),
            "BambooHR OpenAPI must be beside the checkout in CI"
        );
        return;
    };
    let optional = items(&schema(&spec, "EmployeeOptionalField"), "enum:");
    assert!(optional.len() > 20, "could not read the enum");
    let ours: Vec<&str> = LIST_OPTIONAL_FIELDS.iter().map(|(n, _)| *n).collect();
    assert_eq!(optional, ours);
}

#[test]
fn the_list_endpoint_returns_the_openapis_required_base_fields() {
    let Some(spec) = openapi() else {
        assert!(
            std::env::var("CI").is_err(),
            "BambooHR OpenAPI must be beside the checkout in CI"
        );
        return;
    };
    let required = items(
        &schema(&spec, "GetEmployeesEmployeeBaseResponse"),
        "required:",
    );
    let mut ours: Vec<&str> = vec!["employeeId"];
    ours.extend(LIST_DEFAULT_FIELDS.iter().map(|(n, _)| *n));
    ours.push("_restrictedFields");
    assert_eq!(required, ours);
}

#[test]
fn setting_a_bad_date_or_status_is_refused() {
    let mut e = SimEmployee::default();
    assert!(e.set(&Field::HireDate, Some("yesterday".into())).is_err());
    assert!(e.set(&Field::Status, Some("Gone".into())).is_err());
    assert!(e.set(&Field::Status, Some("inactive".into())).is_ok());
    assert_eq!(e.status, EmployeeStatus::Inactive);
}
