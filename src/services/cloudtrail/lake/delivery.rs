//! DeliveryS3Uri: a finished query's results written to S3 as CloudTrail Lake writes them, and
//! ListPublicKeys, which serves the key that signs them.
//!
//! Layout ("Download saved query results", "CloudTrail sign file structure"):
//! `<bucket>/<prefix>/AWSLogs/<account>/CloudTrail-Lake/Query/<yyyy>/<mm>/<dd>/<query ID>/`
//! holds `result_1.csv.gz`, `result_2.csv.gz`, ... (gzip CSV, a header row of the result
//! columns, then one line per row) and `result_sign.json`, which lists each file with its
//! SHA-256 and signs the files' hex hashes joined by single spaces with SHA256withRSA, the
//! signature in hex.
//!
//! AWS signs with a private key per Region and publishes the public keys through
//! ListPublicKeys. Sluice signs with one RSA-2048 key of its own, generated on first use and
//! kept as a store setting (like the pagination and credential keys), and serves its public
//! half (PKCS#1 DER) through ListPublicKeys, so `aws cloudtrail verify-query-results`-style
//! checks work against Sluice's key. Objects are written through `Deps::storage`, so the
//! bucket may be Sluice's own or an external one.

use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use flate2::write::GzEncoder;
use md5::Digest as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;

use super::queries::QueryRecord;
use super::runner::Lake;
use crate::protocol::model::EpochSeconds;
use crate::services::cloudtrail::CloudTrailError;
use crate::services::s3::storage::{NewObject, StorageError};
use crate::services::Deps;
use crate::store::{RecordKey, Store};

/// DeliveryStatus values, as the model's enum spells them.
pub const PENDING: &str = "PENDING";
pub const SUCCESS: &str = "SUCCESS";
pub const FAILED: &str = "FAILED";
pub const FAILED_SIGNING_FILE: &str = "FAILED_SIGNING_FILE";
pub const RESOURCE_NOT_FOUND: &str = "RESOURCE_NOT_FOUND";
pub const ACCESS_DENIED: &str = "ACCESS_DENIED";
pub const CANCELLED: &str = "CANCELLED";

/// The store setting that holds the signing key.
const KEY_SETTING: &str = "cloudtrail_lake_signing_key";

/// A result file is closed once it holds this much CSV (before compression). Not confirmed:
/// AWS does not document where it splits result files.
const FILE_BYTES: usize = 64 * 1024 * 1024;

/// Result pages read from the store at a time while writing files.
const PAGES_AT_ONCE: usize = 8;

/// Where results go: a bucket and a key prefix ("" or ending in `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: String,
    pub prefix: String,
}

impl Target {
    /// Parses `s3://bucket[/prefix]`, as the model's pattern allows.
    pub fn parse(uri: &str) -> Result<Self, CloudTrailError> {
        let Some(rest) = uri.strip_prefix("s3://") else {
            return Err(CloudTrailError::InvalidParameter(format!(
                "DeliveryS3Uri {uri} must have the form s3://bucket/prefix."
            )));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid_bucket {
            return Err(CloudTrailError::InvalidS3BucketName(format!(
                "The S3 bucket name {bucket} is not valid."
            )));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|part| part == "." || part == "..")
            || prefix.chars().any(char::is_control)
            || prefix.contains("//")
        {
            return Err(CloudTrailError::InvalidS3Prefix(format!(
                "The S3 prefix {prefix} is not valid."
            )));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        })
    }

    /// The folder of one query's files.
    fn folder(&self, account: &str, completed_millis: i64, query_id: &str) -> String {
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(completed_millis) * 1_000_000,
        )
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        format!(
            "{}AWSLogs/{account}/CloudTrail-Lake/Query/{:04}/{:02}/{:02}/{query_id}/",
            self.prefix,
            at.year(),
            u8::from(at.month()),
            at.day()
        )
    }
}

