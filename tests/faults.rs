//! The crash-and-fault suite: whatever happens to the disk or the process, every write a client
//! was told succeeded is found afterwards, and a store that cannot commit refuses writes (503)
//! and says so in `/_sluice/health` instead of acknowledging them.
//!
//! The disk faults need `mount` (root or CAP_SYS_ADMIN); where it is not permitted those tests
//! print why they are skipped, on stderr (not captured by the test harness), and pass.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cloudwatchlogs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use common::{fresh_account, kinesis_client_with, logs_client_with, raw_request, Server};

type LogsClient = aws_sdk_cloudwatchlogs::Client;

/// Says why a test did not run, past the harness's output capture.
fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// Runs a command, or says why it failed.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|err| format!("cannot run {program}: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8 temporary path")
}

/// A small filesystem mounted for one test, unmounted when dropped.
struct Disk {
    mount_point: tempfile::TempDir,
    /// For a loop-mounted ext4 image: the image and the loop device it is attached to.
    image: Option<(tempfile::TempDir, String)>,
}

impl Disk {
    /// A tmpfs of `size` (such as `2m`), or `None` (after saying why) when mounting is not
    /// permitted here.
    fn tmpfs(test: &str, size: &str) -> Option<Disk> {
        let mount_point = tempfile::tempdir().expect("tempdir");
        let options = format!("size={size}");
        let mounted = run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &options,
                "tmpfs",
                text(mount_point.path()),
            ],
        );
        match mounted {
            Ok(()) => Some(Disk {
                mount_point,
                image: None,
            }),
            Err(why) => {
                skip(
                    test,
                    &format!("needs root or CAP_SYS_ADMIN to mount a tmpfs ({why})"),
                );
                None
            }
        }
    }

    /// An ext4 filesystem (without a journal) in a loop-mounted image, mounted with
    /// `errors=remount-ro`, so that an error turns it read-only as the kernel does after a
    /// disk error; or `None` (after saying why) when that is not possible here.
    fn ext4(test: &str) -> Option<Disk> {
        let image_dir = tempfile::tempdir().expect("tempdir");
        let image = image_dir.path().join("disk.img");
        std::fs::File::create(&image)
            .and_then(|file| file.set_len(16 << 20))
            .expect("image file");
        if let Err(why) = run(
            "mkfs.ext4",
            &["-q", "-F", "-O", "^has_journal", text(&image)],
        ) {
            skip(test, &format!("needs mkfs.ext4 ({why})"));
            return None;
        }
        let mount_point = tempfile::tempdir().expect("tempdir");
        let mounted = run(
            "mount",
            &[
                "-o",
                "loop,errors=remount-ro",
                text(&image),
                text(mount_point.path()),
            ],
        );
        if let Err(why) = mounted {
            skip(
                test,
                &format!("needs root and a loop device to mount an ext4 image ({why})"),
            );
            return None;
        }
        let source = Command::new("findmnt")
            .args(["-n", "-o", "SOURCE", text(mount_point.path())])
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .unwrap_or_default();
        let device = source.rsplit('/').next().unwrap_or_default().to_owned();
        let disk = Disk {
            mount_point,
            image: Some((image_dir, device)),
        };
        if !disk.error_trigger().is_some_and(|path| path.exists()) {
            skip(
                test,
                &format!("the kernel offers no ext4 error trigger for {source:?}"),
            );
            return None;
        }
        Some(disk)
    }

    fn path(&self) -> &Path {
        self.mount_point.path()
    }

    fn error_trigger(&self) -> Option<PathBuf> {
        let (_, device) = self.image.as_ref()?;
        Some(
            Path::new("/sys/fs/ext4")
                .join(device)
                .join("trigger_fs_error"),
        )
    }

    /// Reports an ext4 error, which turns the filesystem read-only at once (for open files
    /// too) until it is mounted again.
    fn turn_read_only(&self) {
        let trigger = self.error_trigger().expect("an ext4 disk");
        std::fs::write(trigger, "1").expect("trigger an ext4 error");
    }

    /// Unmounts and mounts the image again, as an operator does after a disk error.
    fn mount_again(&mut self) {
        let (image_dir, _) = self.image.as_ref().expect("an ext4 disk");
        let image = image_dir.path().join("disk.img");
        run("umount", &[text(self.path())]).expect("umount");
        run("e2fsck", &["-f", "-y", text(&image)]).ok();
        run(
            "mount",
            &[
                "-o",
                "loop,errors=remount-ro",
                text(&image),
                text(self.path()),
            ],
        )
        .expect("mount again");
        let source = Command::new("findmnt")
            .args(["-n", "-o", "SOURCE", text(self.path())])
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .unwrap_or_default();
        if let Some((_, device)) = &mut self.image {
            *device = source.rsplit('/').next().unwrap_or_default().to_owned();
        }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        // Lazy, so that a failed test that left a server running does not leave a mount.
        let _ = run("umount", &["-l", text(self.mount_point.path())]);
    }
}

