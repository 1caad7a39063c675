//! The discrete-time replay: a pool of instances with a lifecycle
//! (booting → warming → ready), a trace offered to it through the capacity
//! model, a monitoring service that publishes period averages after a delay
//! (Cloud Eye 1-minute or 5-minute data: each running instance's own average,
//! meaned over the instances ready when it is read, as the agent reads Cloud Eye),
//! and an [`Autoscaler`] that observes
//! the published data and the pool and returns a desired count, exactly as the
//! agent's observe → decide → act loop does.
//!
//! Timing: the simulation advances in ticks of `tick_s`. At each tick, spot
//! reclamations happen first, then instances whose boot + warm-up has elapsed
//! become ready, then (if due) the autoscaler decides and the pool is resized
//! (launches start booting now; scale-in removes booting instances first,
//! then the newest), then the tick's load is served by the ready instances.
//! Billing is per second from launch (boot included) until removal.

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::SimError;
use crate::capacity::{Flavor, InstanceMetrics, PoolMetrics, idle_metrics, pool_metrics};
use crate::trace::Trace;

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InstanceState {
    /// Launched, OS booting (billed, not serving).
    Booting,
    /// Running, loading (billed, not serving; monitoring sees it idle).
    Warming,
    /// Serving and reporting metrics.
    Ready,
}

/// One simulated instance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SimInstance {
    /// Sequential id.
    pub id: u64,
    /// Launch time (s since trace start; negative for the initial fleet).
    pub launched_s: f64,
    /// When it becomes ready.
    pub ready_s: f64,
    /// Current state.
    pub state: InstanceState,
    /// Bought as spot.
    pub spot: bool,
}

/// One published monitoring datapoint: averages over `[end_s - period_s, end_s)`.
/// Per-instance fields average over ready instances and are meaningless when
/// `ready_instances` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricSample {
    /// End of the averaging period (s since trace start).
    pub end_s: f64,
    /// Length of the period (s).
    pub period_s: f64,
    /// Mean CPU % of ready instances.
    pub cpu_pct: f64,
    /// Mean memory % of ready instances.
    pub mem_pct: f64,
    /// Mean GPU % of ready instances.
    pub gpu_pct: f64,
    /// The flavor's primary utilisation (GPU % on GPU flavors, else CPU %).
    pub utilisation_pct: f64,
    /// Mean p95 response time (ms).
    pub p95_latency_ms: f64,
    /// Offered requests/s to the pool (load balancer count).
    pub request_rps: f64,
    /// Requests queued at the load balancer (mean).
    pub queue_depth: f64,
    /// Mean number of ready instances over the period.
    pub ready_instances: f64,
}

/// Instance counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PoolView {
    /// Booting.
    pub booting: u32,
    /// Warming.
    pub warming: u32,
    /// Ready.
    pub ready: u32,
    /// Spot (any state).
    pub spot: u32,
}

impl PoolView {
    /// All instances (the current capacity, as the agent counts it).
    pub fn total(&self) -> u32 {
        self.booting + self.warming + self.ready
    }
}

/// What an autoscaler sees when it decides.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// Seconds since the trace start.
    pub now_s: f64,
    /// Unix time of `now_s`.
    pub unix: i64,
    /// Unix time of the trace start (`now_s` = 0).
    pub start_unix: i64,
    /// The pool's flavor.
    pub flavor: &'a Flavor,
    /// Counts.
    pub pool: PoolView,
    /// The instances.
    pub instances: &'a [SimInstance],
    /// Every datapoint published so far, oldest first (the last is the latest).
    pub history: &'a [MetricSample],
}

impl Observation<'_> {
    /// The latest published datapoint.
    pub fn latest(&self) -> Option<&MetricSample> {
        self.history.last()
    }
}

/// What the oracle (and only the oracle) may look at before the run.
#[derive(Debug, Clone, Copy)]
pub struct Foresight<'a> {
    /// The whole trace.
    pub trace: &'a Trace,
    /// The run's options.
    pub options: &'a SimOptions,
}

