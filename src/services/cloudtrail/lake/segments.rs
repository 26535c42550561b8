//! Columnar segments: events moved from the `cloudtrail_events` rows into Parquet files per
//! event data store, which DataFusion scans fast (column pruning, row-group statistics on
//! eventTime). A query reads a store's segments plus its recent tail of rows.
//!
//! The compactor (one task per process, only with a data directory) takes a store's tail once
//! it holds [`MIN_ROWS`] events or its oldest event has waited [`MAX_WAIT_MILLIS`]: it reads
//! the rows, writes `<data dir>/lake/<store ID>/<name>.parquet` (fsynced, then renamed), and in
//! ONE store batch records the segment and deletes the rows it holds. That commit happens only
//! while no query runs (the compaction lock, polled so that it never holds queries up), so a
//! query never sees an event twice or misses one; under a query that runs on and on, the tail
//! just grows until the next pass. A crash before the commit leaves an unrecorded file, which is
//! never read and is removed once an hour old; the rows stay in the tail.
//!
//! A segment is named by the time of its compaction and a random part, never by its rows'
//! numbers: SQLite numbers rows anew once the table has been emptied (every tail compacted), and
//! a segment named after reused numbers would replace an earlier one's file.
//!
//! Small segments are merged: once a store has [`MERGE_AT_LEAST`] consecutive segments of fewer
//! than [`MERGE_BELOW_ROWS`] events, they are read as sorted streams and merged into one file in
//! eventTime order; the new record and the deletion of the old ones commit in one batch under the
//! compaction lock, and the old files are removed after it.
//!
//! Retention: a segment whose newest event is past the store's retention is deleted (record,
//! then file); queries also filter segments by eventTime, so older events in a segment that is
//! still partly retained are not returned.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::{ArrowWriter, AsyncArrowWriter};
use datafusion::parquet::basic::{Compression, Encoding};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::counts::ValueCounts;
use super::table;
use crate::services::cloudtrail::event_data_stores::EventDataStoreRecord;
use crate::services::cloudtrail::{EVENTS_TABLE, EVENT_DATA_STORE};
use crate::store::{self, Expect, RecordKey, Store, StoreError, Write};

/// Record kind of segments, named `<store ID>/<compaction time in milliseconds, 20 digits>-<random>`,
/// so that names sort oldest first.
pub const SEGMENT: &str = "cloudtrail/lake-segment";
/// A tail this large is compacted at once.
pub const MIN_ROWS: usize = 20_000;
/// A smaller tail is compacted once its oldest event has waited this long.
pub const MAX_WAIT_MILLIS: i64 = 60_000;
/// Most events in one segment (bounds the compactor's memory and the commit's length).
const MAX_ROWS: usize = 50_000;
/// Rows per Parquet row group: a query pays per row group it decodes (a million events took
/// 2-3 ms less to group in 128 Ki-row groups than in 16 Ki). Most rows per data page: small
/// enough that the page index of a sorted segment narrows a time range to a few thousand rows.
const ROW_GROUP_ROWS: usize = 128 * 1024;
const PAGE_ROWS_LIMIT: usize = 2048;
/// Rows read from the store at a time.
const PAGE: usize = 4096;
/// How long a commit waits for running queries before it gives up until the next pass.
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// How often the compactor looks at the stores.
const INTERVAL: Duration = Duration::from_secs(5);
/// Segments with fewer events than this are merged into larger ones: a query pays for every
/// file it opens, and a store taking events for a year would otherwise have thousands.
const MERGE_BELOW_ROWS: u64 = 500_000;
/// Fewest small segments, one after another, worth a merge.
const MERGE_AT_LEAST: usize = 4;
/// Most segments one merge reads (it holds a row group's pages and a batch of each in memory
/// at a time: 16 took a million-event ingest from a 372 MB to a 729 MB peak).
const MERGE_AT_MOST: usize = 8;
/// Rows per batch a merge streams: small batches keep its memory small.
const MERGE_BATCH_ROWS: usize = 2048;
/// Most events in a merged segment.
const MERGED_ROWS: u64 = 1_000_000;

/// A segment as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentRecord {
    /// File name under the store's directory.
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    /// Earliest and latest eventTime inside, epoch milliseconds.
    pub min_time: i64,
    pub max_time: i64,
    /// How many events hold each value of the segment's few-valued string columns (none in
    /// segments written before counts were kept).
    #[serde(default, skip_serializing_if = "ValueCounts::is_empty")]
    pub counts: ValueCounts,
}

