//! CloudTrail Data (`cloudtrail-data`, rest-json): `POST /PutAuditEvents`, how events from
//! outside AWS enter CloudTrail Lake through a channel.
//!
//! Each event is checked (its `eventData` against the CloudTrail Lake integration event
//! schema, its checksum when given) and reported as successful or failed. The accepted events
//! are appended, in one store batch committed before the answer, to the log of every
//! destination store that is ingesting (`ENABLED`). A log entry is one row per event: its
//! metadata is the CloudTrail event ID and its payload the full CloudTrail Lake record (the
//! fields CloudTrail adds as top-level members, `eventData` parsed, and the raw `eventData`
//! text kept as given), so the query issue can read it back as rows.
//!
//! Its own service (its own model, errors and signing name), reading CloudTrail's channels and
//! stores through `cloudtrail::records` only; CloudTrail does not depend on it.

use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::arn::Arn;
use crate::policy::{Decision, PolicyDocument, Request};
use crate::protocol::model::Violation;
use crate::protocol::{ApiError, RequestContext};
use crate::services::cloudtrail::records::{
    ChannelRecord, EventDataStoreRecord, IngestionStatus, CHANNEL, CHANNEL_INGESTION, EVENTS_TABLE,
    EVENT_DATA_STORE,
};
use crate::services::cloudtrail::{resolve, CloudTrailError, Reference, ResourceType};
use crate::services::kit::{self, ServiceError};
use crate::services::Deps;
use crate::store::group_commit::GroupCommit;
use crate::store::{self, Expect, RecordKey, Write};
use crate::token::TokenError;

/// The action a channel's resource policy must allow for another account.
const PUT_AUDIT_EVENTS: &str = "cloudtrail-data:PutAuditEvents";

/// The `eventVersion` CloudTrail gives integration events.
const EVENT_VERSION: &str = "1.09";

/// Most bytes of event data in one call ("up to 100 activity events (or up to 1 MB) per
/// PutAuditEvents request", CloudTrail quotas); the 100 events are the model's list limit.
const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Errors of `cloudtrail-data`, a separate model with its own error shapes.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Model constraint violations. Not confirmed: the model has no validation shape, so this
    /// answers `ValidationException`, as rest-json services do.
    #[error("{0}")]
    Validation(String),
    /// Not a channel ARN or ID.
    #[error("{0}")]
    InvalidChannelArn(String),
    /// No such channel.
    #[error("{0}")]
    ChannelNotFound(String),
    /// Another account that the channel's resource policy does not allow.
    #[error("{0}")]
    ChannelInsufficientPermission(String),
    /// Two events of one request share an `id`.
    #[error("{0}")]
    DuplicatedAuditEventId(String),
    /// A control-plane failure (store, corrupt record), already mapped.
    #[error("{0}")]
    Control(#[from] CloudTrailError),
}

impl From<crate::store::StoreError> for DataError {
    fn from(err: crate::store::StoreError) -> Self {
        DataError::Control(err.into())
    }
}

impl From<DataError> for ApiError {
    fn from(err: DataError) -> Self {
        let message = err.to_string();
        let code = match err {
            DataError::Validation(_) => "ValidationException",
            DataError::InvalidChannelArn(_) => "InvalidChannelARN",
            DataError::ChannelNotFound(_) => "ChannelNotFound",
            DataError::ChannelInsufficientPermission(_) => "ChannelInsufficientPermission",
            DataError::DuplicatedAuditEventId(_) => "DuplicatedAuditEventId",
            // CloudTrail's own errors, with the statuses CloudTrail's model gives them.
            DataError::Control(inner) => {
                return kit::wire_error(kit::embedded_model("cloudtrail"), inner)
            }
        };
        // Not confirmed: the model gives these shapes no status; 400 like CloudTrail's.
        ApiError::new(code, message)
    }
}

/// The CloudTrail Data service.
pub struct CloudTrailDataService {
    state: DataState,
}

/// What PutAuditEvents runs with.
pub struct DataState {
    deps: Deps,
    /// Commits the events of concurrent calls together (one fsync for several calls).
    commits: GroupCommit,
}

impl CloudTrailDataService {
    /// Builds the service over shared dependencies.
    pub fn new(deps: Deps) -> Self {
        Self {
            state: DataState {
                deps,
                commits: GroupCommit::default(),
            },
        }
    }
}

impl ServiceError for DataError {
    fn from_violations(violations: &[Violation]) -> Self {
        DataError::Validation(Violation::summary(violations))
    }

    fn invalid_input(message: String) -> Self {
        DataError::Validation(message)
    }

    fn invalid_token(error: TokenError, token: &str) -> Self {
        DataError::Control(CloudTrailError::invalid_token(error, token))
    }
}

