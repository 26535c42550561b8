//! Objects in buckets as a delivery target of the pipeline: each delivery becomes one object,
//! written through the object-storage interface, so the bucket may be Sluice's own or one
//! configured in `[[s3.external_buckets]]`.

use std::sync::Arc;

use async_trait::async_trait;

use super::storage::{LocalObjects, NewObject, ObjectStorage, StorageError};
use crate::pipeline::{DeliveryError, Item, ObjectTarget, Sender, Sink};

/// The pipeline's sink for [`ObjectTarget`]s.
pub struct ObjectSink {
    storage: Arc<dyn ObjectStorage>,
    objects: Arc<LocalObjects>,
}

impl ObjectSink {
    /// Writes through `storage`; `objects` holds Sluice's own buckets, whose owner and policy
    /// decide whether another account's delivery may write.
    pub fn new(storage: Arc<dyn ObjectStorage>, objects: Arc<LocalObjects>) -> Self {
        Self { storage, objects }
    }
}

#[async_trait]
impl Sink for ObjectSink {
    type Target = ObjectTarget;

    async fn deliver(&self, target: &ObjectTarget, item: Item<'_>) -> Result<(), DeliveryError> {
        let bucket = &target.bucket;
        // External buckets have no record here: the operator configured them for writers.
        let record = self
            .objects
            .bucket(bucket)
            .await
            .map_err(|err| DeliveryError::Failed(err.to_string()))?;
        if let (Some(record), Some(sender)) = (record, item.sender) {
            let resource = format!("arn:aws:s3:::{bucket}/{}", target.key);
            let allowed = record.owner == sender.account
                || record.policy.as_ref().is_some_and(|policy| {
                    super::policy_allows(policy, &sender.account, "s3:PutObject", &resource)
                });
            if !allowed {
                return Err(DeliveryError::Denied(format!(
                    "account {} may not put objects into bucket {bucket}",
                    sender.account
                )));
            }
        }
        let object = NewObject {
            content_type: target.content_type.clone(),
            ..NewObject::default()
        };
        let mut body = item.data.as_slice();
        match self
            .storage
            .put_object(bucket, &target.key, object, &mut body)
            .await
        {
            Ok(_) => Ok(()),
            Err(StorageError::NoSuchBucket) => {
                Err(DeliveryError::NotFound(format!("bucket {bucket}")))
            }
            Err(err @ (StorageError::AccessDenied { .. } | StorageError::InvalidKey(_))) => {
                Err(DeliveryError::Denied(err.to_string()))
            }
            Err(err) => Err(DeliveryError::Failed(err.to_string())),
        }
    }

    /// The bucket is Sluice's own and its owner is the sender or its policy allows the sender
    /// `s3:PutObject`. A bucket configured in `[[s3.external_buckets]]` has no record here and
    /// answers `false`: it cannot be tested without writing (no producer asks this of S3
    /// targets today).
    async fn writable(
        &self,
        target: &ObjectTarget,
        sender: &Sender,
    ) -> Result<bool, DeliveryError> {
        let bucket = &target.bucket;
        let record = self
            .objects
            .bucket(bucket)
            .await
            .map_err(|err| DeliveryError::Failed(err.to_string()))?;
        Ok(record.is_some_and(|record| {
            let resource = format!("arn:aws:s3:::{bucket}/{}", target.key);
            record.owner == sender.account
                || record.policy.as_ref().is_some_and(|policy| {
                    super::policy_allows(policy, &sender.account, "s3:PutObject", &resource)
                })
        }))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::pipeline::Sender;
    use crate::services::s3::storage::BucketRecord;
    use crate::store::memory::MemoryStore;

    fn sink() -> (ObjectSink, Arc<LocalObjects>) {
        let objects =
            Arc::new(LocalObjects::open(Arc::new(MemoryStore::default()), None).expect("objects"));
        (ObjectSink::new(objects.clone(), objects.clone()), objects)
    }

    async fn bucket(objects: &LocalObjects, name: &str, owner: &str, policy: Option<String>) {
        let record = BucketRecord {
            owner: owner.into(),
            region: "us-east-1".into(),
            created_millis: 0,
            tags: None,
            policy: policy
                .map(|text| crate::policy::StoredPolicy::parse(text).expect("valid policy")),
        };
        assert!(objects
            .create_bucket(name, &record)
            .await
            .expect("bucket")
            .is_none());
    }

    fn item<'a>(data: &[u8], sender: Option<&'a Sender>) -> Item<'a> {
        Item {
            partition_key: "",
            data: data.to_vec(),
            at_millis: 0,
            sender,
        }
    }

    fn target(bucket: &str, key: &str) -> ObjectTarget {
        ObjectTarget {
            bucket: bucket.into(),
            key: key.into(),
            content_type: Some("application/json".into()),
        }
    }

    async fn read(objects: &LocalObjects, bucket: &str, key: &str) -> (Option<String>, Vec<u8>) {
        let (info, mut reader) = objects
            .get_object(bucket, key)
            .await
            .expect("get")
            .expect("the object exists");
        let mut body = Vec::new();
        reader.read_to_end(&mut body).await.expect("read");
        (info.content_type, body)
    }

    #[tokio::test]
    async fn writes_one_object_per_delivery_for_the_owner() {
        let (sink, objects) = sink();
        bucket(&objects, "mine", "111111111111", None).await;
        let owner = Sender {
            account: "111111111111".into(),
            role_arn: None,
        };
        sink.deliver(&target("mine", "a/1.json"), item(b"{}\n", Some(&owner)))
            .await
            .expect("delivered");
        sink.deliver(&target("mine", "a/2.json"), item(b"[]\n", None))
            .await
            .expect("delivered without a sender");
        assert_eq!(
            read(&objects, "mine", "a/1.json").await,
            (Some("application/json".into()), b"{}\n".to_vec())
        );
        assert_eq!(read(&objects, "mine", "a/2.json").await.1, b"[]\n");
    }

    #[tokio::test]
    async fn another_account_writes_only_through_the_bucket_policy() {
        let (sink, objects) = sink();
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": { "AWS": "222222222222" },
                "Action": "s3:PutObject",
                "Resource": "arn:aws:s3:::shared/incoming/*",
            }],
        });
        bucket(&objects, "private", "111111111111", None).await;
        bucket(&objects, "shared", "111111111111", Some(policy.to_string())).await;
        let other = Sender {
            account: "222222222222".into(),
            role_arn: None,
        };
        let refused = sink
            .deliver(&target("private", "x"), item(b"x", Some(&other)))
            .await;
        assert!(
            matches!(refused, Err(DeliveryError::Denied(_))),
            "{refused:?}"
        );
        let outside = sink
            .deliver(&target("shared", "elsewhere/x"), item(b"x", Some(&other)))
            .await;
        assert!(
            matches!(outside, Err(DeliveryError::Denied(_))),
            "{outside:?}"
        );
        sink.deliver(&target("shared", "incoming/x"), item(b"x", Some(&other)))
            .await
            .expect("granted by the policy");
        assert!(objects
            .get_object("private", "x")
            .await
            .expect("get")
            .is_none());
    }

    #[tokio::test]
    async fn a_missing_bucket_is_not_found() {
        let (sink, _) = sink();
        let missing = sink.deliver(&target("absent", "k"), item(b"x", None)).await;
        assert!(
            matches!(missing, Err(DeliveryError::NotFound(_))),
            "{missing:?}"
        );
    }
}
