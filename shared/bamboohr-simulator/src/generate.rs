//! A deterministic, realistic company: the same seed and day give the same employees.
//!
//! The variety is what a sync must survive: several departments, divisions and locations,
//! managers forming a tree, a checkbox custom field, future hires (status Inactive), past
//! and future terminations, employees without a work email, unicode names and duplicate
//! display names.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use time::{Date, Duration, OffsetDateTime, Time};

use crate::employee::{EmployeeStatus, SimEmployee};

/// The custom checkbox field every generated employee has ("Yes"/"No").
pub const LITMOS_ACCESS: &str = "customLitmosAccess";

/// The first id handed out; ids then grow with small gaps, as real ones do.
const FIRST_ID: u64 = 101;

/// (display, ascii for emails)
const FIRST_NAMES: &[(&str, &str)] = &[
    ("Ava", "ava"),
    ("Liam", "liam"),
    ("Noah", "noah"),
    ("Emma", "emma"),
    ("Olivia", "olivia"),
    ("Mateo", "mateo"),
    ("Sofía", "sofia"),
    ("José", "jose"),
    ("Zoë", "zoe"),
    ("Søren", "soren"),
    ("Łukasz", "lukasz"),
    ("Chloé", "chloe"),
    ("Björn", "bjorn"),
    ("Ananya", "ananya"),
    ("Priya", "priya"),
    ("Wei", "wei"),
    ("Yuki", "yuki"),
    ("Hana", "hana"),
    ("Omar", "omar"),
    ("Fatima", "fatima"),
    ("Kwame", "kwame"),
    ("Amara", "amara"),
    ("Siobhán", "siobhan"),
    ("Ana-María", "ana-maria"),
    ("Grace", "grace"),
    ("Samuel", "samuel"),
    ("Lena", "lena"),
    ("Marco", "marco"),
    ("Ethan", "ethan"),
    ("Isla", "isla"),
];

const LAST_NAMES: &[(&str, &str)] = &[
    ("Nguyễn", "nguyen"),
    ("Smith", "smith"),
    ("García", "garcia"),
    ("Müller", "muller"),
    ("O'Brien", "obrien"),
    ("Dvořák", "dvorak"),
    ("Kowalski", "kowalski"),
    ("Johansson", "johansson"),
    ("Okafor", "okafor"),
    ("Tanaka", "tanaka"),
    ("Li", "li"),
    ("Patel", "patel"),
    ("Haddad", "haddad"),
    ("Rossi", "rossi"),
    ("van der Berg", "vanderberg"),
    ("Park", "park"),
    ("Lee", "lee"),
    ("Mensah", "mensah"),
    ("Fernández", "fernandez"),
    ("Brown", "brown"),
    ("Wilson", "wilson"),
    ("Søndergaard", "sondergaard"),
    ("Иванова", "ivanova"),
    ("山田", "yamada"),
];

const MIDDLE_NAMES: &[&str] = &["Marie", "James", "Lee", "Ann", "Kai", "José"];

const PREFERRED_NAMES: &[&str] = &["Sam", "Alex", "Jo", "Max", "Bea", "Kit"];

/// (department, job titles)
const DEPARTMENTS: &[(&str, &[&str])] = &[
    (
        "Engineering",
        &[
            "Software Engineer",
            "Senior Software Engineer",
            "Staff Engineer",
            "QA Analyst",
        ],
    ),
    (
        "Sales",
        &[
            "Account Executive",
            "Sales Development Rep",
            "Sales Engineer",
        ],
    ),
    (
        "Marketing",
        &["Marketing Manager", "Content Strategist", "Designer"],
    ),
    (
        "Finance",
        &["Accountant", "Financial Analyst", "Controller"],
    ),
    (
        "Human Resources",
        &["HR Generalist", "Recruiter", "People Partner"],
    ),
    (
        "Customer Success",
        &["Support Engineer", "Customer Success Manager"],
    ),
    ("Operations", &["Operations Analyst", "Office Manager"]),
];

/// (location, division, city, state, zip, country, phone prefix)
const LOCATIONS: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
    (
        "Lindon, Utah",
        "North America",
        "Lindon",
        "UT",
        "84042",
        "United States",
        "+1 801-555-",
    ),
    (
        "New York",
        "North America",
        "New York",
        "NY",
        "10001",
        "United States",
        "+1 212-555-",
    ),
    (
        "Toronto",
        "North America",
        "Toronto",
        "ON",
        "M5V 2T6",
        "Canada",
        "+1 416-555-",
    ),
    (
        "London",
        "EMEA",
        "London",
        "",
        "EC1A 1BB",
        "United Kingdom",
        "+44 20 7946 ",
    ),
    (
        "Berlin",
        "EMEA",
        "Berlin",
        "BE",
        "10115",
        "Germany",
        "+49 30 5555 ",
    ),
    (
        "Sydney",
        "APAC",
        "Sydney",
        "NSW",
        "2000",
        "Australia",
        "+61 2 5550 ",
    ),
    (
        "Remote",
        "North America",
        "Denver",
        "CO",
        "80202",
        "United States",
        "+1 303-555-",
    ),
];

