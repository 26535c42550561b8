//! SQLite schema migrations, applied in one transaction.
//!
//! The migrations are sqlx's (`migrations/sqlite`, embedded and checksummed by
//! `sqlx::migrate!`), and so is the bookkeeping table, `_sqlx_migrations`: a data directory
//! migrated by either runner is read by the other. What differs is the transaction. sqlx's
//! runner commits each migration on its own and then updates its execution time in a second
//! statement, and checks its table in three more: on a fresh data directory that was about
//! 5 ms, a third of the time from spawn to the first answer. Here the table is checked, every
//! pending migration applied and recorded, in one `BEGIN IMMEDIATE` ... `COMMIT`, so a crash
//! leaves the schema either wholly before or wholly after them. The checks are sqlx's: a
//! migration recorded as failed, a recorded migration this build does not know, or a
//! recorded checksum that differs from the file refuses to start.

use std::collections::HashMap;
use std::time::Instant;

use sqlx::migrate::{Migration, Migrator};
use sqlx::{Row, SqliteConnection};

use super::StoreError;

/// The embedded SQLite migrations.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// `_sqlx_migrations` as sqlx 0.8 creates it.
const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
)";

/// Brings the schema up to date in one transaction on `connection`, the only connection
/// writing. On an error nothing was applied.
pub async fn migrate(connection: &mut SqliteConnection) -> Result<(), StoreError> {
    migrate_from(connection, &MIGRATOR.migrations).await
}

/// [`migrate`] with these migrations.
async fn migrate_from(
    connection: &mut SqliteConnection,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut *connection)
        .await?;
    let applied = apply_pending(connection, migrations).await;
    let end = if applied.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    let ended = sqlx::raw_sql(end).execute(&mut *connection).await;
    applied?;
    ended?;
    Ok(())
}

/// The statements inside the transaction.
async fn apply_pending(
    connection: &mut SqliteConnection,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    sqlx::raw_sql(BOOKKEEPING).execute(&mut *connection).await?;
    let rows = sqlx::query("SELECT version, checksum, success FROM _sqlx_migrations")
        .fetch_all(&mut *connection)
        .await?;
    let mut recorded = HashMap::new();
    for row in rows {
        let version: i64 = row.try_get("version")?;
        if !row.try_get::<bool, _>("success")? {
            return Err(refused(format!(
                "migration {version} is recorded as failed; repair the database by hand"
            )));
        }
        recorded.insert(version, row.try_get::<Vec<u8>, _>("checksum")?);
    }
    let known = |version: &i64| migrations.iter().any(|m| m.version == *version);
    if let Some(unknown) = recorded.keys().find(|version| !known(version)) {
        return Err(refused(format!(
            "the database has migration {unknown}, which this build of Sluice does not know \
             (was it written by a newer version?)"
        )));
    }
    let up = migrations
        .iter()
        .filter(|m| !m.migration_type.is_down_migration());
    for migration in up {
        match recorded.get(&migration.version) {
            Some(checksum) if *checksum == *migration.checksum => {}
            Some(_) => {
                return Err(refused(format!(
                    "migration {} was applied from a different file than this build's",
                    migration.version
                )))
            }
            None => {
                let started = Instant::now();
                sqlx::raw_sql(&migration.sql)
                    .execute(&mut *connection)
                    .await
                    .map_err(|err| {
                        refused(format!("migration {} failed: {err}", migration.version))
                    })?;
                let nanos = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
                sqlx::query(
                    "INSERT INTO _sqlx_migrations \
                     (version, description, success, checksum, execution_time) \
                     VALUES (?, ?, TRUE, ?, ?)",
                )
                .bind(migration.version)
                .bind(&*migration.description)
                .bind(&*migration.checksum)
                .bind(nanos)
                .execute(&mut *connection)
                .await?;
            }
        }
    }
    Ok(())
}

fn refused(reason: String) -> StoreError {
    StoreError::Unavailable(format!("migration failed: {reason}"))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::str::FromStr;

    use sqlx::migrate::MigrationType;
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, SqliteConnection};

    use super::{migrate, migrate_from, MIGRATOR};

    async fn connection() -> SqliteConnection {
        let options = SqliteConnectOptions::from_str("sqlite::memory:").expect("options");
        options.connect().await.expect("connect")
    }

    async fn recorded(connection: &mut SqliteConnection) -> Vec<i64> {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(connection)
            .await
            .expect("recorded")
    }

    async fn tables(connection: &mut SqliteConnection) -> Vec<String> {
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(connection)
            .await
            .expect("tables")
    }

    fn all_versions() -> Vec<i64> {
        MIGRATOR.iter().map(|m| m.version).collect()
    }

    /// Either runner reads what the other recorded, and neither applies a migration twice.
    #[tokio::test]
    async fn sqlx_and_this_runner_read_each_others_bookkeeping() {
        let mut by_sqlx = connection().await;
        MIGRATOR.run_direct(&mut by_sqlx).await.expect("sqlx runs");
        migrate(&mut by_sqlx).await.expect("then this runner");
        assert_eq!(recorded(&mut by_sqlx).await, all_versions());

        let mut by_us = connection().await;
        migrate(&mut by_us).await.expect("this runner");
        migrate(&mut by_us).await.expect("again: nothing to do");
        MIGRATOR.run_direct(&mut by_us).await.expect("then sqlx");
        assert_eq!(recorded(&mut by_us).await, all_versions());
        assert_eq!(tables(&mut by_us).await, tables(&mut by_sqlx).await);
    }

    /// A failed, unknown or changed migration in the database refuses to start, as sqlx does.
    #[tokio::test]
    async fn a_history_this_build_cannot_vouch_for_is_refused() {
        for (tamper, expected) in [
            (
                "UPDATE _sqlx_migrations SET success = FALSE WHERE version = 1",
                "recorded as failed",
            ),
            (
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
                 execution_time) VALUES (9999, 'future', TRUE, x'00', 0)",
                "does not know",
            ),
            (
                "UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 1",
                "different file",
            ),
        ] {
            let mut connection = connection().await;
            migrate(&mut connection).await.expect("migrate");
            sqlx::raw_sql(tamper)
                .execute(&mut connection)
                .await
                .expect("tamper");
            let refused = migrate(&mut connection).await.expect_err(tamper);
            assert!(refused.to_string().contains(expected), "{refused}");
        }
    }

    /// A migration that fails leaves the schema as it was before any of the pending ones.
    #[tokio::test]
    async fn pending_migrations_apply_together_or_not_at_all() {
        let migration = |version: i64, sql: &'static str| {
            let (description, sql) = (Cow::Borrowed("test"), Cow::Borrowed(sql));
            sqlx::migrate::Migration::new(version, description, MigrationType::Simple, sql, false)
        };
        let mut connection = connection().await;
        let migrations = [
            migration(1, "CREATE TABLE first (a INTEGER)"),
            migration(2, "CREATE TABLE second (a INTEGER); NOT SQL"),
        ];
        let failed = migrate_from(&mut connection, &migrations).await;
        assert!(failed.is_err());
        assert!(tables(&mut connection).await.is_empty(), "nothing applied");
        migrate_from(&mut connection, &migrations[..1])
            .await
            .expect("the first alone");
        assert_eq!(recorded(&mut connection).await, [1]);
        assert_eq!(tables(&mut connection).await, ["_sqlx_migrations", "first"]);
    }
}
