//! Amazon Data Firehose through the real `aws-sdk-firehose` client, with the delivered
//! objects read back through `aws-sdk-s3`.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use aws_sdk_firehose::error::ProvideErrorMetadata;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::{
    BufferingHints, CompressionFormat, DeliveryStreamStatus, DeliveryStreamType,
    ExtendedS3DestinationConfiguration, ExtendedS3DestinationUpdate,
    KinesisStreamSourceConfiguration, Record, RedshiftDestinationConfiguration,
    S3DestinationConfiguration, Tag,
};
use aws_sdk_firehose::Client;
use common::{firehose_client_with, fresh_account, kinesis_client_with, s3_client_with, Server};

const ROLE: &str = "arn:aws:iam::123456789012:role/firehose";

fn clients(account: &str) -> (Client, aws_sdk_s3::Client) {
    let endpoint = &common::shared().endpoint;
    (
        firehose_client_with(endpoint, account),
        s3_client_with(endpoint, account),
    )
}

fn destination(bucket: &str, interval: i32) -> ExtendedS3DestinationConfiguration {
    ExtendedS3DestinationConfiguration::builder()
        .role_arn(ROLE)
        .bucket_arn(format!("arn:aws:s3:::{bucket}"))
        .buffering_hints(
            BufferingHints::builder()
                .interval_in_seconds(interval)
                .size_in_mbs(1)
                .build(),
        )
        .build()
        .expect("destination")
}

async fn create(client: &Client, name: &str, destination: ExtendedS3DestinationConfiguration) {
    client
        .create_delivery_stream()
        .delivery_stream_name(name)
        .extended_s3_destination_configuration(destination)
        .send()
        .await
        .expect("create_delivery_stream");
    wait_active(client, name).await;
}

/// Polls DescribeDeliveryStream until the stream is ACTIVE (generous bound).
async fn wait_active(client: &Client, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let described = client
            .describe_delivery_stream()
            .delivery_stream_name(name)
            .send()
            .await
            .expect("describe");
        let status = described
            .delivery_stream_description()
            .expect("description")
            .delivery_stream_status()
            .clone();
        if status == DeliveryStreamStatus::Active {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never became ACTIVE");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn make_bucket(s3: &aws_sdk_s3::Client, bucket: &str) {
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("create_bucket");
}

/// Every object of a bucket under a prefix: key and body.
async fn objects(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token)
            .send()
            .await
            .expect("list_objects_v2");
        for object in page.contents() {
            let key = object.key().expect("key").to_owned();
            let body = s3
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .expect("get_object")
                .body
                .collect()
                .await
                .expect("body")
                .into_bytes()
                .to_vec();
            out.push((key, body));
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return out;
        }
    }
}

/// Waits until the bucket's objects hold `expected_bytes` bytes of records (after `decode`).
async fn wait_delivered(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    expected_bytes: usize,
    decode: fn(&[u8]) -> Vec<u8>,
) -> Vec<(String, Vec<u8>)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found: Vec<(String, Vec<u8>)> = objects(s3, bucket)
            .await
            .into_iter()
            .map(|(key, body)| (key, decode(&body)))
            .collect();
        let total: usize = found.iter().map(|(_, body)| body.len()).sum();
        if total >= expected_bytes {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "only {total} of {expected_bytes} bytes delivered to {bucket}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn identity(body: &[u8]) -> Vec<u8> {
    body.to_vec()
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .expect("gzip object");
    out
}

/// Record `n`: distinct, of varied length, no delimiter of its own.
fn record(n: usize) -> Vec<u8> {
    format!("{{\"n\":{n:05},\"pad\":\"{}\"}}", "x".repeat(n % 37)).into_bytes()
}

/// The records' number at the start of an object body.
fn first_record(body: &[u8]) -> usize {
    std::str::from_utf8(&body[5..10])
        .expect("utf-8")
        .parse()
        .expect("record number")
}

