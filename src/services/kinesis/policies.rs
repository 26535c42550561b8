//! Resource policies of streams: PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy,
//! and the one check every cross-account write into a stream goes through.
//!
//! Sluice has no IAM, so a stream of another account is writable only where the stream's own
//! resource policy allows the writer, as IAM decides for a cross-account principal: the
//! writer's side (its identity policy) is taken as granted, the resource policy must allow.
//! CloudWatch Logs asks at PutDestination time ([`super::may_write`]) and the pipeline's sink
//! asks again at every delivery, since the owner may remove the grant at any time.

use serde::{Deserialize, Serialize};

use super::streams::{load, stream_key, StreamPolicy, StreamRecord, StreamRef};
use super::KinesisError;
use crate::arn::Arn;
use crate::pipeline::Sender;
use crate::policy::{Decision, PolicyDocument, Request};
use crate::protocol::RequestContext;
use crate::services::Deps;
use crate::store::{Expect, Write};

/// The action a delivery performs: CloudWatch Logs writes each record with PutRecord, the
/// action AWS's guide grants the CloudWatch Logs role on a destination's stream.
pub const WRITE_ACTION: &str = "kinesis:PutRecord";
/// Largest policy document accepted. Kinesis's API reference states no size; this bound is
/// Sluice's (IAM's common resource-policy size of 20 KiB) so that a record stays small.
const MAX_POLICY_BYTES: usize = 20 * 1024;

/// Whether `sender` may write records into `stream`, owned by `owner`. The stream's own
/// account always may. Another account needs an Allow (and no Deny) of [`WRITE_ACTION`] in
/// the stream's policy for its role (or for the account). A role of a third account grants
/// nothing: a role can only be passed (`iam:PassRole`) within its own account.
pub(super) fn may_write(stream: &StreamRecord, owner: &str, sender: &Sender) -> bool {
    if sender.account == owner {
        return true;
    }
    let Some(policy) = &stream.policy else {
        return false;
    };
    let role = sender.role_arn.as_deref();
    if role.is_some_and(|role| Arn::parse(role).is_none_or(|arn| arn.account != sender.account)) {
        return false;
    }
    policy.document.evaluate(&Request {
        principal_account: &sender.account,
        principal_arn: role,
        action: WRITE_ACTION,
        resource: &stream.arn,
    }) == Decision::Allow
}

/// Why a writer was refused, for logs and dead letters.
pub(super) fn refusal(stream: &StreamRecord, sender: &Sender) -> String {
    format!(
        "account {} (role {}) is not allowed {WRITE_ACTION} on {}: the stream's resource policy does not grant it",
        sender.account,
        sender.role_arn.as_deref().unwrap_or("none"),
        stream.arn
    )
}

/// Input of the three operations (`StreamId` is AWS's internal routing hint; unused here).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourcePolicyInput {
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
    policy: Option<String>,
}

/// Finds the caller's own stream a policy ARN names. Only the owner manages a stream's policy:
/// AWS answers other accounts with AccessDeniedException, whether or not the stream exists.
async fn load_owned(
    deps: &Deps,
    ctx: &RequestContext,
    resource_arn: &str,
    operation: &str,
) -> Result<(StreamRecord, i64), KinesisError> {
    let arn = Arn::parse(resource_arn)
        .filter(|arn| arn.service == "kinesis")
        .ok_or_else(|| {
            KinesisError::InvalidArgument(format!("Invalid ResourceARN {resource_arn}"))
        })?;
    if arn.account != ctx.account_id {
        return Err(KinesisError::AccessDenied(format!(
            "User: arn:{}:iam::{}:root is not authorized to perform: kinesis:{operation} on resource: {resource_arn} because no resource-based policy allows the kinesis:{operation} action",
            arn.partition, ctx.account_id
        )));
    }
    if arn.resource.contains("/consumer/") {
        return Err(KinesisError::InvalidArgument(format!(
            "Sluice serves no enhanced fan-out consumers, so {resource_arn} cannot take a resource policy; put the policy on the stream."
        )));
    }
    if !arn.resource.starts_with("stream/") {
        return Err(KinesisError::InvalidArgument(format!(
            "Invalid ResourceARN {resource_arn}: it must name a data stream"
        )));
    }
    load(deps, ctx, &StreamRef::by_arn(resource_arn)).await
}

/// Checks a stream policy: a valid IAM document, within the size bound, whose statements all
/// name principals (a resource policy says *who*) and only Kinesis actions.
fn check_policy(text: &str) -> Result<PolicyDocument, KinesisError> {
    let invalid = |why: String| KinesisError::InvalidArgument(format!("Invalid policy: {why}"));
    if text.len() > MAX_POLICY_BYTES {
        return Err(invalid(format!(
            "the policy is {} bytes; the maximum is {MAX_POLICY_BYTES} bytes",
            text.len()
        )));
    }
    let document = PolicyDocument::parse(text).map_err(|err| invalid(err.to_string()))?;
    for statement in &document.statements {
        if statement.principal.is_none() {
            return Err(invalid(
                "every statement of a resource policy needs a Principal".to_owned(),
            ));
        }
        if let Some(action) = statement.actions.iter().find(|action| {
            action.as_str() != "*" && !action.to_ascii_lowercase().starts_with("kinesis:")
        }) {
            return Err(invalid(format!(
                "action '{action}' is not a Kinesis action"
            )));
        }
    }
    Ok(document)
}

