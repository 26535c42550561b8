//! Delivery: enabled ingestions poll their apps; each destination writes what was fetched.
//!
//! One supervisor ([`AppFabricDelivery::run`]) keeps one poller task per enabled ingestion and
//! one writer task per ingestion destination. The buffer between them is durable: a poller
//! appends each page's new events to the ingestion's event log *in the same store batch* as
//! its cursor (the app's next-page URL) and a rewrite of the ingestion record at the version
//! it read, so a stopped or deleted ingestion commits nothing more, a crash re-fetches at most
//! the page in flight, and an event id among the cursor's recent ids is skipped. Each writer
//! keeps its own position in that log: it reads from there, writes one object (or Firehose
//! batch) and only then moves its position, so a missing bucket holds up only its own
//! destination and loses nothing. An object's key derives from the destination and its first
//! event's position, so an object written again after a crash replaces the first one.
//! The log is trimmed below the slowest destination's position.
//!
//! **Invariant:** an event is in the log exactly once per ingestion, and reaches each
//! destination at least once, in log order, with no duplicate objects.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use super::authorizations::AuthorizationRecord;
use super::connectors::{AppConnector, ConnectorError};
use super::destinations::{DestinationRecord, DestinationTarget};
use super::ingestions::IngestionRecord;
use super::Deps;
use super::{encode, APP_AUTHORIZATION, INGESTION, INGESTION_DESTINATION};
use crate::config::AppFabricSettings;
use crate::lease::unit_of;
use crate::pipeline::Backoff;
use crate::protocol::RequestContext;
use crate::services::s3::storage::{NewObject, StorageError};
use crate::store::{self, Expect, LogEntry, NewEntry, RecordKey, StoreError, Write};

/// Record kind of an ingestion's poll cursor, named `BUNDLE/INGESTION`.
const CURSOR: &str = "appfabric/ingestion-cursor";
/// Log kind of an ingestion's fetched events, named `BUNDLE/INGESTION`.
const EVENTS: &str = "appfabric/ingestion-events";
/// Record kind of a destination's position in its ingestion's events, named like it.
const POSITION: &str = "appfabric/destination-position";

/// How often the supervisor looks for new, started, stopped and deleted resources.
const SUPERVISE_EVERY: Duration = Duration::from_secs(1);
/// The leases of an ingestion's polling and of a destination's writing (see [`crate::lease`]).
const POLLING: &str = "appfabric/poll";
const WRITING: &str = "appfabric/write";
/// How often an idle writer looks at its log.
const WRITER_TICK: Duration = Duration::from_millis(500);
/// The most events in one object.
const MAX_OBJECT_EVENTS: usize = 10_000;
/// The most bytes of app events in one object (before encoding).
const MAX_OBJECT_BYTES: usize = 16 * 1024 * 1024;
/// Records per Firehose batch (PutRecordBatch's limit).
const FIREHOSE_BATCH: usize = 500;
/// Event ids remembered per ingestion for skipping duplicates the app serves again.
const RECENT_IDS: usize = 10_000;
/// Pages one poll reads at most before it waits for the next poll.
const PAGES_PER_POLL: usize = 100;
/// The longest wait a 429 may impose before the page is asked for again.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(300);

/// Where an ingestion's poll stands.
#[derive(Debug, Default, Serialize, Deserialize)]
struct PollCursor {
    /// The app's cursor (Okta: the next-page URL); `None` before the first page.
    next: Option<String>,
    /// The ids of the latest events appended, oldest first.
    recent: VecDeque<String>,
}

/// How far a destination has delivered its ingestion's events.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Position {
    /// The last log sequence delivered (0: none).
    delivered: i64,
}

/// The writes that remove an ingestion's delivery state (DeleteIngestion's batch).
pub(super) fn forget_ingestion(ctx: &RequestContext, name: &str) -> Vec<Write> {
    vec![
        Write::Delete {
            key: RecordKey::new(CURSOR, &ctx.account_id, &ctx.region, name),
            expect: Expect::Any,
        },
        Write::DeleteLog {
            log: RecordKey::new(EVENTS, &ctx.account_id, &ctx.region, name),
        },
    ]
}

