//! AWS Signature Version 4, server side: find the signature of a request (in the
//! `Authorization` header or in a presigned URL's query string), rebuild the canonical request
//! from the request exactly as it arrived, and check the signature, the clock and the expiry.
//!
//! Written by hand because the `aws-sigv4` crate signs but does not verify, and verifying needs
//! the canonical request rebuilt from what was received rather than from a request we build.
//! It is framework-agnostic (no `http` types) so that every protocol front end can share it.
//!
//! The rules are those AWS applies to every service but S3, which is all Sluice serves:
//! - the path is normalized (`.` and `..` segments removed, repeated slashes collapsed) and,
//!   since it arrives already percent-encoded once, it is encoded once more (`%3A` → `%253A`),
//!   which is what the SDKs sign;
//! - query pairs are decoded, re-encoded with the strict unreserved set and sorted;
//! - header values are trimmed with inner runs of spaces collapsed, repeats joined by commas.
//!
//! The tests replay AWS's published SigV4 test suite.

use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, percent_encode, utf8_percent_encode, AsciiSet};
use sha2::{Digest, Sha256};
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// The only algorithm SigV4 defines; anything else is refused as malformed.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's signing time may be from the server's clock, as AWS allows.
pub const MAX_SKEW: Duration = Duration::minutes(15);
/// The longest validity a presigned URL may ask for (7 days), as AWS allows.
pub const MAX_PRESIGNED_EXPIRES_SECONDS: u64 = 604_800;
/// The payload hash a client declares when it chose not to sign the body.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Everything but `A-Z a-z 0-9 - _ . ~` is percent-encoded in canonical strings.
const UNRESERVED: &AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// Canonical paths keep their slashes.
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

const MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// The request as it arrived, exactly as needed to rebuild the canonical request.
///
/// Borrowed rather than owned so that the wire layer can hand over its buffers untouched.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// HTTP method, as sent (signed verbatim).
    pub method: &'a str,
    /// Raw path as received on the wire (still percent-encoded once), without the query.
    pub raw_path: &'a str,
    /// Raw query string without the leading `?`, possibly empty.
    pub raw_query: &'a str,
    /// Header (name, value) pairs as received; names in any case; a name may repeat.
    pub headers: &'a [(&'a str, &'a str)],
    /// The whole body, hashed into the canonical request unless the client declared a hash.
    pub body: &'a [u8],
}

/// Where the signature was found, which decides the time rules and the canonical query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureLocation {
    /// The `Authorization` header: the request time must be within 15 minutes of now.
    Header,
    /// A presigned URL's query string: valid from its date for `X-Amz-Expires` seconds.
    Query,
}

/// The credential scope `AKID/yyyymmdd/region/service/aws4_request`: it names the key to
/// verify with and the account, region and service the caller meant to reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    /// The signing access key, which selects the secret to verify with.
    pub access_key_id: String,
    /// `yyyymmdd`; part of the signing key and must be the request's UTC day.
    pub date: String,
    /// The signing region.
    pub region: String,
    /// The signing service name, which identifies the service being called.
    pub service: String,
}

/// A syntactically valid SigV4 signature found in a request (not yet verified).
///
/// Parsing is separate from verifying so that the caller can look the access key up (and, in
/// emulator mode, skip verification) before any cryptography is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSignature {
    /// Header or query.
    pub location: SignatureLocation,
    /// The credential scope.
    pub scope: CredentialScope,
    /// Lowercase names of the signed headers, in the order given.
    pub signed_headers: Vec<String>,
    /// Lowercase hex, 64 characters.
    pub signature: String,
    /// From `X-Amz-Date` (header or query), else from the `Date` header.
    pub request_time: OffsetDateTime,
    /// `X-Amz-Expires` of a presigned URL.
    pub expires_seconds: Option<u64>,
    /// `X-Amz-Security-Token` (header or query), if present, for the caller to check.
    pub security_token: Option<String>,
}

/// Why a request's signature is refused; [`SigV4Error::aws_error`] says how to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header and no `X-Amz-Algorithm` query parameter.
    #[error("missing authentication token")]
    Missing,
    /// Something is there but it is not a well-formed SigV4 signature; the message is worded
    /// as AWS words it where known.
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// The computed signature differs (wrong secret, or the request was altered).
    #[error("signature mismatch")]
    Mismatch,
    /// The request time is more than 15 minutes from the server's clock.
    #[error("request time too far from the server's clock")]
    Skewed {
        /// The request's signing time.
        request_time: OffsetDateTime,
        /// The server's time.
        now: OffsetDateTime,
    },
    /// A presigned URL used after `request_time + expires_seconds`.
    #[error("presigned URL expired")]
    Expired {
        /// The URL's signing time (`X-Amz-Date`).
        request_time: OffsetDateTime,
        /// Its `X-Amz-Expires`.
        expires_seconds: u64,
        /// The server's time.
        now: OffsetDateTime,
    },
}

impl SigV4Error {
    /// The AWS error code, HTTP status and message the wire layer answers with, so that SDKs
    /// see what real AWS would send (their clock-skew correction keys on these messages).
    pub fn aws_error(&self) -> (&'static str, u16, String) {
        match self {
            SigV4Error::Missing => (
                "MissingAuthenticationTokenException",
                403,
                "Missing Authentication Token".to_owned(),
            ),
            SigV4Error::Malformed(message) => {
                ("IncompleteSignatureException", 400, message.clone())
            }
            SigV4Error::Mismatch => (
                "InvalidSignatureException",
                403,
                MISMATCH_MESSAGE.to_owned(),
            ),
            SigV4Error::Skewed { request_time, now } if request_time < now => {
                let message = format!(
                    "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                    basic_time(*request_time),
                    basic_time(now.checked_sub(MAX_SKEW).unwrap_or(*now)),
                    basic_time(*now),
                );
                ("InvalidSignatureException", 403, message)
            }
            SigV4Error::Skewed { request_time, now } => {
                let message = format!(
                    "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                    basic_time(*request_time),
                    basic_time(now.checked_add(MAX_SKEW).unwrap_or(*now)),
                    basic_time(*now),
                );
                ("InvalidSignatureException", 403, message)
            }
            SigV4Error::Expired {
                request_time,
                expires_seconds,
                now,
            } => {
                let earliest = now.checked_sub(expires_duration(*expires_seconds));
                let message = format!(
                    "Signature expired: {} is now earlier than {} ({} - {expires_seconds} sec.)",
                    basic_time(*request_time),
                    basic_time(earliest.unwrap_or(*now)),
                    basic_time(*now),
                );
                ("InvalidSignatureException", 403, message)
            }
        }
    }
}

fn malformed(message: impl Into<String>) -> SigV4Error {
    SigV4Error::Malformed(message.into())
}

fn expires_duration(seconds: u64) -> Duration {
    Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX))
}

/// `yyyymmddThhmmssZ` in UTC, the form of `X-Amz-Date` and of the string to sign.
fn basic_time(instant: OffsetDateTime) -> String {
    let utc = instant.checked_to_offset(UtcOffset::UTC).unwrap_or(instant);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

fn parse_amz_date(text: &str) -> Result<OffsetDateTime, SigV4Error> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(text, &format)
        .ok()
        .filter(|_| text.len() == 16)
        .map(PrimitiveDateTime::assume_utc)
        .ok_or_else(|| {
            malformed(format!(
                "Date must be in ISO-8601 'basic format'. Got '{text}'. See http://en.wikipedia.org/wiki/ISO_8601"
            ))
        })
}

