//! The dashboard in a real headless Chromium: it loads from the agent (assets embedded,
//! nothing fetched from elsewhere), shows a pool scaling in the emulator with its chart
//! and decisions, the advisor's proposal with the tuner's recommendation beside it, and
//! a namespace token cannot see another namespace. Screenshots are kept under the
//! target's test temp dir (the test prints their paths).

mod browser;
mod common;

use std::time::Duration;

use browser::Browser;
use common::*;
use fantoccini::Locator;
use flexus_agent::config::Secret;
use flexus_agent::store::{UsageHour, UsageSample};
use flexus_api::Precondition;
use flexus_emulator::config::DEFAULT_DEEPSEEK_KEY;
use serde_json::json;

const SCALE: f64 = 20.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_pool_scaling_and_a_namespace_token_sees_only_its_namespace() {
    let emu = Emu::start(SCALE, 20.0).await;
    let url = emu.url.clone();
    let agent = InProcAgent::start(&emu, SCALE, |c| {
        c.cost.sample_interval = Duration::from_secs(5);
        c.advisor.enabled = true;
        c.advisor.base_url = url;
        c.advisor.api_key = Some(Secret::new(DEFAULT_DEEPSEEK_KEY));
        c.advisor.timeout = Duration::from_secs(10);
    })
    .await;
    let c = &agent.client;
    emu.set_load("web", 120.0).await;
    declare_pool(
        c,
        "web",
        &pool_spec(1, 6),
        cpu_policy(json!({"bounds": {"min": 1, "max": 6}})),
    )
    .await;
    c.put_pool("team-b", "secret", &pool_spec(1, 1), Precondition::None)
        .await
        .unwrap();
    wait_for("the pool scaled out", Duration::from_secs(90), || async {
        let s = c.pool_status("team-a", "web").await.ok()?;
        let u = c.pool_usage("team-a", "web", None).await.ok()?;
        (s.ready_size >= 2 && u.points.len() >= 6).then_some(())
    })
    .await;

    let b = Browser::start().await;
    b.login(&agent.url, ADMIN).await;
    let row = b.text_of("tr[data-pool=\"team-a/web\"]", 15).await;
    assert!(row.contains("web") && row.contains("x1.2u.4g"), "{row}");
    b.text_of("tr[data-pool=\"team-b/secret\"]", 5).await;
    b.screenshot("overview-admin").await;

    b.click(Locator::Css("tr[data-pool=\"team-a/web\"] a"))
        .await;
    let title = b.text_of("#pool-title", 10).await;
    assert_eq!(title, "team-a/web");
    b.text_of("#chart svg polyline", 15).await;
    let decisions = b.text_of("#decisions table", 10).await;
    assert!(decisions.contains("scale_out"), "{decisions}");
    assert!(
        decisions.contains("cpu="),
        "per-signal explanation: {decisions}"
    );
    let status = b.text_of("#pool-status", 5).await;
    assert!(status.contains("ready"), "{status}");
    b.screenshot("pool-scaling").await;

    // The advisor's panel: the model's proposal and the tuner's recommendation beside it.
    // The tuner needs 45 minutes of load; the hours before this one get 70 minutes of
    // samples written through the store, as the usage recorder writes them.
    seed_history(&agent, &emu, "web").await;
    b.click(Locator::Id("ask-advice")).await;
    let tuner = b.text_of("#advice .tuner table", 60).await;
    assert!(
        tuner.contains("current") && tuner.contains("model's proposal"),
        "{tuner}"
    );
    assert!(tuner.contains("tuner's recommendation"), "{tuner}");
    // HPA and AWS target tracking at their default targets, on the same window.
    assert!(
        tuner.contains("hpa (default target)") && tuner.contains("aws-tt (default target)"),
        "{tuner}"
    );
    let card = b.text_of("#advice .card", 5).await;
    assert!(card.contains("proposed"), "{card}");
    assert!(card.contains("validation window"), "{card}");
    b.screenshot("advisor-and-tuner").await;

    // A team-a token: its namespace only; another namespace's pool is refused.
    b.logout().await;
    b.login(&agent.url, TEAM_A).await;
    b.text_of("tr[data-pool=\"team-a/web\"]", 15).await;
    let others = b
        .client
        .find_all(Locator::Css(
            "tr[data-pool^=\"team-b/\"], h2[data-namespace=\"team-b\"]",
        ))
        .await
        .unwrap();
    assert!(others.is_empty(), "team-b is visible to a team-a token");
    b.screenshot("overview-team-a").await;
    b.client
        .goto(&format!("{}/#/pool/team-b/secret", agent.url))
        .await
        .unwrap();
    let err = b.text_of("#pool-status .error", 10).await;
    assert!(err.contains("may not access namespace team-b"), "{err}");
    b.screenshot("team-a-refused-team-b").await;

    // A wrong token does not get in.
    b.logout().await;
    b.login(&agent.url, "not-a-token-at-all-000").await;
    b.text_containing("#login-error", "Unknown token", 10).await;
    b.stop().await;
    agent.shutdown().await;
}

/// 70 one-minute samples of 34 req/s on two ready instances, in the clock hours before
/// the current one (the recorder owns the current hour).
async fn seed_history(agent: &InProcAgent, emu: &Emu, pool: &str) {
    let hour_start = emu.now_ms().div_euclid(3_600_000) * 3_600_000;
    let samples: Vec<UsageSample> = (1..=70)
        .rev()
        .map(|k| UsageSample {
            at_ms: hour_start - k * 60_000,
            load_rps: Some(34.0),
            ready: 2,
            billed: 2,
            desired: Some(2),
            forecast_capacity: None,
        })
        .collect();
    let mut rows: Vec<UsageHour> = Vec::new();
    for s in samples {
        let hour = s.at_ms.div_euclid(3_600_000) * 3600;
        if rows.last().is_none_or(|r| r.hour != hour) {
            rows.push(UsageHour::new("team-a", pool, hour, "x1.2u.4g"));
        }
        let r = rows.last_mut().unwrap();
        r.samples.push(s);
        r.billed_seconds += 120.0;
        r.ready_seconds += 120.0;
        r.covered_seconds += 60.0;
        r.load_seconds += 60.0;
    }
    agent.store.put_usage_hours(&rows).await.unwrap();
}
