//! Unit tests of the API surface's parsers: cursors, `since`, sort rules and Retry-After.

use super::*;
use crate::faults::RetryAfter;

#[test]
fn a_cursor_round_trips_and_looks_like_bamboohrs() {
    let c = encode_cursor("124");
    assert_eq!(c, "eyJjdXJzb3IiOiJhZnRlci0xMjQifQ==");
    assert_eq!(decode_cursor(&c), Some(124));
    assert_eq!(decode_cursor("garbage"), None);
}

#[test]
fn since_accepts_rfc3339_and_a_bare_utc_time() {
    assert!(parse_since("2026-01-02T03:04:05Z").is_some());
    assert!(parse_since("2026-01-02T03:04:05+00:00").is_some());
    assert!(parse_since("2026-01-02T03:04:05").is_some());
    assert!(parse_since("yesterday").is_none());
}

#[test]
fn sort_rules_accept_only_the_documented_fields() {
    let rules = parse_sort("lastName,-employeeId").unwrap();
    assert_eq!(rules.len(), 2);
    assert!(rules[1].descending);
    assert!(parse_sort("workEmail").is_none());
}

#[test]
fn an_http_date_retry_after_is_an_imf_fixdate() {
    let v = retry_after_value(RetryAfter::HttpDateIn(30)).unwrap();
    let text = v.to_str().unwrap();
    assert!(text.ends_with(" GMT"), "{text}");
    assert_eq!(text.len(), "Sun, 06 Nov 1994 08:49:37 GMT".len());
}
