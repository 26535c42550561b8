//! S3's errors: one code enum with S3's HTTP statuses, and the one renderer that writes
//! them as S3 does (`<Error><Code>..</Code><Message>..</Message>..<RequestId>..</RequestId>`,
//! no body at all for HEAD).

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use crate::protocol::query::escape;

/// The S3 error codes Sluice answers with, each with S3's HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3ErrorCode {
    /// 403: no permission, another account's bucket, or an anonymous request.
    AccessDenied,
    /// 400: the body's MD5 is not the `Content-MD5` sent.
    BadDigest,
    /// 409: another account owns the name (names are global).
    BucketAlreadyExists,
    /// 409 (200 in us-east-1): the caller already owns the bucket.
    BucketAlreadyOwnedByYou,
    /// 409: the bucket still holds objects.
    BucketNotEmpty,
    /// 400: a multipart part other than the last is smaller than 5 MiB.
    EntityTooSmall,
    /// 400: a listed part was not uploaded, or its ETag differs.
    InvalidPart,
    /// 400: the parts of CompleteMultipartUpload are not in ascending order.
    InvalidPartOrder,
    /// 404: no such multipart upload (completed, aborted or never created).
    NoSuchUpload,
    /// 400: the body is shorter than its `Content-Length` or its chunk framing is broken.
    IncompleteBody,
    /// 400: the location constraint does not match the endpoint's region.
    IllegalLocationConstraintException,
    /// 403: strict mode, unknown access key.
    InvalidAccessKeyId,
    /// 400: the name breaks S3's bucket-naming rules.
    InvalidBucketName,
    /// 400: a bucket policy that is not a valid policy for this bucket.
    MalformedPolicy,
    /// 404: the bucket has no policy.
    NoSuchBucketPolicy,
    /// 400: a tag set breaks S3's tag rules.
    InvalidTag,
    /// 404: the bucket has no tag set.
    NoSuchTagSet,
    /// 400: a `Content-MD5` that is not base64 of 16 bytes.
    InvalidDigest,
    /// 400: `us-east-1` (or another bad value) as a location constraint.
    InvalidLocationConstraint,
    /// 400: a bad argument (max-keys, an unknown checksum algorithm ...).
    InvalidArgument,
    /// 416: the range starts past the object's end.
    InvalidRange,
    /// 400: a request S3 cannot serve as sent.
    InvalidRequest,
    /// 400: a key longer than 1,024 bytes.
    KeyTooLongError,
    /// 400: a request body that is not the XML expected.
    MalformedXML,
    /// 405: the method is not allowed on this resource.
    MethodNotAllowed,
    /// 404: no such bucket.
    NoSuchBucket,
    /// 404: no such key.
    NoSuchKey,
    /// 501: a feature Sluice does not implement yet.
    NotImplemented,
    /// 304 (not an error body): the conditional GET says the client's copy is current.
    NotModified,
    /// 412: If-Match or If-Unmodified-Since failed.
    PreconditionFailed,
    /// 403: the request time is more than 15 minutes off.
    RequestTimeTooSkewed,
    /// 403: strict mode, the signature does not match.
    SignatureDoesNotMatch,
    /// 400: the authorization header is malformed.
    AuthorizationHeaderMalformed,
    /// 400: the presigned query parameters are malformed.
    AuthorizationQueryParametersError,
    /// 400: the body's SHA-256 differs from `x-amz-content-sha256`.
    XAmzContentSHA256Mismatch,
    /// 500: a bug or a storage failure (the cause is logged, not sent).
    InternalError,
    /// 503: the store refuses writes.
    ServiceUnavailable,
}

