//! The tuner through the agent: `POST .../pools/{name}/tune` on the history the agent
//! records for a predictive pool (or the load it samples for any other), polled to the
//! end; the refusals (no recorded history,
//! too little of it); `flexus-agent tune --pool` (the real binary) against it; and a
//! job's life across restarts of the agent's process (SIGTERM and SIGKILL).

mod common;

use std::time::Duration;

use common::process::*;
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
    let done = ended(c, &job.id).await;
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

/// `minutes` one-minute samples of a two-hour wave of 200-900 req/s, as the usage
/// recorder writes them for every pool, in the clock hours before the current one.
async fn record_load(emu: &Emu, agent: &InProcAgent, pool: &str, minutes: i64) {
    use flexus_agent::store::{UsageHour, UsageSample};
    let hour_start = emu.now_ms().div_euclid(3_600_000) * 3_600_000;
    let mut rows: Vec<UsageHour> = Vec::new();
    for k in (1..=minutes).rev() {
        let at_ms = hour_start - k * 60_000;
        let rps = 550.0 + 350.0 * (std::f64::consts::TAU * at_ms as f64 / 7_200_000.0).sin();
        let ready = (rps / 30.0).ceil() as u32;
        let hour = at_ms.div_euclid(3_600_000) * 3600;
        if rows.last().is_none_or(|r| r.hour != hour) {
            rows.push(UsageHour::new("team-a", pool, hour, "x1.2u.4g"));
        }
        let r = rows.last_mut().unwrap();
        r.samples.push(UsageSample {
            at_ms,
            load_rps: Some(rps),
            ready,
            billed: ready,
            desired: Some(ready),
            forecast_capacity: None,
        });
        r.billed_seconds += 60.0 * f64::from(ready);
        r.ready_seconds += 60.0 * f64::from(ready);
        r.covered_seconds += 60.0;
        r.load_seconds += 60.0;
    }
    agent.store.put_usage_hours(&rows).await.unwrap();
}

/// The outcome of a tune of team-a's pool `pool`, declared as `spec` with the reactive
/// policy and six hours of sampled load.
async fn tuned_on_samples(
    emu: &Emu,
    agent: &InProcAgent,
    pool: &str,
    spec: &flexus_api::PoolSpec,
    req: &TuneRequest,
) -> flexus_api::TuneOutcome {
    declare_pool(&agent.client, pool, spec, reactive()).await;
    record_load(emu, agent, pool, 6 * 60).await;
    let job = agent.client.start_tune("team-a", pool, req).await.unwrap();
    let done = ended_in(&agent.client, pool, &job.id).await;
    assert_eq!(done.state, "done", "{:?}", done.error);
    done.result.expect("result")
}

