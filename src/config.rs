//! Configuration: flags beat `SLUICE_*` variables, which beat the TOML file, which beats the
//! defaults. [`Config::resolve`] merges and checks them once into a [`ValidatedConfig`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::cli::{AuthMode, ServeArgs};
use crate::protocol::auth::{Authenticator, Credential};

/// The default listen address: loopback only, LocalStack's port.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4566";

/// The configuration file (`--config FILE`). Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Listen address, e.g. `127.0.0.1:4566`.
    pub listen: Option<SocketAddr>,
    /// Where state lives; `:memory:` keeps it in memory only.
    pub data_dir: Option<PathBuf>,
    /// The store: `sqlite` (the default, in the data directory) or a `postgres://` URL.
    pub store: Option<String>,
    /// Authentication settings.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Browser origins allowed to call Sluice (CORS). None by default.
    #[serde(default)]
    pub cors: CorsConfig,
    /// Allows emulator mode (no signature checks) on a non-loopback address. Dangerous.
    #[serde(default)]
    pub allow_remote_emulator: bool,
    /// Request size, connection and timeout limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Seconds between retention sweeps (`--sweep-interval`).
    pub sweep_interval_seconds: Option<u64>,
    /// Seconds a node's lease on background work lasts unless renewed (`--lease-ttl`).
    pub lease_ttl_seconds: Option<u64>,
    /// S3 settings.
    #[serde(default)]
    pub s3: S3Config,
    /// AppFabric audit-log delivery settings.
    #[serde(default)]
    pub appfabric: AppFabricConfig,
}

/// `[appfabric]`: how often ingestions poll their apps and flush their destinations.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppFabricConfig {
    /// Seconds between two polls of an enabled ingestion's app (default 60).
    pub poll_interval_seconds: Option<u64>,
    /// The longest an event waits before the object holding it is written (default 60).
    pub flush_interval_seconds: Option<u64>,
    /// `[appfabric.app_endpoints]`: app name (`OKTA`) to the base URL that replaces the one
    /// derived from the tenant id; the only way to reach a plain-`http://` app (self-hosted
    /// apps, tests).
    #[serde(default)]
    pub app_endpoints: std::collections::BTreeMap<String, String>,
}

/// Default `[appfabric] poll_interval_seconds`.
pub const DEFAULT_APPFABRIC_POLL_SECONDS: u64 = 60;
/// Default `[appfabric] flush_interval_seconds`.
pub const DEFAULT_APPFABRIC_FLUSH_SECONDS: u64 = 60;

/// The checked `[appfabric]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppFabricSettings {
    /// Time between two polls of an ingestion's app.
    pub poll_interval: Duration,
    /// The longest an event waits before its object is written.
    pub flush_interval: Duration,
    /// App name to base URL (no trailing `/`).
    pub app_endpoints: std::collections::BTreeMap<String, String>,
}

impl Default for AppFabricSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(DEFAULT_APPFABRIC_POLL_SECONDS),
            flush_interval: Duration::from_secs(DEFAULT_APPFABRIC_FLUSH_SECONDS),
            app_endpoints: Default::default(),
        }
    }
}

impl AppFabricConfig {
    /// Checks the intervals (1 s to a day) and that each endpoint names an app Sluice has a
    /// connector for and is an `http(s)://host[:port]` URL.
    pub fn validate(self) -> anyhow::Result<AppFabricSettings> {
        let seconds = |value: Option<u64>, default: u64, name: &str| {
            let value = value.unwrap_or(default);
            if value == 0 || value > MAX_TIMEOUT_SECONDS {
                bail!("appfabric.{name} must be between 1 and {MAX_TIMEOUT_SECONDS}");
            }
            Ok(Duration::from_secs(value))
        };
        let poll_interval = seconds(
            self.poll_interval_seconds,
            DEFAULT_APPFABRIC_POLL_SECONDS,
            "poll_interval_seconds",
        )?;
        let flush_interval = seconds(
            self.flush_interval_seconds,
            DEFAULT_APPFABRIC_FLUSH_SECONDS,
            "flush_interval_seconds",
        )?;
        let mut app_endpoints = std::collections::BTreeMap::new();
        for (app, url) in self.app_endpoints {
            if !crate::services::appfabric::connectors::is_known_app(&app) {
                bail!(
                    "appfabric.app_endpoints: Sluice has no connector for app {app:?} (known: {})",
                    crate::services::appfabric::connectors::KNOWN_APPS.join(", ")
                );
            }
            let url = url.trim_end_matches('/').to_owned();
            let host = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            match host {
                Some(host) if !host.is_empty() && !host.contains(['?', '#', ' ']) => {}
                _ => bail!("appfabric.app_endpoints.{app}: {url:?} is not an http(s):// URL"),
            }
            app_endpoints.insert(app, url);
        }
        Ok(AppFabricSettings {
            poll_interval,
            flush_interval,
            app_endpoints,
        })
    }
}

