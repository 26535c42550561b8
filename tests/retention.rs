//! Retention and bounds through the real clients: what is past retention disappears from reads
//! at once and from storage at the next sweep, and a far-behind outbox refuses more work.
//!
//! Each test runs its own server on a temporary data directory. Two knobs make them quick and
//! honest: `--sweep-interval` (seconds between retention sweeps; one hour keeps the sweeper
//! out of the way, one second brings it in), and ageing data by editing `sluice.db` while the
//! server is stopped, which is what a day passing looks like to the store. Storage is checked
//! with plain SQL on that file.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;
use common::{fresh_account, kinesis_client_with, logs_client_with, Server};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// How long a test waits for a sweep with `--sweep-interval 1`.
const SWEEP_WAIT: Duration = Duration::from_secs(30);

fn now_millis() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).expect("now")
}

fn event(timestamp: i64, message: &str) -> InputLogEvent {
    InputLogEvent::builder()
        .timestamp(timestamp)
        .message(message)
        .build()
        .expect("event")
}

/// The server's database, opened beside it (WAL lets readers and one writer share it).
async fn database(dir: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(dir.join("sluice.db"))
        .busy_timeout(Duration::from_secs(10));
    SqlitePool::connect_with(options)
        .await
        .expect("open sluice.db")
}

async fn count(db: &SqlitePool, sql: &str, bind: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(bind)
        .fetch_one(db)
        .await
        .expect("count")
}

