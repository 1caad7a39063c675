//! `examples/grafana/flexus-agent.json` names only metrics the agent exports.

use std::collections::BTreeSet;

use flexus_agent::telemetry::Telemetry;

/// Every series name the agent's registries can produce for the admin's scrape (from
/// its `# TYPE` lines).
fn exported() -> BTreeSet<String> {
    // Families show up once they hold a series: give each one.
    let t = Telemetry::new();
    t.error("store");
    t.scale("scale_out", "succeeded");
    t.set_pool("ns/p", 2, 1);
    t.set_pool_cost("ns/p", 0.12, 0.5);
    t.operator
        .advisor_answers
        .get_or_create(&flexus_agent::telemetry::OutcomeLabel {
            outcome: "proposed".into(),
        })
        .inc();
    t.operator
        .tune_jobs
        .get_or_create(&flexus_agent::telemetry::OutcomeLabel {
            outcome: "done".into(),
        })
        .inc();
    let text = t.encode_with_pools();
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (it.next(), it.next(), it.next(), it.next())
        {
            match kind {
                "counter" => {
                    names.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for s in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{s}"));
                    }
                }
                _ => {
                    names.insert(name.to_owned());
                }
            }
        }
    }
    names
}

/// Metric names in a PromQL expression: identifiers starting with `flexus_agent_`.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("flexus_agent_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

#[test]
fn every_panel_of_the_grafana_dashboard_queries_a_metric_the_agent_exports() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/grafana/flexus-agent.json"
    );
    let dash: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .expect("the dashboard is JSON");
    let exported = exported();
    assert!(
        exported.contains("flexus_agent_pool_cost_per_hour"),
        "{exported:?}"
    );
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8, "{} panels", panels.len());
    for p in panels {
        let title = p["title"].as_str().unwrap_or("?");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for t in targets {
            let expr = t["expr"].as_str().expect("a PromQL expr");
            let names = metric_names(expr);
            assert!(
                !names.is_empty(),
                "panel {title:?}: {expr:?} names no agent metric"
            );
            for n in names {
                assert!(
                    exported.contains(&n),
                    "panel {title:?} queries {n}, which the agent does not export ({exported:?})"
                );
            }
        }
    }
    // The pool variable reads a label the agent puts on its pool gauges.
    let var = dash["templating"]["list"][1]["query"].as_str().unwrap();
    assert!(
        metric_names(var).iter().all(|n| exported.contains(n)),
        "{var}"
    );
}

#[test]
fn a_misspelt_metric_would_be_caught() {
    let exported = exported();
    for n in metric_names("rate(flexus_agent_reconcile_pass_total[5m])") {
        assert!(!exported.contains(&n), "{n} should not exist");
    }
}

#[test]
fn the_per_pool_panels_need_the_admin_scrape_the_readme_configures() {
    let t = Telemetry::new();
    t.set_pool("ns/p", 2, 1);
    t.set_pool_cost("ns/p", 0.12, 0.5);
    let public = t.encode();
    assert!(!public.contains("pool="), "{public}");
    assert!(t.encode_with_pools().contains("pool=\"ns/p\""));
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/grafana/README.md"
    ))
    .unwrap();
    let config = readme
        .split("```yaml")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a scrape config in the README");
    assert!(config.contains("type: Bearer"), "{config}");
    assert!(config.contains("credentials_file:"), "{config}");
}
