//! PutResourcePolicy, GetResourcePolicy and DeleteResourcePolicy on channels: which other
//! accounts may call `cloudtrail-data:PutAuditEvents` on a channel, usually on condition of
//! an external ID.
//!
//! The policy is kept inside the channel's record, so it goes with the channel. The rules are
//! those of the PutResourcePolicy reference: only the action `cloudtrail-data:PutAuditEvents`,
//! 1 to 20 statements, 1 to 50 principals per statement.

use serde::{Deserialize, Serialize};

use super::channels::{self, ChannelRecord};
use super::{key, put, resolve, CloudTrailError, Reference, ResourceType, CHANNEL};
use crate::arn::{is_account_id, Arn};
use crate::policy::{PolicyDocument, Principals};
use crate::protocol::RequestContext;
use crate::services::Deps;
use crate::store::Expect;

/// The one action a channel policy may name.
const PUT_AUDIT_EVENTS: &str = "cloudtrail-data:PutAuditEvents";
/// Most statements in a channel policy.
const MAX_STATEMENTS: usize = 20;
/// Most principals in one statement.
const MAX_PRINCIPALS: usize = 50;

/// Finds the channel a policy ARN names. Only channels take policies here; event data store
/// and dashboard policies are not served.
async fn load_target(
    deps: &Deps,
    ctx: &RequestContext,
    resource_arn: &str,
) -> Result<(ChannelRecord, i64), CloudTrailError> {
    let invalid = || {
        CloudTrailError::ResourceArnNotValid(format!(
            "{resource_arn} is not a valid channel ARN. The format is arn:aws:cloudtrail:REGION:ACCOUNT:channel/ID."
        ))
    };
    let arn = Arn::parse(resource_arn)
        .filter(|arn| arn.service == "cloudtrail")
        .ok_or_else(invalid)?;
    let not_found = || {
        CloudTrailError::ResourceNotFound(format!(
            "The resource {resource_arn} was not found in your account and Region."
        ))
    };
    match arn.resource.split_once('/').map(|(prefix, _)| prefix) {
        Some("channel") => {}
        Some(_) => {
            return Err(CloudTrailError::ResourceTypeNotSupported(format!(
                "Sluice serves resource policies on channels only; {resource_arn} is not a channel."
            )))
        }
        None => return Err(invalid()),
    }
    match resolve(ctx, ResourceType::Channel, resource_arn) {
        Reference::Own(_) => {}
        Reference::Foreign => return Err(not_found()),
        Reference::Invalid => return Err(invalid()),
    }
    channels::load_channel(deps, ctx, resource_arn)
        .await
        .map_err(|err| match err {
            CloudTrailError::ChannelNotFound(_) => not_found(),
            other => other,
        })
}

fn policy_invalid(message: impl Into<String>) -> CloudTrailError {
    CloudTrailError::ResourcePolicyNotValid(message.into())
}

/// Checks a channel policy: a valid IAM document within CloudTrail's channel rules.
pub fn check_policy(text: &str) -> Result<PolicyDocument, CloudTrailError> {
    let document = PolicyDocument::parse(text).map_err(|err| policy_invalid(err.to_string()))?;
    if document.statements.len() > MAX_STATEMENTS {
        return Err(policy_invalid(format!(
            "The resource policy can have at most {MAX_STATEMENTS} statements."
        )));
    }
    for statement in &document.statements {
        if statement.not_action
            || statement.actions.is_empty()
            || !statement
                .actions
                .iter()
                .all(|action| action.eq_ignore_ascii_case(PUT_AUDIT_EVENTS))
        {
            return Err(policy_invalid(format!(
                "The resource policy can contain only one action: {PUT_AUDIT_EVENTS}."
            )));
        }
        if statement.not_principal {
            return Err(policy_invalid(
                "NotPrincipal is not supported in a channel resource policy.",
            ));
        }
        let principals: Vec<&String> = match &statement.principal {
            Some(Principals::Typed(types)) => {
                if let Some((kind, _)) = types.iter().find(|(kind, _)| kind != "AWS") {
                    return Err(policy_invalid(format!(
                        "Principal type {kind} is not supported; name AWS accounts."
                    )));
                }
                types.iter().flat_map(|(_, ids)| ids).collect()
            }
            Some(Principals::Everyone) | None => Vec::new(),
        };
        if principals.is_empty() {
            return Err(policy_invalid(
                "Each statement must name at least one AWS principal.",
            ));
        }
        if principals.len() > MAX_PRINCIPALS {
            return Err(policy_invalid(format!(
                "A statement can have at most {MAX_PRINCIPALS} principals."
            )));
        }
        for principal in principals {
            let valid = is_account_id(principal)
                || Arn::parse(principal)
                    .is_some_and(|arn| arn.service == "iam" && is_account_id(arn.account));
            if !valid {
                return Err(policy_invalid(format!(
                    "Principal {principal} is neither an AWS account ID nor an IAM ARN."
                )));
            }
        }
    }
    Ok(document)
}

