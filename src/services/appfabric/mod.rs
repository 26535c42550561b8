//! AWS AppFabric (`appfabric`, restJson1, 2023-05-19): the control plane of app bundles,
//! app authorizations, ingestions and ingestion destinations.
//!
//! Start at the operation table below. Resources are records of the
//! store named by their UUIDs under their parents (`BUNDLE`, `BUNDLE/INGESTION`,
//! `BUNDLE/INGESTION/DESTINATION`, `BUNDLE/AUTHORIZATION`), so a parent's children list
//! together in name order. A create or delete of a child also rewrites its parent record
//! (same body, next version) in the same batch: concurrent changes under one parent are then
//! serialised by the parent's version, which keeps quota counts and "delete only when empty"
//! exact without locks. A write that loses such a race is retried (`kit::retry`).
//!
//! Handlers: `bundles.rs`, `authorizations.rs` (credentials sealed by `crypto.rs`),
//! `ingestions.rs`, `destinations.rs`, `tags.rs`; `idempotency.rs` remembers `clientToken`s;
//! `quotas.rs` holds AppFabric's quotas as data; `error.rs` the one mapping to the wire.

mod authorizations;
mod bundles;
pub mod connectors;
pub mod crypto;
pub mod delivery;
mod destinations;
pub mod encode;
mod error;
mod idempotency;
pub use idempotency::expire as expire_client_tokens;
mod ingestions;
mod quotas;
mod tags;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use connectors::Apps;
pub use crypto::CredentialCipher;
pub use delivery::{AppFabricDelivery, AppFabricMetrics};
pub use error::{AppFabricError, ValidationReason};

use crate::arn::{self, Arn};
use crate::protocol::RequestContext;
use crate::services::kit;
use crate::store::RecordKey;

/// Record kind of app bundles, named `BUNDLE`.
const APP_BUNDLE: &str = "appfabric/app-bundle";
/// Record kind of app authorizations, named `BUNDLE/AUTHORIZATION`.
const APP_AUTHORIZATION: &str = "appfabric/app-authorization";
/// Record kind of ingestions, named `BUNDLE/INGESTION`.
const INGESTION: &str = "appfabric/ingestion";
/// Record kind of ingestion destinations, named `BUNDLE/INGESTION/DESTINATION`.
const INGESTION_DESTINATION: &str = "appfabric/ingestion-destination";
/// Record kind of remembered client tokens, named `OPERATION/TOKEN`.
const IDEMPOTENCY: &str = "appfabric/idempotency";
/// Record kind of the per-account-and-region guard record that serialises bundle creation.
const ACCOUNT: &str = "appfabric/account";

/// `maxResults` when the caller sends none. The documentation gives no default; the model's
/// largest page is used.
const DEFAULT_MAX_RESULTS: usize = 100;

/// What AppFabric is built from: the services' shared dependencies (reached through `Deref`)
/// and AppFabric's own credential cipher, which no other service holds.
#[derive(Clone)]
pub struct Deps {
    shared: crate::services::Deps,
    /// Seals AppFabric credentials at rest and keys the client-token fingerprints.
    credentials: CredentialCipher,
}

impl Deps {
    /// AppFabric's dependencies, with the cipher under the data directory's key
    /// (from [`CredentialCipher::setting`], which the start keeps beside its other keys).
    pub fn new(shared: crate::services::Deps, credentials: CredentialCipher) -> Self {
        Self {
            shared,
            credentials,
        }
    }
}

impl std::ops::Deref for Deps {
    type Target = crate::services::Deps;

    fn deref(&self) -> &Self::Target {
        &self.shared
    }
}

/// The AppFabric service.
pub struct AppFabricService {
    deps: Deps,
}

impl AppFabricService {
    /// Builds the service over its dependencies.
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }
}

/// A tag as the model lists them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tag {
    key: String,
    value: String,
}

/// Tags as stored in a resource's record.
type Tags = BTreeMap<String, String>;

fn tags_from_list(list: Option<Vec<Tag>>) -> Result<Tags, AppFabricError> {
    let tags: Tags = list
        .unwrap_or_default()
        .into_iter()
        .map(|tag| (tag.key, tag.value))
        .collect();
    tags::check_keys(tags.keys())?;
    Ok(tags)
}

