//! Multipart uploads: parts are stored like objects (staged, fsynced, renamed, recorded);
//! CompleteMultipartUpload streams them in order into one new object through the same commit
//! path as PutObject, so the object appears whole or not at all.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use md5::{Digest, Md5};
use serde::Deserialize;
use tokio::io::AsyncReadExt;

use super::buckets::{malformed_xml, read_xml_body};
use super::error::{S3Error, S3ErrorCode};
use super::objects::{key_too_long, metadata_of, receive_body};
use super::storage::{LocalObjects, NewObject, UploadRecord};
use super::{iso_millis, owner_xml, storage_error, xml, S3Request, XMLNS};
use crate::protocol::query::escape;

/// The smallest part S3 accepts, except for the last one.
const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
/// Part numbers run from 1 to 10,000.
const MAX_PART_NUMBER: u32 = 10_000;

fn no_such_upload(upload_id: &str) -> S3Error {
    S3Error::new(
        S3ErrorCode::NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
    )
    .with("UploadId", upload_id)
}

async fn existing_upload(
    objects: &LocalObjects,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<UploadRecord, S3Error> {
    objects
        .upload(bucket, upload_id)
        .await
        .map_err(|error| storage_error(error, bucket))?
        .filter(|upload| upload.key == key)
        .ok_or_else(|| no_such_upload(upload_id))
}

/// CreateMultipartUpload.
pub(crate) async fn create(
    objects: &LocalObjects,
    request: &S3Request,
    bucket: &str,
    key: &str,
) -> Result<Response, S3Error> {
    key_too_long(key)?;
    let record = UploadRecord {
        key: key.to_owned(),
        initiated_millis: (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
            as i64,
        content_type: request.header("content-type").map(str::to_owned),
        metadata: metadata_of(request),
    };
    let upload_id = objects
        .create_upload(bucket, &record)
        .await
        .map_err(|error| storage_error(error, bucket))?;
    Ok(xml(format!(
        "<InitiateMultipartUploadResult xmlns=\"{XMLNS}\"><Bucket>{}</Bucket><Key>{}</Key><UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>",
        escape(bucket),
        escape(key)
    )))
}

/// UploadPart: the body is received exactly as PutObject's.
pub(crate) async fn upload_part(
    objects: &LocalObjects,
    request: &S3Request,
    bucket: &str,
    key: &str,
    body: Body,
) -> Result<Response, S3Error> {
    let upload_id = request.param("uploadId").unwrap_or_default();
    let number = request
        .param("partNumber")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            S3Error::new(
                S3ErrorCode::InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive",
            )
            .with("ArgumentName", "partNumber")
        })?;
    existing_upload(objects, bucket, key, upload_id).await?;
    let (staged, _) = receive_body(objects, request, bucket, body).await?;
    let part = objects
        .commit_part(staged, upload_id, number)
        .await
        .map_err(|error| storage_error(error, bucket))?;
    let mut response = StatusCode::OK.into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", part.etag)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct CompleteRequest {
    #[serde(rename = "Part", default)]
    parts: Vec<CompletePart>,
}

#[derive(Debug, Deserialize)]
struct CompletePart {
    #[serde(rename = "PartNumber")]
    number: u32,
    #[serde(rename = "ETag")]
    etag: String,
}