/// Attaches (or replaces) a stream's resource policy.
pub async fn put_resource_policy(
    deps: &Deps,
    ctx: &RequestContext,
    input: ResourcePolicyInput,
) -> Result<(), KinesisError> {
    let (mut stream, version) =
        load_owned(deps, ctx, &input.resource_arn, "PutResourcePolicy").await?;
    // The model makes Policy required, so it is present here.
    let text = input.policy.unwrap_or_default();
    let document = check_policy(&text)?;
    stream.policy = Some(StreamPolicy { text, document });
    write(deps, ctx, &stream, version).await
}

/// Returns a stream's resource policy, or `{}` when it has none, as AWS answers.
pub async fn get_resource_policy(
    deps: &Deps,
    ctx: &RequestContext,
    input: ResourcePolicyInput,
) -> Result<GetResourcePolicyOutput, KinesisError> {
    let (stream, _) = load_owned(deps, ctx, &input.resource_arn, "GetResourcePolicy").await?;
    let text = stream
        .policy
        .map_or_else(|| "{}".to_owned(), |policy| policy.text);
    Ok(GetResourcePolicyOutput { policy: text })
}

/// GetResourcePolicy output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetResourcePolicyOutput {
    policy: String,
}

/// Removes a stream's resource policy; a stream without one is ResourceNotFoundException.
pub async fn delete_resource_policy(
    deps: &Deps,
    ctx: &RequestContext,
    input: ResourcePolicyInput,
) -> Result<(), KinesisError> {
    let (mut stream, version) =
        load_owned(deps, ctx, &input.resource_arn, "DeleteResourcePolicy").await?;
    if stream.policy.take().is_none() {
        return Err(KinesisError::ResourceNotFound(format!(
            "Stream {} under account {} has no resource policy.",
            stream.name, ctx.account_id
        )));
    }
    write(deps, ctx, &stream, version).await
}

/// Writes the stream back, conditional on the version read: a concurrent change of the same
/// stream makes this call fail with ResourceInUseException rather than be lost.
async fn write(
    deps: &Deps,
    ctx: &RequestContext,
    stream: &StreamRecord,
    version: i64,
) -> Result<(), KinesisError> {
    let body = serde_json::to_value(stream).map_err(|_| KinesisError::InternalFailure)?;
    deps.store
        .write(vec![Write::Put {
            key: stream_key(ctx, &stream.name),
            body,
            expect: Expect::Version(version),
        }])
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(policy: Option<&str>) -> StreamRecord {
        serde_json::from_value(json!({
            "name": "s",
            "arn": "arn:aws:kinesis:us-east-1:111111111111:stream/s",
            "created": 0.0,
            "mode": "PROVISIONED",
            "shards": [],
            "policy": policy.map(|text| json!({
                "text": text,
                "document": PolicyDocument::parse(text).expect("valid"),
            })),
        }))
        .expect("stream record")
    }

    fn sender(account: &str, role: Option<&str>) -> Sender {
        Sender {
            account: account.to_owned(),
            role_arn: role.map(str::to_owned),
        }
    }

    #[test]
    fn other_accounts_write_only_through_the_policy() {
        let owner = "111111111111";
        let role = "arn:aws:iam::222222222222:role/CWL";
        assert!(may_write(&stream(None), owner, &sender(owner, None)));
        assert!(!may_write(
            &stream(None),
            owner,
            &sender("222222222222", Some(role))
        ));

        let grant_role = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:role/CWL"},"Action":"kinesis:PutRecord","Resource":"arn:aws:kinesis:us-east-1:111111111111:stream/s"}}"#;
        let with_role = stream(Some(grant_role));
        assert!(may_write(
            &with_role,
            owner,
            &sender("222222222222", Some(role))
        ));
        let other_role = "arn:aws:iam::222222222222:role/Other";
        assert!(!may_write(
            &with_role,
            owner,
            &sender("222222222222", Some(other_role))
        ));
        assert!(!may_write(
            &with_role,
            owner,
            &sender("333333333333", Some("arn:aws:iam::333333333333:role/CWL"))
        ));

        let grant_account = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"kinesis:Put*","Resource":"*"}}"#;
        let with_account = stream(Some(grant_account));
        assert!(may_write(
            &with_account,
            owner,
            &sender("222222222222", Some(other_role))
        ));
        // A role of a third account cannot be passed by the sender, so it is refused even
        // where the policy trusts that third account.
        let everyone = r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"kinesis:*","Resource":"*"}}"#;
        assert!(!may_write(
            &stream(Some(everyone)),
            owner,
            &sender("222222222222", Some("arn:aws:iam::111111111111:role/Owner"))
        ));

        let read_only = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"222222222222"},"Action":"kinesis:GetRecords","Resource":"*"}}"#;
        assert!(!may_write(
            &stream(Some(read_only)),
            owner,
            &sender("222222222222", Some(role))
        ));
        let denied = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kinesis:*","Resource":"*"},{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::222222222222:role/CWL"},"Action":"kinesis:PutRecord","Resource":"*"}]}"#;
        assert!(!may_write(
            &stream(Some(denied)),
            owner,
            &sender("222222222222", Some(role))
        ));
    }

    #[test]
    fn policies_are_checked_before_they_are_stored() {
        assert!(check_policy(r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"222222222222"},"Action":["kinesis:PutRecord","kinesis:PutRecords"],"Resource":"*"}}"#).is_ok());
        for bad in [
            "{}",
            "not json",
            r#"{"Statement":{"Effect":"Allow","Action":"kinesis:PutRecord","Resource":"*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}}"#,
        ] {
            assert!(check_policy(bad).is_err(), "{bad} must be refused");
        }
        let huge = format!(
            r#"{{"Statement":{{"Sid":"{}","Effect":"Allow","Principal":"*","Action":"kinesis:*"}}}}"#,
            "x".repeat(MAX_POLICY_BYTES)
        );
        assert!(check_policy(&huge).is_err());
    }
}
