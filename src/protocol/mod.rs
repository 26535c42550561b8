//! The protocol layer: everything that knows HTTP and the AWS wire formats, and nothing that
//! knows any one service.
//!
//! A request goes through small typed steps (see `dispatch`): authenticate the SigV4
//! signature, find the service from the credential scope, let its protocol codec (`aws_json`
//! or `rest_json`) find the operation and decode the input, validate the input against the
//! service's botocore model, call the service, and render the output or the error. Start
//! reading at [`dispatch`].

pub mod auth;
pub mod aws_json;
pub mod error;
pub mod model;
pub mod query;
pub mod rest_json;
pub mod sigv4;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use time::OffsetDateTime;

pub use error::ApiError;
use model::{InputError, Protocol, ProtocolName, ServiceModel, Violation};

/// Who is calling, where, and which request this is. Handed to every operation.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The caller's account, from its access key.
    pub account_id: String,
    /// The region from the SigV4 credential scope.
    pub region: String,
    /// The access key that signed the request.
    pub access_key_id: String,
    /// Sent back as `x-amzn-RequestId`.
    pub request_id: String,
    /// When the request arrived; operations stamp resources with it.
    pub received_at: OffsetDateTime,
}

impl RequestContext {
    /// The arrival time in epoch milliseconds, as CloudWatch Logs counts time.
    pub fn received_at_millis(&self) -> i64 {
        (self.received_at.unix_timestamp_nanos() / 1_000_000) as i64
    }
}

/// One AWS service served by Sluice.
///
/// A service owns its botocore model and its handlers. Inputs arrive already validated against
/// the model (types, required members, lengths, patterns, ranges, enums), with timestamps as
/// epoch seconds; the output leaves as the JSON body in wire form, which the protocol frames.
/// Services implement this through the kit's operation table (`services::kit::operations!`).
#[async_trait]
pub trait Service: Send + Sync + 'static {
    /// The SigV4 signing name the service is registered under. Known without the model, so
    /// that registering a service does not parse it: a model is parsed at its service's first
    /// request, and a cold start parses none.
    fn signing_name(&self) -> &'static str;

    /// The service's model, which drives routing, binding and validation.
    fn model(&self) -> &ServiceModel;

    /// Wraps model violations in the error this service uses for them (CloudWatch Logs uses
    /// `InvalidParameterException`, AppFabric `ValidationException` with a field list ...).
    fn validation_error(&self, violations: &[Violation]) -> ApiError;

    /// The error for input that cannot be read as the operation's input (malformed JSON, a
    /// value of the wrong type). Most services answer `SerializationException`; services whose
    /// model has no such shape (AppFabric) override this.
    fn type_error(&self, message: String) -> ApiError {
        ApiError::serialization(message)
    }

    /// Runs one operation of the model and returns its output's JSON body, in the wire form of
    /// `protocol`.
    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &model::Operation,
        input: Value,
        protocol: Protocol,
    ) -> Result<Vec<u8>, ApiError>;
}

/// The services Sluice serves, by SigV4 signing name.
#[derive(Clone, Default)]
pub struct Registry {
    services: HashMap<String, Registered>,
    query_services: HashMap<String, Arc<dyn query::QueryService>>,
    streaming: Option<Arc<dyn StreamingService>>,
    streaming_name: Option<String>,
}

/// A registered service, with the router of its REST paths (built from the model at the
/// service's first request; `None` for a JSON 1.x service, which has no paths).
#[derive(Clone)]
struct Registered {
    service: Arc<dyn Service>,
    rest_router: Arc<OnceLock<Option<rest_json::Router>>>,
}

impl Registered {
    fn rest_router(&self) -> Option<&rest_json::Router> {
        self.rest_router
            .get_or_init(|| {
                let model = self.service.model();
                (model.metadata.protocol == ProtocolName::RestJson)
                    .then(|| rest_json::Router::new(model))
            })
            .as_ref()
    }
}