/// CompleteMultipartUpload: checks the list (ascending, every part uploaded with that ETag,
/// all but the last at least 5 MiB), streams the parts into one object, and gives it the ETag
/// `"<md5 of the parts' md5s>-<count>"`.
pub(crate) async fn complete(
    objects: &LocalObjects,
    request: &S3Request,
    bucket: &str,
    key: &str,
    body: Body,
) -> Result<Response, S3Error> {
    let upload_id = request.param("uploadId").unwrap_or_default();
    let upload = existing_upload(objects, bucket, key, upload_id).await?;
    let text = read_xml_body(body).await?;
    let listed: CompleteRequest = quick_xml::de::from_str(&text).map_err(|_| malformed_xml())?;
    if listed.parts.is_empty() {
        return Err(malformed_xml());
    }
    if listed
        .parts
        .windows(2)
        .any(|pair| pair[0].number >= pair[1].number)
    {
        return Err(S3Error::new(
            S3ErrorCode::InvalidPartOrder,
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
        )
        .with("UploadId", upload_id));
    }
    let uploaded = objects
        .parts(upload_id)
        .await
        .map_err(|error| storage_error(error, bucket))?;
    let mut chosen = Vec::with_capacity(listed.parts.len());
    for wanted in &listed.parts {
        let etag = wanted.etag.trim().trim_matches('"');
        let part = uploaded
            .iter()
            .find(|(number, part)| *number == wanted.number && part.etag == etag)
            .map(|(_, part)| part.clone())
            .ok_or_else(|| {
                S3Error::new(
                    S3ErrorCode::InvalidPart,
                    "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
                )
                .with("UploadId", upload_id)
                .with("PartNumber", wanted.number.to_string())
                .with("ETag", etag)
            })?;
        chosen.push(part);
    }
    // Every listed part must exist before sizes are judged, as S3 reports InvalidPart first.
    for (index, (wanted, part)) in listed.parts.iter().zip(&chosen).enumerate() {
        if index + 1 < listed.parts.len() && part.size < MIN_PART_BYTES {
            return Err(S3Error::new(
                S3ErrorCode::EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size.",
            )
            .with("ProposedSize", part.size.to_string())
            .with("MinSizeAllowed", MIN_PART_BYTES.to_string())
            .with("PartNumber", wanted.number.to_string()));
        }
    }

    let mut staged = objects
        .stage()
        .await
        .map_err(|error| storage_error(error, bucket))?;
    let mut md5s = Md5::new();
    let mut buffer = vec![0u8; 256 * 1024];
    for part in &chosen {
        md5s.update(hex::decode(&part.etag).map_err(S3Error::internal)?);
        let mut file = objects
            .open_part(part)
            .await
            .map_err(|error| storage_error(error, bucket))?;
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
    }
    let etag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
    let object = NewObject {
        content_type: upload
            .content_type
            .or_else(|| Some("binary/octet-stream".to_owned())),
        metadata: upload.metadata,
        checksum: None,
        etag: Some(etag.clone()),
    };
    objects
        .commit(staged, bucket, key, object)
        .await
        .map_err(|error| storage_error(error, bucket))?;
    objects
        .remove_upload(bucket, upload_id)
        .await
        .map_err(|error| storage_error(error, bucket))?;
    Ok(xml(format!(
        "<CompleteMultipartUploadResult xmlns=\"{XMLNS}\"><Location>/{}/{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>&quot;{etag}&quot;</ETag></CompleteMultipartUploadResult>",
        escape(bucket),
        escape(key),
        escape(bucket),
        escape(key)
    )))
}

