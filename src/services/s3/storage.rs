//! Objects on the local disk, their metadata in the store.
//!
//! A body is streamed into a temporary file under `<data dir>/s3/tmp`, fsynced, renamed into
//! `<data dir>/s3/blobs/<uuid>` (the directory fsynced too), and only then is the object's
//! record committed in the store; the record names its blob. So a crash mid-upload leaves at
//! most an unreferenced file, never a visible partial object, and an object is durable when
//! PutObject answers.
//!
//! **Invariant:** a blob file is never modified after its record is committed; replacing an
//! object commits a new blob and deletes the old one afterwards, so a reader holding the old
//! file open keeps reading a whole object.
//!
//! Records: `s3/bucket` (account and region empty: bucket names are global) and `s3/object`
//! (the account field holds the bucket name, the name holds the key), so that the store's
//! byte-ordered name listing is S3's key order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::store::{self, Expect, RecordKey, Store, StoreError, Write};

/// Record kind of a bucket.
pub const BUCKET_KIND: &str = "s3/bucket";
/// Record kind of an object.
pub const OBJECT_KIND: &str = "s3/object";
/// Record kind of a multipart upload in progress (account field: the bucket; name: the id).
pub const UPLOAD_KIND: &str = "s3/upload";
/// Record kind of an uploaded part (account field: the upload id; name: the zero-padded
/// part number, so that the store lists parts in order).
pub const PART_KIND: &str = "s3/part";

/// A multipart upload in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadRecord {
    /// The key the object will have.
    pub key: String,
    /// When it was created, epoch milliseconds.
    pub initiated_millis: i64,
    /// `Content-Type` given at creation.
    pub content_type: Option<String>,
    /// `x-amz-meta-*` given at creation.
    pub metadata: BTreeMap<String, String>,
}

/// One uploaded part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartRecord {
    /// The blob file under `blobs/`.
    pub blob: String,
    /// Size in bytes.
    pub size: u64,
    /// The part's MD5 in hex.
    pub etag: String,
    /// Upload time, epoch milliseconds.
    pub last_modified_millis: i64,
}

/// A bucket as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketRecord {
    /// The owning account.
    pub owner: String,
    /// The bucket's region (its location constraint, `us-east-1` when none).
    pub region: String,
    /// Creation time, epoch milliseconds.
    pub created_millis: i64,
    /// Bucket tags (PutBucketTagging); `None` until a tag set is put.
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    /// The bucket policy as the owner put it (validated), which grants other accounts access.
    #[serde(default)]
    pub policy: Option<crate::policy::StoredPolicy>,
}

/// An object's metadata as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// The blob file under `blobs/`.
    pub blob: String,
    /// Size in bytes.
    pub size: u64,
    /// The ETag without quotes: the MD5 of the body in hex.
    pub etag: String,
    /// `Content-Type` as uploaded.
    pub content_type: Option<String>,
    /// `x-amz-meta-*` headers, names lowercased without the prefix.
    pub metadata: BTreeMap<String, String>,
    /// Last modification, epoch milliseconds.
    pub last_modified_millis: i64,
    /// The checksum the client sent and Sluice verified: algorithm (`CRC32` ...) and value.
    #[serde(default)]
    pub checksum: Option<(String, String)>,
}

/// What the uploader says about a new object.
#[derive(Debug, Clone, Default)]
pub struct NewObject {
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `x-amz-meta-*`.
    pub metadata: BTreeMap<String, String>,
    /// The verified checksum, if any.
    pub checksum: Option<(String, String)>,
    /// The ETag when it is not the body's MD5 (a multipart object's `<md5 of md5s>-N`).
    pub etag: Option<String>,
}

