//! HCP Terraform (Terraform Cloud): the audit trails API
//! (`GET {base}/api/v2/organization/audit-trail`) with an organization API token sent as
//! `Authorization: Bearer <token>` (AppFabric's `apiKey` authorization for TERRAFORMCLOUD).
//! `{base}` is `https://app.terraform.io`; the token names the organization (the tenant).
//!
//! Paging is by page number under a `since` time. The cursor is the next page's URL while
//! `pagination.next_page` is set, and then a URL asking again from the newest event's time, so
//! a poll re-reads at most the events of that instant (skipped as already delivered).
//! Events map to OCSF API Activity (6003).

use async_trait::async_trait;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{ApiKey, AppConnector, ConnectorError, Page};

/// AppFabric's name of the app.
pub const APP: &str = "TERRAFORMCLOUD";
/// Events per page (the API's largest page).
const PAGE_SIZE: u32 = 1000;
/// How far back the first poll reaches.
const FIRST_WINDOW: time::Duration = time::Duration::days(7);

/// The HCP Terraform connector.
pub struct Terraform;

fn url(base: &str, since: &str, page: u64) -> String {
    let since: String =
        percent_encoding::utf8_percent_encode(since, percent_encoding::NON_ALPHANUMERIC).collect();
    format!(
        "{base}/api/v2/organization/audit-trail?since={since}&page%5Bnumber%5D={page}&page%5Bsize%5D={PAGE_SIZE}"
    )
}

async fn get(
    http: &reqwest::Client,
    url: &str,
    key: &ApiKey,
) -> Result<reqwest::Response, ConnectorError> {
    let response = http
        .get(url)
        .bearer_auth(&key.0)
        .header(reqwest::header::ACCEPT, "application/vnd.api+json")
        .send()
        .await?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        let reset = response
            .headers()
            .get("x-ratelimit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|seconds| OffsetDateTime::now_utc().unix_timestamp() + seconds.ceil() as i64);
        return Err(ConnectorError::RateLimited { reset });
    }
    let body: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(ConnectorError::Refused(format!("HTTP {status}: {body}")));
    }
    Err(ConnectorError::Failed(format!(
        "HCP Terraform answered HTTP {status}: {body}"
    )))
}

#[async_trait]
impl AppConnector for Terraform {
    fn app(&self) -> &'static str {
        APP
    }

    fn default_base(&self, _tenant_id: &str) -> String {
        "https://app.terraform.io".to_owned()
    }

    async fn validate(
        &self,
        http: &reqwest::Client,
        base: &str,
        key: &ApiKey,
    ) -> Result<(), ConnectorError> {
        get(
            http,
            &format!("{base}/api/v2/organization/audit-trail?page%5Bsize%5D=1"),
            key,
        )
        .await
        .map(drop)
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        base: &str,
        key: &ApiKey,
        cursor: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Page, ConnectorError> {
        let request = match cursor {
            Some(next) if next.starts_with(&format!("{base}/")) => next.to_owned(),
            Some(next) => {
                return Err(ConnectorError::Failed(format!(
                    "cursor {next:?} is not under {base}"
                )))
            }
            None => url(
                base,
                &(now - FIRST_WINDOW).format(&Rfc3339).unwrap_or_default(),
                1,
            ),
        };
        let body = get(http, &request, key).await?.bytes().await?;
        let body: Value = serde_json::from_slice(&body).map_err(|err| {
            ConnectorError::Failed(format!("HCP Terraform's answer is not JSON: {err}"))
        })?;
        let events: Vec<Value> = body
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| {
                ConnectorError::Failed("HCP Terraform's answer has no data".to_owned())
            })?;
        let since = param(&request, "since").unwrap_or_default();
        let next = match body
            .pointer("/pagination/next_page")
            .and_then(Value::as_u64)
        {
            Some(page) => url(base, &since, page),
            None => {
                let newest = events
                    .iter()
                    .filter_map(|e| e.get("timestamp").and_then(Value::as_str))
                    .max()
                    .map(str::to_owned)
                    .unwrap_or(since);
                url(base, &newest, 1)
            }
        };
        Ok(Page {
            events,
            next: Some(next),
        })
    }

    fn event_id(&self, event: &Value) -> Option<String> {
        event.get("id").and_then(Value::as_str).map(str::to_owned)
    }

    fn to_ocsf(&self, event: &Value) -> Value {
        to_ocsf(event)
    }
}

