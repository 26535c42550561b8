//! Amazon S3 (REST-XML), served on the same listener as every other service.
//!
//! S3 cannot go through `protocol::dispatch`, which reads whole bodies and speaks JSON: its
//! bodies stream to and from disk and its wire format is REST-XML. So the server hands an
//! S3-shaped request (signed for the `s3` service, or addressed to `BUCKET.localhost`) to
//! [`S3Service::handle`] with its body unread. The steps stay those of every other service:
//! authenticate (the same [`Authenticator`] modes and account mapping, by S3's signing rules),
//! route (method, bucket, key, sub-resource), check the bucket's owner, run the operation,
//! and render errors in one place ([`error::S3Error::render`]).
//!
//! Start reading at [`S3Service::handle`]; `buckets` and `objects` hold the operations,
//! `body` the streaming upload decoder, `storage` the disk and the metadata records, `hygiene`
//! the removal of files no record references (at start-up and on `/_sluice/reset`).

pub mod body;
mod buckets;
pub mod error;
pub mod external;
pub mod hygiene;
mod multipart;
mod objects;
mod sink;
pub mod storage;

pub use buckets::valid_bucket_name;
pub use sink::ObjectSink;

use std::sync::Arc;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::Response;
use percent_encoding::percent_decode_str;
use time::OffsetDateTime;

use crate::protocol::auth::{AuthFailure, Authenticator, UnreadAuth};
use crate::protocol::sigv4::{RequestParts, SigV4Error, SignatureLocation};
use error::{S3Error, S3ErrorCode};
use storage::{BucketRecord, LocalObjects, StorageError};

/// The XML namespace of every S3 answer.
pub const XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Sub-resources of S3 that Sluice does not serve yet; a request naming one is answered
/// `NotImplemented` rather than being mistaken for a plain object or bucket operation.
const UNSERVED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "attributes",
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "torrent",
    "versions",
    "website",
];

/// S3 over the local disk.
pub struct S3Service {
    objects: Arc<LocalObjects>,
    /// Names configured in `[[s3.external_buckets]]`, which CreateBucket refuses.
    external_buckets: std::collections::BTreeSet<String>,
}

/// Whether a request is for S3: signed for the `s3` service (header or presigned query), in
/// the older SigV2 form only S3 accepts, or addressed virtual-host style to `BUCKET.localhost`.
pub fn is_s3_request(parts: &Parts) -> bool {
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if authorization.contains("/s3/aws4_request") || authorization.starts_with("AWS ") {
        return true;
    }
    let query = parts.uri.query().unwrap_or_default();
    let presigned = query_pairs(query).into_iter().any(|(name, value)| {
        (name == "X-Amz-Credential" && value.contains("/s3/aws4_request"))
            || name == "AWSAccessKeyId"
    });
    presigned || virtual_host_bucket(&parts.headers).is_some()
}

/// The bucket named by a `BUCKET.localhost[:port]` Host header.
fn virtual_host_bucket(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let name = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    let bucket = name
        .trim_end_matches('.')
        .to_ascii_lowercase()
        .strip_suffix(".localhost")?
        .to_owned();
    (!bucket.is_empty()).then_some(bucket)
}

/// Decoded query pairs; a name without `=` has an empty value (`?location`).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |part: &str| percent_decode_str(part).decode_utf8_lossy().into_owned();
            (decode(name), decode(value))
        })
        .collect()
}

/// An authenticated, routed S3 request whose body is still unread.
pub(crate) struct S3Request {
    pub method: Method,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub auth: UnreadAuth,
}

impl S3Request {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(key, _)| key == name)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn account(&self) -> &str {
        &self.auth.identity.account_id
    }

    pub fn region(&self) -> &str {
        &self.auth.identity.region
    }
}

