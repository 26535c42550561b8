//! Who is calling: SigV4 authentication in the two modes Sluice runs in.
//!
//! Emulator mode checks that a well-formed signature is present (so that a web page cannot
//! drive Sluice with a plain form post) but accepts any key and any secret. Strict mode
//! verifies every signature against the configured credentials.

use std::collections::HashMap;

use axum::http::{HeaderMap, Method};
use time::OffsetDateTime;

use super::sigv4::{self, RequestParts, SigV4Error};
use super::{ApiError, IncomingRequest};

/// The account used in emulator mode when the access key is not itself a 12-digit account id.
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";

/// A configured credential for strict mode.
#[derive(Clone)]
pub struct Credential {
    /// The secret access key the client signs with.
    pub secret_access_key: String,
    /// The account this key belongs to.
    pub account_id: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("secret_access_key", &"<redacted>")
            .field("account_id", &self.account_id)
            .finish()
    }
}

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// Any access key; the account is the key when it is 12 digits, else `000000000000`.
    Emulator,
    /// Only configured keys, with verified signatures, keyed by access key id.
    Strict(HashMap<String, Credential>),
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The signing access key.
    pub access_key_id: String,
    /// The caller's account.
    pub account_id: String,
    /// The region of the credential scope.
    pub region: String,
    /// The service of the credential scope (the SigV4 signing name).
    pub service: String,
}

impl Authenticator {
    /// Whether signatures are verified (production mode).
    pub fn is_strict(&self) -> bool {
        matches!(self, Authenticator::Strict(_))
    }

    /// Authenticates a whole request, or returns the AWS error for why it cannot be.
    pub fn authenticate(&self, request: &IncomingRequest) -> Result<Identity, ApiError> {
        self.authenticate_head(
            &request.method,
            &request.raw_path,
            &request.raw_query,
            &request.headers,
        )?
        .finish(request)
    }

    /// Checks everything the head of a request can prove, so that a caller who cannot be
    /// served is refused before its body is read: a well-formed signature in both modes and,
    /// in strict mode, a known key, no session token, the clock, every `x-amz-*` header
    /// signed, and the signature itself when the client declared its payload hash.
    pub fn authenticate_head(
        &self,
        method: &Method,
        raw_path: &str,
        raw_query: &str,
        headers: &HeaderMap,
    ) -> Result<PendingIdentity, ApiError> {
        let pairs = header_pairs(headers);
        let parts = RequestParts {
            method: method.as_str(),
            raw_path,
            raw_query,
            headers: &pairs,
            body: &[],
        };
        let parsed = sigv4::parse(&parts).map_err(sigv4_error)?;
        let scope = &parsed.scope;
        let (account_id, body_check) = match self {
            Authenticator::Emulator => {
                let key = &scope.access_key_id;
                let account = if key.len() == 12 && key.bytes().all(|b| b.is_ascii_digit()) {
                    key.clone()
                } else {
                    DEFAULT_ACCOUNT_ID.to_owned()
                };
                (account, None)
            }
            Authenticator::Strict(credentials) => {
                // Sluice issues no temporary credentials, so a session token can only be made up;
                // AWS refuses an unknown token with the same error as an unknown key.
                if parsed.security_token.is_some() {
                    return Err(ApiError::new(
                        "UnrecognizedClientException",
                        "The security token included in the request is invalid.",
                    ));
                }
                let credential = credentials.get(&scope.access_key_id).ok_or_else(|| {
                    ApiError::new(
                        "UnrecognizedClientException",
                        "The security token included in the request is invalid.",
                    )
                })?;
                sigv4::check_amz_headers_signed(headers.keys().map(|n| n.as_str()), &parsed)
                    .map_err(sigv4_error)?;
                let left = sigv4::verify_head(
                    &parts,
                    &parsed,
                    &credential.secret_access_key,
                    OffsetDateTime::now_utc(),
                )
                .map_err(sigv4_error)?;
                let check = BodyCheck {
                    left,
                    secret_access_key: credential.secret_access_key.clone(),
                    parsed: parsed.clone(),
                };
                (credential.account_id.clone(), Some(check))
            }
        };
        Ok(PendingIdentity {
            identity: Identity {
                access_key_id: scope.access_key_id.clone(),
                account_id,
                region: scope.region.clone(),
                service: scope.service.clone(),
            },
            body_check,
        })
    }
}

/// A caller whose request head passed authentication; what is left depends on the body.
pub struct PendingIdentity {
    identity: Identity,
    body_check: Option<BodyCheck>,
}

/// What strict mode still has to check once the body is there.
struct BodyCheck {
    left: sigv4::BodyCheck,
    secret_access_key: String,
    parsed: sigv4::ParsedSignature,
}

impl PendingIdentity {
    /// The caller as far as the head tells, for logging before the body is read.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Finishes authentication with the body (the same request whose head was checked).
    pub fn finish(self, request: &IncomingRequest) -> Result<Identity, ApiError> {
        if let Some(check) = &self.body_check {
            let pairs = header_pairs(&request.headers);
            let parts = RequestParts {
                method: request.method.as_str(),
                raw_path: &request.raw_path,
                raw_query: &request.raw_query,
                headers: &pairs,
                body: &request.body,
            };
            sigv4::verify_body(&parts, &check.parsed, &check.secret_access_key, &check.left)
                .map_err(sigv4_error)?;
        }
        Ok(self.identity)
    }
}

/// The headers whose values are text, as SigV4 signs them.
fn header_pairs(headers: &HeaderMap) -> Vec<(&str, &str)> {
    headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect()
}

fn sigv4_error(error: SigV4Error) -> ApiError {
    let (code, status, message) = error.aws_error();
    ApiError::with_status(code, status, message)
}
