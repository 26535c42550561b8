//! Durable state behind one small interface.
//!
//! The store keeps *records*: opaque JSON documents addressed by kind, account, region and
//! name, each with a version for optimistic concurrency. Services own the meaning of their
//! records; the store knows nothing about HTTP, wire shapes or any one service. Writes are
//! batches applied atomically, and a batch is acknowledged only once it is durably committed.
//!
//! Implementations: [`sqlite::SqliteStore`] (the embedded default, one file in the data
//! directory) and [`memory::MemoryStore`] (tests and throwaway runs). A PostgreSQL backend for
//! several Sluice nodes sharing one state implements the same trait; the conditional writes are
//! what make that safe without locks held across requests.

pub mod memory;
pub mod sqlite;

use async_trait::async_trait;

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
}

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
        StoreError::Unavailable(err.to_string())
    }
}

/// The storage interface.
///
/// Contract: `write` applies all of a batch or none of it, checks every `Expect` inside the same
/// transaction, and returns only after the batch is durable. `list` returns records of one kind,
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

    /// Applies a batch atomically and durably.
    async fn write(&self, batch: Vec<Write>) -> Result<(), StoreError>;

    /// Reads a server-wide setting (such as the key that signs pagination tokens).
    async fn get_setting(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Stores a server-wide setting unless it is already set; returns the value in force.
    async fn init_setting(&self, name: &str, value: &str) -> Result<String, StoreError>;

    /// Removes every record (settings stay), for test suites that start clean.
    async fn reset(&self) -> Result<(), StoreError>;
}

#[cfg(test)]
pub(crate) mod conformance {
    //! One scenario every backend must pass.
    use super::*;
    use serde_json::json;

    pub async fn run(store: &dyn Store) {
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

        assert_eq!(store.init_setting("k", "v1").await.expect("init"), "v1");
        assert_eq!(store.init_setting("k", "v2").await.expect("init"), "v1");
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
}
