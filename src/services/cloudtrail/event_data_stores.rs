//! Event data stores: create, read, list, update, delete (to `PENDING_DELETION`), restore,
//! and starting or stopping ingestion; plus the advanced event selector rules that decide
//! what a store collects and so which operations and channels it accepts.

use serde::{Deserialize, Serialize};

use super::limits::{self, MAX_EVENT_DATA_STORES, MAX_SELECTOR_VALUES};
use super::{
    key, load, load_all, merge_tags, put, resolve, resource_arn, tags_output, CloudTrailError,
    Reference, Reservation, ResourceType, Tag, TagInput, Tags, CHANNEL, EVENT_DATA_STORE,
    EVENT_DATA_STORE_NAME,
};
use crate::protocol::model::EpochSeconds;
use crate::protocol::RequestContext;
use crate::services::kit::Pages;
use crate::services::Deps;
use crate::store::{Expect, Write};

/// The store ingests events.
pub const ENABLED: &str = "ENABLED";
/// The store was deleted and can be restored.
pub const PENDING_DELETION: &str = "PENDING_DELETION";
/// The store keeps its events but ingests no new ones.
pub const STOPPED_INGESTION: &str = "STOPPED_INGESTION";

const EXTENDABLE: &str = "EXTENDABLE_RETENTION_PRICING";
const FIXED: &str = "FIXED_RETENTION_PRICING";

/// One advanced event selector. Stored as AWS writes it, since the selector document is the
/// user's own configuration and is returned verbatim.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AdvancedEventSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    field_selectors: Vec<FieldSelector>,
}

/// One condition of a selector.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct FieldSelector {
    field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    equals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    starts_with: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ends_with: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_equals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_starts_with: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_ends_with: Option<Vec<String>>,
}

impl FieldSelector {
    fn operators(&self) -> impl Iterator<Item = &Vec<String>> {
        [
            &self.equals,
            &self.starts_with,
            &self.ends_with,
            &self.not_equals,
            &self.not_starts_with,
            &self.not_ends_with,
        ]
        .into_iter()
        .flatten()
    }
}

/// What kind of events a store holds; a store's selectors all name one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `Management`, `Data`, `NetworkActivity`: CloudTrail's own events.
    CloudTrail,
    /// `Insight`.
    Insight,
    /// `ConfigurationItem` (AWS Config).
    ConfigurationItem,
    /// `ActivityAuditLog`: events from outside AWS, the kind channels deliver to.
    ActivityAuditLog,
}

/// Fields a CloudTrail-events selector may test (CloudTrail User Guide, "Filtering data
/// events by using advanced event selectors").
const CLOUDTRAIL_FIELDS: &[&str] = &[
    "eventCategory",
    "eventSource",
    "eventName",
    "eventType",
    "readOnly",
    "resources.type",
    "resources.ARN",
    "errorCode",
    "userIdentity.arn",
    "sessionCredentialFromConsole",
    "vpcEndpointId",
];

fn invalid_selectors(message: impl Into<String>) -> CloudTrailError {
    CloudTrailError::InvalidEventSelectors(message.into())
}