/// PutResourcePolicy input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutInput {
    resource_arn: String,
    resource_policy: String,
}

/// Attaches or replaces a channel's policy.
pub async fn put_resource_policy(
    deps: &Deps,
    ctx: &RequestContext,
    input: PutInput,
) -> Result<ResourcePolicyOutput, CloudTrailError> {
    let (mut record, version) = load_target(deps, ctx, &input.resource_arn).await?;
    check_policy(&input.resource_policy)?;
    record.policy = Some(input.resource_policy);
    deps.store
        .write(vec![put(
            key(ctx, CHANNEL, &record.id),
            &record,
            Expect::Version(version),
        )?])
        .await?;
    Ok(ResourcePolicyOutput {
        resource_arn: input.resource_arn,
        resource_policy: record.policy,
    })
}

/// PutResourcePolicy and GetResourcePolicy output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourcePolicyOutput {
    resource_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_policy: Option<String>,
}

/// GetResourcePolicy and DeleteResourcePolicy input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceInput {
    resource_arn: String,
}

fn no_policy(resource_arn: &str) -> CloudTrailError {
    CloudTrailError::ResourcePolicyNotFound(format!(
        "The resource {resource_arn} has no resource-based policy attached."
    ))
}

/// Returns a channel's policy as it was put.
pub async fn get_resource_policy(
    deps: &Deps,
    ctx: &RequestContext,
    input: ResourceInput,
) -> Result<ResourcePolicyOutput, CloudTrailError> {
    let (record, _) = load_target(deps, ctx, &input.resource_arn).await?;
    let policy = record
        .policy
        .ok_or_else(|| no_policy(&input.resource_arn))?;
    Ok(ResourcePolicyOutput {
        resource_arn: input.resource_arn,
        resource_policy: Some(policy),
    })
}

/// Removes a channel's policy; only the owner may then put events on it.
pub async fn delete_resource_policy(
    deps: &Deps,
    ctx: &RequestContext,
    input: ResourceInput,
) -> Result<(), CloudTrailError> {
    let (mut record, version) = load_target(deps, ctx, &input.resource_arn).await?;
    if record.policy.take().is_none() {
        return Err(no_policy(&input.resource_arn));
    }
    deps.store
        .write(vec![put(
            key(ctx, CHANNEL, &record.id),
            &record,
            Expect::Version(version),
        )?])
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_policy_rules() {
        let ok = r#"{"Version":"2012-10-17","Statement":[{"Sid":"ChannelPolicy","Effect":"Allow",
            "Principal":{"AWS":["arn:aws:iam::111122223333:root","444455556666"]},
            "Action":"cloudtrail-data:PutAuditEvents",
            "Resource":"arn:aws:cloudtrail:us-east-1:777788889999:channel/x",
            "Condition":{"StringEquals":{"cloudtrail:ExternalId":"ext"}}}]}"#;
        assert!(check_policy(ok).is_ok());
        for bad in [
            "not json",
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"cloudtrail:*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"cloudtrail-data:PutAuditEvents"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"cloudtrail-data:PutAuditEvents"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"x.amazonaws.com"},"Action":"cloudtrail-data:PutAuditEvents"}]}"#,
        ] {
            assert!(
                matches!(
                    check_policy(bad),
                    Err(CloudTrailError::ResourcePolicyNotValid(_))
                ),
                "{bad}"
            );
        }
    }
}
