//! IAM policy documents: the access policies of CloudWatch Logs destinations and the resource
//! policies of CloudTrail channels and Kinesis streams.
//!
//! This module parses and validates a document into a normalised [`PolicyDocument`]. Evaluation
//! (explicit deny wins; principals, actions, resources, conditions) builds on this form.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The policy language versions IAM accepts.
pub const VERSIONS: [&str; 2] = ["2012-10-17", "2008-10-17"];

/// A validated policy document, every "one or many" member normalised to a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDocument {
    /// `2012-10-17` or `2008-10-17` (IAM's default when absent).
    pub version: String,
    /// The statements in document order.
    pub statements: Vec<Statement>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// Optional statement id.
    pub sid: Option<String>,
    /// Allow or Deny.
    pub effect: Effect,
    /// `Principal` or `NotPrincipal`.
    pub principal: Option<Principals>,
    /// Whether the principals are negated (`NotPrincipal`).
    pub not_principal: bool,
    /// `Action` or `NotAction` patterns.
    pub actions: Vec<String>,
    /// Whether the actions are negated (`NotAction`).
    pub not_action: bool,
    /// `Resource` or `NotResource` patterns; empty when the policy names none.
    pub resources: Vec<String>,
    /// Whether the resources are negated (`NotResource`).
    pub not_resource: bool,
    /// Conditions, as given: operator -> key -> values.
    pub condition: Option<Value>,
}

/// The effect of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// Grants.
    Allow,
    /// Refuses, and wins over any Allow.
    Deny,
}

/// The principals of a statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Principals {
    /// `"Principal": "*"`: everyone.
    Everyone,
    /// `"Principal": {"AWS": [...], "Service": [...], ...}`, by principal type.
    Typed(Vec<(String, Vec<String>)>),
}

/// Why a document is not a valid policy. The messages name the offending part.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// Not JSON, or not a JSON object.
    #[error("policy is not a valid JSON object: {0}")]
    NotJson(String),
    /// A structural problem.
    #[error("{0}")]
    Invalid(String),
}

/// A policy as a resource keeps it: the text exactly as put (what the Get operations return,
/// byte for byte) and its parsed document (what evaluation reads). Every service stores its
/// policies this one way: serialized as the text alone, parsed again when a record is read,
/// so no parsed form is persisted and a change to [`PolicyDocument`] needs no migration.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPolicy {
    text: String,
    document: PolicyDocument,
}

impl StoredPolicy {
    /// Parses and validates a policy as put. Services check their own rules on
    /// [`StoredPolicy::document`] before they store it.
    pub fn parse(text: impl Into<String>) -> Result<Self, PolicyError> {
        let text = text.into();
        let document = PolicyDocument::parse(&text)?;
        Ok(Self { text, document })
    }

    /// The policy exactly as it was put.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The parsed policy.
    pub fn document(&self) -> &PolicyDocument {
        &self.document
    }

    /// Evaluates the policy for a request (see [`PolicyDocument::evaluate`]).
    pub fn evaluate(&self, request: &Request) -> Decision {
        self.document.evaluate(request)
    }
}

impl Serialize for StoredPolicy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for StoredPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The text; or the `{text, document}` object Kinesis stream records held before
        /// policies were stored one way, of which the text is kept.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Text(String),
            WithDocument { text: String },
        }
        let text = match Stored::deserialize(deserializer)? {
            Stored::Text(text) | Stored::WithDocument { text } => text,
        };
        StoredPolicy::parse(text).map_err(serde::de::Error::custom)
    }
}

/// The outcome of evaluating a policy for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A statement allows it and none denies it.
    Allow,
    /// A statement denies it: this wins over any Allow.
    ExplicitDeny,
    /// No statement applies.
    ImplicitDeny,
}

/// Who asks, to do what, on what: the request a resource policy is evaluated against.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The calling account (Sluice's principals are accounts: one access key, one account).
    pub principal_account: &'a str,
    /// The calling principal's ARN when it is narrower than the account: the IAM role a
    /// delivery writes as. `None` for a request made with an account's access key.
    pub principal_arn: Option<&'a str>,
    /// `service:Action`, e.g. `logs:PutSubscriptionFilter`.
    pub action: &'a str,
    /// The resource's ARN.
    pub resource: &'a str,
    /// The request's other condition keys (`cloudtrail:ExternalId`, ...), name and value;
    /// a key not listed is absent from the request.
    pub keys: &'a [(&'a str, &'a str)],
}

