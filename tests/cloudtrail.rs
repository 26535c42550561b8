//! CloudTrail Lake control plane through the real `aws-sdk-cloudtrail` client: event data
//! stores, channels (seed 004, CreateChannel) and tags.

mod common;

use aws_sdk_cloudtrail::error::ProvideErrorMetadata;
use aws_sdk_cloudtrail::types::{
    BillingMode, Destination, DestinationType, EventDataStoreStatus, Tag,
};
use aws_sdk_cloudtrail::Client;
use common::{cloudtrail_client, cloudtrail_client_with, fresh_account, Server};

/// The error code of a failed call.
fn code<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, E>,
) -> String {
    let err = result.expect_err("the call should fail");
    err.code().unwrap_or("<no code>").to_owned()
}

use common::event_category_selector as selector;

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().expect("tag")
}

/// Creates a store collecting `category` events, without termination protection; its ARN.
async fn store(client: &Client, name: &str, category: &str) -> String {
    client
        .create_event_data_store()
        .name(name)
        .advanced_event_selectors(selector(category))
        .termination_protection_enabled(false)
        .send()
        .await
        .expect("create_event_data_store")
        .event_data_store_arn()
        .expect("arn")
        .to_owned()
}

fn destination(location: &str) -> Destination {
    Destination::builder()
        .r#type(DestinationType::EventDataStore)
        .location(location)
        .build()
        .expect("destination")
}

async fn channel(client: &Client, name: &str, source: &str, store_arn: &str) -> String {
    client
        .create_channel()
        .name(name)
        .source(source)
        .destinations(destination(store_arn))
        .send()
        .await
        .expect("create_channel")
        .channel_arn()
        .expect("arn")
        .to_owned()
}

#[tokio::test]
async fn event_data_store_lifecycle() {
    let account = fresh_account();
    let client = cloudtrail_client(&account);
    let created = client
        .create_event_data_store()
        .name("audit")
        .tags_list(tag("team", "sec"))
        .send()
        .await
        .expect("create");
    let arn = created.event_data_store_arn().expect("arn").to_owned();
    let id = arn.rsplit('/').next().expect("id").to_owned();
    assert_eq!(
        arn,
        format!("arn:aws:cloudtrail:us-east-1:{account}:eventdatastore/{id}")
    );
    assert!(uuid_like(&id), "{id}");
    assert_eq!(created.status(), Some(&EventDataStoreStatus::Enabled));
    assert_eq!(created.retention_period(), Some(366));
    assert_eq!(created.termination_protection_enabled(), Some(true));
    assert_eq!(created.multi_region_enabled(), Some(true));
    assert_eq!(
        created.billing_mode(),
        Some(&BillingMode::ExtendableRetentionPricing)
    );
    assert_eq!(created.tags_list().len(), 1);
    let selectors = created.advanced_event_selectors();
    assert_eq!(selectors.len(), 1);
    assert_eq!(selectors[0].field_selectors()[0].equals(), ["Management"]);
    assert!(created.created_timestamp().is_some());

    // ARN or bare ID.
    for reference in [&arn, &id] {
        let got = client
            .get_event_data_store()
            .event_data_store(reference)
            .send()
            .await
            .expect("get");
        assert_eq!(got.name(), Some("audit"));
        assert_eq!(got.event_data_store_arn(), Some(arn.as_str()));
    }
    let listed = client.list_event_data_stores().send().await.expect("list");
    assert_eq!(listed.event_data_stores().len(), 1);
    assert_eq!(listed.event_data_stores()[0].name(), Some("audit"));

    let updated = client
        .update_event_data_store()
        .event_data_store(&id)
        .name("audit-renamed")
        .retention_period(3653)
        .send()
        .await
        .expect("update");
    assert_eq!(updated.name(), Some("audit-renamed"));
    assert_eq!(updated.retention_period(), Some(3653));
    // The old name is free again.
    store(&client, "audit", "Management").await;

    assert_eq!(
        code(
            client
                .delete_event_data_store()
                .event_data_store(&arn)
                .send()
                .await
        ),
        "EventDataStoreTerminationProtectedException"
    );
    client
        .update_event_data_store()
        .event_data_store(&arn)
        .termination_protection_enabled(false)
        .send()
        .await
        .expect("unprotect");
    client
        .delete_event_data_store()
        .event_data_store(&arn)
        .send()
        .await
        .expect("delete");
    let got = client
        .get_event_data_store()
        .event_data_store(&arn)
        .send()
        .await
        .expect("get pending");
    assert_eq!(got.status(), Some(&EventDataStoreStatus::PendingDeletion));
    assert_eq!(
        code(
            client
                .delete_event_data_store()
                .event_data_store(&arn)
                .send()
                .await
        ),
        "InactiveEventDataStoreException"
    );
    assert_eq!(
        code(
            client
                .update_event_data_store()
                .event_data_store(&arn)
                .retention_period(30)
                .send()
                .await
        ),
        "InactiveEventDataStoreException"
    );
    let restored = client
        .restore_event_data_store()
        .event_data_store(&arn)
        .send()
        .await
        .expect("restore");
    assert_eq!(restored.status(), Some(&EventDataStoreStatus::Enabled));
    assert_eq!(
        code(
            client
                .restore_event_data_store()
                .event_data_store(&arn)
                .send()
                .await
        ),
        "InvalidEventDataStoreStatusException"
    );
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.split('-').map(str::len).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
}