/// Checks advanced event selectors and returns the family of events they select.
pub fn selectors_family(selectors: &[AdvancedEventSelector]) -> Result<Family, CloudTrailError> {
    if selectors.is_empty() {
        return Err(invalid_selectors(
            "AdvancedEventSelectors must contain at least one selector.",
        ));
    }
    let mut family = None;
    let mut values = 0usize;
    for selector in selectors {
        let categories: Vec<&FieldSelector> = selector
            .field_selectors
            .iter()
            .filter(|f| f.field == "eventCategory")
            .collect();
        let [category] = categories.as_slice() else {
            return Err(invalid_selectors(
                "Each advanced event selector must have exactly one eventCategory field selector.",
            ));
        };
        let this = match category.equals.as_deref() {
            Some([value]) => match value.as_str() {
                "Management" | "Data" | "NetworkActivity" => Family::CloudTrail,
                "Insight" => Family::Insight,
                "ConfigurationItem" => Family::ConfigurationItem,
                "ActivityAuditLog" => Family::ActivityAuditLog,
                other => {
                    return Err(invalid_selectors(format!(
                        "Invalid eventCategory value '{other}'. Valid values are Management, Data, NetworkActivity, Insight, ConfigurationItem and ActivityAuditLog."
                    )))
                }
            },
            _ => {
                return Err(invalid_selectors(
                    "The eventCategory field selector must use Equals with exactly one value.",
                ))
            }
        };
        if family.is_some_and(|family| family != this) {
            return Err(invalid_selectors(
                "All advanced event selectors of an event data store must select the same kind of events.",
            ));
        }
        family = Some(this);
        let is_data = category
            .equals
            .as_deref()
            .is_some_and(|values| values.iter().any(|v| v == "Data"));
        let mut fields = std::collections::BTreeSet::new();
        for field in &selector.field_selectors {
            if !fields.insert(field.field.as_str()) {
                return Err(invalid_selectors(format!(
                    "The field {} appears more than once in one advanced event selector.",
                    field.field
                )));
            }
            let allowed = match this {
                Family::CloudTrail => CLOUDTRAIL_FIELDS.contains(&field.field.as_str()),
                _ => field.field == "eventCategory",
            };
            if !allowed {
                return Err(invalid_selectors(format!(
                    "The field {} is not supported for this event category.",
                    field.field
                )));
            }
            let mut any = false;
            for operator in field.operators() {
                any = true;
                values += operator.len();
            }
            if !any {
                return Err(invalid_selectors(format!(
                    "The field selector for {} must have at least one operator.",
                    field.field
                )));
            }
        }
        if is_data && !fields.contains("resources.type") {
            return Err(invalid_selectors(
                "Advanced event selectors for data events must include resources.type.",
            ));
        }
    }
    if values > MAX_SELECTOR_VALUES {
        return Err(invalid_selectors(format!(
            "Advanced event selectors can have at most {MAX_SELECTOR_VALUES} values across all conditions."
        )));
    }
    family.ok_or_else(|| invalid_selectors("No advanced event selector given."))
}

/// The selectors of a store created without any: all management events, as AWS does.
fn default_selectors() -> Vec<AdvancedEventSelector> {
    vec![AdvancedEventSelector {
        name: Some("Default management events".to_owned()),
        field_selectors: vec![FieldSelector {
            field: "eventCategory".to_owned(),
            equals: Some(vec!["Management".to_owned()]),
            starts_with: None,
            ends_with: None,
            not_equals: None,
            not_starts_with: None,
            not_ends_with: None,
        }],
    }]
}

/// An event data store as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventDataStoreRecord {
    /// The UUID in the ARN.
    pub id: String,
    name: String,
    /// One of AWS's `EventDataStoreStatus` values.
    pub status: String,
    selectors: Vec<AdvancedEventSelector>,
    multi_region: bool,
    organization: bool,
    retention_period: i64,
    termination_protection: bool,
    billing_mode: String,
    #[serde(default)]
    kms_key_id: Option<String>,
    created: i64,
    updated: i64,
    /// Tags, kept inside the record so they go with the store.
    pub tags: Tags,
    /// The status to return to when a deleted store is restored.
    #[serde(default)]
    restore_status: Option<String>,
}

impl EventDataStoreRecord {
    /// The family of events the store's selectors select.
    pub fn family(&self) -> Result<Family, CloudTrailError> {
        selectors_family(&self.selectors)
    }

    /// How many days events are kept, by eventTime.
    pub fn retention_days(&self) -> i64 {
        self.retention_period
    }

    /// Whether the store is neither deleted nor stopped, so it can take channel events.
    pub fn is_active(&self) -> bool {
        self.status == ENABLED
    }

    fn to_output(&self, ctx: &RequestContext, with_tags: bool) -> EventDataStoreOutput {
        EventDataStoreOutput {
            event_data_store_arn: resource_arn(ctx, ResourceType::EventDataStore, &self.id),
            name: self.name.clone(),
            status: self.status.clone(),
            advanced_event_selectors: self.selectors.clone(),
            multi_region_enabled: self.multi_region,
            organization_enabled: self.organization,
            retention_period: self.retention_period,
            termination_protection_enabled: self.termination_protection,
            billing_mode: self.billing_mode.clone(),
            created_timestamp: EpochSeconds(self.created as f64),
            updated_timestamp: EpochSeconds(self.updated as f64),
            kms_key_id: self.kms_key_id.clone(),
            tags_list: with_tags.then(|| tags_output(&self.tags)),
        }
    }
}

