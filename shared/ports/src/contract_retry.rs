//! Contract checks of [`crate::RetryQueue`]: the dead-letter side (letters, their
//! depth), which both adapter families (SQS, in-process) expose in full. (Scheduled retries are consumed by the queue's
//! event source on AWS and by the local loop in-process, so they are checked by the
//! dispatcher's own tests.)

use domain::{ChangeEvent, DirectoryId, EventType, TargetId};
use time::OffsetDateTime;

use crate::retry_queue::{DeadLetter, RetryQueue, RetryTask};

fn letter(target: &str, object: &str) -> DeadLetter {
    letter_of("contract", target, object)
}

fn letter_of(directory: &str, target: &str, object: &str) -> DeadLetter {
    let dir = DirectoryId::parse(directory).expect("valid id");
    let at = OffsetDateTime::from_unix_timestamp(1_790_000_000).expect("valid timestamp");
    DeadLetter {
        task: RetryTask {
            target_id: TargetId::parse(target).expect("valid id"),
            event: ChangeEvent::new(
                EventType::UserUpdated,
                dir,
                object,
                3,
                at,
                serde_json::json!({"employeeId": "7"}),
            ),
            retries: 10,
            due_at: at,
            first_failed_at: at,
            last_error: "POST: HTTP 503".into(),
            force: false,
        },
        reason: "11 attempts failed over 75 hours".into(),
    }
}

/// Dead letters come back whole until acknowledged, and acknowledging removes them.
pub async fn dead_letters_round_trip_until_acknowledged(queue: &dyn RetryQueue) {
    let a = letter("app", "usr_1");
    let b = letter("lms", "usr_2");
    queue.dead_letter(&a).await.unwrap();
    queue.dead_letter(&b).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..5 {
        got.extend(queue.receive_dead_letters(10).await.unwrap());
        if got.len() >= 2 {
            break;
        }
    }
    let mut letters: Vec<DeadLetter> = got.iter().map(|r| r.letter.clone()).collect();
    letters.sort_by(|x, y| x.task.target_id.cmp(&y.task.target_id));
    assert_eq!(letters, vec![a, b], "both dead letters, unchanged");
    let receipts: Vec<String> = got.into_iter().map(|r| r.receipt).collect();
    queue.ack_dead_letters(&receipts).await.unwrap();
    assert!(
        queue.receive_dead_letters(10).await.unwrap().is_empty(),
        "acknowledged dead letters are gone"
    );
}

/// The depth counts the dead letters waiting: none on a fresh queue, each one parked,
/// none once they are acknowledged. (Between a receive and its acknowledgement SQS
/// hides the letters and the in-process queue still counts them, so that moment is
/// not checked.)
pub async fn dead_letter_depth_counts_letters_until_acknowledged(queue: &dyn RetryQueue) {
    assert_eq!(
        queue.dead_letter_depth().await.unwrap(),
        0,
        "a fresh queue has no dead letters"
    );
    queue.dead_letter(&letter("app", "usr_1")).await.unwrap();
    queue.dead_letter(&letter("lms", "usr_2")).await.unwrap();
    assert_eq!(
        queue.dead_letter_depth().await.unwrap(),
        2,
        "each dead letter counts"
    );
    let mut receipts = Vec::new();
    for _ in 0..5 {
        receipts.extend(
            queue
                .receive_dead_letters(10)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.receipt),
        );
        if receipts.len() >= 2 {
            break;
        }
    }
    queue.ack_dead_letters(&receipts).await.unwrap();
    assert_eq!(
        queue.dead_letter_depth().await.unwrap(),
        0,
        "acknowledged dead letters no longer count"
    );
}

/// A re-drive scoped to one directory takes only its letters; the others stay in the
/// queue for a later receive.
pub async fn dead_letters_of_one_directory_leave_the_others(queue: &dyn RetryQueue) {
    let mine = [
        letter_of("acme", "app", "usr_1"),
        letter_of("acme", "app", "usr_2"),
    ];
    let theirs = [
        letter_of("globex", "app", "usr_3"),
        letter_of("globex", "lms", "usr_4"),
    ];
    for l in theirs.iter().chain(&mine) {
        queue.dead_letter(l).await.unwrap();
    }
    let acme = DirectoryId::parse("acme").unwrap();
    let got = queue.receive_dead_letters_of(&acme, 10).await.unwrap();
    let mut objects: Vec<&str> = got
        .iter()
        .map(|r| r.letter.task.event.object_id.as_str())
        .collect();
    objects.sort();
    assert_eq!(objects, ["usr_1", "usr_2"], "only acme's letters");
    let receipts: Vec<String> = got.iter().map(|r| r.receipt.clone()).collect();
    queue.ack_dead_letters(&receipts).await.unwrap();
    assert!(queue
        .receive_dead_letters_of(&acme, 10)
        .await
        .unwrap()
        .is_empty());
    let mut rest = Vec::new();
    for _ in 0..5 {
        rest.extend(queue.receive_dead_letters(10).await.unwrap());
        if rest.len() >= 2 {
            break;
        }
    }
    let mut objects: Vec<String> = rest
        .iter()
        .map(|r| r.letter.task.event.object_id.clone())
        .collect();
    objects.sort();
    assert_eq!(objects, ["usr_3", "usr_4"], "globex's letters stay");
}

/// A change message set aside counts as a dead letter, and stays out of the delivery
/// letters a re-drive takes (it is no retry task).
pub async fn set_aside_changes_count_and_stay_out_of_the_delivery_letters(queue: &dyn RetryQueue) {
    let before = queue.dead_letter_depth().await.unwrap();
    queue
        .dead_letter_change(&crate::ChangeDeadLetter {
            message_id: "msg-poison-1".into(),
            group: Some("acme.3".into()),
            body: "{not json".into(),
            reason: "unreadable: line 1, column 2".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        queue.dead_letter_depth().await.unwrap(),
        before + 1,
        "a set-aside change counts as a dead letter"
    );
    let letters = queue.receive_dead_letters(10).await.unwrap();
    assert!(
        letters.is_empty(),
        "a set-aside change is not a delivery letter: {letters:?}"
    );
}
