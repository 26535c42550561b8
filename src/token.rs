//! Opaque pagination tokens that the server can trust when they come back.
//!
//! A token is the base64url of a small JSON payload plus an HMAC over it, keyed with a secret
//! that is generated once per data directory and kept in the store, so tokens survive a restart
//! but cannot be forged, moved to another account or operation, or replayed after they expire.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The store setting that keeps the token key.
const KEY_SETTING: &str = "token_key";

/// A fresh random 256-bit key, hex-encoded: a server secret for a data directory's first
/// start, kept as a store setting (the token key, AppFabric's credential key).
pub fn fresh_hex_key() -> String {
    use rand::RngCore;
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    hex::encode(key)
}

/// How long a token stays valid (CloudWatch Logs documents 24 hours).
pub const TOKEN_LIFETIME_MILLIS: i64 = 24 * 60 * 60 * 1000;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token this server issued for this scope.
    #[error("the pagination token is invalid")]
    Invalid,
    /// Issued more than [`TOKEN_LIFETIME_MILLIS`] ago.
    #[error("the pagination token has expired")]
    Expired,
}

/// Issues and opens tokens with the server's key.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(<redacted>)")
    }
}

impl TokenSigner {
    /// A signer with the given key.
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    /// The store setting that keeps this data directory's key, with a fresh key for its first
    /// start. The start keeps it beside its other keys, in one commit, and builds the signer
    /// from the value in force.
    pub fn setting() -> (&'static str, String) {
        (KEY_SETTING, fresh_hex_key())
    }

    fn mac(&self, scope: &str, payload: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length, so this cannot fail; an empty MAC would only make
        // every token invalid, never valid.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return Vec::new();
        };
        mac.update(scope.as_bytes());
        mac.update(&[0]);
        mac.update(payload);
        mac.finalize().into_bytes()[..16].to_vec()
    }

    /// Issues a token for `scope` (which binds it to an account, region and operation).
    pub fn issue(&self, scope: &str, state: Value, now_millis: i64) -> String {
        let payload = serde_json::json!({ "s": state, "t": now_millis }).to_string();
        let mac = self.mac(scope, payload.as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    /// When a token was issued (epoch milliseconds), without checking it: call only on a token
    /// that [`TokenSigner::open`] accepted.
    pub fn issued_at(&self, token: &str) -> Option<i64> {
        let (payload, _) = token.split_once('.')?;
        let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        payload.get("t").and_then(Value::as_i64)
    }

    /// Opens a token issued for `scope`, returning the state it carries.
    pub fn open(&self, scope: &str, token: &str, now_millis: i64) -> Result<Value, TokenError> {
        let (payload, mac) = token.split_once('.').ok_or(TokenError::Invalid)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Invalid)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| TokenError::Invalid)?;
        let expected = self.mac(scope, &payload);
        // Constant-time comparison: a forged token learns nothing from timing.
        if mac.len() != expected.len()
            || mac
                .iter()
                .zip(&expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                != 0
        {
            return Err(TokenError::Invalid);
        }
        let mut payload: Value =
            serde_json::from_slice(&payload).map_err(|_| TokenError::Invalid)?;
        let issued = payload
            .get("t")
            .and_then(Value::as_i64)
            .ok_or(TokenError::Invalid)?;
        // Saturating: the difference of two arbitrary i64 can overflow, and a saturated age
        // still compares the right way with the lifetime.
        if now_millis.saturating_sub(issued) > TOKEN_LIFETIME_MILLIS {
            return Err(TokenError::Expired);
        }
        Ok(payload.get_mut("s").map(Value::take).unwrap_or(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_tampering_scope_and_age() {
        let signer = TokenSigner::new(b"k".to_vec());
        let token = signer.issue("a", serde_json::json!({"after": "x"}), 1000);
        assert_eq!(
            signer.open("a", &token, 2000),
            Ok(serde_json::json!({"after": "x"}))
        );
        assert_eq!(signer.open("b", &token, 2000), Err(TokenError::Invalid));
        assert_eq!(
            signer.open("a", &token, 1000 + TOKEN_LIFETIME_MILLIS + 1),
            Err(TokenError::Expired)
        );
        let mut forged = token.clone();
        forged.insert(3, 'A');
        assert_eq!(signer.open("a", &forged, 2000), Err(TokenError::Invalid));
        assert_eq!(signer.open("a", "garbage", 2000), Err(TokenError::Invalid));
        assert_eq!(
            TokenSigner::new(b"other".to_vec()).open("a", &token, 2000),
            Err(TokenError::Invalid)
        );
    }

    /// Found by tests/fuzz_parsers.rs: an age beyond i64 overflowed in debug builds.
    #[test]
    fn extreme_issue_and_open_times_do_not_overflow() {
        let signer = TokenSigner::new(b"k".to_vec());
        let old = signer.issue("a", Value::Null, -685_363_251_885_439_161);
        assert_eq!(
            signer.open("a", &old, 8_538_008_784_969_336_647),
            Err(TokenError::Expired)
        );
        let future = signer.issue("a", Value::Null, i64::MAX);
        assert_eq!(signer.open("a", &future, i64::MIN), Ok(Value::Null));
    }
}
