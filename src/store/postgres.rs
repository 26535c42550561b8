//! The PostgreSQL store, for Sluice nodes that share one state (`--store postgres://...`).
//!
//! Same contract as [`super::sqlite`], on an engine made for many writers:
//! - A batch is one transaction on a pooled connection, run in a task of its own so that a
//!   cancelled request cannot leave it half-done. Conditions are checked by the statements
//!   that write: `INSERT ... ON CONFLICT DO NOTHING` for [`Expect::Absent`], `UPDATE/DELETE
//!   ... WHERE version = $v` for [`Expect::Version`], each counting the rows it touched. Under
//!   READ COMMITTED a competing transaction waits for the row lock and then sees the committed
//!   row, so of two writers expecting the same version exactly one wins, on any node.
//! - Appends to a log take a transaction-scoped advisory lock on the log first (all of a
//!   batch's logs, in key order), so sequence numbers stay gap-free in commit order when
//!   several nodes append to one log.
//! - A batch whose `COMMIT` was never answered has an unknown outcome: the connection is
//!   dropped and every later write is refused with [`StoreError::Unavailable`] until a probe
//!   write commits (at most one probe a second on the write path, and every
//!   [`PROBE_INTERVAL`] in the background). So is every write while PostgreSQL cannot be
//!   reached (no connection, `BEGIN` failed), so that `/_sluice/health` says "degraded" to a
//!   load balancer. Any other failure before `COMMIT` is known not to have committed; it is
//!   refused without entering that state.
//! - A deadlock or serialization failure between two batches rolls one back; it is answered as
//!   a [`StoreError::Conflict`], like a lost race.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use sqlx::error::ErrorKind;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Column, Connection, Row};

use super::fault_gate::{FaultGate, Probe, PROBE_INTERVAL, PROBE_SETTING};
use super::{
    is_identifier, EntrySpan, Expect, LogEntry, Record, RecordKey, RowAt, Store, StoreError,
    StoreHealth, TimeOrder, Write,
};

/// Connections per node: enough for the request path and the background workers, small
/// enough that a few nodes stay under PostgreSQL's default `max_connections` (100).
const MAX_CONNECTIONS: u32 = 16;
/// How long a request waits for a connection (or for PostgreSQL to answer a connect) before
/// it is refused with a 503, which clients retry.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: PgPool,
    shared: Arc<Shared>,
    prober: tokio::task::JoinHandle<()>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.prober.abort();
    }
}

/// What the request path and the background prober share.
struct Shared {
    pool: PgPool,
    /// Column types of the tables `Write::Insert` fills (`bigint` columns get a cast).
    columns: HashMap<(String, String), String>,
    gate: FaultGate,
}

/// How a transaction's body ended, when not with success.
enum Failure {
    /// An expectation did not hold (or PostgreSQL rolled the batch back to break a deadlock);
    /// nothing was written.
    Conflict(RecordKey),
    /// The statement was refused for what it asked (a duplicate table key, a bad name) or
    /// failed before `COMMIT`: nothing was written.
    Refused(String),
}

impl Failure {
    fn from_sqlx(err: sqlx::Error, key: Option<&RecordKey>) -> Self {
        if let sqlx::Error::Database(db) = &err {
            let retryable = matches!(db.code().as_deref(), Some("40001" | "40P01"));
            if let (true, Some(key)) = (retryable, key) {
                return Failure::Conflict(key.clone());
            }
            if matches!(
                db.kind(),
                ErrorKind::UniqueViolation
                    | ErrorKind::ForeignKeyViolation
                    | ErrorKind::NotNullViolation
                    | ErrorKind::CheckViolation
            ) {
                return Failure::Refused(err.to_string());
            }
        }
        Failure::Refused(err.to_string())
    }
}

type Body<T> =
    Box<dyn for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, Failure>> + Send>;

