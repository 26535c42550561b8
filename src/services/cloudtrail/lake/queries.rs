//! StartQuery, DescribeQuery, GetQueryResults, ListQueries and CancelQuery, and the stored
//! form of a query.
//!
//! A query is a record (`cloudtrail/query`, named by its ID, in the caller's account and
//! Region) and, once it has run, a log of result pages (`cloudtrail/query-results`, one entry
//! per [`PAGE_ROWS`] rows). Both are in the store, so results read the same after a restart.
//! A query that was QUEUED or RUNNING in a process that is gone is reported FAILED (it is not
//! re-run: its statement may be expensive, and the caller can start it again). A CANCELLED
//! or TIMED_OUT query keeps the rows found until it stopped, as AWS keeps a timed-out query's
//! partial results.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::runner::Lake;
use super::sql;
use crate::protocol::model::EpochSeconds;
use crate::protocol::RequestContext;
use crate::services::cloudtrail::event_data_stores::{load_store, not_found, PENDING_DELETION};
use crate::services::cloudtrail::{
    issue_token, key, load, open_token, resolve, CloudTrailError, Reference, ResourceType,
    EVENT_DATA_STORE,
};
use crate::services::Deps;
use crate::store::{self, Expect, RecordKey, Write};

/// Record kind of queries, named by query ID.
pub const QUERY: &str = "cloudtrail/query";
/// Log kind of a query's result pages, named by query ID.
pub const RESULTS: &str = "cloudtrail/query-results";
/// Rows per stored result page; GetQueryResults gives at most this many at a time.
pub const PAGE_ROWS: usize = 1000;
/// How long queries and their results are kept: "CloudTrail Lake ... query results are
/// retained for 7 days" (ListQueries lists the queries of the last seven days).
pub const KEPT_MILLIS: i64 = 7 * 24 * 60 * 60 * 1000;
/// At most this many queries of one account run at once (MaxConcurrentQueriesException: "The
/// maximum number of concurrent queries is 10").
pub const MAX_CONCURRENT: usize = 10;

/// A query's status, as the model's `QueryStatus` enum spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Queued,
    Running,
    Finished,
    Failed,
    Cancelled,
    TimedOut,
}

impl Status {
    /// Whether the query can still change.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Queued | Status::Running)
    }

    fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "QUEUED",
            Status::Running => "RUNNING",
            Status::Finished => "FINISHED",
            Status::Failed => "FAILED",
            Status::Cancelled => "CANCELLED",
            Status::TimedOut => "TIMED_OUT",
        }
    }
}

/// A query as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryRecord {
    pub id: String,
    pub statement: String,
    pub status: Status,
    /// IDs of the event data stores the statement reads.
    pub stores: Vec<String>,
    /// Epoch milliseconds.
    pub created: i64,
    /// The process that runs it; another process's active query was cut off by a restart.
    pub runner: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default)]
    pub results: u64,
    #[serde(default)]
    pub events_scanned: u64,
    #[serde(default)]
    pub events_matched: u64,
    #[serde(default)]
    pub bytes_scanned: u64,
    #[serde(default)]
    pub execution_millis: u64,
    #[serde(default)]
    pub delivery_uri: Option<String>,
    #[serde(default)]
    pub delivery_status: Option<String>,
}

/// StartQuery input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartInput {
    #[serde(default)]
    query_statement: Option<String>,
    #[serde(default)]
    delivery_s3_uri: Option<String>,
    #[serde(default)]
    query_alias: Option<String>,
    #[serde(default)]
    query_parameters: Option<Vec<String>>,
    #[serde(default)]
    event_data_store_owner_account_id: Option<String>,
}

/// The input of DescribeQuery, GetQueryResults and CancelQuery.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryInput {
    #[serde(default)]
    query_id: Option<String>,
    #[serde(default)]
    event_data_store: Option<String>,
    #[serde(default)]
    event_data_store_owner_account_id: Option<String>,
    #[serde(default)]
    query_alias: Option<String>,
    #[serde(default)]
    max_query_results: Option<usize>,
    #[serde(default)]
    next_token: Option<String>,
}

/// ListQueries input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    event_data_store: String,
    #[serde(default)]
    start_time: Option<f64>,
    #[serde(default)]
    end_time: Option<f64>,
    #[serde(default)]
    query_status: Option<Status>,
    #[serde(default)]
    max_results: Option<usize>,
    #[serde(default)]
    next_token: Option<String>,
}

