//! Rendering for the CLI: plain aligned tables and durations, and policy-file
//! validation (shared by `flexus-agent validate`).

use std::path::Path;

use flexus_api::{DecisionRecord, MetricDatapoint, Pool, PoolStatus};

/// An aligned text table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{:<w$}  ", c, w = widths[i]));
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = vec![line(headers.to_vec())];
    for r in rows {
        out.push(line(r.iter().map(String::as_str).collect()));
    }
    out.join("\n") + "\n"
}

/// `3d4h`, `5m12s`, `42s`.
pub fn age(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// `pools list`.
pub fn pools_table(pools: &[Pool]) -> String {
    let rows: Vec<Vec<String>> = pools
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                match &p.status.refresh {
                    Some(r) => format!(
                        "{} (refresh {}/{})",
                        p.status.phase.as_str(),
                        r.replaced,
                        r.total
                    ),
                    None => p.status.phase.as_str().into(),
                },
                p.status.desired_size.map_or("-".into(), |d| d.to_string()),
                p.status.current_size.to_string(),
                p.status.ready_size.to_string(),
                format!("{}..{}", p.spec.min_size, p.spec.max_size),
                p.spec.flavor.clone(),
                p.status
                    .last_decision
                    .as_ref()
                    .map_or("-".into(), |d| format!("{} ({})", d.action, d.at)),
                error_cell(&p.status),
            ]
        })
        .collect();
    table(
        &[
            "POOL",
            "PHASE",
            "DESIRED",
            "CURRENT",
            "READY",
            "BOUNDS",
            "FLAVOR",
            "LAST DECISION",
            "ERROR",
        ],
        &rows,
    )
}

/// The pool's last error in a table cell: what failed and the cloud's code, or the
/// start of the message.
fn error_cell(s: &PoolStatus) -> String {
    match (&s.last_error_detail, &s.last_error) {
        (Some(d), _) => match &d.code {
            Some(code) => format!("{} failed: {code}", d.operation),
            None => format!("{} failed", d.operation),
        },
        (None, Some(e)) => e.chars().take(60).collect(),
        (None, None) => "-".into(),
    }
}

/// `policies list`.
pub fn policies_table(policies: &[flexus_api::Policy]) -> String {
    let rows: Vec<Vec<String>> = policies
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                p.spec.pool.clone(),
                p.spec.policy.strategy.as_str().to_owned(),
                format!("{}..{}", p.spec.policy.bounds.min, p.spec.policy.bounds.max),
                match (p.spec.policy.enabled, p.spec.policy.dry_run) {
                    (false, _) => "disabled".into(),
                    (true, true) => "dry-run".into(),
                    (true, false) => "enabled".into(),
                },
                p.version.to_string(),
                p.updated_at.clone(),
            ]
        })
        .collect();
    table(
        &[
            "POLICY", "POOL", "STRATEGY", "BOUNDS", "MODE", "VERSION", "UPDATED",
        ],
        &rows,
    )
}

