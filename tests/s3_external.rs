//! External buckets: Sluice's writers deliver a configured bucket into another S3-compatible
//! service. The "external" service here is a second Sluice in strict mode (so signatures are
//! really verified), checked with `aws-sdk-s3`; the router is driven through the library's
//! `ObjectStorage` interface, exactly as Firehose and AppFabric will use it.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use common::Server;
use sluice::cli::ServeArgs;
use sluice::services::s3::external::ObjectRouter;
use sluice::services::s3::storage::{
    BucketRecord, LocalObjects, NewObject, ObjectStorage, StorageError,
};
use sluice::store::memory::MemoryStore;
use tokio::io::AsyncReadExt;

const EXTERNAL_KEY: &str = "AKIDEXTERNAL";
const EXTERNAL_SECRET: &str = "external-secret";

fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            EXTERNAL_KEY,
            EXTERNAL_SECRET,
            None,
            None,
            "tests",
        ))
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The second Sluice, standing in for AWS S3, MinIO or Garage.
fn external_service(dir: &std::path::Path) -> Server {
    let config = dir.join("external.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nmode = \"strict\"\n[[auth.credentials]]\naccess_key_id = \"{EXTERNAL_KEY}\"\nsecret_access_key = \"{EXTERNAL_SECRET}\"\naccount_id = \"123456789012\"\n"
        ),
    )
    .expect("config");
    Server::start(
        &dir.join("external-data"),
        &["--config", config.to_str().expect("utf-8")],
    )
}

/// The first Sluice's configuration: three external buckets (one delivering into a real
/// remote bucket, one whose remote bucket does not exist, one with a wrong secret).
fn router_config(dir: &std::path::Path, endpoint: &str) -> sluice::config::ValidatedConfig {
    let entry = |bucket: &str, remote: &str, secret: &str| {
        format!(
            "[[s3.external_buckets]]\nbucket = \"{bucket}\"\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\nremote_bucket = \"{remote}\"\naccess_key_id = \"{EXTERNAL_KEY}\"\nsecret_access_key = \"{secret}\"\nallow_http = true\n"
        )
    };
    let text = [
        entry("audit-archive", "remote-archive", EXTERNAL_SECRET),
        entry("missing-remote", "no-such-remote-bucket", EXTERNAL_SECRET),
        entry("wrong-secret", "remote-archive", "not-the-secret"),
    ]
    .concat();
    let path = dir.join("sluice.toml");
    std::fs::write(&path, text).expect("config");
    sluice::config::resolve(&ServeArgs {
        config: Some(path),
        data_dir: Some(":memory:".into()),
        ..ServeArgs::default()
    })
    .expect("valid configuration")
}

async fn read_all(mut reader: impl tokio::io::AsyncRead + Unpin) -> Vec<u8> {
    let mut data = Vec::new();
    reader.read_to_end(&mut data).await.expect("read body");
    data
}

