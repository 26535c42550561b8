//! Three Sluice nodes on one PostgreSQL store and one data directory, through real clients:
//! what one node writes, the others read; one name created at once on every node has one
//! winner; acknowledged writes survive `kill -9`; and when the node delivering a queue is
//! killed while the others take PutLogEvents, another node takes its lease and every
//! acknowledged event reaches the Kinesis stream.
//!
//! Needs `SLUICE_TEST_POSTGRES` (the suite's `scripts/test-postgres.sh` starts a server);
//! without it these tests say so and pass.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use common::{
    fresh_account, kinesis_client_with, lease_holder, logs_client_with, postgres_database, Server,
};

/// The lease time of the nodes here, in seconds: short, so that a hand-over is quick.
const LEASE_TTL: &str = "2";

/// `count` nodes on `url`, sharing `dir`.
fn nodes(url: &str, dir: &std::path::Path, count: usize) -> Vec<Server> {
    (0..count)
        .map(|_| Server::start(dir, &["--store", url, "--lease-ttl", LEASE_TTL]))
        .collect()
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

#[tokio::test]
async fn nodes_share_state_and_one_racing_create_wins() {
    let Some(url) = postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("data dir");
    let nodes = nodes(&url, dir.path(), 3);
    // Each node says which it is, and on which store.
    let ids: BTreeSet<String> = nodes
        .iter()
        .map(|node| {
            let health = common::health(node);
            assert_eq!(health["node"]["store"], "postgres", "{health}");
            health["node"]["id"].as_str().expect("node id").to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 3, "every node has its own id: {ids:?}");
    let account = fresh_account();
    let clients: Vec<_> = nodes
        .iter()
        .map(|node| logs_client_with(&node.endpoint, &account, "s"))
        .collect();

    // Written on one node, read on the others.
    clients[0]
        .create_log_group()
        .log_group_name("shared")
        .send()
        .await
        .expect("create on the first node");
    for client in &clients[1..] {
        let groups = client.describe_log_groups().send().await.expect("describe");
        let names: Vec<&str> = groups
            .log_groups()
            .iter()
            .filter_map(|group| group.log_group_name())
            .collect();
        assert_eq!(names, ["shared"]);
    }
    clients[1]
        .create_log_stream()
        .log_group_name("shared")
        .log_stream_name("s")
        .send()
        .await
        .expect("stream on the second node");
    clients[2]
        .put_log_events()
        .log_group_name("shared")
        .log_stream_name("s")
        .log_events(
            InputLogEvent::builder()
                .timestamp(now_millis())
                .message("from the third")
                .build()
                .expect("event"),
        )
        .send()
        .await
        .expect("put on the third node");
    let events = clients[0]
        .get_log_events()
        .log_group_name("shared")
        .log_stream_name("s")
        .start_from_head(true)
        .send()
        .await
        .expect("get on the first node");
    let messages: Vec<&str> = events.events().iter().filter_map(|e| e.message()).collect();
    assert_eq!(messages, ["from the third"]);

    // One name, created thirty times at once across the nodes: exactly one create wins, the
    // others are told the group exists.
    let mut tasks = Vec::new();
    for n in 0..30 {
        let client = clients[n % clients.len()].clone();
        tasks.push(tokio::spawn(async move {
            client
                .create_log_group()
                .log_group_name("raced")
                .send()
                .await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => wins += 1,
            Err(err) => {
                let code = err.into_service_error().meta().code().map(str::to_owned);
                assert_eq!(code.as_deref(), Some("ResourceAlreadyExistsException"));
            }
        }
    }
    assert_eq!(wins, 1, "exactly one create of one name wins across nodes");
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9_of_a_node() {
    let Some(url) = postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("data dir");
    let account = fresh_account();
    let mut first = nodes(&url, dir.path(), 1);
    let on_first = logs_client_with(&first[0].endpoint, &account, "s");
    for n in 0..10 {
        on_first
            .create_log_group()
            .log_group_name(format!("g{n}"))
            .send()
            .await
            .expect("create");
    }
    first.remove(0).kill();
    let second = nodes(&url, dir.path(), 1);
    let on_second = logs_client_with(&second[0].endpoint, &account, "s");
    let groups = on_second
        .describe_log_groups()
        .send()
        .await
        .expect("describe");
    assert_eq!(groups.log_groups().len(), 10);
}

#[tokio::test]
async fn a_killed_delivery_lease_holder_hands_over_and_no_acknowledged_event_is_lost() {
    let Some(url) = postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("data dir");
    let mut nodes = nodes(&url, dir.path(), 3);
    let account = fresh_account();
    let kinesis = kinesis_client_with(&nodes[0].endpoint, &account);
    kinesis
        .create_stream()
        .stream_name("central")
        .shard_count(1)
        .send()
        .await
        .expect("stream");
    let setup = logs_client_with(&nodes[1].endpoint, &account, "s");
    setup
        .create_log_group()
        .log_group_name("/app")
        .send()
        .await
        .expect("group");
    setup
        .create_log_stream()
        .log_group_name("/app")
        .log_stream_name("i-1")
        .send()
        .await
        .expect("stream");
    setup
        .put_subscription_filter()
        .log_group_name("/app")
        .filter_name("all")
        .filter_pattern("")
        .destination_arn(format!(
            "arn:aws:kinesis:us-east-1:{account}:stream/central"
        ))
        .role_arn(format!("arn:aws:iam::{account}:role/CWLtoKinesis"))
        .send()
        .await
        .expect("subscription filter");

    // Puts on every node until one of them holds the queue's delivery lease.
    let mut acknowledged = Vec::new();
    let put = |node: &Server, n: usize| {
        let client = logs_client_with(&node.endpoint, &account, "s");
        async move {
            let message = format!("event {n}");
            client
                .put_log_events()
                .log_group_name("/app")
                .log_stream_name("i-1")
                .log_events(
                    InputLogEvent::builder()
                        .timestamp(now_millis())
                        .message(&message)
                        .build()
                        .expect("event"),
                )
                .send()
                .await
                .map(|_| message)
        }
    };
    let holder = loop {
        let n = acknowledged.len();
        acknowledged.push(put(&nodes[n % 3], n).await.expect("put"));
        if let Some(holder) = lease_holder(&nodes, "delivery/") {
            break holder;
        }
        assert!(n < 5_000, "no node took the delivery lease");
    };

    // kill -9 of the holder, while the other two go on taking puts, until one of them holds
    // the lease (the bound only keeps a broken run from going on forever).
    nodes.remove(holder).kill();
    let killed = Instant::now();
    let mut taken_over = None;
    for n in acknowledged.len().. {
        acknowledged.push(put(&nodes[n % 2], n).await.expect("put on a live node"));
        if lease_holder(&nodes, "delivery/").is_some() {
            taken_over = Some(killed.elapsed());
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "no live node took the delivery lease"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for n in acknowledged.len()..acknowledged.len() + 20 {
        acknowledged.push(put(&nodes[n % 2], n).await.expect("put on a live node"));
    }

    // Every acknowledged event reaches the stream, at least once.
    let reader = kinesis_client_with(&nodes[0].endpoint, &account);
    let deadline = Instant::now() + Duration::from_secs(60);
    let want: BTreeSet<&str> = acknowledged.iter().map(String::as_str).collect();
    loop {
        let messages = common::delivered_messages(&reader, "central").await;
        let got: BTreeSet<&str> = messages.iter().map(String::as_str).collect();
        let missing: Vec<&&str> = want.difference(&got).collect();
        if missing.is_empty() {
            let unasked: Vec<&&str> = got.difference(&want).collect();
            assert!(unasked.is_empty(), "delivered but never put: {unasked:?}");
            eprintln!(
                "{} events acknowledged, {} delivered ({} twice or more); lease taken over {:?} after the kill",
                want.len(),
                messages.len(),
                messages.len() - got.len(),
                taken_over
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "acknowledged events never delivered: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A TCP proxy in front of PostgreSQL that can be cut (every connection dropped, new ones
/// closed at once) and restored: PostgreSQL going away, as a node sees it.
async fn cuttable_proxy(target: u16) -> (u16, tokio::sync::watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (cut, watch) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            if *watch.borrow() {
                continue;
            }
            let mut watch = watch.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = watch.wait_for(|cut| *cut) => {}
                }
            });
        }
    });
    (port, cut)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_gone_means_writes_refused_with_503_never_acknowledged() {
    use sqlx::ConnectOptions;
    use std::str::FromStr;
    let Some(url) = postgres_database().await else {
        return;
    };
    let options = sqlx::postgres::PgConnectOptions::from_str(&url).expect("URL");
    let (port, cut) = cuttable_proxy(options.get_port()).await;
    let proxied = options.port(port).to_url_lossy().to_string();
    let dir = tempfile::tempdir().expect("data dir");
    let node = Server::start(dir.path(), &["--store", &proxied]);
    let logs = logs_client_with(&node.endpoint, &fresh_account(), "s");
    let create = |name: &'static str| {
        let logs = logs.clone();
        async move { logs.create_log_group().log_group_name(name).send().await }
    };
    create("before").await.expect("PostgreSQL is there");

    cut.send(true).expect("cut");
    let refused = create("during").await.expect_err("PostgreSQL is gone");
    let refused = refused.into_service_error();
    assert_eq!(
        refused.meta().code(),
        Some("ServiceUnavailableException"),
        "{refused:?}"
    );
    let health = common::raw_request(node.port, "GET", "/_sluice/health", &[], b"");
    assert_eq!(health.status, 503, "{}", health.json());
    assert_eq!(health.json()["status"], "degraded");

    cut.send(false).expect("restore");
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(err) = create("after").await {
        assert!(
            Instant::now() < deadline,
            "writes never came back: {:?}",
            err.into_service_error()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let groups = logs.describe_log_groups().send().await.expect("describe");
    let names: Vec<&str> = groups
        .log_groups()
        .iter()
        .filter_map(|group| group.log_group_name())
        .collect();
    assert_eq!(names, ["after", "before"], "the refused write is not there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_query_started_on_one_node_is_read_on_another() {
    use aws_sdk_cloudtrail::types::QueryStatus;
    let Some(url) = postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("data dir");
    let nodes = nodes(&url, dir.path(), 2);
    let account = fresh_account();
    let on = |node: &Server| common::cloudtrail_client_with(&node.endpoint, &account);
    let (first, second) = (on(&nodes[0]), on(&nodes[1]));
    let store = first
        .create_event_data_store()
        .name("shared-lake")
        .advanced_event_selectors(common::event_category_selector("ActivityAuditLog"))
        .termination_protection_enabled(false)
        .send()
        .await
        .expect("store")
        .event_data_store_arn()
        .expect("arn")
        .rsplit('/')
        .next()
        .expect("id")
        .to_owned();
    let id = first
        .start_query()
        .query_statement(format!("SELECT eventID FROM {store}"))
        .send()
        .await
        .expect("start on the first node")
        .query_id()
        .expect("id")
        .to_owned();
    // The second node reads the first node's query to its end, and its results. (Whether a
    // running query of a live node is ever taken for orphaned is `lease`'s unit test: a query
    // over an empty store ends before another node can look.)
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status = second
            .describe_query()
            .query_id(&id)
            .send()
            .await
            .expect("describe on the second node")
            .query_status()
            .cloned()
            .expect("status");
        if !matches!(status, QueryStatus::Queued | QueryStatus::Running) {
            break status;
        }
        assert!(Instant::now() < deadline, "the query never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, QueryStatus::Finished);
    let results = second
        .get_query_results()
        .query_id(&id)
        .send()
        .await
        .expect("results on the second node");
    assert_eq!(results.query_status(), Some(&QueryStatus::Finished));
}
