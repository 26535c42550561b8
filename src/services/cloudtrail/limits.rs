//! CloudTrail Lake's fixed facts, kept as data: partner sources, quotas, tag rules.
//!
//! Sources (checked 2026-11):
//! - Partner source names: the table "Additional information about integration partners" in
//!   the CloudTrail User Guide, "Create an integration with an event source outside of AWS"
//!   (<https://docs.aws.amazon.com/awscloudtrail/latest/userguide/query-event-data-store-integration.html>),
//!   column "Source name (API)".
//! - Quotas: "Quotas in AWS CloudTrail"
//!   (<https://docs.aws.amazon.com/awscloudtrail/latest/userguide/WhatIsCloudTrail-Limits.html>):
//!   10 event data stores per Region in any lifecycle stage, 25 channels (integrations with
//!   sources outside AWS), none adjustable.
//! - Tags: the model's `TagKey` (128) and `TagValue` (256) lengths; 50 tags per resource from
//!   the `AddTags` documentation ("up to a limit of 50").

use super::CloudTrailError;

/// The source of a channel for the caller's own (non-partner) events.
pub const CUSTOM_SOURCE: &str = "Custom";

/// Partner sources with a CloudTrail Lake integration, by their API source name. A partner
/// source can have at most one channel; `Custom` can have many.
pub const PARTNER_SOURCES: &[&str] = &[
    "CloudStorageSecurityConsole",
    "Clumio",
    "CrowdStrike",
    "CyberArk",
    "GitHub",
    "KongGatewayEnterprise",
    "LaunchDarkly",
    "NetskopeCloudExchange",
    "IBMMulticloud",
    "MontyCloud",
    "OktaSystemLogEvents",
    "OneLogin",
    "Shoreline",
    "Snyk",
    "WizAuditLogs",
];

/// Event data stores per account and Region, counting stores pending deletion.
pub const MAX_EVENT_DATA_STORES: usize = 10;

/// Channels per account and Region.
pub const MAX_CHANNELS: usize = 25;

/// Tags per store or channel.
pub const MAX_TAGS_PER_RESOURCE: usize = 50;

/// Retention days allowed with `FIXED_RETENTION_PRICING` (seven-year pricing); the model's
/// 3653 applies to `EXTENDABLE_RETENTION_PRICING`.
pub const MAX_FIXED_RETENTION_DAYS: i64 = 2557;

/// Default retention with `EXTENDABLE_RETENTION_PRICING` (one-year extendable pricing).
pub const DEFAULT_EXTENDABLE_RETENTION_DAYS: i64 = 366;

/// Most values across all conditions of a store's advanced event selectors.
pub const MAX_SELECTOR_VALUES: usize = 500;

/// Whether `source` is one a channel can be created for.
pub fn is_known_source(source: &str) -> bool {
    source == CUSTOM_SOURCE || PARTNER_SOURCES.contains(&source)
}

/// Checks one tag as CloudTrail does: key 1..128 and value up to 256 characters, no `aws:`
/// prefix, and the character set of AWS tags (letters, digits, spaces, `_ . : / = + - @`).
pub fn check_tag(key: &str, value: Option<&str>) -> Result<(), CloudTrailError> {
    let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    let key_len = key.chars().count();
    if key_len == 0 || key_len > 128 {
        return Err(CloudTrailError::InvalidTagParameter(format!(
            "Tag key must be between 1 and 128 characters: '{key}'."
        )));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(CloudTrailError::InvalidTagParameter(format!(
            "Tag keys cannot start with the reserved prefix 'aws:': '{key}'."
        )));
    }
    if !key.chars().all(allowed) {
        return Err(CloudTrailError::InvalidTagParameter(format!(
            "Tag key contains invalid characters: '{key}'."
        )));
    }
    if let Some(value) = value {
        if value.chars().count() > 256 || !value.chars().all(allowed) {
            return Err(CloudTrailError::InvalidTagParameter(format!(
                "Tag value for key '{key}' is longer than 256 characters or contains invalid characters."
            )));
        }
    }
    Ok(())
}
