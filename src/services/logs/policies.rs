//! Account-level resource policies of CloudWatch Logs: PutResourcePolicy,
//! DescribeResourcePolicies and DeleteResourcePolicy.
//!
//! These are the policies that let AWS services (Route 53, EventBridge, ...) write into an
//! account's log groups. Sluice keeps them so that tooling that manages them works, validates
//! each document as an IAM policy, and applies AWS's quota of 10 per account and region; it
//! does not evaluate them (no AWS service writes into Sluice). Policies on one log group
//! (`resourceArn`, `expectedRevisionId`, added to the API later) are refused plainly.

use serde::{Deserialize, Serialize};

use super::{LogsError, RESOURCE_POLICY};
use crate::policy::PolicyDocument;
use crate::protocol::RequestContext;
use crate::services::kit::{load, load_all, put, Pages};
use crate::services::Deps;
use crate::store::{Expect, RecordKey, Write};

/// Resource policies per account and region (AWS's quota, not adjustable).
const MAX_POLICIES: usize = 10;
/// The default and largest page of DescribeResourcePolicies (the model's `DescribeLimit`).
const DEFAULT_LIMIT: usize = 50;

/// A resource policy as stored: the document as given, returned byte for byte.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PolicyRecord {
    name: String,
    document: String,
    /// Epoch milliseconds.
    last_updated_time: i64,
}

/// The wire form of a resource policy.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourcePolicy {
    policy_name: String,
    policy_document: String,
    last_updated_time: i64,
    policy_scope: &'static str,
}

impl From<PolicyRecord> for ResourcePolicy {
    fn from(record: PolicyRecord) -> Self {
        ResourcePolicy {
            policy_name: record.name,
            policy_document: record.document,
            last_updated_time: record.last_updated_time,
            policy_scope: "ACCOUNT",
        }
    }
}

/// PutResourcePolicy input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutResourcePolicyInput {
    policy_name: Option<String>,
    policy_document: Option<String>,
    resource_arn: Option<String>,
}

/// PutResourcePolicy output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutResourcePolicyOutput {
    resource_policy: ResourcePolicy,
}

/// DescribeResourcePolicies input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeResourcePoliciesInput {
    next_token: Option<String>,
    limit: Option<usize>,
    resource_arn: Option<String>,
    policy_scope: Option<String>,
}

/// DescribeResourcePolicies output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeResourcePoliciesOutput {
    resource_policies: Vec<ResourcePolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// DeleteResourcePolicy input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteResourcePolicyInput {
    policy_name: Option<String>,
    resource_arn: Option<String>,
}

fn key(ctx: &RequestContext, name: &str) -> RecordKey {
    RecordKey::new(RESOURCE_POLICY, &ctx.account_id, &ctx.region, name)
}

fn refuse_resource_scope(resource_arn: Option<&String>) -> Result<(), LogsError> {
    match resource_arn {
        Some(arn) => Err(LogsError::InvalidParameter(format!(
            "Sluice keeps account-level resource policies only; a policy on the resource {arn} is not supported."
        ))),
        None => Ok(()),
    }
}

fn policy_name(name: Option<String>) -> Result<String, LogsError> {
    name.filter(|name| !name.is_empty()).ok_or_else(|| {
        LogsError::InvalidParameter(
            "policyName is required for an account-level resource policy.".to_owned(),
        )
    })
}

/// Creates or replaces the policy of that name; a new name beyond the tenth is refused.
pub async fn put_resource_policy(
    deps: &Deps,
    ctx: &RequestContext,
    input: PutResourcePolicyInput,
) -> Result<PutResourcePolicyOutput, LogsError> {
    refuse_resource_scope(input.resource_arn.as_ref())?;
    let name = policy_name(input.policy_name)?;
    let document = input
        .policy_document
        .ok_or_else(|| LogsError::InvalidParameter("policyDocument is required.".to_owned()))?;
    PolicyDocument::parse(&document)
        .map_err(|err| LogsError::InvalidParameter(format!("Invalid policy document: {err}")))?;
    let key = key(ctx, &name);
    let expect = match load::<PolicyRecord>(deps, &key).await? {
        Some((_, version)) => Expect::Version(version),
        None => {
            let count = load_all::<PolicyRecord>(deps, ctx, RESOURCE_POLICY, "")
                .await?
                .len();
            if count >= MAX_POLICIES {
                return Err(LogsError::LimitExceeded(
                    "Resource limit exceeded.".to_owned(),
                ));
            }
            Expect::Absent
        }
    };
    let record = PolicyRecord {
        name,
        document,
        last_updated_time: ctx.received_at_millis(),
    };
    deps.store.write(vec![put(key, &record, expect)?]).await?;
    Ok(PutResourcePolicyOutput {
        resource_policy: record.into(),
    })
}

/// Lists the account's policies in name order, a page at a time.
pub async fn describe_resource_policies(
    deps: &Deps,
    ctx: &RequestContext,
    input: DescribeResourcePoliciesInput,
) -> Result<DescribeResourcePoliciesOutput, LogsError> {
    refuse_resource_scope(input.resource_arn.as_ref())?;
    if input.policy_scope.as_deref() == Some("RESOURCE") {
        // Sluice holds no resource-scoped policies.
        return Ok(DescribeResourcePoliciesOutput {
            resource_policies: Vec::new(),
            next_token: None,
        });
    }
    let limit = input.limit.unwrap_or(DEFAULT_LIMIT);
    let (policies, next_token) = Pages::new(deps, ctx, "logs:DescribeResourcePolicies", "")
        .records::<PolicyRecord, LogsError>(RESOURCE_POLICY, "", input.next_token.as_deref(), limit)
        .await?;
    Ok(DescribeResourcePoliciesOutput {
        resource_policies: policies.into_iter().map(ResourcePolicy::from).collect(),
        next_token,
    })
}

/// Deletes a policy by name.
pub async fn delete_resource_policy(
    deps: &Deps,
    ctx: &RequestContext,
    input: DeleteResourcePolicyInput,
) -> Result<(), LogsError> {
    refuse_resource_scope(input.resource_arn.as_ref())?;
    let name = policy_name(input.policy_name)?;
    let key = key(ctx, &name);
    let (_, version) = load::<PolicyRecord>(deps, &key).await?.ok_or_else(|| {
        LogsError::ResourceNotFound(format!("Policy with name [{name}] does not exist."))
    })?;
    deps.store
        .write(vec![Write::Delete {
            key,
            expect: Expect::Version(version),
        }])
        .await?;
    Ok(())
}