/// `pools status`.
pub fn status_text(id: &str, s: &PoolStatus) -> String {
    let mut out = format!(
        "pool:      {id}\nphase:     {}\ndesired:   {}\ncurrent:   {} ({} ready)\nreconciled: {}\n",
        s.phase.as_str(),
        s.desired_size.map_or("-".into(), |d| d.to_string()),
        s.current_size,
        s.ready_size,
        s.last_reconcile_at.as_deref().unwrap_or("never"),
    );
    if let Some(r) = &s.refresh {
        out.push_str(&format!(
            "{} (template {}, at least {} ready)\n",
            r.summary(),
            r.template,
            r.min_healthy
        ));
    }
    if let Some(e) = &s.last_error {
        out.push_str(&format!("error:     {e}\n"));
    }
    if let Some(r) = s
        .last_error_detail
        .as_ref()
        .and_then(|d| d.retry_at.as_ref())
    {
        out.push_str(&format!("retry at:  {r}\n"));
    }
    if let Some(d) = &s.last_decision {
        out.push_str(&format!(
            "decision:  {} -> {} ({}): {}\n",
            d.current, d.desired, d.action, d.explanation
        ));
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = s
        .instances
        .iter()
        .map(|i| {
            vec![
                i.id.clone(),
                i.name.clone(),
                i.lifecycle.as_str().into(),
                i.purchase.label().into(),
                i.flavor.clone(),
                i.availability_zone.clone().unwrap_or_else(|| "-".into()),
                match (&i.template, i.outdated) {
                    (Some(t), true) => format!("{t} (outdated)"),
                    (None, true) => "- (outdated)".into(),
                    (Some(t), false) => t.clone(),
                    (None, false) => "-".into(),
                },
                age(i.age_seconds),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "INSTANCE",
            "NAME",
            "LIFECYCLE",
            "PURCHASE",
            "FLAVOR",
            "ZONE",
            "TEMPLATE",
            "AGE",
        ],
        &rows,
    ));
    if !s.pending_operations.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = s
            .pending_operations
            .iter()
            .map(|o| {
                vec![
                    o.id.clone(),
                    o.kind.as_str().to_owned(),
                    format!("{:?}", o.state).to_lowercase(),
                    o.count.to_string(),
                    o.created_at.clone(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["OPERATION", "KIND", "STATE", "COUNT", "STARTED"],
            &rows,
        ));
    }
    out
}

/// `decisions`.
pub fn decisions_table(ds: &[DecisionRecord]) -> String {
    let rows: Vec<Vec<String>> = ds
        .iter()
        .map(|d| {
            vec![
                d.at.clone(),
                format!("{} -> {}", d.current, d.desired),
                d.action.clone(),
                d.outcome.as_str().into(),
                d.bound_by.clone().unwrap_or_else(|| "-".into()),
                forecast_cell(d),
                d.explanation.clone(),
            ]
        })
        .collect();
    table(
        &[
            "AT",
            "COUNT",
            "ACTION",
            "OUTCOME",
            "BOUND BY",
            "FORECAST",
            "EXPLANATION",
        ],
        &rows,
    )
}

/// `tune --pool`: the finished job's report, or the job as JSON.
pub fn tune_job_text(job: &flexus_api::TuneJob, json: bool) -> anyhow::Result<String> {
    Ok(match (json, &job.result) {
        (true, _) => format!("{}\n", serde_json::to_string_pretty(job)?),
        (false, Some(r)) => r.report.clone(),
        (false, None) => String::new(),
    })
}

/// `tune-jobs`: the table, or the jobs as JSON.
pub fn tune_jobs_text(jobs: &[flexus_api::TuneJob], json: bool) -> anyhow::Result<String> {
    Ok(if json {
        format!("{}\n", serde_json::to_string_pretty(jobs)?)
    } else {
        tune_jobs_table(jobs)
    })
}

/// `tune-jobs`: one line per job; a finished one shows its validation-window measures
/// (policy before → recommendation, marked when the recommendation misses its budget
/// there) and how many baseline defaults it beats.
pub fn tune_jobs_table(jobs: &[flexus_api::TuneJob]) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            let mut started = match (&j.started_at, j.state.as_str()) {
                (Some(t), _) => t.clone(),
                (None, "running") => "waiting".into(),
                (None, _) => "-".into(),
            };
            if j.resumed > 0 {
                started.push_str(&format!(" (resumed {}x)", j.resumed));
            }
            let outcome = match (&j.result, &j.error) {
                (Some(r), _) => format!(
                    "violation {:.0} -> {:.0} min{}, {:.1} -> {:.1} instance-h; beats {} of {} baseline defaults",
                    r.before.violation_min,
                    r.after.violation_min,
                    if r.within_budget == Some(false) {
                        " (over budget)"
                    } else {
                        ""
                    },
                    r.before.instance_hours,
                    r.after.instance_hours,
                    r.baselines.iter().filter(|b| b.beaten).count(),
                    r.baselines.len()
                ),
                (None, Some(e)) => e.clone(),
                (None, None) => "-".into(),
            };
            vec![
                j.id.clone(),
                j.state.clone(),
                j.created_at.clone(),
                started,
                format!("{}", j.request.budget),
                outcome,
            ]
        })
        .collect();
    table(
        &["ID", "STATE", "ACCEPTED", "STARTED", "BUDGET", "OUTCOME"],
        &rows,
    )
}

