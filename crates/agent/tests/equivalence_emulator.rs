//! One policy path, through the emulator: the agent's real reconcile pass
//! ([`Context::reconcile`] — the store, the signed ECS/CES client over loopback HTTP,
//! creates and deletes through the ECS API) against a flexus-emulator whose workload
//! driver replays a busy hour of `nasa-http-1995`, and the simulator
//! (`flexus_sim::replay::run` with `PolicyAutoscaler`) replaying the same hour with the
//! same policy and flavor, must make the same decision at every evaluation and see the
//! same ready count — and the emulator's pool must have served with the same ready
//! instances as the replay's at every 15-second step.
//!
//! Both clocks are stepped together (`common/lockstep.rs`), so the test neither sleeps
//! nor depends on wall-clock speed.
//!
//! What is the same on both sides, by construction rather than by tuning:
//! - the load: the emulator's `trace` shape and the test load and scale the trace
//!   through `flexus_sim::trace` identically (p99.9 at [`PEAK`] instances); a
//!   per-minute trace is constant over the 15 s step both sides serve at;
//! - the capacity model: `flexus_sim::capacity::pool_metrics` with the backlog carried
//!   from step to step, at a 15 s step on both sides (the emulator's
//!   `metric_interval_s` is the replay's `tick_s`);
//! - the instance lifecycle: boot and warm-up come from the flavor in
//!   `flexus_sim::capacity` on both sides (the emulator has no boot override here), the
//!   pool spec tells the agent the same warm-up, deletes take effect at once, and a
//!   scale-in removes the newest instances;
//! - the metric sampling: one CPU sample per 15 s step, visible at once — the agent
//!   reads raw Cloud Eye points (`period = 1`), the replay publishes 15 s periods with no
//!   delay; the policy declares that period, no delivery delay and its staleness limit
//!   (and the same with 1-minute averages: below).
//!
//! The test compares, minute by minute, the desired count, the ready count the decision
//! saw, and — wherever the agent logged its decision record (it logs one when the
//! decision's summary changes) — the CPU value the engine read and its recommendation;
//! and, every 15 s, the ready instances the emulator served with against the replay's.
//!
//! What differs, and why it does not change a decision here (also in
//! `docs/design/simulator.md` § Equivalence through the emulator):
//! - an observation's timestamp: Cloud Eye stamps a raw sample at its instant (the
//!   start of the step), the replay stamps a period at its end, 15 s later. The policy
//!   reads the latest CPU reading only (no aggregation window, no trend), and the age
//!   stays far inside `stale_after` on both sides. A trend or an aggregation window would
//!   also see different sets of points: the agent keeps one pulled reading per pass, the
//!   replay every published period.
//! - the agent averages each ready instance's latest sample, the replay reports the
//!   pool's per-instance figure: equal, since every serving instance carries the same
//!   share, and every instance the agent counts as ready served in the latest sample
//!   (x1.2u.4g: boot 45 s + warm-up 20 s; ready at the second pass after launch).
//! - floating point: a mean of equal values is summed in another order (a few ulps; the
//!   values are compared to 1e-9 relative), which could only matter at an exact
//!   rounding boundary of the desired count.
//!
//! With 1-minute periods on both sides (the agent's Cloud Eye reads at `period = 60`,
//! the replay's `metric_period_s = 60`) the same holds: Cloud Eye averages each instance
//! over the minute (a warming instance reports its idle figures) and the agent means
//! those over the instances it counts as ready; the replay's monitor does exactly that
//! (`flexus_sim::replay`'s `Monitor`). Before it did, it averaged the pool's
//! per-instance CPU over the minute's ticks, which reads higher in the minute after new
//! instances become ready (at minute 3 of this hour 43.98 % against the agent's
//! 42.10 %), and 16 of the 60 decisions differed.
//!
//! Prediction is not part of this policy: the forecaster's equivalence is
//! `equivalence.rs` (in-process, a scripted pool).

mod common;

use std::sync::Arc;

use common::create_request;
use common::lockstep::Lockstep;
use flexus_agent::runtime::PoolKey;
use flexus_agent::store::{Expect, SqliteStore, Store};
use flexus_api::{TAG_NAMESPACE, TAG_POOL, TAG_TEMPLATE};
use flexus_cloud::{BatchMetricQuery, CreateServersRequest, Dimension, Filter, MetricId};
use flexus_sim::capacity::Flavor;
use flexus_sim::policy::PolicyAutoscaler;
use flexus_sim::replay::{Autoscaler, Foresight, Observation, SimOptions};
use flexus_sim::trace::Trace;
use serde_json::json;