/// Waits until `sql` counts `want`, or fails after [`SWEEP_WAIT`].
async fn wait_for_count(db: &SqlitePool, sql: &str, bind: &str, want: i64) {
    let deadline = Instant::now() + SWEEP_WAIT;
    loop {
        let found = count(db, sql, bind).await;
        if found == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {found} rows, not {want}, after {SWEEP_WAIT:?}: {sql}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const LOG_BATCHES: &str =
    "SELECT COUNT(*) FROM log_entries WHERE kind = 'logs/events' AND account = ?";

async fn messages(logs: &aws_sdk_cloudwatchlogs::Client, from_head: bool) -> Vec<String> {
    logs.get_log_events()
        .log_group_name("g")
        .log_stream_name("s")
        .start_from_head(from_head)
        .send()
        .await
        .expect("get_log_events")
        .events()
        .iter()
        .filter_map(|e| e.message().map(str::to_owned))
        .collect()
}

async fn filtered(logs: &aws_sdk_cloudwatchlogs::Client) -> Vec<String> {
    logs.filter_log_events()
        .log_group_name("g")
        .send()
        .await
        .expect("filter_log_events")
        .events()
        .iter()
        .filter_map(|e| e.message().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn log_events_past_retention_are_hidden_at_once_and_swept_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let account = fresh_account();
    let server = Server::start(dir.path(), &["--sweep-interval", "3600"]);
    let logs = logs_client_with(&server.endpoint, &account, "x");
    logs.create_log_group()
        .log_group_name("g")
        .send()
        .await
        .expect("group");
    logs.create_log_stream()
        .log_group_name("g")
        .log_stream_name("s")
        .send()
        .await
        .expect("stream");
    logs.put_retention_policy()
        .log_group_name("g")
        .retention_in_days(1)
        .send()
        .await
        .expect("retention");
    // One event that turns one day old in four seconds, one that is new.
    let now = now_millis();
    let expiring_at = now - DAY + 4_000;
    for (timestamp, message) in [(expiring_at, "expiring"), (now, "fresh")] {
        let put = logs
            .put_log_events()
            .log_group_name("g")
            .log_stream_name("s")
            .log_events(event(timestamp, message))
            .send()
            .await
            .expect("put");
        assert!(
            put.rejected_log_events_info().is_none(),
            "{message} accepted"
        );
    }
    assert_eq!(messages(&logs, true).await, ["expiring", "fresh"]);

    while now_millis() <= expiring_at + DAY + 200 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(messages(&logs, true).await, ["fresh"], "hidden at once");
    assert_eq!(messages(&logs, false).await, ["fresh"]);
    assert_eq!(filtered(&logs).await, ["fresh"]);

    // No sweep has run yet: the expired batch is still stored.
    drop(server);
    let db = database(dir.path()).await;
    assert_eq!(count(&db, LOG_BATCHES, &account).await, 2);

    // A sweep removes the batch whose newest event expired.
    let server = Server::start(dir.path(), &["--sweep-interval", "1"]);
    wait_for_count(&db, LOG_BATCHES, &account, 1).await;
    let logs = logs_client_with(&server.endpoint, &account, "x");
    assert_eq!(messages(&logs, true).await, ["fresh"]);
    assert_eq!(filtered(&logs).await, ["fresh"]);
}

const SHARD_RECORDS: &str =
    "SELECT COUNT(*) FROM log_entries WHERE kind = 'kinesis/shard' AND account = ?";

async fn read_all(kinesis: &aws_sdk_kinesis::Client) -> Vec<String> {
    let iterator = kinesis
        .get_shard_iterator()
        .stream_name("s")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("iterator")
        .shard_iterator
        .expect("iterator");
    kinesis
        .get_records()
        .shard_iterator(iterator)
        .send()
        .await
        .expect("get_records")
        .records()
        .iter()
        .map(|r| String::from_utf8_lossy(r.data().as_ref()).into_owned())
        .collect()
}

async fn put_record(kinesis: &aws_sdk_kinesis::Client, data: &str) -> String {
    kinesis
        .put_record()
        .stream_name("s")
        .partition_key("k")
        .data(Blob::new(data))
        .send()
        .await
        .expect("put_record")
        .sequence_number
}

#[tokio::test]
async fn kinesis_records_past_retention_are_hidden_then_trimmed_and_numbering_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let account = fresh_account();
    let server = Server::start(dir.path(), &["--sweep-interval", "3600"]);
    let kinesis = kinesis_client_with(&server.endpoint, &account);
    kinesis
        .create_stream()
        .stream_name("s")
        .shard_count(1)
        .send()
        .await
        .expect("stream");
    let mut last = String::new();
    for data in ["one", "two", "three"] {
        last = put_record(&kinesis, data).await;
    }
    drop(server);

    // A day and an hour pass for these records: past the 24-hour retention.
    let db = database(dir.path()).await;
    sqlx::query(
        "UPDATE log_entries SET at_millis = at_millis - ?1, first_time = first_time - ?1,
         last_time = last_time - ?1 WHERE kind = 'kinesis/shard' AND account = ?2",
    )
    .bind(DAY + HOUR)
    .bind(&account)
    .execute(&db)
    .await
    .expect("age the records");

    let server = Server::start(dir.path(), &["--sweep-interval", "3600"]);
    let kinesis = kinesis_client_with(&server.endpoint, &account);
    assert!(read_all(&kinesis).await.is_empty(), "hidden at once");
    drop(server);
    assert_eq!(
        count(&db, SHARD_RECORDS, &account).await,
        3,
        "not swept yet"
    );

    let server = Server::start(dir.path(), &["--sweep-interval", "1"]);
    // The last record stays (hidden) so that numbering carries on from it.
    wait_for_count(&db, SHARD_RECORDS, &account, 1).await;
    let kinesis = kinesis_client_with(&server.endpoint, &account);
    let next = put_record(&kinesis, "four").await;
    let position = |sequence: &str| sequence[2..].parse::<u128>().expect("sequence number");
    assert_eq!(position(&next), position(&last) + 1);
    assert_eq!(read_all(&kinesis).await, ["four"]);
}

#[tokio::test]
async fn cloudtrail_lake_events_past_retention_are_removed_by_event_time() {
    use aws_sdk_cloudtrail::types::{Destination, DestinationType};
    let dir = tempfile::tempdir().expect("tempdir");
    let account = fresh_account();
    let server = Server::start(dir.path(), &["--sweep-interval", "1"]);
    let client = common::cloudtrail_client_with(&server.endpoint, &account);
    let selector = common::event_category_selector("ActivityAuditLog");
    let store_arn = client
        .create_event_data_store()
        .name("week")
        .advanced_event_selectors(selector)
        .retention_period(7)
        .termination_protection_enabled(false)
        .send()
        .await
        .expect("event data store")
        .event_data_store_arn
        .expect("arn");
    let channel_arn = client
        .create_channel()
        .name("app")
        .source("Custom")
        .destinations(
            Destination::builder()
                .r#type(DestinationType::EventDataStore)
                .location(&store_arn)
                .build()
                .expect("destination"),
        )
        .send()
        .await
        .expect("channel")
        .channel_arn
        .expect("arn");
    let event = |uid: &str, age: time::Duration| {
        let at = (time::OffsetDateTime::now_utc() - age)
            .format(&time::format_description::well_known::Rfc3339)
            .expect("time");
        let data = serde_json::json!({
            "version": "1.0",
            "userIdentity": { "type": "CustomUser", "principalId": "alice" },
            "eventSource": "my-app",
            "eventName": "Login",
            "eventTime": at,
            "UID": uid,
            "recipientAccountId": account,
        });
        aws_sdk_cloudtraildata::types::AuditEvent::builder()
            .id(uid)
            .event_data(data.to_string())
            .build()
            .expect("audit event")
    };
    let data_client = common::cloudtraildata_client_with(&server.endpoint, &account);
    let out = data_client
        .put_audit_events()
        .channel_arn(&channel_arn)
        .audit_events(event("month-old", time::Duration::days(30)))
        .audit_events(event("yesterday", time::Duration::days(1)))
        .send()
        .await
        .expect("put_audit_events");
    assert_eq!(out.successful().len(), 2);

    let db = database(dir.path()).await;
    let rows = "SELECT COUNT(*) FROM cloudtrail_events WHERE event_data_store = ?";
    wait_for_count(&db, rows, &store_arn, 1).await;
    // A row keeps what CloudTrail adds and the raw eventData, whose UID names the event.
    let kept: String = sqlx::query_scalar(
        "SELECT raw_event_data FROM cloudtrail_events WHERE event_data_store = ?",
    )
    .bind(&store_arn)
    .fetch_one(&db)
    .await
    .expect("kept row");
    let kept: serde_json::Value = serde_json::from_str(&kept).expect("raw eventData");
    assert_eq!(kept["UID"], "yesterday");
}

#[tokio::test]
async fn appfabric_client_tokens_are_forgotten_after_a_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let account = fresh_account();
    let server = Server::start(dir.path(), &["--sweep-interval", "3600"]);
    let client = common::appfabric_client_with(&server.endpoint, &account);
    client
        .create_app_bundle()
        .client_token("5f0e7b8c-0d7a-4c43-9a55-1c3f2e6d8a90")
        .send()
        .await
        .expect("create bundle");
    drop(server);
    let db = database(dir.path()).await;
    let tokens =
        "SELECT COUNT(*) FROM records WHERE kind = 'appfabric/idempotency' AND account = ?";
    assert_eq!(count(&db, tokens, &account).await, 1);
    sqlx::query(
        "UPDATE records SET body = json_set(body, '$.at_millis', json_extract(body, '$.at_millis') - ?1)
         WHERE kind = 'appfabric/idempotency' AND account = ?2",
    )
    .bind(DAY + HOUR)
    .bind(&account)
    .execute(&db)
    .await
    .expect("age the token");

    let _server = Server::start(dir.path(), &["--sweep-interval", "1"]);
    wait_for_count(&db, tokens, &account, 0).await;
}

#[tokio::test]
async fn put_log_events_is_refused_while_delivery_is_far_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let account = fresh_account();
    let server = Server::start(dir.path(), &["--pause-delivery"]);
    let kinesis = kinesis_client_with(&server.endpoint, &account);
    kinesis
        .create_stream()
        .stream_name("target")
        .shard_count(1)
        .send()
        .await
        .expect("stream");
    let logs = logs_client_with(&server.endpoint, &account, "x");
    for group in ["subscribed", "plain"] {
        logs.create_log_group()
            .log_group_name(group)
            .send()
            .await
            .expect("group");
        logs.create_log_stream()
            .log_group_name(group)
            .log_stream_name("s")
            .send()
            .await
            .expect("stream");
    }
    logs.put_subscription_filter()
        .log_group_name("subscribed")
        .filter_name("all")
        .filter_pattern("")
        .destination_arn(format!("arn:aws:kinesis:us-east-1:{account}:stream/target"))
        .role_arn(format!("arn:aws:iam::{account}:role/CWLtoKinesis"))
        .send()
        .await
        .expect("subscription filter");
    drop(server);

    // A hundred thousand deliveries waiting in the stream's queue, as after a long outage of
    // the delivery worker.
    let db = database(dir.path()).await;
    let queue = format!("kinesis:{account}:us-east-1:target");
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
         INSERT INTO log_entries (kind, account, region, log, sequence, at_millis, meta, data, first_time, last_time)
         SELECT 'pipeline/queue', '', '', ?1,
                (SELECT COALESCE(MAX(sequence), 0) FROM log_entries WHERE kind = 'pipeline/queue' AND log = ?1) + i,
                0, '{}', x'', 0, 0 FROM n",
    )
    .bind(&queue)
    .execute(&db)
    .await
    .expect("fill the queue");

    let server = Server::start(dir.path(), &["--pause-delivery"]);
    let logs = logs_client_with(&server.endpoint, &account, "x");
    let put = |group: &'static str| {
        logs.put_log_events()
            .log_group_name(group)
            .log_stream_name("s")
            .log_events(event(now_millis(), "hello"))
            .send()
    };
    let refused = put("subscribed").await.expect_err("no room to deliver");
    assert_eq!(refused.code(), Some("ServiceUnavailableException"));
    assert!(
        refused
            .message()
            .unwrap_or_default()
            .contains("deliveries are waiting"),
        "{:?}",
        refused.message()
    );
    put("plain").await.expect("nothing to deliver, so accepted");
    let stored = logs
        .get_log_events()
        .log_group_name("subscribed")
        .log_stream_name("s")
        .send()
        .await
        .expect("get");
    assert!(stored.events().is_empty(), "a refused batch is not stored");
}

