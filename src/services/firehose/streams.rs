//! Delivery streams: CreateDeliveryStream, DescribeDeliveryStream, ListDeliveryStreams,
//! UpdateDestination, DeleteDeliveryStream, and their tags.
//!
//! A stream is one record. Its buffer (records accepted, not yet delivered) is a log and its
//! delivery position a cursor record, both named by the stream's *generation*, a fresh id per
//! creation, so that a stream deleted and created again under the same name never sees the
//! old one's buffer, and a flusher still busy with the old one cannot move the new cursor.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::prefix;
use super::FirehoseError;
use crate::arn::{self, Arn};
use crate::protocol::model::EpochSeconds;
use crate::protocol::RequestContext;
use crate::services::Deps;
use crate::store::{self, Expect, RecordKey, Store, Write};

/// Record kind of delivery streams.
pub(super) const STREAM: &str = "firehose/stream";
/// Log kind of a stream's buffer; named `NAME/GENERATION`.
pub(super) const BUFFER: &str = "firehose/buffer";
/// Record kind of a stream's delivery cursor; named `NAME/GENERATION`.
pub(super) const CURSOR: &str = "firehose/cursor";
/// The one destination a Sluice stream has.
pub(super) const DESTINATION_ID: &str = "destinationId-000000000001";
/// How long a new stream stays CREATING before it is ACTIVE.
pub(super) const ACTIVATION_MILLIS: i64 = 1_000;
/// Tags per stream (AWS's quota).
const MAX_TAGS: usize = 50;
/// Buffering defaults (AWS's).
const DEFAULT_SIZE_MBS: u32 = 5;
const DEFAULT_INTERVAL_SECONDS: u32 = 300;
/// Destination kinds Sluice refuses, by their configuration member names.
const OTHER_DESTINATIONS: &[&str] = &[
    "RedshiftDestinationConfiguration",
    "ElasticsearchDestinationConfiguration",
    "AmazonopensearchserviceDestinationConfiguration",
    "AmazonOpenSearchServerlessDestinationConfiguration",
    "SplunkDestinationConfiguration",
    "HttpEndpointDestinationConfiguration",
    "SnowflakeDestinationConfiguration",
    "IcebergDestinationConfiguration",
];
const OTHER_UPDATES: &[&str] = &[
    "RedshiftDestinationUpdate",
    "ElasticsearchDestinationUpdate",
    "AmazonopensearchserviceDestinationUpdate",
    "AmazonOpenSearchServerlessDestinationUpdate",
    "SplunkDestinationUpdate",
    "HttpEndpointDestinationUpdate",
    "SnowflakeDestinationUpdate",
    "IcebergDestinationUpdate",
];

/// A delivery stream as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StreamRecord {
    pub name: String,
    pub arn: String,
    /// `DirectPut` or `KinesisStreamAsSource`.
    pub stream_type: String,
    /// A fresh id per creation: names the buffer log and the cursor.
    pub generation: String,
    /// `VersionId`: 1 at creation, one more per UpdateDestination.
    pub version: u64,
    pub created_millis: i64,
    pub updated_millis: i64,
    pub destination: S3Destination,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<KinesisSource>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// The S3 destination, as configured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct S3Destination {
    pub role_arn: String,
    pub bucket_arn: String,
    pub prefix: Option<String>,
    pub error_output_prefix: Option<String>,
    pub size_mbs: u32,
    pub interval_seconds: u32,
    pub compression: String,
    pub file_extension: Option<String>,
    pub cloudwatch_logging: Option<Value>,
}

/// A Kinesis stream the delivery stream reads from (KinesisStreamAsSource).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct KinesisSource {
    pub stream_arn: String,
    pub role_arn: String,
    pub account: String,
    pub region: String,
    pub stream: String,
    pub start_millis: i64,
}