/// Whether `account` may have results written to `target`: the bucket exists, and belongs to
/// the account or its policy lets the account put objects (external buckets were configured
/// by the operator for Sluice's writers). AWS checks the bucket policy's grant to
/// `cloudtrail.amazonaws.com`; Sluice's principals are accounts, so the grant checked is the
/// caller's.
pub async fn check(deps: &Deps, account: &str, target: &Target) -> Result<(), CloudTrailError> {
    if deps.external_buckets.contains(&target.bucket) {
        return Ok(());
    }
    let record = deps
        .objects
        .bucket(&target.bucket)
        .await
        .map_err(|err| CloudTrailError::Internal(err.to_string()))?;
    let Some(record) = record else {
        return Err(CloudTrailError::S3BucketDoesNotExist(format!(
            "S3 bucket {} does not exist.",
            target.bucket
        )));
    };
    let resource = format!(
        "arn:aws:s3:::{}/{}AWSLogs/{account}/CloudTrail-Lake/Query/",
        target.bucket, target.prefix
    );
    let allowed = record.owner == account
        || record.policy.as_ref().is_some_and(|policy| {
            crate::services::s3::policy_allows(policy, account, "s3:PutObject", &resource)
        });
    if allowed {
        Ok(())
    } else {
        Err(CloudTrailError::InsufficientS3BucketPolicy(format!(
            "Insufficient permissions to write query results to S3 bucket {}: it belongs to another account and its policy does not allow s3:PutObject.",
            target.bucket
        )))
    }
}

/// The signing key as stored.
#[derive(Serialize, Deserialize)]
struct StoredKey {
    /// PKCS#8 DER, hex.
    pkcs8: String,
    /// When it was made, epoch milliseconds.
    created: i64,
}

/// Sluice's signing key.
struct SigningKey {
    pair: KeyPair,
    /// The public key, PKCS#1 DER (what ListPublicKeys returns).
    public: Vec<u8>,
    /// MD5 of `public`, hex: the sign file's `publicKeyFingerprint`.
    fingerprint: String,
    created: i64,
}

/// Writes delivered results and signs them; one per process.
pub struct Delivery {
    store: Arc<dyn Store>,
    key: tokio::sync::OnceCell<Arc<SigningKey>>,
}