#[tokio::test]
async fn ingestion_starts_and_stops() {
    let client = cloudtrail_client(&fresh_account());
    let created = client
        .create_event_data_store()
        .name("later")
        .start_ingestion(false)
        .send()
        .await
        .expect("create");
    assert_eq!(
        created.status(),
        Some(&EventDataStoreStatus::StoppedIngestion)
    );
    let arn = created.event_data_store_arn().expect("arn");
    assert_eq!(
        code(
            client
                .stop_event_data_store_ingestion()
                .event_data_store(arn)
                .send()
                .await
        ),
        "InvalidEventDataStoreStatusException"
    );
    client
        .start_event_data_store_ingestion()
        .event_data_store(arn)
        .send()
        .await
        .expect("start");
    let got = client
        .get_event_data_store()
        .event_data_store(arn)
        .send()
        .await
        .expect("get");
    assert_eq!(got.status(), Some(&EventDataStoreStatus::Enabled));
    client
        .stop_event_data_store_ingestion()
        .event_data_store(arn)
        .send()
        .await
        .expect("stop");
    let got = client
        .get_event_data_store()
        .event_data_store(arn)
        .send()
        .await
        .expect("get");
    assert_eq!(got.status(), Some(&EventDataStoreStatus::StoppedIngestion));

    let activity = store(&client, "activity", "ActivityAuditLog").await;
    assert_eq!(
        code(
            client
                .stop_event_data_store_ingestion()
                .event_data_store(&activity)
                .send()
                .await
        ),
        "InvalidEventDataStoreCategoryException"
    );
}

#[tokio::test]
async fn event_data_store_errors() {
    let client = cloudtrail_client(&fresh_account());
    let arn = store(&client, "first", "Management").await;
    assert_eq!(
        code(client.create_event_data_store().name("first").send().await),
        "EventDataStoreAlreadyExistsException"
    );
    // Model constraint (retention 7..3653): InvalidParameterException.
    assert_eq!(
        code(
            client
                .create_event_data_store()
                .name("short")
                .retention_period(5)
                .send()
                .await
        ),
        "InvalidParameterException"
    );
    assert_eq!(
        code(
            client
                .create_event_data_store()
                .name("fixed")
                .billing_mode(BillingMode::FixedRetentionPricing)
                .retention_period(3000)
                .send()
                .await
        ),
        "InvalidParameterException"
    );
    assert_eq!(
        code(
            client
                .create_event_data_store()
                .name("bad-selectors")
                .advanced_event_selectors(selector("Nonsense"))
                .send()
                .await
        ),
        "InvalidEventSelectorsException"
    );
    assert_eq!(
        code(
            client
                .create_event_data_store()
                .name("data-without-type")
                .advanced_event_selectors(selector("Data"))
                .send()
                .await
        ),
        "InvalidEventSelectorsException"
    );
    assert_eq!(
        code(
            client
                .update_event_data_store()
                .event_data_store(&arn)
                .advanced_event_selectors(selector("ActivityAuditLog"))
                .send()
                .await
        ),
        "InvalidEventSelectorsException"
    );
    assert_eq!(
        code(
            client
                .create_event_data_store()
                .name("org")
                .organization_enabled(true)
                .send()
                .await
        ),
        "OrganizationsNotInUseException"
    );
    assert_eq!(
        code(
            client
                .get_event_data_store()
                .event_data_store("not-a-store")
                .send()
                .await
        ),
        "EventDataStoreARNInvalidException"
    );
    assert_eq!(
        code(
            client
                .get_event_data_store()
                .event_data_store("00000000-0000-4000-8000-000000000000")
                .send()
                .await
        ),
        "EventDataStoreNotFoundException"
    );
    let second = store(&client, "second", "Management").await;
    assert_eq!(
        code(
            client
                .update_event_data_store()
                .event_data_store(&second)
                .name("first")
                .send()
                .await
        ),
        "EventDataStoreAlreadyExistsException"
    );
    // Quota: 10 per Region, stores pending deletion included.
    client
        .delete_event_data_store()
        .event_data_store(&second)
        .send()
        .await
        .expect("delete");
    for i in 2..10 {
        store(&client, &format!("store-{i}"), "Management").await;
    }
    assert_eq!(
        code(
            client
                .create_event_data_store()
                .name("eleventh")
                .send()
                .await
        ),
        "EventDataStoreMaxLimitExceededException"
    );
}

