//! Object operations: put (streamed to disk and verified before it becomes visible), get
//! and head (ranges, conditions), delete, copy, and the two listings.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::body::{BodyReader, Checksum, Payload};
use super::buckets::{malformed_xml, read_xml_body};
use super::error::{S3Error, S3ErrorCode};
use super::storage::{LocalObjects, NewObject, ObjectRecord, Staged};
use super::{
    authorize, iso_millis, owner_xml, policy_allows, storage_error, xml, S3Request, XMLNS,
};
use crate::protocol::query::escape;

/// Bytes read from a blob per response frame. `ReaderStream`'s default (4 KiB) costs one
/// blocking-pool round trip per 4 KiB and held GetObject to about a fifth of the disk's read
/// rate in `bench/s3.sh`; 256 KiB per download in flight keeps memory small.
const READ_CHUNK: usize = 256 * 1024;
/// The longest key S3 accepts, in bytes of UTF-8.
const MAX_KEY_BYTES: usize = 1024;
/// The most keys one listing page or one DeleteObjects request holds.
const MAX_KEYS: usize = 1000;
/// Sorts after every UTF-8 string that starts with a given prefix, once appended to it.
const AFTER_ALL: char = '\u{10FFFF}';

/// What `encoding-type=url` leaves unescaped, as S3 does.
const URL_KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

fn http_date(millis: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp(millis.div_euclid(1000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    at.format(&format).unwrap_or_default()
}

fn parse_http_date(text: &str) -> Option<i64> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text.trim(), &format)
        .ok()
        .map(|at| at.assume_utc().unix_timestamp())
}

pub(crate) fn key_too_long(key: &str) -> Result<(), S3Error> {
    if key.len() > MAX_KEY_BYTES {
        return Err(
            S3Error::new(S3ErrorCode::KeyTooLongError, "Your key is too long")
                .with("Size", key.len().to_string())
                .with("MaxSizeAllowed", MAX_KEY_BYTES.to_string()),
        );
    }
    Ok(())
}

/// The checksum the client asked for: its algorithm, and its value when sent as a header
/// (`None` when it comes in the aws-chunked trailer).
fn requested_checksum(request: &S3Request) -> Result<Option<(Checksum, Option<String>)>, S3Error> {
    for (name, value) in &request.headers {
        if let Some(algorithm) = name.as_str().strip_prefix("x-amz-checksum-") {
            if algorithm == "type" || algorithm == "algorithm" || algorithm == "mode" {
                continue;
            }
            let checksum = Checksum::for_name(algorithm).ok_or_else(|| {
                S3Error::new(
                    S3ErrorCode::InvalidRequest,
                    format!("Unknown checksum x-amz-checksum-{algorithm}"),
                )
            })?;
            let value = value.to_str().unwrap_or_default().trim().to_owned();
            return Ok(Some((checksum, Some(value))));
        }
    }
    let trailer = request.header("x-amz-trailer").and_then(|name| {
        name.trim()
            .to_ascii_lowercase()
            .strip_prefix("x-amz-checksum-")
            .map(str::to_owned)
    });
    let algorithm = trailer.or_else(|| {
        request
            .header("x-amz-sdk-checksum-algorithm")
            .map(str::to_owned)
    });
    match algorithm {
        None => Ok(None),
        Some(algorithm) => {
            let checksum = Checksum::for_name(&algorithm).ok_or_else(|| {
                S3Error::new(
                    S3ErrorCode::InvalidRequest,
                    format!(
                        "Value for x-amz-sdk-checksum-algorithm header is invalid: {algorithm}"
                    ),
                )
            })?;
            Ok(Some((checksum, None)))
        }
    }
}

