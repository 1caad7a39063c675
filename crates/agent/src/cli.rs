//! Rendering for the CLI: plain aligned tables and durations, and policy-file
//! validation (shared by `flexus-agent validate`).

use std::path::Path;

use flexus_api::{DecisionRecord, Lifecycle, Pool, PoolStatus, Purchase};

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

fn lifecycle(l: Lifecycle) -> &'static str {
    match l {
        Lifecycle::Booting => "booting",
        Lifecycle::Warming => "warming",
        Lifecycle::Ready => "ready",
        Lifecycle::Draining => "draining",
        Lifecycle::Reclaimed => "reclaimed",
        Lifecycle::Failed => "failed",
    }
}

fn phase(s: &PoolStatus) -> String {
    serde_json::to_value(s.phase)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `pools list`.
pub fn pools_table(pools: &[Pool]) -> String {
    let rows: Vec<Vec<String>> = pools
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                phase(&p.status),
                p.status.desired_size.map_or("-".into(), |d| d.to_string()),
                p.status.current_size.to_string(),
                p.status.ready_size.to_string(),
                format!("{}..{}", p.spec.min_size, p.spec.max_size),
                p.spec.flavor.clone(),
                p.status
                    .last_decision
                    .as_ref()
                    .map_or("-".into(), |d| format!("{} ({})", d.action, d.at)),
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
        ],
        &rows,
    )
}

/// `pools status`.
pub fn status_text(id: &str, s: &PoolStatus) -> String {
    let mut out = format!(
        "pool:      {id}\nphase:     {}\ndesired:   {}\ncurrent:   {} ({} ready)\nreconciled: {}\n",
        phase(s),
        s.desired_size.map_or("-".into(), |d| d.to_string()),
        s.current_size,
        s.ready_size,
        s.last_reconcile_at.as_deref().unwrap_or("never"),
    );
    if let Some(e) = &s.last_error {
        out.push_str(&format!("error:     {e}\n"));
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
                lifecycle(i.lifecycle).into(),
                match i.purchase {
                    Purchase::Spot => "spot".into(),
                    Purchase::OnDemand => "on-demand".into(),
                },
                i.flavor.clone(),
                i.availability_zone.clone().unwrap_or_else(|| "-".into()),
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
                    format!("{:?}", o.kind).to_lowercase(),
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
                serde_json::to_value(d.outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                d.bound_by.clone().unwrap_or_else(|| "-".into()),
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
            "EXPLANATION",
        ],
        &rows,
    )
}

/// Parse and validate a policy file (`.hcl` or `.json`); the error lists every
/// diagnostic with its location.
pub fn validate_policy_file(path: &Path) -> Result<flexus_policy::Policy, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let name = path.display().to_string();
    let parsed = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => flexus_policy::parse_json(&text),
        _ => flexus_policy::parse_hcl(&text, &name),
    };
    let policy = parsed.map_err(|d| d.to_string())?;
    policy.validate().map_err(|d| d.to_string())?;
    Ok(policy)
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
    fn ages_read_as_the_two_largest_units() {
        assert_eq!(age(42), "42s");
        assert_eq!(age(312), "5m12s");
        assert_eq!(age(3 * 86400 + 4 * 3600 + 5), "3d4h");
    }
}