impl<'a> Request<'a> {
    /// The value of a condition key (names are case-insensitive, as in IAM), or `None` when
    /// the request has no such key.
    fn value(&self, key: &str) -> Option<&'a str> {
        if key.eq_ignore_ascii_case("aws:PrincipalAccount") {
            Some(self.principal_account)
        } else if key.eq_ignore_ascii_case("aws:PrincipalArn") {
            self.principal_arn
        } else {
            self.keys
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(key))
                .map(|(_, value)| *value)
        }
    }
}

/// IAM's condition operators that Sluice's condition keys (strings and ARNs) can meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    ArnLike,
    ArnNotLike,
    Bool,
}

impl Operator {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "StringEquals" => Operator::StringEquals,
            "StringNotEquals" => Operator::StringNotEquals,
            "StringEqualsIgnoreCase" => Operator::StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => Operator::StringNotEqualsIgnoreCase,
            "StringLike" => Operator::StringLike,
            "StringNotLike" => Operator::StringNotLike,
            // IAM matches ArnEquals exactly as ArnLike.
            "ArnEquals" | "ArnLike" => Operator::ArnLike,
            "ArnNotEquals" | "ArnNotLike" => Operator::ArnNotLike,
            "Bool" => Operator::Bool,
            _ => return None,
        })
    }

    /// Whether the operator requires the key *not* to match; with the key absent such a
    /// condition is true in IAM.
    fn negated(self) -> bool {
        matches!(
            self,
            Operator::StringNotEquals
                | Operator::StringNotEqualsIgnoreCase
                | Operator::StringNotLike
                | Operator::ArnNotLike
        )
    }

    /// Whether a present value matches: any one of the listed values will do (a negated
    /// operator: none may match).
    fn matches(self, actual: &str, expected: &[String]) -> bool {
        let any = |test: &dyn Fn(&str) -> bool| expected.iter().any(|e| test(e));
        match self {
            Operator::StringEquals => any(&|e| e == actual),
            Operator::StringNotEquals => !any(&|e| e == actual),
            Operator::StringEqualsIgnoreCase => any(&|e| equal_ignoring_case(e, actual)),
            Operator::StringNotEqualsIgnoreCase => !any(&|e| equal_ignoring_case(e, actual)),
            Operator::StringLike => any(&|e| glob(e, actual)),
            Operator::StringNotLike => !any(&|e| glob(e, actual)),
            Operator::ArnLike => any(&|e| arn_like(e, actual)),
            Operator::ArnNotLike => !any(&|e| arn_like(e, actual)),
            Operator::Bool => any(&|e| e.eq_ignore_ascii_case(actual)),
        }
    }
}

/// Whether one condition (an operator on one key) holds, as IAM documents it:
/// - a key absent from the request matches nothing, so the condition is false, except for
///   negated operators (`StringNotEquals`, `StringNotLike`, `ArnNotLike` ...), which are then
///   true, and `...IfExists` forms, which are then true;
/// - `Null` tests presence: `true` holds when the key is absent, `false` when present;
/// - `ForAnyValue:` / `ForAllValues:` on Sluice's single-valued keys test the one value; an
///   absent key makes `ForAllValues` true and `ForAnyValue` false;
/// - string comparisons are case-sensitive except the `IgnoreCase` forms; `StringLike` and
///   `ArnLike` take `*` and `?`, ARNs component by component;
/// - an operator Sluice does not evaluate (numeric, date, IP address, binary) never holds,
///   so its statement does not apply, whether it allows or denies.
fn condition_holds(operator: &str, actual: Option<&str>, expected: &[String]) -> bool {
    let (set, operator) = match operator.split_once(':') {
        Some((set @ ("ForAnyValue" | "ForAllValues"), inner)) => (Some(set), inner),
        _ => (None, operator),
    };
    if operator == "Null" {
        let wanted = if actual.is_none() { "true" } else { "false" };
        return expected.iter().any(|e| e.eq_ignore_ascii_case(wanted));
    }
    let (base, if_exists) = match operator.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (operator, false),
    };
    let Some(parsed) = Operator::parse(base) else {
        return false;
    };
    match actual {
        Some(actual) => parsed.matches(actual, expected),
        None => match set {
            Some("ForAllValues") => true,
            Some(_) => false,
            None => if_exists || parsed.negated(),
        },
    }
}

