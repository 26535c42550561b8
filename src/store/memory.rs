//! An in-memory store: same contract as SQLite, nothing on disk. For unit tests and for
//! `--data-dir :memory:` runs where losing state on exit is the point.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Expect, Record, RecordKey, Store, StoreError, Write};

/// The in-memory store. A mutex is enough: no lock is held across an `.await`.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    records: BTreeMap<RecordKey, Record>,
    settings: HashMap<String, String>,
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

    async fn write(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        let mut state = self.lock();
        for write in &batch {
            let (key, expect) = match write {
                Write::Put { key, expect, .. } | Write::Delete { key, expect } => (key, *expect),
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
            }
        }
        Ok(())
    }

    async fn get_setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().settings.get(name).cloned())
    }

    async fn init_setting(&self, name: &str, value: &str) -> Result<String, StoreError> {
        Ok(self
            .lock()
            .settings
            .entry(name.to_owned())
            .or_insert_with(|| value.to_owned())
            .clone())
    }

    async fn reset(&self) -> Result<(), StoreError> {
        self.lock().records.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn passes_the_conformance_scenario() {
        super::super::conformance::run(&super::MemoryStore::default()).await;
    }
}
