//! The tuner through the agent: `POST .../pools/{name}/tune` on the history the agent
//! records for a predictive pool, polled to the end; the refusals (no recorded history,
//! too little of it); and `flexus-agent tune --pool` (the real binary) against it.

mod common;

use std::time::Duration;

use common::*;
use flexus_agent::store::ForecastHeader;
use flexus_api::{ClientError, TuneRequest};
use flexus_policy::forecast::buckets::Bucket;
use serde_json::json;

fn predictive() -> serde_json::Value {
    json!({
        "strategy": "target_tracking",
        "bounds": {"min": 1, "max": 60},
        "metrics": [{"name": "rps", "kind": "custom", "source": {"type": "push"},
                     "target": 30, "per_instance": true}],
        "prediction": {"enabled": true, "mode": "forecast_and_scale", "metric": "rps",
                       "target_per_instance": 33}
    })
}

/// Writes `hours` of 15-minute request-rate buckets (a daily wave of 200-900 req/s), as
/// the agent's forecaster persists them for a predictive pool.
async fn record_history(emu: &Emu, agent: &InProcAgent, pool: &str, hours: usize) {
    record_buckets(emu, agent, pool, hours * 4).await;
}

/// Writes `n` quarter-hour buckets of a daily sine ending at the emulator's current
/// quarter hour. They must be recent: the agent's own recorder, passing over the pool
/// meanwhile, drops buckets older than the retention.
async fn record_buckets(emu: &Emu, agent: &InProcAgent, pool: &str, n: usize) {
    let now = emu.now_ms() as f64 / 1000.0;
    let start = now - (now % 900.0) - n as f64 * 900.0;
    let buckets: Vec<Bucket> = (0..n)
        .map(|i| {
            let t = i as f64 * 900.0;
            let v = 550.0 + 350.0 * (std::f64::consts::TAU * t / 86_400.0).sin();
            Bucket {
                start: start + t,
                peak: v * 1.1,
                covered: 900.0,
                sum: v * 900.0,
            }
        })
        .collect();
    let header = ForecastHeader {
        metric: "rps".into(),
        bucket_seconds: 900.0,
        last_sample_ms: Some(((start + n as f64 * 900.0) * 1000.0) as i64),
    };
    agent
        .store
        .put_forecast("team-a", pool, &header, &buckets, start, true)
        .await
        .unwrap();
}

async fn declare(agent: &InProcAgent, pool: &str, policy: serde_json::Value) {
    declare_pool(&agent.client, pool, &pool_spec(0, 60), policy).await;
}

fn refusal(e: ClientError) -> String {
    match e {
        ClientError::Api(f) => {
            assert_eq!(f.status, 422, "{f:?}");
            f.message
        }
        other => panic!("expected a 422, got {other}"),
    }
}