fn body<T, F>(f: F) -> Body<T>
where
    F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, Failure>> + Send + 'static,
{
    Box::new(f)
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) and applies pending
    /// migrations (sqlx holds an advisory lock meanwhile, so nodes starting together apply
    /// them once).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|err| StoreError::Unavailable(format!("invalid PostgreSQL URL: {err}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|err| StoreError::Unavailable(format!("migration failed: {err}")))?;
        let columns = sqlx::query(
            "SELECT table_name::text, column_name::text, data_type::text
             FROM information_schema.columns WHERE table_schema = current_schema()",
        )
        .fetch_all(&pool)
        .await?
        .iter()
        .map(|row| Ok(((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?)))
        .collect::<Result<_, sqlx::Error>>()?;
        let shared = Arc::new(Shared {
            pool: pool.clone(),
            columns,
            gate: FaultGate::default(),
        });
        let prober = tokio::spawn(probe_in_background(Arc::downgrade(&shared)));
        Ok(Self {
            pool,
            shared,
            prober,
        })
    }

    /// Runs `body` as one transaction in a task of its own.
    async fn transact<T: Send + 'static>(&self, body: Body<T>) -> Result<T, StoreError> {
        let shared = self.shared.clone();
        super::detached(async move { shared.transact(body).await }).await
    }
}

async fn probe_in_background(shared: Weak<Shared>) {
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.gate.is_faulted() {
            shared.try_recover(true).await;
        }
    }
}

/// How one transaction attempt ended.
enum Outcome<T> {
    Committed(T),
    /// Known not to have committed.
    NotCommitted(Failure),
    /// `COMMIT` was sent and not answered with success: unknown.
    Unknown(String),
    /// PostgreSQL could not be reached (no connection, or `BEGIN` failed): nothing was
    /// written, and nothing will be until it is back.
    Unreachable(String),
}

