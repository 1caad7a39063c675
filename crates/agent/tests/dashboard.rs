//! The dashboard in a real headless Chromium: it loads from the agent (assets embedded,
//! nothing fetched from elsewhere), shows a pool scaling in the emulator with its chart
//! and decisions, and a namespace token cannot see another namespace. Screenshots are
//! kept under the target's test temp dir (the test prints their paths).

mod browser;
mod common;

use std::time::Duration;

use browser::Browser;
use common::*;
use fantoccini::Locator;
use flexus_api::Precondition;
use serde_json::json;

const SCALE: f64 = 20.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_pool_scaling_and_a_namespace_token_sees_only_its_namespace() {
    let emu = Emu::start(SCALE, 20.0).await;
    let agent = InProcAgent::start(&emu, SCALE, |c| {
        c.cost.sample_interval = Duration::from_secs(5);
    })
    .await;
    let c = &agent.client;
    emu.control(
        reqwest::Method::POST,
        "/_emulator/workload",
        json!({"pool": "web", "shape": {"kind": "constant", "rps": 120}}),
    )
    .await;
    c.put_pool("team-a", "web", &pool_spec(1, 6), Precondition::None)
        .await
        .unwrap();
    c.put_policy(
        "team-a",
        "web-policy",
        &policy("web", cpu_policy(json!({"bounds": {"min": 1, "max": 6}}))),
        Precondition::None,
    )
    .await
    .unwrap();
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

    b.client
        .find(Locator::Css("tr[data-pool=\"team-a/web\"] a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
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
