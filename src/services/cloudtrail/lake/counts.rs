//! Counts of each value of a segment's few-valued columns, kept with its record, and the plan
//! rewrite that answers `SELECT <column>, count(*) ... GROUP BY <column>` from them.
//!
//! The Lake's most common query counts events by one field (event names, sources, error
//! codes). Answered from the column, it decodes a million strings and hashes each one: most
//! of its time, where the answer is twenty numbers. A segment never changes once written, so
//! the compactor counts the values of each string column as it writes the segment (a merge
//! sums its inputs' counts), and a query that only counts rows by such a column adds the
//! segments' counts up instead of reading them. DataFusion does the same for `count(*)`
//! without GROUP BY from file statistics; this extends it to one grouping column.
//!
//! The rewrite is exact or absent: it applies only when every segment file the scan reads
//! carries counts of the column and nothing filters the scan but bounds on eventTime that
//! each file's whole span meets (a time range or the retention, which then cut no segment).
//! Anything else (another WHERE, a segment cut by the range, an older segment written without
//! counts, another aggregate) is planned as before. The tail of recent rows is always
//! aggregated from the rows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringViewArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::ScalarValue;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_expr::utils::split_conjunction;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties,
    Partitioning, PlanProperties, ReplaceChildrenOptions,
};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

/// Most distinct values (null included) a column may have in one segment for its counts to
/// be kept: enough for the event names of a busy source, few enough that a segment's record
/// stays a few kilobytes. A column with more is not counted in that segment.
pub const MAX_VALUES: usize = 128;

/// Per string column of a segment (dotted lower-case path, as `eventdata.eventname`), how many
/// events hold each value, null included; sorted by value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueCounts(BTreeMap<String, Vec<(Option<String>, u64)>>);

impl ValueCounts {
    /// Whether no column is counted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The counts of every string column of `batch` with at most [`MAX_VALUES`] values,
    /// except those in `skipped` (columns of distinct values, never worth counting).
    pub fn of(batch: &RecordBatch, skipped: &[&[&str]]) -> Self {
        let mut counts = Self::default();
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            let mut path = vec![field.name().as_str()];
            counts.count_leaves(column, None, &mut path, skipped);
        }
        counts
    }

    /// Walks structs down to string leaves; `nulls` are the ancestors' (a field of a null
    /// struct is null, whatever its child array holds).
    fn count_leaves<'a>(
        &mut self,
        array: &'a ArrayRef,
        nulls: Option<&NullBuffer>,
        path: &mut Vec<&'a str>,
        skipped: &[&[&str]],
    ) {
        match array.data_type() {
            DataType::Struct(_) => {
                let parent = array.as_struct();
                let nulls = NullBuffer::union(nulls, parent.nulls());
                for (field, child) in parent.fields().iter().zip(parent.columns()) {
                    path.push(field.name());
                    self.count_leaves(child, nulls.as_ref(), path, skipped);
                    path.pop();
                }
            }
            DataType::Utf8View if !skipped.contains(&path.as_slice()) => {
                let values = array.as_string_view();
                let nulls = NullBuffer::union(nulls, values.nulls());
                if let Some(counted) = count_values(values, nulls.as_ref()) {
                    self.0.insert(path.join("."), counted);
                }
            }
            _ => {}
        }
    }

    /// The counts of segments' rows together: a column is counted where every part counts it
    /// and the sum has at most [`MAX_VALUES`] values.
    pub fn sum<'a>(parts: impl IntoIterator<Item = &'a ValueCounts>) -> Self {
        let mut parts = parts.into_iter();
        let Some(first) = parts.next() else {
            return Self::default();
        };
        let mut sums: BTreeMap<String, BTreeMap<Option<String>, u64>> = first
            .0
            .iter()
            .map(|(path, values)| (path.clone(), values.iter().cloned().collect()))
            .collect();
        for part in parts {
            sums.retain(|path, sum| {
                let Some(values) = part.0.get(path) else {
                    return false;
                };
                for (value, count) in values {
                    *sum.entry(value.clone()).or_default() += count;
                }
                sum.len() <= MAX_VALUES
            });
        }
        Self(
            sums.into_iter()
                .map(|(path, sum)| (path, sum.into_iter().collect()))
                .collect(),
        )
    }

    /// The counts of column `path`, if counted.
    fn column(&self, path: &str) -> Option<&[(Option<String>, u64)]> {
        self.0.get(path).map(Vec::as_slice)
    }
}

