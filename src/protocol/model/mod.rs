//! The botocore service models, embedded, and what the wire layer derives from them.
//!
//! `models/*.json` are stripped copies of botocore's `service-2.json` (see
//! `tools/gen_models.py`). They are the contract: the operation table, the HTTP bindings of
//! rest-json operations, and every constraint on every input member. Validation is therefore
//! written once, here, and every service gets all of the model's constraints for free.
//!
//! Split by job: this file holds the model types (with the model's type words as enums);
//! `validate.rs` checks inputs against them in AWS's words; `output.rs` checks (in debug
//! builds) that a typed output is what the model describes; `timestamp.rs` is the timestamp
//! codec, including the serde wrappers typed outputs use; `pattern.rs` translates the models'
//! Java patterns; `errors.rs` gives each error shape its HTTP status.

mod errors;
mod output;
mod pattern;
mod timestamp;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;

pub use pattern::{compile_pattern, ModelPattern};
pub use timestamp::{format_timestamp, parse_timestamp, EpochSeconds, Iso8601, TimestampPlace};
pub use validate::{InputError, Violation};

/// A service model as botocore describes it, reduced to what the server needs.
#[derive(Debug, Deserialize)]
pub struct ServiceModel {
    /// Protocol, signing name, JSON target prefix.
    pub metadata: Metadata,
    /// Operations by name.
    pub operations: HashMap<String, Operation>,
    /// Shapes by name, each parsed at its first use.
    pub shapes: Shapes,
    #[serde(skip)]
    patterns: OnceLock<HashMap<String, Option<ModelPattern>>>,
}

/// The model's `metadata` block.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// `json` (JSON 1.0/1.1 with `X-Amz-Target`) or `rest-json`.
    pub protocol: ProtocolName,
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
    pub location: Option<Location>,
    /// The wire name where `location` is set (or the JSON key when it differs).
    pub location_name: Option<String>,
    /// A member-level timestamp format.
    pub timestamp_format: Option<TimestampFormat>,
    /// Whether the member is an idempotency token that clients fill in themselves.
    #[serde(default)]
    pub idempotency_token: bool,
    /// Whether a string member carries a JSON document (`jsonvalue`).
    #[serde(default)]
    pub jsonvalue: bool,
}

impl ShapeRef {
    /// A reference to an operation's input or output structure, which has no binding.
    pub fn root(shape_name: &str) -> Self {
        ShapeRef {
            shape: shape_name.to_owned(),
            location: None,
            location_name: None,
            timestamp_format: None,
            idempotency_token: false,
            jsonvalue: false,
        }
    }
}

/// A model's shapes by name. Each is kept as its JSON and parsed at its first use: a request
/// reads a handful of a model's hundreds of shapes, and parsing them all was most of the time
/// a service's first request took (1 ms of a cold start for CloudWatch Logs).
#[derive(Debug)]
pub struct Shapes(HashMap<String, LazyShape>);

#[derive(Debug)]
struct LazyShape {
    json: Box<serde_json::value::RawValue>,
    parsed: OnceLock<Shape>,
}

impl LazyShape {
    /// The embedded models are parsed whole, every shape, by unit tests, so a shape that does
    /// not parse is a build defect, like a model that does not parse.
    fn shape(&self) -> &Shape {
        self.parsed.get_or_init(|| {
            serde_json::from_str(self.json.get())
                .unwrap_or_else(|err| panic!("model shape {} is invalid: {err}", self.json))
        })
    }
}

impl Shapes {
    /// The shape named `name`, parsed now if it was not yet.
    pub fn get(&self, name: &str) -> Option<&Shape> {
        self.0.get(name).map(LazyShape::shape)
    }

    /// Every shape with its name, each parsed now if it was not yet.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Shape)> {
        self.0.iter().map(|(name, lazy)| (name, lazy.shape()))
    }
}

impl<'de> Deserialize<'de> for Shapes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = HashMap::<String, Box<serde_json::value::RawValue>>::deserialize(deserializer)?;
        Ok(Self(
            raw.into_iter()
                .map(|(name, json)| {
                    let parsed = OnceLock::new();
                    (name, LazyShape { json, parsed })
                })
                .collect(),
        ))
    }
}

/// A shape of the model.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    /// `structure`, `string`, `integer`, `long`, `boolean`, `timestamp`, `list`, `map`, ...
    #[serde(rename = "type")]
    pub shape_type: ShapeType,
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
    /// Whether the error shape is a server fault (botocore's `fault`).
    #[serde(default)]
    pub fault: bool,
    /// A tagged union: exactly one member must be set.
    #[serde(default)]
    pub union: bool,
    /// A shape-level timestamp format.
    pub timestamp_format: Option<TimestampFormat>,
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

/// The model's wire protocol (`metadata.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ProtocolName {
    /// JSON 1.0/1.1 with `X-Amz-Target`.
    #[serde(rename = "json")]
    Json,
    /// restJson1: method and path template.
    #[serde(rename = "rest-json")]
    RestJson,
    /// The query protocol (form parameters in, XML out).
    #[serde(rename = "query")]
    Query,
    /// REST with XML bodies (S3-style).
    #[serde(rename = "rest-xml")]
    RestXml,
    /// EC2's variant of the query protocol.
    #[serde(rename = "ec2")]
    Ec2,
}

impl ProtocolName {
    /// The model's own word for the protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolName::Json => "json",
            ProtocolName::RestJson => "rest-json",
            ProtocolName::Query => "query",
            ProtocolName::RestXml => "rest-xml",
            ProtocolName::Ec2 => "ec2",
        }
    }
}

/// A shape's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ShapeType {
    /// A structure of named members.
    Structure,
    /// Text (with optional enum, length and pattern constraints).
    String,
    /// 32-bit integer.
    Integer,
    /// 64-bit integer.
    Long,
    /// Single-precision number.
    Float,
    /// Double-precision number.
    Double,
    /// `true` or `false`.
    Boolean,
    /// A point in time; its wire form depends on protocol, place and `timestampFormat`.
    Timestamp,
    /// Bytes, base64 in JSON bodies.
    Blob,
    /// A list of one member shape.
    List,
    /// A map from key shape to value shape.
    Map,
}

impl ShapeType {
    /// The model's own word for the type, as AWS's messages name it.
    pub fn as_str(self) -> &'static str {
        match self {
            ShapeType::Structure => "structure",
            ShapeType::String => "string",
            ShapeType::Integer => "integer",
            ShapeType::Long => "long",
            ShapeType::Float => "float",
            ShapeType::Double => "double",
            ShapeType::Boolean => "boolean",
            ShapeType::Timestamp => "timestamp",
            ShapeType::Blob => "blob",
            ShapeType::List => "list",
            ShapeType::Map => "map",
        }
    }
}

/// Where a rest-json member travels (`location`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Location {
    /// A `{label}` of the path template.
    Uri,
    /// A query-string parameter.
    Querystring,
    /// One HTTP header.
    Header,
    /// Every header with a prefix, as a map.
    Headers,
    /// The HTTP status code of the response.
    StatusCode,
}

/// A `timestampFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TimestampFormat {
    /// Epoch seconds, a JSON number (fractions allowed).
    #[serde(rename = "unixTimestamp")]
    UnixTimestamp,
    /// RFC 3339 text.
    #[serde(rename = "iso8601")]
    Iso8601,
    /// The HTTP date (RFC 822 / 7231).
    #[serde(rename = "rfc822")]
    Rfc822,
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
}
