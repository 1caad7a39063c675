//! The agent's own Prometheus metrics (prometheus-client), served at `/metrics`.
//!
//! `/metrics` needs no token, so what it shows to anyone names no pool: the agent-wide
//! series live in one registry, the per-pool series (`pool` label) in another that is
//! only encoded for a scrape with the admin token ([`Telemetry::encode_with_pools`]).

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
    /// Agent-wide series: served to anyone.
    registry: Mutex<Registry>,
    /// Per-pool series: served only with the admin token.
    pool_registry: Mutex<Registry>,
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
    /// Tune searches running now.
    pub tune_searching: Gauge,
    /// Tune jobs accepted (or resumed) and waiting for a search slot.
    pub tune_waiting: Gauge,
    /// Tune jobs this agent ended, by outcome (`done`, `failed`).
    pub tune_jobs: Family<OutcomeLabel, Counter>,
    /// Tune jobs this agent took over from an agent session that was gone.
    pub tune_resumed: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

impl OperatorMetrics {
    fn register(&self, registry: &mut Registry, per_pool: &mut Registry) {
        per_pool.register(
            "pool_cost_per_hour",
            "What the pool's instances cost per hour now, at the agent's price table",
            self.pool_cost_per_hour.clone(),
        );
        per_pool.register(
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
        registry.register(
            "tune_searching",
            "Tune searches running now (at most [tune] searches)",
            self.tune_searching.clone(),
        );
        registry.register(
            "tune_waiting",
            "Tune jobs waiting for a search slot (at most [tune] max_waiting, resumed jobs beside)",
            self.tune_waiting.clone(),
        );
        registry.register(
            "tune_jobs",
            "Tune jobs this agent ended, by outcome (done, failed)",
            self.tune_jobs.clone(),
        );
        registry.register(
            "tune_resumed",
            "Tune jobs this agent took over and resumed after their agent stopped",
            self.tune_resumed.clone(),
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
        let mut per_pool = Registry::with_prefix("flexus_agent");
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
        per_pool.register(
            "pool_desired_instances",
            "Instances the last decision asked for",
            desired.clone(),
        );
        per_pool.register(
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
        operator.register(&mut registry, &mut per_pool);
        Self {
            registry: Mutex::new(registry),
            pool_registry: Mutex::new(per_pool),
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

    /// OpenMetrics text of the agent-wide series: no pool name in it.
    pub fn encode(&self) -> String {
        self.encode_registries(&[&self.registry])
    }

    /// OpenMetrics text of every series, the per-pool ones too (for the admin's scrape).
    pub fn encode_with_pools(&self) -> String {
        self.encode_registries(&[&self.registry, &self.pool_registry])
    }

    fn encode_registries(&self, registries: &[&Mutex<Registry>]) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        let mut encoded = Ok(());
        for r in registries {
            let reg = r.lock().unwrap_or_else(|p| p.into_inner());
            encoded = encoded.and_then(|()| encode_registry(&mut out, &reg));
        }
        if encoded.and_then(|()| encode_eof(&mut out)).is_err() {
            out.clear();
        }
        out
    }
}