/// The schema of a segment file: the table's columns, then the event data as it was put.
pub fn file_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let mut fields: Vec<Field> = table::schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            fields.push(Field::new("raweventdata", DataType::Utf8, true));
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// Where a store's segment files live.
pub fn store_dir(root: &Path, store_id: &str) -> PathBuf {
    root.join(store_id)
}

/// The recorded segments of a store, oldest first.
pub async fn list(
    store: &dyn Store,
    account: &str,
    region: &str,
    store_id: &str,
) -> Result<Vec<SegmentRecord>, StoreError> {
    let prefix = format!("{store_id}/");
    let records =
        store::load_all::<SegmentRecord>(store, SEGMENT, account, region, &prefix).await?;
    Ok(records.into_iter().map(|(_, value, _)| value).collect())
}

/// Why compaction of a store stopped.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("segment file: {0}")]
    Io(#[from] std::io::Error),
    #[error("segment encoding: {0}")]
    Encode(String),
}

/// The Lake's files on disk (`<data dir>/lake/`), shared by the compactor, the queries and
/// `/_sluice/reset`, which removes them.
pub struct LakeFiles {
    store: Arc<dyn Store>,
    /// `None` with `--data-dir :memory:`: events stay rows.
    root: Option<PathBuf>,
    /// Held shared while a query runs; the commit of a segment and a reset take it
    /// exclusively.
    lock: Arc<tokio::sync::RwLock<()>>,
    /// Counts resets: a segment written from rows read before a reset is not committed after
    /// it (its rows are gone).
    generation: AtomicU64,
}

impl LakeFiles {
    /// The Lake's files under `<data_dir>/lake/` (none without a data directory).
    pub fn new(store: Arc<dyn Store>, data_dir: Option<&Path>) -> Self {
        Self {
            store,
            root: data_dir.map(|dir| dir.join("lake")),
            lock: Arc::default(),
            generation: AtomicU64::new(0),
        }
    }

    /// Where segments live.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// The lock running queries hold shared.
    pub fn lock(&self) -> Arc<tokio::sync::RwLock<()>> {
        self.lock.clone()
    }
}

#[async_trait::async_trait]
impl crate::store::ResetHook for LakeFiles {
    /// Removes every segment record and file once no query or commit holds them. The store
    /// was emptied just before, but a commit may have slipped in between.
    async fn after_reset(&self) -> anyhow::Result<()> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let _exclusive = self.lock.write().await;
        self.generation.fetch_add(1, Ordering::SeqCst);
        let mut after: Option<RecordKey> = None;
        loop {
            let page = self.store.scan(SEGMENT, after.as_ref(), 100).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.key.clone());
            let deletes = page
                .into_iter()
                .map(|record| Write::Delete {
                    key: record.key,
                    expect: Expect::Any,
                })
                .collect();
            self.store.write(deletes).await?;
        }
        match tokio::fs::remove_dir_all(root).await {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err.into()),
        }
        tracing::info!(path = %root.display(), "Reset removed CloudTrail Lake's segment files.");
        Ok(())
    }
}

/// The compactor of one process.
pub struct Compactor {
    store: Arc<dyn Store>,
    root: PathBuf,
    files: Arc<LakeFiles>,
    /// One node of a shared store compacts at a time: the holder of [`COMPACTION`].
    leases: Arc<crate::lease::Leases>,
}

/// The lease of Lake compaction and segment expiry.
const COMPACTION: &str = "lake/compaction";

impl Compactor {
    /// A compactor of the segments under `files`' root (`None` without a data directory).
    pub fn new(files: Arc<LakeFiles>, leases: Arc<crate::lease::Leases>) -> Option<Self> {
        Some(Self {
            store: files.store.clone(),
            root: files.root.clone()?,
            files,
            leases,
        })
    }

