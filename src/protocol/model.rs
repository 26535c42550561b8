//! The botocore service models, embedded, and what the wire layer derives from them.
//!
//! `models/*.json` are stripped copies of botocore's `service-2.json` (see
//! `tools/gen_models.py`). They are the contract: the operation table, the HTTP bindings of
//! rest-json operations, and every constraint on every input member. Validation is therefore
//! written once, here, and every service gets all of the model's constraints for free.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::OffsetDateTime;

/// A service model as botocore describes it, reduced to what the server needs.
#[derive(Debug, Deserialize)]
pub struct ServiceModel {
    /// Protocol, signing name, JSON target prefix.
    pub metadata: Metadata,
    /// Operations by name.
    pub operations: HashMap<String, Operation>,
    /// Shapes by name.
    pub shapes: HashMap<String, Shape>,
    #[serde(skip)]
    patterns: OnceLock<HashMap<String, Option<ModelPattern>>>,
}

/// The model's `metadata` block.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// `json` (JSON 1.0/1.1 with `X-Amz-Target`) or `rest-json`.
    pub protocol: String,
    /// The prefix of `X-Amz-Target` for JSON protocols, e.g. `Logs_20140328`.
    pub target_prefix: Option<String>,
    /// `1.0` or `1.1` for JSON protocols.
    pub json_version: Option<String>,
    /// The SigV4 service name, when it differs from the endpoint prefix.
    pub signing_name: Option<String>,
    /// The host prefix of the service's AWS endpoint.
    pub endpoint_prefix: String,
}

/// One operation of the model.
#[derive(Debug, Deserialize)]
pub struct Operation {
    /// The operation name, e.g. `PutDestination`.
    pub name: String,
    /// The HTTP binding (method, path template, success status).
    pub http: HttpBinding,
    /// The input structure, if any.
    pub input: Option<ShapeRef>,
    /// The output structure, if any.
    pub output: Option<ShapeRef>,
    /// The error shapes the operation may return.
    #[serde(default)]
    pub errors: Vec<ShapeRef>,
}

/// The `http` block of an operation.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpBinding {
    /// HTTP method.
    pub method: String,
    /// Path template with `{label}` and `{label+}` segments and an optional query part.
    pub request_uri: String,
    /// The status of a successful response; 200 when absent.
    pub response_code: Option<u16>,
}

/// A reference to a shape, with the binding of a structure member.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShapeRef {
    /// The referenced shape.
    pub shape: String,
    /// `uri`, `querystring`, `header`, `headers` or `statusCode` (rest-json bindings).
    pub location: Option<String>,
    /// The wire name where `location` is set (or the JSON key when it differs).
    pub location_name: Option<String>,
    /// A member-level timestamp format.
    pub timestamp_format: Option<String>,
    /// Whether the member is an idempotency token that clients fill in themselves.
    #[serde(default)]
    pub idempotency_token: bool,
    /// Whether a string member carries a JSON document (`jsonvalue`).
    #[serde(default)]
    pub jsonvalue: bool,
}

/// A shape of the model.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    /// `structure`, `string`, `integer`, `long`, `boolean`, `timestamp`, `list`, `map`, ...
    #[serde(rename = "type")]
    pub shape_type: String,
    /// Structure members, by wire name.
    #[serde(default)]
    pub members: BTreeMap<String, ShapeRef>,
    /// Required structure members.
    #[serde(default)]
    pub required: Vec<String>,
    /// List element.
    pub member: Option<ShapeRef>,
    /// Map key.
    pub key: Option<ShapeRef>,
    /// Map value.
    pub value: Option<ShapeRef>,
    /// Minimum length, size or value.
    pub min: Option<f64>,
    /// Maximum length, size or value.
    pub max: Option<f64>,
    /// A regular expression that the whole string must match.
    pub pattern: Option<String>,
    /// The allowed values of an enum string.
    #[serde(rename = "enum")]
    pub enum_values: Option<Vec<String>>,
    /// Whether this is an error shape.
    #[serde(default)]
    pub exception: bool,
    /// The error binding (HTTP status) of an error shape.
    pub error: Option<ErrorBinding>,
    /// A tagged union: exactly one member must be set.
    #[serde(default)]
    pub union: bool,
    /// A shape-level timestamp format.
    pub timestamp_format: Option<String>,
    /// The member that is the whole HTTP payload (rest-json).
    pub payload: Option<String>,
}