/// Why a delivery stopped, as its DeliveryStatus.
struct Stopped(&'static str, String);

impl Delivery {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            key: tokio::sync::OnceCell::new(),
        }
    }

    /// The signing key: the stored one, or a new one stored first (the first writer wins).
    async fn key(&self) -> Result<Arc<SigningKey>, String> {
        self.key
            .get_or_try_init(|| async {
                let stored = match self
                    .store
                    .get_setting(KEY_SETTING)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    Some(text) => text,
                    None => {
                        let fresh = tokio::task::spawn_blocking(generate)
                            .await
                            .map_err(|e| e.to_string())??;
                        let kept = self.store.init_settings(&[(KEY_SETTING, &fresh)]).await;
                        let kept = kept.map_err(|e| e.to_string())?.pop();
                        kept.ok_or("the store kept no signing key")?
                    }
                };
                let stored: StoredKey = serde_json::from_str(&stored).map_err(|e| e.to_string())?;
                let der = hex::decode(&stored.pkcs8).map_err(|e| e.to_string())?;
                let pair = KeyPair::from_pkcs8(&der).map_err(|e| e.to_string())?;
                let public = pair.public_key().as_ref().to_vec();
                let fingerprint = hex::encode(md5::Md5::digest(&public));
                Ok(Arc::new(SigningKey {
                    pair,
                    public,
                    fingerprint,
                    created: stored.created,
                }))
            })
            .await
            .cloned()
    }

    /// Writes a finished query's results to its DeliveryS3Uri; the DeliveryStatus to record.
    pub async fn deliver(
        &self,
        deps: &Deps,
        results_log: &RecordKey,
        record: &QueryRecord,
    ) -> String {
        match self.write(deps, results_log, record).await {
            Ok(()) => SUCCESS.to_owned(),
            Err(Stopped(status, reason)) => {
                tracing::warn!(query = %record.id, status, reason = %reason, "Could not deliver query results to S3.");
                status.to_owned()
            }
        }
    }

    async fn write(
        &self,
        deps: &Deps,
        results_log: &RecordKey,
        record: &QueryRecord,
    ) -> Result<(), Stopped> {
        let uri = record.delivery_uri.as_deref().unwrap_or_default();
        let target = Target::parse(uri).map_err(|e| Stopped(FAILED, e.to_string()))?;
        let account = &results_log.account;
        // The bucket may have gone, or changed hands, since StartQuery.
        match check(deps, account, &target).await {
            Ok(()) => {}
            Err(CloudTrailError::S3BucketDoesNotExist(m)) => {
                return Err(Stopped(RESOURCE_NOT_FOUND, m))
            }
            Err(CloudTrailError::InsufficientS3BucketPolicy(m)) => {
                return Err(Stopped(ACCESS_DENIED, m))
            }
            Err(other) => return Err(Stopped(FAILED, other.to_string())),
        }
        let completed = now_millis();
        let folder = target.folder(account, completed, &record.id);
        let mut files: Vec<(String, String)> = Vec::new();
        let mut csv = new_file(&record.columns).map_err(|e| Stopped(FAILED, e))?;
        let mut next_entry = 1;
        // CSV bytes in the current file (about: quoting is not counted).
        let mut written = 0usize;
        loop {
            let entries = deps
                .store
                .read_log(results_log, next_entry, PAGES_AT_ONCE)
                .await
                .map_err(|e| Stopped(FAILED, e.to_string()))?;
            let Some(last) = entries.last() else {
                break;
            };
            next_entry = last.sequence + 1;
            for entry in entries {
                let rows: Vec<Vec<Option<String>>> = serde_json::from_slice(&entry.data)
                    .map_err(|e| Stopped(FAILED, format!("stored results: {e}")))?;
                for row in rows {
                    written += row
                        .iter()
                        .map(|v| v.as_ref().map_or(0, String::len) + 1)
                        .sum::<usize>();
                    csv.write_record(row.iter().map(|v| v.as_deref().unwrap_or_default()))
                        .map_err(|e| Stopped(FAILED, e.to_string()))?;
                }
                if written >= FILE_BYTES {
                    written = 0;
                    let done = std::mem::replace(
                        &mut csv,
                        new_file(&record.columns).map_err(|e| Stopped(FAILED, e))?,
                    );
                    files.push(
                        self.put_file(deps, &target, &folder, files.len() + 1, done)
                            .await?,
                    );
                }
            }
        }
        files.push(
            self.put_file(deps, &target, &folder, files.len() + 1, csv)
                .await?,
        );
        let key = self
            .key()
            .await
            .map_err(|e| Stopped(FAILED_SIGNING_FILE, e))?;
        let sign = sign_file(&key, &results_log.region, &files, completed)
            .map_err(|e| Stopped(FAILED_SIGNING_FILE, e))?;
        let mut body = sign.as_slice();
        deps.storage
            .put_object(
                &target.bucket,
                &format!("{folder}result_sign.json"),
                NewObject {
                    content_type: Some("application/json".to_owned()),
                    ..NewObject::default()
                },
                &mut body,
            )
            .await
            .map_err(|e| storage_stop(&e, true))?;
        Ok(())
    }

    /// Finishes and uploads one result file; its name and SHA-256 (hex).
    async fn put_file(
        &self,
        deps: &Deps,
        target: &Target,
        folder: &str,
        number: usize,
        csv: csv::Writer<GzEncoder<Vec<u8>>>,
    ) -> Result<(String, String), Stopped> {
        let gzip = csv
            .into_inner()
            .map_err(|e| Stopped(FAILED, e.to_string()))?
            .finish()
            .map_err(|e| Stopped(FAILED, e.to_string()))?;
        let name = format!("result_{number}.csv.gz");
        let hash = hex::encode(Sha256::digest(&gzip));
        let mut body = gzip.as_slice();
        deps.storage
            .put_object(
                &target.bucket,
                &format!("{folder}{name}"),
                NewObject {
                    content_type: Some("application/x-gzip".to_owned()),
                    ..NewObject::default()
                },
                &mut body,
            )
            .await
            .map_err(|e| storage_stop(&e, false))?;
        Ok((name, hash))
    }
}

fn storage_stop(err: &StorageError, sign_file: bool) -> Stopped {
    let status = match (err, sign_file) {
        (StorageError::NoSuchBucket, _) => RESOURCE_NOT_FOUND,
        (StorageError::AccessDenied { .. }, false) => ACCESS_DENIED,
        (StorageError::AccessDenied { .. }, true) => "ACCESS_DENIED_SIGNING_FILE",
        (_, true) => FAILED_SIGNING_FILE,
        (_, false) => FAILED,
    };
    Stopped(status, err.to_string())
}

/// A result file being written: its header row already in.
fn new_file(columns: &[String]) -> Result<csv::Writer<GzEncoder<Vec<u8>>>, String> {
    let mut writer =
        csv::Writer::from_writer(GzEncoder::new(Vec::new(), flate2::Compression::default()));
    writer.write_record(columns).map_err(|e| e.to_string())?;
    Ok(writer)
}

/// Makes a new signing key, as the stored setting's text.
fn generate() -> Result<String, String> {
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|e| e.to_string())?;
    let der = pair.as_der().map_err(|e| e.to_string())?;
    serde_json::to_string(&StoredKey {
        pkcs8: hex::encode(der.as_ref()),
        created: now_millis(),
    })
    .map_err(|e| e.to_string())
}

