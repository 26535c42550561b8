//! Ingestions: which application's audit log an app bundle collects, started and stopped.
//!
//! State: an ingestion is `enabled` when CreateIngestion answers. AWS's API reference does not
//! say so in words; it is inferred from AWS's own tooling (the Terraform AWS provider creates
//! ingestions that deliver data without ever calling StartIngestion). StartIngestion on an
//! enabled ingestion and StopIngestion on a disabled one are `ConflictException`s.
//!
//! One ingestion per app, tenant and type in a bundle: a second CreateIngestion for the same
//! triple is a `ConflictException` (the model lists it for CreateIngestion; the precise rule
//! AWS applies could not be confirmed).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::bundles::{self, BundleRecord};
use super::idempotency::{recall, Recall};
use super::quotas::INGESTIONS;
use super::{
    key, now_seconds, resolve, resource_arn, tags_from_list, AppFabricError, Kind, Tag, Tags,
    DEFAULT_MAX_RESULTS, INGESTION, INGESTION_DESTINATION,
};
use crate::protocol::model::Iso8601;
use crate::protocol::RequestContext;
use crate::services::kit::{self, load, load_records, put, retry, Pages};
use crate::services::Deps;
use crate::store::{Expect, Write};

/// An ingestion as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct IngestionRecord {
    pub id: String,
    pub bundle_id: String,
    pub arn: String,
    pub app_bundle_arn: String,
    pub app: String,
    pub tenant_id: String,
    pub ingestion_type: String,
    /// `enabled` or `disabled`.
    pub state: String,
    /// Epoch seconds.
    pub created_at: f64,
    pub updated_at: f64,
    #[serde(default)]
    pub tags: Tags,
}

impl IngestionRecord {
    /// The record's name: `BUNDLE/INGESTION`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.bundle_id, self.id)
    }
}

/// The wire form of an ingestion.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ingestion {
    arn: String,
    app_bundle_arn: String,
    app: String,
    tenant_id: String,
    created_at: Iso8601,
    updated_at: Iso8601,
    state: String,
    ingestion_type: String,
}