/// Anything that sizes a pool: a baseline, or our policy engine.
pub trait Autoscaler {
    /// Name in the scorecard.
    fn name(&self) -> String;
    /// Seconds between decisions.
    fn interval_s(&self) -> f64;
    /// Called once before the run. Only the oracle uses the future.
    fn prepare(&mut self, _foresight: &Foresight<'_>) -> Result<(), SimError> {
        Ok(())
    }
    /// Returns the desired instance count, or `None` to leave the pool as is.
    fn decide(&mut self, obs: &Observation<'_>) -> Result<Option<u32>, SimError>;
    /// Share of new launches to buy as spot (0..=1); default: the run's option.
    fn spot_fraction(&self) -> Option<f64> {
        None
    }
}

/// Options of a run.
#[derive(Debug, Clone, Serialize)]
pub struct SimOptions {
    /// The pool's flavor.
    pub flavor: Flavor,
    /// Simulation step (s). Decisions happen on tick boundaries.
    pub tick_s: f64,
    /// Monitoring period (60 for CES 1-minute data, 300 for 5-minute).
    pub metric_period_s: f64,
    /// Delay between the end of a period and its datapoint becoming visible.
    pub metric_delay_s: f64,
    /// Pool bounds.
    pub min_instances: u32,
    /// Pool bounds.
    pub max_instances: u32,
    /// Ready instances at the start; `None` = the demand of the first
    /// boot + warm-up window (the same for every policy).
    pub initial_instances: Option<u32>,
    /// Share of launches bought as spot (0..=1), unless the autoscaler says otherwise.
    pub spot_fraction: f64,
    /// Spot reclamations per instance-hour.
    pub spot_hazard_per_hour: f64,
    /// Seed of the reclamation RNG.
    pub seed: u64,
}

impl SimOptions {
    /// Defaults for a flavor: 15 s ticks, CES 1-minute data published 60 s late,
    /// bounds 1..=1000, no spot.
    pub fn new(flavor: Flavor) -> Self {
        SimOptions {
            flavor,
            tick_s: 15.0,
            metric_period_s: 60.0,
            metric_delay_s: 60.0,
            min_instances: 1,
            max_instances: 1000,
            initial_instances: None,
            spot_fraction: 0.0,
            spot_hazard_per_hour: 0.0,
            seed: 1,
        }
    }

    /// Boot + warm-up: how long before a launched instance serves.
    pub fn lead_s(&self) -> f64 {
        self.flavor.boot_s + self.flavor.warmup_s
    }

    /// Checks the options, naming the bad field.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |field: &'static str, reason: &str| {
            Err(SimError::BadOption {
                field,
                reason: reason.to_owned(),
            })
        };
        if !(self.tick_s.is_finite() && self.tick_s > 0.0) {
            return bad("tick_s", "must be positive");
        }
        if !(self.metric_period_s.is_finite() && self.metric_period_s >= self.tick_s) {
            return bad("metric_period_s", "must be at least one tick");
        }
        if !(self.metric_delay_s.is_finite() && self.metric_delay_s >= 0.0) {
            return bad("metric_delay_s", "must be non-negative");
        }
        if self.max_instances < self.min_instances.max(1) {
            return bad("max_instances", "must be ≥ min_instances and ≥ 1");
        }
        if !(0.0..=1.0).contains(&self.spot_fraction) {
            return bad("spot_fraction", "must be within 0..=1");
        }
        if !(self.spot_hazard_per_hour.is_finite() && self.spot_hazard_per_hour >= 0.0) {
            return bad("spot_hazard_per_hour", "must be non-negative");
        }
        Ok(())
    }
}

/// Per-tick record of a run (compact: one entry per tick).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSeries {
    /// Tick length (s).
    pub tick_s: f64,
    /// Offered load per tick (requests/s).
    pub load_rps: Vec<f32>,
    /// Demand (minimal instances meeting the SLO) per tick.
    pub demand: Vec<u32>,
    /// Ready instances per tick (the supply).
    pub supply: Vec<u32>,
    /// All billed instances per tick.
    pub billed: Vec<u32>,
    /// Whether the SLO was met over the tick.
    pub slo_met: Vec<bool>,
    /// What each tick added to the totals (for [`Run::window`]).
    #[serde(skip)]
    pub ticks: Vec<RunTotals>,
}