pub(crate) fn metadata_of(request: &S3Request) -> BTreeMap<String, String> {
    request
        .headers
        .iter()
        .filter_map(|(name, value)| {
            let name = name.as_str().strip_prefix("x-amz-meta-")?;
            Some((name.to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

/// Receives an upload's body (PutObject, UploadPart) into a staged file while its MD5,
/// SHA-256 and checksum are computed; fails unless every declared digest matches. Returns
/// the staged file and the verified checksum.
pub(crate) async fn receive_body(
    objects: &LocalObjects,
    request: &S3Request,
    bucket: &str,
    body: Body,
) -> Result<(Staged, Option<(String, String)>), S3Error> {
    let payload = Payload::from_header(request.header("x-amz-content-sha256"))?;
    tracing::debug!(?payload, trailer = ?request.header("x-amz-trailer"), "PutObject body.");
    let content_md5 = match request.header("content-md5") {
        None => None,
        Some(value) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .ok()
                .filter(|bytes| bytes.len() == 16)
                .ok_or_else(|| {
                    S3Error::new(
                        S3ErrorCode::InvalidDigest,
                        "The Content-MD5 you specified was invalid.",
                    )
                })?;
            Some(bytes)
        }
    };
    let mut checksum = requested_checksum(request)?;
    let decoded_length: Option<u64> = request
        .header("x-amz-decoded-content-length")
        .and_then(|value| value.trim().parse().ok());

    let mut reader = BodyReader::new(body, &payload, &request.auth);
    let mut staged = objects
        .stage()
        .await
        .map_err(|error| storage_error(error, bucket))?;
    while let Some(data) = reader.next().await? {
        if let Some((digest, _)) = &mut checksum {
            digest.update(&data);
        }
        staged.write(&data).await.map_err(S3Error::internal)?;
    }
    if matches!(payload, Payload::Chunked { .. }) {
        if let Some(expected) = decoded_length {
            if expected != staged.size() {
                return Err(S3Error::new(
                    S3ErrorCode::IncompleteBody,
                    "You did not provide the number of bytes specified by the x-amz-decoded-content-length header",
                ));
            }
        }
    }
    if let Some(expected) = content_md5 {
        if expected != staged.md5() {
            return Err(S3Error::new(
                S3ErrorCode::BadDigest,
                "The Content-MD5 you specified did not match what we received.",
            )
            .with("ExpectedDigest", hex::encode(expected))
            .with("CalculatedDigest", hex::encode(staged.md5())));
        }
    }
    let verified = match checksum {
        None => None,
        Some((digest, sent)) => {
            let name = digest.name();
            let header_name = format!("x-amz-checksum-{}", name.to_ascii_lowercase());
            let sent = sent.or_else(|| {
                reader
                    .trailers
                    .iter()
                    .find(|(trailer, _)| *trailer == header_name)
                    .map(|(_, value)| value.clone())
            });
            let computed = digest.finish();
            match sent {
                Some(sent) if sent != computed => {
                    return Err(S3Error::new(
                        S3ErrorCode::BadDigest,
                        format!("The {name} you specified did not match the calculated checksum."),
                    ));
                }
                _ => Some((name.to_owned(), computed)),
            }
        }
    };
    Ok((staged, verified))
}

/// PutObject: the object becomes visible only once its body is whole, verified and durable.
pub(crate) async fn put_object(
    objects: &LocalObjects,
    request: &S3Request,
    bucket: &str,
    key: &str,
    body: Body,
) -> Result<Response, S3Error> {
    key_too_long(key)?;
    let (staged, verified) = receive_body(objects, request, bucket, body).await?;
    let content_type = request
        .header("content-type")
        .map(str::to_owned)
        .or_else(|| Some("binary/octet-stream".to_owned()));
    let object = NewObject {
        content_type,
        metadata: metadata_of(request),
        checksum: verified,
        etag: None,
    };
    let record = objects
        .commit(staged, bucket, key, object)
        .await
        .map_err(|error| storage_error(error, bucket))?;
    let mut response = StatusCode::OK.into_response();
    object_headers(&mut response, &record, false, true);
    Ok(response)
}

/// ETag, checksum and (for reads) the descriptive headers of an object. The checksum is
/// sent when it describes the body sent: on PutObject, and on whole-object reads that ask for
/// it with `x-amz-checksum-mode: ENABLED` (S3 leaves it out of ranged reads).
fn object_headers(response: &mut Response, record: &ObjectRecord, describe: bool, checksum: bool) {
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", record.etag)) {
        headers.insert(header::ETAG, etag);
    }
    if let (true, Some((algorithm, value))) = (checksum, &record.checksum) {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::try_from(format!(
                "x-amz-checksum-{}",
                algorithm.to_ascii_lowercase()
            )),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    if !describe {
        return;
    }
    if let Ok(modified) = HeaderValue::from_str(&http_date(record.last_modified_millis)) {
        headers.insert(header::LAST_MODIFIED, modified);
    }
    if let Some(content_type) = record
        .content_type
        .as_deref()
        .and_then(|value| HeaderValue::from_str(value).ok())
    {
        headers.insert(header::CONTENT_TYPE, content_type);
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    for (name, value) in &record.metadata {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::try_from(format!("x-amz-meta-{name}")),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').any(|candidate| {
        let candidate = candidate.trim();
        candidate == "*" || candidate.trim_start_matches("W/").trim_matches('"') == etag
    })
}

/// The conditional headers, in the order S3 (and RFC 9110) evaluates them.
fn check_conditions(request: &S3Request, record: &ObjectRecord) -> Result<(), S3Error> {
    let modified = record.last_modified_millis.div_euclid(1000);
    let failed = || {
        S3Error::new(
            S3ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        )
    };
    if let Some(list) = request.header("if-match") {
        if !etag_matches(list, &record.etag) {
            return Err(failed().with("Condition", "If-Match"));
        }
    } else if let Some(since) = request
        .header("if-unmodified-since")
        .and_then(parse_http_date)
    {
        if modified > since {
            return Err(failed().with("Condition", "If-Unmodified-Since"));
        }
    }
    let not_modified = || S3Error::new(S3ErrorCode::NotModified, "Not Modified");
    if let Some(list) = request.header("if-none-match") {
        if etag_matches(list, &record.etag) {
            return Err(not_modified());
        }
    } else if let Some(since) = request
        .header("if-modified-since")
        .and_then(parse_http_date)
    {
        if modified <= since {
            return Err(not_modified());
        }
    }
    Ok(())
}

/// A `Range: bytes=...` header: `Ok(None)` for none (or one S3 ignores, such as several
/// ranges), `Err` when it cannot be satisfied.
fn byte_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, S3Error> {
    let Some(spec) = header.and_then(|value| value.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.split_once('-') else {
        return Ok(None);
    };
    let unsatisfiable = || {
        S3Error::new(
            S3ErrorCode::InvalidRange,
            "The requested range is not satisfiable",
        )
        .with("RangeRequested", format!("bytes={spec}"))
        .with("ActualObjectSize", size.to_string())
    };
    let (first, last) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let Ok(suffix) = suffix.parse::<u64>() else {
                return Ok(None);
            };
            if suffix == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            (size.saturating_sub(suffix), size - 1)
        }
        (start, end) => {
            let Ok(first) = start.parse::<u64>() else {
                return Ok(None);
            };
            let last = match end {
                "" => u64::MAX,
                end => match end.parse::<u64>() {
                    Ok(last) if last >= first => last,
                    _ => return Ok(None),
                },
            };
            if first >= size {
                return Err(unsatisfiable());
            }
            (first, last.min(size - 1))
        }
    };
    Ok(Some((first, last)))
}

/// GetObject and HeadObject: the body streams from the blob file.
pub(crate) async fn get_object(
    objects: &LocalObjects,
    request: &S3Request,
    bucket: &str,
    key: &str,
    head: bool,
) -> Result<Response, S3Error> {
    let no_such_key =
        || S3Error::new(S3ErrorCode::NoSuchKey, "The specified key does not exist.").key(key);
    let (record, mut file) = objects
        .open_object(bucket, key)
        .await
        .map_err(|error| storage_error(error, bucket))?
        .ok_or_else(no_such_key)?;
    check_conditions(request, &record).map_err(|error| {
        if error.code == S3ErrorCode::NotModified {
            error
        } else {
            error.key(key)
        }
    })?;
    let range = byte_range(request.header("range"), record.size)?;
    let (status, first, length) = match range {
        Some((first, last)) => (StatusCode::PARTIAL_CONTENT, first, last - first + 1),
        None => (StatusCode::OK, 0, record.size),
    };
    let body = if head {
        Body::empty()
    } else {
        file.seek(std::io::SeekFrom::Start(first))
            .await
            .map_err(S3Error::internal)?;
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
            file.take(length),
            READ_CHUNK,
        ))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let checksum_mode = request
        .header("x-amz-checksum-mode")
        .is_some_and(|mode| mode.eq_ignore_ascii_case("ENABLED"));
    object_headers(
        &mut response,
        &record,
        true,
        checksum_mode && range.is_none(),
    );
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    // `response-*` query parameters override headers, as presigned download links use them.
    for (parameter, name) in [
        ("response-content-type", header::CONTENT_TYPE),
        ("response-content-disposition", header::CONTENT_DISPOSITION),
        ("response-content-encoding", header::CONTENT_ENCODING),
        ("response-content-language", header::CONTENT_LANGUAGE),
        ("response-cache-control", header::CACHE_CONTROL),
        ("response-expires", header::EXPIRES),
    ] {
        if let Some(value) = request
            .param(parameter)
            .and_then(|value| HeaderValue::from_str(value).ok())
        {
            headers.insert(name, value);
        }
    }
    if range.is_some() {
        if let Ok(value) = HeaderValue::from_str(&format!(
            "bytes {first}-{}/{}",
            first + length - 1,
            record.size
        )) {
            headers.insert(header::CONTENT_RANGE, value);
        }
    }
    Ok(response)
}

/// DeleteObject: 204 whether or not the key existed.
pub(crate) async fn delete_object(
    objects: &LocalObjects,
    bucket: &str,
    key: &str,
) -> Result<Response, S3Error> {
    objects
        .delete(bucket, key)
        .await
        .map_err(|error| storage_error(error, bucket))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
struct DeleteRequest {
    #[serde(rename = "Object", default)]
    objects: Vec<DeleteEntry>,
    #[serde(rename = "Quiet", default)]
    quiet: bool,
}

#[derive(Debug, Deserialize)]
struct DeleteEntry {
    #[serde(rename = "Key")]
    key: String,
}

/// DeleteObjects: up to 1,000 keys; `Quiet` leaves the successes out of the answer.
pub(crate) async fn delete_objects(
    objects: &LocalObjects,
    request: &S3Request,
    bucket: &str,
    body: Body,
) -> Result<Response, S3Error> {
    let text = read_xml_body(body).await?;
    let delete: DeleteRequest = quick_xml::de::from_str(&text).map_err(|_| malformed_xml())?;
    if delete.objects.is_empty() || delete.objects.len() > MAX_KEYS {
        return Err(malformed_xml());
    }
    // Another account (let in by the bucket policy) needs s3:DeleteObject on each key.
    let record = authorize(objects, request, bucket, None).await?;
    let foreign_policy = (record.owner != request.account()).then_some(record.policy);
    let mut out = format!("<DeleteResult xmlns=\"{XMLNS}\">");
    for entry in delete.objects {
        if let Some(policy) = &foreign_policy {
            let resource = format!("arn:aws:s3:::{bucket}/{}", entry.key);
            let allowed = policy.as_ref().is_some_and(|policy| {
                policy_allows(policy, request.account(), "s3:DeleteObject", &resource)
            });
            if !allowed {
                out.push_str(&format!(
                    "<Error><Key>{}</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
                    escape(&entry.key)
                ));
                continue;
            }
        }
        match objects.delete(bucket, &entry.key).await {
            Ok(()) if delete.quiet => {}
            Ok(()) => out.push_str(&format!(
                "<Deleted><Key>{}</Key></Deleted>",
                escape(&entry.key)
            )),
            Err(error) => {
                let error = storage_error(error, bucket);
                out.push_str(&format!(
                    "<Error><Key>{}</Key><Code>{}</Code><Message>{}</Message></Error>",
                    escape(&entry.key),
                    error.code.as_str(),
                    escape(&error.message)
                ));
            }
        }
    }
    out.push_str("</DeleteResult>");
    Ok(xml(out))
}

/// CopyObject within Sluice: the source streams into a new staged file (the same commit path
/// as PutObject). `x-amz-metadata-directive: REPLACE` takes the new request's metadata.
pub(crate) async fn copy_object(
    objects: &LocalObjects,
    request: &S3Request,
    bucket: &str,
    key: &str,
) -> Result<Response, S3Error> {
    key_too_long(key)?;
    let source = request.header("x-amz-copy-source").unwrap_or_default();
    let source = percent_encoding::percent_decode_str(source.trim_start_matches('/'))
        .decode_utf8_lossy()
        .into_owned();
    let source = source
        .split_once("?versionId=")
        .map_or(source.as_str(), |(path, _)| path);
    let Some((source_bucket, source_key)) = source.split_once('/') else {
        return Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        ));
    };
    authorize(
        objects,
        request,
        source_bucket,
        Some(("s3:GetObject", source_key)),
    )
    .await?;
    let (record, mut file) = objects
        .open_object(source_bucket, source_key)
        .await
        .map_err(|error| storage_error(error, source_bucket))?
        .ok_or_else(|| {
            S3Error::new(S3ErrorCode::NoSuchKey, "The specified key does not exist.")
                .key(source_key)
        })?;
    let replace = request
        .header("x-amz-metadata-directive")
        .is_some_and(|directive| directive.eq_ignore_ascii_case("REPLACE"));
    if source_bucket == bucket && source_key == key && !replace {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let mut staged = objects
        .stage()
        .await
        .map_err(|error| storage_error(error, bucket))?;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer).await.map_err(S3Error::internal)?;
        if n == 0 {
            break;
        }
        staged
            .write(&buffer[..n])
            .await
            .map_err(S3Error::internal)?;
    }
    let object = if replace {
        NewObject {
            content_type: request.header("content-type").map(str::to_owned),
            metadata: metadata_of(request),
            checksum: None,
            etag: None,
        }
    } else {
        NewObject {
            content_type: record.content_type,
            metadata: record.metadata,
            checksum: record.checksum,
            // S3 gives a copy the MD5 of its bytes, even when the source was multipart.
            etag: None,
        }
    };
    let copied = objects
        .commit(staged, bucket, key, object)
        .await
        .map_err(|error| storage_error(error, bucket))?;
    Ok(xml(format!(
        "<CopyObjectResult xmlns=\"{XMLNS}\"><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag></CopyObjectResult>",
        iso_millis(copied.last_modified_millis),
        copied.etag
    )))
}

