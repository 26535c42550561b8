//! Buckets kept in an external S3-compatible service (AWS S3, MinIO, Garage), and the router
//! that sends each of Sluice's own writes either there or to the local disk.
//!
//! An external bucket is configured per bucket name (`[[s3.external_buckets]]`) and reached
//! through `object_store`'s `AmazonS3` client, which signs with SigV4 (path-style requests)
//! and retries 5xx answers and broken connections (10 times within 3 minutes). Bodies are
//! streamed: above 10 MiB an upload turns multipart, with at most two parts in flight, so
//! about 30 MiB of a delivery is in memory at most.
//!
//! **Invariant:** external buckets are destinations for Sluice's writers only. Sluice's own S3
//! API does not serve them: CreateBucket refuses their names (`BucketAlreadyExists`), and
//! clients read them from the external service itself.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, ObjectMeta, ObjectStore, ObjectStoreExt,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::storage::{
    LocalObjects, NewObject, ObjectInfo, ObjectReader, ObjectStorage, StorageError,
};
use crate::config::ExternalBucket;

/// One external bucket: the client and the names on both sides.
pub struct ExternalObjects {
    client: Arc<AmazonS3>,
    /// The name Sluice's writers use.
    bucket: String,
    /// The bucket's name in the external service.
    remote_bucket: String,
}

impl std::fmt::Debug for ExternalObjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalObjects")
            .field("bucket", &self.bucket)
            .field("remote_bucket", &self.remote_bucket)
            .finish_non_exhaustive()
    }
}

/// Buffered bytes before an upload turns multipart: object_store's default, 10 MiB.
const UPLOAD_CAPACITY: usize = 10 * 1024 * 1024;
/// Parts of one multipart upload sent at once (object_store's default is 8, i.e. 80 MiB).
const PARTS_IN_FLIGHT: usize = 2;

impl ExternalObjects {
    /// Builds the client for a validated bucket entry; no request is made until the first use.
    pub fn new(config: &ExternalBucket) -> Result<Self, StorageError> {
        let client = AmazonS3Builder::new()
            .with_endpoint(&config.endpoint)
            .with_region(&config.region)
            .with_bucket_name(&config.remote_bucket)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(config.secret_access_key.expose())
            .with_allow_http(config.allow_http)
            .build()
            .map_err(|source| StorageError::Remote {
                bucket: config.bucket.clone(),
                source,
            })?;
        Ok(Self {
            client: Arc::new(client),
            bucket: config.bucket.clone(),
            remote_bucket: config.remote_bucket.clone(),
        })
    }

    /// Turns a client error into a typed storage error: NoSuchBucket (or a bare 404 on a
    /// bucket-level request) means the remote bucket is missing; 401/403 and S3's credential
    /// codes, that the service refuses the configured credentials.
    fn error(&self, source: object_store::Error) -> StorageError {
        let code = s3_error_code(&source);
        match (code.as_deref(), &source) {
            (Some("NoSuchBucket"), _) | (None, object_store::Error::NotFound { .. }) => {
                StorageError::NoSuchBucket
            }
            (
                Some(
                    "AccessDenied"
                    | "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "ExpiredToken"
                    | "InvalidToken",
                ),
                _,
            )
            | (
                _,
                object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. },
            ) => StorageError::AccessDenied {
                bucket: self.bucket.clone(),
                source,
            },
            _ => StorageError::Remote {
                bucket: self.bucket.clone(),
                source,
            },
        }
    }

    /// An I/O error from the upload writer, whose cause is the client's error when it has one.
    fn io_error(&self, error: std::io::Error) -> StorageError {
        match error.downcast::<object_store::Error>() {
            Ok(source) => self.error(source),
            Err(error) => StorageError::Io(error),
        }
    }

    async fn upload(
        &self,
        path: Path,
        attributes: Attributes,
        body: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<(), StorageError> {
        let client: Arc<dyn ObjectStore> = self.client.clone();
        let mut writer = BufWriter::with_capacity(client, path, UPLOAD_CAPACITY)
            .with_max_concurrency(PARTS_IN_FLIGHT)
            .with_attributes(attributes);
        let mut buffer = vec![0u8; 64 * 1024];
        let copied: Result<(), StorageError> = async {
            loop {
                let n = body.read(&mut buffer).await?;
                if n == 0 {
                    return Ok(());
                }
                writer
                    .put(Bytes::copy_from_slice(&buffer[..n]))
                    .await
                    .map_err(|source| self.error(source))?;
            }
        }
        .await;
        if let Err(error) = copied {
            // Drops a multipart upload already started, so that nothing partial lingers
            // (and is billed) in the external bucket.
            if let Err(abort) = writer.abort().await {
                tracing::warn!(bucket = %self.bucket, error = %abort, "Could not abort an external upload.");
            }
            return Err(error);
        }
        writer
            .shutdown()
            .await
            .map_err(|error| self.io_error(error))
    }
}

