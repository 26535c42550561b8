//! `restJson1`: the operation is found from the method and the path template of the model's
//! `http` binding; input members come from path labels, the query string, headers and the
//! JSON body as the model binds them, and outputs go back the same way.

use std::collections::HashMap;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use super::model::{
    parse_timestamp, Location, Operation, Protocol, ServiceModel, ShapeType, TimestampFormat,
    TimestampPlace,
};
use super::{ApiError, IncomingRequest};

/// The content type of rest-json responses.
pub const CONTENT_TYPE: &str = "application/json";

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Label(String),
    /// `{name+}`: takes the rest of the path, slashes included.
    Greedy(String),
}

#[derive(Debug)]
struct Route {
    method: String,
    segments: Vec<Segment>,
    /// Query parameters the template itself fixes, e.g. `?tagging`.
    fixed_query: Vec<(String, Option<String>)>,
    operation: String,
}

/// The route table of one rest-json service, built from its model.
#[derive(Debug)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// Builds the table. Routes with more literal segments are tried first so that
    /// `/tags/{arn}` never shadows a longer literal path.
    pub fn new(model: &ServiceModel) -> Self {
        debug_assert!(
            body_only_outputs(model),
            "an output member is bound to a header or the status; encode_output writes bodies only"
        );
        let mut routes: Vec<Route> = model
            .operations
            .values()
            .map(|operation| {
                let (path, query) = operation
                    .http
                    .request_uri
                    .split_once('?')
                    .unwrap_or((&operation.http.request_uri, ""));
                let segments = path
                    .split('/')
                    .filter(|segment| !segment.is_empty())
                    .map(|segment| {
                        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                            Some(label) => match label.strip_suffix('+') {
                                Some(greedy) => Segment::Greedy(greedy.to_owned()),
                                None => Segment::Label(label.to_owned()),
                            },
                            None => Segment::Literal(segment.to_owned()),
                        }
                    })
                    .collect();
                let fixed_query = query
                    .split('&')
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| match pair.split_once('=') {
                        Some((key, value)) => (key.to_owned(), Some(value.to_owned())),
                        None => (pair.to_owned(), None),
                    })
                    .collect();
                Route {
                    method: operation.http.method.clone(),
                    segments,
                    fixed_query,
                    operation: operation.name.clone(),
                }
            })
            .collect();
        routes.sort_by_key(|route| {
            let literals = route
                .segments
                .iter()
                .filter(|s| matches!(s, Segment::Literal(_)))
                .count();
            (
                std::cmp::Reverse(literals),
                std::cmp::Reverse(route.fixed_query.len()),
            )
        });
        Self { routes }
    }

    /// Finds the operation for a method and raw path, with its path labels decoded once.
    pub fn route(
        &self,
        method: &str,
        raw_path: &str,
        query: &[(String, String)],
    ) -> Option<(&str, HashMap<String, String>)> {
        let segments: Vec<&str> = raw_path.split('/').filter(|s| !s.is_empty()).collect();
        'routes: for route in self.routes.iter().filter(|route| route.method == method) {
            let fixed_ok = route.fixed_query.iter().all(|(key, value)| {
                query
                    .iter()
                    .any(|(k, v)| k == key && value.as_ref().is_none_or(|value| value == v))
            });
            if !fixed_ok {
                continue;
            }
            let mut labels = HashMap::new();
            for (index, segment) in route.segments.iter().enumerate() {
                match segment {
                    Segment::Literal(literal) => {
                        if segments.get(index) != Some(&literal.as_str()) {
                            continue 'routes;
                        }
                    }
                    Segment::Label(name) => {
                        let Some(raw) = segments.get(index) else {
                            continue 'routes;
                        };
                        labels.insert(name.clone(), decode_component(raw));
                    }
                    Segment::Greedy(name) => {
                        if index >= segments.len() {
                            continue 'routes;
                        }
                        let rest = segments[index..].join("/");
                        labels.insert(name.clone(), decode_component(&rest));
                        return Some((&route.operation, labels));
                    }
                }
            }
            if segments.len() == route.segments.len() {
                return Some((&route.operation, labels));
            }
        }
        None
    }

    /// Finds the operation and assembles its input from labels, query, headers and body.
    pub fn decode<'m>(
        &self,
        model: &'m ServiceModel,
        request: &IncomingRequest,
    ) -> Result<(&'m Operation, Value), ApiError> {
        let query = parse_query(&request.raw_query);
        let (name, labels) = self
            .route(request.method.as_str(), &request.raw_path, &query)
            .ok_or_else(|| {
                ApiError::with_status(
                    "UnknownOperationException",
                    404,
                    format!(
                        "No operation matches {} {}",
                        request.method, request.raw_path
                    ),
                )
            })?;
        let operation = model
            .operations
            .get(name)
            .ok_or_else(|| ApiError::internal(format!("route to unknown operation {name}")))?;
        let Some(input_ref) = &operation.input else {
            return Ok((operation, Value::Object(Map::new())));
        };
        let Some(input_shape) = model.shape(&input_ref.shape) else {
            return Ok((operation, Value::Object(Map::new())));
        };
        let mut input = Map::new();
        let has_body_members = input_shape.members.values().any(|m| m.location.is_none());
        if let Some(payload) = &input_shape.payload {
            if !request.body.is_empty() {
                let value = serde_json::from_slice::<Value>(&request.body).map_err(|err| {
                    ApiError::serialization(format!("Malformed JSON body: {err}"))
                })?;
                input.insert(payload.clone(), value);
            }
        } else if has_body_members && !request.body.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<Value>(&request.body) {
                Ok(Value::Object(body)) => input.extend(body),
                Ok(_) => {
                    return Err(ApiError::serialization(
                        "The request body must be a JSON object",
                    ))
                }
                Err(err) => {
                    return Err(ApiError::serialization(format!(
                        "Malformed JSON body: {err}"
                    )))
                }
            }
        }
        for (member_name, member) in &input_shape.members {
            let wire_name = member.location_name.as_deref().unwrap_or(member_name);
            let shape = model.shape(&member.shape);
            let shape_type = shape.map_or(ShapeType::String, |s| s.shape_type);
            let format = member
                .timestamp_format
                .or(shape.and_then(|s| s.timestamp_format));
            let value = match member.location {
                Some(Location::Uri) => labels.get(wire_name).map(|raw| Value::String(raw.clone())),
                Some(Location::Querystring) => {
                    let values: Vec<&String> = query
                        .iter()
                        .filter(|(key, _)| key == wire_name)
                        .map(|(_, value)| value)
                        .collect();
                    if shape_type == ShapeType::List {
                        (!values.is_empty()).then(|| {
                            Value::Array(
                                values
                                    .into_iter()
                                    .map(|v| Value::String(v.clone()))
                                    .collect(),
                            )
                        })
                    } else {
                        values
                            .first()
                            .map(|raw| scalar(raw, shape_type, format, TimestampPlace::Query))
                            .transpose()?
                    }
                }
                Some(Location::Header) => request
                    .headers
                    .get(wire_name)
                    .and_then(|v| v.to_str().ok())
                    .map(|raw| scalar(raw, shape_type, format, TimestampPlace::Header))
                    .transpose()?,
                _ => continue,
            };
            if let Some(value) = value {
                input.insert(member_name.clone(), value);
            }
        }
        Ok((operation, Value::Object(input)))
    }
}