/// How many times each value occurs (null where `nulls` says so), sorted; `None` past
/// [`MAX_VALUES`] values.
fn count_values(
    values: &StringViewArray,
    nulls: Option<&NullBuffer>,
) -> Option<Vec<(Option<String>, u64)>> {
    let mut counts: HashMap<Option<&str>, u64> = HashMap::new();
    for index in 0..values.len() {
        let value = match nulls {
            Some(nulls) if nulls.is_null(index) => None,
            _ => Some(values.value(index)),
        };
        *counts.entry(value).or_default() += 1;
        if counts.len() > MAX_VALUES {
            return None;
        }
    }
    let mut counted: Vec<(Option<String>, u64)> = counts
        .into_iter()
        .map(|(value, count)| (value.map(str::to_owned), count))
        .collect();
    counted.sort_unstable();
    Some(counted)
}

/// What a segment file of a scan carries for the rewrite: its counts, how many events it
/// holds, and their eventTime span (epoch milliseconds).
#[derive(Debug, Clone)]
pub struct SegmentCounts {
    pub counts: Arc<ValueCounts>,
    pub rows: u64,
    pub min_time: i64,
    pub max_time: i64,
}

/// Answers partial `count(*)` aggregates grouped by one column from the counts of the
/// segments they would scan (see the module doc).
#[derive(Debug, Default)]
pub struct CountsFromSegments;

