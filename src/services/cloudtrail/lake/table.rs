//! Event data stores as DataFusion tables: the columns of the "CloudTrail Lake integrations
//! event schema", read from the `cloudtrail_events` rows a page at a time.
//!
//! Column and field names are declared in lower case: DataFusion folds unquoted identifiers
//! to lower case, so `eventData.userIdentity.principalId` and `EVENTDATA.USERIDENTITY...`
//! both resolve, as Trino's case-insensitive identifiers do. [`canonical`] gives the names
//! back their documented spelling for results.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, MapBuilder, StringBuilder, StringViewBuilder, StructArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{
    FileScanConfigBuilder, ParquetFileReaderFactory, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::TableType;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use datafusion::physical_expr::expressions::{
    BinaryExpr as PhysicalBinary, Column as PhysicalColumn, Literal as PhysicalLiteral,
};
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_optimizer::projection_pushdown::ProjectionPushdown;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::projection::{make_with_child, ProjectionExec};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::ExecutionPlan;
use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use super::counts::SegmentCounts;
use crate::services::cloudtrail::EVENTS_TABLE;
use crate::store::Store;

/// Rows read from the store per Arrow batch: big enough to amortise a store round trip,
/// small enough that a scan holds little memory.
const PAGE_ROWS: usize = 4096;

/// Position of eventTime in the schema.
const EVENT_TIME: usize = 4;

/// Every column and nested field name of the schema in its documented spelling.
const NAMES: &[&str] = &[
    "eventVersion",
    "eventCategory",
    "eventType",
    "eventID",
    "eventTime",
    "awsRegion",
    "recipientAccountId",
    "addendum",
    "reason",
    "updatedFields",
    "originalUID",
    "originalEventID",
    "metadata",
    "ingestionTime",
    "channelARN",
    "eventData",
    "version",
    "userIdentity",
    "type",
    "principalId",
    "details",
    "userAgent",
    "eventSource",
    "eventName",
    "UID",
    "requestParameters",
    "responseElements",
    "errorCode",
    "errorMessage",
    "sourceIPAddress",
    "additionalEventData",
];

/// The documented spelling of a column or field name given in any case.
pub fn canonical(name: &str) -> Option<&'static str> {
    NAMES
        .iter()
        .find(|known| known.eq_ignore_ascii_case(name))
        .copied()
}

/// A string column. Strings are read as views (`Utf8View`): decoding a dictionary-encoded
/// Parquet column then copies no string bytes, and DataFusion groups and compares views
/// faster (the benchmark's `GROUP BY eventName` took about 40 % less time). Segments written
/// before held `Utf8`, which the scan casts.
fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8View, true)
}

fn timestamp(name: &str) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Millisecond, None), true)
}

/// `map<string, string>`, in the field names Arrow's `MapBuilder` produces.
pub fn string_map_type() -> DataType {
    string_map("m").data_type().clone()
}

fn string_map(name: &str) -> Field {
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("keys", DataType::Utf8, false),
            Field::new("values", DataType::Utf8, true),
        ])),
        false,
    );
    Field::new(name, DataType::Map(Arc::new(entries), false), true)
}

fn addendum_fields() -> Fields {
    Fields::from(vec![
        text("reason"),
        text("updatedfields"),
        text("originaluid"),
        text("originaleventid"),
    ])
}

fn metadata_fields() -> Fields {
    Fields::from(vec![timestamp("ingestiontime"), text("channelarn")])
}

fn identity_fields() -> Fields {
    Fields::from(vec![
        text("type"),
        text("principalid"),
        string_map("details"),
    ])
}

fn event_data_fields() -> Fields {
    Fields::from(vec![
        text("version"),
        Field::new("useridentity", DataType::Struct(identity_fields()), true),
        text("useragent"),
        text("eventsource"),
        text("eventname"),
        text("eventtime"),
        text("uid"),
        string_map("requestparameters"),
        string_map("responseelements"),
        text("errorcode"),
        text("errormessage"),
        text("sourceipaddress"),
        text("recipientaccountid"),
        string_map("additionaleventdata"),
    ])
}

/// The schema of every event data store of integration events.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                text("eventversion"),
                text("eventcategory"),
                text("eventtype"),
                text("eventid"),
                timestamp("eventtime"),
                text("awsregion"),
                text("recipientaccountid"),
                Field::new("addendum", DataType::Struct(addendum_fields()), true),
                Field::new("metadata", DataType::Struct(metadata_fields()), true),
                Field::new("eventdata", DataType::Struct(event_data_fields()), true),
            ]))
        })
        .clone()
}