const TRACE: &str = "nasa-http-1995";
const FLAVOR: &str = "x1.2u.4g";
/// The trace is scaled so that its 99.9th percentile needs this many instances.
const PEAK: u32 = 20;
/// Evaluations in the hour (one a minute).
const EVALUATIONS: usize = 60;
/// The emulator's sample step and the replay's tick (s).
const STEP_S: u32 = 15;
const NS: &str = "team-a";
const POOL: &str = "web";

/// Start of the replayed hour on both clocks (Unix ms): a minute boundary in the future
/// of the wall clock the emulator starts at (its clock only moves forward).
fn start_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    (now / 60_000 + 10) * 60_000
}

/// The policy, reading Cloud Eye CPU at `period_s`-second periods.
fn policy_json(period_s: u32) -> serde_json::Value {
    json!({
        "strategy": "target_tracking",
        "evaluation_interval": "60s",
        "tolerance": 0.05,
        "bounds": {"min": 1, "max": 40},
        "metrics": [{"name": "cpu", "kind": "cpu",
                     "source": {"type": "cloud_eye", "namespace": "SYS.ECS", "metric_name": "cpu_util"},
                     "target": 60, "period": format!("{period_s}s"), "delivery_delay": "0s", "stale_after": "2m"}],
        "scale_out": {"stabilisation_window": "0s", "cooldown": "0s"},
        "scale_in": {"stabilisation_window": "3m",
                     "policies": [{"type": "percent", "value": 50, "period": "1m"}]}
    })
}

fn pool_spec(flavor: &Flavor) -> flexus_api::PoolSpec {
    serde_json::from_value(json!({
        "flavor": flavor.name, "image": "img-ubuntu-22", "vpc_id": "vpc-1",
        "subnet_ids": ["subnet-1"], "availability_zones": ["cn-north-4a"],
        "min_size": 1, "max_size": 40,
        "boot_seconds": flavor.boot_s as u32, "warmup_seconds": flavor.warmup_s as u32
    }))
    .expect("pool spec")
}

/// The trace scaled as the emulator's `peak_instances` scales it, and the offset (in
/// steps) of its busiest-moving hour: the one whose per-minute rate spans the widest
/// range, so the pool has to follow it both ways.
fn trace_and_hour(flavor: &Flavor) -> (Trace, usize) {
    let t = flexus_sim::trace::load(TRACE)
        .expect("built-in trace")
        .scaled_to_fleet(flavor, PEAK);
    assert_eq!(t.step_s, 60, "{TRACE} is a per-minute trace");
    assert!(!t.interpolated());
    let hour = (0..t.rps.len() / 60)
        .max_by(|&a, &b| {
            let span = |h: usize| {
                let w = &t.rps[h * 60..h * 60 + 60];
                let hi = w.iter().copied().fold(f64::MIN, f64::max);
                let lo = w.iter().copied().fold(f64::MAX, f64::min);
                hi - lo
            };
            span(a).total_cmp(&span(b))
        })
        .expect("a whole hour");
    (t, hour * 60)
}

/// What one evaluation produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    desired: u32,
    ready: u32,
}

/// What one evaluation read: the CPU value the engine used (none when it had no
/// reading) and the recommendation it made of it, before stabilisation and rate limits.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Input {
    cpu: Option<f64>,
    recommendation: u32,
}

impl Input {
    fn of(decision: &serde_json::Value) -> Self {
        Self {
            cpu: decision["proposals"][0]["value"].as_f64(),
            recommendation: decision["recommendation"]
                .as_u64()
                .and_then(|r| u32::try_from(r).ok())
                .expect("a recommendation"),
        }
    }

    /// The same reading, but for the order of a mean's additions.
    fn matches(&self, other: &Input) -> bool {
        let close = match (self.cpu, other.cpu) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
            (a, b) => a == b,
        };
        close && self.recommendation == other.recommendation
    }
}

/// `PolicyAutoscaler`, recording every decision's desired count, the ready count and
/// what the decision read.
struct Recording {
    inner: PolicyAutoscaler,
    steps: Vec<Step>,
    inputs: Vec<Input>,
}

impl Autoscaler for Recording {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn interval_s(&self) -> f64 {
        self.inner.interval_s()
    }
    fn prepare(&mut self, f: &Foresight<'_>) -> Result<(), flexus_sim::SimError> {
        self.inner.prepare(f)
    }
    fn decide(&mut self, obs: &Observation<'_>) -> Result<Option<u32>, flexus_sim::SimError> {
        let out = self.inner.decide(obs)?;
        let decision = self.inner.last_decision().expect("a decision");
        self.steps.push(Step {
            desired: decision.desired,
            ready: obs.pool.ready,
        });
        self.inputs
            .push(Input::of(&serde_json::to_value(decision).expect("json")));
        Ok(out)
    }
}