/// Query parameters that are part of a SigV2 canonical resource.
const V2_SUBRESOURCES: &[&str] = &[
    "acl",
    "delete",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "partNumber",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "torrent",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// Checks a SigV2 presigned URL: its expiry, then its signature over S3's SigV2 string to
/// sign (method, Content-MD5, Content-Type, Expires, `x-amz-*` headers, canonical resource).
fn presigned_v2(
    authenticator: &Authenticator,
    parts: &Parts,
    pairs: &[(String, String)],
) -> Result<UnreadAuth, S3Error> {
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let malformed =
        |message: &str| S3Error::new(S3ErrorCode::AuthorizationQueryParametersError, message);
    let access_key = param("AWSAccessKeyId").unwrap_or_default();
    let signature = param("Signature").ok_or_else(|| {
        malformed("Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters")
    })?;
    let expires = param("Expires")
        .and_then(|value| value.parse::<i64>().ok())
        .ok_or_else(|| malformed("Invalid date (should be seconds since epoch)"))?;
    if expires < OffsetDateTime::now_utc().unix_timestamp() {
        return Err(
            S3Error::new(S3ErrorCode::AccessDenied, "Request has expired")
                .with("Expires", expires.to_string()),
        );
    }
    let header_value = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let mut amz_headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-amz-"))
        .filter_map(|(name, value)| {
            Some((
                name.as_str().to_owned(),
                value.to_str().ok()?.trim().to_owned(),
            ))
        })
        .collect();
    amz_headers.sort();
    let mut resource = match virtual_host_bucket(&parts.headers) {
        Some(bucket) => format!("/{bucket}{}", parts.uri.path()),
        None => parts.uri.path().to_owned(),
    };
    let mut subresources: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(name, _)| V2_SUBRESOURCES.contains(&name.as_str()))
        .collect();
    subresources.sort();
    for (index, (name, value)) in subresources.iter().enumerate() {
        resource.push(if index == 0 { '?' } else { '&' });
        resource.push_str(name);
        if !value.is_empty() {
            resource.push('=');
            resource.push_str(value);
        }
    }
    let string_to_sign = format!(
        "{}\n{}\n{}\n{expires}\n{}{resource}",
        parts.method,
        header_value("content-md5"),
        header_value("content-type"),
        amz_headers
            .iter()
            .map(|(name, value)| format!("{name}:{value}\n"))
            .collect::<String>(),
    );
    authenticator
        .authenticate_v2(access_key, &string_to_sign, signature, "us-east-1")
        .map_err(|failure| auth_error(failure, SignatureLocation::Query))
}

/// Maps a refused signature to S3's wording.
fn auth_error(failure: AuthFailure, location: SignatureLocation) -> S3Error {
    match failure {
        AuthFailure::Signature(SigV4Error::Missing) => S3Error::access_denied(),
        AuthFailure::Signature(SigV4Error::Malformed(message)) => {
            let code = match location {
                SignatureLocation::Header => S3ErrorCode::AuthorizationHeaderMalformed,
                SignatureLocation::Query => S3ErrorCode::AuthorizationQueryParametersError,
            };
            S3Error::new(code, message)
        }
        AuthFailure::Signature(SigV4Error::Mismatch) => S3Error::new(
            S3ErrorCode::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ),
        AuthFailure::Signature(SigV4Error::Skewed { .. }) => S3Error::new(
            S3ErrorCode::RequestTimeTooSkewed,
            "The difference between the request time and the current time is too large.",
        ),
        AuthFailure::Signature(SigV4Error::Expired { .. }) => {
            S3Error::new(S3ErrorCode::AccessDenied, "Request has expired")
        }
        AuthFailure::UnknownAccessKey | AuthFailure::UnknownToken => S3Error::new(
            S3ErrorCode::InvalidAccessKeyId,
            "The AWS Access Key Id you provided does not exist in our records.",
        ),
    }
}

/// Maps a storage failure to S3's codes; store refusals are 503 so that SDKs retry.
pub(crate) fn storage_error(error: StorageError, bucket: &str) -> S3Error {
    match error {
        StorageError::NoSuchBucket => S3Error::no_such_bucket(bucket),
        StorageError::Store(crate::store::StoreError::Unavailable(reason)) => {
            tracing::warn!(%reason, "S3 request refused: the store is unavailable.");
            S3Error::new(
                S3ErrorCode::ServiceUnavailable,
                "Please reduce your request rate.",
            )
        }
        other => S3Error::internal(other),
    }
}

/// An XML answer with S3's headers.
pub(crate) fn xml(body: String) -> Response {
    let mut response = Response::new(Body::from(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"
    )));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    response
}

/// S3's timestamp form in XML: `2009-10-12T17:50:30.000Z`.
pub(crate) fn iso_millis(millis: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.format(&format).unwrap_or_default()
}