/// The FORECAST cell of `decisions`: the forecast, the capacity it needs, and whether
/// it was applied (`forecast_and_scale`) or what it would have added (`forecast_only`).
fn forecast_cell(d: &DecisionRecord) -> String {
    let Some(p) = &d.prediction else {
        return "-".into();
    };
    match (p.forecast, p.capacity) {
        (Some(f), Some(c)) => {
            let what = if p.applied {
                "applied".to_owned()
            } else if p.would_add > 0 {
                format!("would add {}", p.would_add)
            } else {
                "not applied".to_owned()
            };
            format!("{f:.1} {} -> {c} ({what})", p.metric)
        }
        _ => format!("none ({} buckets)", p.history_buckets),
    }
}

/// `metrics push` arguments: `<metric>=<value>` or `<metric>=<value>@<RFC 3339 time>`.
pub fn parse_datapoint(s: &str) -> Result<MetricDatapoint, String> {
    let (metric, rest) = s
        .split_once('=')
        .filter(|(m, _)| !m.trim().is_empty())
        .ok_or_else(|| format!("datapoint {s:?} must be written <metric>=<value>[@<time>]"))?;
    let (value, at) = match rest.split_once('@') {
        Some((v, t)) => (v, Some(t.trim().to_owned())),
        None => (rest, None),
    };
    let value: f64 = value
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("datapoint {s:?}: value {value:?} is not a finite number"))?;
    Ok(MetricDatapoint {
        metric: metric.trim().to_owned(),
        value,
        at,
    })
}

/// Parse and validate a policy file (`.hcl` or `.json`); the error lists every
/// diagnostic with its location.
pub fn validate_policy_file(path: &Path) -> Result<flexus_policy::Policy, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let name = path.display().to_string();
    let text = flexus_policy::source_text(&bytes, &name).map_err(|d| d.to_string())?;
    let parsed = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => flexus_policy::parse_json(text),
        _ => flexus_policy::parse_hcl(text, &name),
    };
    let policy = parsed.map_err(|d| d.to_string())?;
    policy.validate().map_err(|d| d.to_string())?;
    Ok(policy)
}

/// How long `tune --pool` keeps polling an agent that does not answer (it may be
/// restarting) before it gives up; the job stays stored on the agent.
const POLL_UNREACHABLE: std::time::Duration = std::time::Duration::from_secs(60);