/// A condition value as text: IAM compares `true` and `10` as the strings they spell.
fn condition_value(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Case-insensitive string equality (`StringEqualsIgnoreCase`).
fn equal_ignoring_case(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// `ArnLike`: each of the six colon-separated parts matched on its own, with wildcards.
fn arn_like(pattern: &str, arn: &str) -> bool {
    let pattern: Vec<&str> = pattern.splitn(6, ':').collect();
    let arn: Vec<&str> = arn.splitn(6, ':').collect();
    pattern.len() == 6 && arn.len() == 6 && pattern.iter().zip(&arn).all(|(p, a)| glob(p, a))
}

impl PolicyDocument {
    /// Evaluates the policy as IAM evaluates a resource policy: an explicit Deny wins, then any
    /// Allow, else the request is implicitly denied.
    ///
    /// Conditions are evaluated with IAM's operators (see [`condition_holds`]) on the keys the
    /// request carries: `aws:PrincipalAccount`, `aws:PrincipalArn` for a named principal, and
    /// [`Request::keys`]. Every other key is absent in Sluice (it has no AWS Organizations, so
    /// `aws:PrincipalOrgID` and `aws:PrincipalOrgPaths` never match).
    pub fn evaluate(&self, request: &Request) -> Decision {
        let applies = |statement: &&Statement| statement.applies_to(request);
        if self
            .statements
            .iter()
            .filter(|s| s.effect == Effect::Deny)
            .any(|s| applies(&s))
        {
            Decision::ExplicitDeny
        } else if self
            .statements
            .iter()
            .filter(|s| s.effect == Effect::Allow)
            .any(|s| applies(&s))
        {
            Decision::Allow
        } else {
            Decision::ImplicitDeny
        }
    }

    /// Parses and validates a policy document.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let value: Value =
            serde_json::from_str(text).map_err(|err| PolicyError::NotJson(err.to_string()))?;
        let Value::Object(object) = value else {
            return Err(PolicyError::NotJson(
                "the document is not an object".to_owned(),
            ));
        };
        for key in object.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(PolicyError::Invalid(format!(
                    "Policy has an unknown element '{key}'"
                )));
            }
        }
        let version = match object.get("Version") {
            None => "2008-10-17".to_owned(),
            Some(Value::String(v)) if VERSIONS.contains(&v.as_str()) => v.clone(),
            Some(other) => {
                return Err(PolicyError::Invalid(format!(
                    "Policy has an invalid Version {other}"
                )))
            }
        };
        let statements = match object.get("Statement") {
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(Statement::parse)
                .collect::<Result<_, _>>()?,
            Some(item @ Value::Object(_)) => vec![Statement::parse(item)?],
            _ => {
                return Err(PolicyError::Invalid(
                    "Policy must contain at least one Statement".to_owned(),
                ))
            }
        };
        Ok(Self {
            version,
            statements,
        })
    }
}