/// One listing entry: an object, or a common prefix standing for every key under it.
enum Entry {
    Object(String, ObjectRecord),
    Prefix(String),
}

/// Walks keys after `after`, folding keys that contain `delimiter` past `prefix` into common
/// prefixes, until `max_keys` entries plus one (to know whether the listing is truncated).
async fn walk(
    objects: &LocalObjects,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    mut after: Option<String>,
    max_keys: usize,
) -> Result<Vec<Entry>, S3Error> {
    let mut entries = Vec::new();
    while entries.len() <= max_keys {
        let page = objects
            .list(bucket, prefix, after.as_deref(), MAX_KEYS + 1)
            .await
            .map_err(|error| storage_error(error, bucket))?;
        let exhausted = page.len() <= MAX_KEYS;
        let mut skip_to: Option<String> = None;
        for (key, record) in page {
            if entries.len() > max_keys {
                break;
            }
            let common = delimiter.filter(|d| !d.is_empty()).and_then(|delimiter| {
                key[prefix.len()..]
                    .find(delimiter)
                    .map(|at| key[..prefix.len() + at + delimiter.len()].to_owned())
            });
            match common {
                Some(common) => {
                    let mut next = common.clone();
                    next.push(AFTER_ALL);
                    entries.push(Entry::Prefix(common));
                    skip_to = Some(next);
                    break;
                }
                None => {
                    after = Some(key.clone());
                    entries.push(Entry::Object(key, record));
                }
            }
        }
        if let Some(next) = skip_to {
            after = Some(next);
            continue;
        }
        if exhausted {
            break;
        }
    }
    Ok(entries)
}

