//! Whole-system checks that belong to no single crate (issue 8), each in `tests/`:
//! - `fuzz_*`: property-based fuzzing of every parser of outside input (BambooHR and
//!   SCIM answers, SQS messages, poller payloads, secrets and store files, signature
//!   headers), reached through each crate's public API as production reaches it;
//! - `no_secrets_in_logs`: the main flows on moto and the Python peers with every log
//!   line captured at TRACE, searched for seeded secrets and HR values.
//!
//! The library holds what the fuzz suites share. Case counts: proptest's default of 256 cases per
//! property (CI); `PROPTEST_CASES=100000 cargo test -p hardening` for a long run.

use serde_json::Value;

/// Every JSON Pointer (RFC 6901) of `doc`, the root (`""`) first, parents before their
/// children: the places a near-valid document can have a part replaced or removed.
pub fn json_pointers(doc: &Value) -> Vec<String> {
    fn walk(v: &Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    let key = k.replace('~', "~0").replace('/', "~1");
                    walk(child, format!("{at}/{key}"), out);
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    walk(child, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, String::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_name_every_node_with_escaped_keys() {
        let doc = serde_json::json!({"a/b": [1, {"c~": null}]});
        assert_eq!(
            json_pointers(&doc),
            ["", "/a~1b", "/a~1b/0", "/a~1b/1", "/a~1b/1/c~0"]
        );
    }
}