/// The write that removes a destination's position (DeleteIngestionDestination's batch).
pub(super) fn forget_destination(ctx: &RequestContext, name: &str) -> Write {
    Write::Delete {
        key: RecordKey::new(POSITION, &ctx.account_id, &ctx.region, name),
        expect: Expect::Any,
    }
}

/// The labels of an ingestion's metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IngestionLabels {
    /// The ingestion's ARN.
    pub ingestion: String,
    /// The app (`OKTA`).
    pub app: String,
}

/// The labels of a destination's metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationLabels {
    /// The ingestion destination's ARN.
    pub destination: String,
}

/// The labels of the errors of an ingestion or destination.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// The ARN of the ingestion or destination.
    pub resource: String,
}

/// The labels of the last error of an ingestion or destination.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The ARN of the ingestion or destination.
    pub resource: String,
    /// The error, as logged.
    pub error: String,
}

/// Per-ingestion progress, exported at `/_sluice/metrics` under `sluice_appfabric_*`, so that
/// an operator sees what was fetched and delivered, when an app was last polled and what last
/// went wrong without reading the server log.
#[derive(Debug, Clone, Default)]
pub struct AppFabricMetrics {
    fetched: Family<IngestionLabels, Counter>,
    polls: Family<IngestionLabels, Counter>,
    last_poll: Family<IngestionLabels, Gauge>,
    delivered: Family<DestinationLabels, Counter>,
    errors: Family<ResourceLabels, Counter>,
    last_error: Family<ErrorLabels, Gauge>,
    current_errors: Arc<Mutex<HashMap<String, ErrorLabels>>>,
}

impl AppFabricMetrics {
    /// Adds the metrics to `registry` under `sluice_appfabric_*`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("sluice_appfabric");
        r.register(
            "fetched_events",
            "Events fetched from the app and kept for delivery",
            self.fetched.clone(),
        );
        r.register("polls", "Polls of the app", self.polls.clone());
        r.register(
            "last_poll_seconds",
            "When the app was last polled successfully, epoch seconds",
            self.last_poll.clone(),
        );
        r.register(
            "delivered_events",
            "Events delivered to the destination",
            self.delivered.clone(),
        );
        r.register(
            "errors",
            "Failed polls (by ingestion) and failed deliveries (by destination)",
            self.errors.clone(),
        );
        r.register(
            "last_error_seconds",
            "The last error of an ingestion or destination, when it happened (epoch seconds)",
            self.last_error.clone(),
        );
    }

    fn error(&self, resource: &str, error: &str) {
        self.errors
            .get_or_create(&ResourceLabels {
                resource: resource.to_owned(),
            })
            .inc();
        let labels = ErrorLabels {
            resource: resource.to_owned(),
            error: error.chars().take(200).collect(),
        };
        let mut current = self
            .current_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(previous) = current.insert(resource.to_owned(), labels.clone()) {
            if previous != labels {
                self.last_error.remove(&previous);
            }
        }
        self.last_error
            .get_or_create(&labels)
            .set(now_millis() / 1000);
    }
}

fn now_millis() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The supervisor of AppFabric's pollers and writers.
pub struct AppFabricDelivery {
    deps: Deps,
    settings: AppFabricSettings,
    metrics: AppFabricMetrics,
}

impl AppFabricDelivery {
    /// A supervisor over the services' dependencies.
    pub fn new(deps: Deps, settings: AppFabricSettings, metrics: AppFabricMetrics) -> Self {
        Self {
            deps,
            settings,
            metrics,
        }
    }

