//! AWS Signature Version 4, server side: parse a signature from the `Authorization` header or
//! from a presigned query string, rebuild the canonical request, and verify it.
//!
//! Written by hand because the `aws-sigv4` crate signs but does not verify, and verification
//! needs the canonical request rebuilt from the request *as received*. The rules are those of
//! the non-S3 services: the received (once-encoded) path is encoded once more, query pairs are
//! decoded and re-encoded with the strict unreserved set and sorted, header values are trimmed
//! with inner runs of spaces collapsed. The tests replay AWS's published test suite.

use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

/// The only algorithm SigV4 defines.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's time may be from the server's clock.
pub const MAX_SKEW: Duration = Duration::minutes(15);
/// The longest validity a presigned URL may ask for (7 days).
pub const MAX_PRESIGNED_EXPIRY_SECONDS: u64 = 604_800;

/// Everything but `A-Z a-z 0-9 - _ . ~` is encoded in canonical query strings.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// Canonical paths keep their slashes.
const PATH: &AsciiSet = &STRICT.remove(b'/');

/// The request as it arrived, exactly as needed to rebuild the canonical request.
pub struct RequestParts<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Raw path as received on the wire (still percent-encoded once), without the query.
    pub raw_path: &'a str,
    /// Raw query string without the leading `?`, possibly empty.
    pub raw_query: &'a str,
    /// Header (name, value) pairs as received; names in any case; a name may repeat.
    pub headers: &'a [(&'a str, &'a str)],
    /// The whole body.
    pub body: &'a [u8],
}

/// Where the signature was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureLocation {
    /// The `Authorization` header.
    Header,
    /// A presigned URL's query string.
    Query,
}

/// The credential scope: `AKID/yyyymmdd/region/service/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    /// The signing access key.
    pub access_key_id: String,
    /// `yyyymmdd`.
    pub date: String,
    /// The signing region.
    pub region: String,
    /// The signing service name, which identifies the service being called.
    pub service: String,
}

/// A syntactically valid SigV4 signature found in a request (not yet verified).
#[derive(Debug, Clone)]
pub struct ParsedSignature {
    /// Header or query.
    pub location: SignatureLocation,
    /// The credential scope.
    pub scope: CredentialScope,
    /// Lowercase names of the signed headers, in the order given.
    pub signed_headers: Vec<String>,
    /// Lowercase hex.
    pub signature: String,
    /// `X-Amz-Date` (header or query), else the `Date` header.
    pub request_time: OffsetDateTime,
    /// The request time as it was written, for the string to sign.
    pub amz_date: String,
    /// `X-Amz-Expires` of a presigned URL.
    pub expires_seconds: Option<u64>,
    /// `X-Amz-Security-Token`, if present.
    pub security_token: Option<String>,
}

/// Why a request's signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header and no `X-Amz-Algorithm` query parameter.
    #[error("missing authentication token")]
    Missing,
    /// Something is there but it is not a well-formed SigV4 signature.
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// The computed signature differs.
    #[error("signature mismatch")]
    Mismatch,
    /// The request time is more than 15 minutes from the server's clock.
    #[error("request time too far from the server's clock")]
    Skewed {
        /// The request's time.
        request_time: OffsetDateTime,
        /// The server's time.
        now: OffsetDateTime,
    },
    /// A presigned URL used after its expiry.
    #[error("presigned URL expired")]
    Expired {
        /// When it expired.
        expired_at: OffsetDateTime,
        /// The server's time.
        now: OffsetDateTime,
    },
}

fn basic_iso8601(instant: OffsetDateTime) -> String {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    instant.format(&format).unwrap_or_default()
}