/// Counters a query's scans share, for QueryStatistics.
#[derive(Debug, Default)]
pub struct ScanCounters {
    /// Events read from the stores.
    pub events: AtomicU64,
    /// Bytes of event data read (the events as they were put).
    pub bytes: AtomicU64,
    /// Each tail's stream and the rows it gave: DataFusion's `StreamingTableExec` keeps no
    /// count of its output rows (see [`ScanCounters::tail_rows`]). The weak reference keeps
    /// the stream's address from being reused while the query lives.
    tails: std::sync::Mutex<Vec<(std::sync::Weak<RowPages>, Arc<AtomicU64>)>>,
}

impl ScanCounters {
    /// The rows the tails of `plan`, a `StreamingTableExec`, gave; `None` for other plans.
    pub fn tail_rows(&self, plan: &dyn ExecutionPlan) -> Option<u64> {
        let tail = plan.downcast_ref::<StreamingTableExec>()?;
        let tails = self.tails.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            tail.partitions()
                .iter()
                .filter_map(|partition| {
                    tails
                        .iter()
                        .find(|(tail, _)| std::ptr::addr_eq(tail.as_ptr(), Arc::as_ptr(partition)))
                })
                .map(|(_, rows)| rows.load(Ordering::Relaxed))
                .sum(),
        )
    }
}

/// Which part of a store a scan reads: the store, and event times in `[from, until)`.
#[derive(Debug, Clone)]
struct Range {
    scope: [String; 3],
    from: i64,
    until: i64,
}

/// One event data store as a table.
pub struct EventDataStoreTable {
    store: Arc<dyn Store>,
    /// account, region and store ARN: the row table's scope columns.
    scope: [String; 3],
    /// Events older than this (epoch milliseconds) are past retention and never returned.
    retained_from: i64,
    counters: Arc<ScanCounters>,
    /// The store's segment directory, when events are compacted.
    segments: Option<PathBuf>,
}

impl EventDataStoreTable {
    /// A table over the events of store `arn` of `account` in `region`.
    pub fn new(
        store: Arc<dyn Store>,
        account: &str,
        region: &str,
        arn: &str,
        retained_from: i64,
        counters: Arc<ScanCounters>,
        segments: Option<PathBuf>,
    ) -> Self {
        Self {
            store,
            scope: [account.to_owned(), region.to_owned(), arn.to_owned()],
            retained_from,
            counters,
            segments,
        }
    }

    /// A scan of the store's segments that overlap `range`, filtered to it, with the
    /// table's `projection`; `None` when no segment overlaps.
    async fn segment_scan(
        &self,
        state: &dyn Session,
        range: &Range,
        projection: Option<&Vec<usize>>,
    ) -> datafusion::error::Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(dir) = &self.segments else {
            return Ok(None);
        };
        let store_id = self.scope[2].rsplit('/').next().unwrap_or_default();
        let segments =
            super::segments::list(&*self.store, &self.scope[0], &self.scope[1], store_id)
                .await
                .map_err(|err| DataFusionError::External(err.into()))?;
        let overlapping: Vec<_> = segments
            .into_iter()
            .filter(|s| s.max_time >= range.from && s.min_time < range.until)
            .collect();
        if overlapping.is_empty() {
            return Ok(None);
        }
        let file_schema = super::segments::file_schema();
        // Segment files never change once written, so their footers and page indexes are
        // read once and then kept in the runtime's (bounded) metadata cache.
        let runtime = state.runtime_env();
        let files = runtime.object_store(ObjectStoreUrl::local_filesystem())?;
        let readers = Arc::new(WithPageIndex(CachedParquetFileReaderFactory::new(
            files,
            runtime.cache_manager.get_file_metadata_cache(),
        )));
        let mut source = ParquetSource::new(file_schema.clone())
            .with_parquet_file_reader_factory(readers)
            .with_pushdown_filters(true)
            .with_reorder_filters(true)
            .with_enable_page_index(true)
            // Segments are written without bloom filters; looking for them costs a read.
            .with_bloom_filter_on_read(false);
        // A range that cuts a segment is given to the Parquet reader: row-group and page
        // statistics skip what lies outside it (segments are sorted by eventTime), and the
        // rest is filtered while decoding, before any other column is read. A segment wholly
        // inside the range needs no filter, and then its eventTime column is not read at all.
        // With no filter left above the scan, DataFusion can push the query's own filters and
        // nested-field projections (such as `eventdata.eventname`) into it, so only the
        // Parquet leaves a query names are read.
        let cut = overlapping
            .iter()
            .any(|s| s.min_time < range.from || s.max_time >= range.until);
        if cut {
            let time: Arc<dyn PhysicalExpr> =
                Arc::new(PhysicalColumn::new("eventtime", EVENT_TIME));
            let bound = |op, millis: i64| -> Arc<dyn PhysicalExpr> {
                Arc::new(PhysicalBinary::new(
                    time.clone(),
                    op,
                    Arc::new(PhysicalLiteral::new(ScalarValue::TimestampMillisecond(
                        Some(millis),
                        None,
                    ))),
                ))
            };
            source = source.with_predicate(Arc::new(PhysicalBinary::new(
                bound(Operator::GtEq, range.from),
                Operator::And,
                bound(Operator::Lt, range.until),
            )));
        }
        let source = Arc::new(source);
        let mut builder = FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), source);
        for segment in overlapping {
            let path = dir.join(&segment.file);
            let mut file = PartitionedFile::new(path.to_string_lossy().into_owned(), segment.bytes);
            if !segment.counts.is_empty() {
                file = file.with_extension(SegmentCounts {
                    counts: Arc::new(segment.counts),
                    rows: segment.rows,
                    min_time: segment.min_time,
                    max_time: segment.max_time,
                });
            }
            builder = builder.with_file(file);
            self.counters
                .events
                .fetch_add(segment.rows, Ordering::Relaxed);
            self.counters
                .bytes
                .fetch_add(segment.bytes, Ordering::Relaxed);
        }
        let wanted: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..schema().fields().len()).collect());
        let builder = builder.with_projection_indices(Some(wanted))?;
        Ok(Some(DataSourceExec::from_data_source(builder.build())))
    }
}

