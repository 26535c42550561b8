//! The embedded default store: one SQLite file, `sluice.db`, in the data directory.
//!
//! Durability: WAL journal with `synchronous = FULL`, so a committed batch survives a process
//! crash and a power cut. Writes go through a single connection, which keeps SQLite's one
//! writer free of busy retries; reads use a pool of their own and never wait for writes.
//!
//! **Invariant:** a write is acknowledged only if its `COMMIT` returned OK on a connection
//! that was outside any transaction before its `BEGIN`, and `sluice.db` is still the file that
//! was opened. Any other failure of a write (disk full, read-only or failing disk, a lost
//! database file) is a *fault*: the writer connection is dropped, never reused, and every
//! later write is refused with [`StoreError::Unavailable`] until a fresh connection commits a
//! probe write. Probes run on the next write attempt (at most one a second) and in the
//! background every [`PROBE_INTERVAL`], so writes come back by themselves once space or write
//! access does. A database file deleted or replaced while running is not recovered from: the
//! data acknowledged so far lives in the unlinked file, and only a restart (which opens
//! whatever is at the path then) should decide what happens next.
//!
//! Why not sqlx's `Transaction`: after a failed `COMMIT` (SQLite rolls back on `SQLITE_FULL`
//! and I/O errors), sqlx 0.8 keeps its transaction-depth counter raised, so the next `begin()`
//! issues a `SAVEPOINT` that silently opens a transaction which is never committed, and
//! every later write "succeeds" inside it and is lost. Writes here therefore issue
//! `BEGIN IMMEDIATE`, `COMMIT` and `ROLLBACK` themselves, on a connection nothing else uses,
//! and run in a task of their own so that a cancelled request cannot leave one half-done.

use std::collections::HashMap;
use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::SystemTime;

use async_trait::async_trait;
use sqlx::error::ErrorKind;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Column, ConnectOptions, Row, SqlitePool};

use super::fault_gate::{FaultGate, Probe, PROBE_INTERVAL, PROBE_SETTING};
use super::{
    is_identifier, EntrySpan, Expect, LogEntry, Record, RecordKey, RowAt, Store, StoreError,
    StoreHealth, TimeOrder, Write,
};

/// The SQLite store.
pub struct SqliteStore {
    reader: SqlitePool,
    writer: Arc<Writer>,
    prober: tokio::task::JoinHandle<()>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.prober.abort();
    }
}

/// The device and inode of the database file: what "the same file" means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    device: u64,
    inode: u64,
}

impl FileIdentity {
    fn of(path: &Path) -> std::io::Result<Self> {
        let metadata = std::fs::metadata(path)?;
        Ok(Self {
            device: metadata.dev(),
            inode: metadata.ino(),
        })
    }
}

/// The one writer connection, and the health it proves or disproves.
struct Writer {
    options: SqliteConnectOptions,
    path: PathBuf,
    identity: FileIdentity,
    /// `None` after a fault: a connection that failed is never used again.
    connection: tokio::sync::Mutex<Option<SqliteConnection>>,
    gate: FaultGate,
}

/// How one step of a write ended, when not with success.
enum Failure {
    /// An expectation did not hold; nothing was written.
    Conflict(RecordKey),
    /// A statement was refused for what it asked (a duplicate key, a bad name); nothing was
    /// written and the connection is fine.
    Rejected(String),
    /// Anything else: the outcome is unknown and the connection is suspect.
    Fault(String),
}

impl From<sqlx::Error> for Failure {
    fn from(err: sqlx::Error) -> Self {
        let rejected = matches!(&err, sqlx::Error::Database(db) if matches!(
            db.kind(),
            ErrorKind::UniqueViolation
                | ErrorKind::ForeignKeyViolation
                | ErrorKind::NotNullViolation
                | ErrorKind::CheckViolation
        ));
        if rejected {
            Failure::Rejected(err.to_string())
        } else {
            Failure::Fault(err.to_string())
        }
    }
}

/// Runs one statement text on the writer. Boxed as `Send` here, where the connection's
/// lifetime is concrete: spawned tasks otherwise ask for sqlx's `Executor` for every lifetime.
fn execute<'c>(
    connection: &'c mut SqliteConnection,
    sql: &'static str,
) -> Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'c>> {
    Box::pin(async move {
        sqlx::query(sql)
            .execute(connection)
            .await
            .map(|_| ())
            .map_err(|err| Failure::Fault(err.to_string()))
    })
}

type StepFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T, Failure>> + Send + 'c>>;

/// The statements of one write transaction, run between the writer's `BEGIN` and `COMMIT`.
type Step<T> = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> StepFuture<'c, T> + Send>;

fn step<T, F>(body: F) -> Step<T>
where
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> StepFuture<'c, T> + Send + 'static,
{
    Box::new(body)
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
        let mut connection = options.connect().await?;
        // The migrations commit without a sync of their own: in WAL mode a NORMAL commit
        // cannot corrupt the file, and its frames are synced by the next FULL commit, which
        // comes before any write is acknowledged.
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut connection)
            .await?;
        let migrate = super::sqlite_migrations::migrate(&mut connection);
        // The readers open meanwhile (each connection starts a thread of its own).
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone().read_only(true));
        let (migrated, reader) = tokio::join!(migrate, readers);
        migrated?;
        let reader = reader?;
        sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut connection)
            .await?;
        let identity = FileIdentity::of(&path).map_err(|err| {
            StoreError::Unavailable(format!("cannot stat {}: {err}", path.display()))
        })?;
        let writer = Arc::new(Writer {
            // A re-opened writer must find the file it lost, never create an empty one.
            options: options.create_if_missing(false),
            path,
            identity,
            connection: tokio::sync::Mutex::new(Some(connection)),
            gate: FaultGate::default(),
        });
        let prober = tokio::spawn(probe_in_background(Arc::downgrade(&writer)));
        Ok(Self {
            reader,
            writer,
            prober,
        })
    }

    /// Runs `body` as one write transaction in a task of its own (see the module doc).
    async fn transact<T: Send + 'static>(&self, body: Step<T>) -> Result<T, StoreError> {
        let writer = self.writer.clone();
        super::detached(async move { writer.transact(body).await }).await
    }
}

/// Every [`PROBE_INTERVAL`]: probes a faulted store, or checks that a healthy one still writes
/// to the file it opened. Ends when the store is dropped.
async fn probe_in_background(writer: Weak<Writer>) {
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        let Some(writer) = writer.upgrade() else {
            return;
        };
        let faulted = writer.gate.is_faulted();
        if faulted {
            let mut connection = writer.connection.lock().await;
            // A write may have probed meanwhile; `try_recover` looks again under the lock.
            writer.try_recover(&mut connection, true).await;
        } else if let Err(reason) = writer.check_identity() {
            let mut connection = writer.connection.lock().await;
            *connection = None;
            writer.fail(reason, true);
        }
    }
}

impl Writer {
    /// Whether `sluice.db` is still the file this store opened.
    fn check_identity(&self) -> Result<(), String> {
        match FileIdentity::of(&self.path) {
            Ok(identity) if identity == self.identity => Ok(()),
            Ok(_) => Err(format!(
                "{} was replaced by another file while Sluice was running",
                self.path.display()
            )),
            Err(err) => Err(format!(
                "{} can no longer be found ({err}); it was deleted or moved while Sluice was running",
                self.path.display()
            )),
        }
    }

    /// Records a fault (see [`FaultGate::fail`]).
    fn fail(&self, reason: String, restart_required: bool) {
        let what = if restart_required {
            "Storage lost its database file"
        } else {
            "Storage write failed"
        };
        self.gate.fail(what, reason, restart_required);
    }