/// `[s3]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Buckets that Sluice's writers (Firehose, AppFabric, query results) deliver into an
    /// external S3-compatible service instead of the local disk. None by default.
    #[serde(default)]
    pub external_buckets: Vec<ExternalBucketConfig>,
}

/// A secret from the configuration: usable through [`Secret::expose`], and `<redacted>` in
/// every `Debug` output, so a logged configuration never carries it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that signs with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One `[[s3.external_buckets]]` entry, e.g.
/// `bucket = "audit-archive"`, `endpoint = "https://s3.eu-west-1.amazonaws.com"`,
/// `region = "eu-west-1"`, `access_key_id`, `secret_access_key`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalBucketConfig {
    /// The name Sluice's writers use (a valid S3 bucket name).
    pub bucket: String,
    /// The service's URL: `https://s3.REGION.amazonaws.com`, a MinIO or Garage address.
    pub endpoint: String,
    /// The region requests are signed for (`garage` for a default Garage).
    pub region: String,
    /// The bucket's name in that service; defaults to `bucket`.
    pub remote_bucket: Option<String>,
    /// The access key Sluice signs with.
    pub access_key_id: String,
    /// Its secret; never logged.
    pub secret_access_key: Secret,
    /// Allows a plain `http://` endpoint (default false): only for a service on the same
    /// host or a trusted network, since the bodies and signatures travel in clear.
    #[serde(default)]
    pub allow_http: bool,
}

/// A checked external bucket: what [`crate::services::s3::external::ExternalObjects`] is
/// built from.
#[derive(Debug, Clone)]
pub struct ExternalBucket {
    /// The name Sluice's writers use.
    pub bucket: String,
    /// The service's URL, without a trailing `/`.
    pub endpoint: String,
    /// The signing region.
    pub region: String,
    /// The bucket's name in the service.
    pub remote_bucket: String,
    /// The access key.
    pub access_key_id: String,
    /// The secret; redacted in `Debug`.
    pub secret_access_key: Secret,
    /// Whether `http://` is allowed.
    pub allow_http: bool,
}

impl S3Config {
    /// Checks every external bucket once: names, endpoint scheme, non-empty keys, no bucket
    /// configured twice.
    pub fn validate(self) -> anyhow::Result<Vec<ExternalBucket>> {
        let mut seen = std::collections::HashSet::new();
        let mut buckets = Vec::new();
        for entry in self.external_buckets {
            let name = entry.bucket;
            let at = format!("s3.external_buckets (bucket {name:?})");
            if !crate::services::s3::valid_bucket_name(&name) {
                bail!("{at}: bucket is not a valid S3 bucket name");
            }
            if !seen.insert(name.clone()) {
                bail!("{at}: the bucket is configured twice");
            }
            let remote_bucket = entry.remote_bucket.unwrap_or_else(|| name.clone());
            if !crate::services::s3::valid_bucket_name(&remote_bucket) {
                bail!("{at}: remote_bucket is not a valid S3 bucket name");
            }
            let endpoint = entry.endpoint.trim_end_matches('/').to_owned();
            let host = if let Some(host) = endpoint.strip_prefix("https://") {
                host
            } else if let Some(host) = endpoint.strip_prefix("http://") {
                if !entry.allow_http {
                    bail!("{at}: endpoint is plain http://; set allow_http = true if the service is local or on a trusted network");
                }
                host
            } else {
                bail!("{at}: endpoint must start with https:// (or http:// with allow_http)");
            };
            if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
                bail!("{at}: endpoint must be a scheme and a host (with an optional port), without a path");
            }
            if entry.region.trim().is_empty() {
                bail!("{at}: region must not be empty");
            }
            if entry.access_key_id.is_empty() || entry.secret_access_key.expose().is_empty() {
                bail!("{at}: access_key_id and secret_access_key must not be empty");
            }
            buckets.push(ExternalBucket {
                bucket: name,
                endpoint,
                region: entry.region,
                remote_bucket,
                access_key_id: entry.access_key_id,
                secret_access_key: entry.secret_access_key,
                allow_http: entry.allow_http,
            });
        }
        Ok(buckets)
    }
}

/// `[auth]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `emulator` (default: any key, secret unchecked) or `strict` (verified SigV4).
    pub mode: Option<AuthMode>,
    /// Credentials for strict mode.
    #[serde(default)]
    pub credentials: Vec<CredentialConfig>,
}