    /// Supervises forever. Safe to abort: pollers and writers resume from the store.
    pub async fn run(self) {
        let shared = Arc::new(self);
        let mut pollers: HashMap<RecordKey, JoinHandle<()>> = HashMap::new();
        let mut writers: HashMap<RecordKey, JoinHandle<()>> = HashMap::new();
        loop {
            match scan::<IngestionRecord>(&shared.deps, INGESTION).await {
                Ok(ingestions) => {
                    let enabled: Vec<RecordKey> = ingestions
                        .into_iter()
                        .filter(|(_, i)| i.state == "enabled")
                        .map(|(key, _)| key)
                        .collect();
                    let mut stopped = Vec::new();
                    pollers.retain(|key, handle| {
                        let keep = enabled.contains(key) && !handle.is_finished();
                        if !keep {
                            handle.abort();
                            stopped.push(unit_of(POLLING, key));
                        }
                        keep
                    });
                    shared.release(stopped).await;
                    for key in enabled {
                        pollers
                            .entry(key.clone())
                            .or_insert_with(|| tokio::spawn(shared.clone().poll(key)));
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "AppFabric cannot list ingestions; retrying.")
                }
            }
            match scan::<DestinationRecord>(&shared.deps, INGESTION_DESTINATION).await {
                Ok(destinations) => {
                    let keys: Vec<RecordKey> = destinations.into_iter().map(|(k, _)| k).collect();
                    let mut stopped = Vec::new();
                    writers.retain(|key, handle| {
                        let keep = keys.contains(key) && !handle.is_finished();
                        if !keep {
                            handle.abort();
                            stopped.push(unit_of(WRITING, key));
                        }
                        keep
                    });
                    shared.release(stopped).await;
                    for key in keys {
                        writers
                            .entry(key.clone())
                            .or_insert_with(|| tokio::spawn(shared.clone().write(key)));
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "AppFabric cannot list ingestion destinations; retrying.")
                }
            }
            tokio::time::sleep(SUPERVISE_EVERY).await;
        }
    }

    /// Gives up the leases of stopped pollers and writers.
    async fn release(&self, units: Vec<String>) {
        for unit in units {
            self.deps.leases.release(&unit).await;
        }
    }

    /// Waits until this node holds `unit` (at once, unless another node does the work).
    async fn hold(&self, unit: &str) {
        while !self.deps.leases.hold(unit).await {
            tokio::time::sleep(self.deps.leases.poll()).await;
        }
    }

