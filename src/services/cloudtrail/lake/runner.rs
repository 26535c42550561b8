//! Runs queries in the background: plans them on DataFusion (at StartQuery, so a statement
//! that names an unknown column is refused at once), executes them in a task, and writes
//! result pages and the final status to the store.
//!
//! One [`Lake`] per process. Queries share one DataFusion runtime whose memory pool is
//! bounded ([`MEMORY_LIMIT`]): a query that needs more fails rather than growing the process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider,
};
use datafusion::common::TableReference;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{execute_stream, ExecutionPlan};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::counts::{CountsFromSegments, SegmentCountsExec};
use super::delivery::Delivery;
use super::queries::{QueryRecord, Status, MAX_CONCURRENT, PAGE_ROWS, RESULTS};
use super::sql::{self, Prepared};
use super::table::{EventDataStoreTable, FieldsBelowUnion, ScanCounters};
use crate::services::cloudtrail::CloudTrailError;
use crate::services::Deps;
use crate::store::{self, Expect, NewEntry, RecordKey, StoreError, Write};

/// Memory all running queries may hold at once (hash tables, sorts, buffered batches).
const MEMORY_LIMIT: usize = 512 * 1024 * 1024;

/// A query running longer than this ends TIMED_OUT. Not confirmed: AWS documents no figure.
const QUERY_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Most result rows one query may produce; a query that would return more fails. Not
/// confirmed: AWS documents no limit on a query's results; this one bounds what Sluice stores
/// (results are kept seven days) and delivers.
pub const MAX_RESULTS: u64 = 1_000_000;

/// Result pages held in memory before they are stored: a small result is committed with the
/// query's final record, in one commit.
const BUFFERED_PAGES: usize = 8;

/// Longest ErrorMessage the model allows.
const MAX_ERROR: usize = 1000;

/// Partitions a query is split into, and the threads queries run on.
const PARTITIONS: usize = 2;

/// The queries of this process.
pub struct Lake {
    deps: Deps,
    /// The session every query starts from: DataFusion's runtime (the memory pool and caches
    /// all queries share), functions and rules. Building a session registers every function
    /// anew, about 0.3 ms; a query clones this one and gets tables of its own.
    template: SessionState,
    /// The threads queries run on.
    threads: QueryThreads,
    active: Arc<Mutex<HashMap<String, Active>>>,
    /// Where segments live (`None` without a data directory: events stay rows).
    segments: Option<std::path::PathBuf>,
    /// Held shared while a query runs; a segment is committed under it exclusively, so a
    /// query sees each event once, in a segment or in the tail.
    compaction: Arc<tokio::sync::RwLock<()>>,
    /// Writes results to DeliveryS3Uri and signs them.
    delivery: Arc<Delivery>,
}

struct Active {
    account: String,
    cancel: CancellationToken,
    /// Set once the query runs: its record still says QUEUED (RUNNING is not written, to
    /// save a commit per query), and DescribeQuery reports RUNNING from here.
    started: Arc<std::sync::atomic::AtomicBool>,
}

/// A planned query, ready to run.
pub struct Planned {
    context: SessionContext,
    plan: LogicalPlan,
    columns: Vec<String>,
    counters: Arc<ScanCounters>,
}

impl Lake {
    /// The query runner of this process.
    pub fn new(deps: Deps) -> Self {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(MEMORY_LIMIT, 1.0)
            .build_arc()
            .unwrap_or_else(|_| Arc::new(RuntimeEnv::default()));
        let segments = deps.lake_files.root().map(std::path::Path::to_path_buf);
        let compaction = deps.lake_files.lock();
        if let (Some(compactor), Ok(handle)) = (
            super::segments::Compactor::new(deps.lake_files.clone(), deps.leases.clone()),
            tokio::runtime::Handle::try_current(),
        ) {
            handle.spawn(compactor.run());
        }
        Self {
            delivery: Arc::new(Delivery::new(deps.store.clone())),
            deps,
            template: session(runtime).state(),
            threads: QueryThreads::default(),
            active: Arc::default(),
            segments,
            compaction,
        }
    }

