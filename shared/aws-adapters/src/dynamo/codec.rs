//! Values in and out of DynamoDB items: attribute builders and readers, expression
//! attribute names, the JSON kept in `data`, and the items of users and outbox events
//! (the two the store and the group writes share).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::{ChangeEvent, DirectoryId, DirectoryUser};
use ports::{Lifecycle, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use super::keys::{
    dir_pk, fp_pk, key, outbox_sk, user_sk, DATA, FP, GSI1PK, GSI1SK, LIFECYCLE, SEQ, STATE,
    VERSION,
};
pub(crate) use super::keys::{s, Item};

pub(crate) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A time as unix nanoseconds: leases and refresh stamps compare at full precision.
pub(crate) fn nanos_attr(at: OffsetDateTime) -> AttributeValue {
    AttributeValue::N(at.unix_timestamp_nanos().to_string())
}

/// A time as unix seconds, the unit DynamoDB's TTL reads.
pub(crate) fn seconds_attr(at: OffsetDateTime) -> AttributeValue {
    AttributeValue::N(at.unix_timestamp().to_string())
}

/// Expression attribute names from `(placeholder, name)` pairs.
pub(crate) fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every projection here names attributes through `#placeholders` equal to the
/// attribute name, so reserved words (`data`, `state`) never clash.
pub(crate) fn projection_names(projection: &str) -> Option<HashMap<String, String>> {
    let map: HashMap<String, String> = projection
        .split(',')
        .map(str::trim)
        .filter_map(|p| p.strip_prefix('#'))
        .map(|name| (format!("#{name}"), name.to_string()))
        .collect();
    (!map.is_empty()).then_some(map)
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(crate) fn get_n(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

pub(crate) fn corrupt(what: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what: what.to_string(),
        reason: reason.into(),
    }
}

/// The value kept as JSON in an item's `data`.
pub(crate) fn decode<T: DeserializeOwned>(item: &Item, what: &str) -> Result<T, StoreError> {
    let json = get_s(item, DATA).ok_or_else(|| corrupt(what, "no `data` attribute"))?;
    serde_json::from_str(json).map_err(|e| {
        // serde's message can quote stored values; keep only the position.
        corrupt(
            what,
            format!(
                "`data` is not the expected JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

pub(crate) fn encode<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| corrupt(what, format!("cannot serialize: {e}")))
}

/// The item of a user: its JSON, and the attributes the fingerprint index projects.
pub(crate) fn user_item(user: &DirectoryUser) -> Result<Item, StoreError> {
    let dir = &user.directory_id;
    let emp = &user.employee_id;
    let mut item = key(dir_pk(dir), user_sk(emp));
    item.insert(DATA.into(), s(encode(user, &format!("user {dir}/{emp}"))?));
    item.insert(VERSION.into(), n(user.version));
    item.insert(FP.into(), s(user.fingerprint.as_str()));
    item.insert(STATE.into(), s(user.state.as_str()));
    item.insert(LIFECYCLE.into(), s(Lifecycle::of(user).to_compact()));
    item.insert(GSI1PK.into(), s(fp_pk(dir)));
    item.insert(GSI1SK.into(), s(emp.as_str()));
    Ok(item)
}

/// The outbox item of an event at write sequence `seq`.
pub(crate) fn outbox_item(
    dir: &DirectoryId,
    event: &ChangeEvent,
    seq: u64,
) -> Result<Item, StoreError> {
    let mut item = key(dir_pk(dir), outbox_sk(&event.id));
    item.insert(
        DATA.into(),
        s(encode(event, &format!("event {}", event.id))?),
    );
    item.insert(SEQ.into(), n(seq));
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::UserState;

    #[test]
    fn projection_placeholders_name_their_attributes() {
        let m = projection_names("#gsi1sk, #version, #fp").unwrap();
        assert_eq!(m["#version"], "version");
        assert_eq!(m.len(), 3);
        assert!(projection_names("plain").is_none());
    }

    #[test]
    fn states_round_trip_through_their_stored_names() {
        for st in [
            UserState::Pending,
            UserState::Active,
            UserState::Inactive,
            UserState::Deleted,
        ] {
            assert_eq!(UserState::from_name(st.as_str()), Some(st));
        }
        assert_eq!(UserState::from_name("gone"), None);
    }
}
