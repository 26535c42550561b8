//! Throughput of AppFabric delivery: Okta System Log pages to OCSF Parquet objects in S3,
//! measured end to end against a real server and a local Okta stand-in, beside the in-memory
//! ceiling of the same work (parse the pages, map each event to OCSF, encode Parquet).
//!
//! Run: `bash bench/appfabric.sh` or `cargo bench --bench appfabric` (prints a markdown
//! table; see BENCHMARKS.md). `APPFABRIC_BENCH_EVENTS` sets the number of events (100000).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_appfabric::types::{
    ApiKeyCredential, AuditLogDestinationConfiguration, AuditLogProcessingConfiguration,
    Credential, Destination, DestinationConfiguration, Format, ProcessingConfiguration, S3Bucket,
    Schema, Tenant,
};
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sluice::services::appfabric::{encode, Apps};

const PAGE: usize = 1_000;
/// Events per object, as Sluice's writer cuts them.
const OBJECT: usize = 10_000;
const KEY: &str = "bench-token";
const TYPES: &[&str] = &[
    "user.session.start",
    "user.session.end",
    "user.account.update_password",
    "user.lifecycle.create",
    "group.user_membership.add",
    "application.user_membership.add",
    "policy.evaluate_sign_on",
];

fn event(n: usize) -> Value {
    let event_type = TYPES[n % TYPES.len()];
    json!({
        "actor": {"id": "00uadmin", "type": "User", "alternateId": "admin@example.com", "displayName": "Admin", "detailEntry": null},
        "client": {"userAgent": {"rawUserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)", "os": "Mac OS X", "browser": "CHROME"},
                   "zone": "null", "device": "Computer", "id": null, "ipAddress": "198.51.100.7",
                   "geographicalContext": {"city": "San Francisco", "state": "California", "country": "United States", "postalCode": "94105", "geolocation": {"lat": 37.78, "lon": -122.39}}},
        "authenticationContext": {"authenticationStep": 0, "externalSessionId": "102bZDNFfWaQSyEZQuDgWt-uQ"},
        "displayMessage": "User login to Okta",
        "eventType": event_type,
        "outcome": {"result": if n.is_multiple_of(9) { "FAILURE" } else { "SUCCESS" }, "reason": null},
        "published": format!("2026-11-30T10:{:02}:{:02}.{:03}Z", (n / 60000) % 60, (n / 1000) % 60, n % 1000),
        "securityContext": {"asNumber": 394089, "asOrg": "example", "isp": "example", "domain": "example.com", "isProxy": false},
        "severity": "INFO",
        "debugContext": {"debugData": {"requestId": format!("req{n}"), "requestUri": "/api/v1/authn"}},
        "legacyEventType": "core.user_auth.login_success",
        "transaction": {"type": "WEB", "id": format!("tx{n}"), "detail": {}},
        "uuid": format!("5b0e2c8a-0000-11ef-8000-{n:012}"),
        "version": "0",
        "request": {"ipChain": [{"ip": "198.51.100.7", "version": "V4"}]},
        "target": [{"id": format!("00u{n}"), "type": "User", "alternateId": format!("user{n}@example.com"), "displayName": "User", "detailEntry": null},
                   {"id": "00g1", "type": "UserGroup", "alternateId": "unknown", "displayName": "Engineering", "detailEntry": null}]
    })
}

struct Okta {
    pages: Vec<String>,
    base: String,
}

async fn logs(State(okta): State<Arc<Okta>>, uri: Uri) -> Response {
    let after: usize = uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|p| p.strip_prefix("after="))
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let body = okta
        .pages
        .get(after)
        .cloned()
        .unwrap_or_else(|| "[]".to_owned());
    let next = if after < okta.pages.len() {
        after + 1
    } else {
        after
    };
    (
        [
            ("content-type", "application/json".to_owned()),
            (
                "link",
                format!(
                    "<{}/api/v1/logs?after={next}&limit={PAGE}>; rel=\"next\"",
                    okta.base
                ),
            ),
        ],
        body,
    )
        .into_response()
}

/// The in-memory ceiling: parse every page, map each event to OCSF, encode Parquet objects.
fn ceiling(pages: &[String]) -> f64 {
    let apps = Apps::new(Default::default());
    let okta = apps.connector("OKTA").expect("okta");
    let started = Instant::now();
    let mut buffer = Vec::with_capacity(OBJECT);
    let mut bytes = 0;
    let mut events = 0;
    for page in pages {
        let parsed: Vec<Value> = serde_json::from_str(page).expect("page");
        for event in parsed {
            buffer.push(okta.to_ocsf(&event));
            events += 1;
            if buffer.len() == OBJECT {
                bytes += encode::parquet(&buffer).expect("parquet").len();
                buffer.clear();
            }
        }
    }
    if !buffer.is_empty() {
        bytes += encode::parquet(&buffer).expect("parquet").len();
    }
    assert!(bytes > 0);
    events as f64 / started.elapsed().as_secs_f64()
}

