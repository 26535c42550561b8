//! CloudWatch Logs destinations through the real `aws-sdk-cloudwatchlogs` client.

mod common;

use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use aws_sdk_cloudwatchlogs::Client;
use common::{fresh_account, kinesis_client, logs_client, raw_json_call, shared};

fn stream_arn(account: &str, name: &str) -> String {
    format!("arn:aws:kinesis:us-east-1:{account}:stream/{name}")
}

fn role_arn(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/CWLtoKinesisRole")
}

/// Creates the Kinesis stream a destination points at: AWS refuses a destination whose
/// target does not exist (its test message cannot be delivered).
async fn create_stream(account: &str, name: &str) {
    let result = kinesis_client(account)
        .create_stream()
        .stream_name(name)
        .shard_count(1)
        .send()
        .await;
    if let Err(err) = result {
        let err = err.into_service_error();
        assert!(err.is_resource_in_use_exception(), "create_stream: {err:?}");
    }
}

/// The AWS error code and message of a failed call.
fn error<T, E: ProvideErrorMetadata>(result: Result<T, E>) -> (String, String) {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(err) => (
            err.code().unwrap_or_default().to_owned(),
            err.message().unwrap_or_default().to_owned(),
        ),
    }
}

async fn put(
    client: &Client,
    account: &str,
    name: &str,
) -> aws_sdk_cloudwatchlogs::types::Destination {
    create_stream(account, "s").await;
    client
        .put_destination()
        .destination_name(name)
        .target_arn(stream_arn(account, "s"))
        .role_arn(role_arn(account))
        .send()
        .await
        .expect("put_destination")
        .destination
        .expect("destination")
}

fn policy_for(accounts: &[&str], destination_arn: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": accounts},
            "Action": "logs:PutSubscriptionFilter",
            "Resource": destination_arn,
        }]
    })
    .to_string()
}

#[tokio::test]
async fn put_destination_creates_then_updates_in_place() {
    let account = fresh_account();
    let client = logs_client(&account);
    create_stream(&account, "one").await;
    create_stream(&account, "two").await;
    let before = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let created = client
        .put_destination()
        .destination_name("orders")
        .target_arn(stream_arn(&account, "one"))
        .role_arn(role_arn(&account))
        .tags("team", "payments")
        .send()
        .await
        .expect("create")
        .destination
        .expect("destination");
    assert_eq!(
        created.arn(),
        Some(format!("arn:aws:logs:us-east-1:{account}:destination:orders").as_str())
    );
    assert_eq!(created.destination_name(), Some("orders"));
    let creation_time = created.creation_time().expect("creationTime");
    assert!(
        creation_time >= before && creation_time < before + 60_000,
        "creationTime is epoch millis: {creation_time}"
    );
    assert_eq!(created.access_policy(), None);

    let updated = client
        .put_destination()
        .destination_name("orders")
        .target_arn(stream_arn(&account, "two"))
        .role_arn(role_arn(&account))
        .tags("ignored", "on-update")
        .send()
        .await
        .expect("update")
        .destination
        .expect("destination");
    assert_eq!(updated.arn(), created.arn());
    assert_eq!(updated.creation_time(), Some(creation_time));
    assert_eq!(
        updated.target_arn(),
        Some(stream_arn(&account, "two").as_str())
    );

    let tags = client
        .list_tags_for_resource()
        .resource_arn(created.arn().expect("arn"))
        .send()
        .await
        .expect("list tags")
        .tags
        .expect("tags");
    assert_eq!(tags.len(), 1);
    assert_eq!(tags.get("team").map(String::as_str), Some("payments"));
}

