//! App bundles: the container of an account's authorizations and ingestions in a Region.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::idempotency::{recall, Recall};
use super::quotas::APP_BUNDLES;
use super::{
    key, resolve, resource_arn, tags_from_list, AppFabricError, Kind, Tag, Tags, ACCOUNT,
    APP_AUTHORIZATION, APP_BUNDLE, DEFAULT_MAX_RESULTS, INGESTION,
};
use crate::arn;
use crate::protocol::RequestContext;
use crate::services::kit::{self, load, load_records, put, retry, Pages};
use crate::services::Deps;
use crate::store::{Expect, Write};

/// An app bundle as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct BundleRecord {
    pub id: String,
    pub arn: String,
    pub customer_managed_key_arn: Option<String>,
    /// Epoch seconds.
    pub created_at: f64,
    #[serde(default)]
    pub tags: Tags,
}

/// The record that serialises bundle creation in an account and Region (its body is empty;
/// only its version matters).
#[derive(Debug, Default, Serialize, Deserialize)]
struct AccountGuard {}

/// The wire form of an app bundle.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppBundle {
    arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_managed_key_arn: Option<String>,
}

impl From<&BundleRecord> for AppBundle {
    fn from(record: &BundleRecord) -> Self {
        AppBundle {
            arn: record.arn.clone(),
            customer_managed_key_arn: record.customer_managed_key_arn.clone(),
        }
    }
}

/// CreateAppBundle input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateInput {
    client_token: Option<String>,
    customer_managed_key_identifier: Option<String>,
    tags: Option<Vec<Tag>>,
}

/// Create and Get output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleOutput {
    app_bundle: AppBundle,
}

/// Get and Delete input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleInput {
    app_bundle_identifier: String,
}

/// ListAppBundles input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListInput {
    max_results: Option<usize>,
    next_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    arn: String,
}

/// ListAppBundles output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListOutput {
    app_bundle_summary_list: Vec<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// Loads the bundle an identifier (ARN or UUID) names, or answers 404.
pub(super) async fn find(
    deps: &Deps,
    ctx: &RequestContext,
    identifier: &str,
) -> Result<(BundleRecord, i64), AppFabricError> {
    let id = resolve(ctx, identifier, Kind::AppBundle, &[])?;
    load(deps, &key(ctx, APP_BUNDLE, &id))
        .await?
        .ok_or_else(|| AppFabricError::not_found("AppBundle", identifier))
}

/// The write that bumps a bundle's version without changing it, so that concurrent changes
/// of its children are serialised (see the module documentation of `appfabric`).
pub(super) fn touch(
    ctx: &RequestContext,
    bundle: &BundleRecord,
    version: i64,
) -> Result<Write, AppFabricError> {
    Ok(put(
        key(ctx, APP_BUNDLE, &bundle.id),
        bundle,
        Expect::Version(version),
    )?)
}

/// A customer managed key given as a KMS key ARN is kept as is; a bare key id becomes the
/// ARN of that key in the caller's account and Region.
fn key_arn(ctx: &RequestContext, identifier: &str) -> String {
    if identifier.starts_with("arn:") {
        identifier.to_owned()
    } else {
        format!(
            "arn:{}:kms:{}:{}:key/{identifier}",
            arn::partition(&ctx.region),
            ctx.region,
            ctx.account_id
        )
    }
}

