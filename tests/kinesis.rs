//! Kinesis Data Streams through the real `aws-sdk-kinesis` client.

mod common;

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use aws_sdk_kinesis::Client;
use common::{fresh_account, kinesis_client, kinesis_client_with, Server};

async fn create(client: &Client, name: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .expect("create_stream");
}

async fn iterator(
    client: &Client,
    stream: &str,
    shard: &str,
    kind: ShardIteratorType,
    sequence: Option<&str>,
) -> String {
    client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(kind)
        .set_starting_sequence_number(sequence.map(str::to_owned))
        .send()
        .await
        .expect("get_shard_iterator")
        .shard_iterator
        .expect("iterator")
}

#[tokio::test]
async fn streams_are_created_described_listed_and_deleted() {
    let account = fresh_account();
    let client = kinesis_client(&account);
    create(&client, "orders", 3).await;
    let description = client
        .describe_stream()
        .stream_name("orders")
        .send()
        .await
        .expect("describe")
        .stream_description
        .expect("description");
    assert_eq!(
        description.stream_arn(),
        format!("arn:aws:kinesis:us-east-1:{account}:stream/orders")
    );
    assert_eq!(description.stream_status().as_str(), "ACTIVE");
    assert_eq!(description.shards().len(), 3);
    assert_eq!(
        description.shards()[0]
            .hash_key_range()
            .map(|r| r.starting_hash_key()),
        Some("0")
    );
    assert_eq!(
        description.shards()[2]
            .hash_key_range()
            .map(|r| r.ending_hash_key()),
        Some("340282366920938463463374607431768211455")
    );
    let summary = client
        .describe_stream_summary()
        .stream_arn(description.stream_arn())
        .send()
        .await
        .expect("summary");
    assert_eq!(
        summary
            .stream_description_summary()
            .map(|s| s.open_shard_count()),
        Some(3)
    );

    let err = client
        .create_stream()
        .stream_name("orders")
        .shard_count(1)
        .send()
        .await
        .expect_err("duplicate");
    assert_eq!(err.code(), Some("ResourceInUseException"));

    create(&client, "audit", 1).await;
    let listed = client.list_streams().send().await.expect("list");
    assert_eq!(listed.stream_names(), ["audit", "orders"]);
    let paged = client.list_streams().limit(1).send().await.expect("page");
    assert!(paged.has_more_streams());
    let rest = client
        .list_streams()
        .next_token(paged.next_token().expect("token"))
        .send()
        .await
        .expect("next");
    assert_eq!(rest.stream_names(), ["orders"]);

    let shards = client
        .list_shards()
        .stream_name("orders")
        .max_results(2)
        .send()
        .await
        .expect("list shards");
    assert_eq!(shards.shards().len(), 2);
    let more = client
        .list_shards()
        .next_token(shards.next_token().expect("token"))
        .send()
        .await
        .expect("more shards");
    assert_eq!(
        more.shards()
            .iter()
            .map(|s| s.shard_id())
            .collect::<Vec<_>>(),
        ["shardId-000000000002"]
    );

    client
        .delete_stream()
        .stream_name("orders")
        .send()
        .await
        .expect("delete");
    let err = client
        .describe_stream()
        .stream_name("orders")
        .send()
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    let other = kinesis_client(&fresh_account());
    let err = other
        .describe_stream()
        .stream_name("audit")
        .send()
        .await
        .expect_err("other account");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
}

