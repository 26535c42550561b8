//! Background work done by one node at a time.
//!
//! Several Sluice nodes may share one PostgreSQL store, and each of them runs the same
//! background tasks: delivery queues, Firehose buffers, AppFabric polling, retention sweeps,
//! Lake compaction. Each unit of that work is done only by the node holding its lease: a
//! `cluster/lease` record naming the holder and the time the lease ends, taken and renewed with
//! conditional writes, so two nodes can never take it at once. A holder renews what it holds
//! every third of the lease time; a node that dies stops renewing, and another node takes the
//! work once the lease has run out (the lease time, 5 seconds by default, bounds the hand-over).
//! Every node also holds `node/<its id>` for as long as it runs: once that lease has run out,
//! the others know the node is gone, and, say, report a Lake query it ran as failed.
//!
//! Expiry compares the clocks of different nodes, which must agree to well within the lease
//! time (NTP does); a holder also stops using a lease a quarter of the lease time before it
//! runs out by its own clock. Should two nodes still overlap (a paused process), nothing is
//! lost: delivery is at least once, and every unit's progress moves in the store.
//!
//! With an embedded store (SQLite, memory) no other node can exist: [`Leases::solo`] grants
//! every lease at once and writes nothing.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::store::{self, Expect, RecordKey, Store, StoreError, Write};

/// The record kind of a lease.
pub const LEASE: &str = "cluster/lease";
/// The lease time unless configured otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);
/// How often an idle worker of a solo node looks at its work unasked: writers in the process
/// wake workers at once, so this is only the safety net.
const SOLO_POLL: Duration = Duration::from_secs(30);

/// Leases are cluster-wide: not in any account or region.
const SCOPE: &str = "-";
/// The unit every node holds while it runs.
const NODE_PREFIX: &str = "node/";

/// A lease as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeaseRecord {
    holder: String,
    expires_millis: i64,
}

/// A lease this node holds.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// When this node stops using it (a quarter of the lease time before it runs out).
    usable_until: Instant,
    /// When it runs out, as written.
    expires_millis: i64,
}

/// A lease shown by `/_sluice/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLease {
    /// The unit of work, e.g. `delivery/<queue>`.
    pub unit: String,
    /// When it runs out unless renewed.
    pub expires: SystemTime,
}