/// Sluice serves only the caller's own stores: no delegated administrators.
fn check_owner(ctx: &RequestContext, owner: Option<&str>) -> Result<(), CloudTrailError> {
    match owner {
        Some(owner) if owner != ctx.account_id => Err(CloudTrailError::EventDataStoreNotFound(
            format!("No event data store of account {owner} is shared with this account."),
        )),
        _ => Ok(()),
    }
}

/// Resolves the tables a statement reads to the caller's event data stores.
async fn resolve_stores(
    deps: &Deps,
    ctx: &RequestContext,
    relations: &[String],
) -> Result<Vec<(String, String, i64)>, CloudTrailError> {
    let mut stores: Vec<(String, String, i64)> = Vec::new();
    for name in relations {
        let id = match resolve(ctx, ResourceType::EventDataStore, name) {
            Reference::Own(id) => id,
            // Another account's (or Region's) store is not found, whoever owns it.
            Reference::Foreign => return Err(not_found(name)),
            // CTE names; DataFusion refuses any other unknown table.
            Reference::Invalid => continue,
        };
        let record: Option<(super::super::event_data_stores::EventDataStoreRecord, i64)> =
            load(deps, &key(ctx, EVENT_DATA_STORE, &id)).await?;
        let Some((record, _)) = record else {
            return Err(not_found(name));
        };
        if record.status == PENDING_DELETION {
            return Err(CloudTrailError::InactiveEventDataStore(format!(
                "The event data store {name} is inactive."
            )));
        }
        stores.push((name.clone(), id, record.retention_days()));
    }
    Ok(stores)
}

/// StartQuery.
pub async fn start(
    lake: &Lake,
    ctx: &RequestContext,
    input: StartInput,
) -> Result<StartQueryOutput, CloudTrailError> {
    let deps = lake.deps();
    if input.query_alias.is_some() || input.query_parameters.is_some() {
        return Err(CloudTrailError::InvalidParameter(
            "QueryAlias and QueryParameters run the queries of CloudTrail Lake dashboards, which Sluice does not serve; send a QueryStatement instead.".to_owned(),
        ));
    }
    let Some(statement) = input.query_statement else {
        return Err(CloudTrailError::InvalidParameter(
            "StartQuery requires a QueryStatement.".to_owned(),
        ));
    };
    check_owner(ctx, input.event_data_store_owner_account_id.as_deref())?;
    let prepared =
        sql::prepare(&statement).map_err(|err| CloudTrailError::InvalidQueryStatement(err.0))?;
    let stores = resolve_stores(deps, ctx, &prepared.relations).await?;
    if stores.is_empty() {
        return Err(CloudTrailError::InvalidQueryStatement(
            "Query statement must read at least one event data store (FROM <event data store ID>)."
                .to_owned(),
        ));
    }
    if let Some(uri) = &input.delivery_s3_uri {
        let target = super::delivery::Target::parse(uri)?;
        super::delivery::check(deps, &ctx.account_id, &target).await?;
    }
    let id = uuid::Uuid::new_v4().to_string();
    let mut ids: Vec<String> = stores.iter().map(|(_, id, _)| id.clone()).collect();
    ids.sort();
    ids.dedup();
    let record = QueryRecord {
        id: id.clone(),
        statement,
        status: Status::Queued,
        stores: ids,
        created: ctx.received_at_millis(),
        runner: lake.node().to_owned(),
        error: None,
        columns: Vec::new(),
        results: 0,
        events_scanned: 0,
        events_matched: 0,
        bytes_scanned: 0,
        execution_millis: 0,
        delivery_status: input
            .delivery_s3_uri
            .as_ref()
            .map(|_| super::delivery::PENDING.to_owned()),
        delivery_uri: input.delivery_s3_uri,
    };
    let planned = lake
        .plan(
            &ctx.account_id,
            &ctx.region,
            ctx.received_at_millis(),
            &prepared,
            &stores,
        )
        .await?;
    let slot = lake.claim_slot(&ctx.account_id, &id).ok_or_else(|| {
        CloudTrailError::MaxConcurrentQueries(format!(
            "You are already running the maximum number of concurrent queries. The maximum number of concurrent queries is {MAX_CONCURRENT}. Wait a minute for some queries to finish, and then run the query again."
        ))
    })?;
    let record_key = key(ctx, QUERY, &id);
    let write = match store::put(record_key.clone(), &record, Expect::Absent) {
        Ok(write) => write,
        Err(err) => {
            lake.release(&id);
            return Err(err.into());
        }
    };
    // The query starts while its record is committed; it records its end only after.
    let (recorded, told) = tokio::sync::oneshot::channel();
    lake.spawn(slot.clone(), record_key, record, planned, told);
    if let Err(err) = deps.store.write(vec![write]).await {
        slot.cancel();
        let _ = recorded.send(false);
        return Err(err.into());
    }
    let _ = recorded.send(true);
    Ok(StartQueryOutput { query_id: id })
}