    /// The compaction lock once no query runs, polled so that waiting never holds up new
    /// queries (a queued writer would); `None` when queries kept running for [`LOCK_WAIT`].
    async fn exclusive(&self) -> Option<tokio::sync::RwLockWriteGuard<'_, ()>> {
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            if let Ok(guard) = self.files.lock.try_write() {
                return Some(guard);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Compacts and expires forever, every [`INTERVAL`].
    pub async fn run(self) {
        loop {
            tokio::time::sleep(INTERVAL).await;
            if !self.leases.hold(COMPACTION).await {
                continue;
            }
            let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
            let now = i64::try_from(now).unwrap_or(i64::MAX);
            if let Err(err) = self.pass(now).await {
                tracing::warn!(error = %err, "CloudTrail Lake compaction failed; retrying later.");
            }
        }
    }

    /// One visit of every event data store.
    pub async fn pass(&self, now: i64) -> Result<(), CompactError> {
        let mut after: Option<RecordKey> = None;
        loop {
            let page = self
                .store
                .scan(EVENT_DATA_STORE, after.as_ref(), 100)
                .await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.key.clone());
            for record in &page {
                let Ok(eds) = serde_json::from_value::<EventDataStoreRecord>(record.body.clone())
                else {
                    continue;
                };
                let key = &record.key;
                self.expire(&key.account, &key.region, &eds, now).await?;
                while self
                    .compact(&key.account, &key.region, &eds.id, now)
                    .await?
                {}
                // Merging only saves work for queries: a failed merge leaves the segments as
                // they were, and does not stop the pass over the other stores.
                if let Err(err) = self.merge(&key.account, &key.region, &eds.id, now).await {
                    tracing::warn!(error = %err, store = %eds.id, "Could not merge CloudTrail Lake segments; retrying later.");
                }
            }
        }
    }

    /// Deletes the segments whose newest event is past the store's retention, and the files no
    /// segment records (see [`remove_unrecorded`]).
    async fn expire(
        &self,
        account: &str,
        region: &str,
        eds: &EventDataStoreRecord,
        now: i64,
    ) -> Result<(), CompactError> {
        const DAY_MILLIS: i64 = 24 * 60 * 60 * 1000;
        let cutoff = now.saturating_sub(eds.retention_days().saturating_mul(DAY_MILLIS));
        let prefix = format!("{}/", eds.id);
        let records =
            store::load_all::<SegmentRecord>(&*self.store, SEGMENT, account, region, &prefix)
                .await?;
        let recorded: HashSet<String> = records.iter().map(|(_, s, _)| s.file.clone()).collect();
        let left = SystemTime::now() - UNRECORDED_GRACE;
        remove_unrecorded(&store_dir(&self.root, &eds.id), &recorded, left).await?;
        for (key, segment, version) in records {
            if segment.max_time >= cutoff {
                continue;
            }
            let Some(_exclusive) = self.exclusive().await else {
                return Ok(());
            };
            self.store
                .write(vec![Write::Delete {
                    key,
                    expect: Expect::Version(version),
                }])
                .await?;
            let path = store_dir(&self.root, &eds.id).join(&segment.file);
            if let Err(err) = tokio::fs::remove_file(&path).await {
                tracing::warn!(error = %err, path = %path.display(), "Could not remove an expired segment file.");
            }
        }
        Ok(())
    }