/// One `[[auth.credentials]]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// The access key id clients sign with.
    pub access_key_id: String,
    /// The secret; never logged.
    pub secret_access_key: String,
    /// The 12-digit account the key belongs to.
    pub account_id: String,
    /// Who the key is, as GetCallerIdentity answers: `arn:aws:iam::ACCOUNT:root` (the
    /// default) or an IAM user of the same account (`arn:aws:iam::ACCOUNT:user/ci`).
    #[serde(default)]
    pub arn: Option<String>,
}

impl std::fmt::Debug for CredentialConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialConfig")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("account_id", &self.account_id)
            .field("arn", &self.arn)
            .finish()
    }
}

/// `[cors]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins (`http://localhost:3000`) whose pages may call Sluice.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

/// `[limits]`: what clients may take from the server, alone or together. Every field is
/// optional; the defaults are the `DEFAULT_*` constants.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// The largest request body, in bytes; a larger `Content-Length` is refused (413) unread.
    pub max_body_bytes: Option<u64>,
    /// Open connections at most; further clients wait in the listen backlog.
    pub max_connections: Option<u64>,
    /// Time allowed for a request head to arrive once its first byte has (slow heads hold
    /// connections: slowloris).
    pub header_read_timeout_seconds: Option<u64>,
    /// Time a connection may wait for its next request (from its opening or the previous
    /// answer) before it is closed; the head must also be complete within it.
    pub idle_timeout_seconds: Option<u64>,
    /// Time allowed for a whole request body to arrive.
    pub body_read_timeout_seconds: Option<u64>,
    /// Bytes of request bodies held in memory at once, across all connections.
    pub max_in_flight_body_bytes: Option<u64>,
}

/// Default `max_body_bytes`: PutLogEvents batches are up to 1 MiB of events, and the JSON
/// around them adds a little; 8 MiB leaves room for every served operation.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 8 * 1024 * 1024;
/// Default `max_connections`, lowered to fit the open-file limit (see [`connection_cap`]).
pub const DEFAULT_MAX_CONNECTIONS: u64 = 1024;
/// Default `header_read_timeout_seconds`.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECONDS: u64 = 10;
/// Default `idle_timeout_seconds`: shorter than the SDKs' pool idle times would leave stale
/// sockets in their pools, which they detect; longer only holds file descriptors.
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: u64 = 60;
/// Default `body_read_timeout_seconds`: 8 MiB in a minute is about 1 Mbit/s.
pub const DEFAULT_BODY_READ_TIMEOUT_SECONDS: u64 = 60;
/// Default `max_in_flight_body_bytes`: eight largest bodies at once.
pub const DEFAULT_MAX_IN_FLIGHT_BODY_BYTES: u64 = 64 * 1024 * 1024;
/// The largest accepted `max_body_bytes` (1 GiB); nothing Sluice serves comes near it.
pub const MAX_MAX_BODY_BYTES: u64 = 1024 * 1024 * 1024;
/// The longest accepted timeout, one day; longer ones are surely mistakes.
pub const MAX_TIMEOUT_SECONDS: u64 = 86_400;

/// The checked limits the server runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Open connections at most; always below the open-file limit.
    pub max_connections: usize,
    /// Time for a request head once its first byte has arrived.
    pub header_read_timeout: Duration,
    /// Time a connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Time for a whole request body.
    pub body_read_timeout: Duration,
    /// Bytes of request bodies in memory at once.
    pub max_in_flight_body_bytes: usize,
}

/// How many connections fit under an open-file limit: the rest of the descriptors are kept
/// for the store (SQLite and its WAL, per pooled connection), the runtime and the standard
/// streams, so that a full house of clients can never make `accept` or the store fail with
/// EMFILE. `None` means no limit.
pub fn connection_cap(open_file_limit: Option<u64>) -> Option<u64> {
    open_file_limit.map(|limit| {
        let reserved = (limit / 8).max(64);
        limit.saturating_sub(reserved).max(1)
    })
}

/// The process's current (soft) limit on open files, `None` when unlimited.
pub fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