#[tokio::test]
async fn kinesis_retention_follows_each_streams_own_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let account = fresh_account();
    let server = Server::start(dir.path(), &["--sweep-interval", "3600"]);
    let kinesis = kinesis_client_with(&server.endpoint, &account);
    kinesis
        .create_stream()
        .stream_name("s")
        .shard_count(1)
        .send()
        .await
        .expect("stream");
    kinesis
        .increase_stream_retention_period()
        .stream_name("s")
        .retention_period_hours(48)
        .send()
        .await
        .expect("increase");
    for data in ["one", "two"] {
        put_record(&kinesis, data).await;
    }
    drop(server);

    // A day and an hour pass: past AWS's default retention, within this stream's 48 hours.
    let db = database(dir.path()).await;
    sqlx::query(
        "UPDATE log_entries SET at_millis = at_millis - ?1, first_time = first_time - ?1,
         last_time = last_time - ?1 WHERE kind = 'kinesis/shard' AND account = ?2",
    )
    .bind(DAY + HOUR)
    .bind(&account)
    .execute(&db)
    .await
    .expect("age the records");

    let server = Server::start(dir.path(), &["--sweep-interval", "1"]);
    let kinesis = kinesis_client_with(&server.endpoint, &account);
    // Two sweeps' time: the records are still there, and still readable.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        count(&db, SHARD_RECORDS, &account).await,
        2,
        "kept 48 hours"
    );
    assert_eq!(read_all(&kinesis).await, ["one", "two"]);

    // Back to 24 hours: hidden at once, trimmed at the next sweep (the last one stays, hidden).
    kinesis
        .decrease_stream_retention_period()
        .stream_name("s")
        .retention_period_hours(24)
        .send()
        .await
        .expect("decrease");
    assert!(read_all(&kinesis).await.is_empty(), "hidden at once");
    wait_for_count(&db, SHARD_RECORDS, &account, 1).await;
}
