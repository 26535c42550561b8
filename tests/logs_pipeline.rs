//! The CloudWatch Logs data plane through the real clients: log groups and streams, log
//! events, subscription filters, and delivery through a destination into Kinesis.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_kinesis::types::ShardIteratorType;
use common::{
    fresh_account, kinesis_client, kinesis_client_with, logs_client, logs_client_with, shared,
    Server,
};
use serde_json::Value;

fn now_millis() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() * 1000
}

fn event(timestamp: i64, message: &str) -> InputLogEvent {
    InputLogEvent::builder()
        .timestamp(timestamp)
        .message(message)
        .build()
        .expect("event")
}

fn code<T, E: ProvideErrorMetadata>(result: Result<T, E>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(err) => err.code().unwrap_or_default().to_owned(),
    }
}

/// Account B's stream and destination, granting `granted`.
async fn receiver(endpoint: &str, owner: &str, granted: &str) -> String {
    let kinesis = kinesis_client_with(endpoint, owner);
    kinesis
        .create_stream()
        .stream_name("central")
        .shard_count(1)
        .send()
        .await
        .expect("stream");
    let logs = logs_client_with(endpoint, owner, "x");
    let arn = logs
        .put_destination()
        .destination_name("central-logs")
        .target_arn(format!("arn:aws:kinesis:us-east-1:{owner}:stream/central"))
        .role_arn(format!("arn:aws:iam::{owner}:role/CWLtoKinesis"))
        .send()
        .await
        .expect("destination")
        .destination
        .and_then(|d| d.arn)
        .expect("arn");
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": granted}, "Action": "logs:PutSubscriptionFilter", "Resource": arn}]
    });
    logs.put_destination_policy()
        .destination_name("central-logs")
        .access_policy(policy.to_string())
        .send()
        .await
        .expect("policy");
    arn
}

/// Account A's group, stream and subscription to `destination`.
async fn sender(
    endpoint: &str,
    account: &str,
    destination: &str,
    pattern: &str,
) -> aws_sdk_cloudwatchlogs::Client {
    let logs = logs_client_with(endpoint, account, "x");
    logs.create_log_group()
        .log_group_name("/app/web")
        .send()
        .await
        .expect("group");
    logs.create_log_stream()
        .log_group_name("/app/web")
        .log_stream_name("i-1")
        .send()
        .await
        .expect("stream");
    logs.put_subscription_filter()
        .log_group_name("/app/web")
        .filter_name("to-central")
        .filter_pattern(pattern)
        .destination_arn(destination)
        .send()
        .await
        .expect("subscription filter");
    logs
}

