//! A compact set of employee ids for checkpoints. BambooHR ids are mostly integers
//! that are dense or have small gaps (ids freed by deleted or test employees), so
//! the text form is whichever is shorter of ranges (`1-5000,5002`) and a bitmap from
//! the smallest id (`~1:<base64>`, one bit per id value). A full run writes its
//! checkpoint after every page, so this size is paid once per page: with ids two
//! apart on average, 100,000 ids take about 33 KB as a bitmap against about 600 KB
//! as ranges, which would not even fit in one DynamoDB item.

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Marks the bitmap form: `~<first id>:<base64url bits>`.
const BITMAP: char = '~';

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

impl IdSet {
    /// The numeric ids as a bitmap text, if it is shorter than `than` bytes.
    fn bitmap_text(&self, than: usize) -> Option<String> {
        let first = *self.ranges.first_key_value()?.0;
        let last = *self.ranges.last_key_value()?.1;
        let bytes = usize::try_from((last - first) / 8 + 1).ok()?;
        // Sized before anything is allocated: sparse ids keep their ranges.
        if bytes.saturating_mul(4) / 3 + 24 >= than {
            return None;
        }
        let mut bits = vec![0u8; bytes];
        for (s, e) in &self.ranges {
            for n in *s..=*e {
                let i = (n - first) as usize;
                bits[i / 8] |= 1 << (i % 8);
            }
        }
        Some(format!("{BITMAP}{first}:{}", URL_SAFE_NO_PAD.encode(bits)))
    }
}

impl From<IdSet> for String {
    fn from(set: IdSet) -> Self {
        let ranges: Vec<String> = set
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
        let ranges = ranges.join(",");
        let mut parts = vec![set.bitmap_text(ranges.len()).unwrap_or(ranges)];
        parts.retain(|p| !p.is_empty());
        // Other ids are quoted so commas and dashes in them cannot be misread.
        parts.extend(
            set.other
                .iter()
                .map(|o| serde_json::to_string(o).expect("a string serializes")),
        );
        parts.join(",")
    }
}

/// Reads `~<first>:<bits>` at the start of `text` into `set`; returns the rest.
fn read_bitmap<'a>(text: &'a str, set: &mut IdSet) -> Result<&'a str, String> {
    let body = &text[BITMAP.len_utf8()..];
    let end = body.find(',').unwrap_or(body.len());
    let (first, bits) = body[..end].split_once(':').ok_or("bitmap without `:`")?;
    let first: u64 = first
        .parse()
        .map_err(|_| format!("bad bitmap start {first:?}"))?;
    let bits = URL_SAFE_NO_PAD
        .decode(bits)
        .map_err(|e| format!("bad bitmap: {e}"))?;
    for (byte_at, byte) in bits.iter().enumerate() {
        for bit in 0..8 {
            if byte & (1 << bit) != 0 {
                let n = first
                    .checked_add(byte_at as u64 * 8 + bit)
                    .ok_or("bitmap beyond u64")?;
                set.insert(&n.to_string());
            }
        }
    }
    Ok(&body[end..])
}

impl TryFrom<String> for IdSet {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        let mut set = IdSet::new();
        let mut rest = text.as_str();
        if rest.starts_with(BITMAP) {
            rest = read_bitmap(rest, &mut set)?;
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
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
    fn ids_with_small_gaps_take_a_bitmap_that_round_trips() {
        let mut set = IdSet::new();
        let mut n = 40_000u64;
        for i in 0..100_000u64 {
            set.insert(&n.to_string());
            n += 1 + i % 3;
        }
        set.insert("x-1,\"y");
        let text: String = set.clone().into();
        assert!(text.starts_with("~40000:"), "{}", &text[..20]);
        assert!(text.len() < 40_000, "{} bytes", text.len());
        let back = IdSet::try_from(text).unwrap();
        assert_eq!(back, set);
        assert_eq!(back.len(), 100_001);
    }

    #[test]
    fn sparse_ids_keep_their_ranges_and_an_empty_set_is_empty_text() {
        let mut set = IdSet::new();
        for n in [5u64, 1_000_000, 9_000_000_000_000] {
            set.insert(&n.to_string());
        }
        let text: String = set.clone().into();
        assert_eq!(text, "5,1000000,9000000000000");
        assert_eq!(IdSet::try_from(text).unwrap(), set);
        assert_eq!(String::from(IdSet::new()), "");
        assert_eq!(IdSet::try_from(String::new()).unwrap(), IdSet::new());
    }

    #[test]
    fn any_set_round_trips_through_its_text() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let mut set = IdSet::new();
            let mut n: u64 = rng.random_range(0..1_000);
            for _ in 0..rng.random_range(0..300) {
                set.insert(&n.to_string());
                let widest = rng.random_range(1..50u64);
                n += rng.random_range(1..=widest);
                if rng.random_bool(0.05) {
                    set.insert(&format!("e{n}"));
                }
            }
            let text: String = set.clone().into();
            assert_eq!(IdSet::try_from(text.clone()).unwrap(), set, "{text}");
        }
    }

    #[test]
    fn garbage_is_refused() {
        assert!(IdSet::try_from("~1".to_string()).is_err());
        assert!(IdSet::try_from("~x:AA".to_string()).is_err());
        assert!(IdSet::try_from("~1:!!".to_string()).is_err());
        assert!(IdSet::try_from("5-1".to_string()).is_err());
        assert!(IdSet::try_from("x".to_string()).is_err());
        assert!(IdSet::try_from("\"open".to_string()).is_err());
    }
}
