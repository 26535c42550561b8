//! The black-box harness: a real `sluice serve` process on an ephemeral port, and AWS SDK
//! clients pointed at it.
//!
//! One server per test binary is shared by its tests; tests stay independent by each using an
//! account of its own (the 12-digit access key is the account in emulator mode).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use aws_sdk_cloudwatchlogs::config::{BehaviorVersion, Credentials, Region};

/// A running server process. Dropping it (or the test binary exiting) closes its stdin, which
/// stops it; `kill` stops it the hard way.
pub struct Server {
    pub child: Child,
    pub endpoint: String,
    pub port: u16,
    stdin: Option<ChildStdin>,
}

impl Server {
    /// Starts `sluice serve` on 127.0.0.1:0 with the given data dir and extra arguments, and
    /// waits for its "listening" line.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--exit-with-stdin",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra_args)
            .env_remove("SLUICE_LISTEN")
            .env_remove("SLUICE_DATA_DIR")
            .env("SLUICE_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sluice");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read listening line");
        let endpoint = line
            .trim()
            .strip_prefix("sluice listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        let port = endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        let stdin = child.stdin.take();
        Server {
            child,
            endpoint,
            port,
            stdin,
        }
    }

    /// Sends SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// The server shared by the tests of one test binary, with its data in a temporary directory.
pub fn shared() -> &'static Server {
    static SERVER: OnceLock<(Server, PathBuf)> = OnceLock::new();
    &SERVER
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("sluice-test-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            (Server::start(&dir, &[]), dir)
        })
        .0
}

/// A fresh 12-digit account id, unique within this test binary and across binaries running
/// at the same time.
pub fn fresh_account() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{:06}{:06}", std::process::id() % 1_000_000, n)
}

/// A CloudWatch Logs client for `account` (its access key) with a given secret.
pub fn logs_client_with(
    endpoint: &str,
    access_key: &str,
    secret: &str,
) -> aws_sdk_cloudwatchlogs::Client {
    let config = aws_sdk_cloudwatchlogs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            access_key,
            secret,
            None,
            None,
            "sluice-tests",
        ))
        .retry_config(aws_sdk_cloudwatchlogs::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_cloudwatchlogs::Client::from_conf(config)
}

/// A CloudWatch Logs client for `account` on the shared server.
pub fn logs_client(account: &str) -> aws_sdk_cloudwatchlogs::Client {
    logs_client_with(&shared().endpoint, account, "any-secret")
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }
}

/// A syntactically valid SigV4 Authorization header for emulator mode, where signatures are
/// not verified; used to send input that real clients refuse to build.
pub fn fake_authorization(account: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={account}/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
        "0".repeat(64)
    )
}

/// Sends one HTTP/1.1 request with exactly the given headers and body.
pub fn raw_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(body).expect("write body");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    RawResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A JSON 1.1 call with a raw body, signed well enough for emulator mode.
pub fn raw_json_call(port: u16, target: &str, content_type: &str, body: &str) -> RawResponse {
    let authorization = fake_authorization("111111111111", "logs");
    raw_request(
        port,
        "POST",
        "/",
        &[
            ("X-Amz-Target", target),
            ("Content-Type", content_type),
            ("X-Amz-Date", "20260101T000000Z"),
            ("Authorization", &authorization),
        ],
        body.as_bytes(),
    )
}

/// A Kinesis client for `access_key` against `endpoint`.
pub fn kinesis_client_with(endpoint: &str, access_key: &str) -> aws_sdk_kinesis::Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            access_key,
            "secret",
            None,
            None,
            "sluice-tests",
        ))
        .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

/// A Kinesis client for `account` on the shared server.
pub fn kinesis_client(account: &str) -> aws_sdk_kinesis::Client {
    kinesis_client_with(&shared().endpoint, account)
}