#[tokio::test]
async fn list_event_data_stores_pages() {
    let client = cloudtrail_client(&fresh_account());
    for i in 0..3 {
        store(&client, &format!("page-{i}"), "Management").await;
    }
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_event_data_stores()
            .max_results(2)
            .set_next_token(token)
            .send()
            .await
            .expect("list");
        names.extend(
            page.event_data_stores()
                .iter()
                .filter_map(|s| s.name())
                .map(str::to_owned),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    names.sort();
    assert_eq!(names, ["page-0", "page-1", "page-2"]);
    assert_eq!(
        code(
            client
                .list_event_data_stores()
                .next_token("garbage-token")
                .send()
                .await
        ),
        "InvalidNextTokenException"
    );
}

#[tokio::test]
async fn channel_lifecycle() {
    let account = fresh_account();
    let client = cloudtrail_client(&account);
    let activity = store(&client, "activity", "ActivityAuditLog").await;
    let other = store(&client, "activity-2", "ActivityAuditLog").await;
    let created = client
        .create_channel()
        .name("my-app")
        .source("Custom")
        .destinations(destination(&activity))
        .tags(tag("env", "prod"))
        .send()
        .await
        .expect("create_channel");
    let arn = created.channel_arn().expect("arn").to_owned();
    let id = arn.rsplit('/').next().expect("id").to_owned();
    assert_eq!(
        arn,
        format!("arn:aws:cloudtrail:us-east-1:{account}:channel/{id}")
    );
    assert!(uuid_like(&id));
    assert_eq!(created.name(), Some("my-app"));
    assert_eq!(created.source(), Some("Custom"));
    assert_eq!(created.destinations()[0].location(), activity);
    assert_eq!(created.tags().len(), 1);

    for reference in [&arn, &id] {
        let got = client
            .get_channel()
            .channel(reference)
            .send()
            .await
            .expect("get");
        assert_eq!(got.channel_arn(), Some(arn.as_str()));
        assert_eq!(got.source(), Some("Custom"));
        assert_eq!(got.destinations().len(), 1);
    }
    // A second Custom channel is allowed; partner sources get one each.
    channel(&client, "second-custom", "Custom", &activity).await;
    channel(&client, "okta", "OktaSystemLogEvents", &activity).await;
    let listed = client.list_channels().send().await.expect("list");
    assert_eq!(listed.channels().len(), 3);

    let updated = client
        .update_channel()
        .channel(&id)
        .name("my-app-renamed")
        .destinations(destination(&other))
        .send()
        .await
        .expect("update");
    assert_eq!(updated.name(), Some("my-app-renamed"));
    assert_eq!(updated.source(), Some("Custom"));
    assert_eq!(updated.destinations()[0].location(), other);
    assert_eq!(
        code(
            client
                .update_channel()
                .channel(&id)
                .name("okta")
                .send()
                .await
        ),
        "ChannelAlreadyExistsException"
    );

    // A store a channel delivers to cannot be deleted.
    assert_eq!(
        code(
            client
                .delete_event_data_store()
                .event_data_store(&other)
                .send()
                .await
        ),
        "ChannelExistsForEDSException"
    );
    client
        .delete_channel()
        .channel(&arn)
        .send()
        .await
        .expect("delete");
    assert_eq!(
        code(client.get_channel().channel(&arn).send().await),
        "ChannelNotFoundException"
    );
    assert_eq!(
        code(client.delete_channel().channel(&id).send().await),
        "ChannelNotFoundException"
    );
    assert_eq!(
        code(client.get_channel().channel("not-a-channel").send().await),
        "ChannelARNInvalidException"
    );
    assert_eq!(
        code(client.update_channel().channel(&activity).send().await),
        "ChannelARNInvalidException"
    );
    client
        .delete_event_data_store()
        .event_data_store(&other)
        .send()
        .await
        .expect("delete store once its channel is gone");
}

#[tokio::test]
async fn create_channel_exceptions() {
    let account = fresh_account();
    let client = cloudtrail_client(&account);
    let activity = store(&client, "activity", "ActivityAuditLog").await;
    let management = store(&client, "management", "Management").await;
    channel(&client, "taken", "Custom", &activity).await;
    channel(&client, "github", "GitHub", &activity).await;

    let create = |name: &str, source: &str, location: &str| {
        client
            .create_channel()
            .name(name)
            .source(source)
            .destinations(destination(location))
    };
    assert_eq!(
        code(create("taken", "Custom", &activity).send().await),
        "ChannelAlreadyExistsException"
    );
    assert_eq!(
        code(create("x-source", "NotAPartner", &activity).send().await),
        "InvalidSourceException"
    );
    assert_eq!(
        code(create("github-2", "GitHub", &activity).send().await),
        "ChannelMaxLimitExceededException"
    );
    assert_eq!(
        code(
            create("bad-arn", "Custom", "arn:aws:s3:::bucket")
                .send()
                .await
        ),
        "EventDataStoreARNInvalidException"
    );
    let missing = format!(
        "arn:aws:cloudtrail:us-east-1:{account}:eventdatastore/00000000-0000-4000-8000-000000000000"
    );
    assert_eq!(
        code(create("missing", "Custom", &missing).send().await),
        "EventDataStoreNotFoundException"
    );
    assert_eq!(
        code(create("wrong-kind", "Custom", &management).send().await),
        "InvalidEventDataStoreCategoryException"
    );
    let stopped = client
        .create_event_data_store()
        .name("stopped-activity")
        .advanced_event_selectors(selector("ActivityAuditLog"))
        .start_ingestion(false)
        .send()
        .await
        .expect("create stopped")
        .event_data_store_arn()
        .expect("arn")
        .to_owned();
    assert_eq!(
        code(create("inactive", "Custom", &stopped).send().await),
        "InactiveEventDataStoreException"
    );
    // Model constraint: a name of two characters.
    assert_eq!(
        code(create("ab", "Custom", &activity).send().await),
        "InvalidParameterException"
    );
    assert_eq!(
        code(
            client
                .create_channel()
                .name("twice")
                .source("Custom")
                .destinations(destination(&activity))
                .destinations(destination(&activity))
                .send()
                .await
        ),
        "InvalidParameterException"
    );
    assert_eq!(
        code(
            create("bad-tag", "Custom", &activity)
                .tags(tag("aws:reserved", "v"))
                .send()
                .await
        ),
        "InvalidTagParameterException"
    );
    let mut too_many = create("many-tags", "Custom", &activity);
    for i in 0..51 {
        too_many = too_many.tags(tag(&format!("k{i}"), "v"));
    }
    assert_eq!(code(too_many.send().await), "TagsLimitExceededException");
    let foreign = activity.replace(&account, "999999999999");
    assert_eq!(
        code(create("foreign", "Custom", &foreign).send().await),
        "OperationNotPermittedException"
    );
    assert_eq!(
        code(
            client
                .create_channel()
                .name("service-linked")
                .source("Custom")
                .destinations(
                    Destination::builder()
                        .r#type(DestinationType::AwsService)
                        .location("config.amazonaws.com")
                        .build()
                        .expect("destination")
                )
                .send()
                .await
        ),
        "UnsupportedOperationException"
    );
    // Quota: 25 channels per Region.
    for i in 2..25 {
        channel(&client, &format!("fill-{i}"), "Custom", &activity).await;
    }
    assert_eq!(
        code(create("twenty-sixth", "Custom", &activity).send().await),
        "ChannelMaxLimitExceededException"
    );
    // UpdateChannel checks destinations the same way.
    let some_channel = client
        .list_channels()
        .send()
        .await
        .expect("list")
        .channels()[0]
        .channel_arn()
        .expect("arn")
        .to_owned();
    assert_eq!(
        code(
            client
                .update_channel()
                .channel(&some_channel)
                .destinations(destination(&management))
                .send()
                .await
        ),
        "InvalidEventDataStoreCategoryException"
    );
}

#[tokio::test]
async fn tags_on_stores_and_channels() {
    let account = fresh_account();
    let client = cloudtrail_client(&account);
    let store_arn = store(&client, "tagged", "ActivityAuditLog").await;
    let channel_arn = channel(&client, "tagged-channel", "Custom", &store_arn).await;
    for arn in [&store_arn, &channel_arn] {
        client
            .add_tags()
            .resource_id(arn)
            .tags_list(tag("a", "1"))
            .tags_list(tag("b", "2"))
            .send()
            .await
            .expect("add_tags");
    }
    client
        .remove_tags()
        .resource_id(&channel_arn)
        .tags_list(Tag::builder().key("a").build().expect("tag"))
        .send()
        .await
        .expect("remove_tags");
    let listed = client
        .list_tags()
        .resource_id_list(&store_arn)
        .resource_id_list(&channel_arn)
        .send()
        .await
        .expect("list_tags");
    let lists = listed.resource_tag_list();
    assert_eq!(lists.len(), 2);
    assert_eq!(lists[0].resource_id(), Some(store_arn.as_str()));
    let keys = |i: usize| -> Vec<String> {
        lists[i]
            .tags_list()
            .iter()
            .map(|t| t.key().to_owned())
            .collect()
    };
    assert_eq!(keys(0), ["a", "b"]);
    assert_eq!(keys(1), ["b"]);

    let mut add = client.add_tags().resource_id(&store_arn);
    for i in 0..49 {
        add = add.tags_list(tag(&format!("k{i}"), "v"));
    }
    assert_eq!(code(add.send().await), "TagsLimitExceededException");
    assert_eq!(
        code(
            client
                .add_tags()
                .resource_id(&store_arn)
                .tags_list(tag("bad<key>", "v"))
                .send()
                .await
        ),
        "InvalidTagParameterException"
    );
    assert_eq!(
        code(
            client
                .add_tags()
                .resource_id("not-an-arn")
                .tags_list(tag("a", "1"))
                .send()
                .await
        ),
        "CloudTrailARNInvalidException"
    );
    assert_eq!(
        code(
            client
                .add_tags()
                .resource_id(format!("arn:aws:cloudtrail:us-east-1:{account}:trail/none"))
                .tags_list(tag("a", "1"))
                .send()
                .await
        ),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(
            client
                .add_tags()
                .resource_id(format!(
                    "arn:aws:cloudtrail:us-east-1:{account}:dashboard/x"
                ))
                .tags_list(tag("a", "1"))
                .send()
                .await
        ),
        "ResourceTypeNotSupportedException"
    );
    assert_eq!(
        code(
            client
                .add_tags()
                .resource_id(format!(
                    "arn:aws:cloudtrail:us-east-1:{account}:eventdatastore/x"
                ))
                .tags_list(tag("a", "1"))
                .send()
                .await
        ),
        "EventDataStoreARNInvalidException"
    );
    assert_eq!(
        code(
            client
                .add_tags()
                .resource_id(format!("arn:aws:cloudtrail:us-east-1:{account}:channel/x"))
                .tags_list(tag("a", "1"))
                .send()
                .await
        ),
        "ChannelARNInvalidException"
    );
    let gone = format!(
        "arn:aws:cloudtrail:us-east-1:{account}:channel/00000000-0000-4000-8000-000000000000"
    );
    assert_eq!(
        code(client.list_tags().resource_id_list(&gone).send().await),
        "ChannelNotFoundException"
    );
    let gone_store = gone.replace(":channel/", ":eventdatastore/");
    assert_eq!(
        code(
            client
                .list_tags()
                .resource_id_list(&gone_store)
                .send()
                .await
        ),
        "EventDataStoreNotFoundException"
    );
    assert_eq!(
        code(
            client
                .list_tags()
                .resource_id_list(&store_arn)
                .next_token("nope")
                .send()
                .await
        ),
        "InvalidTokenException"
    );
}

#[tokio::test]
async fn stores_and_channels_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let account = fresh_account();
    let server = Server::start(dir.path(), &[]);
    let client = cloudtrail_client_with(&server.endpoint, &account);
    let store_arn = store(&client, "durable", "ActivityAuditLog").await;
    let channel_arn = channel(&client, "durable-channel", "Custom", &store_arn).await;
    client
        .add_tags()
        .resource_id(&channel_arn)
        .tags_list(tag("kept", "yes"))
        .send()
        .await
        .expect("add_tags");
    server.kill();

    let server = Server::start(dir.path(), &[]);
    let client = cloudtrail_client_with(&server.endpoint, &account);
    let got = client
        .get_event_data_store()
        .event_data_store(&store_arn)
        .send()
        .await
        .expect("store after restart");
    assert_eq!(got.name(), Some("durable"));
    assert_eq!(got.status(), Some(&EventDataStoreStatus::Enabled));
    let got = client
        .get_channel()
        .channel(&channel_arn)
        .send()
        .await
        .expect("channel after restart");
    assert_eq!(got.destinations()[0].location(), store_arn);
    let tags = client
        .list_tags()
        .resource_id_list(&channel_arn)
        .send()
        .await
        .expect("tags after restart");
    assert_eq!(tags.resource_tag_list()[0].tags_list()[0].key(), "kept");
    // The name reservations survived as well.
    assert_eq!(
        code(
            client
                .create_event_data_store()
                .name("durable")
                .send()
                .await
        ),
        "EventDataStoreAlreadyExistsException"
    );
}

