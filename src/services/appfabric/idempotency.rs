//! `clientToken`: a create sent again with the same token does not create a second resource.
//!
//! A token is remembered in a record of its own, named `OPERATION/TOKEN` in the caller's
//! account and region, written in the same atomic batch as the resource it created (with
//! `Expect::Absent`, so two concurrent requests with one token cannot both create). The record
//! keeps a keyed fingerprint of the request's parameters and the response that was sent.
//!
//! - Same token, same parameters: the original response is sent again and nothing is created.
//! - Same token, different parameters: AWS documents an `IdempotentParameterMismatch` error,
//!   but the AppFabric model defines no such shape, so no client could parse it. Sluice answers
//!   `ConflictException` (409), which every AppFabric create lists in the model, naming the
//!   token as `resourceId`. What AWS sends on the wire here could not be confirmed.
//! - Tokens are remembered for 24 hours; after that a token may be used again.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{key, AppFabricError, IDEMPOTENCY};
use crate::protocol::RequestContext;
use crate::services::kit::{load, put};
use crate::services::Deps;
use crate::store::{Expect, Write};

/// How long a token is remembered.
const TOKEN_LIFETIME_MILLIS: i64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Serialize, Deserialize)]
struct TokenRecord {
    /// Keyed HMAC of the canonical parameters.
    fingerprint: String,
    /// The response of the create, as the handler returned it.
    response: Value,
    /// When the token was first used, epoch milliseconds.
    at_millis: i64,
}

/// What a create must do about its token.
pub enum Recall {
    /// The token was used before with the same parameters: send this response again.
    Replay(Value),
    /// First use (or no token): create, and add [`Claim::remember`] to the batch.
    Fresh(Claim),
}

/// The right to remember a token, taken by a create that is about to write.
pub struct Claim {
    slot: Option<(crate::store::RecordKey, Expect, String)>,
    at_millis: i64,
}

impl Claim {
    /// The write that remembers the token with `response`, if a token was sent.
    pub fn remember(self, response: &Value) -> Result<Option<Write>, AppFabricError> {
        let Some((key, expect, fingerprint)) = self.slot else {
            return Ok(None);
        };
        let record = TokenRecord {
            fingerprint,
            response: response.clone(),
            at_millis: self.at_millis,
        };
        Ok(Some(put(key, &record, expect)?))
    }
}

/// Looks a token up for `operation`; `params` are all the parameters of the request that
/// decide what gets created (identifiers already resolved to UUIDs, tags, secrets ...).
pub async fn recall(
    deps: &Deps,
    ctx: &RequestContext,
    operation: &str,
    token: Option<&str>,
    params: &Value,
) -> Result<Recall, AppFabricError> {
    let now = ctx.received_at_millis();
    let Some(token) = token else {
        return Ok(Recall::Fresh(Claim {
            slot: None,
            at_millis: now,
        }));
    };
    let fingerprint = deps.credentials.fingerprint(canonical(params).as_bytes());
    let key = key(ctx, IDEMPOTENCY, &format!("{operation}/{token}"));
    let expect = match load::<TokenRecord>(deps, &key).await? {
        None => Expect::Absent,
        Some((record, version)) if now - record.at_millis > TOKEN_LIFETIME_MILLIS => {
            Expect::Version(version)
        }
        Some((record, _)) if record.fingerprint == fingerprint => {
            return Ok(Recall::Replay(record.response));
        }
        Some(_) => {
            return Err(AppFabricError::Conflict {
                message: format!(
                    "The client token {token} was already used with different parameters for {operation}"
                ),
                resource_id: token.to_owned(),
                resource_type: "ClientToken",
            })
        }
    };
    Ok(Recall::Fresh(Claim {
        slot: Some((key, expect, fingerprint)),
        at_millis: now,
    }))
}

/// Forgets client tokens older than their 24-hour lifetime, at most about `limit`; returns
/// how many went. Each removal is conditional on the version read, so a token reused at that
/// moment is kept. Reads already treat an expired token as unused.
pub async fn expire(
    store: &dyn crate::store::Store,
    now: i64,
    limit: usize,
) -> Result<usize, crate::store::StoreError> {
    let mut budget = crate::sweeper::Budget::new(limit);
    let mut scan = crate::sweeper::RecordScan::new(store, IDEMPOTENCY);
    while let Some(page) = scan.next_page().await? {
        let expired: Vec<Write> = page
            .iter()
            .filter(|record| {
                record
                    .body
                    .get("at_millis")
                    .and_then(Value::as_i64)
                    .is_some_and(|at| now - at > TOKEN_LIFETIME_MILLIS)
            })
            .take(budget.remaining())
            .map(|record| Write::Delete {
                key: record.key.clone(),
                expect: Expect::Version(record.version),
            })
            .collect();
        let count = expired.len();
        if count > 0 {
            match store.write(expired).await {
                Ok(_) => budget.spend(count),
                // A token was used again meanwhile: the next sweep tries the rest again.
                Err(crate::store::StoreError::Conflict(_)) => {}
                Err(other) => return Err(other),
            }
        }
        if budget.remaining() == 0 {
            break;
        }
    }
    Ok(budget.removed())
}

/// JSON with object keys in sorted order, whatever map type serde_json was built with.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let members: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn canonical_form_ignores_key_order() {
        let a = serde_json::json!({"b": 1, "a": {"y": [1, {"q": 1, "p": 2}], "x": null}});
        let b = serde_json::json!({"a": {"x": null, "y": [1, {"p": 2, "q": 1}]}, "b": 1});
        assert_eq!(super::canonical(&a), super::canonical(&b));
        assert_ne!(
            super::canonical(&a),
            super::canonical(&serde_json::json!({"b": 2}))
        );
    }
}