/// `flexus-agent tune --pool`: starts a tune job on the agent and polls it (every
/// second) until it is done; a failed job is an error with the agent's reason. An agent
/// that stops answering is asked again for up to [`POLL_UNREACHABLE`].
pub async fn tune_on_agent(
    client: &flexus_api::Client,
    ns: &str,
    name: &str,
    cmd: &flexus_sim::cli::TuneCommand,
) -> anyhow::Result<flexus_api::TuneJob> {
    let req = flexus_api::TuneRequest {
        budget: cmd.budget,
        objective: crate::tuner::api_name(crate::tuner::OBJECTIVES, cmd.objective).into(),
        max_evaluations: u32::try_from(cmd.evaluations).unwrap_or(u32::MAX),
        aim: crate::tuner::api_name(crate::tuner::AIMS, cmd.aim).into(),
        trace: cmd.trace.clone(),
        peak_instances: cmd.trace.as_ref().map(|_| cmd.peak_instances),
        hours: cmd.hours,
    };
    let mut job = client.start_tune(ns, name, &req).await?;
    eprintln!(
        "started tune job {} of {ns}/{name}; polling until it ends",
        job.id
    );
    let mut unreachable_since: Option<std::time::Instant> = None;
    while job.state == "running" {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        match client.tune_job(ns, name, &job.id).await {
            Ok(j) => {
                job = j;
                unreachable_since = None;
            }
            // The agent may be restarting: the job is stored, keep asking for a while.
            Err(e @ flexus_api::ClientError::Transport { .. }) => {
                let since = *unreachable_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() >= POLL_UNREACHABLE {
                    anyhow::bail!(
                        "{e}; tune job {} is stored on the agent: read it later with GET {}",
                        job.id,
                        flexus_api::paths::tune_job(ns, name, &job.id)
                    );
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    if job.state == "failed" {
        anyhow::bail!(
            "tune job {} of {ns}/{name} failed: {}",
            job.id,
            job.error.as_deref().unwrap_or("no reason given")
        );
    }
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_to_the_widest_cell() {
        let t = table(&["A", "LONGER"], &[vec!["wide-cell".into(), "x".into()]]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "A          LONGER");
        assert_eq!(lines[1], "wide-cell  x");
    }

    #[test]
    fn datapoint_arguments_parse_with_and_without_a_time() {
        let d = parse_datapoint("rps=12.5").unwrap();
        assert_eq!((d.metric.as_str(), d.value, d.at), ("rps", 12.5, None));
        let d = parse_datapoint("rps=3@2026-01-01T00:00:00Z").unwrap();
        assert_eq!(d.at.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert!(
            parse_datapoint("rps")
                .unwrap_err()
                .contains("<metric>=<value>")
        );
        assert!(parse_datapoint("rps=abc").unwrap_err().contains("\"abc\""));
        assert!(parse_datapoint("=1").is_err());
    }

    #[test]
    fn the_decision_table_shows_what_forecast_only_would_have_done() {
        let rec = |p: Option<flexus_api::PredictionRecord>| DecisionRecord {
            id: 1,
            at: "2026-01-01T00:00:00Z".into(),
            current: 2,
            desired: 2,
            on_demand: 2,
            spot: 0,
            action: "none".into(),
            outcome: flexus_api::DecisionOutcome::None,
            bound_by: None,
            explanation: "x".into(),
            detail: serde_json::Value::Null,
            operation_id: None,
            prediction: p,
        };
        let p = flexus_api::PredictionRecord {
            metric: "rps".into(),
            mode: flexus_policy::PredictionMode::ForecastOnly,
            forecast: Some(51.0),
            capacity: Some(6),
            applied: false,
            would_add: 4,
            method: Some("mstl".into()),
            fitted_at: None,
            history_buckets: 12,
            note: None,
        };
        let t = decisions_table(&[rec(Some(p.clone())), rec(None)]);
        assert!(t.contains("FORECAST"), "{t}");
        assert!(t.contains("51.0 rps -> 6 (would add 4)"), "{t}");
        let applied = flexus_api::PredictionRecord {
            applied: true,
            would_add: 0,
            ..p
        };
        assert!(decisions_table(&[rec(Some(applied))]).contains("(applied)"));
    }

    #[test]
    fn a_tune_over_its_budget_on_the_validation_window_is_marked_in_the_listing() {
        let measure = |violation_min| flexus_api::TuneMeasure {
            violation_min,
            violation_share: violation_min / 7200.0,
            instance_hours: 10.0,
            cost: 1.0,
        };
        let job = |within_budget| flexus_api::TuneJob {
            id: "tune-1".into(),
            pool: "team-a/web".into(),
            state: "done".into(),
            created_at: "2026-12-07T18:00:00Z".into(),
            started_at: Some("2026-12-07T18:00:01Z".into()),
            finished_at: Some("2026-12-07T18:00:09Z".into()),
            request: flexus_api::TuneRequest::default(),
            resumed: 0,
            result: Some(flexus_api::TuneOutcome {
                policy: serde_json::from_value(serde_json::json!({
                    "strategy": "fixed", "bounds": {"min": 1, "max": 1}, "fixed": {"count": 1}
                }))
                .unwrap(),
                changes: Vec::new(),
                tune_hours: 80.0,
                validation_hours: 40.0,
                evaluations: 60,
                before: measure(300.0),
                after: measure(250.0),
                baselines: Vec::new(),
                within_budget,
                report: String::new(),
            }),
            error: None,
        };
        let over = tune_jobs_table(&[job(Some(false))]);
        assert!(
            over.contains("violation 300 -> 250 min (over budget),"),
            "{over}"
        );
        for fine in [Some(true), None] {
            let t = tune_jobs_table(&[job(fine)]);
            assert!(t.contains("violation 300 -> 250 min,"), "{t}");
        }
    }

    #[test]
    fn ages_read_as_the_two_largest_units() {
        assert_eq!(age(42), "42s");
        assert_eq!(age(312), "5m12s");
        assert_eq!(age(3 * 86400 + 4 * 3600 + 5), "3d4h");
    }
}