/// Converts a string from a label, query parameter or header into the member's JSON type.
fn scalar(
    raw: &str,
    shape_type: ShapeType,
    format: Option<TimestampFormat>,
    place: TimestampPlace,
) -> Result<Value, ApiError> {
    let bad =
        || ApiError::serialization(format!("Cannot parse '{raw}' as {}", shape_type.as_str()));
    Ok(match shape_type {
        ShapeType::Integer | ShapeType::Long => Value::from(raw.parse::<i64>().map_err(|_| bad())?),
        ShapeType::Float | ShapeType::Double => {
            serde_json::Number::from_f64(raw.parse::<f64>().map_err(|_| bad())?)
                .map(Value::Number)
                .ok_or_else(bad)?
        }
        ShapeType::Boolean => Value::Bool(raw.parse::<bool>().map_err(|_| bad())?),
        ShapeType::Timestamp => parse_timestamp(
            &Value::String(raw.to_owned()),
            format,
            Protocol::RestJson,
            place,
        )
        .ok_or_else(bad)?,
        _ => Value::String(raw.to_owned()),
    })
}

/// Writes an operation's encoded output with its success status (201 for creates, 204 for
/// deletes ...). The body is the typed output as the kit encoded it; no served operation binds
/// an output member to a header or the status (`Router::new` checks).
pub fn encode_output(operation: &Operation, body: Vec<u8>) -> Response {
    let status =
        StatusCode::from_u16(operation.http.response_code.unwrap_or(200)).unwrap_or(StatusCode::OK);
    if status == StatusCode::NO_CONTENT {
        return status.into_response();
    }
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// Whether every output member of the model travels in the body, which is all the kit writes.
/// True of every served model; a model that binds an output member to a header or the status
/// code needs the kit to take those members out first.
pub fn body_only_outputs(model: &ServiceModel) -> bool {
    model
        .operations
        .values()
        .filter_map(|operation| operation.output.as_ref())
        .filter_map(|output| model.shape(&output.shape))
        .all(|shape| {
            shape
                .members
                .values()
                .all(|member| member.location.is_none())
        })
}

/// Splits a raw query string into decoded pairs (`+` is a space, as form encoding has it).
pub fn parse_query(raw_query: &str) -> Vec<(String, String)> {
    raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_query_component(key), decode_query_component(value))
        })
        .collect()
}