fn channel_policy(accounts: &[&str]) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ChannelPolicy",
            "Effect": "Allow",
            "Principal": { "AWS": accounts },
            "Action": "cloudtrail-data:PutAuditEvents",
            "Condition": { "StringEquals": { "cloudtrail:ExternalId": "external-id" } }
        }]
    })
    .to_string()
}

#[tokio::test]
async fn channel_resource_policies() {
    let account = fresh_account();
    let client = cloudtrail_client(&account);
    let store_arn = store(&client, "policy-store", "ActivityAuditLog").await;
    let channel_arn = channel(&client, "policy-channel", "Custom", &store_arn).await;
    assert_eq!(
        code(
            client
                .get_resource_policy()
                .resource_arn(&channel_arn)
                .send()
                .await
        ),
        "ResourcePolicyNotFoundException"
    );
    let policy = channel_policy(&["111122223333", "arn:aws:iam::444455556666:root"]);
    let put = client
        .put_resource_policy()
        .resource_arn(&channel_arn)
        .resource_policy(&policy)
        .send()
        .await
        .expect("put_resource_policy");
    assert_eq!(put.resource_arn(), Some(channel_arn.as_str()));
    assert_eq!(put.resource_policy(), Some(policy.as_str()));
    let got = client
        .get_resource_policy()
        .resource_arn(&channel_arn)
        .send()
        .await
        .expect("get_resource_policy");
    assert_eq!(got.resource_policy(), Some(policy.as_str()));

    for (bad, expected) in [
        ("{not json", "ResourcePolicyNotValidException"),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"cloudtrail:CreateTrail"}]}"#,
            "ResourcePolicyNotValidException",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"someone"},"Action":"cloudtrail-data:PutAuditEvents"}]}"#,
            "ResourcePolicyNotValidException",
        ),
    ] {
        assert_eq!(
            code(
                client
                    .put_resource_policy()
                    .resource_arn(&channel_arn)
                    .resource_policy(bad)
                    .send()
                    .await
            ),
            expected,
            "{bad}"
        );
    }
    let many: Vec<String> = (0..51).map(|i| format!("{:012}", 100 + i)).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        code(
            client
                .put_resource_policy()
                .resource_arn(&channel_arn)
                .resource_policy(channel_policy(&many))
                .send()
                .await
        ),
        "ResourcePolicyNotValidException"
    );
    assert_eq!(
        code(
            client
                .put_resource_policy()
                .resource_arn("not-an-arn")
                .resource_policy(&policy)
                .send()
                .await
        ),
        "ResourceARNNotValidException"
    );
    assert_eq!(
        code(
            client
                .put_resource_policy()
                .resource_arn(&store_arn)
                .resource_policy(&policy)
                .send()
                .await
        ),
        "ResourceTypeNotSupportedException"
    );
    let missing = format!(
        "arn:aws:cloudtrail:us-east-1:{account}:channel/00000000-0000-4000-8000-000000000000"
    );
    assert_eq!(
        code(
            client
                .get_resource_policy()
                .resource_arn(&missing)
                .send()
                .await
        ),
        "ResourceNotFoundException"
    );

    client
        .delete_resource_policy()
        .resource_arn(&channel_arn)
        .send()
        .await
        .expect("delete_resource_policy");
    assert_eq!(
        code(
            client
                .delete_resource_policy()
                .resource_arn(&channel_arn)
                .send()
                .await
        ),
        "ResourcePolicyNotFoundException"
    );
}

