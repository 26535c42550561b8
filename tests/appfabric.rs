//! AppFabric through the real `aws-sdk-appfabric` client (and raw HTTP where a real client
//! refuses to build the input): app bundles, ingestions, ingestion destinations (seeds 000,
//! 001), app authorizations, tags, idempotency, pagination, errors and kill -9.

mod common;

use aws_sdk_appfabric::error::ProvideErrorMetadata;
use aws_sdk_appfabric::types::{
    ApiKeyCredential, AuditLogDestinationConfiguration, AuditLogProcessingConfiguration,
    AuthRequest, Credential, Destination, DestinationConfiguration, FirehoseStream, Format,
    IngestionState, Oauth2Credential, ProcessingConfiguration, S3Bucket, Schema, Tag, Tenant,
};
use aws_sdk_appfabric::Client;
use common::{
    appfabric_client, appfabric_client_with, fake_authorization, fresh_account, raw_request,
    shared, RawResponse, Server,
};
use serde_json::json;

const UUID_A: &str = "0f0e0d0c-0b0a-4909-8807-060504030201";
const UUID_B: &str = "1f0e0d0c-0b0a-4909-8807-060504030201";

/// The AWS error code of a failed call, and its HTTP status.
fn code<T, E: ProvideErrorMetadata + std::fmt::Debug>(result: Result<T, E>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(err) => err
            .code()
            .unwrap_or_else(|| panic!("no code in {err:?}"))
            .to_owned(),
    }
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().expect("tag")
}

fn processing() -> ProcessingConfiguration {
    ProcessingConfiguration::AuditLog(
        AuditLogProcessingConfiguration::builder()
            .schema(Schema::Ocsf)
            .format(Format::Json)
            .build()
            .expect("processing"),
    )
}

fn s3(bucket: &str) -> DestinationConfiguration {
    DestinationConfiguration::AuditLog(
        AuditLogDestinationConfiguration::builder()
            .destination(Destination::S3Bucket(
                S3Bucket::builder()
                    .bucket_name(bucket)
                    .prefix("audit/")
                    .build()
                    .expect("s3"),
            ))
            .build(),
    )
}