impl StreamRecord {
    /// CREATING for a moment after creation, then ACTIVE.
    pub fn status(&self, now_millis: i64) -> &'static str {
        if now_millis < self.created_millis + ACTIVATION_MILLIS {
            "CREATING"
        } else {
            "ACTIVE"
        }
    }

    /// The store address of the stream's buffer.
    pub fn buffer_log(&self, account: &str, region: &str) -> RecordKey {
        RecordKey::new(
            BUFFER,
            account,
            region,
            &format!("{}/{}", self.name, self.generation),
        )
    }

    /// The store address of the stream's cursor.
    pub fn cursor_key(&self, account: &str, region: &str) -> RecordKey {
        RecordKey::new(
            CURSOR,
            account,
            region,
            &format!("{}/{}", self.name, self.generation),
        )
    }

    /// The bucket name of the destination's `arn:aws:s3:::NAME`.
    pub fn bucket(&self) -> &str {
        self.destination
            .bucket_arn
            .rsplit(':')
            .next()
            .unwrap_or_default()
    }
}

impl S3Destination {
    /// The checked prefixes (the configuration was checked when it was stored).
    pub fn prefixes(&self) -> Result<prefix::Prefixes, String> {
        prefix::check(self.prefix.as_deref(), self.error_output_prefix.as_deref())
    }

    /// The buffer size in bytes.
    pub fn size_bytes(&self) -> usize {
        self.size_mbs as usize * 1024 * 1024
    }
}

/// A delivery stream's cursor: the last buffer entry delivered, and for a Kinesis source the
/// last record read from each shard.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct CursorRecord {
    pub delivered: i64,
    #[serde(default)]
    pub shards: BTreeMap<String, i64>,
}

pub(super) fn not_found(account: &str, name: &str) -> FirehoseError {
    FirehoseError::ResourceNotFound(format!(
        "Firehose {name} under account {account} not found."
    ))
}

pub(super) fn stream_key(account: &str, region: &str, name: &str) -> RecordKey {
    RecordKey::new(STREAM, account, region, name)
}

/// Loads a stream of the caller's account and region, with its record version.
pub(super) async fn load(
    store: &dyn Store,
    account: &str,
    region: &str,
    name: &str,
) -> Result<(StreamRecord, i64), FirehoseError> {
    store::load::<StreamRecord>(store, &stream_key(account, region, name))
        .await?
        .ok_or_else(|| not_found(account, name))
}

fn string(map: &Map<String, Value>, member: &str) -> Option<String> {
    map.get(member).and_then(Value::as_str).map(str::to_owned)
}

fn object<'a>(map: &'a Map<String, Value>, member: &str) -> Option<&'a Map<String, Value>> {
    map.get(member).and_then(Value::as_object)
}

