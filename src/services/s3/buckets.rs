//! Bucket operations. Bucket names are global across accounts, as in AWS.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::{S3Error, S3ErrorCode};
use super::storage::{BucketRecord, LocalObjects};
use super::{iso_millis, owner_xml, storage_error, xml, S3Request, XMLNS};
use crate::protocol::query::escape;

/// The region S3 calls "no location constraint".
const DEFAULT_REGION: &str = "us-east-1";
/// Request bodies that are XML documents (bucket configuration, delete lists) are small.
pub(crate) const MAX_XML_BODY: usize = 1024 * 1024;

#[derive(Debug, Deserialize)]
struct CreateBucketConfiguration {
    #[serde(rename = "LocationConstraint")]
    location_constraint: Option<String>,
}

/// Reads a small XML body whole; larger ones are refused rather than buffered.
pub(crate) async fn read_xml_body(body: Body) -> Result<String, S3Error> {
    let bytes = http_body_util::Limited::new(body, MAX_XML_BODY)
        .collect()
        .await
        .map_err(|_| {
            S3Error::new(
                S3ErrorCode::MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema",
            )
        })?
        .to_bytes();
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed_xml())
}

pub(crate) fn malformed_xml() -> S3Error {
    S3Error::new(
        S3ErrorCode::MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema",
    )
}