/// An integration event of `account` as `eventData` text.
fn event_data(account: &str, uid: &str) -> String {
    serde_json::json!({
        "version": "1.0",
        "userIdentity": { "type": "CustomUser", "principalId": "alice" },
        "eventSource": "my-app",
        "eventName": "Login",
        "eventTime": "2026-01-31T12:00:00Z",
        "UID": uid,
        "recipientAccountId": account,
    })
    .to_string()
}

fn audit_event(id: &str, data: &str) -> aws_sdk_cloudtraildata::types::AuditEvent {
    aws_sdk_cloudtraildata::types::AuditEvent::builder()
        .id(id)
        .event_data(data)
        .build()
        .expect("audit event")
}

fn checksum(data: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(data.as_bytes()))
}

#[tokio::test]
async fn put_audit_events_reports_each_event() {
    let account = fresh_account();
    let client = cloudtrail_client(&account);
    let data_client = common::cloudtraildata_client(&account);
    let store_arn = store(&client, "events", "ActivityAuditLog").await;
    let channel_arn = channel(&client, "events-channel", "Custom", &store_arn).await;
    let good = event_data(&account, "u-1");
    let with_sum = aws_sdk_cloudtraildata::types::AuditEvent::builder()
        .id("with-checksum")
        .event_data(&good)
        .event_data_checksum(checksum(&good))
        .build()
        .expect("event");
    let bad_sum = aws_sdk_cloudtraildata::types::AuditEvent::builder()
        .id("bad-checksum")
        .event_data(&good)
        .event_data_checksum(checksum("something else"))
        .build()
        .expect("event");
    let missing = good.replace("\"UID\":\"u-1\",", "");
    let out = data_client
        .put_audit_events()
        .channel_arn(&channel_arn)
        .audit_events(audit_event("good", &good))
        .audit_events(with_sum)
        .audit_events(bad_sum)
        .audit_events(audit_event("missing-uid", &missing))
        .audit_events(audit_event("not-json", "{"))
        .audit_events(audit_event(
            "other-recipient",
            &event_data("999999999999", "u"),
        ))
        .send()
        .await
        .expect("put_audit_events");
    let ok: Vec<&str> = out.successful().iter().map(|s| s.id()).collect();
    assert_eq!(ok, ["good", "with-checksum"]);
    assert!(out.successful().iter().all(|s| uuid_like(s.event_id())));
    let failed: Vec<(&str, &str)> = out
        .failed()
        .iter()
        .map(|f| (f.id(), f.error_code()))
        .collect();
    assert_eq!(
        failed,
        [
            ("bad-checksum", "InvalidChecksum"),
            ("missing-uid", "FieldNotFound"),
            ("not-json", "InvalidData"),
            ("other-recipient", "InvalidRecipient"),
        ]
    );
    // GetChannel shows the latest attempt (a refused event) and the latest success.
    let got = client
        .get_channel()
        .channel(&channel_arn)
        .send()
        .await
        .expect("get_channel");
    let status = got.ingestion_status().expect("ingestion status");
    assert_eq!(
        status.latest_ingestion_attempt_event_id(),
        Some("other-recipient")
    );
    assert_eq!(
        status.latest_ingestion_error_code(),
        Some("InvalidRecipient")
    );
    assert_eq!(
        status.latest_ingestion_success_event_id(),
        Some(out.successful()[1].event_id())
    );
    assert!(status.latest_ingestion_success_time().is_some());
    assert!(status.latest_ingestion_attempt_time().is_some());

    // 100 events per call (the model) and 1 MB of event data per call.
    let big = "x".repeat(300 * 1024);
    let mut oversized = data_client.put_audit_events().channel_arn(&channel_arn);
    for i in 0..4 {
        oversized = oversized.audit_events(audit_event(&format!("big{i}"), &big));
    }
    assert_eq!(code(oversized.send().await), "ValidationException");

    // The model's pattern for channelArn (`^arn:.*$`) refuses a bare channel ID here, though
    // the documentation says "ARN or ID"; the model is the contract.
    let id = channel_arn.rsplit('/').next().expect("id");
    assert_eq!(
        code(
            data_client
                .put_audit_events()
                .channel_arn(id)
                .audit_events(audit_event("by-id", &good))
                .send()
                .await
        ),
        "ValidationException"
    );

    assert_eq!(
        code(
            data_client
                .put_audit_events()
                .channel_arn(&channel_arn)
                .audit_events(audit_event("same", &good))
                .audit_events(audit_event("same", &good))
                .send()
                .await
        ),
        "DuplicatedAuditEventId"
    );
    assert_eq!(
        code(
            data_client
                .put_audit_events()
                .channel_arn(&store_arn)
                .audit_events(audit_event("x", &good))
                .send()
                .await
        ),
        "InvalidChannelARN"
    );
    let gone = format!(
        "arn:aws:cloudtrail:us-east-1:{account}:channel/00000000-0000-4000-8000-000000000000"
    );
    assert_eq!(
        code(
            data_client
                .put_audit_events()
                .channel_arn(&gone)
                .audit_events(audit_event("x", &good))
                .send()
                .await
        ),
        "ChannelNotFound"
    );
    let mut too_many = data_client.put_audit_events().channel_arn(&channel_arn);
    for i in 0..101 {
        too_many = too_many.audit_events(audit_event(&format!("e{i}"), &good));
    }
    assert_eq!(code(too_many.send().await), "ValidationException");
}