/// This node's identity and the leases it holds.
pub struct Leases {
    node: String,
    ttl: Duration,
    /// `None` for a solo node (embedded store), which grants itself everything.
    store: Option<Arc<dyn Store>>,
    held: Mutex<BTreeMap<String, Held>>,
    /// The nodes whose own lease had run out at the last heartbeat. A node not seen yet (it
    /// started since) is not among them.
    gone: RwLock<HashSet<String>>,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("node", &self.node)
            .field("shared", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

impl Leases {
    /// The leases of the only node of an embedded store: every lease is granted, nothing is
    /// written.
    pub fn solo() -> Arc<Self> {
        Self::build(None, DEFAULT_TTL)
    }

    /// The leases of one node among those sharing `store`, each lease lasting `ttl`. Call
    /// [`Leases::start`] before serving, so that the nodes gone are known.
    pub fn shared(store: Arc<dyn Store>, ttl: Duration) -> Arc<Self> {
        Self::build(Some(store), ttl)
    }

    fn build(store: Option<Arc<dyn Store>>, ttl: Duration) -> Arc<Self> {
        let node = new_node_id();
        Arc::new(Self {
            gone: RwLock::new(HashSet::new()),
            node,
            ttl,
            store,
            held: Mutex::new(BTreeMap::new()),
        })
    }

    /// This node's id, unique to this process.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// How long a lease lasts unless renewed.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether other nodes may share the store.
    pub fn is_shared(&self) -> bool {
        self.store.is_some()
    }

    /// How often an idle worker looks for work unasked: on a shared store, for what other
    /// nodes queued or a dead node left (a third of the lease time); alone, rarely.
    pub fn poll(&self) -> Duration {
        if self.is_shared() {
            self.ttl / 3
        } else {
            SOLO_POLL
        }
    }

    /// Takes or keeps `unit`: true while this node holds it. Free of I/O while held (the
    /// heartbeat renews it); otherwise one read, and one conditional write when it is free.
    pub async fn hold(&self, unit: &str) -> bool {
        if self.holds(unit) {
            return true;
        }
        match &self.store {
            None => {
                self.keep(unit, Instant::now(), 0);
                true
            }
            Some(store) => self.take(store.as_ref(), unit).await,
        }
    }

    /// Whether this node holds `unit` now, from memory: a worker asks before each step.
    pub fn holds(&self, unit: &str) -> bool {
        self.lock()
            .get(unit)
            .is_some_and(|lease| self.store.is_none() || lease.usable_until > Instant::now())
    }

    /// Gives `unit` up, so that another node may take it at once (work that is done, or a
    /// stream that was deleted).
    pub async fn release(&self, unit: &str) {
        if self.lock().remove(unit).is_none() {
            return;
        }
        let Some(store) = &self.store else { return };
        let key = key(unit);
        let result = async {
            if let Some((lease, version)) = store::load::<LeaseRecord>(store.as_ref(), &key).await?
            {
                if lease.holder == self.node {
                    store
                        .write(vec![Write::Delete {
                            key,
                            expect: Expect::Version(version),
                        }])
                        .await?;
                }
            }
            Ok::<_, StoreError>(())
        };
        if let Err(err) = result.await {
            // It runs out by itself.
            tracing::debug!(unit, error = %err, "A lease could not be released.");
        }
    }

    /// Whether the node `node` is known to be gone: its own lease had run out at the last
    /// heartbeat. A solo node knows every other node (an earlier process) is gone.
    pub fn gone(&self, node: &str) -> bool {
        if node == self.node {
            return false;
        }
        self.store.is_none()
            || self
                .gone
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains(node)
    }

    /// The leases this node holds, for `/_sluice/health`.
    pub fn held(&self) -> Vec<HeldLease> {
        self.lock()
            .iter()
            .filter(|(unit, _)| !unit.starts_with(NODE_PREFIX))
            .map(|(unit, lease)| HeldLease {
                unit: unit.clone(),
                expires: if self.store.is_some() {
                    SystemTime::UNIX_EPOCH
                        + Duration::from_millis(u64::try_from(lease.expires_millis).unwrap_or(0))
                } else {
                    SystemTime::now() + SOLO_POLL
                },
            })
            .collect()
    }

    /// The first heartbeat: this node's own lease, and the nodes gone. Returns once done, so
    /// that nothing is served before they are known.
    pub async fn start(self: &Arc<Self>) -> Result<(), StoreError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let own = format!("{NODE_PREFIX}{}", self.node);
        if !self.take(store.as_ref(), &own).await {
            return Err(StoreError::Unavailable(format!(
                "cannot take this node's lease {own}"
            )));
        }
        self.refresh_gone(store.as_ref()).await
    }

    /// Renews every lease held, and learns which nodes are gone, every third of the lease
    /// time, forever. A solo node has nothing to renew.
    pub async fn run(self: Arc<Self>) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let mut ticks = tokio::time::interval(self.ttl / 3);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let units: Vec<String> = self.lock().keys().cloned().collect();
            for unit in units {
                if !self.lock().contains_key(&unit) {
                    continue; // released meanwhile: not taken again
                }
                if !self.take(store.as_ref(), &unit).await && unit.starts_with(NODE_PREFIX) {
                    tracing::error!(
                        unit,
                        "This node lost its own lease: another node may take its work."
                    );
                }
            }
            let own = format!("{NODE_PREFIX}{}", self.node);
            if !self.holds(&own) {
                self.take(store.as_ref(), &own).await;
            }
            if let Err(err) = self.refresh_gone(store.as_ref()).await {
                tracing::warn!(error = %err, "Cannot read which nodes are gone; keeping the last view.");
            }
        }
    }

    /// One read and one conditional write: takes `unit` when it is free, run out, or ours.
    async fn take(&self, store: &dyn Store, unit: &str) -> bool {
        let key = key(unit);
        let now = now_millis();
        let expect = match store.get(&key).await {
            Err(err) => {
                tracing::warn!(unit, error = %err, "Cannot read a lease.");
                return self.holds(unit);
            }
            Ok(None) => Expect::Absent,
            Ok(Some(record)) => {
                let current = serde_json::from_value::<LeaseRecord>(record.body).ok();
                if let Some(current) = current {
                    if current.holder != self.node && current.expires_millis > now {
                        self.forget(unit, &current.holder);
                        return false;
                    }
                }
                Expect::Version(record.version)
            }
        };
        let asked = Instant::now();
        let expires_millis = now.saturating_add(millis(self.ttl));
        let lease = LeaseRecord {
            holder: self.node.clone(),
            expires_millis,
        };
        let write = match store::put(key, &lease, expect) {
            Ok(write) => write,
            Err(err) => {
                tracing::error!(unit, error = %err, "Cannot encode a lease.");
                return false;
            }
        };
        match store.write(vec![write]).await {
            Ok(_) => {
                self.keep(unit, asked + self.ttl * 3 / 4, expires_millis);
                true
            }
            Err(StoreError::Conflict(_)) => {
                self.forget(unit, "another node");
                false
            }
            Err(err) => {
                tracing::warn!(unit, error = %err, "Cannot renew a lease.");
                self.holds(unit)
            }
        }
    }

    async fn refresh_gone(&self, store: &dyn Store) -> Result<(), StoreError> {
        let now = now_millis();
        let mut gone = HashSet::new();
        let mut after: Option<RecordKey> = None;
        loop {
            let page = store.scan(LEASE, after.as_ref(), 256).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            for record in page {
                let Some(node) = record.key.name.strip_prefix(NODE_PREFIX) else {
                    continue;
                };
                if let Ok(lease) = serde_json::from_value::<LeaseRecord>(record.body) {
                    if lease.expires_millis <= now {
                        gone.insert(node.to_owned());
                    }
                }
            }
        }
        *self.gone.write().unwrap_or_else(|e| e.into_inner()) = gone;
        Ok(())
    }

    fn keep(&self, unit: &str, usable_until: Instant, expires_millis: i64) {
        self.lock().insert(
            unit.to_owned(),
            Held {
                usable_until,
                expires_millis,
            },
        );
    }

    fn forget(&self, unit: &str, holder: &str) {
        if self.lock().remove(unit).is_some() {
            tracing::warn!(unit, holder, "A lease moved to another node.");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The unit of a piece of work on one record: `<work>/<account>/<region>/<name>`.
pub fn unit_of(work: &str, record: &RecordKey) -> String {
    format!(
        "{work}/{}/{}/{}",
        record.account, record.region, record.name
    )
}

fn key(unit: &str) -> RecordKey {
    RecordKey::new(LEASE, SCOPE, SCOPE, unit)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, millis)
}

/// The host name and a random part: readable in `/_sluice/health`, unique per process.
fn new_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "sluice".to_owned());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}", &random[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn pair(ttl: Duration) -> (Arc<Leases>, Arc<Leases>) {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        (
            Leases::shared(store.clone(), ttl),
            Leases::shared(store, ttl),
        )
    }

    #[tokio::test]
    async fn one_node_holds_a_unit_until_it_releases_it() {
        let (a, b) = pair(Duration::from_secs(60));
        assert!(a.hold("delivery/q").await);
        assert!(a.hold("delivery/q").await, "held again without asking");
        assert!(!b.hold("delivery/q").await, "held by a");
        assert!(b.hold("delivery/other").await, "units are independent");
        assert_eq!(
            a.held().iter().map(|l| l.unit.as_str()).collect::<Vec<_>>(),
            ["delivery/q"]
        );
        a.release("delivery/q").await;
        assert!(!a.holds("delivery/q"));
        assert!(b.hold("delivery/q").await, "free once released");
        assert!(!a.hold("delivery/q").await);
    }

    #[tokio::test]
    async fn a_lease_not_renewed_moves_to_another_node() {
        let (a, b) = pair(Duration::from_millis(300));
        assert!(a.hold("sweeper").await);
        assert!(!b.hold("sweeper").await);
        // a stops renewing (as if killed): b takes the unit once the lease has run out.
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(!a.holds("sweeper"), "a stops using it before it runs out");
        assert!(b.hold("sweeper").await);
        assert!(!a.hold("sweeper").await);
    }

    #[tokio::test]
    async fn nodes_learn_which_nodes_are_gone() {
        let (a, b) = pair(Duration::from_millis(300));
        a.start().await.expect("a starts");
        b.start().await.expect("b starts");
        assert!(!b.gone(a.node()) && !a.gone(b.node()));
        assert!(
            !a.gone("never-seen"),
            "a node started since is not taken for gone"
        );
        // b's heartbeat renews; a has stopped (no `run`): b sees a go.
        let heartbeat = tokio::spawn(b.clone().run());
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(b.gone(a.node()), "a's lease ran out");
        assert!(!b.gone(b.node()));
        assert!(
            b.holds(&format!("{NODE_PREFIX}{}", b.node())),
            "b renewed its own"
        );
        heartbeat.abort();
    }

    #[tokio::test]
    async fn a_solo_node_is_granted_everything_and_writes_nothing() {
        let leases = Leases::solo();
        assert!(leases.hold("delivery/q").await);
        assert!(leases.holds("delivery/q"));
        assert!(!leases.gone(leases.node()));
        assert!(leases.gone("an-earlier-process"));
        leases.release("delivery/q").await;
        assert!(!leases.holds("delivery/q"));
    }
}