/// Loads a query of the caller; an active query of a process that is gone is failed first.
async fn load_query(
    lake: &Lake,
    ctx: &RequestContext,
    input: &QueryInput,
) -> Result<(QueryRecord, i64, RecordKey), CloudTrailError> {
    let deps = lake.deps();
    check_owner(ctx, input.event_data_store_owner_account_id.as_deref())?;
    if let Some(reference) = &input.event_data_store {
        load_store(deps, ctx, reference).await?;
    }
    let Some(id) = &input.query_id else {
        let what = if input.query_alias.is_some() {
            "QueryAlias names dashboard queries, which Sluice does not serve; give a QueryId."
        } else {
            "A QueryId is required."
        };
        return Err(CloudTrailError::InvalidParameter(what.to_owned()));
    };
    let record_key = key(ctx, QUERY, id);
    let found: Option<(QueryRecord, i64)> = load(deps, &record_key).await?;
    let Some((mut record, mut version)) = found else {
        return Err(query_not_found(id));
    };
    if record.created + KEPT_MILLIS < ctx.received_at_millis() {
        return Err(query_not_found(id));
    }
    if lake.orphaned(&record) {
        record.status = Status::Failed;
        record.error =
            Some("The query was interrupted by a restart of Sluice; start it again.".to_owned());
        let write = store::put(record_key.clone(), &record, Expect::Version(version))?;
        match deps.store.write(vec![write]).await {
            Ok(_) => version += 1,
            // Someone else recorded the failure first; theirs says the same.
            Err(crate::store::StoreError::Conflict(_)) => {
                if let Some((fresh, fresh_version)) = load(deps, &record_key).await? {
                    record = fresh;
                    version = fresh_version;
                }
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok((record, version, record_key))
}

fn query_not_found(id: &str) -> CloudTrailError {
    CloudTrailError::QueryIdNotFound(format!("The query ID {id} does not exist or is not valid."))
}

/// StartQuery output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartQueryOutput {
    query_id: String,
}

/// DescribeQuery output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeQueryOutput {
    query_id: String,
    query_string: String,
    query_status: Status,
    query_statistics: DescribeStatistics,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery_s3_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery_status: Option<String>,
}

/// DescribeQuery's `QueryStatistics` (`QueryStatisticsForDescribeQuery`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeStatistics {
    events_matched: u64,
    events_scanned: u64,
    bytes_scanned: u64,
    execution_time_in_millis: u64,
    creation_time: EpochSeconds,
}

/// GetQueryResults output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetQueryResultsOutput {
    query_status: Status,
    query_statistics: ResultsStatistics,
    query_result_rows: Vec<Vec<Column>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

/// GetQueryResults' `QueryStatistics`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ResultsStatistics {
    results_count: usize,
    total_results_count: u64,
    bytes_scanned: u64,
}

/// One column of a result row: on the wire, a map with one entry, column name -> value.
#[derive(Debug)]
struct Column {
    name: String,
    value: String,
}

impl Serialize for Column {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(&self.name, &self.value)?;
        map.end()
    }
}

/// ListQueries output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListQueriesOutput {
    queries: Vec<QuerySummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// One query of ListQueries (`Query`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct QuerySummary {
    query_id: String,
    query_status: Status,
    creation_time: EpochSeconds,
}

/// CancelQuery output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CancelQueryOutput {
    query_id: String,
    query_status: Status,
}

/// DescribeQuery.
pub async fn describe(
    lake: &Lake,
    ctx: &RequestContext,
    input: QueryInput,
) -> Result<DescribeQueryOutput, CloudTrailError> {
    let (record, _, _) = load_query(lake, ctx, &input).await?;
    let delivery_status = record.delivery_uri.as_ref().map(|_| {
        let status = record.delivery_status.as_deref();
        status.unwrap_or(super::delivery::PENDING).to_owned()
    });
    Ok(DescribeQueryOutput {
        query_status: lake.effective_status(&record),
        query_statistics: DescribeStatistics {
            events_matched: record.events_matched,
            events_scanned: record.events_scanned,
            bytes_scanned: record.bytes_scanned,
            execution_time_in_millis: record.execution_millis,
            creation_time: EpochSeconds::from_millis(record.created),
        },
        query_id: record.id,
        query_string: record.statement,
        error_message: record.error,
        delivery_s3_uri: record.delivery_uri,
        delivery_status,
    })
}