fn firehose(stream: &str) -> DestinationConfiguration {
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

fn uuid_of(arn: &str) -> &str {
    arn.rsplit('/').next().expect("uuid")
}

async fn bundle(client: &Client) -> String {
    client
        .create_app_bundle()
        .send()
        .await
        .expect("create bundle")
        .app_bundle
        .expect("bundle")
        .arn
}

async fn ingestion(client: &Client, bundle: &str, tenant: &str) -> String {
    client
        .create_ingestion()
        .app_bundle_identifier(bundle)
        .app("OKTA")
        .tenant_id(tenant)
        .ingestion_type("auditLog".into())
        .send()
        .await
        .expect("create ingestion")
        .ingestion
        .expect("ingestion")
        .arn
}

async fn destination(client: &Client, bundle: &str, ingestion: &str, bucket: &str) -> String {
    client
        .create_ingestion_destination()
        .app_bundle_identifier(bundle)
        .ingestion_identifier(ingestion)
        .processing_configuration(processing())
        .destination_configuration(s3(bucket))
        .send()
        .await
        .expect("create destination")
        .ingestion_destination
        .expect("destination")
        .arn
}

/// A rest-json request with a raw body, signed well enough for emulator mode.
fn raw(account: &str, method: &str, path: &str, body: &str) -> RawResponse {
    let authorization = fake_authorization(account, "appfabric");
    raw_request(
        shared().port,
        method,
        path,
        &[
            ("Content-Type", "application/json"),
            ("X-Amz-Date", "20260101T000000Z"),
            ("Authorization", &authorization),
        ],
        body.as_bytes(),
    )
}

fn encode(arn: &str) -> String {
    arn.replace(':', "%3A").replace('/', "%2F")
}

#[tokio::test]
async fn app_bundles_create_get_list_delete_with_quota() {
    let account = fresh_account();
    let client = appfabric_client(&account);
    let created = client
        .create_app_bundle()
        .customer_managed_key_identifier(UUID_A)
        .tags(tag("team", "sec"))
        .send()
        .await
        .expect("create")
        .app_bundle
        .expect("bundle");
    let arn = created.arn.clone();
    let prefix = format!("arn:aws:appfabric:us-east-1:{account}:appbundle/");
    assert!(arn.starts_with(&prefix), "{arn}");
    assert_eq!(uuid_of(&arn).len(), 36);
    assert_eq!(
        created.customer_managed_key_arn(),
        Some(format!("arn:aws:kms:us-east-1:{account}:key/{UUID_A}").as_str())
    );
    for identifier in [arn.as_str(), uuid_of(&arn)] {
        let got = client
            .get_app_bundle()
            .app_bundle_identifier(identifier)
            .send()
            .await
            .expect("get")
            .app_bundle
            .expect("bundle");
        assert_eq!(got.arn, arn);
        assert_eq!(
            got.customer_managed_key_arn,
            created.customer_managed_key_arn
        );
    }
    let listed = client.list_app_bundles().send().await.expect("list");
    assert_eq!(listed.app_bundle_summary_list().len(), 1);
    assert_eq!(listed.app_bundle_summary_list()[0].arn, arn);

    // One bundle per account and Region.
    let refused = client
        .create_app_bundle()
        .send()
        .await
        .expect_err("quota")
        .into_service_error();
    match refused {
        aws_sdk_appfabric::operation::create_app_bundle::CreateAppBundleError::ServiceQuotaExceededException(e) => {
            assert_eq!(e.service_code(), "appfabric");
            assert_eq!(e.resource_type(), "AppBundle");
            assert!(!e.quota_code().is_empty());
            assert!(!e.resource_id().is_empty());
        }
        other => panic!("expected ServiceQuotaExceededException, got {other:?}"),
    }
    let raw_refusal = raw(&account, "POST", "/appbundles", "{}");
    assert_eq!(raw_refusal.status, 402);

    client
        .delete_app_bundle()
        .app_bundle_identifier(&arn)
        .send()
        .await
        .expect("delete");
    let missing = client
        .get_app_bundle()
        .app_bundle_identifier(&arn)
        .send()
        .await
        .expect_err("gone")
        .into_service_error();
    match missing {
        aws_sdk_appfabric::operation::get_app_bundle::GetAppBundleError::ResourceNotFoundException(e) => {
            assert_eq!(e.resource_id(), arn);
            assert_eq!(e.resource_type(), "AppBundle");
        }
        other => panic!("expected ResourceNotFoundException, got {other:?}"),
    }
    // A bundle ARN of another account is not found either, and the quota slot is free again.
    let foreign = arn.replace(&account, "999999999999");
    assert_eq!(
        code(
            client
                .get_app_bundle()
                .app_bundle_identifier(foreign)
                .send()
                .await
        ),
        "ResourceNotFoundException"
    );
    bundle(&client).await;
    let raw_delete = raw(&account, "DELETE", &format!("/appbundles/{UUID_A}"), "");
    assert_eq!(raw_delete.status, 404);
    assert_eq!(raw_delete.json()["resourceType"], "AppBundle");
}

#[tokio::test]
async fn ingestions_start_stop_and_guard_their_bundle() {
    let account = fresh_account();
    let client = appfabric_client(&account);
    let bundle_arn = bundle(&client).await;
    let before =
        aws_smithy_types::DateTime::from_secs(time::OffsetDateTime::now_utc().unix_timestamp() - 1);
    let created = client
        .create_ingestion()
        .app_bundle_identifier(uuid_of(&bundle_arn))
        .app("OKTA")
        .tenant_id("example.okta.com")
        .ingestion_type("auditLog".into())
        .tags(tag("k", "v"))
        .send()
        .await
        .expect("create")
        .ingestion
        .expect("ingestion");
    assert!(
        created.arn.starts_with(&format!("{bundle_arn}/ingestion/")),
        "{}",
        created.arn
    );
    assert_eq!(created.app_bundle_arn, bundle_arn);
    assert_eq!(created.state, IngestionState::Enabled);
    assert!(created.created_at.secs() >= before.secs());
    assert_eq!(created.created_at, created.updated_at);

    let get = |bundle: String, ingestion: String| {
        let client = client.clone();
        async move {
            client
                .get_ingestion()
                .app_bundle_identifier(bundle)
                .ingestion_identifier(ingestion)
                .send()
                .await
                .expect("get")
                .ingestion
                .expect("ingestion")
        }
    };
    for (b, i) in [
        (bundle_arn.clone(), created.arn.clone()),
        (
            uuid_of(&bundle_arn).to_owned(),
            uuid_of(&created.arn).to_owned(),
        ),
        (uuid_of(&bundle_arn).to_owned(), created.arn.clone()),
    ] {
        assert_eq!(get(b, i).await.arn, created.arn);
    }

    // Same app and tenant again: a conflict.
    assert_eq!(
        code(
            client
                .create_ingestion()
                .app_bundle_identifier(&bundle_arn)
                .app("OKTA")
                .tenant_id("example.okta.com")
                .ingestion_type("auditLog".into())
                .send()
                .await
        ),
        "ConflictException"
    );

    let start = || {
        client
            .start_ingestion()
            .app_bundle_identifier(&bundle_arn)
            .ingestion_identifier(&created.arn)
            .send()
    };
    let stop = || {
        client
            .stop_ingestion()
            .app_bundle_identifier(&bundle_arn)
            .ingestion_identifier(&created.arn)
            .send()
    };
    assert_eq!(code(start().await), "ConflictException");
    stop().await.expect("stop");
    let stopped = get(bundle_arn.clone(), created.arn.clone()).await;
    assert_eq!(stopped.state, IngestionState::Disabled);
    assert!(stopped.updated_at.as_nanos() >= created.updated_at.as_nanos());
    assert_eq!(stopped.created_at, created.created_at);
    assert_eq!(code(stop().await), "ConflictException");
    start().await.expect("start");
    let listed = client
        .list_ingestions()
        .app_bundle_identifier(&bundle_arn)
        .send()
        .await
        .expect("list");
    assert_eq!(listed.ingestions().len(), 1);
    assert_eq!(listed.ingestions()[0].state, IngestionState::Enabled);
    assert_eq!(listed.ingestions()[0].tenant_id, "example.okta.com");

    // A bundle with ingestions cannot be deleted.
    let refused = client
        .delete_app_bundle()
        .app_bundle_identifier(&bundle_arn)
        .send()
        .await
        .expect_err("conflict")
        .into_service_error();
    match refused {
        aws_sdk_appfabric::operation::delete_app_bundle::DeleteAppBundleError::ConflictException(e) => {
            assert_eq!(e.resource_id(), bundle_arn);
            assert_eq!(e.resource_type(), "AppBundle");
        }
        other => panic!("expected ConflictException, got {other:?}"),
    }
    // An ingestion ARN under another bundle is not found, nor is a missing ingestion.
    let moved = created.arn.replace(uuid_of(&bundle_arn), UUID_B);
    for identifier in [moved.as_str(), UUID_A] {
        let err = client
            .get_ingestion()
            .app_bundle_identifier(&bundle_arn)
            .ingestion_identifier(identifier)
            .send()
            .await
            .expect_err("missing")
            .into_service_error();
        match err {
            aws_sdk_appfabric::operation::get_ingestion::GetIngestionError::ResourceNotFoundException(e) => {
                assert_eq!(e.resource_type(), "Ingestion");
                assert_eq!(e.resource_id(), identifier);
            }
            other => panic!("expected ResourceNotFoundException, got {other:?}"),
        }
    }
    // A started ingestion is not deleted (ValidationException: the model lists no
    // ConflictException for DeleteIngestion); a stopped one is.
    assert_eq!(
        code(
            client
                .delete_ingestion()
                .app_bundle_identifier(&bundle_arn)
                .ingestion_identifier(uuid_of(&created.arn))
                .send()
                .await
        ),
        "ValidationException"
    );
    client
        .stop_ingestion()
        .app_bundle_identifier(&bundle_arn)
        .ingestion_identifier(uuid_of(&created.arn))
        .send()
        .await
        .expect("stop ingestion");
    client
        .delete_ingestion()
        .app_bundle_identifier(&bundle_arn)
        .ingestion_identifier(uuid_of(&created.arn))
        .send()
        .await
        .expect("delete ingestion");
    client
        .delete_app_bundle()
        .app_bundle_identifier(&bundle_arn)
        .send()
        .await
        .expect("delete bundle");
}

#[tokio::test]
async fn ingestion_destinations_seed_000_and_001() {
    let account = fresh_account();
    let client = appfabric_client(&account);
    let bundle_arn = bundle(&client).await;
    let ingestion_arn = ingestion(&client, &bundle_arn, "t1").await;
    let created = client
        .create_ingestion_destination()
        .app_bundle_identifier(&bundle_arn)
        .ingestion_identifier(uuid_of(&ingestion_arn))
        .processing_configuration(processing())
        .destination_configuration(s3("audit-bucket"))
        .tags(tag("env", "test"))
        .send()
        .await
        .expect("create")
        .ingestion_destination
        .expect("destination");
    assert!(created
        .arn
        .starts_with(&format!("{ingestion_arn}/ingestiondestination/")));
    assert_eq!(created.ingestion_arn, ingestion_arn);
    assert_eq!(created.processing_configuration, Some(processing()));
    assert_eq!(created.destination_configuration, Some(s3("audit-bucket")));
    assert_eq!(created.status().map(|s| s.as_str()), Some("Active"));
    assert_eq!(created.status_reason(), None);
    let created_at = *created.created_at().expect("createdAt");
    assert_eq!(created.updated_at(), Some(&created_at));

    // Every path takes ARNs or UUIDs.
    for (b, i, d) in [
        (
            bundle_arn.as_str(),
            ingestion_arn.as_str(),
            created.arn.as_str(),
        ),
        (
            uuid_of(&bundle_arn),
            uuid_of(&ingestion_arn),
            uuid_of(&created.arn),
        ),
        (
            uuid_of(&bundle_arn),
            ingestion_arn.as_str(),
            uuid_of(&created.arn),
        ),
    ] {
        let got = client
            .get_ingestion_destination()
            .app_bundle_identifier(b)
            .ingestion_identifier(i)
            .ingestion_destination_identifier(d)
            .send()
            .await
            .expect("get")
            .ingestion_destination
            .expect("destination");
        assert_eq!(got.arn, created.arn);
    }

    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let updated = client
        .update_ingestion_destination()
        .app_bundle_identifier(uuid_of(&bundle_arn))
        .ingestion_identifier(&ingestion_arn)
        .ingestion_destination_identifier(&created.arn)
        .destination_configuration(firehose("audit-stream"))
        .send()
        .await
        .expect("update")
        .ingestion_destination
        .expect("destination");
    assert_eq!(updated.arn, created.arn);
    assert_eq!(
        updated.destination_configuration,
        Some(firehose("audit-stream"))
    );
    assert_eq!(updated.processing_configuration, Some(processing()));
    assert_eq!(updated.created_at(), Some(&created_at));
    let updated_at = updated.updated_at().expect("updatedAt");
    assert!(updated_at.as_nanos() > created_at.as_nanos());
    let reread = client
        .get_ingestion_destination()
        .app_bundle_identifier(&bundle_arn)
        .ingestion_identifier(&ingestion_arn)
        .ingestion_destination_identifier(uuid_of(&created.arn))
        .send()
        .await
        .expect("get")
        .ingestion_destination
        .expect("destination");
    assert_eq!(
        reread.destination_configuration,
        Some(firehose("audit-stream"))
    );
    assert_eq!(reread.updated_at(), Some(updated_at));

    // Timestamps travel as ISO 8601 strings, the rest-json form of this model.
    let wire = raw(
        &account,
        "GET",
        &format!(
            "/appbundles/{}/ingestions/{}/ingestiondestinations/{}",
            uuid_of(&bundle_arn),
            uuid_of(&ingestion_arn),
            uuid_of(&created.arn)
        ),
        "",
    );
    assert_eq!(wire.status, 200, "{}", wire.body);
    let created_text = wire.json()["ingestionDestination"]["createdAt"]
        .as_str()
        .expect("string timestamp")
        .to_owned();
    assert!(
        created_text.ends_with('Z') && created_text.contains('T'),
        "{created_text}"
    );

    // Five destinations per ingestion.
    for n in 2..=5 {
        destination(&client, &bundle_arn, &ingestion_arn, &format!("bucket-{n}")).await;
    }
    let refused = client
        .create_ingestion_destination()
        .app_bundle_identifier(&bundle_arn)
        .ingestion_identifier(&ingestion_arn)
        .processing_configuration(processing())
        .destination_configuration(s3("bucket-6"))
        .send()
        .await
        .expect_err("quota")
        .into_service_error();
    match refused {
        aws_sdk_appfabric::operation::create_ingestion_destination::CreateIngestionDestinationError::ServiceQuotaExceededException(e) => {
            assert_eq!(e.resource_type(), "IngestionDestination");
            assert_eq!(e.resource_id(), ingestion_arn);
            assert_eq!(e.service_code(), "appfabric");
        }
        other => panic!("expected ServiceQuotaExceededException, got {other:?}"),
    }
    let listed = client
        .list_ingestion_destinations()
        .app_bundle_identifier(&bundle_arn)
        .ingestion_identifier(&ingestion_arn)
        .send()
        .await
        .expect("list");
    assert_eq!(listed.ingestion_destinations().len(), 5);

    client
        .delete_ingestion_destination()
        .app_bundle_identifier(&bundle_arn)
        .ingestion_identifier(&ingestion_arn)
        .ingestion_destination_identifier(&created.arn)
        .send()
        .await
        .expect("delete");
    let gone = raw(
        &account,
        "GET",
        &format!(
            "/appbundles/{}/ingestions/{}/ingestiondestinations/{}",
            uuid_of(&bundle_arn),
            uuid_of(&ingestion_arn),
            uuid_of(&created.arn)
        ),
        "",
    );
    assert_eq!(gone.status, 404);
    assert_eq!(gone.json()["resourceType"], "IngestionDestination");
    assert_eq!(gone.json()["resourceId"], uuid_of(&created.arn));
    assert_eq!(
        code(
            client
                .update_ingestion_destination()
                .app_bundle_identifier(&bundle_arn)
                .ingestion_identifier(&ingestion_arn)
                .ingestion_destination_identifier(&created.arn)
                .destination_configuration(s3("x-bucket"))
                .send()
                .await
        ),
        "ResourceNotFoundException"
    );
    // A missing ingestion is named as such.
    let no_ingestion = raw(
        &account,
        "GET",
        &format!(
            "/appbundles/{}/ingestions/{UUID_A}/ingestiondestinations",
            uuid_of(&bundle_arn)
        ),
        "",
    );
    assert_eq!(no_ingestion.status, 404);
    assert_eq!(no_ingestion.json()["resourceType"], "Ingestion");
    // An ingestion is deleted only once stopped and without destinations.
    client
        .stop_ingestion()
        .app_bundle_identifier(&bundle_arn)
        .ingestion_identifier(&ingestion_arn)
        .send()
        .await
        .expect("stop ingestion");
    let remaining = client
        .list_ingestion_destinations()
        .app_bundle_identifier(&bundle_arn)
        .ingestion_identifier(&ingestion_arn)
        .send()
        .await
        .expect("list");
    assert!(!remaining.ingestion_destinations().is_empty());
    assert_eq!(
        code(
            client
                .delete_ingestion()
                .app_bundle_identifier(&bundle_arn)
                .ingestion_identifier(&ingestion_arn)
                .send()
                .await
        ),
        "ValidationException"
    );
    for destination in remaining.ingestion_destinations() {
        client
            .delete_ingestion_destination()
            .app_bundle_identifier(&bundle_arn)
            .ingestion_identifier(&ingestion_arn)
            .ingestion_destination_identifier(&destination.arn)
            .send()
            .await
            .expect("delete destination");
    }
    client
        .delete_ingestion()
        .app_bundle_identifier(&bundle_arn)
        .ingestion_identifier(&ingestion_arn)
        .send()
        .await
        .expect("delete ingestion");
    assert_eq!(
        code(
            client
                .list_ingestion_destinations()
                .app_bundle_identifier(&bundle_arn)
                .ingestion_identifier(&ingestion_arn)
                .send()
                .await
        ),
        "ResourceNotFoundException"
    );
}

#[tokio::test]
async fn unions_enums_lengths_and_types_are_validation_exceptions() {
    let account = fresh_account();
    let client = appfabric_client(&account);
    let bundle_arn = bundle(&client).await;
    let ingestion_arn = ingestion(&client, &bundle_arn, "t1").await;
    let path = format!(
        "/appbundles/{}/ingestions/{}/ingestiondestinations",
        uuid_of(&bundle_arn),
        uuid_of(&ingestion_arn)
    );
    let good_processing = json!({"auditLog": {"schema": "ocsf", "format": "json"}});
    let s3_only = json!({"s3Bucket": {"bucketName": "bkt"}});
    let cases = [
        (
            json!({"processingConfiguration": good_processing, "destinationConfiguration": {"auditLog": {"destination": {}}}}),
            "destinationConfiguration.auditLog.destination",
        ),
        (
            json!({"processingConfiguration": good_processing, "destinationConfiguration": {"auditLog": {"destination": {"s3Bucket": {"bucketName": "bkt"}, "firehoseStream": {"streamName": "str"}}}}}),
            "destinationConfiguration.auditLog.destination",
        ),
        (
            json!({"processingConfiguration": {}, "destinationConfiguration": {"auditLog": {"destination": s3_only}}}),
            "processingConfiguration",
        ),
        (
            json!({"processingConfiguration": {"auditLog": {"schema": "xml", "format": "json"}}, "destinationConfiguration": {"auditLog": {"destination": s3_only}}}),
            "processingConfiguration.auditLog.schema",
        ),
        (
            json!({"processingConfiguration": good_processing, "destinationConfiguration": {"auditLog": {"destination": {"s3Bucket": {"bucketName": "b"}}}}}),
            "destinationConfiguration.auditLog.destination.s3Bucket.bucketName",
        ),
        (
            json!({"processingConfiguration": good_processing}),
            "destinationConfiguration",
        ),
        (
            json!({"processingConfiguration": good_processing, "destinationConfiguration": {"auditLog": {"destination": s3_only}}, "clientToken": "not-a-uuid"}),
            "clientToken",
        ),
    ];
    for (body, field) in cases {
        let response = raw(&account, "POST", &path, &body.to_string());
        assert_eq!(response.status, 400, "{body}: {}", response.body);
        assert_eq!(
            response.header("x-amzn-ErrorType"),
            Some("ValidationException")
        );
        let error = response.json();
        assert_eq!(error["reason"], "fieldValidationFailed", "{body}");
        let names: Vec<&str> = error["fieldList"]
            .as_array()
            .expect("fieldList")
            .iter()
            .map(|f| f["name"].as_str().expect("name"))
            .collect();
        assert!(names.contains(&field), "{body}: {names:?}");
        assert!(error["message"]
            .as_str()
            .expect("message")
            .contains("validation error"));
    }
    // A bad identifier in the path, too.
    let bad_path = raw(&account, "GET", "/appbundles/not-an-id/ingestions", "");
    assert_eq!(bad_path.status, 400);
    assert_eq!(
        bad_path.json()["fieldList"][0]["name"],
        "appBundleIdentifier"
    );
    // Wrong JSON types and malformed bodies: AppFabric has no SerializationException.
    for body in [
        json!({"processingConfiguration": "ocsf", "destinationConfiguration": {}}).to_string(),
        "{not json".to_owned(),
    ] {
        let response = raw(&account, "POST", &path, &body);
        assert_eq!(response.status, 400, "{}", response.body);
        assert_eq!(response.json()["__type"], "ValidationException");
        assert_eq!(response.json()["reason"], "cannotParse");
    }
    let bad_max = raw(&account, "GET", "/appbundles?maxResults=abc", "");
    assert_eq!(bad_max.json()["reason"], "cannotParse");
    // Nothing was created by any of them.
    let listed = client
        .list_ingestion_destinations()
        .app_bundle_identifier(&bundle_arn)
        .ingestion_identifier(&ingestion_arn)
        .send()
        .await
        .expect("list");
    assert!(listed.ingestion_destinations().is_empty());
}

#[tokio::test]
async fn client_tokens_make_creates_idempotent() {
    let account = fresh_account();
    let client = appfabric_client(&account);
    let token = "00000000-1111-4222-8333-444444444444";
    let first = client
        .create_app_bundle()
        .client_token(token)
        .send()
        .await
        .expect("create")
        .app_bundle
        .expect("bundle");
    // The same token again answers the original bundle (the quota would refuse a second).
    let again = client
        .create_app_bundle()
        .client_token(token)
        .send()
        .await
        .expect("replay")
        .app_bundle
        .expect("bundle");
    assert_eq!(again.arn, first.arn);
    assert_eq!(
        client
            .list_app_bundles()
            .send()
            .await
            .expect("list")
            .app_bundle_summary_list()
            .len(),
        1
    );
    // The same token with other parameters is refused.
    let mismatch = client
        .create_app_bundle()
        .client_token(token)
        .tags(tag("a", "b"))
        .send()
        .await
        .expect_err("mismatch")
        .into_service_error();
    match mismatch {
        aws_sdk_appfabric::operation::create_app_bundle::CreateAppBundleError::ConflictException(e) => {
            assert_eq!(e.resource_id(), token);
        }
        other => panic!("expected ConflictException, got {other:?}"),
    }

    let ingestion_token = "10000000-1111-4222-8333-444444444444";
    let make = |tenant: &'static str| {
        client
            .create_ingestion()
            .client_token(ingestion_token)
            .app_bundle_identifier(&first.arn)
            .app("OKTA")
            .tenant_id(tenant)
            .ingestion_type("auditLog".into())
            .send()
    };
    let one = make("t1").await.expect("create").ingestion.expect("i");
    // The bundle named by UUID instead of ARN is the same parameter.
    let two = client
        .create_ingestion()
        .client_token(ingestion_token)
        .app_bundle_identifier(uuid_of(&first.arn))
        .app("OKTA")
        .tenant_id("t1")
        .ingestion_type("auditLog".into())
        .send()
        .await
        .expect("replay")
        .ingestion
        .expect("i");
    assert_eq!(one.arn, two.arn);
    assert_eq!(one.created_at, two.created_at);
    assert_eq!(code(make("t2").await), "ConflictException");
    // Tokens are scoped to the operation: the bundle's token is free for an ingestion.
    client
        .create_ingestion()
        .client_token(token)
        .app_bundle_identifier(&first.arn)
        .app("SLACK")
        .tenant_id("t1")
        .ingestion_type("auditLog".into())
        .send()
        .await
        .expect("other operation");

    let destination_token = "20000000-1111-4222-8333-444444444444";
    let create_destination = |bucket: &'static str| {
        client
            .create_ingestion_destination()
            .client_token(destination_token)
            .app_bundle_identifier(&first.arn)
            .ingestion_identifier(&one.arn)
            .processing_configuration(processing())
            .destination_configuration(s3(bucket))
            .send()
    };
    let d1 = create_destination("bucket-one").await.expect("create");
    let d2 = create_destination("bucket-one").await.expect("replay");
    assert_eq!(
        d1.ingestion_destination.expect("d").arn,
        d2.ingestion_destination.expect("d").arn
    );
    assert_eq!(
        code(create_destination("bucket-two").await),
        "ConflictException"
    );
    let listed = client
        .list_ingestion_destinations()
        .app_bundle_identifier(&first.arn)
        .ingestion_identifier(&one.arn)
        .send()
        .await
        .expect("list");
    assert_eq!(listed.ingestion_destinations().len(), 1);
    let ingestions = client
        .list_ingestions()
        .app_bundle_identifier(&first.arn)
        .send()
        .await
        .expect("list");
    assert_eq!(ingestions.ingestions().len(), 2);

    // Tokens belong to an account.
    let other = appfabric_client(&fresh_account());
    let theirs = other
        .create_app_bundle()
        .client_token(token)
        .send()
        .await
        .expect("other account")
        .app_bundle
        .expect("bundle");
    assert_ne!(theirs.arn, first.arn);
}

