//! Text rendering of the cost report and the advisor's answers for the CLI
//! (`flexus-agent cost`, `flexus-agent advise`).

use flexus_api::{Advice, CostReport, ReplayEffect, TuneMeasure, TunerAdvice};

use crate::cli::table;

fn opt(x: Option<f64>, d: usize) -> String {
    x.map_or("-".into(), |v| format!("{v:.d$}"))
}

/// One sentence of a replayed effect.
pub fn effect(e: &ReplayEffect) -> String {
    format!(
        "replayed {:.1} h: cost {:.3} -> {:.3}, SLO violation {:.0} -> {:.0} min, instance-hours {:.1} -> {:.1}",
        e.hours,
        e.before.cost,
        e.after.cost,
        e.before.violation_minutes,
        e.after.violation_minutes,
        e.before.instance_hours,
        e.after.instance_hours
    )
}

/// `flexus-agent cost`.
pub fn cost_report(r: &CostReport) -> String {
    let mut out = format!(
        "window {} .. {} ({:.1} h), prices in {}\n\n",
        r.window.from, r.window.to, r.window.hours, r.currency
    );
    let rows: Vec<Vec<String>> = r
        .pools
        .iter()
        .map(|p| {
            let f = &p.figures;
            vec![
                p.pool.clone(),
                p.flavor.clone(),
                format!("{:.2}", f.instance_hours),
                format!("{:.3}", f.cost),
                format!("{:.3}", f.spot_savings),
                opt(f.idle_pct, 1),
                opt(f.cost_per_1k_requests, 4),
                format!("{:.1}", f.violation_minutes),
                f.scaling_actions.to_string(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "POOL",
            "FLAVOR",
            "INST-H",
            "COST",
            "SPOT SAVED",
            "IDLE %",
            "COST/1K REQ",
            "VIOL MIN",
            "ACTIONS",
        ],
        &rows,
    ));
    let t = &r.totals;
    out.push_str(&format!(
        "\ntotal: {:.2} instance-hours, {:.3} {}, spot savings {:.3}, idle {}%, {} per 1,000 requests, {:.1} violation minutes, {} scaling actions\n",
        t.instance_hours,
        t.cost,
        r.currency,
        t.spot_savings,
        opt(t.idle_pct, 1),
        opt(t.cost_per_1k_requests, 4),
        t.violation_minutes,
        t.scaling_actions
    ));
    for p in &r.pools {
        if !p.figures.by_purchase.is_empty() && r.pools.len() == 1 {
            let rows: Vec<Vec<String>> = p
                .figures
                .by_purchase
                .iter()
                .map(|b| {
                    vec![
                        b.flavor.clone(),
                        serde_json::to_value(b.purchase)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        format!("{:.2}", b.instance_hours),
                        format!("{:.3}", b.cost),
                    ]
                })
                .collect();
            out.push('\n');
            out.push_str(&table(&["FLAVOR", "PURCHASE", "INST-H", "COST"], &rows));
        }
        if !p.recommendations.is_empty() {
            out.push_str(&format!(
                "\nrecommendations for {} (nothing is applied):\n",
                p.pool
            ));
            for c in &p.recommendations {
                out.push_str(&format!(
                    "  {} {} -> {}: {}\n",
                    c.setting,
                    c.current,
                    c.proposed,
                    effect(&c.effect)
                ));
            }
        } else if let Some(n) = &p.recommendation_note {
            out.push_str(&format!("\n{}: no recommendation ({n})\n", p.pool));
        }
    }
    out
}

/// `flexus-agent advise`.
pub fn advice(a: &Advice) -> String {
    let state = serde_json::to_value(a.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut out = format!(
        "advice {} for {} ({}, {} tokens): {state}\n",
        a.id, a.pool, a.model, a.tokens
    );
    if let Some(e) = &a.explanation {
        out.push_str(&format!("\n{e}\n"));
    }
    if let Some(p) = a
        .policy_patch
        .as_ref()
        .filter(|p| p.as_object().is_some_and(|o| !o.is_empty()))
    {
        out.push_str(&format!(
            "\nproposed policy change (JSON merge patch):\n{p}\n"
        ));
    }
    if let Some(e) = &a.effect {
        out.push_str(&format!("\n{}\n", effect(e)));
    }
    match &a.tuner {
        Some(t) => out.push_str(&tuner(t)),
        None => out.push_str("\ntuner: not run (the answer is pending)\n"),
    }
    if let Some(r) = &a.rejected {
        out.push_str(&format!("rejected: {r}\n"));
    }
    if let Some(e) = &a.error {
        out.push_str(&format!("error: {e}\n"));
    }
    out.push_str(
        "\nNothing was applied: change the policy (or the Terraform) to adopt a proposal.\n",
    );
    out
}

fn short(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
    }
}

/// The tuner's recommendation beside the model's proposal: the policy diff, then the
/// pool's policy, the model's proposal, the tuner's, and HPA and AWS target tracking at
/// their default targets, replayed on the same window, one aligned row each.
pub fn tuner(t: &TunerAdvice) -> String {
    let Some(o) = &t.outcome else {
        return format!(
            "\ntuner: no recommendation ({})\n",
            t.reason.as_deref().unwrap_or("no reason given")
        );
    };
    let mut out = format!(
        "\ntuner (flexus-sim on the same history: tuned on {:.1} h, {} replays):\n",
        o.tune_hours, o.evaluations
    );
    if o.changes.is_empty() {
        out.push_str("  no change: nothing beat the current policy on the tuning window\n");
    }
    for c in &o.changes {
        out.push_str(&format!(
            "  {}: {} -> {}\n",
            c.field,
            short(c.before),
            short(c.after)
        ));
    }
    out.push_str(&format!(
        "\nreplayed on the validation window (the last {:.1} h, which the tuner never saw):\n",
        o.validation_hours
    ));
    let row = |name: &str, m: &TuneMeasure| {
        vec![
            name.to_owned(),
            format!("{:.1}", m.violation_min),
            format!("{:.2}", m.violation_share * 100.0),
            format!("{:.2}", m.instance_hours),
            format!("{:.3}", m.cost),
        ]
    };
    let mut rows = vec![row("current policy", &o.before)];
    match &t.model {
        Some(m) => rows.push(row("model's proposal", m)),
        None => rows.push(vec![
            "model's proposal (none)".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
        ]),
    }
    rows.push(row("tuner's recommendation", &o.after));
    // What a plain autoscaler would have done on the same window.
    for b in &o.baselines {
        rows.push(row(&format!("{} (default target)", b.name), &b.validation));
    }
    out.push_str(&table(
        &["POLICY", "VIOL MIN", "VIOL %", "INST-H", "COST"],
        &rows,
    ));
    if let Some(r) = &t.reason {
        out.push_str(&format!("note: {r}\n"));
    }
    out
}