/// The `error` block of an error shape.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBinding {
    /// HTTP status of the error.
    pub http_status_code: Option<u16>,
}

/// Which wire protocol a value is being read from or written to; it decides timestamp forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `awsJson1_0` / `awsJson1_1`: timestamps are epoch seconds.
    AwsJson,
    /// `restJson1`: timestamps in bodies are epoch seconds unless the model says otherwise.
    RestJson,
}

/// Where a timestamp travels, since rest-json formats each location differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampPlace {
    /// JSON body.
    Body,
    /// A query-string parameter.
    Query,
    /// An HTTP header.
    Header,
}

/// A failure of the input to meet the model.
#[derive(Debug, Clone, PartialEq)]
pub enum InputError {
    /// The value has the wrong JSON type: a `SerializationException`.
    Type(String),
    /// Constraint violations in AWS's wording, each "Value ... at 'path' failed to satisfy
    /// constraint: ...". The service decides which error code carries them.
    Constraints(Vec<Violation>),
}

/// One constraint violation.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The member path, e.g. `limit` or `tags.1.member.key`.
    pub path: String,
    /// The full sentence, in the words AWS uses.
    pub message: String,
}

impl Violation {
    /// Joins violations into AWS's "N validation error(s) detected: ..." message.
    pub fn summary(violations: &[Violation]) -> String {
        let n = violations.len();
        let noun = if n == 1 { "error" } else { "errors" };
        let details: Vec<&str> = violations.iter().map(|v| v.message.as_str()).collect();
        format!("{n} validation {noun} detected: {}", details.join("; "))
    }
}