    pub fn deps(&self) -> &Deps {
        &self.deps
    }

    /// This node's id, which a query's record names as its runner.
    pub fn node(&self) -> &str {
        self.deps.leases.node()
    }

    /// Whether a query's record says it is active but its runner is gone: a restarted
    /// process, or a dead node of a shared store.
    pub fn orphaned(&self, record: &QueryRecord) -> bool {
        record.status.is_active() && self.deps.leases.gone(&record.runner)
    }

    /// Writes and signs delivered results.
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Active>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves one of the account's concurrent query slots, or `None` when all are taken.
    pub fn claim_slot(&self, account: &str, id: &str) -> Option<CancellationToken> {
        let mut active = self.lock();
        let running = active.values().filter(|a| a.account == account).count();
        if running >= MAX_CONCURRENT {
            return None;
        }
        let cancel = CancellationToken::new();
        active.insert(
            id.to_owned(),
            Active {
                account: account.to_owned(),
                cancel: cancel.clone(),
                started: Arc::default(),
            },
        );
        Some(cancel)
    }

    /// Frees a slot whose query never started.
    pub fn release(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Tells a running query to stop.
    pub fn cancel(&self, id: &str) {
        if let Some(active) = self.lock().get(id) {
            active.cancel.cancel();
        }
    }

    /// A record's status, counting an active query of a gone process as failed, and a
    /// QUEUED query of this process that has started as RUNNING.
    pub fn effective_status(&self, record: &QueryRecord) -> Status {
        if self.orphaned(record) {
            Status::Failed
        } else if record.status == Status::Queued
            && self
                .lock()
                .get(&record.id)
                .is_some_and(|a| a.started.load(Ordering::Relaxed))
        {
            Status::Running
        } else {
            record.status
        }
    }

    /// Plans a statement over the caller's stores: `stores` are (name as written, store ID,
    /// retention days).
    pub async fn plan(
        &self,
        account: &str,
        region: &str,
        now_millis: i64,
        prepared: &Prepared,
        stores: &[(String, String, i64)],
    ) -> Result<Planned, CloudTrailError> {
        const DAY_MILLIS: i64 = 24 * 60 * 60 * 1000;
        let context = fresh_session(&self.template);
        let counters = Arc::new(ScanCounters::default());
        for (name, id, retention_days) in stores {
            let arn = format!(
                "arn:{}:cloudtrail:{region}:{account}:eventdatastore/{id}",
                crate::arn::partition(region)
            );
            let retained_from =
                now_millis.saturating_sub(retention_days.saturating_mul(DAY_MILLIS));
            let table = EventDataStoreTable::new(
                self.deps.store.clone(),
                account,
                region,
                &arn,
                retained_from,
                counters.clone(),
                self.segments
                    .as_ref()
                    .map(|root| super::segments::store_dir(root, id)),
            );
            // The same store may be named twice (ID and ARN); one registration per name.
            let _ = context.deregister_table(TableReference::bare(name.as_str()));
            context
                .register_table(TableReference::bare(name.as_str()), Arc::new(table))
                .map_err(|err| CloudTrailError::Internal(err.to_string()))?;
        }
        let statement = DfStatement::Statement(Box::new(prepared.statement.clone()));
        let plan = context
            .state()
            .statement_to_plan(statement)
            .await
            .map_err(|err| CloudTrailError::InvalidQueryStatement(statement_error(&err)))?;
        let fields: Vec<String> = plan
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let columns = sql::column_names(&prepared.names, &fields);
        Ok(Planned {
            context,
            plan,
            columns,
            counters,
        })
    }

    /// Runs a planned query in the background; its slot is freed when it ends. It starts at
    /// once, while StartQuery commits its record; it records its end only after `recorded`
    /// says that commit succeeded (and stops if it failed).
    pub fn spawn(
        &self,
        cancel: CancellationToken,
        key: RecordKey,
        record: QueryRecord,
        planned: Planned,
        recorded: tokio::sync::oneshot::Receiver<bool>,
    ) {
        let started = self
            .lock()
            .get(&record.id)
            .map(|a| a.started.clone())
            .unwrap_or_default();
        let deps = self.deps.clone();
        let active = self.active.clone();
        let compaction = self.compaction.clone();
        let delivery = self.delivery.clone();
        /// Frees the query's slot however its task ends (a panic included).
        struct Slot(Arc<Mutex<HashMap<String, Active>>>, String);
        impl Drop for Slot {
            fn drop(&mut self) {
                self.0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&self.1);
            }
        }
        let slot = Slot(active, record.id.clone());
        self.threads.spawn(async move {
            let _slot = slot;
            let start = Start {
                cancel,
                started,
                recorded,
            };
            run(&deps, &delivery, &compaction, start, key, record, planned).await;
        });
    }
}

