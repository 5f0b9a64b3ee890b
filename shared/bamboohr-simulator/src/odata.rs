//! The subset of datasets v2's OData-style `filter` the simulator evaluates: comparisons
//! `field eq|ne 'text'` and `field in ('a','b')`, joined by `and`. Anything else (`or`,
//! parentheses around clauses, `lt`/`gt`, numbers) is refused as unsupported rather than
//! guessed at, so a test never passes on a filter the simulator misread.

/// One clause of a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Clause {
    /// `field eq 'v'` (`negate`: `ne`).
    Eq {
        field: String,
        value: String,
        negate: bool,
    },
    /// `field in ('a', 'b')`.
    In { field: String, values: Vec<String> },
}

impl Clause {
    /// The dataset field name the clause tests.
    pub(crate) fn field(&self) -> &str {
        match self {
            Clause::Eq { field, .. } | Clause::In { field, .. } => field,
        }
    }

    /// Whether `value` (the employee's value of the field; `None` when blank) passes.
    pub(crate) fn accepts(&self, value: Option<&str>) -> bool {
        match self {
            Clause::Eq {
                value: want,
                negate,
                ..
            } => (value == Some(want.as_str())) != *negate,
            Clause::In { values, .. } => value.is_some_and(|v| values.iter().any(|w| w == v)),
        }
    }
}

/// A quoted string at the start of `text`: its value (`''` is an escaped quote) and the
/// rest.
fn quoted(text: &str) -> Option<(String, &str)> {
    let mut rest = text.trim_start().strip_prefix('\'')?;
    let mut out = String::new();
    loop {
        let end = rest.find('\'')?;
        out.push_str(&rest[..end]);
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix('\'') {
            out.push('\'');
            rest = after;
        } else {
            return Some((out, rest));
        }
    }
}

fn clause(text: &str) -> Option<Clause> {
    let text = text.trim();
    let (field, rest) = text.split_once(char::is_whitespace)?;
    if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let rest = rest.trim_start();
    let (op, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    match op {
        "eq" | "ne" => {
            let (value, tail) = quoted(rest)?;
            tail.trim().is_empty().then(|| Clause::Eq {
                field: field.to_string(),
                value,
                negate: op == "ne",
            })
        }
        "in" => {
            let mut inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
            let mut values = Vec::new();
            loop {
                let (v, tail) = quoted(inner)?;
                values.push(v);
                let tail = tail.trim_start();
                if tail.is_empty() {
                    break;
                }
                inner = tail.strip_prefix(',')?;
            }
            Some(Clause::In {
                field: field.to_string(),
                values,
            })
        }
        _ => None,
    }
}

/// Parses a filter into clauses that must all hold; `None` when it is outside the subset.
pub(crate) fn parse(filter: &str) -> Option<Vec<Clause>> {
    let mut clauses = Vec::new();
    let mut rest = filter.trim();
    // Split on ` and ` outside quotes.
    while !rest.is_empty() {
        let mut in_quote = false;
        let mut cut = None;
        let bytes = rest.as_bytes();
        for i in 0..bytes.len() {
            match bytes[i] {
                b'\'' => in_quote = !in_quote,
                b' ' if !in_quote && rest[i..].starts_with(" and ") => {
                    cut = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let (head, tail) = match cut {
            Some(i) => (&rest[..i], &rest[i + 5..]),
            None => (rest, ""),
        };
        if head.contains(" or ") && !head.contains('\'') {
            return None;
        }
        clauses.push(clause(head)?);
        rest = tail.trim();
    }
    (!clauses.is_empty()).then_some(clauses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eq_ne_and_in_joined_by_and_are_understood() {
        let c = parse("status eq 'Active' and department in ('Sales', 'R''D')").unwrap();
        assert_eq!(c.len(), 2);
        assert!(c[0].accepts(Some("Active")));
        assert!(!c[0].accepts(None));
        assert!(c[1].accepts(Some("R'D")));
        assert!(!c[1].accepts(Some("Ops")));
        let ne = parse("location ne 'Remote and Home'").unwrap();
        assert_eq!(ne.len(), 1, "`and` inside quotes is part of the value");
        assert!(ne[0].accepts(None));
    }

    #[test]
    fn anything_outside_the_subset_is_refused() {
        for f in [
            "status eq 'A' or status eq 'B'",
            "hireDate gt '2020-01-01'",
            "(status eq 'A')",
            "status eq Active",
            "",
        ] {
            assert!(parse(f).is_none(), "{f}");
        }
    }
}