#[tokio::test]
async fn put_destination_enforces_the_model_with_aws_messages() {
    let account = fresh_account();
    let client = logs_client(&account);
    let attempt = |name: String, target: String, role: String| {
        let client = client.clone();
        async move {
            client
                .put_destination()
                .destination_name(name)
                .target_arn(target)
                .role_arn(role)
                .send()
                .await
        }
    };
    let (code, message) =
        error(attempt("a:b".into(), stream_arn(&account, "s"), role_arn(&account)).await);
    assert_eq!(code, "InvalidParameterException");
    assert_eq!(
        message,
        "1 validation error detected: Value 'a:b' at 'destinationName' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*"
    );
    let long = "x".repeat(513);
    let (code, message) =
        error(attempt(long.clone(), stream_arn(&account, "s"), role_arn(&account)).await);
    assert_eq!(code, "InvalidParameterException");
    assert_eq!(
        message,
        format!("1 validation error detected: Value '{long}' at 'destinationName' failed to satisfy constraint: Member must have length less than or equal to 512")
    );
    let (code, message) = error(attempt("*".into(), String::new(), role_arn(&account)).await);
    assert_eq!(code, "InvalidParameterException");
    assert!(
        message.starts_with("2 validation errors detected: "),
        "{message}"
    );

    for bad_target in [
        "not-an-arn".to_owned(),
        format!("arn:aws:sqs:us-east-1:{account}:queue"),
        "arn:aws:kinesis:us-east-1:12:stream/s".to_owned(),
    ] {
        let (code, message) =
            error(attempt("d".into(), bad_target.clone(), role_arn(&account)).await);
        assert_eq!(code, "InvalidParameterException", "{bad_target}");
        assert!(message.contains("targetArn"), "{message}");
    }
    // A Firehose target is well-formed; without such a stream the test message cannot be sent.
    let firehose = format!("arn:aws:firehose:us-east-1:{account}:deliverystream/f");
    let (code, message) = error(attempt("firehose".into(), firehose, role_arn(&account)).await);
    assert_eq!(code, "InvalidParameterException");
    assert_eq!(
        message,
        "Could not deliver test message to specified Firehose stream. Check if the given Firehose stream is in ACTIVE state."
    );
    for bad_role in [
        "role".to_owned(),
        format!("arn:aws:iam::{account}:user/u"),
        stream_arn(&account, "s"),
    ] {
        let (code, message) = error(attempt("d".into(), stream_arn(&account, "s"), bad_role).await);
        assert_eq!(code, "InvalidParameterException");
        assert!(message.contains("roleArn"), "{message}");
    }
}

#[tokio::test]
async fn describe_destinations_sorts_filters_and_pages() {
    let account = fresh_account();
    let client = logs_client(&account);
    for name in ["b", "a", "B", "_x", "ab", "a-1", "c"] {
        put(&client, &account, name).await;
    }
    let names = |output: &aws_sdk_cloudwatchlogs::operation::describe_destinations::DescribeDestinationsOutput| {
        output.destinations().iter().filter_map(|d| d.destination_name().map(str::to_owned)).collect::<Vec<_>>()
    };
    let all = client
        .describe_destinations()
        .send()
        .await
        .expect("describe");
    assert_eq!(names(&all), ["B", "_x", "a", "a-1", "ab", "b", "c"]);
    assert_eq!(all.next_token(), None);

    let prefixed = client
        .describe_destinations()
        .destination_name_prefix("a")
        .send()
        .await
        .expect("prefix");
    assert_eq!(names(&prefixed), ["a", "a-1", "ab"]);

    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .describe_destinations()
            .limit(3)
            .set_next_token(token)
            .send()
            .await
            .expect("page");
        assert!(page.destinations().len() <= 3);
        seen.extend(names(&page));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, names(&all));

    let paginated: Vec<String> = client
        .describe_destinations()
        .limit(2)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("paginator")
        .iter()
        .filter_map(|d| d.destination_name().map(str::to_owned))
        .collect();
    assert_eq!(paginated, names(&all));
}