    /// Moves a store's tail into a new segment when it is due; whether it did.
    async fn compact(
        &self,
        account: &str,
        region: &str,
        store_id: &str,
        now: i64,
    ) -> Result<bool, CompactError> {
        let arn = format!(
            "arn:{}:cloudtrail:{region}:{account}:eventdatastore/{store_id}",
            crate::arn::partition(region)
        );
        let scope = [
            ("account", account),
            ("region", region),
            ("event_data_store", arn.as_str()),
        ];
        let generation = self.files.generation.load(Ordering::SeqCst);
        // The tail in insertion order (row numbers), a page at a time.
        let mut cursor = (i64::MIN, i64::MIN);
        let mut rows: Vec<i64> = Vec::new();
        let mut batches: Vec<RecordBatch> = Vec::new();
        let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
        // When the first event of the tail was accepted.
        let mut oldest: Option<i64> = None;
        while rows.len() < MAX_ROWS {
            let page = self
                .store
                .scan_rows(EVENTS_TABLE, &scope, "rowid", cursor, i64::MAX, PAGE)
                .await?;
            let Some((last, _)) = page.last() else {
                break;
            };
            cursor = *last;
            if rows.is_empty() {
                oldest = page
                    .first()
                    .and_then(|(_, row)| row.get("ingestion_time").and_then(Value::as_str))
                    .and_then(parse_millis);
            }
            let full = page.len() == PAGE;
            let maps: Vec<Map<String, Value>> = page
                .into_iter()
                .map(|((_, row), map)| {
                    rows.push(row);
                    map
                })
                .collect();
            for map in &maps {
                if let Some(t) = map
                    .get("event_time_millis")
                    .and_then(Value::as_str)
                    .and_then(|t| t.parse::<i64>().ok())
                {
                    min_time = min_time.min(t);
                    max_time = max_time.max(t);
                }
            }
            batches.push(with_raw(&maps)?);
            if !full {
                break;
            }
        }
        // A small tail waits, unless its oldest event has waited long enough.
        let waited = oldest.is_none_or(|at| now - at >= MAX_WAIT_MILLIS);
        if rows.is_empty() || (rows.len() < MIN_ROWS && !waited) {
            return Ok(false);
        }
        let name = segment_name(now);
        let file = format!("{name}.parquet");
        let dir = store_dir(&self.root, store_id);
        let sorted = sort_by_time(&batches)?;
        let counts = ValueCounts::of(&sorted, &DISTINCT_COLUMNS);
        let bytes = write_file(&dir, &file, vec![sorted]).await?;
        let segment = SegmentRecord {
            file: file.clone(),
            rows: rows.len() as u64,
            bytes,
            min_time,
            max_time,
            counts,
        };
        let key = RecordKey::new(SEGMENT, account, region, &format!("{store_id}/{name}"));
        let more = rows.len() >= MAX_ROWS;
        let batch = vec![
            store::put(key, &segment, Expect::Absent)?,
            Write::DeleteRows {
                table: EVENTS_TABLE,
                rows,
            },
        ];
        if !self.commit(batch, generation, &dir.join(&file)).await? {
            return Ok(false);
        }
        tracing::debug!(
            store = store_id,
            rows = segment.rows,
            "Compacted a CloudTrail Lake segment."
        );
        Ok(more)
    }

    /// Commits the batch that records the segment written to `file`, once no query runs;
    /// whether it did. Queries that kept running (try again on the next pass) or a reset since
    /// `generation` (the batch's rows or segments are gone) leave the file unused, and it goes.
    async fn commit(
        &self,
        batch: Vec<Write>,
        generation: u64,
        file: &Path,
    ) -> Result<bool, CompactError> {
        let exclusive = self.exclusive().await;
        if exclusive.is_none() || self.files.generation.load(Ordering::SeqCst) != generation {
            let _ = tokio::fs::remove_file(file).await;
            return Ok(false);
        }
        let written = self.store.write(batch).await;
        drop(exclusive);
        written.map_err(|err| discard_unless_committed(err, file))?;
        Ok(true)
    }

    /// Merges a run of consecutive small segments of a store into one, in eventTime order;
    /// whether it did. The merged segment's record and the deletion of the merged ones'
    /// records commit in one batch, under the compaction lock, so a query sees each event
    /// once; the merged files are removed after that commit.
    async fn merge(
        &self,
        account: &str,
        region: &str,
        store_id: &str,
        now: i64,
    ) -> Result<bool, CompactError> {
        let prefix = format!("{store_id}/");
        let records =
            store::load_all::<SegmentRecord>(&*self.store, SEGMENT, account, region, &prefix)
                .await?;
        let run = merge_run(&records);
        if run.len() < MERGE_AT_LEAST {
            return Ok(false);
        }
        let generation = self.files.generation.load(Ordering::SeqCst);
        let dir = store_dir(&self.root, store_id);
        let name = segment_name(now);
        let file = format!("{name}.parquet");
        let inputs: Vec<(PathBuf, u64)> = run
            .iter()
            .map(|(_, segment, _)| (dir.join(&segment.file), segment.bytes))
            .collect();
        let rows: u64 = run.iter().map(|(_, segment, _)| segment.rows).sum();
        let written = match merge_files(&inputs, &dir, &file).await {
            Ok((written_rows, bytes)) if written_rows == rows => bytes,
            Ok((written_rows, _)) => {
                let _ = tokio::fs::remove_file(dir.join(&file)).await;
                return Err(CompactError::Encode(format!(
                    "a merge of {} segments wrote {written_rows} events, not {rows}",
                    run.len()
                )));
            }
            Err(err) => {
                let _ = tokio::fs::remove_file(dir.join(&file)).await;
                return Err(err);
            }
        };
        let merged = SegmentRecord {
            file: file.clone(),
            rows,
            bytes: written,
            min_time: run.iter().map(|(_, s, _)| s.min_time).min().unwrap_or(0),
            max_time: run.iter().map(|(_, s, _)| s.max_time).max().unwrap_or(0),
            // The merged file holds exactly its inputs' events (checked above).
            counts: ValueCounts::sum(run.iter().map(|(_, s, _)| &s.counts)),
        };
        let key = RecordKey::new(SEGMENT, account, region, &format!("{store_id}/{name}"));
        let mut batch = vec![store::put(key, &merged, Expect::Absent)?];
        batch.extend(run.iter().map(|(key, _, version)| Write::Delete {
            key: key.clone(),
            expect: Expect::Version(*version),
        }));
        if !self.commit(batch, generation, &dir.join(&file)).await? {
            return Ok(false);
        }
        for (path, _) in &inputs {
            if let Err(err) = tokio::fs::remove_file(path).await {
                tracing::warn!(error = %err, path = %path.display(), "Could not remove a merged segment file.");
            }
        }
        tracing::debug!(
            store = store_id,
            segments = run.len(),
            rows,
            "Merged CloudTrail Lake segments."
        );
        Ok(true)
    }
}