/// CreateAppBundle: at most one bundle per account and Region.
pub async fn create(
    deps: &Deps,
    ctx: &RequestContext,
    input: CreateInput,
) -> Result<serde_json::Value, AppFabricError> {
    let tags = tags_from_list(input.tags.clone())?;
    let key_arn = input
        .customer_managed_key_identifier
        .as_deref()
        .map(|identifier| key_arn(ctx, identifier));
    let params = json!({"customerManagedKeyArn": key_arn, "tags": tags});
    let (input, params, key_arn, tags) = (&input, &params, &key_arn, &tags);
    retry(move || async move {
        let claim = match recall(
            deps,
            ctx,
            "CreateAppBundle",
            input.client_token.as_deref(),
            params,
        )
        .await?
        {
            Recall::Replay(response) => return Ok(response),
            Recall::Fresh(claim) => claim,
        };
        let guard_key = key(ctx, ACCOUNT, "app-bundles");
        let guard_expect = match load::<AccountGuard>(deps, &guard_key).await? {
            Some((_, version)) => Expect::Version(version),
            None => Expect::Absent,
        };
        let existing = load_records::<BundleRecord>(deps, ctx, APP_BUNDLE, "").await?;
        APP_BUNDLES.check(existing.len(), &ctx.account_id)?;
        let id = uuid::Uuid::new_v4().to_string();
        let record = BundleRecord {
            arn: resource_arn(ctx, &format!("appbundle/{id}")),
            id,
            customer_managed_key_arn: key_arn.clone(),
            created_at: super::now_seconds(ctx),
            tags: tags.clone(),
        };
        let response = kit::to_value(BundleOutput {
            app_bundle: AppBundle::from(&record),
        })?;
        let mut batch = vec![
            put(key(ctx, APP_BUNDLE, &record.id), &record, Expect::Absent)?,
            put(guard_key, &AccountGuard::default(), guard_expect)?,
        ];
        batch.extend(claim.remember(&response)?);
        deps.store.write(batch).await?;
        Ok(response)
    })
    .await
}

/// GetAppBundle.
pub async fn get(
    deps: &Deps,
    ctx: &RequestContext,
    input: BundleInput,
) -> Result<BundleOutput, AppFabricError> {
    let (record, _) = find(deps, ctx, &input.app_bundle_identifier).await?;
    Ok(BundleOutput {
        app_bundle: AppBundle::from(&record),
    })
}

/// ListAppBundles.
pub async fn list(
    deps: &Deps,
    ctx: &RequestContext,
    input: ListInput,
) -> Result<ListOutput, AppFabricError> {
    let (records, next_token) = Pages::new(deps, ctx, "appfabric:ListAppBundles", "")
        .records::<BundleRecord, AppFabricError>(
            APP_BUNDLE,
            "",
            input.next_token.as_deref(),
            input.max_results.unwrap_or(DEFAULT_MAX_RESULTS),
        )
        .await?;
    Ok(ListOutput {
        app_bundle_summary_list: records
            .into_iter()
            .map(|record| Summary { arn: record.arn })
            .collect(),
        next_token,
    })
}

/// DeleteAppBundle: refused while the bundle has ingestions (`ConflictException`), as AWS
/// does; its app authorizations go with it.
pub async fn delete(
    deps: &Deps,
    ctx: &RequestContext,
    input: BundleInput,
) -> Result<(), AppFabricError> {
    let input = &input;
    retry(move || async move {
        let (record, version) = find(deps, ctx, &input.app_bundle_identifier).await?;
        let prefix = format!("{}/", record.id);
        let ingestions = deps
            .store
            .list(INGESTION, &ctx.account_id, &ctx.region, &prefix, None, 1)
            .await?;
        if !ingestions.is_empty() {
            return Err(AppFabricError::Conflict {
                message: format!(
                    "App bundle {} still has ingestions; delete them first",
                    record.arn
                ),
                resource_id: input.app_bundle_identifier.clone(),
                resource_type: "AppBundle",
            });
        }
        let authorizations = deps
            .store
            .list(
                APP_AUTHORIZATION,
                &ctx.account_id,
                &ctx.region,
                &prefix,
                None,
                1,
            )
            .await?;
        if !authorizations.is_empty() {
            return Err(AppFabricError::Conflict {
                message: format!(
                    "App bundle {} still has app authorizations; delete them first",
                    record.arn
                ),
                resource_id: input.app_bundle_identifier.clone(),
                resource_type: "AppBundle",
            });
        }
        let batch: Vec<Write> = vec![Write::Delete {
            key: key(ctx, APP_BUNDLE, &record.id),
            expect: Expect::Version(version),
        }];
        deps.store.write(batch).await?;
        Ok(())
    })
    .await
}