/// The S3 error code (`<Code>NoSuchBucket</Code>`) of a failed request. object_store keeps
/// the status and body of an error answer in a type it does not export (and files list
/// failures under `Generic`), but its messages carry the body, so the code is read there, as
/// any S3 client reads it from the body.
fn s3_error_code(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(error);
    while let Some(error) = current {
        let text = error.to_string();
        if let Some((_, rest)) = text.split_once("<Code>") {
            if let Some((code, _)) = rest.split_once("</Code>") {
                return Some(code.to_owned());
            }
        }
        current = error.source();
    }
    None
}

/// The key as an object_store path, refused unless it maps to exactly the same S3 key.
fn key_path(key: &str) -> Result<Path, StorageError> {
    match Path::parse(key) {
        Ok(path) if !key.is_empty() && path.as_ref() == key => Ok(path),
        _ => Err(StorageError::InvalidKey(key.to_owned())),
    }
}

fn info(meta: &ObjectMeta) -> ObjectInfo {
    ObjectInfo {
        size: meta.size,
        etag: meta
            .e_tag
            .as_deref()
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned(),
        content_type: None,
        metadata: Default::default(),
        last_modified_millis: meta.last_modified.timestamp_millis(),
    }
}

#[async_trait]
impl ObjectStorage for ExternalObjects {
    async fn put_object(
        &self,
        _bucket: &str,
        key: &str,
        object: NewObject,
        body: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<ObjectInfo, StorageError> {
        let path = key_path(key)?;
        let mut attributes = Attributes::new();
        if let Some(content_type) = &object.content_type {
            attributes.insert(
                Attribute::ContentType,
                AttributeValue::from(content_type.clone()),
            );
        }
        for (name, value) in &object.metadata {
            attributes.insert(
                Attribute::Metadata(name.clone().into()),
                AttributeValue::from(value.clone()),
            );
        }
        self.upload(path.clone(), attributes, body).await?;
        // The writer does not report the ETag the service chose (a multipart one differs from
        // the MD5), so ask for it.
        let meta = self
            .client
            .head(&path)
            .await
            .map_err(|source| self.error(source))?;
        Ok(ObjectInfo {
            content_type: object.content_type,
            metadata: object.metadata,
            ..info(&meta)
        })
    }

    async fn get_object(
        &self,
        _bucket: &str,
        key: &str,
    ) -> Result<Option<(ObjectInfo, ObjectReader)>, StorageError> {
        let path = key_path(key)?;
        let result = match self.client.get(&path).await {
            Ok(result) => result,
            // NoSuchKey and NoSuchBucket are both 404; the code in the body tells them apart.
            Err(source @ object_store::Error::NotFound { .. })
                if s3_error_code(&source).as_deref() != Some("NoSuchBucket") =>
            {
                return Ok(None);
            }
            Err(source) => return Err(self.error(source)),
        };
        let mut object = info(&result.meta);
        for (attribute, value) in result.attributes.iter() {
            match attribute {
                Attribute::ContentType => object.content_type = Some(value.as_ref().to_owned()),
                Attribute::Metadata(name) => {
                    object
                        .metadata
                        .insert(name.to_string(), value.as_ref().to_owned());
                }
                _ => {}
            }
        }
        let reader = tokio_util::io::StreamReader::new(result.into_stream());
        Ok(Some((object, Box::new(reader))))
    }

    async fn delete_object(&self, _bucket: &str, key: &str) -> Result<(), StorageError> {
        let path = key_path(key)?;
        self.client
            .delete(&path)
            .await
            .map_err(|source| self.error(source))
    }

    async fn list_objects(
        &self,
        _bucket: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, ObjectInfo)>, StorageError> {
        use futures_util::TryStreamExt;
        // object_store lists by whole path segments; S3 prefixes are plain strings. So list
        // the segments before the prefix's last `/` and keep the keys that really match.
        let directory = match prefix.rfind('/') {
            Some(end) if end > 0 => Some(key_path(&prefix[..end])?),
            _ => None,
        };
        let offset = after.map(key_path).transpose()?;
        let mut listing = match &offset {
            Some(offset) => self.client.list_with_offset(directory.as_ref(), offset),
            None => self.client.list(directory.as_ref()),
        };
        let mut objects = Vec::new();
        while objects.len() < limit {
            let Some(meta) = listing
                .try_next()
                .await
                .map_err(|source| self.error(source))?
            else {
                break;
            };
            let key = meta.location.as_ref();
            if key.starts_with(prefix) {
                objects.push((key.to_owned(), info(&meta)));
            } else if key > prefix {
                // Keys come in byte order: past the prefix, nothing further matches.
                break;
            }
        }
        Ok(objects)
    }
}

/// The storage Sluice's writers use: each configured external bucket goes to its service,
/// every other bucket to the local disk.
pub struct ObjectRouter {
    local: Arc<LocalObjects>,
    external: HashMap<String, ExternalObjects>,
}

impl ObjectRouter {
    /// Builds a client for each external bucket of the configuration.
    pub fn new(
        local: Arc<LocalObjects>,
        external_buckets: &[ExternalBucket],
    ) -> Result<Self, StorageError> {
        let external = external_buckets
            .iter()
            .map(|config| Ok((config.bucket.clone(), ExternalObjects::new(config)?)))
            .collect::<Result<_, StorageError>>()?;
        Ok(Self { local, external })
    }