/// An account's `<ID>` and `<DisplayName>`, as S3 writes owners and initiators: the ID is a
/// stable 64-hex-digit canonical user id derived from the account, the name the account.
pub(crate) fn owner_xml(account: &str) -> String {
    use sha2::Digest;
    let id = hex::encode(sha2::Sha256::digest(
        format!("sluice-account:{account}").as_bytes(),
    ));
    format!(
        "<ID>{id}</ID><DisplayName>{}</DisplayName>",
        crate::protocol::query::escape(account)
    )
}

#[async_trait::async_trait]
impl crate::protocol::StreamingService for S3Service {
    fn claims(&self, parts: &Parts) -> bool {
        is_s3_request(parts)
    }

    async fn handle(
        &self,
        authenticator: &Authenticator,
        parts: Parts,
        body: Body,
        request_id: &str,
    ) -> Response {
        S3Service::handle(self, authenticator, parts, body, request_id).await
    }
}

impl S3Service {
    /// S3 over `objects`.
    pub fn new(objects: Arc<LocalObjects>) -> Self {
        Self {
            objects,
            external_buckets: Default::default(),
        }
    }

    /// Refuses to create local buckets under these names: Sluice's writers deliver them to
    /// an external service, so a local bucket of the same name would never receive anything.
    pub fn with_external_buckets(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.external_buckets = names.into_iter().collect();
        self
    }

    /// The object storage, for Sluice's own writers.
    pub fn objects(&self) -> Arc<LocalObjects> {
        self.objects.clone()
    }

    /// Serves one S3 request: authenticate, route, check ownership, run, render.
    pub async fn handle(
        &self,
        authenticator: &Authenticator,
        parts: Parts,
        body: Body,
        request_id: &str,
    ) -> Response {
        let head = parts.method == Method::HEAD;
        let resource = parts.uri.path().to_owned();
        let mut response = match self.serve(authenticator, parts, body).await {
            Ok(response) => response,
            Err(error) => error.render(request_id, &resource, head),
        };
        if let Ok(value) = HeaderValue::from_str(request_id) {
            response.headers_mut().insert("x-amz-request-id", value);
        }
        response
    }

    async fn serve(
        &self,
        authenticator: &Authenticator,
        parts: Parts,
        body: Body,
    ) -> Result<Response, S3Error> {
        let raw_path = parts.uri.path();
        let raw_query = parts.uri.query().unwrap_or_default();
        let header_pairs: Vec<(&str, &str)> = parts
            .headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
            .collect();
        let request_parts = RequestParts {
            method: parts.method.as_str(),
            raw_path,
            raw_query,
            headers: &header_pairs,
            body: &[],
        };
        let location = if parts.headers.contains_key(header::AUTHORIZATION) {
            SignatureLocation::Header
        } else {
            SignatureLocation::Query
        };
        if parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("AWS "))
        {
            return Err(S3Error::new(
                S3ErrorCode::NotImplemented,
                "Sluice accepts Signature Version 2 only in presigned URLs; sign requests with SigV4",
            ));
        }
        let pairs = query_pairs(raw_query);
        let auth = if pairs.iter().any(|(name, _)| name == "AWSAccessKeyId") {
            presigned_v2(authenticator, &parts, &pairs)?
        } else {
            authenticator
                .authenticate_unread(&request_parts)
                .map_err(|failure| auth_error(failure, location))?
        };