const STREETS: &[&str] = &[
    "Main St",
    "Oak Ave",
    "Maple Dr",
    "High St",
    "Station Rd",
    "Elm St",
];

const EMPLOYMENT: &[&str] = &[
    "Full-Time",
    "Full-Time",
    "Full-Time",
    "Part-Time",
    "Contractor",
    "Intern",
];

/// Generates `n` employees for `seed`, with dates relative to `today`.
pub fn company(seed: u64, n: usize, today: Date) -> Vec<SimEmployee> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out: Vec<SimEmployee> = Vec::with_capacity(n);
    let mut emails: BTreeSet<String> = BTreeSet::new();
    // Roughly one manager per eight people; the first employee is the CEO.
    let managers = (n / 8).max(1);
    let mut next_id = FIRST_ID;
    for i in 0..n {
        let id = next_id;
        next_id += rng.random_range(1..=3);
        let (first, first_ascii) = *FIRST_NAMES.choose(&mut rng).expect("names");
        let (last, last_ascii) = *LAST_NAMES.choose(&mut rng).expect("names");
        let (dept, titles) = *DEPARTMENTS.choose(&mut rng).expect("departments");
        let (location, division, city, state, zip, country, phone) =
            *LOCATIONS.choose(&mut rng).expect("locations");
        let mut e = SimEmployee {
            employee_id: id.to_string(),
            employee_number: Some(format!("{:04}", i + 1)),
            first_name: first.to_string(),
            last_name: last.to_string(),
            department: Some(dept.to_string()),
            division: Some(division.to_string()),
            location: Some(location.to_string()),
            job_title: Some(if i == 0 {
                "Chief Executive Officer".to_string()
            } else if i < managers {
                format!("{dept} Manager")
            } else {
                titles.choose(&mut rng).expect("titles").to_string()
            }),
            city: Some(city.to_string()),
            state: Some(state.to_string()).filter(|s| !s.is_empty()),
            zipcode: Some(zip.to_string()),
            country: Some(country.to_string()),
            address1: Some(format!(
                "{} {}",
                rng.random_range(1..=9999),
                STREETS.choose(&mut rng).expect("streets")
            )),
            address2: rng
                .random_bool(0.2)
                .then(|| format!("Apt {}", rng.random_range(1..=40))),
            work_phone: Some(format!("{phone}{:04}", rng.random_range(0..10_000))),
            mobile_phone: rng
                .random_bool(0.7)
                .then(|| format!("{phone}{:04}", rng.random_range(0..10_000))),
            home_phone: rng
                .random_bool(0.2)
                .then(|| format!("{phone}{:04}", rng.random_range(0..10_000))),
            middle_name: rng
                .random_bool(0.25)
                .then(|| MIDDLE_NAMES.choose(&mut rng).expect("names").to_string()),
            preferred_name: rng
                .random_bool(0.15)
                .then(|| PREFERRED_NAMES.choose(&mut rng).expect("names").to_string()),
            employment_status: Some(EMPLOYMENT.choose(&mut rng).expect("statuses").to_string()),
            status: EmployeeStatus::Active,
            ..SimEmployee::default()
        };
        // A tree: every manager link points at an earlier manager, so there is no cycle.
        if i > 0 {
            let manager = rng.random_range(0..i.min(managers));
            e.supervisor_eid = Some(out[manager].employee_id.clone());
        }
        let mut local = format!("{first_ascii}.{last_ascii}");
        let mut k = 2;
        while emails.contains(&local) {
            local = format!("{first_ascii}.{last_ascii}{k}");
            k += 1;
        }
        emails.insert(local.clone());
        // A few people (contractors, warehouse staff) have no work email.
        if i == 0 || !rng.random_bool(0.04) {
            e.work_email = Some(format!("{local}@example.com"));
        }
        if rng.random_bool(0.5) {
            e.home_email = Some(format!("{local}@mail.example.net"));
        }
        let hired_days_ago = rng.random_range(30..3650);
        e.hire_date = Some(today - Duration::days(hired_days_ago));
        e.custom.insert(
            LITMOS_ACCESS.to_string(),
            if rng.random_bool(0.3) { "Yes" } else { "No" }.to_string(),
        );
        let changed_days_ago = rng.random_range(1..=hired_days_ago);
        e.last_changed = at_nine(today - Duration::days(changed_days_ago))
            + Duration::seconds(rng.random_range(0..28_800));
        out.push(e);
    }
    shape_lifecycles(&mut rng, &mut out, today);
    duplicate_display_names(&mut out);
    out
}