    /// Re-opens the writer and commits a probe write, unless the fault cannot be recovered
    /// from, or (for probes started by writes, `background` false) one was tried just now.
    /// Returns whether the store is healthy again, with the proven connection in `slot`.
    async fn try_recover(&self, slot: &mut Option<SqliteConnection>, background: bool) -> bool {
        match self.gate.start_probe(background) {
            Probe::Healthy => return true,
            Probe::Refuse => return false,
            Probe::Now => {}
        }
        *slot = None;
        if let Err(reason) = self.check_identity() {
            self.fail(reason, true);
            return false;
        }
        let mut connection = match self.options.connect().await {
            Ok(connection) => connection,
            Err(err) => {
                tracing::debug!(error = %err, "Storage probe: cannot re-open the database.");
                return false;
            }
        };
        let probe = step(|conn| {
            Box::pin(async move {
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis()
                    .to_string();
                sqlx::query(
                    "INSERT INTO settings (name, value) VALUES (?, ?)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )
                .bind(PROBE_SETTING)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        });
        match self.run(&mut connection, probe).await {
            Ok(()) => {}
            Err(Failure::Fault(reason) | Failure::Rejected(reason)) => {
                tracing::debug!(error = %reason, "Storage probe failed.");
                if let Err(reason) = self.check_identity() {
                    self.fail(reason, true);
                }
                return false;
            }
            Err(Failure::Conflict(_)) => return false,
        }
        *slot = Some(connection);
        self.gate.recovered();
        true
    }

    /// One write transaction on the writer connection, with the fault handling of the module
    /// doc.
    async fn transact<T>(&self, body: Step<T>) -> Result<T, StoreError> {
        let mut slot = self.connection.lock().await;
        if self.gate.is_faulted() && !self.try_recover(&mut slot, false).await {
            return Err(self.gate.refuse());
        }
        if slot.is_none() {
            match self.options.connect().await {
                Ok(connection) => *slot = Some(connection),
                Err(err) => {
                    let reason = format!("cannot open the database: {err}");
                    self.fail(reason.clone(), false);
                    return Err(StoreError::Unavailable(reason));
                }
            }
        }
        let Some(connection) = slot.as_mut() else {
            return Err(self.gate.refuse());
        };
        match self.run(connection, body).await {
            Ok(value) => Ok(value),
            Err(Failure::Conflict(key)) => Err(StoreError::Conflict(key)),
            Err(Failure::Rejected(reason)) => {
                // A statement the schema refuses (a repeated unique key, a bad name) is a bug
                // of the caller, not a fault of the store: logged here, as the services do not
                // log `Unavailable` again.
                tracing::error!(error = %reason, "A write was refused by the schema; nothing was written.");
                Err(StoreError::Unavailable(reason))
            }
            Err(Failure::Fault(reason)) => {
                *slot = None;
                let lost = self.check_identity();
                let restart_required = lost.is_err();
                let reason = lost.err().unwrap_or(reason);
                self.fail(reason.clone(), restart_required);
                Err(StoreError::Unavailable(reason))
            }
        }
    }

    /// `BEGIN IMMEDIATE`, the body, then `COMMIT` and a check that the file is still the one
    /// opened, or `ROLLBACK` after a conflict or a rejected statement. A failed `ROLLBACK`
    /// is a fault too: the connection's state is then unknown.
    async fn run<T>(&self, connection: &mut SqliteConnection, body: Step<T>) -> Result<T, Failure> {
        execute(connection, "BEGIN IMMEDIATE").await?;
        match body(connection).await {
            Ok(value) => {
                execute(connection, "COMMIT").await?;
                self.check_identity().map_err(Failure::Fault)?;
                Ok(value)
            }
            Err(failure @ (Failure::Conflict(_) | Failure::Rejected(_))) => {
                match execute(connection, "ROLLBACK").await {
                    Ok(()) => Err(failure),
                    Err(Failure::Fault(err) | Failure::Rejected(err)) => {
                        Err(Failure::Fault(format!("rollback failed: {err}")))
                    }
                    Err(conflict @ Failure::Conflict(_)) => Err(conflict),
                }
            }
            Err(fault) => Err(fault),
        }
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
        self.transact(step(move |conn| Box::pin(apply_batch(conn, batch))))
            .await
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
        let log = log.clone();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.transact(step(move |conn| {
            Box::pin(async move {
                // By the time index, not the primary key: the cost follows what expired, not
                // the log.
                let done = sqlx::query(
                    "DELETE FROM log_entries
                     WHERE kind = ?1 AND account = ?2 AND region = ?3 AND log = ?4 AND sequence IN (
                         SELECT sequence FROM log_entries INDEXED BY log_entries_by_last_time
                         WHERE kind = ?1 AND account = ?2 AND region = ?3 AND log = ?4
                           AND last_time < ?5 AND at_millis >= ?6
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
                .bind(limit)
                .execute(&mut *conn)
                .await?;
                Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
            })
        }))
        .await
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
        let values: Vec<String> = scope.iter().map(|(_, value)| (*value).to_owned()).collect();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.transact(step(move |conn| {
            Box::pin(async move {
                let mut query = sqlx::query(&statement);
                for value in &values {
                    query = query.bind(value);
                }
                let done = query.bind(before).bind(limit).execute(&mut *conn).await?;
                Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
            })
        }))
        .await
    }

    async fn scan_rows(
        &self,
        table: &'static str,
        scope: &[(&'static str, &str)],
        time_column: &'static str,
        from: (i64, i64),
        until: i64,
        limit: usize,
    ) -> Result<Vec<RowAt>, StoreError> {
        let names_ok = is_identifier(table)
            && is_identifier(time_column)
            && scope.iter().all(|(column, _)| is_identifier(column));
        if !names_ok {
            return Err(StoreError::Unavailable(format!(
                "invalid table or column name in {table}"
            )));
        }
        // By time: the row-value comparison walks the (scope..., time) index from the cursor.
        // By row number: a range of the table itself (the unary `+` keeps SQLite off the scope
        // indexes, which would sort the whole scope for each page).
        let by_row = time_column == "rowid";
        let mut conditions: Vec<String> = scope
            .iter()
            .map(|(c, _)| {
                if by_row {
                    format!("+{c} = ?")
                } else {
                    format!("{c} = ?")
                }
            })
            .collect();
        if by_row {
            conditions.push("rowid > ?".to_owned());
        } else {
            conditions.push(format!("({time_column}, rowid) > (?, ?)"));
        }
        conditions.push(format!("{time_column} < ?"));
        let statement = format!(
            "SELECT {time_column} AS _time, rowid AS _row, * FROM {table} WHERE {}
             ORDER BY {time_column}, rowid LIMIT ?",
            conditions.join(" AND ")
        );
        let mut query = sqlx::query(&statement);
        for (_, value) in scope {
            query = query.bind(*value);
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        if !by_row {
            query = query.bind(from.0);
        }
        let rows = query
            .bind(from.1)
            .bind(until)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                let at: (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
                let mut map = serde_json::Map::new();
                for (index, column) in row.columns().iter().enumerate().skip(2) {
                    let text: Option<String> = match row.try_get::<Option<String>, _>(index) {
                        Ok(text) => text,
                        Err(_) => row.try_get::<Option<i64>, _>(index)?.map(|n| n.to_string()),
                    };
                    map.insert(
                        column.name().to_owned(),
                        text.map_or(serde_json::Value::Null, serde_json::Value::String),
                    );
                }
                Ok((at, map))
            })
            .collect()
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

    async fn init_settings(&self, settings: &[(&str, &str)]) -> Result<Vec<String>, StoreError> {
        // Read first: every start asks, and only the first start of a data directory needs
        // the write (and its sync). A setting, once set, never changes, so a value read here
        // is the one in force; two callers writing the same one at once agree on the first.
        let kept: HashMap<String, String> = sqlx::query_as("SELECT name, value FROM settings")
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .collect();
        let values: Option<Vec<String>> = settings
            .iter()
            .map(|(name, _)| kept.get(*name).cloned())
            .collect();
        if let Some(values) = values {
            return Ok(values);
        }
        let settings: Vec<(String, String)> = settings
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        self.transact(step(move |conn| {
            Box::pin(async move {
                let mut values = Vec::with_capacity(settings.len());
                for (name, value) in &settings {
                    sqlx::query(
                        "INSERT INTO settings (name, value) VALUES (?, ?)
                         ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(name)
                    .bind(value)
                    .execute(&mut *conn)
                    .await?;
                    values.push(
                        sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
                            .bind(name)
                            .fetch_one(&mut *conn)
                            .await?,
                    );
                }
                Ok(values)
            })
        }))
        .await
    }

    async fn reset(&self) -> Result<(), StoreError> {
        self.transact(step(|conn| {
            Box::pin(async move {
                // Every table the migrations made, but the settings and the migration history.
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table'
                     AND name NOT IN ('settings', '_sqlx_migrations') AND name NOT LIKE 'sqlite_%'",
                )
                .fetch_all(&mut *conn)
                .await?;
                for table in tables.iter().filter(|name| is_identifier(name)) {
                    sqlx::query(&format!("DELETE FROM {table}"))
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            })
        }))
        .await
    }

    fn health(&self) -> StoreHealth {
        self.writer.gate.health()
    }
}

/// Most parameters one SQLite statement takes (SQLITE_MAX_VARIABLE_NUMBER since 3.32).
const MAX_PARAMETERS: usize = 32_766;

/// The statements of one batch (see [`Store::write`]), inside the writer's transaction.
async fn apply_batch(conn: &mut SqliteConnection, batch: Vec<Write>) -> Result<Vec<i64>, Failure> {
    let mut sequences = Vec::new();
    // The tail of each log appended to in this batch, read once: a batch of a thousand
    // events into one stream costs one MAX query, not a thousand.
    let mut tails: HashMap<&RecordKey, i64> = HashMap::new();
    let mut writes = batch.iter().peekable();
    while let Some(write) = writes.next() {
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
                        .fetch_one(&mut *conn)
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
                .execute(&mut *conn)
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
                    return Err(Failure::Rejected(format!(
                        "invalid table or column name in {table}"
                    )));
                }
                let columns: Vec<&str> = row.iter().map(|(column, _)| *column).collect();
                let one_row = format!("({})", vec!["?"; columns.len()].join(", "));
                let rows = super::insert_run(table, row, &mut writes);
                for chunk in rows.chunks((MAX_PARAMETERS / columns.len().max(1)).max(1)) {
                    let statement = format!(
                        "INSERT INTO {table} ({}) VALUES {}",
                        columns.join(", "),
                        vec![one_row.as_str(); chunk.len()].join(", ")
                    );
                    // Runs of other lengths would crowd the statement cache out.
                    let mut query = sqlx::query(&statement).persistent(chunk.len() == 1);
                    for (_, value) in chunk.iter().copied().flatten() {
                        query = query.bind(super::column_text(value));
                    }
                    query.execute(&mut *conn).await?;
                }
                continue;
            }
            Write::DeleteRows { table, rows } => {
                if !is_identifier(table) {
                    return Err(Failure::Rejected(format!("invalid table name {table}")));
                }
                for chunk in rows.chunks(500) {
                    let placeholders = vec!["?"; chunk.len()].join(", ");
                    let statement = format!("DELETE FROM {table} WHERE rowid IN ({placeholders})");
                    let mut query = sqlx::query(&statement);
                    for row in chunk {
                        query = query.bind(row);
                    }
                    query.execute(&mut *conn).await?;
                }
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
                .execute(&mut *conn)
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
                    .execute(&mut *conn)
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
        .fetch_optional(&mut *conn)
        .await?;
        let holds = match expect {
            Expect::Any => true,
            Expect::Absent => current.is_none(),
            Expect::Version(version) => current == Some(version),
        };
        if !holds {
            return Err(Failure::Conflict(key.clone()));
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
                .execute(&mut *conn)
                .await?;
            }
            Write::Append { .. }
            | Write::DeleteLog { .. }
            | Write::TrimLog { .. }
            | Write::Insert { .. }
            | Write::DeleteRows { .. } => {}
            Write::Delete { .. } => {
                sqlx::query("DELETE FROM records WHERE kind = ? AND account = ? AND region = ? AND name = ?")
                    .bind(key.kind)
                    .bind(&key.account)
                    .bind(&key.region)
                    .bind(&key.name)
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    Ok(sequences)
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
            super::super::is_identifier("event_id")
                && !super::super::is_identifier("a b")
                && !super::super::is_identifier("1a")
        );
    }

    #[tokio::test]
    async fn declared_unique_keys_match_the_schema() {
        use sqlx::{Connection, Row};
        let dir = tempfile::tempdir().expect("tempdir");
        let _store = super::SqliteStore::open(dir.path()).await.expect("open");
        let url = format!("sqlite://{}", dir.path().join("sluice.db").display());
        let mut connection = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("connect");
        for table in super::super::TABLES {
            let indexes = sqlx::query(&format!("PRAGMA index_list({})", table.name))
                .fetch_all(&mut connection)
                .await
                .expect("index_list");
            let mut keys = Vec::new();
            for index in indexes {
                let unique: i64 = index.try_get("unique").expect("unique");
                let origin: String = index.try_get("origin").expect("origin");
                if unique == 0 || origin == "pk" {
                    continue;
                }
                let name: String = index.try_get("name").expect("name");
                let columns = sqlx::query(&format!("PRAGMA index_info('{name}')"))
                    .fetch_all(&mut connection)
                    .await
                    .expect("index_info");
                let columns: Vec<String> = columns
                    .iter()
                    .map(|c| c.try_get("name").expect("column"))
                    .collect();
                keys.push(columns);
            }
            assert_eq!(keys, [table.unique.to_vec()], "{}", table.name);
        }
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
