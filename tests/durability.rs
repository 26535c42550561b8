//! What a client was told is stored survives `kill -9` and a restart.

mod common;

use common::{fresh_account, kinesis_client_with, logs_client_with, Server};

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let account = fresh_account();
    let server = Server::start(dir.path(), &[]);
    let client = logs_client_with(&server.endpoint, &account, "s");
    let kinesis = kinesis_client_with(&server.endpoint, &account);
    let mut expected = Vec::new();
    for i in 0..20 {
        // A destination's target stream must exist first, as in AWS.
        kinesis
            .create_stream()
            .stream_name(format!("s{i}"))
            .shard_count(1)
            .send()
            .await
            .expect("target stream");
        let destination = client
            .put_destination()
            .destination_name(format!("d{i:02}"))
            .target_arn(format!("arn:aws:kinesis:us-east-1:{account}:stream/s{i}"))
            .role_arn(format!("arn:aws:iam::{account}:role/r"))
            .tags("n", i.to_string())
            .send()
            .await
            .expect("put")
            .destination
            .expect("destination");
        expected.push(destination);
    }
    let policy = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"222222222222"},"Action":"logs:PutSubscriptionFilter","Resource":"*"}]}"#;
    client
        .put_destination_policy()
        .destination_name("d07")
        .access_policy(policy)
        .send()
        .await
        .expect("policy");
    client
        .delete_destination()
        .destination_name("d19")
        .send()
        .await
        .expect("delete");
    // The last write was acknowledged; kill the process before it can do anything else.
    server.kill();

    let server = Server::start(dir.path(), &[]);
    let client = logs_client_with(&server.endpoint, &account, "s");
    let described = client
        .describe_destinations()
        .send()
        .await
        .expect("describe");
    let found = described.destinations();
    assert_eq!(found.len(), 19);
    for (before, after) in expected.iter().zip(found) {
        assert_eq!(before.arn(), after.arn());
        assert_eq!(before.creation_time(), after.creation_time());
        assert_eq!(before.target_arn(), after.target_arn());
    }
    assert_eq!(found[7].access_policy(), Some(policy));
    let tags = client
        .list_tags_for_resource()
        .resource_arn(found[3].arn().expect("arn"))
        .send()
        .await
        .expect("tags")
        .tags
        .expect("tags");
    assert_eq!(tags.get("n").map(String::as_str), Some("3"));
    // Pagination tokens are signed with a key kept in the store, so they outlive a restart.
    let first = client
        .describe_destinations()
        .limit(5)
        .send()
        .await
        .expect("page");
    let token = first.next_token().expect("token").to_owned();
    server.kill();
    let server = Server::start(dir.path(), &[]);
    let client = logs_client_with(&server.endpoint, &account, "s");
    let next = client
        .describe_destinations()
        .limit(5)
        .next_token(token)
        .send()
        .await
        .expect("token after restart");
    assert_eq!(next.destinations()[0].destination_name(), Some("d05"));
}
