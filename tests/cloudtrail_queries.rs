//! CloudTrail Lake queries through the real `aws-sdk-cloudtrail` and `aws-sdk-cloudtraildata`
//! clients: events put through a channel, then AWS's sample queries, checked against a
//! reference computed here from the same events; paging, statuses, statistics, CancelQuery,
//! the errors, isolation between accounts, and kill -9.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_cloudtrail::error::ProvideErrorMetadata;
use aws_sdk_cloudtrail::types::{Destination, DestinationType, QueryStatus};
use aws_sdk_cloudtrail::Client;
use common::{
    cloudtrail_client, cloudtrail_client_with, cloudtraildata_client, cloudtraildata_client_with,
    fresh_account, Server,
};

/// One generated event: what the reference computes from.
#[derive(Debug, Clone)]
struct Event {
    name: &'static str,
    principal: String,
    alternate_id: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    time: String,
    uid: String,
}

const NAMES: [&str; 4] = ["Login", "Logout", "Download", "Delete"];

/// `count` events spread over November 2026, names and principals in a fixed pattern.
fn events(count: usize, tag: &str) -> Vec<Event> {
    events_in(count, tag, "2026-11")
}

/// `count` events spread over a month (`YYYY-MM`).
fn events_in(count: usize, tag: &str, month: &str) -> Vec<Event> {
    (0..count)
        .map(|i| Event {
            name: NAMES[(i * i + i / 3) % NAMES.len()],
            principal: format!("user-{}", i % 5),
            alternate_id: format!("user-{}@example.com", i % 3),
            time: format!("{month}-{:02}T{:02}:{:02}:00Z", 1 + i % 28, i % 24, i % 60),
            uid: format!("{tag}-{i}"),
        })
        .collect()
}

/// How many segment files a directory holds.
fn parquet_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
                .count()
        })
        .unwrap_or(0)
}

/// Whether a directory holds a segment file.
fn has_segment(dir: &std::path::Path) -> bool {
    parquet_files(dir) > 0
}

