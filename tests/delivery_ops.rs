//! What an operator sees of delivery without the server log: per-target counters at
//! `/_sluice/metrics` and the deliveries given up on at `/_sluice/dead-letters`, with one
//! target's trouble confined to its own queue.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use base64::Engine as _;
use common::{
    delivered_messages, fresh_account, kinesis_client_with, logs_client_with, raw_request, Server,
};
use serde_json::Value;

fn now_millis() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() * 1000
}

async fn subscribe(
    logs: &aws_sdk_cloudwatchlogs::Client,
    kinesis: &aws_sdk_kinesis::Client,
    account: &str,
    name: &str,
) {
    kinesis
        .create_stream()
        .stream_name(name)
        .shard_count(1)
        .send()
        .await
        .expect("stream");
    logs.create_log_group()
        .log_group_name(name)
        .send()
        .await
        .expect("group");
    logs.create_log_stream()
        .log_group_name(name)
        .log_stream_name("s")
        .send()
        .await
        .expect("log stream");
    logs.put_subscription_filter()
        .log_group_name(name)
        .filter_name("all")
        .filter_pattern("")
        .destination_arn(format!("arn:aws:kinesis:us-east-1:{account}:stream/{name}"))
        .role_arn(format!("arn:aws:iam::{account}:role/CWLtoKinesis"))
        .send()
        .await
        .expect("subscription filter");
}

async fn put(logs: &aws_sdk_cloudwatchlogs::Client, group: &str, message: &str) {
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name("s")
        .log_events(
            InputLogEvent::builder()
                .timestamp(now_millis())
                .message(message)
                .build()
                .expect("event"),
        )
        .send()
        .await
        .expect("put events");
}

/// Waits (generously) until `check` holds.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, check: impl Fn() -> F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn metric(text: &str, name: &str, queue: &str) -> Option<f64> {
    common::metric(text, name, &format!("queue=\"{queue}\""))
}

fn get(server: &Server, path: &str) -> (u16, String) {
    let response = raw_request(server.port, "GET", path, &[], b"");
    (response.status, response.body)
}

#[tokio::test]
async fn counters_and_dead_letters_show_each_targets_deliveries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let account = fresh_account();
    let logs = logs_client_with(&server.endpoint, &account, "x");
    let kinesis = kinesis_client_with(&server.endpoint, &account);
    subscribe(&logs, &kinesis, &account, "kept").await;
    subscribe(&logs, &kinesis, &account, "removed").await;
    put(&logs, "removed", "before removal").await;
    eventually("delivery into 'removed'", || async {
        delivered_messages(&kinesis, "removed").await == ["before removal"]
    })
    .await;

    // The stream goes away; its queue's entries are dead-lettered, and the other target's
    // deliveries carry on.
    kinesis
        .delete_stream()
        .stream_name("removed")
        .send()
        .await
        .expect("delete stream");
    put(&logs, "removed", "after removal").await;
    put(&logs, "kept", "still delivered").await;
    eventually("delivery into 'kept'", || async {
        delivered_messages(&kinesis, "kept").await == ["still delivered"]
    })
    .await;
    let removed_queue = format!("kinesis:{account}:us-east-1:removed");
    let kept_queue = format!("kinesis:{account}:us-east-1:kept");
    // A record is readable a moment before its queue's cursor (and the counters) move.
    eventually("a dead letter, and the counters to catch up", || async {
        let (_, text) = get(&server, "/_sluice/metrics");
        metric(&text, "sluice_delivery_dead_lettered_total", &removed_queue) == Some(1.0)
            && metric(&text, "sluice_delivery_pending", &kept_queue) == Some(0.0)
    })
    .await;

    let (status, text) = get(&server, "/_sluice/metrics");
    assert_eq!(status, 200);
    // The control message and one data message each.
    for queue in [&removed_queue, &kept_queue] {
        assert_eq!(
            metric(&text, "sluice_delivery_delivered_total", queue),
            Some(2.0),
            "{text}"
        );
        assert_eq!(metric(&text, "sluice_delivery_pending", queue), Some(0.0));
    }
    assert_eq!(
        metric(&text, "sluice_delivery_dead_lettered_total", &kept_queue),
        None
    );
    assert!(
        text.contains("# TYPE sluice_delivery_delivered counter"),
        "{text}"
    );

    let (status, body) = get(&server, "/_sluice/dead-letters");
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).expect("json");
    let letters = page["deadLetters"].as_array().expect("list");
    assert_eq!(letters.len(), 1, "{page}");
    let letter = &letters[0];
    assert_eq!(
        letter["delivery"]["target"]["KinesisStream"]["stream"],
        "removed"
    );
    assert!(
        letter["reason"]
            .as_str()
            .expect("reason")
            .contains("target not found"),
        "{letter}"
    );
    let data = base64::engine::general_purpose::STANDARD
        .decode(letter["data"].as_str().expect("data"))
        .expect("base64");
    let envelope: Value = serde_json::from_slice(&data).expect("the envelope as accepted");
    assert_eq!(envelope["logEvents"][0]["message"], "after removal");
    assert_eq!(page["dropped"], 0);

    // Paging, and bad parameters.
    let sequence = letter["sequence"].as_i64().expect("sequence");
    let (_, body) = get(&server, &format!("/_sluice/dead-letters?after={sequence}"));
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json")["deadLetters"],
        serde_json::json!([])
    );
    for bad in ["limit=0", "limit=1001", "after=x", "color=red"] {
        let (status, body) = get(&server, &format!("/_sluice/dead-letters?{bad}"));
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // Dead letters are kept across a restart.
    drop(server);
    let server = Server::start(dir.path(), &[]);
    let (_, body) = get(&server, "/_sluice/dead-letters?limit=10");
    let page: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(page["deadLetters"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn the_backlog_is_counted_again_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let account = fresh_account();
    let server = Server::start(dir.path(), &["--pause-delivery"]);
    let logs = logs_client_with(&server.endpoint, &account, "x");
    let kinesis = kinesis_client_with(&server.endpoint, &account);
    subscribe(&logs, &kinesis, &account, "waiting").await;
    put(&logs, "waiting", "one").await;
    put(&logs, "waiting", "two").await;
    let queue = format!("kinesis:{account}:us-east-1:waiting");
    let (_, text) = get(&server, "/_sluice/metrics");
    // The control message and two data messages.
    assert_eq!(metric(&text, "sluice_delivery_pending", &queue), Some(3.0));
    server.kill();

    let server = Server::start(dir.path(), &[]);
    let kinesis = kinesis_client_with(&server.endpoint, &account);
    eventually("delivery after the restart", || async {
        delivered_messages(&kinesis, "waiting").await == ["one", "two"]
    })
    .await;
    // A record is readable a moment before its queue's cursor (and the counters) move.
    eventually("the counters to catch up", || async {
        let (_, text) = get(&server, "/_sluice/metrics");
        metric(&text, "sluice_delivery_pending", &queue) == Some(0.0)
            && metric(&text, "sluice_delivery_delivered_total", &queue) == Some(3.0)
    })
    .await;
}
