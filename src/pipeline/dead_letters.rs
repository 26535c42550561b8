//! Deliveries given up on: one bounded log for all targets (the target is in each entry's
//! metadata), readable through `/_sluice/dead-letters` and counted per target in the metrics.

use serde::Serialize;

use crate::store::{Expect, LogEntry, NewEntry, RecordKey, Store, StoreError, Write};

/// Log kind of deliveries given up on.
const DEAD_LETTERS: &str = "pipeline/dead-letters";
/// Record kind of the count of dead letters dropped.
const DEAD_LETTERS_DROPPED: &str = "pipeline/dead-letters-dropped";
/// Dead letters kept: the newest 10,000, none older than 14 days. Older ones are dropped,
/// counted in the `pipeline/dead-letters-dropped` record and logged at ERROR.
pub const MAX_DEAD_LETTERS: i64 = 10_000;
/// How long a dead letter is kept, milliseconds.
pub const DEAD_LETTER_LIFETIME_MILLIS: i64 = 14 * 24 * 60 * 60 * 1000;

fn dead_letters() -> RecordKey {
    RecordKey::new(DEAD_LETTERS, "", "", "dead-letters")
}

fn dropped_key() -> RecordKey {
    RecordKey::new(DEAD_LETTERS_DROPPED, "", "", "dead-letters")
}

/// How many dead letters were dropped to keep their log bounded, since the store was made.
pub async fn dead_letters_dropped(store: &dyn Store) -> Result<i64, StoreError> {
    Ok(store
        .get(&dropped_key())
        .await?
        .and_then(|record| {
            record
                .body
                .get("dropped")
                .and_then(serde_json::Value::as_i64)
        })
        .unwrap_or(0))
}

/// A dead letter as `/_sluice/dead-letters` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// Position in the dead-letter log, for paging (`after`).
    pub sequence: i64,
    /// When the data was accepted, epoch milliseconds.
    pub accepted_at: i64,
    /// The delivery (target, partition key, encoding, sender) as queued.
    pub delivery: serde_json::Value,
    /// Why it was given up on.
    pub reason: String,
    /// The bytes as accepted (before encoding), base64.
    pub data: String,
}

/// Up to `limit` dead letters after sequence `after`, oldest first.
pub async fn list_dead_letters(
    store: &dyn Store,
    after: i64,
    limit: usize,
) -> Result<Vec<DeadLetter>, StoreError> {
    use base64::Engine as _;
    let entries = store
        .read_log(&dead_letters(), after.saturating_add(1), limit)
        .await?;
    Ok(entries
        .into_iter()
        .map(|entry| {
            let meta: serde_json::Value =
                serde_json::from_str(&entry.meta).unwrap_or(serde_json::Value::Null);
            let delivery = meta
                .get("delivery")
                .and_then(serde_json::Value::as_str)
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or(serde_json::Value::Null);
            DeadLetter {
                sequence: entry.sequence,
                accepted_at: entry.at_millis,
                delivery,
                reason: meta
                    .get("reason")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                data: base64::engine::general_purpose::STANDARD.encode(&entry.data),
            }
        })
        .collect())
}

/// Moves a queue entry to the dead letters, dropping the oldest beyond [`MAX_DEAD_LETTERS`].
/// Callers serialise calls (the pipeline holds one lock for it), since the bound is computed
/// from the log's ends.
pub(super) async fn dead_letter(
    store: &dyn Store,
    entry: &LogEntry,
    reason: &str,
) -> Result<(), StoreError> {
    let meta = serde_json::json!({ "delivery": entry.meta, "reason": reason }).to_string();
    let log = dead_letters();
    let new = NewEntry {
        at_millis: entry.at_millis,
        meta,
        data: entry.data.clone(),
        span: None,
    };
    let tail = store.log_tail(&log).await?;
    let first = store
        .read_log(&log, 1, 1)
        .await?
        .first()
        .map_or(tail + 1, |e| e.sequence);
    let mut batch = vec![Write::Append { log, entry: new }];
    // The oldest to keep once this one is in, so that at most MAX_DEAD_LETTERS remain.
    let keep_from = tail + 2 - MAX_DEAD_LETTERS;
    if keep_from > first {
        let dropped = dead_letters_dropped(store).await? + (keep_from - first);
        tracing::error!(
            dropped_now = keep_from - first,
            dropped_in_all = dropped,
            max = MAX_DEAD_LETTERS,
            "Dead letters are full; the oldest were dropped."
        );
        batch.push(Write::TrimLog {
            log: dead_letters(),
            before: keep_from,
        });
        batch.push(Write::Put {
            key: dropped_key(),
            body: serde_json::json!({ "dropped": dropped }),
            expect: Expect::Any,
        });
    }
    store.write(batch).await?;
    Ok(())
}

/// Drops dead letters older than their lifetime, at most `limit`; returns how many went.
pub async fn expire_dead_letters(
    store: &dyn Store,
    now: i64,
    limit: usize,
) -> Result<usize, StoreError> {
    let removed = store
        .expire_log(
            &dead_letters(),
            now - DEAD_LETTER_LIFETIME_MILLIS,
            i64::MIN,
            limit,
        )
        .await?;
    if removed > 0 {
        let dropped = dead_letters_dropped(store).await? + removed as i64;
        store
            .write(vec![Write::Put {
                key: dropped_key(),
                body: serde_json::json!({ "dropped": dropped }),
                expect: Expect::Any,
            }])
            .await?;
        tracing::error!(
            removed,
            dropped_in_all = dropped,
            "Dead letters older than 14 days were dropped."
        );
    }
    Ok(removed)
}