/// An AppFabric client for `access_key` against `endpoint`.
pub fn appfabric_client_with(endpoint: &str, access_key: &str) -> aws_sdk_appfabric::Client {
    let config = aws_sdk_appfabric::Config::builder()
        .behavior_version(aws_sdk_appfabric::config::BehaviorVersion::latest())
        .region(aws_sdk_appfabric::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_appfabric::config::Credentials::new(
            access_key,
            "secret",
            None,
            None,
            "sluice-tests",
        ))
        .retry_config(aws_sdk_appfabric::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_appfabric::Client::from_conf(config)
}

/// An AppFabric client for `account` on the shared server.
pub fn appfabric_client(account: &str) -> aws_sdk_appfabric::Client {
    appfabric_client_with(&shared().endpoint, account)
}

/// An advanced event selector for the events of `category` (`ActivityAuditLog` for stores
/// that channels feed).
pub fn event_category_selector(category: &str) -> aws_sdk_cloudtrail::types::AdvancedEventSelector {
    aws_sdk_cloudtrail::types::AdvancedEventSelector::builder()
        .field_selectors(
            aws_sdk_cloudtrail::types::AdvancedFieldSelector::builder()
                .field("eventCategory")
                .equals(category)
                .build()
                .expect("field selector"),
        )
        .build()
        .expect("selector")
}

/// A CloudTrail client for `access_key` against `endpoint`.
pub fn cloudtrail_client_with(endpoint: &str, access_key: &str) -> aws_sdk_cloudtrail::Client {
    let config = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(aws_sdk_cloudtrail::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudtrail::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_cloudtrail::config::Credentials::new(
            access_key,
            "secret",
            None,
            None,
            "sluice-tests",
        ))
        .retry_config(aws_sdk_cloudtrail::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_cloudtrail::Client::from_conf(config)
}

/// A CloudTrail client for `account` on the shared server.
pub fn cloudtrail_client(account: &str) -> aws_sdk_cloudtrail::Client {
    cloudtrail_client_with(&shared().endpoint, account)
}

/// A CloudTrail Data (PutAuditEvents) client for `access_key` against `endpoint`.
pub fn cloudtraildata_client_with(
    endpoint: &str,
    access_key: &str,
) -> aws_sdk_cloudtraildata::Client {
    let config = aws_sdk_cloudtraildata::Config::builder()
        .behavior_version(aws_sdk_cloudtraildata::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudtraildata::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_cloudtraildata::config::Credentials::new(
            access_key,
            "secret",
            None,
            None,
            "sluice-tests",
        ))
        .retry_config(aws_sdk_cloudtraildata::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_cloudtraildata::Client::from_conf(config)
}

/// A CloudTrail Data client for `account` on the shared server.
pub fn cloudtraildata_client(account: &str) -> aws_sdk_cloudtraildata::Client {
    cloudtraildata_client_with(&shared().endpoint, account)
}

/// An S3 client (path-style addressing) for `access_key` against `endpoint`.
pub fn s3_client_with(endpoint: &str, access_key: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            access_key,
            "secret",
            None,
            None,
            "sluice-tests",
        ))
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A Firehose client for `access_key` against `endpoint`.
pub fn firehose_client_with(endpoint: &str, access_key: &str) -> aws_sdk_firehose::Client {
    let config = aws_sdk_firehose::Config::builder()
        .behavior_version(aws_sdk_firehose::config::BehaviorVersion::latest())
        .region(aws_sdk_firehose::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_firehose::config::Credentials::new(
            access_key,
            "secret",
            None,
            None,
            "sluice-tests",
        ))
        .retry_config(aws_sdk_firehose::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_firehose::Client::from_conf(config)
}

/// The value of metric `name` on the line carrying `label` (`key="value"`) in the text of
/// `/_sluice/metrics`.
pub fn metric(text: &str, name: &str, label: &str) -> Option<f64> {
    text.lines()
        .filter(|line| line.starts_with(name) && line.contains(label))
        .find_map(|line| line.rsplit(' ').next()?.parse().ok())
}

/// A fresh database on the PostgreSQL server of `SLUICE_TEST_POSTGRES` (where databases may be
/// created; the suite's `scripts/test-postgres.sh` starts one), as a URL; `None`, said on
/// stderr, when the variable is not set.
pub async fn postgres_database() -> Option<String> {
    use sqlx::{ConnectOptions, Connection};
    let Ok(base) = std::env::var("SLUICE_TEST_POSTGRES") else {
        eprintln!("SLUICE_TEST_POSTGRES is not set: PostgreSQL tests skipped.");
        return None;
    };
    let name = format!("sluice_it_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to SLUICE_TEST_POSTGRES");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create database");
    let options = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&base)
        .expect("URL")
        .database(&name);
    Some(options.to_url_lossy().to_string())
}

/// `/_sluice/health` of a server, as JSON.
pub fn health(server: &Server) -> serde_json::Value {
    raw_request(server.port, "GET", "/_sluice/health", &[], b"").json()
}

/// Which of `nodes` holds a lease whose unit starts with `prefix`, by their health.
pub fn lease_holder(nodes: &[Server], prefix: &str) -> Option<usize> {
    nodes.iter().position(|node| {
        health(node)["node"]["leases"]
            .as_array()
            .is_some_and(|leases| {
                leases.iter().any(|lease| {
                    lease["unit"]
                        .as_str()
                        .is_some_and(|u| u.starts_with(prefix))
                })
            })
    })
}

/// The messages of the CloudWatch Logs data envelopes that reached shard 0 of a stream so far.
pub async fn delivered_messages(kinesis: &aws_sdk_kinesis::Client, stream: &str) -> Vec<String> {
    let mut iterator = kinesis
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("iterator")
        .shard_iterator
        .expect("iterator");
    let mut messages = Vec::new();
    loop {
        let page = kinesis
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await
            .expect("records");
        if page.records().is_empty() {
            return messages;
        }
        for record in page.records() {
            let mut text = String::new();
            flate2::read::GzDecoder::new(record.data().as_ref())
                .read_to_string(&mut text)
                .expect("gzip");
            let envelope: serde_json::Value = serde_json::from_str(&text).expect("json");
            if envelope["messageType"] == "DATA_MESSAGE" {
                for event in envelope["logEvents"].as_array().expect("events") {
                    messages.push(event["message"].as_str().expect("message").to_owned());
                }
            }
        }
        iterator = page.next_shard_iterator().expect("next").to_owned();
    }
}