/// Fills a filesystem with one file until it has no space left.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
}

/// What happened to one write.
#[derive(Debug, PartialEq)]
enum Outcome {
    Acknowledged,
    /// 503 ServiceUnavailableException: the store refused it.
    Refused,
}

/// Classifies a call's result; anything but success or a 503 refusal fails the test.
fn outcome<T, E: ProvideErrorMetadata + std::fmt::Debug>(
    what: &str,
    result: Result<T, SdkError<E>>,
) -> Outcome {
    match result {
        Ok(_) => Outcome::Acknowledged,
        Err(err) => {
            let status = err
                .raw_response()
                .map(|response| response.status().as_u16());
            assert_eq!(
                (status, err.code()),
                (Some(503), Some("ServiceUnavailableException")),
                "{what}: only a 503 refusal is acceptable, got {err:?}"
            );
            Outcome::Refused
        }
    }
}

/// Whether a call failed because the server went away (killed), rather than with an answer.
fn server_gone<E>(err: &SdkError<E>) -> bool {
    !matches!(err, SdkError::ServiceError(_))
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or_default()
}

/// The writes a test was told succeeded.
#[derive(Default)]
struct Acknowledged {
    groups: Vec<String>,
    /// (stream, message)
    events: Vec<(String, String)>,
    destinations: Vec<String>,
}

async fn create_group(client: &LogsClient, name: &str, acked: &Mutex<Acknowledged>) -> Outcome {
    let result = client.create_log_group().log_group_name(name).send().await;
    let outcome = outcome("CreateLogGroup", result);
    if outcome == Outcome::Acknowledged {
        acked.lock().expect("lock").groups.push(name.to_owned());
    }
    outcome
}

async fn put_event(
    client: &LogsClient,
    stream: &str,
    message: &str,
    acked: &Mutex<Acknowledged>,
) -> Outcome {
    let event = InputLogEvent::builder()
        .timestamp(now_millis())
        .message(message)
        .build()
        .expect("event");
    let result = client
        .put_log_events()
        .log_group_name("events")
        .log_stream_name(stream)
        .log_events(event)
        .send()
        .await;
    let outcome = outcome("PutLogEvents", result);
    if outcome == Outcome::Acknowledged {
        let mut acked = acked.lock().expect("lock");
        acked.events.push((stream.to_owned(), message.to_owned()));
    }
    outcome
}

/// Creates the Kinesis stream `s` that destinations point at, before any fault: AWS (and
/// Sluice) refuse a destination whose target stream does not exist.
async fn create_target_stream(server: &Server, account: &str) {
    kinesis_client_with(&server.endpoint, account)
        .create_stream()
        .stream_name("s")
        .shard_count(1)
        .send()
        .await
        .expect("target stream");
}

async fn put_destination(
    client: &LogsClient,
    account: &str,
    name: &str,
    acked: &Mutex<Acknowledged>,
) -> Outcome {
    let result = client
        .put_destination()
        .destination_name(name)
        .target_arn(format!("arn:aws:kinesis:us-east-1:{account}:stream/s"))
        .role_arn(format!("arn:aws:iam::{account}:role/r"))
        .send()
        .await;
    let outcome = outcome("PutDestination", result);
    if outcome == Outcome::Acknowledged {
        acked
            .lock()
            .expect("lock")
            .destinations
            .push(name.to_owned());
    }
    outcome
}