/// A tokio runtime of the queries' own, started at the first query.
///
/// Scans and aggregations are CPU-bound: on the runtime that answers requests they held its
/// workers, and every request of every service waited while a query ran. Beside a GROUP BY
/// of a million groups, the slowest ListChannels in a hundred took 19-32 ms there, and 7 ms
/// with the query threads (0.7 ms idle; `bench/lake.sh`). On threads of their own, the
/// kernel's scheduler shares the cores between queries and the request workers.
#[derive(Default)]
struct QueryThreads(OnceLock<Option<tokio::runtime::Runtime>>);

impl QueryThreads {
    /// Runs `task` on the query threads, or on the caller's runtime if they cannot start.
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let threads = self.0.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(PARTITIONS)
                .thread_name("sluice-query")
                .enable_all()
                .build()
                .map_err(|err| tracing::warn!(error = %err, "Could not start the query threads; queries run beside requests."))
                .ok()
        });
        match threads {
            Some(threads) => drop(threads.spawn(task)),
            None => drop(tokio::spawn(task)),
        }
    }
}

impl Drop for QueryThreads {
    /// Stops the threads without waiting for running queries: a runtime must not block in
    /// the async context that drops the service. Queries still running end as on a restart.
    fn drop(&mut self) {
        if let Some(Some(threads)) = self.0.take() {
            threads.shutdown_background();
        }
    }
}

/// A DataFusion session as every query gets it: Trino's functions, [`PARTITIONS`], and the
/// rule that lets nested-field projections reach the Parquet scans.
pub(super) fn session(runtime: Arc<RuntimeEnv>) -> SessionContext {
    let config = SessionConfig::new()
        .with_target_partitions(PARTITIONS)
        .with_information_schema(false);
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(FieldsBelowUnion))
        .with_physical_optimizer_rule(Arc::new(CountsFromSegments))
        .build();
    let context = SessionContext::new_with_state(state);
    super::functions::register(&context);
    context
}

/// A session for one query: `template`'s functions and rules, with a catalog of its own for
/// the stores the query names (a plain clone would share the template's).
fn fresh_session(template: &SessionState) -> SessionContext {
    let mut state = template.clone();
    let schema = Arc::new(MemorySchemaProvider::new());
    let catalog = Arc::new(MemoryCatalogProvider::new());
    let catalogs = Arc::new(MemoryCatalogProviderList::new());
    let defaults = &state.config().options().catalog;
    // Registering into fresh in-memory providers cannot fail.
    let _ = catalog.register_schema(&defaults.default_schema, schema);
    catalogs.register_catalog(defaults.default_catalog.clone(), catalog);
    state.register_catalog_list(catalogs);
    SessionContext::new_with_state(state)
}

/// A DataFusion planning error as the caller should read it.
fn statement_error(err: &datafusion::error::DataFusionError) -> String {
    let text = err.to_string();
    let text = text
        .strip_prefix("Error during planning: ")
        .or_else(|| text.strip_prefix("Schema error: "))
        .unwrap_or(&text);
    clip(&format!("Query statement is invalid: {text}"))
}