async fn end_to_end(endpoint: &str, okta_base: &str, total: usize) -> (f64, usize) {
    let _ = okta_base;
    let account = "123412341234";
    let appfabric = aws_sdk_appfabric::Client::from_conf(
        aws_sdk_appfabric::Config::builder()
            .behavior_version(aws_sdk_appfabric::config::BehaviorVersion::latest())
            .region(aws_sdk_appfabric::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_appfabric::config::Credentials::new(
                account, "x", None, None, "bench",
            ))
            .build(),
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                account, "x", None, None, "bench",
            ))
            .build(),
    );
    s3.create_bucket()
        .bucket("bench")
        .send()
        .await
        .expect("bucket");
    let bundle = appfabric
        .create_app_bundle()
        .send()
        .await
        .expect("bundle")
        .app_bundle
        .expect("b")
        .arn;
    let authorization = appfabric
        .create_app_authorization()
        .app_bundle_identifier(&bundle)
        .app("OKTA")
        .auth_type("apiKey".into())
        .credential(Credential::ApiKeyCredential(
            ApiKeyCredential::builder().api_key(KEY).build().expect("k"),
        ))
        .tenant(
            Tenant::builder()
                .tenant_identifier("bench.okta.com")
                .tenant_display_name("B")
                .build()
                .expect("t"),
        )
        .send()
        .await
        .expect("authorization")
        .app_authorization
        .expect("a")
        .app_authorization_arn;
    appfabric
        .connect_app_authorization()
        .app_bundle_identifier(&bundle)
        .app_authorization_identifier(&authorization)
        .send()
        .await
        .expect("connect");
    let started = Instant::now();
    let ingestion = appfabric
        .create_ingestion()
        .app_bundle_identifier(&bundle)
        .app("OKTA")
        .tenant_id("bench.okta.com")
        .ingestion_type("auditLog".into())
        .send()
        .await
        .expect("ingestion")
        .ingestion
        .expect("i")
        .arn;
    appfabric
        .create_ingestion_destination()
        .app_bundle_identifier(&bundle)
        .ingestion_identifier(&ingestion)
        .processing_configuration(ProcessingConfiguration::AuditLog(
            AuditLogProcessingConfiguration::builder()
                .schema(Schema::Ocsf)
                .format(Format::Parquet)
                .build()
                .expect("p"),
        ))
        .destination_configuration(DestinationConfiguration::AuditLog(
            AuditLogDestinationConfiguration::builder()
                .destination(Destination::S3Bucket(
                    S3Bucket::builder()
                        .bucket_name("bench")
                        .prefix("b/")
                        .build()
                        .expect("s3"),
                ))
                .build(),
        ))
        .send()
        .await
        .expect("destination");
    let mut seen = BTreeSet::new();
    let mut rows = 0usize;
    let deadline = Instant::now() + Duration::from_secs(900);
    while rows < total {
        assert!(
            Instant::now() < deadline,
            "only {rows} of {total} events arrived"
        );
        let mut token = None;
        loop {
            let page = s3
                .list_objects_v2()
                .bucket("bench")
                .set_continuation_token(token)
                .send()
                .await
                .expect("list");
            for object in page.contents() {
                let key = object.key().expect("key").to_owned();
                if seen.insert(key.clone()) {
                    let body = s3
                        .get_object()
                        .bucket("bench")
                        .key(&key)
                        .send()
                        .await
                        .expect("get")
                        .body
                        .collect()
                        .await
                        .expect("body")
                        .into_bytes();
                    use parquet::file::reader::{FileReader, SerializedFileReader};
                    let reader = SerializedFileReader::new(body).expect("parquet");
                    rows += reader.metadata().file_metadata().num_rows() as usize;
                }
            }
            token = page.next_continuation_token.clone();
            if token.is_none() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rows, total, "every event once");
    (total as f64 / started.elapsed().as_secs_f64(), seen.len())
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::var("APPFABRIC_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let events: Vec<Value> = (0..total).map(event).collect();
    let pages: Vec<String> = events
        .chunks(PAGE)
        .map(|c| Value::from(c.to_vec()).to_string())
        .collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let okta = Arc::new(Okta {
        pages: pages.clone(),
        base: base.clone(),
    });
    let app = axum::Router::new()
        .route("/api/v1/logs", axum::routing::get(logs))
        .with_state(okta);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let data = tempfile::tempdir().expect("tempdir");
    let config = data.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!("[appfabric]\npoll_interval_seconds = 1\nflush_interval_seconds = 1\n[appfabric.app_endpoints]\nOKTA = \"{base}\"\n"),
    )
    .expect("config");
    let mut server = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--exit-with-stdin",
            "--config",
        ])
        .arg(&config)
        .arg("--data-dir")
        .arg(data.path().join("data"))
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

    let ceiling = ceiling(&pages);
    let (end_to_end, objects) = end_to_end(&endpoint, &base, total).await;
    drop(server.stdin.take());
    let _ = server.wait();
    let page_bytes: usize = pages.iter().map(String::len).sum();
    println!("| measurement | events/s |");
    println!("|---|---|");
    println!("| in-memory ceiling: parse Okta pages, map to OCSF 1.1.0, encode Snappy Parquet ({OBJECT} events per object) | {ceiling:.0} |");
    println!("| end to end: Okta stand-in pages (HTTP, Link paging) to OCSF Parquet objects readable in S3 (SQLite event log, cursor, object writes) | {end_to_end:.0} |");
    println!(
        "| ratio end-to-end / ceiling | {:.2} |",
        end_to_end / ceiling
    );
    println!(
        "({total} Okta events in pages of {PAGE}, {:.0} bytes per event on the wire, {objects} objects; poll and flush interval 1 s, which the end-to-end figure includes)",
        page_bytes as f64 / total as f64
    );
}