/// Segment readers whose cached footers carry the page index.
///
/// DataFusion asks for a footer without the page index and, when a filter can use it, reads
/// and decodes the index from the file afterwards, on every query: the metadata cache keeps
/// what was asked for. A segment never changes, so its index is read once, with its footer.
#[derive(Debug)]
struct WithPageIndex(CachedParquetFileReaderFactory);

impl ParquetFileReaderFactory for WithPageIndex {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> datafusion::error::Result<Box<dyn AsyncFileReader + Send>> {
        let inner = self
            .0
            .create_reader(partition_index, file, metadata_size_hint, metrics)?;
        Ok(Box::new(PageIndexed(inner)))
    }
}

/// A segment reader that always asks for the page index with the footer.
struct PageIndexed(Box<dyn AsyncFileReader + Send>);

impl AsyncFileReader for PageIndexed {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<bytes::Bytes>> {
        self.0.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Vec<bytes::Bytes>>> {
        self.0.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        let options = options
            .cloned()
            .unwrap_or_default()
            .with_page_index_policy(PageIndexPolicy::Optional);
        Box::pin(async move { self.0.get_metadata(Some(&options)).await })
    }
}

/// The bound a pushed-down filter puts on eventTime, as `[from, until)` in milliseconds.
fn time_bound(filter: &Expr) -> Option<(i64, i64)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = filter else {
        return None;
    };
    let (column, literal, op) = match (left.as_ref(), right.as_ref()) {
        (Expr::Column(c), Expr::Literal(v, _)) => (c, v, *op),
        (Expr::Literal(v, _), Expr::Column(c)) => (c, v, op.swap()?),
        _ => return None,
    };
    if column.name != "eventtime" {
        return None;
    }
    let millis = match literal {
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1000)?,
        ScalarValue::TimestampMillisecond(Some(v), _) => *v,
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.div_euclid(1000),
        ScalarValue::TimestampNanosecond(Some(v), _) => v.div_euclid(1_000_000),
        _ => return None,
    };
    // Inexact on purpose: DataFusion filters the rows again, so rounding down is safe.
    match op {
        Operator::Gt | Operator::GtEq => Some((millis, i64::MAX)),
        Operator::Lt | Operator::LtEq => Some((i64::MIN, millis.saturating_add(1))),
        Operator::Eq => Some((millis, millis.saturating_add(1))),
        _ => None,
    }
}

impl fmt::Debug for EventDataStoreTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventDataStoreTable")
            .field("scope", &self.scope)
            .finish()
    }
}

