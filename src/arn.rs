//! Amazon Resource Names: building them with the right partition, and taking them apart.

/// The partition a region belongs to (`aws`, `aws-cn`, `aws-us-gov`).
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The six parts of an ARN. The resource part may itself contain `:` and `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn<'a> {
    /// `aws`, `aws-cn`, ...
    pub partition: &'a str,
    /// `logs`, `kinesis`, `iam`, ...
    pub service: &'a str,
    /// Empty for global services such as IAM.
    pub region: &'a str,
    /// The owning account; empty for some resources.
    pub account: &'a str,
    /// Everything after the account.
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// Splits `arn:partition:service:region:account:resource`; `None` if it is not an ARN.
    pub fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        let arn = Arn {
            partition: parts.next()?,
            service: parts.next()?,
            region: parts.next()?,
            account: parts.next()?,
            resource: parts.next()?,
        };
        let partition_ok = matches!(
            arn.partition,
            "aws" | "aws-cn" | "aws-us-gov" | "aws-iso" | "aws-iso-b"
        );
        (partition_ok && !arn.service.is_empty() && !arn.resource.is_empty()).then_some(arn)
    }
}

/// Whether `text` is a 12-digit AWS account id.
pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let arn = Arn::parse("arn:aws:logs:us-east-1:123456789012:destination:a:b").expect("arn");
        assert_eq!(
            (arn.service, arn.region, arn.account, arn.resource),
            ("logs", "us-east-1", "123456789012", "destination:a:b")
        );
        assert_eq!(
            Arn::parse("arn:aws:iam::123456789012:role/r").map(|a| a.region),
            Some("")
        );
        for bad in [
            "",
            "arn",
            "arn:aws:logs",
            "nope:aws:logs:r:a:x",
            "arn:foo:logs:r:a:x",
            "arn:aws::r:a:x",
        ] {
            assert!(Arn::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition("eu-west-1"), "aws");
        assert!(
            is_account_id("000000000000")
                && !is_account_id("12345")
                && !is_account_id("12345678901a")
        );
    }
}
