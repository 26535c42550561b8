//! AWS STS, the query-protocol service every tutorial, Terraform and the CDK call first:
//! `GetCallerIdentity` answers who the signature says the caller is.

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::protocol::auth::Authenticator;
use crate::protocol::query::{escape, QueryService};
use crate::protocol::{ApiError, RequestContext};

/// STS: only `GetCallerIdentity`; Sluice issues no temporary credentials.
pub struct StsService {
    /// Knows the identity configured for each strict-mode key.
    authenticator: Authenticator,
}

impl StsService {
    /// STS answering with the identities `authenticator` was configured with.
    pub fn new(authenticator: Authenticator) -> Self {
        Self { authenticator }
    }
}

/// Why a configured identity ARN was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PrincipalError {
    /// Not `arn:PARTITION:iam::ACCOUNT:root` or `...:user/[PATH/]NAME`.
    #[error("{0:?} is not an IAM root or user ARN (arn:aws:iam::ACCOUNT:root, arn:aws:iam::ACCOUNT:user/NAME)")]
    NotIamPrincipal(String),
    /// The ARN names another account than the key's.
    #[error("{arn:?} belongs to account {found}, not to the key's account {account}")]
    OtherAccount {
        /// The ARN as configured.
        arn: String,
        /// Its account.
        found: String,
        /// The key's account.
        account: String,
    },
}

/// The ARN an account's root user has, which every emulator-mode key and every strict-mode
/// key without a configured `arn` acts as.
pub fn root_arn(account: &str) -> String {
    format!("arn:aws:iam::{account}:root")
}

/// Checks that `arn` is the root or an IAM user of `account`, the principals an access key
/// can belong to. User names and paths follow IAM's rules (`[\w+=,.@-]`, names up to 64
/// characters, paths `/.../` up to 512).
pub fn check_principal(arn: &str, account: &str) -> Result<(), PrincipalError> {
    let not_principal = || PrincipalError::NotIamPrincipal(arn.to_owned());
    let parsed = crate::arn::Arn::parse(arn).ok_or_else(not_principal)?;
    if parsed.service != "iam" || !parsed.region.is_empty() {
        return Err(not_principal());
    }
    if !crate::arn::is_account_id(parsed.account) {
        return Err(not_principal());
    }
    let valid = parsed.resource == "root"
        || parsed.resource.strip_prefix("user/").is_some_and(|rest| {
            let (path, name) = rest.rsplit_once('/').map_or(("", rest), |(p, n)| (p, n));
            let iam_char = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
            (1..=64).contains(&name.len())
                && name.chars().all(iam_char)
                && path.len() <= 510
                && path.split('/').all(|segment| segment.chars().all(iam_char))
                && !path.split('/').skip(1).any(str::is_empty)
        });
    if !valid {
        return Err(not_principal());
    }
    if parsed.account != account {
        return Err(PrincipalError::OtherAccount {
            arn: arn.to_owned(),
            found: parsed.account.to_owned(),
            account: account.to_owned(),
        });
    }
    Ok(())
}

/// The UserId GetCallerIdentity gives a principal, in AWS's forms: the account id for the
/// root; for an IAM user an `AIDA` id of 21 characters. AWS assigns user ids at creation;
/// Sluice has no IAM, so it derives one from the ARN (the first 17 characters of its SHA-256
/// in base32): the same ARN always has the same id, across restarts and machines.
pub fn user_id(arn: &str, account: &str) -> String {
    if arn.ends_with(":root") {
        return account.to_owned();
    }
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = Sha256::digest(arn.as_bytes());
    let mut id = String::from("AIDA");
    let mut bits = 0u32;
    let mut held = 0u32;
    for byte in digest {
        bits = (bits << 8) | u32::from(byte);
        held += 8;
        while held >= 5 && id.len() < 21 {
            held -= 5;
            id.push(char::from(ALPHABET[((bits >> held) & 31) as usize]));
        }
    }
    id
}

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
            "GetCallerIdentity" => Ok(self.get_caller_identity(ctx)),
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

impl StsService {
    /// Emulator keys act as their account's root user, which is what AWS answers for root
    /// keys; a strict-mode key is the identity configured for it (the root by default).
    fn get_caller_identity(&self, ctx: &RequestContext) -> String {
        let arn = self
            .authenticator
            .configured_arn(&ctx.access_key_id)
            .map_or_else(|| root_arn(&ctx.account_id), str::to_owned);
        format!(
            "<Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account>",
            escape(&arn),
            escape(&user_id(&arn, &ctx.account_id)),
            escape(&ctx.account_id)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_are_the_root_or_users_of_the_same_account() {
        let account = "123456789012";
        for good in [
            "arn:aws:iam::123456789012:root",
            "arn:aws:iam::123456789012:user/ci",
            "arn:aws:iam::123456789012:user/deploy/ci-bot+1@example.com",
            "arn:aws-cn:iam::123456789012:user/ci",
        ] {
            assert_eq!(check_principal(good, account), Ok(()), "{good}");
        }
        for bad in [
            "ci",
            "arn:aws:iam::123456789012:role/ci",
            "arn:aws:iam::123456789012:user/",
            "arn:aws:iam::123456789012:user/a//b",
            "arn:aws:iam::123456789012:user/has space",
            "arn:aws:iam:us-east-1:123456789012:user/ci",
            "arn:aws:sts::123456789012:assumed-role/r/s",
            "arn:aws:iam::12345:user/ci",
        ] {
            assert!(
                matches!(
                    check_principal(bad, account),
                    Err(PrincipalError::NotIamPrincipal(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            check_principal("arn:aws:iam::210987654321:user/ci", account),
            Err(PrincipalError::OtherAccount { .. })
        ));
    }

    #[test]
    fn user_ids_have_aws_forms_and_are_stable() {
        assert_eq!(
            user_id("arn:aws:iam::123456789012:root", "123456789012"),
            "123456789012"
        );
        let id = user_id("arn:aws:iam::123456789012:user/ci", "123456789012");
        assert_eq!(id.len(), 21);
        assert!(id.starts_with("AIDA"));
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        assert_eq!(
            id,
            user_id("arn:aws:iam::123456789012:user/ci", "123456789012")
        );
        assert_ne!(
            id,
            user_id("arn:aws:iam::123456789012:user/cd", "123456789012")
        );
    }
}