#[async_trait]
impl TableProvider for EventDataStoreTable {
    fn schema(&self) -> SchemaRef {
        schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if time_bound(f).is_some() {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let mut range = Range {
            scope: self.scope.clone(),
            from: self.retained_from,
            until: i64::MAX,
        };
        for (from, until) in filters.iter().filter_map(time_bound) {
            range.from = range.from.max(from);
            range.until = range.until.min(until);
        }
        let segments = self.segment_scan(state, &range, projection).await?;
        let given = Arc::new(AtomicU64::new(0));
        let partition = Arc::new(RowPages {
            store: self.store.clone(),
            range,
            counters: self.counters.clone(),
            given: given.clone(),
        });
        self.counters
            .tails
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((Arc::downgrade(&partition), given));
        let tail = StreamingTable::try_new(schema(), vec![partition])?
            .scan(state, projection, &[], limit)
            .await?;
        match segments {
            Some(segments) => UnionExec::try_new(vec![segments, tail]),
            None => Ok(tail),
        }
    }
}

/// Moves a projection of columns and nested fields below the union of a store's segments and
/// tail, so that it reaches the Parquet scan.
///
/// DataFusion moves a projection below a union only when it has fewer expressions than the
/// union has columns. `SELECT eventData.eventName, count(*) ... GROUP BY 1` projects one field
/// out of one column, the whole `eventdata` struct, so the projection stayed above the union
/// and the scan decoded every leaf of `eventdata` (220 MB for a million events, where the
/// one field is 14 MB). Below the union, the scan reads only the leaves the query names.
#[derive(Debug, Default)]
pub struct FieldsBelowUnion;

impl PhysicalOptimizerRule for FieldsBelowUnion {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let pushed = plan.transform_down(|node| {
            let Some(projection) = node.downcast_ref::<ProjectionExec>() else {
                return Ok(Transformed::no(node));
            };
            let below_union = projection.input().downcast_ref::<UnionExec>().is_some();
            let exprs = projection.expr();
            if !below_union
                || !exprs.iter().all(|e| field_access(&e.expr))
                || exprs
                    .iter()
                    .all(|e| e.expr.downcast_ref::<PhysicalColumn>().is_some())
            {
                return Ok(Transformed::no(node));
            }
            let children = projection
                .input()
                .children()
                .into_iter()
                .map(|child| make_with_child(projection, child))
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            Ok(Transformed::yes(UnionExec::try_new(children)?))
        })?;
        if !pushed.transformed {
            return Ok(pushed.data);
        }
        // Let each child's projection merge into its scan.
        ProjectionPushdown::new().optimize(pushed.data, config)
    }

    fn name(&self) -> &str {
        "fields_below_union"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A column, or a chain of `get_field` over a column: cheap to compute once per union input.
fn field_access(expr: &Arc<dyn PhysicalExpr>) -> bool {
    if expr.downcast_ref::<PhysicalColumn>().is_some() {
        return true;
    }
    let Some(call) = expr.downcast_ref::<ScalarFunctionExpr>() else {
        return false;
    };
    let args = call.args();
    call.name() == "get_field"
        && args.first().is_some_and(field_access)
        && args[1..]
            .iter()
            .all(|arg| arg.downcast_ref::<PhysicalLiteral>().is_some())
}

/// The rows of one store in a time range, as a stream of Arrow batches.
struct RowPages {
    store: Arc<dyn Store>,
    range: Range,
    counters: Arc<ScanCounters>,
    /// Rows given so far.
    given: Arc<AtomicU64>,
}

impl fmt::Debug for RowPages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowPages")
            .field("range", &self.range)
            .finish()
    }
}