/// `result_sign.json`: the files and their hashes, signed.
fn sign_file(
    key: &SigningKey,
    region: &str,
    files: &[(String, String)],
    completed_millis: i64,
) -> Result<Vec<u8>, String> {
    let signing_string = files
        .iter()
        .map(|(_, hash)| hash.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let mut signature = vec![0; key.pair.public_modulus_len()];
    key.pair
        .sign(
            &RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            signing_string.as_bytes(),
            &mut signature,
        )
        .map_err(|e| e.to_string())?;
    let completed = time::OffsetDateTime::from_unix_timestamp(completed_millis / 1000)
        .map_err(|e| e.to_string())?
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| e.to_string())?;
    let body = json!({
        "version": "1.0",
        "region": region,
        "files": files
            .iter()
            .map(|(name, hash)| json!({ "fileHashValue": hash, "fileName": name }))
            .collect::<Vec<_>>(),
        "hashAlgorithm": "SHA-256",
        "signatureAlgorithm": "SHA256withRSA",
        "queryCompleteTime": completed,
        "hashSignature": hex::encode(signature),
        "publicKeyFingerprint": key.fingerprint,
    });
    serde_json::to_vec_pretty(&body).map_err(|e| e.to_string())
}

fn now_millis() -> i64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(now).unwrap_or(i64::MAX)
}

/// ListPublicKeys input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListPublicKeysInput {
    #[serde(default)]
    start_time: Option<f64>,
    #[serde(default)]
    end_time: Option<f64>,
    /// Accepted and ignored: there is only ever one key, so one page.
    #[serde(default, rename = "NextToken")]
    _next_token: Option<String>,
}

/// ListPublicKeys: Sluice's one signing key, valid from its creation on (it is never
/// rotated), when it falls in the asked range.
pub async fn list_public_keys(
    lake: &Lake,
    _ctx: &crate::protocol::RequestContext,
    input: ListPublicKeysInput,
) -> Result<ListPublicKeysOutput, CloudTrailError> {
    if let (Some(start), Some(end)) = (input.start_time, input.end_time) {
        if start > end {
            return Err(CloudTrailError::InvalidParameter(
                "The StartTime must be before the EndTime.".to_owned(),
            ));
        }
    }
    let key = lake
        .delivery()
        .key()
        .await
        .map_err(CloudTrailError::Internal)?;
    let now = now_millis();
    let created = key.created as f64 / 1000.0;
    let mut keys = Vec::new();
    let now_seconds = now as f64 / 1000.0;
    if input.end_time.is_none_or(|end| end >= created)
        && input.start_time.is_none_or(|start| start <= now_seconds)
    {
        keys.push(PublicKey {
            value: base64::engine::general_purpose::STANDARD.encode(&key.public),
            validity_start_time: EpochSeconds(created),
            validity_end_time: EpochSeconds(now_seconds),
            fingerprint: key.fingerprint.clone(),
        });
    }
    Ok(ListPublicKeysOutput {
        public_key_list: keys,
    })
}

/// ListPublicKeys output.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListPublicKeysOutput {
    public_key_list: Vec<PublicKey>,
}

/// One public key, as ListPublicKeys gives it.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublicKey {
    value: String,
    validity_start_time: EpochSeconds,
    validity_end_time: EpochSeconds,
    fingerprint: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_become_bucket_and_prefix() {
        let parsed = |uri: &str| Target::parse(uri).map(|t| (t.bucket, t.prefix));
        assert_eq!(
            parsed("s3://my-bucket").ok(),
            Some(("my-bucket".into(), String::new()))
        );
        assert_eq!(
            parsed("s3://my-bucket/a/b/").ok(),
            Some(("my-bucket".into(), "a/b/".into()))
        );
        assert!(matches!(
            parsed("s3://My_Bucket/x"),
            Err(CloudTrailError::InvalidS3BucketName(_))
        ));
        assert!(matches!(
            parsed("s3://bucket/a/../b"),
            Err(CloudTrailError::InvalidS3Prefix(_))
        ));
        let target = Target::parse("s3://b-1/p").expect("target");
        assert_eq!(
            target.folder("111122223333", 1_764_547_200_000, "q"),
            "p/AWSLogs/111122223333/CloudTrail-Lake/Query/2025/12/01/q/"
        );
    }
}