        let (bucket, key) = match virtual_host_bucket(&parts.headers) {
            Some(bucket) => (Some(bucket), raw_path.strip_prefix('/').unwrap_or(raw_path)),
            None => {
                let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
                match path.split_once('/') {
                    Some((bucket, key)) => (Some(bucket.to_owned()), key),
                    None if path.is_empty() => (None, ""),
                    None => (Some(path.to_owned()), ""),
                }
            }
        };
        let bucket =
            bucket.map(|bucket| percent_decode_str(&bucket).decode_utf8_lossy().into_owned());
        let key = percent_decode_str(key)
            .decode_utf8()
            .map_err(|_| S3Error::new(S3ErrorCode::InvalidArgument, "Object keys must be UTF-8"))?;
        let request = S3Request {
            method: parts.method.clone(),
            bucket,
            key: (!key.is_empty()).then(|| key.into_owned()),
            query: pairs,
            headers: parts.headers,
            auth,
        };
        if let Some(name) = UNSERVED_SUBRESOURCES.iter().find(|name| request.has(name)) {
            return Err(S3Error::new(
                S3ErrorCode::NotImplemented,
                format!("Sluice does not implement the S3 '{name}' sub-resource yet"),
            ));
        }
        tracing::debug!(method = %request.method, bucket = ?request.bucket, key = ?request.key, "S3 request.");
        self.route(request, body).await
    }

    async fn route(&self, request: S3Request, body: Body) -> Result<Response, S3Error> {
        let Some(bucket) = request.bucket.clone() else {
            return match request.method {
                Method::GET => buckets::list_buckets(&self.objects, &request).await,
                _ => Err(S3Error::new(
                    S3ErrorCode::MethodNotAllowed,
                    "The specified method is not allowed against this resource.",
                )),
            };
        };
        if request.method == Method::PUT
            && request.key.is_none()
            && !request.has("tagging")
            && !request.has("policy")
        {
            if self.external_buckets.contains(&bucket) {
                return Err(S3Error::new(
                    S3ErrorCode::BucketAlreadyExists,
                    "The bucket name is configured in [[s3.external_buckets]]: Sluice delivers it to an external S3 service, which serves it.",
                )
                .bucket(&bucket));
            }
            return buckets::create_bucket(&self.objects, &request, &bucket, body).await;
        }
        let record = authorize(&self.objects, &request, &bucket, None).await?;
        match (&request.method, request.key.clone()) {
            (&Method::PUT, None) if request.has("policy") => {
                buckets::put_bucket_policy(&self.objects, &bucket, body).await
            }
            (&Method::GET, None) if request.has("policy") => {
                buckets::get_bucket_policy(&record, &bucket)
            }
            (&Method::DELETE, None) if request.has("policy") => {
                buckets::delete_bucket_policy(&self.objects, &bucket).await
            }
            (&Method::HEAD, None) => Ok(buckets::head_bucket(&record)),
            (&Method::GET, None) if request.has("location") => {
                Ok(buckets::get_bucket_location(&record))
            }
            (_, Some(_)) if request.has("tagging") => Err(S3Error::new(
                S3ErrorCode::NotImplemented,
                "Sluice does not implement object tagging yet",
            )),
            (&Method::PUT, None) if request.has("tagging") => {
                buckets::put_bucket_tagging(&self.objects, &bucket, body).await
            }
            (&Method::GET, None) if request.has("tagging") => {
                buckets::get_bucket_tagging(&record, &bucket)
            }
            (&Method::DELETE, None) if request.has("tagging") => {
                buckets::delete_bucket_tagging(&self.objects, &bucket).await
            }
            (&Method::DELETE, None) => buckets::delete_bucket(&self.objects, &bucket).await,
            (&Method::GET, None) if request.has("versioning") => {
                Ok(xml(format!("<VersioningConfiguration xmlns=\"{XMLNS}\"/>")))
            }
            (&Method::GET, None) if request.has("uploads") => {
                multipart::list_uploads(&self.objects, &request, &bucket).await
            }
            (&Method::GET, None) => objects::list_objects(&self.objects, &request, &bucket).await,
            (&Method::POST, Some(key)) if request.has("uploads") => {
                multipart::create(&self.objects, &request, &bucket, &key).await
            }
            (&Method::POST, Some(key)) if request.has("uploadId") => {
                multipart::complete(&self.objects, &request, &bucket, &key, body).await
            }
            (&Method::PUT, Some(key)) if request.has("uploadId") => {
                if request.header("x-amz-copy-source").is_some() {
                    return Err(S3Error::new(
                        S3ErrorCode::NotImplemented,
                        "Sluice does not implement UploadPartCopy yet",
                    ));
                }
                multipart::upload_part(&self.objects, &request, &bucket, &key, body).await
            }
            (&Method::DELETE, Some(key)) if request.has("uploadId") => {
                multipart::abort(&self.objects, &request, &bucket, &key).await
            }
            (&Method::GET, Some(key)) if request.has("uploadId") => {
                multipart::list_parts(&self.objects, &request, &bucket, &key).await
            }
            (&Method::POST, None) if request.has("delete") => {
                objects::delete_objects(&self.objects, &request, &bucket, body).await
            }
            (&Method::PUT, Some(key)) if request.header("x-amz-copy-source").is_some() => {
                objects::copy_object(&self.objects, &request, &bucket, &key).await
            }
            (&Method::PUT, Some(key)) => {
                objects::put_object(&self.objects, &request, &bucket, &key, body).await
            }
            (&Method::GET, Some(key)) => {
                objects::get_object(&self.objects, &request, &bucket, &key, false).await
            }
            (&Method::HEAD, Some(key)) => {
                objects::get_object(&self.objects, &request, &bucket, &key, true).await
            }
            (&Method::DELETE, Some(key)) => {
                objects::delete_object(&self.objects, &bucket, &key).await
            }
            _ => Err(S3Error::new(
                S3ErrorCode::MethodNotAllowed,
                "The specified method is not allowed against this resource.",
            )),
        }
    }
}