/// An event data store as Create, Get, Update and RestoreEventDataStore answer it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventDataStoreOutput {
    event_data_store_arn: String,
    name: String,
    status: String,
    advanced_event_selectors: Vec<AdvancedEventSelector>,
    multi_region_enabled: bool,
    organization_enabled: bool,
    retention_period: i64,
    termination_protection_enabled: bool,
    billing_mode: String,
    created_timestamp: EpochSeconds,
    updated_timestamp: EpochSeconds,
    #[serde(skip_serializing_if = "Option::is_none")]
    kms_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags_list: Option<Vec<Tag>>,
}

/// Loads a store named by ARN or ID, refusing malformed or foreign references.
pub async fn load_store(
    deps: &Deps,
    ctx: &RequestContext,
    reference: &str,
) -> Result<(EventDataStoreRecord, i64), CloudTrailError> {
    let id = match resolve(ctx, ResourceType::EventDataStore, reference) {
        Reference::Own(id) => id,
        Reference::Invalid | Reference::Foreign => {
            return Err(CloudTrailError::EventDataStoreArnInvalid(format!(
                "The specified event data store ARN {reference} is not valid or does not map to an event data store in your account."
            )))
        }
    };
    load(deps, &key(ctx, EVENT_DATA_STORE, &id))
        .await?
        .ok_or_else(|| not_found(reference))
}

/// `EventDataStoreNotFoundException` for a reference.
pub fn not_found(reference: &str) -> CloudTrailError {
    CloudTrailError::EventDataStoreNotFound(format!(
        "The specified event data store {reference} was not found."
    ))
}

fn check_organization(enabled: Option<bool>) -> Result<(), CloudTrailError> {
    if enabled == Some(true) {
        return Err(CloudTrailError::OrganizationsNotInUse(
            "This account is not a member of an organization in AWS Organizations; Sluice does not serve AWS Organizations.".to_owned(),
        ));
    }
    Ok(())
}

fn check_retention(billing_mode: &str, retention: i64) -> Result<(), CloudTrailError> {
    if billing_mode == FIXED && retention > limits::MAX_FIXED_RETENTION_DAYS {
        return Err(CloudTrailError::InvalidParameter(format!(
            "RetentionPeriod {retention} is not valid with FIXED_RETENTION_PRICING: the maximum is {} days.",
            limits::MAX_FIXED_RETENTION_DAYS
        )));
    }
    Ok(())
}

fn already_exists(name: &str) -> CloudTrailError {
    CloudTrailError::EventDataStoreAlreadyExists(format!(
        "An event data store with the name {name} already exists."
    ))
}

/// CreateEventDataStore input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateInput {
    name: String,
    #[serde(default)]
    advanced_event_selectors: Option<Vec<AdvancedEventSelector>>,
    #[serde(default)]
    multi_region_enabled: Option<bool>,
    #[serde(default)]
    organization_enabled: Option<bool>,
    #[serde(default)]
    retention_period: Option<i64>,
    #[serde(default)]
    termination_protection_enabled: Option<bool>,
    #[serde(default)]
    tags_list: Vec<TagInput>,
    #[serde(default)]
    kms_key_id: Option<String>,
    #[serde(default)]
    start_ingestion: Option<bool>,
    #[serde(default)]
    billing_mode: Option<String>,
}