impl PartitionStream for RowPages {
    fn schema(&self) -> &SchemaRef {
        static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
        SCHEMA.get_or_init(schema)
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let store = self.store.clone();
        let range = self.range.clone();
        let counters = self.counters.clone();
        let given = self.given.clone();
        let start = Some((range.from, i64::MIN));
        let pages = futures_util::stream::unfold(start, move |cursor| {
            let store = store.clone();
            let range = range.clone();
            let counters = counters.clone();
            let given = given.clone();
            async move {
                let cursor = cursor?;
                let scope = [
                    ("account", range.scope[0].as_str()),
                    ("region", range.scope[1].as_str()),
                    ("event_data_store", range.scope[2].as_str()),
                ];
                let page = store
                    .scan_rows(
                        EVENTS_TABLE,
                        &scope,
                        "event_time_millis",
                        cursor,
                        range.until,
                        PAGE_ROWS,
                    )
                    .await;
                let rows = match page {
                    Ok(rows) => rows,
                    Err(err) => return Some((Err(DataFusionError::External(err.into())), None)),
                };
                if rows.is_empty() {
                    return None;
                }
                let next = (rows.len() == PAGE_ROWS)
                    .then(|| rows.last().map(|(at, _)| *at))
                    .flatten();
                let rows: Vec<Map<String, Value>> = rows.into_iter().map(|(_, row)| row).collect();
                let bytes: usize = rows
                    .iter()
                    .map(|row| column(row, "raw_event_data").map_or(0, str::len))
                    .sum();
                counters
                    .events
                    .fetch_add(rows.len() as u64, Ordering::Relaxed);
                given.fetch_add(rows.len() as u64, Ordering::Relaxed);
                counters.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                Some((to_batch(&rows), next))
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(schema(), pages))
    }
}

/// A column of a stored row as text.
fn column<'a>(row: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    row.get(name).and_then(Value::as_str)
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut builder = StringViewBuilder::new();
    for value in values {
        builder.append_option(value);
    }
    Arc::new(builder.finish())
}

/// Milliseconds of an RFC 3339 time.
fn parse_millis(text: &str) -> Option<i64> {
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// A JSON object as `map<string, string>`: strings as they are, other values as JSON text.
fn append_map(builder: &mut MapBuilder<StringBuilder, StringBuilder>, value: Option<&Value>) {
    let Some(Value::Object(entries)) = value else {
        builder.append(false).unwrap_or_default();
        return;
    };
    for (key, value) in entries {
        builder.keys().append_value(key);
        match value {
            Value::String(text) => builder.values().append_value(text),
            Value::Null => builder.values().append_null(),
            other => builder.values().append_value(other.to_string()),
        }
    }
    builder.append(true).unwrap_or_default();
}

fn map_builder() -> MapBuilder<StringBuilder, StringBuilder> {
    MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
}

/// A JSON text column parsed, or null.
fn parse_json(row: &Map<String, Value>, name: &str) -> Option<Value> {
    column(row, name).and_then(|text| serde_json::from_str(text).ok())
}

/// A stored row with the integration schema's fields as columns: rows written since
/// PutAuditEvents stopped storing them as columns get them from their eventData here, as
/// text the way the columns held them (nested parts as JSON text).
fn expanded(row: &Map<String, Value>) -> std::borrow::Cow<'_, Map<String, Value>> {
    let has_fields = row.get("uid").is_some_and(|v| !v.is_null())
        || row.get("event_source").is_some_and(|v| !v.is_null());
    let Some(raw) = column(row, "raw_event_data").filter(|_| !has_fields) else {
        return std::borrow::Cow::Borrowed(row);
    };
    let Ok(Value::Object(data)) = serde_json::from_str::<Value>(raw) else {
        return std::borrow::Cow::Borrowed(row);
    };
    let mut out = row.clone();
    let text = |value: &Value| match value {
        Value::Null => Value::Null,
        Value::String(text) => Value::String(text.clone()),
        other => Value::String(other.to_string()),
    };
    for (field, name) in [
        ("eventTime", "event_time"),
        ("eventSource", "event_source"),
        ("eventName", "event_name"),
        ("version", "data_version"),
        ("userIdentity", "user_identity"),
        ("userAgent", "user_agent"),
        ("sourceIPAddress", "source_ip_address"),
        ("recipientAccountId", "recipient_account_id"),
        ("UID", "uid"),
        ("errorCode", "error_code"),
        ("errorMessage", "error_message"),
        ("requestParameters", "request_parameters"),
        ("responseElements", "response_elements"),
        ("additionalEventData", "additional_event_data"),
    ] {
        if let Some(value) = data.get(field) {
            out.insert(name.to_owned(), text(value));
        }
    }
    if let Some(Value::Object(identity)) = data.get("userIdentity") {
        for (field, name) in [
            ("type", "user_identity_type"),
            ("principalId", "user_identity_principal_id"),
        ] {
            if let Some(value) = identity.get(field) {
                out.insert(name.to_owned(), text(value));
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Stored rows as one batch of the table's schema.
pub fn to_batch(rows: &[Map<String, Value>]) -> datafusion::error::Result<RecordBatch> {
    let expanded: Vec<std::borrow::Cow<'_, Map<String, Value>>> =
        rows.iter().map(expanded).collect();
    let rows: Vec<&Map<String, Value>> = expanded.iter().map(|row| row.as_ref()).collect();
    let rows = rows.as_slice();
    let schema = schema();
    let texts = |name: &str| strings(rows.iter().map(|row| column(row, name)));
    let event_time: TimestampMillisecondArray = rows
        .iter()
        .map(|row| column(row, "event_time_millis").and_then(|t| t.parse().ok()))
        .collect();
    let ingestion_time: TimestampMillisecondArray = rows
        .iter()
        .map(|row| column(row, "ingestion_time").and_then(parse_millis))
        .collect();

    let mut details = map_builder();
    let mut request = map_builder();
    let mut response = map_builder();
    let mut additional = map_builder();
    for row in rows {
        let identity = parse_json(row, "user_identity");
        append_map(
            &mut details,
            identity.as_ref().and_then(|i| i.get("details")),
        );
        append_map(&mut request, parse_json(row, "request_parameters").as_ref());
        append_map(&mut response, parse_json(row, "response_elements").as_ref());
        append_map(
            &mut additional,
            parse_json(row, "additional_event_data").as_ref(),
        );
    }
    let identity = StructArray::try_new(
        identity_fields(),
        vec![
            texts("user_identity_type"),
            texts("user_identity_principal_id"),
            Arc::new(details.finish()),
        ],
        None,
    )?;
    let event_data = StructArray::try_new(
        event_data_fields(),
        vec![
            texts("data_version"),
            Arc::new(identity),
            texts("user_agent"),
            texts("event_source"),
            texts("event_name"),
            texts("event_time"),
            texts("uid"),
            Arc::new(request.finish()),
            Arc::new(response.finish()),
            texts("error_code"),
            texts("error_message"),
            texts("source_ip_address"),
            texts("recipient_account_id"),
            Arc::new(additional.finish()),
        ],
        None,
    )?;
    let metadata = StructArray::try_new(
        metadata_fields(),
        vec![Arc::new(ingestion_time), texts("channel_arn")],
        None,
    )?;
    let addendum = StructArray::new_null(addendum_fields(), rows.len());
    let columns: Vec<ArrayRef> = vec![
        texts("event_version"),
        texts("event_category"),
        texts("event_type"),
        texts("event_id"),
        Arc::new(event_time),
        texts("aws_region"),
        // The account the event was delivered to: the store's owner.
        texts("account"),
        Arc::new(addendum),
        Arc::new(metadata),
        Arc::new(event_data),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// A session whose table `s1` (of account 111122223333, store `s1`, no retention limit) is
/// the segment files `records` name in `dir`, for tests elsewhere in the Lake.
#[cfg(test)]
pub(super) async fn tests_session(
    dir: &std::path::Path,
    records: Vec<super::segments::SegmentRecord>,
) -> datafusion::prelude::SessionContext {
    let store = Arc::new(crate::store::memory::MemoryStore::default());
    for (index, record) in records.iter().enumerate() {
        store
            .write(vec![crate::store::put(
                crate::store::RecordKey::new(
                    super::segments::SEGMENT,
                    "111122223333",
                    "us-east-1",
                    &format!("s1/{index:020}"),
                ),
                record,
                crate::store::Expect::Absent,
            )
            .expect("put")])
            .await
            .expect("write record");
    }
    let table = EventDataStoreTable::new(
        store,
        "111122223333",
        "us-east-1",
        "arn:aws:cloudtrail:us-east-1:111122223333:eventdatastore/s1",
        0,
        Arc::default(),
        Some(dir.to_path_buf()),
    );
    let ctx = super::runner::session(Arc::default());
    ctx.register_table("s1", Arc::new(table)).expect("register");
    ctx
}

/// The results of `sql` in `ctx`, as DataFusion prints a table, for tests elsewhere in the
/// Lake.
#[cfg(test)]
pub(super) async fn tests_results(ctx: &datafusion::prelude::SessionContext, sql: &str) -> String {
    let batches = ctx
        .sql(sql)
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
        .collect()
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
    datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .expect("pretty")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row() -> Map<String, Value> {
        let Value::Object(map) = json!({
            "account": "111122223333",
            "event_id": "e1",
            "event_version": "1.09",
            "event_category": "ActivityAuditLog",
            "event_type": "ActivityLog",
            "event_time": "2026-01-31T12:00:00Z",
            "event_time_millis": "1769860800000",
            "event_name": "Login",
            "user_identity_type": "User",
            "user_identity_principal_id": "alice",
            "user_identity": "{\"type\":\"User\",\"principalId\":\"alice\",\"details\":{\"alternateId\":\"a@x\",\"n\":1}}",
            "request_parameters": "{\"k\":\"v\"}",
            "ingestion_time": "2026-01-31T12:00:01Z",
            "raw_event_data": "{}",
        }) else {
            unreachable!()
        };
        map
    }

    /// A session whose table `s1` is the one segment file `1.parquet` in `dir`, of `rows` rows.
    async fn session_over(dir: &std::path::Path, rows: u64) -> datafusion::prelude::SessionContext {
        let bytes = std::fs::metadata(dir.join("1.parquet"))
            .expect("segment")
            .len();
        let record = super::super::segments::SegmentRecord {
            file: "1.parquet".into(),
            rows,
            bytes,
            min_time: 0,
            max_time: i64::MAX / 2,
            counts: Default::default(),
        };
        tests_session(dir, vec![record]).await
    }

    /// A session over one segment of 100 copies of `row()`, with the directory that holds it.
    async fn session_over_copies() -> (tempfile::TempDir, datafusion::prelude::SessionContext) {
        let dir = tempfile::tempdir().expect("tempdir");
        let rows: Vec<Map<String, Value>> = (0..100).map(|_| row()).collect();
        let batch = super::super::segments::tests_batch(&rows);
        super::super::segments::write_file(dir.path(), "1.parquet", vec![batch])
            .await
            .expect("write");
        let ctx = session_over(dir.path(), 100).await;
        (dir, ctx)
    }

    /// A query over a segment reads only the Parquet leaves it names (`eventdata.eventname`,
    /// not the whole `eventdata` struct), with its eventTime filter inside the scan.
    #[tokio::test]
    async fn nested_fields_and_filters_reach_the_parquet_scan() {
        let (_dir, ctx) = session_over_copies().await;
        // The scan line of each statement's plan, and the whole plan for messages.
        let scan_of = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let plan = tests_results(&ctx, &format!("EXPLAIN {sql}")).await;
                let scan = plan
                    .lines()
                    .find(|line| line.contains("DataSourceExec"))
                    .expect("a Parquet scan")
                    .to_owned();
                (scan, plan)
            }
        };
        let (scan, plan) = scan_of(
            "SELECT eventdata.eventname, count(*) FROM s1 WHERE eventtime > '2020-01-01 00:00:00' GROUP BY 1",
        )
        .await;
        assert!(
            scan.contains("projection=[get_field(eventdata@9, eventname)"),
            "{plan}"
        );
        assert!(
            scan.contains("predicate=") && scan.contains("1577836800000"),
            "{plan}"
        );
        assert!(!plan.contains("FilterExec: eventtime@0 >= "), "{plan}");
        // With no other column beside it, the field's projection is as wide as the union of
        // segments and tail, and DataFusion alone leaves it above the union.
        let (scan, plan) =
            scan_of("SELECT eventdata.eventname, count(*) FROM s1 GROUP BY 1 ORDER BY 2 DESC")
                .await;
        assert!(
            scan.contains("projection=[get_field(eventdata@9, eventname)"),
            "{plan}"
        );
        let (scan, plan) =
            scan_of("SELECT eventData.UID, eventTime FROM s1 WHERE eventTime >= '2020-01-01 00:00:00' ORDER BY eventTime").await;
        assert!(scan.contains("get_field(eventdata@9, uid)"), "{plan}");
    }

    /// A segment's page index is cached with its footer: DataFusion would read and decode it
    /// from the file again on every query that filters on eventTime.
    #[tokio::test]
    async fn page_indexes_are_cached_with_footers() {
        let (dir, ctx) = session_over_copies().await;
        let found = ctx
            .sql("SELECT eventData.UID FROM s1 WHERE eventTime >= '2026-01-31 11:00:00' AND eventTime < '2026-01-31 13:00:00'")
            .await
            .expect("sql")
            .collect()
            .await
            .expect("collect");
        assert_eq!(found.iter().map(RecordBatch::num_rows).sum::<usize>(), 100);
        let path = dir.path().join("1.parquet");
        let file = PartitionedFile::new(path.to_string_lossy().into_owned(), 0);
        let cached = ctx
            .runtime_env()
            .cache_manager
            .get_file_metadata_cache()
            .get(&file.object_meta.location)
            .expect("the footer is cached");
        let info = cached.file_metadata.extra_info();
        assert_eq!(
            info.get("page_index").map(String::as_str),
            Some("true"),
            "{info:?}"
        );
    }

    /// Segments hold strings as views, which a query reads without copying them; segments
    /// written before held plain `Utf8` strings, and read the same.
    #[tokio::test]
    async fn segments_of_plain_strings_read_as_segments_of_views() {
        use datafusion::arrow::compute::cast;
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        use datafusion::parquet::arrow::ArrowWriter;
        fn plain(data_type: &DataType) -> DataType {
            match data_type {
                DataType::Utf8View => DataType::Utf8,
                DataType::Struct(fields) => DataType::Struct(
                    fields
                        .iter()
                        .map(|f| f.as_ref().clone().with_data_type(plain(f.data_type())))
                        .collect::<Fields>(),
                ),
                other => other.clone(),
            }
        }
        let mut rows: Vec<Map<String, Value>> = (0..6).map(|_| row()).collect();
        rows[1].insert("event_name".into(), json!("Logout"));
        rows[2].remove("user_identity");
        let batch = super::super::segments::tests_batch(&rows);
        let views = tempfile::tempdir().expect("tempdir");
        super::super::segments::write_file(views.path(), "1.parquet", vec![batch.clone()])
            .await
            .expect("write");
        let file = std::fs::File::open(views.path().join("1.parquet")).expect("open");
        let stored = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("reader")
            .schema()
            .clone();
        let DataType::Struct(data) = stored
            .field_with_name("eventdata")
            .expect("eventdata")
            .data_type()
        else {
            panic!("eventdata is a struct");
        };
        assert_eq!(
            data.find("eventname").expect("eventname").1.data_type(),
            &DataType::Utf8View
        );

        let fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_data_type(plain(f.data_type())))
            .collect();
        let columns = batch
            .columns()
            .iter()
            .zip(&fields)
            .map(|(column, field)| cast(column, field.data_type()).expect("cast"))
            .collect();
        let before = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch");
        let plain_dir = tempfile::tempdir().expect("tempdir");
        let file = std::fs::File::create(plain_dir.path().join("1.parquet")).expect("create");
        let mut writer = ArrowWriter::try_new(file, before.schema(), None).expect("writer");
        writer.write(&before).expect("write");
        writer.close().expect("close");

        let (views, plain_strings) = (
            session_over(views.path(), 6).await,
            session_over(plain_dir.path(), 6).await,
        );
        for sql in [
            "SELECT eventID, eventData.eventName, element_at(eventData.userIdentity.details, 'alternateId') AS id, eventData.userIdentity FROM s1 ORDER BY 2, 3",
            "SELECT eventData.eventName, count(*) FROM s1 GROUP BY 1 ORDER BY 1",
            "SELECT upper(eventData.eventName) FROM s1 WHERE eventData.eventName LIKE 'Log%' AND eventTime > '2020-01-01 00:00:00'",
        ] {
            let mut shown = Vec::new();
            for ctx in [&views, &plain_strings] {
                shown.push(tests_results(ctx, sql).await);
            }
            assert!(shown[0].lines().count() > 4, "{sql}: {}", shown[0]);
            assert_eq!(shown[0], shown[1], "{sql}");
        }
    }

    #[test]
    fn rows_of_only_event_data_read_the_same() {
        let full = row();
        let raw = json!({
            "version": "1.0",
            "userIdentity": {"type": "User", "principalId": "alice", "details": {"alternateId": "a@x", "n": 1}},
            "eventName": "Login",
            "eventTime": "2026-01-31T12:00:00Z",
            "requestParameters": {"k": "v"},
        })
        .to_string();
        let mut slim = Map::new();
        for name in [
            "account",
            "event_id",
            "event_version",
            "event_category",
            "event_type",
            "event_time_millis",
            "ingestion_time",
        ] {
            slim.insert(name.to_owned(), full[name].clone());
        }
        slim.insert("raw_event_data".to_owned(), Value::String(raw));
        let mut full = full;
        full.insert("data_version".to_owned(), json!("1.0"));
        let a = to_batch(&[full]).expect("full");
        let b = to_batch(&[slim]).expect("slim");
        assert_eq!(a, b);
    }

    #[test]
    fn rows_become_the_integration_schema() {
        let batch = to_batch(&[row(), Map::new()]).expect("batch");
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), schema());
        assert_eq!(canonical("principalid"), Some("principalId"));
        assert_eq!(canonical("EVENTDATA"), Some("eventData"));
        assert_eq!(canonical("nope"), None);
    }
}