/// A failed segment commit as an error. Only a conflict says for certain that nothing was
/// written, and then the new file goes at once. After any other failure the commit may still
/// have landed (a failed fsync, say), and the file may be the only copy of its events: it is
/// kept, and the hourly sweep removes it if no record names it.
fn discard_unless_committed(err: StoreError, file: &Path) -> CompactError {
    if matches!(err, StoreError::Conflict(_)) {
        if let Err(err) = std::fs::remove_file(file) {
            tracing::warn!(error = %err, path = %file.display(), "Could not remove an uncommitted segment file.");
        }
    }
    err.into()
}

/// The name of a new segment: its creation time, then a random part (see the module doc).
fn segment_name(now: i64) -> String {
    format!(
        "{now:020}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// The first run of at least [`MERGE_AT_LEAST`] consecutive small segments (oldest first), at
/// most [`MERGE_AT_MOST`] of them and [`MERGED_ROWS`] events; shorter when there is none.
fn merge_run(records: &[(RecordKey, SegmentRecord, i64)]) -> &[(RecordKey, SegmentRecord, i64)] {
    let (mut start, mut rows) = (0, 0);
    for (index, (_, segment, _)) in records.iter().enumerate() {
        let full = index - start == MERGE_AT_MOST || rows + segment.rows > MERGED_ROWS;
        if (full || segment.rows >= MERGE_BELOW_ROWS) && index - start >= MERGE_AT_LEAST {
            return &records[start..index];
        }
        if segment.rows >= MERGE_BELOW_ROWS {
            (start, rows) = (index + 1, 0);
        } else if full {
            (start, rows) = (index, segment.rows);
        } else {
            rows += segment.rows;
        }
    }
    &records[start..]
}

/// Writes the rows of segment files `inputs` (path, size), each sorted by eventTime, as one
/// file sorted by eventTime; the rows written and the file's size. The inputs are merged as
/// they stream, so memory holds a batch of each input, not the segments.
async fn merge_files(
    inputs: &[(PathBuf, u64)],
    dir: &Path,
    name: &str,
) -> Result<(u64, u64), CompactError> {
    use datafusion::datasource::listing::PartitionedFile;
    use datafusion::datasource::physical_plan::FileScanConfigBuilder;
    use datafusion::datasource::physical_plan::ParquetSource;
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::execution::object_store::ObjectStoreUrl;
    use datafusion::execution::TaskContext;
    use datafusion::physical_expr::expressions::col;
    use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
    use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
    use datafusion::physical_plan::ExecutionPlan;
    use futures_util::StreamExt;

    let encode = |e: datafusion::error::DataFusionError| CompactError::Encode(e.to_string());
    let schema = file_schema();
    let order = LexOrdering::new(vec![PhysicalSortExpr::new_default(
        col("eventtime", &schema).map_err(encode)?,
    )])
    .ok_or_else(|| CompactError::Encode("no merge order".to_owned()))?;
    let groups = inputs
        .iter()
        .map(|(path, size)| {
            vec![PartitionedFile::new(
                path.to_string_lossy().into_owned(),
                *size,
            )]
            .into()
        })
        .collect();
    let scan = FileScanConfigBuilder::new(
        ObjectStoreUrl::local_filesystem(),
        Arc::new(ParquetSource::new(schema.clone())),
    )
    .with_file_groups(groups)
    .with_output_ordering(vec![order.clone()])
    .build();
    let merged = SortPreservingMergeExec::new(order, DataSourceExec::from_data_source(scan));
    let config = datafusion::prelude::SessionConfig::new().with_batch_size(MERGE_BATCH_ROWS);
    let task = TaskContext::default().with_session_config(config);
    let mut batches = merged.execute(0, Arc::new(task)).map_err(encode)?;
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!("{name}.tmp"));
    let written = async {
        let file = tokio::fs::File::create(&temporary).await?;
        let parquet =
            |e: datafusion::parquet::errors::ParquetError| CompactError::Encode(e.to_string());
        let mut writer =
            AsyncArrowWriter::try_new(file, schema, Some(writer_properties())).map_err(parquet)?;
        let mut rows = 0u64;
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(encode)?;
            rows += batch.num_rows() as u64;
            writer.write(&batch).await.map_err(parquet)?;
        }
        writer.finish().await.map_err(parquet)?;
        let file = writer.into_inner();
        file.sync_all().await?;
        Ok((rows, file.metadata().await?.len()))
    }
    .await;
    let written = leave_no_temporary(written, &temporary)?;
    tokio::fs::rename(&temporary, dir.join(name)).await?;
    tokio::fs::File::open(dir).await?.sync_all().await?;
    Ok(written)
}