impl SigV4Error {
    /// The AWS error code, HTTP status and message the wire layer answers with.
    pub fn aws_error(&self) -> (&'static str, u16, String) {
        match self {
            SigV4Error::Missing => ("MissingAuthenticationTokenException", 403, "Missing Authentication Token".to_owned()),
            SigV4Error::Malformed(message) => ("IncompleteSignatureException", 400, message.clone()),
            SigV4Error::Mismatch => (
                "InvalidSignatureException",
                403,
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".to_owned(),
            ),
            SigV4Error::Skewed { request_time, now } if request_time < now => (
                "InvalidSignatureException",
                403,
                format!(
                    "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                    basic_iso8601(*request_time),
                    basic_iso8601(*now - MAX_SKEW),
                    basic_iso8601(*now)
                ),
            ),
            SigV4Error::Skewed { request_time, now } => (
                "InvalidSignatureException",
                403,
                format!(
                    "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                    basic_iso8601(*request_time),
                    basic_iso8601(*now + MAX_SKEW),
                    basic_iso8601(*now)
                ),
            ),
            SigV4Error::Expired { expired_at, now } => (
                "InvalidSignatureException",
                403,
                format!("Signature expired: {} is now earlier than {}", basic_iso8601(*expired_at), basic_iso8601(*now)),
            ),
        }
    }
}

fn header<'a>(req: &RequestParts<'a>, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// Decoded query pairs; a key without `=` has an empty value.
fn query_pairs(raw_query: &str) -> Vec<(String, String)> {
    raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode_str(key).decode_utf8_lossy().into_owned(),
                percent_decode_str(value).decode_utf8_lossy().into_owned(),
            )
        })
        .collect()
}

fn parse_amz_date(text: &str) -> Result<OffsetDateTime, SigV4Error> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(text, &format)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| {
            SigV4Error::Malformed(format!(
                "Invalid X-Amz-Date '{text}': expected yyyyMMddTHHmmssZ"
            ))
        })
}

fn parse_http_date(text: &str) -> Result<OffsetDateTime, SigV4Error> {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    PrimitiveDateTime::parse(text, &format)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| SigV4Error::Malformed(format!("Invalid Date header '{text}'")))
}

fn parse_scope(credential: &str) -> Result<CredentialScope, SigV4Error> {
    let parts: Vec<&str> = credential.split('/').collect();
    match parts.as_slice() {
        [key, date, region, service, "aws4_request"]
            if !key.is_empty()
                && date.len() == 8
                && date.bytes().all(|b| b.is_ascii_digit())
                && !region.is_empty()
                && !service.is_empty() =>
        {
            Ok(CredentialScope {
                access_key_id: (*key).to_owned(),
                date: (*date).to_owned(),
                region: (*region).to_owned(),
                service: (*service).to_owned(),
            })
        }
        _ => Err(SigV4Error::Malformed(format!(
            "Credential should be scoped to a valid region, service and date: '{credential}'"
        ))),
    }
}

fn check_signature_hex(signature: &str) -> Result<(), SigV4Error> {
    if signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(SigV4Error::Malformed(
            "Signature must be 64 hexadecimal characters".to_owned(),
        ))
    }
}

/// Finds and parses the signature of a request.
pub fn parse(req: &RequestParts) -> Result<ParsedSignature, SigV4Error> {
    if let Some(authorization) = header(req, "authorization") {
        return parse_header(req, authorization);
    }
    let query = query_pairs(req.raw_query);
    if query.iter().any(|(k, _)| k == "X-Amz-Algorithm") {
        return parse_query(req, &query);
    }
    Err(SigV4Error::Missing)
}