impl Statement {
    fn parse(value: &Value) -> Result<Self, PolicyError> {
        let Value::Object(object) = value else {
            return Err(PolicyError::Invalid(
                "Each Statement must be an object".to_owned(),
            ));
        };
        for key in object.keys() {
            if !matches!(
                key.as_str(),
                "Sid"
                    | "Effect"
                    | "Principal"
                    | "NotPrincipal"
                    | "Action"
                    | "NotAction"
                    | "Resource"
                    | "NotResource"
                    | "Condition"
            ) {
                return Err(PolicyError::Invalid(format!(
                    "Statement has an unknown element '{key}'"
                )));
            }
        }
        let sid = match object.get("Sid") {
            None => None,
            Some(Value::String(sid)) => Some(sid.clone()),
            Some(_) => return Err(PolicyError::Invalid("Sid must be a string".to_owned())),
        };
        let effect = match object.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => {
                return Err(PolicyError::Invalid(
                    "Statement Effect must be 'Allow' or 'Deny'".to_owned(),
                ))
            }
        };
        let (principal, not_principal) = match (object.get("Principal"), object.get("NotPrincipal"))
        {
            (Some(_), Some(_)) => {
                return Err(PolicyError::Invalid(
                    "Statement cannot have both Principal and NotPrincipal".to_owned(),
                ))
            }
            (Some(p), None) => (Some(Principals::parse(p)?), false),
            (None, Some(p)) => (Some(Principals::parse(p)?), true),
            (None, None) => (None, false),
        };
        let (actions, not_action) = one_of(object, "Action", "NotAction")?;
        if actions.is_empty() {
            return Err(PolicyError::Invalid(
                "Statement must contain an Action or NotAction".to_owned(),
            ));
        }
        for action in &actions {
            if action != "*"
                && !action
                    .split_once(':')
                    .is_some_and(|(service, name)| !service.is_empty() && !name.is_empty())
            {
                return Err(PolicyError::Invalid(format!(
                    "Action '{action}' must be of the form service:Action"
                )));
            }
        }
        let (resources, not_resource) = one_of(object, "Resource", "NotResource")?;
        let condition = match object.get("Condition") {
            None => None,
            Some(Value::Object(operators)) => {
                for (operator, keys) in operators {
                    let Value::Object(keys) = keys else {
                        return Err(PolicyError::Invalid(format!(
                            "Condition operator '{operator}' must map keys to values"
                        )));
                    };
                    for (key, values) in keys {
                        let ok = match values {
                            Value::String(_) | Value::Bool(_) | Value::Number(_) => true,
                            Value::Array(items) => items
                                .iter()
                                .all(|v| v.is_string() || v.is_boolean() || v.is_number()),
                            _ => false,
                        };
                        if !ok {
                            return Err(PolicyError::Invalid(format!(
                                "Condition key '{key}' has an invalid value"
                            )));
                        }
                    }
                }
                Some(Value::Object(operators.clone()))
            }
            Some(_) => {
                return Err(PolicyError::Invalid(
                    "Condition must be an object".to_owned(),
                ))
            }
        };
        Ok(Self {
            sid,
            effect,
            principal,
            not_principal,
            actions,
            not_action,
            resources,
            not_resource,
            condition,
        })
    }

    fn applies_to(&self, request: &Request) -> bool {
        let principal = match &self.principal {
            None => false,
            Some(principals) => {
                principals.includes_principal(request.principal_account, request.principal_arn)
                    != self.not_principal
            }
        };
        let action = self
            .actions
            .iter()
            .any(|pattern| glob_ignore_case(pattern, request.action))
            != self.not_action;
        let resource = self.resources.is_empty()
            || self
                .resources
                .iter()
                .any(|pattern| glob(pattern, request.resource))
                != self.not_resource;
        principal && action && resource && self.conditions_hold(request)
    }

    /// Every operator of the `Condition` block holds, and within an operator every key:
    /// IAM's AND across operators and keys, OR across the values listed for one key.
    fn conditions_hold(&self, request: &Request) -> bool {
        let Some(Value::Object(operators)) = &self.condition else {
            return true;
        };
        operators.iter().all(|(operator, keys)| {
            keys.as_object().is_some_and(|keys| {
                keys.iter().all(|(key, values)| {
                    let expected: Vec<String> = match values {
                        Value::Array(items) => items.iter().filter_map(condition_value).collect(),
                        other => condition_value(other).into_iter().collect(),
                    };
                    condition_holds(operator, request.value(key), &expected)
                })
            })
        })
    }

    /// The values this statement's conditions test for a condition key, case-insensitively.
    pub fn condition_values(&self, key: &str) -> Vec<&str> {
        let Some(Value::Object(operators)) = &self.condition else {
            return Vec::new();
        };
        operators
            .values()
            .filter_map(Value::as_object)
            .flat_map(|keys| keys.iter())
            .filter(|(name, _)| name.eq_ignore_ascii_case(key))
            .flat_map(|(_, values)| match values {
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>(),
                other => other.as_str().into_iter().collect(),
            })
            .collect()
    }
}