#[tokio::test]
async fn records_are_routed_by_md5_and_read_back_in_order() {
    let account = fresh_account();
    let client = kinesis_client(&account);
    create(&client, "events", 2).await;
    let mut written = Vec::new();
    for i in 0..6 {
        let put = client
            .put_record()
            .stream_name("events")
            .partition_key(format!("key-{i}"))
            .data(Blob::new(format!("payload {i}")))
            .send()
            .await
            .expect("put_record");
        written.push((
            put.shard_id().to_owned(),
            put.sequence_number().to_owned(),
            i,
        ));
    }
    // MD5("key-0") = b4428b7e..., in the upper half of the hash space: shard 1 of 2;
    // MD5("key-1") = 21af6b8b..., in the lower half: shard 0.
    assert_eq!(written[0].0, "shardId-000000000001");
    assert_eq!(written[1].0, "shardId-000000000000");
    let batch = client
        .put_records()
        .stream_name("events")
        .records(
            PutRecordsRequestEntry::builder()
                .partition_key("x")
                .data(Blob::new("batch-1"))
                .explicit_hash_key("0")
                .build()
                .expect("entry"),
        )
        .records(
            PutRecordsRequestEntry::builder()
                .partition_key("x")
                .data(Blob::new("batch-2"))
                .explicit_hash_key("0")
                .build()
                .expect("entry"),
        )
        .send()
        .await
        .expect("put_records");
    assert_eq!(batch.failed_record_count(), Some(0));
    assert!(batch
        .records()
        .iter()
        .all(|r| r.shard_id() == Some("shardId-000000000000")));

    let mut seen = Vec::new();
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let it = iterator(
            &client,
            "events",
            shard,
            ShardIteratorType::TrimHorizon,
            None,
        )
        .await;
        let page = client
            .get_records()
            .shard_iterator(it)
            .send()
            .await
            .expect("get_records");
        assert_eq!(page.millis_behind_latest(), Some(0));
        let sequences: Vec<&str> = page.records().iter().map(|r| r.sequence_number()).collect();
        let mut sorted = sequences.clone();
        sorted.sort();
        assert_eq!(sequences, sorted, "records come back in sequence order");
        for record in page.records() {
            seen.push(String::from_utf8(record.data().as_ref().to_vec()).expect("utf-8"));
            assert!(record.approximate_arrival_timestamp().is_some());
        }
        let after = client
            .get_records()
            .shard_iterator(page.next_shard_iterator().expect("next"))
            .send()
            .await
            .expect("tail");
        assert!(after.records().is_empty());
    }
    seen.sort();
    let mut expected: Vec<String> = (0..6).map(|i| format!("payload {i}")).collect();
    expected.extend(["batch-1".to_owned(), "batch-2".to_owned()]);
    expected.sort();
    assert_eq!(seen, expected);

    // Positional iterators.
    let (shard, sequence, i) = &written[0];
    let at = iterator(
        &client,
        "events",
        shard,
        ShardIteratorType::AtSequenceNumber,
        Some(sequence),
    )
    .await;
    let page = client
        .get_records()
        .shard_iterator(at)
        .limit(1)
        .send()
        .await
        .expect("at");
    assert_eq!(
        page.records()[0].data().as_ref(),
        format!("payload {i}").as_bytes()
    );
    assert!(page.millis_behind_latest().is_some());
    let after = iterator(
        &client,
        "events",
        shard,
        ShardIteratorType::AfterSequenceNumber,
        Some(sequence),
    )
    .await;
    let page = client
        .get_records()
        .shard_iterator(after)
        .limit(1)
        .send()
        .await
        .expect("after");
    assert_ne!(page.records()[0].sequence_number(), sequence.as_str());

    let latest = iterator(
        &client,
        "events",
        "shardId-000000000000",
        ShardIteratorType::Latest,
        None,
    )
    .await;
    assert!(client
        .get_records()
        .shard_iterator(&latest)
        .send()
        .await
        .expect("latest")
        .records()
        .is_empty());
    client
        .put_record()
        .stream_name("events")
        .partition_key("k")
        .explicit_hash_key("1")
        .data(Blob::new("new"))
        .send()
        .await
        .expect("put");
    let page = client
        .get_records()
        .shard_iterator(&latest)
        .send()
        .await
        .expect("latest");
    assert_eq!(page.records().len(), 1);
    assert_eq!(page.records()[0].data().as_ref(), b"new");

    let future = client
        .get_shard_iterator()
        .stream_name("events")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::AtTimestamp)
        .timestamp(DateTime::from_secs(4_000_000_000))
        .send()
        .await
        .expect("at timestamp")
        .shard_iterator
        .expect("iterator");
    assert!(client
        .get_records()
        .shard_iterator(future)
        .send()
        .await
        .expect("future")
        .records()
        .is_empty());
    let past = client
        .get_shard_iterator()
        .stream_name("events")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::AtTimestamp)
        .timestamp(DateTime::from_secs(0))
        .send()
        .await
        .expect("at timestamp")
        .shard_iterator
        .expect("iterator");
    assert!(!client
        .get_records()
        .shard_iterator(past)
        .send()
        .await
        .expect("past")
        .records()
        .is_empty());
}

#[tokio::test]
async fn bad_input_gets_kinesis_errors() {
    let client = kinesis_client(&fresh_account());
    create(&client, "s", 1).await;
    let err = client
        .get_records()
        .shard_iterator("forged-iterator")
        .send()
        .await
        .expect_err("forged");
    assert_eq!(err.code(), Some("InvalidArgumentException"));
    let err = client
        .get_shard_iterator()
        .stream_name("s")
        .shard_id("shardId-000000000009")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect_err("no such shard");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    let err = client
        .put_record()
        .stream_name("missing")
        .partition_key("k")
        .data(Blob::new("x"))
        .send()
        .await
        .expect_err("missing");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    let err = client
        .create_stream()
        .stream_name("bad name!")
        .shard_count(1)
        .send()
        .await
        .expect_err("pattern");
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(err
        .message()
        .unwrap_or_default()
        .contains("Member must satisfy regular expression pattern"));
    let err = client
        .put_record()
        .stream_name("s")
        .partition_key("")
        .data(Blob::new("x"))
        .send()
        .await
        .expect_err("empty key");
    assert_eq!(err.code(), Some("ValidationException"));
    let err = client
        .get_shard_iterator()
        .stream_name("s")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .send()
        .await
        .expect_err("no sequence number");
    assert_eq!(err.code(), Some("InvalidArgumentException"));
}

