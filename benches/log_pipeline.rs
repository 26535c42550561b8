//! Throughput of the log data plane: PutLogEvents -> subscription filter -> outbox -> Kinesis,
//! measured end to end against a real server, beside the in-memory ceiling of the same work
//! (parse the batch, match the pattern, build and gzip the envelope).
//!
//! Run: `cargo bench --bench log_pipeline` (prints a markdown table; see BENCHMARKS.md).

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_kinesis::types::ShardIteratorType;
use sluice::services::logs::pattern::FilterPattern;

const BATCHES: usize = 40;
const EVENTS_PER_BATCH: usize = 1_000;
const PATTERN: &str = "{ $.level = \"ERROR\" }";

fn message(i: usize) -> String {
    let level = if i.is_multiple_of(2) { "ERROR" } else { "INFO" };
    format!(
        r#"{{"level":"{level}","request":"req-{i:08}","path":"/api/v1/orders","latency_ms":{}}}"#,
        i % 700
    )
}

fn batch_json(now: i64, batch: usize) -> Vec<u8> {
    let events: Vec<serde_json::Value> = (0..EVENTS_PER_BATCH)
        .map(|i| serde_json::json!({ "timestamp": now + i as i64, "message": message(batch * EVENTS_PER_BATCH + i) }))
        .collect();
    serde_json::json!({ "logGroupName": "bench", "logStreamName": "s", "logEvents": events })
        .to_string()
        .into_bytes()
}

/// The in-memory ceiling: the per-batch work without HTTP, SigV4 or storage.
fn ceiling(now: i64) -> f64 {
    let pattern = FilterPattern::parse(PATTERN).expect("pattern");
    let bodies: Vec<Vec<u8>> = (0..BATCHES).map(|b| batch_json(now, b)).collect();
    let started = Instant::now();
    let mut compressed = 0;
    for body in &bodies {
        let input: serde_json::Value = serde_json::from_slice(body).expect("json");
        let events = input["logEvents"].as_array().expect("events");
        let matching: Vec<serde_json::Value> = events
            .iter()
            .filter(|e| pattern.matches(e["message"].as_str().unwrap_or_default()))
            .enumerate()
            .map(|(i, e)| serde_json::json!({ "id": format!("{i:056}"), "timestamp": e["timestamp"], "message": e["message"] }))
            .collect();
        let envelope = serde_json::json!({
            "messageType": "DATA_MESSAGE", "owner": "111111111111", "logGroup": "bench", "logStream": "s",
            "subscriptionFilters": ["f"], "logEvents": matching,
        });
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(envelope.to_string().as_bytes())
            .expect("gzip");
        compressed += gzip.finish().expect("gzip").len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(compressed > 0);
    (BATCHES * EVENTS_PER_BATCH) as f64 / elapsed
}

async fn end_to_end(endpoint: &str, now: i64) -> f64 {
    let account = "123412341234";
    let credentials =
        aws_sdk_cloudwatchlogs::config::Credentials::new(account, "x", None, None, "bench");
    let logs = aws_sdk_cloudwatchlogs::Client::from_conf(
        aws_sdk_cloudwatchlogs::Config::builder()
            .behavior_version(aws_sdk_cloudwatchlogs::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudwatchlogs::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(credentials.clone())
            .build(),
    );
    let kinesis = aws_sdk_kinesis::Client::from_conf(
        aws_sdk_kinesis::Config::builder()
            .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
            .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(credentials)
            .build(),
    );
    kinesis
        .create_stream()
        .stream_name("bench")
        .shard_count(1)
        .send()
        .await
        .expect("stream");
    logs.create_log_group()
        .log_group_name("bench")
        .send()
        .await
        .expect("group");
    logs.create_log_stream()
        .log_group_name("bench")
        .log_stream_name("s")
        .send()
        .await
        .expect("stream");
    logs.put_subscription_filter()
        .log_group_name("bench")
        .filter_name("f")
        .filter_pattern(PATTERN)
        .destination_arn(format!("arn:aws:kinesis:us-east-1:{account}:stream/bench"))
        .role_arn(format!("arn:aws:iam::{account}:role/r"))
        .send()
        .await
        .expect("filter");
    let batches: Vec<Vec<InputLogEvent>> = (0..BATCHES)
        .map(|b| {
            (0..EVENTS_PER_BATCH)
                .map(|i| {
                    InputLogEvent::builder()
                        .timestamp(now + i as i64)
                        .message(message(b * EVENTS_PER_BATCH + i))
                        .build()
                        .expect("event")
                })
                .collect()
        })
        .collect();
    let mut iterator = kinesis
        .get_shard_iterator()
        .stream_name("bench")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::Latest)
        .send()
        .await
        .expect("iterator")
        .shard_iterator
        .expect("iterator");
    let started = Instant::now();
    for events in batches {
        logs.put_log_events()
            .log_group_name("bench")
            .log_stream_name("s")
            .set_log_events(Some(events))
            .send()
            .await
            .expect("put");
    }
    // Every batch has matching events, so one DATA_MESSAGE record arrives per batch (after the
    // control message, which the LATEST iterator may or may not see).
    let mut data_records = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while data_records < BATCHES {
        assert!(
            Instant::now() < deadline,
            "only {data_records} records arrived"
        );
        let page = kinesis
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await
            .expect("records");
        data_records += page
            .records()
            .iter()
            .filter(|r| r.data().as_ref().len() > 300)
            .count();
        iterator = page.next_shard_iterator().expect("next").to_owned();
        if page.records().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    (BATCHES * EVENTS_PER_BATCH) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let data = tempfile::tempdir().expect("tempdir");
    let mut server = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--exit-with-stdin",
            "--data-dir",
        ])
        .arg(data.path())
        .env("SLUICE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("line");
    let endpoint = line
        .trim()
        .trim_start_matches("sluice listening on ")
        .to_owned();

    let ceiling = ceiling(now);
    let end_to_end = end_to_end(&endpoint, now).await;
    drop(server.stdin.take());
    let _ = server.wait();
    println!("| measurement | events/s |");
    println!("|---|---|");
    println!(
        "| in-memory ceiling: parse batch, match pattern, build and gzip envelope | {ceiling:.0} |"
    );
    println!("| end to end: PutLogEvents (SigV4, SQLite, delivery queue) to records readable by GetRecords | {end_to_end:.0} |");
    println!(
        "| ratio end-to-end / ceiling | {:.2} |",
        end_to_end / ceiling
    );
    println!("({BATCHES} batches of {EVENTS_PER_BATCH} events, half matching `{PATTERN}`, one subscription filter)");
}