fn clip(text: &str) -> String {
    let mut end = text.len().min(MAX_ERROR);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// How a run ended.
enum Outcome {
    Finished { results: u64, matched: u64 },
    Failed(String),
    TimedOut,
    Cancelled,
}

/// What a run needs besides its plan: where it is recorded and what it may hold.
struct Run<'a> {
    deps: &'a Deps,
    key: RecordKey,
    results_log: RecordKey,
    /// Result rows found so far, in pages stored or buffered: what a cancelled or timed-out
    /// query keeps.
    stored: Arc<AtomicU64>,
    /// Result pages not yet stored: they go with the query's final record in one commit
    /// (or, past [`BUFFERED_PAGES`], in a commit of their own).
    buffered: Mutex<Vec<Vec<u8>>>,
}

impl Run<'_> {
    /// The buffered pages, as appends to the results log.
    fn take_buffered(&self) -> Vec<Write> {
        let pages = std::mem::take(&mut *self.buffered.lock().unwrap_or_else(|e| e.into_inner()));
        pages
            .into_iter()
            .map(|data| Write::Append {
                log: self.results_log.clone(),
                entry: NewEntry {
                    at_millis: 0,
                    meta: String::new(),
                    data,
                    span: None,
                },
            })
            .collect()
    }
}

/// How a run begins: its cancellation, the flag DescribeQuery reads, and word of its record.
struct Start {
    cancel: CancellationToken,
    started: Arc<std::sync::atomic::AtomicBool>,
    recorded: tokio::sync::oneshot::Receiver<bool>,
}

async fn run(
    deps: &Deps,
    delivery: &Delivery,
    compaction: &tokio::sync::RwLock<()>,
    start: Start,
    key: RecordKey,
    mut record: QueryRecord,
    planned: Planned,
) {
    let results_log = RecordKey::new(RESULTS, &key.account, &key.region, &key.name);
    let run = Run {
        deps,
        key,
        results_log,
        stored: Arc::default(),
        buffered: Mutex::default(),
    };
    let Start {
        cancel,
        started: running,
        recorded,
    } = start;
    running.store(true, Ordering::Relaxed);
    // The record as StartQuery commits it, QUEUED, is version 1.
    let mut version = 1;
    let started = Instant::now();
    let counters = planned.counters.clone();
    let columns = planned.columns.clone();
    let shared = compaction.read().await;
    let outcome = tokio::select! {
        () = cancel.cancelled() => Outcome::Cancelled,
        done = tokio::time::timeout(QUERY_TIMEOUT, execute(&run, planned)) => {
            match done {
                Ok(Ok((results, matched))) => Outcome::Finished { results, matched },
                Ok(Err(message)) => Outcome::Failed(message),
                Err(_) => Outcome::TimedOut,
            }
        }
    };
    drop(shared);
    if !matches!(recorded.await, Ok(true)) {
        // StartQuery could not record the query: it answered an error, nothing to record.
        return;
    }
    record.execution_millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    record.events_scanned = counters.events.load(Ordering::Relaxed);
    record.bytes_scanned = counters.bytes.load(Ordering::Relaxed);
    record.columns = columns;
    record.results = run.stored.load(Ordering::Relaxed);
    // CancelQuery wrote the status; the rows found until now stay, as on a timeout.
    if matches!(outcome, Outcome::Cancelled) {
        keep_cancelled(&run, &record).await;
        return;
    }
    let mut extra = run.take_buffered();
    match outcome {
        Outcome::Finished { results, matched } => {
            record.status = Status::Finished;
            record.results = results;
            record.events_matched = matched;
        }
        Outcome::Failed(message) => {
            record.status = Status::Failed;
            record.error = Some(clip(&message));
            record.results = 0;
            extra.clear();
            extra.push(Write::DeleteLog {
                log: run.results_log.clone(),
            });
        }
        // "You can still get partial results that were processed before the query timed
        // out. CloudTrail does not deliver partial query results to an S3 bucket."
        Outcome::TimedOut => {
            record.status = Status::TimedOut;
            record.error = Some(format!(
                "The query ran longer than {} minutes; the results found until then are kept.",
                QUERY_TIMEOUT.as_secs() / 60
            ));
        }
        Outcome::Cancelled => return,
    }
    if record.delivery_uri.is_some() && record.status != Status::Finished {
        record.delivery_status = Some(super::delivery::FAILED.to_owned());
    }
    let pages: Vec<Vec<u8>> = extra
        .iter()
        .filter_map(|w| match w {
            Write::Append { entry, .. } => Some(entry.data.clone()),
            _ => None,
        })
        .collect();
    match write_record(deps, &run.key, &record, version, extra).await {
        Ok(()) => version += 1,
        // Cancelled at the last moment: the cancellation stands, with what was found.
        Err(StoreError::Conflict(_)) => {
            run.buffered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(pages);
            keep_cancelled(&run, &record).await;
            return;
        }
        Err(_) => return,
    }
    if record.status == Status::Finished && record.delivery_uri.is_some() {
        record.delivery_status = Some(delivery.deliver(deps, &run.results_log, &record).await);
        if let Err(err) = write_record(deps, &run.key, &record, version, Vec::new()).await {
            tracing::warn!(error = %err, query = %record.id, "Could not record the delivery status of a query.");
        }
    }
}

