//! AppFabric audit-log delivery end to end: a local stand-in for Okta's System Log API (SSWS
//! auth, `Link` paging, one 429 with `X-Rate-Limit-Reset`, Okta's event shapes), a real
//! `sluice serve` configured through `[appfabric.app_endpoints]`, driven by
//! `aws-sdk-appfabric`, with the delivered objects read back through `aws-sdk-s3`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_appfabric::error::ProvideErrorMetadata;
use aws_sdk_appfabric::types::{
    ApiKeyCredential, AuditLogDestinationConfiguration, AuditLogProcessingConfiguration,
    Credential, Destination, DestinationConfiguration, FirehoseStream, Format,
    ProcessingConfiguration, S3Bucket, Schema, Tenant,
};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::{appfabric_client_with, firehose_client_with, s3_client_with, Server};
use serde_json::{json, Value};

const API_KEY: &str = "00aBcD-okta-api-token";
const TENANT: &str = "example.okta.com";
const PAGE: usize = 3;

/// What the stand-in serves and what it saw.
#[derive(Default)]
struct Okta {
    events: Vec<Value>,
    base: String,
    /// Every request's path and query, in order.
    requests: Vec<String>,
    rate_limited: usize,
    /// How long each answer takes.
    delay: Duration,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: usize,
    max_in_flight: usize,
}

type Shared = Arc<Mutex<Okta>>;

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn json_body(value: &Value) -> impl IntoResponse {
    ([("content-type", "application/json")], value.to_string())
}

/// A request being answered; counted out when answered or dropped (its caller went away).
struct InFlight(Shared);

impl InFlight {
    fn count(okta: &Shared) -> Self {
        let mut state = okta.lock().expect("lock");
        state.in_flight += 1;
        state.max_in_flight = state.max_in_flight.max(state.in_flight);
        InFlight(okta.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        state.in_flight -= 1;
    }
}

/// `GET /api/v1/logs`, after the stand-in's delay, counting the requests in flight.
async fn logs(State(okta): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let _counted = InFlight::count(&okta);
    let delay = okta.lock().expect("lock").delay;
    tokio::time::sleep(delay).await;
    answer(&okta, &uri, &headers)
}

/// The answer to `GET /api/v1/logs`: `since` starts at the oldest event (all are in the
/// window), `after` is the index of the next event; every answer has a `rel="next"` link, as
/// Okta's polling does.
fn answer(okta: &Shared, uri: &Uri, headers: &HeaderMap) -> Response {
    let mut okta = okta.lock().expect("lock");
    let query = uri.query().unwrap_or("").to_owned();
    okta.requests.push(format!("{}?{query}", uri.path()));
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("SSWS {API_KEY}"))
    {
        let body = json!({"errorCode": "E0000011", "errorSummary": "Invalid token provided", "errorLink": "E0000011", "errorId": "oae1", "errorCauses": []});
        return (StatusCode::UNAUTHORIZED, json_body(&body)).into_response();
    }
    let after: Option<usize> = param(&query, "after").and_then(|a| a.parse().ok());
    if after.is_some() && okta.rate_limited == 0 {
        okta.rate_limited += 1;
        let reset = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            + 1;
        let body = json!({"errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too many requests."});
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("x-rate-limit-limit", "60".to_owned()),
                ("x-rate-limit-remaining", "0".to_owned()),
                ("x-rate-limit-reset", reset.to_string()),
            ],
            json_body(&body),
        )
            .into_response();
    }
    let limit: usize = param(&query, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(PAGE)
        .min(PAGE);
    let start = after.unwrap_or(0).min(okta.events.len());
    let end = (start + limit).min(okta.events.len());
    let page: Vec<Value> = okta.events[start..end].to_vec();
    let base = okta.base.clone();
    let mut response = json_body(&Value::from(page)).into_response();
    let links = response.headers_mut();
    links.append(
        "link",
        format!("<{base}/api/v1/logs?limit={limit}>; rel=\"self\"")
            .parse()
            .expect("header"),
    );
    links.append(
        "link",
        format!("<{base}/api/v1/logs?after={end}&limit={limit}>; rel=\"next\"")
            .parse()
            .expect("header"),
    );
    response
}

/// Starts the stand-in on 127.0.0.1:0; returns its state and base URL.
async fn okta() -> (Shared, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let state: Shared = Arc::new(Mutex::new(Okta {
        base: base.clone(),
        ..Okta::default()
    }));
    let app = axum::Router::new()
        .route("/api/v1/logs", axum::routing::get(logs))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (state, base)
}