/// Creates a store: `ENABLED`, or `STOPPED_INGESTION` with `StartIngestion = false`.
pub async fn create(
    deps: &Deps,
    ctx: &RequestContext,
    input: CreateInput,
) -> Result<EventDataStoreOutput, CloudTrailError> {
    let selectors = input
        .advanced_event_selectors
        .filter(|selectors| !selectors.is_empty())
        .unwrap_or_else(default_selectors);
    selectors_family(&selectors)?;
    check_organization(input.organization_enabled)?;
    let billing_mode = input.billing_mode.unwrap_or_else(|| EXTENDABLE.to_owned());
    let retention = input.retention_period.unwrap_or(if billing_mode == FIXED {
        limits::MAX_FIXED_RETENTION_DAYS
    } else {
        limits::DEFAULT_EXTENDABLE_RETENTION_DAYS
    });
    check_retention(&billing_mode, retention)?;
    let mut tags = Tags::new();
    merge_tags(&mut tags, &input.tags_list)?;
    let name_key = key(ctx, EVENT_DATA_STORE_NAME, &input.name);
    if load::<Reservation>(deps, &name_key).await?.is_some() {
        return Err(already_exists(&input.name));
    }
    let existing: Vec<EventDataStoreRecord> = load_all(deps, ctx, EVENT_DATA_STORE).await?;
    if existing.len() >= MAX_EVENT_DATA_STORES {
        return Err(CloudTrailError::EventDataStoreMaxLimitExceeded(format!(
            "Your account has reached the maximum number of event data stores ({MAX_EVENT_DATA_STORES}) in this Region."
        )));
    }
    let now = ctx.received_at.unix_timestamp();
    let record = EventDataStoreRecord {
        id: uuid::Uuid::new_v4().to_string(),
        name: input.name,
        status: if input.start_ingestion == Some(false) {
            STOPPED_INGESTION.to_owned()
        } else {
            ENABLED.to_owned()
        },
        selectors,
        multi_region: input.multi_region_enabled.unwrap_or(true),
        organization: false,
        retention_period: retention,
        termination_protection: input.termination_protection_enabled.unwrap_or(true),
        billing_mode,
        kms_key_id: input.kms_key_id,
        created: now,
        updated: now,
        tags,
        restore_status: None,
    };
    deps.store
        .write(vec![
            put(
                name_key,
                &Reservation {
                    id: record.id.clone(),
                },
                Expect::Absent,
            )?,
            put(
                key(ctx, EVENT_DATA_STORE, &record.id),
                &record,
                Expect::Absent,
            )?,
        ])
        .await?;
    Ok(record.to_output(ctx, true))
}

/// Input of the operations that name one store.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoreInput {
    event_data_store: String,
}

/// GetEventDataStore.
pub async fn get(
    deps: &Deps,
    ctx: &RequestContext,
    input: StoreInput,
) -> Result<EventDataStoreOutput, CloudTrailError> {
    let (record, _) = load_store(deps, ctx, &input.event_data_store).await?;
    Ok(record.to_output(ctx, false))
}

/// ListEventDataStores input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    #[serde(default)]
    max_results: Option<usize>,
    #[serde(default)]
    next_token: Option<String>,
}

/// Lists the caller's stores in ID order, stores pending deletion included.
pub async fn list(
    deps: &Deps,
    ctx: &RequestContext,
    input: ListInput,
) -> Result<ListOutput, CloudTrailError> {
    let (stores, next_token) = Pages::new(deps, ctx, "cloudtrail:ListEventDataStores", "")
        .records::<EventDataStoreRecord, CloudTrailError>(
            EVENT_DATA_STORE,
            "",
            input.next_token.as_deref(),
            input.max_results.unwrap_or(1000),
        )
        .await?;
    let event_data_stores = stores
        .into_iter()
        .map(|s| EventDataStoreSummary {
            event_data_store_arn: resource_arn(ctx, ResourceType::EventDataStore, &s.id),
            name: s.name,
        })
        .collect();
    Ok(ListOutput {
        event_data_stores,
        next_token,
    })
}

/// An event data store as ListEventDataStores names it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventDataStoreSummary {
    event_data_store_arn: String,
    name: String,
}

/// ListEventDataStores output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOutput {
    event_data_stores: Vec<EventDataStoreSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// UpdateEventDataStore input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateInput {
    event_data_store: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    advanced_event_selectors: Option<Vec<AdvancedEventSelector>>,
    #[serde(default)]
    multi_region_enabled: Option<bool>,
    #[serde(default)]
    organization_enabled: Option<bool>,
    #[serde(default)]
    retention_period: Option<i64>,
    #[serde(default)]
    termination_protection_enabled: Option<bool>,
    #[serde(default)]
    kms_key_id: Option<String>,
    #[serde(default)]
    billing_mode: Option<String>,
}