#[tokio::test]
async fn describe_destinations_defaults_to_fifty_and_checks_limit_and_token() {
    let account = fresh_account();
    let client = logs_client(&account);
    for i in 0..55 {
        put(&client, &account, &format!("d{i:02}")).await;
    }
    let first = client
        .describe_destinations()
        .send()
        .await
        .expect("describe");
    assert_eq!(first.destinations().len(), 50);
    let token = first.next_token().expect("a second page").to_owned();
    let second = client
        .describe_destinations()
        .next_token(&token)
        .send()
        .await
        .expect("second page");
    assert_eq!(second.destinations().len(), 5);
    assert_eq!(second.next_token(), None);

    for (limit, bound) in [
        (0, "greater than or equal to 1"),
        (51, "less than or equal to 50"),
    ] {
        let (code, message) = error(client.describe_destinations().limit(limit).send().await);
        assert_eq!(code, "InvalidParameterException");
        assert_eq!(
            message,
            format!("1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value {bound}")
        );
    }
    let (code, _) = error(
        client
            .describe_destinations()
            .next_token("garbage")
            .send()
            .await,
    );
    assert_eq!(code, "InvalidParameterException");
    // A token is bound to its account: another account cannot replay it.
    let (code, _) = error(
        logs_client(&fresh_account())
            .describe_destinations()
            .next_token(&token)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidParameterException");
}

#[tokio::test]
async fn delete_destination_removes_it_and_reports_missing_ones() {
    let account = fresh_account();
    let client = logs_client(&account);
    put(&client, &account, "gone").await;
    client
        .delete_destination()
        .destination_name("gone")
        .send()
        .await
        .expect("delete");
    let listed = client
        .describe_destinations()
        .send()
        .await
        .expect("describe");
    assert!(listed.destinations().is_empty());
    let (code, message) = error(
        client
            .delete_destination()
            .destination_name("gone")
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    assert_eq!(message, "The specified destination does not exist.");
}

#[tokio::test]
async fn put_destination_policy_validates_and_honours_force_update() {
    let account = fresh_account();
    let client = logs_client(&account);
    let destination = put(&client, &account, "shared").await;
    let arn = destination.arn().expect("arn");
    let policy = policy_for(&["111111111111"], arn);
    client
        .put_destination_policy()
        .destination_name("shared")
        .access_policy(&policy)
        .send()
        .await
        .expect("policy");
    let described = client
        .describe_destinations()
        .send()
        .await
        .expect("describe");
    assert_eq!(
        described.destinations()[0].access_policy(),
        Some(policy.as_str())
    );

    for bad in [
        "{not json".to_owned(),
        r#"{"Statement":[{"Principal":{"AWS":"111111111111"},"Action":"logs:PutSubscriptionFilter"}]}"#.to_owned(),
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"logs:PutSubscriptionFilter"}]}"#.to_owned(),
        policy_for(&["111111111111"], &"x".repeat(5200)),
    ] {
        let (code, _) = error(client.put_destination_policy().destination_name("shared").access_policy(&bad).send().await);
        assert_eq!(code, "InvalidParameterException", "{bad}");
    }
    let (code, _) = error(
        client
            .put_destination_policy()
            .destination_name("missing")
            .access_policy(&policy)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");

    let org_policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": "*",
            "Action": "logs:PutSubscriptionFilter",
            "Resource": arn,
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": ["o-abcdef1234"]}},
        }]
    })
    .to_string();
    let (code, message) = error(
        client
            .put_destination_policy()
            .destination_name("shared")
            .access_policy(&org_policy)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidParameterException");
    assert!(message.contains("forceUpdate"), "{message}");
    client
        .put_destination_policy()
        .destination_name("shared")
        .access_policy(&org_policy)
        .force_update(true)
        .send()
        .await
        .expect("forced");
}

