//! The HTTP front: one listener for every service, the `/_sluice/*` endpoints, the browser
//! guards (Host and Origin checks), and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::protocol::auth::Authenticator;
use crate::protocol::model::Protocol;
use crate::protocol::{dispatch, render_error, ApiError, IncomingRequest, Registry};
use crate::store::Store;

/// The largest request body accepted: PutLogEvents batches are up to 1 MiB of events, and
/// the JSON around them adds a little.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// What every request handler shares.
pub struct AppState {
    /// The served services.
    pub registry: Registry,
    /// How callers are authenticated.
    pub authenticator: Authenticator,
    /// The store, for `/_sluice/reset`.
    pub store: Arc<dyn Store>,
    /// Browser origins allowed by configuration.
    pub allowed_origins: Vec<String>,
    /// Whether the listener is on a loopback address, which turns on the Host check.
    pub loopback: bool,
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

fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "message": message }).to_string(),
    )
        .into_response()
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

    // DNS rebinding: a page on evil.example that resolves its name to 127.0.0.1 still sends
    // `Host: evil.example`, so a loopback listener answers only loopback host names.
    if state.loopback {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !is_loopback_host(host) {
            return plain(
                StatusCode::FORBIDDEN,
                "Sluice on a loopback address answers only loopback Host names",
            );
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
        return plain(
            StatusCode::FORBIDDEN,
            "Cross-origin requests are not allowed by this Sluice configuration",
        );
    }
    if parts.method == Method::OPTIONS {
        let (Some(origin), true) = (&origin, origin_allowed) else {
            return plain(StatusCode::FORBIDDEN, "CORS preflight refused");
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
        path if path.starts_with("/_sluice/") => {
            plain(StatusCode::NOT_FOUND, "No such Sluice endpoint")
        }
        // S3: handed over with the body unread, since its bodies stream (see services::s3).
        _ if state.registry.streaming_for(&parts).is_some() => {
            match state.registry.streaming_for(&parts) {
                Some(service) => {
                    service
                        .handle(&state.authenticator, parts, Body::new(body), request_id)
                        .await
                }
                None => plain(StatusCode::NOT_FOUND, "No such service"),
            }
        }
        _ => {
            let body = match to_bytes(Body::new(body), MAX_BODY_BYTES).await {
                Ok(body) => body,
                Err(_) => {
                    let error = ApiError::with_status(
                        "SerializationException",
                        413,
                        format!("The request body is larger than {MAX_BODY_BYTES} bytes"),
                    );
                    return render_error(&error, Protocol::AwsJson);
                }
            };
            let incoming = IncomingRequest {
                method: parts.method.clone(),
                raw_path: parts.uri.path().to_owned(),
                raw_query: parts.uri.query().unwrap_or_default().to_owned(),
                headers: parts.headers.clone(),
                body,
            };
            dispatch(
                &state.registry,
                &state.authenticator,
                incoming,
                request_id.to_owned(),
            )
            .await
        }
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
    let since = storage.since.and_then(|since| {
        time::OffsetDateTime::from(since)
            .format(&time::format_description::well_known::Rfc3339)
            .ok()
    });
    let body = json!({
        "status": if storage.durable { "ready" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "services": state.registry.names(),
        "auth": if state.authenticator.is_strict() { "strict" } else { "emulator" },
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

async fn reset(state: &AppState) -> Response {
    if state.authenticator.is_strict() {
        return plain(
            StatusCode::FORBIDDEN,
            "Reset is disabled in strict (production) mode",
        );
    }
    match state.store.reset().await {
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

/// Serves until `shutdown` completes, then finishes in-flight requests and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
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