#[tokio::test]
async fn lists_page_with_max_results_and_signed_tokens() {
    let account = fresh_account();
    let client = appfabric_client(&account);
    let bundle_arn = bundle(&client).await;
    let mut expected = Vec::new();
    for n in 0..7 {
        expected.push(ingestion(&client, &bundle_arn, &format!("tenant-{n}")).await);
    }
    expected.sort_by(|a, b| uuid_of(a).cmp(uuid_of(b)));
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let page = client
            .list_ingestions()
            .app_bundle_identifier(&bundle_arn)
            .max_results(3)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("page");
        pages.push(page.ingestions().len());
        seen.extend(page.ingestions().iter().map(|i| i.arn.clone()));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, [3, 3, 1]);
    assert_eq!(seen, expected);

    // The paginator of the SDK walks the same pages.
    let all: Vec<_> = client
        .list_ingestions()
        .app_bundle_identifier(&bundle_arn)
        .max_results(2)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    assert_eq!(all.len(), 7);

    for bad in [0, 101] {
        let response = raw(
            &account,
            "GET",
            &format!(
                "/appbundles/{}/ingestions?maxResults={bad}",
                uuid_of(&bundle_arn)
            ),
            "",
        );
        assert_eq!(response.status, 400);
        assert_eq!(response.json()["fieldList"][0]["name"], "maxResults");
    }
    assert_eq!(
        code(
            client
                .list_ingestions()
                .app_bundle_identifier(&bundle_arn)
                .next_token("forged.token")
                .send()
                .await
        ),
        "ValidationException"
    );
    // A token is bound to its account.
    let first = client
        .list_ingestions()
        .app_bundle_identifier(&bundle_arn)
        .max_results(1)
        .send()
        .await
        .expect("page");
    let stolen = first.next_token().expect("token");
    let other = appfabric_client(&fresh_account());
    let other_bundle = bundle(&other).await;
    assert_eq!(
        code(
            other
                .list_ingestions()
                .app_bundle_identifier(other_bundle)
                .next_token(stolen)
                .send()
                .await
        ),
        "ValidationException"
    );
}