#[tokio::test]
async fn tags_on_destinations() {
    let account = fresh_account();
    let client = logs_client(&account);
    let arn = put(&client, &account, "tagged")
        .await
        .arn()
        .expect("arn")
        .to_owned();
    client
        .tag_resource()
        .resource_arn(&arn)
        .tags("a", "1")
        .tags("b", "2")
        .send()
        .await
        .expect("tag");
    client
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("a")
        .tag_keys("absent")
        .send()
        .await
        .expect("untag");
    let tags = client
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .expect("list")
        .tags
        .expect("tags");
    assert_eq!(
        tags.into_iter().collect::<Vec<_>>(),
        [("b".to_owned(), "2".to_owned())]
    );

    let mut request = client.tag_resource().resource_arn(&arn);
    for i in 0..50 {
        request = request.tags(format!("k{i}"), "v");
    }
    let (code, message) = error(request.send().await);
    assert_eq!(code, "TooManyTagsException");
    assert!(!message.is_empty());

    let (code, _) = error(
        client
            .tag_resource()
            .resource_arn(&arn)
            .tags("aws:owner", "x")
            .send()
            .await,
    );
    assert_eq!(code, "InvalidParameterException");

    let foreign = format!(
        "arn:aws:logs:us-east-1:{}:destination:tagged",
        fresh_account()
    );
    let (code, _) = error(
        client
            .list_tags_for_resource()
            .resource_arn(&foreign)
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    let missing = format!("arn:aws:logs:us-east-1:{account}:destination:nope");
    let (code, _) = error(
        client
            .tag_resource()
            .resource_arn(&missing)
            .tags("a", "b")
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
}

#[tokio::test]
async fn accounts_do_not_see_each_other() {
    let owner = fresh_account();
    let stranger = fresh_account();
    put(&logs_client(&owner), &owner, "private").await;
    let other = logs_client(&stranger);
    assert!(other
        .describe_destinations()
        .send()
        .await
        .expect("describe")
        .destinations()
        .is_empty());
    let (code, _) = error(
        other
            .delete_destination()
            .destination_name("private")
            .send()
            .await,
    );
    assert_eq!(code, "ResourceNotFoundException");
    assert_eq!(
        logs_client(&owner)
            .describe_destinations()
            .send()
            .await
            .expect("describe")
            .destinations()
            .len(),
        1
    );
}

#[tokio::test]
async fn wire_errors_for_input_clients_refuse_to_send() {
    let port = shared().port;
    let response = raw_json_call(
        port,
        "Logs_20140328.DescribeDestinations",
        "application/x-amz-json-1.1",
        "{not json",
    );
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["__type"], "SerializationException");
    assert_eq!(
        response.header("x-amzn-ErrorType"),
        Some("SerializationException")
    );
    assert!(response
        .header("x-amzn-RequestId")
        .is_some_and(|id| !id.is_empty()));

    let response = raw_json_call(
        port,
        "Logs_20140328.DescribeDestinations",
        "application/x-amz-json-1.1",
        r#"{"limit":"ten"}"#,
    );
    assert_eq!(
        (response.status, response.json()["__type"].as_str()),
        (400, Some("SerializationException"))
    );

    let response = raw_json_call(
        port,
        "Logs_20140328.NoSuchThing",
        "application/x-amz-json-1.1",
        "{}",
    );
    assert_eq!(
        (response.status, response.json()["__type"].as_str()),
        (400, Some("UnknownOperationException"))
    );

    let response = raw_json_call(
        port,
        "Logs_20140328.DescribeDestinations",
        "text/plain",
        "{}",
    );
    assert_eq!(response.status, 400);
    assert!(response.json()["__type"].is_string());

    let response = raw_json_call(
        port,
        "Logs_20140328.PutDestination",
        "application/x-amz-json-1.1",
        r#"{"destinationName":"x"}"#,
    );
    assert_eq!(response.json()["__type"], "InvalidParameterException");
    assert_eq!(
        response.json()["message"],
        "2 validation errors detected: Value null at 'targetArn' failed to satisfy constraint: Member must not be null; Value null at 'roleArn' failed to satisfy constraint: Member must not be null"
    );

    let response = raw_json_call(
        port,
        "Logs_20140328.StartQuery",
        "application/x-amz-json-1.1",
        "{}",
    );
    assert!(
        response.status >= 400 && response.status != 500,
        "{response:?}"
    );
}

#[tokio::test]
async fn browser_guards_and_health() {
    let port = shared().port;
    let unsigned = common::raw_request(
        port,
        "POST",
        "/",
        &[
            ("X-Amz-Target", "Logs_20140328.DescribeDestinations"),
            ("Content-Type", "application/x-amz-json-1.1"),
        ],
        b"{}",
    );
    assert_eq!(
        (unsigned.status, unsigned.json()["__type"].as_str()),
        (403, Some("MissingAuthenticationTokenException"))
    );

    let authorization = common::fake_authorization("111111111111", "logs");
    let signed_headers = |extra: (&'static str, &'static str)| {
        vec![
            ("X-Amz-Target", "Logs_20140328.DescribeDestinations"),
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Date", "20260101T000000Z"),
            ("Authorization", authorization.as_str()),
            extra,
        ]
    };
    let evil_origin = common::raw_request(
        port,
        "POST",
        "/",
        &signed_headers(("Origin", "http://evil.example")),
        b"{}",
    );
    assert_eq!(evil_origin.status, 403);
    let rebinding = common::raw_request(
        port,
        "POST",
        "/",
        &signed_headers(("Host", "evil.example:4566")),
        b"{}",
    );
    assert_eq!(rebinding.status, 403);
    assert!(
        rebinding.header("x-amzn-RequestId").is_some(),
        "every response carries a request id"
    );
    let preflight = common::raw_request(
        port,
        "OPTIONS",
        "/",
        &[("Origin", "http://evil.example")],
        b"",
    );
    assert_eq!(preflight.status, 403);
    assert!(preflight.header("access-control-allow-origin").is_none());

    let health = common::raw_request(port, "GET", "/_sluice/health", &[], b"");
    assert_eq!(health.status, 200);
    assert!(health.header("x-amzn-RequestId").is_some());
    let health = health.json();
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert!(health["services"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s == "logs")));
}