impl S3ErrorCode {
    /// The code as S3 writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            S3ErrorCode::AccessDenied => "AccessDenied",
            S3ErrorCode::BadDigest => "BadDigest",
            S3ErrorCode::BucketAlreadyExists => "BucketAlreadyExists",
            S3ErrorCode::BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            S3ErrorCode::BucketNotEmpty => "BucketNotEmpty",
            S3ErrorCode::IncompleteBody => "IncompleteBody",
            S3ErrorCode::EntityTooSmall => "EntityTooSmall",
            S3ErrorCode::InvalidPart => "InvalidPart",
            S3ErrorCode::InvalidPartOrder => "InvalidPartOrder",
            S3ErrorCode::NoSuchUpload => "NoSuchUpload",
            S3ErrorCode::IllegalLocationConstraintException => "IllegalLocationConstraintException",
            S3ErrorCode::InvalidAccessKeyId => "InvalidAccessKeyId",
            S3ErrorCode::InvalidBucketName => "InvalidBucketName",
            S3ErrorCode::InvalidDigest => "InvalidDigest",
            S3ErrorCode::InvalidTag => "InvalidTag",
            S3ErrorCode::MalformedPolicy => "MalformedPolicy",
            S3ErrorCode::NoSuchBucketPolicy => "NoSuchBucketPolicy",
            S3ErrorCode::NoSuchTagSet => "NoSuchTagSet",
            S3ErrorCode::InvalidLocationConstraint => "InvalidLocationConstraint",
            S3ErrorCode::InvalidArgument => "InvalidArgument",
            S3ErrorCode::InvalidRange => "InvalidRange",
            S3ErrorCode::InvalidRequest => "InvalidRequest",
            S3ErrorCode::KeyTooLongError => "KeyTooLongError",
            S3ErrorCode::MalformedXML => "MalformedXML",
            S3ErrorCode::MethodNotAllowed => "MethodNotAllowed",
            S3ErrorCode::NoSuchBucket => "NoSuchBucket",
            S3ErrorCode::NoSuchKey => "NoSuchKey",
            S3ErrorCode::NotImplemented => "NotImplemented",
            S3ErrorCode::NotModified => "NotModified",
            S3ErrorCode::PreconditionFailed => "PreconditionFailed",
            S3ErrorCode::RequestTimeTooSkewed => "RequestTimeTooSkewed",
            S3ErrorCode::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            S3ErrorCode::AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed",
            S3ErrorCode::AuthorizationQueryParametersError => "AuthorizationQueryParametersError",
            S3ErrorCode::XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
            S3ErrorCode::InternalError => "InternalError",
            S3ErrorCode::ServiceUnavailable => "ServiceUnavailable",
        }
    }

    /// S3's HTTP status for the code.
    pub fn status(self) -> StatusCode {
        match self {
            S3ErrorCode::NotModified => StatusCode::NOT_MODIFIED,
            S3ErrorCode::AccessDenied
            | S3ErrorCode::InvalidAccessKeyId
            | S3ErrorCode::RequestTimeTooSkewed
            | S3ErrorCode::SignatureDoesNotMatch => StatusCode::FORBIDDEN,
            S3ErrorCode::NoSuchBucket
            | S3ErrorCode::NoSuchKey
            | S3ErrorCode::NoSuchUpload
            | S3ErrorCode::NoSuchTagSet => StatusCode::NOT_FOUND,
            S3ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            S3ErrorCode::BucketAlreadyExists
            | S3ErrorCode::BucketAlreadyOwnedByYou
            | S3ErrorCode::BucketNotEmpty => StatusCode::CONFLICT,
            S3ErrorCode::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            S3ErrorCode::InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE,
            S3ErrorCode::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            S3ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            S3ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An S3 error on its way to the client: code, message and the resource it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} ({}): {message}", code.as_str(), code.status())]
pub struct S3Error {
    /// The code, which fixes the status.
    pub code: S3ErrorCode,
    /// The human message.
    pub message: String,
    /// `<BucketName>`, when the error is about a bucket.
    pub bucket: Option<String>,
    /// `<Key>`, when the error is about an object.
    pub key: Option<String>,
    /// Extra elements some codes carry (`<RangeRequested>`, `<ActualObjectSize>` ...).
    pub extra: Vec<(&'static str, String)>,
}

impl S3Error {
    /// An error with a message.
    pub fn new(code: S3ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            bucket: None,
            key: None,
            extra: Vec::new(),
        }
    }

    /// Names the bucket the error is about.
    pub fn bucket(mut self, bucket: &str) -> Self {
        self.bucket = Some(bucket.to_owned());
        self
    }

    /// Names the key the error is about.
    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    /// Adds an extra element.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((name, value.into()));
        self
    }

    /// `InternalError`: the cause is logged here and never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "Internal failure while serving an S3 request.");
        Self::new(
            S3ErrorCode::InternalError,
            "We encountered an internal error. Please try again.",
        )
    }

    /// `NoSuchBucket` for a bucket.
    pub fn no_such_bucket(bucket: &str) -> Self {
        Self::new(
            S3ErrorCode::NoSuchBucket,
            "The specified bucket does not exist",
        )
        .bucket(bucket)
    }

    /// `AccessDenied`.
    pub fn access_denied() -> Self {
        Self::new(S3ErrorCode::AccessDenied, "Access Denied")
    }

    /// Renders the error as S3 does; `head` leaves the body out, as S3 does for HEAD.
    pub fn render(&self, request_id: &str, resource: &str, head: bool) -> Response {
        let mut builder = Response::builder().status(self.code.status());
        if self.code == S3ErrorCode::NotModified {
            return builder.body(Body::empty()).unwrap_or_default();
        }
        builder = builder.header("x-amz-request-id", request_id);
        if head {
            return builder.body(Body::empty()).unwrap_or_default();
        }
        let mut body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message>",
            self.code.as_str(),
            escape(&self.message)
        );
        if let Some(bucket) = &self.bucket {
            body.push_str(&format!("<BucketName>{}</BucketName>", escape(bucket)));
        }
        if let Some(key) = &self.key {
            body.push_str(&format!("<Key>{}</Key>", escape(key)));
        }
        for (name, value) in &self.extra {
            body.push_str(&format!("<{name}>{}</{name}>", escape(value)));
        }
        body.push_str(&format!(
            "<Resource>{}</Resource><RequestId>{}</RequestId></Error>",
            escape(resource),
            escape(request_id)
        ));
        let mut response = builder.body(Body::from(body)).unwrap_or_default();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        response
    }
}