/// A decoded query parameter of a URL.
fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| {
            percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .ok()
        })
        .map(|value| value.into_owned())
}

/// An audit-trail event as OCSF 1.1.0 API Activity (6003). The audit trail records no client
/// address, which the class requires: `src_endpoint` names it `unknown`.
pub fn to_ocsf(event: &Value) -> Value {
    let text = |pointer: &str| event.pointer(pointer).and_then(Value::as_str);
    let action = text("/resource/action").unwrap_or("unknown");
    let (activity_id, activity_name) = match action {
        "create" => (1, "Create"),
        "read" | "show" | "index" => (2, "Read"),
        "update" => (3, "Update"),
        "destroy" | "delete" => (4, "Delete"),
        _ => (99, "Other"),
    };
    let time = text("/timestamp")
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .map_or(0, |t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
    let mut user = serde_json::Map::new();
    for (key, pointer) in [
        ("uid", "/auth/accessor_id"),
        ("name", "/auth/description"),
        ("type", "/auth/type"),
    ] {
        if let Some(value) = text(pointer) {
            user.insert(key.to_owned(), json!(value));
        }
    }
    if user.get("uid").is_none() && user.get("name").is_none() {
        user.insert("name".to_owned(), json!("unknown"));
    }
    let resource_type = text("/resource/type").unwrap_or("unknown");
    json!({
        "class_uid": 6003,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": 6003 * 100 + activity_id,
        "type_name": format!("API Activity: {activity_name}"),
        "time": time,
        "severity_id": 1,
        "severity": "Informational",
        "status_id": 0,
        "status": "Unknown",
        "actor": {"user": user},
        "api": {
            "operation": format!("{resource_type}.{action}"),
            "service": {"name": "HCP Terraform"},
            "request": {"uid": text("/request/id").unwrap_or("unknown")},
        },
        "resources": [{"uid": text("/resource/id").unwrap_or("unknown"), "type": resource_type}],
        "src_endpoint": {"name": "unknown"},
        "metadata": {
            "product": {"name": "HCP Terraform", "vendor_name": "HashiCorp"},
            "version": "1.1.0",
            "event_code": format!("{}.{resource_type}.{action}", text("/type").unwrap_or("Resource")),
            "uid": text("/id").unwrap_or(""),
            "original_time": text("/timestamp").unwrap_or(""),
        },
        "raw_data": event.to_string(),
        "unmapped": {
            "auth": event.get("auth").cloned().unwrap_or(Value::Null),
            "resource_meta": event.pointer("/resource/meta").cloned().unwrap_or(Value::Null),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_trail_events_are_api_activity() {
        let event = json!({"id": "ae66e491", "version": "0", "type": "Resource",
            "timestamp": "2020-06-30T17:52:46.000Z",
            "auth": {"accessor_id": "user-MaoGS2", "description": "ann", "type": "Client", "impersonator_id": null, "organization_id": "org-AGLw"},
            "request": {"id": "4ba1c9b2"}, "resource": {"id": "run-KTuq", "type": "run", "action": "apply", "meta": null}});
        let ocsf = to_ocsf(&event);
        assert_eq!(ocsf["type_uid"], 600399);
        assert_eq!(ocsf["api"]["operation"], "run.apply");
        assert_eq!(ocsf["actor"]["user"]["uid"], "user-MaoGS2");
        assert_eq!(ocsf["time"], 1593539566000i64);
        let next = url("https://t", "2020-06-30T17:52:46Z", 2);
        assert_eq!(
            param(&next, "since").as_deref(),
            Some("2020-06-30T17:52:46Z")
        );
    }
}