fn enabled(map: &Map<String, Value>, member: &str) -> bool {
    object(map, member)
        .and_then(|inner| inner.get("Enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Refuses the parts of an S3 configuration (or update) Sluice does not deliver.
fn refuse_unsupported(config: &Map<String, Value>) -> Result<(), FirehoseError> {
    let unsupported = |what: &str| {
        Err(FirehoseError::InvalidArgument(format!(
            "{what} is not supported by Sluice, which delivers records to S3 as they are."
        )))
    };
    if enabled(config, "ProcessingConfiguration") {
        return unsupported("Data transformation (ProcessingConfiguration)");
    }
    if enabled(config, "DataFormatConversionConfiguration") {
        return unsupported("Record format conversion (DataFormatConversionConfiguration)");
    }
    if enabled(config, "DynamicPartitioningConfiguration") {
        return unsupported("Dynamic partitioning (DynamicPartitioningConfiguration)");
    }
    if config.get("S3BackupMode").and_then(Value::as_str) == Some("Enabled") {
        return unsupported("Source record backup (S3BackupMode Enabled)");
    }
    if object(config, "EncryptionConfiguration")
        .is_some_and(|encryption| encryption.contains_key("KMSEncryptionConfig"))
    {
        return unsupported("KMS encryption of objects (KMSEncryptionConfig)");
    }
    if let Some(zone) = string(config, "CustomTimeZone") {
        if !zone.is_empty() && zone != "UTC" {
            return unsupported(&format!("CustomTimeZone {zone} (objects are named in UTC)"));
        }
    }
    Ok(())
}

/// Applies an S3 configuration or update onto a destination, and checks the result.
fn apply(
    destination: &mut S3Destination,
    config: &Map<String, Value>,
) -> Result<(), FirehoseError> {
    refuse_unsupported(config)?;
    if let Some(role) = string(config, "RoleARN") {
        destination.role_arn = role;
    }
    if let Some(bucket) = string(config, "BucketARN") {
        destination.bucket_arn = bucket;
    }
    if config.contains_key("Prefix") {
        destination.prefix = string(config, "Prefix").filter(|p| !p.is_empty());
    }
    if config.contains_key("ErrorOutputPrefix") {
        destination.error_output_prefix =
            string(config, "ErrorOutputPrefix").filter(|p| !p.is_empty());
    }
    if let Some(hints) = object(config, "BufferingHints") {
        if let Some(size) = hints.get("SizeInMBs").and_then(Value::as_u64) {
            destination.size_mbs = size as u32;
        }
        if let Some(interval) = hints.get("IntervalInSeconds").and_then(Value::as_u64) {
            destination.interval_seconds = interval as u32;
        }
    }
    if let Some(compression) = string(config, "CompressionFormat") {
        destination.compression = compression;
    }
    if config.contains_key("FileExtension") {
        destination.file_extension = string(config, "FileExtension").filter(|e| !e.is_empty());
    }
    if let Some(logging) = config.get("CloudWatchLoggingOptions") {
        destination.cloudwatch_logging = Some(logging.clone());
    }
    check_destination(destination)
}

fn check_destination(destination: &S3Destination) -> Result<(), FirehoseError> {
    if !matches!(destination.compression.as_str(), "UNCOMPRESSED" | "GZIP") {
        return Err(FirehoseError::InvalidArgument(format!(
            "CompressionFormat {} is not supported by Sluice, which delivers UNCOMPRESSED and GZIP objects only.",
            destination.compression
        )));
    }
    let bucket = Arn::parse(&destination.bucket_arn).filter(|parsed| {
        parsed.service == "s3"
            && parsed.region.is_empty()
            && parsed.account.is_empty()
            && (1..=255).contains(&parsed.resource.len())
            && parsed
                .resource
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
    });
    if bucket.is_none() {
        return Err(FirehoseError::InvalidArgument(format!(
            "BucketARN {} is not the ARN of a bucket (arn:aws:s3:::NAME).",
            destination.bucket_arn
        )));
    }
    destination
        .prefixes()
        .map(|_| ())
        .map_err(FirehoseError::InvalidArgument)
}

/// CreateDeliveryStream.
pub async fn create_delivery_stream(
    deps: &Deps,
    ctx: &RequestContext,
    input: Value,
) -> Result<CreateDeliveryStreamOutput, FirehoseError> {
    let input = input.as_object().cloned().unwrap_or_default();
    let name = string(&input, "DeliveryStreamName").unwrap_or_default();
    let stream_type = string(&input, "DeliveryStreamType").unwrap_or_else(|| "DirectPut".into());
    if let Some(other) = OTHER_DESTINATIONS.iter().find(|m| input.contains_key(**m)) {
        return Err(FirehoseError::InvalidArgument(format!(
            "{other} is not supported: Sluice delivers to Amazon S3 only (ExtendedS3DestinationConfiguration or S3DestinationConfiguration)."
        )));
    }
    let extended = object(&input, "ExtendedS3DestinationConfiguration");
    let plain = object(&input, "S3DestinationConfiguration");
    let config = match (extended, plain) {
        (Some(config), None) | (None, Some(config)) => config,
        (Some(_), Some(_)) => {
            return Err(FirehoseError::InvalidArgument(
                "Only one destination configuration may be given: ExtendedS3DestinationConfiguration or S3DestinationConfiguration.".to_owned(),
            ))
        }
        (None, None) => {
            return Err(FirehoseError::InvalidArgument(
                "A destination configuration is required: Sluice delivers to Amazon S3 (ExtendedS3DestinationConfiguration or S3DestinationConfiguration).".to_owned(),
            ))
        }
    };
    if input.contains_key("DeliveryStreamEncryptionConfigurationInput") {
        return Err(FirehoseError::InvalidArgument(
            "Server-side encryption of delivery streams (DeliveryStreamEncryptionConfigurationInput) is not supported by Sluice.".to_owned(),
        ));
    }
    let now = ctx.received_at_millis();
    let source = match stream_type.as_str() {
        "DirectPut" => {
            if input.contains_key("KinesisStreamSourceConfiguration") {
                return Err(FirehoseError::InvalidArgument(
                    "KinesisStreamSourceConfiguration is only allowed for DeliveryStreamType KinesisStreamAsSource.".to_owned(),
                ));
            }
            None
        }
        "KinesisStreamAsSource" => {
            let source = object(&input, "KinesisStreamSourceConfiguration").ok_or_else(|| {
                FirehoseError::InvalidArgument(
                    "KinesisStreamSourceConfiguration is required for DeliveryStreamType KinesisStreamAsSource.".to_owned(),
                )
            })?;
            Some(kinesis_source(deps, ctx, source, now).await?)
        }
        other => {
            return Err(FirehoseError::InvalidArgument(format!(
                "DeliveryStreamType {other} is not supported by Sluice (DirectPut and KinesisStreamAsSource are)."
            )))
        }
    };
    let mut destination = S3Destination {
        role_arn: String::new(),
        bucket_arn: String::new(),
        prefix: None,
        error_output_prefix: None,
        size_mbs: DEFAULT_SIZE_MBS,
        interval_seconds: DEFAULT_INTERVAL_SECONDS,
        compression: "UNCOMPRESSED".to_owned(),
        file_extension: None,
        cloudwatch_logging: None,
    };
    apply(&mut destination, config)?;
    let mut tags = BTreeMap::new();
    for tag in input
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = tag.get("Key").and_then(Value::as_str).unwrap_or_default();
        let value = tag.get("Value").and_then(Value::as_str).unwrap_or_default();
        tags.insert(key.to_owned(), value.to_owned());
    }
    let arn = format!(
        "arn:{}:firehose:{}:{}:deliverystream/{name}",
        arn::partition(&ctx.region),
        ctx.region,
        ctx.account_id
    );
    let stream = StreamRecord {
        name: name.clone(),
        arn: arn.clone(),
        stream_type,
        generation: uuid::Uuid::new_v4().simple().to_string(),
        version: 1,
        created_millis: now,
        updated_millis: now,
        destination,
        source,
        tags,
    };
    let batch = vec![
        store::put(
            stream_key(&ctx.account_id, &ctx.region, &name),
            &stream,
            Expect::Absent,
        )?,
        store::put(
            stream.cursor_key(&ctx.account_id, &ctx.region),
            &CursorRecord::default(),
            Expect::Absent,
        )?,
    ];
    match deps.store.write(batch).await {
        Ok(_) => {}
        Err(store::StoreError::Conflict(_)) => {
            return Err(FirehoseError::ResourceInUse(format!(
                "Firehose {name} under account {} already exists.",
                ctx.account_id
            )))
        }
        Err(err) => return Err(err.into()),
    }
    deps.firehose.wake_manager();
    Ok(CreateDeliveryStreamOutput {
        delivery_stream_arn: arn,
    })
}

/// CreateDeliveryStream output.
#[derive(Debug, Serialize)]
pub struct CreateDeliveryStreamOutput {
    #[serde(rename = "DeliveryStreamARN")]
    delivery_stream_arn: String,
}

/// ListDeliveryStreams output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListDeliveryStreamsOutput {
    delivery_stream_names: Vec<String>,
    has_more_delivery_streams: bool,
}

/// A tag on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    key: String,
    value: String,
}