/// AbortMultipartUpload: the parts are removed.
pub(crate) async fn abort(
    objects: &LocalObjects,
    request: &S3Request,
    bucket: &str,
    key: &str,
) -> Result<Response, S3Error> {
    let upload_id = request.param("uploadId").unwrap_or_default();
    existing_upload(objects, bucket, key, upload_id).await?;
    objects
        .remove_upload(bucket, upload_id)
        .await
        .map_err(|error| storage_error(error, bucket))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The most parts or uploads one listing page holds, and the default page size.
const MAX_PAGE: usize = 1000;

/// A non-negative integer query parameter, `default` when absent; `InvalidArgument` otherwise.
fn count_param(request: &S3Request, name: &str, default: usize) -> Result<usize, S3Error> {
    match request.param(name) {
        None => Ok(default),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .ok_or_else(|| {
                S3Error::new(
                    S3ErrorCode::InvalidArgument,
                    format!("Provided {name} not an integer or within integer range"),
                )
                .with("ArgumentName", name)
                .with("ArgumentValue", text)
            }),
    }
}

/// ListParts, paged by `max-parts` (at most 1,000) after `part-number-marker`.
pub(crate) async fn list_parts(
    objects: &LocalObjects,
    request: &S3Request,
    bucket: &str,
    key: &str,
) -> Result<Response, S3Error> {
    let upload_id = request.param("uploadId").unwrap_or_default();
    let max_parts = count_param(request, "max-parts", MAX_PAGE)?.min(MAX_PAGE);
    let marker = count_param(request, "part-number-marker", 0)?;
    existing_upload(objects, bucket, key, upload_id).await?;
    let mut parts = objects
        .parts(upload_id)
        .await
        .map_err(|error| storage_error(error, bucket))?;
    parts.retain(|(number, _)| *number as usize > marker);
    let truncated = parts.len() > max_parts;
    parts.truncate(max_parts);
    let owner = owner_xml(request.account());
    let mut out = format!(
        "<ListPartsResult xmlns=\"{XMLNS}\"><Bucket>{}</Bucket><Key>{}</Key><UploadId>{}</UploadId><Initiator>{owner}</Initiator><Owner>{owner}</Owner><StorageClass>STANDARD</StorageClass><PartNumberMarker>{marker}</PartNumberMarker><MaxParts>{max_parts}</MaxParts><IsTruncated>{truncated}</IsTruncated>",
        escape(bucket),
        escape(key),
        escape(upload_id)
    );
    if let Some((last, _)) = parts.last() {
        out.push_str(&format!(
            "<NextPartNumberMarker>{last}</NextPartNumberMarker>"
        ));
    }
    for (number, part) in parts {
        out.push_str(&format!(
            "<Part><PartNumber>{number}</PartNumber><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag><Size>{}</Size></Part>",
            iso_millis(part.last_modified_millis),
            part.etag,
            part.size
        ));
    }
    out.push_str("</ListPartsResult>");
    Ok(xml(out))
}

/// ListMultipartUploads in S3's order (key, then initiation time), paged by `max-uploads` (at
/// most 1,000) after `key-marker` and, within that key, `upload-id-marker`. An
/// `upload-id-marker` without `key-marker` is ignored, as in S3; one that names no upload of
/// that key continues after the key.
pub(crate) async fn list_uploads(
    objects: &LocalObjects,
    request: &S3Request,
    bucket: &str,
) -> Result<Response, S3Error> {
    let prefix = request.param("prefix").unwrap_or_default();
    let max_uploads = count_param(request, "max-uploads", MAX_PAGE)?.min(MAX_PAGE);
    let key_marker = request.param("key-marker").unwrap_or_default();
    let id_marker = request
        .param("upload-id-marker")
        .filter(|_| !key_marker.is_empty())
        .unwrap_or_default();
    let mut uploads = objects
        .uploads(bucket)
        .await
        .map_err(|error| storage_error(error, bucket))?;
    uploads.retain(|(_, upload)| upload.key.starts_with(prefix));
    uploads.sort_by(|a, b| {
        (&a.1.key, a.1.initiated_millis, &a.0).cmp(&(&b.1.key, b.1.initiated_millis, &b.0))
    });
    if !key_marker.is_empty() {
        let resume = uploads
            .iter()
            .position(|(id, upload)| upload.key == key_marker && id == id_marker)
            .map(|at| at + 1)
            .filter(|_| !id_marker.is_empty())
            .unwrap_or_else(|| {
                uploads.partition_point(|(_, upload)| upload.key.as_str() <= key_marker)
            });
        uploads.drain(..resume);
    }
    let truncated = uploads.len() > max_uploads;
    uploads.truncate(max_uploads);
    let owner = owner_xml(request.account());
    let mut out = format!(
        "<ListMultipartUploadsResult xmlns=\"{XMLNS}\"><Bucket>{}</Bucket><KeyMarker>{}</KeyMarker><UploadIdMarker>{}</UploadIdMarker><Prefix>{}</Prefix><MaxUploads>{max_uploads}</MaxUploads><IsTruncated>{truncated}</IsTruncated>",
        escape(bucket),
        escape(key_marker),
        escape(id_marker),
        escape(prefix)
    );
    if let Some((id, upload)) = uploads.last() {
        out.push_str(&format!(
            "<NextKeyMarker>{}</NextKeyMarker><NextUploadIdMarker>{}</NextUploadIdMarker>",
            escape(&upload.key),
            escape(id)
        ));
    }
    for (upload_id, upload) in uploads {
        out.push_str(&format!(
            "<Upload><Key>{}</Key><UploadId>{upload_id}</UploadId><Initiator>{owner}</Initiator><Owner>{owner}</Owner><StorageClass>STANDARD</StorageClass><Initiated>{}</Initiated></Upload>",
            escape(&upload.key),
            iso_millis(upload.initiated_millis)
        ));
    }
    out.push_str("</ListMultipartUploadsResult>");
    Ok(xml(out))
}
