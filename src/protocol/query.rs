//! The AWS query protocol (STS, IAM and other older services): form-encoded `Action=...`
//! parameters in, XML out, errors as `<ErrorResponse>`.
//!
//! Only what Sluice answers in this protocol lives here: reading the parameters, wrapping a
//! result in `<ActionResponse><ActionResult>`, and the one error renderer.

use async_trait::async_trait;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{ApiError, IncomingRequest, RequestContext};

/// The content type of every query-protocol answer.
pub const CONTENT_TYPE: &str = "text/xml";

/// A service that speaks the query protocol.
#[async_trait]
pub trait QueryService: Send + Sync + 'static {
    /// The XML namespace of its responses, e.g. `https://sts.amazonaws.com/doc/2011-06-15/`.
    fn namespace(&self) -> &'static str;

    /// Runs `action` and returns the XML inside its `<ActionResult>` element (escaped).
    async fn call(
        &self,
        ctx: &RequestContext,
        action: &str,
        params: &[(String, String)],
    ) -> Result<String, ApiError>;
}

/// Whether a request is shaped like a query-protocol call: a form body or an `Action`
/// parameter in the query string.
pub fn is_query_request(request: &IncomingRequest) -> bool {
    is_query_shaped(&request.headers, &request.raw_query)
}

/// [`is_query_request`] from the head alone, for answers given before the body is read.
pub fn is_query_shaped(headers: &axum::http::HeaderMap, raw_query: &str) -> bool {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    form || super::rest_json::parse_query(raw_query)
        .iter()
        .any(|(name, _)| name == "Action")
}

/// The parameters of a query request: the query string's, then the form body's.
pub fn params(request: &IncomingRequest) -> Vec<(String, String)> {
    let mut pairs = super::rest_json::parse_query(&request.raw_query);
    pairs.extend(super::rest_json::parse_query(&String::from_utf8_lossy(
        &request.body,
    )));
    pairs
}

/// The value of the first parameter called `name`.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Escapes text for an XML element (`<`, `>`, `&`; quotes stay readable) or a
/// double-quoted attribute value.
pub fn escape(text: &str) -> String {
    quick_xml::escape::partial_escape(text).replace('"', "&quot;")
}

fn xml_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// Wraps an action's result the way the query protocol does.
pub fn render_output(namespace: &str, action: &str, result: &str, request_id: &str) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"{namespace}\"><{action}Result>{result}</{action}Result>\
         <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        escape(request_id)
    );
    xml_response(StatusCode::OK, body)
}

/// Renders an error as query-protocol clients parse it: `<ErrorResponse><Error>` with the
/// fault type (`Sender` for client errors), code and message.
pub fn render_error(error: &ApiError, namespace: Option<&str>, request_id: &str) -> Response {
    let fault = if error.status >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    let xmlns = namespace
        .map(|namespace| format!(" xmlns=\"{namespace}\""))
        .unwrap_or_default();
    let message = error.message.as_deref().map(escape).unwrap_or_default();
    let body = format!(
        "<ErrorResponse{xmlns}><Error><Type>{fault}</Type><Code>{}</Code><Message>{message}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        escape(&error.code),
        escape(request_id)
    );
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    xml_response(status, body)
}

/// The query protocol's name for an authentication error that the JSON protocols name
/// differently: the "Common Errors" of query APIs (STS, IAM) say `InvalidClientTokenId` where
/// Kinesis says `UnrecognizedClientException`, and so on.
pub fn common_error(mut error: ApiError) -> ApiError {
    let code = match error.code.as_str() {
        "UnrecognizedClientException" => "InvalidClientTokenId",
        "InvalidSignatureException" => "SignatureDoesNotMatch",
        "IncompleteSignatureException" => "IncompleteSignature",
        "MissingAuthenticationTokenException" => "MissingAuthenticationToken",
        _ => return error,
    };
    error.code = code.to_owned();
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_pairs_are_decoded() {
        let pairs = crate::protocol::rest_json::parse_query(
            "Action=GetCallerIdentity&Version=2011-06-15&X=a+b%2Fc&flag",
        );
        assert_eq!(param(&pairs, "Action"), Some("GetCallerIdentity"));
        assert_eq!(param(&pairs, "X"), Some("a b/c"));
        assert_eq!(param(&pairs, "flag"), Some(""));
    }
}