fn tags_to_list(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(key, value)| Tag {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

/// Epoch seconds with millisecond precision, as timestamps travel inside Sluice.
fn now_seconds(ctx: &RequestContext) -> f64 {
    ctx.received_at_millis() as f64 / 1000.0
}

fn key(ctx: &RequestContext, kind: &'static str, name: &str) -> RecordKey {
    RecordKey::new(kind, &ctx.account_id, &ctx.region, name)
}

/// The ARN of an AppFabric resource: `arn:PARTITION:appfabric:REGION:ACCOUNT:PATH`, where the
/// path is `appbundle/B`, `appbundle/B/ingestion/I`,
/// `appbundle/B/ingestion/I/ingestiondestination/D` or `appbundle/B/appauthorization/A`
/// (the resource types of AppFabric in the IAM service authorization reference).
fn resource_arn(ctx: &RequestContext, path: &str) -> String {
    format!(
        "arn:{}:appfabric:{}:{}:{path}",
        arn::partition(&ctx.region),
        ctx.region,
        ctx.account_id
    )
}

/// The resource types, in the words used for `resourceType` and in ARNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    AppBundle,
    AppAuthorization,
    Ingestion,
    IngestionDestination,
}

impl Kind {
    fn resource_type(self) -> &'static str {
        match self {
            Kind::AppBundle => "AppBundle",
            Kind::AppAuthorization => "AppAuthorization",
            Kind::Ingestion => "Ingestion",
            Kind::IngestionDestination => "IngestionDestination",
        }
    }

    /// The ARN path labels from the bundle down to this kind.
    fn labels(self) -> &'static [&'static str] {
        match self {
            Kind::AppBundle => &["appbundle"],
            Kind::AppAuthorization => &["appbundle", "appauthorization"],
            Kind::Ingestion => &["appbundle", "ingestion"],
            Kind::IngestionDestination => &["appbundle", "ingestion", "ingestiondestination"],
        }
    }

    fn record_kind(self) -> &'static str {
        match self {
            Kind::AppBundle => APP_BUNDLE,
            Kind::AppAuthorization => APP_AUTHORIZATION,
            Kind::Ingestion => INGESTION,
            Kind::IngestionDestination => INGESTION_DESTINATION,
        }
    }
}

/// Splits an AppFabric ARN of the caller's account and region into the ids along its path,
/// checking the labels against `kind`. `None` for anything else.
fn arn_ids(ctx: &RequestContext, text: &str, kind: Kind) -> Option<Vec<String>> {
    let parsed = Arn::parse(text)?;
    if parsed.service != "appfabric"
        || parsed.region != ctx.region
        || parsed.account != ctx.account_id
    {
        return None;
    }
    let parts: Vec<&str> = parsed.resource.split('/').collect();
    let labels = kind.labels();
    if parts.len() != labels.len() * 2 {
        return None;
    }
    let mut ids = Vec::with_capacity(labels.len());
    for (pair, label) in parts.chunks(2).zip(labels) {
        if pair[0] != *label || pair[1].is_empty() {
            return None;
        }
        ids.push(pair[1].to_owned());
    }
    Some(ids)
}

/// Resolves an identifier (ARN or UUID) of a `kind` resource under the already-resolved
/// `parents` to its UUID. An ARN must name this account and region and the same parents;
/// anything that does not resolve is a `ResourceNotFoundException` for the identifier given.
fn resolve(
    ctx: &RequestContext,
    identifier: &str,
    kind: Kind,
    parents: &[&str],
) -> Result<String, AppFabricError> {
    let not_found = || AppFabricError::not_found(kind.resource_type(), identifier);
    if !identifier.starts_with("arn:") {
        return Ok(identifier.to_owned());
    }
    let ids = arn_ids(ctx, identifier, kind).ok_or_else(not_found)?;
    let (own, ancestors) = ids.split_last().ok_or_else(not_found)?;
    if ancestors
        .iter()
        .map(String::as_str)
        .ne(parents.iter().copied())
    {
        return Err(not_found());
    }
    Ok(own.clone())
}