/// One side's hour: the decisions, what each read, and the ready instances of every
/// 15 s step.
struct Side {
    steps: Vec<Step>,
    /// By evaluation; `None` where the agent logged no decision record (it logs one
    /// when the decision's summary changes).
    inputs: Vec<Option<Input>>,
    ready: Vec<u32>,
}

/// The simulator's side: the hour replayed with `PolicyAutoscaler`, monitoring
/// published every `period_s` seconds.
fn simulator(hour: &Trace, flavor: &Flavor, initial: u32, period_s: u32) -> Side {
    let mut options = SimOptions::new(flavor.clone());
    options.tick_s = f64::from(STEP_S);
    options.metric_period_s = f64::from(period_s);
    options.metric_delay_s = 0.0;
    options.min_instances = 1;
    options.max_instances = 40;
    options.initial_instances = Some(initial);
    let policy = serde_json::from_value(policy_json(period_s)).expect("policy");
    let mut rec = Recording {
        inner: PolicyAutoscaler::new("policy", policy).expect("policy compiles"),
        steps: Vec::new(),
        inputs: Vec::new(),
    };
    let run = flexus_sim::replay::run(hour, &mut rec, &options).expect("replay");
    Side {
        steps: rec.steps,
        inputs: rec.inputs.into_iter().map(Some).collect(),
        ready: run.series.supply,
    }
}

/// The pool's first instances, made through the ECS API with the pool's tags two
/// minutes before the hour, so that they are ready when it starts (as the replay's are).
async fn initial_instances(ls: &Lockstep, spec: &flexus_api::PoolSpec, count: u32) {
    let template = spec.template_hash();
    let req = CreateServersRequest {
        availability_zone: Some("cn-north-4a".into()),
        ..create_request(
            spec,
            &format!("{NS}-{POOL}"),
            &[
                (TAG_NAMESPACE, NS),
                (TAG_POOL, POOL),
                (TAG_TEMPLATE, &template),
            ],
            count,
        )
    };
    ls.cloud()
        .create_servers(&req)
        .await
        .expect("initial create");
}

/// The agent's side: the pool and policy in its store, the emulator replaying the hour,
/// one reconcile pass a minute, Cloud Eye read at `period_s`-second periods (raw samples
/// at the emulator's 15 s step); the ready instances are the emulator's at every 15 s
/// sample (read back through Cloud Eye).
async fn agent(flavor: &Flavor, hour_offset: usize, initial: u32, period_s: u32) -> Side {
    let start = start_ms();
    let ls = Lockstep::start(STEP_S, start - 120_000).await;
    let spec = pool_spec(flavor);
    initial_instances(&ls, &spec, initial).await;
    ls.step_to(start).await;
    // t = 0 of the shape is the emulator's now (a millisecond before the hour): the
    // sample at the hour's instant t reads the trace at t + 1 ms, the same minute.
    ls.emu
        .control(
            reqwest::Method::POST,
            "/_emulator/workload",
            json!({"pool": POOL, "shape": {"kind": "trace", "trace": TRACE,
               "peak_instances": PEAK, "flavor": flavor.name,
               "offset_seconds": hour_offset * 60}}),
        )
        .await;

    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.expect("store"));
    let at = flexus_agent::clock::rfc3339(start);
    store
        .put_pool(NS, POOL, &spec, Expect::Any, &at)
        .await
        .unwrap();
    store
        .put_policy(
            NS,
            "web-policy",
            &common::policy(POOL, policy_json(period_s)),
            Expect::Any,
            &at,
        )
        .await
        .unwrap();
    store.sync_leases().await.unwrap();
    let ces_period = if period_s == STEP_S { 1 } else { period_s };
    let ctx = ls.context(store.clone(), ces_period);
    let key = PoolKey::new(NS, POOL);

    let mut steps = Vec::with_capacity(EVALUATIONS);
    let mut inputs = Vec::with_capacity(EVALUATIONS);
    for k in 0..EVALUATIONS as i64 {
        let now = start + k * 60_000;
        ls.step_to(now).await;
        ctx.reconcile(&key)
            .await
            .unwrap_or_else(|e| panic!("pass {k}: {e}"));
        let status = store
            .get_runtime(NS, POOL)
            .await
            .unwrap()
            .expect("a recorded pass")
            .status;
        assert!(status.last_error.is_none(), "pass {k}: {status:?}");
        steps.push(Step {
            desired: status.desired_size.expect("a desired size"),
            ready: status.ready_size,
        });
        let logged = status
            .last_decision
            .filter(|d| d.at == flexus_agent::clock::rfc3339(now));
        inputs.push(logged.map(|d| Input::of(&d.detail)));
    }
    ls.step_to(start + EVALUATIONS as i64 * 60_000).await;
    let served = ls
        .cloud()
        .batch_query_metrics(&BatchMetricQuery {
            metrics: vec![MetricId {
                namespace: "FLEXUS.POOL".into(),
                metric_name: "ready_instances".into(),
                dimensions: vec![Dimension::new("pool", POOL)],
            }],
            from_ms: start,
            to_ms: start + EVALUATIONS as i64 * 60_000,
            period: 1,
            filter: Filter::Average,
        })
        .await
        .expect("the pool's ready instances from Cloud Eye");
    let ready = served[0]
        .datapoints
        .iter()
        .map(|p| p.value as u32)
        .collect();
    Side {
        steps,
        inputs,
        ready,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_against_the_emulator_and_the_simulator_decide_alike_on_a_trace_hour() {
    decide_alike(STEP_S).await;
}

/// Cloud Eye's 1-minute averages: each instance averaged over the minute (a warming one
/// counts its idle samples), the agent meaning them over the instances ready when it
/// reads; the replay's monitor does the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_minute_cloud_eye_averages_they_decide_alike_too() {
    decide_alike(60).await;
}