/// Waits (up to two minutes) until `dir` holds `expected` segment files.
async fn wait_for_segment_files(dir: &std::path::Path, expected: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while parquet_files(dir) != expected {
        assert!(
            std::time::Instant::now() < deadline,
            "{} segment files, not {expected}",
            parquet_files(dir)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn event_json(event: &Event, account: &str) -> String {
    serde_json::json!({
        "version": "1.0",
        "userIdentity": {
            "type": "User",
            "principalId": event.principal,
            "details": { "alternateId": event.alternate_id },
        },
        "eventSource": "app.example.com",
        "eventName": event.name,
        "eventTime": event.time,
        "UID": event.uid,
        "recipientAccountId": account,
        "requestParameters": { "file": format!("{}.txt", event.uid) },
    })
    .to_string()
}

/// A store of integration events with a channel into it: (store ID, channel ARN).
async fn store_with_channel(client: &Client, name: &str) -> (String, String) {
    let selector = common::event_category_selector("ActivityAuditLog");
    let arn = client
        .create_event_data_store()
        .name(name)
        .advanced_event_selectors(selector)
        .termination_protection_enabled(false)
        .send()
        .await
        .expect("create_event_data_store")
        .event_data_store_arn()
        .expect("arn")
        .to_owned();
    let channel = client
        .create_channel()
        .name(format!("{name}-channel"))
        .source("Custom")
        .destinations(
            Destination::builder()
                .r#type(DestinationType::EventDataStore)
                .location(&arn)
                .build()
                .expect("destination"),
        )
        .send()
        .await
        .expect("create_channel")
        .channel_arn()
        .expect("channel arn")
        .to_owned();
    let id = arn.rsplit('/').next().expect("id").to_owned();
    (id, channel)
}

/// A server of its own on a data directory (for tests that restart it or look at its segment
/// files), a fresh account with its clients, and one store fed by one channel:
/// (data directory, account, server, CloudTrail client, cloudtrail-data client, store ID,
/// channel ARN).
async fn own_lake(
    name: &str,
) -> (
    tempfile::TempDir,
    String,
    Server,
    Client,
    aws_sdk_cloudtraildata::Client,
    String,
    String,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let account = fresh_account();
    let server = Server::start(dir.path(), &[]);
    let client = cloudtrail_client_with(&server.endpoint, &account);
    let data = cloudtraildata_client_with(&server.endpoint, &account);
    let (store, channel) = store_with_channel(&client, name).await;
    (dir, account, server, client, data, store, channel)
}

async fn put(data: &aws_sdk_cloudtraildata::Client, channel: &str, account: &str, all: &[Event]) {
    for (n, chunk) in all.chunks(100).enumerate() {
        let mut call = data.put_audit_events().channel_arn(channel);
        for (i, event) in chunk.iter().enumerate() {
            call = call.audit_events(
                aws_sdk_cloudtraildata::types::AuditEvent::builder()
                    .id(format!("e{n}-{i}"))
                    .event_data(event_json(event, account))
                    .build()
                    .expect("audit event"),
            );
        }
        let out = call.send().await.expect("put_audit_events");
        assert!(out.failed().is_empty(), "{:?}", out.failed());
    }
}

/// Waits until a query leaves QUEUED and RUNNING; its final status.
async fn wait(client: &Client, id: &str) -> QueryStatus {
    for _ in 0..1200 {
        let status = client
            .describe_query()
            .query_id(id)
            .send()
            .await
            .expect("describe_query")
            .query_status()
            .cloned()
            .expect("status");
        if !matches!(status, QueryStatus::Queued | QueryStatus::Running) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("query {id} did not end within a minute");
}

type Rows = Vec<Vec<(String, String)>>;

/// All result rows of a finished query, `page` at a time, each as (column, value) pairs.
async fn rows(client: &Client, id: &str, page: i32) -> Rows {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let got = client
            .get_query_results()
            .query_id(id)
            .max_query_results(page)
            .set_next_token(token)
            .send()
            .await
            .expect("get_query_results");
        assert_eq!(got.query_status(), Some(&QueryStatus::Finished));
        for row in got.query_result_rows() {
            out.push(
                row.iter()
                    .map(|column| {
                        assert_eq!(column.len(), 1, "one entry per column map");
                        let (k, v) = column.iter().next().expect("entry");
                        (k.clone(), v.clone())
                    })
                    .collect(),
            );
        }
        token = got.next_token().map(str::to_owned);
        if token.is_none() {
            return out;
        }
    }
}

/// Runs a statement to FINISHED; its ID and rows.
async fn query(client: &Client, statement: &str) -> (String, Rows) {
    let id = client
        .start_query()
        .query_statement(statement)
        .send()
        .await
        .unwrap_or_else(|err| panic!("start_query {statement}: {err:?}"))
        .query_id()
        .expect("query id")
        .to_owned();
    let status = wait(client, &id).await;
    if status != QueryStatus::Finished {
        let described = client.describe_query().query_id(&id).send().await;
        panic!("{statement}: {status:?} {described:?}");
    }
    let rows = rows(client, &id, 1000).await;
    (id, rows)
}

fn values(rows: &Rows) -> Vec<Vec<String>> {
    rows.iter()
        .map(|row| row.iter().map(|(_, v)| v.clone()).collect())
        .collect()
}

fn code<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, E>,
) -> String {
    let err = result.expect_err("the call should fail");
    err.code().unwrap_or("<no code>").to_owned()
}

/// `2026-11-03T04:05:00Z` as results show timestamps: `2026-11-03 04:05:00.000`.
fn shown(time: &str) -> String {
    format!("{}.000", time.trim_end_matches('Z').replace('T', " "))
}

#[tokio::test]
async fn sample_queries_match_a_reference() {
    let account = fresh_account();
    let client = cloudtrail_client(&account);
    let data = cloudtraildata_client(&account);
    let (a, channel_a) = store_with_channel(&client, "first").await;
    let (b, channel_b) = store_with_channel(&client, "second").await;
    let first = events(150, "a");
    let second = events(40, "b");
    put(&data, &channel_a, &account, &first).await;
    put(&data, &channel_b, &account, &second).await;

    // Counts by eventName, most frequent first.
    let (_, got) = query(
        &client,
        &format!(
            "SELECT eventData.eventName, count(*) AS n FROM {a} \
             GROUP BY eventData.eventName ORDER BY n DESC, eventData.eventName"
        ),
    )
    .await;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for event in &first {
        *counts.entry(event.name).or_default() += 1;
    }
    let mut expected: Vec<(&str, usize)> = counts.into_iter().collect();
    expected.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
    let expected: Rows = expected
        .iter()
        .map(|(name, n)| {
            vec![
                ("eventName".to_owned(), (*name).to_owned()),
                ("n".to_owned(), n.to_string()),
            ]
        })
        .collect();
    assert_eq!(got, expected);

    // A time range compared with string literals, nested fields, identifiers in any case.
    let (_, got) = query(
        &client,
        &format!(
            "select EVENTDATA.useridentity.PrincipalId, eventTime, eventdata.uid FROM {a} \
             WHERE eventTime >= '2026-11-10 00:00:00.000' AND eventtime < '2026-11-12 00:00:00' \
             ORDER BY eventTime, eventData.UID"
        ),
    )
    .await;
    let mut expected: Vec<&Event> = first
        .iter()
        .filter(|e| e.time.as_str() >= "2026-11-10" && e.time.as_str() < "2026-11-12")
        .collect();
    expected.sort_by(|x, y| x.time.cmp(&y.time).then(x.uid.cmp(&y.uid)));
    assert!(!expected.is_empty());
    let expected: Rows = expected
        .iter()
        .map(|e| {
            vec![
                ("principalId".to_owned(), e.principal.clone()),
                ("eventTime".to_owned(), shown(&e.time)),
                ("UID".to_owned(), e.uid.clone()),
            ]
        })
        .collect();
    assert_eq!(got, expected);

    // element_at on userIdentity.details, an unaliased aggregate named _col1.
    let (_, got) = query(
        &client,
        &format!(
            "SELECT element_at(eventData.userIdentity.details, 'alternateId') AS who, count(*) \
             FROM {a} WHERE eventData.eventName = 'Login' GROUP BY 1 ORDER BY 1"
        ),
    )
    .await;
    let mut by_who: BTreeMap<String, usize> = BTreeMap::new();
    for event in first.iter().filter(|e| e.name == "Login") {
        *by_who.entry(event.alternate_id.clone()).or_default() += 1;
    }
    let expected: Rows = by_who
        .iter()
        .map(|(who, n)| {
            vec![
                ("who".to_owned(), who.clone()),
                ("_col1".to_owned(), n.to_string()),
            ]
        })
        .collect();
    assert_eq!(got, expected);

    // UNION of two stores, and a WITH over both, by ID and by ARN.
    let arn_b = format!("arn:aws:cloudtrail:us-east-1:{account}:eventdatastore/{b}");
    let (_, got) = query(
        &client,
        &format!(
            "WITH both_stores AS (SELECT eventData.UID AS uid FROM {a} \
             UNION ALL SELECT eventData.UID FROM {arn_b}) \
             SELECT count(*) AS total, count(DISTINCT uid) AS distinct_uids FROM both_stores"
        ),
    )
    .await;
    let total = (first.len() + second.len()).to_string();
    assert_eq!(values(&got), vec![vec![total.clone(), total]]);

    // Every column of the schema, in its documented spelling.
    let (_, got) = query(&client, &format!("SELECT * FROM {a} LIMIT 1")).await;
    let columns: Vec<&str> = got[0].iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        columns,
        vec![
            "eventVersion",
            "eventCategory",
            "eventType",
            "eventID",
            "eventTime",
            "awsRegion",
            "recipientAccountId",
            "addendum",
            "metadata",
            "eventData"
        ]
    );
    let row: BTreeMap<_, _> = got[0].iter().cloned().collect();
    assert_eq!(row["eventCategory"], "ActivityAuditLog");
    assert_eq!(row["recipientAccountId"], account);
    assert!(
        row["eventData"].contains("userIdentity={type=User"),
        "{}",
        row["eventData"]
    );
    assert!(row["metadata"].contains(&channel_a), "{}", row["metadata"]);

    // Trino date functions DataFusion lacks.
    let (_, got) = query(
        &client,
        &format!(
            "SELECT date_diff('day', eventTime, TIMESTAMP '2026-12-01 00:00:00') AS days, \
             to_iso8601(eventTime) AS at FROM {a} WHERE eventData.UID = 'a-7'"
        ),
    )
    .await;
    let seven = &first[7];
    let day: u32 = seven.time[8..10].parse().expect("day");
    let days = if seven.time[11..] == *"00:00:00Z" {
        31 - day
    } else {
        30 - day
    };
    assert_eq!(
        values(&got),
        vec![vec![
            days.to_string(),
            format!("{}.000Z", seven.time.trim_end_matches('Z'))
        ]]
    );

    // Map values of requestParameters, and a JOIN of the two stores on principal.
    let (_, got) = query(
        &client,
        &format!(
            "SELECT element_at(eventData.requestParameters, 'file') AS file FROM {a} \
             WHERE eventData.UID = 'a-7'"
        ),
    )
    .await;
    assert_eq!(values(&got), vec![vec!["a-7.txt".to_owned()]]);
    let (_, got) = query(
        &client,
        &format!(
            "SELECT x.eventData.userIdentity.principalId AS p, count(*) AS n FROM {a} x \
             JOIN {b} y ON x.eventData.userIdentity.principalId = y.eventData.userIdentity.principalId \
             GROUP BY 1 HAVING count(*) > 0 ORDER BY 1"
        ),
    )
    .await;
    let mut joined: BTreeMap<String, usize> = BTreeMap::new();
    for x in &first {
        let matches = second.iter().filter(|y| y.principal == x.principal).count();
        if matches > 0 {
            *joined.entry(x.principal.clone()).or_default() += matches;
        }
    }
    let expected: Vec<Vec<String>> = joined
        .into_iter()
        .map(|(p, n)| vec![p, n.to_string()])
        .collect();
    assert_eq!(values(&got), expected);
}

#[tokio::test]
async fn paging_statuses_statistics_and_listing() {
    let account = fresh_account();
    let client = cloudtrail_client(&account);
    let data = cloudtraildata_client(&account);
    let (store, channel) = store_with_channel(&client, "paged").await;
    let all = events(130, "p");
    put(&data, &channel, &account, &all).await;

    let statement =
        format!("SELECT eventData.UID FROM {store} WHERE eventData.eventName = 'Login' ORDER BY 1");
    let (id, whole) = query(&client, &statement).await;
    let logins = all.iter().filter(|e| e.name == "Login").count();
    assert_eq!(whole.len(), logins);
    assert!(logins > 20, "enough rows to page: {logins}");
    // Pages of 7 give the same rows in the same order.
    assert_eq!(rows(&client, &id, 7).await, whole);
    let page = client
        .get_query_results()
        .query_id(&id)
        .max_query_results(7)
        .send()
        .await
        .expect("page");
    let stats = page.query_statistics().expect("statistics");
    assert_eq!(stats.results_count(), Some(7));
    assert_eq!(stats.total_results_count(), Some(logins as i32));
    assert!(stats.bytes_scanned().unwrap_or_default() > 0);
    assert!(page.next_token().is_some());

    let described = client
        .describe_query()
        .query_id(&id)
        .send()
        .await
        .expect("describe");
    assert_eq!(described.query_status(), Some(&QueryStatus::Finished));
    assert_eq!(described.query_string(), Some(statement.as_str()));
    let stats = described.query_statistics().expect("statistics");
    assert_eq!(stats.events_scanned(), Some(all.len() as i64));
    assert_eq!(stats.events_matched(), Some(logins as i64));
    assert!(stats.bytes_scanned().unwrap_or_default() > 0);
    assert!(stats.creation_time().is_some());

    // MaxQueryResults outside 1-1000 is refused by the model.
    assert_eq!(
        code(
            client
                .get_query_results()
                .query_id(&id)
                .max_query_results(0)
                .send()
                .await
        ),
        "InvalidParameterException"
    );

    // ListQueries: newest first, by status, paged.
    let (second, _) = query(&client, &format!("SELECT count(*) FROM {store}")).await;
    let listed = client
        .list_queries()
        .event_data_store(&store)
        .send()
        .await
        .expect("list");
    let ids: Vec<&str> = listed
        .queries()
        .iter()
        .filter_map(|q| q.query_id())
        .collect();
    assert_eq!(ids, vec![second.as_str(), id.as_str()]);
    let first_page = client
        .list_queries()
        .event_data_store(&store)
        .max_results(1)
        .send()
        .await
        .expect("page 1");
    assert_eq!(first_page.queries().len(), 1);
    let next = client
        .list_queries()
        .event_data_store(&store)
        .max_results(1)
        .next_token(first_page.next_token().expect("token"))
        .send()
        .await
        .expect("page 2");
    assert_eq!(next.queries()[0].query_id(), Some(id.as_str()));
    let failed = client
        .list_queries()
        .event_data_store(&store)
        .query_status(QueryStatus::Failed)
        .send()
        .await
        .expect("by status");
    assert!(failed.queries().is_empty());
    let later = aws_smithy_types::DateTime::from_secs(4_000_000_000);
    let none = client
        .list_queries()
        .event_data_store(&store)
        .start_time(later)
        .send()
        .await
        .expect("by time");
    assert!(none.queries().is_empty());
    assert_eq!(
        code(
            client
                .list_queries()
                .event_data_store(&store)
                .start_time(later)
                .end_time(aws_smithy_types::DateTime::from_secs(1))
                .send()
                .await
        ),
        "InvalidDateRangeException"
    );

    // A finished query cannot be cancelled.
    assert_eq!(
        code(client.cancel_query().query_id(&id).send().await),
        "InactiveQueryException"
    );
}

/// A statement that runs for a long time over a small store: a five-way cross join.
fn slow(store: &str) -> String {
    format!("SELECT count(*) FROM {store} a, {store} b, {store} c, {store} d, {store} e")
}

#[tokio::test]
async fn errors_cancellation_and_concurrency() {
    let account = fresh_account();
    let client = cloudtrail_client(&account);
    let data = cloudtraildata_client(&account);
    let (store, channel) = store_with_channel(&client, "errors").await;
    put(&data, &channel, &account, &events(60, "x")).await;
    let start = |statement: String| {
        let client = client.clone();
        async move { client.start_query().query_statement(statement).send().await }
    };

    for (statement, wanted) in [
        (format!("SELEC * FROM {store}"), "invalid"),
        (
            format!("SELECT 1 FROM {store}; SELECT 2 FROM {store}"),
            "exactly one",
        ),
        (format!("DELETE FROM {store}"), "Only SELECT"),
        (format!("SELECT nosuchcolumn FROM {store}"), "nosuchcolumn"),
    ] {
        let err = start(statement.clone()).await.expect_err(&statement);
        assert_eq!(
            err.code(),
            Some("InvalidQueryStatementException"),
            "{statement}"
        );
        assert!(
            err.message().unwrap_or_default().contains(wanted),
            "{statement}: {:?}",
            err.message()
        );
    }
    let unknown = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    assert_eq!(
        code(start(format!("SELECT * FROM {unknown}")).await),
        "EventDataStoreNotFoundException"
    );
    assert_eq!(
        code(
            client
                .start_query()
                .query_alias("dashboard")
                .query_parameters("x")
                .send()
                .await
        ),
        "InvalidParameterException"
    );
    assert_eq!(
        code(client.describe_query().query_id(unknown).send().await),
        "QueryIdNotFoundException"
    );
    assert_eq!(
        code(client.get_query_results().query_id(unknown).send().await),
        "QueryIdNotFoundException"
    );
    assert_eq!(
        code(client.cancel_query().query_id(unknown).send().await),
        "QueryIdNotFoundException"
    );

    // Ten slow queries run at once; the eleventh is refused; cancelled ones end CANCELLED.
    let mut running = Vec::new();
    for _ in 0..10 {
        let out = start(slow(&store)).await.expect("start slow query");
        running.push(out.query_id().expect("id").to_owned());
    }
    assert_eq!(
        code(start(slow(&store)).await),
        "MaxConcurrentQueriesException"
    );
    for id in &running {
        let out = client
            .cancel_query()
            .query_id(id)
            .send()
            .await
            .expect("cancel");
        assert_eq!(out.query_status(), &QueryStatus::Cancelled);
        assert_eq!(wait(&client, id).await, QueryStatus::Cancelled);
        assert_eq!(
            code(client.cancel_query().query_id(id).send().await),
            "InactiveQueryException"
        );
        let results = client
            .get_query_results()
            .query_id(id)
            .send()
            .await
            .expect("results of a cancelled query");
        assert_eq!(results.query_status(), Some(&QueryStatus::Cancelled));
        assert!(results.query_result_rows().is_empty());
    }
    // Slots are free again once the cancelled queries have stopped.
    let mut freed = false;
    for _ in 0..200 {
        match start(format!("SELECT count(*) FROM {store}")).await {
            Ok(out) => {
                let id = out.query_id().expect("id").to_owned();
                assert_eq!(wait(&client, &id).await, QueryStatus::Finished);
                freed = true;
                break;
            }
            Err(err) if err.code() == Some("MaxConcurrentQueriesException") => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("{err:?}"),
        }
    }
    assert!(freed);

    // A store pending deletion is inactive.
    client
        .delete_channel()
        .channel(&channel)
        .send()
        .await
        .expect("delete channel");
    client
        .delete_event_data_store()
        .event_data_store(&store)
        .send()
        .await
        .expect("delete store");
    assert_eq!(
        code(start(format!("SELECT * FROM {store}")).await),
        "InactiveEventDataStoreException"
    );
}

#[tokio::test]
async fn another_account_cannot_read_a_store() {
    let owner = fresh_account();
    let other = fresh_account();
    let client = cloudtrail_client(&owner);
    let data = cloudtraildata_client(&owner);
    let (store, channel) = store_with_channel(&client, "private").await;
    put(&data, &channel, &owner, &events(10, "s")).await;
    let (id, _) = query(&client, &format!("SELECT count(*) FROM {store}")).await;

    let intruder = cloudtrail_client(&other);
    let arn = format!("arn:aws:cloudtrail:us-east-1:{owner}:eventdatastore/{store}");
    for statement in [
        format!("SELECT * FROM {store}"),
        format!("SELECT * FROM {arn}"),
    ] {
        assert_eq!(
            code(
                intruder
                    .start_query()
                    .query_statement(statement)
                    .send()
                    .await
            ),
            "EventDataStoreNotFoundException"
        );
    }
    assert_eq!(
        code(
            intruder
                .start_query()
                .query_statement(format!("SELECT * FROM {store}"))
                .event_data_store_owner_account_id(&owner)
                .send()
                .await
        ),
        "EventDataStoreNotFoundException"
    );
    assert_eq!(
        code(intruder.get_query_results().query_id(&id).send().await),
        "QueryIdNotFoundException"
    );
    assert_eq!(
        code(intruder.describe_query().query_id(&id).send().await),
        "QueryIdNotFoundException"
    );
}

#[tokio::test]
async fn queries_survive_kill_9() {
    let (dir, account, server, client, data, store, channel) = own_lake("durable").await;
    let all = events(50, "d");
    put(&data, &channel, &account, &all).await;
    let statement =
        format!("SELECT eventData.eventName, count(*) FROM {store} GROUP BY 1 ORDER BY 1");
    let (finished, before) = query(&client, &statement).await;
    let running = client
        .start_query()
        .query_statement(slow(&store))
        .send()
        .await
        .expect("start slow")
        .query_id()
        .expect("id")
        .to_owned();
    server.kill();

    let server = Server::start(dir.path(), &[]);
    let client = cloudtrail_client_with(&server.endpoint, &account);
    assert_eq!(rows(&client, &finished, 2).await, before);
    // The query cut off by the crash is failed, not left running.
    let described = client
        .describe_query()
        .query_id(&running)
        .send()
        .await
        .expect("describe");
    assert_eq!(described.query_status(), Some(&QueryStatus::Failed));
    assert!(described
        .error_message()
        .unwrap_or_default()
        .contains("restart"));
    let (_, again) = query(&client, &statement).await;
    assert_eq!(again, before);
    drop(server);
}

/// Waits until the store's events have been compacted into at least one segment file.
fn wait_for_segment(data_dir: &std::path::Path, store: &str) {
    let dir = data_dir.join("lake").join(store);
    for _ in 0..600 {
        if has_segment(&dir) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no segment was written in {}", dir.display());
}

/// `count` events an hour old.
fn recent(count: usize, tag: &str) -> Vec<Event> {
    let at = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let text = at
        .replace_nanosecond(0)
        .expect("whole second")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    events(count, tag)
        .into_iter()
        .map(|e| Event {
            time: text.clone(),
            ..e
        })
        .collect()
}

async fn count(client: &Client, store: &str) -> Vec<Vec<String>> {
    values(
        &query(client, &format!("SELECT count(*) FROM {store}"))
            .await
            .1,
    )
}

#[tokio::test]
async fn compacted_segments_and_the_tail_read_as_one_store() {
    let (dir, account, server, client, data, store, channel) = own_lake("compacted").await;
    // Enough old events for the compactor to take them at once, then a recent tail it leaves
    // as rows.
    let old = events_in(20_500, "c", "2026-10");
    let tail = recent(500, "t");
    put(&data, &channel, &account, &old).await;
    wait_for_segment(dir.path(), &store);
    put(&data, &channel, &account, &tail).await;
    let all: Vec<Event> = old.iter().chain(&tail).cloned().collect();

    let statement =
        format!("SELECT eventData.eventName, count(*) AS n FROM {store} GROUP BY 1 ORDER BY 1");
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for event in &all {
        *counts.entry(event.name).or_default() += 1;
    }
    let expected: Vec<Vec<String>> = counts
        .iter()
        .map(|(name, n)| vec![(*name).to_owned(), n.to_string()])
        .collect();
    // The segment's part comes from its counts, the tail's from the rows.
    let (id, got) = query(&client, &statement).await;
    assert_eq!(values(&got), expected);
    let described = client
        .describe_query()
        .query_id(&id)
        .send()
        .await
        .expect("describe");
    let statistics = described.query_statistics().expect("statistics");
    assert_eq!(statistics.events_scanned(), Some(all.len() as i64));
    assert_eq!(statistics.events_matched(), Some(all.len() as i64));
    // A time range that takes the whole segment: its counts still answer.
    let since = format!(
        "SELECT eventData.eventName, count(*) AS n FROM {store} \
         WHERE eventTime >= '2026-10-01 00:00:00' GROUP BY 1 ORDER BY 1"
    );
    assert_eq!(values(&query(&client, &since).await.1), expected);

    let range = format!(
        "SELECT eventData.UID FROM {store} WHERE eventTime >= '2026-10-27 00:00:00' \
         AND eventTime < '2026-10-28 00:00:00' AND eventData.userIdentity.principalId = 'user-3' \
         ORDER BY 1"
    );
    let mut uids: Vec<String> = old
        .iter()
        .filter(|e| e.time.starts_with("2026-10-27") && e.principal == "user-3")
        .map(|e| e.uid.clone())
        .collect();
    uids.sort();
    assert!(!uids.is_empty());
    let (_, got) = query(&client, &range).await;
    assert_eq!(
        values(&got),
        uids.iter().map(|u| vec![u.clone()]).collect::<Vec<_>>()
    );

    server.kill();
    let server = Server::start(dir.path(), &[]);
    let client = cloudtrail_client_with(&server.endpoint, &account);
    let (_, again) = query(&client, &statement).await;
    assert_eq!(values(&again), expected);

    // Seven days of retention: the old events are no longer returned, and their segment goes.
    client
        .update_event_data_store()
        .event_data_store(&store)
        .retention_period(7)
        .send()
        .await
        .expect("shorten retention");
    assert_eq!(
        count(&client, &store).await,
        vec![vec![tail.len().to_string()]]
    );
    let segments = dir.path().join("lake").join(&store);
    for _ in 0..300 {
        if !has_segment(&segments) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !has_segment(&segments),
        "the expired segment was not removed"
    );
    assert_eq!(
        count(&client, &store).await,
        vec![vec![tail.len().to_string()]]
    );
    drop(server);
}

/// Starts a statement; its query ID.
async fn start(client: &Client, statement: &str) -> String {
    client
        .start_query()
        .query_statement(statement)
        .send()
        .await
        .unwrap_or_else(|err| panic!("start_query {statement}: {err:?}"))
        .query_id()
        .expect("query id")
        .to_owned()
}

/// Every stored row of a query in any final status, and its TotalResultsCount.
async fn kept_rows(client: &Client, id: &str) -> (Vec<Vec<String>>, i32) {
    let mut out = Vec::new();
    let mut token = None;
    let mut total = 0;
    loop {
        let got = client
            .get_query_results()
            .query_id(id)
            .set_next_token(token)
            .send()
            .await
            .expect("get_query_results");
        total = got
            .query_statistics()
            .and_then(|s| s.total_results_count())
            .unwrap_or(total);
        for row in got.query_result_rows() {
            out.push(
                row.iter()
                    .map(|column| column.values().next().cloned().unwrap_or_default())
                    .collect(),
            );
        }
        token = got.next_token().map(str::to_owned);
        if token.is_none() {
            return (out, total);
        }
    }
}

#[tokio::test]
async fn cancelled_queries_keep_their_rows_and_too_many_rows_fail() {
    let account = fresh_account();
    let client = cloudtrail_client(&account);
    let data = cloudtraildata_client(&account);
    let (store, channel) = store_with_channel(&client, "partial").await;
    put(&data, &channel, &account, &events(250, "p")).await;

    // A three-way self-join streams 937,500 rows (15 x 250 x 250) for a while; cancelled
    // midway, the query keeps the rows it had found, readable with GetQueryResults.
    let uids: Vec<String> = (0..15).map(|i| format!("'p-{i}'")).collect();
    let streaming = format!(
        "SELECT a.eventData.UID, b.eventData.UID, c.eventData.UID FROM {store} a, {store} b, {store} c \
         WHERE a.eventData.UID IN ({})",
        uids.join(", ")
    );
    let id = start(&client, &streaming).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let out = client
        .cancel_query()
        .query_id(&id)
        .send()
        .await
        .expect("cancel (the query should still run)");
    assert_eq!(out.query_status(), &QueryStatus::Cancelled);
    assert_eq!(wait(&client, &id).await, QueryStatus::Cancelled);
    // The runner records what it kept once it has stopped.
    let mut kept = (Vec::new(), 0);
    for _ in 0..100 {
        kept = kept_rows(&client, &id).await;
        if kept.1 > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (rows, total) = kept;
    assert!(total > 0, "no rows were kept");
    assert_eq!(rows.len(), total as usize);
    assert!(rows.len() < 15 * 250 * 250);
    for row in &rows {
        assert_eq!(row.len(), 3);
        assert!(uids.contains(&format!("'{}'", row[0])), "{row:?}");
    }

    // More than 1,000,000 result rows fail the query, and nothing of it is kept.
    let huge = format!("SELECT unnest(range(0, 1000001)) AS n FROM {store} LIMIT 1000001");
    let id = start(&client, &huge).await;
    assert_eq!(wait(&client, &id).await, QueryStatus::Failed);
    let described = client
        .describe_query()
        .query_id(&id)
        .send()
        .await
        .expect("describe");
    assert!(
        described
            .error_message()
            .unwrap_or_default()
            .contains("1000000 rows"),
        "{described:?}"
    );
    let results = client
        .get_query_results()
        .query_id(&id)
        .send()
        .await
        .expect("results of a failed query");
    assert_eq!(results.query_status(), Some(&QueryStatus::Failed));
    assert!(results.query_result_rows().is_empty());
}

#[tokio::test]
async fn reset_removes_segment_files() {
    let (dir, account, server, client, data, store, channel) = own_lake("reset").await;
    put(&data, &channel, &account, &events(100, "r")).await;
    // A small tail is compacted once its oldest event has waited a minute.
    let segments = dir.path().join("lake").join(&store);
    for _ in 0..1200 {
        if has_segment(&segments) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(has_segment(&segments), "no segment was written");

    let reset = common::raw_request(server.port, "POST", "/_sluice/reset", &[], b"");
    assert_eq!(reset.status, 200);
    let files: Vec<_> = walk(&dir.path().join("lake"));
    assert!(files.is_empty(), "files left after reset: {files:?}");
    // A store of the same name starts empty.
    let (store, _) = store_with_channel(&client, "reset").await;
    assert_eq!(count(&client, &store).await, vec![vec!["0".to_owned()]]);
    drop(server);
}

/// Every file under a directory (none when it is missing).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

#[tokio::test]
async fn delivered_results_are_signed_gzip_csv_in_s3() {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::signature::Verifier;
    use sha2::Digest;
    use std::io::Read;

    let account = fresh_account();
    let server = common::shared();
    let client = cloudtrail_client(&account);
    let data = cloudtraildata_client(&account);
    let s3 = common::s3_client_with(&server.endpoint, &account);
    let (store, channel) = store_with_channel(&client, "delivered").await;
    put(&data, &channel, &account, &events(250, "s")).await;
    let bucket = format!("lake-results-{account}");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");

    // The bucket must exist, and be the caller's (or grant it by policy).
    let statement = format!(
        "SELECT eventData.UID, eventData.eventName, element_at(eventData.userIdentity.details, 'alternateId') \
         FROM {store} ORDER BY 1"
    );
    let start_to = |uri: String| {
        let client = client.clone();
        let statement = statement.clone();
        async move {
            client
                .start_query()
                .query_statement(statement)
                .delivery_s3_uri(uri)
                .send()
                .await
        }
    };
    assert_eq!(
        code(start_to(format!("s3://no-such-bucket-{account}/x")).await),
        "S3BucketDoesNotExistException"
    );
    let other = fresh_account();
    let foreign = format!("lake-foreign-{other}");
    common::s3_client_with(&server.endpoint, &other)
        .create_bucket()
        .bucket(&foreign)
        .send()
        .await
        .expect("create foreign bucket");
    assert_eq!(
        code(start_to(format!("s3://{foreign}/x")).await),
        "InsufficientS3BucketPolicyException"
    );

    let id = start_to(format!("s3://{bucket}/lake/results"))
        .await
        .expect("start with delivery")
        .query_id()
        .expect("id")
        .to_owned();
    assert_eq!(wait(&client, &id).await, QueryStatus::Finished);
    let mut described = None;
    for _ in 0..600 {
        let out = client
            .describe_query()
            .query_id(&id)
            .send()
            .await
            .expect("describe");
        if out.delivery_status().map(|s| s.as_str()) != Some("PENDING") {
            described = Some(out);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let described = described.expect("delivery ended");
    assert_eq!(
        described.delivery_status().map(|s| s.as_str()),
        Some("SUCCESS")
    );
    assert_eq!(
        described.delivery_s3_uri(),
        Some(format!("s3://{bucket}/lake/results").as_str())
    );

    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix(format!(
            "lake/results/AWSLogs/{account}/CloudTrail-Lake/Query/"
        ))
        .send()
        .await
        .expect("list");
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    let today = time::OffsetDateTime::now_utc();
    let folder = format!(
        "lake/results/AWSLogs/{account}/CloudTrail-Lake/Query/{:04}/{:02}/{:02}/{id}/",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    assert_eq!(
        keys,
        vec![
            format!("{folder}result_1.csv.gz"),
            format!("{folder}result_sign.json")
        ]
    );
    let get = |key: String| {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        async move {
            s3.get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .expect("get object")
                .body
                .collect()
                .await
                .expect("body")
                .into_bytes()
                .to_vec()
        }
    };
    let gzip = get(format!("{folder}result_1.csv.gz")).await;
    let mut text = String::new();
    flate2::read::GzDecoder::new(gzip.as_slice())
        .read_to_string(&mut text)
        .expect("gunzip");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    let csv_rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.expect("record").iter().map(str::to_owned).collect())
        .collect();
    let api_rows = rows(&client, &id, 100).await;
    assert_eq!(api_rows.len(), 250);
    let api_header: Vec<String> = api_rows[0].iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(header, api_header);
    assert_eq!(csv_rows, values(&api_rows));

    // The sign file lists the file's SHA-256 and signs it with the key ListPublicKeys gives.
    let sign: serde_json::Value =
        serde_json::from_slice(&get(format!("{folder}result_sign.json")).await).expect("json");
    let hash = hex::encode(sha2::Sha256::digest(&gzip));
    assert_eq!(sign["files"][0]["fileName"], "result_1.csv.gz");
    assert_eq!(sign["files"][0]["fileHashValue"], hash.as_str());
    assert_eq!(sign["hashAlgorithm"], "SHA-256");
    assert_eq!(sign["signatureAlgorithm"], "SHA256withRSA");
    assert_eq!(sign["region"], "us-east-1");
    let keys = client
        .list_public_keys()
        .send()
        .await
        .expect("list_public_keys");
    let key = keys.public_key_list().first().expect("a public key");
    let der = key.value().expect("value").as_ref().to_vec();
    assert_eq!(
        sign["publicKeyFingerprint"],
        hex::encode(md5::Md5::digest(&der)).as_str()
    );
    assert_eq!(key.fingerprint(), sign["publicKeyFingerprint"].as_str());
    let public = rsa::RsaPublicKey::from_pkcs1_der(&der).expect("PKCS#1 public key");
    let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public);
    let signature = rsa::pkcs1v15::Signature::try_from(
        hex::decode(sign["hashSignature"].as_str().expect("signature"))
            .expect("hex")
            .as_slice(),
    )
    .expect("signature");
    verifier
        .verify(hash.as_bytes(), &signature)
        .expect("the signature verifies");
    // A tampered hash list does not.
    assert!(verifier.verify(b"0000", &signature).is_err());
}

#[tokio::test]
async fn segments_stay_apart_when_row_numbers_start_again() {
    // Every tail compacted leaves the events table empty, and SQLite then numbers new rows from
    // 1 again: a second segment of as many rows had the first one's name, replaced its file and
    // lost it.
    let (dir, account, server, client, data, store, channel) = own_lake("renumbered").await;
    let segments = dir.path().join("lake").join(&store);
    for (round, tag) in ["first", "second"].into_iter().enumerate() {
        put(
            &data,
            &channel,
            &account,
            &events_in(20_500, tag, "2026-10"),
        )
        .await;
        wait_for_segment_files(&segments, round + 1).await;
    }
    assert_eq!(count(&client, &store).await, [["41000".to_owned()]]);
    drop(server);
}

/// Four small segments are merged into one: each event is read once, and the merged files are
/// gone.
#[tokio::test]
async fn small_segments_are_merged_into_one() {
    let (dir, account, server, client, data, store, channel) = own_lake("merged").await;
    let segments = dir.path().join("lake").join(&store);
    let tags = ["m1", "m2", "m3", "m4"];
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (round, tag) in tags.into_iter().enumerate() {
        let events = events_in(20_500, tag, "2026-10");
        for event in &events {
            *names.entry(event.name).or_default() += 1;
        }
        put(&data, &channel, &account, &events).await;
        // The fourth segment is merged with the first three once it is written.
        let expected = if round + 1 < tags.len() { round + 1 } else { 1 };
        wait_for_segment_files(&segments, expected).await;
    }
    assert_eq!(count(&client, &store).await, [["82000".to_owned()]]);
    let (_, rows) = query(
        &client,
        &format!(
            "SELECT substr(eventData.UID, 1, 2), count(DISTINCT eventData.UID) FROM {store} \
             GROUP BY 1 ORDER BY 1"
        ),
    )
    .await;
    let per_tag: Vec<Vec<String>> = tags
        .iter()
        .map(|tag| vec![(*tag).to_owned(), "20500".to_owned()])
        .collect();
    assert_eq!(values(&rows), per_tag);
    // The merged segment's counts are its inputs' counts summed.
    let (_, rows) = query(
        &client,
        &format!("SELECT eventData.eventName, count(*) FROM {store} GROUP BY 1 ORDER BY 1"),
    )
    .await;
    let expected: Vec<Vec<String>> = names
        .iter()
        .map(|(name, n)| vec![(*name).to_owned(), n.to_string()])
        .collect();
    assert_eq!(values(&rows), expected);
    drop(server);
}