#[tokio::test]
async fn put_audit_events_across_accounts_needs_the_policy_and_external_id() {
    let owner = fresh_account();
    let partner = fresh_account();
    let client = cloudtrail_client(&owner);
    let store_arn = store(&client, "shared", "ActivityAuditLog").await;
    let channel_arn = channel(&client, "shared-channel", "Custom", &store_arn).await;
    let partner_client = common::cloudtraildata_client(&partner);
    let put = |external_id: Option<&str>| {
        partner_client
            .put_audit_events()
            .channel_arn(&channel_arn)
            .set_external_id(external_id.map(str::to_owned))
            .audit_events(audit_event("p1", &event_data(&owner, "p-1")))
            .send()
    };
    assert_eq!(
        code(put(Some("ext-123")).await),
        "ChannelInsufficientPermission"
    );
    client
        .put_resource_policy()
        .resource_arn(&channel_arn)
        .resource_policy(
            serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": { "AWS": partner },
                    "Action": "cloudtrail-data:PutAuditEvents",
                    "Resource": channel_arn,
                    "Condition": { "StringEquals": { "cloudtrail:ExternalId": "ext-123" } }
                }]
            })
            .to_string(),
        )
        .send()
        .await
        .expect("put_resource_policy");
    assert_eq!(
        code(put(Some("wrong")).await),
        "ChannelInsufficientPermission"
    );
    assert_eq!(code(put(None).await), "ChannelInsufficientPermission");
    let out = put(Some("ext-123")).await.expect("allowed by the policy");
    assert_eq!(out.successful().len(), 1);
    assert!(out.failed().is_empty());
}

