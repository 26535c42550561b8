//! App connectors: how an ingestion reads its app's audit log.
//!
//! One connector per app, one file each, behind [`AppConnector`]: a credential check for
//! ConnectAppAuthorization, one page of events after a cursor, the event's id (what makes
//! delivery free of duplicates) and the event mapped to OCSF 1.1.0. [`Apps`] holds the
//! connectors, the one HTTP client and the configured base URLs (`[appfabric.app_endpoints]`).

mod okta;
mod terraform;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use time::OffsetDateTime;

/// The apps Sluice has a connector for, in AppFabric's spelling.
pub const KNOWN_APPS: &[&str] = &[okta::APP, terraform::APP];

/// Whether `app` (AppFabric's name, e.g. `OKTA`) has a connector.
pub fn is_known_app(app: &str) -> bool {
    KNOWN_APPS.contains(&app)
}

/// A credential opened for one call; `<redacted>` when printed.
#[derive(Clone)]
pub struct ApiKey(pub String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// One page of an app's audit log.
#[derive(Debug, Default)]
pub struct Page {
    /// The events, oldest first, as the app sent them.
    pub events: Vec<Value>,
    /// Where the next poll starts (the app's own next-page URL or token); `None` keeps the
    /// current cursor.
    pub next: Option<String>,
}

/// Why a call to an app failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The app refused the credential (401/403).
    #[error("the app refused the credential: {0}")]
    Refused(String),
    /// The app asks to wait (429); `reset` is when to try again, epoch seconds, if it said.
    #[error("rate limited by the app")]
    RateLimited {
        /// `X-Rate-Limit-Reset` (epoch seconds).
        reset: Option<i64>,
    },
    /// Anything else: network, 5xx, an answer that cannot be read. Retried at the next poll.
    #[error("{0}")]
    Failed(String),
}

impl From<reqwest::Error> for ConnectorError {
    fn from(err: reqwest::Error) -> Self {
        ConnectorError::Failed(format!("cannot reach the app: {err}"))
    }
}

/// One app's audit-log API.
#[async_trait]
pub trait AppConnector: Send + Sync + 'static {
    /// AppFabric's name of the app (`OKTA`).
    fn app(&self) -> &'static str;

    /// The base URL AWS derives from the authorization's tenant id.
    fn default_base(&self, tenant_id: &str) -> String;

    /// One cheap authenticated call: `Ok` when the app accepts the credential.
    async fn validate(
        &self,
        http: &reqwest::Client,
        base: &str,
        key: &ApiKey,
    ) -> Result<(), ConnectorError>;

    /// One page of events after `cursor` (`None`: the first poll of the ingestion).
    async fn fetch(
        &self,
        http: &reqwest::Client,
        base: &str,
        key: &ApiKey,
        cursor: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Page, ConnectorError>;

    /// The app's id of an event; events without one cannot be told apart and are skipped.
    fn event_id(&self, event: &Value) -> Option<String>;

    /// The event normalised to OCSF 1.1.0.
    fn to_ocsf(&self, event: &Value) -> Value;
}

/// The connectors, the HTTP client they share and the configured base URLs.
pub struct Apps {
    /// Built at the first call to an app, not at start: building it reads and parses every
    /// root certificate of the system, a few milliseconds of CPU that a cold start (and most
    /// runs, which call no app) should not pay.
    http: tokio::sync::OnceCell<reqwest::Client>,
    endpoints: BTreeMap<String, String>,
    connectors: BTreeMap<&'static str, Arc<dyn AppConnector>>,
}

impl std::fmt::Debug for Apps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apps")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// How long one call to an app may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl Apps {
    /// Every connector, with `endpoints` (app name to base URL) replacing derived URLs.
    pub fn new(endpoints: BTreeMap<String, String>) -> Self {
        let mut connectors: BTreeMap<&'static str, Arc<dyn AppConnector>> = BTreeMap::new();
        connectors.insert(okta::APP, Arc::new(okta::Okta));
        connectors.insert(terraform::APP, Arc::new(terraform::Terraform));
        Self {
            http: tokio::sync::OnceCell::new(),
            endpoints,
            connectors,
        }
    }

    /// The connector of `app`, if Sluice has one.
    pub fn connector(&self, app: &str) -> Option<Arc<dyn AppConnector>> {
        self.connectors.get(app).cloned()
    }

    /// The client every connector calls through, built on a blocking thread at first use. A
    /// failure to build it fails the call, like an unreachable app, and the next call tries
    /// again.
    pub async fn http(&self) -> Result<&reqwest::Client, ConnectorError> {
        let build = || {
            reqwest::Client::builder()
                .timeout(CALL_TIMEOUT)
                .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|err| err.to_string())
        };
        self.http
            .get_or_try_init(|| async {
                let built = tokio::task::spawn_blocking(build).await;
                built
                    .map_err(|err| err.to_string())
                    .and_then(|built| built)
                    .map_err(|err| {
                        ConnectorError::Failed(format!("cannot build the HTTP client: {err}"))
                    })
            })
            .await
    }

    /// The base URL of `app` for `tenant_id`: the configured endpoint, else the connector's.
    pub fn base(&self, connector: &dyn AppConnector, tenant_id: &str) -> String {
        self.endpoints
            .get(connector.app())
            .cloned()
            .unwrap_or_else(|| connector.default_base(tenant_id))
    }
}