impl Shared {
    /// Commits a probe write unless one was tried just now (on the write path); returns
    /// whether the store takes writes again.
    async fn try_recover(&self, background: bool) -> bool {
        match self.gate.start_probe(background) {
            Probe::Healthy => return true,
            Probe::Refuse => return false,
            Probe::Now => {}
        }
        let probe = body(|conn| {
            Box::pin(async move {
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis()
                    .to_string();
                sqlx::query(
                    "INSERT INTO settings (name, value) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                )
                .bind(PROBE_SETTING)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(|err| Failure::from_sqlx(err, None))?;
                Ok(())
            })
        });
        match self.attempt(probe).await {
            Outcome::Committed(()) => {}
            Outcome::NotCommitted(Failure::Conflict(_)) => return false,
            Outcome::NotCommitted(Failure::Refused(reason))
            | Outcome::Unknown(reason)
            | Outcome::Unreachable(reason) => {
                tracing::debug!(error = %reason, "Storage probe failed.");
                return false;
            }
        }
        self.gate.recovered();
        true
    }

    async fn transact<T>(&self, body: Body<T>) -> Result<T, StoreError> {
        if self.gate.is_faulted() && !self.try_recover(false).await {
            return Err(self.gate.refuse());
        }
        match self.attempt(body).await {
            Outcome::Committed(value) => Ok(value),
            Outcome::NotCommitted(Failure::Conflict(key)) => Err(StoreError::Conflict(key)),
            Outcome::NotCommitted(Failure::Refused(reason)) => Err(StoreError::Unavailable(reason)),
            Outcome::Unknown(reason) | Outcome::Unreachable(reason) => {
                self.gate.fail(
                    "PostgreSQL is unreachable or did not confirm a commit",
                    reason.clone(),
                    false,
                );
                Err(StoreError::Unavailable(reason))
            }
        }
    }

    /// `BEGIN`, the body, `COMMIT` (or `ROLLBACK`) on a pooled connection. A connection that
    /// saw any error other than a clean conflict is closed, never returned to the pool.
    async fn attempt<T>(&self, body: Body<T>) -> Outcome<T> {
        let mut connection = match self.pool.acquire().await {
            Ok(connection) => connection,
            Err(err) => {
                return Outcome::Unreachable(format!("cannot reach PostgreSQL: {err}"));
            }
        };
        if let Err(err) = sqlx::query("BEGIN").execute(&mut *connection).await {
            let _ = connection.detach().close().await;
            return Outcome::Unreachable(format!("BEGIN failed: {err}"));
        }
        match body(&mut connection).await {
            Ok(value) => match sqlx::query("COMMIT").execute(&mut *connection).await {
                Ok(_) => Outcome::Committed(value),
                Err(err) => {
                    let _ = connection.detach().close().await;
                    Outcome::Unknown(format!("COMMIT failed: {err}"))
                }
            },
            Err(failure) => {
                let rolled_back = sqlx::query("ROLLBACK").execute(&mut *connection).await;
                let clean = matches!(failure, Failure::Conflict(_)) && rolled_back.is_ok();
                if !clean {
                    // The transaction never committed; the connection may be broken.
                    let _ = connection.detach().close().await;
                }
                if let Failure::Refused(reason) = &failure {
                    tracing::error!(error = %reason, "PostgreSQL refused a write.");
                }
                Outcome::NotCommitted(failure)
            }
        }
    }
}

fn record_from_row(kind: &'static str, row: &PgRow) -> Result<Record, StoreError> {
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

fn entry_from_row(row: &PgRow) -> Result<LogEntry, StoreError> {
    Ok(LogEntry {
        sequence: row.try_get("sequence")?,
        at_millis: row.try_get("at_millis")?,
        meta: row.try_get("meta")?,
        data: row.try_get("data")?,
        span: (row.try_get("first_time")?, row.try_get("last_time")?),
    })
}

/// A table row's values as text or null, as the contract gives them, from column `skip` on;
/// `row_id` (the row number, given separately) is left out.
fn row_values(
    row: &PgRow,
    skip: usize,
) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
    let mut map = serde_json::Map::new();
    for (index, column) in row.columns().iter().enumerate().skip(skip) {
        if column.name() == "row_id" {
            continue;
        }
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
}

/// SQLite's implicit `rowid`, which callers name, is `row_id` here.
fn column_name(name: &'static str) -> &'static str {
    if name == "rowid" {
        "row_id"
    } else {
        name
    }
}

/// `column = $n` for each scope column, numbered from `$1`.
fn scope_conditions(scope: &[(&'static str, &str)]) -> Vec<String> {
    scope
        .iter()
        .enumerate()
        .map(|(index, (column, _))| format!("{column} = ${}", index + 1))
        .collect()
}

fn check_names(table: &str, columns: &[&str]) -> Result<(), StoreError> {
    if is_identifier(table) && columns.iter().all(|column| is_identifier(column)) {
        Ok(())
    } else {
        Err(StoreError::Unavailable(format!(
            "invalid table or column name in {table}"
        )))
    }
}

fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[async_trait]
impl Store for PostgresStore {
    async fn get(&self, key: &RecordKey) -> Result<Option<Record>, StoreError> {
        let row = sqlx::query(
            "SELECT account, region, name, version, body FROM records
             WHERE kind = $1 AND account = $2 AND region = $3 AND name = $4",
        )
        .bind(key.kind)
        .bind(&key.account)
        .bind(&key.region)
        .bind(&key.name)
        .fetch_optional(&self.pool)
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
        limit_to: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let rows = sqlx::query(
            "SELECT account, region, name, version, body FROM records
             WHERE kind = $1 AND account = $2 AND region = $3
               AND starts_with(name, $4) AND name > $5
             ORDER BY name LIMIT $6",
        )
        .bind(kind)
        .bind(account)
        .bind(region)
        .bind(prefix)
        .bind(after.unwrap_or(""))
        .bind(limit(limit_to))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| record_from_row(kind, row)).collect()
    }

    async fn write(&self, batch: Vec<Write>) -> Result<Vec<i64>, StoreError> {
        let columns = self.shared.clone();
        self.transact(body(move |conn| {
            Box::pin(async move { apply_batch(conn, &columns.columns, batch).await })
        }))
        .await
    }

    async fn read_log(
        &self,
        log: &RecordKey,
        from: i64,
        limit_to: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT sequence, at_millis, meta, data, first_time, last_time FROM log_entries
             WHERE kind = $1 AND account = $2 AND region = $3 AND log = $4 AND sequence >= $5
             ORDER BY sequence LIMIT $6",
        )
        .bind(log.kind)
        .bind(&log.account)
        .bind(&log.region)
        .bind(&log.name)
        .bind(from)
        .bind(limit(limit_to))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn seek_log(&self, log: &RecordKey, at_millis: i64) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT sequence FROM log_entries
             WHERE kind = $1 AND account = $2 AND region = $3 AND log = $4 AND at_millis >= $5
             ORDER BY sequence LIMIT 1",
        )
        .bind(log.kind)
        .bind(&log.account)
        .bind(&log.region)
        .bind(&log.name)
        .bind(at_millis)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn select_rows(
        &self,
        table: &'static str,
        column: &'static str,
        value: &str,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, StoreError> {
        check_names(table, &[column])?;
        let statement = format!("SELECT * FROM {table} WHERE {column} = $1 ORDER BY row_id");
        let rows = sqlx::query(&statement)
            .bind(value)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| row_values(row, 0)).collect()
    }

    async fn read_log_spans(
        &self,
        log: &RecordKey,
        order: TimeOrder,
        from: (i64, i64),
        window: (i64, i64),
        limit_to: usize,
    ) -> Result<Vec<EntrySpan>, StoreError> {
        let statement = match order {
            TimeOrder::Forward => {
                "SELECT sequence, first_time, last_time FROM log_entries
                 WHERE kind = $1 AND account = $2 AND region = $3 AND log = $4
                   AND (first_time, sequence) >= ($5, $6) AND first_time <= $7 AND last_time >= $8
                 ORDER BY first_time, sequence LIMIT $9"
            }
            TimeOrder::Backward => {
                "SELECT sequence, first_time, last_time FROM log_entries
                 WHERE kind = $1 AND account = $2 AND region = $3 AND log = $4
                   AND (last_time, sequence) <= ($5, $6) AND first_time <= $7 AND last_time >= $8
                 ORDER BY last_time DESC, sequence DESC LIMIT $9"
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
            .bind(limit(limit_to))
            .fetch_all(&self.pool)
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
        limit_to: usize,
    ) -> Result<usize, StoreError> {
        let log = log.clone();
        let limit_to = limit(limit_to);
        self.transact(body(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "DELETE FROM log_entries
                     WHERE kind = $1 AND account = $2 AND region = $3 AND log = $4 AND sequence IN (
                         SELECT sequence FROM log_entries
                         WHERE kind = $1 AND account = $2 AND region = $3 AND log = $4
                           AND last_time < $5 AND at_millis >= $6
                           AND sequence < (SELECT MAX(sequence) FROM log_entries
                                           WHERE kind = $1 AND account = $2 AND region = $3 AND log = $4)
                         ORDER BY last_time, sequence
                         LIMIT $7)",
                )
                .bind(log.kind)
                .bind(&log.account)
                .bind(&log.region)
                .bind(&log.name)
                .bind(before)
                .bind(accepted_from)
                .bind(limit_to)
                .execute(&mut *conn)
                .await
                .map_err(|err| Failure::from_sqlx(err, None))?;
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
        limit_to: usize,
    ) -> Result<usize, StoreError> {
        let time_column = column_name(time_column);
        let mut names: Vec<&str> = scope.iter().map(|(column, _)| *column).collect();
        names.push(time_column);
        check_names(table, &names)?;
        let mut conditions = scope_conditions(scope);
        let n = scope.len();
        conditions.push(format!("{time_column} < ${}", n + 1));
        let statement = format!(
            "DELETE FROM {table} WHERE row_id IN (SELECT row_id FROM {table} WHERE {} LIMIT ${})",
            conditions.join(" AND "),
            n + 2
        );
        let values: Vec<String> = scope.iter().map(|(_, value)| (*value).to_owned()).collect();
        let limit_to = limit(limit_to);
        self.transact(body(move |conn| {
            Box::pin(async move {
                let mut query = sqlx::query(&statement);
                for value in &values {
                    query = query.bind(value);
                }
                let done = query
                    .bind(before)
                    .bind(limit_to)
                    .execute(&mut *conn)
                    .await
                    .map_err(|err| Failure::from_sqlx(err, None))?;
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
        limit_to: usize,
    ) -> Result<Vec<RowAt>, StoreError> {
        let time_column = column_name(time_column);
        let mut names: Vec<&str> = scope.iter().map(|(column, _)| *column).collect();
        names.push(time_column);
        check_names(table, &names)?;
        let by_row = time_column == "row_id";
        let mut conditions = scope_conditions(scope);
        let mut next = scope.len() + 1;
        if by_row {
            conditions.push(format!("row_id > ${next}"));
            next += 1;
        } else {
            conditions.push(format!(
                "({time_column}, row_id) > (${next}, ${})",
                next + 1
            ));
            next += 2;
        }
        conditions.push(format!("{time_column} < ${next}"));
        let statement = format!(
            "SELECT {time_column} AS _time, row_id AS _row, * FROM {table} WHERE {}
             ORDER BY {time_column}, row_id LIMIT ${}",
            conditions.join(" AND "),
            next + 1
        );
        let mut query = sqlx::query(&statement);
        for (_, value) in scope {
            query = query.bind(*value);
        }
        if !by_row {
            query = query.bind(from.0);
        }
        let rows = query
            .bind(from.1)
            .bind(until)
            .bind(limit(limit_to))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let at: (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
                Ok((at, row_values(row, 2)?))
            })
            .collect()
    }

    async fn scan(
        &self,
        kind: &'static str,
        after: Option<&RecordKey>,
        limit_to: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let (account, region, name) = after.map_or(("", "", ""), |key| {
            (key.account.as_str(), key.region.as_str(), key.name.as_str())
        });
        let rows = sqlx::query(
            "SELECT account, region, name, version, body FROM records
             WHERE kind = $1 AND (account, region, name) > ($2, $3, $4)
             ORDER BY account, region, name LIMIT $5",
        )
        .bind(kind)
        .bind(account)
        .bind(region)
        .bind(name)
        .bind(limit(limit_to))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| record_from_row(kind, row)).collect()
    }

    async fn log_tail(&self, log: &RecordKey) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(MAX(sequence), 0) FROM log_entries
             WHERE kind = $1 AND account = $2 AND region = $3 AND log = $4",
        )
        .bind(log.kind)
        .bind(&log.account)
        .bind(&log.region)
        .bind(&log.name)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn get_setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn init_settings(&self, settings: &[(&str, &str)]) -> Result<Vec<String>, StoreError> {
        let settings: Vec<(String, String)> = settings
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        self.transact(body(move |conn| {
            Box::pin(async move {
                let mut values = Vec::with_capacity(settings.len());
                for (name, value) in &settings {
                    sqlx::query(
                        "INSERT INTO settings (name, value) VALUES ($1, $2)
                         ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(name)
                    .bind(value)
                    .execute(&mut *conn)
                    .await
                    .map_err(|err| Failure::from_sqlx(err, None))?;
                    values.push(
                        sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                            .bind(name)
                            .fetch_one(&mut *conn)
                            .await
                            .map_err(|err| Failure::from_sqlx(err, None))?,
                    );
                }
                Ok(values)
            })
        }))
        .await
    }

    async fn reset(&self) -> Result<(), StoreError> {
        self.transact(body(|conn| {
            Box::pin(async move {
                // Every table the migrations made, but the settings and the migration history.
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()
                     AND tablename NOT IN ('settings', '_sqlx_migrations')",
                )
                .fetch_all(&mut *conn)
                .await
                .map_err(|err| Failure::from_sqlx(err, None))?;
                let tables: Vec<&str> = tables
                    .iter()
                    .map(String::as_str)
                    .filter(|name| is_identifier(name))
                    .collect();
                if !tables.is_empty() {
                    sqlx::query(&format!("TRUNCATE {}", tables.join(", ")))
                        .execute(&mut *conn)
                        .await
                        .map_err(|err| Failure::from_sqlx(err, None))?;
                }
                Ok(())
            })
        }))
        .await
    }

    fn health(&self) -> StoreHealth {
        self.shared.gate.health()
    }
}

/// The statements of one batch, inside its transaction.
/// Most parameters one PostgreSQL statement takes (the protocol counts them in 16 bits).
const MAX_PARAMETERS: usize = 65_535;

async fn apply_batch(
    conn: &mut PgConnection,
    columns: &HashMap<(String, String), String>,
    batch: Vec<Write>,
) -> Result<Vec<i64>, Failure> {
    // Every log this batch appends to is locked first, in one order, so that two batches
    // appending to the same logs cannot deadlock on them.
    let logs: BTreeSet<&RecordKey> = batch
        .iter()
        .filter_map(|write| match write {
            Write::Append { log, .. } => Some(log),
            _ => None,
        })
        .collect();
    for log in &logs {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!(
                "{}\u{1f}{}\u{1f}{}\u{1f}{}",
                log.kind, log.account, log.region, log.name
            ))
            .execute(&mut *conn)
            .await
            .map_err(|err| Failure::from_sqlx(err, None))?;
    }
    let mut sequences = Vec::new();
    let mut tails: HashMap<&RecordKey, i64> = HashMap::new();
    let mut writes = batch.iter().peekable();
    while let Some(write) = writes.next() {
        match write {
            Write::Put { key, body, expect } => {
                let body = body.to_string();
                let statement = match expect {
                    Expect::Any => {
                        "INSERT INTO records (kind, account, region, name, version, body)
                         VALUES ($1, $2, $3, $4, 1, $5)
                         ON CONFLICT (kind, account, region, name)
                         DO UPDATE SET version = records.version + 1, body = EXCLUDED.body"
                    }
                    Expect::Absent => {
                        "INSERT INTO records (kind, account, region, name, version, body)
                         VALUES ($1, $2, $3, $4, 1, $5)
                         ON CONFLICT (kind, account, region, name) DO NOTHING"
                    }
                    Expect::Version(_) => {
                        "UPDATE records SET version = version + 1, body = $5
                         WHERE kind = $1 AND account = $2 AND region = $3 AND name = $4
                           AND version = $6"
                    }
                };
                let mut query = sqlx::query(statement)
                    .bind(key.kind)
                    .bind(&key.account)
                    .bind(&key.region)
                    .bind(&key.name)
                    .bind(body);
                if let Expect::Version(version) = expect {
                    query = query.bind(version);
                }
                let done = query
                    .execute(&mut *conn)
                    .await
                    .map_err(|err| Failure::from_sqlx(err, Some(key)))?;
                if done.rows_affected() != 1 {
                    return Err(Failure::Conflict(key.clone()));
                }
            }
            Write::Delete { key, expect } => {
                let done = match expect {
                    Expect::Absent => {
                        let exists: Option<i64> = sqlx::query_scalar(
                            "SELECT version FROM records
                             WHERE kind = $1 AND account = $2 AND region = $3 AND name = $4",
                        )
                        .bind(key.kind)
                        .bind(&key.account)
                        .bind(&key.region)
                        .bind(&key.name)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(|err| Failure::from_sqlx(err, Some(key)))?;
                        if exists.is_some() {
                            return Err(Failure::Conflict(key.clone()));
                        }
                        continue;
                    }
                    Expect::Any => {
                        sqlx::query(
                            "DELETE FROM records
                         WHERE kind = $1 AND account = $2 AND region = $3 AND name = $4",
                        )
                        .bind(key.kind)
                        .bind(&key.account)
                        .bind(&key.region)
                        .bind(&key.name)
                        .execute(&mut *conn)
                        .await
                    }
                    Expect::Version(version) => {
                        sqlx::query(
                            "DELETE FROM records
                         WHERE kind = $1 AND account = $2 AND region = $3 AND name = $4
                           AND version = $5",
                        )
                        .bind(key.kind)
                        .bind(&key.account)
                        .bind(&key.region)
                        .bind(&key.name)
                        .bind(version)
                        .execute(&mut *conn)
                        .await
                    }
                }
                .map_err(|err| Failure::from_sqlx(err, Some(key)))?;
                if matches!(expect, Expect::Version(_)) && done.rows_affected() != 1 {
                    return Err(Failure::Conflict(key.clone()));
                }
            }
            Write::Append { log, entry } => {
                let tail = match tails.get(log) {
                    Some(tail) => *tail,
                    None => sqlx::query_scalar(
                        "SELECT COALESCE(MAX(sequence), 0) FROM log_entries
                         WHERE kind = $1 AND account = $2 AND region = $3 AND log = $4",
                    )
                    .bind(log.kind)
                    .bind(&log.account)
                    .bind(&log.region)
                    .bind(&log.name)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(|err| Failure::from_sqlx(err, None))?,
                };
                let sequence = tail + 1;
                tails.insert(log, sequence);
                let (first_time, last_time) =
                    entry.span.unwrap_or((entry.at_millis, entry.at_millis));
                sqlx::query(
                    "INSERT INTO log_entries
                     (kind, account, region, log, sequence, at_millis, meta, data, first_time, last_time)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(log.kind)
                .bind(&log.account)
                .bind(&log.region)
                .bind(&log.name)
                .bind(sequence)
                .bind(entry.at_millis)
                .bind(&entry.meta)
                .bind(&entry.data)
                .bind(first_time)
                .bind(last_time)
                .execute(&mut *conn)
                .await
                .map_err(|err| Failure::from_sqlx(err, None))?;
                sequences.push(sequence);
            }
            Write::DeleteLog { log } => {
                tails.remove(log);
                sqlx::query(
                    "DELETE FROM log_entries
                     WHERE kind = $1 AND account = $2 AND region = $3 AND log = $4",
                )
                .bind(log.kind)
                .bind(&log.account)
                .bind(&log.region)
                .bind(&log.name)
                .execute(&mut *conn)
                .await
                .map_err(|err| Failure::from_sqlx(err, None))?;
            }
            Write::TrimLog { log, before } => {
                sqlx::query(
                    "DELETE FROM log_entries
                     WHERE kind = $1 AND account = $2 AND region = $3 AND log = $4 AND sequence < $5",
                )
                .bind(log.kind)
                .bind(&log.account)
                .bind(&log.region)
                .bind(&log.name)
                .bind(before)
                .execute(&mut *conn)
                .await
                .map_err(|err| Failure::from_sqlx(err, None))?;
            }
            Write::Insert { table, row } => {
                let names: Vec<&str> = row.iter().map(|(column, _)| *column).collect();
                check_names(table, &names).map_err(|err| Failure::Refused(err.to_string()))?;
                // Parameters are sent as text; integer columns cast them. Which columns
                // those are is looked up once per run, not per row.
                let bigint: Vec<bool> = names
                    .iter()
                    .map(|column| {
                        columns
                            .get(&((*table).to_owned(), (*column).to_owned()))
                            .is_some_and(|kind| kind == "bigint")
                    })
                    .collect();
                let rows = super::insert_run(table, row, &mut writes);
                for chunk in rows.chunks((MAX_PARAMETERS / names.len().max(1)).max(1)) {
                    let values: Vec<String> = (0..chunk.len())
                        .map(|row| {
                            let placeholders: Vec<String> = bigint
                                .iter()
                                .enumerate()
                                .map(|(column, cast)| {
                                    let parameter = row * names.len() + column + 1;
                                    if *cast {
                                        format!("CAST(${parameter} AS BIGINT)")
                                    } else {
                                        format!("${parameter}")
                                    }
                                })
                                .collect();
                            format!("({})", placeholders.join(", "))
                        })
                        .collect();
                    let statement = format!(
                        "INSERT INTO {table} ({}) VALUES {}",
                        names.join(", "),
                        values.join(", ")
                    );
                    // Runs of other lengths would crowd the statement cache out.
                    let mut query = sqlx::query(&statement).persistent(chunk.len() == 1);
                    for (_, value) in chunk.iter().copied().flatten() {
                        query = query.bind(super::column_text(value));
                    }
                    query
                        .execute(&mut *conn)
                        .await
                        .map_err(|err| Failure::from_sqlx(err, None))?;
                }
            }
            Write::DeleteRows { table, rows } => {
                check_names(table, &[]).map_err(|err| Failure::Refused(err.to_string()))?;
                sqlx::query(&format!("DELETE FROM {table} WHERE row_id = ANY($1)"))
                    .bind(rows)
                    .execute(&mut *conn)
                    .await
                    .map_err(|err| Failure::from_sqlx(err, None))?;
            }
        }
    }
    Ok(sequences)
}

/// Test support: a fresh database on the server `SLUICE_TEST_POSTGRES` names, or `None` (and
/// a note on standard error) when it is not set, so the suite runs without PostgreSQL.
#[cfg(test)]
pub(crate) async fn test_database() -> Option<String> {
    let Ok(base) = std::env::var("SLUICE_TEST_POSTGRES") else {
        eprintln!("SLUICE_TEST_POSTGRES is not set: PostgreSQL store test skipped.");
        return None;
    };
    use sqlx::ConnectOptions;
    let name = format!("sluice_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&base)
        .await
        .expect("connect to SLUICE_TEST_POSTGRES");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    let mut options = PgConnectOptions::from_str(&base).expect("URL");
    options = options.database(&name);
    Some(options.to_url_lossy().to_string())
}

#[cfg(test)]
mod tests {
    use super::super::{Expect, RecordKey, Store, Write};
    use serde_json::json;

    #[tokio::test]
    async fn passes_the_conformance_scenario() {
        let Some(url) = super::test_database().await else {
            return;
        };
        let store = super::PostgresStore::open(&url).await.expect("open");
        super::super::conformance::run(&store).await;
    }

    #[tokio::test]
    async fn one_of_two_racing_creates_wins_and_appends_stay_gap_free() {
        let Some(url) = super::test_database().await else {
            return;
        };
        // Two stores on one database: two nodes.
        let a = std::sync::Arc::new(super::PostgresStore::open(&url).await.expect("open a"));
        let b = std::sync::Arc::new(super::PostgresStore::open(&url).await.expect("open b"));
        let key = RecordKey::new("test/thing", "111111111111", "us-east-1", "race");
        let create = |store: std::sync::Arc<super::PostgresStore>, n: i64| {
            let key = key.clone();
            tokio::spawn(async move {
                store
                    .write(vec![Write::Put {
                        key,
                        body: json!({ "n": n }),
                        expect: Expect::Absent,
                    }])
                    .await
            })
        };
        let mut tasks = Vec::new();
        for n in 0..20 {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(create(store, n));
        }
        let mut wins = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(_) => wins += 1,
                Err(super::StoreError::Conflict(_)) => {}
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!(wins, 1, "exactly one create wins");

        let log = RecordKey::new("test/log", "111111111111", "us-east-1", "l");
        let mut tasks = Vec::new();
        for n in 0..40 {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .write(vec![Write::Append {
                        log,
                        entry: super::super::NewEntry {
                            at_millis: n,
                            meta: String::new(),
                            data: vec![],
                            span: None,
                        },
                    }])
                    .await
            }));
        }
        let mut sequences = Vec::new();
        for task in tasks {
            sequences.extend(task.await.expect("task").expect("append"));
        }
        sequences.sort_unstable();
        assert_eq!(
            sequences,
            (1..=40).collect::<Vec<i64>>(),
            "gap-free, no duplicates"
        );
        assert_eq!(a.log_tail(&log).await.expect("tail"), 40);
    }
}
