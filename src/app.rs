//! Wires configuration, store, services and server together, and owns shutdown.

use std::sync::Arc;

use anyhow::Context;
use tokio::io::AsyncReadExt;

use crate::config::{DataDir, StoreChoice, ValidatedConfig};
use crate::lease::Leases;
use crate::pipeline::{DeliveryMetrics, Pipeline, Signal, Sinks};
use crate::server::{serve, AppState};
use crate::services::appfabric::{
    self, AppFabricDelivery, AppFabricMetrics, Apps, CredentialCipher,
};
use crate::services::firehose::{Deliveries, FirehoseMetrics, LocalDeliveryStreams, Wakers};
use crate::services::kinesis::LocalStreams;
use crate::services::s3::external::ObjectRouter;
use crate::services::s3::storage::LocalObjects;
use crate::services::s3::ObjectSink;
use crate::services::{registry, Deps};
use crate::store::cache::CachedStore;
use crate::store::memory::MemoryStore;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use crate::sweeper::Sweeper;
use crate::token::TokenSigner;

/// The record kinds the read cache keeps in memory: control-plane records, small and few,
/// read on nearly every request. Not cursors, buffers, query results or client tokens, which
/// are large, many, or written far more often than read.
///
/// A set's guard record (CloudTrail's `-set` kinds) is cached exactly when its set is. A guard
/// read from the store beside a set read from the cache could be newer than the set (a batch
/// committed, the cache not yet updated), and a quota check would pass on a stale count: 12
/// concurrent CreateEventDataStore calls made 11 stores under a quota of 10, 2 runs in 40.
const CACHED_KINDS: &[&str] = &[
    "logs/destination",
    "logs/log-group",
    "logs/log-stream",
    "logs/subscription-filter",
    "logs/resource-policy",
    "kinesis/stream",
    "firehose/stream",
    "cloudtrail/event-data-store",
    "cloudtrail/event-data-store-name",
    "cloudtrail/event-data-store-set",
    "cloudtrail/channel",
    "cloudtrail/channel-ingestion",
    "cloudtrail/channel-name",
    "cloudtrail/channel-set",
    "cloudtrail/channel-source",
    "appfabric/account",
    "appfabric/app-bundle",
    "appfabric/app-authorization",
    "appfabric/ingestion",
    "appfabric/ingestion-destination",
    "s3/bucket",
];