#[tokio::test]
async fn audit_events_survive_kill_9_and_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let account = fresh_account();
    let server = Server::start(dir.path(), &[]);
    let client = cloudtrail_client_with(&server.endpoint, &account);
    let data_client = common::cloudtraildata_client_with(&server.endpoint, &account);
    let store_arn = store(&client, "durable-events", "ActivityAuditLog").await;
    let channel_arn = channel(&client, "durable-events", "Custom", &store_arn).await;
    let mut put = data_client.put_audit_events().channel_arn(&channel_arn);
    for i in 0..20 {
        put = put.audit_events(audit_event(
            &format!("e{i}"),
            &event_data(&account, &format!("u{i}")),
        ));
    }
    let out = put.send().await.expect("put_audit_events");
    let event_ids: Vec<String> = out
        .successful()
        .iter()
        .map(|s| s.event_id().to_owned())
        .collect();
    assert_eq!(event_ids.len(), 20);
    server.kill();

    // Read the store's events straight from the data directory: one row per event, what
    // CloudTrail adds as columns, the raw eventData kept (queries read its fields from it).
    let store = sluice::store::sqlite::SqliteStore::open(dir.path())
        .await
        .expect("open store");
    let rows = sluice::store::Store::select_rows(
        &store,
        sluice::services::cloudtrail::EVENTS_TABLE,
        "event_data_store",
        &store_arn,
    )
    .await
    .expect("select_rows");
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["event_id"].as_str()).collect();
    assert_eq!(
        ids,
        event_ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let row = &rows[3];
    assert_eq!(row["event_category"], "ActivityAuditLog");
    assert_eq!(row["account"], account.as_str());
    assert_eq!(row["event_type"], "ActivityLog");
    assert_eq!(row["event_time_millis"], "1769860800000");
    assert_eq!(row["raw_event_data"], event_data(&account, "u3").as_str());
    assert_eq!(row["channel_arn"], channel_arn.as_str());
}

/// The outcome of one call of a race: `Ok` or the error code.
fn outcome<T, E: ProvideErrorMetadata>(result: Result<T, E>) -> Result<(), String> {
    result
        .map(|_| ())
        .map_err(|err| err.code().unwrap_or("<no code>").to_owned())
}

#[tokio::test]
async fn concurrent_channel_creates_stop_exactly_at_the_quota() {
    const QUOTA: usize = 25;
    let client = cloudtrail_client(&fresh_account());
    let activity = store(&client, "race-quota", "ActivityAuditLog").await;
    for i in 0..QUOTA - 5 {
        channel(&client, &format!("before-{i}"), "Custom", &activity).await;
    }
    // 20 creations at once for the last 5 places: the count each one reads must not go stale
    // before its write commits.
    let racers = (0..20).map(|i| {
        client
            .create_channel()
            .name(format!("racer-{i}"))
            .source("Custom")
            .destinations(destination(&activity))
            .send()
    });
    let outcomes: Vec<Result<(), String>> = futures_util::future::join_all(racers)
        .await
        .into_iter()
        .map(outcome)
        .collect();
    let created = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(created, 5, "{outcomes:?}");
    for refused in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert_eq!(refused, "ChannelMaxLimitExceededException");
    }
    let listed = client.list_channels().send().await.expect("list_channels");
    assert_eq!(listed.channels().len(), QUOTA);
}