#[tokio::test]
async fn records_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let account = fresh_account();
    let server = Server::start(dir.path(), &[]);
    let client = kinesis_client_with(&server.endpoint, &account);
    create(&client, "durable", 1).await;
    for i in 0..25 {
        client
            .put_record()
            .stream_name("durable")
            .partition_key(format!("{i}"))
            .data(Blob::new(format!("r{i}")))
            .send()
            .await
            .expect("put");
    }
    server.kill();
    let server = Server::start(dir.path(), &[]);
    let client = kinesis_client_with(&server.endpoint, &account);
    let it = iterator(
        &client,
        "durable",
        "shardId-000000000000",
        ShardIteratorType::TrimHorizon,
        None,
    )
    .await;
    let page = client
        .get_records()
        .shard_iterator(it)
        .send()
        .await
        .expect("read");
    let data: Vec<Vec<u8>> = page
        .records()
        .iter()
        .map(|r| r.data().as_ref().to_vec())
        .collect();
    let expected: Vec<Vec<u8>> = (0..25).map(|i| format!("r{i}").into_bytes()).collect();
    assert_eq!(data, expected);
}

fn stream_arn(account: &str, name: &str) -> String {
    format!("arn:aws:kinesis:us-east-1:{account}:stream/{name}")
}

fn write_grant(stream: &str, principal: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "CentralLogging",
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": ["kinesis:PutRecord", "kinesis:PutRecords"],
            "Resource": stream,
        }]
    })
    .to_string()
}

#[tokio::test]
async fn resource_policies_are_managed_by_the_stream_owner_only() {
    let (owner, stranger) = (fresh_account(), fresh_account());
    let client = kinesis_client(&owner);
    create(&client, "central", 1).await;
    let arn = stream_arn(&owner, "central");
    let policy = |client: &Client, arn: &str| {
        let request = client.get_resource_policy().resource_arn(arn);
        async move { request.send().await }
    };

    // A stream without a policy answers an empty document, as AWS does.
    let empty = policy(&client, &arn).await.expect("get");
    assert_eq!(empty.policy(), "{}");
    let err = client
        .delete_resource_policy()
        .resource_arn(&arn)
        .send()
        .await
        .expect_err("nothing to delete");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));

    let document = write_grant(&arn, "arn:aws:iam::222222222222:role/CWLtoKinesis");
    client
        .put_resource_policy()
        .resource_arn(&arn)
        .policy(&document)
        .send()
        .await
        .expect("put");
    assert_eq!(policy(&client, &arn).await.expect("get").policy(), document);
    let replacement = write_grant(&arn, "333333333333");
    client
        .put_resource_policy()
        .resource_arn(&arn)
        .policy(&replacement)
        .send()
        .await
        .expect("replace");
    assert_eq!(
        policy(&client, &arn).await.expect("get").policy(),
        replacement
    );

    // Another account can neither read nor replace nor delete it, and learns nothing of
    // whether a stream exists.
    let other = kinesis_client(&stranger);
    for target in [arn.clone(), stream_arn(&owner, "missing")] {
        let err = policy(&other, &target).await.expect_err("not the owner");
        assert_eq!(err.code(), Some("AccessDeniedException"), "{target}");
        // The API reference gives AccessDeniedException HTTP 400 in Kinesis.
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
        assert!(err
            .message()
            .unwrap_or_default()
            .contains("not authorized to perform: kinesis:GetResourcePolicy"));
        let err = other
            .put_resource_policy()
            .resource_arn(&target)
            .policy(write_grant(&target, &stranger))
            .send()
            .await
            .expect_err("not the owner");
        assert_eq!(err.code(), Some("AccessDeniedException"));
        let err = other
            .delete_resource_policy()
            .resource_arn(&target)
            .send()
            .await
            .expect_err("not the owner");
        assert_eq!(err.code(), Some("AccessDeniedException"));
    }
    assert_eq!(
        policy(&client, &arn).await.expect("get").policy(),
        replacement
    );

    // Bad documents and targets.
    for bad in [
        "not json".to_owned(),
        r#"{"Statement":{"Effect":"Allow","Action":"kinesis:PutRecord","Resource":"*"}}"#.to_owned(),
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"*"}}"#.to_owned(),
        format!(r#"{{"Statement":{{"Sid":"{}","Effect":"Allow","Principal":"*","Action":"kinesis:*"}}}}"#, "x".repeat(21_000)),
    ] {
        let err = client
            .put_resource_policy()
            .resource_arn(&arn)
            .policy(&bad)
            .send()
            .await
            .expect_err("invalid policy");
        assert_eq!(err.code(), Some("InvalidArgumentException"), "{bad:.80}");
    }
    let err = client
        .put_resource_policy()
        .resource_arn(stream_arn(&owner, "missing"))
        .policy(write_grant(&arn, "333333333333"))
        .send()
        .await
        .expect_err("no such stream");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    let err = client
        .put_resource_policy()
        .resource_arn(format!("{arn}/consumer/reader:1700000000"))
        .policy(write_grant(&arn, "333333333333"))
        .send()
        .await
        .expect_err("consumers are not served");
    assert_eq!(err.code(), Some("InvalidArgumentException"));
    assert!(err.message().unwrap_or_default().contains("consumers"));

    client
        .delete_resource_policy()
        .resource_arn(&arn)
        .send()
        .await
        .expect("delete");
    assert_eq!(policy(&client, &arn).await.expect("get").policy(), "{}");

    // Deleting the stream takes its policy with it.
    client
        .put_resource_policy()
        .resource_arn(&arn)
        .policy(&document)
        .send()
        .await
        .expect("put again");
    client
        .delete_stream()
        .stream_name("central")
        .send()
        .await
        .expect("delete stream");
    let err = policy(&client, &arn).await.expect_err("stream gone");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    create(&client, "central", 1).await;
    assert_eq!(policy(&client, &arn).await.expect("get").policy(), "{}");
}

