//! The agent's own Prometheus metrics (prometheus-client), served at `/metrics`.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScaleLabel {
    /// `scale_out`, `scale_in`, `replace`.
    pub direction: String,
    /// `submitted`, `succeeded`, `failed`, `abandoned`, `fallback_on_demand`.
    pub outcome: String,
}

/// A namespace (never a pool name: `/metrics` is served without authentication).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabel {
    pub namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabel {
    pub pool: String,
}

/// Metrics of the agent.
#[derive(Debug)]
pub struct Telemetry {
    registry: Mutex<Registry>,
    pub reconcile_duration: Histogram,
    pub reconcile_passes: Counter,
    pub errors: Family<KindLabel, Counter>,
    /// Reconcile passes that panicked, by namespace.
    pub panics: Family<NamespaceLabel, Counter>,
    pub scale_operations: Family<ScaleLabel, Counter>,
    pub desired: Family<PoolLabel, Gauge>,
    pub current: Family<PoolLabel, Gauge>,
    pub pools: Gauge,
    /// Duration of one forecast fit (on a blocking thread).
    pub forecast_fit_duration: Histogram,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("flexus_agent");
        let reconcile_duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let reconcile_passes = Counter::default();
        let errors = Family::<KindLabel, Counter>::default();
        let panics = Family::<NamespaceLabel, Counter>::default();
        let scale_operations = Family::<ScaleLabel, Counter>::default();
        let desired = Family::<PoolLabel, Gauge>::default();
        let current = Family::<PoolLabel, Gauge>::default();
        let pools = Gauge::default();
        let forecast_fit_duration = Histogram::new(exponential_buckets(0.0001, 2.0, 18));
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile pass",
            reconcile_duration.clone(),
        );
        registry.register(
            "reconcile_passes",
            "Reconcile passes run",
            reconcile_passes.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconcile passes by error kind",
            errors.clone(),
        );
        registry.register(
            "reconcile_panics",
            "Reconcile passes that panicked (caught, logged and retried with backoff), by namespace",
            panics.clone(),
        );
        registry.register(
            "scale_operations",
            "Cloud mutations by direction and outcome",
            scale_operations.clone(),
        );
        registry.register(
            "pool_desired_instances",
            "Instances the last decision asked for",
            desired.clone(),
        );
        registry.register(
            "pool_current_instances",
            "Instances counted toward capacity",
            current.clone(),
        );
        registry.register("pools", "Pools known to the runtime", pools.clone());
        registry.register(
            "forecast_fit_duration_seconds",
            "Duration of one forecast fit of a predictive pool",
            forecast_fit_duration.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            reconcile_duration,
            reconcile_passes,
            errors,
            panics,
            scale_operations,
            desired,
            current,
            pools,
            forecast_fit_duration,
        }
    }

    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// A pass of a pool in namespace `ns` panicked.
    pub fn panic(&self, ns: &str) {
        self.panics
            .get_or_create(&NamespaceLabel {
                namespace: ns.into(),
            })
            .inc();
    }

    pub fn scale(&self, direction: &str, outcome: &str) {
        self.scale_operations
            .get_or_create(&ScaleLabel {
                direction: direction.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn set_pool(&self, pool: &str, desired: u32, current: u32) {
        let l = PoolLabel { pool: pool.into() };
        self.desired.get_or_create(&l).set(desired as i64);
        self.current.get_or_create(&l).set(current as i64);
    }

    pub fn forget_pool(&self, pool: &str) {
        let l = PoolLabel { pool: pool.into() };
        self.desired.remove(&l);
        self.current.remove(&l);
    }

    /// OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &reg).is_err() {
            out.clear();
        }
        out
    }
}
