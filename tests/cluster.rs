//! Sluice nodes on one PostgreSQL store, through real clients: what one node writes, the
//! others read; one name created at once on two nodes has one winner; acknowledged writes
//! survive `kill -9`.
//!
//! Needs `SLUICE_TEST_POSTGRES` (a URL of a server where databases may be created; the test
//! suite's `scripts/test-postgres.sh` starts one); without it these tests say so and pass.

mod common;

use std::str::FromStr;

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use common::{fresh_account, logs_client_with, Server};
use sqlx::{ConnectOptions, Connection};

/// A fresh database on the test server, as a URL.
async fn fresh_database() -> Option<String> {
    let Ok(base) = std::env::var("SLUICE_TEST_POSTGRES") else {
        eprintln!("SLUICE_TEST_POSTGRES is not set: PostgreSQL tests skipped.");
        return None;
    };
    let name = format!("sluice_it_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to SLUICE_TEST_POSTGRES");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create database");
    let options = sqlx::postgres::PgConnectOptions::from_str(&base)
        .expect("URL")
        .database(&name);
    Some(options.to_url_lossy().to_string())
}

fn node(url: &str) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("data dir");
    (Server::start(dir.path(), &["--store", url]), dir)
}

#[tokio::test]
async fn nodes_share_state_and_one_racing_create_wins() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let (a, _a_dir) = node(&url);
    let (b, _b_dir) = node(&url);
    let account = fresh_account();
    let on_a = logs_client_with(&a.endpoint, &account, "s");
    let on_b = logs_client_with(&b.endpoint, &account, "s");

    // Written on one node, read on the other.
    on_a.create_log_group()
        .log_group_name("shared")
        .send()
        .await
        .expect("create on a");
    let groups = on_b
        .describe_log_groups()
        .send()
        .await
        .expect("describe on b");
    let names: Vec<&str> = groups
        .log_groups()
        .iter()
        .filter_map(|group| group.log_group_name())
        .collect();
    assert_eq!(names, ["shared"]);
    on_b.create_log_stream()
        .log_group_name("shared")
        .log_stream_name("s")
        .send()
        .await
        .expect("stream on b");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    on_a.put_log_events()
        .log_group_name("shared")
        .log_stream_name("s")
        .log_events(
            InputLogEvent::builder()
                .timestamp(now)
                .message("from a")
                .build()
                .expect("event"),
        )
        .send()
        .await
        .expect("put on a");
    let events = on_b
        .get_log_events()
        .log_group_name("shared")
        .log_stream_name("s")
        .start_from_head(true)
        .send()
        .await
        .expect("get on b");
    let messages: Vec<&str> = events.events().iter().filter_map(|e| e.message()).collect();
    assert_eq!(messages, ["from a"]);

    // One name, created twenty times at once across both nodes: exactly one create wins, the
    // others are told the group exists.
    let mut tasks = Vec::new();
    for n in 0..20 {
        let client = if n % 2 == 0 {
            on_a.clone()
        } else {
            on_b.clone()
        };
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
    let Some(url) = fresh_database().await else {
        return;
    };
    let account = fresh_account();
    let (a, _a_dir) = node(&url);
    let on_a = logs_client_with(&a.endpoint, &account, "s");
    for n in 0..10 {
        on_a.create_log_group()
            .log_group_name(format!("g{n}"))
            .send()
            .await
            .expect("create");
    }
    a.kill();
    let (b, _b_dir) = node(&url);
    let on_b = logs_client_with(&b.endpoint, &account, "s");
    let groups = on_b.describe_log_groups().send().await.expect("describe");
    assert_eq!(groups.log_groups().len(), 10);
}