/// GetQueryResults: pages of the stored result rows, each row a list of one-entry maps in
/// the SELECT's order.
pub async fn results(
    lake: &Lake,
    ctx: &RequestContext,
    input: QueryInput,
) -> Result<GetQueryResultsOutput, CloudTrailError> {
    let deps = lake.deps();
    let (record, _, _) = load_query(lake, ctx, &input).await?;
    let limit = input
        .max_query_results
        .unwrap_or(PAGE_ROWS)
        .clamp(1, PAGE_ROWS);
    let scope = format!("GetQueryResults:{}", record.id);
    let offset: u64 = match open_token(deps, ctx, &scope, input.next_token.as_deref())? {
        Some(after) => after
            .parse()
            .map_err(|_| CloudTrailError::InvalidNextToken("Invalid NextToken.".to_owned()))?,
        None => 0,
    };
    let mut out = GetQueryResultsOutput {
        query_status: lake.effective_status(&record),
        query_statistics: ResultsStatistics {
            results_count: 0,
            total_results_count: record.results,
            bytes_scanned: record.bytes_scanned,
        },
        query_result_rows: Vec::new(),
        next_token: None,
        error_message: record.error.clone(),
    };
    // A cancelled or timed-out query keeps the rows it found until it stopped.
    if !matches!(
        record.status,
        Status::Finished | Status::Cancelled | Status::TimedOut
    ) {
        return Ok(out);
    }
    let page = PAGE_ROWS as u64;
    let first_entry = i64::try_from(offset / page + 1).unwrap_or(i64::MAX);
    let entries = deps
        .store
        .read_log(&key(ctx, RESULTS, &record.id), first_entry, 2)
        .await?;
    let mut rows = Vec::new();
    let mut skip = usize::try_from(offset % page).unwrap_or(0);
    for entry in entries {
        let stored: Vec<Vec<Option<String>>> = serde_json::from_slice(&entry.data)
            .map_err(|err| CloudTrailError::Internal(format!("stored results: {err}")))?;
        for row in stored.into_iter().skip(skip) {
            if rows.len() == limit {
                break;
            }
            let columns: Vec<Column> = record
                .columns
                .iter()
                .zip(row)
                .map(|(name, value)| Column {
                    name: name.clone(),
                    // Not confirmed: how AWS shows SQL null; an empty string keeps the shape.
                    value: value.unwrap_or_default(),
                })
                .collect();
            rows.push(columns);
        }
        skip = 0;
    }
    let next = offset + rows.len() as u64;
    out.query_statistics.results_count = rows.len();
    out.query_result_rows = rows;
    if next < record.results {
        out.next_token = Some(issue_token(deps, ctx, &scope, &next.to_string()));
    }
    Ok(out)
}

/// ListQueries: the queries of the last seven days that read the store, newest first.
pub async fn list(
    lake: &Lake,
    ctx: &RequestContext,
    input: ListInput,
) -> Result<ListQueriesOutput, CloudTrailError> {
    let deps = lake.deps();
    let (store, _) = load_store(deps, ctx, &input.event_data_store).await?;
    let to_millis = |seconds: f64| (seconds * 1000.0) as i64;
    let start = input.start_time.map(to_millis);
    let end = input.end_time.map(to_millis);
    if let (Some(start), Some(end)) = (start, end) {
        if start > end {
            return Err(CloudTrailError::InvalidDateRange(
                "The StartTime must be before the EndTime.".to_owned(),
            ));
        }
    }
    let limit = input.max_results.unwrap_or(PAGE_ROWS).clamp(1, PAGE_ROWS);
    let after = open_token(deps, ctx, "ListQueries", input.next_token.as_deref())?;
    let now = ctx.received_at_millis();
    let all: Vec<QueryRecord> = super::super::load_all(deps, ctx, QUERY).await?;
    // Newest first; the token holds the last position given.
    let mut matching: Vec<(String, QueryRecord)> = all
        .into_iter()
        .filter(|q| q.stores.contains(&store.id))
        .filter(|q| q.created + KEPT_MILLIS >= now)
        .filter(|q| start.is_none_or(|s| q.created >= s) && end.is_none_or(|e| q.created <= e))
        .map(|q| (format!("{:020}/{}", i64::MAX - q.created, q.id), q))
        .collect();
    matching.sort_by(|a, b| a.0.cmp(&b.0));
    let mut queries = Vec::new();
    let mut last = None;
    let mut more = false;
    for (position, record) in matching {
        if after.as_deref().is_some_and(|a| position.as_str() <= a) {
            continue;
        }
        let status = lake.effective_status(&record);
        if input.query_status.is_some_and(|wanted| wanted != status) {
            continue;
        }
        if queries.len() == limit {
            more = true;
            break;
        }
        queries.push(QuerySummary {
            query_id: record.id,
            query_status: status,
            creation_time: EpochSeconds::from_millis(record.created),
        });
        last = Some(position);
    }
    let next_token = match (more, last) {
        (true, Some(last)) => Some(issue_token(deps, ctx, "ListQueries", &last)),
        _ => None,
    };
    Ok(ListQueriesOutput {
        queries,
        next_token,
    })
}