/// Records on a query that CancelQuery ended what it found until then (statistics, columns,
/// the rows stored), keeping the status CancelQuery wrote.
async fn keep_cancelled(run: &Run<'_>, ran: &QueryRecord) {
    for _ in 0..3 {
        let Ok(Some(found)) = run.deps.store.get(&run.key).await else {
            return;
        };
        let Ok(mut record) = serde_json::from_value::<QueryRecord>(found.body) else {
            return;
        };
        if record.status != Status::Cancelled {
            return;
        }
        record.columns = ran.columns.clone();
        record.results = run.stored.load(Ordering::Relaxed);
        record.events_scanned = ran.events_scanned;
        record.bytes_scanned = ran.bytes_scanned;
        record.execution_millis = ran.execution_millis;
        let pages = run.take_buffered();
        match write_record(run.deps, &run.key, &record, found.version, pages.clone()).await {
            Err(StoreError::Conflict(_)) => {
                run.buffered
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(pages.into_iter().filter_map(|w| match w {
                        Write::Append { entry, .. } => Some(entry.data),
                        _ => None,
                    }));
                continue;
            }
            _ => return,
        }
    }
}

async fn write_record(
    deps: &Deps,
    key: &RecordKey,
    record: &QueryRecord,
    version: i64,
    mut extra: Vec<Write>,
) -> Result<(), StoreError> {
    let mut batch = vec![store::put(key.clone(), record, Expect::Version(version))?];
    batch.append(&mut extra);
    deps.store.write(batch).await.map(|_| ())
}