    /// Polls one ingestion's app until the ingestion is stopped or deleted, while this node
    /// holds its lease: one node at a time polls an app.
    async fn poll(self: Arc<Self>, key: RecordKey) {
        let unit = unit_of(POLLING, &key);
        loop {
            self.hold(&unit).await;
            match self.poll_once(&key).await {
                Ok(true) => {}
                Ok(false) => return self.release(vec![unit]).await,
                Err(err) => {
                    let arn = self.ingestion_arn(&key).await;
                    tracing::warn!(ingestion = %arn, error = %err, "AppFabric poll failed; trying again at the next poll.");
                    self.metrics.error(&arn, &err.to_string());
                }
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
    }

    async fn ingestion_arn(&self, key: &RecordKey) -> String {
        match store::load::<IngestionRecord>(&*self.deps.store, key).await {
            Ok(Some((ingestion, _))) => ingestion.arn,
            _ => key.name.clone(),
        }
    }

    /// One poll: pages until the app has nothing new. `Ok(false)`: the ingestion is stopped
    /// or gone.
    async fn poll_once(&self, key: &RecordKey) -> Result<bool, PollError> {
        let store = &*self.deps.store;
        let Some((ingestion, _)) = store::load::<IngestionRecord>(store, key).await? else {
            return Ok(false);
        };
        if ingestion.state != "enabled" {
            return Ok(false);
        }
        let labels = IngestionLabels {
            ingestion: ingestion.arn.clone(),
            app: ingestion.app.clone(),
        };
        let connector = self
            .deps
            .apps
            .connector(&ingestion.app)
            .ok_or_else(|| PollError::NoConnector(ingestion.app.clone()))?;
        let authorizations = store::load_all::<AuthorizationRecord>(
            store,
            APP_AUTHORIZATION,
            &key.account,
            &key.region,
            &format!("{}/", ingestion.bundle_id),
        )
        .await?;
        let authorization = authorizations
            .into_iter()
            .map(|(_, a, _)| a)
            .find(|a| a.serves(&ingestion.app, &ingestion.tenant_id))
            .ok_or(PollError::NotConnected)?;
        if !authorization.is_connected() {
            return Err(PollError::NotConnected);
        }
        let api_key = authorization
            .api_key(&self.deps.credentials)
            .ok_or(PollError::NoApiKey)?;
        let base = self
            .deps
            .apps
            .base(connector.as_ref(), &ingestion.tenant_id);
        let cursor_key = RecordKey::new(CURSOR, &key.account, &key.region, &key.name);
        let log = RecordKey::new(EVENTS, &key.account, &key.region, &key.name);
        for _ in 0..PAGES_PER_POLL {
            let (ingestion, ingestion_version) =
                match store::load::<IngestionRecord>(store, key).await? {
                    Some(found) if found.0.state == "enabled" => found,
                    _ => return Ok(false),
                };
            let (mut cursor, cursor_expect) =
                match store::load::<PollCursor>(store, &cursor_key).await? {
                    Some((cursor, version)) => (cursor, Expect::Version(version)),
                    None => (PollCursor::default(), Expect::Absent),
                };
            let page = match connector
                .fetch(
                    self.deps.apps.http().await?,
                    &base,
                    &api_key,
                    cursor.next.as_deref(),
                    OffsetDateTime::now_utc(),
                )
                .await
            {
                Ok(page) => page,
                Err(ConnectorError::RateLimited { reset }) => {
                    let wait = reset
                        .map(|reset| {
                            Duration::from_millis((reset * 1000 - now_millis()).max(0) as u64)
                        })
                        .unwrap_or(Duration::from_secs(1))
                        .clamp(Duration::from_millis(200), MAX_RATE_LIMIT_WAIT);
                    tracing::info!(ingestion = %ingestion.arn, wait_ms = wait.as_millis() as u64, "The app asks to slow down (429); waiting for its rate-limit reset.");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(err) => return Err(err.into()),
            };
            let at_millis = now_millis();
            let mut batch = Vec::new();
            let mut fresh = 0u64;
            for event in &page.events {
                let Some(id) = connector.event_id(event) else {
                    continue;
                };
                if cursor.recent.contains(&id) {
                    continue;
                }
                batch.push(Write::Append {
                    log: log.clone(),
                    entry: NewEntry {
                        at_millis,
                        meta: id.clone(),
                        data: serde_json::to_vec(event).unwrap_or_default(),
                        span: None,
                    },
                });
                cursor.recent.push_back(id);
                if cursor.recent.len() > RECENT_IDS {
                    cursor.recent.pop_front();
                }
                fresh += 1;
            }
            let moved = page.next.is_some() && page.next != cursor.next;
            if let Some(next) = page.next.clone() {
                cursor.next = Some(next);
            }
            if fresh > 0 || moved {
                batch.push(store::put(cursor_key.clone(), &cursor, cursor_expect)?);
                batch.push(store::put(
                    key.clone(),
                    &ingestion,
                    Expect::Version(ingestion_version),
                )?);
                match store.write(batch).await {
                    Ok(_) => {}
                    // Stopped, deleted or changed meanwhile: look again before going on.
                    Err(StoreError::Conflict(_)) => continue,
                    Err(err) => return Err(err.into()),
                }
            }
            self.metrics.fetched.get_or_create(&labels).inc_by(fresh);
            if fresh > 0 {
                tracing::info!(ingestion = %ingestion.arn, events = fresh, "AppFabric fetched events from the app.");
            }
            if page.events.is_empty() || !moved {
                break;
            }
        }
        self.metrics.polls.get_or_create(&labels).inc();
        self.metrics
            .last_poll
            .get_or_create(&labels)
            .set(now_millis() / 1000);
        self.trim(key, &log).await?;
        Ok(true)
    }

    /// Trims the event log below the slowest destination's position.
    async fn trim(&self, key: &RecordKey, log: &RecordKey) -> Result<(), StoreError> {
        let store = &*self.deps.store;
        let destinations = store
            .list(
                INGESTION_DESTINATION,
                &key.account,
                &key.region,
                &format!("{}/", key.name),
                None,
                usize::MAX,
            )
            .await?;
        if destinations.is_empty() {
            return Ok(());
        }
        let mut slowest = i64::MAX;
        for destination in destinations {
            let position_key =
                RecordKey::new(POSITION, &key.account, &key.region, &destination.key.name);
            let position = store::load::<Position>(store, &position_key)
                .await?
                .map_or(0, |(p, _)| p.delivered);
            slowest = slowest.min(position);
        }
        let tail = store.log_tail(log).await?;
        let before = (slowest + 1).min(tail);
        if before > 1 {
            store
                .write(vec![Write::TrimLog {
                    log: log.clone(),
                    before,
                }])
                .await?;
        }
        Ok(())
    }

    /// Writes one destination's events until the destination is deleted, while this node
    /// holds its lease.
    async fn write(self: Arc<Self>, key: RecordKey) {
        let unit = unit_of(WRITING, &key);
        let mut backoff: Option<Backoff> = None;
        loop {
            self.hold(&unit).await;
            match self.write_once(&key).await {
                Ok(WriteOutcome::Gone) => return self.release(vec![unit]).await,
                Ok(WriteOutcome::Idle) => tokio::time::sleep(WRITER_TICK).await,
                Ok(WriteOutcome::Delivered) => backoff = None,
                Err(err) => {
                    let reason = err.to_string();
                    let arn = self.set_status(&key, Some(reason.clone())).await;
                    tracing::warn!(destination = %arn, error = %reason, "AppFabric cannot deliver to the destination; keeping the events and retrying.");
                    self.metrics.error(&arn, &reason);
                    let backoff = backoff.get_or_insert_with(|| {
                        Backoff::new(
                            Duration::from_millis(500),
                            Duration::from_secs(30),
                            u32::MAX,
                        )
                    });
                    backoff.retry().await;
                }
            }
        }
    }

    /// Sets a destination `Failed` with `reason`, or `Active` for `None`, when it is not
    /// already; returns its ARN.
    async fn set_status(&self, key: &RecordKey, reason: Option<String>) -> String {
        let status = if reason.is_some() { "Failed" } else { "Active" };
        for _ in 0..5 {
            let Ok(Some((mut destination, version))) =
                store::load::<DestinationRecord>(&*self.deps.store, key).await
            else {
                return key.name.clone();
            };
            if destination.status() == (status, reason.as_deref()) {
                return destination.arn;
            }
            destination.set_status(status, reason.clone());
            let Ok(write) = store::put(key.clone(), &destination, Expect::Version(version)) else {
                return destination.arn;
            };
            match self.deps.store.write(vec![write]).await {
                Ok(_) => {
                    tracing::info!(destination = %destination.arn, status, reason = reason.as_deref().unwrap_or(""), "AppFabric destination status changed.");
                    return destination.arn;
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(_) => return destination.arn,
            }
        }
        key.name.clone()
    }

    async fn write_once(&self, key: &RecordKey) -> Result<WriteOutcome, WriteError> {
        let store = &*self.deps.store;
        let Some((destination, _)) = store::load::<DestinationRecord>(store, key).await? else {
            return Ok(WriteOutcome::Gone);
        };
        let ingestion_name = key.name.rsplit_once('/').map_or("", |(i, _)| i).to_owned();
        let ingestion_key = RecordKey::new(INGESTION, &key.account, &key.region, &ingestion_name);
        let Some((ingestion, _)) = store::load::<IngestionRecord>(store, &ingestion_key).await?
        else {
            return Ok(WriteOutcome::Gone);
        };
        let position_key = RecordKey::new(POSITION, &key.account, &key.region, &key.name);
        let (position, position_expect) =
            match store::load::<Position>(store, &position_key).await? {
                Some((position, version)) => (position, Expect::Version(version)),
                None => (Position::default(), Expect::Absent),
            };
        let log = RecordKey::new(EVENTS, &key.account, &key.region, &ingestion_name);
        let mut entries = store
            .read_log(&log, position.delivered + 1, MAX_OBJECT_EVENTS)
            .await?;
        let Some(first) = entries.first() else {
            return Ok(WriteOutcome::Idle);
        };
        let mut bytes = 0usize;
        let fits = entries
            .iter()
            .take_while(|e| {
                bytes += e.data.len();
                bytes <= MAX_OBJECT_BYTES
            })
            .count()
            .max(1);
        let full = fits < entries.len() || entries.len() >= MAX_OBJECT_EVENTS;
        let flush_after = self.settings.flush_interval.as_millis() as i64;
        if !full && now_millis() - first.at_millis < flush_after {
            return Ok(WriteOutcome::Idle);
        }
        entries.truncate(fits);
        let connector =
            self.deps.apps.connector(&ingestion.app).ok_or_else(|| {
                WriteError::Encode(format!("no connector for app {}", ingestion.app))
            })?;
        let target = destination
            .target()
            .ok_or_else(|| WriteError::Encode("the destination has no target".to_owned()))?;
        let (schema, format) = destination.processing();
        let events = events(&entries, schema, connector.as_ref());
        let last = entries.last().map_or(position.delivered, |e| e.sequence);
        match target {
            DestinationTarget::S3 { bucket, prefix } => {
                let (body, content_type) = if format == "parquet" {
                    let body =
                        encode::parquet(&events).map_err(|e| WriteError::Encode(e.to_string()))?;
                    (body, "application/vnd.apache.parquet")
                } else {
                    (encode::json_lines(&events), "application/x-ndjson")
                };
                let object_key = object_key(
                    &prefix,
                    schema,
                    format,
                    &ingestion,
                    &destination,
                    &entries[0],
                );
                let object = NewObject {
                    content_type: Some(content_type.to_owned()),
                    metadata: BTreeMap::new(),
                    checksum: None,
                    etag: None,
                };
                let mut reader = body.as_slice();
                self.deps
                    .storage
                    .put_object(&bucket, &object_key, object, &mut reader)
                    .await
                    .map_err(|err| WriteError::Target(storage_reason(&bucket, &err)))?;
                self.advance(&position_key, position_expect, last).await?;
                tracing::info!(destination = %destination.arn, key = %object_key, events = events.len(), "AppFabric wrote an audit-log object.");
            }
            DestinationTarget::Firehose(stream) => {
                let mut expect = position_expect;
                let mut sent = 0;
                for (chunk, chunk_entries) in events
                    .chunks(FIREHOSE_BATCH)
                    .zip(entries.chunks(FIREHOSE_BATCH))
                {
                    let records = chunk
                        .iter()
                        .map(|event| encode::json_lines(std::slice::from_ref(event)))
                        .collect();
                    crate::services::firehose::put_records(
                        store,
                        &self.deps.firehose,
                        (&key.account, &key.region, &stream),
                        records,
                        now_millis(),
                    )
                    .await
                    .map_err(|err| {
                        WriteError::Target(format!("Firehose stream {stream}: {err}"))
                    })?;
                    let through = chunk_entries.last().map_or(last, |e| e.sequence);
                    expect = self.advance(&position_key, expect, through).await?;
                    sent += chunk.len();
                    self.metrics
                        .delivered
                        .get_or_create(&DestinationLabels {
                            destination: destination.arn.clone(),
                        })
                        .inc_by(chunk.len() as u64);
                }
                tracing::info!(destination = %destination.arn, stream = %stream, events = sent, "AppFabric put audit-log records into Firehose.");
                if destination.status().0 != "Active" {
                    self.set_status(key, None).await;
                }
                return Ok(WriteOutcome::Delivered);
            }
        }
        self.metrics
            .delivered
            .get_or_create(&DestinationLabels {
                destination: destination.arn.clone(),
            })
            .inc_by(events.len() as u64);
        if destination.status().0 != "Active" {
            self.set_status(key, None).await;
        }
        Ok(WriteOutcome::Delivered)
    }

    /// Moves a destination's position to `delivered`; returns the expectation for the next move.
    async fn advance(
        &self,
        key: &RecordKey,
        expect: Expect,
        delivered: i64,
    ) -> Result<Expect, StoreError> {
        self.deps
            .store
            .write(vec![store::put(
                key.clone(),
                &Position { delivered },
                expect,
            )?])
            .await?;
        Ok(match expect {
            Expect::Version(version) => Expect::Version(version + 1),
            _ => Expect::Version(1),
        })
    }
}

/// The events of a log slice as a destination wants them: the app's own, or OCSF.
fn events(entries: &[LogEntry], schema: &str, connector: &dyn AppConnector) -> Vec<Value> {
    entries
        .iter()
        .filter_map(|entry| serde_json::from_slice::<Value>(&entry.data).ok())
        .map(|event| {
            if schema == "ocsf" {
                connector.to_ocsf(&event)
            } else {
                event
            }
        })
        .collect()
}

/// `<prefix>AWSAppFabric/AuditLog/<OCSF|RAW>/<JSON|PARQUET>/<APP>/<bundle>/<ingestion>/<YYYYMMDD>/AuditLog-<epoch ms>-<uuid>`:
/// the time is the first event's arrival, and the UUID derives from the destination and the
/// first event's position, so the same object written again replaces itself.
fn object_key(
    prefix: &str,
    schema: &str,
    format: &str,
    ingestion: &IngestionRecord,
    destination: &DestinationRecord,
    first: &LogEntry,
) -> String {
    use md5::{Digest, Md5};
    let digest: [u8; 16] = Md5::digest(format!("{}\0{}", destination.id, first.sequence)).into();
    let uuid = uuid::Builder::from_md5_bytes(digest).into_uuid();
    let day = OffsetDateTime::from_unix_timestamp_nanos(first.at_millis as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let separator = if prefix.is_empty() || prefix.ends_with('/') {
        ""
    } else {
        "/"
    };
    format!(
        "{prefix}{separator}AWSAppFabric/AuditLog/{}/{}/{}/{}/{}/{:04}{:02}{:02}/AuditLog-{}-{uuid}",
        schema.to_uppercase(),
        format.to_uppercase(),
        ingestion.app.to_uppercase(),
        ingestion.bundle_id,
        ingestion.id,
        day.year(),
        u8::from(day.month()),
        day.day(),
        first.at_millis,
    )
}

fn storage_reason(bucket: &str, err: &StorageError) -> String {
    match err {
        StorageError::NoSuchBucket => format!("The S3 bucket {bucket} does not exist"),
        other => format!("The S3 bucket {bucket} refused the object: {other}"),
    }
}

/// Reads every record of a kind, in all accounts and regions.
async fn scan<T: serde::de::DeserializeOwned>(
    deps: &Deps,
    kind: &'static str,
) -> Result<Vec<(RecordKey, T)>, StoreError> {
    let mut out = Vec::new();
    let mut after: Option<RecordKey> = None;
    loop {
        let page = deps.store.scan(kind, after.as_ref(), 256).await?;
        let Some(last) = page.last() else {
            return Ok(out);
        };
        after = Some(last.key.clone());
        for record in page {
            if let Ok(value) = serde_json::from_value::<T>(record.body) {
                out.push((record.key, value));
            }
        }
    }
}

enum WriteOutcome {
    Gone,
    Idle,
    Delivered,
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error("Sluice has no connector for app {0}")]
    NoConnector(String),
    #[error("no Connected app authorization for this ingestion's app and tenant")]
    NotConnected,
    #[error("the app authorization holds no API key")]
    NoApiKey,
    #[error(transparent)]
    App(#[from] ConnectorError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("{0}")]
    Target(String),
    #[error("cannot encode the events: {0}")]
    Encode(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
