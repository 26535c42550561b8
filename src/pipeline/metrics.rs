//! Delivery counters per target, exported in the Prometheus text format at
//! `/_sluice/metrics`, so that an operator sees what is delivered, retried, pending and given
//! up on without reading the server log. Counters start at zero when the process starts, as
//! Prometheus expects; the pending gauge is set from the store at start-up.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Target;

/// The labels of every delivery metric: the kind of target and its queue.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// `kinesis`, `firehose` or `s3`.
    pub kind: String,
    /// The queue name ([`Target::queue`]): the target itself, or the bucket.
    pub queue: String,
}

impl From<&Target> for TargetLabels {
    fn from(target: &Target) -> Self {
        Self {
            kind: target.kind().to_owned(),
            queue: target.queue(),
        }
    }
}

/// The delivery metrics, shared by the pipeline's workers and the metrics endpoint.
#[derive(Debug, Clone, Default)]
pub struct DeliveryMetrics {
    /// Entries delivered.
    pub delivered: Family<TargetLabels, Counter>,
    /// Bytes delivered (after encoding).
    pub delivered_bytes: Family<TargetLabels, Counter>,
    /// Failed attempts that were retried.
    pub retries: Family<TargetLabels, Counter>,
    /// Entries moved to the dead letters.
    pub dead_lettered: Family<TargetLabels, Counter>,
    /// Entries waiting in the queue.
    pub pending: Family<TargetLabels, Gauge>,
}

impl DeliveryMetrics {
    /// Adds the metrics to `registry` under `sluice_delivery_*`.
    pub fn register(&self, registry: &mut Registry) {
        let delivery = registry.sub_registry_with_prefix("sluice_delivery");
        delivery.register(
            "delivered",
            "Entries delivered to their target",
            self.delivered.clone(),
        );
        delivery.register(
            "delivered_bytes",
            "Bytes delivered to their target, after encoding",
            self.delivered_bytes.clone(),
        );
        delivery.register(
            "retries",
            "Failed delivery attempts that were retried",
            self.retries.clone(),
        );
        delivery.register(
            "dead_lettered",
            "Deliveries given up on and kept in the dead letters",
            self.dead_lettered.clone(),
        );
        delivery.register(
            "pending",
            "Deliveries accepted and not yet delivered or dead-lettered",
            self.pending.clone(),
        );
    }
}
