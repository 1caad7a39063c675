//! Predictive scaling end to end: the emulator drives a seasonal (sine) workload on
//! two pools under a frozen, stepped clock; a pusher reads the offered load from the
//! emulator and pushes it to the agent; one pool's policy forecasts and scales, the
//! other only forecasts. Then the agent restarts and must still hold the history.

mod common;

use std::f64::consts::TAU;
use std::time::Duration;

use common::*;
use flexus_api::{Client, MetricDatapoint, OperationKind};
use serde_json::json;

const PERIOD_S: f64 = 3600.0;
const MEAN: f64 = 100.0;
const AMPLITUDE: f64 = 80.0;
/// Requests/s one instance carries at target (both reactive and forecast).
const PER_INSTANCE: f64 = 20.0;

/// The emulator's `sine` shape, `t_s` seconds after the workload was set.
fn load_at(t_s: f64) -> f64 {
    (MEAN + AMPLITUDE * (TAU * t_s / PERIOD_S).sin()).max(0.0)
}

fn predictive_policy(mode: &str) -> serde_json::Value {
    json!({
        "strategy": "target_tracking",
        "evaluation_interval": "60s",
        "bounds": {"min": 1, "max": 12},
        "metrics": [{"name": "rps", "kind": "custom", "source": {"type": "push"},
                     "target": PER_INSTANCE, "per_instance": true, "stale_after": "5m"}],
        "scale_out": {"stabilisation_window": "0s", "cooldown": "0s"},
        "scale_in": {"stabilisation_window": "0s", "cooldown": "0s"},
        "prediction": {"enabled": true, "mode": mode, "metric": "rps",
                       "target_per_instance": PER_INSTANCE, "lead_time": "15m",
                       "seasonality": ["1h"], "history_window": "1d", "refit_interval": "15m"}
    })
}

fn ms(rfc: &str) -> i64 {
    flexus_agent::clock::parse_rfc3339(rfc).expect("rfc3339 time")
}

/// Run a pass of `pool` now and wait until its status shows a pass at emulated `now`.
async fn pass(c: &Client, pool: &str, now: i64) -> flexus_api::PoolStatus {
    c.reconcile("team-a", pool).await.unwrap();
    wait_status(
        c,
        ("team-a", pool),
        &format!("a pass of {pool} at {now}"),
        Duration::from_secs(30),
        |s| {
            let at = ms(s.last_reconcile_at.as_deref()?);
            (at >= now && s.last_decision.is_some()).then_some(s)
        },
    )
    .await
}