/// Executes the plan, appending result pages; returns the result count and the events that
/// matched the query's filters. More than [`MAX_RESULTS`] rows fail the query.
async fn execute(run: &Run<'_>, planned: Planned) -> Result<(u64, u64), String> {
    let failed = |err: datafusion::error::DataFusionError| err.to_string();
    let counters = planned.counters.clone();
    let frame = planned
        .context
        .execute_logical_plan(planned.plan)
        .await
        .map_err(failed)?;
    let task = Arc::new(frame.task_ctx());
    let physical = frame.create_physical_plan().await.map_err(failed)?;
    let mut stream = execute_stream(physical.clone(), task).map_err(failed)?;
    let mut page: Vec<Vec<Option<String>>> = Vec::with_capacity(PAGE_ROWS);
    let mut results = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(failed)?;
        if results + batch.num_rows() as u64 > MAX_RESULTS {
            return Err(format!(
                "The query returns more than {MAX_RESULTS} rows, the most Sluice keeps for one query. Narrow it with WHERE (an eventTime range) or LIMIT, or aggregate."
            ));
        }
        for row in 0..batch.num_rows() {
            page.push(
                batch
                    .columns()
                    .iter()
                    .map(|column| sql::render(column, row))
                    .collect(),
            );
            if page.len() == PAGE_ROWS {
                append_page(run, &mut page).await?;
            }
        }
        results += batch.num_rows() as u64;
    }
    if !page.is_empty() {
        append_page(run, &mut page).await?;
    }
    // What EXPLAIN ANALYZE would print: where a slow query spent its time.
    tracing::debug!(
        query = %run.key.name,
        plan = %datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(physical.as_ref()).indent(true),
        "Query plan with its metrics."
    );
    Ok((results, matched(physical.as_ref(), &counters)))
}

/// Buffers a result page; past [`BUFFERED_PAGES`] the buffer is stored in one commit.
async fn append_page(run: &Run<'_>, page: &mut Vec<Vec<Option<String>>>) -> Result<(), String> {
    let data = serde_json::to_vec(page).map_err(|err| err.to_string())?;
    let rows = page.len() as u64;
    page.clear();
    let full = {
        let mut buffered = run.buffered.lock().unwrap_or_else(|e| e.into_inner());
        buffered.push(data);
        buffered.len() >= BUFFERED_PAGES
    };
    run.stored.fetch_add(rows, Ordering::Relaxed);
    if full {
        let pages = run.take_buffered();
        run.deps
            .store
            .write(pages)
            .await
            .map_err(|err| format!("The query results could not be stored: {err}"))?;
    }
    Ok(())
}

/// A scan of a store: its tail (rows) or its segments (Parquet, filters pushed inside).
fn is_scan(plan: &dyn ExecutionPlan) -> bool {
    matches!(plan.name(), "StreamingTableExec" | "DataSourceExec")
}

/// Events that passed the filters right above the scans (all scanned events when a scan has
/// no filter): QueryStatistics' EventsMatched.
fn matched(plan: &dyn ExecutionPlan, counters: &ScanCounters) -> u64 {
    fn reads_table(plan: &dyn ExecutionPlan) -> bool {
        is_scan(plan)
            || plan
                .children()
                .iter()
                .any(|child| child.name() != "FilterExec" && reads_table(child.as_ref()))
    }
    if is_scan(plan) || (plan.name() == "FilterExec" && reads_table(plan)) {
        return counters.tail_rows(plan).unwrap_or_else(|| {
            plan.metrics()
                .and_then(|m| m.output_rows())
                .unwrap_or_default() as u64
        });
    }
    // Segments answered from their counts match every event they hold.
    let counted = plan
        .downcast_ref::<SegmentCountsExec>()
        .map_or(0, SegmentCountsExec::events);
    counted
        + plan
            .children()
            .iter()
            .map(|child| matched(child.as_ref(), counters))
            .sum::<u64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sessions cloned from the template keep its functions but not each other's tables.
    #[tokio::test]
    async fn fresh_sessions_share_functions_not_tables() {
        let template = session(Arc::default()).state();
        let first = fresh_session(&template);
        let second = fresh_session(&template);
        first
            .register_table(
                "s1",
                Arc::new(datafusion::datasource::empty::EmptyTable::new(
                    super::super::table::schema(),
                )),
            )
            .expect("register");
        assert!(first.table_exist("s1").expect("lookup"));
        assert!(!second.table_exist("s1").expect("lookup"));
        assert!(!fresh_session(&template).table_exist("s1").expect("lookup"));
        // Trino's functions come with the template.
        let shown = super::super::table::tests_results(
            &second,
            "SELECT json_extract_scalar('{\"a\": \"b\"}', '$.a')",
        )
        .await;
        assert!(shown.contains("| b "), "{shown}");
    }
}
