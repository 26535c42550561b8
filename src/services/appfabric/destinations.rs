//! Ingestion destinations: how an ingestion's audit log is processed and where it goes.
//!
//! `processingConfiguration` and `destinationConfiguration` are tagged unions; the protocol
//! layer has already refused a union with none or several members (`ValidationException`,
//! reason `fieldValidationFailed`, `fieldList` naming the union), a bad enum, length or
//! identifier. `status` starts `Active`; delivery (`delivery.rs`) sets `Failed` with a
//! `statusReason` while the bucket or stream is missing or refuses, and `Active` again once an
//! object or record is delivered. Parquet goes to S3 only: AWS's Firehose destinations take
//! JSON, so Parquet with a Firehose stream is a ValidationException on create and update.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::idempotency::{recall, Recall};
use super::ingestions::{self, IngestionRecord};
use super::quotas::INGESTION_DESTINATIONS;
use super::{
    key, now_seconds, resolve, resource_arn, tags_from_list, AppFabricError, Kind, Tag, Tags,
    DEFAULT_MAX_RESULTS, INGESTION_DESTINATION,
};
use crate::protocol::model::Iso8601;
use crate::protocol::RequestContext;
use crate::services::kit::{self, load, load_records, put, retry, Pages};
use crate::services::Deps;
use crate::store::{Expect, Write};

/// `ProcessingConfiguration` (a union with one member today).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProcessingConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audit_log: Option<AuditLogProcessing>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct AuditLogProcessing {
    schema: String,
    format: String,
}

/// `DestinationConfiguration` (a union with one member today).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DestinationConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audit_log: Option<AuditLogDestination>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct AuditLogDestination {
    destination: Destination,
}

/// `Destination`: a union of an S3 bucket and a Firehose stream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Destination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s3_bucket: Option<S3Bucket>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    firehose_stream: Option<FirehoseStream>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct S3Bucket {
    bucket_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct FirehoseStream {
    stream_name: String,
}

/// An ingestion destination as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct DestinationRecord {
    pub id: String,
    pub bundle_id: String,
    pub ingestion_id: String,
    pub arn: String,
    pub ingestion_arn: String,
    processing_configuration: ProcessingConfiguration,
    destination_configuration: DestinationConfiguration,
    /// `Active` or `Failed`.
    status: String,
    /// Only when `Failed`.
    status_reason: Option<String>,
    /// Epoch seconds.
    created_at: f64,
    updated_at: f64,
    #[serde(default)]
    pub tags: Tags,
}

impl DestinationRecord {
    /// The record's name: `BUNDLE/INGESTION/DESTINATION`.
    pub fn name(&self) -> String {
        format!("{}/{}/{}", self.bundle_id, self.ingestion_id, self.id)
    }

    /// `(schema, format)`: `ocsf` or `raw`, `json` or `parquet`.
    pub fn processing(&self) -> (&str, &str) {
        match &self.processing_configuration.audit_log {
            Some(p) => (p.schema.as_str(), p.format.as_str()),
            None => ("raw", "json"),
        }
    }

    /// Where the events go.
    pub fn target(&self) -> Option<DestinationTarget> {
        let destination = &self
            .destination_configuration
            .audit_log
            .as_ref()?
            .destination;
        if let Some(bucket) = &destination.s3_bucket {
            return Some(DestinationTarget::S3 {
                bucket: bucket.bucket_name.clone(),
                prefix: bucket.prefix.clone().unwrap_or_default(),
            });
        }
        destination
            .firehose_stream
            .as_ref()
            .map(|f| DestinationTarget::Firehose(f.stream_name.clone()))
    }

    /// `status` and `statusReason`.
    pub fn status(&self) -> (&str, Option<&str>) {
        (&self.status, self.status_reason.as_deref())
    }

    /// Sets `status` and `statusReason` (delivery's view of the target).
    pub fn set_status(&mut self, status: &str, reason: Option<String>) {
        self.status = status.to_owned();
        self.status_reason = reason;
    }
}

/// A destination's target, as delivery reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationTarget {
    /// An S3 bucket, with the key prefix (empty when none).
    S3 {
        /// The bucket.
        bucket: String,
        /// The prefix before `AWSAppFabric/...`.
        prefix: String,
    },
    /// A Firehose stream of the destination's account and region.
    Firehose(String),
}