kit::operations! {
    CloudTrailDataService { model: "cloudtrail-data", error: DataError, state: state }
    PutAuditEvents => put_audit_events,
}

/// One event of a request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventInput {
    id: String,
    event_data: String,
    #[serde(default)]
    event_data_checksum: Option<String>,
}

/// PutAuditEvents input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutAuditEventsInput {
    channel_arn: String,
    #[serde(default)]
    external_id: Option<String>,
    audit_events: Vec<AuditEventInput>,
}

/// Why one event is refused: AWS's error code and a message.
#[derive(Debug, PartialEq)]
pub struct EventFailure {
    /// `FieldNotFound`, `InvalidData`, `InvalidChecksum`, `InvalidRecipient` ...
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

fn failure(code: &'static str, message: impl Into<String>) -> EventFailure {
    EventFailure {
        code,
        message: message.into(),
    }
}

/// Checks one event against the CloudTrail Lake integration event schema ("CloudTrail Lake
/// integrations event schema", CloudTrail User Guide) and returns its parsed `eventData`.
pub fn check_event(
    event: &AuditEventInput,
    owner: &str,
) -> Result<Map<String, Value>, EventFailure> {
    if let Some(checksum) = &event.event_data_checksum {
        let digest = Sha256::digest(event.event_data.as_bytes());
        let expected = base64::engine::general_purpose::STANDARD.encode(digest);
        if *checksum != expected {
            return Err(failure(
                "InvalidChecksum",
                "The eventDataChecksum does not match the SHA-256 of eventData.",
            ));
        }
    }
    let Ok(Value::Object(data)) = serde_json::from_str::<Value>(&event.event_data) else {
        return Err(failure("InvalidData", "eventData is not a JSON object."));
    };
    let string = |name: &str| -> Result<&str, EventFailure> {
        match data.get(name) {
            None | Some(Value::Null) => Err(failure(
                "FieldNotFound",
                format!("The required field {name} is missing from eventData."),
            )),
            Some(Value::String(text)) if !text.is_empty() => Ok(text),
            Some(_) => Err(failure(
                "InvalidData",
                format!("The field {name} must be a non-empty string."),
            )),
        }
    };
    for name in ["version", "eventSource", "eventName", "eventTime", "UID"] {
        string(name)?;
    }
    let recipient = string("recipientAccountId")?;
    match data.get("userIdentity") {
        Some(Value::Object(identity)) => {
            for name in ["type", "principalId"] {
                match identity.get(name) {
                    Some(Value::String(text)) if !text.is_empty() => {}
                    None | Some(Value::Null) => {
                        return Err(failure(
                            "FieldNotFound",
                            format!("The required field userIdentity.{name} is missing."),
                        ))
                    }
                    Some(_) => {
                        return Err(failure(
                            "InvalidData",
                            format!("userIdentity.{name} must be a non-empty string."),
                        ))
                    }
                }
            }
        }
        None | Some(Value::Null) => {
            return Err(failure(
                "FieldNotFound",
                "The required field userIdentity is missing from eventData.",
            ))
        }
        Some(_) => return Err(failure("InvalidData", "userIdentity must be an object.")),
    }
    let event_time = string("eventTime")?;
    if time::OffsetDateTime::parse(event_time, &time::format_description::well_known::Rfc3339)
        .is_err()
    {
        return Err(failure(
            "InvalidData",
            format!("eventTime {event_time} is not a timestamp like 2023-01-31T12:00:00Z."),
        ));
    }
    if recipient != owner {
        return Err(failure(
            "InvalidRecipient",
            format!("recipientAccountId {recipient} is not the channel owner's account."),
        ));
    }
    Ok(data)
}

/// Whether the channel's resource policy lets `caller` put events with `external_id`, the
/// request's `cloudtrail:ExternalId` condition key (absent when the caller gives none).
fn policy_allows(
    policy: &PolicyDocument,
    caller: &str,
    channel_arn: &str,
    external_id: Option<&str>,
) -> bool {
    let external_id: Vec<(&str, &str)> = external_id
        .map(|id| ("cloudtrail:ExternalId", id))
        .into_iter()
        .collect();
    policy.evaluate(&Request {
        principal_account: caller,
        principal_arn: None,
        action: PUT_AUDIT_EVENTS,
        resource: channel_arn,
        keys: &external_id,
    }) == Decision::Allow
}

/// PutAuditEvents.
pub async fn put_audit_events(
    state: &DataState,
    ctx: &RequestContext,
    input: PutAuditEventsInput,
) -> Result<PutAuditEventsOutput, DataError> {
    let DataState { deps, commits } = state;
    let reference = &input.channel_arn;
    // The channel may belong to another account: a full ARN names it; a bare ID is the
    // caller's own.
    let (owner, region, id) = match resolve(ctx, ResourceType::Channel, reference) {
        Reference::Own(id) => (ctx.account_id.clone(), ctx.region.clone(), id),
        Reference::Foreign => {
            let arn = Arn::parse(reference).ok_or_else(|| invalid_arn(reference))?;
            let id = arn
                .resource
                .split_once('/')
                .map(|(_, id)| id.to_ascii_lowercase())
                .ok_or_else(|| invalid_arn(reference))?;
            (arn.account.to_owned(), arn.region.to_owned(), id)
        }
        Reference::Invalid => return Err(invalid_arn(reference)),
    };
    let channel_key = RecordKey::new(CHANNEL, &owner, &region, &id);
    let Some((channel, _)) = store::load::<ChannelRecord>(&*deps.store, &channel_key).await? else {
        return Err(DataError::ChannelNotFound(format!(
            "The channel {reference} was not found."
        )));
    };
    let channel_arn = format!(
        "arn:{}:cloudtrail:{region}:{owner}:channel/{id}",
        crate::arn::partition(&region)
    );
    if ctx.account_id != owner {
        let allowed = channel.policy.as_ref().is_some_and(|policy| {
            policy_allows(
                policy.document(),
                &ctx.account_id,
                &channel_arn,
                input.external_id.as_deref(),
            )
        });
        // Not confirmed: whether a foreign ARN in another Region is refused earlier.
        if !allowed || region != ctx.region {
            return Err(DataError::ChannelInsufficientPermission(format!(
                "Account {} is not allowed to put events on channel {channel_arn}.",
                ctx.account_id
            )));
        }
    }
    let bytes: usize = input.audit_events.iter().map(|e| e.event_data.len()).sum();
    if bytes > MAX_BATCH_BYTES {
        // Not confirmed: the error AWS gives an oversized batch; the model's other batch
        // limit (100 events) answers ValidationException, so this does too.
        return Err(DataError::Validation(format!(
            "The event data of one PutAuditEvents call must not exceed {MAX_BATCH_BYTES} bytes; this call has {bytes}."
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for event in &input.audit_events {
        if !seen.insert(event.id.as_str()) {
            return Err(DataError::DuplicatedAuditEventId(format!(
                "The event id {} appears more than once in the request.",
                event.id
            )));
        }
    }
    // The destinations that ingest now, by ARN.
    let mut destinations = Vec::new();
    for store_id in channel.destination_ids() {
        let store_key = RecordKey::new(EVENT_DATA_STORE, &owner, &region, store_id);
        if let Some((store, _)) =
            store::load::<EventDataStoreRecord>(&*deps.store, &store_key).await?
        {
            if store.is_active() {
                destinations.push(format!(
                    "arn:{}:cloudtrail:{region}:{owner}:eventdatastore/{store_id}",
                    crate::arn::partition(&region)
                ));
            }
        }
    }
    let now = ctx.received_at;
    let ingestion_time = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    let mut writes = Vec::new();
    let status_key = RecordKey::new(CHANNEL_INGESTION, &owner, &region, &id);
    let mut status: IngestionStatus = store::load(&*deps.store, &status_key)
        .await?
        .map(|(status, _)| status)
        .unwrap_or_default();
    for event in &input.audit_events {
        status.attempt_event_id = Some(event.id.clone());
        status.attempt_time = Some(now.unix_timestamp());
        let data = match check_event(event, &owner) {
            Ok(data) => {
                status.error_code = None;
                data
            }
            Err(why) => {
                status.error_code = Some(why.code.to_owned());
                failed.push(ResultErrorEntry {
                    id: event.id.clone(),
                    error_code: why.code.to_owned(),
                    error_message: why.message,
                });
                continue;
            }
        };
        // Time-ordered (UUID version 7): the events table's unique index on event IDs then
        // grows at its end. With random IDs every event of a commit touched its own index
        // page, and SQLite wrote each of those pages to its log again.
        let event_id = uuid::Uuid::now_v7().to_string();
        for destination in &destinations {
            writes.push(event_row(
                &owner,
                &region,
                destination,
                &event_id,
                &data,
                event,
                &channel_arn,
                &ingestion_time,
            ));
        }
        status.success_event_id = Some(event_id.clone());
        status.success_time = Some(now.unix_timestamp());
        successful.push(AuditEventResultEntry {
            id: event.id.clone(),
            event_id,
        });
    }
    writes.push(store::put(status_key, &status, Expect::Any)?);
    commits.write(&*deps.store, writes).await?;
    Ok(PutAuditEventsOutput { successful, failed })
}

/// An accepted event.
#[derive(Debug, serde::Serialize)]
pub struct AuditEventResultEntry {
    id: String,
    #[serde(rename = "eventID")]
    event_id: String,
}

/// A refused event.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultErrorEntry {
    id: String,
    error_code: String,
    error_message: String,
}

/// PutAuditEvents output.
#[derive(Debug, serde::Serialize)]
pub struct PutAuditEventsOutput {
    successful: Vec<AuditEventResultEntry>,
    failed: Vec<ResultErrorEntry>,
}

/// The row of one accepted event in one event data store: what CloudTrail adds (event ID,
/// version, category, type, Region, ingestion metadata), eventTime as epoch milliseconds (the
/// retention and time index), and the eventData as sent. The integration schema's fields are
/// read from the eventData when the row is compacted or queried (rows written before kept
/// them as columns too, and still read so).
#[allow(clippy::too_many_arguments)]
fn event_row(
    owner: &str,
    region: &str,
    event_data_store: &str,
    event_id: &str,
    data: &Map<String, Value>,
    event: &AuditEventInput,
    channel_arn: &str,
    ingestion_time: &str,
) -> Write {
    // Retention goes by eventTime (checked as RFC 3339 before), kept as epoch milliseconds.
    let event_time_millis = data
        .get("eventTime")
        .and_then(Value::as_str)
        .and_then(|text| {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
        })
        .map_or(Value::Null, |at| {
            json!(i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
        });
    Write::Insert {
        table: EVENTS_TABLE,
        row: vec![
            ("account", json!(owner)),
            ("region", json!(region)),
            ("event_data_store", json!(event_data_store)),
            ("event_id", json!(event_id)),
            ("event_version", json!(EVENT_VERSION)),
            ("event_category", json!("ActivityAuditLog")),
            ("event_type", json!("ActivityLog")),
            ("event_time_millis", event_time_millis),
            ("aws_region", json!(region)),
            ("channel_arn", json!(channel_arn)),
            ("ingestion_time", json!(ingestion_time)),
            ("raw_event_data", json!(event.event_data)),
        ],
    }
}

fn invalid_arn(reference: &str) -> DataError {
    DataError::InvalidChannelArn(format!(
        "The specified channel ARN {reference} is not a valid channel ARN."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: &str, checksum: Option<&str>) -> AuditEventInput {
        AuditEventInput {
            id: "e1".to_owned(),
            event_data: data.to_owned(),
            event_data_checksum: checksum.map(str::to_owned),
        }
    }

    const GOOD: &str = r#"{"version":"1.0","userIdentity":{"type":"User","principalId":"alice"},
        "eventSource":"app","eventName":"Login","eventTime":"2026-01-31T12:00:00Z",
        "UID":"u-1","recipientAccountId":"111122223333"}"#;

    #[test]
    fn model_parses() {
        assert_eq!(
            crate::services::kit::embedded_model("cloudtrail-data").signing_name(),
            "cloudtrail-data"
        );
    }

    #[test]
    fn events_are_checked_against_the_schema() {
        assert!(check_event(&event(GOOD, None), "111122223333").is_ok());
        let sum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(GOOD));
        assert!(check_event(&event(GOOD, Some(&sum)), "111122223333").is_ok());
        let code = |data: &str, checksum: Option<&str>, owner: &str| {
            check_event(&event(data, checksum), owner)
                .err()
                .map(|f| f.code)
        };
        assert_eq!(
            code(GOOD, Some("AAAA"), "111122223333"),
            Some("InvalidChecksum")
        );
        assert_eq!(code(GOOD, None, "444455556666"), Some("InvalidRecipient"));
        assert_eq!(code("[1]", None, "111122223333"), Some("InvalidData"));
        let no_uid = GOOD.replace(r#""UID":"u-1","#, "");
        assert_eq!(code(&no_uid, None, "111122223333"), Some("FieldNotFound"));
        let bad_time = GOOD.replace("2026-01-31T12:00:00Z", "yesterday");
        assert_eq!(code(&bad_time, None, "111122223333"), Some("InvalidData"));
    }

    #[test]
    fn external_id_conditions() {
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Principal":{"AWS":"444455556666"},"Action":"cloudtrail-data:PutAuditEvents",
            "Condition":{"StringEquals":{"cloudtrail:ExternalId":"secret"}}}]}"#;
        let policy = &PolicyDocument::parse(policy).expect("valid");
        let arn = "arn:aws:cloudtrail:us-east-1:111122223333:channel/x";
        assert!(policy_allows(policy, "444455556666", arn, Some("secret")));
        assert!(!policy_allows(policy, "444455556666", arn, Some("wrong")));
        assert!(!policy_allows(policy, "444455556666", arn, None));
        assert!(!policy_allows(policy, "777788889999", arn, Some("secret")));
    }
}