impl ServiceModel {
    /// Parses an embedded model. The models are compiled in, so a failure is a build bug.
    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The model compiled into the binary, parsed once into `cell`. The embedded models are
    /// covered by tests, so failing to parse one is a build defect, not a runtime condition.
    pub fn embedded(
        cell: &'static OnceLock<ServiceModel>,
        name: &str,
        json: &'static str,
    ) -> &'static ServiceModel {
        cell.get_or_init(|| match ServiceModel::parse(json) {
            Ok(model) => model,
            Err(err) => panic!("embedded {name} model is invalid: {err}"),
        })
    }

    /// The SigV4 signing name of the service.
    pub fn signing_name(&self) -> &str {
        self.metadata
            .signing_name
            .as_deref()
            .unwrap_or(&self.metadata.endpoint_prefix)
    }

    /// Looks up a shape that the model itself references; a dangling reference is a model bug.
    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.shapes.get(name)
    }

    /// The HTTP status of an error shape: the model's `httpStatusCode`, else 400 (the JSON
    /// protocols' default for client errors).
    pub fn error_status(&self, code: &str) -> u16 {
        self.shapes
            .get(code)
            .and_then(|shape| shape.error.as_ref())
            .and_then(|error| error.http_status_code)
            .unwrap_or(400)
    }

    /// The member name an error shape uses for its message (`message` or `Message`).
    pub fn error_message_member(&self, code: &str) -> &'static str {
        match self.shapes.get(code) {
            Some(shape) if shape.members.contains_key("Message") => "Message",
            _ => "message",
        }
    }

    fn pattern(&self, shape_name: &str) -> Option<&ModelPattern> {
        let patterns = self.patterns.get_or_init(|| {
            self.shapes
                .iter()
                .filter_map(|(name, shape)| {
                    let pattern = shape.pattern.as_ref()?;
                    let compiled = compile_pattern(pattern);
                    if let Err(err) = &compiled {
                        tracing::warn!(shape = %name, error = %err, "Model pattern is not supported; skipping it.");
                    }
                    Some((name.clone(), compiled.ok()))
                })
                .collect()
        });
        patterns.get(shape_name).and_then(Option::as_ref)
    }

    /// Checks `value` against the input structure `shape_name`, in place: unknown members are
    /// dropped, timestamps become epoch seconds, and every constraint of the model is checked.
    pub fn validate_input(
        &self,
        shape_name: &str,
        value: &mut Value,
        protocol: Protocol,
    ) -> Result<(), InputError> {
        let mut violations = Vec::new();
        let reference = ShapeRef {
            shape: shape_name.to_owned(),
            location: None,
            location_name: None,
            timestamp_format: None,
            idempotency_token: false,
            jsonvalue: false,
        };
        self.check(&reference, value, "", protocol, &mut violations)?;
        if violations.is_empty() {
            Ok(())
        } else {
            Err(InputError::Constraints(violations))
        }
    }

    fn check(
        &self,
        reference: &ShapeRef,
        value: &mut Value,
        path: &str,
        protocol: Protocol,
        violations: &mut Vec<Violation>,
    ) -> Result<(), InputError> {
        let Some(shape) = self.shapes.get(&reference.shape) else {
            return Ok(());
        };
        let type_error = |expected: &str| {
            InputError::Type(format!(
                "Unexpected value type at '{}': expected {expected}",
                path
            ))
        };
        match shape.shape_type.as_str() {
            "structure" => {
                let Value::Object(object) = value else {
                    return Err(type_error("a structure"));
                };
                // Clients may send members the model does not know (newer models); AWS ignores them.
                object.retain(|name, _| shape.members.contains_key(name));
                for required in &shape.required {
                    if object.get(required).is_none_or(Value::is_null) {
                        let member_path = join_path(path, required);
                        violations.push(Violation {
                            message: format!(
                                "Value null at '{member_path}' failed to satisfy constraint: Member must not be null"
                            ),
                            path: member_path,
                        });
                    }
                }
                if shape.union {
                    let set = object.values().filter(|v| !v.is_null()).count();
                    if set != 1 {
                        violate(violations, path, format!(
                            "Value at '{}' failed to satisfy constraint: Union must have exactly one member set, found {set}",
                            path
                        ));
                    }
                }
                let mut names: Vec<String> = object.keys().cloned().collect();
                names.sort();
                for name in names {
                    let (Some(member_ref), Some(member_value)) =
                        (shape.members.get(&name), object.get_mut(&name))
                    else {
                        continue;
                    };
                    if member_value.is_null() {
                        continue;
                    }
                    let member_path = join_path(path, &name);
                    self.check(member_ref, member_value, &member_path, protocol, violations)?;
                }
            }
            "string" => {
                let Value::String(text) = value else {
                    return Err(type_error("a string"));
                };
                let length = text.chars().count() as f64;
                let shown = text.clone();
                if let Some(allowed) = &shape.enum_values {
                    if !allowed.iter().any(|v| v == &shown) {
                        violate(violations, path, format!(
                            "Value '{shown}' at '{}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                            path,
                            allowed.join(", ")
                        ));
                    }
                }
                length_checks(shape, length, &shown, path, violations);
                if let (Some(pattern), Some(regex)) =
                    (&shape.pattern, self.pattern(&reference.shape))
                {
                    if !regex.is_match(&shown) {
                        violate(violations, path, format!(
                            "Value '{shown}' at '{}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}",
                            path
                        ));
                    }
                }
            }
            "integer" | "long" => {
                let number = value
                    .as_i64()
                    .map(|n| n as f64)
                    .or_else(|| value.as_u64().map(|n| n as f64));
                let Some(number) = number else {
                    return Err(type_error("an integer"));
                };
                value_checks(shape, number, path, violations);
            }
            "float" | "double" => {
                let Some(number) = value.as_f64() else {
                    return Err(type_error("a number"));
                };
                value_checks(shape, number, path, violations);
            }
            "boolean" if !value.is_boolean() => return Err(type_error("a boolean")),
            "timestamp" => {
                let format = reference
                    .timestamp_format
                    .as_deref()
                    .or(shape.timestamp_format.as_deref());
                match parse_timestamp(value, format, protocol, TimestampPlace::Body) {
                    Some(seconds) => *value = seconds,
                    None => return Err(type_error("a timestamp")),
                }
            }
            "blob" => {
                let Value::String(encoded) = value else {
                    return Err(type_error("base64-encoded bytes"));
                };
                let Ok(bytes) =
                    base64::engine::general_purpose::STANDARD.decode(encoded.as_bytes())
                else {
                    return Err(type_error("base64-encoded bytes"));
                };
                length_checks(shape, bytes.len() as f64, "", path, violations);
            }
            "list" => {
                let Value::Array(items) = value else {
                    return Err(type_error("a list"));
                };
                let shown = format!(
                    "[{}]",
                    items.iter().map(show_value).collect::<Vec<_>>().join(", ")
                );
                length_checks(shape, items.len() as f64, &shown, path, violations);
                if let Some(member_ref) = &shape.member {
                    for (index, item) in items.iter_mut().enumerate() {
                        let item_path = format!("{}.{}.member", path, index + 1);
                        self.check(member_ref, item, &item_path, protocol, violations)?;
                    }
                }
            }
            "map" => {
                let Value::Object(entries) = value else {
                    return Err(type_error("a map"));
                };
                let shown = format!(
                    "{{{}}}",
                    entries
                        .iter()
                        .map(|(k, v)| format!("{k}={}", show_value(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                length_checks(shape, entries.len() as f64, &shown, path, violations);
                let (Some(key_ref), Some(value_ref)) = (&shape.key, &shape.value) else {
                    return Ok(());
                };
                let keys: Vec<String> = entries.keys().cloned().collect();
                for key in keys {
                    // Map entries are reported on the map itself, the way Coral words it.
                    let mut nested = Vec::new();
                    self.check(
                        key_ref,
                        &mut Value::String(key.clone()),
                        path,
                        protocol,
                        &mut nested,
                    )?;
                    wrap_map_violations(violations, nested, &shown, path, "Map keys");
                    if let Some(entry) = entries.get_mut(&key) {
                        let mut nested = Vec::new();
                        self.check(value_ref, entry, path, protocol, &mut nested)?;
                        wrap_map_violations(violations, nested, &shown, path, "Map value");
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Rewrites an output value for the wire: timestamps (epoch seconds inside Sluice) take the
    /// protocol's form, and nulls are dropped since AWS omits unset members.
    pub fn render_output(&self, shape_name: &str, value: &mut Value, protocol: Protocol) {
        let reference = ShapeRef {
            shape: shape_name.to_owned(),
            location: None,
            location_name: None,
            timestamp_format: None,
            idempotency_token: false,
            jsonvalue: false,
        };
        self.render(&reference, value, protocol);
    }

    fn render(&self, reference: &ShapeRef, value: &mut Value, protocol: Protocol) {
        let Some(shape) = self.shapes.get(&reference.shape) else {
            return;
        };
        match (shape.shape_type.as_str(), value) {
            ("structure", Value::Object(object)) => {
                object.retain(|_, v| !v.is_null());
                for (name, member) in object.iter_mut() {
                    if let Some(member_ref) = shape.members.get(name) {
                        self.render(member_ref, member, protocol);
                    }
                }
            }
            ("list", Value::Array(items)) => {
                if let Some(member_ref) = &shape.member {
                    items
                        .iter_mut()
                        .for_each(|item| self.render(member_ref, item, protocol));
                }
            }
            ("map", Value::Object(entries)) => {
                if let Some(value_ref) = &shape.value {
                    entries
                        .values_mut()
                        .for_each(|entry| self.render(value_ref, entry, protocol));
                }
            }
            ("timestamp", value) => {
                let format = reference
                    .timestamp_format
                    .as_deref()
                    .or(shape.timestamp_format.as_deref());
                if let Some(seconds) = value.as_f64() {
                    *value = format_timestamp(seconds, format, protocol, TimestampPlace::Body);
                }
            }
            _ => {}
        }
    }
}

/// Parses a timestamp from the wire into epoch seconds.
pub fn parse_timestamp(
    value: &Value,
    format: Option<&str>,
    protocol: Protocol,
    place: TimestampPlace,
) -> Option<Value> {
    let format = format.unwrap_or(default_timestamp_format(protocol, place));
    match (format, value) {
        ("unixTimestamp", Value::Number(number)) => Some(Value::Number(number.clone())),
        ("unixTimestamp", Value::String(text)) => text.parse::<f64>().ok().and_then(seconds_value),
        ("iso8601", Value::String(text)) => {
            let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
            seconds_value(parsed.unix_timestamp_nanos() as f64 / 1e9)
        }
        ("rfc822", Value::String(text)) => {
            let parsed = OffsetDateTime::parse(text, &Rfc2822).ok()?;
            seconds_value(parsed.unix_timestamp() as f64)
        }
        _ => None,
    }
}

/// Formats epoch seconds for the wire.
pub fn format_timestamp(
    seconds: f64,
    format: Option<&str>,
    protocol: Protocol,
    place: TimestampPlace,
) -> Value {
    let format = format.unwrap_or(default_timestamp_format(protocol, place));
    // Sluice keeps times to the millisecond; rounding there keeps f64 noise out of the text.
    let millis = (seconds * 1000.0).round() as i128;
    let Ok(instant) = OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000) else {
        return Value::Null;
    };
    match format {
        "iso8601" => Value::String(instant.format(&Rfc3339).unwrap_or_default()),
        "rfc822" => Value::String(http_date(instant)),
        _ => seconds_value(seconds).unwrap_or(Value::Null),
    }
}

fn default_timestamp_format(protocol: Protocol, place: TimestampPlace) -> &'static str {
    match (protocol, place) {
        (_, TimestampPlace::Header) => "rfc822",
        (Protocol::RestJson, TimestampPlace::Query) => "iso8601",
        _ => "unixTimestamp",
    }
}

fn http_date(instant: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    instant
        .to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

fn seconds_value(seconds: f64) -> Option<Value> {
    if seconds.fract() == 0.0 && seconds.abs() < 9e15 {
        Some(Value::from(seconds as i64))
    } else {
        serde_json::Number::from_f64(seconds).map(Value::Number)
    }
}

/// Compiles a model pattern. The models use Java's regex dialect and AWS matches the whole
/// value (Java's `matches`), so the pattern is anchored, and a `-` right after a class escape
/// inside brackets (`[\w-_]`), which Java reads as a literal, is escaped for Rust's engine.
pub fn compile_pattern(pattern: &str) -> Result<ModelPattern, fancy_regex::Error> {
    // Java writes characters beyond the BMP as UTF-16 surrogate pairs; the range of all of them,
    // `\uD800\uDC00-\uDBFF\uDFFF`, is U+10000..=U+10FFFF to a Rust regex.
    let pattern = pattern.replace("\\uD800\\uDC00-\\uDBFF\\uDFFF", "\\x{10000}-\\x{10FFFF}");
    let mut rust = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    let mut previous_was_class_escape = false;
    let mut class_depth = 0usize;
    while let Some(c) = chars.next() {
        if c == '\\' {
            let escaped = chars.next().unwrap_or('\\');
            // Java's `\w`, `\d` and `\s` are ASCII classes; Rust's are Unicode (and `\w{1,255}`
            // in Unicode compiles past the size limit).
            let ascii = match escaped {
                'w' => Some("word"),
                'd' => Some("digit"),
                's' => Some("space"),
                _ => None,
            };
            let negated = match escaped {
                'W' => Some("word"),
                'D' => Some("digit"),
                'S' => Some("space"),
                _ => None,
            };
            match (ascii, negated, class_depth > 0) {
                (Some(class), _, true) => rust.push_str(&format!("[:{class}:]")),
                (Some(class), _, false) => rust.push_str(&format!("[[:{class}:]]")),
                (_, Some(class), true) => rust.push_str(&format!("[:^{class}:]")),
                (_, Some(class), false) => rust.push_str(&format!("[^[:{class}:]]")),
                _ => {
                    rust.push(c);
                    rust.push(escaped);
                }
            }
            previous_was_class_escape = ascii.is_some() || negated.is_some();
            continue;
        }
        match c {
            '[' => class_depth += 1,
            ']' if class_depth > 0 => class_depth -= 1,
            _ => {}
        }
        if c == '-' && previous_was_class_escape {
            rust.push_str("\\-");
        } else {
            rust.push(c);
        }
        previous_was_class_escape = false;
    }
    fancy_regex::Regex::new(&format!("^(?:{rust})$")).map(ModelPattern)
}

/// A model's `pattern`, with Java's meaning. Some models use look-around (`^(?!aws:)...`),
/// which the `regex` crate leaves out by design; `fancy-regex` adds it on top of `regex`
/// (patterns without it run on `regex` alone).
#[derive(Debug)]
pub struct ModelPattern(fancy_regex::Regex);

impl ModelPattern {
    /// Whether `text` matches the whole pattern. A match that gives up (fancy-regex bounds
    /// its backtracking) accepts the value: Sluice does not refuse what it cannot decide.
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text).unwrap_or(true)
    }
}

fn wrap_map_violations(
    violations: &mut Vec<Violation>,
    nested: Vec<Violation>,
    shown: &str,
    path: &str,
    what: &str,
) {
    for violation in nested {
        let constraint = violation
            .message
            .split_once("failed to satisfy constraint: ")
            .map_or(violation.message.as_str(), |(_, constraint)| constraint);
        violate(
            violations,
            path,
            format!("Value '{shown}' at '{path}' failed to satisfy constraint: {what} must satisfy constraint: [{constraint}]"),
        );
    }
}

fn violate(violations: &mut Vec<Violation>, path: &str, message: String) {
    violations.push(Violation {
        path: path.to_owned(),
        message,
    });
}

fn length_checks(
    shape: &Shape,
    length: f64,
    shown: &str,
    path: &str,
    violations: &mut Vec<Violation>,
) {
    if let Some(min) = shape.min {
        if length < min {
            violate(violations, path, format!(
                "Value '{shown}' at '{}' failed to satisfy constraint: Member must have length greater than or equal to {min}",
                path
            ));
        }
    }
    if let Some(max) = shape.max {
        if length > max {
            violate(violations, path, format!(
                "Value '{shown}' at '{}' failed to satisfy constraint: Member must have length less than or equal to {max}",
                path
            ));
        }
    }
}

fn value_checks(shape: &Shape, number: f64, path: &str, violations: &mut Vec<Violation>) {
    let shown = show_number(number);
    if let Some(min) = shape.min {
        if number < min {
            violate(violations, path, format!(
                "Value '{shown}' at '{}' failed to satisfy constraint: Member must have value greater than or equal to {}",
                path,
                show_number(min)
            ));
        }
    }
    if let Some(max) = shape.max {
        if number > max {
            violate(violations, path, format!(
                "Value '{shown}' at '{}' failed to satisfy constraint: Member must have value less than or equal to {}",
                path,
                show_number(max)
            ));
        }
    }
}

fn show_number(number: f64) -> String {
    if number.fract() == 0.0 {
        format!("{}", number as i64)
    } else {
        format!("{number}")
    }
}

fn show_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn join_path(path: &str, member: &str) -> String {
    if path.is_empty() {
        member.to_owned()
    } else {
        format!("{path}.{member}")
    }
}

#[cfg(test)]
mod fuzz {
    //! Randomised inputs, shaped like each operation's input but perturbed, must always be
    //! answered with Ok or an input error: never a panic.
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn random_string(rng: &mut StdRng) -> String {
        let alphabet = [
            'a',
            'Z',
            '0',
            ':',
            '*',
            '/',
            ' ',
            'é',
            '\u{1F600}',
            '"',
            '\\',
            '-',
            '_',
        ];
        let length = [0, 1, 5, 129, 513, 2000][rng.gen_range(0..6)];
        (0..length)
            .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
            .collect()
    }

    fn random_scalar(rng: &mut StdRng) -> Value {
        match rng.gen_range(0..7) {
            0 => Value::Null,
            1 => Value::Bool(rng.gen()),
            2 => Value::from(rng.gen::<i64>()),
            3 => Value::from(rng.gen::<f64>() * 1e12),
            4 => Value::from(vec![Value::from(1), Value::String("x".into())]),
            5 => serde_json::json!({"k": "v"}),
            _ => Value::String(random_string(rng)),
        }
    }

    fn shaped(model: &ServiceModel, shape_name: &str, rng: &mut StdRng, depth: usize) -> Value {
        if depth > 6 || rng.gen_ratio(1, 8) {
            return random_scalar(rng);
        }
        let Some(shape) = model.shape(shape_name) else {
            return Value::Null;
        };
        match shape.shape_type.as_str() {
            "structure" => {
                let mut object = serde_json::Map::new();
                for (name, member) in &shape.members {
                    if rng.gen_ratio(3, 4) {
                        object.insert(name.clone(), shaped(model, &member.shape, rng, depth + 1));
                    }
                }
                Value::Object(object)
            }
            "list" => {
                let member = shape
                    .member
                    .as_ref()
                    .map(|m| m.shape.clone())
                    .unwrap_or_default();
                Value::Array(
                    (0..rng.gen_range(0..4))
                        .map(|_| shaped(model, &member, rng, depth + 1))
                        .collect(),
                )
            }
            "map" => {
                let value = shape
                    .value
                    .as_ref()
                    .map(|m| m.shape.clone())
                    .unwrap_or_default();
                Value::Object(
                    (0..rng.gen_range(0..4))
                        .map(|_| (random_string(rng), shaped(model, &value, rng, depth + 1)))
                        .collect(),
                )
            }
            "string" => match &shape.enum_values {
                Some(values) if rng.gen() => {
                    Value::String(values[rng.gen_range(0..values.len())].clone())
                }
                _ => Value::String(random_string(rng)),
            },
            "integer" | "long" => Value::from(rng.gen_range(-100i64..100_000)),
            "boolean" => Value::Bool(rng.gen()),
            "timestamp" => Value::from(rng.gen_range(0i64..2_000_000_000)),
            _ => random_scalar(rng),
        }
    }

    #[test]
    fn every_operation_survives_random_inputs() {
        let model = ServiceModel::parse(include_str!("../../models/logs.json")).expect("model");
        let mut rng = StdRng::seed_from_u64(0x5_1u64);
        let mut outcomes = [0usize; 3];
        for operation in model.operations.values() {
            let Some(input) = &operation.input else {
                continue;
            };
            for _ in 0..40 {
                let mut value = shaped(&model, &input.shape, &mut rng, 0);
                let outcome = model.validate_input(&input.shape, &mut value, Protocol::AwsJson);
                outcomes[match outcome {
                    Ok(()) => 0,
                    Err(InputError::Type(_)) => 1,
                    Err(InputError::Constraints(violations)) => {
                        assert!(!violations.is_empty());
                        assert!(Violation::summary(&violations).contains("validation error"));
                        2
                    }
                }] += 1;
            }
        }
        // The generator must reach all three outcomes, or it is not exercising the validator.
        assert!(outcomes.iter().all(|&n| n > 0), "{outcomes:?}");
    }
}

#[cfg(test)]
mod pattern_tests {
    use super::compile_pattern;

    #[test]
    fn java_patterns_compile_with_their_meaning() {
        let surrogates =
            compile_pattern(r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*")
                .expect("compiles");
        assert!(surrogates.is_match("plain text \u{1F600}"));
        assert!(!surrogates.is_match("bell \u{7}"));
        let dash = compile_pattern(r"[\w-_]*").expect("compiles");
        assert!(dash.is_match("a-b_c") && !dash.is_match("a b"));
        assert!(
            !compile_pattern("[^:*]*").expect("compiles").is_match("a:b"),
            "patterns match the whole value"
        );
        // Java's classes are ASCII, inside and outside brackets.
        let word = compile_pattern(r"\w+[\d\s]*").expect("compiles");
        assert!(word.is_match("abc_9 1") && !word.is_match("é"));
        let bucket = compile_pattern(r"arn:.*:s3:::[\w\.\-]{1,255}").expect("compiles");
        assert!(bucket.is_match("arn:aws:s3:::my.bucket-1") && !bucket.is_match("arn:aws:s3:::"));
        // Look-around, as the Firehose model writes it.
        let tag = compile_pattern(r"^(?!aws:)[\p{L}\p{Z}\p{N}_.:\/=+\-@%]*$").expect("compiles");
        assert!(tag.is_match("team") && !tag.is_match("aws:team"));
        let non_blank = compile_pattern(r"^(?!\s*$).+").expect("compiles");
        assert!(non_blank.is_match(" x") && !non_blank.is_match("   "));
    }

    #[test]
    fn every_pattern_of_every_embedded_model_compiles() {
        for model in [
            include_str!("../../models/logs.json"),
            include_str!("../../models/kinesis.json"),
            include_str!("../../models/cloudtrail.json"),
            include_str!("../../models/appfabric.json"),
            include_str!("../../models/firehose.json"),
        ] {
            let model = super::ServiceModel::parse(model).expect("model parses");
            for (name, shape) in &model.shapes {
                if let Some(pattern) = &shape.pattern {
                    assert!(compile_pattern(pattern).is_ok(), "{name}: {pattern}");
                }
            }
        }
    }
}
