//! Who is calling: SigV4 authentication in the two modes Sluice runs in.
//!
//! Emulator mode checks that a well-formed signature is present (so that a web page cannot
//! drive Sluice with a plain form post) but accepts any key and any secret. Strict mode
//! verifies every signature against the configured credentials.

use std::collections::HashMap;

use axum::http::{HeaderMap, Method};
use time::OffsetDateTime;

use super::sigv4::{self, ParsedSignature, RequestParts, SigV4Error};
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
    /// Who the key is (the account's root or one of its IAM users), as GetCallerIdentity
    /// answers it.
    pub arn: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("secret_access_key", &"<redacted>")
            .field("account_id", &self.account_id)
            .field("arn", &self.arn)
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
    /// The configured identity of a strict-mode key; `None` in emulator mode, where every key
    /// is its account's root.
    pub fn configured_arn(&self, access_key_id: &str) -> Option<&str> {
        match self {
            Authenticator::Emulator => None,
            Authenticator::Strict(keys) => keys.get(access_key_id).map(|key| key.arn.as_str()),
        }
    }

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
            Authenticator::Emulator => (emulator_account(&scope.access_key_id), None),
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

/// A caller authenticated before its body was read (S3), with what is needed to check the
/// body as it streams.
#[derive(Debug, Clone)]
pub struct UnreadAuth {
    /// Who is calling.
    pub identity: Identity,
    /// The parsed SigV4 signature (seed signature, signing time); `None` for the older
    /// SigV2 presigned URLs.
    pub parsed: Option<ParsedSignature>,
    /// The day's signing key, in strict mode only: chunk signatures are checked with it.
    pub signing_key: Option<[u8; 32]>,
}

/// Why a request whose body is unread was refused; S3 words each case its own way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// A missing, malformed, mismatched, skewed or expired signature.
    #[error(transparent)]
    Signature(#[from] SigV4Error),
    /// Strict mode: the access key is not configured.
    #[error("unknown access key")]
    UnknownAccessKey,
    /// Strict mode: a session token, which Sluice never issues.
    #[error("unknown session token")]
    UnknownToken,
}

/// The account of an access key in emulator mode.
fn emulator_account(key: &str) -> String {
    if key.len() == 12 && key.bytes().all(|b| b.is_ascii_digit()) {
        key.to_owned()
    } else {
        DEFAULT_ACCOUNT_ID.to_owned()
    }
}

impl Authenticator {
    /// Authenticates a request from its head alone, signed by S3's rules (`parts.body` is
    /// ignored: the declared `x-amz-content-sha256` is what the signature covers).
    pub fn authenticate_unread(&self, parts: &RequestParts) -> Result<UnreadAuth, AuthFailure> {
        let parsed = sigv4::parse(parts)?;
        let scope = &parsed.scope;
        let (account_id, signing_key) = match self {
            Authenticator::Emulator => (emulator_account(&scope.access_key_id), None),
            Authenticator::Strict(credentials) => {
                if parsed.security_token.is_some() {
                    return Err(AuthFailure::UnknownToken);
                }
                let credential = credentials
                    .get(&scope.access_key_id)
                    .ok_or(AuthFailure::UnknownAccessKey)?;
                sigv4::check_amz_headers_signed(
                    parts.headers.iter().map(|(name, _)| *name),
                    &parsed,
                )?;
                sigv4::verify_unread(
                    parts,
                    &parsed,
                    &credential.secret_access_key,
                    OffsetDateTime::now_utc(),
                )?;
                let key = sigv4::signing_key(
                    &credential.secret_access_key,
                    &scope.date,
                    &scope.region,
                    &scope.service,
                );
                (credential.account_id.clone(), Some(key))
            }
        };
        Ok(UnreadAuth {
            identity: Identity {
                access_key_id: scope.access_key_id.clone(),
                account_id,
                region: scope.region.clone(),
                service: scope.service.clone(),
            },
            parsed: Some(parsed),
            signing_key,
        })
    }

    /// Authenticates an S3 presigned URL of the older SigV2 form (`AWSAccessKeyId`,
    /// `Signature`, `Expires`), which boto3 and the AWS CLI v1 still generate by default:
    /// `signature` must be the base64 HMAC-SHA1 of `string_to_sign` under the key's secret.
    /// The region is not part of a SigV2 signature; `region` is the one to assume.
    pub fn authenticate_v2(
        &self,
        access_key_id: &str,
        string_to_sign: &str,
        signature: &str,
        region: &str,
    ) -> Result<UnreadAuth, AuthFailure> {
        use base64::Engine;
        use hmac::{Hmac, Mac};
        let account_id = match self {
            Authenticator::Emulator => emulator_account(access_key_id),
            Authenticator::Strict(credentials) => {
                let credential = credentials
                    .get(access_key_id)
                    .ok_or(AuthFailure::UnknownAccessKey)?;
                let mut mac =
                    Hmac::<sha1::Sha1>::new_from_slice(credential.secret_access_key.as_bytes())
                        .map_err(|_| AuthFailure::Signature(SigV4Error::Mismatch))?;
                mac.update(string_to_sign.as_bytes());
                let given = base64::engine::general_purpose::STANDARD
                    .decode(signature)
                    .map_err(|_| AuthFailure::Signature(SigV4Error::Mismatch))?;
                mac.verify_slice(&given)
                    .map_err(|_| AuthFailure::Signature(SigV4Error::Mismatch))?;
                credential.account_id.clone()
            }
        };
        Ok(UnreadAuth {
            identity: Identity {
                access_key_id: access_key_id.to_owned(),
                account_id,
                region: region.to_owned(),
                service: "s3".to_owned(),
            },
            parsed: None,
            signing_key: None,
        })
    }
}

fn sigv4_error(error: SigV4Error) -> ApiError {
    let (code, status, message) = error.aws_error();
    ApiError::with_status(code, status, message)
}