/// Why an object operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The bucket does not exist (or was deleted during the upload).
    #[error("no such bucket")]
    NoSuchBucket,
    /// The disk failed.
    #[error("object storage i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key cannot be stored unchanged in an external bucket: object_store's paths have no
    /// empty, `.` or `..` segments, no leading or trailing `/` and no control characters.
    #[error("key {0:?} cannot be written to an external bucket unchanged")]
    InvalidKey(String),
    /// The external service refused the configured credentials (401/403).
    #[error("external bucket {bucket}: access denied: {source}")]
    AccessDenied {
        /// The bucket as Sluice's writers name it.
        bucket: String,
        /// The client's error, with the service's answer.
        source: object_store::Error,
    },
    /// Any other failure of an external service (unreachable, 5xx after retries, ...).
    #[error("external bucket {bucket}: {source}")]
    Remote {
        /// The bucket as Sluice's writers name it.
        bucket: String,
        /// The client's error.
        source: object_store::Error,
    },
}

/// An object's metadata as Sluice's writers see it, wherever it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Size in bytes.
    pub size: u64,
    /// The ETag without quotes (the MD5 in hex for a single-part upload).
    pub etag: String,
    /// `Content-Type`; `None` in listings of external buckets, which S3 lists without it.
    pub content_type: Option<String>,
    /// `x-amz-meta-*`; empty in listings of external buckets, for the same reason.
    pub metadata: BTreeMap<String, String>,
    /// Last modification, epoch milliseconds.
    pub last_modified_millis: i64,
}

impl From<&ObjectRecord> for ObjectInfo {
    fn from(record: &ObjectRecord) -> Self {
        Self {
            size: record.size,
            etag: record.etag.clone(),
            content_type: record.content_type.clone(),
            metadata: record.metadata.clone(),
            last_modified_millis: record.last_modified_millis,
        }
    }
}

/// An object's body being read: a local file or an external service's response stream.
pub type ObjectReader = Box<dyn AsyncRead + Send + Unpin>;

/// The object-storage interface Sluice's own writers (Firehose, AppFabric, query results)
/// put objects through, so that they need not know whether the bucket is on the local disk
/// ([`LocalObjects`]) or in an external S3-compatible service
/// ([`super::external::ExternalObjects`], chosen per bucket by [`super::external::ObjectRouter`]).
/// Errors are [`StorageError`]s: a missing bucket is `NoSuchBucket` on both sides.
#[async_trait]
pub trait ObjectStorage: Send + Sync + 'static {
    /// Stores `body` as `key` in `bucket`; returns once the object is durable and visible.
    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        object: NewObject,
        body: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<ObjectInfo, StorageError>;

    /// Opens an object for reading, with its metadata; `None` when there is no such key.
    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(ObjectInfo, ObjectReader)>, StorageError>;

    /// Deletes an object; deleting a missing key succeeds, as in S3.
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), StorageError>;

    /// Lists up to `limit` objects whose keys start with `prefix` and sort after `after`, in
    /// byte order.
    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, ObjectInfo)>, StorageError>;
}

/// Buckets and objects on the local disk.
pub struct LocalObjects {
    store: Arc<dyn Store>,
    root: PathBuf,
    /// For a `:memory:` data directory: a temporary directory removed at exit.
    _temporary: Option<tempfile::TempDir>,
}

/// A body being written to a temporary file; dropped without [`LocalObjects::commit`], the
/// file is removed.
pub struct Staged {
    file: tokio::fs::File,
    path: PathBuf,
    md5: Md5,
    size: u64,
    done: bool,
}