/// Totals of a run that are not derivable from the series (also what one tick added).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RunTotals {
    /// Money spent (flavor price units), per-second billing incl. boot.
    pub cost: f64,
    /// Requests offered.
    pub offered: f64,
    /// Requests served within the SLO (approximate, from the queueing model).
    pub served_within_slo: f64,
    /// Requests dropped.
    pub dropped: f64,
    /// Times the autoscaler changed the count.
    pub actions: u32,
    /// Instances launched.
    pub launches: u32,
    /// Spot instances reclaimed.
    pub reclaimed: u32,
    /// Decisions taken.
    pub decisions: u64,
}

/// The result of replaying one trace with one autoscaler.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// Autoscaler name.
    pub policy: String,
    /// Trace name.
    pub trace: String,
    /// Per-tick series.
    pub series: RunSeries,
    /// Totals.
    pub totals: RunTotals,
}

impl RunTotals {
    /// Adds what `t` counted (decisions excepted: they are not kept per tick).
    fn add(&mut self, t: &RunTotals) {
        self.cost += t.cost;
        self.offered += t.offered;
        self.served_within_slo += t.served_within_slo;
        self.dropped += t.dropped;
        self.actions += t.actions;
        self.launches += t.launches;
        self.reclaimed += t.reclaimed;
    }

    /// What was counted since `before` (decisions excepted).
    fn since(&self, before: &RunTotals) -> RunTotals {
        RunTotals {
            cost: self.cost - before.cost,
            offered: self.offered - before.offered,
            served_within_slo: self.served_within_slo - before.served_within_slo,
            dropped: self.dropped - before.dropped,
            actions: self.actions - before.actions,
            launches: self.launches - before.launches,
            reclaimed: self.reclaimed - before.reclaimed,
            decisions: 0,
        }
    }
}

impl Run {
    /// The part of the run from tick `from` on, with its totals (decisions are not
    /// kept per tick and count the whole run). Scoring it measures an evaluation
    /// window while every autoscaler kept the state it built before it.
    pub fn window(&self, from: usize) -> Run {
        let s = &self.series;
        let from = from.min(s.demand.len());
        let mut totals = RunTotals {
            decisions: self.totals.decisions,
            ..RunTotals::default()
        };
        for t in s.ticks.get(from..).unwrap_or_default() {
            totals.add(t);
        }
        Run {
            policy: self.policy.clone(),
            trace: self.trace.clone(),
            series: RunSeries {
                tick_s: s.tick_s,
                load_rps: s.load_rps[from..].to_vec(),
                demand: s.demand[from..].to_vec(),
                supply: s.supply[from..].to_vec(),
                billed: s.billed[from..].to_vec(),
                slo_met: s.slo_met[from..].to_vec(),
                ticks: s.ticks.get(from..).unwrap_or_default().to_vec(),
            },
            totals,
        }
    }
}

struct PeriodAcc {
    start_s: f64,
    time: f64,
    ready_time: f64,
    cpu: f64,
    mem: f64,
    gpu: f64,
    p95: f64,
    rps: f64,
    queue: f64,
    ready_sum: f64,
    /// The samples, by id, of each running instance that was not ready all through the
    /// period (one ready all through it reported the pool's per-instance figures).
    instances: Vec<InstanceAcc>,
}

/// One instance's samples within a period (Cloud Eye keeps a series per instance).
#[derive(Debug, Clone, Copy)]
struct InstanceAcc {
    id: u64,
    time: f64,
    /// Time-weighted sums of CPU, memory and GPU %.
    sums: [f64; 3],
}

impl PeriodAcc {
    fn new(start_s: f64) -> Self {
        PeriodAcc {
            start_s,
            time: 0.0,
            ready_time: 0.0,
            cpu: 0.0,
            mem: 0.0,
            gpu: 0.0,
            p95: 0.0,
            rps: 0.0,
            queue: 0.0,
            ready_sum: 0.0,
            instances: Vec::new(),
        }
    }

    /// Adds one tick of every running instance that has not been ready since the
    /// period began: a ready one reports the pool's per-instance figures, a warming one
    /// the flavor's idle figures, a booting one nothing.
    fn add_instances(
        &mut self,
        instances: &[SimInstance],
        ready: &InstanceMetrics,
        idle: &InstanceMetrics,
        tick: f64,
    ) {
        for i in instances {
            let m = match i.state {
                InstanceState::Booting => continue,
                InstanceState::Warming => idle,
                InstanceState::Ready if ready_all_period(i, self.start_s) => continue,
                InstanceState::Ready => ready,
            };
            let at = match self.instances.binary_search_by_key(&i.id, |a| a.id) {
                Ok(at) => at,
                Err(at) => {
                    self.instances.insert(
                        at,
                        InstanceAcc {
                            id: i.id,
                            time: 0.0,
                            sums: [0.0; 3],
                        },
                    );
                    at
                }
            };
            let a = &mut self.instances[at];
            a.time += tick;
            for (sum, v) in a.sums.iter_mut().zip([m.cpu_pct, m.mem_pct, m.gpu_pct]) {
                *sum += v * tick;
            }
        }
    }
}

