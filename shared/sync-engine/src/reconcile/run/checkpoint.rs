//! The saved progress of a full run, written after every page so a killed or
//! timed-out run continues where it stopped.

use std::collections::BTreeMap;

use domain::{GroupId, RunId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::reconcile::idset::IdSet;

/// The saved progress of a full run, continued by the next full run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Checkpoint {
    pub(super) run_id: RunId,
    #[serde(with = "time::serde::rfc3339")]
    pub(super) started_at: OffsetDateTime,
    /// The next datasets page to read.
    pub(super) next_page: u32,
    pub(super) page_size: u32,
    /// Employees listed so far.
    pub(super) seen: IdSet,
    /// Employees whose deactivation waits for the safeguard's verdict.
    pub(super) deferred: IdSet,
    /// Members counted per group so far.
    pub(super) members: BTreeMap<GroupId, u64>,
    pub(super) counts: domain::RunCounts,
    pub(super) skipped: Vec<domain::SkippedRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_survives_its_round_trip_through_the_store() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let mut seen = IdSet::new();
        for id in ["1", "2", "3", "x-9"] {
            seen.insert(id);
        }
        let cp = Checkpoint {
            run_id: RunId::new(at, 7),
            started_at: at,
            next_page: 2,
            page_size: 10,
            seen,
            deferred: IdSet::new(),
            members: BTreeMap::from([(GroupId::parse("grp_1").unwrap(), 3)]),
            counts: domain::RunCounts::default(),
            skipped: vec![],
        };
        let text = serde_json::to_string(&cp).unwrap();
        let back: Checkpoint = serde_json::from_str(&text).unwrap();
        assert_eq!(back.next_page, 2);
        assert_eq!(back.seen, cp.seen);
        assert_eq!(back.members, cp.members);
    }
}