/// Opens the store, builds the services, binds the listener and serves until shutdown.
pub async fn run(config: ValidatedConfig) -> anyhow::Result<()> {
    // The embedded models are indexed on a thread of their own while the store opens, which
    // spends most of its time waiting for the disk, so that no first request pays for its
    // service's model. Each shape is still parsed at its first use.
    std::thread::spawn(|| {
        for name in crate::services::kit::EMBEDDED_MODELS {
            crate::services::kit::embedded_model(name);
        }
    });
    // Every reader and writer below goes through the one store, so that no batch bypasses the
    // cache. PostgreSQL is not cached: another node's writes must be seen, and the change feed
    // that would bound their delay (`store::cache::ChangeFeed`) has no PostgreSQL side yet.
    let cached = |inner: Arc<dyn Store>| -> Arc<dyn Store> {
        Arc::new(CachedStore::new(inner, CACHED_KINDS))
    };
    let (store, store_kind): (Arc<dyn Store>, &str) = match (&config.store, &config.data_dir) {
        (StoreChoice::Postgres(url), _) => (
            Arc::new(
                PostgresStore::open(url.expose())
                    .await
                    .with_context(|| format!("cannot open the store at {url:?}"))?,
            ),
            "postgres",
        ),
        (StoreChoice::Embedded, DataDir::Memory) => {
            (cached(Arc::new(MemoryStore::default())), "memory")
        }
        (StoreChoice::Embedded, DataDir::Path(dir)) => (
            cached(Arc::new(SqliteStore::open(dir).await.with_context(
                || format!("cannot open the store in {}", dir.display()),
            )?)),
            "sqlite",
        ),
    };
    // With PostgreSQL, other nodes may share the store: background work is leased, and this
    // node's own lease, taken before anything is served, tells the others it is alive.
    let leases = match config.store {
        StoreChoice::Postgres(_) => Leases::shared(store.clone(), config.lease_ttl),
        StoreChoice::Embedded => Leases::solo(),
    };
    leases
        .start()
        .await
        .context("cannot take this node's lease in the store")?;
    tokio::spawn(leases.clone().run());
    let data_path = match &config.data_dir {
        DataDir::Memory => None,
        DataDir::Path(dir) => Some(dir.as_path()),
    };
    // The keys (read, or on a first start written in one commit), the S3 object area (files)
    // and the delivery queues meanwhile.
    let (token_setting, fresh_token_key) = TokenSigner::setting();
    let (cipher_setting, fresh_cipher_key) = CredentialCipher::setting();
    let keys = async {
        let kept = store
            .init_settings(&[
                (token_setting, &fresh_token_key),
                (cipher_setting, &fresh_cipher_key),
            ])
            .await
            .context("cannot keep the pagination-token and credential keys in the store")?;
        match <[String; 2]>::try_from(kept) {
            Ok([token_key, cipher_key]) => Ok((token_key, CredentialCipher::from_hex(&cipher_key))),
            Err(kept) => anyhow::bail!("the store kept {} of 2 keys", kept.len()),
        }
    };
    let object_area = async {
        let objects = Arc::new(
            LocalObjects::open(store.clone(), data_path)
                .context("cannot open the S3 object area")?,
        );
        crate::services::s3::hygiene::sweep_at_start(&objects, leases.is_shared())
            .await
            .context("cannot clear the S3 object area of files a crash left")?;
        anyhow::Ok(objects)
    };
    let delivery_metrics = DeliveryMetrics::default();
    let mut metrics = prometheus_client::registry::Registry::default();
    delivery_metrics.register(&mut metrics);
    let delivery = Arc::new(Signal::new(delivery_metrics));
    let queues = async {
        Pipeline::recover(store.as_ref(), &delivery)
            .await
            .context("cannot read the delivery queues")
    };
    let ((token_key, credentials), objects, ()) = tokio::try_join!(keys, object_area, queues)?;
    let storage = Arc::new(
        ObjectRouter::new(objects.clone(), &config.external_buckets)
            .context("cannot set up the external S3 buckets")?,
    );
    for bucket in &config.external_buckets {
        tracing::info!(bucket = %bucket.bucket, endpoint = %bucket.endpoint, remote_bucket = %bucket.remote_bucket, "Writers deliver this bucket to an external S3 service.");
    }
    let firehose_metrics = FirehoseMetrics::default();
    firehose_metrics.register(&mut metrics);
    let appfabric_metrics = AppFabricMetrics::default();
    appfabric_metrics.register(&mut metrics);
    let delivery_signal = delivery.clone();
    let firehose = Arc::new(Wakers::default());
    let sinks = Sinks {
        kinesis: Arc::new(LocalStreams::new(store.clone())),
        firehose: Arc::new(LocalDeliveryStreams::new(store.clone(), firehose.clone())),
        objects: Arc::new(ObjectSink::new(storage.clone(), objects.clone())),
    };
    let lake_files = Arc::new(crate::services::cloudtrail::LakeFiles::new(
        store.clone(),
        data_path,
    ));
    let deps = Deps {
        objects: objects.clone(),
        storage: storage.clone(),
        external_buckets: config
            .external_buckets
            .iter()
            .map(|bucket| bucket.bucket.clone())
            .collect(),
        store: store.clone(),
        tokens: TokenSigner::new(token_key.into_bytes()),
        delivery: delivery.clone(),
        firehose: firehose.clone(),
        sinks: sinks.clone(),
        apps: Arc::new(Apps::new(config.appfabric.app_endpoints.clone())),
        authenticator: config.authenticator.clone(),
        data_dir: data_path.map(std::path::Path::to_path_buf),
        lake_files: lake_files.clone(),
        leases: leases.clone(),
    };
    let appfabric = appfabric::Deps::new(deps.clone(), credentials);
    if config.pause_delivery {
        tracing::warn!("Delivery is paused (--pause-delivery): accepted data waits in its delivery queues and the Firehose buffers.");
    } else {
        tokio::spawn(Pipeline::new(store.clone(), sinks, delivery.clone(), leases.clone()).run());
        tokio::spawn(
            Deliveries::new(
                store.clone(),
                deps.storage.clone(),
                firehose,
                firehose_metrics,
                leases.clone(),
            )
            .run(),
        );
        tokio::spawn(
            AppFabricDelivery::new(
                appfabric.clone(),
                config.appfabric.clone(),
                appfabric_metrics,
            )
            .run(),
        );
    }

    tokio::spawn(Sweeper::new(store.clone(), config.sweep_interval, leases.clone()).run());

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local = listener.local_addr()?;
    let registry = registry(&deps, &appfabric);
    if config.authenticator.is_strict() {
        tracing::info!("Strict auth: every request's SigV4 signature is verified.");
    } else {
        tracing::warn!("Emulator mode: any access key is accepted and secrets are not checked. Use --auth strict in production.");
    }
    tracing::info!(node = leases.node(), data_dir = ?config.data_dir, store = ?config.store, services = ?registry.names(), "Sluice is ready.");
    let shutdown = shutdown_signal(config.exit_with_stdin)?;
    // The first line on stdout is the address, so that scripts and tests can find a port 0 bind.
    println!("sluice listening on http://{local}");

    let state = Arc::new(AppState {
        registry,
        authenticator: config.authenticator,
        store,
        store_kind,
        leases,
        reset_hooks: vec![objects, delivery_signal, lake_files],
        metrics: Arc::new(metrics),
        allowed_origins: config.allowed_origins,
        loopback: local.ip().is_loopback(),
        body_budget: AppState::body_budget(&config.limits),
        limits: config.limits,
    });
    serve(listener, state, shutdown).await?;
    tracing::info!("Sluice stopped.");
    Ok(())
}