fn parse_header(req: &RequestParts, authorization: &str) -> Result<ParsedSignature, SigV4Error> {
    let rest = authorization
        .strip_prefix(ALGORITHM)
        .filter(|rest| rest.starts_with(' '))
        .ok_or_else(|| {
            SigV4Error::Malformed(format!(
                "Authorization header requires the {ALGORITHM} algorithm"
            ))
        })?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for component in rest.split(',') {
        let component = component.trim();
        match component.split_once('=') {
            Some(("Credential", value)) => credential = Some(value),
            Some(("SignedHeaders", value)) => signed_headers = Some(value),
            Some(("Signature", value)) => signature = Some(value),
            _ => {
                return Err(SigV4Error::Malformed(format!(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header; unexpected component '{component}'"
                )))
            }
        }
    }
    let missing = |name: &str| {
        SigV4Error::Malformed(format!(
            "Authorization header requires '{name}' parameter. Authorization={authorization}"
        ))
    };
    let scope = parse_scope(credential.ok_or_else(|| missing("Credential"))?)?;
    let signed_headers = signed_headers.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    check_signature_hex(signature)?;
    let (request_time, amz_date) = match header(req, "x-amz-date") {
        Some(date) => (parse_amz_date(date)?, date.to_owned()),
        None => match header(req, "date") {
            Some(date) => {
                let time = parse_http_date(date)?;
                (time, basic_iso8601(time))
            }
            None => {
                return Err(SigV4Error::Malformed(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".to_owned(),
                ))
            }
        },
    };
    let parsed = ParsedSignature {
        location: SignatureLocation::Header,
        scope,
        signed_headers: signed_headers
            .split(';')
            .map(str::to_ascii_lowercase)
            .collect(),
        signature: signature.to_ascii_lowercase(),
        request_time,
        amz_date,
        expires_seconds: None,
        security_token: header(req, "x-amz-security-token").map(str::to_owned),
    };
    check_signed_headers(req, &parsed)?;
    Ok(parsed)
}

fn parse_query(
    req: &RequestParts,
    query: &[(String, String)],
) -> Result<ParsedSignature, SigV4Error> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let missing = |name: &str| {
        SigV4Error::Malformed(format!(
            "Presigned URL requires the '{name}' query parameter"
        ))
    };
    if get("X-Amz-Algorithm") != Some(ALGORITHM) {
        return Err(SigV4Error::Malformed(format!(
            "X-Amz-Algorithm must be {ALGORITHM}"
        )));
    }
    let scope = parse_scope(get("X-Amz-Credential").ok_or_else(|| missing("X-Amz-Credential"))?)?;
    let amz_date = get("X-Amz-Date").ok_or_else(|| missing("X-Amz-Date"))?;
    let expires = get("X-Amz-Expires").ok_or_else(|| missing("X-Amz-Expires"))?;
    let expires: u64 = expires
        .parse()
        .ok()
        .filter(|seconds| (1..=MAX_PRESIGNED_EXPIRY_SECONDS).contains(seconds))
        .ok_or_else(|| {
            SigV4Error::Malformed(format!(
                "X-Amz-Expires must be between 1 and {MAX_PRESIGNED_EXPIRY_SECONDS}"
            ))
        })?;
    let signed_headers =
        get("X-Amz-SignedHeaders").ok_or_else(|| missing("X-Amz-SignedHeaders"))?;
    let signature = get("X-Amz-Signature").ok_or_else(|| missing("X-Amz-Signature"))?;
    check_signature_hex(signature)?;
    let parsed = ParsedSignature {
        location: SignatureLocation::Query,
        scope,
        signed_headers: signed_headers
            .split(';')
            .map(str::to_ascii_lowercase)
            .collect(),
        signature: signature.to_ascii_lowercase(),
        request_time: parse_amz_date(amz_date)?,
        amz_date: amz_date.to_owned(),
        expires_seconds: Some(expires),
        security_token: get("X-Amz-Security-Token").map(str::to_owned),
    };
    check_signed_headers(req, &parsed)?;
    Ok(parsed)
}

/// `host` must be signed, and every signed header must be present.
fn check_signed_headers(req: &RequestParts, parsed: &ParsedSignature) -> Result<(), SigV4Error> {
    if !parsed.signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::Malformed(
            "'Host' must be a signed header".to_owned(),
        ));
    }
    for name in &parsed.signed_headers {
        if header(req, name).is_none() {
            return Err(SigV4Error::Malformed(format!(
                "Signed header '{name}' is not present in the request"
            )));
        }
    }
    Ok(())
}