/// A failed write's result, with its temporary file removed: a merge or compaction that fails
/// on a full disk must not keep the space it took until the hourly sweep, nor leave a file per
/// retry.
fn leave_no_temporary<T>(
    written: Result<T, CompactError>,
    temporary: &Path,
) -> Result<T, CompactError> {
    if written.is_err() {
        let _ = std::fs::remove_file(temporary);
    }
    written
}

/// How old a file no segment records must be before it is removed: far longer than writing a
/// segment and committing it takes.
const UNRECORDED_GRACE: Duration = Duration::from_secs(60 * 60);

/// Removes what a crash between a segment's file and its commit left: files in `dir` that
/// `recorded` does not name (unfinished `.tmp` files too), last modified before `cutoff`.
async fn remove_unrecorded(
    dir: &Path,
    recorded: &HashSet<String>,
    cutoff: SystemTime,
) -> std::io::Result<()> {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let metadata = entry.metadata().await?;
        if recorded.contains(&name) || !metadata.is_file() || metadata.modified()? >= cutoff {
            continue;
        }
        match tokio::fs::remove_file(entry.path()).await {
            Ok(()) => {
                tracing::info!(file = %entry.path().display(), "Removed a CloudTrail Lake file no segment records (left by a crash).")
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

fn parse_millis(text: &str) -> Option<i64> {
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Rows as a batch of the segment file's schema.
fn with_raw(rows: &[Map<String, Value>]) -> Result<RecordBatch, CompactError> {
    let batch = table::to_batch(rows).map_err(|e| CompactError::Encode(e.to_string()))?;
    let raw: StringArray = rows
        .iter()
        .map(|row| row.get("raw_event_data").and_then(Value::as_str))
        .collect();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(raw));
    RecordBatch::try_new(file_schema(), columns).map_err(|e| CompactError::Encode(e.to_string()))
}

/// The rows of a segment in eventTime order, so that the row groups' and pages' statistics
/// let a time-range query skip most of a segment.
fn sort_by_time(batches: &[RecordBatch]) -> Result<RecordBatch, CompactError> {
    use datafusion::arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
    let encode = |e: datafusion::arrow::error::ArrowError| CompactError::Encode(e.to_string());
    let all = concat_batches(&file_schema(), batches).map_err(encode)?;
    let time = all
        .column_by_name("eventtime")
        .ok_or_else(|| CompactError::Encode("no eventtime column".to_owned()))?;
    let order = sort_to_indices(time, None, None).map_err(encode)?;
    take_record_batch(&all, &order).map_err(encode)
}

/// Columns whose values are distinct, or nearly, in every event: written without a
/// dictionary. Theirs would fill up and fall back to plain pages anyway, and a query that
/// reads one page of such a column reads and decodes the row group's whole dictionary first
/// (about 1 MB for `eventdata.uid` in a 128 Ki-row group: most of a one-hour range query).
pub(super) const DISTINCT_COLUMNS: [&[&str]; 5] = [
    &["eventid"],
    &["eventtime"],
    &["eventdata", "uid"],
    &["eventdata", "eventtime"],
    &["raweventdata"],
];

/// How segment files are written.
fn writer_properties() -> WriterProperties {
    let mut properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS_LIMIT)
        .set_write_batch_size(PAGE_ROWS_LIMIT)
        // Sorted millisecond times take a byte or two a row as deltas, eight as plain values.
        .set_column_encoding(ColumnPath::from("eventtime"), Encoding::DELTA_BINARY_PACKED);
    for path in DISTINCT_COLUMNS {
        let path = ColumnPath::new(path.iter().map(|part| (*part).to_owned()).collect());
        properties = properties.set_column_dictionary_enabled(path, false);
    }
    properties.build()
}

/// Writes a segment file durably (temporary name, fsync, rename, directory fsync); its size.
pub(super) async fn write_file(
    dir: &Path,
    name: &str,
    batches: Vec<RecordBatch>,
) -> Result<u64, CompactError> {
    let dir = dir.to_path_buf();
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || -> Result<u64, CompactError> {
        std::fs::create_dir_all(&dir)?;
        let temporary = dir.join(format!("{name}.tmp"));
        let written = (|| -> Result<u64, CompactError> {
            let file = std::fs::File::create(&temporary)?;
            let encode =
                |e: datafusion::parquet::errors::ParquetError| CompactError::Encode(e.to_string());
            let mut writer = ArrowWriter::try_new(file, file_schema(), Some(writer_properties()))
                .map_err(encode)?;
            for batch in &batches {
                writer.write(batch).map_err(encode)?;
            }
            let file = writer.into_inner().map_err(encode)?;
            file.sync_all()?;
            Ok(file.metadata()?.len())
        })();
        let size = leave_no_temporary(written, &temporary)?;
        std::fs::rename(&temporary, dir.join(&name))?;
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(size)
    })
    .await
    .map_err(|e| CompactError::Encode(e.to_string()))?
}

/// A segment batch of stored rows, for tests elsewhere in the Lake.
#[cfg(test)]
pub(super) fn tests_batch(rows: &[Map<String, Value>]) -> RecordBatch {
    with_raw(rows).expect("batch")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(rows: &[u64]) -> Vec<(RecordKey, SegmentRecord, i64)> {
        rows.iter()
            .enumerate()
            .map(|(index, rows)| {
                let record = SegmentRecord {
                    file: format!("{index}.parquet"),
                    rows: *rows,
                    bytes: 0,
                    min_time: 0,
                    max_time: 0,
                    counts: ValueCounts::default(),
                };
                (
                    RecordKey::new(SEGMENT, "a", "r", &index.to_string()),
                    record,
                    1,
                )
            })
            .collect()
    }

    fn files(run: &[(RecordKey, SegmentRecord, i64)]) -> Vec<String> {
        run.iter().map(|(_, s, _)| s.file.clone()).collect()
    }

    #[test]
    fn merges_take_runs_of_small_segments() {
        const K: u64 = 1_000;
        assert_eq!(files(merge_run(&segments(&[50 * K; 4]))).len(), 4);
        assert!(merge_run(&segments(&[50 * K; 3])).len() < MERGE_AT_LEAST);
        // A large segment splits runs; the first long enough run is taken.
        assert_eq!(
            files(merge_run(&segments(&[
                50 * K,
                50 * K,
                50 * K,
                600 * K,
                50 * K,
                50 * K
            ])))
            .len(),
            2
        );
        assert_eq!(
            files(merge_run(&segments(&[
                600 * K,
                50 * K,
                50 * K,
                50 * K,
                50 * K,
                50 * K
            ]))),
            [
                "1.parquet",
                "2.parquet",
                "3.parquet",
                "4.parquet",
                "5.parquet"
            ]
        );
        // At most MERGE_AT_MOST segments and MERGED_ROWS events.
        assert_eq!(merge_run(&segments(&[10 * K; 40])).len(), MERGE_AT_MOST);
        let large = segments(&[300 * K; 8]);
        assert!(
            merge_run(&large).len() < MERGE_AT_LEAST,
            "three of 300,000 events fill a merge, and three are too few"
        );
    }

    /// A merge writes every row of its inputs once, in eventTime order across them.
    #[tokio::test]
    async fn merged_files_keep_every_row_in_time_order() {
        use datafusion::arrow::array::{Array, TimestampMillisecondArray};
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let dir = tempfile::tempdir().expect("dir");
        let mut inputs = Vec::new();
        for (file, times) in [("a", [5, 1, 9]), ("b", [2, 8, 3]), ("c", [7, 4, 6])] {
            let rows: Vec<Map<String, Value>> = times
                .iter()
                .map(|t| {
                    let mut row = Map::new();
                    row.insert("event_id".into(), Value::String(format!("{file}{t}")));
                    row.insert("event_time_millis".into(), Value::String(t.to_string()));
                    row.insert("raw_event_data".into(), Value::String("{}".into()));
                    row.insert("event_name".into(), Value::String("Login".into()));
                    row
                })
                .collect();
            let sorted = sort_by_time(&[with_raw(&rows).expect("batch")]).expect("sort");
            let name = format!("{file}.parquet");
            let bytes = write_file(dir.path(), &name, vec![sorted])
                .await
                .expect("write");
            inputs.push((dir.path().join(name), bytes));
        }
        let (rows, bytes) = merge_files(&inputs, dir.path(), "merged.parquet")
            .await
            .expect("merge");
        assert_eq!(rows, 9);
        let file = std::fs::File::open(dir.path().join("merged.parquet")).expect("open");
        assert_eq!(file.metadata().expect("metadata").len(), bytes);
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("reader")
            .build()
            .expect("build");
        let mut times = Vec::new();
        for batch in reader {
            let batch = batch.expect("batch");
            let column = batch
                .column_by_name("eventtime")
                .expect("eventtime")
                .as_any()
                .downcast_ref::<TimestampMillisecondArray>()
                .expect("timestamps")
                .clone();
            times.extend((0..column.len()).map(|i| column.value(i)));
        }
        assert_eq!(times, (1..=9).collect::<Vec<i64>>());
        assert!(!dir.path().join("merged.parquet.tmp").exists());
        // Columns of distinct values have no dictionary; the others keep theirs.
        let file = std::fs::File::open(dir.path().join("merged.parquet")).expect("open");
        let footer = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("reader")
            .metadata()
            .clone();
        let dictionaries: Vec<(String, bool)> = footer
            .row_group(0)
            .columns()
            .iter()
            .map(|c| {
                (
                    c.column_path().string(),
                    c.dictionary_page_offset().is_some(),
                )
            })
            .collect();
        for (path, dictionary) in &dictionaries {
            let distinct = DISTINCT_COLUMNS.iter().any(|d| d.join(".") == *path);
            assert_eq!(*dictionary, !distinct, "{path}: {dictionaries:?}");
        }

        // A damaged input fails the merge, and leaves neither the file nor its temporary.
        std::fs::write(dir.path().join("b.parquet"), b"not parquet").expect("damage");
        let damaged: Vec<(PathBuf, u64)> = inputs
            .iter()
            .map(|(path, _)| (path.clone(), std::fs::metadata(path).expect("size").len()))
            .collect();
        let failed = merge_files(&damaged, dir.path(), "again.parquet").await;
        assert!(failed.is_err(), "{failed:?}");
        assert!(!dir.path().join("again.parquet").exists());
        assert!(!dir.path().join("again.parquet.tmp").exists());
    }

    #[tokio::test]
    async fn files_no_segment_records_go_once_old() {
        let dir = tempfile::tempdir().expect("dir");
        for name in [
            "kept.parquet",
            "old.parquet",
            "new.parquet",
            "old.parquet.tmp",
        ] {
            std::fs::write(dir.path().join(name), b"x").expect("write");
        }
        let hours_ago = SystemTime::now() - Duration::from_secs(2 * 60 * 60);
        for name in ["kept.parquet", "old.parquet", "old.parquet.tmp"] {
            std::fs::File::options()
                .write(true)
                .open(dir.path().join(name))
                .and_then(|file| file.set_modified(hours_ago))
                .expect("age");
        }
        let recorded = HashSet::from(["kept.parquet".to_owned()]);
        remove_unrecorded(dir.path(), &recorded, SystemTime::now() - UNRECORDED_GRACE)
            .await
            .expect("sweep");
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["kept.parquet", "new.parquet"]);
        remove_unrecorded(&dir.path().join("absent"), &recorded, SystemTime::now())
            .await
            .expect("a store with no directory yet");
    }
}