impl PhysicalOptimizerRule for CountsFromSegments {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            Ok(match answered(aggregate)? {
                Some(answered) => Transformed::yes(answered),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "counts_from_segments"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `aggregate` with its segment scan replaced by the segments' counts, when it is a partial
/// aggregate that only counts rows by one column, over a union whose segment scan can be
/// answered so (see [`counted_scan`]).
fn answered(
    aggregate: &AggregateExec,
) -> datafusion::error::Result<Option<Arc<dyn ExecutionPlan>>> {
    let groups = aggregate.group_expr();
    let counts_rows = |call: &Arc<datafusion::physical_expr::aggregate::AggregateFunctionExpr>| {
        call.fun().name() == "count"
            && !call.is_distinct()
            && call.order_bys().is_empty()
            && call.expressions().iter().all(|arg| {
                arg.downcast_ref::<Literal>()
                    .is_some_and(|literal| !literal.value().is_null())
            })
    };
    let unpartitioned = matches!(
        aggregate.properties().output_partitioning(),
        Partitioning::UnknownPartitioning(_) | Partitioning::RoundRobinBatch(_)
    );
    let [(group, _)] = groups.expr() else {
        return Ok(None);
    };
    let Some(group) = group.downcast_ref::<Column>() else {
        return Ok(None);
    };
    if *aggregate.mode() != AggregateMode::Partial
        || !groups.is_single()
        || aggregate.limit_options().is_some()
        || !unpartitioned
        || aggregate.aggr_expr().is_empty()
        || !aggregate.aggr_expr().iter().all(counts_rows)
        || aggregate.filter_expr().iter().any(Option::is_some)
    {
        return Ok(None);
    }
    let Some(union) = aggregate.input().downcast_ref::<UnionExec>() else {
        return Ok(None);
    };
    let mut counted = None;
    let mut rest = Vec::new();
    for child in union.children() {
        match counted_scan(child, group.index()) {
            Some(found) if counted.is_none() => counted = Some(found),
            _ => rest.push(child.clone()),
        }
    }
    let Some((values, events)) = counted else {
        return Ok(None);
    };
    let input = match rest.len() {
        0 => Arc::new(EmptyExec::new(union.schema())),
        1 => rest.remove(0),
        _ => UnionExec::try_new(rest)?,
    };
    let partial = Arc::new(aggregate.clone()).replace_children(
        vec![input],
        ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
    )?;
    let states = partial_states(&partial, &values)?;
    let partitions = aggregate
        .properties()
        .output_partitioning()
        .partition_count();
    Ok(Some(Arc::new(SegmentCountsExec::new(
        partial, states, events, partitions,
    ))))
}

/// The values of column `index` of a segment scan and their counts, and the events they
/// stand for, when the scan is of segment files that all carry counts of that column, nothing
/// limits it, and its filter passes every event of every file (see [`passes_whole`]).
fn counted_scan(
    plan: &Arc<dyn ExecutionPlan>,
    index: usize,
) -> Option<(BTreeMap<Option<String>, u64>, u64)> {
    let scan = plan.downcast_ref::<DataSourceExec>()?;
    let config = scan.data_source().downcast_ref::<FileScanConfig>()?;
    let source = config.file_source();
    if config.limit.is_some() {
        return None;
    }
    let filter = source.filter();
    let expr = source.projection()?.iter().nth(index)?.expr.clone();
    let path = field_path(&expr)?;
    let mut values: BTreeMap<Option<String>, u64> = BTreeMap::new();
    let mut events = 0;
    // A large file may be read as several byte ranges: count each file once.
    let mut seen = HashSet::new();
    for file in config.file_groups.iter().flat_map(|group| group.iter()) {
        if !seen.insert(file.path().clone()) {
            continue;
        }
        let segment = file.extension::<SegmentCounts>()?;
        if let Some(filter) = &filter {
            if !passes_whole(filter, segment.min_time, segment.max_time) {
                return None;
            }
        }
        for (value, count) in segment.counts.column(&path)? {
            *values.entry(value.clone()).or_default() += count;
        }
        events += segment.rows;
    }
    Some((values, events))
}

/// Whether every event of a segment whose eventTimes span `[min, max]` passes `filter`: only
/// when the filter is a conjunction of bounds on eventTime (a time range, retention) that the
/// whole span meets. Every event has an eventTime (PutAuditEvents requires one).
fn passes_whole(filter: &Arc<dyn PhysicalExpr>, min: i64, max: i64) -> bool {
    split_conjunction(filter).into_iter().all(|bound| {
        let Some(bound) = bound.downcast_ref::<BinaryExpr>() else {
            return false;
        };
        let (left, right) = (bound.left(), bound.right());
        let (op, literal) = match (
            left.downcast_ref::<Column>(),
            right.downcast_ref::<Column>(),
        ) {
            (Some(column), None) if column.name() == "eventtime" => (*bound.op(), right),
            (None, Some(column)) if column.name() == "eventtime" => match bound.op().swap() {
                Some(op) => (op, left),
                None => return false,
            },
            _ => return false,
        };
        let Some(ScalarValue::TimestampMillisecond(Some(at), None)) =
            literal.downcast_ref::<Literal>().map(Literal::value)
        else {
            return false;
        };
        match op {
            Operator::Gt => min > *at,
            Operator::GtEq => min >= *at,
            Operator::Lt => max < *at,
            Operator::LtEq => max <= *at,
            _ => false,
        }
    })
}

/// `eventdata.eventname` for `get_field(eventdata@9, eventname)`, a column's name for a column.
fn field_path(expr: &Arc<dyn PhysicalExpr>) -> Option<String> {
    if let Some(column) = expr.downcast_ref::<Column>() {
        return Some(column.name().to_owned());
    }
    let call = expr.downcast_ref::<ScalarFunctionExpr>()?;
    let (inner, fields) = call.args().split_first()?;
    if call.name() != "get_field" {
        return None;
    }
    let mut path = field_path(inner)?;
    for field in fields {
        match field.downcast_ref::<Literal>()?.value() {
            ScalarValue::Utf8(Some(name)) | ScalarValue::Utf8View(Some(name)) => {
                path.push('.');
                path.push_str(name);
            }
            _ => return None,
        }
    }
    Some(path)
}

/// The rows a partial aggregate would emit for `values`: each value with its count in every
/// count's state column.
fn partial_states(
    partial: &Arc<dyn ExecutionPlan>,
    values: &BTreeMap<Option<String>, u64>,
) -> datafusion::error::Result<RecordBatch> {
    let schema = partial.schema();
    let names: ArrayRef = Arc::new(
        values
            .keys()
            .map(Option::as_deref)
            .collect::<StringViewArray>(),
    );
    let group_type = schema.field(0).data_type();
    let group = datafusion::arrow::compute::cast(&names, group_type)?;
    let counts: ArrayRef = Arc::new(
        values
            .values()
            .map(|count| i64::try_from(*count).unwrap_or(i64::MAX))
            .collect::<Int64Array>(),
    );
    let mut columns = vec![group];
    columns.extend((1..schema.fields().len()).map(|_| counts.clone()));
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// A partial count aggregate over what remains of a union, with the partial states the
/// segments' counts give emitted first on its first partition. It keeps the replaced
/// aggregate's partition count, so nothing above it changes.
#[derive(Debug)]
pub struct SegmentCountsExec {
    partial: Arc<dyn ExecutionPlan>,
    states: RecordBatch,
    /// Events the counts stand for: QueryStatistics' EventsMatched counts them as scanned.
    events: u64,
    properties: Arc<PlanProperties>,
}

impl SegmentCountsExec {
    fn new(
        partial: Arc<dyn ExecutionPlan>,
        states: RecordBatch,
        events: u64,
        partitions: usize,
    ) -> Self {
        let input = partial.properties();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(partial.schema()),
            Partitioning::UnknownPartitioning(partitions),
            input.emission_type,
            input.boundedness,
        );
        Self {
            partial,
            states,
            events,
            properties: Arc::new(properties),
        }
    }

    /// The events the counts stand for.
    pub fn events(&self) -> u64 {
        self.events
    }
}

impl DisplayAs for SegmentCountsExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "SegmentCountsExec: values={}, events={}",
            self.states.num_rows(),
            self.events
        )
    }
}