/// Reads and gunzips every record of B's stream until `want` data messages have arrived.
async fn envelopes(client: &aws_sdk_kinesis::Client, want: usize) -> Vec<Value> {
    let mut iterator = client
        .get_shard_iterator()
        .stream_name("central")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("iterator")
        .shard_iterator
        .expect("iterator");
    let mut found = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while found
        .iter()
        .filter(|e: &&Value| e["messageType"] == "DATA_MESSAGE")
        .count()
        < want
    {
        assert!(
            Instant::now() < deadline,
            "records did not arrive: {found:?}"
        );
        let page = client
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await
            .expect("records");
        for record in page.records() {
            let mut text = String::new();
            flate2::read::GzDecoder::new(record.data().as_ref())
                .read_to_string(&mut text)
                .expect("gzip");
            found.push(serde_json::from_str(&text).expect("json"));
        }
        iterator = page.next_shard_iterator().expect("next").to_owned();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    found
}

#[tokio::test]
async fn two_accounts_deliver_matching_events_through_a_destination() {
    let (a, b, c) = (fresh_account(), fresh_account(), fresh_account());
    let endpoint = &shared().endpoint;
    let destination = receiver(endpoint, &b, &a).await;
    let logs = sender(endpoint, &a, &destination, "{ $.level = \"ERROR\" }").await;
    let now = now_millis();
    logs.put_log_events()
        .log_group_name("/app/web")
        .log_stream_name("i-1")
        .log_events(event(now, r#"{"level":"ERROR","msg":"disk full"}"#))
        .log_events(event(now + 1, r#"{"level":"INFO","msg":"ok"}"#))
        .log_events(event(now + 2, r#"{"level":"ERROR","msg":"retry failed"}"#))
        .send()
        .await
        .expect("put events");

    let received = envelopes(&kinesis_client(&b), 1).await;
    assert_eq!(received[0]["messageType"], "CONTROL_MESSAGE");
    assert_eq!(received[0]["owner"], "CloudwatchLogs");
    let data = received
        .iter()
        .find(|e| e["messageType"] == "DATA_MESSAGE")
        .expect("data message");
    assert_eq!(data["owner"], a.as_str());
    assert_eq!(data["logGroup"], "/app/web");
    assert_eq!(data["logStream"], "i-1");
    assert_eq!(
        data["subscriptionFilters"],
        serde_json::json!(["to-central"])
    );
    let events = data["logEvents"].as_array().expect("events");
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(
        messages,
        [
            r#"{"level":"ERROR","msg":"disk full"}"#,
            r#"{"level":"ERROR","msg":"retry failed"}"#
        ]
    );
    assert_eq!(events[0]["timestamp"], now);
    for e in events {
        let id = e["id"].as_str().expect("id");
        assert!(
            id.len() == 56 && id.bytes().all(|b| b.is_ascii_digit()),
            "{id}"
        );
    }

    // An account the policy does not name is refused.
    let stranger = logs_client(&c);
    stranger
        .create_log_group()
        .log_group_name("g")
        .send()
        .await
        .expect("group");
    let refused = stranger
        .put_subscription_filter()
        .log_group_name("g")
        .filter_name("f")
        .filter_pattern("")
        .destination_arn(&destination)
        .send()
        .await;
    let err = refused.expect_err("not granted");
    assert_eq!(err.code(), Some("AccessDeniedException"));
    assert_eq!(
        err.message(),
        Some(format!("User with accountId: {c} is not authorized to perform: logs:PutSubscriptionFilter on resource: {destination}").as_str())
    );
}

#[tokio::test]
async fn acknowledged_events_are_delivered_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (fresh_account(), fresh_account());
    // Delivery paused: accepted events can only be in the outbox when the server dies.
    let server = Server::start(dir.path(), &["--pause-delivery"]);
    let destination = receiver(&server.endpoint, &b, &a).await;
    let logs = sender(&server.endpoint, &a, &destination, "ERROR").await;
    let now = now_millis();
    let mut request = logs
        .put_log_events()
        .log_group_name("/app/web")
        .log_stream_name("i-1");
    for i in 0..50 {
        request = request.log_events(event(
            now + i,
            &format!("{} event {i}", if i % 2 == 0 { "ERROR" } else { "INFO" }),
        ));
    }
    request.send().await.expect("acknowledged");
    server.kill();

    let server = Server::start(dir.path(), &[]);
    let received = envelopes(&kinesis_client_with(&server.endpoint, &b), 1).await;
    let delivered: Vec<String> = received
        .iter()
        .filter(|e| e["messageType"] == "DATA_MESSAGE")
        .flat_map(|e| e["logEvents"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect();
    let expected: Vec<String> = (0..50)
        .step_by(2)
        .map(|i| format!("ERROR event {i}"))
        .collect();
    assert_eq!(delivered, expected);
}

#[tokio::test]
async fn log_groups_and_streams() {
    let client = logs_client(&fresh_account());
    client
        .create_log_group()
        .log_group_name("/b")
        .send()
        .await
        .expect("group");
    client
        .create_log_group()
        .log_group_name("/a/x")
        .tags("team", "core")
        .send()
        .await
        .expect("group");
    assert_eq!(
        code(client.create_log_group().log_group_name("/b").send().await),
        "ResourceAlreadyExistsException"
    );
    assert_eq!(
        code(
            client
                .create_log_group()
                .log_group_name("bad:name")
                .send()
                .await
        ),
        "InvalidParameterException"
    );
    let groups = client.describe_log_groups().send().await.expect("describe");
    let names: Vec<&str> = groups
        .log_groups()
        .iter()
        .filter_map(|g| g.log_group_name())
        .collect();
    assert_eq!(names, ["/a/x", "/b"]);
    let prefixed = client
        .describe_log_groups()
        .log_group_name_prefix("/a")
        .send()
        .await
        .expect("prefix");
    assert_eq!(prefixed.log_groups().len(), 1);
    let group = &prefixed.log_groups()[0];
    assert!(group
        .arn()
        .is_some_and(|arn| arn.ends_with(":log-group:/a/x:*")));
    assert!(group
        .log_group_arn()
        .is_some_and(|arn| arn.ends_with(":log-group:/a/x")));

    client
        .put_retention_policy()
        .log_group_name("/b")
        .retention_in_days(30)
        .send()
        .await
        .expect("retention");
    assert_eq!(
        code(
            client
                .put_retention_policy()
                .log_group_name("/b")
                .retention_in_days(31)
                .send()
                .await
        ),
        "InvalidParameterException"
    );
    let b = client
        .describe_log_groups()
        .log_group_name_prefix("/b")
        .send()
        .await
        .expect("describe");
    assert_eq!(b.log_groups()[0].retention_in_days(), Some(30));
    client
        .delete_retention_policy()
        .log_group_name("/b")
        .send()
        .await
        .expect("delete retention");

    for stream in ["s2", "s1", "t1"] {
        client
            .create_log_stream()
            .log_group_name("/b")
            .log_stream_name(stream)
            .send()
            .await
            .expect("stream");
    }
    assert_eq!(
        code(
            client
                .create_log_stream()
                .log_group_name("/b")
                .log_stream_name("s1")
                .send()
                .await
        ),
        "ResourceAlreadyExistsException"
    );
    assert_eq!(
        code(
            client
                .create_log_stream()
                .log_group_name("/none")
                .log_stream_name("s")
                .send()
                .await
        ),
        "ResourceNotFoundException"
    );
    let streams = client
        .describe_log_streams()
        .log_group_name("/b")
        .log_stream_name_prefix("s")
        .send()
        .await
        .expect("streams");
    let names: Vec<&str> = streams
        .log_streams()
        .iter()
        .filter_map(|s| s.log_stream_name())
        .collect();
    assert_eq!(names, ["s1", "s2"]);
    client
        .delete_log_stream()
        .log_group_name("/b")
        .log_stream_name("s1")
        .send()
        .await
        .expect("delete stream");
    assert_eq!(
        code(
            client
                .delete_log_stream()
                .log_group_name("/b")
                .log_stream_name("s1")
                .send()
                .await
        ),
        "ResourceNotFoundException"
    );
    client
        .delete_log_group()
        .log_group_name("/b")
        .send()
        .await
        .expect("delete group");
    assert_eq!(
        code(
            client
                .describe_log_streams()
                .log_group_name("/b")
                .send()
                .await
        ),
        "ResourceNotFoundException"
    );
    // A group made again under the same name starts empty.
    client
        .create_log_group()
        .log_group_name("/b")
        .send()
        .await
        .expect("group");
    assert!(client
        .describe_log_streams()
        .log_group_name("/b")
        .send()
        .await
        .expect("streams")
        .log_streams()
        .is_empty());
}

#[tokio::test]
async fn put_log_events_follows_aws_rules() {
    let client = logs_client(&fresh_account());
    client
        .create_log_group()
        .log_group_name("g")
        .send()
        .await
        .expect("group");
    client
        .create_log_stream()
        .log_group_name("g")
        .log_stream_name("s")
        .send()
        .await
        .expect("stream");
    let put = |events: Vec<InputLogEvent>| {
        client
            .put_log_events()
            .log_group_name("g")
            .log_stream_name("s")
            .set_log_events(Some(events))
            .send()
    };
    let now = now_millis();

    let err = put(vec![event(now, "b"), event(now - 1, "a")])
        .await
        .expect_err("order");
    assert_eq!(err.code(), Some("InvalidParameterException"));
    assert_eq!(
        err.message(),
        Some("Log events in a single PutLogEvents request must be in chronological order.")
    );
    assert_eq!(
        code(put(vec![event(now - 25 * 3_600_000, "a"), event(now, "b")]).await),
        "InvalidParameterException"
    );
    let big = "x".repeat(262_144 - 26);
    let too_large: Vec<InputLogEvent> = (0..5).map(|i| event(now + i, &big)).collect();
    assert_eq!(code(put(too_large).await), "InvalidParameterException");
    assert_eq!(
        code(
            client
                .put_log_events()
                .log_group_name("g")
                .log_stream_name("nope")
                .log_events(event(now, "x"))
                .send()
                .await
        ),
        "ResourceNotFoundException"
    );

    let (hour, day) = (3_600_000, 86_400_000);
    let result = put(vec![
        event(now - 14 * day - 2 * hour, "too old 0"),
        event(now - 14 * day - hour, "too old 1"),
        event(now - 14 * day + hour, "kept 2"),
        event(now - 14 * day + 2 * hour, "kept 3"),
    ])
    .await
    .expect("partly accepted");
    let rejected = result.rejected_log_events_info().expect("rejected info");
    assert_eq!(rejected.too_old_log_event_end_index(), Some(1));
    assert_eq!(rejected.too_new_log_event_start_index(), None);
    assert!(result.next_sequence_token().is_some_and(|t| !t.is_empty()));
    let result = put(vec![
        event(now, "kept 4"),
        event(now + 3 * 3_600_000, "too new 1"),
    ])
    .await
    .expect("partly accepted");
    assert_eq!(
        result
            .rejected_log_events_info()
            .and_then(|r| r.too_new_log_event_start_index()),
        Some(1)
    );

    client
        .put_retention_policy()
        .log_group_name("g")
        .retention_in_days(1)
        .send()
        .await
        .expect("retention");
    let result = put(vec![
        event(now - day - 30 * 60_000, "expired 0"),
        event(now - 40 * 60_000, "kept 5"),
    ])
    .await
    .expect("partly accepted");
    assert_eq!(
        result
            .rejected_log_events_info()
            .and_then(|r| r.expired_log_event_end_index()),
        Some(0)
    );

    let all = client
        .get_log_events()
        .log_group_name("g")
        .log_stream_name("s")
        .start_from_head(true)
        .send()
        .await
        .expect("get");
    let messages: Vec<&str> = all.events().iter().filter_map(|e| e.message()).collect();
    assert_eq!(
        messages,
        ["kept 2", "kept 3", "kept 5", "kept 4"],
        "in timestamp order"
    );

    // Forward and backward paging, two at a time.
    let first = client
        .get_log_events()
        .log_group_name("g")
        .log_stream_name("s")
        .start_from_head(true)
        .limit(2)
        .send()
        .await
        .expect("page");
    assert_eq!(
        first
            .events()
            .iter()
            .filter_map(|e| e.message())
            .collect::<Vec<_>>(),
        ["kept 2", "kept 3"]
    );
    let second = client
        .get_log_events()
        .log_group_name("g")
        .log_stream_name("s")
        .limit(2)
        .next_token(first.next_forward_token().expect("f"))
        .send()
        .await
        .expect("page");
    assert_eq!(
        second
            .events()
            .iter()
            .filter_map(|e| e.message())
            .collect::<Vec<_>>(),
        ["kept 5", "kept 4"]
    );
    let end = client
        .get_log_events()
        .log_group_name("g")
        .log_stream_name("s")
        .limit(2)
        .next_token(second.next_forward_token().expect("f"))
        .send()
        .await
        .expect("end");
    assert!(end.events().is_empty());
    assert_eq!(
        end.next_forward_token(),
        second.next_forward_token(),
        "the forward token repeats at the end"
    );
    let back = client
        .get_log_events()
        .log_group_name("g")
        .log_stream_name("s")
        .limit(2)
        .next_token(second.next_backward_token().expect("b"))
        .send()
        .await
        .expect("back");
    assert_eq!(
        back.events()
            .iter()
            .filter_map(|e| e.message())
            .collect::<Vec<_>>(),
        ["kept 2", "kept 3"]
    );
    let latest = client
        .get_log_events()
        .log_group_name("g")
        .log_stream_name("s")
        .limit(1)
        .send()
        .await
        .expect("latest");
    assert_eq!(latest.events()[0].message(), Some("kept 4"));

    let filtered = client
        .filter_log_events()
        .log_group_name("g")
        .filter_pattern("?\"kept 3\" ?\"kept 5\"")
        .send()
        .await
        .expect("filter");
    assert_eq!(
        filtered
            .events()
            .iter()
            .filter_map(|e| e.message())
            .collect::<Vec<_>>(),
        ["kept 3", "kept 5"]
    );
    assert_eq!(
        code(
            client
                .filter_log_events()
                .log_group_name("g")
                .filter_pattern("{ $.a = ")
                .send()
                .await
        ),
        "InvalidParameterException"
    );
}

#[tokio::test]
async fn subscription_filters_are_validated_limited_and_updated_in_place() {
    let account = fresh_account();
    let client = logs_client(&account);
    kinesis_client(&account)
        .create_stream()
        .stream_name("own")
        .shard_count(1)
        .send()
        .await
        .expect("stream");
    client
        .create_log_group()
        .log_group_name("g")
        .send()
        .await
        .expect("group");
    let stream_arn = format!("arn:aws:kinesis:us-east-1:{account}:stream/own");
    let role = format!("arn:aws:iam::{account}:role/r");
    let put = |name: &str, pattern: &str, target: &str| {
        client
            .put_subscription_filter()
            .log_group_name("g")
            .filter_name(name)
            .filter_pattern(pattern)
            .destination_arn(target)
            .role_arn(&role)
            .send()
    };
    put("one", "ERROR", &stream_arn).await.expect("first");
    put("two", "", &stream_arn).await.expect("second");
    assert_eq!(
        code(put("three", "", &stream_arn).await),
        "LimitExceededException"
    );
    put("one", "WARN", &stream_arn)
        .await
        .expect("update in place");
    let described = client
        .describe_subscription_filters()
        .log_group_name("g")
        .send()
        .await
        .expect("describe");
    let filters = described.subscription_filters();
    assert_eq!(filters.len(), 2);
    assert_eq!(
        (filters[0].filter_name(), filters[0].filter_pattern()),
        (Some("one"), Some("WARN"))
    );
    assert_eq!(
        filters[0].distribution().map(|d| d.as_str()),
        Some("ByLogStream")
    );

    assert_eq!(
        code(put("bad", "{ $.x = ", &stream_arn).await),
        "InvalidParameterException"
    );
    let missing = format!("arn:aws:kinesis:us-east-1:{account}:stream/missing");
    assert_eq!(
        code(put("one", "", &missing).await),
        "InvalidParameterException"
    );
    let firehose = format!("arn:aws:firehose:us-east-1:{account}:deliverystream/f");
    assert_eq!(
        code(put("one", "", &firehose).await),
        "InvalidParameterException"
    );
    let nowhere = format!(
        "arn:aws:logs:us-east-1:{}:destination:none",
        fresh_account()
    );
    assert_eq!(
        code(put("one", "", &nowhere).await),
        "ResourceNotFoundException"
    );

    client
        .delete_subscription_filter()
        .log_group_name("g")
        .filter_name("two")
        .send()
        .await
        .expect("delete");
    assert_eq!(
        code(
            client
                .delete_subscription_filter()
                .log_group_name("g")
                .filter_name("two")
                .send()
                .await
        ),
        "ResourceNotFoundException"
    );
    put("three", "", &stream_arn).await.expect("room again");
}

/// Every message delivered so far into `owner`'s stream "central", reading until `marker`
/// has arrived (the outbox is delivered in order, so whatever was queued before the marker
/// has been handled by then).
async fn messages_until(client: &aws_sdk_kinesis::Client, marker: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut received: Vec<Value> = Vec::new();
        let mut iterator = client
            .get_shard_iterator()
            .stream_name("central")
            .shard_id("shardId-000000000000")
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("iterator")
            .shard_iterator
            .expect("iterator");
        loop {
            let page = client
                .get_records()
                .shard_iterator(&iterator)
                .send()
                .await
                .expect("records");
            if page.records().is_empty() {
                break;
            }
            for record in page.records() {
                let mut text = String::new();
                flate2::read::GzDecoder::new(record.data().as_ref())
                    .read_to_string(&mut text)
                    .expect("gzip");
                received.push(serde_json::from_str(&text).expect("json"));
            }
            iterator = page.next_shard_iterator().expect("next").to_owned();
        }
        let messages: Vec<String> = received
            .iter()
            .filter(|e| e["messageType"] == "DATA_MESSAGE")
            .flat_map(|e| e["logEvents"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["message"].as_str().map(str::to_owned))
            .collect();
        if messages.iter().any(|m| m == marker) {
            return messages;
        }
        assert!(
            Instant::now() < deadline,
            "{marker} did not arrive: {messages:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn put_message(logs: &aws_sdk_cloudwatchlogs::Client, group: &str, message: &str) {
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name("i-1")
        .log_events(event(now_millis(), message))
        .send()
        .await
        .expect("put events");
}

#[tokio::test]
async fn another_accounts_stream_is_written_only_through_its_resource_policy() {
    let (a, b) = (fresh_account(), fresh_account());
    let endpoint = &shared().endpoint;
    let a_kinesis = kinesis_client(&a);
    a_kinesis
        .create_stream()
        .stream_name("central")
        .shard_count(1)
        .send()
        .await
        .expect("stream");
    let a_stream = format!("arn:aws:kinesis:us-east-1:{a}:stream/central");
    let b_role = format!("arn:aws:iam::{b}:role/CWLtoKinesis");

    // A's own group delivers into A's stream: its events are the markers that show the
    // pipeline has handled everything queued before them.
    let a_logs = logs_client(&a);
    a_logs
        .create_log_group()
        .log_group_name("own")
        .send()
        .await
        .expect("group");
    a_logs
        .create_log_stream()
        .log_group_name("own")
        .log_stream_name("i-1")
        .send()
        .await
        .expect("stream");
    a_logs
        .put_subscription_filter()
        .log_group_name("own")
        .filter_name("own")
        .filter_pattern("")
        .destination_arn(&a_stream)
        .role_arn(format!("arn:aws:iam::{a}:role/CWLtoKinesis"))
        .send()
        .await
        .expect("same-account filter");

    // The issue's reproduction: B points a destination of its own at A's stream.
    let b_logs = logs_client_with(endpoint, &b, "x");
    let put_destination = || {
        b_logs
            .put_destination()
            .destination_name("into-a")
            .target_arn(&a_stream)
            .role_arn(&b_role)
            .send()
    };
    let err = put_destination().await.expect_err("A has not allowed B");
    assert_eq!(err.code(), Some("InvalidParameterException"));
    assert_eq!(
        err.message(),
        Some("Could not deliver test message to specified Kinesis stream. Check if the given kinesis stream is in ACTIVE state.")
    );
    let missing = b_logs
        .put_destination()
        .destination_name("into-a")
        .target_arn(format!("arn:aws:kinesis:us-east-1:{a}:stream/missing"))
        .role_arn(&b_role)
        .send()
        .await;
    assert_eq!(code(missing), "InvalidParameterException");
    assert!(b_logs
        .describe_destinations()
        .send()
        .await
        .expect("describe")
        .destinations()
        .is_empty());
    // Nor may B subscribe its group to A's stream directly.
    b_logs
        .create_log_group()
        .log_group_name("/b/app")
        .send()
        .await
        .expect("group");
    b_logs
        .create_log_stream()
        .log_group_name("/b/app")
        .log_stream_name("i-1")
        .send()
        .await
        .expect("stream");
    let direct = b_logs
        .put_subscription_filter()
        .log_group_name("/b/app")
        .filter_name("direct")
        .filter_pattern("")
        .destination_arn(&a_stream)
        .role_arn(&b_role)
        .send()
        .await;
    assert_eq!(code(direct), "InvalidParameterException");

    // A grants a different role, or only reading: still refused.
    for (principal, action) in [
        (format!("arn:aws:iam::{b}:role/Other"), "kinesis:PutRecord"),
        (b.clone(), "kinesis:GetRecords"),
    ] {
        let policy = serde_json::json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": action, "Resource": a_stream}]});
        a_kinesis
            .put_resource_policy()
            .resource_arn(&a_stream)
            .policy(policy.to_string())
            .send()
            .await
            .expect("policy");
        assert_eq!(code(put_destination().await), "InvalidParameterException");
    }

    // A grants B's role: B's destination delivers B's events into A's stream.
    let grant = serde_json::json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": b_role}, "Action": "kinesis:PutRecord", "Resource": a_stream}]});
    a_kinesis
        .put_resource_policy()
        .resource_arn(&a_stream)
        .policy(grant.to_string())
        .send()
        .await
        .expect("grant");
    let destination = put_destination()
        .await
        .expect("granted")
        .destination
        .and_then(|d| d.arn)
        .expect("arn");
    b_logs
        .put_subscription_filter()
        .log_group_name("/b/app")
        .filter_name("to-a")
        .filter_pattern("")
        .destination_arn(&destination)
        .send()
        .await
        .expect("filter on B's own destination");
    put_message(&b_logs, "/b/app", "from B while granted").await;
    put_message(&a_logs, "own", "marker 1").await;
    let delivered = messages_until(&a_kinesis, "marker 1").await;
    assert!(
        delivered.iter().any(|m| m == "from B while granted"),
        "{delivered:?}"
    );

    // A withdraws the grant: B's next events are refused at delivery, never written.
    a_kinesis
        .delete_resource_policy()
        .resource_arn(&a_stream)
        .send()
        .await
        .expect("revoke");
    put_message(&b_logs, "/b/app", "from B after revocation").await;
    put_message(&a_logs, "own", "marker 2").await;
    let delivered = messages_until(&a_kinesis, "marker 2").await;
    assert!(
        !delivered.iter().any(|m| m == "from B after revocation"),
        "{delivered:?}"
    );
    // And B cannot subscribe anew through that destination.
    let err = b_logs
        .put_subscription_filter()
        .log_group_name("/b/app")
        .filter_name("to-a")
        .filter_pattern("ERROR")
        .destination_arn(&destination)
        .send()
        .await
        .expect_err("the grant is gone");
    assert_eq!(err.code(), Some("InvalidParameterException"));
    assert_eq!(
        err.message(),
        Some("Could not deliver test message to specified destination. Check if the destination is valid.")
    );
    assert_eq!(delivered, ["from B while granted", "marker 1", "marker 2"]);
}

#[tokio::test]
async fn a_destination_takes_no_role_from_the_subscriber_and_a_stream_needs_one() {
    let (a, b) = (fresh_account(), fresh_account());
    let endpoint = &shared().endpoint;
    let destination = receiver(endpoint, &b, &a).await;
    let logs = logs_client_with(endpoint, &a, "x");
    logs.create_log_group()
        .log_group_name("g")
        .send()
        .await
        .expect("group");
    let err = logs
        .put_subscription_filter()
        .log_group_name("g")
        .filter_name("f")
        .filter_pattern("")
        .destination_arn(&destination)
        .role_arn(format!("arn:aws:iam::{a}:role/CWLtoKinesis"))
        .send()
        .await
        .expect_err("a destination writes with its own role");
    assert_eq!(err.code(), Some("InvalidParameterException"));
    assert_eq!(
        err.message(),
        Some("destinationArn for vendor logs cannot be used with roleArn")
    );
    assert!(logs
        .describe_subscription_filters()
        .log_group_name("g")
        .send()
        .await
        .expect("describe")
        .subscription_filters()
        .is_empty());

    kinesis_client_with(endpoint, &a)
        .create_stream()
        .stream_name("own")
        .shard_count(1)
        .send()
        .await
        .expect("stream");
    let err = logs
        .put_subscription_filter()
        .log_group_name("g")
        .filter_name("f")
        .filter_pattern("")
        .destination_arn(format!("arn:aws:kinesis:us-east-1:{a}:stream/own"))
        .send()
        .await
        .expect_err("a stream of one's own needs a role");
    assert_eq!(err.code(), Some("InvalidParameterException"));
    assert_eq!(
        err.message(),
        Some("destinationArn for vendor kinesis cannot be used without roleArn")
    );
}

#[tokio::test]
async fn a_destination_delivers_into_a_stream_of_another_region() {
    let (a, b) = (fresh_account(), fresh_account());
    let endpoint = &shared().endpoint;
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new("eu-west-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            &b,
            "secret",
            None,
            None,
            "sluice-tests",
        ))
        .build();
    let b_kinesis_eu = aws_sdk_kinesis::Client::from_conf(config);
    b_kinesis_eu
        .create_stream()
        .stream_name("central")
        .shard_count(1)
        .send()
        .await
        .expect("stream in eu-west-1");
    let b_logs = logs_client_with(endpoint, &b, "x");
    let destination = b_logs
        .put_destination()
        .destination_name("to-europe")
        .target_arn(format!("arn:aws:kinesis:eu-west-1:{b}:stream/central"))
        .role_arn(format!("arn:aws:iam::{b}:role/CWLtoKinesis"))
        .send()
        .await
        .expect("a target in another region is allowed")
        .destination
        .and_then(|d| d.arn)
        .expect("arn");
    assert!(destination.starts_with("arn:aws:logs:us-east-1:"));
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": a},
            "Action": "logs:PutSubscriptionFilter",
            "Resource": destination,
        }],
    });
    b_logs
        .put_destination_policy()
        .destination_name("to-europe")
        .access_policy(policy.to_string())
        .send()
        .await
        .expect("policy");
    let logs = sender(endpoint, &a, &destination, "").await;
    logs.put_log_events()
        .log_group_name("/app/web")
        .log_stream_name("i-1")
        .log_events(event(now_millis(), "bonjour"))
        .send()
        .await
        .expect("put events");
    let received = envelopes(&b_kinesis_eu, 1).await;
    let data = received
        .iter()
        .find(|e| e["messageType"] == "DATA_MESSAGE")
        .expect("data message");
    assert_eq!(data["logEvents"][0]["message"], "bonjour");
    // Nothing went to a stream of that name in the destination's own region.
    let err = kinesis_client_with(endpoint, &b)
        .describe_stream_summary()
        .stream_name("central")
        .send()
        .await
        .expect_err("no stream in us-east-1");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
}

#[tokio::test]
async fn log_group_tags_are_shared_by_the_old_and_new_calls() {
    let account = fresh_account();
    let client = logs_client(&account);
    client
        .create_log_group()
        .log_group_name("/tagged")
        .tags("team", "core")
        .send()
        .await
        .expect("group");
    let arn = format!("arn:aws:logs:us-east-1:{account}:log-group:/tagged");
    #[allow(deprecated)]
    let list_old = || async {
        client
            .list_tags_log_group()
            .log_group_name("/tagged")
            .send()
            .await
            .expect("list tags")
            .tags
            .unwrap_or_default()
    };
    let list_new = || async {
        client
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .expect("list tags for resource")
            .tags
            .unwrap_or_default()
    };
    assert_eq!(
        list_old().await.get("team").map(String::as_str),
        Some("core")
    );
    #[allow(deprecated)]
    client
        .tag_log_group()
        .log_group_name("/tagged")
        .tags("env", "prod")
        .send()
        .await
        .expect("tag log group");
    client
        .tag_resource()
        .resource_arn(&arn)
        .tags("owner", "ops")
        .send()
        .await
        .expect("tag resource");
    let both = list_new().await;
    assert_eq!(both.len(), 3, "{both:?}");
    assert_eq!(list_old().await, both);
    #[allow(deprecated)]
    client
        .untag_log_group()
        .log_group_name("/tagged")
        .tags("team")
        .tags("absent")
        .send()
        .await
        .expect("untag log group");
    client
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("owner")
        .send()
        .await
        .expect("untag resource");
    assert_eq!(
        list_new().await.into_iter().collect::<Vec<_>>(),
        [("env".to_owned(), "prod".to_owned())]
    );

    // AWS's limits and errors.
    #[allow(deprecated)]
    let err = client
        .tag_log_group()
        .log_group_name("/missing")
        .tags("a", "b")
        .send()
        .await
        .expect_err("missing group");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    assert_eq!(
        err.message(),
        Some("The specified log group does not exist.")
    );
    #[allow(deprecated)]
    let err = client
        .list_tags_log_group()
        .log_group_name("/missing")
        .send()
        .await
        .expect_err("missing group");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    #[allow(deprecated)]
    let mut many = client.tag_log_group().log_group_name("/tagged");
    for index in 0..50 {
        many = many.tags(format!("k{index}"), "v");
    }
    let err = many.send().await.expect_err("51 tags");
    assert_eq!(err.code(), Some("InvalidParameterException"));
    assert_eq!(list_new().await.len(), 1, "nothing applied");
    #[allow(deprecated)]
    let err = client
        .tag_log_group()
        .log_group_name("/tagged")
        .tags("aws:reserved", "v")
        .send()
        .await
        .expect_err("reserved prefix");
    assert_eq!(err.code(), Some("InvalidParameterException"));
}

#[tokio::test]
async fn account_resource_policies_are_kept_validated_limited_and_paged() {
    let account = fresh_account();
    let client = logs_client(&account);
    let document = |service: &str| {
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": [service]},
                "Action": "logs:PutLogEvents",
                "Resource": format!("arn:aws:logs:us-east-1:{account}:log-group:*"),
            }],
        })
        .to_string()
    };
    let put = |name: String, document: String| {
        client
            .put_resource_policy()
            .policy_name(name)
            .policy_document(document)
            .send()
    };
    let created = put("p0".into(), document("route53.amazonaws.com"))
        .await
        .expect("put")
        .resource_policy
        .expect("policy");
    assert_eq!(created.policy_name(), Some("p0"));
    assert_eq!(created.policy_scope().map(|s| s.as_str()), Some("ACCOUNT"));
    assert_eq!(
        created.policy_document(),
        Some(document("route53.amazonaws.com").as_str())
    );
    assert!(created.last_updated_time().is_some());
    // The same name replaces the document.
    put("p0".into(), document("events.amazonaws.com"))
        .await
        .expect("replace");
    for index in 1..10 {
        put(format!("p{index}"), document("route53.amazonaws.com"))
            .await
            .expect("within the quota");
    }
    let err = put("p10".into(), document("route53.amazonaws.com"))
        .await
        .expect_err("eleventh");
    assert_eq!(err.code(), Some("LimitExceededException"));
    assert_eq!(err.message(), Some("Resource limit exceeded."));
    let err = put("bad".into(), "{not json".into())
        .await
        .expect_err("not a policy");
    assert_eq!(err.code(), Some("InvalidParameterException"));

    let first = client
        .describe_resource_policies()
        .limit(4)
        .send()
        .await
        .expect("describe");
    let mut names: Vec<String> = first
        .resource_policies()
        .iter()
        .filter_map(|p| p.policy_name().map(str::to_owned))
        .collect();
    assert_eq!(names, ["p0", "p1", "p2", "p3"]);
    assert_eq!(
        first.resource_policies()[0].policy_document(),
        Some(document("events.amazonaws.com").as_str())
    );
    let mut token = first.next_token().map(str::to_owned);
    while let Some(next) = token {
        let page = client
            .describe_resource_policies()
            .limit(4)
            .next_token(next)
            .send()
            .await
            .expect("page");
        names.extend(
            page.resource_policies()
                .iter()
                .filter_map(|p| p.policy_name().map(str::to_owned)),
        );
        token = page.next_token().map(str::to_owned);
    }
    assert_eq!(names.len(), 10);
    let err = client
        .describe_resource_policies()
        .next_token("forged")
        .send()
        .await
        .expect_err("bad token");
    assert_eq!(err.message(), Some("The specified nextToken is invalid."));
    // Another account sees none of them.
    assert!(logs_client(&fresh_account())
        .describe_resource_policies()
        .send()
        .await
        .expect("describe")
        .resource_policies()
        .is_empty());

    client
        .delete_resource_policy()
        .policy_name("p0")
        .send()
        .await
        .expect("delete");
    let err = client
        .delete_resource_policy()
        .policy_name("p0")
        .send()
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    assert_eq!(err.message(), Some("Policy with name [p0] does not exist."));
    put("p10".into(), document("route53.amazonaws.com"))
        .await
        .expect("room again after a delete");
}

#[tokio::test]
async fn bad_next_tokens_get_aws_exact_answer() {
    let account = fresh_account();
    let client = logs_client(&account);
    client
        .create_log_group()
        .log_group_name("g")
        .send()
        .await
        .expect("group");
    client
        .create_log_stream()
        .log_group_name("g")
        .log_stream_name("s")
        .send()
        .await
        .expect("stream");
    let forward = client
        .get_log_events()
        .log_group_name("g")
        .log_stream_name("s")
        .send()
        .await
        .expect("read")
        .next_forward_token
        .expect("forward token");
    let check = |err: &dyn ProvideErrorMetadata, what: &str| {
        assert_eq!(err.code(), Some("InvalidParameterException"), "{what}");
        assert_eq!(
            err.message(),
            Some("The specified nextToken is invalid."),
            "{what}"
        );
    };
    for token in ["garbage", "fx/1/2", "f/1/2/3", "b/x/2"] {
        let err = client
            .get_log_events()
            .log_group_name("g")
            .log_stream_name("s")
            .next_token(token)
            .send()
            .await
            .expect_err("bad token");
        check(&err, token);
    }
    // GetLogEvents' own token means nothing to FilterLogEvents.
    for token in ["garbage", forward.as_str()] {
        let err = client
            .filter_log_events()
            .log_group_name("g")
            .next_token(token)
            .send()
            .await
            .expect_err("bad token");
        check(&err, token);
    }
    let err = client
        .describe_log_groups()
        .next_token("garbage")
        .send()
        .await
        .expect_err("bad token");
    check(&err, "DescribeLogGroups");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_put_log_events_to_one_stream_are_all_accepted() {
    let client = logs_client(&fresh_account());
    client
        .create_log_group()
        .log_group_name("hot")
        .send()
        .await
        .expect("group");
    client
        .create_log_stream()
        .log_group_name("hot")
        .log_stream_name("s")
        .send()
        .await
        .expect("stream");
    // Sequence tokens are ignored since 2023: concurrent puts to one stream all succeed, none
    // is refused for losing a race to another.
    let now = now_millis();
    let mut tasks = Vec::new();
    for n in 0..48 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .put_log_events()
                .log_group_name("hot")
                .log_stream_name("s")
                .log_events(event(now, &format!("put {n}")))
                .send()
                .await
        }));
    }
    for task in tasks {
        task.await
            .expect("task")
            .expect("every concurrent put is accepted");
    }
    let mut messages = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .get_log_events()
            .log_group_name("hot")
            .log_stream_name("s")
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("get");
        if page.events().is_empty() {
            break;
        }
        messages.extend(
            page.events()
                .iter()
                .filter_map(|e| e.message().map(str::to_owned)),
        );
        token = page.next_forward_token().map(str::to_owned);
    }
    messages.sort();
    let mut expected: Vec<String> = (0..48).map(|n| format!("put {n}")).collect();
    expected.sort();
    assert_eq!(messages, expected);
}
