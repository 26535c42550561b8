//! Destinations: the cross-account entry points that wrap a Kinesis (or Firehose) stream.
//!
//! A destination is one record in the store. Updates are conditional on the version read, so
//! two concurrent writers cannot silently overwrite each other: the later one gets
//! `OperationAbortedException`, as AWS answers conflicting changes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{LogsError, DESTINATION};
use crate::arn::{self, Arn};
use crate::pipeline::{Sender, StreamTarget, Target};
use crate::policy::StoredPolicy;
use crate::protocol::RequestContext;
use crate::services::kit::{load, put, Encoded, Pages};
use crate::services::Deps;
use crate::store::{Expect, RecordKey, Write};

/// The default and largest page of DescribeDestinations.
const DEFAULT_LIMIT: usize = 50;
/// The documented size limit of an access policy ("This can be up to 5120 bytes").
const MAX_POLICY_BYTES: usize = 5120;

/// A destination as stored. Not a wire shape: the outputs are built from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct DestinationRecord {
    pub name: String,
    pub arn: String,
    pub target_arn: String,
    pub role_arn: String,
    /// The access policy as put, parsed for evaluating subscription requests. (Records from
    /// before policies were stored one way also hold a `policy` member, now ignored.)
    pub access_policy: Option<StoredPolicy>,
    /// Epoch milliseconds.
    pub creation_time: i64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// The wire form of a destination.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    destination_name: String,
    target_arn: String,
    role_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_policy: Option<String>,
    arn: String,
    creation_time: i64,
}

impl From<&DestinationRecord> for Destination {
    fn from(record: &DestinationRecord) -> Self {
        Destination {
            destination_name: record.name.clone(),
            target_arn: record.target_arn.clone(),
            role_arn: record.role_arn.clone(),
            access_policy: record
                .access_policy
                .as_ref()
                .map(|policy| policy.text().to_owned()),
            arn: record.arn.clone(),
            creation_time: record.creation_time,
        }
    }
}

/// PutDestination input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutDestinationInput {
    destination_name: String,
    target_arn: String,
    role_arn: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// PutDestination output.
#[derive(Debug, Serialize)]
pub struct PutDestinationOutput {
    destination: Destination,
}

/// DescribeDestinations input. The prefix member is capitalised in the model, unlike the rest.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeDestinationsInput {
    #[serde(rename = "DestinationNamePrefix")]
    destination_name_prefix: Option<String>,
    next_token: Option<String>,
    limit: Option<usize>,
}

/// DescribeDestinations output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeDestinationsOutput {
    destinations: Vec<Encoded<Destination>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// DeleteDestination input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteDestinationInput {
    destination_name: String,
}

/// PutDestinationPolicy input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutDestinationPolicyInput {
    destination_name: String,
    access_policy: String,
    #[serde(default)]
    force_update: bool,
}

/// The ARN of a destination.
pub(super) fn destination_arn(region: &str, account: &str, name: &str) -> String {
    format!(
        "arn:{}:logs:{region}:{account}:destination:{name}",
        arn::partition(region)
    )
}

fn not_found() -> LogsError {
    LogsError::ResourceNotFound("The specified destination does not exist.".to_owned())
}

/// A destination target must be a Kinesis data stream or a Firehose delivery stream. It may be
/// in any region: AWS requires only the subscribed log groups to share the destination's
/// region, and delivery goes to the region the target ARN names.
fn check_target_arn(target_arn: &str) -> Result<(), LogsError> {
    let invalid =
        |why: &str| LogsError::InvalidParameter(format!("Invalid targetArn '{target_arn}': {why}"));
    let parsed = Arn::parse(target_arn).ok_or_else(|| invalid("not a valid ARN"))?;
    let resource_ok = match parsed.service {
        "kinesis" => parsed
            .resource
            .strip_prefix("stream/")
            .is_some_and(|name| !name.is_empty()),
        "firehose" => parsed
            .resource
            .strip_prefix("deliverystream/")
            .is_some_and(|name| !name.is_empty()),
        _ => false,
    };
    if !resource_ok {
        return Err(invalid(
            "the target must be a Kinesis data stream or a Firehose delivery stream",
        ));
    }
    if !arn::is_account_id(parsed.account) {
        return Err(invalid("the account id is not valid"));
    }
    Ok(())
}

