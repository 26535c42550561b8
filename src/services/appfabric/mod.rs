//! AWS AppFabric (`appfabric`, restJson1, 2023-05-19): the control plane of app bundles,
//! app authorizations, ingestions and ingestion destinations.
//!
//! Start at [`AppFabricService::call`], the operation table. Resources are records of the
//! store named by their UUIDs under their parents (`BUNDLE`, `BUNDLE/INGESTION`,
//! `BUNDLE/INGESTION/DESTINATION`, `BUNDLE/AUTHORIZATION`), so a parent's children list
//! together in name order. A create or delete of a child also rewrites its parent record
//! (same body, next version) in the same batch: concurrent changes under one parent are then
//! serialised by the parent's version, which keeps quota counts and "delete only when empty"
//! exact without locks. A write that loses such a race is retried ([`retry`]).
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
use std::future::Future;
use std::sync::OnceLock;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use connectors::Apps;
pub use crypto::CredentialCipher;
pub use delivery::{AppFabricDelivery, AppFabricMetrics};
pub use error::{AppFabricError, ValidationReason};

use crate::arn::{self, Arn};
use crate::protocol::model::{ServiceModel, Violation};
use crate::protocol::{ApiError, RequestContext, Service};
use crate::store::{self, Expect, RecordKey, StoreError, Write};
use crate::token::TokenError;

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

/// How often a write that lost a race on a parent record is tried again.
const ATTEMPTS: usize = 8;
/// `maxResults` when the caller sends none. The documentation gives no default; the model's
/// largest page is used.
const DEFAULT_MAX_RESULTS: usize = 100;

fn model() -> &'static ServiceModel {
    static MODEL: OnceLock<ServiceModel> = OnceLock::new();
    ServiceModel::embedded(
        &MODEL,
        "appfabric",
        include_str!("../../../models/appfabric.json"),
    )
}

/// What AppFabric is built from: the services' shared dependencies (reached through `Deref`)
/// and AppFabric's own credential cipher, which no other service holds.
#[derive(Clone)]
pub struct Deps {
    shared: crate::services::Deps,
    /// Seals AppFabric credentials at rest and keys the client-token fingerprints.
    credentials: CredentialCipher,
}

