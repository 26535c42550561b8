//! The HTTP front: one listener for every service, the `/_sluice/*` endpoints, the browser
//! guards (Host and Origin checks), and graceful shutdown.

use std::sync::Arc;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{header, request, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use http_body_util::BodyExt;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::Limits;
use crate::protocol::auth::Authenticator;
use crate::protocol::model::Protocol;
use crate::protocol::{dispatch, query, render_error, ApiError, IncomingRequest, Registry};
use crate::store::Store;

/// The longest request target (path and query) served. No AWS API Sluice serves needs more
/// than a few KiB, even presigned with a session token; a longer one is refused (414).
pub const MAX_URL_BYTES: usize = 16 * 1024;

/// What every request handler shares.
pub struct AppState {
    /// The served services.
    pub registry: Registry,
    /// How callers are authenticated.
    pub authenticator: Authenticator,
    /// The store, for `/_sluice/reset`.
    pub store: Arc<dyn Store>,
    /// Which store it is (`sqlite`, `memory`, `postgres`), for `/_sluice/health`.
    pub store_kind: &'static str,
    /// This node's id and the leases it holds, for `/_sluice/health`.
    pub leases: Arc<crate::lease::Leases>,
    /// What else `/_sluice/reset` clears once the store is empty (S3's object files, the
    /// delivery backlog count).
    pub reset_hooks: Vec<Arc<dyn crate::store::ResetHook>>,
    /// The metrics `/_sluice/metrics` exports.
    pub metrics: Arc<prometheus_client::registry::Registry>,
    /// Browser origins allowed by configuration.
    pub allowed_origins: Vec<String>,
    /// Whether the listener is on a loopback address, which turns on the Host check.
    pub loopback: bool,
    /// Request size, connection and timeout limits.
    pub limits: Limits,
    /// The in-flight body budget: one permit per byte of request body held in memory.
    pub body_budget: Arc<Semaphore>,
}

impl AppState {
    /// The budget for request bodies in flight, sized from `limits`.
    pub fn body_budget(limits: &Limits) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(
            limits.max_in_flight_body_bytes.min(Semaphore::MAX_PERMITS),
        ))
    }
}

/// Builds the axum application: every path goes to [`handle`].
pub fn app(state: Arc<AppState>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

/// Whether a `Host` header names this machine: `localhost`, `*.localhost`, or a loopback IP.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // `[::1]:4566`
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        })
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A refusal by Sluice itself (not by a service), rendered like every other error.
fn refuse(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    render_error(
        &ApiError::with_status(code, status.as_u16(), message),
        Protocol::AwsJson,
    )
}

fn cors_headers(headers: &mut HeaderMap, origin: &str) {
    if let Ok(origin) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("x-amzn-RequestId, x-amzn-ErrorType, x-amz-request-id"),
    );
}

/// Serves any request, and stamps every response with its `x-amzn-RequestId`.
async fn handle(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut response = route(&state, request, &request_id).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-RequestId", value);
    }
    response
}