#[tokio::test]
async fn a_pool_without_prediction_is_tuned_on_the_load_the_agent_sampled() {
    let emu = Emu::start(1.0, 1.0).await;
    let agent = InProcAgent::start(&emu, 1.0, |_| {}).await;
    let c = &agent.client;
    let req = TuneRequest {
        max_evaluations: 4,
        ..TuneRequest::default()
    };
    let r = tuned_on_samples(&emu, &agent, "web", &pool_spec(0, 60), &req).await;
    // 360 one-minute samples: 6 hours, two thirds tune.
    assert!(
        (r.tune_hours - 4.0).abs() < 1e-9 && (r.validation_hours - 2.0).abs() < 1e-9,
        "{} h + {} h",
        r.tune_hours,
        r.validation_hours
    );
    assert!(r.before.instance_hours > 0.0, "{r:?}");
    assert!(!r.policy.prediction.enabled, "{:?}", r.policy.prediction);
    // The pool as the agent runs it: the same load on a pool whose capacity above one
    // on-demand instance is all spot is replayed with that mix, so it costs less; the
    // recommendation is still written against the policy as declared (no spot of its own).
    let mut spot = pool_spec(0, 60);
    spot.spot.enabled = true;
    spot.spot.on_demand_base = 1;
    spot.spot.spot_percentage = 100;
    let on_spot = tuned_on_samples(&emu, &agent, "spot", &spot, &req).await;
    assert!(
        on_spot.before.cost < 0.8 * r.before.cost,
        "{} against {}",
        on_spot.before.cost,
        r.before.cost
    );
    assert_eq!(on_spot.policy.spot, r.policy.spot);
    assert_eq!(on_spot.policy.spot.spot_percentage, 0.0);
    // And with the pool's boot time: instances that take 15 minutes to boot fall behind
    // the same two-hour wave that 30-second ones follow.
    let mut slow = pool_spec(0, 60);
    slow.boot_seconds = 900;
    let slow = tuned_on_samples(&emu, &agent, "slow", &slow, &req).await;
    assert!(
        slow.before.violation_min > r.before.violation_min + 10.0,
        "{} against {} violation minutes",
        slow.before.violation_min,
        r.before.violation_min
    );
    // Forty minutes of samples are refused with how much is needed.
    declare(&agent, "young", reactive()).await;
    record_load(&emu, &agent, "young", 40).await;
    let msg = refusal(
        c.start_tune("team-a", "young", &req)
            .await
            .expect_err("too short"),
    );
    assert_eq!(
        msg,
        "not enough history to tune: 40 minutes given, at least 45 needed (two thirds tune, the last third validates)"
    );
    agent.shutdown().await;
    emu.stop.cancel();
}

#[tokio::test]
async fn a_pool_is_tuned_with_its_own_monitoring_and_its_coarse_headroom_kept_apart() {
    let emu = Emu::start(1.0, 1.0).await;
    let agent = InProcAgent::start(&emu, 1.0, |_| {}).await;
    let req = TuneRequest {
        max_evaluations: 4,
        ..TuneRequest::default()
    };
    // The same sampled load on two pools whose metric is read every minute and every five.
    let policy = |period: &str| {
        json!({"strategy": "target_tracking", "bounds": {"min": 1, "max": 60},
            "metrics": [{"name": "rps", "kind": "custom", "source": {"type": "push"},
                         "target": 30, "per_instance": true, "period": period,
                         "sqrt_headroom": 0.25, "coarse_sqrt_headroom": 0.5}]})
    };
    let mut outcomes = Vec::new();
    for (pool, period) in [("fine", "1m"), ("coarse", "5m")] {
        declare_pool(&agent.client, pool, &pool_spec(0, 60), policy(period)).await;
        record_load(&emu, &agent, pool, 6 * 60).await;
        let job = agent.client.start_tune("team-a", pool, &req).await.unwrap();
        let done = ended_in(&agent.client, pool, &job.id).await;
        assert_eq!(done.state, "done", "{:?}", done.error);
        outcomes.push(done.result.expect("result"));
    }
    let hpa = |r: &flexus_api::TuneOutcome| {
        let b = r.baselines.iter().find(|b| b.name == "hpa").expect("hpa");
        b.validation.violation_min
    };
    // HPA, replayed beside the policy, reads the pool's 5-minute data too and falls behind.
    assert!(
        hpa(&outcomes[1]) > hpa(&outcomes[0]) + 10.0,
        "{} against {} violation minutes",
        hpa(&outcomes[1]),
        hpa(&outcomes[0])
    );
    // Each recommendation keeps the other period's headroom as written.
    let m = |r: &flexus_api::TuneOutcome| r.policy.metrics[0].clone();
    assert_eq!(m(&outcomes[0]).coarse_sqrt_headroom, Some(0.5));
    assert_eq!(m(&outcomes[1]).sqrt_headroom, 0.25);
    agent.shutdown().await;
    emu.stop.cancel();
}

/// Tunes `pool` and answers the hours of history its job replayed.
async fn tuned_hours(c: &flexus_api::Client, pool: &str, req: &TuneRequest) -> f64 {
    let job = c.start_tune("team-a", pool, req).await.unwrap();
    let done = ended_in(c, pool, &job.id).await;
    let r = done.result.unwrap_or_else(|| panic!("{:?}", done.error));
    r.tune_hours + r.validation_hours
}

