//! `GET /api/v1/employees`: list employees by cursor pages (at most 100), with
//! `filter[...]`, `sort` and `fields`, as BambooHR's OpenAPI describes it.

use std::collections::BTreeSet;

use axum::extract::{Query, State as AxState};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::api::*;
use crate::employee::{EmployeeStatus, Field, SimEmployee, LIST_DEFAULT_FIELDS};
use crate::Simulator;

fn encode_cursor(id: &str) -> String {
    STANDARD.encode(json!({ "cursor": format!("after-{id}") }).to_string())
}

fn decode_cursor(cursor: &str) -> Option<u64> {
    let raw = STANDARD.decode(cursor.trim()).ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    v.get("cursor")?
        .as_str()?
        .strip_prefix("after-")?
        .parse()
        .ok()
}

/// One `sort` rule of the list endpoint.
struct SortRule {
    field: Field,
    descending: bool,
}

fn parse_sort(text: &str) -> Option<Vec<SortRule>> {
    let allowed = [
        "employeeId",
        "firstName",
        "lastName",
        "preferredName",
        "jobTitleName",
        "status",
    ];
    text.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|rule| {
            let (descending, name) = match rule.strip_prefix('-') {
                Some(n) => (true, n),
                None => (false, rule),
            };
            allowed
                .contains(&name)
                .then(|| Field::from_list_name(name))
                .flatten()
                .map(|field| SortRule { field, descending })
        })
        .collect()
}