/// ListTagsForDeliveryStream output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsOutput {
    tags: Vec<Tag>,
    has_more_tags: bool,
}

async fn kinesis_source(
    deps: &Deps,
    ctx: &RequestContext,
    source: &Map<String, Value>,
    now: i64,
) -> Result<KinesisSource, FirehoseError> {
    let stream_arn = string(source, "KinesisStreamARN").unwrap_or_default();
    let role_arn = string(source, "RoleARN").unwrap_or_default();
    let parsed = Arn::parse(&stream_arn).filter(|parsed| parsed.service == "kinesis");
    let stream = parsed
        .as_ref()
        .and_then(|p| p.resource.strip_prefix("stream/"));
    let (Some(parsed), Some(stream)) = (&parsed, stream) else {
        return Err(FirehoseError::InvalidArgument(format!(
            "KinesisStreamARN {stream_arn} is not the ARN of a Kinesis stream."
        )));
    };
    if parsed.region != ctx.region {
        return Err(FirehoseError::InvalidArgument(format!(
            "Kinesis stream {stream_arn} must be in the delivery stream's Region {}.",
            ctx.region
        )));
    }
    let exists = parsed.account == ctx.account_id
        && crate::services::kinesis::shard_logs(
            deps.store.as_ref(),
            parsed.account,
            parsed.region,
            stream,
        )
        .await?
        .is_some();
    if !exists {
        return Err(FirehoseError::InvalidArgument(format!(
            "Kinesis stream {stream_arn} does not exist or is not accessible."
        )));
    }
    Ok(KinesisSource {
        account: parsed.account.to_owned(),
        region: parsed.region.to_owned(),
        stream: stream.to_owned(),
        stream_arn: stream_arn.clone(),
        role_arn,
        start_millis: now,
    })
}

