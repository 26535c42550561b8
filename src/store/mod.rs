//! Durable state behind one small interface.
//!
//! The store keeps *records*: opaque JSON documents addressed by kind, account, region and
//! name, each with a version for optimistic concurrency; and *logs*: append-only sequences of
//! entries (a Kinesis shard, later a log stream or an outbox), addressed the same way. Services own the meaning of their
//! records; the store knows nothing about HTTP, wire shapes or any one service. Writes are
//! batches applied atomically, and a batch is acknowledged only once it is durably committed.
//!
//! Implementations: [`sqlite::SqliteStore`] (the embedded default, one file in the data
//! directory) and [`memory::MemoryStore`] (tests and throwaway runs). A PostgreSQL backend for
//! several Sluice nodes sharing one state implements the same trait; the conditional writes are
//! what make that safe without locks held across requests.

pub mod cache;
pub mod expiry;
pub mod fault_gate;
pub mod group_commit;
pub mod memory;
pub mod postgres;
pub mod sqlite;
mod sqlite_migrations;

use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The address of a record. Every record belongs to exactly one account and one region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey {
    /// What the record is, e.g. `logs/destination`.
    pub kind: &'static str,
    /// The owning account.
    pub account: String,
    /// The owning region.
    pub region: String,
    /// The name, unique within kind, account and region.
    pub name: String,
}

impl RecordKey {
    /// Builds a key.
    pub fn new(kind: &'static str, account: &str, region: &str, name: &str) -> Self {
        Self {
            kind,
            account: account.to_owned(),
            region: region.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// A stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Where it lives.
    pub key: RecordKey,
    /// Increases by one on every write; conditional writes compare it.
    pub version: i64,
    /// The service's document.
    pub body: serde_json::Value,
}

/// What a write expects of the current record, so that concurrent changes cannot be lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Whatever is there.
    Any,
    /// No record exists.
    Absent,
    /// The record exists at exactly this version.
    Version(i64),
}

/// One change in a batch.
#[derive(Debug, Clone)]
pub enum Write {
    /// Creates or replaces a record.
    Put {
        /// The record's key.
        key: RecordKey,
        /// The new document.
        body: serde_json::Value,
        /// The condition on the current record.
        expect: Expect,
    },
    /// Removes a record (a no-op when it is absent and `expect` is `Any`).
    Delete {
        /// The record's key.
        key: RecordKey,
        /// The condition on the current record.
        expect: Expect,
    },
    /// Appends an entry to a log; it gets the log's next sequence number (from 1).
    Append {
        /// The log's address.
        log: RecordKey,
        /// The entry.
        entry: NewEntry,
    },
    /// Removes a whole log.
    DeleteLog {
        /// The log's address.
        log: RecordKey,
    },
    /// Inserts a row into a table of columns declared by a migration (CloudTrail Lake events),
    /// for data that is read with SQL. Nested values are stored as JSON text.
    Insert {
        /// The table.
        table: &'static str,
        /// Column names and values, in any order.
        row: Vec<(&'static str, serde_json::Value)>,
    },
    /// Removes rows of a table by the row numbers [`Store::scan_rows`] gave them (rows moved
    /// elsewhere, such as CloudTrail Lake events compacted into a columnar segment).
    DeleteRows {
        /// The table.
        table: &'static str,
        /// The rows' numbers.
        rows: Vec<i64>,
    },
    /// Removes the entries numbered below `before` (consumed outbox entries, say). Numbering
    /// goes on from the log's tail, so keep at least the last entry to keep the tail.
    TrimLog {
        /// The log's address.
        log: RecordKey,
        /// The first sequence number to keep.
        before: i64,
    },
}

/// An entry to append: a small text of metadata and an opaque payload.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    /// When it was accepted, epoch milliseconds.
    pub at_millis: i64,
    /// Metadata the owner needs to read the payload (a partition key, a JSON header ...).
    pub meta: String,
    /// The payload.
    pub data: Vec<u8>,
    /// The earliest and latest event time inside the entry, epoch milliseconds, when the entry
    /// holds events of their own time (a batch of log events); `None` means `at_millis` for
    /// both. Indexed, so that reads by time and retention never scan a whole log.
    pub span: Option<(i64, i64)>,
}

/// A stored log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// Position in the log, from 1, gap-free in commit order.
    pub sequence: i64,
    /// When it was accepted, epoch milliseconds.
    pub at_millis: i64,
    /// The entry's metadata.
    pub meta: String,
    /// The payload.
    pub data: Vec<u8>,
    /// The earliest and latest event time inside the entry (`at_millis` twice when none was
    /// given).
    pub span: (i64, i64),
}

/// Where a log entry sits in time, without its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntrySpan {
    /// The entry's position in its log.
    pub sequence: i64,
    /// The earliest and latest event time inside it.
    pub span: (i64, i64),
}

/// How [`Store::read_log_spans`] walks a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeOrder {
    /// By `(first time, sequence)` ascending, from `(first time, sequence) >= from`.
    Forward,
    /// By `(last time, sequence)` descending, from `(last time, sequence) <= from`.
    Backward,
}