/// One CreateLogGroup and one PutLogEvents; refused if either was.
async fn write_pair(client: &LogsClient, n: usize, acked: &Mutex<Acknowledged>) -> Outcome {
    let group = create_group(client, &format!("g{n:04}"), acked).await;
    let event = put_event(client, "s", &format!("m{n:04}"), acked).await;
    if group == Outcome::Acknowledged && event == Outcome::Acknowledged {
        Outcome::Acknowledged
    } else {
        Outcome::Refused
    }
}

async fn create_events_stream(client: &LogsClient, stream: &str) {
    let _ = client
        .create_log_group()
        .log_group_name("events")
        .send()
        .await;
    client
        .create_log_stream()
        .log_group_name("events")
        .log_stream_name(stream)
        .send()
        .await
        .expect("create stream");
}

/// `/_sluice/health`: the status code and the body.
fn health(server: &Server) -> (u16, serde_json::Value) {
    let response = raw_request(server.port, "GET", "/_sluice/health", &[], b"");
    (response.status, response.json())
}

fn assert_degraded(server: &Server, restart_required: bool) -> String {
    let (status, body) = health(server);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["storage"]["durable"], false, "{body}");
    assert_eq!(
        body["storage"]["restartRequired"], restart_required,
        "{body}"
    );
    assert!(body["storage"]["since"].is_string(), "{body}");
    body["storage"]["reason"]
        .as_str()
        .expect("a reason")
        .to_owned()
}

fn assert_ready(server: &Server) {
    let (status, body) = health(server);
    assert_eq!((status, &body["status"]), (200, &"ready".into()), "{body}");
    assert_eq!(body["storage"]["durable"], true, "{body}");
}