#[tokio::test]
async fn concurrent_changes_are_applied_or_aborted_never_lost() {
    let account = fresh_account();
    let client = logs_client(&account);
    let arn = put(&client, &account, "contended")
        .await
        .arn()
        .expect("arn")
        .to_owned();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let client = client.clone();
        let key = format!("k{i}");
        let arn = arn.clone();
        tasks.push(tokio::spawn(async move {
            let result = client
                .tag_resource()
                .resource_arn(arn)
                .tags(&key, "v")
                .send()
                .await;
            (
                key,
                result.map_err(|err| err.code().unwrap_or_default().to_owned()),
            )
        }));
    }
    let mut applied = Vec::new();
    for task in tasks {
        let (key, result) = task.await.expect("task");
        match result {
            Ok(_) => applied.push(key),
            Err(code) => assert_eq!(code, "OperationAbortedException"),
        }
    }
    assert!(!applied.is_empty());
    let tags = client
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .expect("list")
        .tags
        .expect("tags");
    let mut stored: Vec<String> = tags.into_keys().collect();
    stored.sort();
    applied.sort();
    assert_eq!(
        stored, applied,
        "every acknowledged tag is stored, and only those"
    );
}

#[tokio::test]
async fn put_destination_needs_a_target_stream_that_exists() {
    let account = fresh_account();
    let client = logs_client(&account);
    let attempt = || {
        client
            .put_destination()
            .destination_name("early")
            .target_arn(stream_arn(&account, "later"))
            .role_arn(role_arn(&account))
            .send()
    };
    let (code, message) = error(attempt().await);
    assert_eq!(code, "InvalidParameterException");
    assert_eq!(
        message,
        "Could not deliver test message to specified Kinesis stream. Check if the given kinesis stream is in ACTIVE state."
    );
    assert!(client
        .describe_destinations()
        .send()
        .await
        .expect("describe")
        .destinations()
        .is_empty());
    create_stream(&account, "later").await;
    attempt().await.expect("the stream exists now");
    // Moving an existing destination to a missing stream is refused too, and changes nothing.
    let moved = client
        .put_destination()
        .destination_name("early")
        .target_arn(stream_arn(&account, "missing"))
        .role_arn(role_arn(&account))
        .send()
        .await;
    assert_eq!(error(moved).0, "InvalidParameterException");
    let described = client
        .describe_destinations()
        .send()
        .await
        .expect("describe");
    assert_eq!(
        described.destinations()[0].target_arn(),
        Some(stream_arn(&account, "later").as_str())
    );
}