impl Deps {
    /// AppFabric's dependencies, with the cipher under the data directory's key (generated
    /// and kept as a store setting on first start).
    pub async fn open(shared: crate::services::Deps) -> Result<Self, StoreError> {
        let credentials = CredentialCipher::load(shared.store.as_ref()).await?;
        Ok(Self {
            shared,
            credentials,
        })
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

/// Reads a record into its stored type, with its version.
async fn load<T: DeserializeOwned>(
    deps: &Deps,
    key: &RecordKey,
) -> Result<Option<(T, i64)>, AppFabricError> {
    Ok(store::load(&*deps.store, key).await?)
}

/// A conditional put of a stored value.
fn put<T: Serialize>(key: RecordKey, value: &T, expect: Expect) -> Result<Write, AppFabricError> {
    Ok(store::put(key, value, expect)?)
}

/// Reads every record of a kind under a name prefix, in name order.
async fn load_children<T: DeserializeOwned>(
    deps: &Deps,
    ctx: &RequestContext,
    kind: &'static str,
    prefix: &str,
) -> Result<Vec<(RecordKey, T, i64)>, AppFabricError> {
    Ok(store::load_all(&*deps.store, kind, &ctx.account_id, &ctx.region, prefix).await?)
}

/// Runs a read-check-write step again while its conditional write loses races, a bounded
/// number of times; a step that keeps losing answers `ConflictException`.
async fn retry<T, F, Fut>(mut step: F) -> Result<T, AppFabricError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AppFabricError>>,
{
    for _ in 1..ATTEMPTS {
        match step().await {
            Err(AppFabricError::Contended) => {
                tokio::task::yield_now().await;
                continue;
            }
            other => return other,
        }
    }
    step().await
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

/// Reads a page of a kind under a name prefix, after the position a token carries.
async fn page<T: DeserializeOwned>(
    deps: &Deps,
    ctx: &RequestContext,
    operation: &str,
    kind: &'static str,
    prefix: &str,
    max_results: Option<usize>,
    next_token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), AppFabricError> {
    let limit = max_results.unwrap_or(DEFAULT_MAX_RESULTS);
    let scope = format!(
        "appfabric:{operation}:{}:{}:{prefix}",
        ctx.account_id, ctx.region
    );
    let now = ctx.received_at_millis();
    let after = match next_token {
        None => None,
        Some(token) => {
            let state = deps.tokens.open(&scope, token, now).map_err(|err| {
                AppFabricError::field(
                    "nextToken",
                    match err {
                        TokenError::Invalid => "The pagination token is invalid.",
                        TokenError::Expired => "The pagination token has expired.",
                    },
                )
            })?;
            state
                .get("after")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }
    };
    let mut records = deps
        .store
        .list(
            kind,
            &ctx.account_id,
            &ctx.region,
            prefix,
            after.as_deref(),
            limit + 1,
        )
        .await?;
    let more = records.len() > limit;
    records.truncate(limit);
    let next = match records.last() {
        Some(last) if more => Some(
            deps.tokens
                .issue(&scope, json!({"after": last.key.name}), now),
        ),
        _ => None,
    };
    let items = records
        .into_iter()
        .map(|record| {
            serde_json::from_value(record.body).map_err(|err| {
                AppFabricError::from(StoreError::Unavailable(format!(
                    "corrupt {kind} record: {err}"
                )))
            })
        })
        .collect::<Result<Vec<T>, _>>()?;
    Ok((items, next))
}

/// Reads a validated input into its typed form. The model has already checked it, so a
/// failure here is a shape the model allows but the handler cannot take.
fn input<T: DeserializeOwned>(value: Value) -> Result<T, AppFabricError> {
    serde_json::from_value(value).map_err(|err| AppFabricError::Validation {
        message: format!("The request could not be read: {err}"),
        reason: ValidationReason::CannotParse,
        fields: Vec::new(),
    })
}

fn output<T: Serialize>(value: T) -> Result<Value, AppFabricError> {
    serde_json::to_value(value).map_err(|err| StoreError::Unavailable(err.to_string()).into())
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

#[async_trait]
impl Service for AppFabricService {
    fn model(&self) -> &ServiceModel {
        model()
    }

    fn validation_error(&self, violations: &[Violation]) -> ApiError {
        AppFabricError::from_violations(violations).into()
    }

    fn type_error(&self, message: String) -> ApiError {
        // AppFabric has no SerializationException shape: a body of the wrong type is a
        // ValidationException whose reason is `cannotParse`.
        AppFabricError::Validation {
            message,
            reason: ValidationReason::CannotParse,
            fields: Vec::new(),
        }
        .into()
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        value: Value,
    ) -> Result<Value, ApiError> {
        let deps = &self.deps;
        let result = match operation {
            "CreateAppBundle" => bundles::create(deps, ctx, input(value)?).await,
            "GetAppBundle" => bundles::get(deps, ctx, input(value)?).await,
            "ListAppBundles" => bundles::list(deps, ctx, input(value)?).await,
            "DeleteAppBundle" => bundles::delete(deps, ctx, input(value)?).await,
            "CreateAppAuthorization" => authorizations::create(deps, ctx, input(value)?).await,
            "GetAppAuthorization" => authorizations::get(deps, ctx, input(value)?).await,
            "ListAppAuthorizations" => authorizations::list(deps, ctx, input(value)?).await,
            "UpdateAppAuthorization" => authorizations::update(deps, ctx, input(value)?).await,
            "DeleteAppAuthorization" => authorizations::delete(deps, ctx, input(value)?).await,
            "ConnectAppAuthorization" => authorizations::connect(deps, ctx, input(value)?).await,
            "CreateIngestion" => ingestions::create(deps, ctx, input(value)?).await,
            "GetIngestion" => ingestions::get(deps, ctx, input(value)?).await,
            "ListIngestions" => ingestions::list(deps, ctx, input(value)?).await,
            "DeleteIngestion" => ingestions::delete(deps, ctx, input(value)?).await,
            "StartIngestion" => ingestions::start(deps, ctx, input(value)?).await,
            "StopIngestion" => ingestions::stop(deps, ctx, input(value)?).await,
            "CreateIngestionDestination" => destinations::create(deps, ctx, input(value)?).await,
            "GetIngestionDestination" => destinations::get(deps, ctx, input(value)?).await,
            "ListIngestionDestinations" => destinations::list(deps, ctx, input(value)?).await,
            "UpdateIngestionDestination" => destinations::update(deps, ctx, input(value)?).await,
            "DeleteIngestionDestination" => destinations::delete(deps, ctx, input(value)?).await,
            "TagResource" => tags::tag_resource(deps, ctx, input(value)?).await,
            "UntagResource" => tags::untag_resource(deps, ctx, input(value)?).await,
            "ListTagsForResource" => tags::list_tags(deps, ctx, input(value)?).await,
            "BatchGetUserAccessTasks" | "StartUserAccessTasks" => Err(unsupported(operation)),
            other => return Err(ApiError::not_implemented("appfabric", other)),
        };
        result.map_err(ApiError::from)
    }
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
        let model = super::model();
        assert_eq!(model.metadata.protocol, "rest-json");
        for (name, shape) in &model.shapes {
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
