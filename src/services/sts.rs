//! AWS STS, the query-protocol service every tutorial, Terraform and the CDK call first:
//! `GetCallerIdentity` answers who the signature says the caller is.

use async_trait::async_trait;

use crate::protocol::query::{escape, QueryService};
use crate::protocol::{ApiError, RequestContext};

/// STS: only `GetCallerIdentity`; Sluice issues no temporary credentials.
pub struct StsService;

/// The signing name STS requests carry.
pub const SIGNING_NAME: &str = "sts";

#[async_trait]
impl QueryService for StsService {
    fn namespace(&self) -> &'static str {
        "https://sts.amazonaws.com/doc/2011-06-15/"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        action: &str,
        _params: &[(String, String)],
    ) -> Result<String, ApiError> {
        match action {
            "GetCallerIdentity" => Ok(get_caller_identity(ctx)),
            "AssumeRole"
            | "AssumeRoleWithWebIdentity"
            | "AssumeRoleWithSAML"
            | "GetSessionToken"
            | "GetFederationToken"
            | "DecodeAuthorizationMessage"
            | "GetAccessKeyInfo" => Err(ApiError::not_implemented("STS", action)),
            other => Err(ApiError::with_status(
                "InvalidAction",
                400,
                format!("Could not find operation {other} for version 2011-06-15"),
            )),
        }
    }
}

/// Every Sluice key acts as its account's root user, which is what AWS answers for root
/// keys: the ARN `arn:aws:iam::ACCOUNT:root` and the account id as user id.
fn get_caller_identity(ctx: &RequestContext) -> String {
    let account = escape(&ctx.account_id);
    format!(
        "<Arn>arn:aws:iam::{account}:root</Arn><UserId>{account}</UserId><Account>{account}</Account>"
    )
}