/// The IAM action a request needs, as S3 names it for bucket policies; `None` for the
/// operations only the owner may call (the bucket policy itself, and bucket deletion).
fn action_of(request: &S3Request) -> Option<&'static str> {
    let has_key = request.key.is_some();
    let method = &request.method;
    Some(match (method, has_key) {
        (_, false) if request.has("policy") => return None,
        (&Method::DELETE, false) if request.has("tagging") => "s3:PutBucketTagging",
        (&Method::DELETE, false) => return None,
        (&Method::GET, false) if request.has("location") => "s3:GetBucketLocation",
        (&Method::GET, false) if request.has("tagging") => "s3:GetBucketTagging",
        (&Method::PUT, false) if request.has("tagging") => "s3:PutBucketTagging",
        (&Method::GET, false) if request.has("versioning") => "s3:GetBucketVersioning",
        (&Method::GET, false) if request.has("uploads") => "s3:ListBucketMultipartUploads",
        (&Method::POST, false) if request.has("delete") => "s3:DeleteObject",
        (_, false) => "s3:ListBucket",
        (&Method::GET, true) if request.has("uploadId") => "s3:ListMultipartUploadParts",
        (&Method::DELETE, true) if request.has("uploadId") => "s3:AbortMultipartUpload",
        (&Method::GET | &Method::HEAD, true) => "s3:GetObject",
        (&Method::DELETE, true) => "s3:DeleteObject",
        (_, true) => "s3:PutObject",
    })
}

/// The bucket's record when the caller may make this request: always for the owning
/// account; for another account only when the bucket policy allows the request's action on
/// the bucket or object (`action` overrides the request's own, e.g. `s3:GetObject` on a copy
/// source). `NoSuchBucket` when nobody owns the name, `AccessDenied` otherwise.
pub(crate) async fn authorize(
    objects: &LocalObjects,
    request: &S3Request,
    bucket: &str,
    action: Option<(&'static str, &str)>,
) -> Result<BucketRecord, S3Error> {
    let record = objects
        .bucket(bucket)
        .await
        .map_err(|error| storage_error(error, bucket))?
        .ok_or_else(|| S3Error::no_such_bucket(bucket))?;
    if record.owner == request.account() {
        return Ok(record);
    }
    // DeleteObjects is judged key by key (`s3:DeleteObject` on each object) by its handler.
    let delete_objects = request.method == Method::POST && request.has("delete");
    if action.is_none() && delete_objects && request.key.is_none() && record.policy.is_some() {
        return Ok(record);
    }
    let (action, key) = match action {
        Some((action, key)) => (Some(action), Some(key)),
        None => (action_of(request), request.key.as_deref()),
    };
    if let (Some(action), Some(policy)) = (action, &record.policy) {
        let resource = match key {
            Some(key) => format!("arn:aws:s3:::{bucket}/{key}"),
            None => format!("arn:aws:s3:::{bucket}"),
        };
        if policy_allows(policy, request.account(), action, &resource) {
            return Ok(record);
        }
    }
    Err(S3Error::access_denied().bucket(bucket))
}

/// Evaluates a stored bucket policy for one request.
pub(crate) fn policy_allows(
    policy: &crate::policy::StoredPolicy,
    account: &str,
    action: &str,
    resource: &str,
) -> bool {
    let request = crate::policy::Request {
        principal_account: account,
        principal_arn: None,
        action,
        resource,
        keys: &[],
    };
    policy.evaluate(&request) == crate::policy::Decision::Allow
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_hosts_name_buckets() {
        let mut headers = HeaderMap::new();
        for (host, bucket) in [
            ("my-bucket.localhost:4566", Some("my-bucket")),
            ("a.b.localhost", Some("a.b")),
            ("localhost:4566", None),
            ("127.0.0.1:4566", None),
            (".localhost", None),
        ] {
            headers.insert(header::HOST, HeaderValue::from_static(host));
            assert_eq!(virtual_host_bucket(&headers).as_deref(), bucket, "{host}");
        }
    }
}
