//! Production mode: every SigV4 signature is verified against the configured credentials.

mod common;

use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use common::{logs_client_with, raw_request, Server};

const CONFIG: &str = r#"
[auth]
mode = "strict"

[[auth.credentials]]
access_key_id = "AKIDSTRICTEXAMPLE"
secret_access_key = "strict-secret"
account_id = "123456789012"
"#;

/// Creates the Kinesis stream `s` a destination points at (it must exist, as in AWS), signed
/// with `secret`.
async fn create_target_stream(endpoint: &str, access_key: &str, secret: &str) {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            access_key,
            secret,
            None,
            None,
            "sluice-tests",
        ))
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
        .create_stream()
        .stream_name("s")
        .shard_count(1)
        .send()
        .await
        .expect("target stream");
}

fn strict_server() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, CONFIG).expect("config");
    let config = config.to_str().expect("utf-8").to_owned();
    let server = Server::start(&dir.path().join("data"), &["--config", &config]);
    (server, dir)
}

#[tokio::test]
async fn verifies_signatures_and_knows_only_configured_keys() {
    let (server, _dir) = strict_server();
    create_target_stream(&server.endpoint, "AKIDSTRICTEXAMPLE", "strict-secret").await;
    let good = logs_client_with(&server.endpoint, "AKIDSTRICTEXAMPLE", "strict-secret");
    let created = good
        .put_destination()
        .destination_name("d")
        .target_arn("arn:aws:kinesis:us-east-1:123456789012:stream/s")
        .role_arn("arn:aws:iam::123456789012:role/r")
        .send()
        .await
        .expect("a correctly signed request is served")
        .destination
        .expect("destination");
    // The account comes from the configuration, not from the key.
    assert_eq!(
        created.arn(),
        Some("arn:aws:logs:us-east-1:123456789012:destination:d")
    );

    let wrong_secret = logs_client_with(&server.endpoint, "AKIDSTRICTEXAMPLE", "not-the-secret");
    let err = wrong_secret
        .describe_destinations()
        .send()
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Some("InvalidSignatureException"));
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));

    let unknown = logs_client_with(&server.endpoint, "AKIDUNKNOWN", "strict-secret");
    let err = unknown
        .describe_destinations()
        .send()
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Some("UnrecognizedClientException"));

    let reset = raw_request(server.port, "POST", "/_sluice/reset", &[], b"");
    assert_eq!(reset.status, 403);
    let health = raw_request(server.port, "GET", "/_sluice/health", &[], b"");
    assert_eq!(health.json()["auth"], "strict");
}

#[tokio::test]
async fn emulator_mode_resets_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    create_target_stream(&server.endpoint, "222233334444", "whatever").await;
    let client = logs_client_with(&server.endpoint, "222233334444", "whatever");
    client
        .put_destination()
        .destination_name("d")
        .target_arn("arn:aws:kinesis:us-east-1:222233334444:stream/s")
        .role_arn("arn:aws:iam::222233334444:role/r")
        .send()
        .await
        .expect("put");
    let reset = raw_request(server.port, "POST", "/_sluice/reset", &[], b"");
    assert_eq!(reset.status, 200);
    assert!(client
        .describe_destinations()
        .send()
        .await
        .expect("describe")
        .destinations()
        .is_empty());
    // A non-12-digit key lands in the default account.
    create_target_stream(&server.endpoint, "AKIAANYTHING", "x").await;
    let default = logs_client_with(&server.endpoint, "AKIAANYTHING", "x");
    let created = default
        .put_destination()
        .destination_name("d")
        .target_arn("arn:aws:kinesis:us-east-1:000000000000:stream/s")
        .role_arn("arn:aws:iam::000000000000:role/r")
        .send()
        .await
        .expect("put")
        .destination
        .expect("destination");
    assert_eq!(
        created.arn(),
        Some("arn:aws:logs:us-east-1:000000000000:destination:d")
    );
}