#[tokio::test]
async fn a_tune_job_replays_the_recorded_history_and_recommends_without_applying() {
    let emu = Emu::start(1.0, 1.0).await;
    let agent = InProcAgent::start(&emu, 1.0, |_| {}).await;
    declare(&agent, "web", predictive()).await;
    record_history(&emu, &agent, "web", 36).await;
    let c = &agent.client;
    let req = TuneRequest {
        max_evaluations: 6,
        ..TuneRequest::default()
    };
    let job = c.start_tune("team-a", "web", &req).await.unwrap();
    assert_eq!(
        (job.state.as_str(), job.pool.as_str()),
        ("running", "team-a/web")
    );
    let done = wait_for("the tune job", Duration::from_secs(120), || async {
        let j = c.tune_job("team-a", "web", &job.id).await.ok()?;
        (j.state != "running").then_some(j)
    })
    .await;
    assert_eq!(done.state, "done", "{:?}", done.error);
    let r = done.result.expect("a finished job has a result");
    assert!((r.tune_hours - 24.0).abs() < 1e-9 && (r.validation_hours - 12.0).abs() < 1e-9);
    assert!(r.evaluations >= 6);
    assert!(r.report.contains("validation  before:"), "{}", r.report);
    // Both baselines at their default targets, replayed on the same history; "beaten" is
    // fewer violation minutes and fewer instance-hours on the validation window.
    let names: Vec<&str> = r.baselines.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["hpa", "aws-tt"]);
    for b in &r.baselines {
        assert_eq!(
            b.beaten,
            r.after.violation_min < b.validation.violation_min
                && r.after.instance_hours < b.validation.instance_hours,
            "{b:?}"
        );
        assert!(b.tuning.instance_hours > 0.0 && b.validation.instance_hours > 0.0);
    }
    flexus_policy::CompiledPolicy::new(r.policy.clone()).expect("the recommendation validates");
    // Nothing is applied: the stored policy is the declared one.
    let stored = c.get_policy("team-a", "web-policy").await.unwrap();
    assert_eq!(
        serde_json::to_value(&stored.value.spec.policy).unwrap(),
        serde_json::to_value(
            serde_json::from_value::<flexus_policy::Policy>(predictive()).unwrap()
        )
        .unwrap()
    );

    // The CLI: the real binary starts a job on this agent and prints the report.
    let stdout = agent
        .cli(&["tune", "--pool", "team-a/web", "--evaluations", "4"])
        .await;
    assert!(
        stdout.contains("tuned on 24.0 h, validated on the next 12.0 h")
            && stdout.contains("validation  before:"),
        "{stdout}"
    );
    // `--aim baselines` reaches the agent's tuner (the search aims at both baselines).
    let stdout = agent
        .cli(&[
            "tune",
            "--pool",
            "team-a/web",
            "--evaluations",
            "4",
            "--aim",
            "baselines",
        ])
        .await;
    assert!(
        stdout.contains("aimed at beating both baselines' defaults on the tuning window"),
        "{stdout}"
    );
    agent.shutdown().await;
    emu.stop.cancel();
}

#[tokio::test]
async fn a_tune_without_enough_recorded_history_is_refused_with_how_much_is_needed() {
    let emu = Emu::start(1.0, 1.0).await;
    let agent = InProcAgent::start(&emu, 1.0, |_| {}).await;
    let c = &agent.client;
    declare(&agent, "short", predictive()).await;
    record_history(&emu, &agent, "short", 0).await;
    let msg = refusal(
        c.start_tune("team-a", "short", &TuneRequest::default())
            .await
            .expect_err("no buckets"),
    );
    assert!(msg.contains("no recorded history"), "{msg}");
    // Half an hour of buckets: two thirds would tune on 20 minutes.
    record_buckets(&emu, &agent, "short", 2).await;
    let msg = refusal(
        c.start_tune("team-a", "short", &TuneRequest::default())
            .await
            .expect_err("too short"),
    );
    assert_eq!(
        msg,
        "not enough history to tune: 30 minutes given, at least 45 needed (two thirds tune, the last third validates)"
    );
    // A reactive policy records no history; a named trace can be tuned instead.
    let reactive = json!({"strategy": "target_tracking", "bounds": {"min": 1, "max": 60},
        "metrics": [{"name": "rps", "kind": "custom", "source": {"type": "push"},
                     "target": 30, "per_instance": true}]});
    declare(&agent, "plain", reactive).await;
    let msg = refusal(
        c.start_tune("team-a", "plain", &TuneRequest::default())
            .await
            .expect_err("not predictive"),
    );
    assert!(msg.contains("pass \"trace\""), "{msg}");
    let bad = TuneRequest {
        budget: 1.5,
        ..TuneRequest::default()
    };
    let msg = refusal(
        c.start_tune("team-a", "plain", &bad)
            .await
            .expect_err("budget"),
    );
    assert!(msg.contains("budget"), "{msg}");
    // A choice outside its list is refused naming the field and the choices.
    let choices = [
        (
            TuneRequest {
                aim: "cheapest".into(),
                ..TuneRequest::default()
            },
            "aim must be \"budget\" or \"baselines\", got \"cheapest\"",
        ),
        (
            TuneRequest {
                objective: "money".into(),
                ..TuneRequest::default()
            },
            "objective must be \"cost\" or \"instance_hours\", got \"money\"",
        ),
    ];
    for (bad, want) in choices {
        let msg = refusal(c.start_tune("team-a", "plain", &bad).await.expect_err(want));
        assert_eq!(msg, want);
    }
    agent.shutdown().await;
    emu.stop.cancel();
}