/// `GET /api/v1/employees`.
pub(crate) async fn list_employees(
    AxState(sim): AxState<Simulator>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let s = sim.lock();
    let max = s.cfg.page_limit_max.max(1);
    let limit = match get("page[limit]") {
        None => u64::from(max.min(50)),
        Some(l) => match l.trim().parse::<u64>() {
            Ok(l) if (1..=u64::from(max)).contains(&l) => l,
            _ => {
                return employee_error(
                    "BadRequest",
                    &format!("page[limit] must be between 1 and {max}."),
                )
            }
        },
    };
    if get("page[before]").is_some() {
        return employee_error(
            "BadPage",
            "Backward paging is not supported by the simulator.",
        );
    }
    // filter[ids][]=1&filter[ids][]=2 (documented) or filter[ids]=1,2 (legacy form).
    let mut ids: Option<BTreeSet<u64>> = None;
    for (k, v) in &params {
        if k == "filter[ids][]" || k == "filter[ids]" {
            let set = ids.get_or_insert_with(BTreeSet::new);
            for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match part.parse::<u64>() {
                    Ok(id) => {
                        set.insert(id);
                    }
                    Err(_) => {
                        return employee_error(
                            "BadRequest",
                            "filter[ids] must hold integer employee ids.",
                        )
                    }
                }
            }
        }
    }
    let status = match get("filter[status]") {
        None => None,
        Some(v) => match EmployeeStatus::parse(v) {
            Some(st) => Some(st),
            None => {
                return employee_error("BadRequest", "filter[status] must be active or inactive.")
            }
        },
    };
    let contains = |key: &str| get(key).map(|v| v.to_lowercase());
    let (first, last, title) = (
        contains("filter[firstName]"),
        contains("filter[lastName]"),
        contains("filter[jobTitleName]"),
    );
    let sort = match get("sort") {
        None => Vec::new(),
        Some(text) => match parse_sort(text) {
            Some(rules) => rules,
            None => {
                return employee_error("BadRequest", "sort names a field that cannot be sorted.")
            }
        },
    };
    let mut extra: Vec<(String, Field)> = Vec::new();
    if let Some(list) = get("fields") {
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            // Unknown names are ignored, as BambooHR documents; so are default fields.
            let is_default =
                name == "employeeId" || LIST_DEFAULT_FIELDS.iter().any(|(n, _)| *n == name);
            if let Some(field) = Field::from_list_name(name).filter(|_| !is_default) {
                if !extra.iter().any(|(n, _)| n == name) {
                    extra.push((name.to_string(), field));
                }
            }
        }
    }

    let has = |v: Option<String>, needle: &Option<String>| match needle {
        None => true,
        Some(n) => v.is_some_and(|v| v.to_lowercase().contains(n.as_str())),
    };
    let mut matched: Vec<(u64, &SimEmployee)> = s
        .employees
        .iter()
        .filter(|(id, e)| {
            !e.deleted
                && ids.as_ref().is_none_or(|set| set.contains(id))
                && status.is_none_or(|st| e.status == st)
                && has(e.value(&Field::FirstName, None), &first)
                && has(e.value(&Field::LastName, None), &last)
                && has(e.value(&Field::JobTitle, None), &title)
        })
        .map(|(id, e)| (*id, e))
        .collect();
    if !sort.is_empty() {
        matched.sort_by(|(ida, a), (idb, b)| {
            for rule in &sort {
                let (va, vb) = (a.value(&rule.field, None), b.value(&rule.field, None));
                let ord = if rule.field == Field::EmployeeId {
                    ida.cmp(idb)
                } else {
                    // Nulls first ascending (None < Some), last descending.
                    va.map(|v| v.to_lowercase())
                        .cmp(&vb.map(|v| v.to_lowercase()))
                };
                let ord = if rule.descending { ord.reverse() } else { ord };
                if ord.is_ne() {
                    return ord;
                }
            }
            ida.cmp(idb)
        });
    }
    let start = match get("page[after]") {
        None => 0,
        Some(cursor) => match decode_cursor(cursor) {
            // The boundary employee must still be in the result, as BambooHR requires.
            Some(after) => match matched.iter().position(|(id, _)| *id == after) {
                Some(i) => i + 1,
                None => {
                    return employee_error(
                        "BadPage",
                        "The page cursor no longer matches the result set.",
                    )
                }
            },
            None => return employee_error("BadPage", "The page cursor is malformed."),
        },
    };
    let page: Vec<&(u64, &SimEmployee)> = matched.iter().skip(start).take(limit as usize).collect();
    let more = start + page.len() < matched.len();
    let next_cursor = page
        .last()
        .filter(|_| more)
        .map(|(id, _)| encode_cursor(&id.to_string()));
    let data: Vec<Value> = page
        .iter()
        .map(|(_, e)| {
            let manager = s.manager_of(e);
            let mut out = Map::new();
            let mut withheld = Vec::new();
            out.insert("employeeId".into(), Value::String(e.employee_id.clone()));
            let all = LIST_DEFAULT_FIELDS
                .iter()
                .map(|(n, f)| (n.to_string(), f.clone()))
                .chain(extra.iter().cloned());
            for (name, field) in all {
                if s.restricted.contains(&field) {
                    withheld.push(Value::String(name.clone()));
                    out.insert(name, Value::Null);
                } else {
                    out.insert(name, value_or_null(e.value(&field, manager)));
                }
            }
            out.insert("_restrictedFields".into(), Value::Array(withheld));
            Value::Object(out)
        })
        .collect();

    let href = |after: Option<&str>| {
        let mut url = reqwest::Url::parse("http://sim/api/v1/employees").expect("static URL");
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params
                .iter()
                .filter(|(k, _)| k != "page[after]" && k != "page[limit]")
            {
                q.append_pair(k, v);
            }
            q.append_pair("page[limit]", &limit.to_string());
            if let Some(a) = after {
                q.append_pair("page[after]", a);
            }
        }
        format!("{}?{}", url.path(), url.query().unwrap_or_default())
    };
    let mut links = json!({ "self": { "href": href(get("page[after]")) } });
    if let Some(next) = &next_cursor {
        links["next"] = json!({ "href": href(Some(next)) });
    }
    json_response(json!({
        "data": data,
        "meta": {
            "total": matched.len(),
            "page": { "limit": limit, "nextCursor": next_cursor, "prevCursor": null },
        },
        "_links": links,
    }))
}

#[cfg(test)]
#[path = "api_list_tests.rs"]
mod tests;