impl From<&IngestionRecord> for Ingestion {
    fn from(record: &IngestionRecord) -> Self {
        Ingestion {
            arn: record.arn.clone(),
            app_bundle_arn: record.app_bundle_arn.clone(),
            app: record.app.clone(),
            tenant_id: record.tenant_id.clone(),
            created_at: Iso8601(record.created_at),
            updated_at: Iso8601(record.updated_at),
            state: record.state.clone(),
            ingestion_type: record.ingestion_type.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct IngestionOutput {
    ingestion: Ingestion,
}

/// CreateIngestion input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateInput {
    app_bundle_identifier: String,
    app: String,
    tenant_id: String,
    ingestion_type: String,
    client_token: Option<String>,
    tags: Option<Vec<Tag>>,
}

/// Get, Delete, Start and Stop input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestionInput {
    app_bundle_identifier: String,
    ingestion_identifier: String,
}

/// ListIngestions input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListInput {
    app_bundle_identifier: String,
    max_results: Option<usize>,
    next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    arn: String,
    app: String,
    tenant_id: String,
    state: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListOutput {
    ingestions: Vec<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// Loads the bundle and the ingestion that two identifiers name, or answers 404.
pub(super) async fn find(
    deps: &Deps,
    ctx: &RequestContext,
    bundle_identifier: &str,
    ingestion_identifier: &str,
) -> Result<(BundleRecord, i64, IngestionRecord, i64), AppFabricError> {
    let (bundle, bundle_version) = bundles::find(deps, ctx, bundle_identifier).await?;
    let id = resolve(ctx, ingestion_identifier, Kind::Ingestion, &[&bundle.id])?;
    let (ingestion, version) = load(deps, &key(ctx, INGESTION, &format!("{}/{id}", bundle.id)))
        .await?
        .ok_or_else(|| AppFabricError::not_found("Ingestion", ingestion_identifier))?;
    Ok((bundle, bundle_version, ingestion, version))
}

/// The write that bumps an ingestion's version, serialising changes of its destinations.
pub(super) fn touch(
    ctx: &RequestContext,
    ingestion: &IngestionRecord,
    version: i64,
) -> Result<Write, AppFabricError> {
    Ok(put(
        key(ctx, INGESTION, &ingestion.name()),
        ingestion,
        Expect::Version(version),
    )?)
}

/// CreateIngestion.
pub async fn create(
    deps: &Deps,
    ctx: &RequestContext,
    input: CreateInput,
) -> Result<Value, AppFabricError> {
    let tags = tags_from_list(input.tags.clone())?;
    let (input, tags) = (&input, &tags);
    retry(move || async move {
        let (bundle, bundle_version) =
            bundles::find(deps, ctx, &input.app_bundle_identifier).await?;
        let params = json!({
            "appBundle": bundle.id, "app": input.app, "tenantId": input.tenant_id,
            "ingestionType": input.ingestion_type, "tags": tags,
        });
        let claim = match recall(
            deps,
            ctx,
            "CreateIngestion",
            input.client_token.as_deref(),
            &params,
        )
        .await?
        {
            Recall::Replay(response) => return Ok(response),
            Recall::Fresh(claim) => claim,
        };
        let siblings =
            load_records::<IngestionRecord>(deps, ctx, INGESTION, &format!("{}/", bundle.id))
                .await?;
        if let Some((_, twin, _)) = siblings.iter().find(|(_, s, _)| {
            s.app == input.app
                && s.tenant_id == input.tenant_id
                && s.ingestion_type == input.ingestion_type
        }) {
            return Err(AppFabricError::Conflict {
                message: format!(
                    "An ingestion of {} for tenant {} already exists: {}",
                    input.app, input.tenant_id, twin.arn
                ),
                resource_id: twin.arn.clone(),
                resource_type: "Ingestion",
            });
        }
        INGESTIONS.check(siblings.len(), &bundle.arn)?;
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_seconds(ctx);
        let record = IngestionRecord {
            arn: resource_arn(ctx, &format!("appbundle/{}/ingestion/{id}", bundle.id)),
            id,
            bundle_id: bundle.id.clone(),
            app_bundle_arn: bundle.arn.clone(),
            app: input.app.clone(),
            tenant_id: input.tenant_id.clone(),
            ingestion_type: input.ingestion_type.clone(),
            state: "enabled".to_owned(),
            created_at: now,
            updated_at: now,
            tags: tags.clone(),
        };
        let response = kit::to_value(IngestionOutput {
            ingestion: Ingestion::from(&record),
        })?;
        let mut batch = vec![
            put(key(ctx, INGESTION, &record.name()), &record, Expect::Absent)?,
            bundles::touch(ctx, &bundle, bundle_version)?,
        ];
        batch.extend(claim.remember(&response)?);
        deps.store.write(batch).await?;
        Ok(response)
    })
    .await
}

/// GetIngestion.
pub async fn get(
    deps: &Deps,
    ctx: &RequestContext,
    input: IngestionInput,
) -> Result<IngestionOutput, AppFabricError> {
    let (_, _, record, _) = find(
        deps,
        ctx,
        &input.app_bundle_identifier,
        &input.ingestion_identifier,
    )
    .await?;
    Ok(IngestionOutput {
        ingestion: Ingestion::from(&record),
    })
}

/// ListIngestions.
pub async fn list(
    deps: &Deps,
    ctx: &RequestContext,
    input: ListInput,
) -> Result<ListOutput, AppFabricError> {
    let (bundle, _) = bundles::find(deps, ctx, &input.app_bundle_identifier).await?;
    let prefix = format!("{}/", bundle.id);
    let (records, next_token) = Pages::new(deps, ctx, "appfabric:ListIngestions", &prefix)
        .records::<IngestionRecord, AppFabricError>(
            INGESTION,
            &prefix,
            input.next_token.as_deref(),
            input.max_results.unwrap_or(DEFAULT_MAX_RESULTS),
        )
        .await?;
    Ok(ListOutput {
        ingestions: records
            .into_iter()
            .map(|r| Summary {
                arn: r.arn,
                app: r.app,
                tenant_id: r.tenant_id,
                state: r.state,
            })
            .collect(),
        next_token,
    })
}

/// DeleteIngestion: only a stopped ingestion without destinations (AWS: "the ingestion must be
/// in a disabled state and have no associated ingestion destinations"); the model lists no
/// ConflictException for it, so the refusal is a ValidationException.
pub async fn delete(
    deps: &Deps,
    ctx: &RequestContext,
    input: IngestionInput,
) -> Result<(), AppFabricError> {
    let input = &input;
    retry(move || async move {
        let (bundle, bundle_version, record, version) = find(
            deps,
            ctx,
            &input.app_bundle_identifier,
            &input.ingestion_identifier,
        )
        .await?;
        if record.state == "enabled" {
            return Err(AppFabricError::refused(format!(
                "Ingestion {} is started; stop it before deleting it",
                record.arn
            )));
        }
        let destinations = deps
            .store
            .list(
                INGESTION_DESTINATION,
                &ctx.account_id,
                &ctx.region,
                &format!("{}/", record.name()),
                None,
                1,
            )
            .await?;
        if !destinations.is_empty() {
            return Err(AppFabricError::refused(format!(
                "Ingestion {} still has ingestion destinations; delete them first",
                record.arn
            )));
        }
        // The delivery state goes with it: the poll cursor and the events not yet delivered.
        let mut batch: Vec<Write> = super::delivery::forget_ingestion(ctx, &record.name());
        batch.push(Write::Delete {
            key: key(ctx, INGESTION, &record.name()),
            expect: Expect::Version(version),
        });
        batch.push(bundles::touch(ctx, &bundle, bundle_version)?);
        deps.store.write(batch).await?;
        Ok(())
    })
    .await
}

async fn set_state(
    deps: &Deps,
    ctx: &RequestContext,
    input: &IngestionInput,
    state: &'static str,
) -> Result<(), AppFabricError> {
    retry(move || async move {
        let (_, _, mut record, version) = find(
            deps,
            ctx,
            &input.app_bundle_identifier,
            &input.ingestion_identifier,
        )
        .await?;
        if record.state == state {
            let already = if state == "enabled" {
                "started"
            } else {
                "stopped"
            };
            return Err(AppFabricError::Conflict {
                message: format!("Ingestion {} is already {already}", record.arn),
                resource_id: input.ingestion_identifier.clone(),
                resource_type: "Ingestion",
            });
        }
        record.state = state.to_owned();
        record.updated_at = now_seconds(ctx);
        deps.store
            .write(vec![put(
                key(ctx, INGESTION, &record.name()),
                &record,
                Expect::Version(version),
            )?])
            .await?;
        Ok(())
    })
    .await
}

/// StartIngestion: `disabled` -> `enabled`.
pub async fn start(
    deps: &Deps,
    ctx: &RequestContext,
    input: IngestionInput,
) -> Result<(), AppFabricError> {
    set_state(deps, ctx, &input, "enabled").await
}

/// StopIngestion: `enabled` -> `disabled`.
pub async fn stop(
    deps: &Deps,
    ctx: &RequestContext,
    input: IngestionInput,
) -> Result<(), AppFabricError> {
    set_state(deps, ctx, &input, "disabled").await
}