/// DescribeDeliveryStream input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeInput {
    delivery_stream_name: String,
    exclusive_start_destination_id: Option<String>,
}

/// An S3 destination as DescribeDeliveryStream gives it; the extended form adds members.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct S3DestinationDescription {
    #[serde(rename = "RoleARN")]
    role_arn: String,
    #[serde(rename = "BucketARN")]
    bucket_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_output_prefix: Option<String>,
    buffering_hints: BufferingHints,
    compression_format: String,
    encryption_configuration: EncryptionConfiguration,
    cloud_watch_logging_options: LoggingOptions,
}

/// `BufferingHints`.
#[derive(Debug, Serialize)]
pub struct BufferingHints {
    #[serde(rename = "SizeInMBs")]
    size_in_mbs: u32,
    #[serde(rename = "IntervalInSeconds")]
    interval_in_seconds: u32,
}

/// `EncryptionConfiguration`: Sluice does not encrypt with KMS.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptionConfiguration {
    no_encryption_config: &'static str,
}

/// `CloudWatchLoggingOptions`: as configured, or disabled.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum LoggingOptions {
    /// The options the stream was given, echoed.
    Configured(Value),
    /// None given.
    Disabled {
        /// Always false.
        #[serde(rename = "Enabled")]
        enabled: bool,
    },
}

/// The extended form of the same destination.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExtendedS3DestinationDescription {
    #[serde(flatten)]
    plain: S3DestinationDescription,
    s3_backup_mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_extension: Option<String>,
}

/// One destination of a stream.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DestinationDescription {
    destination_id: &'static str,
    s3_destination_description: S3DestinationDescription,
    extended_s3_destination_description: ExtendedS3DestinationDescription,
}

/// `DeliveryStreamEncryptionConfiguration`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamEncryption {
    status: &'static str,
}

/// `Source` of a KinesisStreamAsSource stream.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SourceDescription {
    kinesis_stream_source_description: KinesisStreamSourceDescription,
}

/// The Kinesis stream a delivery stream reads.
#[derive(Debug, Serialize)]
pub struct KinesisStreamSourceDescription {
    #[serde(rename = "KinesisStreamARN")]
    kinesis_stream_arn: String,
    #[serde(rename = "RoleARN")]
    role_arn: String,
    #[serde(rename = "DeliveryStartTimestamp")]
    delivery_start_timestamp: EpochSeconds,
}

/// A delivery stream as DescribeDeliveryStream gives it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeliveryStreamDescription {
    delivery_stream_name: String,
    #[serde(rename = "DeliveryStreamARN")]
    delivery_stream_arn: String,
    delivery_stream_status: &'static str,
    delivery_stream_encryption_configuration: StreamEncryption,
    delivery_stream_type: String,
    version_id: String,
    create_timestamp: EpochSeconds,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_update_timestamp: Option<EpochSeconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<SourceDescription>,
    destinations: Vec<DestinationDescription>,
    has_more_destinations: bool,
}

/// DescribeDeliveryStream output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeDeliveryStreamOutput {
    delivery_stream_description: DeliveryStreamDescription,
}