/// AWS's general-purpose bucket naming rules.
pub fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !["xn--", "sthree-", "amzn-s3-demo-"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
        && !["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

/// CreateBucket. In us-east-1 S3 answers 200 to an owner re-creating its bucket (a legacy
/// behaviour AWS documents); elsewhere `BucketAlreadyOwnedByYou` (409).
pub(crate) async fn create_bucket(
    objects: &LocalObjects,
    request: &S3Request,
    bucket: &str,
    body: Body,
) -> Result<Response, S3Error> {
    if !valid_bucket_name(bucket) {
        return Err(S3Error::new(
            S3ErrorCode::InvalidBucketName,
            "The specified bucket is not valid.",
        )
        .bucket(bucket));
    }
    let text = read_xml_body(body).await?;
    let constraint = if text.trim().is_empty() {
        None
    } else {
        quick_xml::de::from_str::<CreateBucketConfiguration>(&text)
            .map_err(|_| malformed_xml())?
            .location_constraint
            .filter(|constraint| !constraint.is_empty())
    };
    let region = match constraint {
        Some(constraint) if constraint == DEFAULT_REGION => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidLocationConstraint,
                "The specified location-constraint is not valid",
            )
            .with("LocationConstraint", constraint));
        }
        Some(constraint) if constraint != request.region() => {
            return Err(S3Error::new(
                S3ErrorCode::IllegalLocationConstraintException,
                format!(
                    "The {constraint} location constraint is incompatible for the region specific endpoint this request was sent to."
                ),
            ));
        }
        Some(constraint) => constraint,
        None if request.region() != DEFAULT_REGION => {
            return Err(S3Error::new(
                S3ErrorCode::IllegalLocationConstraintException,
                "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to.",
            ));
        }
        None => DEFAULT_REGION.to_owned(),
    };
    let record = BucketRecord {
        owner: request.account().to_owned(),
        region,
        created_millis: (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64,
        tags: None,
        policy: None,
    };
    match objects
        .create_bucket(bucket, &record)
        .await
        .map_err(|error| storage_error(error, bucket))?
    {
        None => {}
        Some(existing) if existing.owner != record.owner => {
            return Err(S3Error::new(
                S3ErrorCode::BucketAlreadyExists,
                "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
            )
            .bucket(bucket));
        }
        Some(existing) if existing.region == DEFAULT_REGION && record.region == DEFAULT_REGION => {}
        Some(_) => {
            return Err(S3Error::new(
                S3ErrorCode::BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it.",
            )
            .bucket(bucket));
        }
    }
    let mut response = StatusCode::OK.into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/{bucket}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// HeadBucket: 200 with the bucket's region.
pub(crate) fn head_bucket(record: &BucketRecord) -> Response {
    let mut response = StatusCode::OK.into_response();
    if let Ok(region) = HeaderValue::from_str(&record.region) {
        response.headers_mut().insert("x-amz-bucket-region", region);
    }
    response
}

/// GetBucketLocation: empty for us-east-1, as S3 answers.
pub(crate) fn get_bucket_location(record: &BucketRecord) -> Response {
    let region = if record.region == DEFAULT_REGION {
        String::new()
    } else {
        escape(&record.region)
    };
    xml(format!(
        "<LocationConstraint xmlns=\"{XMLNS}\">{region}</LocationConstraint>"
    ))
}

/// ListBuckets: the caller's buckets, by name.
pub(crate) async fn list_buckets(
    objects: &LocalObjects,
    request: &S3Request,
) -> Result<Response, S3Error> {
    let buckets = objects
        .buckets()
        .await
        .map_err(|error| storage_error(error, ""))?;
    let account = request.account();
    let mut body = format!(
        "<ListAllMyBucketsResult xmlns=\"{XMLNS}\"><Owner>{}</Owner><Buckets>",
        owner_xml(account)
    );
    for (name, record) in buckets.iter().filter(|(_, record)| record.owner == account) {
        body.push_str(&format!(
            "<Bucket><Name>{}</Name><CreationDate>{}</CreationDate><BucketRegion>{}</BucketRegion></Bucket>",
            escape(name),
            iso_millis(record.created_millis),
            escape(&record.region)
        ));
    }
    body.push_str("</Buckets></ListAllMyBucketsResult>");
    Ok(xml(body))
}

/// DeleteBucket: only an empty bucket.
pub(crate) async fn delete_bucket(
    objects: &LocalObjects,
    bucket: &str,
) -> Result<Response, S3Error> {
    let any = objects
        .list(bucket, "", None, 1)
        .await
        .map_err(|error| storage_error(error, bucket))?;
    if !any.is_empty() {
        return Err(S3Error::new(
            S3ErrorCode::BucketNotEmpty,
            "The bucket you tried to delete is not empty",
        )
        .bucket(bucket));
    }
    objects
        .delete_bucket(bucket)
        .await
        .map_err(|error| storage_error(error, bucket))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::valid_bucket_name;

    #[test]
    fn bucket_name_rules() {
        for good in [
            "abc",
            "my-bucket",
            "my.bucket.1",
            "0bucket9",
            &"a".repeat(63),
        ] {
            assert!(valid_bucket_name(good), "{good}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "My-Bucket",
            "-bucket",
            "bucket-",
            "my..bucket",
            "192.168.5.4",
            "xn--bucket",
            "bucket-s3alias",
            "my_bucket",
            "bucket.",
        ] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }
}

#[derive(Debug, Deserialize)]
struct Tagging {
    #[serde(rename = "TagSet")]
    tag_set: TagSet,
}

#[derive(Debug, Deserialize)]
struct TagSet {
    #[serde(rename = "Tag", default)]
    tags: Vec<Tag>,
}

#[derive(Debug, Deserialize)]
struct Tag {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value", default)]
    value: String,
}

fn invalid_tag(message: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidTag, message)
}

/// PutBucketTagging: replaces the whole tag set (at most 50 tags, keys 1-128 and values
/// 0-256 characters, no repeated key), as S3 does.
pub(crate) async fn put_bucket_tagging(
    objects: &LocalObjects,
    bucket: &str,
    body: Body,
) -> Result<Response, S3Error> {
    let text = read_xml_body(body).await?;
    let tagging: Tagging = quick_xml::de::from_str(&text).map_err(|_| malformed_xml())?;
    if tagging.tag_set.tags.len() > 50 {
        return Err(invalid_tag("Bucket tag count cannot be greater than 50"));
    }
    let mut tags = BTreeMap::new();
    for tag in tagging.tag_set.tags {
        if tag.key.is_empty() || tag.key.chars().count() > 128 {
            return Err(invalid_tag("The TagKey you have provided is invalid"));
        }
        if tag.value.chars().count() > 256 {
            return Err(invalid_tag("The TagValue you have provided is invalid"));
        }
        if tags.insert(tag.key, tag.value).is_some() {
            return Err(invalid_tag(
                "Cannot provide multiple Tags with the same key",
            ));
        }
    }
    objects
        .update_bucket(bucket, |record| record.tags = Some(tags.clone()))
        .await
        .map_err(|error| storage_error(error, bucket))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// GetBucketTagging: `NoSuchTagSet` until tags are put.
pub(crate) fn get_bucket_tagging(record: &BucketRecord, bucket: &str) -> Result<Response, S3Error> {
    let Some(tags) = &record.tags else {
        return Err(
            S3Error::new(S3ErrorCode::NoSuchTagSet, "The TagSet does not exist").bucket(bucket),
        );
    };
    let mut out = format!("<Tagging xmlns=\"{XMLNS}\"><TagSet>");
    for (key, value) in tags {
        out.push_str(&format!(
            "<Tag><Key>{}</Key><Value>{}</Value></Tag>",
            escape(key),
            escape(value)
        ));
    }
    out.push_str("</TagSet></Tagging>");
    Ok(xml(out))
}

/// DeleteBucketTagging.
pub(crate) async fn delete_bucket_tagging(
    objects: &LocalObjects,
    bucket: &str,
) -> Result<Response, S3Error> {
    objects
        .update_bucket(bucket, |record| record.tags = None)
        .await
        .map_err(|error| storage_error(error, bucket))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The largest bucket policy S3 accepts.
const MAX_POLICY_BYTES: usize = 20 * 1024;

fn malformed_policy(message: impl Into<String>) -> S3Error {
    S3Error::new(S3ErrorCode::MalformedPolicy, message)
}

/// PutBucketPolicy: the document must parse as an IAM policy and name only this bucket and its
/// objects as resources.
pub(crate) async fn put_bucket_policy(
    objects: &LocalObjects,
    bucket: &str,
    body: Body,
) -> Result<Response, S3Error> {
    let text = read_xml_body(body).await?;
    if text.len() > MAX_POLICY_BYTES {
        return Err(malformed_policy(
            "Policies must be no larger than 20480 bytes",
        ));
    }
    let policy = crate::policy::StoredPolicy::parse(text)
        .map_err(|error| malformed_policy(error.to_string()))?;
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    for statement in &policy.document().statements {
        if statement.resources.is_empty() {
            return Err(malformed_policy("Missing required field Resource"));
        }
        for resource in &statement.resources {
            let ok = resource == &bucket_arn || resource.starts_with(&format!("{bucket_arn}/"));
            if !ok {
                return Err(malformed_policy("Policy has invalid resource"));
            }
        }
    }
    objects
        .update_bucket(bucket, |record| record.policy = Some(policy.clone()))
        .await
        .map_err(|error| storage_error(error, bucket))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// GetBucketPolicy: the document as put, as JSON.
pub(crate) fn get_bucket_policy(record: &BucketRecord, bucket: &str) -> Result<Response, S3Error> {
    let Some(policy) = &record.policy else {
        return Err(S3Error::new(
            S3ErrorCode::NoSuchBucketPolicy,
            "The bucket policy does not exist",
        )
        .bucket(bucket));
    };
    let mut response = Response::new(Body::from(policy.text().to_owned()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// DeleteBucketPolicy.
pub(crate) async fn delete_bucket_policy(
    objects: &LocalObjects,
    bucket: &str,
) -> Result<Response, S3Error> {
    objects
        .update_bucket(bucket, |record| record.policy = None)
        .await
        .map_err(|error| storage_error(error, bucket))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