/// An operation of the model that needs live SaaS applications, which Sluice does not have.
fn unsupported(operation: &str) -> AppFabricError {
    AppFabricError::Validation {
        message: format!(
            "{operation} is not supported by Sluice: user access tasks need live SaaS applications"
        ),
        reason: ValidationReason::Other,
        fields: Vec::new(),
    }
}

/// BatchGetUserAccessTasks: needs live SaaS applications.
async fn batch_get_user_access_tasks(
    _deps: &Deps,
    _ctx: &RequestContext,
    _input: Value,
) -> Result<(), AppFabricError> {
    Err(unsupported("BatchGetUserAccessTasks"))
}

/// StartUserAccessTasks: needs live SaaS applications.
async fn start_user_access_tasks(
    _deps: &Deps,
    _ctx: &RequestContext,
    _input: Value,
) -> Result<(), AppFabricError> {
    Err(unsupported("StartUserAccessTasks"))
}

kit::operations! {
    AppFabricService { model: "appfabric", error: AppFabricError, state: deps }
    CreateAppBundle => bundles::create,
    GetAppBundle => bundles::get,
    ListAppBundles => bundles::list,
    DeleteAppBundle => bundles::delete,
    CreateAppAuthorization => authorizations::create,
    GetAppAuthorization => authorizations::get,
    ListAppAuthorizations => authorizations::list,
    UpdateAppAuthorization => authorizations::update,
    DeleteAppAuthorization => authorizations::delete,
    ConnectAppAuthorization => authorizations::connect,
    CreateIngestion => ingestions::create,
    GetIngestion => ingestions::get,
    ListIngestions => ingestions::list,
    DeleteIngestion => ingestions::delete,
    StartIngestion => ingestions::start,
    StopIngestion => ingestions::stop,
    CreateIngestionDestination => destinations::create,
    GetIngestionDestination => destinations::get,
    ListIngestionDestinations => destinations::list,
    UpdateIngestionDestination => destinations::update,
    DeleteIngestionDestination => destinations::delete,
    TagResource => tags::tag_resource,
    UntagResource => tags::untag_resource,
    ListTagsForResource => tags::list_tags,
    BatchGetUserAccessTasks => batch_get_user_access_tasks,
    StartUserAccessTasks => start_user_access_tasks,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        RequestContext {
            account_id: "111122223333".to_owned(),
            region: "us-east-1".to_owned(),
            access_key_id: "k".to_owned(),
            request_id: "r".to_owned(),
            received_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn embedded_model_parses_and_every_pattern_compiles() {
        let model = crate::services::kit::embedded_model("appfabric");
        assert_eq!(model.metadata.protocol.as_str(), "rest-json");
        for (name, shape) in model.shapes.iter() {
            if let Some(pattern) = &shape.pattern {
                assert!(
                    crate::protocol::model::compile_pattern(pattern).is_ok(),
                    "{name}: {pattern}"
                );
            }
        }
    }

    #[test]
    fn resolves_uuids_and_arns_of_this_account_and_parents_only() {
        let ctx = ctx();
        let b = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";
        let i = "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb";
        assert_eq!(resolve(&ctx, b, Kind::AppBundle, &[]).expect("uuid"), b);
        let bundle_arn = resource_arn(&ctx, &format!("appbundle/{b}"));
        assert_eq!(
            resolve(&ctx, &bundle_arn, Kind::AppBundle, &[]).expect("arn"),
            b
        );
        let ingestion_arn = resource_arn(&ctx, &format!("appbundle/{b}/ingestion/{i}"));
        assert_eq!(
            resolve(&ctx, &ingestion_arn, Kind::Ingestion, &[b]).expect("arn"),
            i
        );
        assert!(resolve(&ctx, &ingestion_arn, Kind::Ingestion, &[i]).is_err());
        assert!(resolve(&ctx, &ingestion_arn, Kind::AppBundle, &[]).is_err());
        let foreign = bundle_arn.replace("111122223333", "999999999999");
        assert!(resolve(&ctx, &foreign, Kind::AppBundle, &[]).is_err());
        assert!(resolve(&ctx, "arn:aws:s3:::bucket", Kind::AppBundle, &[]).is_err());
    }
}