/// An Okta System Log event of `event_type`, numbered `n`.
fn okta_event(n: usize, event_type: &str) -> Value {
    let user = json!({"id": format!("00u{n:04}"), "type": "User", "alternateId": format!("user{n}@example.com"), "displayName": format!("User {n}"), "detailEntry": null});
    let target = match event_type.split('.').next() {
        Some("group") => {
            json!([user, {"id": "00g1", "type": "UserGroup", "alternateId": "unknown", "displayName": "Engineering", "detailEntry": null}])
        }
        Some("application") => {
            json!([user, {"id": "0oa1", "type": "AppInstance", "alternateId": "Salesforce", "displayName": "Salesforce.com", "detailEntry": null}])
        }
        _ => json!([user]),
    };
    json!({
        "actor": {"id": "00uadmin", "type": "User", "alternateId": "admin@example.com", "displayName": "Admin", "detailEntry": null},
        "client": {
            "userAgent": {"rawUserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36", "os": "Mac OS X", "browser": "CHROME"},
            "zone": "null", "device": "Computer", "id": null, "ipAddress": "198.51.100.7",
            "geographicalContext": {"city": "San Francisco", "state": "California", "country": "United States", "postalCode": "94105", "geolocation": {"lat": 37.7852, "lon": -122.3874}}
        },
        "device": null,
        "authenticationContext": {"authenticationProvider": null, "credentialProvider": null, "credentialType": null, "issuer": null, "interface": null, "authenticationStep": 0, "externalSessionId": "102bZDNFfWaQSyEZQuDgWt-uQ"},
        "displayMessage": format!("{event_type} number {n}"),
        "eventType": event_type,
        "outcome": {"result": if n % 4 == 3 { "FAILURE" } else { "SUCCESS" }, "reason": if n % 4 == 3 { Value::from("INVALID_CREDENTIALS") } else { Value::Null }},
        "published": format!("2026-11-30T10:{:02}:{:02}.{:03}Z", (n / 60) % 60, n % 60, n % 1000),
        "securityContext": {"asNumber": 394089, "asOrg": "example", "isp": "example", "domain": "example.com", "isProxy": false},
        "severity": "INFO",
        "debugContext": {"debugData": {"requestId": format!("req{n}"), "requestUri": "/api/v1/authn", "url": "/api/v1/authn?"}},
        "legacyEventType": "core.user_auth.login_success",
        "transaction": {"type": "WEB", "id": format!("tx{n}"), "detail": {}},
        "uuid": format!("5b0e2c8a-0000-11ef-8000-{n:012}"),
        "version": "0",
        "request": {"ipChain": [{"ip": "198.51.100.7", "geographicalContext": null, "version": "V4", "source": null}]},
        "target": target
    })
}

const EVENT_TYPES: &[&str] = &[
    "user.session.start",
    "user.session.end",
    "user.account.update_password",
    "user.lifecycle.create",
    "group.user_membership.add",
    "application.user_membership.add",
    "policy.evaluate_sign_on",
];

fn add_events(okta: &Shared, count: usize) {
    let mut okta = okta.lock().expect("lock");
    for _ in 0..count {
        let n = okta.events.len();
        let event = okta_event(n, EVENT_TYPES[n % EVENT_TYPES.len()]);
        okta.events.push(event);
    }
}

/// A sluice server whose Okta is the stand-in; poll and flush every second.
fn start(dir: &std::path::Path, base: &str) -> (Server, tempfile::NamedTempFile) {
    start_with(dir, base, &[])
}

