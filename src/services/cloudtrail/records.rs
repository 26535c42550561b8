//! CloudTrail's stored records: the record kinds, and the types other modules read
//! (`cloudtrail_data` puts events through channels into stores; `lake` queries stores).
//!
//! A leaf: this module imports nothing from the rest of CloudTrail, so a module that reads a
//! record never depends on the handlers that write it. Wire output of these records stays
//! with their handlers (`channels.rs`, `event_data_stores.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::policy::StoredPolicy;

/// Record kind of event data stores, named by their ID (a UUID).
pub(crate) const EVENT_DATA_STORE: &str = "cloudtrail/event-data-store";
/// Record kind that reserves an event data store name; the body names the store's ID.
pub(crate) const EVENT_DATA_STORE_NAME: &str = "cloudtrail/event-data-store-name";
/// Record kind of channels, named by their ID (a UUID).
pub(crate) const CHANNEL: &str = "cloudtrail/channel";
/// Record kind that reserves a channel name; the body names the channel's ID.
pub(crate) const CHANNEL_NAME: &str = "cloudtrail/channel-name";
/// Record kind that reserves a partner source (one channel per partner source).
pub(crate) const CHANNEL_SOURCE: &str = "cloudtrail/channel-source";
/// Record kind of a channel's latest ingestion attempt and success, named by channel ID.
pub(crate) const CHANNEL_INGESTION: &str = "cloudtrail/channel-ingestion";

/// Record kind of the guard of an account's channels in a Region (one record, [`SET_GUARD`]).
pub(crate) const CHANNEL_SET: &str = "cloudtrail/channel-set";
/// Record kind of the guard of an account's event data stores in a Region.
pub(crate) const EVENT_DATA_STORE_SET: &str = "cloudtrail/event-data-store-set";
/// The name of a set's guard record.
pub(crate) const SET_GUARD: &str = "guard";

/// Log kind of an event data store's events, named by the store's ID.
pub const EVENTS_TABLE: &str = "cloudtrail_events";

/// The body of a name or source reservation: which resource holds it.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Reservation {
    pub(super) id: String,
}

/// The guard of a set of records (an account's channels, or its stores, in a Region). Every
/// batch that adds or removes a member, or that relies on the whole set (a quota, "no channel
/// feeds this store"), rewrites the guard at the version it read before reading the set, so
/// two such batches cannot both commit on what became stale: the loser reads again.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct SetGuard {
    /// Bumped by each rewrite.
    pub(super) generation: u64,
}

/// Tags as stored inside a store's or channel's record.
pub(super) type Tags = BTreeMap<String, String>;

/// The store ingests events.
pub const ENABLED: &str = "ENABLED";
/// The store was deleted and can be restored.
pub const PENDING_DELETION: &str = "PENDING_DELETION";
/// The store keeps its events but ingests no new ones.
pub const STOPPED_INGESTION: &str = "STOPPED_INGESTION";

/// One advanced event selector. Stored as AWS writes it, since the selector document is the
/// user's own configuration and is returned verbatim.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AdvancedEventSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) name: Option<String>,
    pub(super) field_selectors: Vec<FieldSelector>,
}

/// One condition of a selector.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct FieldSelector {
    pub(super) field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) equals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) starts_with: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) ends_with: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) not_equals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) not_starts_with: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) not_ends_with: Option<Vec<String>>,
}

impl FieldSelector {
    pub(super) fn operators(&self) -> impl Iterator<Item = &Vec<String>> {
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

/// An event data store as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventDataStoreRecord {
    /// The UUID in the ARN.
    pub id: String,
    pub(super) name: String,
    /// One of AWS's `EventDataStoreStatus` values.
    pub status: String,
    pub(super) selectors: Vec<AdvancedEventSelector>,
    pub(super) multi_region: bool,
    pub(super) organization: bool,
    pub(super) retention_period: i64,
    pub(super) termination_protection: bool,
    pub(super) billing_mode: String,
    #[serde(default)]
    pub(super) kms_key_id: Option<String>,
    pub(super) created: i64,
    pub(super) updated: i64,
    /// Tags, kept inside the record so they go with the store.
    pub tags: Tags,
    /// The status to return to when a deleted store is restored.
    #[serde(default)]
    pub(super) restore_status: Option<String>,
}

impl EventDataStoreRecord {
    /// How many days events are kept, by eventTime.
    pub fn retention_days(&self) -> i64 {
        self.retention_period
    }

    /// Whether the store is neither deleted nor stopped, so it can take channel events.
    pub fn is_active(&self) -> bool {
        self.status == ENABLED
    }
}

/// A channel as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelRecord {
    /// The UUID in the ARN.
    pub id: String,
    pub(super) name: String,
    pub(super) source: String,
    /// IDs of the destination event data stores, in request order.
    pub(super) destinations: Vec<String>,
    pub(super) created: i64,
    /// Tags, kept inside the record so they go with the channel.
    pub tags: Tags,
    /// The resource policy, as put: which other accounts may put events.
    #[serde(default)]
    pub policy: Option<StoredPolicy>,
}

impl ChannelRecord {
    /// Whether the channel delivers to the store with this ID.
    pub fn targets(&self, store_id: &str) -> bool {
        self.destinations.iter().any(|d| d == store_id)
    }

    /// The IDs of the destination event data stores.
    pub fn destination_ids(&self) -> impl Iterator<Item = &str> {
        self.destinations.iter().map(String::as_str)
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The latest ingestion attempt and success of a channel, shown by GetChannel. Kept beside
/// the channel's record (not in it), so puts never conflict with channel updates; last
/// writer wins, as "latest" means.
#[derive(Debug, Default, serde::Serialize, Deserialize)]
pub struct IngestionStatus {
    /// ID of the last event accepted or refused.
    pub attempt_event_id: Option<String>,
    /// When that was, epoch seconds.
    pub attempt_time: Option<i64>,
    /// The error code of the last refused event, if the last attempt failed.
    pub error_code: Option<String>,
    /// CloudTrail event ID of the last accepted event.
    pub success_event_id: Option<String>,
    /// When that was, epoch seconds.
    pub success_time: Option<i64>,
}