/// Updates a store that is not pending deletion. The kind of events it selects cannot
/// change, and seven-year pricing cannot be chosen again once left.
pub async fn update(
    deps: &Deps,
    ctx: &RequestContext,
    input: UpdateInput,
) -> Result<EventDataStoreOutput, CloudTrailError> {
    let (mut record, version) = load_store(deps, ctx, &input.event_data_store).await?;
    if record.status == PENDING_DELETION {
        return Err(inactive(&input.event_data_store));
    }
    check_organization(input.organization_enabled)?;
    if let Some(selectors) = input.advanced_event_selectors {
        let family = selectors_family(&selectors)?;
        if family != record.family()? {
            return Err(invalid_selectors(
                "The event category of an event data store cannot be changed.",
            ));
        }
        record.selectors = selectors;
    }
    if let Some(billing_mode) = input.billing_mode {
        if billing_mode == FIXED && record.billing_mode == EXTENDABLE {
            return Err(CloudTrailError::InvalidParameter(
                "You cannot change the billing mode from EXTENDABLE_RETENTION_PRICING to FIXED_RETENTION_PRICING.".to_owned(),
            ));
        }
        record.billing_mode = billing_mode;
    }
    if let Some(retention) = input.retention_period {
        record.retention_period = retention;
    }
    check_retention(&record.billing_mode, record.retention_period)?;
    if let Some(flag) = input.multi_region_enabled {
        record.multi_region = flag;
    }
    if let Some(flag) = input.termination_protection_enabled {
        record.termination_protection = flag;
    }
    if let Some(kms) = input.kms_key_id {
        record.kms_key_id = Some(kms);
    }
    let mut writes = Vec::new();
    if let Some(name) = input.name.filter(|name| *name != record.name) {
        let new_key = key(ctx, EVENT_DATA_STORE_NAME, &name);
        if load::<Reservation>(deps, &new_key).await?.is_some() {
            return Err(already_exists(&name));
        }
        writes.push(Write::Delete {
            key: key(ctx, EVENT_DATA_STORE_NAME, &record.name),
            expect: Expect::Any,
        });
        writes.push(put(
            new_key,
            &Reservation {
                id: record.id.clone(),
            },
            Expect::Absent,
        )?);
        record.name = name;
    }
    record.updated = ctx.received_at.unix_timestamp();
    writes.push(put(
        key(ctx, EVENT_DATA_STORE, &record.id),
        &record,
        Expect::Version(version),
    )?);
    deps.store.write(writes).await?;
    Ok(record.to_output(ctx, false))
}

fn inactive(reference: &str) -> CloudTrailError {
    CloudTrailError::InactiveEventDataStore(format!(
        "The event data store {reference} is inactive (pending deletion)."
    ))
}

/// Deletes a store: it goes to `PENDING_DELETION` and can be restored. Refused while
/// termination protection is on or while a channel delivers to it.
pub async fn delete(
    deps: &Deps,
    ctx: &RequestContext,
    input: StoreInput,
) -> Result<(), CloudTrailError> {
    let (mut record, version) = load_store(deps, ctx, &input.event_data_store).await?;
    if record.status == PENDING_DELETION {
        return Err(inactive(&input.event_data_store));
    }
    if record.termination_protection {
        return Err(CloudTrailError::EventDataStoreTerminationProtected(
            format!(
                "Event data store {} cannot be deleted because termination protection is enabled.",
                input.event_data_store
            ),
        ));
    }
    let channels: Vec<super::channels::ChannelRecord> = load_all(deps, ctx, CHANNEL).await?;
    if let Some(channel) = channels.iter().find(|c| c.targets(&record.id)) {
        return Err(CloudTrailError::ChannelExistsForEds(format!(
            "Event data store {} cannot be deleted because channel {} delivers events to it.",
            input.event_data_store,
            channel.name()
        )));
    }
    record.restore_status = Some(std::mem::replace(
        &mut record.status,
        PENDING_DELETION.to_owned(),
    ));
    record.updated = ctx.received_at.unix_timestamp();
    deps.store
        .write(vec![put(
            key(ctx, EVENT_DATA_STORE, &record.id),
            &record,
            Expect::Version(version),
        )?])
        .await?;
    Ok(())
}