#[tokio::test]
async fn a_predictive_pool_is_tuned_on_its_sampled_load_once_that_spans_a_day() {
    let emu = Emu::start(1.0, 1.0).await;
    let agent = InProcAgent::start(&emu, 1.0, |_| {}).await;
    let c = &agent.client;
    let req = TuneRequest {
        max_evaluations: 4,
        ..TuneRequest::default()
    };
    // 36 hours of forecast buckets and 6 hours of minute samples: the buckets.
    declare(&agent, "young", predictive()).await;
    record_history(&emu, &agent, "young", 36).await;
    record_load(&emu, &agent, "young", 6 * 60).await;
    assert!((tuned_hours(c, "young", &req).await - 36.0).abs() < 1e-9);
    // 25 hours of minute samples (a day and more): the samples, which see bursts.
    declare(&agent, "grown", predictive()).await;
    record_history(&emu, &agent, "grown", 36).await;
    record_load(&emu, &agent, "grown", 25 * 60).await;
    assert!((tuned_hours(c, "grown", &req).await - 25.0).abs() < 1e-9);
    // A utilisation prediction metric's buckets are not load: without samples, refused.
    let cpu = json!({"strategy": "target_tracking", "bounds": {"min": 1, "max": 60},
        "metrics": [{"name": "cpu", "kind": "cpu", "source": {"type": "push"}, "target": 60}],
        "prediction": {"enabled": true, "mode": "forecast_only", "metric": "cpu",
                       "target_per_instance": 33}});
    declare(&agent, "cpu", cpu).await;
    record_history(&emu, &agent, "cpu", 36).await;
    let msg = refusal(c.start_tune("team-a", "cpu", &req).await.expect_err("cpu"));
    assert!(
        msg.starts_with("pool team-a/cpu has no recorded history to tune on yet (0 samples"),
        "{msg}"
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
    // A reactive policy records no forecast history, and a pool the agent has not
    // sampled yet has no load either; a named trace can be tuned instead.
    let reactive = json!({"strategy": "target_tracking", "bounds": {"min": 1, "max": 60},
        "metrics": [{"name": "rps", "kind": "custom", "source": {"type": "push"},
                     "target": 30, "per_instance": true}]});
    declare(&agent, "plain", reactive).await;
    let msg = refusal(
        c.start_tune("team-a", "plain", &TuneRequest::default())
            .await
            .expect_err("not predictive"),
    );
    assert_eq!(
        msg,
        "pool team-a/plain has no recorded history to tune on yet (0 samples with a load signal, 30 needed): the agent samples every pool's load each cost.sample_interval (60 s) and keeps it for cost.retention, and a predictive pool's forecast history is used when it has one; pass \"trace\" to tune on a trace instead"
    );
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

/// A reactive policy (tuned on a named trace: it records no history of its own).
fn reactive() -> serde_json::Value {
    json!({"strategy": "target_tracking", "bounds": {"min": 1, "max": 60},
        "metrics": [{"name": "rps", "kind": "custom", "source": {"type": "push"},
                     "target": 30, "per_instance": true}]})
}

/// A tune on nasa-http-1995: `hours` of it, `evaluations` replays.
fn on_nasa(hours: f64, evaluations: u32) -> TuneRequest {
    TuneRequest {
        trace: Some("nasa-http-1995".into()),
        hours: Some(hours),
        max_evaluations: evaluations,
        ..TuneRequest::default()
    }
}

/// A search long enough to be cut short while it runs, short enough to finish again.
fn medium() -> TuneRequest {
    on_nasa(200.0, 24)
}

/// Waits until job `id` of `team-a/web` is searching (it has `started_at`).
async fn searching(c: &flexus_api::Client, id: &str) -> flexus_api::TuneJob {
    wait_for("the search to start", Duration::from_secs(60), || async {
        let j = c.tune_job("team-a", "web", id).await.ok()?;
        j.started_at.is_some().then_some(j)
    })
    .await
}

/// Waits until job `id` of `team-a/web` ends.
async fn ended(c: &flexus_api::Client, id: &str) -> flexus_api::TuneJob {
    ended_in(c, "web", id).await
}

/// Waits until job `id` of `team-a/{pool}` ends.
async fn ended_in(c: &flexus_api::Client, pool: &str, id: &str) -> flexus_api::TuneJob {
    wait_for("the tune to end", Duration::from_secs(300), || async {
        let j = c.tune_job("team-a", pool, id).await.ok()?;
        (j.state != "running").then_some(j)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tune_jobs_outlive_restarts_and_one_cut_short_by_a_stop_or_a_kill_is_resumed() {
    let emu = Emu::start(1.0, 2.0).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emu.url, free_port());
    let log = dir.path().join("agent.log");
    let started = || async {
        let mut p = start_agent(&config, &log);
        wait_ready(&mut p, &log).await;
        let c = flexus_api::Client::new(&p.url, Some(ADMIN.into())).unwrap();
        (p, c)
    };
    let (mut p, c) = started().await;
    declare_pool(&c, "web", &pool_spec(0, 60), reactive()).await;
    let short = c
        .start_tune("team-a", "web", &on_nasa(48.0, 4))
        .await
        .unwrap();
    let done = ended(&c, &short.id).await;
    assert_eq!(
        (done.state.as_str(), done.resumed),
        ("done", 0),
        "{:?}",
        done.error
    );

    // Stopped with SIGTERM while it searches: left running, resumed by the restarted
    // agent (a new session), searched again from the start and done.
    let stopped = c.start_tune("team-a", "web", &medium()).await.unwrap();
    searching(&c, &stopped.id).await;
    sigterm_and_wait(&mut p).await;
    let (mut p, c) = started().await;
    assert_eq!(
        c.tune_job("team-a", "web", &short.id).await.unwrap(),
        done,
        "a finished job is answered unchanged after a restart"
    );
    let after = ended(&c, &stopped.id).await;
    assert_eq!(
        (after.state.as_str(), after.resumed, &after.request),
        ("done", 1, &stopped.request),
        "{after:?}"
    );
    assert!(after.started_at.is_some() && after.result.is_some());

    // The same, killed with SIGKILL: nothing is written at the end, and the restarted
    // agent resumes it all the same.
    let killed = c.start_tune("team-a", "web", &medium()).await.unwrap();
    searching(&c, &killed.id).await;
    kill9(&mut p);
    let (mut p, c) = started().await;
    let after = ended(&c, &killed.id).await;
    assert_eq!(
        (after.state.as_str(), after.resumed),
        ("done", 1),
        "{after:?}"
    );

    // The CLI polls through a kill and a restart of the agent and ends with the resumed
    // job's recommendation.
    let mut cli = tokio::process::Command::new(env!("CARGO_BIN_EXE_flexus-agent"))
        .args(["tune", "--pool", "team-a/web", "--trace", "nasa-http-1995"])
        .args(["--hours", "200", "--evaluations", "24"])
        .env("FLEXUS_AGENT_URL", &p.url)
        .env("FLEXUS_TOKEN", ADMIN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = tokio::io::BufReader::new(cli.stderr.take().unwrap());
    let mut first = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut err, &mut first)
        .await
        .unwrap();
    let id = first
        .trim()
        .strip_prefix("started tune job ")
        .unwrap_or_else(|| panic!("{first}"))
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    searching(&c, &id).await;
    kill9(&mut p);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (mut p, c) = started().await;
    let out = tokio::time::timeout(Duration::from_secs(300), cli.wait_with_output())
        .await
        .expect("the CLI ends once the restarted agent has searched again")
        .unwrap();
    let mut rest = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut err, &mut rest)
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{rest}\n{stdout}");
    assert!(stdout.contains("validation"), "{stdout}");
    assert_eq!(c.tune_job("team-a", "web", &id).await.unwrap().resumed, 1);
    // A job this agent never had is still a 404.
    match c.tune_job("team-a", "web", "tune-0").await {
        Err(flexus_api::ClientError::Api(f)) => assert_eq!(f.status, 404, "{f:?}"),
        other => panic!("expected a 404, got {other:?}"),
    }
    sigterm_and_wait(&mut p).await;
    emu.stop.cancel();
}

/// A config tweak: the store on PostgreSQL database `db`, as agent `holder`; with
/// `lease_ttl`, leases that last that long (renewed four times as often).
fn on_postgres(
    db: &str,
    holder: &str,
    lease_ttl: Option<Duration>,
) -> impl FnOnce(&mut flexus_agent::config::Config) + use<> {
    let (db, holder) = (db.to_owned(), holder.to_owned());
    move |c| {
        c.store = flexus_agent::store::sql::StoreLocation::Postgres(db);
        c.lease.holder = holder;
        if let Some(ttl) = lease_ttl {
            c.lease.ttl = ttl;
            c.lease.renew_every = ttl / 4;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tune_job_accepted_by_one_agent_is_answered_by_another_sharing_postgresql() {
    let emu = Emu::start(1.0, 1.0).await;
    let db = common::postgres::PgServer::shared().fresh_db().await;
    let on_pg = |holder| on_postgres(&db, holder, None);
    let a = InProcAgent::start(&emu, 1.0, on_pg("agent-a")).await;
    let b = InProcAgent::start(&emu, 1.0, on_pg("agent-b")).await;
    declare(&a, "web", reactive()).await;
    let job = a
        .client
        .start_tune("team-a", "web", &on_nasa(48.0, 4))
        .await
        .unwrap();
    // Polled on the other agent (as behind a load balancer), from the start to the end.
    let seen = b.client.tune_job("team-a", "web", &job.id).await.unwrap();
    assert_eq!(
        (seen.id.as_str(), seen.request.clone()),
        (job.id.as_str(), job.request.clone())
    );
    let done = ended(&b.client, &job.id).await; // polled on agent b
    assert_eq!(done.state, "done", "{:?}", done.error);
    assert_eq!(
        a.client.tune_job("team-a", "web", &job.id).await.unwrap(),
        done
    );
    a.shutdown().await;
    b.shutdown().await;
    emu.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tune_whose_agent_stops_is_resumed_by_another_sharing_postgresql_at_most_twice() {
    let emu = Emu::start(1.0, 1.0).await;
    let db = common::postgres::PgServer::shared().fresh_db().await;
    let on_pg = |holder| on_postgres(&db, holder, Some(Duration::from_secs(2)));
    let resumed_on = |agent: &InProcAgent, id: String, n: u32| {
        let (c, what) = (agent.client.clone(), format!("resumption {n}"));
        async move {
            wait_for(&what, Duration::from_secs(60), || async {
                let j = c.tune_job("team-a", "web", &id).await.ok()?;
                (j.resumed == n && j.started_at.is_some()).then_some(j)
            })
            .await
        }
    };
    let holder = async |agent: &InProcAgent, id: &str| {
        agent
            .store
            .get_tune_job("team-a", "web", id)
            .await
            .unwrap()
            .unwrap()
            .holder
    };
    let a = InProcAgent::start(&emu, 1.0, on_pg("agent-a")).await;
    let b = InProcAgent::start(&emu, 1.0, on_pg("agent-b")).await;
    declare(&a, "web", reactive()).await;
    let job = a
        .client
        .start_tune("team-a", "web", &on_nasa(700.0, 500))
        .await
        .unwrap();
    searching(&a.client, &job.id).await;
    // Agent a stops: once its heartbeat has expired, b takes the job over and searches.
    a.shutdown().await;
    let on_b = resumed_on(&b, job.id.clone(), 1).await;
    assert_eq!(
        (on_b.state.as_str(), &on_b.request),
        ("running", &job.request)
    );
    assert_eq!(holder(&b, &job.id).await, "agent-b");
    let metrics = scrape(&b.url, None).await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "flexus_agent_tune_resumed_total 1"),
        "{metrics}"
    );
    let listed = b.cli(&["tune-jobs", "team-a/web"]).await;
    assert!(
        listed.contains(&job.id) && listed.contains("(resumed 1x)"),
        "{listed}"
    );
    // Again from b to c; then d finds it resumed twice already and fails it.
    let c = InProcAgent::start(&emu, 1.0, on_pg("agent-c")).await;
    b.shutdown().await;
    resumed_on(&c, job.id.clone(), 2).await;
    assert_eq!(holder(&c, &job.id).await, "agent-c");
    let d = InProcAgent::start(&emu, 1.0, on_pg("agent-d")).await;
    c.shutdown().await;
    let failed = ended(&d.client, &job.id).await;
    let error = failed.error.clone().unwrap_or_default();
    assert_eq!(
        (failed.state.as_str(), failed.resumed),
        ("failed", 2),
        "{error}"
    );
    assert!(
        error.contains("stopped before it finished 3 times (the last: agent-c)")
            && error.contains("not resumed again"),
        "{error}"
    );
    assert!(failed.finished_at.is_some());
    assert_eq!(holder(&d, &job.id).await, "agent-d");
    d.shutdown().await;
    emu.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tune_jobs_beyond_the_search_slots_wait_their_turn_and_past_the_waiting_limit_are_refused()
{
    let emu = Emu::start(1.0, 1.0).await;
    let one_slot = |c: &mut flexus_agent::config::Config| {
        c.tune = flexus_agent::tuner::TuneConfig {
            searches: 1,
            max_waiting: 1,
        };
    };
    let agent = InProcAgent::start(&emu, 1.0, one_slot).await;
    declare(&agent, "web", reactive()).await;
    let c = &agent.client;
    // Two short jobs on one slot: the second starts only once the first has ended.
    let a = c
        .start_tune("team-a", "web", &on_nasa(48.0, 4))
        .await
        .unwrap();
    let b = c
        .start_tune("team-a", "web", &on_nasa(48.0, 4))
        .await
        .unwrap();
    let (a, b) = (ended(c, &a.id).await, ended(c, &b.id).await);
    assert_eq!((a.state.as_str(), b.state.as_str()), ("done", "done"));
    let a_end = a.finished_at.clone().expect("a finished job says when");
    let b_start = b
        .started_at
        .clone()
        .expect("a finished job says when it started");
    assert!(
        a.started_at
            .as_deref()
            .is_some_and(|s| s >= a.created_at.as_str())
            && b_start >= a_end,
        "the second search started at {b_start}, the first ended at {a_end}"
    );

    // A long search holds the slot; the next job waits (no `started_at`); one more is
    // refused with 503 naming the setting, and nothing of it is stored.
    let long = c
        .start_tune("team-a", "web", &on_nasa(700.0, 500))
        .await
        .unwrap();
    searching(c, &long.id).await;
    let waiting = c
        .start_tune("team-a", "web", &on_nasa(48.0, 4))
        .await
        .unwrap();
    let seen = c.tune_job("team-a", "web", &waiting.id).await.unwrap();
    assert_eq!((seen.state.as_str(), seen.started_at), ("running", None));
    // The agent's metrics say the same: one search, one waiting, two done.
    let metrics = scrape(&agent.url, None).await;
    for line in [
        "flexus_agent_tune_searching 1",
        "flexus_agent_tune_waiting 1",
        "flexus_agent_tune_jobs_total{outcome=\"done\"} 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    match c.start_tune("team-a", "web", &on_nasa(48.0, 4)).await {
        Err(ClientError::Api(f)) => {
            assert_eq!(f.status, 503, "{f:?}");
            assert!(
                f.message.contains("busy tuning")
                    && f.message.contains("1 tune jobs are waiting")
                    && f.message.contains("[tune]"),
                "{}",
                f.message
            );
        }
        other => panic!("expected a 503, got {other:?}"),
    }
    // The listing: newest first, the refused request absent; the CLI prints the same.
    let listed: Vec<String> = c
        .tune_jobs("team-a", "web")
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(
        listed,
        [&waiting.id, &long.id, &b.id, &a.id].map(String::clone)
    );
    let stdout = agent.cli(&["tune-jobs", "team-a/web"]).await;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert!(
        lines[1].starts_with(&waiting.id) && lines[1].contains("waiting"),
        "{stdout}"
    );
    assert!(
        lines[4].starts_with(&a.id) && lines[4].contains("baseline defaults"),
        "{stdout}"
    );
    match c.tune_jobs("team-a", "nope").await {
        Err(ClientError::Api(f)) => assert_eq!(f.status, 404, "{f:?}"),
        other => panic!("expected a 404, got {other:?}"),
    }

    // Stopping the agent ends the search and the wait; both jobs stay running in the
    // store, for an agent sharing it (or this one restarted) to resume.
    let (store, _dir) = agent.stop_keeping_store().await;
    for (id, started) in [(&long.id, true), (&waiting.id, false)] {
        let j = store
            .get_tune_job("team-a", "web", id)
            .await
            .unwrap()
            .expect("stored")
            .value;
        assert_eq!(
            (j.state.as_str(), j.error.as_deref(), j.started_at.is_some()),
            ("running", None, started),
            "{j:?}"
        );
        assert!(j.finished_at.is_none(), "{j:?}");
    }
    emu.stop.cancel();
}

/// The row of job `id` of `team-a/web` as stored (not as this agent answers it).
async fn stored_job(store: &dyn flexus_agent::store::Store, id: &str) -> flexus_api::TuneJob {
    store
        .get_tune_job("team-a", "web", id)
        .await
        .unwrap()
        .expect("the job is stored")
        .value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tune_that_ends_on_a_full_disk_is_answered_from_memory_and_stored_once_space_returns() {
    let fs = common::tmpfs::Tmpfs::mount("8m");
    let path = fs.path().join("agent.db");
    let emu = Emu::start(1.0, 1.0).await;
    let on_tmpfs = |c: &mut flexus_agent::config::Config| {
        c.store = flexus_agent::store::sql::StoreLocation::Sqlite(path.clone());
    };
    let agent = InProcAgent::start(&emu, 1.0, on_tmpfs).await;
    declare(&agent, "web", reactive()).await;
    let c = &agent.client;

    // Accepted (and stored) before the disk fills; the search ends while it is full.
    let job = c
        .start_tune("team-a", "web", &on_nasa(48.0, 12))
        .await
        .unwrap();
    fs.fill();
    let answered = ended(c, &job.id).await;
    assert_eq!(answered.state, "done", "{answered:?}");
    assert!(answered.result.is_some() && answered.finished_at.is_some());
    // Its end is not on disk yet: the agent answers it (by id and in the listing) from
    // memory while it retries.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stored_job(agent.store.as_ref(), &job.id).await.state,
        "running"
    );
    let listed = c.tune_jobs("team-a", "web").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        serde_json::to_value(&listed[0]).unwrap(),
        serde_json::to_value(&answered).unwrap()
    );

    // Space returns: a retry stores the job as it was answered, for any connection.
    fs.free();
    wait_for(
        "the job's end to be stored",
        Duration::from_secs(60),
        || async {
            (stored_job(agent.store.as_ref(), &job.id).await.state == "done").then_some(())
        },
    )
    .await;
    let other = flexus_agent::store::SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        serde_json::to_value(stored_job(&other, &job.id).await).unwrap(),
        serde_json::to_value(&answered).unwrap()
    );
    drop(other);
    agent.stop_keeping_store().await;
    emu.stop.cancel();
}
