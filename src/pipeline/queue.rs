//! Per-target queues and their workers.
//!
//! Writers add [`Enqueued`] writes to the batch that accepts their data and, once it commits,
//! tell the [`Signal`]. The [`Pipeline`] supervisor keeps one worker task per queue: a queue
//! is delivered in order, one entry at a time, and its retries wait only for it. Queues are
//! found again after a restart through their records (`pipeline/queues`).
//!
//! A worker delivers only while its node holds the queue's lease (`delivery/<queue>`, see
//! [`crate::lease`]), so that nodes sharing a store never deliver one queue at once and its
//! order is kept; a node takes the lease when its queue has work, gives it up once the queue
//! has stayed empty for a lease time, and on a shared store looks for work every
//! [`Leases::poll`]: what other nodes queued, and the queues of a node that died.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::dead_letters::dead_letter;
use super::metrics::{DeliveryMetrics, TargetLabels};
use super::{
    cursor_key, delivered, encode, queue_log, Backoff, Delivery, DeliveryError, Item, QueueRecord,
    Sinks, Target, CURSOR, LEGACY_NAME, LEGACY_OUTBOX, QUEUES,
};
use crate::lease::Leases;
use crate::store::{Expect, LogEntry, RecordKey, Store, StoreError, Write};

/// Entries read from a queue at a time.
const BATCH: usize = 256;
/// How long a worker waits after its store failed before trying again.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// The deliveries one write queues: the writes to add to its batch, and, once the batch
/// commits, what to tell the pipeline ([`Signal::queued`]).
#[derive(Debug, Default)]
pub struct Enqueued {
    writes: Vec<Write>,
    queues: BTreeMap<String, (Target, i64)>,
}

impl Enqueued {
    /// Queues `body` for `delivery`, accepted at `at_millis`.
    pub fn push(
        &mut self,
        delivery: &Delivery,
        body: Vec<u8>,
        at_millis: i64,
    ) -> Result<(), StoreError> {
        let [append, name] = super::enqueue(delivery, body, at_millis)?;
        self.writes.push(append);
        let queue = delivery.target.queue();
        match self.queues.get_mut(&queue) {
            Some((_, count)) => *count += 1,
            None => {
                // The queue's record once per batch.
                self.writes.push(name);
                self.queues.insert(queue, (delivery.target.clone(), 1));
            }
        }
        Ok(())
    }

    /// Whether nothing was queued.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// The writes to add to the accepting batch (taken once; the counts stay for
    /// [`Signal::queued`]).
    pub fn take_writes(&mut self) -> Vec<Write> {
        std::mem::take(&mut self.writes)
    }
}

/// How writers tell the pipeline about new work, and how they learn the backlog. Shared by
/// every service (`Deps::delivery`) and the pipeline; it also holds the delivery metrics.
#[derive(Debug, Default)]
pub struct Signal {
    woken: Mutex<HashMap<String, Target>>,
    notify: Notify,
    /// The sum of `waiting`.
    pending: AtomicI64,
    /// Entries waiting per queue, as this node last counted them: added to as writers queue,
    /// taken from as entries are delivered, and set again from the store each time a worker
    /// looks at its queue (other nodes' writes and deliveries are counted there).
    waiting: Mutex<HashMap<String, i64>>,
    metrics: DeliveryMetrics,
}

impl Signal {
    /// A signal reporting into `metrics`.
    pub fn new(metrics: DeliveryMetrics) -> Self {
        Self {
            metrics,
            ..Self::default()
        }
    }

    /// Deliveries accepted and not yet delivered or dead-lettered, in all queues. Writers
    /// compare it with [`super::MAX_PENDING_DELIVERIES`] before a batch that would queue more.
    pub fn pending(&self) -> i64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// The delivery metrics.
    pub fn metrics(&self) -> &DeliveryMetrics {
        &self.metrics
    }

    /// Call once the batch holding `enqueued`'s writes has committed: counts the new entries
    /// and wakes their queues' workers.
    pub fn queued(&self, enqueued: &Enqueued) {
        if enqueued.is_empty() {
            return;
        }
        let mut woken = self.woken.lock().unwrap_or_else(|p| p.into_inner());
        for (queue, (target, count)) in &enqueued.queues {
            self.add_waiting(queue, &TargetLabels::from(target), *count);
            woken.insert(queue.clone(), target.clone());
        }
        drop(woken);
        self.notify.notify_one();
    }