fn s3_description(destination: &S3Destination) -> S3DestinationDescription {
    S3DestinationDescription {
        role_arn: destination.role_arn.clone(),
        bucket_arn: destination.bucket_arn.clone(),
        prefix: destination.prefix.clone(),
        error_output_prefix: destination.error_output_prefix.clone(),
        buffering_hints: BufferingHints {
            size_in_mbs: destination.size_mbs,
            interval_in_seconds: destination.interval_seconds,
        },
        compression_format: destination.compression.clone(),
        encryption_configuration: EncryptionConfiguration {
            no_encryption_config: "NoEncryption",
        },
        cloud_watch_logging_options: match &destination.cloudwatch_logging {
            Some(options) => LoggingOptions::Configured(options.clone()),
            None => LoggingOptions::Disabled { enabled: false },
        },
    }
}

/// DescribeDeliveryStream.
pub async fn describe_delivery_stream(
    deps: &Deps,
    ctx: &RequestContext,
    input: DescribeInput,
) -> Result<DescribeDeliveryStreamOutput, FirehoseError> {
    let (stream, _) = load(
        deps.store.as_ref(),
        &ctx.account_id,
        &ctx.region,
        &input.delivery_stream_name,
    )
    .await?;
    // AWS describes an S3 destination twice: in its plain and its extended form.
    let destination = DestinationDescription {
        destination_id: DESTINATION_ID,
        s3_destination_description: s3_description(&stream.destination),
        extended_s3_destination_description: ExtendedS3DestinationDescription {
            plain: s3_description(&stream.destination),
            s3_backup_mode: "Disabled",
            file_extension: stream.destination.file_extension.clone(),
        },
    };
    // Destinations after ExclusiveStartDestinationId: none when it names the only one.
    let destinations = match input.exclusive_start_destination_id.as_deref() {
        Some(start) if start >= DESTINATION_ID => vec![],
        _ => vec![destination],
    };
    let description = DeliveryStreamDescription {
        delivery_stream_status: stream.status(ctx.received_at_millis()),
        delivery_stream_name: stream.name,
        delivery_stream_arn: stream.arn,
        delivery_stream_encryption_configuration: StreamEncryption { status: "DISABLED" },
        delivery_stream_type: stream.stream_type,
        version_id: stream.version.to_string(),
        create_timestamp: EpochSeconds::from_millis(stream.created_millis),
        last_update_timestamp: (stream.version > 1)
            .then(|| EpochSeconds::from_millis(stream.updated_millis)),
        source: stream.source.map(|source| SourceDescription {
            kinesis_stream_source_description: KinesisStreamSourceDescription {
                kinesis_stream_arn: source.stream_arn,
                role_arn: source.role_arn,
                delivery_start_timestamp: EpochSeconds::from_millis(source.start_millis),
            },
        }),
        destinations,
        has_more_destinations: false,
    };
    Ok(DescribeDeliveryStreamOutput {
        delivery_stream_description: description,
    })
}

/// ListDeliveryStreams input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    limit: Option<usize>,
    delivery_stream_type: Option<String>,
    exclusive_start_delivery_stream_name: Option<String>,
}

/// ListDeliveryStreams: names in order, after the exclusive start, of one type if asked.
pub async fn list_delivery_streams(
    deps: &Deps,
    ctx: &RequestContext,
    input: ListInput,
) -> Result<ListDeliveryStreamsOutput, FirehoseError> {
    // AWS's default page size.
    let limit = input.limit.unwrap_or(10);
    let mut names = Vec::new();
    let mut more = false;
    let mut after = input.exclusive_start_delivery_stream_name.clone();
    'pages: loop {
        let page = deps
            .store
            .list(
                STREAM,
                &ctx.account_id,
                &ctx.region,
                "",
                after.as_deref(),
                256,
            )
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.name.clone());
        for record in &page {
            let matches = match &input.delivery_stream_type {
                None => true,
                Some(wanted) => {
                    record.body.get("stream_type").and_then(Value::as_str) == Some(wanted.as_str())
                }
            };
            if !matches {
                continue;
            }
            if names.len() == limit {
                more = true;
                break 'pages;
            }
            names.push(record.key.name.clone());
        }
    }
    Ok(ListDeliveryStreamsOutput {
        delivery_stream_names: names,
        has_more_delivery_streams: more,
    })
}