async fn put_all(client: &Client, name: &str, count: usize) -> Vec<u8> {
    let mut all = Vec::new();
    let numbers: Vec<usize> = (0..count).collect();
    for chunk in numbers.chunks(500) {
        let mut request = client.put_record_batch().delivery_stream_name(name);
        for n in chunk {
            all.extend_from_slice(&record(*n));
            request = request.records(
                Record::builder()
                    .data(Blob::new(record(*n)))
                    .build()
                    .expect("record"),
            );
        }
        let answer = request.send().await.expect("put_record_batch");
        assert_eq!(answer.failed_put_count(), 0);
        assert_eq!(answer.encrypted(), Some(false));
        assert_eq!(answer.request_responses().len(), chunk.len());
        assert!(answer
            .request_responses()
            .iter()
            .all(|r| r.record_id().is_some_and(|id| !id.is_empty()) && r.error_code().is_none()));
    }
    all
}

/// Objects in the order of their first record, concatenated: each object is a run of
/// consecutive records, so this is every record exactly once, in order.
fn concatenated(mut found: Vec<(String, Vec<u8>)>) -> Vec<u8> {
    found.sort_by_key(|(_, body)| first_record(body));
    found.into_iter().flat_map(|(_, body)| body).collect()
}

/// `YYYY/MM/DD/HH/<name>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid><extension>`.
fn assert_default_key(key: &str, name: &str, version: u32, extension: &str) {
    let pattern = format!(
        r"^\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}}/{}-{version}-\d{{4}}-\d{{2}}-\d{{2}}-\d{{2}}-\d{{2}}-\d{{2}}-[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}{}$",
        regex::escape(name),
        regex::escape(extension)
    );
    assert!(
        regex::Regex::new(&pattern).expect("regex").is_match(key),
        "{key} is not {pattern}"
    );
    // The folders and the name's time are the same hour.
    let (folders, rest) = key.split_at(14);
    let time = &rest[rest.len() - extension.len() - 36 - 1 - 19..][..13];
    assert_eq!(folders.replace('/', "-"), format!("{time}-"), "{key}");
}

#[tokio::test]
async fn ten_thousand_records_arrive_in_order_byte_for_byte() {
    let account = fresh_account();
    let (firehose, s3) = clients(&account);
    let bucket = format!("fh-plain-{account}");
    make_bucket(&s3, &bucket).await;
    create(&firehose, "plain", destination(&bucket, 0)).await;

    let all = put_all(&firehose, "plain", 10_000).await;
    let found = wait_delivered(&s3, &bucket, all.len(), identity).await;
    for (key, _) in &found {
        assert_default_key(key, "plain", 1, "");
    }
    assert_eq!(concatenated(found), all);
}

#[tokio::test]
async fn gzip_objects_decompress_to_the_records() {
    let account = fresh_account();
    let (firehose, s3) = clients(&account);
    let bucket = format!("fh-gzip-{account}");
    make_bucket(&s3, &bucket).await;
    let mut config = destination(&bucket, 1);
    config.compression_format = Some(CompressionFormat::Gzip);
    config.prefix = Some("logs/!{timestamp:yyyy}/".to_owned());
    config.error_output_prefix = Some("errors/!{firehose:error-output-type}/".to_owned());
    create(&firehose, "zipped", config).await;

    let all = put_all(&firehose, "zipped", 2_000).await;
    let found = wait_delivered(&s3, &bucket, all.len(), gunzip).await;
    let year = time::OffsetDateTime::now_utc().year();
    for (key, _) in &found {
        let rest = key
            .strip_prefix(&format!("logs/{year}/zipped-1-"))
            .unwrap_or_else(|| panic!("{key} has not the evaluated prefix"));
        assert!(rest.ends_with(".gz"), "{key}");
    }
    assert_eq!(concatenated(found), all);
}

