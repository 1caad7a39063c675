//! Instance refresh against the emulator: a pool under load (the emulator's workload
//! driver) gets a new flavor; the agent replaces its instances in batches while the
//! instances actually serving — counted in the emulator, sampled throughout — never
//! drop below the minimum healthy share, and no instance of the old flavor is left.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use flexus_api::{OperationKind, OperationState, Precondition};
use serde_json::json;

/// Instances of `pool` the emulator counts as serving now, and the flavors of every
/// instance not being deleted.
fn serving(emu: &flexus_emulator::Emulator, pool: &str) -> (u32, Vec<String>) {
    emu.with(|inner, _| {
        let now = inner.clock.now();
        let mut n = 0;
        let mut flavors = Vec::new();
        for s in inner.state.servers.values() {
            if s.tag("flexus-pool") != Some(pool) || s.delete_at.is_some_and(|d| d <= now) {
                continue;
            }
            if s.delete_at.is_none() {
                flavors.push(s.flavor.clone());
            }
            if s.serving_at(now) && s.delete_at.is_none() {
                n += 1;
            }
        }
        (n, flavors)
    })
}

fn refreshing_spec(flavor: &str) -> flexus_api::PoolSpec {
    let mut spec = pool_spec(6, 10);
    spec.initial_size = Some(6);
    spec.flavor = flavor.into();
    // Both flavors load their model for 20 s after boot (the emulator's catalogue):
    // only then do they serve, and only then does the agent count them ready.
    spec.warmup_seconds = 20;
    spec.instance_refresh.min_healthy_percentage = 90;
    spec.instance_refresh.max_surge = 2;
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_flavor_under_load_replaces_every_instance_in_batches_keeping_the_healthy_minimum() {
    const SCALE: f64 = 10.0;
    let emu = Emu::start(SCALE, 20.0).await;
    emu.set_load("web", 60.0).await;
    let agent = InProcAgent::start(&emu, SCALE, |_| {}).await;
    let c = &agent.client;
    c.put_pool(
        "team-a",
        "web",
        &refreshing_spec("x1.2u.4g"),
        Precondition::None,
    )
    .await
    .unwrap();
    wait_status(
        c,
        ("team-a", "web"),
        "six ready instances",
        Duration::from_secs(60),
        |s| (s.ready_size == 6 && s.pending_operations.is_empty()).then_some(()),
    )
    .await;
    let old_template = c
        .pool_status("team-a", "web")
        .await
        .unwrap()
        .template
        .expect("the status names the template");

    // Sample what the emulator serves throughout the refresh.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (emu, stop) = (emu.emu.clone(), stop.clone());
        tokio::spawn(async move {
            let mut lowest = u32::MAX;
            let mut samples = 0u32;
            while !stop.load(Ordering::SeqCst) {
                lowest = lowest.min(serving(&emu, "web").0);
                samples += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (lowest, samples)
        })
    };
    c.put_pool(
        "team-a",
        "web",
        &refreshing_spec("x1.4u.8g"),
        Precondition::None,
    )
    .await
    .unwrap();
    // The CLI shows the progress while it runs.
    let shown = wait_status(
        c,
        ("team-a", "web"),
        "the refresh in the status",
        Duration::from_secs(30),
        |s| {
            let r = s.refresh?;
            (r.batch >= 1).then_some(r)
        },
    )
    .await;
    assert_eq!(shown.min_healthy, 6, "90 % of 6, rounded up");
    assert_eq!(shown.total, 6);
    let text = agent.cli(&["pools", "status", "team-a/web"]).await;
    assert!(text.contains("refresh: "), "{text}");
    assert!(text.contains("replaced, batch "), "{text}");
    assert!(text.contains("(outdated)"), "{text}");

    let done = wait_status(
        c,
        ("team-a", "web"),
        "the refresh to finish",
        Duration::from_secs(120),
        |s| {
            let (_, flavors) = serving(&emu.emu, "web");
            (s.refresh.is_none()
                && s.ready_size == 6
                && s.pending_operations.is_empty()
                && flavors.iter().all(|f| f == "x1.4u.8g"))
            .then_some(s)
        },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    let (lowest, samples) = sampler.await.unwrap();
    assert!(samples > 50, "sampled throughout ({samples} samples)");
    assert!(
        lowest >= 6,
        "serving instances never dropped below 90 % of 6 (lowest {lowest})"
    );
    let (serving_now, flavors) = serving(&emu.emu, "web");
    assert_eq!(serving_now, 6);
    assert_eq!(
        flavors,
        vec!["x1.4u.8g".to_string(); 6],
        "no old flavor left"
    );
    assert!(done.instances.iter().all(|i| !i.outdated));
    assert_ne!(done.template.as_deref(), Some(old_template.as_str()));

    let ops = c.operations("team-a", "web").await.unwrap();
    let of = |k: OperationKind| ops.iter().filter(move |o| o.kind == k);
    assert!(ops.iter().all(|o| o.state.is_final()), "{ops:?}");
    let refresh: Vec<_> = of(OperationKind::Refresh).collect();
    assert_eq!(refresh.len(), 1, "one refresh: {ops:?}");
    assert_eq!(refresh[0].state, OperationState::Succeeded);
    assert_eq!(
        of(OperationKind::RefreshLaunch)
            .map(|o| o.count)
            .sum::<u32>(),
        6,
        "exactly one replacement per instance"
    );
    assert_eq!(
        of(OperationKind::RefreshRetire)
            .map(|o| o.server_ids.len())
            .sum::<usize>(),
        6
    );
    assert!(
        of(OperationKind::RefreshLaunch).count() >= 3,
        "in batches of at most max_surge + the healthy margin: {ops:?}"
    );
    assert_eq!(
        of(OperationKind::ScaleIn).count(),
        0,
        "the engine never scaled in what the refresh launched: {ops:?}"
    );
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_refresh_setting_out_of_range_is_refused_naming_the_field() {
    let emu = Emu::start(10.0, 20.0).await;
    let agent = InProcAgent::start(&emu, 10.0, |_| {}).await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/namespaces/team-a/pools/web", agent.url);
    let mut spec = serde_json::to_value(pool_spec(1, 3)).unwrap();
    for (body, field) in [
        (
            json!({"min_healthy_percentage": 101}),
            "spec.instance_refresh.min_healthy_percentage",
        ),
        (json!({"max_surge": 500}), "spec.instance_refresh.max_surge"),
        (
            json!({"strategy": "blue_green"}),
            "spec.instance_refresh.strategy",
        ),
        (json!({"max_surges": 1}), "spec.instance_refresh"),
    ] {
        spec["instance_refresh"] = body.clone();
        let r = http
            .put(&url)
            .bearer_auth(ADMIN)
            .json(&json!({"spec": spec}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let text = r.text().await.unwrap();
        assert!(text.contains(field), "{body}: {text}");
    }
    assert!(
        agent.client.get_pool("team-a", "web").await.is_err(),
        "nothing stored"
    );
    agent.shutdown().await;
}