/// Restores a store pending deletion to the status it had.
pub async fn restore(
    deps: &Deps,
    ctx: &RequestContext,
    input: StoreInput,
) -> Result<EventDataStoreOutput, CloudTrailError> {
    let (mut record, version) = load_store(deps, ctx, &input.event_data_store).await?;
    if record.status != PENDING_DELETION {
        return Err(CloudTrailError::InvalidEventDataStoreStatus(format!(
            "Event data store {} is {}; only a store in PENDING_DELETION can be restored.",
            input.event_data_store, record.status
        )));
    }
    record.status = record
        .restore_status
        .take()
        .unwrap_or_else(|| ENABLED.to_owned());
    record.updated = ctx.received_at.unix_timestamp();
    deps.store
        .write(vec![put(
            key(ctx, EVENT_DATA_STORE, &record.id),
            &record,
            Expect::Version(version),
        )?])
        .await?;
    Ok(record.to_output(ctx, false))
}

/// StartEventDataStoreIngestion.
pub async fn start_ingestion(
    deps: &Deps,
    ctx: &RequestContext,
    input: StoreInput,
) -> Result<(), CloudTrailError> {
    set_ingestion(deps, ctx, input, true).await
}

/// StopEventDataStoreIngestion.
pub async fn stop_ingestion(
    deps: &Deps,
    ctx: &RequestContext,
    input: StoreInput,
) -> Result<(), CloudTrailError> {
    set_ingestion(deps, ctx, input, false).await
}

/// StartEventDataStoreIngestion (`start`) and StopEventDataStoreIngestion. Only stores of
/// CloudTrail events or configuration items start and stop; starting needs
/// `STOPPED_INGESTION`, stopping needs `ENABLED`.
async fn set_ingestion(
    deps: &Deps,
    ctx: &RequestContext,
    input: StoreInput,
    start: bool,
) -> Result<(), CloudTrailError> {
    let (mut record, version) = load_store(deps, ctx, &input.event_data_store).await?;
    if !matches!(
        record.family()?,
        Family::CloudTrail | Family::ConfigurationItem
    ) {
        return Err(CloudTrailError::InvalidEventDataStoreCategory(format!(
            "Ingestion can be started or stopped only on event data stores of Management, Data, NetworkActivity or ConfigurationItem events; {} is not one.",
            input.event_data_store
        )));
    }
    let (from, to) = if start {
        (STOPPED_INGESTION, ENABLED)
    } else {
        (ENABLED, STOPPED_INGESTION)
    };
    if record.status != from {
        return Err(CloudTrailError::InvalidEventDataStoreStatus(format!(
            "Event data store {} is {}; it must be {from}.",
            input.event_data_store, record.status
        )));
    }
    record.status = to.to_owned();
    record.updated = ctx.received_at.unix_timestamp();
    deps.store
        .write(vec![put(
            key(ctx, EVENT_DATA_STORE, &record.id),
            &record,
            Expect::Version(version),
        )?])
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(category: &str, extra: &[&str]) -> AdvancedEventSelector {
        let field = |name: &str, value: &str| FieldSelector {
            field: name.to_owned(),
            equals: Some(vec![value.to_owned()]),
            starts_with: None,
            ends_with: None,
            not_equals: None,
            not_starts_with: None,
            not_ends_with: None,
        };
        let mut fields = vec![field("eventCategory", category)];
        fields.extend(extra.iter().map(|name| field(name, "x")));
        AdvancedEventSelector {
            name: None,
            field_selectors: fields,
        }
    }

    #[test]
    fn selector_families() {
        assert_eq!(
            selectors_family(&[selector("ActivityAuditLog", &[])]).ok(),
            Some(Family::ActivityAuditLog)
        );
        assert_eq!(
            selectors_family(&[
                selector("Management", &[]),
                selector("Data", &["resources.type"])
            ])
            .ok(),
            Some(Family::CloudTrail)
        );
        for bad in [
            vec![selector("Nope", &[])],
            vec![selector("Data", &[])],
            vec![selector("ActivityAuditLog", &["eventName"])],
            vec![
                selector("Management", &[]),
                selector("ActivityAuditLog", &[]),
            ],
            vec![],
        ] {
            assert!(matches!(
                selectors_family(&bad),
                Err(CloudTrailError::InvalidEventSelectors(_))
            ));
        }
    }
}
