//! The tuner end to end, across processes: metrics pushed to a real `flexus-agent`
//! (against the emulator) become the request-rate history it records for a predictive
//! pool; `terraform plan` reads `data "flexus_policy_recommendation"`, which makes the
//! agent tune that history, and feeds the recommended values into a
//! `flexus_autoscaling_policy`. Nothing is applied to the tuned pool's policy.

use std::time::Duration;

use flexus_api::{MetricDatapoint, Precondition};
use flexus_e2e::{
    Stack, StackOptions, init_and_plan, root_module, terraform_1_0, terraform_latest, workspace,
};
use serde_json::json;

/// RFC 3339 (UTC) of a Unix time in seconds.
fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[test]
fn rfc3339_formats_unix_seconds() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_780_000_000), "2026-05-28T20:26:40Z");
}

fn policy(pool: &str, predictive: bool) -> flexus_api::PolicySpec {
    let mut p = json!({
        "dry_run": true,
        "strategy": "target_tracking",
        "bounds": {"min": 1, "max": 40},
        "metrics": [{"name": "rps", "kind": "custom", "source": {"type": "push"},
                     "target": 30, "per_instance": true}]
    });
    if predictive {
        p["prediction"] = json!({"enabled": true, "mode": "forecast_only", "metric": "rps",
                                 "target_per_instance": 33});
    }
    flexus_api::PolicySpec {
        pool: pool.into(),
        policy: serde_json::from_value(p).expect("policy"),
    }
}

/// The number a plan shows for the root module's output `name` (`+ name = 12.5`).
fn planned_output(plan: &str, name: &str) -> f64 {
    plan.lines()
        .find(|l| l.trim_start().starts_with(&format!("+ {name} ")))
        .and_then(|l| l.rsplit('=').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in the plan:\n{plan}"))
}

#[test]
fn terraform_plan_reads_a_recommendation_tuned_on_the_pools_recorded_history() {
    let stack = Stack::start(StackOptions::default());
    let c = stack.client();
    let spec: flexus_api::PoolSpec = serde_json::from_value(json!({
        "flavor": "x1.2u.4g", "image": "img-1", "vpc_id": "vpc-1", "subnet_ids": ["subnet-1"],
        "min_size": 0, "max_size": 40
    }))
    .expect("pool spec");
    stack.block_on(async {
        for pool in ["web", "canary", "bursty"] {
            c.put_pool("team-a", pool, &spec, Precondition::None)
                .await
                .expect("pool");
        }
        for pool in ["web", "bursty"] {
            c.put_policy("team-a", pool, &policy(pool, true), Precondition::None)
                .await
                .expect("policy");
        }
    });
    // 22 hours of request rates, one datapoint per 5 minutes, ending now. `bursty`'s last
    // third (the validation window) carries half-hour bursts past the pool's 40 instances
    // that its first two thirds never had.
    let now_ms = stack.emulator_get("/_emulator/clock")["now_ms"]
        .as_i64()
        .expect("emulator clock");
    let now = now_ms / 1000;
    for pool in ["web", "bursty"] {
        let points: Vec<MetricDatapoint> = (0..264)
            .map(|i| {
                let at = now - (264 - i) * 300;
                let mut v = 500.0 + 300.0 * (std::f64::consts::TAU * at as f64 / 86_400.0).sin();
                if pool == "bursty" && i >= 176 && (i / 6) % 2 == 0 {
                    v = 1500.0;
                }
                MetricDatapoint {
                    metric: "rps".into(),
                    value: v,
                    at: Some(rfc3339(at)),
                }
            })
            .collect();
        stack.block_on(async {
            c.push_metrics("team-a", pool, &points).await.expect("push");
            c.reconcile("team-a", pool).await.expect("reconcile");
        });
        // The agent's pass takes the pushed rates into the history it records.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let s = stack
                .block_on(c.pool_status("team-a", pool))
                .expect("status");
            let buckets = s
                .last_decision
                .as_ref()
                .and_then(|d| d.prediction.as_ref())
                .map_or(0, |p| p.history_buckets);
            if buckets >= 80 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the agent recorded {buckets} buckets of {pool}:\n{}",
                stack.agent_log()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    let ws = workspace(&terraform_latest(), &stack, "team-a");
    // Beside the example, a recommendation aimed at beating both baselines' defaults.
    let vs_baselines = r#"
data "flexus_policy_recommendation" "vs_baselines" {
  pool            = "web"
  aim             = "baselines"
  max_evaluations = 4
}

output "beats_baselines" {
  value = data.flexus_policy_recommendation.vs_baselines.beats_baselines
}

output "baselines_report" {
  value = data.flexus_policy_recommendation.vs_baselines.report
}

data "flexus_policy_recommendation" "bursty" {
  pool            = "bursty"
  max_evaluations = 4
}

output "bursty_within_budget" {
  value = data.flexus_policy_recommendation.bursty.within_budget
}
"#;
    let main = root_module(&format!(
        "{}\n{vs_baselines}",
        terraform_provider_flexus::docs::RECOMMENDATION_EXAMPLE
            .replace("max_evaluations = 60", "max_evaluations = 4")
    ));
    let out = init_and_plan(&ws, &main, "plan with a recommendation");
    let target = planned_output(&out, "recommended_target");
    assert!(
        (30.0 * 0.6..=30.0 * 1.25).contains(&target),
        "{target}\n{out}"
    );
    let noise = planned_output(&out, "recommended_noise_headroom");
    assert!((0.0..=24.0).contains(&noise), "{noise}\n{out}");
    assert!(
        out.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            matches!(
                words.as_slice(),
                ["+", "beats_baselines", "=", "true" | "false"]
            )
        }),
        "{out}"
    );
    assert!(
        out.contains("aimed at beating both baselines' defaults on the tuning window"),
        "{out}"
    );
    // A recommendation over its budget on the later history plans with a warning and
    // says so in `within_budget`; the others are within theirs.
    assert!(
        out.contains("Warning: Recommendation over its violation budget on the validation window"),
        "{out}"
    );
    let words = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("of team-a/bursty: on the validation window (the later history it was not tuned on) the recommendation is in violation"),
        "{out}"
    );
    assert_eq!(
        out.matches("Warning: Recommendation over its violation budget")
            .count(),
        1,
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["+", "bursty_within_budget", "=", "false"]),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["+", "recommendation_within_budget", "=", "true"]),
        "{out}"
    );
    // The recommendation feeds the policy resource: its planned target is that value.
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("+ target") && l.contains(&format!("{target}"))),
        "{out}"
    );
    // Terraform 1.0 shows the data source's warning and its value alike.
    let old = workspace(&terraform_1_0(), &stack, "team-a");
    let bursty = &vs_baselines[vs_baselines
        .find("data \"flexus_policy_recommendation\" \"bursty\"")
        .expect("the bursty data source")..];
    let out = init_and_plan(&old, &root_module(bursty), "plan on Terraform 1.0");
    assert!(
        out.contains("Warning: Recommendation over its violation budget on the validation window"),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["+", "bursty_within_budget", "=", "false"]),
        "{out}"
    );
    // Nothing was applied to the tuned pool's policy.
    let stored = stack
        .block_on(c.get_policy("team-a", "web"))
        .expect("policy");
    assert_eq!(stored.value.spec.policy.metrics[0].target, Some(30.0));
}