impl LimitsConfig {
    /// Checks the limits against each other and fits the connection limit under
    /// `open_file_limit`; returns a warning to log when it had to lower a configured value.
    pub fn validate(
        &self,
        open_file_limit: Option<u64>,
    ) -> anyhow::Result<(Limits, Option<String>)> {
        let max_body_bytes = self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes == 0 || max_body_bytes > MAX_MAX_BODY_BYTES {
            bail!("limits.max_body_bytes must be between 1 and {MAX_MAX_BODY_BYTES}");
        }
        let budget = self
            .max_in_flight_body_bytes
            .unwrap_or(DEFAULT_MAX_IN_FLIGHT_BODY_BYTES.max(max_body_bytes));
        if budget < max_body_bytes {
            bail!("limits.max_in_flight_body_bytes ({budget}) must be at least limits.max_body_bytes ({max_body_bytes}), or the largest body could never be read");
        }
        let seconds = |value: Option<u64>, default: u64, name: &str| {
            let value = value.unwrap_or(default);
            if value == 0 || value > MAX_TIMEOUT_SECONDS {
                bail!("limits.{name} must be between 1 and {MAX_TIMEOUT_SECONDS}");
            }
            Ok(Duration::from_secs(value))
        };
        let header_read_timeout = seconds(
            self.header_read_timeout_seconds,
            DEFAULT_HEADER_READ_TIMEOUT_SECONDS,
            "header_read_timeout_seconds",
        )?;
        let idle_timeout = seconds(
            self.idle_timeout_seconds,
            DEFAULT_IDLE_TIMEOUT_SECONDS,
            "idle_timeout_seconds",
        )?;
        let body_read_timeout = seconds(
            self.body_read_timeout_seconds,
            DEFAULT_BODY_READ_TIMEOUT_SECONDS,
            "body_read_timeout_seconds",
        )?;
        let wanted = self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if wanted == 0 {
            bail!("limits.max_connections must be at least 1");
        }
        let cap = connection_cap(open_file_limit).unwrap_or(u64::MAX);
        let mut warning = None;
        if wanted > cap && self.max_connections.is_some() {
            warning = Some(format!(
                "limits.max_connections = {wanted} does not fit under the open-file limit ({}); serving at most {cap} connections. Raise `ulimit -n` to allow more.",
                open_file_limit.unwrap_or_default()
            ));
        }
        let max_connections = wanted.min(cap);
        Ok((
            Limits {
                max_body_bytes: usize::try_from(max_body_bytes)?,
                max_connections: usize::try_from(max_connections)?,
                header_read_timeout,
                idle_timeout,
                body_read_timeout,
                max_in_flight_body_bytes: usize::try_from(budget)?,
            },
            warning,
        ))
    }
}

/// Where state is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataDir {
    /// A directory holding `sluice.db`.
    Path(PathBuf),
    /// Nothing on disk.
    Memory,
}

/// Which store keeps the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// SQLite in the data directory (or memory for `:memory:`).
    Embedded,
    /// PostgreSQL; the data directory keeps only S3 objects and CloudTrail Lake segments.
    Postgres(PostgresUrl),
}

/// A PostgreSQL URL, whose password `Debug` never shows.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// Checks that `url` is a PostgreSQL URL sqlx can connect with.
    fn parse(url: &str) -> anyhow::Result<Self> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            bail!("store must be `sqlite` or a postgres:// URL");
        }
        <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url)
            .map_err(|err| anyhow::anyhow!("invalid PostgreSQL URL in store: {err}"))?;
        Ok(Self(url.to_owned()))
    }

    /// The URL itself, for the one place that connects with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `scheme://user:password@host...`: everything between the first ':' after the scheme
        // and the last '@' of the authority is the password.
        let (scheme, rest) = self.0.split_once("://").unwrap_or(("", &self.0));
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        let shown = match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:<redacted>@{host}"),
                None => format!("{userinfo}@{host}"),
            },
            None => authority.to_owned(),
        };
        // A password may also come as a query parameter.
        let path = match path.find("password=") {
            Some(at) => format!("{}password=<redacted>", &path[..at]),
            None => path.to_owned(),
        };
        write!(f, "\"{scheme}://{shown}{path}\"")
    }
}

/// The checked configuration the server runs with.
#[derive(Debug)]
pub struct ValidatedConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// State location (with PostgreSQL: S3 objects and Lake segments only).
    pub data_dir: DataDir,
    /// The store.
    pub store: StoreChoice,
    /// Authentication.
    pub authenticator: Authenticator,
    /// Allowed CORS origins.
    pub allowed_origins: Vec<String>,
    /// Exit when standard input closes (used by test harnesses that own the process).
    pub exit_with_stdin: bool,
    /// Do not start the delivery worker (tests of crash recovery between accept and deliver).
    pub pause_delivery: bool,
    /// Time between retention sweeps.
    pub sweep_interval: std::time::Duration,
    /// How long a lease on background work lasts unless renewed: the longest a dead node's
    /// work waits before another node of a shared store takes it.
    pub lease_ttl: std::time::Duration,
    /// Request size, connection and timeout limits.
    pub limits: Limits,
    /// Buckets Sluice's writers deliver into external S3-compatible services.
    pub external_buckets: Vec<ExternalBucket>,
    /// AppFabric audit-log delivery.
    pub appfabric: AppFabricSettings,
}