/// The `Date` header (RFC 1123), which SigV4 accepts when `X-Amz-Date` is absent.
fn parse_http_date(text: &str) -> Result<OffsetDateTime, SigV4Error> {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    PrimitiveDateTime::parse(text, &format)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| {
            malformed(format!(
                "Date header must be an RFC 1123 date such as 'Sun, 30 Aug 2015 12:36:00 GMT'. Got '{text}'."
            ))
        })
}

/// The first value of a header, by case-insensitive name.
fn header<'a>(req: &RequestParts<'a>, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// The query's `key=value` pairs, still encoded; a pair without `=` has an empty value.
fn raw_query_pairs(raw_query: &str) -> impl Iterator<Item = (&str, &str)> {
    raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// The decoded value of the first query parameter with this (decoded) name.
fn query_param(raw_query: &str, name: &str) -> Option<String> {
    raw_query_pairs(raw_query)
        .find(|(key, _)| percent_decode_str(key).eq(name.bytes()))
        .map(|(_, value)| percent_decode_str(value).decode_utf8_lossy().into_owned())
}

/// Finds the signature of a request and checks that it is well formed.
///
/// The `Authorization` header wins over a presigned query string, as a request signed both
/// ways is signed by its header.
pub fn parse(req: &RequestParts) -> Result<ParsedSignature, SigV4Error> {
    if let Some(authorization) = header(req, "authorization") {
        return parse_header(req, authorization.trim());
    }
    if query_param(req.raw_query, "X-Amz-Algorithm").is_some() {
        return parse_query(req);
    }
    Err(SigV4Error::Missing)
}

fn parse_header(req: &RequestParts, authorization: &str) -> Result<ParsedSignature, SigV4Error> {
    let (algorithm, rest) = authorization
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((authorization, ""));
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for component in rest.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let Some((key, value)) = component.split_once('=') else {
            return Err(malformed(format!(
                "'{component}' not a valid key=value pair (missing equal-sign) in Authorization header: '{authorization}'."
            )));
        };
        match key.trim() {
            "Credential" => credential = Some(value.trim()),
            "SignedHeaders" => signed_headers = Some(value.trim()),
            "Signature" => signature = Some(value.trim()),
            _ => {}
        }
    }
    let date = header(req, "x-amz-date")
        .map(|text| (text, true))
        .or_else(|| header(req, "date").map(|text| (text, false)));

    let (Some(credential), Some(signed_headers), Some(signature), Some((date, is_amz_date))) =
        (credential, signed_headers, signature, date)
    else {
        let mut message = String::new();
        for (name, value) in [
            ("Credential", credential),
            ("Signature", signature),
            ("SignedHeaders", signed_headers),
        ] {
            if value.is_none() {
                message.push_str(&format!(
                    "Authorization header requires '{name}' parameter. "
                ));
            }
        }
        if date.is_none() {
            message.push_str(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
            );
        }
        return Err(malformed(format!("{message}Authorization={authorization}")));
    };
    let request_time = if is_amz_date {
        parse_amz_date(date.trim())?
    } else {
        parse_http_date(date.trim())?
    };
    check_algorithm(algorithm)?;
    let security_token = header(req, "x-amz-security-token").map(str::to_owned);
    finish(
        req,
        SignatureLocation::Header,
        Fields {
            credential,
            signed_headers,
            signature,
            request_time,
            expires_seconds: None,
            security_token,
        },
    )
}

fn parse_query(req: &RequestParts) -> Result<ParsedSignature, SigV4Error> {
    let get = |name: &str| query_param(req.raw_query, name);
    let (algorithm, credential, signature, signed_headers, date) = (
        get("X-Amz-Algorithm"),
        get("X-Amz-Credential"),
        get("X-Amz-Signature"),
        get("X-Amz-SignedHeaders"),
        get("X-Amz-Date"),
    );
    let (Some(algorithm), Some(credential), Some(signature), Some(signed_headers), Some(date)) = (
        algorithm.as_deref(),
        credential.as_deref(),
        signature.as_deref(),
        signed_headers.as_deref(),
        date.as_deref(),
    ) else {
        let mut message = String::new();
        for (name, value) in [
            ("X-Amz-Algorithm", &algorithm),
            ("X-Amz-Credential", &credential),
            ("X-Amz-Signature", &signature),
            ("X-Amz-SignedHeaders", &signed_headers),
            ("X-Amz-Date", &date),
        ] {
            if value.is_none() {
                message.push_str(&format!(
                    "AWS query-string parameters must include '{name}'. "
                ));
            }
        }
        return Err(malformed(format!(
            "{message}Re-examine the query-string parameters."
        )));
    };
    let request_time = parse_amz_date(date)?;
    check_algorithm(algorithm)?;
    let expires_seconds = match get("X-Amz-Expires") {
        None => None,
        Some(text) => Some(parse_expires(&text)?),
    };
    finish(
        req,
        SignatureLocation::Query,
        Fields {
            credential,
            signed_headers,
            signature,
            request_time,
            expires_seconds,
            security_token: get("X-Amz-Security-Token"),
        },
    )
}

fn check_algorithm(algorithm: &str) -> Result<(), SigV4Error> {
    if algorithm == ALGORITHM {
        Ok(())
    } else {
        Err(malformed(format!(
            "Unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM} for now)."
        )))
    }
}

fn parse_expires(text: &str) -> Result<u64, SigV4Error> {
    let seconds: u64 = text
        .parse()
        .map_err(|_| malformed(format!("X-Amz-Expires should be a number. Got '{text}'.")))?;
    if seconds > MAX_PRESIGNED_EXPIRES_SECONDS {
        return Err(malformed(format!(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than {MAX_PRESIGNED_EXPIRES_SECONDS} seconds"
        )));
    }
    Ok(seconds)
}

/// The parts both forms share, checked the same way.
struct Fields<'f> {
    credential: &'f str,
    signed_headers: &'f str,
    signature: &'f str,
    request_time: OffsetDateTime,
    expires_seconds: Option<u64>,
    security_token: Option<String>,
}

fn finish(
    req: &RequestParts,
    location: SignatureLocation,
    fields: Fields,
) -> Result<ParsedSignature, SigV4Error> {
    let scope = parse_credential(fields.credential)?;
    let request_day = basic_time(fields.request_time);
    let request_day = request_day.get(..8).unwrap_or_default();
    if scope.date != request_day {
        return Err(malformed(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{request_day}', from '{}'.",
            scope.date,
            basic_time(fields.request_time)
        )));
    }
    let signed_headers: Vec<String> = fields
        .signed_headers
        .split(';')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    if !signed_headers.iter().any(|name| name == "host") {
        return Err(malformed(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    if let Some(absent) = signed_headers
        .iter()
        .find(|name| header(req, name).is_none())
    {
        return Err(malformed(format!(
            "Signed header '{absent}' is not present in the request."
        )));
    }
    let signature = fields.signature;
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed(format!(
            "Signature must be 64 hexadecimal characters. Got '{signature}'."
        )));
    }
    Ok(ParsedSignature {
        location,
        scope,
        signed_headers,
        signature: signature.to_ascii_lowercase(),
        request_time: fields.request_time,
        expires_seconds: fields.expires_seconds,
        security_token: fields.security_token,
    })
}