#[tokio::test]
async fn tags_on_every_taggable_arn_decoded_once() {
    let account = fresh_account();
    let client = appfabric_client(&account);
    let bundle_arn = client
        .create_app_bundle()
        .tags(tag("created", "yes"))
        .send()
        .await
        .expect("bundle")
        .app_bundle
        .expect("bundle")
        .arn;
    let ingestion_arn = ingestion(&client, &bundle_arn, "t").await;
    let destination_arn = destination(&client, &bundle_arn, &ingestion_arn, "bkt").await;
    let authorization_arn = client
        .create_app_authorization()
        .app_bundle_identifier(&bundle_arn)
        .app("SLACK")
        .auth_type("apiKey".into())
        .credential(Credential::ApiKeyCredential(
            ApiKeyCredential::builder()
                .api_key("k")
                .build()
                .expect("key"),
        ))
        .tenant(
            Tenant::builder()
                .tenant_identifier("t")
                .tenant_display_name("T")
                .build()
                .expect("tenant"),
        )
        .send()
        .await
        .expect("authorization")
        .app_authorization
        .expect("authorization")
        .app_authorization_arn;
    for arn in [
        &bundle_arn,
        &ingestion_arn,
        &destination_arn,
        &authorization_arn,
    ] {
        client
            .tag_resource()
            .resource_arn(arn)
            .tags(tag("team", "sec"))
            .tags(tag("empty", ""))
            .send()
            .await
            .unwrap_or_else(|e| panic!("tag {arn}: {e:?}"));
        client
            .untag_resource()
            .resource_arn(arn)
            .tag_keys("empty")
            .tag_keys("absent")
            .send()
            .await
            .expect("untag");
        let tags = client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .expect("list tags")
            .tags
            .unwrap_or_default();
        assert!(tags.contains(&tag("team", "sec")), "{arn}: {tags:?}");
        assert!(!tags.iter().any(|t| t.key == "empty"));
    }
    let bundle_tags = client
        .list_tags_for_resource()
        .resource_arn(&bundle_arn)
        .send()
        .await
        .expect("tags")
        .tags
        .unwrap_or_default();
    assert_eq!(bundle_tags, [tag("created", "yes"), tag("team", "sec")]);

    // The ARN travels percent-encoded once; decoding it twice would be wrong.
    let once = raw(
        &account,
        "GET",
        &format!("/tags/{}", encode(&destination_arn)),
        "",
    );
    assert_eq!(once.status, 200, "{}", once.body);
    let twice = raw(
        &account,
        "GET",
        &format!("/tags/{}", encode(&destination_arn).replace('%', "%25")),
        "",
    );
    assert_eq!(twice.status, 400, "{}", twice.body);

    // Limits: 50 tags per resource, keys 1-128, values 0-256, no aws: prefix.
    let many: Vec<Tag> = (0..49).map(|n| tag(&format!("k{n}"), "v")).collect();
    client
        .tag_resource()
        .resource_arn(&ingestion_arn)
        .set_tags(Some(many))
        .send()
        .await
        .expect("50 tags");
    assert_eq!(
        code(
            client
                .tag_resource()
                .resource_arn(&ingestion_arn)
                .tags(tag("one-too-many", "v"))
                .send()
                .await
        ),
        "ValidationException"
    );
    for (key, value) in [
        ("k".repeat(129), "v".to_owned()),
        ("k".to_owned(), "v".repeat(257)),
        ("aws:reserved".to_owned(), "v".to_owned()),
    ] {
        assert_eq!(
            code(
                client
                    .tag_resource()
                    .resource_arn(&bundle_arn)
                    .tags(tag(&key, &value))
                    .send()
                    .await
            ),
            "ValidationException"
        );
    }
    // Unknown resources: a missing AppFabric resource is not found; another service's ARN is
    // not an AppFabric ARN at all.
    let missing = ingestion_arn.replace(uuid_of(&ingestion_arn), UUID_A);
    assert_eq!(
        code(
            client
                .list_tags_for_resource()
                .resource_arn(missing)
                .send()
                .await
        ),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(
            client
                .list_tags_for_resource()
                .resource_arn("arn:aws:s3:::bucket")
                .send()
                .await
        ),
        "ValidationException"
    );
}