impl ExecutionPlan for SegmentCountsExec {
    fn name(&self) -> &str {
        "SegmentCountsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.partial]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::error::Result<TreeNodeRecursion>,
    ) -> datafusion::error::Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let partial = children
            .pop()
            .filter(|_| children.is_empty())
            .ok_or_else(|| {
                datafusion::error::DataFusionError::Internal(
                    "SegmentCountsExec takes one child".to_owned(),
                )
            })?;
        Ok(Arc::new(Self::new(
            partial,
            self.states.clone(),
            self.events,
            self.properties.output_partitioning().partition_count(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> datafusion::error::Result<SendableRecordBatchStream> {
        let schema = self.schema();
        let inner = if partition < self.partial.output_partitioning().partition_count() {
            self.partial.execute(partition, context)?
        } else {
            Box::pin(RecordBatchStreamAdapter::new(
                schema.clone(),
                futures_util::stream::empty(),
            ))
        };
        if partition != 0 {
            return Ok(inner);
        }
        let states = futures_util::stream::once(std::future::ready(Ok(self.states.clone())));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            states.chain(inner),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::super::segments::{tests_batch, write_file, SegmentRecord, DISTINCT_COLUMNS};
    use super::super::table::{tests_results, tests_session};
    use super::*;
    use serde_json::{json, Map, Value};

    const FIRST_MILLIS: i64 = 1_769_860_800_000;

    /// Event `i`: a name from `names` (by `i`; `None` leaves it out), one source, an IP address
    /// of its own.
    fn row(i: usize, names: &[Option<&str>]) -> Map<String, Value> {
        let mut row = json!({
            "account": "111122223333",
            "event_id": format!("e{i}"),
            "uid": format!("u{i}"),
            "event_time": "2026-01-31T12:00:00Z",
            "event_time_millis": (FIRST_MILLIS + i as i64).to_string(),
            "event_source": "app.example",
            "source_ip_address": format!("10.0.{}.{}", i / 256, i % 256),
            "raw_event_data": "{}",
        });
        if let Some(name) = names[i % names.len()] {
            row["event_name"] = json!(name);
        }
        row.as_object().cloned().expect("an object")
    }

    fn batch(events: std::ops::Range<usize>, names: &[Option<&str>]) -> RecordBatch {
        let rows: Vec<Map<String, Value>> = events.map(|i| row(i, names)).collect();
        tests_batch(&rows)
    }

    /// Values and their counts, as written in tests.
    type Pairs<'a> = &'a [(Option<&'a str>, u64)];

    fn counted(pairs: Pairs<'_>) -> Vec<(Option<String>, u64)> {
        pairs
            .iter()
            .map(|(value, count)| (value.map(str::to_owned), *count))
            .collect()
    }

    #[test]
    fn segments_count_few_valued_columns_nulls_included() {
        let counts = ValueCounts::of(
            &batch(0..300, &[Some("Login"), Some("Logout"), None]),
            &DISTINCT_COLUMNS,
        );
        assert_eq!(
            counts.column("eventdata.eventname"),
            Some(counted(&[(None, 100), (Some("Login"), 100), (Some("Logout"), 100)]).as_slice())
        );
        assert_eq!(
            counts.column("eventdata.eventsource"),
            Some(counted(&[(Some("app.example"), 300)]).as_slice())
        );
        // Absent everywhere: one null value.
        assert_eq!(
            counts.column("eventdata.errorcode"),
            Some(counted(&[(None, 300)]).as_slice())
        );
        // 300 addresses are past the cap.
        assert_eq!(counts.column("eventdata.sourceipaddress"), None);
        // Columns of distinct values are never counted, however few the events.
        let few = ValueCounts::of(&batch(0..3, &[Some("Login")]), &DISTINCT_COLUMNS);
        assert!(few.column("eventdata.sourceipaddress").is_some());
        assert_eq!(few.column("eventdata.uid"), None);
        assert_eq!(few.column("eventid"), None);
        // Not strings: times and maps.
        assert_eq!(few.column("eventtime"), None);
        assert_eq!(few.column("eventdata.requestparameters"), None);
    }

    #[test]
    fn sums_keep_the_columns_every_part_counts_within_the_cap() {
        let part = |pairs: &[(&str, Pairs<'_>)]| {
            ValueCounts(
                pairs
                    .iter()
                    .map(|(path, values)| ((*path).to_owned(), counted(values)))
                    .collect(),
            )
        };
        let many: Vec<(Option<String>, u64)> = (0..MAX_VALUES)
            .map(|i| (Some(format!("v{i:03}")), 1))
            .collect();
        let mut a = part(&[
            ("name", &[(None, 1), (Some("x"), 2)]),
            ("only_in_a", &[(Some("y"), 1)]),
        ]);
        a.0.insert("wide".to_owned(), many.clone());
        let mut b = part(&[("name", &[(Some("x"), 3), (Some("z"), 4)])]);
        b.0.insert("wide".to_owned(), vec![(Some("another".to_owned()), 1)]);
        let sum = ValueCounts::sum([&a, &b]);
        assert_eq!(
            sum,
            part(&[("name", &[(None, 1), (Some("x"), 5), (Some("z"), 4)])])
        );
        assert_eq!(ValueCounts::sum([&a]), a);
        assert!(ValueCounts::sum(std::iter::empty()).is_empty());
    }

    /// Two segments of 300 and 200 events; `counts` says whether their records keep counts.
    async fn two_segments(
        dir: &std::path::Path,
        counts: [bool; 2],
    ) -> datafusion::prelude::SessionContext {
        let parts = [
            (0..300, vec![Some("Login"), Some("Logout"), None]),
            (300..500, vec![Some("Login"), Some("Other")]),
        ];
        let mut records = Vec::new();
        for ((events, names), counted) in parts.into_iter().zip(counts) {
            let batch = batch(events.clone(), &names);
            let file = format!("{}.parquet", events.start);
            let bytes = write_file(dir, &file, vec![batch.clone()])
                .await
                .expect("write");
            records.push(SegmentRecord {
                file,
                rows: events.len() as u64,
                bytes,
                min_time: FIRST_MILLIS + events.start as i64,
                max_time: FIRST_MILLIS + events.end as i64 - 1,
                counts: if counted {
                    ValueCounts::of(&batch, &DISTINCT_COLUMNS)
                } else {
                    ValueCounts::default()
                },
            });
        }
        tests_session(dir, records).await
    }

    /// A statement's results as text, and whether its plan answered from counts.
    async fn run(ctx: &datafusion::prelude::SessionContext, sql: &str) -> (String, bool) {
        let plan = tests_results(ctx, &format!("EXPLAIN {sql}")).await;
        (
            tests_results(ctx, sql).await,
            plan.contains("SegmentCountsExec"),
        )
    }

    /// Counts by one column come from the segments' counts, with the results the columns give;
    /// every other shape, and segments without counts, read the columns.
    #[tokio::test]
    async fn counts_by_one_column_are_answered_from_segment_counts() {
        let dir = tempfile::tempdir().expect("dir");
        let with_counts = two_segments(&dir.path().join("counted"), [true, true]).await;
        let without = two_segments(&dir.path().join("plain"), [false, false]).await;
        let mixed = two_segments(&dir.path().join("mixed"), [true, false]).await;
        // A time literal `offset` milliseconds after the first event.
        let at = |offset: i64| {
            let time = time::OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(FIRST_MILLIS + offset) * 1_000_000,
            )
            .expect("time");
            let shown = time
                .format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]"
                ))
                .expect("format");
            format!("'{shown}'")
        };
        let by_name = |filter: String| {
            format!(
                "SELECT eventData.eventName, count(*) FROM s1 WHERE {filter} GROUP BY 1 ORDER BY 1"
            )
        };
        // Segment 1 holds events 0-299, segment 2 events 300-499 (by millisecond).
        let timed = [
            // Both segments whole.
            (by_name(format!("eventTime >= {}", at(0))), true),
            (
                by_name(format!(
                    "eventTime > {} AND eventTime <= {}",
                    at(-1),
                    at(499)
                )),
                true,
            ),
            (by_name(format!("{} <= eventTime", at(0))), true),
            // Segment 2 whole; segment 1 outside the range.
            (by_name(format!("eventTime >= {}", at(300))), true),
            // Cut segments.
            (by_name(format!("eventTime > {}", at(0))), false),
            (by_name(format!("eventTime < {}", at(150))), false),
            (by_name(format!("eventTime < {}", at(499))), false),
            // Another condition beside the range.
            (
                by_name(format!(
                    "eventTime >= {} AND eventData.eventSource = 'app.example'",
                    at(0)
                )),
                false,
            ),
        ];
        let statements = [
            ("SELECT eventData.eventName, count(*) FROM s1 GROUP BY 1 ORDER BY 2 DESC, 1", true),
            ("SELECT eventType, count(*), count(1) AS n FROM s1 GROUP BY eventType", true),
            (
                "SELECT eventData.eventName AS name, count(*) AS n FROM s1 GROUP BY 1 \
                 HAVING count(*) > 150 ORDER BY 1",
                true,
            ),
            (
                "SELECT eventData.eventName, count(*) FROM s1 \
                 WHERE eventData.eventSource = 'app.example' GROUP BY 1 ORDER BY 1",
                false,
            ),
            (
                "SELECT eventData.eventName, count(eventData.eventName) FROM s1 GROUP BY 1 ORDER BY 1",
                false,
            ),
            (
                "SELECT eventData.eventName, count(DISTINCT eventData.UID) FROM s1 GROUP BY 1 ORDER BY 1",
                false,
            ),
            (
                "SELECT eventData.eventName, eventData.eventSource, count(*) FROM s1 \
                 GROUP BY 1, 2 ORDER BY 1",
                false,
            ),
            (
                "SELECT eventData.sourceIPAddress, count(*) FROM s1 GROUP BY 1 ORDER BY 2, 1 LIMIT 3",
                false,
            ),
        ];
        let all = statements
            .iter()
            .map(|(sql, answered)| ((*sql).to_owned(), *answered))
            .chain(timed);
        for (sql, answered) in all {
            let sql = sql.as_str();
            let (expected, read) = run(&without, sql).await;
            assert!(!read, "{sql}: no counts to answer from");
            let (got, from_counts) = run(&with_counts, sql).await;
            assert_eq!(got, expected, "{sql}");
            assert_eq!(from_counts, answered, "{sql}");
            let (got, from_counts) = run(&mixed, sql).await;
            assert_eq!(got, expected, "{sql}");
            assert!(!from_counts, "{sql}: a segment has no counts");
        }
        let (names, _) = run(&with_counts, statements[0].0).await;
        let rows: Vec<&str> = names.lines().skip(3).collect();
        assert_eq!(
            rows,
            [
                "| Login                   | 200      |",
                "| Logout                  | 100      |",
                "| Other                   | 100      |",
                "|                         | 100      |",
                "+-------------------------+----------+",
            ],
            "{names}"
        );
    }
}