/// A duration given in whole seconds, at least one.
fn positive_seconds(
    seconds: Option<u64>,
    what: &str,
    default: std::time::Duration,
) -> anyhow::Result<std::time::Duration> {
    match seconds {
        Some(0) => bail!("{what} must be at least 1 second"),
        Some(seconds) => Ok(std::time::Duration::from_secs(seconds)),
        None => Ok(default),
    }
}

/// The default data directory: `$XDG_DATA_HOME/sluice`, else `~/.local/share/sluice`, else
/// `./sluice-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("sluice");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".local/share/sluice");
    }
    PathBuf::from("sluice-data")
}

impl FileConfig {
    /// Reads a TOML file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

/// Merges flags and variables (already merged by clap) over the file and the defaults.
pub fn resolve(args: &ServeArgs) -> anyhow::Result<ValidatedConfig> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let listen = match (args.listen, file.listen) {
        (Some(listen), _) | (None, Some(listen)) => listen,
        (None, None) => DEFAULT_LISTEN.parse().context("default listen address")?,
    };
    let data_dir = args
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(default_data_dir);
    let data_dir = if data_dir.as_os_str() == ":memory:" {
        DataDir::Memory
    } else {
        DataDir::Path(data_dir)
    };
    let store = match args.store.as_deref().or(file.store.as_deref()) {
        None | Some("sqlite") => StoreChoice::Embedded,
        Some(url) => StoreChoice::Postgres(PostgresUrl::parse(url)?),
    };
    let mode = args.auth.or(file.auth.mode).unwrap_or(AuthMode::Emulator);
    let authenticator = match mode {
        AuthMode::Emulator => Authenticator::Emulator,
        AuthMode::Strict => {
            if file.auth.credentials.is_empty() {
                bail!(
                    "strict auth needs at least one [[auth.credentials]] entry in the config file"
                );
            }
            let mut credentials = HashMap::new();
            for entry in file.auth.credentials {
                if !crate::arn::is_account_id(&entry.account_id) {
                    bail!(
                        "account_id of access key {} must be 12 digits",
                        entry.access_key_id
                    );
                }
                let arn = entry
                    .arn
                    .unwrap_or_else(|| crate::services::sts::root_arn(&entry.account_id));
                crate::services::sts::check_principal(&arn, &entry.account_id).with_context(
                    || format!("arn of access key {} is refused", entry.access_key_id),
                )?;
                credentials.insert(
                    entry.access_key_id,
                    Credential {
                        secret_access_key: entry.secret_access_key,
                        account_id: entry.account_id,
                        arn,
                    },
                );
            }
            Authenticator::Strict(credentials)
        }
    };
    let (limits, warning) = file.limits.validate(open_file_limit())?;
    let external_buckets = file.s3.validate()?;
    let appfabric = file.appfabric.validate()?;
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    let allow_remote_emulator = args.allow_remote_emulator || file.allow_remote_emulator;
    if !listen.ip().is_loopback() && !authenticator.is_strict() && !allow_remote_emulator {
        bail!(
            "refusing to listen on {listen} in emulator mode, where any key is accepted: use --auth strict with credentials, or --allow-remote-emulator if you really mean it"
        );
    }
    let sweep_interval = positive_seconds(
        args.sweep_interval.or(file.sweep_interval_seconds),
        "the sweep interval",
        crate::sweeper::DEFAULT_INTERVAL,
    )?;
    let lease_ttl = positive_seconds(
        args.lease_ttl.or(file.lease_ttl_seconds),
        "the lease time",
        crate::lease::DEFAULT_TTL,
    )?;
    Ok(ValidatedConfig {
        listen,
        data_dir,
        store,
        authenticator,
        allowed_origins: file.cors.allowed_origins,
        exit_with_stdin: args.exit_with_stdin,
        pause_delivery: args.pause_delivery,
        sweep_interval,
        lease_ttl,
        limits,
        external_buckets,
        appfabric,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut file, text.as_bytes()).expect("write");
        file
    }