#[tokio::test]
async fn app_authorizations_connect_update_and_keep_secrets() {
    let account = fresh_account();
    let client = appfabric_client(&account);
    let bundle_arn = bundle(&client).await;
    let tenant = |name: &str| {
        Tenant::builder()
            .tenant_identifier("tenant-1")
            .tenant_display_name(name)
            .build()
            .expect("tenant")
    };
    let api_key = |key: &str| {
        Credential::ApiKeyCredential(ApiKeyCredential::builder().api_key(key).build().expect("k"))
    };
    // An app Sluice has no connector for: Connect does not call out to it (the connected
    // apps are tested against a stand-in in appfabric_delivery.rs).
    let created = client
        .create_app_authorization()
        .app_bundle_identifier(&bundle_arn)
        .app("ASANA")
        .auth_type("apiKey".into())
        .credential(api_key("SECRET-API-KEY-1"))
        .tenant(tenant("One"))
        .send()
        .await
        .expect("create")
        .app_authorization
        .expect("authorization");
    assert!(created
        .app_authorization_arn
        .starts_with(&format!("{bundle_arn}/appauthorization/")));
    assert_eq!(created.status.as_str(), "PendingConnect");
    assert_eq!(created.auth_type.as_str(), "apiKey");
    assert_eq!(created.app_bundle_arn, bundle_arn);

    let connected = client
        .connect_app_authorization()
        .app_bundle_identifier(uuid_of(&bundle_arn))
        .app_authorization_identifier(&created.app_authorization_arn)
        .send()
        .await
        .expect("connect")
        .app_authorization_summary
        .expect("summary");
    assert_eq!(connected.status.as_str(), "Connected");

    let updated = client
        .update_app_authorization()
        .app_bundle_identifier(&bundle_arn)
        .app_authorization_identifier(uuid_of(&created.app_authorization_arn))
        .credential(api_key("SECRET-API-KEY-2"))
        .tenant(tenant("Renamed"))
        .send()
        .await
        .expect("update")
        .app_authorization
        .expect("authorization");
    assert_eq!(
        updated.tenant.expect("tenant").tenant_display_name,
        "Renamed"
    );
    assert_eq!(updated.status.as_str(), "PendingConnect");
    assert_eq!(updated.created_at, created.created_at);
    // A credential of the other auth type is refused.
    assert_eq!(
        code(
            client
                .update_app_authorization()
                .app_bundle_identifier(&bundle_arn)
                .app_authorization_identifier(&created.app_authorization_arn)
                .credential(Credential::Oauth2Credential(
                    Oauth2Credential::builder()
                        .client_id("id")
                        .client_secret("s")
                        .build()
                        .expect("oauth2")
                ))
                .send()
                .await
        ),
        "ValidationException"
    );

    let oauth = client
        .create_app_authorization()
        .app_bundle_identifier(&bundle_arn)
        .app("DROPBOX")
        .auth_type("oauth2".into())
        .credential(Credential::Oauth2Credential(
            Oauth2Credential::builder()
                .client_id("client")
                .client_secret("SECRET-CLIENT-SECRET")
                .build()
                .expect("oauth2"),
        ))
        .tenant(tenant("Box"))
        .send()
        .await
        .expect("oauth2")
        .app_authorization
        .expect("authorization");
    assert_eq!(oauth.status.as_str(), "PendingConnect");
    // OAuth2 needs the authorization code to connect.
    assert_eq!(
        code(
            client
                .connect_app_authorization()
                .app_bundle_identifier(&bundle_arn)
                .app_authorization_identifier(&oauth.app_authorization_arn)
                .send()
                .await
        ),
        "ValidationException"
    );
    let connected = client
        .connect_app_authorization()
        .app_bundle_identifier(&bundle_arn)
        .app_authorization_identifier(&oauth.app_authorization_arn)
        .auth_request(
            AuthRequest::builder()
                .redirect_uri("https://example.com/callback")
                .code("SECRET-AUTH-CODE")
                .build()
                .expect("auth request"),
        )
        .send()
        .await
        .expect("connect oauth2")
        .app_authorization_summary
        .expect("summary");
    assert_eq!(connected.status.as_str(), "Connected");

    // authType and credential must agree; the same app and tenant cannot be authorized twice.
    assert_eq!(
        code(
            client
                .create_app_authorization()
                .app_bundle_identifier(&bundle_arn)
                .app("ZOOM")
                .auth_type("oauth2".into())
                .credential(api_key("x"))
                .tenant(tenant("Z"))
                .send()
                .await
        ),
        "ValidationException"
    );
    assert_eq!(
        code(
            client
                .create_app_authorization()
                .app_bundle_identifier(&bundle_arn)
                .app("DROPBOX")
                .auth_type("apiKey".into())
                .credential(api_key("x"))
                .tenant(tenant("Box"))
                .send()
                .await
        ),
        "ConflictException"
    );

    let listed = client
        .list_app_authorizations()
        .app_bundle_identifier(&bundle_arn)
        .send()
        .await
        .expect("list");
    assert_eq!(listed.app_authorization_summary_list().len(), 2);

    // No response carries a secret.
    for path in [
        format!(
            "/appbundles/{}/appauthorizations/{}",
            uuid_of(&bundle_arn),
            uuid_of(&created.app_authorization_arn)
        ),
        format!("/appbundles/{}/appauthorizations", uuid_of(&bundle_arn)),
    ] {
        let response = raw(&account, "GET", &path, "");
        assert_eq!(response.status, 200);
        assert!(!response.body.contains("SECRET"), "{}", response.body);
        assert!(!response.body.contains("credential"), "{}", response.body);
    }

    client
        .delete_app_authorization()
        .app_bundle_identifier(&bundle_arn)
        .app_authorization_identifier(&created.app_authorization_arn)
        .send()
        .await
        .expect("delete");
    assert_eq!(
        code(
            client
                .get_app_authorization()
                .app_bundle_identifier(&bundle_arn)
                .app_authorization_identifier(&created.app_authorization_arn)
                .send()
                .await
        ),
        "ResourceNotFoundException"
    );
    // A bundle with app authorizations is not deleted (ConflictException); once they are
    // gone, it is.
    assert_eq!(
        code(
            client
                .delete_app_bundle()
                .app_bundle_identifier(&bundle_arn)
                .send()
                .await
        ),
        "ConflictException"
    );
    let left = client
        .list_app_authorizations()
        .app_bundle_identifier(&bundle_arn)
        .send()
        .await
        .expect("list");
    for authorization in left.app_authorization_summary_list() {
        client
            .delete_app_authorization()
            .app_bundle_identifier(&bundle_arn)
            .app_authorization_identifier(&authorization.app_authorization_arn)
            .send()
            .await
            .expect("delete authorization");
    }
    client
        .delete_app_bundle()
        .app_bundle_identifier(&bundle_arn)
        .send()
        .await
        .expect("delete bundle");
}