/// Whether `i` has been ready since `start_s` (so it reported the pool's per-instance
/// figures at every tick since).
fn ready_all_period(i: &SimInstance, start_s: f64) -> bool {
    i.ready_s <= start_s + 1e-9
}

/// Demand (instances) of a rate, given the flavor's SLO rate per instance.
pub fn demand_for(rps: f64, per_instance_at_slo: f64) -> u32 {
    if rps <= 0.0 || per_instance_at_slo <= 0.0 {
        return 0;
    }
    let n = (rps / per_instance_at_slo - 1e-9).ceil();
    if n >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        n.max(1.0) as u32
    }
}

/// Mean load of the trace over `[t0, t1)` (exact for both step shapes: the rate is
/// integrated piece by piece between step edges and, on interpolated traces, step
/// centres too, where [`Trace::rate_at`] is linear).
pub fn mean_rate(trace: &Trace, t0: f64, t1: f64) -> f64 {
    let step = f64::from(trace.step_s);
    let half = if trace.interpolated() {
        step / 2.0
    } else {
        step
    };
    let mut t = t0;
    let mut acc = 0.0;
    while t < t1 - 1e-9 {
        let k = (t / half).floor();
        let edge = ((k + 1.0) * half).min(t1);
        let at = if trace.interpolated() {
            (t + edge) / 2.0
        } else {
            t
        };
        acc += trace.rate_at(at) * (edge - t);
        t = edge;
    }
    if t1 > t0 {
        acc / (t1 - t0)
    } else {
        trace.rate_at(t0)
    }
}

/// Demand at each tick of a run (used by the oracle and the scorecard alike).
pub fn demand_series(trace: &Trace, options: &SimOptions) -> Vec<u32> {
    demand_of(&tick_rates(trace, options), options)
}

/// Mean load of each tick of a run.
fn tick_rates(trace: &Trace, options: &SimOptions) -> Vec<f64> {
    let n = (trace.duration_s() / options.tick_s).ceil() as usize;
    (0..n)
        .map(|k| {
            let t = k as f64 * options.tick_s;
            mean_rate(trace, t, t + options.tick_s)
        })
        .collect()
}

fn demand_of(rates: &[f64], options: &SimOptions) -> Vec<u32> {
    let per = options.flavor.rps_at_slo();
    rates.iter().map(|&r| demand_for(r, per)).collect()
}

/// Ready instances at the start of a run: `initial_instances`, or else the
/// highest demand of the first boot + warm-up window (the same for every
/// policy), within the pool bounds.
pub fn initial_ready(demand: &[u32], options: &SimOptions) -> u32 {
    let lead_ticks = (options.lead_s() / options.tick_s).ceil() as usize;
    let initial = options.initial_instances.unwrap_or_else(|| {
        demand[..(lead_ticks + 1).min(demand.len())]
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
    });
    initial.clamp(options.min_instances, options.max_instances)
}