/// Parquet cannot go to a Firehose stream (AWS: Firehose destinations take JSON only).
fn check_format(
    processing: &ProcessingConfiguration,
    destination: &DestinationConfiguration,
) -> Result<(), AppFabricError> {
    let parquet = processing
        .audit_log
        .as_ref()
        .is_some_and(|p| p.format == "parquet");
    let firehose = destination
        .audit_log
        .as_ref()
        .is_some_and(|d| d.destination.firehose_stream.is_some());
    if parquet && firehose {
        return Err(AppFabricError::field(
            "destinationConfiguration.auditLog.destination.firehoseStream",
            "A Firehose stream destination takes the json format only; use an S3 bucket for parquet",
        ));
    }
    Ok(())
}

/// The wire form of an ingestion destination.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestionDestination {
    arn: String,
    ingestion_arn: String,
    processing_configuration: ProcessingConfiguration,
    destination_configuration: DestinationConfiguration,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_reason: Option<String>,
    created_at: Iso8601,
    updated_at: Iso8601,
}

impl From<&DestinationRecord> for IngestionDestination {
    fn from(r: &DestinationRecord) -> Self {
        IngestionDestination {
            arn: r.arn.clone(),
            ingestion_arn: r.ingestion_arn.clone(),
            processing_configuration: r.processing_configuration.clone(),
            destination_configuration: r.destination_configuration.clone(),
            status: r.status.clone(),
            status_reason: r.status_reason.clone(),
            created_at: Iso8601(r.created_at),
            updated_at: Iso8601(r.updated_at),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationOutput {
    ingestion_destination: IngestionDestination,
}

/// CreateIngestionDestination input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateInput {
    app_bundle_identifier: String,
    ingestion_identifier: String,
    processing_configuration: ProcessingConfiguration,
    destination_configuration: DestinationConfiguration,
    client_token: Option<String>,
    tags: Option<Vec<Tag>>,
}

/// Get and Delete input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationInput {
    app_bundle_identifier: String,
    ingestion_identifier: String,
    ingestion_destination_identifier: String,
}

/// UpdateIngestionDestination input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateInput {
    app_bundle_identifier: String,
    ingestion_identifier: String,
    ingestion_destination_identifier: String,
    destination_configuration: DestinationConfiguration,
}