async fn advance(emu: &Emu, seconds: i64) {
    emu.control(
        reqwest::Method::POST,
        "/_emulator/clock",
        json!({"advance_seconds": seconds}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forecast_scales_out_before_the_reactive_target_and_forecast_only_just_logs() {
    // The emulator's clock is frozen and stepped a minute at a time by the test.
    let emu = Emu::start(0.0, 60.0).await;
    let agent = InProcAgent::start(&emu, 1.0, |_| {}).await;
    let c = &agent.client;
    let pools = [("pred", "forecast_and_scale"), ("only", "forecast_only")];
    let t0 = emu.now_ms();
    for (pool, mode) in pools {
        declare_pool(c, pool, &pool_spec(1, 12), predictive_policy(mode)).await;
        emu.control(
            reqwest::Method::POST,
            "/_emulator/workload",
            json!({"pool": pool, "shape": {"kind": "sine", "mean_rps": MEAN,
                   "amplitude_rps": AMPLITUDE, "period_seconds": PERIOD_S}}),
        )
        .await;
        // Yesterday's pusher: the last three hours of the same load, one datapoint a
        // minute, so the forecaster has history (three seasons) from the first pass.
        let history: Vec<MetricDatapoint> = (1..=180)
            .rev()
            .map(|k| MetricDatapoint {
                metric: "rps".into(),
                value: load_at(-(k as f64) * 60.0),
                at: Some(flexus_agent::clock::rfc3339(t0 - k * 60_000)),
            })
            .collect();
        c.push_metrics("team-a", pool, &history).await.unwrap();
    }

    // 75 minutes, one minute a step: push the emulator's offered load, run a pass.
    let mut desired: Vec<(i64, u32, u32)> = Vec::new();
    for step in 0..=75i64 {
        let now = emu.now_ms();
        let mut row = (now, 0, 0);
        for (i, (pool, _)) in pools.iter().enumerate() {
            let load = emu
                .control(
                    reqwest::Method::GET,
                    &format!("/_emulator/pools/{pool}/load"),
                    json!(null),
                )
                .await;
            let rps = load["current_rps"].as_f64().expect("current_rps");
            assert!(
                (rps - load_at((now - t0) as f64 / 1000.0)).abs() < 1e-6,
                "the emulator drives the sine: {rps} at step {step}"
            );
            c.push_metrics(
                "team-a",
                pool,
                &[MetricDatapoint {
                    metric: "rps".into(),
                    value: rps,
                    at: None,
                }],
            )
            .await
            .unwrap();
            let st = pass(c, pool, now).await;
            let d = st.desired_size.expect("a desired size");
            if i == 0 { row.1 = d } else { row.2 = d }
        }
        desired.push(row);
        if step % 5 == 0 {
            let d = c.pool_status("team-a", "pred").await.unwrap().last_decision;
            let p = d.and_then(|d| d.prediction);
            println!(
                "+{step} min: desired {row:?}, forecast {:?} ({:?})",
                p.as_ref().and_then(|p| p.forecast),
                p.as_ref().and_then(|p| p.method.clone())
            );
        }
        advance(&emu, 60).await;
    }

    // The second rise: the load needs 7 instances (more than 120 rps) from t0 + 63 min.
    // The forecast of the peak bucket (mean about 151 rps, 15 min lead) must ask for
    // them well before.
    const NEED: u32 = 7;
    let first_at = |col: usize| {
        desired
            .iter()
            .find(|r| r.0 >= t0 + 40 * 60_000 && if col == 1 { r.1 >= NEED } else { r.2 >= NEED })
            .map(|r| (r.0 - t0) / 60_000)
    };
    let (pred, only) = (first_at(1), first_at(2));
    println!(
        "minutes after t0 until {NEED} instances: forecast_and_scale {pred:?}, forecast_only {only:?}"
    );
    let only = only.expect("the reactive target reaches 7 instances on the second rise");
    let pred = pred.expect("the forecast reaches 7 instances on the second rise");
    assert!(
        only >= 60,
        "forecast_only must scale like the reactive target (at about 63 min), not on the forecast: {only} min"
    );
    assert!(
        pred + 10 <= only,
        "forecast_and_scale asks for {NEED} at {pred} min, the reactive target at {only} min"
    );
    // ...and the agent acted on it: the predictive pool's scale-out to that size was
    // sent in the pass at that minute, while the reactive pool still held less.
    let at = t0 + pred * 60_000;
    let ops = c.operations("team-a", "pred").await.unwrap();
    assert!(
        ops.iter()
            .any(|o| o.kind == OperationKind::ScaleOut && ms(&o.created_at) == at),
        "a scale-out at +{pred} min: {ops:?}"
    );
    let row = desired.iter().find(|r| r.0 == at).unwrap();
    assert!(row.2 < NEED, "forecast_only held {} at +{pred} min", row.2);

    // Decision logs: the predictive pool applied forecasts; forecast_only never did
    // but recorded what it would have done.
    let log = |pool: &'static str| async move {
        c.decisions("team-a", pool, Some(500), None)
            .await
            .unwrap()
            .items
    };
    let pred_log = log("pred").await;
    assert!(
        pred_log
            .iter()
            .any(|d| d.prediction.as_ref().is_some_and(|p| p.applied)
                && d.bound_by.as_deref() == Some("prediction")),
        "forecast_and_scale applied a forecast"
    );
    let only_log = log("only").await;
    // (Passes before the policy was written decide without one, hence no record.)
    assert!(
        only_log.iter().filter(|d| d.prediction.is_some()).count() > 30,
        "forecast_only records its forecast: {} decisions",
        only_log.len()
    );
    assert!(
        only_log
            .iter()
            .all(|d| d.prediction.as_ref().is_none_or(|p| !p.applied)
                && d.bound_by.as_deref() != Some("prediction")),
        "forecast_only never applies a forecast"
    );
    let would = only_log
        .iter()
        .find(|d| d.prediction.as_ref().is_some_and(|p| p.would_add > 0))
        .expect("forecast_only recorded a decision it would have changed");
    let p = would.prediction.as_ref().unwrap();
    assert_eq!(p.mode, flexus_policy::PredictionMode::ForecastOnly);
    assert!(p.capacity.unwrap() > would.desired);
    assert!(
        would.explanation.contains("would have scaled to"),
        "{}",
        would.explanation
    );
    assert!(p.method.is_some() && p.fitted_at.is_some(), "{p:?}");

    // The CLI shows it.
    let table = agent
        .cli(&[
            "--agent-url",
            &agent.url,
            "--token",
            TEAM_A,
            "decisions",
            "team-a/only",
            "--limit",
            "500",
        ])
        .await;
    assert!(
        table.contains("FORECAST") && table.contains("would add"),
        "{table}"
    );

    // Restart. The pushed datapoints are expired first, so the history can only come
    // from the stored buckets.
    let before = c.pool_status("team-a", "pred").await.unwrap();
    let held = before
        .last_decision
        .and_then(|d| d.prediction)
        .expect("a forecast record")
        .history_buckets;
    assert!(
        held >= 12,
        "three hours of history and more: {held} buckets"
    );
    let (store, dir) = agent.stop_keeping_store().await;
    store
        .insert_pushed("team-a", "pred", &[], i64::MAX, 10)
        .await
        .unwrap();
    assert!(
        store
            .pushed_since("team-a", "pred", 0)
            .await
            .unwrap()
            .is_empty()
    );
    drop(store);
    advance(&emu, 60).await;
    let agent = InProcAgent::start_in(dir, &emu, 1.0, |_| {}).await;
    let now = emu.now_ms();
    let st = pass(&agent.client, "pred", now).await;
    let p = st
        .last_decision
        .and_then(|d| d.prediction)
        .expect("a forecast record after the restart");
    assert!(
        p.history_buckets >= held,
        "the history survived the restart: {} buckets, {held} before",
        p.history_buckets
    );
    assert!(p.forecast.is_some(), "refitted on the first pass: {p:?}");
    assert_eq!(
        p.fitted_at.as_deref().map(ms),
        Some(now),
        "the model is refitted at once after a restart"
    );
    agent.shutdown().await;
}
