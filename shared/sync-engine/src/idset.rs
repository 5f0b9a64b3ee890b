//! A compact set of employee ids for checkpoints: BambooHR ids are mostly dense
//! integers, so they are kept as ranges (`1-5000,5002`), and a 100,000-employee run's
//! "seen" set stays a few bytes to a few kilobytes instead of hundreds.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A set of employee ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct IdSet {
    /// start -> end (inclusive), non-overlapping and non-adjacent.
    ranges: BTreeMap<u64, u64>,
    /// Ids that are not plain decimal numbers (or have leading zeros).
    other: BTreeSet<String>,
    len: usize,
}

fn numeric(id: &str) -> Option<u64> {
    let plain = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    plain.then(|| id.parse().ok()).flatten()
}

impl IdSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many ids.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: &str) -> bool {
        match numeric(id) {
            Some(n) => self
                .ranges
                .range(..=n)
                .next_back()
                .is_some_and(|(_, end)| n <= *end),
            None => self.other.contains(id),
        }
    }

    /// Adds `id`; true when it was new.
    pub fn insert(&mut self, id: &str) -> bool {
        let Some(n) = numeric(id) else {
            let new = self.other.insert(id.to_string());
            self.len += usize::from(new);
            return new;
        };
        if self.contains(id) {
            return false;
        }
        let mut start = n;
        let mut end = n;
        if let Some((s, e)) = self.ranges.range(..n).next_back().map(|(s, e)| (*s, *e)) {
            if e + 1 == n {
                start = s;
                self.ranges.remove(&s);
            }
        }
        if let Some(e) = n.checked_add(1).and_then(|next| self.ranges.remove(&next)) {
            end = e;
        }
        self.ranges.insert(start, end);
        self.len += 1;
        true
    }

    /// Every id, numeric ones in numeric order first.
    pub fn iter(&self) -> impl Iterator<Item = String> + '_ {
        self.ranges
            .iter()
            .flat_map(|(s, e)| (*s..=*e).map(|n| n.to_string()))
            .chain(self.other.iter().cloned())
    }
}

impl From<IdSet> for String {
    fn from(set: IdSet) -> Self {
        let mut parts: Vec<String> = set
            .ranges
            .iter()
            .map(|(s, e)| {
                if s == e {
                    s.to_string()
                } else {
                    format!("{s}-{e}")
                }
            })
            .collect();
        // Other ids are quoted so commas and dashes in them cannot be misread.
        parts.extend(
            set.other
                .iter()
                .map(|o| serde_json::to_string(o).expect("a string serializes")),
        );
        parts.join(",")
    }
}

impl TryFrom<String> for IdSet {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        let mut set = IdSet::new();
        let mut rest = text.as_str();
        while !rest.is_empty() {
            if rest.starts_with('"') {
                let mut de = serde_json::Deserializer::from_str(rest).into_iter::<String>();
                let id = de
                    .next()
                    .ok_or("unterminated id")?
                    .map_err(|e| e.to_string())?;
                rest = &rest[de.byte_offset()..];
                set.insert(&id);
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                let part = &rest[..end];
                rest = &rest[end..];
                let (a, b) = part.split_once('-').unwrap_or((part, part));
                let a: u64 = a.parse().map_err(|_| format!("bad range {part:?}"))?;
                let b: u64 = b.parse().map_err(|_| format!("bad range {part:?}"))?;
                if b < a {
                    return Err(format!("bad range {part:?}"));
                }
                for n in a..=b {
                    set.insert(&n.to_string());
                }
            }
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_numeric_ids_collapse_into_ranges() {
        let mut set = IdSet::new();
        for n in (1..=1000).rev() {
            set.insert(&n.to_string());
        }
        set.insert("1002");
        set.insert("007");
        set.insert("a,b-\"c");
        assert!(!set.insert("500"));
        assert_eq!(set.len(), 1003);
        assert!(set.contains("500") && set.contains("007") && !set.contains("1001"));
        let text: String = set.clone().into();
        assert!(text.starts_with("1-1000,1002,"), "{text}");
        let back = IdSet::try_from(text).unwrap();
        assert_eq!(back, set);
        assert_eq!(back.iter().count(), 1003);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(IdSet::try_from("5-1".to_string()).is_err());
        assert!(IdSet::try_from("x".to_string()).is_err());
        assert!(IdSet::try_from("\"open".to_string()).is_err());
    }
}
