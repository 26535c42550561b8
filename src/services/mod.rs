//! The AWS services Sluice serves, one module each, named like the SDK crates.
//!
//! A service module holds its typed inputs and outputs, the checks the model cannot express,
//! its error enum with the one mapping to the wire, and its handlers over the store.

pub mod appfabric;
pub mod cloudtrail;
pub mod cloudtrail_data;
pub mod firehose;
pub mod kinesis;
pub mod kit;
pub mod logs;
pub mod s3;
pub mod sts;

use std::sync::Arc;

use crate::protocol::Registry;
use crate::store::Store;
use crate::token::TokenSigner;

/// What every service is built from.
#[derive(Clone)]
pub struct Deps {
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Signs pagination tokens.
    pub tokens: TokenSigner,
    /// Told after a batch with delivery queue entries commits (`Signal::queued`); knows the
    /// delivery backlog.
    pub delivery: Arc<crate::pipeline::Signal>,
    /// The sinks deliveries leave through; a producer asks them whether a target it is
    /// configured with exists and is writable, instead of reading the target's records.
    pub sinks: crate::pipeline::Sinks,
    /// Wakes Firehose flushers after a put commits (one per stream), and their supervisor
    /// after a stream is created or deleted.
    pub firehose: Arc<firehose::Wakers>,
    /// AppFabric's app connectors (ConnectAppAuthorization tries a credential with them).
    pub apps: Arc<appfabric::Apps>,
    /// S3 buckets and objects on the local disk, as Sluice's S3 API serves them.
    pub objects: Arc<s3::storage::LocalObjects>,
    /// The object storage Sluice's own writers put through: the local disk, or for buckets
    /// configured in `[[s3.external_buckets]]`, the external service.
    pub storage: Arc<dyn s3::storage::ObjectStorage>,
    /// The bucket names `storage` sends to external services, which Sluice's S3 API does not
    /// serve.
    pub external_buckets: Arc<[String]>,
    /// The data directory (`None` for `:memory:`): where CloudTrail Lake keeps its columnar
    /// segments.
    pub data_dir: Option<std::path::PathBuf>,
    /// CloudTrail Lake's segment files, which `/_sluice/reset` removes too.
    pub lake_files: Arc<cloudtrail::LakeFiles>,
    /// How callers are authenticated; STS answers with the identities configured in it.
    pub authenticator: crate::protocol::auth::Authenticator,
    /// This node's id and its leases on background work (AppFabric polling, Lake compaction),
    /// and which nodes sharing the store are gone (whose Lake queries were cut off).
    pub leases: Arc<crate::lease::Leases>,
}

/// Builds the registry of every served service; AppFabric's dependencies add its own
/// credential cipher to the shared ones.
pub fn registry(deps: &Deps, appfabric: &appfabric::Deps) -> Registry {
    let mut registry = Registry::default();
    registry.register(Arc::new(logs::LogsService::new(deps.clone())));
    registry.register(Arc::new(kinesis::KinesisService::new(deps.clone())));
    registry.register(Arc::new(firehose::FirehoseService::new(deps.clone())));
    registry.register(Arc::new(appfabric::AppFabricService::new(
        appfabric.clone(),
    )));
    registry.register(Arc::new(cloudtrail::CloudTrailService::new(deps.clone())));
    registry.register(Arc::new(cloudtrail_data::CloudTrailDataService::new(
        deps.clone(),
    )));
    registry.register_query(
        sts::SIGNING_NAME,
        Arc::new(sts::StsService::new(deps.authenticator.clone())),
    );
    registry.register_streaming(
        "s3",
        Arc::new(
            s3::S3Service::new(deps.objects.clone())
                .with_external_buckets(deps.external_buckets.iter().cloned()),
        ),
    );
    registry
}