/// Future hires, past and future terminations, among non-managers.
fn shape_lifecycles(rng: &mut StdRng, out: &mut [SimEmployee], today: Date) {
    let n = out.len();
    if n < 4 {
        return;
    }
    let first = (n / 8).max(1);
    let pool: Vec<usize> = (first..n).collect();
    let count = |share: usize, min: usize| (n / share).max(min).min(pool.len() / 4).max(1);
    let mut picked: BTreeSet<usize> = BTreeSet::new();
    let mut pick = |rng: &mut StdRng, k: usize| -> Vec<usize> {
        let mut got = Vec::new();
        for _ in 0..k * 4 {
            if got.len() == k {
                break;
            }
            let i = *pool.choose(rng).expect("pool is non-empty");
            if picked.insert(i) {
                got.push(i);
            }
        }
        got
    };
    for i in pick(rng, count(50, 2)) {
        // Future hire: BambooHR shows status Inactive until the start date.
        let e = &mut out[i];
        e.hire_date = Some(today + Duration::days(rng.random_range(5..=60)));
        e.status = EmployeeStatus::Inactive;
        e.employment_status = Some("Full-Time".into());
        e.last_changed = at_nine(today - Duration::days(rng.random_range(1..=10)));
    }
    for i in pick(rng, count(20, 2)) {
        let e = &mut out[i];
        let hired = e.hire_date.expect("generated with a hire date");
        let span = (today - hired).whole_days().max(2);
        e.termination_date = Some(hired + Duration::days(rng.random_range(1..span)));
        e.status = EmployeeStatus::Inactive;
        e.employment_status = Some("Terminated".into());
    }
    for i in pick(rng, count(50, 1)) {
        // Resigned with notice: still Active until the date arrives.
        out[i].termination_date = Some(today + Duration::days(rng.random_range(1..=30)));
    }
}

/// Two people with the same display name (common in real companies), when there is room.
fn duplicate_display_names(out: &mut [SimEmployee]) {
    if out.len() >= 10 {
        let (first, last, preferred) = (
            out[3].first_name.clone(),
            out[3].last_name.clone(),
            out[3].preferred_name.clone(),
        );
        let twin = &mut out[7];
        twin.first_name = first;
        twin.last_name = last;
        twin.preferred_name = preferred;
    }
}

fn at_nine(d: Date) -> OffsetDateTime {
    d.with_time(Time::from_hms(9, 0, 0).expect("valid time"))
        .assume_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 06 - 15);

    #[test]
    fn the_same_seed_and_day_give_the_same_company() {
        assert_eq!(company(7, 120, TODAY), company(7, 120, TODAY));
        assert_ne!(company(7, 120, TODAY), company(8, 120, TODAY));
    }

    #[test]
    fn the_company_has_the_variety_a_sync_must_survive() {
        let c = company(42, 250, TODAY);
        assert_eq!(c.len(), 250);
        let future_hires = c
            .iter()
            .filter(|e| e.hire_date.unwrap() > TODAY && e.status == EmployeeStatus::Inactive)
            .count();
        assert!(future_hires >= 2, "future hires: {future_hires}");
        assert!(c
            .iter()
            .any(|e| e.termination_date.is_some_and(|d| d < TODAY)
                && e.status == EmployeeStatus::Inactive));
        assert!(c
            .iter()
            .any(|e| e.termination_date.is_some_and(|d| d > TODAY)
                && e.status == EmployeeStatus::Active));
        assert!(c.iter().any(|e| e.work_email.is_none()));
        assert!(c
            .iter()
            .any(|e| !e.first_name.is_ascii() || !e.last_name.is_ascii()));
        assert!(c.iter().any(|e| e.custom[LITMOS_ACCESS] == "Yes"));
        assert_eq!(c[3].display_name(), c[7].display_name());
        let departments: BTreeSet<_> = c.iter().filter_map(|e| e.department.clone()).collect();
        assert!(departments.len() >= 4);
        assert!(c.iter().all(|e| e.last_changed < at_nine(TODAY)));
    }

    #[test]
    fn managers_form_a_tree_rooted_at_the_first_employee() {
        let c = company(3, 200, TODAY);
        assert!(c[0].supervisor_eid.is_none());
        for (i, e) in c.iter().enumerate().skip(1) {
            let boss = e.supervisor_eid.as_ref().unwrap();
            let j = c.iter().position(|m| &m.employee_id == boss).unwrap();
            assert!(j < i, "manager of {i} comes later");
        }
    }

    #[test]
    fn tiny_companies_are_generated_too() {
        for n in 0..6 {
            assert_eq!(company(1, n, TODAY).len(), n);
        }
    }
}
