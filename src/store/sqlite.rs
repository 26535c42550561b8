//! The embedded default store: one SQLite file, `sluice.db`, in the data directory.
//!
//! Durability: WAL journal with `synchronous = FULL`, so a committed batch survives a process
//! crash and a power cut. Writes go through a single connection, which keeps SQLite's one
//! writer free of busy retries; reads use a pool of their own and never wait for writes.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Column, Row, SqlitePool};

use super::{EntrySpan, Expect, LogEntry, Record, RecordKey, Store, StoreError, TimeOrder, Write};

/// The SQLite store.
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) `sluice.db` under `data_dir` and applies pending migrations.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|err| {
            StoreError::Unavailable(format!("cannot create {}: {err}", data_dir.display()))
        })?;
        let path = data_dir.join("sluice.db");
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|err| StoreError::Unavailable(format!("migration failed: {err}")))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { reader, writer })
    }
}

fn record_from_row(
    kind: &'static str,
    row: &sqlx::sqlite::SqliteRow,
) -> Result<Record, StoreError> {
    let body: String = row.try_get("body")?;
    Ok(Record {
        key: RecordKey {
            kind,
            account: row.try_get("account")?,
            region: row.try_get("region")?,
            name: row.try_get("name")?,
        },
        version: row.try_get("version")?,
        body: serde_json::from_str(&body)
            .map_err(|err| StoreError::Unavailable(format!("corrupt record body: {err}")))?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &RecordKey) -> Result<Option<Record>, StoreError> {
        let row = sqlx::query(
            "SELECT account, region, name, version, body FROM records
             WHERE kind = ? AND account = ? AND region = ? AND name = ?",
        )
        .bind(key.kind)
        .bind(&key.account)
        .bind(&key.region)
        .bind(&key.name)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| record_from_row(key.kind, &row)).transpose()
    }

    async fn list(
        &self,
        kind: &'static str,
        account: &str,
        region: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        // `substr` rather than LIKE, so that `%` and `_` in a prefix are literal.
        let rows = sqlx::query(
            "SELECT account, region, name, version, body FROM records
             WHERE kind = ? AND account = ? AND region = ?
               AND substr(name, 1, ?) = ? AND name > ?
             ORDER BY name LIMIT ?",
        )
        .bind(kind)
        .bind(account)
        .bind(region)
        .bind(prefix.chars().count() as i64)
        .bind(prefix)
        .bind(after.unwrap_or(""))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(|row| record_from_row(kind, row)).collect()
    }

    async fn write(&self, batch: Vec<Write>) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.writer.begin().await?;
        let mut sequences = Vec::new();
        // The tail of each log appended to in this batch, read once: a batch of a thousand
        // events into one stream costs one MAX query, not a thousand.
        let mut tails: HashMap<&RecordKey, i64> = HashMap::new();
        for write in &batch {
            let (key, expect) = match write {
                Write::Put { key, expect, .. } | Write::Delete { key, expect } => (key, *expect),
                Write::Append { log, entry } => {
                    let tail = match tails.get(log) {
                        Some(tail) => *tail,
                        None => {
                            sqlx::query_scalar(
                                "SELECT COALESCE(MAX(sequence), 0) FROM log_entries
                                 WHERE kind = ? AND account = ? AND region = ? AND log = ?",
                            )
                            .bind(log.kind)
                            .bind(&log.account)
                            .bind(&log.region)
                            .bind(&log.name)
                            .fetch_one(&mut *tx)
                            .await?
                        }
                    };
                    tails.insert(log, tail + 1);
                    let (first_time, last_time) =
                        entry.span.unwrap_or((entry.at_millis, entry.at_millis));
                    sqlx::query(
                        "INSERT INTO log_entries (kind, account, region, log, sequence, at_millis, meta, data, first_time, last_time)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(log.kind)
                    .bind(&log.account)
                    .bind(&log.region)
                    .bind(&log.name)
                    .bind(tail + 1)
                    .bind(entry.at_millis)
                    .bind(&entry.meta)
                    .bind(&entry.data)
                    .bind(first_time)
                    .bind(last_time)
                    .execute(&mut *tx)
                    .await?;
                    sequences.push(tail + 1);
                    continue;
                }
                Write::Insert { table, row } => {
                    // Table and column names come from the code, never from a request; check
                    // them anyway before they go into the statement text.
                    let names_ok =
                        is_identifier(table) && row.iter().all(|(column, _)| is_identifier(column));
                    if !names_ok {
                        return Err(StoreError::Unavailable(format!(
                            "invalid table or column name in {table}"
                        )));
                    }
                    let columns: Vec<&str> = row.iter().map(|(column, _)| *column).collect();
                    let placeholders = vec!["?"; columns.len()].join(", ");
                    let statement = format!(
                        "INSERT INTO {table} ({}) VALUES ({placeholders})",
                        columns.join(", ")
                    );
                    let mut query = sqlx::query(&statement);
                    for (_, value) in row {
                        query = query.bind(super::column_text(value));
                    }
                    query.execute(&mut *tx).await?;
                    continue;
                }
                Write::TrimLog { log, before } => {
                    sqlx::query(
                        "DELETE FROM log_entries
                         WHERE kind = ? AND account = ? AND region = ? AND log = ? AND sequence < ?",
                    )
                    .bind(log.kind)
                    .bind(&log.account)
                    .bind(&log.region)
                    .bind(&log.name)
                    .bind(before)
                    .execute(&mut *tx)
                    .await?;
                    continue;
                }
                Write::DeleteLog { log } => {
                    tails.remove(log);
                    sqlx::query("DELETE FROM log_entries WHERE kind = ? AND account = ? AND region = ? AND log = ?")
                        .bind(log.kind)
                        .bind(&log.account)
                        .bind(&log.region)
                        .bind(&log.name)
                        .execute(&mut *tx)
                        .await?;
                    continue;
                }
            };
            let current: Option<i64> = sqlx::query_scalar(
                "SELECT version FROM records WHERE kind = ? AND account = ? AND region = ? AND name = ?",
            )
            .bind(key.kind)
            .bind(&key.account)
            .bind(&key.region)
            .bind(&key.name)
            .fetch_optional(&mut *tx)
            .await?;
            let holds = match expect {
                Expect::Any => true,
                Expect::Absent => current.is_none(),
                Expect::Version(version) => current == Some(version),
            };
            if !holds {
                return Err(StoreError::Conflict(key.clone()));
            }
            match write {
                Write::Put { body, .. } => {
                    sqlx::query(
                        "INSERT INTO records (kind, account, region, name, version, body)
                         VALUES (?, ?, ?, ?, ?, ?)
                         ON CONFLICT (kind, account, region, name)
                         DO UPDATE SET version = excluded.version, body = excluded.body",
                    )
                    .bind(key.kind)
                    .bind(&key.account)
                    .bind(&key.region)
                    .bind(&key.name)
                    .bind(current.unwrap_or(0) + 1)
                    .bind(body.to_string())
                    .execute(&mut *tx)
                    .await?;
                }
                Write::Append { .. }
                | Write::DeleteLog { .. }
                | Write::TrimLog { .. }
                | Write::Insert { .. } => {}
                Write::Delete { .. } => {
                    sqlx::query("DELETE FROM records WHERE kind = ? AND account = ? AND region = ? AND name = ?")
                        .bind(key.kind)
                        .bind(&key.account)
                        .bind(&key.region)
                        .bind(&key.name)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(sequences)
    }

    async fn read_log(
        &self,
        log: &RecordKey,
        from: i64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT sequence, at_millis, meta, data, first_time, last_time FROM log_entries
             WHERE kind = ? AND account = ? AND region = ? AND log = ? AND sequence >= ?
             ORDER BY sequence LIMIT ?",
        )
        .bind(log.kind)
        .bind(&log.account)
        .bind(&log.region)
        .bind(&log.name)
        .bind(from)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn read_log_spans(
        &self,
        log: &RecordKey,
        order: TimeOrder,
        from: (i64, i64),
        window: (i64, i64),
        limit: usize,
    ) -> Result<Vec<EntrySpan>, StoreError> {
        // Row values keep the walk on the time index, which holds both ends of the span: the
        // table itself (and its payloads) is never touched.
        let statement = match order {
            TimeOrder::Forward => {
                "SELECT sequence, first_time, last_time FROM log_entries
                 INDEXED BY log_entries_by_first_time
                 WHERE kind = ? AND account = ? AND region = ? AND log = ?
                   AND (first_time, sequence) >= (?, ?) AND first_time <= ? AND last_time >= ?
                 ORDER BY first_time, sequence LIMIT ?"
            }
            TimeOrder::Backward => {
                "SELECT sequence, first_time, last_time FROM log_entries
                 INDEXED BY log_entries_by_last_time
                 WHERE kind = ? AND account = ? AND region = ? AND log = ?
                   AND (last_time, sequence) <= (?, ?) AND first_time <= ? AND last_time >= ?
                 ORDER BY last_time DESC, sequence DESC LIMIT ?"
            }
        };
        let rows = sqlx::query(statement)
            .bind(log.kind)
            .bind(&log.account)
            .bind(&log.region)
            .bind(&log.name)
            .bind(from.0)
            .bind(from.1)
            .bind(window.1)
            .bind(window.0)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(EntrySpan {
                    sequence: row.try_get("sequence")?,
                    span: (row.try_get("first_time")?, row.try_get("last_time")?),
                })
            })
            .collect()
    }

    async fn expire_log(
        &self,
        log: &RecordKey,
        before: i64,
        accepted_from: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        // By the time index, not the primary key: the cost follows what expired, not the log.
        let done = sqlx::query(
            "DELETE FROM log_entries
             WHERE kind = ?1 AND account = ?2 AND region = ?3 AND log = ?4 AND sequence IN (
                 SELECT sequence FROM log_entries INDEXED BY log_entries_by_last_time
                 WHERE kind = ?1 AND account = ?2 AND region = ?3 AND log = ?4 AND last_time < ?5
                   AND at_millis >= ?6
                   AND sequence < (SELECT MAX(sequence) FROM log_entries
                                   WHERE kind = ?1 AND account = ?2 AND region = ?3 AND log = ?4)
                 LIMIT ?7)",
        )
        .bind(log.kind)
        .bind(&log.account)
        .bind(&log.region)
        .bind(&log.name)
        .bind(before)
        .bind(accepted_from)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .execute(&self.writer)
        .await?;
        Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
    }

    async fn expire_rows(
        &self,
        table: &'static str,
        scope: &[(&'static str, &str)],
        time_column: &'static str,
        before: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let names_ok = is_identifier(table)
            && is_identifier(time_column)
            && scope.iter().all(|(column, _)| is_identifier(column));
        if !names_ok {
            return Err(StoreError::Unavailable(format!(
                "invalid table or column name in {table}"
            )));
        }
        let mut conditions: Vec<String> = scope.iter().map(|(c, _)| format!("{c} = ?")).collect();
        conditions.push(format!("{time_column} < ?"));
        let statement = format!(
            "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {} LIMIT ?)",
            conditions.join(" AND ")
        );
        let mut query = sqlx::query(&statement);
        for (_, value) in scope {
            query = query.bind(*value);
        }
        let done = query
            .bind(before)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .execute(&self.writer)
            .await?;
        Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
    }

    async fn scan(
        &self,
        kind: &'static str,
        after: Option<&RecordKey>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let (account, region, name) = after.map_or(("", "", ""), |key| {
            (key.account.as_str(), key.region.as_str(), key.name.as_str())
        });
        let rows = sqlx::query(
            "SELECT account, region, name, version, body FROM records
             WHERE kind = ? AND (account, region, name) > (?, ?, ?)
             ORDER BY account, region, name LIMIT ?",
        )
        .bind(kind)
        .bind(account)
        .bind(region)
        .bind(name)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(|row| record_from_row(kind, row)).collect()
    }

    async fn seek_log(&self, log: &RecordKey, at_millis: i64) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT sequence FROM log_entries
             WHERE kind = ? AND account = ? AND region = ? AND log = ? AND at_millis >= ?
             ORDER BY sequence LIMIT 1",
        )
        .bind(log.kind)
        .bind(&log.account)
        .bind(&log.region)
        .bind(&log.name)
        .bind(at_millis)
        .fetch_optional(&self.reader)
        .await?)
    }

    async fn select_rows(
        &self,
        table: &'static str,
        column: &'static str,
        value: &str,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, StoreError> {
        if !is_identifier(table) || !is_identifier(column) {
            return Err(StoreError::Unavailable(format!(
                "invalid table or column name {table}.{column}"
            )));
        }
        let statement = format!("SELECT * FROM {table} WHERE {column} = ? ORDER BY rowid");
        let rows = sqlx::query(&statement)
            .bind(value)
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                let mut map = serde_json::Map::new();
                for (index, column) in row.columns().iter().enumerate() {
                    // Integer columns (times kept for indexes) are given as their decimal text.
                    let text: Option<String> = match row.try_get::<Option<String>, _>(index) {
                        Ok(text) => text,
                        Err(_) => row.try_get::<Option<i64>, _>(index)?.map(|n| n.to_string()),
                    };
                    map.insert(
                        column.name().to_owned(),
                        text.map_or(serde_json::Value::Null, serde_json::Value::String),
                    );
                }
                Ok(map)
            })
            .collect()
    }

    async fn log_tail(&self, log: &RecordKey) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(MAX(sequence), 0) FROM log_entries
             WHERE kind = ? AND account = ? AND region = ? AND log = ?",
        )
        .bind(log.kind)
        .bind(&log.account)
        .bind(&log.region)
        .bind(&log.name)
        .fetch_one(&self.reader)
        .await?)
    }

    async fn get_setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    async fn init_setting(&self, name: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.writer)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
                .bind(name)
                .fetch_one(&self.writer)
                .await?,
        )
    }

    async fn reset(&self) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        // Every table the migrations made, but the settings and the migration history.
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table'
             AND name NOT IN ('settings', '_sqlx_migrations') AND name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(&mut *tx)
        .await?;
        for table in tables.iter().filter(|name| is_identifier(name)) {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn entry_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<LogEntry, StoreError> {
    Ok(LogEntry {
        sequence: row.try_get("sequence")?,
        at_millis: row.try_get("at_millis")?,
        meta: row.try_get("meta")?,
        data: row.try_get("data")?,
        span: (row.try_get("first_time")?, row.try_get("last_time")?),
    })
}

/// Whether a name is a plain SQL identifier (`[a-z_][a-z0-9_]*`).
fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn passes_the_conformance_scenario() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = super::SqliteStore::open(dir.path()).await.expect("open");
        super::super::conformance::run(&store).await;
    }

    #[tokio::test]
    async fn table_keys_hold_and_names_are_checked() {
        use super::super::{Store, Write};
        use serde_json::json;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = super::SqliteStore::open(dir.path()).await.expect("open");
        let row = || Write::Insert {
            table: "cloudtrail_events",
            row: vec![
                ("account", json!("1")),
                ("region", json!("r")),
                ("event_data_store", json!("eds")),
                ("event_id", json!("e1")),
                ("raw_event_data", json!("{}")),
            ],
        };
        store.write(vec![row()]).await.expect("insert");
        assert!(store.write(vec![row()]).await.is_err(), "one row per event");
        let bad = Write::Insert {
            table: "cloudtrail_events; DROP TABLE records",
            row: vec![],
        };
        assert!(store.write(vec![bad]).await.is_err());
        assert!(
            super::is_identifier("event_id")
                && !super::is_identifier("a b")
                && !super::is_identifier("1a")
        );
    }

    #[tokio::test]
    async fn keeps_records_across_reopen() {
        use super::super::{Expect, RecordKey, Store, Write};
        let dir = tempfile::tempdir().expect("tempdir");
        let key = RecordKey::new("test/thing", "1", "r", "n");
        {
            let store = super::SqliteStore::open(dir.path()).await.expect("open");
            store
                .write(vec![Write::Put {
                    key: key.clone(),
                    body: serde_json::json!({"x": 1}),
                    expect: Expect::Absent,
                }])
                .await
                .expect("write");
        }
        let store = super::SqliteStore::open(dir.path()).await.expect("reopen");
        assert_eq!(
            store.get(&key).await.expect("get").map(|r| r.body),
            Some(serde_json::json!({"x": 1}))
        );
    }
}