/// UpdateDestination.
pub async fn update_destination(
    deps: &Deps,
    ctx: &RequestContext,
    input: Value,
) -> Result<(), FirehoseError> {
    let input = input.as_object().cloned().unwrap_or_default();
    let name = string(&input, "DeliveryStreamName").unwrap_or_default();
    let (mut stream, version) =
        load(deps.store.as_ref(), &ctx.account_id, &ctx.region, &name).await?;
    let now = ctx.received_at_millis();
    if stream.status(now) != "ACTIVE" {
        return Err(FirehoseError::ResourceInUse(format!(
            "Firehose {name} under account {} is not in the ACTIVE state.",
            ctx.account_id
        )));
    }
    let current = string(&input, "CurrentDeliveryStreamVersionId").unwrap_or_default();
    if current != stream.version.to_string() {
        return Err(FirehoseError::ConcurrentModification(format!(
            "Cannot update firehose: {name} since the current version id: {} and specified version id: {current} do not match",
            stream.version
        )));
    }
    let destination_id = string(&input, "DestinationId").unwrap_or_default();
    if destination_id != DESTINATION_ID {
        return Err(FirehoseError::InvalidArgument(format!(
            "Destination Id {destination_id} not found for Firehose {name}."
        )));
    }
    if let Some(other) = OTHER_UPDATES.iter().find(|m| input.contains_key(**m)) {
        return Err(FirehoseError::InvalidArgument(format!(
            "{other} is not supported: Sluice delivers to Amazon S3 only (ExtendedS3DestinationUpdate or S3DestinationUpdate)."
        )));
    }
    let update = match (
        object(&input, "ExtendedS3DestinationUpdate"),
        object(&input, "S3DestinationUpdate"),
    ) {
        (Some(update), None) | (None, Some(update)) => update,
        (Some(_), Some(_)) => {
            return Err(FirehoseError::InvalidArgument(
                "Only one destination update may be given: ExtendedS3DestinationUpdate or S3DestinationUpdate.".to_owned(),
            ))
        }
        (None, None) => {
            return Err(FirehoseError::InvalidArgument(
                "A destination update is required (ExtendedS3DestinationUpdate or S3DestinationUpdate).".to_owned(),
            ))
        }
    };
    apply(&mut stream.destination, update)?;
    stream.version += 1;
    stream.updated_millis = now;
    write_stream(deps, ctx, &stream, version).await?;
    Ok(())
}

async fn write_stream(
    deps: &Deps,
    ctx: &RequestContext,
    stream: &StreamRecord,
    version: i64,
) -> Result<(), FirehoseError> {
    let key = stream_key(&ctx.account_id, &ctx.region, &stream.name);
    deps.store
        .write(vec![store::put(key, stream, Expect::Version(version))?])
        .await?;
    Ok(())
}

/// DeleteDeliveryStream input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteInput {
    delivery_stream_name: String,
    /// Accepted: Sluice has no customer-managed key whose failure would need forcing past.
    #[allow(dead_code)]
    allow_force_delete: Option<bool>,
}

/// DeleteDeliveryStream: the stream, its undelivered buffer and its cursor, in one batch.
pub async fn delete_delivery_stream(
    deps: &Deps,
    ctx: &RequestContext,
    input: DeleteInput,
) -> Result<(), FirehoseError> {
    let name = input.delivery_stream_name;
    let (stream, version) = load(deps.store.as_ref(), &ctx.account_id, &ctx.region, &name).await?;
    if stream.status(ctx.received_at_millis()) == "CREATING" {
        return Err(FirehoseError::ResourceInUse(format!(
            "Firehose {name} under account {} is in CREATING state and cannot be deleted.",
            ctx.account_id
        )));
    }
    deps.store
        .write(vec![
            Write::Delete {
                key: stream_key(&ctx.account_id, &ctx.region, &name),
                expect: Expect::Version(version),
            },
            Write::Delete {
                key: stream.cursor_key(&ctx.account_id, &ctx.region),
                expect: Expect::Any,
            },
            Write::DeleteLog {
                log: stream.buffer_log(&ctx.account_id, &ctx.region),
            },
        ])
        .await?;
    deps.firehose.wake(&ctx.account_id, &ctx.region, &name);
    deps.firehose.wake_manager();
    Ok(())
}

