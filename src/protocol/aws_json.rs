//! `awsJson1_0` / `awsJson1_1`: every operation is a `POST /` whose `X-Amz-Target` header names
//! it (`Logs_20140328.PutDestination`) and whose body is the input structure as JSON.

use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::model::{Operation, ServiceModel};
use super::{ApiError, IncomingRequest};

/// The content type of JSON 1.1 responses (clients do not check the minor version).
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Finds the operation named by `X-Amz-Target` and parses the body.
pub fn decode<'m>(
    model: &'m ServiceModel,
    request: &IncomingRequest,
) -> Result<(&'m Operation, Value), ApiError> {
    let target = request
        .headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    // Split on the last '.': some target prefixes contain dots themselves
    // (`com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.CreateChannel`). Smithy-based
    // SDKs (aws-sdk-rust) send only the service shape name, the prefix's last segment
    // (`CloudTrail_20131101.CreateChannel`); both name the same operation.
    let expected = model.metadata.target_prefix.as_deref().unwrap_or_default();
    let short = expected.rsplit('.').next().unwrap_or_default();
    let operation = target
        .rsplit_once('.')
        .filter(|(prefix, _)| !expected.is_empty() && (*prefix == expected || *prefix == short))
        .and_then(|(_, name)| model.operations.get(name))
        .ok_or_else(|| ApiError::unknown_operation(format!("Unknown operation '{target}'")))?;
    if request.method != Method::POST {
        return Err(ApiError::unknown_operation(format!(
            "Operation '{target}' must be called with POST"
        )));
    }
    let content_type = request
        .headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if !matches!(
        media_type,
        "application/x-amz-json-1.0" | "application/x-amz-json-1.1" | "application/json"
    ) {
        // Not confirmed against AWS: a body in another media type cannot be read as this
        // protocol's input, so it is a SerializationException rather than a guess at the format.
        return Err(ApiError::serialization(format!(
            "Unsupported content type '{content_type}': expected {CONTENT_TYPE}"
        )));
    }
    let input = if request.body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice::<Value>(&request.body)
            .map_err(|err| ApiError::serialization(format!("Malformed JSON body: {err}")))?
    };
    if !input.is_object() {
        return Err(ApiError::serialization(
            "The request body must be a JSON object",
        ));
    }
    Ok((operation, input))
}

/// Frames an operation's encoded output (the kit writes `{}` for operations without one).
pub fn encode_output(body: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
    response
}
