//! One policy path: the agent's pass (its forecaster on the store, the observations a
//! pass collects for a push metric, `decide()`, the history it keeps) and the
//! simulator's `PolicyAutoscaler` are fed the same hour-scale request-rate stream and
//! must make the same decisions, tick by tick — the same bucketing, refit schedule,
//! seasonality gate and relative rise (`forecast::predictor::Predictor`), the same
//! freshness rule, the same readings behind the noise headroom and the same `decide()`.
//!
//! The load and the pool are scripted here (instances are ready at once), so what is
//! compared is the decision code of both sides, not the emulator's or the replay's
//! instance lifecycle.

use std::sync::Arc;

use flexus_agent::runtime::PoolKey;
use flexus_agent::runtime::predict::Forecaster;
use flexus_agent::store::{PushedPoint, SqliteStore, Store};
use flexus_policy as fp;
use flexus_sim::replay::{
    Autoscaler, Foresight, InstanceState, MetricSample, Observation, PoolView, SimInstance,
    SimOptions,
};
use serde_json::json;

/// Start of the stream (Unix s), on a 15-minute boundary as the simulator's trace time is.
const START: i64 = 1_780_000_200;
const MINUTES: usize = 6 * 60;

fn policy() -> fp::Policy {
    policy_with_noise(0.5)
}

fn policy_with_noise(noise_headroom: f64) -> fp::Policy {
    serde_json::from_value(json!({
        "strategy": "target_tracking",
        "evaluation_interval": "60s",
        "tolerance": 0.05,
        "bounds": {"min": 1, "max": 200},
        "metrics": [{"name": "rps", "kind": "custom", "source": {"type": "push"},
                     "target": 30, "per_instance": true,
                     "trend_lead": "4m", "trend_window": "5m", "trend_max_raise": 0.2,
                     "noise_headroom": noise_headroom, "noise_window": "30m"}],
        "scale_in": {"stabilisation_window": "3m", "policies": [{"type": "percent", "value": 50, "period": "1m"}]},
        "prediction": {"enabled": true, "mode": "forecast_and_scale", "metric": "rps",
                       "target_per_instance": 33, "lead_time": "10m", "seasonality": ["1h"],
                       "history_window": "1d", "refit_interval": "15m", "max_ratio": 1.3,
                       "relative_rise": true}
    }))
    .expect("policy")
}

/// Requests/s during minute `k`: an hourly wave with a burst every 100 minutes.
fn rate(k: usize) -> f64 {
    let t = k as f64 * 60.0;
    let wave = 600.0 + 400.0 * (std::f64::consts::TAU * t / 3600.0).sin();
    if k % 100 < 7 { wave * 1.6 } else { wave }
}

fn sample(k: usize, ready: u32) -> MetricSample {
    MetricSample {
        end_s: (k as f64 + 1.0) * 60.0,
        period_s: 60.0,
        cpu_pct: 0.0,
        mem_pct: 0.0,
        gpu_pct: 0.0,
        utilisation_pct: 0.0,
        p95_latency_ms: 0.0,
        request_rps: rate(k),
        queue_depth: 0.0,
        ready_instances: f64::from(ready),
    }
}