/// Removes `.` and `..` segments, as the SDKs do before signing non-S3 requests.
fn normalize_path(raw_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let trailing_slash = raw_path.ends_with('/') && raw_path.len() > 1;
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
    if trailing_slash && path != "/" {
        path.push('/');
    }
    path
}

fn canonical_query(raw_query: &str, location: SignatureLocation) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(raw_query)
        .into_iter()
        .filter(|(key, _)| !(location == SignatureLocation::Query && key == "X-Amz-Signature"))
        .map(|(key, value)| {
            (
                utf8_percent_encode(&key, STRICT).to_string(),
                utf8_percent_encode(&value, STRICT).to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_header_value(values: &[&str]) -> String {
    values
        .iter()
        .map(|value| value.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(",")
}

/// Rebuilds the canonical request from the request as received.
pub fn canonical_request(req: &RequestParts, parsed: &ParsedSignature) -> String {
    let path = utf8_percent_encode(&normalize_path(req.raw_path), PATH).to_string();
    let query = canonical_query(req.raw_query, parsed.location);
    let mut names = parsed.signed_headers.clone();
    names.sort();
    let headers: String = names
        .iter()
        .map(|name| {
            let values: Vec<&str> = req
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
                .collect();
            format!("{name}:{}\n", canonical_header_value(&values))
        })
        .collect();
    let payload_hash = match header(req, "x-amz-content-sha256") {
        Some(hash) => hash.to_owned(),
        None => hex::encode(Sha256::digest(req.body)),
    };
    format!(
        "{}\n{path}\n{query}\n{headers}\n{}\n{payload_hash}",
        req.method,
        names.join(";")
    )
}

/// The string to sign for a canonical request.
pub fn string_to_sign(canonical_request: &str, parsed: &ParsedSignature) -> String {
    let scope = &parsed.scope;
    format!(
        "{ALGORITHM}\n{}\n{}/{}/{}/aws4_request\n{}",
        parsed.amz_date,
        scope.date,
        scope.region,
        scope.service,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The key derived from the secret for one day, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let date_key = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let region_key = hmac(&date_key, region.as_bytes());
    let service_key = hmac(&region_key, service.as_bytes());
    hmac(&service_key, b"aws4_request")
}

/// The hex signature of a request under `secret`.
pub fn signature(req: &RequestParts, parsed: &ParsedSignature, secret: &str) -> String {
    let scope = &parsed.scope;
    let key = signing_key(secret, &scope.date, &scope.region, &scope.service);
    let to_sign = string_to_sign(&canonical_request(req, parsed), parsed);
    hex::encode(hmac(&key, to_sign.as_bytes()))
}

/// Verifies the signature with `secret` at time `now`, including clock skew and expiry.
pub fn verify(
    req: &RequestParts,
    parsed: &ParsedSignature,
    secret: &str,
    now: OffsetDateTime,
) -> Result<(), SigV4Error> {
    let request_time = parsed.request_time;
    match parsed.expires_seconds {
        None => {
            if (request_time - now).abs() > MAX_SKEW {
                return Err(SigV4Error::Skewed { request_time, now });
            }
        }
        Some(expires) => {
            if request_time - now > MAX_SKEW {
                return Err(SigV4Error::Skewed { request_time, now });
            }
            let expired_at =
                request_time + Duration::seconds(i64::try_from(expires).unwrap_or(i64::MAX / 2));
            if expired_at < now {
                return Err(SigV4Error::Expired { expired_at, now });
            }
        }
    }
    let expected = signature(req, parsed, secret);
    // Constant time: a forger learns nothing from how long the comparison takes.
    let differs = expected
        .bytes()
        .zip(parsed.signature.bytes())
        .fold(expected.len() ^ parsed.signature.len(), |acc, (a, b)| {
            acc | usize::from(a ^ b)
        });
    if differs == 0 {
        Ok(())
    } else {
        Err(SigV4Error::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SCOPE: &str = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";

    fn suite_time() -> OffsetDateTime {
        parse_amz_date("20150830T123600Z").expect("date")
    }

    /// A request of AWS's SigV4 test suite (example.amazonaws.com, 20150830T123600Z).
    fn check_vector(
        method: &str,
        path: &str,
        query: &str,
        extra: &[(&str, &str)],
        body: &[u8],
        signed: &str,
        expected: &str,
    ) {
        let authorization =
            format!("{ALGORITHM} Credential={SCOPE}, SignedHeaders={signed}, Signature={expected}");
        let mut headers = vec![
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ];
        headers.extend_from_slice(extra);
        headers.push(("Authorization", &authorization));
        let req = RequestParts {
            method,
            raw_path: path,
            raw_query: query,
            headers: &headers,
            body,
        };
        let parsed = parse(&req).expect("parses");
        assert_eq!(
            signature(&req, &parsed, SECRET),
            expected,
            "{method} {path}?{query}"
        );
        assert_eq!(verify(&req, &parsed, SECRET, suite_time()), Ok(()));
    }

    #[test]
    fn aws_test_suite_vectors() {
        check_vector(
            "GET",
            "/",
            "",
            &[],
            b"",
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        );
        check_vector(
            "GET",
            "/",
            "Param2=value2&Param1=value1",
            &[],
            b"",
            "host;x-amz-date",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        );
        check_vector(
            "GET",
            "/",
            "Param1=value1",
            &[],
            b"",
            "host;x-amz-date",
            "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
        );
        check_vector(
            "POST",
            "/",
            "",
            &[],
            b"",
            "host;x-amz-date",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        );
        check_vector(
            "POST",
            "/",
            "",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"Param1=value1",
            "content-type;host;x-amz-date",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        );
    }

    #[test]
    fn canonical_request_and_string_to_sign_match_the_suite() {
        let authorization = format!(
            "{ALGORITHM} Credential={SCOPE}, SignedHeaders=host;x-amz-date, Signature={}",
            "0".repeat(64)
        );
        let headers = [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
            ("Authorization", authorization.as_str()),
        ];
        let req = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: "Param2=value2&Param1=value1",
            headers: &headers,
            body: b"",
        };
        let parsed = parse(&req).expect("parses");
        let creq = canonical_request(&req, &parsed);
        assert_eq!(
            creq,
            "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            string_to_sign(&creq, &parsed),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0"
        );
    }

    #[test]
    fn paths_are_normalised_and_encoded_again() {
        assert_eq!(normalize_path("/a/./b/../c"), "/a/c");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path("/a/b/"), "/a/b/");
        assert_eq!(
            utf8_percent_encode("/tags/arn%3Aaws", PATH).to_string(),
            "/tags/arn%253Aaws"
        );
        assert_eq!(
            canonical_query("b=%20x&a=&c", SignatureLocation::Header),
            "a=&b=%20x&c="
        );
    }

    /// Signs a request with our own signer, as a client would, for the negative cases.
    fn signed(secret: &str, date: &str, body: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
        let provisional = format!(
            "{ALGORITHM} Credential={SCOPE}, SignedHeaders=host;x-amz-date, Signature={}",
            "0".repeat(64)
        );
        let mut headers = vec![
            ("Host".to_owned(), "example.amazonaws.com".to_owned()),
            ("X-Amz-Date".to_owned(), date.to_owned()),
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
        let parsed = parse(&req).expect("parses");
        let signature = signature(&req, &parsed, secret);
        headers[2].1 = format!(
            "{ALGORITHM} Credential={SCOPE}, SignedHeaders=host;x-amz-date, Signature={signature}"
        );
        (headers, body.to_vec())
    }

    fn check(
        headers: &[(String, String)],
        body: &[u8],
        query: &str,
        now: OffsetDateTime,
    ) -> Result<(), SigV4Error> {
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let req = RequestParts {
            method: "POST",
            raw_path: "/",
            raw_query: query,
            headers: &refs,
            body,
        };
        let parsed = parse(&req)?;
        verify(&req, &parsed, SECRET, now)
    }

    #[test]
    fn refuses_tampering_wrong_secrets_and_skew() {
        let (headers, body) = signed(SECRET, "20150830T123600Z", b"{}");
        assert_eq!(check(&headers, &body, "", suite_time()), Ok(()));
        assert_eq!(
            check(&headers, b"{\"x\":1}", "", suite_time()),
            Err(SigV4Error::Mismatch)
        );
        let (wrong, body) = signed("another-secret", "20150830T123600Z", b"{}");
        assert_eq!(
            check(&wrong, &body, "", suite_time()),
            Err(SigV4Error::Mismatch)
        );

        let late = suite_time() + Duration::minutes(16);
        let error = check(&headers, &body, "", late).expect_err("too old");
        let (code, status, message) = error.aws_error();
        assert_eq!((code, status), ("InvalidSignatureException", 403));
        assert_eq!(message, "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z (20150830T125200Z - 15 min.)");
        let early = suite_time() - Duration::minutes(16);
        let (_, _, message) = check(&headers, &body, "", early)
            .expect_err("too new")
            .aws_error();
        assert!(
            message.starts_with("Signature not yet current: 20150830T123600Z is still later than"),
            "{message}"
        );
        assert_eq!(
            check(&headers, &body, "", suite_time() + Duration::minutes(14)),
            Ok(())
        );
    }

    #[test]
    fn presigned_urls_are_verified_and_expire() {
        let credential = "AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request";
        let base = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}&X-Amz-Date=20150830T123600Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host"
        );
        let headers = [("Host", "example.amazonaws.com")];
        let unsigned = format!("{base}&X-Amz-Signature={}", "0".repeat(64));
        let req = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: &unsigned,
            headers: &headers,
            body: b"",
        };
        let parsed = parse(&req).expect("parses");
        assert_eq!(parsed.location, SignatureLocation::Query);
        assert!(!canonical_request(&req, &parsed).contains("X-Amz-Signature"));
        let good = format!(
            "{base}&X-Amz-Signature={}",
            signature(&req, &parsed, SECRET)
        );
        let req = RequestParts {
            raw_query: &good,
            ..req
        };
        let parsed = parse(&req).expect("parses");
        assert_eq!(
            verify(&req, &parsed, SECRET, suite_time() + Duration::seconds(30)),
            Ok(())
        );
        assert!(matches!(
            verify(&req, &parsed, SECRET, suite_time() + Duration::seconds(61)),
            Err(SigV4Error::Expired { .. })
        ));
        assert_eq!(
            verify(&req, &parsed, "other", suite_time()),
            Err(SigV4Error::Mismatch)
        );
    }

    #[test]
    fn missing_and_malformed_signatures() {
        let none = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            headers: &[("Host", "h")],
            body: b"",
        };
        assert_eq!(parse(&none).err(), Some(SigV4Error::Missing));
        for authorization in [
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date",
            "AWS4-HMAC-SHA1 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-absent, Signature=0000000000000000000000000000000000000000000000000000000000000000",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=zz",
            "Bearer token",
        ] {
            let headers = [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", authorization)];
            let req = RequestParts { method: "GET", raw_path: "/", raw_query: "", headers: &headers, body: b"" };
            let error = parse(&req).expect_err(authorization);
            assert!(matches!(error, SigV4Error::Malformed(_)), "{authorization}: {error:?}");
            assert_eq!(error.aws_error().0, "IncompleteSignatureException");
        }
    }
}
