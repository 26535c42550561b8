//! Filter patterns from a hostile caller, through the real CloudWatch Logs client: every
//! operation that takes a pattern refuses a bad one with InvalidParameterException, and no
//! pattern, good or bad, stops the shared server from answering.

mod common;

use std::future::Future;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use common::{fresh_account, logs_client};

/// Each of these once made the tokenizer loop, allocating until the process was killed: a
/// lone `!`, `&` or `|` is not an operator of the pattern language.
const LONE_OPERATORS: [&str; 6] = [
    "{ ! }",
    "{ $.a = 1 & $.b = 2 }",
    "{ $.a = 1 | $.b = 2 }",
    "[a, b!, c]",
    "[a=1 | a=2]",
    "[a=1 & b=2]",
];

/// A generous bound: a healthy server answers in milliseconds, a stuck one never does.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

async fn answered<T>(what: &str, call: impl Future<Output = T>) -> T {
    tokio::time::timeout(ANSWER_WITHIN, call)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {ANSWER_WITHIN:?}"))
}

fn error_code<T, E: ProvideErrorMetadata + std::fmt::Debug>(
    what: &str,
    result: Result<T, E>,
) -> String {
    match result {
        Ok(_) => panic!("{what}: accepted"),
        Err(err) => err
            .code()
            .unwrap_or_else(|| panic!("{what}: no error code: {err:?}"))
            .to_owned(),
    }
}

async fn assert_still_answers(client: &aws_sdk_cloudwatchlogs::Client) {
    let tested = answered(
        "TestMetricFilter afterwards",
        client
            .test_metric_filter()
            .filter_pattern("{ $.level = \"ERROR\" }")
            .log_event_messages(r#"{"level":"ERROR"}"#)
            .log_event_messages(r#"{"level":"INFO"}"#)
            .send(),
    )
    .await
    .expect("the server still answers");
    assert_eq!(tested.matches().len(), 1);
}

#[tokio::test]
async fn lone_operators_are_refused_by_every_operation_and_the_server_survives() {
    let account = fresh_account();
    let client = logs_client(&account);
    client
        .create_log_group()
        .log_group_name("g")
        .send()
        .await
        .expect("group");
    let destination = format!("arn:aws:kinesis:us-east-1:{account}:stream/s");
    let role = format!("arn:aws:iam::{account}:role/r");
    for pattern in LONE_OPERATORS {
        let what = format!("TestMetricFilter {pattern}");
        let result = answered(
            &what,
            client
                .test_metric_filter()
                .filter_pattern(pattern)
                .log_event_messages("a b c")
                .send(),
        )
        .await;
        assert_eq!(error_code(&what, result), "InvalidParameterException");

        let what = format!("FilterLogEvents {pattern}");
        let result = answered(
            &what,
            client
                .filter_log_events()
                .log_group_name("g")
                .filter_pattern(pattern)
                .send(),
        )
        .await;
        assert_eq!(error_code(&what, result), "InvalidParameterException");

        let what = format!("PutSubscriptionFilter {pattern}");
        let result = answered(
            &what,
            client
                .put_subscription_filter()
                .log_group_name("g")
                .filter_name("f")
                .filter_pattern(pattern)
                .destination_arn(&destination)
                .role_arn(&role)
                .send(),
        )
        .await;
        assert_eq!(error_code(&what, result), "InvalidParameterException");
    }
    assert_still_answers(&client).await;
}

#[tokio::test]
async fn deep_nesting_is_refused_with_a_clear_message() {
    let client = logs_client(&fresh_account());
    let pattern = format!("{{ {}$.a = 1{} }}", "(".repeat(40), ")".repeat(40));
    let result = answered(
        "TestMetricFilter",
        client
            .test_metric_filter()
            .filter_pattern(&pattern)
            .log_event_messages(r#"{"a":1}"#)
            .send(),
    )
    .await;
    let err = result.expect_err("too deep");
    assert_eq!(err.code(), Some("InvalidParameterException"));
    assert!(
        err.message().unwrap_or_default().contains("nested"),
        "{err:?}"
    );
    assert_still_answers(&client).await;
}

/// Sixty `...` fields against messages of hundreds of fields: trying every split would not
/// finish in the lifetime of the test; matching like a glob answers at once.
#[tokio::test]
async fn many_ellipses_are_matched_in_bounded_time() {
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
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let many_fields = "x ".repeat(400);
    let messages = [format!("{many_fields}7"), format!("{many_fields}8")];
    let mut put = client
        .put_log_events()
        .log_group_name("g")
        .log_stream_name("s");
    for message in &messages {
        put = put.log_events(
            InputLogEvent::builder()
                .timestamp(now)
                .message(message)
                .build()
                .expect("event"),
        );
    }
    answered("PutLogEvents", put.send()).await.expect("put");
    let pattern = format!("[{}last = 7]", "..., ".repeat(60));
    let tested = answered(
        "TestMetricFilter",
        client
            .test_metric_filter()
            .filter_pattern(&pattern)
            .set_log_event_messages(Some(messages.to_vec()))
            .send(),
    )
    .await
    .expect("test");
    let numbers: Vec<i64> = tested.matches().iter().map(|m| m.event_number()).collect();
    assert_eq!(numbers, [1]);
    let filtered = answered(
        "FilterLogEvents",
        client
            .filter_log_events()
            .log_group_name("g")
            .filter_pattern(&pattern)
            .send(),
    )
    .await
    .expect("filter");
    let found: Vec<&str> = filtered
        .events()
        .iter()
        .filter_map(|event| event.message())
        .collect();
    assert_eq!(found, [messages[0].as_str()]);
    assert_still_answers(&client).await;
}