/// A row read by [`Store::scan_rows`]: its position `(time, row number)` and its values as
/// text or null.
pub type RowAt = ((i64, i64), serde_json::Map<String, serde_json::Value>);

/// What may go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A write's expectation did not hold: someone else changed the record first.
    #[error("conflicting change to {0:?}")]
    Conflict(RecordKey),
    /// The backend failed (disk, corruption, connection).
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        // Logged here, once, because the services answer 503 without logging each refusal
        // (the SQLite store logs its own write faults and refusals, rate-limited).
        tracing::error!(error = %err, "Store backend error.");
        StoreError::Unavailable(err.to_string())
    }
}

/// Whether the store can acknowledge writes durably right now, for `/_sluice/health`.
///
/// While `durable` is false every write is refused with [`StoreError::Unavailable`] (reads may
/// still work), so a client is never told that something is stored when it may not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreHealth {
    /// Writes are being committed durably.
    pub durable: bool,
    /// Why not, when not: the error that stopped writes.
    pub reason: Option<String>,
    /// Since when writes have been refused.
    pub since: Option<std::time::SystemTime>,
    /// Writes refused since then.
    pub refused_writes: u64,
    /// The store cannot recover by itself (its database file was deleted or replaced while
    /// running); only a restart, which opens whatever file is there then, ends the refusals.
    pub restart_required: bool,
}

impl StoreHealth {
    /// A store that is taking writes.
    pub fn durable() -> Self {
        Self {
            durable: true,
            reason: None,
            since: None,
            refused_writes: 0,
            restart_required: false,
        }
    }
}

/// A record the read cache lends ([`Store::lend`]).
pub struct Lent<'a> {
    /// The record's name.
    pub name: &'a str,
    /// Its version.
    pub version: i64,
    /// Its document.
    pub body: &'a serde_json::Value,
    /// Values readers derived from this version (its stored type, its wire form), kept beside
    /// the document so that a hot list is decoded and encoded once, not on every read.
    pub derived: &'a Derived,
}

/// Values derived from one version of a record, one per type, kept in the read cache beside
/// its document ([`Lent::derived`]). Two types fit: a record's stored type and its wire form
/// ([`crate::services::kit::Encoded`]); a third type is derived on every read, uncached.
#[derive(Default, Clone)]
pub struct Derived {
    slots: [std::sync::OnceLock<Arc<dyn std::any::Any + Send + Sync>>; 2],
}

impl Derived {
    /// A copy of the value of type `T` derived before, or `derive`'s, kept when a slot is free.
    /// Two readers deriving at once both derive; one value is kept (they are equal).
    pub fn get_or_derive<T, E>(&self, derive: impl FnOnce() -> Result<T, E>) -> Result<T, E>
    where
        T: Clone + Send + Sync + 'static,
    {
        for slot in &self.slots {
            match slot.get() {
                Some(kept) => {
                    if let Some(value) = kept.downcast_ref::<T>() {
                        return Ok(value.clone());
                    }
                }
                None => {
                    let value = derive()?;
                    let _ = slot.set(Arc::new(value.clone()));
                    return Ok(value);
                }
            }
        }
        derive()
    }
}

/// State outside the store that `/_sluice/reset` must clear too (S3 blobs, Lake segment
/// files, in-memory counters). Declared here, in a leaf every owner of such state already
/// imports, so that none of them depends on the server.
#[async_trait]
pub trait ResetHook: Send + Sync {
    /// Called after the store was reset.
    async fn after_reset(&self) -> anyhow::Result<()>;
}