/// ListObjectsV2 (`list-type=2`) and ListObjects (v1, `marker`).
pub(crate) async fn list_objects(
    objects: &LocalObjects,
    request: &S3Request,
    bucket: &str,
) -> Result<Response, S3Error> {
    let v2 = request.param("list-type") == Some("2");
    let prefix = request.param("prefix").unwrap_or_default().to_owned();
    let delimiter = request
        .param("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    let max_keys = match request.param("max-keys") {
        None => MAX_KEYS,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| (n as u64).min(MAX_KEYS as u64) as usize)
            .ok_or_else(|| {
                S3Error::new(
                    S3ErrorCode::InvalidArgument,
                    "Provided max-keys not an integer or within integer range",
                )
                .with("ArgumentName", "max-keys")
                .with("ArgumentValue", text)
            })?,
    };
    let url = match request.param("encoding-type") {
        None => false,
        Some("url") => true,
        Some(other) => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidArgument,
                "Invalid Encoding Method specified in Request",
            )
            .with("ArgumentName", "encoding-type")
            .with("ArgumentValue", other))
        }
    };
    let encode = |text: &str| {
        if url {
            utf8_percent_encode(text, URL_KEY).to_string()
        } else {
            escape(text)
        }
    };
    let token = request.param("continuation-token");
    let after = if v2 {
        match token {
            Some(token) => Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(token)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .ok_or_else(|| {
                        S3Error::new(
                            S3ErrorCode::InvalidArgument,
                            "The continuation token provided is incorrect",
                        )
                        .with("ArgumentName", "continuation-token")
                    })?,
            ),
            None => request.param("start-after").map(str::to_owned),
        }
    } else {
        request.param("marker").map(str::to_owned)
    }
    .filter(|after| !after.is_empty());
    let mut entries = if max_keys == 0 {
        Vec::new()
    } else {
        walk(
            objects,
            bucket,
            &prefix,
            delimiter.as_deref(),
            after,
            max_keys,
        )
        .await?
    };
    let truncated = entries.len() > max_keys;
    entries.truncate(max_keys);
    let fetch_owner = !v2 || request.param("fetch-owner") == Some("true");
    let owner = owner_xml(request.account());

    let mut out = format!(
        "<ListBucketResult xmlns=\"{XMLNS}\"><Name>{}</Name><Prefix>{}</Prefix><MaxKeys>{max_keys}</MaxKeys><IsTruncated>{truncated}</IsTruncated>",
        escape(bucket),
        encode(&prefix)
    );
    if let Some(delimiter) = &delimiter {
        out.push_str(&format!("<Delimiter>{}</Delimiter>", encode(delimiter)));
    }
    if url {
        out.push_str("<EncodingType>url</EncodingType>");
    }
    let last = entries.last().map(|entry| match entry {
        Entry::Object(key, _) => key.clone(),
        Entry::Prefix(common) => {
            let mut next = common.clone();
            next.push(AFTER_ALL);
            next
        }
    });
    if v2 {
        out.push_str(&format!("<KeyCount>{}</KeyCount>", entries.len()));
        if let Some(token) = token {
            out.push_str(&format!(
                "<ContinuationToken>{}</ContinuationToken>",
                escape(token)
            ));
        }
        if let Some(start_after) = request.param("start-after") {
            out.push_str(&format!("<StartAfter>{}</StartAfter>", encode(start_after)));
        }
        if let (true, Some(last)) = (truncated, &last) {
            out.push_str(&format!(
                "<NextContinuationToken>{}</NextContinuationToken>",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last)
            ));
        }
    } else {
        out.push_str(&format!(
            "<Marker>{}</Marker>",
            encode(request.param("marker").unwrap_or_default())
        ));
        // S3 sends NextMarker only with a delimiter; clients use the last key otherwise.
        if let (true, Some(_), Some(entry)) = (truncated, &delimiter, entries.last()) {
            let marker = match entry {
                Entry::Object(key, _) => key,
                Entry::Prefix(common) => common,
            };
            out.push_str(&format!("<NextMarker>{}</NextMarker>", encode(marker)));
        }
    }
    for entry in &entries {
        match entry {
            Entry::Object(key, record) => {
                out.push_str(&format!(
                    "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag><Size>{}</Size>",
                    encode(key),
                    iso_millis(record.last_modified_millis),
                    record.etag,
                    record.size
                ));
                if fetch_owner {
                    out.push_str(&format!("<Owner>{owner}</Owner>"));
                }
                if let Some((algorithm, _)) = &record.checksum {
                    out.push_str(&format!(
                        "<ChecksumAlgorithm>{algorithm}</ChecksumAlgorithm>"
                    ));
                }
                out.push_str("<StorageClass>STANDARD</StorageClass></Contents>");
            }
            Entry::Prefix(common) => out.push_str(&format!(
                "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                encode(common)
            )),
        }
    }
    out.push_str("</ListBucketResult>");
    Ok(xml(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_s3_reads_them() {
        assert_eq!(byte_range(Some("bytes=0-4"), 10).ok(), Some(Some((0, 4))));
        assert_eq!(byte_range(Some("bytes=5-"), 10).ok(), Some(Some((5, 9))));
        assert_eq!(byte_range(Some("bytes=-3"), 10).ok(), Some(Some((7, 9))));
        assert_eq!(byte_range(Some("bytes=2-100"), 10).ok(), Some(Some((2, 9))));
        assert_eq!(byte_range(Some("bytes=0-1,3-4"), 10).ok(), Some(None));
        assert_eq!(byte_range(Some("bytes=5-2"), 10).ok(), Some(None));
        assert_eq!(byte_range(None, 10).ok(), Some(None));
        let error = byte_range(Some("bytes=10-"), 10).expect_err("past the end");
        assert_eq!(error.code, S3ErrorCode::InvalidRange);
    }

    #[test]
    fn http_dates_round_trip() {
        let text = http_date(1_445_412_480_000);
        assert_eq!(text, "Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(parse_http_date(&text), Some(1_445_412_480));
    }
}