/// Replays `trace` with `autoscaler`.
///
/// Each tick: spot reclamation, instance lifecycle, monitoring delivery, the autoscaler's
/// decision (at its interval), serving the tick's load, then monitoring accumulation.
pub fn run(
    trace: &Trace,
    autoscaler: &mut dyn Autoscaler,
    options: &SimOptions,
) -> Result<Run, SimError> {
    options.validate()?;
    let flavor = &options.flavor;
    let tick = options.tick_s;
    let lead = options.lead_s();
    autoscaler.prepare(&Foresight { trace, options })?;
    let interval = autoscaler.interval_s();
    if !(interval.is_finite() && interval > 0.0) {
        return Err(SimError::BadOption {
            field: "interval_s",
            reason: format!("autoscaler {} returned {interval}", autoscaler.name()),
        });
    }
    let spot_fraction = autoscaler
        .spot_fraction()
        .unwrap_or(options.spot_fraction)
        .clamp(0.0, 1.0);
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let p_reclaim = 1.0 - (-options.spot_hazard_per_hour * tick / 3600.0).exp();

    // Each tick's load, integrated once (the demand and the serving step both use it).
    let rates = tick_rates(trace, options);
    let demand = demand_of(&rates, options);
    let mut fleet = Fleet::new(initial_ready(&demand, options), lead);
    let mut series = RunSeries::with_capacity(tick, demand.len());
    let mut totals = RunTotals::default();
    let mut monitor = Monitor::new(trace, options);
    let mut backlog = 0.0;
    let mut next_decision = 0.0;
    let cost_tick = (flavor.cost(tick, true), flavor.cost(tick, false));

    for (k, (&d, &rate)) in demand.iter().zip(&rates).enumerate() {
        let now = k as f64 * tick;
        let before_tick = totals;
        // 1. Spot reclamation, 2. lifecycle, and the datapoints whose delay has elapsed.
        let reclaimed = fleet.reclaim(&mut rng, p_reclaim);
        totals.reclaimed += reclaimed;
        let mut changed = reclaimed > 0;
        fleet.advance(now, flavor.boot_s);
        monitor.deliver(now, options.metric_delay_s, &fleet.instances);
        let mut view = pool_view(&fleet.instances);
        // 3. Decide and act.
        if now + 1e-9 >= next_decision {
            next_decision += interval;
            totals.decisions += 1;
            let obs = Observation {
                now_s: now,
                unix: trace.start_unix + now as i64,
                start_unix: trace.start_unix,
                flavor,
                pool: view,
                instances: &fleet.instances,
                history: &monitor.published,
            };
            if let Some(want) = autoscaler.decide(&obs)? {
                let want = want.clamp(options.min_instances, options.max_instances);
                let launch = Launch {
                    now,
                    lead,
                    spot_fraction,
                };
                changed |= fleet.resize(want, view, launch, &mut totals);
            }
        }
        // 4. Serve the tick's load.
        if changed {
            view = pool_view(&fleet.instances);
        }
        fleet.pending_any = view.booting + view.warming > 0;
        let pm = pool_metrics(rate, view.ready, flavor, backlog, tick);
        backlog = pm.queue_depth;
        totals.offered += rate * tick;
        totals.dropped += pm.dropped;
        totals.served_within_slo += pm.served_rps * tick * (1.0 - pm.violating_fraction);
        totals.cost +=
            f64::from(view.spot) * cost_tick.0 + f64::from(view.total() - view.spot) * cost_tick.1;
        series.load_rps.push(rate as f32);
        series.demand.push(d);
        series.supply.push(view.ready);
        series.billed.push(view.total());
        series.slo_met.push(pm.slo_met);
        series.ticks.push(totals.since(&before_tick));
        // 5. Monitoring accumulation.
        monitor.record(now, tick, rate, &fleet.instances, view.ready, &pm);
    }
    Ok(Run {
        policy: autoscaler.name(),
        trace: trace.name.clone(),
        series,
        totals,
    })
}

impl RunSeries {
    fn with_capacity(tick_s: f64, n: usize) -> Self {
        RunSeries {
            tick_s,
            load_rps: Vec::with_capacity(n),
            demand: Vec::with_capacity(n),
            supply: Vec::with_capacity(n),
            billed: Vec::with_capacity(n),
            slo_met: Vec::with_capacity(n),
            ticks: Vec::with_capacity(n),
        }
    }
}

/// Where and how new instances start: launch time, boot + warm-up lead, spot share.
#[derive(Clone, Copy)]
struct Launch {
    now: f64,
    lead: f64,
    spot_fraction: f64,
}

/// The simulated pool's instances.
struct Fleet {
    instances: Vec<SimInstance>,
    next_id: u64,
    /// Something is booting or warming (the lifecycle pass is skipped otherwise).
    pending_any: bool,
}

impl Fleet {
    /// `initial` on-demand instances, ready at time 0 (launched `lead` seconds before).
    fn new(initial: u32, lead: f64) -> Self {
        let mut instances = Vec::with_capacity(initial as usize * 2);
        instances.extend((0..u64::from(initial)).map(|id| SimInstance {
            id,
            launched_s: -lead,
            ready_s: 0.0,
            state: InstanceState::Ready,
            spot: false,
        }));
        Fleet {
            instances,
            next_id: u64::from(initial),
            pending_any: false,
        }
    }