fn decode_query_component(raw: &str) -> String {
    decode_component(&raw.replace('+', " "))
}

/// Decodes a percent-encoded component exactly once.
fn decode_component(raw: &str) -> String {
    percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn appfabric() -> ServiceModel {
        ServiceModel::parse(include_str!("../../models/appfabric.json")).expect("model parses")
    }

    #[test]
    fn routes_every_appfabric_template() {
        let model = appfabric();
        let router = Router::new(&model);
        let arn = "arn%3Aaws%3Aappfabric%3Aus-east-1%3A111122223333%3Aappbundle%2Fabc";
        /// method, path, expected operation, expected labels
        type Case<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, &'a str)]);
        let cases: &[Case] = &[
            ("POST", "/appbundles", "CreateAppBundle", &[]),
            ("GET", "/appbundles", "ListAppBundles", &[]),
            (
                "GET",
                "/appbundles/b1",
                "GetAppBundle",
                &[("appBundleIdentifier", "b1")],
            ),
            (
                "DELETE",
                "/appbundles/b1",
                "DeleteAppBundle",
                &[("appBundleIdentifier", "b1")],
            ),
            ("POST", "/appbundles/b1/ingestions", "CreateIngestion", &[]),
            (
                "GET",
                "/appbundles/b1/ingestions/i1",
                "GetIngestion",
                &[("ingestionIdentifier", "i1")],
            ),
            (
                "POST",
                "/appbundles/b1/ingestions/i1/start",
                "StartIngestion",
                &[],
            ),
            (
                "POST",
                "/appbundles/b1/ingestions/i1/stop",
                "StopIngestion",
                &[],
            ),
            (
                "PATCH",
                "/appbundles/b1/ingestions/i1/ingestiondestinations/d1",
                "UpdateIngestionDestination",
                &[("ingestionDestinationIdentifier", "d1")],
            ),
            (
                "POST",
                "/appbundles/b1/ingestions/i1/ingestiondestinations",
                "CreateIngestionDestination",
                &[],
            ),
            (
                "POST",
                "/appbundles/b1/appauthorizations/a1/connect",
                "ConnectAppAuthorization",
                &[("appAuthorizationIdentifier", "a1")],
            ),
            (
                "POST",
                "/useraccess/batchget",
                "BatchGetUserAccessTasks",
                &[],
            ),
            (
                "GET",
                &format!("/tags/{arn}"),
                "ListTagsForResource",
                &[(
                    "resourceArn",
                    "arn:aws:appfabric:us-east-1:111122223333:appbundle/abc",
                )],
            ),
            ("POST", &format!("/tags/{arn}"), "TagResource", &[]),
            ("DELETE", &format!("/tags/{arn}"), "UntagResource", &[]),
        ];
        for (method, path, operation, labels) in cases {
            let (found, found_labels) = router
                .route(method, path, &[])
                .unwrap_or_else(|| panic!("{method} {path} routes"));
            assert_eq!(found, *operation, "{method} {path}");
            for (name, value) in *labels {
                assert_eq!(
                    found_labels.get(*name).map(String::as_str),
                    Some(*value),
                    "{method} {path} {name}"
                );
            }
        }
        for (method, path) in [
            ("PUT", "/appbundles"),
            ("GET", "/nothing"),
            ("GET", "/appbundles/b1/extra/x"),
        ] {
            assert!(
                router.route(method, path, &[]).is_none(),
                "{method} {path} must not route"
            );
        }
    }

    #[test]
    fn decodes_labels_query_and_body_into_one_input() {
        let model = appfabric();
        let router = Router::new(&model);
        let request = IncomingRequest {
            method: axum::http::Method::GET,
            raw_path: "/appbundles/b%2F1/ingestions".to_owned(),
            raw_query: "maxResults=5&nextToken=a%2Bb".to_owned(),
            headers: Default::default(),
            body: Default::default(),
        };
        let (operation, input) = router.decode(&model, &request).expect("decodes");
        assert_eq!(operation.name, "ListIngestions");
        assert_eq!(
            input,
            serde_json::json!({"appBundleIdentifier": "b/1", "maxResults": 5, "nextToken": "a+b"})
        );
    }

    #[test]
    fn an_output_without_a_body_is_no_content() {
        let model = appfabric();
        let response = encode_output(&model.operations["DeleteAppBundle"], Vec::new());
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}