/// The agent's side: what a pass does with a push metric and a predictive policy.
async fn agent_decisions() -> Vec<u32> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.expect("store"));
    let key = PoolKey::new("team-a", "web");
    let compiled = fp::CompiledPolicy::new(policy()).expect("compiles");
    let forecaster = Forecaster::default();
    let mut history = fp::History::new();
    let mut pushed: Vec<PushedPoint> = Vec::new();
    let mut ready = 20u32;
    let mut out = Vec::with_capacity(MINUTES);
    for k in 0..MINUTES {
        let now = (START + (k as i64 + 1) * 60) * 1000;
        pushed.push(PushedPoint {
            metric: "rps".into(),
            at: now,
            value: rate(k),
        });
        let m = &compiled.policy().metrics[0];
        let from = now
            - m.lookback(compiled.policy().evaluation_interval)
                .as_millis() as i64
            - 60_000;
        let observations: Vec<fp::Observation> = pushed
            .iter()
            .filter(|p| p.at >= from && p.at <= now)
            .map(|p| fp::Observation {
                metric: p.metric.clone(),
                value: p.value,
                at: fp::Timestamp(p.at),
            })
            .collect();
        let forecast = forecaster
            .step(store.as_ref(), &key, compiled.policy(), &pushed, now)
            .await
            .expect("forecaster");
        let decision = fp::decide(
            &compiled,
            &fp::DecisionInput {
                now: fp::Timestamp(now),
                observations: &observations,
                pool: &fp::PoolState::ready(ready, fp::Timestamp(START * 1000)),
                history: &history,
                prediction: forecast.prediction.as_ref(),
            },
        );
        history.record(&decision);
        history.prune(
            fp::Timestamp(now),
            compiled.history_horizon(),
            compiled.trend_samples().max(1),
        );
        ready = decision.desired;
        out.push(decision.desired);
    }
    out
}

/// The simulator's side: `PolicyAutoscaler` with the same stream as published datapoints.
fn simulator_decisions(policy: fp::Policy) -> Vec<u32> {
    let flavor = flexus_sim::capacity::lookup("x1.2u.4g").expect("flavor");
    let mut a = flexus_sim::policy::PolicyAutoscaler::new("policy", policy).expect("policy");
    let mut options = SimOptions::new(flavor.clone());
    options.metric_period_s = 60.0;
    options.metric_delay_s = 0.0;
    let trace =
        flexus_sim::trace::Trace::from_rps("stream", START, 60, (0..MINUTES).map(rate).collect())
            .expect("trace");
    a.prepare(&Foresight {
        trace: &trace,
        options: &options,
    })
    .expect("prepare");
    let mut ready = 20u32;
    let mut history: Vec<MetricSample> = Vec::new();
    let mut out = Vec::with_capacity(MINUTES);
    for k in 0..MINUTES {
        history.push(sample(k, ready));
        let instances: Vec<SimInstance> = (0..u64::from(ready))
            .map(|id| SimInstance {
                id,
                launched_s: -60.0,
                ready_s: 0.0,
                state: InstanceState::Ready,
                spot: false,
            })
            .collect();
        let now_s = (k as f64 + 1.0) * 60.0;
        let obs = Observation {
            now_s,
            unix: START + now_s as i64,
            start_unix: START,
            flavor: &flavor,
            pool: PoolView {
                booting: 0,
                warming: 0,
                ready,
                spot: 0,
            },
            instances: &instances,
            history: &history,
        };
        if let Some(n) = a.decide(&obs).expect("decide") {
            ready = n;
        }
        out.push(ready);
    }
    out
}

#[tokio::test]
async fn the_agents_pass_and_the_simulator_make_the_same_decisions_on_six_hours_of_load() {
    let agent = agent_decisions().await;
    let sim = simulator_decisions(policy());
    let first_difference = agent.iter().zip(&sim).position(|(a, b)| a != b);
    assert_eq!(
        first_difference, None,
        "decisions differ from minute {first_difference:?}:\nagent {agent:?}\nsim   {sim:?}"
    );
    // The stream makes the pool move both ways, and the forecast had history to work on.
    let (lo, hi) = (
        agent.iter().copied().min().unwrap_or(0),
        agent.iter().copied().max().unwrap_or(0),
    );
    assert!(lo * 2 < hi, "the pool should follow the wave: {lo}..{hi}");
    // The noise headroom took part: without it the pool is smaller.
    let quiet = simulator_decisions(policy_with_noise(0.0));
    assert!(
        quiet.iter().sum::<u32>() < sim.iter().sum::<u32>(),
        "the noise headroom should add capacity"
    );
}