#[tokio::test]
async fn retention_moves_one_way_per_call_within_aws_bounds() {
    let client = kinesis_client(&fresh_account());
    create(&client, "kept", 1).await;
    let summary_hours = |client: Client| async move {
        client
            .describe_stream_summary()
            .stream_name("kept")
            .send()
            .await
            .expect("summary")
            .stream_description_summary
            .expect("summary")
            .retention_period_hours
    };
    assert_eq!(summary_hours(client.clone()).await, 24);
    client
        .increase_stream_retention_period()
        .stream_name("kept")
        .retention_period_hours(168)
        .send()
        .await
        .expect("increase");
    let description = client
        .describe_stream()
        .stream_name("kept")
        .send()
        .await
        .expect("describe")
        .stream_description
        .expect("description");
    assert_eq!(description.retention_period_hours, 168);
    assert_eq!(summary_hours(client.clone()).await, 168);

    let refusals = [
        (
            client
                .increase_stream_retention_period()
                .stream_name("kept")
                .retention_period_hours(100)
                .send()
                .await
                .expect_err("shorter")
                .into_service_error()
                .meta()
                .clone(),
            "Requested retention period (100 hours) for stream kept can not be shorter than existing retention period (168 hours). Use DecreaseRetentionPeriod API.",
        ),
        (
            client
                .decrease_stream_retention_period()
                .stream_name("kept")
                .retention_period_hours(200)
                .send()
                .await
                .expect_err("longer")
                .into_service_error()
                .meta()
                .clone(),
            "Requested retention period (200 hours) for stream kept can not be longer than existing retention period (168 hours). Use IncreaseRetentionPeriod API.",
        ),
        (
            client
                .decrease_stream_retention_period()
                .stream_name("kept")
                .retention_period_hours(23)
                .send()
                .await
                .expect_err("too short")
                .into_service_error()
                .meta()
                .clone(),
            "Minimum allowed retention period is 24 hours. Requested retention period (23 hours) is too short.",
        ),
        (
            client
                .increase_stream_retention_period()
                .stream_name("kept")
                .retention_period_hours(8761)
                .send()
                .await
                .expect_err("too long")
                .into_service_error()
                .meta()
                .clone(),
            "Maximum allowed retention period is 8760 hours. Requested retention period (8761 hours) is too long.",
        ),
    ];
    for (err, message) in refusals {
        assert_eq!(err.code(), Some("InvalidArgumentException"));
        assert_eq!(err.message(), Some(message));
    }
    let err = client
        .increase_stream_retention_period()
        .stream_name("missing")
        .retention_period_hours(48)
        .send()
        .await
        .expect_err("missing stream");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));

    client
        .decrease_stream_retention_period()
        .stream_name("kept")
        .retention_period_hours(24)
        .send()
        .await
        .expect("decrease");
    assert_eq!(summary_hours(client.clone()).await, 24);
}
