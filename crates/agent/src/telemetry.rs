//! The agent's own Prometheus metrics (prometheus-client), served at `/metrics`.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

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
    /// Operator: cost and advisor gauges (see [`crate::cost`], [`crate::advisor`]).
    pub operator: OperatorMetrics,
}

/// Gauges and counters of the cost report and the advisor.
#[derive(Debug, Default)]
pub struct OperatorMetrics {
    /// What the pool's instances cost per hour now, at the price table.
    pub pool_cost_per_hour: Family<PoolLabel, Gauge<f64, AtomicU64>>,
    /// Ready capacity above demand, as a share of billed instances (0..1).
    pub pool_idle_ratio: Family<PoolLabel, Gauge<f64, AtomicU64>>,
    /// Tokens the advisor used.
    pub advisor_tokens: Counter,
    /// Answers of the advisor by outcome (`proposed`, `rejected`, `failed`).
    pub advisor_answers: Family<OutcomeLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

impl OperatorMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "pool_cost_per_hour",
            "What the pool's instances cost per hour now, at the agent's price table",
            self.pool_cost_per_hour.clone(),
        );
        registry.register(
            "pool_idle_ratio",
            "Ready capacity above demand as a share of billed instances (0..1)",
            self.pool_idle_ratio.clone(),
        );
        registry.register(
            "advisor_tokens",
            "Tokens the advisor used (prompt + completion)",
            self.advisor_tokens.clone(),
        );
        registry.register(
            "advisor_answers",
            "Answers of the advisor by outcome (proposed, rejected, failed)",
            self.advisor_answers.clone(),
        );
    }
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
        let operator = OperatorMetrics::default();
        operator.register(&mut registry);
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
            operator,
        }
    }

    pub fn set_pool_cost(&self, pool: &str, per_hour: f64, idle_ratio: f64) {
        let l = PoolLabel { pool: pool.into() };
        self.operator
            .pool_cost_per_hour
            .get_or_create(&l)
            .set(per_hour);
        self.operator
            .pool_idle_ratio
            .get_or_create(&l)
            .set(idle_ratio);
    }

    pub fn forget_pool_cost(&self, pool: &str) {
        let l = PoolLabel { pool: pool.into() };
        self.operator.pool_cost_per_hour.remove(&l);
        self.operator.pool_idle_ratio.remove(&l);
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