/// AWS sends a test message to the target with the destination's role before it accepts a
/// destination, so a target that does not exist (or is not ACTIVE, which Sluice's streams
/// are from creation) is refused. A target in another account must also let the role write:
/// the stream's resource policy must allow it `kinesis:PutRecord`. A Firehose target must be
/// an ACTIVE delivery stream of the destination's own account.
async fn check_target_writable(
    deps: &Deps,
    ctx: &RequestContext,
    target_arn: &str,
    role_arn: &str,
) -> Result<(), LogsError> {
    // check_target_arn has accepted the ARN, so it parses and names a stream.
    let Some(parsed) = Arn::parse(target_arn) else {
        return Ok(());
    };
    let sender = Sender {
        account: ctx.account_id.clone(),
        role_arn: Some(role_arn.to_owned()),
    };
    let stream = |stream: &str| StreamTarget {
        account: parsed.account.to_owned(),
        region: parsed.region.to_owned(),
        stream: stream.to_owned(),
    };
    let target = match (parsed.service, parsed.resource.strip_prefix("stream/")) {
        ("kinesis", Some(name)) => Some(Target::KinesisStream(stream(name))),
        // Same account only (the sink checks it): a Firehose stream has no resource policy
        // to grant another account, so AWS delivers across accounts only through a
        // destination in the stream's own account.
        ("firehose", _) => parsed
            .resource
            .strip_prefix("deliverystream/")
            .map(|name| Target::FirehoseStream(stream(name))),
        _ => None,
    };
    let writable = match &target {
        Some(target) => target_writable(deps, target, &sender).await?,
        None => false,
    };
    if writable {
        return Ok(());
    }
    tracing::warn!(
        account = %ctx.account_id,
        role = role_arn,
        target = target_arn,
        "PutDestination refused: the target does not exist, or belongs to another account whose policy does not allow this role."
    );
    Err(LogsError::InvalidParameter(
        if parsed.service == "kinesis" {
            "Could not deliver test message to specified Kinesis stream. Check if the given kinesis stream is in ACTIVE state.".to_owned()
        } else {
            "Could not deliver test message to specified Firehose stream. Check if the given Firehose stream is in ACTIVE state.".to_owned()
        },
    ))
}

/// Asks the pipeline's sinks, which own the targets, whether `sender` could write into
/// `target` now: CloudWatch Logs never reads another service's records.
pub(super) async fn target_writable(
    deps: &Deps,
    target: &Target,
    sender: &Sender,
) -> Result<bool, LogsError> {
    deps.sinks.writable(target, sender).await.map_err(|err| {
        tracing::error!(error = %err, "CloudWatch Logs cannot check a delivery target.");
        LogsError::ServiceUnavailable
    })
}

pub(super) fn check_role_arn(role_arn: &str) -> Result<(), LogsError> {
    let valid = Arn::parse(role_arn).is_some_and(|parsed| {
        parsed.service == "iam"
            && parsed.region.is_empty()
            && arn::is_account_id(parsed.account)
            && parsed
                .resource
                .strip_prefix("role/")
                .is_some_and(|name| !name.is_empty())
    });
    if valid {
        Ok(())
    } else {
        Err(LogsError::InvalidParameter(format!(
            "Invalid roleArn '{role_arn}': it must be the ARN of an IAM role"
        )))
    }
}

/// Tags that the model's patterns allow but AWS refuses: the `aws:` prefix is reserved.
pub(super) fn check_tag_keys<'a>(
    keys: impl IntoIterator<Item = &'a String>,
) -> Result<(), LogsError> {
    for key in keys {
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(LogsError::InvalidParameter(format!(
                "Tag key '{key}' is invalid: the 'aws:' prefix is reserved for AWS use"
            )));
        }
    }
    Ok(())
}

fn key(ctx: &RequestContext, name: &str) -> RecordKey {
    RecordKey::new(DESTINATION, &ctx.account_id, &ctx.region, name)
}

/// Creates a destination, or updates its target and role in place (same ARN, same
/// `creationTime`, same policy and tags). Tags are applied only on create, as AWS does.
pub async fn put_destination(
    deps: &Deps,
    ctx: &RequestContext,
    input: PutDestinationInput,
) -> Result<PutDestinationOutput, LogsError> {
    check_target_arn(&input.target_arn)?;
    check_role_arn(&input.role_arn)?;
    check_tag_keys(input.tags.keys())?;
    check_target_writable(deps, ctx, &input.target_arn, &input.role_arn).await?;
    let key = key(ctx, &input.destination_name);
    let (record, expect) = match load::<DestinationRecord>(deps, &key).await? {
        Some((mut existing, version)) => {
            existing.target_arn = input.target_arn;
            existing.role_arn = input.role_arn;
            (existing, Expect::Version(version))
        }
        None => (
            DestinationRecord {
                arn: destination_arn(&ctx.region, &ctx.account_id, &input.destination_name),
                name: input.destination_name,
                target_arn: input.target_arn,
                role_arn: input.role_arn,
                access_policy: None,
                creation_time: ctx.received_at_millis(),
                tags: input.tags,
            },
            Expect::Absent,
        ),
    };
    deps.store.write(vec![put(key, &record, expect)?]).await?;
    Ok(PutDestinationOutput {
        destination: Destination::from(&record),
    })
}