    /// Removes each spot instance with probability `p`; returns how many went.
    fn reclaim(&mut self, rng: &mut ChaCha8Rng, p: f64) -> u32 {
        if p <= 0.0 {
            return 0;
        }
        let before = self.instances.len();
        self.instances
            .retain(|i| !(i.spot && rng.random::<f64>() < p));
        (before - self.instances.len()) as u32
    }

    /// Moves starting instances along booting → warming → ready.
    fn advance(&mut self, now: f64, boot_s: f64) {
        if !self.pending_any {
            return;
        }
        for i in &mut self.instances {
            if i.state != InstanceState::Ready {
                i.state = if now >= i.ready_s - 1e-9 {
                    InstanceState::Ready
                } else if now >= i.launched_s + boot_s - 1e-9 {
                    InstanceState::Warming
                } else {
                    InstanceState::Booting
                };
            }
        }
    }

    /// Launches or removes instances to reach `want`; true when anything changed.
    fn resize(&mut self, want: u32, view: PoolView, at: Launch, totals: &mut RunTotals) -> bool {
        let have = view.total();
        if want > have {
            totals.actions += 1;
            let mut spot_count = view.spot;
            for j in 0..(want - have) {
                let total_after = have + j + 1;
                let spot =
                    f64::from(spot_count) + 1.0 <= at.spot_fraction * f64::from(total_after) + 1e-9;
                spot_count += u32::from(spot);
                self.instances.push(SimInstance {
                    id: self.next_id,
                    launched_s: at.now,
                    ready_s: at.now + at.lead,
                    state: if at.lead > 0.0 {
                        InstanceState::Booting
                    } else {
                        InstanceState::Ready
                    },
                    spot,
                });
                self.next_id += 1;
                totals.launches += 1;
            }
            true
        } else if want < have {
            totals.actions += 1;
            remove_instances(&mut self.instances, (have - want) as usize);
            true
        } else {
            false
        }
    }
}

/// Cloud Eye-like monitoring: per-period averages, delivered after the metric delay.
///
/// Pool-level figures (request rate, queue, ready count) are averaged over the period.
/// Per-instance figures (CPU, memory, GPU) are averaged per instance over the samples it
/// reported in the period — a warming instance reports its idle figures, a booting one
/// nothing — and, when the datapoint is delivered, meaned over the instances ready at
/// that moment, as the agent means each ready instance's latest Cloud Eye datapoint.
/// In the period after new instances became ready this reads lower than the pool's
/// per-instance load averaged over the period's ticks: their samples from before they
/// served count.
struct Monitor {
    period_s: f64,
    /// Delivered datapoints (what the autoscaler sees).
    published: Vec<MetricSample>,
    /// Closed periods waiting for their delivery delay.
    pending: std::collections::VecDeque<Pending>,
    acc: PeriodAcc,
    /// What a running instance that does not serve yet reports.
    idle: InstanceMetrics,
    gpu: bool,
}

/// A closed period waiting for its delivery delay.
struct Pending {
    sample: MetricSample,
    /// When the period began.
    start_s: f64,
    /// The period means (id, CPU, memory, GPU) of the instances not ready all through it.
    means: Vec<(u64, [f64; 3])>,
}

impl Monitor {
    fn new(trace: &Trace, options: &SimOptions) -> Self {
        Monitor {
            period_s: options.metric_period_s,
            published: Vec::with_capacity(
                (trace.duration_s() / options.metric_period_s) as usize + 1,
            ),
            pending: std::collections::VecDeque::new(),
            acc: PeriodAcc::new(0.0),
            idle: idle_metrics(&options.flavor),
            gpu: options.flavor.gpus > 0,
        }
    }