#[tokio::test]
async fn a_missing_bucket_does_not_hold_up_another_stream() {
    let account = fresh_account();
    let (firehose, s3) = clients(&account);
    let missing = format!("fh-later-{account}");
    let present = format!("fh-now-{account}");
    make_bucket(&s3, &present).await;
    create(&firehose, "stuck", destination(&missing, 0)).await;
    create(&firehose, "flowing", destination(&present, 0)).await;

    let stuck = put_all(&firehose, "stuck", 100).await;
    let flowing = put_all(&firehose, "flowing", 1_000).await;
    let found = wait_delivered(&s3, &present, flowing.len(), identity).await;
    assert_eq!(concatenated(found), flowing);

    // The failing writes are counted where an operator looks.
    let counter = |name: &str, stream: &str| {
        let text =
            common::raw_request(common::shared().port, "GET", "/_sluice/metrics", &[], b"").body;
        let label = format!("stream=\"{account}:us-east-1:{stream}\"");
        common::metric(&text, name, &label).unwrap_or(0.0)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while counter("sluice_firehose_write_failures_total", "stuck") < 1.0
        || counter("sluice_firehose_objects_total", "flowing") < 1.0
    {
        assert!(Instant::now() < deadline, "writes not counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counter("sluice_firehose_objects_total", "stuck"), 0.0);

    // The stuck stream keeps its records and delivers them once the bucket exists.
    make_bucket(&s3, &missing).await;
    let found = wait_delivered(&s3, &missing, stuck.len(), identity).await;
    assert_eq!(concatenated(found), stuck);
}

#[tokio::test]
async fn kinesis_stream_as_source_delivers_the_stream_from_trim_horizon() {
    let account = fresh_account();
    let endpoint = &common::shared().endpoint;
    let (firehose, s3) = clients(&account);
    let kinesis = kinesis_client_with(endpoint, &account);
    let bucket = format!("fh-kinesis-{account}");
    make_bucket(&s3, &bucket).await;
    kinesis
        .create_stream()
        .stream_name("source")
        .shard_count(1)
        .send()
        .await
        .expect("create_stream");
    let mut all = Vec::new();
    for n in 0..300 {
        all.extend_from_slice(&record(n));
        kinesis
            .put_record()
            .stream_name("source")
            .partition_key("k")
            .data(aws_sdk_kinesis::primitives::Blob::new(record(n)))
            .send()
            .await
            .expect("kinesis put_record");
    }
    let stream_arn = format!("arn:aws:kinesis:us-east-1:{account}:stream/source");

    // A stream that does not exist is refused.
    let err = firehose
        .create_delivery_stream()
        .delivery_stream_name("from-nowhere")
        .delivery_stream_type(DeliveryStreamType::KinesisStreamAsSource)
        .kinesis_stream_source_configuration(
            KinesisStreamSourceConfiguration::builder()
                .kinesis_stream_arn(format!("arn:aws:kinesis:us-east-1:{account}:stream/nope"))
                .role_arn(ROLE)
                .build()
                .expect("source"),
        )
        .extended_s3_destination_configuration(destination(&bucket, 0))
        .send()
        .await
        .expect_err("missing source stream");
    assert_eq!(err.code(), Some("InvalidArgumentException"));

    firehose
        .create_delivery_stream()
        .delivery_stream_name("from-kinesis")
        .delivery_stream_type(DeliveryStreamType::KinesisStreamAsSource)
        .kinesis_stream_source_configuration(
            KinesisStreamSourceConfiguration::builder()
                .kinesis_stream_arn(&stream_arn)
                .role_arn(ROLE)
                .build()
                .expect("source"),
        )
        .extended_s3_destination_configuration(destination(&bucket, 0))
        .send()
        .await
        .expect("create from kinesis");
    wait_active(&firehose, "from-kinesis").await;
    let described = firehose
        .describe_delivery_stream()
        .delivery_stream_name("from-kinesis")
        .send()
        .await
        .expect("describe");
    let description = described
        .delivery_stream_description()
        .expect("description");
    assert_eq!(
        description.delivery_stream_type(),
        &DeliveryStreamType::KinesisStreamAsSource
    );
    let source = description
        .source()
        .and_then(|s| s.kinesis_stream_source_description())
        .expect("source description");
    assert_eq!(source.kinesis_stream_arn(), Some(stream_arn.as_str()));

    // PutRecord is for DirectPut streams only.
    let err = firehose
        .put_record()
        .delivery_stream_name("from-kinesis")
        .record(
            Record::builder()
                .data(Blob::new("x"))
                .build()
                .expect("record"),
        )
        .send()
        .await
        .expect_err("put to a Kinesis-sourced stream");
    assert_eq!(err.code(), Some("InvalidArgumentException"));

    // Records put after creation follow the earlier ones.
    for n in 300..400 {
        all.extend_from_slice(&record(n));
        kinesis
            .put_record()
            .stream_name("source")
            .partition_key("k")
            .data(aws_sdk_kinesis::primitives::Blob::new(record(n)))
            .send()
            .await
            .expect("kinesis put_record");
    }
    let found = wait_delivered(&s3, &bucket, all.len(), identity).await;
    assert_eq!(concatenated(found), all);
}

#[tokio::test]
async fn every_acknowledged_record_is_delivered_after_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let account = fresh_account();
    // Delivery paused: the records are acknowledged and nothing is flushed before the kill.
    let server = Server::start(dir.path(), &["--pause-delivery"]);
    let firehose = firehose_client_with(&server.endpoint, &account);
    let s3 = s3_client_with(&server.endpoint, &account);
    let bucket = format!("fh-crash-{account}");
    make_bucket(&s3, &bucket).await;
    create(&firehose, "crash", destination(&bucket, 0)).await;
    let all = put_all(&firehose, "crash", 3_000).await;
    assert!(objects(&s3, &bucket).await.is_empty());
    server.kill();

    let server = Server::start(dir.path(), &[]);
    let s3 = s3_client_with(&server.endpoint, &account);
    let found = wait_delivered(&s3, &bucket, all.len(), identity).await;
    assert_eq!(concatenated(found), all);
}

#[tokio::test]
async fn control_plane_as_aws_answers() {
    let account = fresh_account();
    let (firehose, _) = clients(&account);
    let bucket = format!("fh-control-{account}");

    // Created with tags; CREATING at first, then ACTIVE.
    let created = firehose
        .create_delivery_stream()
        .delivery_stream_name("alpha")
        .extended_s3_destination_configuration(destination(&bucket, 60))
        .tags(
            Tag::builder()
                .key("team")
                .value("data")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(
        created.delivery_stream_arn(),
        Some(format!("arn:aws:firehose:us-east-1:{account}:deliverystream/alpha").as_str())
    );
    let err = firehose
        .delete_delivery_stream()
        .delivery_stream_name("alpha")
        .send()
        .await
        .expect_err("delete while CREATING");
    assert_eq!(err.code(), Some("ResourceInUseException"));
    let err = firehose
        .create_delivery_stream()
        .delivery_stream_name("alpha")
        .extended_s3_destination_configuration(destination(&bucket, 60))
        .send()
        .await
        .expect_err("duplicate");
    assert_eq!(err.code(), Some("ResourceInUseException"));
    wait_active(&firehose, "alpha").await;

    let described = firehose
        .describe_delivery_stream()
        .delivery_stream_name("alpha")
        .send()
        .await
        .expect("describe");
    let description = described
        .delivery_stream_description()
        .expect("description");
    assert_eq!(description.version_id(), "1");
    assert_eq!(
        description.delivery_stream_type(),
        &DeliveryStreamType::DirectPut
    );
    assert!(description.create_timestamp().is_some());
    assert!(!description.has_more_destinations());
    let only = &description.destinations()[0];
    assert_eq!(only.destination_id(), "destinationId-000000000001");
    let extended = only
        .extended_s3_destination_description()
        .expect("extended");
    assert_eq!(extended.bucket_arn(), format!("arn:aws:s3:::{bucket}"));
    assert_eq!(
        extended.compression_format(),
        &CompressionFormat::Uncompressed
    );
    let hints = extended.buffering_hints().expect("hints");
    assert_eq!(
        (hints.size_in_mbs(), hints.interval_in_seconds()),
        (Some(1), Some(60))
    );
    assert!(only.s3_destination_description().is_some());

    // Defaults: 5 MiB, 300 s. S3DestinationConfiguration is deprecated in the model, and
    // still served as AWS serves it.
    #[allow(deprecated)]
    firehose
        .create_delivery_stream()
        .delivery_stream_name("beta")
        .s3_destination_configuration(
            S3DestinationConfiguration::builder()
                .role_arn(ROLE)
                .bucket_arn(format!("arn:aws:s3:::{bucket}"))
                .build()
                .expect("s3 destination"),
        )
        .send()
        .await
        .expect("create beta");
    let described = firehose
        .describe_delivery_stream()
        .delivery_stream_name("beta")
        .send()
        .await
        .expect("describe beta");
    let hints = described
        .delivery_stream_description()
        .expect("d")
        .destinations()[0]
        .s3_destination_description()
        .expect("s3")
        .buffering_hints()
        .expect("hints")
        .clone();
    assert_eq!(
        (hints.size_in_mbs(), hints.interval_in_seconds()),
        (Some(5), Some(300))
    );
    create(&firehose, "gamma", destination(&bucket, 60)).await;

    // Listing: paging and the type filter.
    let page = firehose
        .list_delivery_streams()
        .limit(2)
        .send()
        .await
        .expect("list");
    assert_eq!(page.delivery_stream_names(), ["alpha", "beta"]);
    assert!(page.has_more_delivery_streams());
    let page = firehose
        .list_delivery_streams()
        .limit(2)
        .exclusive_start_delivery_stream_name("beta")
        .send()
        .await
        .expect("list after beta");
    assert_eq!(page.delivery_stream_names(), ["gamma"]);
    assert!(!page.has_more_delivery_streams());
    let page = firehose
        .list_delivery_streams()
        .delivery_stream_type(DeliveryStreamType::KinesisStreamAsSource)
        .send()
        .await
        .expect("list by type");
    assert!(page.delivery_stream_names().is_empty());

    // UpdateDestination: the version moves on; a stale one is refused.
    firehose
        .update_destination()
        .delivery_stream_name("alpha")
        .current_delivery_stream_version_id("1")
        .destination_id("destinationId-000000000001")
        .extended_s3_destination_update(
            ExtendedS3DestinationUpdate::builder()
                .prefix("v2/")
                .compression_format(CompressionFormat::Gzip)
                .build(),
        )
        .send()
        .await
        .expect("update");
    let err = firehose
        .update_destination()
        .delivery_stream_name("alpha")
        .current_delivery_stream_version_id("1")
        .destination_id("destinationId-000000000001")
        .extended_s3_destination_update(
            ExtendedS3DestinationUpdate::builder().prefix("v3/").build(),
        )
        .send()
        .await
        .expect_err("stale version");
    assert_eq!(err.code(), Some("ConcurrentModificationException"));
    let described = firehose
        .describe_delivery_stream()
        .delivery_stream_name("alpha")
        .send()
        .await
        .expect("describe after update");
    let description = described
        .delivery_stream_description()
        .expect("description");
    assert_eq!(description.version_id(), "2");
    assert!(description.last_update_timestamp().is_some());
    let extended = description.destinations()[0]
        .extended_s3_destination_description()
        .expect("extended");
    assert_eq!(extended.prefix(), Some("v2/"));
    assert_eq!(extended.compression_format(), &CompressionFormat::Gzip);

    // Tags: given at creation, added, paged, removed; at most 50.
    firehose
        .tag_delivery_stream()
        .delivery_stream_name("alpha")
        .tags(
            Tag::builder()
                .key("env")
                .value("test")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("tag");
    let tags = firehose
        .list_tags_for_delivery_stream()
        .delivery_stream_name("alpha")
        .limit(1)
        .send()
        .await
        .expect("list tags");
    assert_eq!(tags.tags()[0].key(), "env");
    assert!(tags.has_more_tags());
    let tags = firehose
        .list_tags_for_delivery_stream()
        .delivery_stream_name("alpha")
        .exclusive_start_tag_key("env")
        .send()
        .await
        .expect("list tags after env");
    assert_eq!(tags.tags()[0].key(), "team");
    assert_eq!(tags.tags()[0].value(), Some("data"));
    assert!(!tags.has_more_tags());
    firehose
        .untag_delivery_stream()
        .delivery_stream_name("alpha")
        .tag_keys("team")
        .send()
        .await
        .expect("untag");
    let mut too_many = firehose.tag_delivery_stream().delivery_stream_name("alpha");
    for n in 0..50 {
        too_many = too_many.tags(
            Tag::builder()
                .key(format!("k{n}"))
                .value("v")
                .build()
                .expect("tag"),
        );
    }
    let err = too_many.send().await.expect_err("51 tags");
    assert_eq!(err.code(), Some("LimitExceededException"));

    // Errors.
    let err = firehose
        .describe_delivery_stream()
        .delivery_stream_name("nope")
        .send()
        .await
        .expect_err("missing");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    assert_eq!(
        err.message(),
        Some(format!("Firehose nope under account {account} not found.").as_str())
    );
    let err = firehose
        .create_delivery_stream()
        .delivery_stream_name("redshift")
        .redshift_destination_configuration(
            RedshiftDestinationConfiguration::builder()
                .role_arn(ROLE)
                .cluster_jdbcurl("jdbc:redshift://examplecluster.abc123xyz789.us-west-2.redshift.amazonaws.com:5439/dev")
                .copy_command(
                    aws_sdk_firehose::types::CopyCommand::builder()
                        .data_table_name("t")
                        .build()
                        .expect("copy"),
                )
                .s3_configuration(
                    S3DestinationConfiguration::builder()
                        .role_arn(ROLE)
                        .bucket_arn(format!("arn:aws:s3:::{bucket}"))
                        .build()
                        .expect("s3"),
                )
                .build()
                .expect("redshift"),
        )
        .send()
        .await
        .expect_err("redshift");
    assert_eq!(err.code(), Some("InvalidArgumentException"));
    assert!(
        err.message().unwrap_or_default().contains("S3 only"),
        "{err:?}"
    );
    let mut zip = destination(&bucket, 60);
    zip.compression_format = Some(CompressionFormat::Zip);
    let err = firehose
        .create_delivery_stream()
        .delivery_stream_name("zip")
        .extended_s3_destination_configuration(zip)
        .send()
        .await
        .expect_err("zip");
    assert_eq!(err.code(), Some("InvalidArgumentException"));
    let mut no_error_prefix = destination(&bucket, 60);
    no_error_prefix.prefix = Some("!{timestamp:yyyy}/".to_owned());
    let err = firehose
        .create_delivery_stream()
        .delivery_stream_name("prefix")
        .extended_s3_destination_configuration(no_error_prefix)
        .send()
        .await
        .expect_err("expressions without ErrorOutputPrefix");
    assert_eq!(err.code(), Some("InvalidArgumentException"));
    let mut bad_hints = destination(&bucket, 60);
    bad_hints.buffering_hints = Some(BufferingHints::builder().size_in_mbs(129).build());
    let err = firehose
        .create_delivery_stream()
        .delivery_stream_name("hints")
        .extended_s3_destination_configuration(bad_hints)
        .send()
        .await
        .expect_err("129 MiB");
    assert_eq!(err.code(), Some("ValidationException"));
    let err = firehose
        .put_record_batch()
        .delivery_stream_name("alpha")
        .set_records(Some(
            (0..501)
                .map(|_| {
                    Record::builder()
                        .data(Blob::new("x"))
                        .build()
                        .expect("record")
                })
                .collect(),
        ))
        .send()
        .await
        .expect_err("501 records");
    assert_eq!(err.code(), Some("ValidationException"));
    let err = firehose
        .put_record()
        .delivery_stream_name("alpha")
        .record(
            Record::builder()
                .data(Blob::new(vec![b'x'; 1_024_001]))
                .build()
                .expect("record"),
        )
        .send()
        .await
        .expect_err("record over 1,000 KiB");
    assert_eq!(err.code(), Some("ValidationException"));
    let err = firehose
        .put_record_batch()
        .delivery_stream_name("alpha")
        .set_records(Some(
            (0..5)
                .map(|_| {
                    Record::builder()
                        .data(Blob::new(vec![b'x'; 1_000_000]))
                        .build()
                        .expect("record")
                })
                .collect(),
        ))
        .send()
        .await
        .expect_err("over 4 MiB");
    assert_eq!(err.code(), Some("InvalidArgumentException"));
    let put = firehose
        .put_record()
        .delivery_stream_name("alpha")
        .record(
            Record::builder()
                .data(Blob::new("one"))
                .build()
                .expect("record"),
        )
        .send()
        .await
        .expect("put_record");
    assert!(!put.record_id().is_empty());

    // Delete: gone afterwards.
    firehose
        .delete_delivery_stream()
        .delivery_stream_name("alpha")
        .allow_force_delete(true)
        .send()
        .await
        .expect("delete");
    let err = firehose
        .describe_delivery_stream()
        .delivery_stream_name("alpha")
        .send()
        .await
        .expect_err("deleted");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    let err = firehose
        .put_record()
        .delivery_stream_name("alpha")
        .record(
            Record::builder()
                .data(Blob::new("late"))
                .build()
                .expect("record"),
        )
        .send()
        .await
        .expect_err("put after delete");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
}

/// Every CloudWatch Logs envelope in a bucket: each object is gzip records concatenated.
async fn envelopes_in(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for (_, body) in objects(s3, bucket).await {
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(body.as_slice())
            .read_to_end(&mut text)
            .expect("gzip records");
        for value in serde_json::Deserializer::from_slice(&text).into_iter() {
            out.push(value.expect("an envelope"));
        }
    }
    out
}

fn messages(envelopes: &[serde_json::Value]) -> Vec<String> {
    envelopes
        .iter()
        .filter(|e| e["messageType"] == "DATA_MESSAGE")
        .flat_map(|e| e["logEvents"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect()
}

async fn log_group(logs: &aws_sdk_cloudwatchlogs::Client, group: &str) {
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
        .expect("log stream");
}

async fn put_events(logs: &aws_sdk_cloudwatchlogs::Client, group: &str, messages: &[&str]) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let mut request = logs
        .put_log_events()
        .log_group_name(group)
        .log_stream_name("s");
    for message in messages {
        request = request.log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now)
                .message(*message)
                .build()
                .expect("event"),
        );
    }
    request.send().await.expect("put events");
}

async fn wait_for_messages(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    want: &[&str],
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = envelopes_in(s3, bucket).await;
        if messages(&found) == want {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{want:?} not delivered: {:?}",
            messages(&found)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_subscription_filter_delivers_envelopes_through_firehose_into_s3() {
    let account = fresh_account();
    let (firehose, s3) = clients(&account);
    let logs = common::logs_client(&account);
    make_bucket(&s3, &format!("cwl-{account}")).await;
    create(
        &firehose,
        "from-logs",
        destination(&format!("cwl-{account}"), 0),
    )
    .await;
    log_group(&logs, "app").await;
    let stream_arn = format!("arn:aws:firehose:us-east-1:{account}:deliverystream/from-logs");
    let role = format!("arn:aws:iam::{account}:role/CWLtoFirehose");

    let refused = |arn: String, role: Option<String>| {
        logs.put_subscription_filter()
            .log_group_name("app")
            .filter_name("all")
            .filter_pattern("")
            .destination_arn(arn)
            .set_role_arn(role)
            .send()
    };
    let no_role = refused(stream_arn.clone(), None)
        .await
        .expect_err("no role");
    assert_eq!(
        no_role.message(),
        Some("destinationArn for vendor firehose cannot be used without roleArn")
    );
    let missing = refused(
        format!("arn:aws:firehose:us-east-1:{account}:deliverystream/missing"),
        Some(role.clone()),
    )
    .await
    .expect_err("missing stream");
    assert!(
        missing.message().is_some_and(
            |m| m.starts_with("Could not deliver test message to specified Firehose stream")
        ),
        "{missing:?}"
    );
    let elsewhere = refused(
        format!(
            "arn:aws:firehose:us-east-1:{}:deliverystream/from-logs",
            fresh_account()
        ),
        Some(role.clone()),
    )
    .await
    .expect_err("another account's stream");
    assert_eq!(elsewhere.code(), Some("InvalidParameterException"));

    refused(stream_arn, Some(role)).await.expect("subscribed");
    put_events(&logs, "app", &["first", "second"]).await;
    let found = wait_for_messages(&s3, &format!("cwl-{account}"), &["first", "second"]).await;
    let control = found
        .iter()
        .find(|e| e["messageType"] == "CONTROL_MESSAGE")
        .expect("a control message");
    assert_eq!(
        control["logEvents"][0]["message"],
        "CWL CONTROL MESSAGE: Checking health of destination Firehose."
    );
    let data = found
        .iter()
        .find(|e| e["messageType"] == "DATA_MESSAGE")
        .expect("data");
    assert_eq!(data["owner"], account.as_str());
    assert_eq!(data["logGroup"], "app");
    assert_eq!(data["subscriptionFilters"], serde_json::json!(["all"]));
}

#[tokio::test]
async fn another_account_delivers_through_a_destination_to_a_firehose_stream() {
    let (a, b) = (fresh_account(), fresh_account());
    let (b_firehose, b_s3) = clients(&b);
    let bucket = format!("central-{b}");
    make_bucket(&b_s3, &bucket).await;
    create(&b_firehose, "central", destination(&bucket, 0)).await;
    let b_logs = common::logs_client(&b);
    let put_destination = |target: String| {
        b_logs
            .put_destination()
            .destination_name("to-firehose")
            .target_arn(target)
            .role_arn(format!("arn:aws:iam::{b}:role/CWLtoFirehose"))
            .send()
    };
    let missing = put_destination(format!(
        "arn:aws:firehose:us-east-1:{b}:deliverystream/missing"
    ))
    .await
    .expect_err("a missing stream");
    assert_eq!(missing.code(), Some("InvalidParameterException"));
    let destination_arn = put_destination(format!(
        "arn:aws:firehose:us-east-1:{b}:deliverystream/central"
    ))
    .await
    .expect("destination")
    .destination()
    .and_then(|d| d.arn())
    .expect("arn")
    .to_owned();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "AWS": a },
            "Action": "logs:PutSubscriptionFilter",
            "Resource": destination_arn,
        }],
    });
    b_logs
        .put_destination_policy()
        .destination_name("to-firehose")
        .access_policy(policy.to_string())
        .send()
        .await
        .expect("policy");

    let a_logs = common::logs_client(&a);
    log_group(&a_logs, "from-a").await;
    a_logs
        .put_subscription_filter()
        .log_group_name("from-a")
        .filter_name("errors")
        .filter_pattern("ERROR")
        .destination_arn(&destination_arn)
        .send()
        .await
        .expect("subscribed through the destination");
    put_events(&a_logs, "from-a", &["ERROR one", "fine", "ERROR two"]).await;
    let found = wait_for_messages(&b_s3, &bucket, &["ERROR one", "ERROR two"]).await;
    let data = found
        .iter()
        .find(|e| e["messageType"] == "DATA_MESSAGE")
        .expect("data");
    assert_eq!(data["owner"], a.as_str(), "the envelope names the sender");
    assert_eq!(data["logGroup"], "from-a");
}

#[tokio::test]
async fn a_logs_destination_may_target_an_active_firehose_stream() {
    let account = fresh_account();
    let (firehose, _) = clients(&account);
    let logs = common::logs_client(&account);
    let target = format!("arn:aws:firehose:us-east-1:{account}:deliverystream/to-logs");
    let role = format!("arn:aws:iam::{account}:role/CWLtoFirehose");

    // AWS's test message fails while the stream does not exist.
    let err = logs
        .put_destination()
        .destination_name("before")
        .target_arn(&target)
        .role_arn(&role)
        .send()
        .await
        .expect_err("missing Firehose stream");
    assert_eq!(
        aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata::code(&err),
        Some("InvalidParameterException")
    );

    create(
        &firehose,
        "to-logs",
        destination(&format!("fh-logs-{account}"), 60),
    )
    .await;
    let put = logs
        .put_destination()
        .destination_name("after")
        .target_arn(&target)
        .role_arn(&role)
        .send()
        .await
        .expect("put_destination to an ACTIVE Firehose stream");
    assert_eq!(
        put.destination().and_then(|d| d.target_arn()),
        Some(target.as_str())
    );
}