/// Lists destinations in ASCII order of name, filtered by prefix, a page at a time.
pub async fn describe_destinations(
    deps: &Deps,
    ctx: &RequestContext,
    input: DescribeDestinationsInput,
) -> Result<DescribeDestinationsOutput, LogsError> {
    let limit = input.limit.unwrap_or(DEFAULT_LIMIT);
    let prefix = input.destination_name_prefix.unwrap_or_default();
    let pages = Pages::new(deps, ctx, "logs:DescribeDestinations", &prefix);
    let after = pages.after::<LogsError>(input.next_token.as_deref())?;
    let (destinations, next_token) = pages
        .encoded_after::<DestinationRecord, _, LogsError>(
            DESTINATION,
            &prefix,
            after.as_deref(),
            limit,
            |record| Destination::from(&record),
        )
        .await?;
    Ok(DescribeDestinationsOutput {
        destinations,
        next_token,
    })
}

/// Deletes a destination.
pub async fn delete_destination(
    deps: &Deps,
    ctx: &RequestContext,
    input: DeleteDestinationInput,
) -> Result<(), LogsError> {
    let key = key(ctx, &input.destination_name);
    let (_, version) = load::<DestinationRecord>(deps, &key)
        .await?
        .ok_or_else(not_found)?;
    deps.store
        .write(vec![Write::Delete {
            key,
            expect: Expect::Version(version),
        }])
        .await?;
    Ok(())
}

/// Sets the access policy that decides which accounts may subscribe to the destination.
///
/// `forceUpdate` guards one dangerous change, as AWS describes it: replacing a policy that
/// grants individual accounts by one that grants an organization (`aws:PrincipalOrgID`) can
/// break the existing subscriptions, so it must be affirmed with `forceUpdate: true`.
pub async fn put_destination_policy(
    deps: &Deps,
    ctx: &RequestContext,
    input: PutDestinationPolicyInput,
) -> Result<(), LogsError> {
    if input.access_policy.len() > MAX_POLICY_BYTES {
        return Err(LogsError::InvalidParameter(format!(
            "The access policy is {} bytes; the maximum is {MAX_POLICY_BYTES} bytes.",
            input.access_policy.len()
        )));
    }
    let policy = StoredPolicy::parse(input.access_policy)
        .map_err(|err| LogsError::InvalidParameter(format!("Invalid access policy: {err}")))?;
    // AWS treats a destination policy as a resource policy whose principals are accounts or
    // organizations, so the principal must be present.
    if policy
        .document()
        .statements
        .iter()
        .any(|s| s.principal.is_none())
    {
        return Err(LogsError::InvalidParameter(
            "Invalid access policy: every statement of a destination policy needs a Principal"
                .to_owned(),
        ));
    }
    let key = key(ctx, &input.destination_name);
    // The model lists no ResourceNotFoundException for this operation, but AWS answers a
    // missing destination with it; the error shape exists in the model, so clients map it.
    let (mut record, version) = load::<DestinationRecord>(deps, &key)
        .await?
        .ok_or_else(not_found)?;
    if !input.force_update
        && grants_accounts(record.access_policy.as_ref())
        && grants_organization(&policy)
    {
        return Err(LogsError::InvalidParameter(
            "Changing the destination policy from account principals to an organization (aws:PrincipalOrgID) can break existing subscription filters; update them first and set forceUpdate to true.".to_owned(),
        ));
    }
    record.access_policy = Some(policy);
    deps.store
        .write(vec![put(key, &record, Expect::Version(version))?])
        .await?;
    Ok(())
}

fn grants_accounts(policy: Option<&StoredPolicy>) -> bool {
    policy.is_some_and(|policy| {
        policy
            .document()
            .statements
            .iter()
            .filter_map(|s| s.principal.as_ref())
            .any(|p| !p.aws_accounts().is_empty())
    })
}

/// Whether a destination policy grants through an organization (`aws:PrincipalOrgID` or
/// `aws:PrincipalOrgPaths`), where AWS takes the subscriber's role.
pub(super) fn grants_organization(policy: &StoredPolicy) -> bool {
    policy.document().statements.iter().any(|s| {
        !s.condition_values("aws:PrincipalOrgID").is_empty()
            || !s.condition_values("aws:PrincipalOrgPaths").is_empty()
    })
}