/// The hour through both sides with monitoring at `period_s`, compared.
async fn decide_alike(period_s: u32) {
    let flavor = flexus_sim::capacity::lookup(FLAVOR).expect("flavor");
    let (trace, offset) = trace_and_hour(&flavor);
    let hour = trace.slice(offset, EVALUATIONS);
    let initial = flavor.demand_instances(hour.rps[0]).max(1);

    let sim = simulator(&hour, &flavor, initial, period_s);
    let agent = agent(&flavor, offset, initial, period_s).await;

    assert_eq!(
        sim.steps.len(),
        EVALUATIONS,
        "the replay evaluates once a minute"
    );
    // What each decision read: the agent's Cloud Eye mean and the replay's published
    // CPU, wherever the agent logged its decision.
    let compared: Vec<(usize, Input, Input)> = agent
        .inputs
        .iter()
        .zip(&sim.inputs)
        .enumerate()
        .filter_map(|(k, (a, s))| Some((k, (*a)?, (*s)?)))
        .collect();
    let differing: Vec<_> = compared.iter().filter(|(_, a, s)| !a.matches(s)).collect();
    assert!(
        differing.is_empty(),
        "the decisions read different inputs (minute, agent, replay): {differing:?}"
    );
    let with_cpu = compared.iter().filter(|(_, a, _)| a.cpu.is_some()).count();
    assert!(
        compared.len() >= EVALUATIONS / 2 && with_cpu + 1 >= compared.len(),
        "too few logged decisions to compare their inputs: {compared:?}"
    );
    let (agent, sim, emu_ready, sim_ready) = (agent.steps, sim.steps, agent.ready, sim.ready);
    let first = agent.iter().zip(&sim).position(|(a, s)| a != s);
    assert_eq!(
        first,
        None,
        "decisions differ from minute {first:?}:\nagent {:?}\nsim   {:?}",
        agent
            .iter()
            .map(|s| (s.desired, s.ready))
            .collect::<Vec<_>>(),
        sim.iter().map(|s| (s.desired, s.ready)).collect::<Vec<_>>()
    );
    assert_eq!(
        emu_ready.len(),
        sim_ready.len(),
        "one emulator sample per replay tick"
    );
    let first = emu_ready.iter().zip(&sim_ready).position(|(a, s)| a != s);
    assert_eq!(
        first, None,
        "ready instances differ from step {first:?}:\nemulator {emu_ready:?}\nreplay   {sim_ready:?}"
    );
    // Not a quiet hour: the pool grew and shrank, and new instances became ready.
    let desired: Vec<u32> = agent.iter().map(|s| s.desired).collect();
    let grew = desired.windows(2).any(|w| w[1] > w[0]);
    let shrank = desired.windows(2).any(|w| w[1] < w[0]);
    assert!(
        grew && shrank,
        "the pool should move both ways: {desired:?}"
    );
    let ready_max = agent.iter().map(|s| s.ready).max().unwrap_or(0);
    assert!(ready_max > initial, "instances launched in the hour served");
}