    /// Whether writes to `bucket` leave Sluice.
    pub fn is_external(&self, bucket: &str) -> bool {
        self.external.contains_key(bucket)
    }

    fn target(&self, bucket: &str) -> &dyn ObjectStorage {
        match self.external.get(bucket) {
            Some(external) => external,
            None => self.local.as_ref(),
        }
    }
}

#[async_trait]
impl ObjectStorage for ObjectRouter {
    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        object: NewObject,
        body: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<ObjectInfo, StorageError> {
        self.target(bucket)
            .put_object(bucket, key, object, body)
            .await
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(ObjectInfo, ObjectReader)>, StorageError> {
        self.target(bucket).get_object(bucket, key).await
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        self.target(bucket).delete_object(bucket, key).await
    }

    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, ObjectInfo)>, StorageError> {
        self.target(bucket)
            .list_objects(bucket, prefix, after, limit)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_object_store_would_rewrite_are_refused() {
        for key in [
            "a/b.json",
            "logs/2026/12/01/x.gz",
            "ünïcode key",
            "100%",
            "back\\slash",
        ] {
            assert_eq!(key_path(key).expect(key).as_ref(), key);
        }
        for key in ["", "/lead", "trail/", "a//b", "a/./b", "../up", "tab\tkey"] {
            assert!(
                matches!(key_path(key), Err(StorageError::InvalidKey(_))),
                "{key}"
            );
        }
    }
}