/// [`start`] with more arguments.
fn start_with(
    dir: &std::path::Path,
    base: &str,
    extra: &[&str],
) -> (Server, tempfile::NamedTempFile) {
    let config = tempfile::NamedTempFile::new().expect("config");
    std::fs::write(
        config.path(),
        format!("[appfabric]\npoll_interval_seconds = 1\nflush_interval_seconds = 1\n[appfabric.app_endpoints]\nOKTA = \"{base}\"\n"),
    )
    .expect("write config");
    let mut args = vec!["--config", config.path().to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    let server = Server::start(dir, &args);
    (server, config)
}

fn processing(schema: Schema, format: Format) -> ProcessingConfiguration {
    ProcessingConfiguration::AuditLog(
        AuditLogProcessingConfiguration::builder()
            .schema(schema)
            .format(format)
            .build()
            .expect("processing"),
    )
}

fn to_s3(bucket: &str, prefix: &str) -> DestinationConfiguration {
    DestinationConfiguration::AuditLog(
        AuditLogDestinationConfiguration::builder()
            .destination(Destination::S3Bucket(
                S3Bucket::builder()
                    .bucket_name(bucket)
                    .prefix(prefix)
                    .build()
                    .expect("s3"),
            ))
            .build(),
    )
}

fn to_firehose(stream: &str) -> DestinationConfiguration {
    DestinationConfiguration::AuditLog(
        AuditLogDestinationConfiguration::builder()
            .destination(Destination::FirehoseStream(
                FirehoseStream::builder()
                    .stream_name(stream)
                    .build()
                    .expect("firehose"),
            ))
            .build(),
    )
}

fn credential(key: &str) -> Credential {
    Credential::ApiKeyCredential(
        ApiKeyCredential::builder()
            .api_key(key)
            .build()
            .expect("key"),
    )
}

/// Bundle, Okta authorization (connected), ingestion: their ARNs.
async fn setup(client: &aws_sdk_appfabric::Client) -> (String, String, String) {
    let bundle = client
        .create_app_bundle()
        .send()
        .await
        .expect("bundle")
        .app_bundle
        .expect("bundle")
        .arn;
    let authorization = client
        .create_app_authorization()
        .app_bundle_identifier(&bundle)
        .app("OKTA")
        .auth_type("apiKey".into())
        .credential(credential(API_KEY))
        .tenant(
            Tenant::builder()
                .tenant_identifier(TENANT)
                .tenant_display_name("Example")
                .build()
                .expect("tenant"),
        )
        .send()
        .await
        .expect("authorization")
        .app_authorization
        .expect("authorization")
        .app_authorization_arn;
    let connected = client
        .connect_app_authorization()
        .app_bundle_identifier(&bundle)
        .app_authorization_identifier(&authorization)
        .send()
        .await
        .expect("connect")
        .app_authorization_summary
        .expect("summary");
    assert_eq!(connected.status.as_str(), "Connected");
    let ingestion = client
        .create_ingestion()
        .app_bundle_identifier(&bundle)
        .app("OKTA")
        .tenant_id(TENANT)
        .ingestion_type("auditLog".into())
        .send()
        .await
        .expect("ingestion")
        .ingestion
        .expect("ingestion")
        .arn;
    (bundle, authorization, ingestion)
}

async fn destination(
    client: &aws_sdk_appfabric::Client,
    bundle: &str,
    ingestion: &str,
    processing: ProcessingConfiguration,
    target: DestinationConfiguration,
) -> String {
    client
        .create_ingestion_destination()
        .app_bundle_identifier(bundle)
        .ingestion_identifier(ingestion)
        .processing_configuration(processing)
        .destination_configuration(target)
        .send()
        .await
        .expect("destination")
        .ingestion_destination
        .expect("destination")
        .arn
}

/// Every object of a bucket: key and body.
async fn objects(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(listed) = s3.list_objects_v2().bucket(bucket).send().await else {
        return out;
    };
    for object in listed.contents() {
        let key = object.key().expect("key").to_owned();
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .expect("get")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .to_vec();
        out.push((key, body));
    }
    out
}

/// The JSON lines of every object of a bucket.
async fn lines(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<Value> {
    objects(s3, bucket)
        .await
        .iter()
        .flat_map(|(_, body)| {
            String::from_utf8(body.clone())
                .expect("utf-8")
                .lines()
                .map(|line| serde_json::from_str(line).expect("json line"))
                .collect::<Vec<Value>>()
        })
        .collect()
}

/// The rows of every Parquet object of a bucket, as JSON.
async fn parquet_rows(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<Value> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let mut rows = Vec::new();
    for (key, body) in objects(s3, bucket).await {
        assert!(body.starts_with(b"PAR1"), "{key} is not Parquet");
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(body))
            .expect("parquet")
            .build()
            .expect("reader");
        let mut writer = arrow::json::ArrayWriter::new(Vec::new());
        for batch in reader {
            writer.write(&batch.expect("batch")).expect("to json");
        }
        writer.finish().expect("finish");
        let json: Vec<Value> = serde_json::from_slice(&writer.into_inner()).unwrap_or_default();
        rows.extend(json);
    }
    rows
}

/// The OCSF event's id: `metadata.uid`.
fn ocsf_uid(event: &Value) -> String {
    event["metadata"]["uid"]
        .as_str()
        .expect("metadata.uid")
        .to_owned()
}

/// Waits (generously) until `check` holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(90);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn uuids(okta: &Shared) -> BTreeSet<String> {
    okta.lock()
        .expect("lock")
        .events
        .iter()
        .map(|e| e["uuid"].as_str().expect("uuid").to_owned())
        .collect()
}