fn new_object(content_type: &str) -> NewObject {
    NewObject {
        content_type: Some(content_type.to_owned()),
        metadata: BTreeMap::from([("source".to_owned(), "appfabric".to_owned())]),
        ..NewObject::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn writers_deliver_external_buckets_to_the_configured_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let external = external_service(dir.path());
    let remote = s3_client(&external.endpoint);
    remote
        .create_bucket()
        .bucket("remote-archive")
        .send()
        .await
        .expect("create the remote bucket");

    let config = router_config(dir.path(), &external.endpoint);
    assert_eq!(config.external_buckets.len(), 3);
    let local = Arc::new(LocalObjects::open(Arc::new(MemoryStore::default()), None).expect("open"));
    local
        .create_bucket(
            "local-bucket",
            &BucketRecord {
                owner: "000000000000".into(),
                region: "us-east-1".into(),
                created_millis: 0,
                tags: None,
                policy: None,
            },
        )
        .await
        .expect("create local bucket");
    let router = ObjectRouter::new(local, &config.external_buckets).expect("router");
    assert!(router.is_external("audit-archive"));
    assert!(!router.is_external("local-bucket"));
    let storage: Arc<dyn ObjectStorage> = Arc::new(router);

    // Put, get and list through the external path.
    let key = "logs/2026/12/01/batch-1.json";
    let data: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();
    let put = storage
        .put_object(
            "audit-archive",
            key,
            new_object("application/json"),
            &mut data.as_slice(),
        )
        .await
        .expect("put through the router");
    assert_eq!(put.size, data.len() as u64);
    assert_eq!(
        put.etag.len(),
        32,
        "a single-part ETag is the MD5: {}",
        put.etag
    );
    let (info, body) = storage
        .get_object("audit-archive", key)
        .await
        .expect("get")
        .expect("the object exists");
    assert_eq!(info.etag, put.etag);
    assert_eq!(info.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        info.metadata.get("source").map(String::as_str),
        Some("appfabric")
    );
    assert_eq!(read_all(body).await, data);

    // The object is really in the other service, as ordinary clients see it.
    let got = remote
        .get_object()
        .bucket("remote-archive")
        .key(key)
        .send()
        .await
        .expect("the object is in the external service");
    assert_eq!(got.content_type(), Some("application/json"));
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("source"))
            .map(String::as_str),
        Some("appfabric")
    );
    assert_eq!(got.e_tag(), Some(format!("\"{}\"", put.etag).as_str()));
    let bytes = got.body.collect().await.expect("body").into_bytes();
    assert_eq!(bytes.as_ref(), data.as_slice());

    // Keys with characters URLs escape arrive unchanged.
    let odd = "reports/100% done+ünï.json";
    storage
        .put_object("audit-archive", odd, NewObject::default(), &mut &b"odd"[..])
        .await
        .expect("put an odd key");
    let head = remote
        .head_object()
        .bucket("remote-archive")
        .key(odd)
        .send()
        .await
        .expect("the key is stored as given");
    assert_eq!(head.content_length(), Some(3));
    storage
        .delete_object("audit-archive", odd)
        .await
        .expect("delete the odd key");

    // A body over the 10 MiB buffer goes up as a multipart upload, streamed.
    let big: Vec<u8> = (0..12 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
    let put_big = storage
        .put_object(
            "audit-archive",
            "logs/2026/12/01/batch-2.json",
            new_object("application/json"),
            &mut big.as_slice(),
        )
        .await
        .expect("multipart put");
    assert!(put_big.etag.ends_with("-2"), "{}", put_big.etag);
    let (_, body) = storage
        .get_object("audit-archive", "logs/2026/12/01/batch-2.json")
        .await
        .expect("get")
        .expect("exists");
    assert!(
        read_all(body).await == big,
        "the multipart object reads back whole"
    );

    storage
        .put_object(
            "audit-archive",
            "logs/2026/12/02/batch-3.json",
            NewObject::default(),
            &mut &b"{}"[..],
        )
        .await
        .expect("put");
    storage
        .put_object(
            "audit-archive",
            "logsz",
            NewObject::default(),
            &mut &b"x"[..],
        )
        .await
        .expect("put");
    let keys = |listed: Vec<(String, sluice::services::s3::storage::ObjectInfo)>| {
        listed.into_iter().map(|(key, _)| key).collect::<Vec<_>>()
    };
    // Prefixes are plain strings, as in S3, not whole path segments.
    assert_eq!(
        keys(
            storage
                .list_objects("audit-archive", "logs/2026/12/0", None, 100)
                .await
                .expect("list")
        ),
        [
            "logs/2026/12/01/batch-1.json",
            "logs/2026/12/01/batch-2.json",
            "logs/2026/12/02/batch-3.json"
        ]
    );
    assert_eq!(
        keys(
            storage
                .list_objects("audit-archive", "logs", Some(key), 2)
                .await
                .expect("list after")
        ),
        [
            "logs/2026/12/01/batch-2.json",
            "logs/2026/12/02/batch-3.json"
        ]
    );
    let everything = storage
        .list_objects("audit-archive", "", None, 100)
        .await
        .expect("list all");
    assert_eq!(everything.len(), 4);
    assert_eq!(everything[0].1.size, data.len() as u64);

    // Missing keys and deletes behave as on the local disk.
    assert!(storage
        .get_object("audit-archive", "logs/none")
        .await
        .expect("a missing key is not an error")
        .is_none());
    storage
        .delete_object("audit-archive", "logsz")
        .await
        .expect("delete");
    assert!(storage
        .get_object("audit-archive", "logsz")
        .await
        .expect("get")
        .is_none());
    assert!(remote
        .head_object()
        .bucket("remote-archive")
        .key("logsz")
        .send()
        .await
        .is_err());

    // Failures are typed errors.
    let missing = storage
        .put_object("missing-remote", "k", NewObject::default(), &mut &b"x"[..])
        .await
        .expect_err("the remote bucket does not exist");
    assert!(matches!(missing, StorageError::NoSuchBucket), "{missing:?}");
    let missing = storage.get_object("missing-remote", "k").await;
    assert!(
        matches!(missing, Err(StorageError::NoSuchBucket)),
        "get from a missing remote bucket: {:?}",
        missing.map(|found| found.map(|(info, _)| info))
    );
    let missing = storage
        .list_objects("missing-remote", "", None, 10)
        .await
        .expect_err("list a missing remote bucket");
    assert!(matches!(missing, StorageError::NoSuchBucket), "{missing:?}");
    let denied = storage
        .put_object("wrong-secret", "k", NewObject::default(), &mut &b"x"[..])
        .await
        .expect_err("the external service refuses the signature");
    assert!(
        matches!(&denied, StorageError::AccessDenied { bucket, .. } if bucket == "wrong-secret"),
        "{denied:?}"
    );
    let denied = storage.get_object("wrong-secret", key).await;
    assert!(
        matches!(denied, Err(StorageError::AccessDenied { .. })),
        "reads are refused too: {:?}",
        denied.map(|found| found.map(|(info, _)| info))
    );
    let invalid = storage
        .put_object(
            "audit-archive",
            "a//b",
            NewObject::default(),
            &mut &b"x"[..],
        )
        .await
        .expect_err("a key object_store would rewrite");
    assert!(
        matches!(invalid, StorageError::InvalidKey(_)),
        "{invalid:?}"
    );

    // Other buckets stay on the local disk, and never reach the external service.
    storage
        .put_object(
            "local-bucket",
            "logs/local.json",
            new_object("application/json"),
            &mut &b"local"[..],
        )
        .await
        .expect("local put");
    let (info, body) = storage
        .get_object("local-bucket", "logs/local.json")
        .await
        .expect("local get")
        .expect("exists");
    assert_eq!(info.content_type.as_deref(), Some("application/json"));
    assert_eq!(read_all(body).await, b"local");
    assert_eq!(
        keys(
            storage
                .list_objects("local-bucket", "logs/", None, 10)
                .await
                .expect("local list")
        ),
        ["logs/local.json"]
    );
    let local_missing = storage
        .put_object("no-such-local", "k", NewObject::default(), &mut &b"x"[..])
        .await
        .expect_err("unknown local bucket");
    assert!(matches!(local_missing, StorageError::NoSuchBucket));
    let remote_buckets = remote.list_buckets().send().await.expect("list buckets");
    let names: Vec<_> = remote_buckets
        .buckets()
        .iter()
        .filter_map(|bucket| bucket.name())
        .collect();
    assert_eq!(names, ["remote-archive"]);
}

/// Sluice's own S3 API does not serve external buckets: creating a local bucket under such a
/// name is refused, since writers would never deliver into it.
#[tokio::test]
async fn the_s3_api_refuses_to_create_a_local_bucket_under_an_external_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        "[[s3.external_buckets]]\nbucket = \"audit-archive\"\nendpoint = \"http://127.0.0.1:9\"\nregion = \"us-east-1\"\naccess_key_id = \"AKIDEXTERNAL\"\nsecret_access_key = \"external-secret\"\nallow_http = true\n",
    )
    .expect("config");
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().expect("utf-8")],
    );
    let s3 = s3_client(&server.endpoint);
    let error = s3
        .create_bucket()
        .bucket("audit-archive")
        .send()
        .await
        .expect_err("the name belongs to an external bucket");
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&error),
        Some("BucketAlreadyExists")
    );
    s3.create_bucket()
        .bucket("local-archive")
        .send()
        .await
        .expect("other names are local buckets as before");
}