/// A service whose requests the server hands over with the body unread (S3), because its
/// bodies stream and its wire format is not one `dispatch` speaks. It authenticates with the
/// same [`auth::Authenticator`] and renders its own errors.
#[async_trait]
pub trait StreamingService: Send + Sync + 'static {
    /// Whether this request is for the service (decided from the head alone).
    fn claims(&self, parts: &axum::http::request::Parts) -> bool;

    /// Serves the request; `request_id` is the one the server stamps on the response.
    async fn handle(
        &self,
        authenticator: &auth::Authenticator,
        parts: axum::http::request::Parts,
        body: axum::body::Body,
        request_id: &str,
    ) -> Response;
}

impl Registry {
    /// Adds a service under its signing name.
    pub fn register(&mut self, service: Arc<dyn Service>) {
        self.services.insert(
            service.signing_name().to_owned(),
            Registered {
                service,
                rest_router: Arc::default(),
            },
        );
    }

    /// Adds a query-protocol service (STS) under its signing name.
    pub fn register_query(&mut self, signing_name: &str, service: Arc<dyn query::QueryService>) {
        self.query_services.insert(signing_name.to_owned(), service);
    }

    /// Sets the service that takes requests with their bodies unread (S3).
    pub fn register_streaming(&mut self, signing_name: &str, service: Arc<dyn StreamingService>) {
        self.streaming_name = Some(signing_name.to_owned());
        self.streaming = Some(service);
    }

    /// The streaming service that claims this request, if any.
    pub fn streaming_for(
        &self,
        parts: &axum::http::request::Parts,
    ) -> Option<&Arc<dyn StreamingService>> {
        self.streaming
            .as_ref()
            .filter(|service| service.claims(parts))
    }

    /// The signing names of the registered services, sorted, for the health document.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .services
            .keys()
            .chain(self.query_services.keys())
            .chain(self.streaming_name.iter())
            .cloned()
            .collect();
        names.sort();
        names
    }
}