impl Principals {
    fn parse(value: &Value) -> Result<Self, PolicyError> {
        match value {
            Value::String(star) if star == "*" => Ok(Principals::Everyone),
            Value::Object(types) if !types.is_empty() => {
                let mut typed = Vec::new();
                for (kind, ids) in types {
                    if !matches!(
                        kind.as_str(),
                        "AWS" | "Service" | "Federated" | "CanonicalUser"
                    ) {
                        return Err(PolicyError::Invalid(format!(
                            "Principal type '{kind}' is not valid"
                        )));
                    }
                    let ids = strings(ids).ok_or_else(|| {
                        PolicyError::Invalid(format!(
                            "Principal '{kind}' must be a string or a list of strings"
                        ))
                    })?;
                    if kind == "AWS" {
                        for id in &ids {
                            let is_account =
                                id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit());
                            if id != "*" && !is_account && !id.starts_with("arn:") {
                                return Err(PolicyError::Invalid(format!(
                                    "Principal AWS '{id}' must be '*', an account id or an ARN"
                                )));
                            }
                        }
                    }
                    typed.push((kind.clone(), ids));
                }
                Ok(Principals::Typed(typed))
            }
            _ => Err(PolicyError::Invalid(
                "Principal must be '*' or an object of principal types".to_owned(),
            )),
        }
    }

    /// Whether the principals include an account: `*`, the account id, or any ARN of it.
    pub fn includes(&self, account: &str) -> bool {
        match self {
            Principals::Everyone => true,
            Principals::Typed(types) => types
                .iter()
                .filter(|(kind, _)| kind == "AWS")
                .flat_map(|(_, ids)| ids.iter())
                .any(|id| id == "*" || id == account || id.split(':').nth(4) == Some(account)),
        }
    }

    /// Whether the principals include a caller, as IAM matches them: `*`; the caller's account
    /// as an id or as `arn:PARTITION:iam::ACCOUNT:root` (which trusts every principal of the
    /// account); or, when the caller is a named principal (`arn` is a role ARN), exactly that
    /// ARN. Without an `arn`, any ARN of the account matches, as [`Principals::includes`].
    pub fn includes_principal(&self, account: &str, arn: Option<&str>) -> bool {
        let Some(arn) = arn else {
            return self.includes(account);
        };
        match self {
            Principals::Everyone => true,
            Principals::Typed(types) => types
                .iter()
                .filter(|(kind, _)| kind == "AWS")
                .flat_map(|(_, ids)| ids.iter())
                .any(|id| id == "*" || id == account || id == arn || is_root_of(id, account)),
        }
    }

    /// The account ids this names in its `AWS` entries, from bare ids and ARNs alike.
    pub fn aws_accounts(&self) -> Vec<String> {
        match self {
            Principals::Everyone => Vec::new(),
            Principals::Typed(types) => types
                .iter()
                .filter(|(kind, _)| kind == "AWS")
                .flat_map(|(_, ids)| ids.iter())
                .filter_map(|id| {
                    if id.starts_with("arn:") {
                        id.split(':')
                            .nth(4)
                            .filter(|a| !a.is_empty())
                            .map(str::to_owned)
                    } else if id == "*" {
                        None
                    } else {
                        Some(id.clone())
                    }
                })
                .collect(),
        }
    }
}

/// Whether `id` is `arn:PARTITION:iam::ACCOUNT:root`, the principal standing for a whole account.
fn is_root_of(id: &str, account: &str) -> bool {
    let parts: Vec<&str> = id.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", _, "iam", "", id_account, "root"] if *id_account == account)
}

