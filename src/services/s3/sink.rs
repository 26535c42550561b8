//! Objects in buckets as a delivery target of the pipeline: each delivery becomes one object,
//! written through the object-storage interface, so the bucket may be Sluice's own or one
//! configured in `[[s3.external_buckets]]`.

use std::sync::Arc;

use async_trait::async_trait;

use super::storage::{LocalObjects, NewObject, ObjectStorage, StorageError};
use crate::pipeline::{DeliveryError, Item, ObjectTarget, Sink};

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
                || record.policy.as_deref().is_some_and(|policy| {
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
}
