//! An in-memory store: same contract as SQLite, nothing on disk. For unit tests and for
//! `--data-dir :memory:` runs where losing state on exit is the point.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    EntrySpan, Expect, LogEntry, Record, RecordKey, RowAt, Store, StoreError, StoreHealth,
    TimeOrder, Write,
};

/// The in-memory store. A mutex is enough: no lock is held across an `.await`.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    records: BTreeMap<RecordKey, Record>,
    logs: HashMap<RecordKey, Vec<LogEntry>>,
    tables: HashMap<&'static str, Vec<serde_json::Map<String, serde_json::Value>>>,
    /// The unique keys of the stored rows, so that an insert checks its key in constant time
    /// (a scan of the table made a million inserts take hours).
    keys: HashSet<UniqueKey>,
    settings: HashMap<String, String>,
}

/// A table's unique key of one row: the table and the key columns' values.
type UniqueKey = (&'static str, Vec<String>);

/// The unique key of a row as `value` gives its columns; `None` for a table without one or
/// a key with a null column (never a repeat, as in SQL).
fn unique_key(table: &'static str, value: impl Fn(&str) -> Option<String>) -> Option<UniqueKey> {
    let spec = super::TABLES.iter().find(|t| t.name == table)?;
    let values: Option<Vec<String>> = spec.unique.iter().map(|column| value(column)).collect();
    values.map(|values| (table, values))
}

/// The unique key of a stored row.
fn stored_key(
    table: &'static str,
    row: &serde_json::Map<String, serde_json::Value>,
) -> Option<UniqueKey> {
    unique_key(table, |column| {
        row.get(column).and_then(|v| v.as_str()).map(str::to_owned)
    })
}

/// The unique key of a row to insert.
fn new_key(table: &'static str, row: &super::Row) -> Option<UniqueKey> {
    unique_key(table, |column| {
        row.iter()
            .find(|(name, _)| *name == column)
            .and_then(|(_, value)| super::column_text(value))
    })
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied batch (batches are checked
        // before they are applied), so the poisoned state is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &RecordKey) -> Result<Option<Record>, StoreError> {
        Ok(self.lock().records.get(key).cloned())
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
        let state = self.lock();
        Ok(state
            .records
            .values()
            .filter(|r| r.key.kind == kind && r.key.account == account && r.key.region == region)
            .filter(|r| {
                r.key.name.starts_with(prefix)
                    && after.is_none_or(|after| r.key.name.as_str() > after)
            })
            .take(limit)
            .cloned()
            .collect())
    }

    async fn write(&self, batch: Vec<Write>) -> Result<Vec<i64>, StoreError> {
        let mut state = self.lock();
        for write in &batch {
            let (key, expect) = match write {
                Write::Put { key, expect, .. } | Write::Delete { key, expect } => (key, *expect),
                Write::Append { .. }
                | Write::DeleteLog { .. }
                | Write::TrimLog { .. }
                | Write::Insert { .. }
                | Write::DeleteRows { .. } => continue,
            };
            let current = state.records.get(key).map(|r| r.version);
            let holds = match expect {
                Expect::Any => true,
                Expect::Absent => current.is_none(),
                Expect::Version(version) => current == Some(version),
            };
            if !holds {
                return Err(StoreError::Conflict(key.clone()));
            }
        }
        check_unique_keys(&state, &batch)?;
        let mut sequences = Vec::new();
        for write in batch {
            match write {
                Write::Put { key, body, .. } => {
                    let version = state.records.get(&key).map_or(0, |r| r.version) + 1;
                    state
                        .records
                        .insert(key.clone(), Record { key, version, body });
                }
                Write::Delete { key, .. } => {
                    state.records.remove(&key);
                }
                Write::Append { log, entry } => {
                    let entries = state.logs.entry(log).or_default();
                    let sequence = entries.last().map_or(0, |e| e.sequence) + 1;
                    entries.push(LogEntry {
                        sequence,
                        at_millis: entry.at_millis,
                        meta: entry.meta,
                        data: entry.data,
                        span: entry.span.unwrap_or((entry.at_millis, entry.at_millis)),
                    });
                    sequences.push(sequence);
                }
                Write::DeleteLog { log } => {
                    state.logs.remove(&log);
                }
                Write::Insert { table, row } => {
                    if let Some(key) = new_key(table, &row) {
                        state.keys.insert(key);
                    }
                    let row = row
                        .iter()
                        .map(|(column, value)| {
                            let text = super::column_text(value)
                                .map_or(serde_json::Value::Null, serde_json::Value::String);
                            ((*column).to_owned(), text)
                        })
                        .collect();
                    state.tables.entry(table).or_default().push(row);
                }
                Write::DeleteRows { table, rows } => {
                    // Row numbers are positions here (see `scan_rows`): remove from the end.
                    let mut rows = rows;
                    rows.sort_unstable_by(|a, b| b.cmp(a));
                    rows.dedup();
                    let State { tables, keys, .. } = &mut *state;
                    if let Some(stored) = tables.get_mut(table) {
                        for row in rows {
                            if let Some(index) =
                                usize::try_from(row).ok().filter(|i| *i < stored.len())
                            {
                                if let Some(key) = stored_key(table, &stored.remove(index)) {
                                    keys.remove(&key);
                                }
                            }
                        }
                    }
                }
                Write::TrimLog { log, before } => {
                    if let Some(entries) = state.logs.get_mut(&log) {
                        entries.retain(|e| e.sequence >= before);
                    }
                }
            }
        }
        Ok(sequences)
    }

    async fn read_log(
        &self,
        log: &RecordKey,
        from: i64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let state = self.lock();
        let entries = state.logs.get(log).map(Vec::as_slice).unwrap_or_default();
        Ok(entries
            .iter()
            .filter(|e| e.sequence >= from)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn seek_log(&self, log: &RecordKey, at_millis: i64) -> Result<Option<i64>, StoreError> {
        let state = self.lock();
        let entries = state.logs.get(log).map(Vec::as_slice).unwrap_or_default();
        Ok(entries
            .iter()
            .find(|e| e.at_millis >= at_millis)
            .map(|e| e.sequence))
    }

    async fn select_rows(
        &self,
        table: &'static str,
        column: &'static str,
        value: &str,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, StoreError> {
        let state = self.lock();
        let rows = state
            .tables
            .get(table)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(rows
            .iter()
            .filter(|row| row.get(column).and_then(|v| v.as_str()) == Some(value))
            .cloned()
            .collect())
    }

    async fn read_log_spans(
        &self,
        log: &RecordKey,
        order: TimeOrder,
        from: (i64, i64),
        window: (i64, i64),
        limit: usize,
    ) -> Result<Vec<EntrySpan>, StoreError> {
        let state = self.lock();
        let entries = state.logs.get(log).map(Vec::as_slice).unwrap_or_default();
        let overlapping = entries
            .iter()
            .filter(|e| e.span.0 <= window.1 && e.span.1 >= window.0);
        let mut found: Vec<&LogEntry> = match order {
            TimeOrder::Forward => overlapping
                .filter(|e| (e.span.0, e.sequence) >= from)
                .collect(),
            TimeOrder::Backward => overlapping
                .filter(|e| (e.span.1, e.sequence) <= from)
                .collect(),
        };
        match order {
            TimeOrder::Forward => found.sort_by_key(|e| (e.span.0, e.sequence)),
            TimeOrder::Backward => {
                found.sort_by_key(|e| std::cmp::Reverse((e.span.1, e.sequence)));
            }
        }
        Ok(found
            .into_iter()
            .take(limit)
            .map(|e| EntrySpan {
                sequence: e.sequence,
                span: e.span,
            })
            .collect())
    }

    async fn expire_log(
        &self,
        log: &RecordKey,
        before: i64,
        accepted_from: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let mut state = self.lock();
        let Some(entries) = state.logs.get_mut(log) else {
            return Ok(0);
        };
        let tail = entries.last().map_or(0, |e| e.sequence);
        let mut removed = 0;
        entries.retain(|e| {
            let expired = e.span.1 < before
                && e.at_millis >= accepted_from
                && e.sequence < tail
                && removed < limit;
            removed += usize::from(expired);
            !expired
        });
        Ok(removed)
    }

    async fn expire_rows(
        &self,
        table: &'static str,
        scope: &[(&'static str, &str)],
        time_column: &'static str,
        before: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let mut state = self.lock();
        let State { tables, keys, .. } = &mut *state;
        let Some(rows) = tables.get_mut(table) else {
            return Ok(0);
        };
        let mut removed = 0;
        rows.retain(|row| {
            let in_scope = scope
                .iter()
                .all(|(column, value)| row.get(*column).and_then(|v| v.as_str()) == Some(*value));
            let old = row
                .get(time_column)
                .and_then(|v| v.as_str())
                .and_then(|text| text.parse::<i64>().ok())
                .is_some_and(|time| time < before);
            let expired = in_scope && old && removed < limit;
            removed += usize::from(expired);
            if let Some(key) = stored_key(table, row).filter(|_| expired) {
                keys.remove(&key);
            }
            !expired
        });
        Ok(removed)
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
        let state = self.lock();
        let rows = state
            .tables
            .get(table)
            .map(Vec::as_slice)
            .unwrap_or_default();
        // Row numbers are positions here: enough for tests, which do not expire while reading.
        let mut found: Vec<RowAt> = rows
            .iter()
            .enumerate()
            .filter(|(_, row)| {
                scope.iter().all(|(column, value)| {
                    row.get(*column).and_then(|v| v.as_str()) == Some(*value)
                })
            })
            .filter_map(|(index, row)| {
                let time = row
                    .get(time_column)
                    .and_then(|v| v.as_str())
                    .and_then(|text| text.parse::<i64>().ok())?;
                let at = (time, i64::try_from(index).unwrap_or(i64::MAX));
                (at > from && time < until).then(|| (at, row.clone()))
            })
            .collect();
        found.sort_by_key(|(at, _)| *at);
        found.truncate(limit);
        Ok(found)
    }

    async fn scan(
        &self,
        kind: &'static str,
        after: Option<&RecordKey>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let state = self.lock();
        Ok(state
            .records
            .values()
            .filter(|r| r.key.kind == kind && after.is_none_or(|after| &r.key > after))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn log_tail(&self, log: &RecordKey) -> Result<i64, StoreError> {
        Ok(self
            .lock()
            .logs
            .get(log)
            .and_then(|entries| entries.last())
            .map_or(0, |e| e.sequence))
    }

    async fn get_setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().settings.get(name).cloned())
    }

    async fn init_settings(&self, settings: &[(&str, &str)]) -> Result<Vec<String>, StoreError> {
        let mut state = self.lock();
        Ok(settings
            .iter()
            .map(|(name, value)| {
                let kept = state.settings.entry((*name).to_owned());
                kept.or_insert_with(|| (*value).to_owned()).clone()
            })
            .collect())
    }

    async fn reset(&self) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.records.clear();
        state.logs.clear();
        state.tables.clear();
        state.keys.clear();
        Ok(())
    }

    fn health(&self) -> StoreHealth {
        // Nothing here can fail half-way, and nothing was promised beyond the process.
        StoreHealth::durable()
    }
}

/// Refuses a batch whose inserts repeat a table's unique key (among the rows the batch
/// leaves in place, or within the batch), as SQLite's `UNIQUE` constraint does: the same
/// error kind, nothing written. A key with a null column is never a repeat, as in SQL.
fn check_unique_keys(state: &State, batch: &[Write]) -> Result<(), StoreError> {
    // The keys of the rows this batch deletes are free for its inserts.
    let freed: HashSet<UniqueKey> = batch
        .iter()
        .filter_map(|write| match write {
            Write::DeleteRows { table, rows } => Some((*table, rows)),
            _ => None,
        })
        .flat_map(|(table, rows)| {
            let stored = state
                .tables
                .get(table)
                .map(Vec::as_slice)
                .unwrap_or_default();
            rows.iter()
                .filter_map(|row| stored.get(usize::try_from(*row).ok()?))
                .filter_map(move |row| stored_key(table, row))
        })
        .collect();
    let mut inserted: HashSet<UniqueKey> = HashSet::new();
    for write in batch {
        let Write::Insert { table, row } = write else {
            continue;
        };
        let Some(key) = new_key(table, row) else {
            continue;
        };
        let exists = state.keys.contains(&key) && !freed.contains(&key);
        if exists || !inserted.insert(key) {
            let spec = super::TABLES.iter().find(|t| t.name == *table);
            let columns = spec.map(|t| t.unique.join(", ")).unwrap_or_default();
            let reason = format!("UNIQUE constraint failed: {table} ({columns})");
            tracing::error!(error = %reason, "A write was refused by the schema; nothing was written.");
            return Err(StoreError::Unavailable(reason));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn passes_the_conformance_scenario() {
        super::super::conformance::run(&super::MemoryStore::default()).await;
    }
}