#[tokio::test]
async fn user_access_tasks_are_refused_clearly() {
    let account = fresh_account();
    let client = appfabric_client(&account);
    let bundle_arn = bundle(&client).await;
    let batch = client
        .batch_get_user_access_tasks()
        .app_bundle_identifier(&bundle_arn)
        .task_id_list(UUID_A)
        .send()
        .await;
    let start = client
        .start_user_access_tasks()
        .app_bundle_identifier(&bundle_arn)
        .email("someone@example.com")
        .send()
        .await;
    for (code, message) in [
        (
            batch
                .as_ref()
                .err()
                .and_then(|e| e.code())
                .map(str::to_owned),
            batch
                .as_ref()
                .err()
                .and_then(|e| e.message())
                .map(str::to_owned),
        ),
        (
            start
                .as_ref()
                .err()
                .and_then(|e| e.code())
                .map(str::to_owned),
            start
                .as_ref()
                .err()
                .and_then(|e| e.message())
                .map(str::to_owned),
        ),
    ] {
        assert_eq!(code.as_deref(), Some("ValidationException"));
        assert!(message.unwrap_or_default().contains("not supported"));
    }
    let response = raw(
        &account,
        "POST",
        "/useraccess/start",
        &json!({"appBundleIdentifier": bundle_arn, "email": "a@example.com"}).to_string(),
    );
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["reason"], "other");
}