    #[test]
    fn appfabric_settings_default_read_from_the_file_and_refuse_mistakes() {
        let defaults = resolve(&ServeArgs::default()).expect("valid");
        assert_eq!(defaults.appfabric, AppFabricSettings::default());
        let config = file(
            "[appfabric]\npoll_interval_seconds = 2\nflush_interval_seconds = 3\n[appfabric.app_endpoints]\nOKTA = \"http://127.0.0.1:9000/\"\n",
        );
        let args = ServeArgs {
            config: Some(config.path().to_owned()),
            ..ServeArgs::default()
        };
        let resolved = resolve(&args).expect("valid").appfabric;
        assert_eq!(resolved.poll_interval, Duration::from_secs(2));
        assert_eq!(resolved.flush_interval, Duration::from_secs(3));
        assert_eq!(resolved.app_endpoints["OKTA"], "http://127.0.0.1:9000");
        for bad in [
            "[appfabric]\npoll_interval_seconds = 0\n",
            "[appfabric]\nflush_seconds = 3\n",
            "[appfabric.app_endpoints]\nNOPE = \"http://127.0.0.1:1\"\n",
            "[appfabric.app_endpoints]\nOKTA = \"ftp://x\"\n",
        ] {
            let config = file(bad);
            let args = ServeArgs {
                config: Some(config.path().to_owned()),
                ..ServeArgs::default()
            };
            assert!(resolve(&args).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let config = file("listen = \"127.0.0.3:5000\"\ndata_dir = \"/tmp/from-file\"\n");
        let mut args = ServeArgs {
            config: Some(config.path().to_owned()),
            ..ServeArgs::default()
        };
        let resolved = resolve(&args).expect("valid");
        assert_eq!(resolved.listen.to_string(), "127.0.0.3:5000");
        assert_eq!(resolved.data_dir, DataDir::Path("/tmp/from-file".into()));
        args.listen = Some("127.0.0.1:6000".parse().expect("addr"));
        args.data_dir = Some(":memory:".into());
        let resolved = resolve(&args).expect("valid");
        assert_eq!(resolved.listen.to_string(), "127.0.0.1:6000");
        assert_eq!(resolved.data_dir, DataDir::Memory);
        let defaults = resolve(&ServeArgs::default()).expect("valid");
        assert_eq!(defaults.listen.to_string(), DEFAULT_LISTEN);
        assert!(!defaults.authenticator.is_strict());
    }

    #[test]
    fn the_store_is_sqlite_unless_a_postgres_url_is_given_and_its_password_never_shows() {
        assert_eq!(
            resolve(&ServeArgs::default()).expect("valid").store,
            StoreChoice::Embedded
        );
        let config = file("store = \"postgres://sluice:hunter2@db.internal:5432/sluice\"\n");
        let mut args = ServeArgs {
            config: Some(config.path().to_owned()),
            ..ServeArgs::default()
        };
        let resolved = resolve(&args).expect("valid");
        let StoreChoice::Postgres(url) = &resolved.store else {
            panic!("expected PostgreSQL, got {:?}", resolved.store);
        };
        assert_eq!(
            url.expose(),
            "postgres://sluice:hunter2@db.internal:5432/sluice"
        );
        let shown = format!("{resolved:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("sluice:<redacted>@db.internal:5432/sluice"),
            "{shown}"
        );
        let query =
            PostgresUrl::parse("postgres://db/sluice?user=u&password=hunter2").expect("valid");
        assert!(!format!("{query:?}").contains("hunter2"));
        // The flag beats the file.
        args.store = Some("sqlite".into());
        assert_eq!(resolve(&args).expect("valid").store, StoreChoice::Embedded);
        for bad in ["mysql://db/x", "postgres://db:notaport/x", "sqlite3"] {
            args.store = Some(bad.into());
            assert!(resolve(&args).is_err(), "{bad}");
        }
    }

    #[test]
    fn strict_mode_needs_credentials_and_remote_listeners_need_strict_mode() {
        let strict = file("[auth]\nmode = \"strict\"\n");
        let args = ServeArgs {
            config: Some(strict.path().to_owned()),
            ..ServeArgs::default()
        };
        assert!(resolve(&args).is_err());

        let remote = ServeArgs {
            listen: Some("0.0.0.0:4566".parse().expect("addr")),
            ..ServeArgs::default()
        };
        let refused = resolve(&remote).expect_err("emulator mode on 0.0.0.0 is refused");
        assert!(refused.to_string().contains("--auth strict"));
        let overridden = ServeArgs {
            allow_remote_emulator: true,
            ..remote
        };
        assert!(resolve(&overridden).is_ok());

        let with_keys = file(
            "listen = \"0.0.0.0:4566\"\n[auth]\nmode = \"strict\"\n[[auth.credentials]]\naccess_key_id = \"AK\"\nsecret_access_key = \"s\"\naccount_id = \"123456789012\"\n",
        );
        let args = ServeArgs {
            config: Some(with_keys.path().to_owned()),
            ..ServeArgs::default()
        };
        let resolved = resolve(&args).expect("strict on 0.0.0.0 is fine");
        assert!(resolved.authenticator.is_strict());
        assert!(
            !format!("{resolved:?}").contains("secret_access_key: \"s\""),
            "secrets are redacted"
        );
    }

    #[test]
    fn a_key_is_its_root_unless_an_iam_user_of_its_account_is_configured() {
        let resolve_keys = |arn_line: &str| {
            let config = file(&format!(
                "[auth]\nmode = \"strict\"\n[[auth.credentials]]\naccess_key_id = \"AK\"\nsecret_access_key = \"s\"\naccount_id = \"123456789012\"\n{arn_line}"
            ));
            resolve(&ServeArgs {
                config: Some(config.path().to_owned()),
                ..ServeArgs::default()
            })
        };
        let root = resolve_keys("").expect("no arn");
        assert_eq!(
            root.authenticator.configured_arn("AK"),
            Some("arn:aws:iam::123456789012:root")
        );
        let user = resolve_keys("arn = \"arn:aws:iam::123456789012:user/ci\"").expect("user");
        assert_eq!(
            user.authenticator.configured_arn("AK"),
            Some("arn:aws:iam::123456789012:user/ci")
        );
        let other = resolve_keys("arn = \"arn:aws:iam::210987654321:user/ci\"")
            .expect_err("another account's user");
        assert!(format!("{other:#}").contains("210987654321"), "{other:#}");
        assert!(resolve_keys("arn = \"arn:aws:iam::123456789012:role/ci\"").is_err());
    }

    #[test]
    fn the_sweep_interval_defaults_to_a_minute_and_is_never_zero() {
        let defaults = resolve(&ServeArgs::default()).expect("valid");
        assert_eq!(defaults.sweep_interval, std::time::Duration::from_secs(60));
        let zero = ServeArgs {
            sweep_interval: Some(0),
            ..ServeArgs::default()
        };
        assert!(resolve(&zero).is_err());
        let one = ServeArgs {
            sweep_interval: Some(1),
            ..ServeArgs::default()
        };
        assert_eq!(
            resolve(&one).expect("valid").sweep_interval,
            std::time::Duration::from_secs(1)
        );
        let from_file = file("sweep_interval_seconds = 5\n");
        let mut args = ServeArgs {
            config: Some(from_file.path().to_owned()),
            ..ServeArgs::default()
        };
        assert_eq!(
            resolve(&args).expect("valid").sweep_interval,
            std::time::Duration::from_secs(5)
        );
        args.sweep_interval = Some(2);
        assert_eq!(
            resolve(&args)
                .expect("the flag beats the file")
                .sweep_interval,
            std::time::Duration::from_secs(2)
        );
    }

    #[test]
    fn the_lease_time_defaults_to_five_seconds_flag_over_file() {
        let defaults = resolve(&ServeArgs::default()).expect("valid");
        assert_eq!(defaults.lease_ttl, std::time::Duration::from_secs(5));
        let from_file = file("lease_ttl_seconds = 9\n");
        let mut args = ServeArgs {
            config: Some(from_file.path().to_owned()),
            ..ServeArgs::default()
        };
        assert_eq!(
            resolve(&args).expect("valid").lease_ttl,
            std::time::Duration::from_secs(9)
        );
        args.lease_ttl = Some(2);
        assert_eq!(
            resolve(&args).expect("valid").lease_ttl,
            std::time::Duration::from_secs(2)
        );
        args.lease_ttl = Some(0);
        assert!(resolve(&args).is_err());
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let bad = file("lisen = \"127.0.0.1:1\"\n");
        let args = ServeArgs {
            config: Some(bad.path().to_owned()),
            ..ServeArgs::default()
        };
        assert!(resolve(&args).is_err());
    }

    fn external(text: &str) -> anyhow::Result<Vec<ExternalBucket>> {
        let parsed: FileConfig = toml::from_str(text)?;
        parsed.s3.validate()
    }

    const EXTERNAL: &str = "[[s3.external_buckets]]\nbucket = \"audit-archive\"\nendpoint = \"https://s3.eu-west-1.amazonaws.com/\"\nregion = \"eu-west-1\"\naccess_key_id = \"AKIDEXT\"\nsecret_access_key = \"very-secret\"\n";

    #[test]
    fn external_buckets_are_checked_once_and_their_secrets_redacted() {
        assert!(external("").expect("none by default").is_empty());
        let buckets = external(EXTERNAL).expect("valid");
        assert_eq!(buckets.len(), 1);
        assert_eq!(buckets[0].bucket, "audit-archive");
        assert_eq!(
            buckets[0].remote_bucket, "audit-archive",
            "defaults to bucket"
        );
        assert_eq!(buckets[0].endpoint, "https://s3.eu-west-1.amazonaws.com");
        assert!(!buckets[0].allow_http);
        assert!(!format!("{buckets:?}").contains("very-secret"));
        let parsed: FileConfig = toml::from_str(EXTERNAL).expect("parses");
        assert!(!format!("{parsed:?}").contains("very-secret"));

        let renamed =
            external(&format!("{EXTERNAL}remote_bucket = \"my-real-bucket\"\n")).expect("valid");
        assert_eq!(renamed[0].remote_bucket, "my-real-bucket");
        let local = EXTERNAL.replace(
            "https://s3.eu-west-1.amazonaws.com/",
            "http://127.0.0.1:9000",
        );
        assert!(external(&local).is_err(), "http needs allow_http");
        let allowed = external(&format!("{local}allow_http = true\n")).expect("valid");
        assert_eq!(allowed[0].endpoint, "http://127.0.0.1:9000");

        for bad in [
            EXTERNAL.replace("audit-archive", "Audit_Archive"),
            format!("{EXTERNAL}remote_bucket = \"x\"\n"),
            EXTERNAL.replace("https://", "ftp://"),
            EXTERNAL.replace("amazonaws.com/", "amazonaws.com/some/path"),
            EXTERNAL.replace("eu-west-1\"\naccess", "\"\naccess"),
            EXTERNAL.replace("very-secret", ""),
            format!("{EXTERNAL}{EXTERNAL}"),
            format!("{EXTERNAL}acces_key = \"typo\"\n"),
            "[s3]\nexternal_bucket = []\n".to_owned(),
        ] {
            assert!(external(&bad).is_err(), "{bad}");
        }
    }

    fn limits(text: &str, open_files: Option<u64>) -> anyhow::Result<(Limits, Option<String>)> {
        let parsed: FileConfig = toml::from_str(text)?;
        parsed.limits.validate(open_files)
    }

    #[test]
    fn limits_have_defaults_that_fit_the_open_file_limit() {
        let (defaults, warning) = limits("", Some(1_048_576)).expect("valid");
        assert_eq!(warning, None);
        assert_eq!(
            defaults,
            Limits {
                max_body_bytes: 8 * 1024 * 1024,
                max_connections: 1024,
                header_read_timeout: Duration::from_secs(10),
                idle_timeout: Duration::from_secs(60),
                body_read_timeout: Duration::from_secs(60),
                max_in_flight_body_bytes: 64 * 1024 * 1024,
            }
        );
        // The usual 1,024 open files leave room for the store and the runtime.
        let (usual, warning) = limits("", Some(1024)).expect("valid");
        assert_eq!((usual.max_connections, warning), (896, None));
        let (unlimited, _) = limits("", None).expect("valid");
        assert_eq!(unlimited.max_connections, 1024);
        // A configured value that does not fit is lowered, with a warning.
        let (lowered, warning) =
            limits("[limits]\nmax_connections = 5000\n", Some(1024)).expect("valid");
        assert_eq!(lowered.max_connections, 896);
        assert!(warning.is_some_and(|w| w.contains("ulimit")));
    }

    #[test]
    fn limits_are_read_and_checked_once() {
        let (set, _) = limits(
            "[limits]\nmax_body_bytes = 1024\nmax_connections = 8\nheader_read_timeout_seconds = 1\nidle_timeout_seconds = 2\nbody_read_timeout_seconds = 3\nmax_in_flight_body_bytes = 4096\n",
            Some(1024),
        )
        .expect("valid");
        assert_eq!(
            set,
            Limits {
                max_body_bytes: 1024,
                max_connections: 8,
                header_read_timeout: Duration::from_secs(1),
                idle_timeout: Duration::from_secs(2),
                body_read_timeout: Duration::from_secs(3),
                max_in_flight_body_bytes: 4096,
            }
        );
        // A body limit above the default budget raises the default budget with it.
        let (big, _) = limits("[limits]\nmax_body_bytes = 104857600\n", None).expect("valid");
        assert_eq!(big.max_in_flight_body_bytes, 104_857_600);
        for bad in [
            "[limits]\nmax_body_bytes = 0\n",
            "[limits]\nmax_connections = 0\n",
            "[limits]\nidle_timeout_seconds = 0\n",
            "[limits]\nheader_read_timeout_seconds = 100000\n",
            "[limits]\nmax_body_bytes = 2048\nmax_in_flight_body_bytes = 1024\n",
            "[limits]\nmax_body = 1\n",
            "[limits]\nidle_timeout_seconds = -1\n",
        ] {
            assert!(limits(bad, Some(1024)).is_err(), "{bad}");
        }
    }
}