fn parse_credential(credential: &str) -> Result<CredentialScope, SigV4Error> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminator] = parts.as_slice() else {
        return Err(malformed(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if *terminator != "aws4_request" {
        return Err(malformed(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        )));
    }
    if key.is_empty() {
        return Err(malformed(format!(
            "Credential should name an access key id, got '{credential}'"
        )));
    }
    if region.is_empty() {
        return Err(malformed(format!(
            "Credential should be scoped to a valid region, not '{region}'."
        )));
    }
    if service.is_empty() {
        return Err(malformed(format!(
            "Credential should be scoped to a valid service, not '{service}'."
        )));
    }
    Ok(CredentialScope {
        access_key_id: (*key).to_owned(),
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
    })
}

/// Removes `.` and `..` segments and collapses repeated slashes, as the SDKs do before
/// signing for non-S3 services; a trailing slash is kept.
fn normalize_path(raw_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in raw_path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut path = format!("/{}", segments.join("/"));
    if raw_path.ends_with('/') && !segments.is_empty() {
        path.push('/');
    }
    path
}

/// Decodes one query key or value and encodes it again with the strict unreserved set.
fn canonical_query_component(raw: &str) -> String {
    let bytes: Vec<u8> = percent_decode_str(raw).collect();
    percent_encode(&bytes, UNRESERVED).to_string()
}

fn canonical_query(raw_query: &str, location: SignatureLocation) -> String {
    let mut pairs: Vec<(String, String)> = raw_query_pairs(raw_query)
        .filter(|(key, _)| {
            location == SignatureLocation::Header
                || !percent_decode_str(key).eq("X-Amz-Signature".bytes())
        })
        .map(|(key, value)| {
            (
                canonical_query_component(key),
                canonical_query_component(value),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The payload hash the client declared, if it did (`X-Amz-Content-Sha256`).
fn declared_payload_hash(req: &RequestParts, location: SignatureLocation) -> Option<String> {
    match header(req, "x-amz-content-sha256") {
        Some(hash) => Some(hash.trim().to_owned()),
        None if location == SignatureLocation::Query => {
            query_param(req.raw_query, "X-Amz-Content-Sha256")
        }
        None => None,
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// How the canonical path is built from the path received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRule {
    /// Every service but S3: `.`/`..` removed, slashes collapsed, encoded a second time.
    Normalized,
    /// S3 signs the path as the object key: not normalized (a key may hold `//` or `..`) and
    /// encoded once; a presigned URL without a declared hash signs `UNSIGNED-PAYLOAD`.
    S3,
}

/// Rebuilds the canonical request from the request as received. Public so that tests (and
/// debugging) can compare it with the client's.
pub fn canonical_request(req: &RequestParts, parsed: &ParsedSignature) -> String {
    canonical_request_with(req, parsed, PathRule::Normalized)
}

/// [`canonical_request`] under a given path rule.
pub fn canonical_request_with(
    req: &RequestParts,
    parsed: &ParsedSignature,
    rule: PathRule,
) -> String {
    let mut names: Vec<&str> = parsed.signed_headers.iter().map(String::as_str).collect();
    names.sort_unstable();
    let headers: String = names
        .iter()
        .map(|name| {
            let values: Vec<String> = req
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.split_ascii_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            format!("{name}:{}\n", values.join(","))
        })
        .collect();
    let payload_hash = declared_payload_hash(req, parsed.location).unwrap_or_else(|| {
        if rule == PathRule::S3 && parsed.location == SignatureLocation::Query {
            UNSIGNED_PAYLOAD.to_owned()
        } else {
            sha256_hex(req.body)
        }
    });
    let path = match rule {
        PathRule::Normalized => {
            utf8_percent_encode(&normalize_path(req.raw_path), PATH).to_string()
        }
        PathRule::S3 => {
            let decoded: Vec<u8> = percent_decode_str(req.raw_path).collect();
            percent_encode(&decoded, PATH).to_string()
        }
    };
    format!(
        "{}\n{}\n{}\n{headers}\n{}\n{payload_hash}",
        req.method,
        path,
        canonical_query(req.raw_query, parsed.location),
        names.join(";"),
    )
}

/// The string to sign for a canonical request. Public for the same reason as
/// [`canonical_request`].
pub fn string_to_sign(canonical_request: &str, parsed: &ParsedSignature) -> String {
    let scope = &parsed.scope;
    format!(
        "{ALGORITHM}\n{}\n{}/{}/{}/aws4_request\n{}",
        basic_time(parsed.request_time),
        scope.date,
        scope.region,
        scope.service,
        sha256_hex(canonical_request.as_bytes())
    )
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail; were it to, the all-zero result
    // would only make verification fail, never pass.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The key derived from the secret for one day, region and service. Four HMACs per request
/// otherwise: the last few derived keys are kept (see [`SigningKeys`]).
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    static KEYS: SigningKeys = SigningKeys::new();
    KEYS.get(secret, date, region, service)
}

fn derive_signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let date_key = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let region_key = hmac(&date_key, region.as_bytes());
    let service_key = hmac(&region_key, service.as_bytes());
    hmac(&service_key, b"aws4_request")
}

/// Recently derived signing keys, by (secret, date, region, service). A scope lives a day and
/// a deployment signs with few keys, regions and services, so a handful of entries, looked up
/// without allocating, serve nearly every request; the oldest entry makes room for a new one.
/// The secrets are those of the configuration, already in memory.
struct SigningKeys {
    entries: std::sync::Mutex<Vec<SigningKeyEntry>>,
}

struct SigningKeyEntry {
    secret: String,
    date: String,
    region: String,
    service: String,
    key: [u8; 32],
}

impl SigningKeys {
    /// How many keys are kept.
    const CAPACITY: usize = 32;

    const fn new() -> Self {
        Self {
            entries: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn get(&self, secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
        let lock = || {
            self.entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let found = lock()
            .iter()
            .find(|e| {
                e.date == date && e.region == region && e.service == service && e.secret == secret
            })
            .map(|e| e.key);
        if let Some(key) = found {
            return key;
        }
        let key = derive_signing_key(secret, date, region, service);
        let mut entries = lock();
        if entries.len() == Self::CAPACITY {
            entries.remove(0);
        }
        entries.push(SigningKeyEntry {
            secret: secret.to_owned(),
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            key,
        });
        key
    }
}

/// The hex signature of a request under `secret`: what `verify` compares with, and what tests
/// use to sign requests as a client would.
pub fn signature(req: &RequestParts, parsed: &ParsedSignature, secret: &str) -> String {
    signature_with(req, parsed, secret, PathRule::Normalized)
}

/// [`signature`] under a given path rule.
pub fn signature_with(
    req: &RequestParts,
    parsed: &ParsedSignature,
    secret: &str,
    rule: PathRule,
) -> String {
    let scope = &parsed.scope;
    let key = signing_key(secret, &scope.date, &scope.region, &scope.service);
    let to_sign = string_to_sign(&canonical_request_with(req, parsed, rule), parsed);
    hex::encode(hmac(&key, to_sign.as_bytes()))
}

/// Verifies the clock and the signature of a request whose body has not been read (S3): the
/// declared payload hash is signed, and the caller checks the body against it as it streams.
pub fn verify_unread(
    req: &RequestParts,
    parsed: &ParsedSignature,
    secret_access_key: &str,
    now: OffsetDateTime,
) -> Result<(), SigV4Error> {
    check_time(parsed, now)?;
    let expected = signature_with(req, parsed, secret_access_key, PathRule::S3);
    if constant_time_eq(expected.as_bytes(), parsed.signature.as_bytes()) {
        Ok(())
    } else {
        Err(SigV4Error::Mismatch)
    }
}

/// Verifies the signature with `secret` at time `now`, body included.
///
/// Header signatures must be within 15 minutes of `now` either side. Presigned URLs must not
/// be dated more than 15 minutes ahead and expire `X-Amz-Expires` seconds after their date
/// (without `X-Amz-Expires` they follow the header rule). A declared payload hash other than
/// `UNSIGNED-PAYLOAD` must be the body's, or the body could be swapped under a valid signature.
pub fn verify(
    req: &RequestParts,
    parsed: &ParsedSignature,
    secret_access_key: &str,
    now: OffsetDateTime,
) -> Result<(), SigV4Error> {
    let left = verify_head(req, parsed, secret_access_key, now)?;
    verify_body(req, parsed, secret_access_key, &left)
}

/// What [`verify_head`] could not check without the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyCheck {
    /// Nothing: the signature is verified and the client declared `UNSIGNED-PAYLOAD`.
    Nothing,
    /// The signature is verified over this declared payload hash; the body must have it.
    DeclaredHash(String),
    /// No payload hash was declared, so the signature covers the body's own hash.
    Signature,
}

/// Verifies what the head of a request can prove, without reading `req.body`: the clock (or
/// expiry), and the whole signature when the client declared its payload hash
/// (`X-Amz-Content-Sha256`). Lets the server refuse a forged request before receiving its body.
pub fn verify_head(
    req: &RequestParts,
    parsed: &ParsedSignature,
    secret_access_key: &str,
    now: OffsetDateTime,
) -> Result<BodyCheck, SigV4Error> {
    check_time(parsed, now)?;
    let Some(declared) = declared_payload_hash(req, parsed.location) else {
        return Ok(BodyCheck::Signature);
    };
    // With a declared hash the canonical request never looks at the body.
    check_signature(req, parsed, secret_access_key)?;
    if declared == UNSIGNED_PAYLOAD {
        Ok(BodyCheck::Nothing)
    } else {
        Ok(BodyCheck::DeclaredHash(declared))
    }
}

/// Finishes [`verify_head`] once the body has arrived.
pub fn verify_body(
    req: &RequestParts,
    parsed: &ParsedSignature,
    secret_access_key: &str,
    left: &BodyCheck,
) -> Result<(), SigV4Error> {
    match left {
        BodyCheck::Nothing => Ok(()),
        BodyCheck::DeclaredHash(declared) => {
            if declared.eq_ignore_ascii_case(&sha256_hex(req.body)) {
                Ok(())
            } else {
                Err(SigV4Error::Mismatch)
            }
        }
        BodyCheck::Signature => check_signature(req, parsed, secret_access_key),
    }
}

fn check_signature(
    req: &RequestParts,
    parsed: &ParsedSignature,
    secret_access_key: &str,
) -> Result<(), SigV4Error> {
    let expected = signature(req, parsed, secret_access_key);
    if constant_time_eq(expected.as_bytes(), parsed.signature.as_bytes()) {
        Ok(())
    } else {
        Err(SigV4Error::Mismatch)
    }
}

/// Headers that may travel unsigned although their names start with `x-amz-`: the payload
/// hash (bound into the canonical request anyway) and, beside a presigned URL, copies of its
/// query parameters, which some clients also send as headers and which are not read from there.
fn may_be_unsigned(name: &str, location: SignatureLocation) -> bool {
    name == "x-amz-content-sha256"
        || (location == SignatureLocation::Query
            && matches!(
                name,
                "x-amz-algorithm"
                    | "x-amz-credential"
                    | "x-amz-date"
                    | "x-amz-expires"
                    | "x-amz-signedheaders"
                    | "x-amz-signature"
                    | "x-amz-security-token"
            ))
}

/// Refuses a request carrying an `x-amz-*` header that the signature does not cover: AWS
/// requires every `x-amz-*` header to be signed, and an unsigned one (such as `X-Amz-Target`,
/// which names the operation) could be added or changed by anyone on the path.
pub fn check_amz_headers_signed<'n>(
    header_names: impl IntoIterator<Item = &'n str>,
    parsed: &ParsedSignature,
) -> Result<(), SigV4Error> {
    let mut unsigned: Vec<String> = header_names
        .into_iter()
        .map(str::to_ascii_lowercase)
        .filter(|name| name.starts_with("x-amz-"))
        .filter(|name| !may_be_unsigned(name, parsed.location))
        .filter(|name| !parsed.signed_headers.contains(name))
        .collect();
    if unsigned.is_empty() {
        return Ok(());
    }
    unsigned.sort();
    unsigned.dedup();
    Err(malformed(format!(
        "There were headers present in the request which were not signed: {}",
        unsigned.join(", ")
    )))
}

fn check_time(parsed: &ParsedSignature, now: OffsetDateTime) -> Result<(), SigV4Error> {
    let request_time = parsed.request_time;
    let ahead = request_time - now;
    let skewed = SigV4Error::Skewed { request_time, now };
    if ahead > MAX_SKEW {
        return Err(skewed);
    }
    match parsed.expires_seconds {
        None if ahead < -MAX_SKEW => Err(skewed),
        None => Ok(()),
        Some(expires_seconds) => {
            let expires_at = request_time.checked_add(expires_duration(expires_seconds));
            if expires_at.is_some_and(|at| at < now) {
                Err(SigV4Error::Expired {
                    request_time,
                    expires_seconds,
                    now,
                })
            } else {
                Ok(())
            }
        }
    }
}

/// Compares in time independent of where the first difference is, so that a forger learns
/// nothing from how long a refusal takes.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SCOPE: &str = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";
    const HOST: (&str, &str) = ("Host", "example.amazonaws.com");
    const DATE: (&str, &str) = ("X-Amz-Date", "20150830T123600Z");
    const STS_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn suite_time() -> OffsetDateTime {
        parse_amz_date("20150830T123600Z").expect("date")
    }

    /// One request of AWS's SigV4 test suite, as in its `.req` file (whose path is the raw
    /// path on the wire), with the signed headers and signature of its `.authz` file.
    struct Vector {
        name: &'static str,
        method: &'static str,
        path: &'static str,
        query: &'static str,
        headers: &'static [(&'static str, &'static str)],
        body: &'static [u8],
        signed_headers: &'static str,
        signature: &'static str,
        /// The second line of the `.creq` file.
        canonical_uri: &'static str,
    }

    /// A GET of `/` with only `Host` and `X-Amz-Date`, both signed.
    const fn get(name: &'static str, signature: &'static str) -> Vector {
        Vector {
            name,
            method: "GET",
            path: "/",
            query: "",
            headers: &[HOST, DATE],
            body: b"",
            signed_headers: "host;x-amz-date",
            signature,
            canonical_uri: "/",
        }
    }

    impl Vector {
        const fn post(self) -> Self {
            Vector {
                method: "POST",
                ..self
            }
        }

        const fn at(self, path: &'static str, canonical_uri: &'static str) -> Self {
            Vector {
                path,
                canonical_uri,
                ..self
            }
        }

        const fn with_query(self, query: &'static str) -> Self {
            Vector { query, ..self }
        }

        const fn with_headers(
            self,
            headers: &'static [(&'static str, &'static str)],
            signed_headers: &'static str,
        ) -> Self {
            Vector {
                headers,
                signed_headers,
                ..self
            }
        }

        const fn with_body(self, body: &'static [u8]) -> Self {
            Vector { body, ..self }
        }
    }

    const VANILLA: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    const POST_VANILLA: &str = "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b";
    const UNRESERVED_PATH: &str =
        "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const MY_HEADER_SIGNED: &str = "host;my-header1;x-amz-date";
    const FORM: &[u8] = b"Param1=value1";

    /// aws-sig-v4-test-suite (2015), and its successor in awslabs/aws-c-auth
    /// (`tests/aws-signing-test-suite/v4`, whose `-normalized` cases are the path cases here).
    const VECTORS: &[Vector] = &[
        get("get-vanilla", VANILLA),
        get("get-vanilla-query", VANILLA),
        get(
            "get-vanilla-empty-query-key",
            "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
        )
        .with_query("Param1=value1"),
        get(
            "get-vanilla-query-order-key-case",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        )
        .with_query("Param2=value2&Param1=value1"),
        get(
            "get-vanilla-query-order-encoded",
            "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
        )
        .with_query("Param-3=Value3&Param=Value2&%E1%88%B4=Value1"),
        get(
            "get-vanilla-query-unreserved",
            "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
        )
        .with_query("-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
        get(
            "get-vanilla-utf8-query",
            "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
        )
        .with_query("ሴ=bar"),
        get(
            "get-unreserved",
            "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
        )
        .at(UNRESERVED_PATH, UNRESERVED_PATH),
        get(
            "get-utf8",
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
        )
        .at("/ሴ", "/%E1%88%B4"),
        get(
            "get-space",
            "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
        )
        .at("/example space/", "/example%20space/"),
        get("get-slash", VANILLA).at("//", "/"),
        get(
            "get-slashes",
            "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
        )
        .at("//example//", "/example/"),
        get("get-slash-dot-slash", VANILLA).at("/./", "/"),
        get(
            "get-slash-pointless-dot",
            "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5",
        )
        .at("/./example", "/example"),
        get("get-relative", VANILLA).at("/example/..", "/"),
        get("get-relative-relative", VANILLA).at("/example1/example2/../..", "/"),
        get(
            "get-header-key-duplicate",
            "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        )
        .with_headers(
            &[
                HOST,
                ("My-Header1", "value2"),
                ("My-Header1", "value2"),
                ("My-Header1", "value1"),
                DATE,
            ],
            MY_HEADER_SIGNED,
        ),
        get(
            "get-header-value-order",
            "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
        )
        .with_headers(
            &[
                HOST,
                ("My-Header1", "value4"),
                ("My-Header1", "value1"),
                ("My-Header1", "value3"),
                ("My-Header1", "value2"),
                DATE,
            ],
            MY_HEADER_SIGNED,
        ),
        get(
            "get-header-value-trim",
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        )
        .with_headers(
            &[
                HOST,
                ("My-Header1", " value1"),
                ("My-Header2", " \"a   b   c\" "),
                DATE,
            ],
            "host;my-header1;my-header2;x-amz-date",
        ),
        get(
            "get-vanilla-with-session-token",
            "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
        )
        .with_headers(
            &[
                HOST,
                DATE,
                (
                    "X-Amz-Security-Token",
                    "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
                ),
            ],
            "host;x-amz-date;x-amz-security-token",
        ),
        get("post-vanilla", POST_VANILLA).post(),
        get("post-header-key-case", POST_VANILLA).post().with_headers(
            &[
                ("HOST", "example.amazonaws.com"),
                ("X-AMZ-DATE", "20150830T123600Z"),
            ],
            "host;x-amz-date",
        ),
        get(
            "post-header-key-sort",
            "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
        )
        .post()
        .with_headers(&[HOST, ("My-Header1", "value1"), DATE], MY_HEADER_SIGNED),
        get(
            "post-header-value-case",
            "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
        )
        .post()
        .with_headers(&[HOST, ("My-Header1", "VALUE1"), DATE], MY_HEADER_SIGNED),
        get(
            "post-vanilla-query",
            "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
        )
        .post()
        .with_query("Param1=value1"),
        get(
            "post-x-www-form-urlencoded",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        )
        .post()
        .with_headers(
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                HOST,
                DATE,
            ],
            "content-type;host;x-amz-date",
        )
        .with_body(FORM),
        get(
            "post-x-www-form-urlencoded-parameters",
            "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe",
        )
        .post()
        .with_headers(
            &[
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=utf8",
                ),
                HOST,
                DATE,
            ],
            "content-type;host;x-amz-date",
        )
        .with_body(FORM),
        // aws-c-auth's variant: the client declares the body's hash in a signed header.
        get(
            "post-x-www-form-urlencoded-parameters (aws-c-auth)",
            "328d1b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422",
        )
        .post()
        .with_headers(
            &[
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                ),
                HOST,
                ("Content-Length", "13"),
                (
                    "x-amz-content-sha256",
                    "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
                ),
                DATE,
            ],
            "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
        )
        .with_body(FORM),
        get(
            "post-sts-header-before",
            "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
        )
        .post()
        .with_headers(
            &[HOST, DATE, ("X-Amz-Security-Token", STS_TOKEN)],
            "host;x-amz-date;x-amz-security-token",
        ),
        // The token is added after signing, so it is sent but not signed.
        get("post-sts-header-after", POST_VANILLA)
            .post()
            .with_headers(
                &[HOST, DATE, ("X-Amz-Security-Token", STS_TOKEN)],
                "host;x-amz-date",
            ),
    ];

    fn authorization(signed_headers: &str, signature: &str) -> String {
        format!(
            "{ALGORITHM} Credential={SCOPE}, SignedHeaders={signed_headers}, Signature={signature}"
        )
    }

    #[test]
    fn the_aws_test_suite_verifies() {
        for v in VECTORS {
            let authorization = authorization(v.signed_headers, v.signature);
            let mut headers = v.headers.to_vec();
            headers.push(("Authorization", authorization.as_str()));
            let req = RequestParts {
                method: v.method,
                raw_path: v.path,
                raw_query: v.query,
                headers: &headers,
                body: v.body,
            };
            let parsed = parse(&req).unwrap_or_else(|e| panic!("{}: {e:?}", v.name));
            let creq = canonical_request(&req, &parsed);
            assert_eq!(
                creq.lines().nth(1),
                Some(v.canonical_uri),
                "{}: canonical URI",
                v.name
            );
            assert_eq!(signature(&req, &parsed, SECRET), v.signature, "{}", v.name);
            assert_eq!(
                verify(&req, &parsed, SECRET, suite_time()),
                Ok(()),
                "{}",
                v.name
            );
        }
    }

    fn parsed_vector(req: &RequestParts) -> ParsedSignature {
        parse(req).expect("parses")
    }

    #[test]
    fn intermediate_strings_match_the_suite() {
        // get-vanilla: its .creq, and the hash in its .sts.
        let authz = authorization("host;x-amz-date", VANILLA);
        let headers = [HOST, DATE, ("Authorization", authz.as_str())];
        let req = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            headers: &headers,
            body: b"",
        };
        let parsed = parsed_vector(&req);
        let creq = canonical_request(&req, &parsed);
        assert_eq!(
            creq,
            format!("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY_SHA256}")
        );
        assert_eq!(
            string_to_sign(&creq, &parsed),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );

        // get-header-value-trim and get-vanilla-query-order-encoded: trimming, collapsing,
        // and sorting by the *encoded* key.
        let authz = authorization("host;my-header1;my-header2;x-amz-date", VANILLA);
        let headers = [
            HOST,
            ("My-Header1", " value1"),
            ("My-Header2", " \"a   b   c\""),
            DATE,
            ("Authorization", authz.as_str()),
        ];
        let req = RequestParts {
            raw_query: "Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
            headers: &headers,
            ..req
        };
        assert_eq!(
            canonical_request(&req, &parsed_vector(&req)),
            format!("GET\n/\n%E1%88%B4=Value1&Param=Value2&Param-3=Value3\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n{EMPTY_SHA256}")
        );

        // post-sts-header-before: the hash in its .sts.
        let authz = authorization("host;x-amz-date;x-amz-security-token", VANILLA);
        let headers = [
            HOST,
            DATE,
            ("X-Amz-Security-Token", STS_TOKEN),
            ("Authorization", authz.as_str()),
        ];
        let req = RequestParts {
            method: "POST",
            raw_query: "",
            headers: &headers,
            ..req
        };
        let parsed = parsed_vector(&req);
        assert_eq!(parsed.security_token.as_deref(), Some(STS_TOKEN));
        assert_eq!(
            string_to_sign(&canonical_request(&req, &parsed), &parsed),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nc237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6"
        );
    }

    #[test]
    fn the_date_header_stands_in_for_x_amz_date() {
        // Signed with our own signer: the suite's Date-header vectors are of the 2011 suite.
        let provisional = authorization("date;host", &"0".repeat(64));
        let headers = [
            HOST,
            ("Date", "Sun, 30 Aug 2015 12:36:00 GMT"),
            ("Authorization", provisional.as_str()),
        ];
        let req = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            headers: &headers,
            body: b"",
        };
        let parsed = parsed_vector(&req);
        assert_eq!(parsed.request_time, suite_time());
        assert!(string_to_sign(&canonical_request(&req, &parsed), &parsed)
            .starts_with("AWS4-HMAC-SHA256\n20150830T123600Z\n"));
        let signed = authorization("date;host", &signature(&req, &parsed, SECRET));
        let headers = [headers[0], headers[1], ("Authorization", signed.as_str())];
        let req = RequestParts {
            headers: &headers,
            ..req
        };
        assert_eq!(
            verify(&req, &parsed_vector(&req), SECRET, suite_time()),
            Ok(())
        );
    }

    fn presigned(path: &'static str, query: &'static str) -> RequestParts<'static> {
        RequestParts {
            method: "GET",
            raw_path: path,
            raw_query: query,
            // aws-c-auth's presigned requests carry X-Amz-Date as an unsigned header too.
            headers: &[HOST, DATE],
            body: b"",
        }
    }

    #[test]
    fn presigned_vectors_of_aws_c_auth_verify() {
        // tests/aws-signing-test-suite/v4/*/query-signed-request.txt of awslabs/aws-c-auth.
        let cases = [
            presigned("/", "Param2=value2&Param1=value1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5"),
            presigned(UNRESERVED_PATH, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=95968482db1b9e0fadef6efc1bd24689f77c77d9ef56919c96a28cc92e0d6005"),
            presigned("//example//", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=c1834e8fb0307243711f0f907f6ab7311ed300d87f13792d7ee4da89ab93e082"),
        ];
        for req in cases {
            let parsed = parsed_vector(&req);
            assert_eq!(parsed.location, SignatureLocation::Query);
            assert_eq!(parsed.expires_seconds, Some(3600));
            assert_eq!(parsed.scope.access_key_id, "AKIDEXAMPLE");
            let creq = canonical_request(&req, &parsed);
            assert!(!creq.contains("X-Amz-Signature"), "{creq}");
            assert!(creq.contains("&X-Amz-Expires=3600&"), "{creq}");
            let later = suite_time() + Duration::minutes(59);
            assert_eq!(verify(&req, &parsed, SECRET, later), Ok(()), "{creq}");
            assert!(matches!(
                verify(&req, &parsed, SECRET, suite_time() + Duration::minutes(61)),
                Err(SigV4Error::Expired { .. })
            ));
        }
    }

    #[test]
    fn presigned_urls_signed_here_verify_and_expire() {
        let base = "Action=ListThings&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=60&X-Amz-Security-Token=tok%2Ben&X-Amz-SignedHeaders=host";
        let unsigned = format!("{base}&X-Amz-Signature={}", "0".repeat(64));
        let headers = [HOST];
        let req = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: &unsigned,
            headers: &headers,
            body: b"",
        };
        let parsed = parsed_vector(&req);
        assert_eq!(parsed.security_token.as_deref(), Some("tok+en"));
        let signed = format!(
            "{base}&X-Amz-Signature={}",
            signature(&req, &parsed, SECRET)
        );
        let req = RequestParts {
            raw_query: &signed,
            ..req
        };
        let parsed = parsed_vector(&req);
        let at = |seconds| suite_time() + Duration::seconds(seconds);
        assert_eq!(verify(&req, &parsed, SECRET, at(60)), Ok(()));
        assert_eq!(
            verify(&req, &parsed, "other", at(0)),
            Err(SigV4Error::Mismatch)
        );
        let expired = verify(&req, &parsed, SECRET, at(61)).expect_err("expired");
        assert_eq!(
            expired,
            SigV4Error::Expired {
                request_time: suite_time(),
                expires_seconds: 60,
                now: at(61)
            }
        );
        assert_eq!(
            expired.aws_error(),
            (
                "InvalidSignatureException",
                403,
                "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T123701Z - 60 sec.)".to_owned()
            )
        );
        // Dated more than 15 minutes ahead: not yet valid.
        assert!(matches!(
            verify(&req, &parsed, SECRET, at(-16 * 60)),
            Err(SigV4Error::Skewed { .. })
        ));
        // A presigned URL may carry UNSIGNED-PAYLOAD, and then any body goes.
        let unsigned_payload = format!("{base}&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD");
        let provisional = format!("{unsigned_payload}&X-Amz-Signature={}", "0".repeat(64));
        let req = RequestParts {
            method: "PUT",
            raw_query: &provisional,
            body: b"anything",
            ..req
        };
        let parsed = parsed_vector(&req);
        assert!(canonical_request(&req, &parsed).ends_with("\nUNSIGNED-PAYLOAD"));
        let signed = format!(
            "{unsigned_payload}&X-Amz-Signature={}",
            signature(&req, &parsed, SECRET)
        );
        let req = RequestParts {
            raw_query: &signed,
            ..req
        };
        assert_eq!(verify(&req, &parsed_vector(&req), SECRET, at(1)), Ok(()));
    }

    /// Signs a POST with our own signer, as a client would.
    fn signed_post(secret: &str, body: &[u8]) -> Vec<(String, String)> {
        let provisional = authorization("host;x-amz-date", &"0".repeat(64));
        let mut headers = vec![
            (HOST.0.to_owned(), HOST.1.to_owned()),
            (DATE.0.to_owned(), DATE.1.to_owned()),
            ("Authorization".to_owned(), provisional),
        ];
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let req = RequestParts {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers: &refs,
            body,
        };
        let signature = signature(&req, &parsed_vector(&req), secret);
        headers[2].1 = authorization("host;x-amz-date", &signature);
        headers
    }

    fn check(
        headers: &[(String, String)],
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), SigV4Error> {
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let req = RequestParts {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers: &refs,
            body,
        };
        verify(&req, &parse(&req)?, SECRET, now)
    }

    #[test]
    fn tampered_bodies_and_wrong_secrets_mismatch() {
        let body = br#"{"logGroupName":"a"}"#;
        let headers = signed_post(SECRET, body);
        assert_eq!(check(&headers, body, suite_time()), Ok(()));
        assert_eq!(
            check(&headers, br#"{"logGroupName":"b"}"#, suite_time()),
            Err(SigV4Error::Mismatch)
        );
        let wrong = signed_post("not-the-secret", body);
        assert_eq!(check(&wrong, body, suite_time()), Err(SigV4Error::Mismatch));
        let (code, status, message) = SigV4Error::Mismatch.aws_error();
        assert_eq!((code, status), ("InvalidSignatureException", 403));
        assert!(message.starts_with("The request signature we calculated does not match"));

        // A declared payload hash that is not the body's is refused even though it is signed.
        let declared = sha256_hex(b"something else");
        let authz = authorization("host;x-amz-content-sha256;x-amz-date", &"0".repeat(64));
        let headers = [
            HOST,
            DATE,
            ("X-Amz-Content-Sha256", declared.as_str()),
            ("Authorization", authz.as_str()),
        ];
        let req = RequestParts {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers: &headers,
            body,
        };
        let authz = authorization(
            "host;x-amz-content-sha256;x-amz-date",
            &signature(&req, &parsed_vector(&req), SECRET),
        );
        let headers = [
            headers[0],
            headers[1],
            headers[2],
            ("Authorization", authz.as_str()),
        ];
        let req = RequestParts {
            headers: &headers,
            ..req
        };
        assert_eq!(
            verify(&req, &parsed_vector(&req), SECRET, suite_time()),
            Err(SigV4Error::Mismatch)
        );
    }

    #[test]
    fn header_signatures_must_be_within_fifteen_minutes() {
        let body = b"{}";
        let headers = signed_post(SECRET, body);
        let at = |minutes| suite_time() + Duration::minutes(minutes);
        assert_eq!(check(&headers, body, at(15)), Ok(()));
        assert_eq!(check(&headers, body, at(-15)), Ok(()));

        let too_old = check(&headers, body, at(20)).expect_err("too old");
        assert_eq!(
            too_old,
            SigV4Error::Skewed {
                request_time: suite_time(),
                now: at(20)
            }
        );
        assert_eq!(
            too_old.aws_error(),
            (
                "InvalidSignatureException",
                403,
                "Signature expired: 20150830T123600Z is now earlier than 20150830T124100Z (20150830T125600Z - 15 min.)".to_owned()
            )
        );
        let too_new = check(&headers, body, at(-20)).expect_err("too new");
        assert_eq!(
            too_new.aws_error(),
            (
                "InvalidSignatureException",
                403,
                "Signature not yet current: 20150830T123600Z is still later than 20150830T123100Z (20150830T121600Z + 15 min.)".to_owned()
            )
        );
    }

    fn parse_with(authorization: &str) -> Result<ParsedSignature, SigV4Error> {
        let headers = [HOST, DATE, ("Authorization", authorization)];
        parse(&RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            headers: &headers,
            body: b"",
        })
    }

    #[test]
    fn missing_signatures_are_missing() {
        let req = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: "Action=List&X-Amz-Date=20150830T123600Z",
            headers: &[HOST, DATE],
            body: b"",
        };
        let error = parse(&req).expect_err("missing");
        assert_eq!(error, SigV4Error::Missing);
        assert_eq!(
            error.aws_error(),
            (
                "MissingAuthenticationTokenException",
                403,
                "Missing Authentication Token".to_owned()
            )
        );
    }

    #[test]
    fn malformed_signatures_say_what_is_wrong() {
        let zeros = "0".repeat(64);
        let no_signature = format!("{ALGORITHM} Credential={SCOPE}, SignedHeaders=host;x-amz-date");
        let error = parse_with(&no_signature).expect_err("no signature");
        assert_eq!(
            error.aws_error(),
            (
                "IncompleteSignatureException",
                400,
                format!("Authorization header requires 'Signature' parameter. Authorization={no_signature}")
            )
        );
        let cases = [
            ("Bearer", "Authorization header requires 'Credential' parameter."),
            (
                &format!("AWS4-HMAC-SHA1 Credential={SCOPE}, SignedHeaders=host, Signature={zeros}"),
                "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA1'",
            ),
            (
                &format!("{ALGORITHM} Credential=AKIDEXAMPLE/20150830/us-east-1/service, SignedHeaders=host, Signature={zeros}"),
                "Credential must have exactly 5 slash-delimited elements",
            ),
            (
                &format!("{ALGORITHM} Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws5_request, SignedHeaders=host, Signature={zeros}"),
                "Credential should be scoped with a valid terminator",
            ),
            (
                &format!("{ALGORITHM} Credential=AKIDEXAMPLE/20150831/us-east-1/service/aws4_request, SignedHeaders=host, Signature={zeros}"),
                "Date in Credential scope does not match YYYYMMDD",
            ),
            (
                &format!("{ALGORITHM} Credential={SCOPE}, SignedHeaders=x-amz-date, Signature={zeros}"),
                "'Host' or ':authority' must be a 'SignedHeader'",
            ),
            (
                &format!("{ALGORITHM} Credential={SCOPE}, SignedHeaders=host;x-absent, Signature={zeros}"),
                "Signed header 'x-absent' is not present",
            ),
            (
                &format!("{ALGORITHM} Credential={SCOPE}, SignedHeaders=host, Signature=abc"),
                "Signature must be 64 hexadecimal characters",
            ),
            (
                &format!("{ALGORITHM} Credential {SCOPE}, SignedHeaders=host, Signature={zeros}"),
                "not a valid key=value pair (missing equal-sign)",
            ),
        ];
        for (authorization, expected) in cases {
            let error = parse_with(authorization).expect_err(authorization);
            let (code, status, message) = error.aws_error();
            assert_eq!((code, status), ("IncompleteSignatureException", 400));
            assert!(message.contains(expected), "{authorization}: {message}");
        }

        let bad_date = [
            HOST,
            ("X-Amz-Date", "2015-08-30T12:36:00Z"),
            ("Authorization", no_signature.as_str()),
        ];
        let with_signature = format!("{no_signature}, Signature={zeros}");
        let bad_date_signed = [
            bad_date[0],
            bad_date[1],
            ("Authorization", with_signature.as_str()),
        ];
        let error = parse(&RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            headers: &bad_date_signed,
            body: b"",
        })
        .expect_err("bad date");
        assert!(
            matches!(error, SigV4Error::Malformed(m) if m.starts_with("Date must be in ISO-8601 'basic format'. Got '2015-08-30T12:36:00Z'."))
        );

        let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20150830T123600Z";
        let error = parse(&presigned("/", query)).expect_err("incomplete query");
        assert_eq!(
            error,
            SigV4Error::Malformed("AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include 'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. Re-examine the query-string parameters.".to_owned())
        );
    }

    #[test]
    fn paths_and_queries_are_canonicalised_as_for_non_s3_services() {
        // The received path is encoded once more: an encoded ARN keeps its escapes, escaped.
        assert_eq!(
            utf8_percent_encode(&normalize_path("/tags/arn%3Aaws%3Alogs"), PATH).to_string(),
            "/tags/arn%253Aaws%253Alogs"
        );
        assert_eq!(normalize_path(""), "/");
        assert_eq!(normalize_path("/a/./b/../c/"), "/a/c/");
        assert_eq!(normalize_path("/.."), "/");
        assert_eq!(
            canonical_query("b=%20x+y&a=&c&=v", SignatureLocation::Header),
            "=v&a=&b=%20x%2By&c="
        );
        assert_eq!(
            canonical_query("X-Amz-Signature=00&a=1", SignatureLocation::Query),
            "a=1"
        );
        assert_eq!(
            canonical_query("X-Amz-Signature=00&a=1", SignatureLocation::Header),
            "X-Amz-Signature=00&a=1"
        );
    }

    #[test]
    fn signing_key_matches_the_documented_example() {
        // AWS's documentation derives this key for 20150830/us-east-1/iam.
        assert_eq!(
            hex::encode(signing_key(SECRET, "20150830", "us-east-1", "iam")),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    #[test]
    fn kept_signing_keys_are_the_derived_ones() {
        // More scopes than are kept, twice over, and each secret apart.
        for round in 0..2 {
            for day in 0..(SigningKeys::CAPACITY + 5) {
                for secret in [SECRET, "another-secret"] {
                    let date = format!("201508{:02}", day % 28 + 1);
                    let region = if day < 28 { "us-east-1" } else { "eu-west-1" };
                    assert_eq!(
                        signing_key(secret, &date, region, "iam"),
                        derive_signing_key(secret, &date, region, "iam"),
                        "round {round}, {secret} {date} {region}"
                    );
                }
            }
        }
        assert_ne!(
            signing_key(SECRET, "20150830", "us-east-1", "iam"),
            signing_key("another-secret", "20150830", "us-east-1", "iam")
        );
    }

    #[test]
    fn a_declared_payload_hash_lets_the_head_be_verified_before_the_body() {
        let body = b"{\"limit\": 1}";
        let hash = sha256_hex(body);
        let signed_headers = "host;x-amz-content-sha256;x-amz-date";
        let provisional = authorization(signed_headers, &"0".repeat(64));
        let pairs = [
            HOST,
            DATE,
            ("X-Amz-Content-Sha256", hash.as_str()),
            ("Authorization", provisional.as_str()),
        ];
        let unsigned = RequestParts {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers: &pairs,
            body: b"",
        };
        let signed = authorization(
            signed_headers,
            &signature(&unsigned, &parsed_vector(&unsigned), SECRET),
        );
        let pairs = [
            pairs[0],
            pairs[1],
            pairs[2],
            ("Authorization", signed.as_str()),
        ];
        let head = RequestParts {
            headers: &pairs,
            ..unsigned
        };
        let parsed = parse(&head).expect("parsed");
        let now = suite_time();
        let left = verify_head(&head, &parsed, SECRET, now).expect("head verifies");
        assert_eq!(left, BodyCheck::DeclaredHash(sha256_hex(body)));
        assert_eq!(
            verify_head(&head, &parsed, "wrong", now),
            Err(SigV4Error::Mismatch),
            "a wrong secret is caught from the head alone"
        );
        let whole = RequestParts { body, ..head };
        assert_eq!(verify_body(&whole, &parsed, SECRET, &left), Ok(()));
        let swapped = RequestParts {
            body: b"{\"limit\": 2}",
            ..head
        };
        assert_eq!(
            verify_body(&swapped, &parsed, SECRET, &left),
            Err(SigV4Error::Mismatch)
        );

        // Without a declared hash the signature covers the body, so it waits for it.
        let bare_authorization = authorization("host;x-amz-date", &"0".repeat(64));
        let bare = [HOST, DATE, ("Authorization", bare_authorization.as_str())];
        let head = RequestParts {
            headers: &bare,
            ..head
        };
        assert_eq!(
            verify_head(&head, &parse(&head).expect("parsed"), SECRET, now),
            Ok(BodyCheck::Signature)
        );
    }

    #[test]
    fn every_amz_header_must_be_signed() {
        let headers = [HOST, DATE, ("X-Amz-Target", "Logs_20140328.DeleteLogGroup")];
        let req = RequestParts {
            method: "POST",
            raw_path: "/",
            raw_query: "",
            headers: &headers,
            body: b"",
        };
        let names = |extra: &'static [&'static str]| {
            headers
                .iter()
                .map(|(n, _)| *n)
                .chain(extra.iter().copied())
                .collect::<Vec<_>>()
        };
        let signed = parse_with_req(&req, "host;x-amz-date;x-amz-target");
        assert_eq!(check_amz_headers_signed(names(&[]), &signed), Ok(()));
        let unsigned = parse_with_req(&req, "host;x-amz-date");
        let refused = check_amz_headers_signed(names(&[]), &unsigned).expect_err("unsigned");
        assert_eq!(
            refused.aws_error(),
            (
                "IncompleteSignatureException",
                400,
                "There were headers present in the request which were not signed: x-amz-target"
                    .to_owned()
            )
        );
        // The payload hash is bound into the signature anyway; x-amzn-* is another family.
        assert_eq!(
            check_amz_headers_signed(names(&["X-Amz-Content-Sha256", "X-Amzn-Trace-Id"]), &signed),
            Ok(())
        );
        assert!(check_amz_headers_signed(names(&["x-amz-user-agent"]), &signed).is_err());
    }

    fn parse_with_req(req: &RequestParts, signed_headers: &str) -> ParsedSignature {
        let authorization = format!(
            "{ALGORITHM} Credential={SCOPE}, SignedHeaders={signed_headers}, Signature={}",
            "0".repeat(64)
        );
        let mut headers: Vec<(&str, &str)> = req.headers.to_vec();
        headers.push(("Authorization", &authorization));
        parse(&RequestParts {
            headers: &headers,
            ..*req
        })
        .expect("parsed")
    }
}