/// ListIngestionDestinations input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListInput {
    app_bundle_identifier: String,
    ingestion_identifier: String,
    max_results: Option<usize>,
    next_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListOutput {
    ingestion_destinations: Vec<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// Loads the ingestion and the destination that three identifiers name, or answers 404.
async fn find(
    deps: &Deps,
    ctx: &RequestContext,
    bundle_identifier: &str,
    ingestion_identifier: &str,
    destination_identifier: &str,
) -> Result<(IngestionRecord, i64, DestinationRecord, i64), AppFabricError> {
    let (bundle, _, ingestion, ingestion_version) =
        ingestions::find(deps, ctx, bundle_identifier, ingestion_identifier).await?;
    let id = resolve(
        ctx,
        destination_identifier,
        Kind::IngestionDestination,
        &[&bundle.id, &ingestion.id],
    )?;
    let name = format!("{}/{id}", ingestion.name());
    let (destination, version) = load(deps, &key(ctx, INGESTION_DESTINATION, &name))
        .await?
        .ok_or_else(|| AppFabricError::not_found("IngestionDestination", destination_identifier))?;
    Ok((ingestion, ingestion_version, destination, version))
}

/// CreateIngestionDestination.
pub async fn create(
    deps: &Deps,
    ctx: &RequestContext,
    input: CreateInput,
) -> Result<Value, AppFabricError> {
    check_format(
        &input.processing_configuration,
        &input.destination_configuration,
    )?;
    let tags = tags_from_list(input.tags.clone())?;
    let (input, tags) = (&input, &tags);
    retry(move || async move {
        let (bundle, _, ingestion, ingestion_version) = ingestions::find(
            deps,
            ctx,
            &input.app_bundle_identifier,
            &input.ingestion_identifier,
        )
        .await?;
        let params = json!({
            "ingestion": ingestion.name(),
            "processingConfiguration": input.processing_configuration,
            "destinationConfiguration": input.destination_configuration,
            "tags": tags,
        });
        let claim = match recall(
            deps,
            ctx,
            "CreateIngestionDestination",
            input.client_token.as_deref(),
            &params,
        )
        .await?
        {
            Recall::Replay(response) => return Ok(response),
            Recall::Fresh(claim) => claim,
        };
        let siblings = load_records::<DestinationRecord>(
            deps,
            ctx,
            INGESTION_DESTINATION,
            &format!("{}/", ingestion.name()),
        )
        .await?;
        INGESTION_DESTINATIONS.check(siblings.len(), &ingestion.arn)?;
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_seconds(ctx);
        let record = DestinationRecord {
            arn: resource_arn(
                ctx,
                &format!(
                    "appbundle/{}/ingestion/{}/ingestiondestination/{id}",
                    bundle.id, ingestion.id
                ),
            ),
            id,
            bundle_id: bundle.id.clone(),
            ingestion_id: ingestion.id.clone(),
            ingestion_arn: ingestion.arn.clone(),
            processing_configuration: input.processing_configuration.clone(),
            destination_configuration: input.destination_configuration.clone(),
            status: "Active".to_owned(),
            status_reason: None,
            created_at: now,
            updated_at: now,
            tags: tags.clone(),
        };
        let response = kit::to_value(DestinationOutput {
            ingestion_destination: IngestionDestination::from(&record),
        })?;
        let mut batch = vec![
            put(
                key(ctx, INGESTION_DESTINATION, &record.name()),
                &record,
                Expect::Absent,
            )?,
            ingestions::touch(ctx, &ingestion, ingestion_version)?,
        ];
        batch.extend(claim.remember(&response)?);
        deps.store.write(batch).await?;
        Ok(response)
    })
    .await
}

/// GetIngestionDestination.
pub async fn get(
    deps: &Deps,
    ctx: &RequestContext,
    input: DestinationInput,
) -> Result<DestinationOutput, AppFabricError> {
    let (_, _, record, _) = find(
        deps,
        ctx,
        &input.app_bundle_identifier,
        &input.ingestion_identifier,
        &input.ingestion_destination_identifier,
    )
    .await?;
    Ok(DestinationOutput {
        ingestion_destination: IngestionDestination::from(&record),
    })
}

/// ListIngestionDestinations.
pub async fn list(
    deps: &Deps,
    ctx: &RequestContext,
    input: ListInput,
) -> Result<ListOutput, AppFabricError> {
    let (_, _, ingestion, _) = ingestions::find(
        deps,
        ctx,
        &input.app_bundle_identifier,
        &input.ingestion_identifier,
    )
    .await?;
    let prefix = format!("{}/", ingestion.name());
    let (records, next_token) =
        Pages::new(deps, ctx, "appfabric:ListIngestionDestinations", &prefix)
            .records::<DestinationRecord, AppFabricError>(
                INGESTION_DESTINATION,
                &prefix,
                input.next_token.as_deref(),
                input.max_results.unwrap_or(DEFAULT_MAX_RESULTS),
            )
            .await?;
    Ok(ListOutput {
        ingestion_destinations: records
            .into_iter()
            .map(|r| Summary { arn: r.arn })
            .collect(),
        next_token,
    })
}

/// UpdateIngestionDestination: replaces `destinationConfiguration` only; `createdAt` stays,
/// `updatedAt` moves.
pub async fn update(
    deps: &Deps,
    ctx: &RequestContext,
    input: UpdateInput,
) -> Result<DestinationOutput, AppFabricError> {
    let input = &input;
    retry(move || async move {
        let (_, _, mut record, version) = find(
            deps,
            ctx,
            &input.app_bundle_identifier,
            &input.ingestion_identifier,
            &input.ingestion_destination_identifier,
        )
        .await?;
        check_format(
            &record.processing_configuration,
            &input.destination_configuration,
        )?;
        record.destination_configuration = input.destination_configuration.clone();
        record.updated_at = now_seconds(ctx).max(record.updated_at);
        deps.store
            .write(vec![put(
                key(ctx, INGESTION_DESTINATION, &record.name()),
                &record,
                Expect::Version(version),
            )?])
            .await?;
        Ok(DestinationOutput {
            ingestion_destination: IngestionDestination::from(&record),
        })
    })
    .await
}

/// DeleteIngestionDestination.
pub async fn delete(
    deps: &Deps,
    ctx: &RequestContext,
    input: DestinationInput,
) -> Result<(), AppFabricError> {
    let input = &input;
    retry(move || async move {
        let (ingestion, ingestion_version, record, version) = find(
            deps,
            ctx,
            &input.app_bundle_identifier,
            &input.ingestion_identifier,
            &input.ingestion_destination_identifier,
        )
        .await?;
        let batch: Vec<Write> = vec![
            Write::Delete {
                key: key(ctx, INGESTION_DESTINATION, &record.name()),
                expect: Expect::Version(version),
            },
            super::delivery::forget_destination(ctx, &record.name()),
            ingestions::touch(ctx, &ingestion, ingestion_version)?,
        ];
        deps.store.write(batch).await?;
        Ok(())
    })
    .await
}