/// Every acknowledged write of `acked` (log groups and destinations named with `prefix`) is
/// in the store behind `client`.
async fn assert_all_stored(client: &LogsClient, acked: &Acknowledged, prefix: &str) {
    let mut groups = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .describe_log_groups()
            .log_group_name_prefix(prefix)
            .set_next_token(token)
            .send()
            .await
            .expect("describe log groups");
        groups.extend(
            page.log_groups()
                .iter()
                .filter_map(|g| g.log_group_name().map(str::to_owned)),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    for group in &acked.groups {
        assert!(
            groups.contains(group),
            "acknowledged log group {group} lost"
        );
    }

    let mut destinations = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .describe_destinations()
            .destination_name_prefix(prefix)
            .set_next_token(token)
            .send()
            .await
            .expect("describe destinations");
        destinations.extend(
            page.destinations()
                .iter()
                .filter_map(|d| d.destination_name().map(str::to_owned)),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    for destination in &acked.destinations {
        assert!(
            destinations.contains(destination),
            "acknowledged destination {destination} lost"
        );
    }

    let mut streams: Vec<&str> = acked.events.iter().map(|(s, _)| s.as_str()).collect();
    streams.sort_unstable();
    streams.dedup();
    for stream in streams {
        let mut messages = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = client
                .get_log_events()
                .log_group_name("events")
                .log_stream_name(stream)
                .start_from_head(true)
                .set_next_token(token.clone())
                .send()
                .await
                .expect("get log events");
            messages.extend(
                page.events()
                    .iter()
                    .filter_map(|e| e.message().map(str::to_owned)),
            );
            let next = page.next_forward_token().map(str::to_owned);
            if page.events().is_empty() || next == token {
                break;
            }
            token = next;
        }
        for (_, message) in acked.events.iter().filter(|(s, _)| s == stream) {
            assert!(
                messages.contains(message),
                "acknowledged event {message} in {stream} lost"
            );
        }
    }
}

#[tokio::test]
async fn a_full_disk_refuses_writes_loses_none_and_recovers_without_restart() {
    let test = "a_full_disk_refuses_writes_loses_none_and_recovers_without_restart";
    let Some(disk) = Disk::tmpfs(test, "2m") else {
        return;
    };
    let data = disk.path().join("data");
    let account = fresh_account();
    let server = Server::start(&data, &[]);
    let client = logs_client_with(&server.endpoint, &account, "s");
    create_events_stream(&client, "s").await;
    let acked = Mutex::new(Acknowledged::default());
    assert_eq!(write_pair(&client, 0, &acked).await, Outcome::Acknowledged);

    let filler = disk.path().join("filler");
    fill(&filler);
    let mut n = 1;
    while write_pair(&client, n, &acked).await == Outcome::Acknowledged {
        n += 1;
        assert!(n < 500, "a full disk never refused a write");
    }
    let reason = assert_degraded(&server, false);
    assert!(reason.contains("full"), "{reason}");
    // Writes go on being refused (or, should one fit, being truly committed).
    for _ in 0..20 {
        n += 1;
        write_pair(&client, n, &acked).await;
    }

    std::fs::remove_file(&filler).expect("free the space");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        n += 1;
        if write_pair(&client, n, &acked).await == Outcome::Acknowledged {
            break;
        }
        assert!(Instant::now() < deadline, "writes never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_ready(&server);
    for _ in 0..5 {
        n += 1;
        assert_eq!(write_pair(&client, n, &acked).await, Outcome::Acknowledged);
    }

    server.kill();
    let server = Server::start(&data, &[]);
    let client = logs_client_with(&server.endpoint, &account, "s");
    let acked = acked.into_inner().expect("lock");
    assert_all_stored(&client, &acked, "g").await;
    drop(server);
    drop(disk);
}

#[tokio::test]
async fn a_read_only_disk_refuses_every_write_and_loses_none() {
    let test = "a_read_only_disk_refuses_every_write_and_loses_none";
    let Some(mut disk) = Disk::ext4(test) else {
        return;
    };
    let data = disk.path().join("data");
    let account = fresh_account();
    let server = Server::start(&data, &[]);
    create_target_stream(&server, &account).await;
    let client = logs_client_with(&server.endpoint, &account, "s");
    create_events_stream(&client, "s").await;
    let acked = Mutex::new(Acknowledged::default());
    for n in 0..5 {
        assert_eq!(write_pair(&client, n, &acked).await, Outcome::Acknowledged);
    }

    // What the kernel does after a disk error with errors=remount-ro: read-only at once,
    // for files already open too.
    disk.turn_read_only();
    for n in 5..25 {
        assert_eq!(
            write_pair(&client, n, &acked).await,
            Outcome::Refused,
            "a write was acknowledged on a read-only disk"
        );
    }
    let destination = put_destination(&client, &account, "g-destination", &acked).await;
    assert_eq!(destination, Outcome::Refused);
    assert_degraded(&server, false);
    // Reads still work.
    client
        .describe_log_groups()
        .send()
        .await
        .expect("reads go on");

    // ext4 stays read-only until it is mounted again, which needs Sluice stopped.
    server.kill();
    disk.mount_again();
    let server = Server::start(&data, &[]);
    let client = logs_client_with(&server.endpoint, &account, "s");
    assert_ready(&server);
    let acked = acked.into_inner().expect("lock");
    assert_eq!(acked.groups.len(), 5);
    assert_all_stored(&client, &acked, "g").await;
    let again = Mutex::new(Acknowledged::default());
    assert_eq!(write_pair(&client, 99, &again).await, Outcome::Acknowledged);
    drop(server);
    drop(disk);
}

#[tokio::test]
async fn a_deleted_database_file_refuses_every_later_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let account = fresh_account();
    let server = Server::start(dir.path(), &[]);
    create_target_stream(&server, &account).await;
    let client = logs_client_with(&server.endpoint, &account, "s");
    create_events_stream(&client, "s").await;
    let acked = Mutex::new(Acknowledged::default());
    assert_eq!(write_pair(&client, 0, &acked).await, Outcome::Acknowledged);

    std::fs::remove_file(dir.path().join("sluice.db")).expect("delete sluice.db");
    for n in 1..15 {
        assert_eq!(
            write_pair(&client, n, &acked).await,
            Outcome::Refused,
            "a write was acknowledged after sluice.db was deleted"
        );
    }
    let destination = put_destination(&client, &account, "d", &acked).await;
    assert_eq!(destination, Outcome::Refused);
    // Every service answers a refused write with 503 ServiceUnavailableException.
    let kinesis = common::kinesis_client_with(&server.endpoint, &account);
    let result = kinesis
        .create_stream()
        .stream_name("s")
        .shard_count(1)
        .send()
        .await;
    assert_eq!(outcome("Kinesis CreateStream", result), Outcome::Refused);
    let cloudtrail = common::cloudtrail_client_with(&server.endpoint, &account);
    let result = cloudtrail
        .create_event_data_store()
        .name("store")
        .send()
        .await;
    assert_eq!(
        outcome("CloudTrail CreateEventDataStore", result),
        Outcome::Refused
    );
    let appfabric = common::appfabric_client_with(&server.endpoint, &account);
    let result = appfabric.create_app_bundle().send().await;
    assert_eq!(
        outcome("AppFabric CreateAppBundle", result),
        Outcome::Refused
    );
    let reason = assert_degraded(&server, true);
    assert!(reason.contains("sluice.db"), "{reason}");
    // It does not come back by itself: the file it wrote to is gone.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(write_pair(&client, 99, &acked).await, Outcome::Refused);
    assert_degraded(&server, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_concurrent_writers_loses_no_acknowledged_write() {
    const CYCLES: usize = 16;
    const WRITERS: usize = 4;
    let dir = tempfile::tempdir().expect("tempdir");
    let account = fresh_account();
    let mut total = 0;
    let mut server = Server::start(dir.path(), &[]);
    create_target_stream(&server, &account).await;
    let setup = logs_client_with(&server.endpoint, &account, "s");
    setup
        .create_log_group()
        .log_group_name("events")
        .send()
        .await
        .expect("group");
    for cycle in 0..CYCLES {
        let acked = Arc::new(Mutex::new(Acknowledged::default()));
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let client = logs_client_with(&server.endpoint, &account, "s");
            let acked = acked.clone();
            let account = account.clone();
            writers.push(tokio::spawn(async move {
                let stream = format!("s-c{cycle:02}-w{writer}");
                let created = client
                    .create_log_stream()
                    .log_group_name("events")
                    .log_stream_name(&stream)
                    .send()
                    .await;
                if created.is_err() {
                    return;
                }
                for n in 0.. {
                    let name = format!("c{cycle:02}-w{writer}-{n:05}");
                    // A connection error means the server was killed: the write is not
                    // acknowledged, and this writer is done.
                    let alive = match n % 3 {
                        0 => client
                            .create_log_group()
                            .log_group_name(format!("g-{name}"))
                            .send()
                            .await
                            .map(|_| acked.lock().expect("lock").groups.push(format!("g-{name}")))
                            .map_err(|err| server_gone(&err)),
                        1 => {
                            let event = InputLogEvent::builder()
                                .timestamp(now_millis())
                                .message(&name)
                                .build()
                                .expect("event");
                            client
                                .put_log_events()
                                .log_group_name("events")
                                .log_stream_name(&stream)
                                .log_events(event)
                                .send()
                                .await
                                .map(|_| {
                                    acked
                                        .lock()
                                        .expect("lock")
                                        .events
                                        .push((stream.clone(), name.clone()))
                                })
                                .map_err(|err| server_gone(&err))
                        }
                        _ => client
                            .put_destination()
                            .destination_name(format!("g-{name}"))
                            .target_arn(format!("arn:aws:kinesis:us-east-1:{account}:stream/s"))
                            .role_arn(format!("arn:aws:iam::{account}:role/r"))
                            .send()
                            .await
                            .map(|_| {
                                acked
                                    .lock()
                                    .expect("lock")
                                    .destinations
                                    .push(format!("g-{name}"))
                            })
                            .map_err(|err| server_gone(&err)),
                    };
                    match alive {
                        Ok(()) => {}
                        Err(true) => return,
                        Err(false) => panic!("writer {writer}: a service error under load"),
                    }
                }
            }));
        }
        // Let the writers get going, then kill the server in the middle of their writes.
        tokio::time::sleep(Duration::from_millis(150 + (cycle as u64 * 37) % 150)).await;
        server.kill();
        for writer in writers {
            writer.await.expect("writer");
        }
        server = Server::start(dir.path(), &[]);
        let client = logs_client_with(&server.endpoint, &account, "s");
        let acked = std::mem::take(&mut *acked.lock().expect("lock"));
        let count = acked.groups.len() + acked.events.len() + acked.destinations.len();
        assert!(count > 0, "cycle {cycle}: no write was acknowledged");
        total += count;
        assert_all_stored(&client, &acked, &format!("g-c{cycle:02}-")).await;
    }
    let _ = writeln!(
        std::io::stderr(),
        "kill -9: {CYCLES} cycles, {total} acknowledged writes, all found after restart"
    );
}