/// The model's tag-key pattern `^(?!aws:)...` has a look-ahead the model validator cannot
/// run, so the reserved `aws:` prefix is refused here, in the model's words.
fn check_tag_keys<'a>(
    keys: impl IntoIterator<Item = &'a str>,
    member: &str,
) -> Result<(), FirehoseError> {
    for (index, key) in keys.into_iter().enumerate() {
        if key.starts_with("aws:") {
            return Err(FirehoseError::Validation(format!(
                "1 validation error detected: Value '{key}' at '{member}.{}.member{}' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(?!aws:)[\\p{{L}}\\p{{Z}}\\p{{N}}_.:\\/=+\\-@%]*$",
                index + 1,
                if member == "tags" { ".key" } else { "" }
            )));
        }
    }
    Ok(())
}

/// A tag as the wire has it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagInput {
    key: String,
    value: Option<String>,
}

/// TagDeliveryStream input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagStreamInput {
    delivery_stream_name: String,
    tags: Vec<TagInput>,
}

/// TagDeliveryStream: adds or replaces tags, at most 50 on a stream.
pub async fn tag_delivery_stream(
    deps: &Deps,
    ctx: &RequestContext,
    input: TagStreamInput,
) -> Result<(), FirehoseError> {
    let (mut stream, version) = load(
        deps.store.as_ref(),
        &ctx.account_id,
        &ctx.region,
        &input.delivery_stream_name,
    )
    .await?;
    check_tag_keys(input.tags.iter().map(|tag| tag.key.as_str()), "tags")?;
    for tag in input.tags {
        stream.tags.insert(tag.key, tag.value.unwrap_or_default());
    }
    if stream.tags.len() > MAX_TAGS {
        return Err(FirehoseError::LimitExceeded(format!(
            "A Firehose stream cannot have more than {MAX_TAGS} tags; {} has {} with this request.",
            stream.name,
            stream.tags.len()
        )));
    }
    write_stream(deps, ctx, &stream, version).await?;
    Ok(())
}

/// UntagDeliveryStream input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagStreamInput {
    delivery_stream_name: String,
    tag_keys: Vec<String>,
}

/// UntagDeliveryStream: keys that are not there are ignored.
pub async fn untag_delivery_stream(
    deps: &Deps,
    ctx: &RequestContext,
    input: UntagStreamInput,
) -> Result<(), FirehoseError> {
    let (mut stream, version) = load(
        deps.store.as_ref(),
        &ctx.account_id,
        &ctx.region,
        &input.delivery_stream_name,
    )
    .await?;
    check_tag_keys(input.tag_keys.iter().map(String::as_str), "tagKeys")?;
    for key in &input.tag_keys {
        stream.tags.remove(key);
    }
    write_stream(deps, ctx, &stream, version).await?;
    Ok(())
}

/// ListTagsForDeliveryStream input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsInput {
    delivery_stream_name: String,
    exclusive_start_tag_key: Option<String>,
    limit: Option<usize>,
}

/// ListTagsForDeliveryStream: tags in key order, after the exclusive start key.
pub async fn list_tags_for_delivery_stream(
    deps: &Deps,
    ctx: &RequestContext,
    input: ListTagsInput,
) -> Result<ListTagsOutput, FirehoseError> {
    let (stream, _) = load(
        deps.store.as_ref(),
        &ctx.account_id,
        &ctx.region,
        &input.delivery_stream_name,
    )
    .await?;
    let limit = input.limit.unwrap_or(MAX_TAGS);
    let mut remaining = stream
        .tags
        .iter()
        .filter(|(key, _)| {
            input
                .exclusive_start_tag_key
                .as_ref()
                .is_none_or(|start| *key > start)
        })
        .map(|(key, value)| Tag {
            key: key.clone(),
            value: value.clone(),
        });
    let tags: Vec<Tag> = remaining.by_ref().take(limit).collect();
    let more = remaining.next().is_some();
    Ok(ListTagsOutput {
        tags,
        has_more_tags: more,
    })
}