/// Asserts that `ids` holds every served event exactly once.
fn exactly_once(ids: &[String], served: &BTreeSet<String>, what: &str) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in ids {
        *counts.entry(id).or_default() += 1;
    }
    let duplicates: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "{what}: duplicates {duplicates:?}");
    let got: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(&got, served, "{what}: every served event once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_events_reach_every_destination_once_in_their_own_schema_and_format() {
    let (okta, base) = okta().await;
    add_events(&okta, 10);
    let dir = tempfile::tempdir().expect("dir");
    let (server, _config) = start(dir.path(), &base);
    let account = "111122223333";
    let client = appfabric_client_with(&server.endpoint, account);
    let s3 = s3_client_with(&server.endpoint, account);
    let firehose = firehose_client_with(&server.endpoint, account);
    for bucket in ["ocsf-json", "ocsf-parquet", "raw-firehose"] {
        s3.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("bucket");
    }
    firehose
        .create_delivery_stream()
        .delivery_stream_name("okta-raw")
        .extended_s3_destination_configuration(
            aws_sdk_firehose::types::ExtendedS3DestinationConfiguration::builder()
                .role_arn("arn:aws:iam::111122223333:role/firehose")
                .bucket_arn("arn:aws:s3:::raw-firehose")
                .buffering_hints(
                    aws_sdk_firehose::types::BufferingHints::builder()
                        .interval_in_seconds(1)
                        .size_in_mbs(1)
                        .build(),
                )
                .build()
                .expect("firehose destination"),
        )
        .send()
        .await
        .expect("stream");

    let (bundle, _, ingestion) = setup(&client).await;
    let bundle_id = bundle.rsplit('/').next().expect("id").to_owned();
    let ingestion_id = ingestion.rsplit('/').next().expect("id").to_owned();
    destination(
        &client,
        &bundle,
        &ingestion,
        processing(Schema::Ocsf, Format::Json),
        to_s3("ocsf-json", "audit/"),
    )
    .await;
    destination(
        &client,
        &bundle,
        &ingestion,
        processing(Schema::Ocsf, Format::Parquet),
        to_s3("ocsf-parquet", "pq"),
    )
    .await;
    destination(
        &client,
        &bundle,
        &ingestion,
        processing(Schema::Raw, Format::Json),
        to_firehose("okta-raw"),
    )
    .await;

    let check_all = |served: BTreeSet<String>| {
        let (s3, okta_served) = (s3.clone(), served);
        async move {
            let ocsf = lines(&s3, "ocsf-json").await;
            let rows = parquet_rows(&s3, "ocsf-parquet").await;
            let raw = lines(&s3, "raw-firehose").await;
            let ocsf_ids: Vec<String> = ocsf.iter().map(ocsf_uid).collect();
            let row_ids: Vec<String> = rows.iter().map(ocsf_uid).collect();
            let raw_ids: Vec<String> = raw
                .iter()
                .map(|e| e["uuid"].as_str().expect("uuid").to_owned())
                .collect();
            let complete = [&ocsf_ids, &row_ids, &raw_ids]
                .iter()
                .all(|ids| ids.iter().cloned().collect::<BTreeSet<_>>() == okta_served);
            (complete, ocsf_ids, row_ids, raw_ids, ocsf, raw)
        }
    };
    let served = uuids(&okta);
    eventually("the first 10 events in all three destinations", || {
        let check = check_all(served.clone());
        async move { check.await.0 }
    })
    .await;
    let (_, ocsf_ids, row_ids, raw_ids, ocsf, raw) = check_all(served.clone()).await;
    exactly_once(&ocsf_ids, &served, "OCSF JSON");
    exactly_once(&row_ids, &served, "OCSF Parquet");
    exactly_once(&raw_ids, &served, "raw via Firehose");

    // The raw events are Okta's own, unchanged.
    let originals = okta.lock().expect("lock").events.clone();
    for event in &raw {
        assert!(originals.contains(event), "raw event changed: {event}");
    }
    // OCSF: the class the issue names per event type, type_uid, metadata, raw_data.
    for event in &ocsf {
        let raw_data: Value =
            serde_json::from_str(event["raw_data"].as_str().expect("raw_data")).expect("raw json");
        let expected = match raw_data["eventType"].as_str().expect("type") {
            "user.session.start" => (3002, 1),
            "user.session.end" => (3002, 2),
            "user.account.update_password" => (3001, 3),
            "user.lifecycle.create" => (3001, 1),
            "group.user_membership.add" => (3006, 3),
            "application.user_membership.add" => (3005, 1),
            _ => (0, 99),
        };
        assert_eq!(
            (
                event["class_uid"].as_i64().expect("class"),
                event["activity_id"].as_i64().expect("activity")
            ),
            expected,
            "{event}"
        );
        assert_eq!(event["type_uid"], expected.0 * 100 + expected.1);
        assert_eq!(event["metadata"]["version"], "1.1.0");
        assert_eq!(event["metadata"]["product"]["vendor_name"], "Okta");
        assert_eq!(event["metadata"]["event_code"], raw_data["eventType"]);
        assert!(event["time"].as_i64().expect("time") > 1_700_000_000_000);
        let failed = raw_data["outcome"]["result"] == "FAILURE";
        assert_eq!(event["status_id"], if failed { 2 } else { 1 });
        if expected.0 == 3002 {
            assert_eq!(event["src_endpoint"]["ip"], "198.51.100.7");
            assert_eq!(
                event["http_request"]["user_agent"],
                raw_data["client"]["userAgent"]["rawUserAgent"]
            );
            assert_eq!(event["actor"]["user"]["name"], "admin@example.com");
        }
        if expected.0 == 3006 {
            assert_eq!(event["group"]["name"], "Engineering");
            assert!(
                event["unmapped"]["client"].is_object(),
                "Group Management has no src_endpoint: {event}"
            );
        }
    }
    // AWS's key layout.
    let key_pattern = regex::Regex::new(&format!(
        r"^audit/AWSAppFabric/AuditLog/OCSF/JSON/OKTA/{bundle_id}/{ingestion_id}/\d{{8}}/AuditLog-\d{{13}}-[0-9a-f-]{{36}}$"
    ))
    .expect("regex");
    for (key, _) in objects(&s3, "ocsf-json").await {
        assert!(key_pattern.is_match(&key), "{key}");
    }
    for (key, _) in objects(&s3, "ocsf-parquet").await {
        assert!(
            key.starts_with(&format!(
                "pq/AWSAppFabric/AuditLog/OCSF/PARQUET/OKTA/{bundle_id}/{ingestion_id}/"
            )),
            "{key}"
        );
    }
    {
        let okta = okta.lock().expect("lock");
        assert_eq!(okta.rate_limited, 1, "the stand-in answered 429 once");
        let since: Vec<_> = okta
            .requests
            .iter()
            .filter(|r| r.contains("since="))
            .collect();
        assert_eq!(
            since.len(),
            1,
            "only the first poll starts from `since`: {:?}",
            okta.requests
        );
    }

    // New events on the app arrive too, once.
    add_events(&okta, 5);
    let served = uuids(&okta);
    eventually("the next 5 events", || {
        let check = check_all(served.clone());
        async move { check.await.0 }
    })
    .await;
    let (_, ocsf_ids, row_ids, raw_ids, _, _) = check_all(served.clone()).await;
    exactly_once(&ocsf_ids, &served, "OCSF JSON");
    exactly_once(&row_ids, &served, "OCSF Parquet");
    exactly_once(&raw_ids, &served, "raw via Firehose");

    // Stopping stops polling; starting resumes from the cursor.
    client
        .stop_ingestion()
        .app_bundle_identifier(&bundle)
        .ingestion_identifier(&ingestion)
        .send()
        .await
        .expect("stop");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let polls = okta.lock().expect("lock").requests.len();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        okta.lock().expect("lock").requests.len(),
        polls,
        "a stopped ingestion does not poll"
    );
    add_events(&okta, 2);
    client
        .start_ingestion()
        .app_bundle_identifier(&bundle)
        .ingestion_identifier(&ingestion)
        .send()
        .await
        .expect("start");
    let served = uuids(&okta);
    eventually("the events served while stopped", || {
        let check = check_all(served.clone());
        async move { check.await.0 }
    })
    .await;
    let (_, ocsf_ids, row_ids, raw_ids, _, _) = check_all(served.clone()).await;
    exactly_once(&ocsf_ids, &served, "OCSF JSON");
    exactly_once(&row_ids, &served, "OCSF Parquet");
    exactly_once(&raw_ids, &served, "raw via Firehose");
    assert_eq!(
        okta.lock()
            .expect("lock")
            .requests
            .iter()
            .filter(|r| r.contains("since="))
            .count(),
        1,
        "a restarted ingestion resumes from its cursor"
    );

    // Progress is visible on the metrics endpoint.
    let metrics = reqwest::get(format!("{}/_sluice/metrics", server.endpoint))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let fetched = metrics
        .lines()
        .find(|l| l.starts_with("sluice_appfabric_fetched_events_total{") && l.contains(&ingestion))
        .unwrap_or_else(|| panic!("no fetched counter in {metrics}"));
    assert!(fetched.ends_with(" 17"), "{fetched}");
    assert!(
        metrics.contains("sluice_appfabric_last_poll_seconds{"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sluice_appfabric_delivered_events_total{"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_flow_resumes_from_the_cursor_without_loss_or_duplicates() {
    let (okta, base) = okta().await;
    add_events(&okta, 12);
    let dir = tempfile::tempdir().expect("dir");
    let (server, config) = start(dir.path(), &base);
    let account = "222233334444";
    let client = appfabric_client_with(&server.endpoint, account);
    let s3 = s3_client_with(&server.endpoint, account);
    s3.create_bucket()
        .bucket("audit")
        .send()
        .await
        .expect("bucket");
    let (bundle, _, ingestion) = setup(&client).await;
    destination(
        &client,
        &bundle,
        &ingestion,
        processing(Schema::Ocsf, Format::Json),
        to_s3("audit", "k/"),
    )
    .await;
    let served = uuids(&okta);
    eventually("the first events", || {
        let (s3, served) = (s3.clone(), served.clone());
        async move {
            let ids: BTreeSet<String> = lines(&s3, "audit").await.iter().map(ocsf_uid).collect();
            ids == served
        }
    })
    .await;
    add_events(&okta, 9);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();

    let server = Server::start(
        dir.path(),
        &["--config", config.path().to_str().expect("utf-8")],
    );
    let s3 = s3_client_with(&server.endpoint, account);
    add_events(&okta, 4);
    let served = uuids(&okta);
    eventually("every event after the restart", || {
        let (s3, served) = (s3.clone(), served.clone());
        async move {
            let ids: BTreeSet<String> = lines(&s3, "audit").await.iter().map(ocsf_uid).collect();
            ids == served
        }
    })
    .await;
    let ids: Vec<String> = lines(&s3, "audit").await.iter().map(ocsf_uid).collect();
    exactly_once(&ids, &served, "after kill -9");
    assert_eq!(
        okta.lock()
            .expect("lock")
            .requests
            .iter()
            .filter(|r| r.contains("since="))
            .count(),
        1,
        "the restarted server resumes from the stored cursor"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_fails_the_destination_until_it_exists_and_nothing_is_lost() {
    let (okta, base) = okta().await;
    add_events(&okta, 7);
    let dir = tempfile::tempdir().expect("dir");
    let (server, _config) = start(dir.path(), &base);
    let account = "333344445555";
    let client = appfabric_client_with(&server.endpoint, account);
    let s3 = s3_client_with(&server.endpoint, account);
    let (bundle, _, ingestion) = setup(&client).await;
    let arn = destination(
        &client,
        &bundle,
        &ingestion,
        processing(Schema::Raw, Format::Json),
        to_s3("not-yet", "x/"),
    )
    .await;
    let status = || {
        let client = client.clone();
        let (bundle, ingestion, arn) = (bundle.clone(), ingestion.clone(), arn.clone());
        async move {
            let d = client
                .get_ingestion_destination()
                .app_bundle_identifier(bundle)
                .ingestion_identifier(ingestion)
                .ingestion_destination_identifier(arn)
                .send()
                .await
                .expect("get")
                .ingestion_destination
                .expect("destination");
            (
                d.status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
                d.status_reason.unwrap_or_default(),
            )
        }
    };
    eventually("status Failed", || {
        let status = status();
        async move { status.await.0 == "Failed" }
    })
    .await;
    let (_, reason) = status().await;
    assert!(reason.contains("not-yet"), "{reason}");
    s3.create_bucket()
        .bucket("not-yet")
        .send()
        .await
        .expect("bucket");
    let served = uuids(&okta);
    eventually("the events in the new bucket", || {
        let (s3, served) = (s3.clone(), served.clone());
        async move {
            let ids: BTreeSet<String> = lines(&s3, "not-yet")
                .await
                .iter()
                .map(|e| e["uuid"].as_str().unwrap_or("").to_owned())
                .collect();
            ids == served
        }
    })
    .await;
    eventually("status Active", || {
        let status = status();
        async move { status.await.0 == "Active" }
    })
    .await;
    let ids: Vec<String> = lines(&s3, "not-yet")
        .await
        .iter()
        .map(|e| e["uuid"].as_str().unwrap_or("").to_owned())
        .collect();
    exactly_once(&ids, &served, "after the bucket appeared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_refusals_parquet_to_firehose_and_refused_credentials() {
    let (_okta, base) = okta().await;
    let dir = tempfile::tempdir().expect("dir");
    let (server, _config) = start(dir.path(), &base);
    let client = appfabric_client_with(&server.endpoint, "444455556666");
    let (bundle, authorization, ingestion) = setup(&client).await;

    // Parquet never goes to Firehose: on create, and on an update that switches to Firehose.
    let refused = client
        .create_ingestion_destination()
        .app_bundle_identifier(&bundle)
        .ingestion_identifier(&ingestion)
        .processing_configuration(processing(Schema::Ocsf, Format::Parquet))
        .destination_configuration(to_firehose("s"))
        .send()
        .await
        .expect_err("parquet to firehose");
    assert_eq!(refused.code(), Some("ValidationException"));
    let parquet = destination(
        &client,
        &bundle,
        &ingestion,
        processing(Schema::Ocsf, Format::Parquet),
        to_s3("bkt", "p/"),
    )
    .await;
    let refused = client
        .update_ingestion_destination()
        .app_bundle_identifier(&bundle)
        .ingestion_identifier(&ingestion)
        .ingestion_destination_identifier(&parquet)
        .destination_configuration(to_firehose("s"))
        .send()
        .await
        .expect_err("switch to firehose");
    assert_eq!(refused.code(), Some("ValidationException"));

    // Deleting a started ingestion, or one with destinations, is refused.
    let delete_ingestion = || {
        client
            .delete_ingestion()
            .app_bundle_identifier(&bundle)
            .ingestion_identifier(&ingestion)
            .send()
    };
    assert_eq!(
        delete_ingestion().await.expect_err("started").code(),
        Some("ValidationException")
    );
    client
        .stop_ingestion()
        .app_bundle_identifier(&bundle)
        .ingestion_identifier(&ingestion)
        .send()
        .await
        .expect("stop");
    assert_eq!(
        delete_ingestion().await.expect_err("destinations").code(),
        Some("ValidationException")
    );
    // The authorization is in use; the bundle has authorizations.
    let delete_authorization = || {
        client
            .delete_app_authorization()
            .app_bundle_identifier(&bundle)
            .app_authorization_identifier(&authorization)
            .send()
    };
    assert_eq!(
        delete_authorization().await.expect_err("in use").code(),
        Some("ValidationException")
    );
    client
        .delete_ingestion_destination()
        .app_bundle_identifier(&bundle)
        .ingestion_identifier(&ingestion)
        .ingestion_destination_identifier(&parquet)
        .send()
        .await
        .expect("delete destination");
    delete_ingestion()
        .await
        .expect("stopped and empty: deleted");
    let refused = client
        .delete_app_bundle()
        .app_bundle_identifier(&bundle)
        .send()
        .await
        .expect_err("bundle with an authorization");
    assert_eq!(refused.code(), Some("ConflictException"));
    delete_authorization().await.expect("unused: deleted");
    client
        .delete_app_bundle()
        .app_bundle_identifier(&bundle)
        .send()
        .await
        .expect("empty bundle deleted");

    // A key Okta refuses: ConnectionValidationFailed.
    let bundle = client
        .create_app_bundle()
        .send()
        .await
        .expect("bundle")
        .app_bundle
        .expect("b")
        .arn;
    let wrong = client
        .create_app_authorization()
        .app_bundle_identifier(&bundle)
        .app("OKTA")
        .auth_type("apiKey".into())
        .credential(credential("not-the-key"))
        .tenant(
            Tenant::builder()
                .tenant_identifier(TENANT)
                .tenant_display_name("E")
                .build()
                .expect("tenant"),
        )
        .send()
        .await
        .expect("authorization")
        .app_authorization
        .expect("a")
        .app_authorization_arn;
    let summary = client
        .connect_app_authorization()
        .app_bundle_identifier(&bundle)
        .app_authorization_identifier(&wrong)
        .send()
        .await
        .expect("connect answers")
        .app_authorization_summary
        .expect("summary");
    assert_eq!(summary.status.as_str(), "ConnectionValidationFailed");
}

/// What the HCP Terraform stand-in serves and what it saw.
#[derive(Default)]
struct Terraform {
    events: Vec<Value>,
    /// Every request's query, in order.
    requests: Vec<String>,
}

const TERRAFORM_TOKEN: &str = "tf-org-token";
/// The stand-in's page size, below the connector's request, so that paging is exercised.
const TERRAFORM_PAGE: usize = 2;

/// `GET /api/v2/organization/audit-trail`: Bearer auth, events at or after `since`, paged by
/// `page[number]` with `pagination.next_page`, as HCP Terraform's audit trails API pages.
async fn audit_trail(
    State(terraform): State<Arc<Mutex<Terraform>>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut terraform = terraform.lock().expect("lock");
    let query = uri.query().unwrap_or("").to_owned();
    terraform.requests.push(query.clone());
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TERRAFORM_TOKEN}"))
    {
        let body = json!({"errors": [{"status": "401", "title": "unauthorized"}]});
        return (StatusCode::UNAUTHORIZED, json_body(&body)).into_response();
    }
    let decode = |value: &str| {
        percent_encoding::percent_decode_str(value)
            .decode_utf8_lossy()
            .into_owned()
    };
    let since = param(&query, "since").map(decode).unwrap_or_default();
    let page: usize = param(&query, "page%5Bnumber%5D")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let matching: Vec<Value> = terraform
        .events
        .iter()
        .filter(|e| e["timestamp"].as_str().unwrap_or_default() >= since.as_str())
        .cloned()
        .collect();
    let start = ((page - 1) * TERRAFORM_PAGE).min(matching.len());
    let end = (start + TERRAFORM_PAGE).min(matching.len());
    let next = (end < matching.len()).then_some(page + 1);
    let body = json!({
        "data": matching[start..end],
        "pagination": {"current_page": page, "next_page": next, "prev_page": null,
                       "total_pages": matching.len().div_ceil(TERRAFORM_PAGE), "total_count": matching.len()},
    });
    json_body(&body).into_response()
}

fn terraform_event(n: usize, action: &str) -> Value {
    let timestamp = (time::OffsetDateTime::now_utc() - time::Duration::hours(1)
        + time::Duration::seconds(n as i64))
    .format(&time::format_description::well_known::Rfc3339)
    .expect("timestamp");
    json!({
        "id": format!("ae66e491-db59-457c-8445-9c908ee7{n:04}"),
        "version": "0",
        "type": "Resource",
        "timestamp": timestamp,
        "auth": {"accessor_id": "user-MaoGS2", "description": "ann", "type": "Client",
                 "impersonator_id": null, "organization_id": "org-AGLwGkMsbJ"},
        "request": {"id": format!("4ba1c9b2-{n:04}")},
        "resource": {"id": format!("ws-{n:04}"), "type": "workspace", "action": action, "meta": null},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_audit_trail_events_arrive_once_as_api_activity() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let terraform = Arc::new(Mutex::new(Terraform::default()));
    {
        let mut state = terraform.lock().expect("lock");
        for (n, action) in ["create", "update", "destroy", "read", "create"]
            .iter()
            .enumerate()
        {
            state.events.push(terraform_event(n, action));
        }
    }
    let app = axum::Router::new()
        .route(
            "/api/v2/organization/audit-trail",
            axum::routing::get(audit_trail),
        )
        .with_state(terraform.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().expect("tempdir");
    let config = tempfile::NamedTempFile::new().expect("config");
    std::fs::write(
        config.path(),
        format!("[appfabric]\npoll_interval_seconds = 1\nflush_interval_seconds = 1\n[appfabric.app_endpoints]\nTERRAFORMCLOUD = \"{base}\"\n"),
    )
    .expect("write config");
    let server = Server::start(
        dir.path(),
        &["--config", config.path().to_str().expect("utf-8")],
    );
    let account = common::fresh_account();
    let client = appfabric_client_with(&server.endpoint, &account);
    let s3 = s3_client_with(&server.endpoint, &account);
    let bucket = format!("tf-{account}");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");

    let bundle = client
        .create_app_bundle()
        .send()
        .await
        .expect("bundle")
        .app_bundle
        .expect("bundle")
        .arn;
    let authorize = |key: &str| {
        client
            .create_app_authorization()
            .app_bundle_identifier(&bundle)
            .app("TERRAFORMCLOUD")
            .auth_type("apiKey".into())
            .credential(credential(key))
            .tenant(
                Tenant::builder()
                    .tenant_identifier("example-org")
                    .tenant_display_name("Example")
                    .build()
                    .expect("tenant"),
            )
            .send()
    };
    // A wrong token fails the connection check, as the app refuses it.
    let wrong = authorize("not-the-token")
        .await
        .expect("authorization")
        .app_authorization
        .expect("authorization")
        .app_authorization_arn;
    let refused = client
        .connect_app_authorization()
        .app_bundle_identifier(&bundle)
        .app_authorization_identifier(&wrong)
        .send()
        .await
        .expect("connect")
        .app_authorization_summary
        .expect("summary");
    assert_eq!(refused.status.as_str(), "ConnectionValidationFailed");
    client
        .delete_app_authorization()
        .app_bundle_identifier(&bundle)
        .app_authorization_identifier(&wrong)
        .send()
        .await
        .expect("delete the refused authorization");

    let authorization = authorize(TERRAFORM_TOKEN)
        .await
        .expect("authorization")
        .app_authorization
        .expect("authorization")
        .app_authorization_arn;
    let connected = client
        .connect_app_authorization()
        .app_bundle_identifier(&bundle)
        .app_authorization_identifier(&authorization)
        .send()
        .await
        .expect("connect")
        .app_authorization_summary
        .expect("summary");
    assert_eq!(connected.status.as_str(), "Connected");
    let ingestion = client
        .create_ingestion()
        .app_bundle_identifier(&bundle)
        .app("TERRAFORMCLOUD")
        .tenant_id("example-org")
        .ingestion_type("auditLog".into())
        .send()
        .await
        .expect("ingestion")
        .ingestion
        .expect("ingestion")
        .arn;
    destination(
        &client,
        &bundle,
        &ingestion,
        processing(Schema::Ocsf, Format::Json),
        to_s3(&bucket, "tf/"),
    )
    .await;

    let served: BTreeSet<String> = terraform
        .lock()
        .expect("lock")
        .events
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect();
    eventually("every Terraform event in S3", || async {
        lines(&s3, &bucket).await.len() >= served.len()
    })
    .await;
    // One more event after the first polls: it arrives too, and nothing twice.
    terraform
        .lock()
        .expect("lock")
        .events
        .push(terraform_event(5, "update"));
    let mut served = served;
    served.insert(
        terraform_event(5, "update")["id"]
            .as_str()
            .expect("id")
            .to_owned(),
    );
    eventually("the later event", || async {
        lines(&s3, &bucket).await.len() >= served.len()
    })
    .await;
    let events = lines(&s3, &bucket).await;
    let ids: Vec<String> = events.iter().map(ocsf_uid).collect();
    exactly_once(&ids, &served, "terraform");
    for event in &events {
        assert_eq!(event["class_uid"], 6003, "{event}");
        assert_eq!(event["metadata"]["version"], "1.1.0");
        let activity = event["activity_id"].as_i64().expect("activity");
        assert_eq!(event["type_uid"].as_i64(), Some(600300 + activity));
    }
    let destroyed = events
        .iter()
        .find(|e| e["api"]["operation"] == "workspace.destroy")
        .expect("the destroy event");
    assert_eq!(destroyed["activity_id"], 4);
    let requests = terraform.lock().expect("lock").requests.clone();
    assert!(
        requests.iter().any(|q| q.contains("page%5Bnumber%5D=2")),
        "the connector followed next_page: {requests:?}"
    );
    for (key, _) in objects(&s3, &bucket).await {
        assert!(
            key.starts_with("tf/AWSAppFabric/AuditLog/OCSF/JSON/TERRAFORMCLOUD/"),
            "{key}"
        );
    }
}

/// Three nodes on one PostgreSQL and one data directory: one node at a time polls an
/// ingestion's app, another takes over when it is killed, and every event reaches S3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_on_one_postgresql_poll_an_ingestion_one_at_a_time() {
    let Some(url) = common::postgres_database().await else {
        return;
    };
    let (okta, base) = okta().await;
    // Slow answers: pollers on two nodes would overlap.
    okta.lock().expect("lock").delay = Duration::from_millis(700);
    add_events(&okta, 9);
    let dir = tempfile::tempdir().expect("dir");
    let mut configs = Vec::new();
    let mut nodes: Vec<Server> = (0..3)
        .map(|_| {
            let (node, config) =
                start_with(dir.path(), &base, &["--store", &url, "--lease-ttl", "2"]);
            configs.push(config);
            node
        })
        .collect();
    let account = "444455556666";
    let client = appfabric_client_with(&nodes[0].endpoint, account);
    s3_client_with(&nodes[1].endpoint, account)
        .create_bucket()
        .bucket("cluster-raw")
        .send()
        .await
        .expect("bucket");
    let (bundle, _, ingestion) = setup(&client).await;
    destination(
        &client,
        &bundle,
        &ingestion,
        processing(Schema::Raw, Format::Json),
        to_s3("cluster-raw", "raw/"),
    )
    .await;
    let delivered = |node: &Server| {
        let s3 = s3_client_with(&node.endpoint, account);
        async move {
            lines(&s3, "cluster-raw")
                .await
                .iter()
                .map(|e| e["uuid"].as_str().expect("uuid").to_owned())
                .collect::<Vec<String>>()
        }
    };
    let served = uuids(&okta);
    eventually("the first events in S3", || {
        let (check, served) = (delivered(&nodes[2]), served.clone());
        async move { check.await.into_iter().collect::<BTreeSet<_>>() == served }
    })
    .await;

    assert_eq!(
        okta.lock().expect("lock").max_in_flight,
        1,
        "one node at a time polls the app"
    );

    let holder = common::lease_holder(&nodes, "appfabric/poll/").expect("a node polls");
    nodes.remove(holder).kill();
    // A request of the killed node may still be in flight here; count afresh once it is gone.
    tokio::time::sleep(Duration::from_secs(1)).await;
    okta.lock().expect("lock").max_in_flight = 0;
    add_events(&okta, 6);
    let served = uuids(&okta);
    eventually("the events served after the kill in S3", || {
        let (check, served) = (delivered(&nodes[0]), served.clone());
        async move { check.await.into_iter().collect::<BTreeSet<_>>() == served }
    })
    .await;
    assert!(
        common::lease_holder(&nodes, "appfabric/poll/").is_some(),
        "a live node took the polling over"
    );
    let okta = okta.lock().expect("lock");
    assert_eq!(
        okta.max_in_flight, 1,
        "one node at a time polls the app after the kill too: {:?}",
        okta.requests
    );
}