    fn add_waiting(&self, queue: &str, labels: &TargetLabels, count: i64) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let now = waiting.entry(queue.to_owned()).or_default();
        *now += count;
        self.pending.fetch_add(count, Ordering::Relaxed);
        self.metrics.pending.get_or_create(labels).set(*now);
    }

    /// Sets a queue's count to what the store says.
    fn set_waiting(&self, queue: &str, labels: &TargetLabels, count: i64) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let now = waiting.entry(queue.to_owned()).or_default();
        self.pending.fetch_add(count - *now, Ordering::Relaxed);
        *now = count;
        self.metrics.pending.get_or_create(labels).set(count);
    }

    fn take_woken(&self) -> HashMap<String, Target> {
        std::mem::take(&mut *self.woken.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// `/_sluice/reset` emptied the store, queues included.
#[async_trait::async_trait]
impl crate::store::ResetHook for Signal {
    async fn after_reset(&self) -> anyhow::Result<()> {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.pending.store(0, Ordering::Relaxed);
        self.metrics.pending.clear();
        Ok(())
    }
}

/// The delivery supervisor and its queue workers.
#[derive(Clone)]
pub struct Pipeline {
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<dyn Store>,
    sinks: Sinks,
    signal: Arc<Signal>,
    leases: Arc<Leases>,
    /// Dead letters are bounded by reading the log's ends first: one writer at a time.
    dead_letter_lock: tokio::sync::Mutex<()>,
}

impl Pipeline {
    /// A pipeline over a store and the sinks, woken through `signal`, delivering the queues
    /// whose leases it holds.
    pub fn new(
        store: Arc<dyn Store>,
        sinks: Sinks,
        signal: Arc<Signal>,
        leases: Arc<Leases>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                sinks,
                signal,
                leases,
                dead_letter_lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Brings the store's queues up to date at start-up, before anything is served (also when
    /// delivery is paused): moves entries an older version left in its single outbox to
    /// their targets' queues, and counts what waits in every queue into `signal`.
    pub async fn recover(store: &dyn Store, signal: &Signal) -> Result<(), StoreError> {
        move_legacy_outbox(store).await?;
        for (queue, target) in queues(store).await? {
            let waiting = waiting(store, &queue).await?;
            if waiting > 0 {
                signal.add_waiting(&queue, &TargetLabels::from(&target), waiting);
            }
        }
        Ok(())
    }

    /// Runs the workers forever: one per queue that has ever been written, started when the
    /// supervisor first hears of it (from a writer of this node, or, on a shared store, from
    /// the queue records it reads every [`Leases::poll`]). Safe to abort at any point: what
    /// was not yet recorded as delivered is delivered again after a restart.
    pub async fn run(self) {
        let mut workers: HashMap<String, Arc<Notify>> = HashMap::new();
        let mut known = match queues(&*self.shared.store).await {
            Ok(queues) => queues,
            Err(err) => {
                tracing::error!(error = %err, "Delivery cannot list its queues; retrying on the next write.");
                Vec::new()
            }
        };
        loop {
            known.extend(self.shared.signal.take_woken());
            for (queue, target) in known.drain(..) {
                let wake = workers.entry(queue.clone()).or_insert_with(|| {
                    let wake = Arc::new(Notify::new());
                    tokio::spawn(self.clone().work(queue, target, wake.clone()));
                    wake
                });
                wake.notify_one();
            }
            let leases = &self.shared.leases;
            let woken = tokio::time::timeout(leases.poll(), self.shared.signal.notify.notified());
            if woken.await.is_err() && leases.is_shared() {
                match queues(&*self.shared.store).await {
                    Ok(queues) => known.extend(
                        queues
                            .into_iter()
                            .filter(|(queue, _)| !workers.contains_key(queue)),
                    ),
                    Err(err) => {
                        tracing::warn!(error = %err, "Delivery cannot list its queues; retrying.")
                    }
                }
            }
        }
    }

    async fn work(self, queue: String, target: Target, wake: Arc<Notify>) {
        let labels = TargetLabels::from(&target);
        let unit = format!("delivery/{queue}");
        let mut idle_since = None;
        loop {
            match self.step(&queue, &unit, &labels, &mut idle_since).await {
                Ok(0) => {
                    let _ = tokio::time::timeout(self.shared.leases.poll(), wake.notified()).await;
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::error!(error = %err, queue, "Delivery worker cannot read its queue; retrying.");
                    tokio::time::sleep(STORE_RETRY).await;
                }
            }
        }
    }

    /// Counts what waits in a queue and delivers it if this node holds (or takes) its lease;
    /// gives the lease up once the queue has stayed empty for a lease time, so that idle
    /// queues cost no renewals. Returns how many entries were handled.
    async fn step(
        &self,
        queue: &str,
        unit: &str,
        labels: &TargetLabels,
        idle_since: &mut Option<tokio::time::Instant>,
    ) -> Result<usize, StoreError> {
        let leases = &self.shared.leases;
        let waiting = waiting(&*self.shared.store, queue).await?;
        self.shared.signal.set_waiting(queue, labels, waiting);
        if waiting == 0 {
            let since = *idle_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() >= leases.ttl() {
                leases.release(unit).await;
            }
            return Ok(0);
        }
        *idle_since = None;
        if !leases.hold(unit).await {
            // Another node delivers it; this one looks again every poll, and takes it over
            // should that node die.
            return Ok(0);
        }
        self.drain(queue, unit, labels).await
    }

    /// Delivers what is in one queue now, while this node holds `unit`; returns how many
    /// entries were handled.
    async fn drain(
        &self,
        queue: &str,
        unit: &str,
        labels: &TargetLabels,
    ) -> Result<usize, StoreError> {
        let store = &*self.shared.store;
        let cursor = match store.get(&cursor_key(queue)).await? {
            Some(record) => delivered(&record.body),
            None => 0,
        };
        let entries = store.read_log(&queue_log(queue), cursor + 1, BATCH).await?;
        let mut handled = 0;
        for entry in &entries {
            if !self.shared.leases.holds(unit) {
                break;
            }
            self.deliver(entry, labels).await?;
            // The cursor moves and the delivered entry goes in one batch; the last entry
            // stays, so the queue's numbering carries on from it.
            store
                .write(vec![
                    Write::Put {
                        key: cursor_key(queue),
                        body: serde_json::json!({ "delivered": entry.sequence }),
                        expect: Expect::Any,
                    },
                    Write::TrimLog {
                        log: queue_log(queue),
                        before: entry.sequence,
                    },
                ])
                .await?;
            self.shared.signal.add_waiting(queue, labels, -1);
            handled += 1;
        }
        Ok(handled)
    }

    /// Delivers one entry, retrying failures; gives up into the dead letters.
    async fn deliver(&self, entry: &LogEntry, labels: &TargetLabels) -> Result<(), StoreError> {
        let metrics = &self.shared.signal.metrics;
        let delivery: Delivery = match serde_json::from_str(&entry.meta) {
            Ok(delivery) => delivery,
            Err(err) => {
                return self
                    .dead_letter(entry, labels, &format!("unreadable delivery: {err}"))
                    .await
            }
        };
        let data = match encode(delivery.encoding, &entry.data) {
            Ok(data) => data,
            Err(err) => {
                return self
                    .dead_letter(entry, labels, &format!("encoding failed: {err}"))
                    .await
            }
        };
        let mut backoff = Backoff::delivery();
        loop {
            let size = data.len() as u64;
            let item = Item {
                partition_key: &delivery.partition_key,
                data: data.clone(),
                at_millis: entry.at_millis,
                sender: delivery.sender.as_ref(),
            };
            match self.shared.sinks.deliver(&delivery.target, item).await {
                Ok(()) => {
                    metrics.delivered.get_or_create(labels).inc();
                    metrics.delivered_bytes.get_or_create(labels).inc_by(size);
                    return Ok(());
                }
                // A target that does not exist will not appear by waiting, nor will a refusal
                // turn into a grant.
                Err(err @ (DeliveryError::NotFound(_) | DeliveryError::Denied(_))) => {
                    return self.dead_letter(entry, labels, &err.to_string()).await
                }
                Err(err) => {
                    tracing::warn!(error = %err, attempt = backoff.attempts() + 1, queue = labels.queue, "Delivery failed; retrying.");
                    if !backoff.retry().await {
                        return self.dead_letter(entry, labels, &err.to_string()).await;
                    }
                    metrics.retries.get_or_create(labels).inc();
                }
            }
        }
    }

    async fn dead_letter(
        &self,
        entry: &LogEntry,
        labels: &TargetLabels,
        reason: &str,
    ) -> Result<(), StoreError> {
        tracing::error!(
            reason,
            queue = labels.queue,
            sequence = entry.sequence,
            "Delivery abandoned; the entry is kept in the dead letters."
        );
        let _one_writer = self.shared.dead_letter_lock.lock().await;
        dead_letter(&*self.shared.store, entry, reason).await?;
        self.shared
            .signal
            .metrics
            .dead_lettered
            .get_or_create(labels)
            .inc();
        Ok(())
    }
}

/// Every queue ever written, with its target.
async fn queues(store: &dyn Store) -> Result<Vec<(String, Target)>, StoreError> {
    let mut found = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list(QUEUES, "", "", "", after.as_deref(), 500)
            .await?;
        let Some(last) = page.last() else {
            return Ok(found);
        };
        after = Some(last.key.name.clone());
        for record in page {
            match serde_json::from_value::<QueueRecord>(record.body) {
                Ok(named) => found.push((record.key.name, named.target)),
                Err(err) => {
                    tracing::error!(queue = record.key.name, error = %err, "Unreadable queue record; its queue is not delivered.");
                }
            }
        }
    }
}

/// Entries waiting in one queue.
async fn waiting(store: &dyn Store, queue: &str) -> Result<i64, StoreError> {
    let cursor = match store.get(&cursor_key(queue)).await? {
        Some(record) => delivered(&record.body),
        None => 0,
    };
    Ok((store.log_tail(&queue_log(queue)).await? - cursor).max(0))
}

/// Moves what an older version left in its one outbox into the per-target queues, in order,
/// a batch at a time; each batch also moves the old cursor, so a crash midway moves nothing
/// twice.
async fn move_legacy_outbox(store: &dyn Store) -> Result<(), StoreError> {
    let outbox = RecordKey::new(LEGACY_OUTBOX, "", "", LEGACY_NAME);
    let cursor = RecordKey::new(CURSOR, "", "", LEGACY_NAME);
    loop {
        let from = match store.get(&cursor).await? {
            Some(record) => delivered(&record.body),
            None => 0,
        };
        let entries = store.read_log(&outbox, from + 1, BATCH).await?;
        let Some(last) = entries.last().map(|entry| entry.sequence) else {
            return Ok(());
        };
        let mut enqueued = Enqueued::default();
        for entry in entries {
            match serde_json::from_str::<Delivery>(&entry.meta) {
                Ok(delivery) => enqueued.push(&delivery, entry.data, entry.at_millis)?,
                Err(err) => {
                    tracing::error!(error = %err, sequence = entry.sequence, "Unreadable delivery in the old outbox; kept in the dead letters.");
                    dead_letter(store, &entry, &format!("unreadable delivery: {err}")).await?;
                }
            }
        }
        let mut batch = enqueued.take_writes();
        batch.push(Write::Put {
            key: cursor.clone(),
            body: serde_json::json!({ "delivered": last }),
            expect: Expect::Any,
        });
        batch.push(Write::TrimLog {
            log: outbox.clone(),
            before: last,
        });
        store.write(batch).await?;
        tracing::info!(
            up_to = last,
            "Moved deliveries of the old single outbox to per-target queues."
        );
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::pipeline::{
        list_dead_letters, Encoding, ObjectTarget, Sender, Sink, StreamTarget, MAX_DEAD_LETTERS,
    };
    use crate::store::memory::MemoryStore;
    use crate::store::NewEntry;

    /// A stream sink that records, fails the first `fail_first` calls, and treats streams
    /// named `gone*` as missing and `slow*` as failing forever.
    #[derive(Default)]
    struct Recorder {
        fail_first: Mutex<u32>,
        records: Mutex<Vec<(String, Vec<u8>)>>,
    }

    #[async_trait]
    impl Sink for Recorder {
        type Target = StreamTarget;

        async fn deliver(
            &self,
            target: &StreamTarget,
            item: Item<'_>,
        ) -> Result<(), DeliveryError> {
            if target.stream.starts_with("gone") {
                return Err(DeliveryError::NotFound(target.stream.clone()));
            }
            if target.stream.starts_with("theirs") {
                return Err(DeliveryError::Denied(format!(
                    "{:?} may not write",
                    item.sender
                )));
            }
            if target.stream.starts_with("slow") {
                return Err(DeliveryError::Failed("down".to_owned()));
            }
            let mut failures = self.fail_first.lock().unwrap_or_else(|p| p.into_inner());
            if *failures > 0 {
                *failures -= 1;
                return Err(DeliveryError::Failed("not yet".to_owned()));
            }
            self.records
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((target.stream.clone(), item.data));
            Ok(())
        }

        async fn writable(&self, target: &StreamTarget, _: &Sender) -> Result<bool, DeliveryError> {
            Ok(!target.stream.starts_with("gone") && !target.stream.starts_with("theirs"))
        }
    }

    struct NoObjects;

    #[async_trait]
    impl Sink for NoObjects {
        type Target = ObjectTarget;

        async fn deliver(&self, target: &ObjectTarget, _: Item<'_>) -> Result<(), DeliveryError> {
            Err(DeliveryError::NotFound(target.bucket.clone()))
        }

        async fn writable(&self, _: &ObjectTarget, _: &Sender) -> Result<bool, DeliveryError> {
            Ok(false)
        }
    }

    fn target(stream: &str) -> Target {
        Target::KinesisStream(StreamTarget {
            account: "1".into(),
            region: "r".into(),
            stream: stream.into(),
        })
    }

    fn delivery(stream: &str, encoding: Encoding) -> Delivery {
        Delivery {
            target: target(stream),
            partition_key: "k".into(),
            encoding,
            sender: None,
        }
    }

    struct Fixture {
        store: Arc<dyn Store>,
        sink: Arc<Recorder>,
        signal: Arc<Signal>,
        pipeline: Pipeline,
    }

    fn fixture(fail_first: u32) -> Fixture {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let sink = Arc::new(Recorder {
            fail_first: Mutex::new(fail_first),
            ..Recorder::default()
        });
        let signal = Arc::new(Signal::default());
        let sinks = Sinks {
            kinesis: sink.clone(),
            firehose: sink.clone(),
            objects: Arc::new(NoObjects),
        };
        let pipeline = Pipeline::new(store.clone(), sinks, signal.clone(), Leases::solo());
        Fixture {
            store,
            sink,
            signal,
            pipeline,
        }
    }

    impl Fixture {
        async fn accept(&self, deliveries: &[(Delivery, &[u8])]) {
            let mut enqueued = Enqueued::default();
            for (n, (delivery, body)) in deliveries.iter().enumerate() {
                enqueued
                    .push(delivery, body.to_vec(), n as i64)
                    .expect("enqueue");
            }
            self.store
                .write(enqueued.take_writes())
                .await
                .expect("write");
            self.signal.queued(&enqueued);
        }

        async fn drain(&self, stream: &str) -> usize {
            let target = target(stream);
            let (queue, labels) = (target.queue(), TargetLabels::from(&target));
            let mut idle_since = None;
            self.pipeline
                .step(
                    &queue,
                    &format!("delivery/{queue}"),
                    &labels,
                    &mut idle_since,
                )
                .await
                .expect("drain")
        }

        async fn dead(&self) -> Vec<crate::pipeline::DeadLetter> {
            list_dead_letters(&*self.store, 0, usize::MAX)
                .await
                .expect("dead letters")
        }
    }

    #[tokio::test(start_paused = true)]
    async fn delivers_in_order_once_and_retries_failures() {
        let f = fixture(2);
        f.accept(&[
            (delivery("a", Encoding::Identity), b"one"),
            (delivery("a", Encoding::Gzip), b"two"),
        ])
        .await;
        assert_eq!(f.signal.pending(), 2);
        assert_eq!(f.drain("a").await, 2);
        assert_eq!(
            f.drain("a").await,
            0,
            "the cursor moved past delivered entries"
        );
        assert_eq!(f.signal.pending(), 0);
        let records = f.sink.records.lock().expect("lock").clone();
        assert_eq!(records[0], ("a".to_owned(), b"one".to_vec()));
        let mut unzipped = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(records[1].1.as_slice()),
            &mut unzipped,
        )
        .expect("gzip");
        assert_eq!(unzipped, "two");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_target_holds_up_only_its_own_queue() {
        let f = fixture(0);
        f.accept(&[
            (delivery("slow", Encoding::Identity), b"stuck"),
            (delivery("b", Encoding::Identity), b"through"),
        ])
        .await;
        tokio::spawn(f.pipeline.clone().run());
        // Virtual time: the slow queue's backoff (about 50 s) does not hold up queue b.
        for _ in 0..100 {
            if !f.sink.records.lock().expect("lock").is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            f.sink.records.lock().expect("lock").clone(),
            [("b".to_owned(), b"through".to_vec())],
            "b was delivered while the slow target was still being retried"
        );
        assert!(f.dead().await.is_empty(), "slow is still retrying");
        tokio::time::sleep(Duration::from_secs(120)).await;
        let dead = f.dead().await;
        assert_eq!(dead.len(), 1, "slow was given up on after its attempts");
        assert!(dead[0].reason.contains("down"), "{}", dead[0].reason);
        assert_eq!(f.signal.pending(), 0);
    }

    #[tokio::test]
    async fn missing_and_refused_targets_are_dead_lettered_at_once() {
        let f = fixture(0);
        let mut refused = delivery("theirs", Encoding::Identity);
        refused.sender = Some(Sender {
            account: "2".into(),
            role_arn: Some("arn:aws:iam::2:role/r".into()),
        });
        f.accept(&[
            (delivery("gone", Encoding::Identity), b"one"),
            (delivery("gone", Encoding::Identity), b"two"),
            (refused, b"three"),
        ])
        .await;
        // Without paused time: a retry loop would take about 50 s per entry.
        let started = std::time::Instant::now();
        assert_eq!(f.drain("gone").await, 2);
        assert_eq!(f.drain("theirs").await, 1);
        assert!(started.elapsed() < Duration::from_secs(5), "no retry loop");
        let dead = f.dead().await;
        assert_eq!(dead.len(), 3);
        assert!(dead[0].reason.contains("target not found"));
        assert!(dead[2].reason.contains("delivery refused"));
        assert!(dead[2].reason.contains("arn:aws:iam::2:role/r"));
        assert_eq!(
            dead[2].delivery["target"]["KinesisStream"]["stream"],
            "theirs"
        );
    }

    #[tokio::test]
    async fn dead_letters_keep_the_newest_and_count_the_dropped() {
        let f = fixture(0);
        let total = MAX_DEAD_LETTERS + 2;
        let mut enqueued = Enqueued::default();
        for n in 0..total {
            enqueued
                .push(
                    &delivery("gone", Encoding::Identity),
                    n.to_string().into_bytes(),
                    n,
                )
                .expect("enqueue");
        }
        f.store.write(enqueued.take_writes()).await.expect("write");
        while f.drain("gone").await > 0 {}
        let kept = f.dead().await;
        assert_eq!(kept.len() as i64, MAX_DEAD_LETTERS);
        assert_eq!(
            kept[0].data, "Mg==",
            "the oldest went first (\"2\" is kept)"
        );
        let dropped = crate::pipeline::dead_letters_dropped(&*f.store).await;
        assert_eq!(dropped.expect("dropped"), 2);

        // By age: everything older than 14 days goes, but the last entry keeps the numbering.
        let removed = crate::pipeline::expire_dead_letters(
            &*f.store,
            crate::pipeline::DEAD_LETTER_LIFETIME_MILLIS + total,
            100_000,
        )
        .await
        .expect("expire");
        assert_eq!(removed as i64, MAX_DEAD_LETTERS - 1);
    }

    #[tokio::test]
    async fn recovery_counts_waiting_entries_and_moves_the_old_outbox() {
        let f = fixture(0);
        f.accept(&[(delivery("a", Encoding::Identity), b"queued")])
            .await;
        // What an older version left: one outbox for every target, partly delivered.
        let outbox = RecordKey::new(LEGACY_OUTBOX, "", "", LEGACY_NAME);
        let old = |data: &[u8], stream: &str| Write::Append {
            log: outbox.clone(),
            entry: NewEntry {
                at_millis: 7,
                meta: serde_json::to_string(&delivery(stream, Encoding::Identity)).expect("meta"),
                data: data.to_vec(),
                span: None,
            },
        };
        f.store
            .write(vec![
                old(b"delivered before", "a"),
                old(b"old a", "a"),
                old(b"old b", "b"),
                Write::Put {
                    key: RecordKey::new(CURSOR, "", "", LEGACY_NAME),
                    body: serde_json::json!({ "delivered": 1 }),
                    expect: Expect::Any,
                },
            ])
            .await
            .expect("old outbox");
        let signal = Signal::default();
        Pipeline::recover(&*f.store, &signal)
            .await
            .expect("recover");
        assert_eq!(signal.pending(), 3, "one queued, two moved");
        Pipeline::recover(&*f.store, &Signal::default())
            .await
            .expect("a second recovery moves nothing twice");
        assert_eq!(f.drain("a").await, 2);
        assert_eq!(f.drain("b").await, 1);
        let records = f.sink.records.lock().expect("lock").clone();
        assert_eq!(
            records,
            [
                ("a".to_owned(), b"queued".to_vec()),
                ("a".to_owned(), b"old a".to_vec()),
                ("b".to_owned(), b"old b".to_vec()),
            ]
        );
    }
}
