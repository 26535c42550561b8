//! Secrets of app authorizations, sealed at rest.
//!
//! Credentials (API keys, OAuth2 client secrets) are encrypted with AES-256-GCM under a key
//! that is generated once per data directory and kept as a server setting (like the key that
//! signs pagination tokens), so only this server can open them. Each sealed value has its own
//! random nonce, and the authorization's ARN is the associated data, so a sealed credential
//! cannot be moved to another record. The same key also keys the HMAC that fingerprints
//! idempotent requests, so a fingerprint reveals nothing about the secrets in a request.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The name of the server setting that holds the key, hex-encoded.
pub const KEY_SETTING: &str = "appfabric_credential_key";

/// A sealed value as stored: nonce and ciphertext (with its tag), base64.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sealed {
    nonce: String,
    ciphertext: String,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed(<redacted>)")
    }
}

/// Why a sealed value could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("a sealed credential could not be opened")]
pub struct OpenError;

/// Seals and opens credentials with the server's key.
#[derive(Clone)]
pub struct CredentialCipher {
    key: [u8; 32],
}

impl std::fmt::Debug for CredentialCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialCipher(<redacted>)")
    }
}

impl CredentialCipher {
    /// A cipher from a hex key of 32 bytes; any other text is hashed into one, so a key of
    /// the wrong form still gives a working (if unusual) key rather than a startup failure.
    pub fn from_hex(hex_key: &str) -> Self {
        let mut key = [0u8; 32];
        match hex::decode(hex_key) {
            Ok(bytes) if bytes.len() == 32 => key.copy_from_slice(&bytes),
            _ => {
                use sha2::Digest;
                key.copy_from_slice(&Sha256::digest(hex_key.as_bytes()));
            }
        }
        Self { key }
    }

    /// The store setting that keeps this data directory's key, with a fresh key for its first
    /// start. The start keeps it beside its other keys, in one commit, and builds the cipher
    /// from the value in force ([`CredentialCipher::from_hex`]).
    pub fn setting() -> (&'static str, String) {
        (KEY_SETTING, crate::token::fresh_hex_key())
    }

    fn aead(&self) -> Aes256Gcm {
        Aes256Gcm::new((&self.key).into())
    }

    /// Encrypts `plaintext`, bound to `context` (the owning resource's ARN).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Sealed {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .aead()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            // AES-GCM encryption fails only for inputs of more than 64 GiB.
            .unwrap_or_default();
        Sealed {
            nonce: STANDARD.encode(nonce),
            ciphertext: STANDARD.encode(ciphertext),
        }
    }

    /// Decrypts a sealed value bound to `context`.
    pub fn open(&self, sealed: &Sealed, context: &str) -> Result<Vec<u8>, OpenError> {
        let nonce = STANDARD.decode(&sealed.nonce).map_err(|_| OpenError)?;
        let ciphertext = STANDARD.decode(&sealed.ciphertext).map_err(|_| OpenError)?;
        if nonce.len() != 12 {
            return Err(OpenError);
        }
        self.aead()
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| OpenError)
    }

    /// A keyed fingerprint of `data` (hex HMAC-SHA256).
    pub fn fingerprint(&self, data: &[u8]) -> String {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(b"appfabric-idempotency\0");
        mac.update(data);
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_refuses_other_contexts_and_keys() {
        let cipher = CredentialCipher::from_hex(&crate::token::fresh_hex_key());
        let sealed = cipher.seal(b"api-key-123", "arn:a");
        assert!(!format!("{sealed:?}").contains("api-key"));
        assert!(!serde_json::to_string(&sealed)
            .expect("json")
            .contains("api-key-123"));
        assert_eq!(
            cipher.open(&sealed, "arn:a").expect("opens"),
            b"api-key-123"
        );
        assert!(cipher.open(&sealed, "arn:b").is_err());
        let other = CredentialCipher::from_hex(&crate::token::fresh_hex_key());
        assert!(other.open(&sealed, "arn:a").is_err());
        assert_ne!(
            cipher.seal(b"x", "c"),
            cipher.seal(b"x", "c"),
            "fresh nonces"
        );
        assert_eq!(cipher.fingerprint(b"p"), cipher.fingerprint(b"p"));
        assert_ne!(cipher.fingerprint(b"p"), other.fingerprint(b"p"));
    }
}