#[tokio::test]
async fn a_store_is_never_deleted_while_a_channel_feeds_it() {
    let client = cloudtrail_client(&fresh_account());
    // Eight rounds, one store each: under the quota of ten stores per Region.
    for round in 0..8 {
        let target = store(&client, &format!("race-delete-{round}"), "ActivityAuditLog").await;
        // Several creations against one deletion widen the window a lost race needs.
        let creates = (0..4).map(|i| {
            client
                .create_channel()
                .name(format!("feed-{round}-{i}"))
                .source("Custom")
                .destinations(destination(&target))
                .send()
        });
        let delete = client
            .delete_event_data_store()
            .event_data_store(&target)
            .send();
        let (creates, deleted) = tokio::join!(futures_util::future::join_all(creates), delete);
        let created: Vec<Result<(), String>> = creates.into_iter().map(outcome).collect();
        let deleted = outcome(deleted);
        let any_created = created.iter().any(Result::is_ok);
        // Exactly one side wins: a channel now feeds the store, or the store is deleted.
        assert_ne!(any_created, deleted.is_ok(), "{created:?} {deleted:?}");
        if any_created {
            assert_eq!(
                deleted.as_ref().err().map(String::as_str),
                Some("ChannelExistsForEDSException"),
                "{deleted:?}"
            );
        } else {
            for refused in created.iter().filter_map(|o| o.as_ref().err()) {
                assert!(
                    matches!(
                        refused.as_str(),
                        "InactiveEventDataStoreException" | "EventDataStoreNotFoundException"
                    ),
                    "{refused}"
                );
            }
        }
        let status = client
            .get_event_data_store()
            .event_data_store(&target)
            .send()
            .await
            .expect("get_event_data_store")
            .status()
            .cloned();
        assert_eq!(
            status == Some(EventDataStoreStatus::PendingDeletion),
            deleted.is_ok()
        );
        // Up to four channels a round would pass the channel quota over eight rounds.
        let channels = client.list_channels().send().await.expect("list_channels");
        for channel in channels.channels() {
            client
                .delete_channel()
                .channel(channel.channel_arn().expect("arn"))
                .send()
                .await
                .expect("delete_channel");
        }
    }
}

#[tokio::test]
async fn concurrent_store_creates_stop_exactly_at_the_quota() {
    const QUOTA: usize = 10;
    let client = cloudtrail_client(&fresh_account());
    for i in 0..QUOTA - 3 {
        store(&client, &format!("before-{i}"), "ActivityAuditLog").await;
    }
    let racers = (0..12).map(|i| {
        client
            .create_event_data_store()
            .name(format!("racer-{i}"))
            .advanced_event_selectors(selector("ActivityAuditLog"))
            .termination_protection_enabled(false)
            .send()
    });
    let outcomes: Vec<Result<(), String>> = futures_util::future::join_all(racers)
        .await
        .into_iter()
        .map(outcome)
        .collect();
    let created = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(created, 3, "{outcomes:?}");
    for refused in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert_eq!(refused, "EventDataStoreMaxLimitExceededException");
    }
    let listed = client
        .list_event_data_stores()
        .send()
        .await
        .expect("list_event_data_stores");
    assert_eq!(listed.event_data_stores().len(), QUOTA);
}

#[tokio::test]
async fn channel_policy_conditions_use_iam_operators() {
    let owner = fresh_account();
    let partner = fresh_account();
    let client = cloudtrail_client(&owner);
    let store_arn = store(&client, "conditions", "ActivityAuditLog").await;
    let channel_arn = channel(&client, "conditions", "Custom", &store_arn).await;
    let partner_client = common::cloudtraildata_client(&partner);
    let put = |external_id: Option<&str>| {
        partner_client
            .put_audit_events()
            .channel_arn(&channel_arn)
            .set_external_id(external_id.map(str::to_owned))
            .audit_events(audit_event("c1", &event_data(&owner, "c-1")))
            .send()
    };
    let set_policy = |statements: serde_json::Value| {
        client
            .put_resource_policy()
            .resource_arn(&channel_arn)
            .resource_policy(
                serde_json::json!({ "Version": "2012-10-17", "Statement": statements }).to_string(),
            )
            .send()
    };
    let statement = |effect: &str, condition: serde_json::Value| {
        serde_json::json!({
            "Effect": effect,
            "Principal": { "AWS": partner },
            "Action": "cloudtrail-data:PutAuditEvents",
            "Resource": channel_arn,
            "Condition": condition,
        })
    };
    // StringLike is a wildcard match, case-sensitive; a Deny on a case-insensitive match wins.
    set_policy(serde_json::json!([
        statement(
            "Allow",
            serde_json::json!({ "StringLike": { "cloudtrail:ExternalId": ["tenant-*", "p-??"] } })
        ),
        statement(
            "Deny",
            serde_json::json!({ "StringEqualsIgnoreCase": { "cloudtrail:ExternalId": "TENANT-BLOCKED" } })
        ),
    ]))
    .await
    .expect("put_resource_policy");
    put(Some("tenant-42"))
        .await
        .expect("tenant-* allows tenant-42");
    put(Some("p-07")).await.expect("p-?? allows p-07");
    for refused in [
        Some("p-007"),
        Some("Tenant-42"),
        Some("tenant-blocked"),
        None,
    ] {
        assert_eq!(
            code(put(refused).await),
            "ChannelInsufficientPermission",
            "{refused:?}"
        );
    }
    // Null and a negated operator: any external ID but one, and one must be given.
    set_policy(serde_json::json!([statement(
        "Allow",
        serde_json::json!({
            "StringNotEquals": { "cloudtrail:ExternalId": "revoked" },
            "Null": { "cloudtrail:ExternalId": "false" }
        })
    )]))
    .await
    .expect("put_resource_policy");
    put(Some("anything")).await.expect("allowed");
    assert_eq!(
        code(put(Some("revoked")).await),
        "ChannelInsufficientPermission"
    );
    assert_eq!(code(put(None).await), "ChannelInsufficientPermission");
}