/// IAM wildcard matching: `*` any run, `?` any one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), text.chars().collect());
    // Iterative matching with backtracking to the last `*`.
    let (mut p, mut t, mut star, mut mark) = (0, 0, None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(star_at) = star {
            p = star_at + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Actions are matched without regard to case, as IAM does.
fn glob_ignore_case(pattern: &str, text: &str) -> bool {
    glob(&pattern.to_ascii_lowercase(), &text.to_ascii_lowercase())
}

fn strings(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

fn one_of(
    object: &serde_json::Map<String, Value>,
    name: &str,
    not_name: &str,
) -> Result<(Vec<String>, bool), PolicyError> {
    match (object.get(name), object.get(not_name)) {
        (Some(_), Some(_)) => Err(PolicyError::Invalid(format!(
            "Statement cannot have both {name} and {not_name}"
        ))),
        (Some(v), None) => strings(v).map(|s| (s, false)).ok_or_else(|| {
            PolicyError::Invalid(format!("{name} must be a string or a list of strings"))
        }),
        (None, Some(v)) => strings(v).map(|s| (s, true)).ok_or_else(|| {
            PolicyError::Invalid(format!("{not_name} must be a string or a list of strings"))
        }),
        (None, None) => Ok((Vec::new(), false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_destination_policy() {
        let policy = PolicyDocument::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"","Effect":"Allow",
               "Principal":{"AWS":["111111111111","arn:aws:iam::222222222222:root"]},
               "Action":"logs:PutSubscriptionFilter",
               "Resource":"arn:aws:logs:us-east-1:999999999999:destination:d"}]}"#,
        )
        .expect("valid");
        let statement = &policy.statements[0];
        assert_eq!(statement.effect, Effect::Allow);
        assert_eq!(statement.actions, ["logs:PutSubscriptionFilter"]);
        let accounts = statement
            .principal
            .as_ref()
            .map(Principals::aws_accounts)
            .unwrap_or_default();
        assert_eq!(accounts, ["111111111111", "222222222222"]);
    }

    #[test]
    fn reads_org_conditions() {
        let policy = PolicyDocument::parse(
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"logs:PutSubscriptionFilter",
               "Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":["o-1234567890"]}}}}"#,
        )
        .expect("valid");
        assert_eq!(policy.version, "2008-10-17");
        assert_eq!(
            policy.statements[0].condition_values("aws:PrincipalOrgId"),
            ["o-1234567890"]
        );
    }

    #[test]
    fn evaluates_like_iam() {
        let resource = "arn:aws:logs:us-east-1:999999999999:destination:d";
        let request = |account| Request {
            principal_account: account,
            principal_arn: None,
            action: "logs:PutSubscriptionFilter",
            resource,
            keys: &[],
        };
        let policy = PolicyDocument::parse(&format!(
            r#"{{"Statement":[
                {{"Effect":"Allow","Principal":{{"AWS":["111111111111","arn:aws:iam::222222222222:root"]}},"Action":"logs:Put*","Resource":"{resource}"}},
                {{"Effect":"Deny","Principal":{{"AWS":"222222222222"}},"Action":"logs:*","Resource":"*"}}
            ]}}"#
        ))
        .expect("valid");
        assert_eq!(policy.evaluate(&request("111111111111")), Decision::Allow);
        assert_eq!(
            policy.evaluate(&request("222222222222")),
            Decision::ExplicitDeny
        );
        assert_eq!(
            policy.evaluate(&request("333333333333")),
            Decision::ImplicitDeny
        );
        let other_action = Request {
            action: "logs:DeleteDestination",
            ..request("111111111111")
        };
        assert_eq!(policy.evaluate(&other_action), Decision::ImplicitDeny);
        let other_resource = Request {
            resource: "arn:aws:logs:us-east-1:999999999999:destination:e",
            ..request("111111111111")
        };
        assert_eq!(policy.evaluate(&other_resource), Decision::ImplicitDeny);

        let everyone = PolicyDocument::parse(
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"logs:PutSubscriptionFilter","Resource":"*"}}"#,
        )
        .expect("valid");
        assert_eq!(everyone.evaluate(&request("444444444444")), Decision::Allow);
        let org_only = PolicyDocument::parse(
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"logs:PutSubscriptionFilter","Resource":"*",
                "Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-123"}}}}"#,
        )
        .expect("valid");
        assert_eq!(
            org_only.evaluate(&request("444444444444")),
            Decision::ImplicitDeny
        );
        let by_account = PolicyDocument::parse(
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"LOGS:putsubscriptionfilter","Resource":"*",
                "Condition":{"StringEquals":{"aws:PrincipalAccount":["444444444444"]}}}}"#,
        )
        .expect("valid");
        assert_eq!(
            by_account.evaluate(&request("444444444444")),
            Decision::Allow
        );
        assert_eq!(
            by_account.evaluate(&request("555555555555")),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn named_principals_match_as_iam_matches_them() {
        let resource = "arn:aws:kinesis:us-east-1:111111111111:stream/s";
        let role = "arn:aws:iam::222222222222:role/CWL";
        let request = |arn| Request {
            principal_account: "222222222222",
            principal_arn: Some(arn),
            action: "kinesis:PutRecord",
            resource,
            keys: &[],
        };
        let decide = |principal: &str, arn| {
            PolicyDocument::parse(&format!(
                r#"{{"Statement":{{"Effect":"Allow","Principal":{principal},"Action":"kinesis:PutRecord","Resource":"{resource}"}}}}"#
            ))
            .expect("valid")
            .evaluate(&request(arn))
        };
        for grants in [
            r#""*""#.to_owned(),
            r#"{"AWS":"222222222222"}"#.to_owned(),
            r#"{"AWS":"arn:aws:iam::222222222222:root"}"#.to_owned(),
            format!(r#"{{"AWS":"{role}"}}"#),
        ] {
            assert_eq!(decide(&grants, role), Decision::Allow, "{grants}");
        }
        let other_role = "arn:aws:iam::222222222222:role/Other";
        assert_eq!(
            decide(&format!(r#"{{"AWS":"{role}"}}"#), other_role),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide(r#"{"AWS":"arn:aws:iam::333333333333:root"}"#, role),
            Decision::ImplicitDeny
        );
        let by_arn = PolicyDocument::parse(&format!(
            r#"{{"Statement":{{"Effect":"Allow","Principal":"*","Action":"kinesis:*","Resource":"*","Condition":{{"StringEquals":{{"aws:PrincipalArn":"{role}"}}}}}}}}"#
        ))
        .expect("valid");
        assert_eq!(by_arn.evaluate(&request(role)), Decision::Allow);
        assert_eq!(
            by_arn.evaluate(&request(other_role)),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn condition_operators_follow_iam() {
        let holds = |operator: &str, actual: Option<&str>, expected: &[&str]| {
            let expected: Vec<String> = expected.iter().map(|e| (*e).to_owned()).collect();
            condition_holds(operator, actual, &expected)
        };
        // Values: any one matches; case matters except in the IgnoreCase forms.
        assert!(holds("StringEquals", Some("b"), &["a", "b"]));
        assert!(!holds("StringEquals", Some("B"), &["b"]));
        assert!(holds("StringEqualsIgnoreCase", Some("B"), &["b"]));
        assert!(!holds("StringNotEquals", Some("b"), &["a", "b"]));
        assert!(holds("StringNotEqualsIgnoreCase", Some("c"), &["B"]));
        assert!(!holds("StringNotEqualsIgnoreCase", Some("b"), &["B"]));
        // StringLike takes * and ?, and is not equality.
        assert!(holds("StringLike", Some("tenant-42"), &["tenant-*"]));
        assert!(holds("StringLike", Some("ab"), &["a?"]));
        assert!(!holds("StringLike", Some("abc"), &["a?"]));
        assert!(!holds("StringLike", Some("Tenant-42"), &["tenant-*"]));
        assert!(!holds("StringNotLike", Some("tenant-42"), &["tenant-*"]));
        // ARNs match part by part: a `*` does not run across a colon.
        let arn = "arn:aws:iam::111122223333:role/a";
        assert!(holds("ArnLike", Some(arn), &["arn:aws:iam::*:role/*"]));
        assert!(holds(
            "ArnEquals",
            Some(arn),
            &["arn:aws:iam::111122223333:role/?"]
        ));
        assert!(!holds("ArnLike", Some(arn), &["arn:aws:*:role/a"]));
        assert!(holds("ArnNotLike", Some(arn), &["arn:aws:iam::*:user/*"]));
        assert!(holds("Bool", Some("true"), &["TRUE"]));
        // An absent key matches nothing: false, but true for negated operators and the
        // IfExists forms; Null tests presence.
        assert!(!holds("StringEquals", None, &["a"]));
        assert!(!holds("StringLike", None, &["*"]));
        assert!(holds("StringNotEquals", None, &["a"]));
        assert!(holds("StringNotLike", None, &["a*"]));
        assert!(holds("StringEqualsIfExists", None, &["a"]));
        assert!(!holds("StringEqualsIfExists", Some("b"), &["a"]));
        assert!(holds("StringLikeIfExists", Some("ab"), &["a*"]));
        assert!(holds("Null", None, &["true"]));
        assert!(!holds("Null", Some("x"), &["true"]));
        assert!(holds("Null", Some("x"), &["false"]));
        assert!(holds("ForAllValues:StringEquals", None, &["a"]));
        assert!(!holds("ForAnyValue:StringEquals", None, &["a"]));
        assert!(holds("ForAnyValue:StringLike", Some("ab"), &["a*"]));
        // Operators Sluice does not evaluate never hold.
        assert!(!holds("NumericLessThan", Some("1"), &["2"]));
        assert!(!holds("StringMaybe", Some("a"), &["a"]));
    }

    #[test]
    fn request_keys_are_condition_keys() {
        let policy = PolicyDocument::parse(
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"cloudtrail-data:PutAuditEvents","Resource":"*",
                "Condition":{"StringLike":{"CloudTrail:externalid":"tenant-*"},"Null":{"aws:PrincipalOrgID":"true"}}}}"#,
        )
        .expect("valid");
        let request = |keys| Request {
            principal_account: "111111111111",
            principal_arn: None,
            action: "cloudtrail-data:PutAuditEvents",
            resource: "arn:aws:cloudtrail:us-east-1:222222222222:channel/c",
            keys,
        };
        assert_eq!(
            policy.evaluate(&request(&[("cloudtrail:ExternalId", "tenant-7")])),
            Decision::Allow
        );
        assert_eq!(
            policy.evaluate(&request(&[("cloudtrail:ExternalId", "other")])),
            Decision::ImplicitDeny
        );
        assert_eq!(policy.evaluate(&request(&[])), Decision::ImplicitDeny);
    }

    #[test]
    fn stored_policies_keep_their_text() {
        let text = r#"{ "Statement": {"Effect":"Allow","Principal":"*","Action":"kinesis:*"} }"#;
        let policy = StoredPolicy::parse(text).expect("valid");
        let stored = serde_json::to_value(&policy).expect("serialize");
        assert_eq!(stored, Value::String(text.to_owned()));
        let read: StoredPolicy = serde_json::from_value(stored).expect("deserialize");
        assert_eq!(read, policy);
        assert_eq!(read.text(), text);
        // Kinesis stream records once held the text beside its parsed form.
        let earlier = serde_json::json!({ "text": text, "document": { "version": "x" } });
        let read: StoredPolicy = serde_json::from_value(earlier).expect("earlier form");
        assert_eq!(read, policy);
        assert!(serde_json::from_value::<StoredPolicy>(Value::String("{".to_owned())).is_err());
    }

    #[test]
    fn wildcards() {
        assert!(glob(
            "arn:aws:logs:*:*:destination:*",
            "arn:aws:logs:us-east-1:1:destination:x"
        ));
        assert!(glob("a?c", "abc") && !glob("a?c", "abbc") && glob("*", "") && !glob("a", "b"));
    }

    #[test]
    fn rejects_malformed_documents() {
        for bad in [
            "not json",
            "[]",
            r#"{"Statement":[]}"#,
            r#"{"Version":"2020-01-01","Statement":{"Effect":"Allow","Action":"logs:*"}}"#,
            r#"{"Statement":{"Effect":"Maybe","Action":"logs:*"}}"#,
            r#"{"Statement":{"Effect":"Allow"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"PutSubscriptionFilter"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"logs:*","Principal":{"AWS":"bob"}}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"logs:*","Principal":"bob"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"logs:*","Condition":{"StringEquals":"x"}}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"logs:*","Bogus":1}}"#,
        ] {
            assert!(PolicyDocument::parse(bad).is_err(), "{bad} must be refused");
        }
    }
}