/// The storage interface.
///
/// Contract: `write` applies all of a batch or none of it, checks every `Expect` inside the same
/// transaction, and returns only after the batch is durable. After a write error whose outcome
/// it cannot prove (anything but a clean conflict or refused statement), a store acknowledges
/// no further write until it has proved again that it can commit; [`Store::health`] says so
/// meanwhile. `list` returns records of one kind,
/// account and region whose names start with `prefix` and sort strictly after `after`, in
/// ascending byte order of the name, at most `limit` of them.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one record.
    async fn get(&self, key: &RecordKey) -> Result<Option<Record>, StoreError>;

    /// Lists records of one kind, account and region by name prefix, in name order.
    async fn list(
        &self,
        kind: &'static str,
        account: &str,
        region: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError>;

    /// [`Store::list`] from memory, handing each record to `each` ([`Lent`]) instead of
    /// returning copies, when the store holds that list in memory (the read cache); `None`
    /// when it does not, and the caller then uses [`Store::list`]. A caller decoding records
    /// into its stored type so copies nothing twice, and decodes each version once.
    #[allow(clippy::too_many_arguments)]
    fn lend(
        &self,
        _kind: &'static str,
        _account: &str,
        _region: &str,
        _prefix: &str,
        _after: Option<&str>,
        _limit: usize,
        _each: &mut dyn FnMut(Lent<'_>) -> Result<(), StoreError>,
    ) -> Option<Result<(), StoreError>> {
        None
    }

    /// Applies a batch atomically and durably; returns the sequence numbers given to its
    /// `Append`s, in batch order.
    async fn write(&self, batch: Vec<Write>) -> Result<Vec<i64>, StoreError>;

    /// Reads up to `limit` entries of a log with sequence numbers of at least `from`.
    async fn read_log(
        &self,
        log: &RecordKey,
        from: i64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError>;

    /// The sequence number of the first entry accepted at or after `at_millis`, if any.
    async fn seek_log(&self, log: &RecordKey, at_millis: i64) -> Result<Option<i64>, StoreError>;

    /// The rows of a table whose `column` equals `value`, in insertion order, every value as
    /// text or null (as stored).
    async fn select_rows(
        &self,
        table: &'static str,
        column: &'static str,
        value: &str,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, StoreError>;

    /// The spans of up to `limit` entries of a log whose event-time span overlaps `window`
    /// (both ends inclusive), in the order [`TimeOrder`] says, starting at `from`. Served by
    /// the time index alone, without the entries' payloads: the cost follows what is read and
    /// skipped near `from`, not the log's size, and the caller fetches only the entries it
    /// needs (with [`Store::read_log`]).
    async fn read_log_spans(
        &self,
        log: &RecordKey,
        order: TimeOrder,
        from: (i64, i64),
        window: (i64, i64),
        limit: usize,
    ) -> Result<Vec<EntrySpan>, StoreError>;

    /// Removes up to `limit` entries of a log whose latest event time is below `before` and
    /// that were accepted at or after `accepted_from` (`i64::MIN` for all), never the log's
    /// last entry (so numbering carries on); returns how many went. Each call is its own short
    /// transaction, so a large expiry never holds writers up for long.
    async fn expire_log(
        &self,
        log: &RecordKey,
        before: i64,
        accepted_from: i64,
        limit: usize,
    ) -> Result<usize, StoreError>;

    /// Removes up to `limit` rows of a table whose columns equal `scope` and whose integer
    /// `time_column` is below `before`; returns how many went.
    async fn expire_rows(
        &self,
        table: &'static str,
        scope: &[(&'static str, &str)],
        time_column: &'static str,
        before: i64,
        limit: usize,
    ) -> Result<usize, StoreError>;

    /// Up to `limit` rows of a table whose columns equal `scope` and whose integer
    /// `time_column` is below `until`, in `(time, row number)` order strictly after `from`,
    /// each with that position so the next page continues from the last one: how a query reads
    /// a table a page at a time, in bounded memory, through the time index.
    async fn scan_rows(
        &self,
        table: &'static str,
        scope: &[(&'static str, &str)],
        time_column: &'static str,
        from: (i64, i64),
        until: i64,
        limit: usize,
    ) -> Result<Vec<RowAt>, StoreError>;

    /// Records of one kind in every account and region, in key order (account, region,
    /// name) strictly after `after`, at most `limit`: how background work visits everything.
    async fn scan(
        &self,
        kind: &'static str,
        after: Option<&RecordKey>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError>;

    /// The sequence number of the last entry of a log (0 when it is empty).
    async fn log_tail(&self, log: &RecordKey) -> Result<i64, StoreError>;

    /// Reads a server-wide setting (such as the key that signs pagination tokens).
    async fn get_setting(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Stores each server-wide setting (name, value) unless it is already set, in one commit;
    /// returns the values in force, in the order asked.
    async fn init_settings(&self, settings: &[(&str, &str)]) -> Result<Vec<String>, StoreError>;

    /// Removes every record and log (settings stay), for test suites that start clean.
    async fn reset(&self) -> Result<(), StoreError>;

    /// Whether writes are being committed durably now; cheap, never waits on a write.
    fn health(&self) -> StoreHealth;
}

/// A table declared by a migration, with the constraint every backend enforces alike.
#[derive(Debug)]
pub struct Table {
    /// The table's name.
    pub name: &'static str,
    /// The columns of its unique key: an insert that repeats them (none null) is refused with
    /// its whole batch, as SQLite refuses it.
    pub unique: &'static [&'static str],
}

/// Every table of the migrations. The SQLite backend checks this list against its schema, so
/// the memory backend, which has no schema, enforces the same keys.
pub const TABLES: &[Table] = &[Table {
    name: "cloudtrail_events",
    unique: &["account", "region", "event_data_store", "event_id"],
}];

/// A row value as stored: text, or null; nested values become JSON text.
pub fn column_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

/// One row of a [`Write::Insert`].
pub type Row = [(&'static str, serde_json::Value)];

/// The rows of a run of [`Write::Insert`]s into `table` with the same columns: `row`, then
/// the writes `rest` yields next while they match. A backend sends a run as multi-row INSERTs,
/// not a statement per row (for SQLite, each statement is a hand-off to the driver's thread).
pub fn insert_run<'a>(
    table: &str,
    row: &'a Row,
    rest: &mut std::iter::Peekable<impl Iterator<Item = &'a Write>>,
) -> Vec<&'a Row> {
    let same_columns =
        |other: &Row| other.len() == row.len() && other.iter().zip(row).all(|(a, b)| a.0 == b.0);
    let mut rows = vec![row];
    while let Some(Write::Insert {
        table: next_table,
        row: next,
    }) = rest.peek()
    {
        if *next_table != table || !same_columns(next) {
            break;
        }
        rows.push(next);
        rest.next();
    }
    rows
}

/// Reads a record into its owner's stored type, with its version.
pub async fn load<T: DeserializeOwned>(
    store: &dyn Store,
    key: &RecordKey,
) -> Result<Option<(T, i64)>, StoreError> {
    store
        .get(key)
        .await?
        .map(|record| decode(record).map(|(_, value, version)| (value, version)))
        .transpose()
}

/// What a service's stored type is, to be read in lists: decodable, and shareable so that the
/// read cache can keep the decoded value ([`Lent::derived`]).
pub trait Stored: DeserializeOwned + Clone + Send + Sync + 'static {}
impl<T: DeserializeOwned + Clone + Send + Sync + 'static> Stored for T {}

/// Reads every record of a kind in one account and region whose name has a prefix, in name
/// order, each with its key and version.
pub async fn load_all<T: Stored>(
    store: &dyn Store,
    kind: &'static str,
    account: &str,
    region: &str,
    prefix: &str,
) -> Result<Vec<(RecordKey, T, i64)>, StoreError> {
    load_range(store, kind, account, region, prefix, None, usize::MAX).await
}

/// Reads up to `limit` records of a kind in one account and region whose name has a prefix and
/// sorts after `after`, in name order, each with its key and version (a page: ask for one more
/// than the page holds to learn whether another follows). Records the store holds in memory
/// are decoded in place ([`Store::lend`]).
pub async fn load_range<T: Stored>(
    store: &dyn Store,
    kind: &'static str,
    account: &str,
    region: &str,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(RecordKey, T, i64)>, StoreError> {
    let range = Range {
        kind,
        account,
        region,
        prefix,
        after,
        limit,
    };
    load_range_as(store, range, |body| decode_body(kind, body)).await
}

/// Where [`load_range_as`] reads: records of a kind in one account and region whose names
/// start with `prefix` and sort after `after`, at most `limit` of them.
#[derive(Debug, Clone, Copy)]
pub struct Range<'a> {
    /// The records' kind.
    pub kind: &'static str,
    /// Their account.
    pub account: &'a str,
    /// Their Region.
    pub region: &'a str,
    /// The prefix of their names.
    pub prefix: &'a str,
    /// The name they sort after, if any.
    pub after: Option<&'a str>,
    /// The most to read.
    pub limit: usize,
}

/// [`load_range`] of a value derived from each record's document (its stored type, or its wire
/// form). `derive` must depend on the document alone: for records the store holds in memory,
/// its value is kept beside the version it was derived from ([`Derived`]) and handed to the
/// next reader of the same type.
pub async fn load_range_as<V>(
    store: &dyn Store,
    range: Range<'_>,
    derive: impl Fn(&serde_json::Value) -> Result<V, StoreError>,
) -> Result<Vec<(RecordKey, V, i64)>, StoreError>
where
    V: Clone + Send + Sync + 'static,
{
    let Range {
        kind,
        account,
        region,
        prefix,
        after,
        limit,
    } = range;
    let mut loaded = Vec::new();
    let lent = store.lend(kind, account, region, prefix, after, limit, &mut |lent| {
        let value = lent.derived.get_or_derive(|| derive(lent.body))?;
        loaded.push((
            RecordKey::new(kind, account, region, lent.name),
            value,
            lent.version,
        ));
        Ok(())
    });
    match lent {
        Some(result) => result.map(|()| loaded),
        None => store
            .list(kind, account, region, prefix, after, limit)
            .await?
            .into_iter()
            .map(|record| Ok((record.key, derive(&record.body)?, record.version)))
            .collect(),
    }
}

/// Runs a store write in a task of its own and waits for it, so that a caller dropped midway
/// (a cancelled request) cannot leave the write half-done: it runs to its end either way.
pub async fn detached<T: Send + 'static>(
    write: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::spawn(write)
        .await
        .unwrap_or_else(|err| Err(StoreError::Unavailable(format!("write task failed: {err}"))))
}

/// A conditional put of a value in its owner's stored type.
pub fn put<T: Serialize>(key: RecordKey, value: &T, expect: Expect) -> Result<Write, StoreError> {
    let body = serde_json::to_value(value).map_err(|err| {
        // A bug, not a store fault: the services map `Unavailable` to 503 without logging it
        // again (the backends log their own faults), so the cause is logged here.
        tracing::error!(kind = key.kind, error = %err, "A record cannot be encoded.");
        StoreError::Unavailable(format!("cannot encode a {} record: {err}", key.kind))
    })?;
    Ok(Write::Put { key, body, expect })
}

fn decode<T: DeserializeOwned>(record: Record) -> Result<(RecordKey, T, i64), StoreError> {
    let value = decode_body(record.key.kind, &record.body)?;
    Ok((record.key, value, record.version))
}

/// A stored document read as its owner's type (`&Value` is a deserializer: no copy).
pub fn decode_body<T: DeserializeOwned>(
    kind: &str,
    body: &serde_json::Value,
) -> Result<T, StoreError> {
    T::deserialize(body).map_err(|err| {
        // Logged here for the same reason as in `put`: the store holds a record its owner
        // cannot read, which no retry will mend.
        tracing::error!(kind, error = %err, "A stored record cannot be read as its type.");
        StoreError::Unavailable(format!("corrupt {kind} record: {err}"))
    })
}

/// Whether a name is a plain SQL identifier (`[a-z_][a-z0-9_]*`): table and column names come
/// from the code, never from a request, and are checked anyway before they go into a
/// statement's text.
pub(crate) fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
pub(crate) mod conformance {
    //! One scenario every backend must pass.
    use super::*;
    use serde_json::json;

    pub async fn run(store: &dyn Store) {
        assert_eq!(store.health(), StoreHealth::durable());
        let key = RecordKey::new("test/thing", "111111111111", "us-east-1", "b");
        store
            .write(vec![Write::Put {
                key: key.clone(),
                body: json!({"n": 1}),
                expect: Expect::Absent,
            }])
            .await
            .expect("create");
        let record = store.get(&key).await.expect("get").expect("exists");
        assert_eq!(record.version, 1);
        assert_eq!(record.body, json!({"n": 1}));

        let again = store
            .write(vec![Write::Put {
                key: key.clone(),
                body: json!({"n": 2}),
                expect: Expect::Absent,
            }])
            .await;
        assert!(matches!(again, Err(StoreError::Conflict(_))));

        store
            .write(vec![Write::Put {
                key: key.clone(),
                body: json!({"n": 2}),
                expect: Expect::Version(1),
            }])
            .await
            .expect("update");
        let stale = store
            .write(vec![Write::Put {
                key: key.clone(),
                body: json!({"n": 3}),
                expect: Expect::Version(1),
            }])
            .await;
        assert!(matches!(stale, Err(StoreError::Conflict(_))));

        // A failing batch leaves nothing behind.
        let other = RecordKey::new("test/thing", "111111111111", "us-east-1", "a");
        let batch = store
            .write(vec![
                Write::Put {
                    key: other.clone(),
                    body: json!({}),
                    expect: Expect::Absent,
                },
                Write::Delete {
                    key: key.clone(),
                    expect: Expect::Version(99),
                },
            ])
            .await;
        assert!(batch.is_err());
        assert!(store.get(&other).await.expect("get").is_none());

        for name in ["a", "ab", "c", "b2"] {
            let key = RecordKey::new("test/thing", "111111111111", "us-east-1", name);
            store
                .write(vec![Write::Put {
                    key,
                    body: json!({}),
                    expect: Expect::Any,
                }])
                .await
                .expect("put");
        }
        let foreign = RecordKey::new("test/thing", "222222222222", "us-east-1", "a0");
        store
            .write(vec![Write::Put {
                key: foreign,
                body: json!({}),
                expect: Expect::Any,
            }])
            .await
            .expect("put");
        let names =
            |records: Vec<Record>| records.into_iter().map(|r| r.key.name).collect::<Vec<_>>();
        let all = store
            .list("test/thing", "111111111111", "us-east-1", "", None, 10)
            .await
            .expect("list");
        assert_eq!(names(all), ["a", "ab", "b", "b2", "c"]);
        let page = store
            .list("test/thing", "111111111111", "us-east-1", "", Some("ab"), 2)
            .await
            .expect("list");
        assert_eq!(names(page), ["b", "b2"]);
        let prefixed = store
            .list("test/thing", "111111111111", "us-east-1", "b", None, 10)
            .await
            .expect("list");
        assert_eq!(names(prefixed), ["b", "b2"]);
        // Prefixes are literal, even with LIKE's wildcard characters.
        let literal = store
            .list("test/thing", "111111111111", "us-east-1", "%", None, 10)
            .await
            .expect("list");
        assert!(literal.is_empty());

        store
            .write(vec![Write::Delete {
                key: key.clone(),
                expect: Expect::Any,
            }])
            .await
            .expect("delete");
        assert!(store.get(&key).await.expect("get").is_none());

        let log = RecordKey::new("test/log", "111111111111", "us-east-1", "shard-1");
        let entry = |at_millis: i64, meta: &str| Write::Append {
            log: log.clone(),
            entry: NewEntry {
                at_millis,
                meta: meta.to_owned(),
                data: meta.as_bytes().to_vec(),
                span: None,
            },
        };
        assert_eq!(store.log_tail(&log).await.expect("tail"), 0);
        let sequences = store
            .write(vec![entry(10, "a"), entry(20, "b")])
            .await
            .expect("append");
        assert_eq!(sequences, [1, 2]);
        // An append in a failing batch takes no sequence number.
        let failed = store
            .write(vec![
                entry(30, "x"),
                Write::Delete {
                    key: key.clone(),
                    expect: Expect::Version(99),
                },
            ])
            .await;
        assert!(failed.is_err());
        assert_eq!(
            store.write(vec![entry(30, "c")]).await.expect("append"),
            [3]
        );
        let read = store.read_log(&log, 2, 10).await.expect("read");
        assert_eq!(
            read.iter()
                .map(|e| (e.sequence, e.meta.as_str()))
                .collect::<Vec<_>>(),
            [(2, "b"), (3, "c")]
        );
        assert_eq!(read[0].data, b"b");
        assert_eq!(store.read_log(&log, 1, 1).await.expect("read").len(), 1);
        assert_eq!(store.seek_log(&log, 15).await.expect("seek"), Some(2));
        assert_eq!(store.seek_log(&log, 31).await.expect("seek"), None);
        assert_eq!(store.log_tail(&log).await.expect("tail"), 3);
        store
            .write(vec![Write::TrimLog {
                log: log.clone(),
                before: 3,
            }])
            .await
            .expect("trim");
        assert_eq!(
            store
                .read_log(&log, 1, 10)
                .await
                .expect("read")
                .iter()
                .map(|e| e.sequence)
                .collect::<Vec<_>>(),
            [3]
        );
        assert_eq!(store.log_tail(&log).await.expect("tail"), 3);
        store.write(vec![entry(40, "d")]).await.expect("append");
        store
            .reset()
            .await
            .expect("reset clears logs and tables too");
        assert!(store
            .select_rows("cloudtrail_events", "event_data_store", "eds")
            .await
            .expect("select")
            .is_empty());
        assert_eq!(store.log_tail(&log).await.expect("tail"), 0);
        store.write(vec![entry(10, "a")]).await.expect("append");
        store
            .write(vec![Write::DeleteLog { log: log.clone() }])
            .await
            .expect("delete log");
        assert_eq!(store.log_tail(&log).await.expect("tail"), 0);
        assert!(store.read_log(&log, 1, 10).await.expect("read").is_empty());

        time_index(store).await;
        scan(store).await;
        row_pages(store).await;
        tables(store).await;

        let init = |settings: &'static [(&'static str, &'static str)]| async move {
            store.init_settings(settings).await.expect("init")
        };
        assert_eq!(init(&[("k", "v1")]).await, ["v1"]);
        assert_eq!(init(&[("j", "w1"), ("k", "v2")]).await, ["w1", "v1"]);
        assert_eq!(init(&[("k", "v3"), ("j", "w3")]).await, ["v1", "w1"]);
        assert_eq!(
            store.get_setting("j").await.expect("get").as_deref(),
            Some("w1")
        );
        store.reset().await.expect("reset");
        assert!(store
            .list("test/thing", "111111111111", "us-east-1", "", None, 10)
            .await
            .expect("list")
            .is_empty());
        assert_eq!(
            store.get_setting("k").await.expect("setting").as_deref(),
            Some("v1")
        );
    }

    /// Reads by event time, expiry by time that keeps the tail, and expiry of table rows.
    async fn time_index(store: &dyn Store) {
        let log = RecordKey::new("test/events", "111111111111", "us-east-1", "g:s");
        let entry = |at_millis: i64, span: Option<(i64, i64)>| Write::Append {
            log: log.clone(),
            entry: NewEntry {
                at_millis,
                meta: String::new(),
                data: Vec::new(),
                span,
            },
        };
        store
            .write(vec![
                entry(1, Some((100, 200))),
                entry(2, Some((150, 160))),
                entry(3, Some((50, 300))),
                entry(400, None),
            ])
            .await
            .expect("append");
        let log_ref = &log;
        let read = |order, from, window, limit| async move {
            store
                .read_log_spans(log_ref, order, from, window, limit)
                .await
                .expect("read by time")
                .iter()
                .map(|e| e.sequence)
                .collect::<Vec<_>>()
        };
        let (low, high) = ((i64::MIN, i64::MIN), (i64::MAX, i64::MAX));
        let all = (i64::MIN, i64::MAX);
        assert_eq!(read(TimeOrder::Forward, low, all, 10).await, [3, 1, 2, 4]);
        assert_eq!(read(TimeOrder::Forward, (100, 2), (0, 399), 10).await, [2]);
        assert_eq!(read(TimeOrder::Forward, low, all, 2).await, [3, 1]);
        assert_eq!(
            read(TimeOrder::Forward, low, (170, 250), 10).await,
            [3, 1],
            "only entries overlapping the window"
        );
        assert_eq!(read(TimeOrder::Backward, high, all, 10).await, [4, 3, 1, 2]);
        assert_eq!(
            read(TimeOrder::Backward, (200, 1), (170, 500), 10).await,
            [1]
        );
        assert_eq!(
            read(TimeOrder::Backward, high, (0, 350), 10).await,
            [3, 1, 2]
        );
        assert_eq!(read(TimeOrder::Backward, high, all, 2).await, [4, 3]);
        let last = store.read_log(&log, 4, 1).await.expect("read");
        assert_eq!(last[0].span, (400, 400), "no span means the accept time");
        assert_eq!(
            store.read_log(&log, 1, 1).await.expect("read")[0].span,
            (100, 200)
        );

        assert_eq!(
            store
                .expire_log(&log, 250, i64::MIN, 10)
                .await
                .expect("expire"),
            2
        );
        assert_eq!(read(TimeOrder::Forward, low, all, 10).await, [3, 4]);
        assert_eq!(
            store.expire_log(&log, 1_000, 2, 1).await.expect("expire"),
            1
        );
        assert_eq!(
            store
                .expire_log(&log, 1_000, i64::MIN, 10)
                .await
                .expect("expire"),
            0,
            "the last entry stays, so numbering carries on"
        );
        store.write(vec![entry(500, None)]).await.expect("append");
        assert_eq!(store.log_tail(&log).await.expect("tail"), 5);
        assert_eq!(
            store
                .expire_log(&log, 1_000, 401, 10)
                .await
                .expect("expire"),
            0,
            "only entries accepted from then on"
        );
        assert_eq!(
            store
                .expire_log(&log, 1_000, 400, 10)
                .await
                .expect("expire"),
            1
        );

        let row = |store_name: &str, id: &str, millis: i64| Write::Insert {
            table: "cloudtrail_events",
            row: vec![
                ("account", serde_json::json!("111111111111")),
                ("region", serde_json::json!("us-east-1")),
                ("event_data_store", serde_json::json!(store_name)),
                ("event_id", serde_json::json!(id)),
                ("raw_event_data", serde_json::json!("{}")),
                ("event_time_millis", serde_json::json!(millis)),
            ],
        };
        store
            .write(vec![
                row("eds", "e1", 100),
                row("eds", "e2", 300),
                row("eds2", "e3", 100),
            ])
            .await
            .expect("insert");
        let scope = [
            ("account", "111111111111"),
            ("region", "us-east-1"),
            ("event_data_store", "eds"),
        ];
        let expired = store
            .expire_rows("cloudtrail_events", &scope, "event_time_millis", 200, 10)
            .await
            .expect("expire rows");
        assert_eq!(expired, 1);
        let ids = |rows: Vec<serde_json::Map<String, serde_json::Value>>| {
            rows.iter()
                .map(|r| (r["event_id"].clone(), r["event_time_millis"].clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(store
                .select_rows("cloudtrail_events", "event_data_store", "eds")
                .await
                .expect("select")),
            [(json!("e2"), json!("300"))],
            "integer columns read back as text"
        );
        assert_eq!(
            store
                .select_rows("cloudtrail_events", "event_data_store", "eds2")
                .await
                .expect("select")
                .len(),
            1
        );
    }

    /// Reading a table's rows by time a page at a time, and deleting rows by number.
    async fn row_pages(store: &dyn Store) {
        let row = |id: &str, millis: i64| Write::Insert {
            table: "cloudtrail_events",
            row: vec![
                ("account", json!("222222222222")),
                ("region", json!("us-east-1")),
                ("event_data_store", json!("paged")),
                ("event_id", json!(id)),
                ("raw_event_data", json!("{}")),
                ("event_time_millis", json!(millis)),
            ],
        };
        store
            .write(vec![
                row("c", 300),
                row("a", 100),
                row("b", 200),
                row("d", 900),
            ])
            .await
            .expect("insert");
        let scope = [
            ("account", "222222222222"),
            ("region", "us-east-1"),
            ("event_data_store", "paged"),
        ];
        let page = |from, limit| {
            store.scan_rows(
                "cloudtrail_events",
                &scope,
                "event_time_millis",
                from,
                500,
                limit,
            )
        };
        let first = page((i64::MIN, i64::MIN), 2).await.expect("page");
        let ids: Vec<_> = first.iter().map(|(_, r)| r["event_id"].clone()).collect();
        assert_eq!(ids, [json!("a"), json!("b")]);
        let next = page(first[1].0, 10).await.expect("page");
        let ids: Vec<_> = next.iter().map(|(_, r)| r["event_id"].clone()).collect();
        assert_eq!(ids, [json!("c")], "after the cursor, before `until`");
        let numbers: Vec<i64> = first.iter().map(|((_, n), _)| *n).collect();
        store
            .write(vec![Write::DeleteRows {
                table: "cloudtrail_events",
                rows: numbers,
            }])
            .await
            .expect("delete rows");
        let left = page((i64::MIN, i64::MIN), 10).await.expect("page");
        let ids: Vec<_> = left.iter().map(|(_, r)| r["event_id"].clone()).collect();
        assert_eq!(ids, [json!("c")]);
    }

    /// Visiting every record of a kind across accounts and regions, in pages.
    /// Inserts, the unique key (across batches and within one, a refused batch leaving
    /// nothing), and selection by column.
    async fn tables(store: &dyn Store) {
        let row = |store_name: &str, id: &str, source: serde_json::Value| Write::Insert {
            table: "cloudtrail_events",
            row: vec![
                ("account", json!("444444444444")),
                ("region", json!("us-east-1")),
                ("event_data_store", json!(store_name)),
                ("event_id", json!(id)),
                ("event_source", source),
                ("user_identity", json!({"type": "User"})),
                ("raw_event_data", json!("{}")),
            ],
        };
        let select = |store_name: &'static str| async move {
            store
                .select_rows("cloudtrail_events", "event_data_store", store_name)
                .await
                .expect("select")
        };
        store
            .write(vec![
                row("tables", "e1", json!("app")),
                row("tables", "e2", serde_json::Value::Null),
            ])
            .await
            .expect("insert");
        let rows = select("tables").await;
        let ids: Vec<&str> = rows.iter().filter_map(|r| r["event_id"].as_str()).collect();
        assert_eq!(ids, ["e1", "e2"], "insertion order");
        assert_eq!(rows[0]["event_source"], json!("app"));
        assert_eq!(rows[1]["event_source"], serde_json::Value::Null);
        // Nested values are stored as JSON text.
        assert_eq!(rows[0]["user_identity"], json!(r#"{"type":"User"}"#));
        // A run longer than one statement's parameters allow (backends send runs as
        // multi-row INSERTs), split by a row of other columns: all in order.
        let mut long: Vec<Write> = (0..10_000)
            .map(|i| row("tables-long", &format!("l{i}"), json!("app")))
            .collect();
        long.insert(
            5_000,
            Write::Insert {
                table: "cloudtrail_events",
                row: vec![
                    ("account", json!("444444444444")),
                    ("region", json!("us-east-1")),
                    ("event_data_store", json!("tables-long")),
                    ("event_id", json!("other-columns")),
                    ("raw_event_data", json!("{}")),
                ],
            },
        );
        store.write(long).await.expect("a long run");
        let rows = select("tables-long").await;
        let ids: Vec<&str> = rows.iter().filter_map(|r| r["event_id"].as_str()).collect();
        assert_eq!(ids.len(), 10_001);
        assert_eq!(
            [ids[0], ids[4_999], ids[5_000], ids[5_001], ids[10_000]],
            ["l0", "l4999", "other-columns", "l5000", "l9999"]
        );

        // The unique key: a repeat is refused with its whole batch.
        let marker = RecordKey::new("test/table-marker", "444444444444", "us-east-1", "m");
        let repeat = store
            .write(vec![
                Write::Put {
                    key: marker.clone(),
                    body: json!({}),
                    expect: Expect::Absent,
                },
                row("tables", "e3", json!("app")),
                row("tables", "e1", json!("again")),
            ])
            .await;
        assert!(
            matches!(repeat, Err(StoreError::Unavailable(_))),
            "{repeat:?}"
        );
        assert!(store.get(&marker).await.expect("get").is_none());
        assert_eq!(select("tables").await.len(), 2);
        // Within one batch too.
        let twice = store
            .write(vec![
                row("tables", "e4", json!("app")),
                row("tables", "e4", json!("app")),
            ])
            .await;
        assert!(twice.is_err());
        assert_eq!(select("tables").await.len(), 2);
        // The key is the whole tuple: the same event ID in another store is another row.
        store
            .write(vec![row("tables-2", "e1", json!("app"))])
            .await
            .expect("same id, other store");
        assert_eq!(select("tables-2").await.len(), 1);
        // The store stays writable after a refusal.
        store
            .write(vec![row("tables", "e3", json!("app"))])
            .await
            .expect("insert after a refusal");
        assert_eq!(select("tables").await.len(), 3);
        assert_eq!(store.health(), StoreHealth::durable());
    }

    async fn scan(store: &dyn Store) {
        for (account, region, name) in [("2", "a", "x"), ("1", "b", "y"), ("1", "b", "x")] {
            store
                .write(vec![Write::Put {
                    key: RecordKey::new("test/scanned", account, region, name),
                    body: json!({}),
                    expect: Expect::Any,
                }])
                .await
                .expect("put");
        }
        store
            .write(vec![Write::Put {
                key: RecordKey::new("test/other", "1", "a", "a"),
                body: json!({}),
                expect: Expect::Any,
            }])
            .await
            .expect("put");
        let keys = |records: Vec<Record>| {
            records
                .into_iter()
                .map(|r| format!("{}/{}/{}", r.key.account, r.key.region, r.key.name))
                .collect::<Vec<_>>()
        };
        let all = store.scan("test/scanned", None, 10).await.expect("scan");
        assert_eq!(keys(all), ["1/b/x", "1/b/y", "2/a/x"]);
        let after = RecordKey::new("test/scanned", "1", "b", "x");
        let page = store
            .scan("test/scanned", Some(&after), 1)
            .await
            .expect("scan");
        assert_eq!(keys(page), ["1/b/y"]);
    }
}