/// A request after the HTTP server has read it whole.
pub struct IncomingRequest {
    /// HTTP method.
    pub method: Method,
    /// Raw path, still percent-encoded.
    pub raw_path: String,
    /// Raw query string, possibly empty.
    pub raw_query: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// Serves one AWS API request of an authenticated caller: route, decode, validate, call,
/// render. (The server authenticates first, partly before the body is read.)
pub async fn dispatch(
    registry: &Registry,
    identity: auth::Identity,
    request: IncomingRequest,
    request_id: String,
) -> Response {
    // Until the service is known, errors are rendered in the JSON 1.1 form, which rest-json
    // clients read as well (both look at `X-Amzn-ErrorType` and `__type`).
    let mut protocol = Protocol::AwsJson;
    let query_shaped = query::is_query_request(&request);
    let result = async {
        if let Some(service) = registry.query_services.get(&identity.service) {
            return Err(Answer::Query(
                call_query(service.as_ref(), &identity, &request, &request_id).await,
            ));
        }
        let registered = registry.services.get(&identity.service).ok_or_else(|| {
            let error = ApiError::unknown_operation(format!(
                "Sluice does not serve the service '{}'",
                identity.service
            ));
            // Answer in the protocol the client expects, so that it can print the message.
            if query_shaped {
                Answer::Query(query::render_error(&error, None, &request_id))
            } else if REST_XML_SERVICES.contains(&identity.service.as_str()) {
                Answer::Query(render_rest_xml_error(&error, &request_id))
            } else {
                Answer::Error(error)
            }
        })?;
        let service = &registered.service;
        let model = service.model();
        let ctx = RequestContext {
            account_id: identity.account_id,
            region: identity.region,
            access_key_id: identity.access_key_id,
            request_id: request_id.clone(),
            received_at: OffsetDateTime::now_utc(),
        };
        if let Some(router) = registered.rest_router() {
            protocol = Protocol::RestJson;
            let (operation, mut input) = router.decode(model, &request).map_err(|error| {
                match (error.code.as_str(), &error.message) {
                    ("SerializationException", Some(message)) => {
                        service.type_error(message.clone())
                    }
                    _ => error,
                }
            })?;
            validate(service.as_ref(), operation, &mut input, protocol)?;
            tracing::debug!(service = %identity.service, op = %operation.name, "Calling operation.");
            let output = service.call(&ctx, operation, input, protocol).await?;
            Ok::<_, Answer>(rest_json::encode_output(operation, output))
        } else {
            let (operation, mut input) = aws_json::decode(model, &request)?;
            validate(service.as_ref(), operation, &mut input, protocol)?;
            tracing::debug!(service = %identity.service, op = %operation.name, "Calling operation.");
            let output = service.call(&ctx, operation, input, protocol).await?;
            Ok(aws_json::encode_output(output))
        }
    }
    .await;
    match result {
        Ok(response) => response,
        Err(Answer::Error(error)) if query_shaped => query::render_error(&error, None, &request_id),
        Err(Answer::Error(error)) => render_error(&error, protocol),
        Err(Answer::Query(response)) => response,
    }
}

/// REST-XML services Sluice does not serve (S3 itself is served before `dispatch`).
const REST_XML_SERVICES: &[&str] = &["route53", "cloudfront", "s3-outposts"];

/// How `dispatch` leaves early: an error still to render, or a finished answer.
enum Answer {
    Error(ApiError),
    Query(Response),
}

impl From<ApiError> for Answer {
    fn from(error: ApiError) -> Self {
        Answer::Error(error)
    }
}

async fn call_query(
    service: &dyn query::QueryService,
    identity: &auth::Identity,
    request: &IncomingRequest,
    request_id: &str,
) -> Response {
    let ctx = RequestContext {
        account_id: identity.account_id.clone(),
        region: identity.region.clone(),
        access_key_id: identity.access_key_id.clone(),
        request_id: request_id.to_owned(),
        received_at: OffsetDateTime::now_utc(),
    };
    let params = query::params(request);
    let Some(action) = query::param(&params, "Action") else {
        let error = ApiError::with_status(
            "MissingAction",
            400,
            "Missing Action parameter in the request",
        );
        return query::render_error(&error, Some(service.namespace()), request_id);
    };
    tracing::debug!(service = %identity.service, op = %action, "Calling operation.");
    match service.call(&ctx, action, &params).await {
        Ok(result) => query::render_output(service.namespace(), action, &result, request_id),
        Err(error) => query::render_error(&error, Some(service.namespace()), request_id),
    }
}

/// The REST-XML error body (`<ErrorResponse><Error>`), which botocore reads for every
/// REST-XML service.
fn render_rest_xml_error(error: &ApiError, request_id: &str) -> Response {
    query::render_error(error, None, request_id)
}

fn validate(
    service: &dyn Service,
    operation: &model::Operation,
    input: &mut Value,
    protocol: Protocol,
) -> Result<(), ApiError> {
    let Some(input_ref) = &operation.input else {
        *input = Value::Object(Default::default());
        return Ok(());
    };
    match service
        .model()
        .validate_input(&input_ref.shape, input, protocol)
    {
        Ok(()) => Ok(()),
        Err(InputError::Type(message)) => Err(service.type_error(message)),
        Err(InputError::Constraints(violations)) => Err(service.validation_error(&violations)),
    }
}

/// Renders an error the way both JSON protocols do: the code in `__type` and in
/// `X-Amzn-ErrorType`, the message and the shape's extra members in the body.
pub fn render_error(error: &ApiError, protocol: Protocol) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let content_type = match protocol {
        Protocol::AwsJson => aws_json::CONTENT_TYPE,
        Protocol::RestJson => rest_json::CONTENT_TYPE,
    };
    let mut response = (status, error_body(error)).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&error.code) {
        headers.insert("x-amzn-ErrorType", value);
    }
    response
}

/// The JSON body of an error, the same in both JSON protocols: `__type`, the message and the
/// shape's extra members. Also used for the answers written below hyper (`unparsable`).
pub fn error_body(error: &ApiError) -> String {
    let mut body = serde_json::Map::new();
    body.insert("__type".to_owned(), Value::String(error.code.clone()));
    if let Some(message) = &error.message {
        body.insert(
            error.message_member.to_owned(),
            Value::String(message.clone()),
        );
    }
    for (name, value) in &error.fields {
        body.insert(name.clone(), value.clone());
    }
    Value::Object(body).to_string()
}