    /// Publishes the datapoints whose delay has elapsed at `now`, their per-instance
    /// figures meaned over the instances ready now (the pool's figure when none of
    /// them reported in the period).
    fn deliver(&mut self, now: f64, delay_s: f64, instances: &[SimInstance]) {
        while self
            .pending
            .front()
            .is_some_and(|p| p.sample.end_s + delay_s <= now + 1e-9)
        {
            let Some(Pending {
                sample: mut s,
                start_s,
                means,
            }) = self.pending.pop_front()
            else {
                break;
            };
            let pool = [s.cpu_pct, s.mem_pct, s.gpu_pct];
            let (mut sum, mut n) = ([0.0; 3], 0u32);
            for i in instances.iter().filter(|i| i.state == InstanceState::Ready) {
                let m = if ready_all_period(i, start_s) {
                    pool
                } else if let Ok(at) = means.binary_search_by_key(&i.id, |m| m.0) {
                    means[at].1
                } else {
                    continue; // no sample in that period
                };
                for (acc, v) in sum.iter_mut().zip(m) {
                    *acc += v;
                }
                n += 1;
            }
            if n > 0 {
                let n = f64::from(n);
                s.cpu_pct = sum[0] / n;
                s.mem_pct = sum[1] / n;
                s.gpu_pct = sum[2] / n;
                s.utilisation_pct = if self.gpu { s.gpu_pct } else { s.cpu_pct };
            }
            self.published.push(s);
        }
    }

    /// Adds one served tick to the open period, closing it at the period's end.
    fn record(
        &mut self,
        now: f64,
        tick: f64,
        rate: f64,
        instances: &[SimInstance],
        ready: u32,
        pm: &PoolMetrics,
    ) {
        let gpu = self.gpu;
        let acc = &mut self.acc;
        acc.add_instances(instances, &pm.per_instance, &self.idle, tick);
        acc.time += tick;
        acc.rps += rate * tick;
        acc.queue += pm.queue_depth * tick;
        acc.ready_sum += f64::from(ready) * tick;
        if ready > 0 {
            let m = &pm.per_instance;
            acc.ready_time += tick;
            acc.cpu += m.cpu_pct * tick;
            acc.mem += m.mem_pct * tick;
            acc.gpu += m.gpu_pct * tick;
            acc.p95 += m.p95_latency_ms * tick;
        }
        let end = now + tick;
        if end + 1e-9 >= acc.start_s + self.period_s {
            let rt = acc.ready_time.max(1e-12);
            let cpu = acc.cpu / rt;
            let gpu_pct = acc.gpu / rt;
            let means = acc
                .instances
                .iter()
                .filter(|a| a.time > 0.0)
                .map(|a| (a.id, a.sums.map(|sum| sum / a.time)))
                .collect();
            let sample = MetricSample {
                end_s: end,
                period_s: acc.time,
                cpu_pct: cpu,
                mem_pct: acc.mem / rt,
                gpu_pct,
                utilisation_pct: if gpu { gpu_pct } else { cpu },
                p95_latency_ms: acc.p95 / rt,
                request_rps: acc.rps / acc.time,
                queue_depth: acc.queue / acc.time,
                ready_instances: acc.ready_sum / acc.time,
            };
            self.pending.push_back(Pending {
                sample,
                start_s: acc.start_s,
                means,
            });
            self.acc = PeriodAcc::new(end);
        }
    }
}

fn pool_view(instances: &[SimInstance]) -> PoolView {
    let mut v = PoolView::default();
    for i in instances {
        match i.state {
            InstanceState::Booting => v.booting += 1,
            InstanceState::Warming => v.warming += 1,
            InstanceState::Ready => v.ready += 1,
        }
        if i.spot {
            v.spot += 1;
        }
    }
    v
}

/// Removes `n` instances: booting first, then warming, then the newest ready.
fn remove_instances(instances: &mut Vec<SimInstance>, n: usize) {
    let rank = |s: InstanceState| match s {
        InstanceState::Booting => 0,
        InstanceState::Warming => 1,
        InstanceState::Ready => 2,
    };
    // Sort victims: lowest rank first, newest launch first.
    let mut idx: Vec<usize> = (0..instances.len()).collect();
    idx.sort_by(|&a, &b| {
        let (x, y) = (&instances[a], &instances[b]);
        rank(x.state)
            .cmp(&rank(y.state))
            .then(y.launched_s.total_cmp(&x.launched_s))
            .then(y.id.cmp(&x.id))
    });
    let mut victims: Vec<usize> = idx.into_iter().take(n).collect();
    victims.sort_unstable_by(|a, b| b.cmp(a));
    for v in victims {
        instances.swap_remove(v);
    }
    // Keep launch order stable for determinism.
    instances.sort_by_key(|i| i.id);
}