async fn route(state: &AppState, request: Request, request_id: &str) -> Response {
    let (parts, body) = request.into_parts();
    // Query-protocol clients (STS) read only XML errors, even before the body: the guards
    // answer them as every other refusal does.
    let query_shaped =
        query::is_query_shaped(&parts.headers, parts.uri.query().unwrap_or_default());
    let refuse_guard = |message: &str| {
        let error = ApiError::with_status("AccessDeniedException", 403, message);
        if query_shaped {
            query::render_error(&query::common_error(error), None, request_id)
        } else {
            render_error(&error, Protocol::AwsJson)
        }
    };

    // DNS rebinding: a page on evil.example that resolves its name to 127.0.0.1 still sends
    // `Host: evil.example`, so a loopback listener answers only loopback host names.
    if state.loopback {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !is_loopback_host(host) {
            return refuse_guard("Sluice on a loopback address answers only loopback Host names");
        }
    }

    // Browsers: no page may call Sluice unless the configuration names its origin.
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let origin_allowed = origin
        .as_ref()
        .is_some_and(|o| state.allowed_origins.iter().any(|a| a == o));
    if origin.is_some() && !origin_allowed {
        return refuse_guard("Cross-origin requests are not allowed by this Sluice configuration");
    }
    if parts.method == Method::OPTIONS {
        let (Some(origin), true) = (&origin, origin_allowed) else {
            return refuse(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                "CORS preflight refused",
            );
        };
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        cors_headers(headers, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("*"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        return response;
    }

    let mut response = match parts.uri.path() {
        "/_sluice/health" if parts.method == Method::GET => health(state),
        "/_sluice/reset" if parts.method == Method::POST => reset(state).await,
        "/_sluice/metrics" if parts.method == Method::GET => metrics(state),
        "/_sluice/dead-letters" if parts.method == Method::GET => {
            dead_letters(state, parts.uri.query().unwrap_or_default()).await
        }
        path if path.starts_with("/_sluice/") => refuse(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "No such Sluice endpoint",
        ),
        _ => match state.registry.streaming_for(&parts) {
            // S3: handed over with the body unread, since its bodies stream to disk (see
            // services::s3); the JSON limits and the body budget are for bodies held whole.
            Some(service) => {
                service
                    .handle(&state.authenticator, parts, Body::new(body), request_id)
                    .await
            }
            None => match api_request(state, parts, body, request_id).await {
                Ok(response) => response,
                Err(refusal) if query_shaped => refusal.into_query_response(request_id),
                Err(refusal) => refusal.into_response(),
            },
        },
    };
    if let (Some(origin), true) = (&origin, origin_allowed) {
        cors_headers(response.headers_mut(), origin);
    }
    response
}

/// Readiness, and whether writes are durable: `"status":"degraded"` with 503 while the store
/// refuses writes, so that a load balancer or an operator sees it (reads may still work).
fn health(state: &AppState) -> Response {
    let storage = state.store.health();
    let rfc3339 = |at: std::time::SystemTime| {
        time::OffsetDateTime::from(at)
            .format(&time::format_description::well_known::Rfc3339)
            .ok()
    };
    let since = storage.since.and_then(rfc3339);
    let leases: Vec<_> = state
        .leases
        .held()
        .into_iter()
        .map(|lease| json!({ "unit": lease.unit, "expires": rfc3339(lease.expires) }))
        .collect();
    let body = json!({
        "status": if storage.durable { "ready" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "services": state.registry.names(),
        "auth": if state.authenticator.is_strict() { "strict" } else { "emulator" },
        "node": {
            "id": state.leases.node(),
            "store": state.store_kind,
            "leases": leases,
        },
        "storage": if storage.durable {
            json!({ "durable": true })
        } else {
            json!({
                "durable": false,
                "reason": storage.reason,
                "since": since,
                "refusedWrites": storage.refused_writes,
                "restartRequired": storage.restart_required,
            })
        },
    });
    let status = if storage.durable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The metrics in the OpenMetrics text format, which Prometheus scrapes.
fn metrics(state: &AppState) -> Response {
    let mut text = String::new();
    if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &state.metrics) {
        return render_error(&ApiError::internal(err), Protocol::AwsJson);
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The most dead letters one `/_sluice/dead-letters` answer holds.
const MAX_DEAD_LETTERS_PER_PAGE: usize = 1000;

/// Deliveries given up on, oldest first: `?after=SEQUENCE&limit=N` (default 100, at most
/// 1000). In strict mode the payloads are left out: the endpoint is not signed, and they are
/// the accounts' data.
async fn dead_letters(state: &AppState, query: &str) -> Response {
    let mut after = 0i64;
    let mut limit = 100usize;
    for (name, value) in crate::protocol::rest_json::parse_query(query) {
        let parsed = match name.as_str() {
            "after" => value.parse().map(|v| after = v).is_ok(),
            "limit" => value
                .parse()
                .ok()
                .filter(|v| (1..=MAX_DEAD_LETTERS_PER_PAGE).contains(v))
                .map(|v| limit = v)
                .is_some(),
            _ => false,
        };
        if !parsed {
            return refuse(
                StatusCode::BAD_REQUEST,
                "InvalidParameterException",
                "Parameters are after=<sequence> and limit=<1-1000>",
            );
        }
    }
    let store = &*state.store;
    let listed = crate::pipeline::list_dead_letters(store, after, limit).await;
    let dropped = crate::pipeline::dead_letters_dropped(store).await;
    match (listed, dropped) {
        (Ok(mut letters), Ok(dropped)) => {
            if state.authenticator.is_strict() {
                letters.iter_mut().for_each(|letter| letter.data.clear());
            }
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                json!({ "deadLetters": letters, "dropped": dropped }).to_string(),
            )
                .into_response()
        }
        (Err(err), _) | (_, Err(err)) => render_error(&ApiError::internal(err), Protocol::AwsJson),
    }
}

async fn reset(state: &AppState) -> Response {
    if state.authenticator.is_strict() {
        return refuse(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "Reset is disabled in strict (production) mode",
        );
    }
    let mut result = state.store.reset().await.map_err(anyhow::Error::from);
    for hook in &state.reset_hooks {
        if result.is_ok() {
            result = hook.after_reset().await;
        }
    }
    match result {
        Ok(()) => {
            tracing::info!("State reset through /_sluice/reset.");
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                json!({ "reset": true }).to_string(),
            )
                .into_response()
        }
        Err(err) => render_error(&ApiError::internal(err), Protocol::AwsJson),
    }
}

/// Why an API request was answered before it reached its service.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    /// The target (path and query) is longer than [`MAX_URL_BYTES`].
    #[error("The request URI is longer than {MAX_URL_BYTES} bytes")]
    UrlTooLong,
    /// `Content-Length` (or the body read so far) is above `limits.max_body_bytes`.
    #[error("The request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The head failed authentication: the AWS error says why.
    #[error("{0}")]
    Unauthenticated(ApiError),
    /// The in-flight body budget stayed full for the whole body timeout.
    #[error("Too many request bodies are being received at once; retry later")]
    Busy,
    /// The body did not arrive within `limits.body_read_timeout`.
    #[error("The request body did not arrive within {0} seconds")]
    BodyTimeout(u64),
    /// The body could not be read as HTTP (for example a malformed chunk).
    #[error("The request body is malformed: {0}")]
    MalformedBody(String),
    /// The body is there but it is not what the signature covers.
    #[error("{0}")]
    BodyRejected(ApiError),
}

impl Refusal {
    /// Whether the connection is closed after the answer: when the request is too big or
    /// broken to read on, or its client too slow. Other refusals before the body discard it
    /// in the background instead (see [`discard_body`]).
    fn closes_connection(&self) -> bool {
        matches!(
            self,
            Refusal::UrlTooLong
                | Refusal::BodyTooLarge(_)
                | Refusal::BodyTimeout(_)
                | Refusal::MalformedBody(_)
        )
    }

    fn into_response(self) -> Response {
        let close = self.closes_connection();
        let response = render_error(&self.error(), Protocol::AwsJson);
        with_close(response, close)
    }

    /// The same refusal in the query protocol's XML.
    fn into_query_response(self, request_id: &str) -> Response {
        let close = self.closes_connection();
        let response = query::render_error(&query::common_error(self.error()), None, request_id);
        with_close(response, close)
    }

    fn error(&self) -> ApiError {
        match self {
            Refusal::Unauthenticated(error) | Refusal::BodyRejected(error) => error.clone(),
            Refusal::UrlTooLong => ApiError::with_status("UriTooLong", 414, self.to_string()),
            Refusal::BodyTooLarge(_) => {
                ApiError::with_status("SerializationException", 413, self.to_string())
            }
            Refusal::Busy => {
                ApiError::with_status("ServiceUnavailableException", 503, self.to_string())
            }
            Refusal::BodyTimeout(_) => {
                ApiError::with_status("RequestTimeoutException", 408, self.to_string())
            }
            Refusal::MalformedBody(_) => ApiError::new("SerializationException", self.to_string()),
        }
    }
}

/// Marks a response as the last on its connection when `close` is set.
fn with_close(mut response: Response, close: bool) -> Response {
    if close {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Serves an AWS API request, checking all that can be checked before reading its body:
/// target length, declared body size and authentication. The body is then read within the
/// body timeout, holding its share of the in-flight budget until the answer is ready.
async fn api_request(
    state: &AppState,
    parts: request::Parts,
    body: Body,
    request_id: &str,
) -> Result<Response, Refusal> {
    let limits = &state.limits;
    let target_length = parts
        .uri
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target_length > MAX_URL_BYTES {
        return Err(Refusal::UrlTooLong);
    }
    // hyper has already refused a malformed or repeated Content-Length; the hint is exact for
    // a Content-Length (and for no body at all), and unknown for a chunked body.
    let declared_length = body.size_hint().exact();
    if declared_length.is_some_and(|length| length > limits.max_body_bytes as u64) {
        return Err(Refusal::BodyTooLarge(limits.max_body_bytes));
    }
    let raw_path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or_default().to_owned();
    let pending = match state.authenticator.authenticate_head(
        &parts.method,
        &raw_path,
        &raw_query,
        &parts.headers,
    ) {
        Ok(pending) => pending,
        Err(error) => {
            if !expects_continue(&parts.headers) {
                discard_body(body, limits.body_read_timeout);
            }
            return Err(Refusal::Unauthenticated(error));
        }
    };

    let deadline = Instant::now() + limits.body_read_timeout;
    // Without a Content-Length (chunked), the body may be as large as the limit.
    let expected = declared_length.map_or(limits.max_body_bytes, |length| length as usize);
    let discard = !expects_continue(&parts.headers);
    let (body, _budget) = read_body(state, body, expected, deadline, discard).await?;

    let incoming = IncomingRequest {
        method: parts.method,
        raw_path,
        raw_query,
        headers: parts.headers,
        body,
    };
    let identity = pending.finish(&incoming).map_err(Refusal::BodyRejected)?;
    Ok(dispatch(&state.registry, identity, incoming, request_id.to_owned()).await)
}

/// Reads a body of `expected` bytes at most (`limits.max_body_bytes` at most), first taking
/// that many bytes of the in-flight budget; the permit is returned with the body so that the
/// budget stays taken until the request is answered. A body refused for want of budget is
/// discarded if `discard` (see [`discard_body`]).
async fn read_body(
    state: &AppState,
    body: Body,
    expected: usize,
    deadline: Instant,
    discard: bool,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), Refusal> {
    let limit = state.limits.max_body_bytes;
    let timeout = state.limits.body_read_timeout.as_secs();
    let budget = if expected == 0 {
        None
    } else {
        let permits = u32::try_from(expected).map_err(|_| Refusal::BodyTooLarge(limit))?;
        let acquire = state.body_budget.clone().acquire_many_owned(permits);
        match tokio::time::timeout_at(deadline, acquire).await {
            Ok(Ok(permit)) => Some(permit),
            Ok(Err(_)) | Err(_) => {
                if discard {
                    discard_body(body, state.limits.body_read_timeout);
                }
                return Err(Refusal::Busy);
            }
        }
    };
    let mut buffer = BytesMut::with_capacity(expected);
    let mut body = body;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(Refusal::BodyTimeout(timeout)),
            Ok(None) => break,
            Ok(Some(Err(error))) => return Err(Refusal::MalformedBody(error_chain(&error))),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if buffer.len() + data.len() > expected.min(limit) {
                return Err(if buffer.len() + data.len() > limit {
                    Refusal::BodyTooLarge(limit)
                } else {
                    Refusal::MalformedBody("more bytes than its Content-Length".to_owned())
                });
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok((buffer.freeze(), budget))
}

/// Reads and drops the rest of a refused request's body in the background, holding no more
/// than one frame at a time. Closing a socket with unread data in it resets the connection,
/// and the client may then lose the answer (an SDK would miss the clock-skew error it corrects
/// itself with); once the body is consumed the connection can also serve the next request.
/// Gives up, closing the connection, after `timeout` (or sooner, after the header timeout, as
/// the connection has answered and counts as reading its next request head).
fn discard_body(body: Body, timeout: std::time::Duration) {
    tokio::spawn(async move {
        let mut body = body;
        let drain = async { while let Some(Ok(_)) = body.frame().await {} };
        let _ = tokio::time::timeout(timeout, drain).await;
    });
}

/// Whether the client waits for `100 Continue` before sending its body: then a refusal
/// needs no discarding, and reading would only ask for the body.
fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// An error and its causes, as one line (hyper puts the useful part in the cause).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Wrappers (axum's) repeat the text of what they wrap.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Serves until `shutdown` completes, then finishes in-flight requests and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits;
    crate::listener::serve(listener, app(state), limits, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn host_check_accepts_only_loopback_names() {
        for good in [
            "localhost",
            "localhost:4566",
            "127.0.0.1:4566",
            "127.9.9.9",
            "[::1]:4566",
            "api.localhost:1",
            "LOCALHOST.",
        ] {
            assert!(is_loopback_host(good), "{good}");
        }
        for bad in [
            "",
            "evil.example",
            "evil.example:4566",
            "10.0.0.1:4566",
            "localhost.evil.example",
            "[::2]:80",
            "0.0.0.0:4566",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }
}
