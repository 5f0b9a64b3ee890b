//! Publishing change events in batch calls, shared by [`crate::EventBridgeBus`]
//! (PutEvents) and [`crate::SqsChangeNotices`] (SendMessageBatch): both pack entries in
//! order into calls bounded by a count and a byte size, retry only the entries the
//! service refused for its own reasons (with jittered backoff, a bounded number of
//! times), and report every event published, refused for now or rejected for good.
//! What differs, the call and how its answer names each entry's fate, is the caller's
//! closure.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use domain::{ChangeEvent, EventId};
use ports::{BusError, PublishOutcome};

/// One event ready to send: its service entry and the bytes it counts for.
pub(crate) struct Prepared<'a, E> {
    /// The event's id.
    pub(crate) id: &'a EventId,
    /// The service's request entry.
    pub(crate) entry: E,
    /// Its size as the service counts it.
    pub(crate) size: usize,
}

/// What the service answered for one entry of a call.
pub(crate) enum EntryAnswer {
    /// Accepted.
    Accepted,
    /// Refused in a way another attempt may fix (retried while attempts remain).
    Retryable(String),
    /// Refused for now, not worth retrying within this publish (the outbox keeps it).
    Failed(String),
    /// Refused for good: the event itself is at fault (the outbox quarantines it).
    Rejected(String),
}

/// Limits of one batch call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Entries per call.
    pub(crate) entries: usize,
    /// Bytes per call, entries together.
    pub(crate) bytes: usize,
    /// Extra attempts for entries answered [`EntryAnswer::Retryable`].
    pub(crate) retries: u32,
}

/// Packs entries in order into calls within `limits`.
pub(crate) fn pack<E>(prepared: Vec<Prepared<'_, E>>, limits: Limits) -> Vec<Vec<Prepared<'_, E>>> {
    let mut batches: Vec<Vec<Prepared<'_, E>>> = Vec::new();
    let mut bytes = 0;
    for p in prepared {
        let fits = batches
            .last()
            .is_some_and(|b| b.len() < limits.entries && bytes + p.size <= limits.bytes);
        if !fits {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes += p.size;
        batches.last_mut().expect("a batch was just pushed").push(p);
    }
    batches
}

/// Sends `prepared` (entries of `events`) in packed calls, adding each event's fate to
/// `outcome`. `call` makes one call with the given entries and answers one
/// [`EntryAnswer`] per entry, in order, or the reason the call failed as a whole.
/// A publish whose very first call fails is unavailable; once something went out, a
/// failing call leaves it and every later event refused for now, so nothing is lost.
pub(crate) async fn send_all<'a, E, F, Fut>(
    events: &[ChangeEvent],
    prepared: Vec<Prepared<'a, E>>,
    limits: Limits,
    outcome: &mut PublishOutcome,
    mut call: F,
) -> Result<(), BusError>
where
    E: Clone,
    F: FnMut(Vec<E>) -> Fut,
    Fut: Future<Output = Result<Vec<EntryAnswer>, String>>,
{
    for batch in pack(prepared, limits) {
        if let Err(reason) = send_batch(batch, limits, outcome, &mut call).await {
            if outcome.published.is_empty() {
                return Err(BusError::Unavailable { reason });
            }
            let accounted: HashSet<&EventId> = outcome
                .published
                .iter()
                .chain(outcome.failed.iter().map(|(id, _)| id))
                .chain(outcome.rejected.iter().map(|(id, _)| id))
                .collect();
            let rest: Vec<(EventId, String)> = events
                .iter()
                .filter(|e| !accounted.contains(&e.id))
                .map(|e| (e.id.clone(), reason.clone()))
                .collect();
            outcome.failed.extend(rest);
            break;
        }
    }
    Ok(())
}

/// Sends one packed batch, retrying entries answered retryable. `Err` only when the
/// very first call fails as a whole (nothing of the batch is known to be published).
async fn send_batch<E, F, Fut>(
    batch: Vec<Prepared<'_, E>>,
    limits: Limits,
    outcome: &mut PublishOutcome,
    call: &mut F,
) -> Result<(), String>
where
    E: Clone,
    F: FnMut(Vec<E>) -> Fut,
    Fut: Future<Output = Result<Vec<EntryAnswer>, String>>,
{
    let mut pending = batch;
    let mut attempt = 0;
    while !pending.is_empty() {
        if attempt > 0 {
            let wait =
                retry_timing::jittered(attempt, Duration::from_millis(100), Duration::from_secs(2));
            tokio::time::sleep(wait).await;
        }
        let answers = match call(pending.iter().map(|p| p.entry.clone()).collect()).await {
            Ok(answers) => answers,
            Err(reason) if attempt == 0 => return Err(reason),
            Err(reason) => {
                outcome
                    .failed
                    .extend(pending.iter().map(|p| (p.id.clone(), reason.clone())));
                return Ok(());
            }
        };
        let mut answers = answers.into_iter();
        let mut retry = Vec::new();
        for p in pending {
            match answers.next() {
                Some(EntryAnswer::Accepted) => outcome.published.push(p.id.clone()),
                Some(EntryAnswer::Retryable(_)) if attempt < limits.retries => retry.push(p),
                Some(EntryAnswer::Retryable(reason) | EntryAnswer::Failed(reason)) => {
                    outcome.failed.push((p.id.clone(), reason))
                }
                Some(EntryAnswer::Rejected(reason)) => {
                    outcome.rejected.push((p.id.clone(), reason))
                }
                None => outcome.failed.push((
                    p.id.clone(),
                    "the service returned no result for the entry".into(),
                )),
            }
        }
        if !retry.is_empty() {
            tracing::debug!(count = retry.len(), attempt, "retrying refused entries");
        }
        pending = retry;
        attempt += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{DirectoryId, EventType};

    fn id(i: usize) -> EventId {
        ChangeEvent::new(
            EventType::UserUpdated,
            DirectoryId::parse("acme").unwrap(),
            format!("u{i}"),
            1,
            time::OffsetDateTime::UNIX_EPOCH,
            serde_json::json!({}),
        )
        .id
    }

    #[test]
    fn batches_respect_the_count_and_byte_limits() {
        let limits = Limits {
            entries: 10,
            bytes: 256 * 1024,
            retries: 3,
        };
        let ids: Vec<EventId> = (0..25).map(id).collect();
        let small = |i: usize| Prepared {
            id: &ids[i],
            entry: (),
            size: 100,
        };
        let sizes: Vec<usize> = pack((0..25).map(small).collect(), limits)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [10, 10, 5]);

        let big = |i: usize| Prepared {
            id: &ids[i],
            entry: (),
            size: 100 * 1024,
        };
        let sizes: Vec<usize> = pack((0..5).map(big).collect(), limits)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [2, 2, 1]);
    }
}