/// CancelQuery: stops a QUEUED or RUNNING query; a finished one is InactiveQueryException.
pub async fn cancel(
    lake: &Lake,
    ctx: &RequestContext,
    input: QueryInput,
) -> Result<CancelQueryOutput, CloudTrailError> {
    let deps = lake.deps();
    loop {
        let (mut record, version, record_key) = load_query(lake, ctx, &input).await?;
        if !record.status.is_active() {
            return Err(CloudTrailError::InactiveQuery(format!(
                "The query {} is {} and can no longer be cancelled.",
                record.id,
                record.status.as_str()
            )));
        }
        record.status = Status::Cancelled;
        if record.delivery_uri.is_some() {
            record.delivery_status = Some(super::delivery::CANCELLED.to_owned());
        }
        // The rows stored so far stay; the runner records how many once it has stopped.
        let writes: Vec<Write> = vec![store::put(
            record_key.clone(),
            &record,
            Expect::Version(version),
        )?];
        match deps.store.write(writes).await {
            Ok(_) => {
                lake.cancel(&record.id);
                return Ok(CancelQueryOutput {
                    query_id: record.id,
                    query_status: Status::Cancelled,
                });
            }
            // The query moved on meanwhile (it started, or finished): look again.
            Err(crate::store::StoreError::Conflict(_)) => continue,
            Err(err) => return Err(err.into()),
        }
    }
}

/// Removes up to `limit` queries (records and result pages) older than seven days; how many
/// went.
pub async fn expire(
    store: &dyn crate::store::Store,
    now: i64,
    limit: usize,
) -> Result<usize, crate::store::StoreError> {
    let mut removed = 0;
    let mut scan = crate::store::expiry::RecordScan::new(store, QUERY);
    while let Some(page) = scan.next_page().await? {
        for record in page {
            let created = record.body.get("created").and_then(Value::as_i64);
            if created.is_none_or(|created| created + KEPT_MILLIS >= now) {
                continue;
            }
            let results = RecordKey::new(
                RESULTS,
                &record.key.account,
                &record.key.region,
                &record.key.name,
            );
            store
                .write(vec![
                    Write::Delete {
                        key: record.key,
                        expect: Expect::Version(record.version),
                    },
                    Write::DeleteLog { log: results },
                ])
                .await
                .or_else(|err| match err {
                    // Cancelled or finished meanwhile: the next sweep takes it.
                    crate::store::StoreError::Conflict(_) => Ok(Vec::new()),
                    other => Err(other),
                })?;
            removed += 1;
            if removed >= limit {
                return Ok(removed);
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn queries_and_results_go_after_seven_days() {
        let store = crate::store::memory::MemoryStore::default();
        let put_query = |name: &str, created: i64| {
            let record = serde_json::json!({ "id": name, "created": created });
            vec![
                store::put(
                    RecordKey::new(QUERY, "111122223333", "us-east-1", name),
                    &record,
                    Expect::Absent,
                )
                .expect("put"),
                Write::Append {
                    log: RecordKey::new(RESULTS, "111122223333", "us-east-1", name),
                    entry: crate::store::NewEntry {
                        at_millis: 0,
                        meta: String::new(),
                        data: b"[]".to_vec(),
                        span: None,
                    },
                },
            ]
        };
        let day = 24 * 60 * 60 * 1000;
        store.write(put_query("old", 0)).await.expect("old");
        store.write(put_query("new", 6 * day)).await.expect("new");
        assert_eq!(expire(&store, 8 * day, 100).await.expect("expire"), 1);
        let results = |name: &str| RecordKey::new(RESULTS, "111122223333", "us-east-1", name);
        assert!(store
            .read_log(&results("old"), 1, 10)
            .await
            .expect("read")
            .is_empty());
        assert_eq!(
            store
                .read_log(&results("new"), 1, 10)
                .await
                .expect("read")
                .len(),
            1
        );
        let key = |name: &str| RecordKey::new(QUERY, "111122223333", "us-east-1", name);
        assert!(store.get(&key("old")).await.expect("get").is_none());
        assert!(store.get(&key("new")).await.expect("get").is_some());
    }
}