/// Completes on Ctrl-C, SIGTERM, or (when asked) the end of standard input.
///
/// The signal handlers are installed here, before the future is first polled, so that a signal
/// arriving right after the "listening" line is already a graceful shutdown.
fn shutdown_signal(exit_with_stdin: bool) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt =
        signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    Ok(async move {
        let stdin_closed = async {
            if !exit_with_stdin {
                return std::future::pending::<()>().await;
            }
            let mut stdin = tokio::io::stdin();
            let mut buffer = [0u8; 256];
            while matches!(stdin.read(&mut buffer).await, Ok(n) if n > 0) {}
        };
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("Ctrl-C received; shutting down."),
            _ = terminate.recv() => tracing::info!("SIGTERM received; shutting down."),
            () = stdin_closed => tracing::info!("Standard input closed; shutting down."),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::CACHED_KINDS;
    use crate::services::cloudtrail::records::{
        CHANNEL, CHANNEL_SET, EVENT_DATA_STORE, EVENT_DATA_STORE_SET,
    };

    /// See [`CACHED_KINDS`]: a guard and its set are read from the same place.
    #[test]
    fn set_guards_are_cached_with_their_sets() {
        for (set, guard) in [
            (EVENT_DATA_STORE, EVENT_DATA_STORE_SET),
            (CHANNEL, CHANNEL_SET),
        ] {
            assert_eq!(
                CACHED_KINDS.contains(&set),
                CACHED_KINDS.contains(&guard),
                "{set} and {guard}"
            );
        }
    }
}