impl Staged {
    /// Appends bytes and folds them into the MD5.
    pub async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.md5.update(data);
        self.size += data.len() as u64;
        self.file.write_all(data).await
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The MD5 of what was written.
    pub fn md5(&self) -> [u8; 16] {
        self.md5.clone().finalize().into()
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn now_millis() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn object_key(bucket: &str, key: &str) -> RecordKey {
    RecordKey::new(OBJECT_KIND, bucket, "", key)
}

/// The record key of a bucket.
pub fn bucket_key(bucket: &str) -> RecordKey {
    RecordKey::new(BUCKET_KIND, "", "", bucket)
}

async fn sync_dir(dir: &Path) -> std::io::Result<()> {
    tokio::fs::File::open(dir).await?.sync_all().await
}

impl LocalObjects {
    /// Opens the object area under `data_dir` (a temporary directory when `None`); what a crash
    /// left behind is removed by `hygiene::sweep_at_start`.
    pub fn open(store: Arc<dyn Store>, data_dir: Option<&Path>) -> std::io::Result<Self> {
        let (root, temporary) = match data_dir {
            Some(dir) => (dir.join("s3"), None),
            None => {
                let temporary = tempfile::Builder::new().prefix("sluice-s3-").tempdir()?;
                (temporary.path().to_path_buf(), Some(temporary))
            }
        };
        // The directories are made on the first upload, so that a data directory whose S3 is
        // unused holds nothing for it.
        Ok(Self {
            store,
            root,
            _temporary: temporary,
        })
    }

    /// The directory holding `tmp/` and `blobs/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store the metadata lives in.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Starts an upload into a fresh temporary file.
    pub async fn stage(&self) -> Result<Staged, StorageError> {
        tokio::fs::create_dir_all(self.root.join("tmp")).await?;
        tokio::fs::create_dir_all(self.root.join("blobs")).await?;
        let path = self.root.join("tmp").join(uuid::Uuid::new_v4().to_string());
        let file = tokio::fs::File::create(&path).await?;
        Ok(Staged {
            file,
            path,
            md5: Md5::new(),
            size: 0,
            done: false,
        })
    }

    /// Makes a staged body the object `key` of `bucket`: fsync, rename, commit the record,
    /// then remove the blob it replaced.
    pub async fn commit(
        &self,
        mut staged: Staged,
        bucket: &str,
        key: &str,
        object: NewObject,
    ) -> Result<ObjectRecord, StorageError> {
        staged.file.flush().await?;
        staged.file.sync_all().await?;
        let blob = uuid::Uuid::new_v4().to_string();
        let blob_path = self.root.join("blobs").join(&blob);
        tokio::fs::rename(&staged.path, &blob_path).await?;
        staged.done = true;
        let record = ObjectRecord {
            blob,
            size: staged.size,
            etag: object.etag.unwrap_or_else(|| hex::encode(staged.md5())),
            content_type: object.content_type,
            metadata: object.metadata,
            last_modified_millis: now_millis(),
            checksum: object.checksum,
        };
        let result = async {
            sync_dir(&self.root.join("blobs")).await?;
            self.replace(bucket, key, &record).await
        }
        .await;
        match result {
            Ok(replaced) => {
                if let Some(old) = replaced {
                    self.remove_blob(&old.blob).await;
                }
                Ok(record)
            }
            Err(error) => {
                self.remove_blob(&record.blob).await;
                Err(error)
            }
        }
    }

    /// Commits `record` as the object, retrying on concurrent changes; returns the record it
    /// replaced.
    async fn replace(
        &self,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
    ) -> Result<Option<ObjectRecord>, StorageError> {
        loop {
            if self.bucket(bucket).await?.is_none() {
                return Err(StorageError::NoSuchBucket);
            }
            let current: Option<(ObjectRecord, i64)> =
                store::load(self.store.as_ref(), &object_key(bucket, key)).await?;
            let expect = current
                .as_ref()
                .map_or(Expect::Absent, |(_, version)| Expect::Version(*version));
            let write = store::put(object_key(bucket, key), record, expect)?;
            match self.store.write(vec![write]).await {
                Ok(_) => return Ok(current.map(|(old, _)| old)),
                Err(StoreError::Conflict(_)) => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }

    async fn remove_blob(&self, blob: &str) {
        if let Err(error) = tokio::fs::remove_file(self.root.join("blobs").join(blob)).await {
            tracing::warn!(%blob, error = %error, "Could not remove a replaced object's file.");
        }
    }

    /// A bucket's record.
    pub async fn bucket(&self, bucket: &str) -> Result<Option<BucketRecord>, StorageError> {
        Ok(store::load(self.store.as_ref(), &bucket_key(bucket))
            .await?
            .map(|(record, _)| record))
    }

    /// An object's metadata.
    pub async fn head(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectRecord>, StorageError> {
        Ok(store::load(self.store.as_ref(), &object_key(bucket, key))
            .await?
            .map(|(record, _)| record))
    }

    /// Opens an object; retries once if it was replaced between reading its record and
    /// opening its file.
    pub async fn open_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(ObjectRecord, tokio::fs::File)>, StorageError> {
        for _ in 0..3 {
            let Some(record) = self.head(bucket, key).await? else {
                return Ok(None);
            };
            match tokio::fs::File::open(self.root.join("blobs").join(&record.blob)).await {
                Ok(file) => return Ok(Some((record, file))),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(StorageError::Io(std::io::Error::other(
            "object replaced repeatedly while opening it",
        )))
    }

    /// Deletes an object if present.
    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        loop {
            let Some((record, version)) =
                store::load::<ObjectRecord>(self.store.as_ref(), &object_key(bucket, key)).await?
            else {
                return Ok(());
            };
            let write = Write::Delete {
                key: object_key(bucket, key),
                expect: Expect::Version(version),
            };
            match self.store.write(vec![write]).await {
                Ok(_) => {
                    self.remove_blob(&record.blob).await;
                    return Ok(());
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Lists objects by prefix after a key, in byte order.
    pub async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, ObjectRecord)>, StorageError> {
        let records = self
            .store
            .list(OBJECT_KIND, bucket, "", prefix, after, limit)
            .await?;
        records
            .into_iter()
            .map(|record| {
                let value = serde_json::from_value(record.body).map_err(|err| {
                    StoreError::Unavailable(format!("corrupt s3/object record: {err}"))
                })?;
                Ok((record.key.name, value))
            })
            .collect()
    }

    /// Creates a bucket record unless the name is taken; returns the owner's record when it is.
    pub async fn create_bucket(
        &self,
        bucket: &str,
        record: &BucketRecord,
    ) -> Result<Option<BucketRecord>, StorageError> {
        let write = store::put(bucket_key(bucket), record, Expect::Absent)?;
        match self.store.write(vec![write]).await {
            Ok(_) => Ok(None),
            Err(StoreError::Conflict(_)) => {
                Ok(Some(self.bucket(bucket).await?.ok_or_else(|| {
                    StorageError::Store(StoreError::Unavailable("bucket vanished".into()))
                })?))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Changes a bucket's record unless it changed (or went away) meanwhile.
    pub async fn update_bucket(
        &self,
        bucket: &str,
        change: impl Fn(&mut BucketRecord),
    ) -> Result<(), StorageError> {
        loop {
            let Some((mut record, version)) =
                store::load::<BucketRecord>(self.store.as_ref(), &bucket_key(bucket)).await?
            else {
                return Err(StorageError::NoSuchBucket);
            };
            change(&mut record);
            let write = store::put(bucket_key(bucket), &record, Expect::Version(version))?;
            match self.store.write(vec![write]).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict(_)) => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Every bucket, in name order.
    pub async fn buckets(&self) -> Result<Vec<(String, BucketRecord)>, StorageError> {
        Ok(
            store::load_all(self.store.as_ref(), BUCKET_KIND, "", "", "")
                .await?
                .into_iter()
                .map(|(key, record, _)| (key.name, record))
                .collect(),
        )
    }

    /// Deletes a bucket record (the caller checked that it is empty).
    pub async fn delete_bucket(&self, bucket: &str) -> Result<(), StorageError> {
        self.store
            .write(vec![Write::Delete {
                key: bucket_key(bucket),
                expect: Expect::Any,
            }])
            .await?;
        Ok(())
    }
}

fn part_key(upload_id: &str, number: u32) -> RecordKey {
    RecordKey::new(PART_KIND, upload_id, "", &format!("{number:05}"))
}

impl LocalObjects {
    /// Starts a multipart upload; returns its id.
    pub async fn create_upload(
        &self,
        bucket: &str,
        record: &UploadRecord,
    ) -> Result<String, StorageError> {
        let upload_id = uuid::Uuid::new_v4().simple().to_string();
        let write = store::put(
            RecordKey::new(UPLOAD_KIND, bucket, "", &upload_id),
            record,
            Expect::Absent,
        )?;
        self.store.write(vec![write]).await?;
        Ok(upload_id)
    }

    /// An upload in progress.
    pub async fn upload(
        &self,
        bucket: &str,
        upload_id: &str,
    ) -> Result<Option<UploadRecord>, StorageError> {
        Ok(store::load(
            self.store.as_ref(),
            &RecordKey::new(UPLOAD_KIND, bucket, "", upload_id),
        )
        .await?
        .map(|(record, _)| record))
    }

    /// Every upload in progress in a bucket, by id.
    pub async fn uploads(&self, bucket: &str) -> Result<Vec<(String, UploadRecord)>, StorageError> {
        Ok(
            store::load_all(self.store.as_ref(), UPLOAD_KIND, bucket, "", "")
                .await?
                .into_iter()
                .map(|(key, record, _)| (key.name, record))
                .collect(),
        )
    }

    /// Makes a staged body part `number` of an upload (replacing an earlier upload of it).
    pub async fn commit_part(
        &self,
        mut staged: Staged,
        upload_id: &str,
        number: u32,
    ) -> Result<PartRecord, StorageError> {
        staged.file.flush().await?;
        staged.file.sync_all().await?;
        let blob = uuid::Uuid::new_v4().to_string();
        tokio::fs::rename(&staged.path, self.root.join("blobs").join(&blob)).await?;
        staged.done = true;
        let record = PartRecord {
            blob,
            size: staged.size,
            etag: hex::encode(staged.md5()),
            last_modified_millis: now_millis(),
        };
        let key = part_key(upload_id, number);
        let previous: Option<(PartRecord, i64)> = store::load(self.store.as_ref(), &key).await?;
        let result = async {
            sync_dir(&self.root.join("blobs")).await?;
            let write = store::put(key, &record, Expect::Any)?;
            self.store.write(vec![write]).await?;
            Ok::<_, StorageError>(())
        }
        .await;
        match result {
            Ok(()) => {
                if let Some((old, _)) = previous {
                    self.remove_blob(&old.blob).await;
                }
                Ok(record)
            }
            Err(error) => {
                self.remove_blob(&record.blob).await;
                Err(error)
            }
        }
    }

    /// The parts of an upload, by number.
    pub async fn parts(&self, upload_id: &str) -> Result<Vec<(u32, PartRecord)>, StorageError> {
        Ok(
            store::load_all(self.store.as_ref(), PART_KIND, upload_id, "", "")
                .await?
                .into_iter()
                .filter_map(|(key, record, _)| Some((key.name.parse().ok()?, record)))
                .collect(),
        )
    }

    /// Opens a part's file.
    pub async fn open_part(&self, part: &PartRecord) -> Result<tokio::fs::File, StorageError> {
        Ok(tokio::fs::File::open(self.root.join("blobs").join(&part.blob)).await?)
    }

    /// Removes an upload and its parts (after completion or on abort).
    pub async fn remove_upload(&self, bucket: &str, upload_id: &str) -> Result<(), StorageError> {
        let parts = self.parts(upload_id).await?;
        let mut batch = vec![Write::Delete {
            key: RecordKey::new(UPLOAD_KIND, bucket, "", upload_id),
            expect: Expect::Any,
        }];
        batch.extend(parts.iter().map(|(number, _)| Write::Delete {
            key: part_key(upload_id, *number),
            expect: Expect::Any,
        }));
        self.store.write(batch).await?;
        for (_, part) in parts {
            self.remove_blob(&part.blob).await;
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectStorage for LocalObjects {
    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        object: NewObject,
        body: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<ObjectInfo, StorageError> {
        let mut staged = self.stage().await?;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = body.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            staged.write(&buffer[..n]).await?;
        }
        let record = self.commit(staged, bucket, key, object).await?;
        Ok(ObjectInfo::from(&record))
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(ObjectInfo, ObjectReader)>, StorageError> {
        Ok(self
            .open_object(bucket, key)
            .await?
            .map(|(record, file)| (ObjectInfo::from(&record), Box::new(file) as ObjectReader)))
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        self.delete(bucket, key).await
    }

    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, ObjectInfo)>, StorageError> {
        Ok(self
            .list(bucket, prefix, after, limit)
            .await?
            .iter()
            .map(|(key, record)| (key.clone(), ObjectInfo::from(record)))
            .collect())
    }
}