#[tokio::test]
async fn acknowledged_appfabric_state_survives_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let account = fresh_account();
    let server = Server::start(dir.path(), &[]);
    let client = appfabric_client_with(&server.endpoint, &account);
    let token = "30000000-1111-4222-8333-444444444444";
    let bundle_arn = client
        .create_app_bundle()
        .client_token(token)
        .send()
        .await
        .expect("bundle")
        .app_bundle
        .expect("bundle")
        .arn;
    let ingestion_arn = ingestion(&client, &bundle_arn, "t").await;
    client
        .stop_ingestion()
        .app_bundle_identifier(&bundle_arn)
        .ingestion_identifier(&ingestion_arn)
        .send()
        .await
        .expect("stop");
    let destination_arn = destination(&client, &bundle_arn, &ingestion_arn, "bkt").await;
    let updated = client
        .update_ingestion_destination()
        .app_bundle_identifier(&bundle_arn)
        .ingestion_identifier(&ingestion_arn)
        .ingestion_destination_identifier(&destination_arn)
        .destination_configuration(firehose("stream"))
        .send()
        .await
        .expect("update")
        .ingestion_destination
        .expect("destination");
    let authorization = client
        .create_app_authorization()
        .app_bundle_identifier(&bundle_arn)
        .app("OKTA")
        .auth_type("apiKey".into())
        .credential(Credential::ApiKeyCredential(
            ApiKeyCredential::builder()
                .api_key("KILL9-SECRET-VALUE")
                .build()
                .expect("key"),
        ))
        .tenant(
            Tenant::builder()
                .tenant_identifier("t")
                .tenant_display_name("T")
                .build()
                .expect("tenant"),
        )
        .send()
        .await
        .expect("authorization")
        .app_authorization
        .expect("authorization");
    let page = client
        .list_ingestions()
        .app_bundle_identifier(&bundle_arn)
        .send()
        .await
        .expect("list");
    assert_eq!(page.ingestions().len(), 1);
    server.kill();

    // The secret is nowhere on disk in the clear.
    for entry in std::fs::read_dir(dir.path()).expect("data dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        assert!(
            !bytes
                .windows(b"KILL9-SECRET-VALUE".len())
                .any(|w| w == b"KILL9-SECRET-VALUE"),
            "{} holds the secret in the clear",
            path.display()
        );
    }

    let server = Server::start(dir.path(), &[]);
    let client = appfabric_client_with(&server.endpoint, &account);
    let got = client
        .get_ingestion()
        .app_bundle_identifier(&bundle_arn)
        .ingestion_identifier(&ingestion_arn)
        .send()
        .await
        .expect("ingestion after restart")
        .ingestion
        .expect("ingestion");
    assert_eq!(got.state, IngestionState::Disabled);
    let destination = client
        .get_ingestion_destination()
        .app_bundle_identifier(&bundle_arn)
        .ingestion_identifier(&ingestion_arn)
        .ingestion_destination_identifier(&destination_arn)
        .send()
        .await
        .expect("destination after restart")
        .ingestion_destination
        .expect("destination");
    assert_eq!(
        destination.destination_configuration,
        Some(firehose("stream"))
    );
    assert_eq!(destination.updated_at, updated.updated_at);
    let authorization_after = client
        .get_app_authorization()
        .app_bundle_identifier(&bundle_arn)
        .app_authorization_identifier(&authorization.app_authorization_arn)
        .send()
        .await
        .expect("authorization after restart")
        .app_authorization
        .expect("authorization");
    assert_eq!(authorization_after.status.as_str(), "PendingConnect");
    // The credential key survived too: the sealed credential can still be replaced and the
    // client token is still remembered.
    client
        .update_app_authorization()
        .app_bundle_identifier(&bundle_arn)
        .app_authorization_identifier(&authorization.app_authorization_arn)
        .credential(Credential::ApiKeyCredential(
            ApiKeyCredential::builder()
                .api_key("k2")
                .build()
                .expect("key"),
        ))
        .send()
        .await
        .expect("update after restart");
    let replay = client
        .create_app_bundle()
        .client_token(token)
        .send()
        .await
        .expect("replay after restart")
        .app_bundle
        .expect("bundle");
    assert_eq!(replay.arn, bundle_arn);
}
