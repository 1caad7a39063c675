//! Semantic validation of a [`Policy`], usable on a policy built by code (the Terraform
//! provider) as well as one parsed from a file. Reports every problem with its field path.

use std::collections::HashSet;
use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::diag::{Diagnostics, FieldPath};
use crate::engine::step_is_above;
use crate::model::{
    AdjustmentType, Metric, MetricSource, MissingData, Policy, RateKind, RatePolicy, Schedule,
    SeedBand, SeedSettings, Strategy,
};

/// Largest rate-policy period (HPA allows up to 1800 s).
const MAX_RATE_PERIOD: Duration = Duration::from_secs(1800);

/// The five cron fields: name, lowest and highest value, and the names they accept.
const CRON_FIELDS: [(&str, u32, u32, &[&str]); 5] = [
    ("minute", 0, 59, &[]),
    ("hour", 0, 23, &[]),
    ("day-of-month", 1, 31, &[]),
    (
        "month",
        1,
        12,
        &[
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ],
    ),
    (
        "day-of-week",
        0,
        7,
        &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    ),
];

/// Checks one cron field in our own words: lists (`,`), ranges (`a-b`), steps (`/n`),
/// `*`, numbers within the field's range and the month/day names. Croner's extensions
/// (`L`, `W`, `#`, `?`) are left to croner.
fn check_cron_field(
    text: &str,
    (name, lo, hi, names): (&str, u32, u32, &[&str]),
) -> Result<(), String> {
    let value = |v: &str| -> Result<Option<u32>, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
            return Ok(Some(i as u32 + lo));
        }
        if v.chars()
            .any(|c| matches!(c, 'L' | 'W' | '#' | '?' | 'l' | 'w'))
        {
            return Ok(None);
        }
        let n: u32 = v.parse().map_err(|_| {
            let hint = if names.is_empty() {
                String::new()
            } else {
                format!(" or a name ({})", names.join(", "))
            };
            format!("{name} {v:?} is not a number{hint}")
        })?;
        if n < lo || n > hi {
            return Err(format!("{name} {n} is out of range {lo}–{hi}"));
        }
        Ok(Some(n))
    };
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        if let Some(s) = step {
            match s.parse::<u32>() {
                Ok(n) if n >= 1 && n <= hi.max(1) => {}
                _ => {
                    return Err(format!(
                        "{name} step {s:?} must be a whole number from 1 to {hi}"
                    ));
                }
            }
        }
        if range == "*" || range.is_empty() && step.is_none() {
            continue;
        }
        match range.split_once('-') {
            Some((a, b)) => {
                if let (Some(a), Some(b)) = (value(a)?, value(b)?)
                    && a > b
                {
                    return Err(format!("{name} range {a}-{b} runs backwards"));
                }
            }
            None => {
                value(range)?;
            }
        }
    }
    Ok(())
}

/// Parses a five-field cron expression (minute hour day-of-month month day-of-week).
/// Errors say which field is wrong and why (`hour 25 is out of range 0–23`).
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "invalid cron expression {expr:?}: expected 5 fields (minute hour day-of-month month day-of-week), found {}",
            fields.len()
        ));
    }
    for (text, field) in fields.iter().zip(CRON_FIELDS) {
        check_cron_field(text, field)
            .map_err(|e| format!("invalid cron expression {expr:?}: {e}"))?;
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|_| {
            format!(
                "invalid cron expression {expr:?}: not understood (fields: minute hour day-of-month month day-of-week; e.g. \"0 8 * * MON-FRI\")"
            )
        })
}

/// Parses an IANA time zone name (`Europe/Paris`, `Asia/Shanghai`, `UTC`).
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.parse::<chrono_tz::Tz>().map_err(|_| {
        format!(
            "{name:?} is not an IANA time zone (e.g. \"UTC\", \"Europe/Paris\", \"Asia/Shanghai\")"
        )
    })
}

/// Parses an RFC 3339 time (`2026-11-01T08:00:00+08:00`) into a [`crate::Timestamp`].
pub fn parse_time(text: &str) -> Result<crate::Timestamp, String> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| crate::Timestamp(t.timestamp_millis()))
        .map_err(|e| {
            format!("{text:?} is not an RFC 3339 time such as \"2026-11-01T08:00:00+08:00\" ({e})")
        })
}

struct V {
    d: Diagnostics,
}

impl V {
    fn err(&mut self, path: FieldPath, msg: String) {
        self.d.push(path, msg);
    }

    fn finite(&mut self, path: &FieldPath, v: f64) -> bool {
        if v.is_finite() {
            true
        } else {
            self.err(
                path.clone(),
                format!("{path} must be a finite number, got {v}"),
            );
            false
        }
    }

    fn positive(&mut self, path: &FieldPath, v: f64) {
        if self.finite(path, v) && v <= 0.0 {
            self.err(
                path.clone(),
                format!("{path} must be greater than 0, got {v}"),
            );
        }
    }

    /// A `what`'s `name` (at `path`) is not blank and was not declared before (`seen`).
    fn unique_name<'a>(
        &mut self,
        path: FieldPath,
        what: &str,
        name: &'a str,
        seen: &mut HashSet<&'a str>,
    ) {
        if name.trim().is_empty() {
            self.err(path.clone(), format!("{path} must not be empty"));
        } else if !seen.insert(name) {
            self.err(
                path,
                format!("{what} name {name:?} is declared more than once"),
            );
        }
    }

    fn non_negative(&mut self, path: &FieldPath, v: f64) {
        if self.finite(path, v) && v < 0.0 {
            self.err(path.clone(), format!("{path} must be at least 0, got {v}"));
        }
    }

    fn range(&mut self, path: &FieldPath, v: f64, lo: f64, hi: f64) {
        if self.finite(path, v) && !(lo..=hi).contains(&v) {
            self.err(
                path.clone(),
                format!("{path} must be between {lo} and {hi}, got {v}"),
            );
        }
    }

    fn duration_positive(&mut self, path: &FieldPath, d: Duration) {
        if d.is_zero() {
            self.err(
                path.clone(),
                format!(
                    "{path} must be a positive duration (e.g. \"90s\", \"5m\", \"1h\"), got 0s"
                ),
            );
        }
    }
}

impl Policy {
    /// Checks every rule of the policy and reports every violation with its field path
    /// (`bounds.min`, `metrics[2].target`, `scale_in.policies[0].value`).
    pub fn validate(&self) -> Result<(), Diagnostics> {
        let mut v = V {
            d: Diagnostics::new(),
        };
        let root = FieldPath::root();
        let p = self;

        v.duration_positive(&root.field("evaluation_interval"), p.evaluation_interval);
        let tol = root.field("tolerance");
        if v.finite(&tol, p.tolerance) && !(0.0..1.0).contains(&p.tolerance) {
            v.err(
                tol,
                format!(
                    "tolerance must be at least 0 and less than 1, got {}",
                    p.tolerance
                ),
            );
        }

        validate_bounds(&mut v, p);
        let mut names = HashSet::new();
        for (i, m) in p.metrics.iter().enumerate() {
            let mp = root.field("metrics").index(i);
            validate_metric_name_source(&mut v, &mp, m, &mut names);
            validate_metric_thresholds(&mut v, p, &mp, m);
            validate_metric_signal(&mut v, p, &mp, m);
        }
        validate_strategy(&mut v, p);
        // Behaviour.
        validate_rates(
            &mut v,
            &root.field("scale_out"),
            &p.scale_out.policies,
            1000,
        );
        validate_rates(&mut v, &root.field("scale_in"), &p.scale_in.policies, 100);

        validate_schedules(&mut v, p);
        validate_prediction(&mut v, p);
        // Spot mix.
        v.range(
            &root.field("spot").field("spot_percentage"),
            p.spot.spot_percentage,
            0.0,
            100.0,
        );

        validate_seed(&mut v, &p.seed);

        let labels: Vec<(String, String)> = (self.metrics.iter().map(|m| ("metrics", &m.name)))
            .enumerate()
            .chain(
                self.schedules
                    .iter()
                    .map(|s| ("schedules", &s.name))
                    .enumerate(),
            )
            .filter_map(|(i, (key, name))| crate::diag::block_label(key, i, name))
            .collect();
        Diagnostics(
            v.d.into_iter()
                .map(|d| crate::diag::Diagnostic {
                    message: crate::diag::name_blocks(d.message, &labels),
                    ..d
                })
                .collect(),
        )
        .into_result()
    }
}

/// `bounds`: at least one instance, min ≤ max, initial within them.
fn validate_bounds(v: &mut V, p: &Policy) {
    let root = FieldPath::root();
    let b = root.field("bounds");
    if p.bounds.max == 0 {
        v.err(
            b.field("max"),
            "bounds.max must be at least 1, got 0".into(),
        );
    }
    if p.bounds.min > p.bounds.max {
        v.err(
            b.field("min"),
            format!(
                "bounds.min ({}) must be at most bounds.max ({})",
                p.bounds.min, p.bounds.max
            ),
        );
    }
    if let Some(i) = p.bounds.initial
        && (i < p.bounds.min || i > p.bounds.max)
    {
        v.err(
            b.field("initial"),
            format!(
                "bounds.initial ({i}) must be between bounds.min ({}) and bounds.max ({})",
                p.bounds.min, p.bounds.max
            ),
        );
    }
}

/// A metric's name (non-empty, unique) and its source's required fields.
fn validate_metric_name_source<'a>(
    v: &mut V,
    mp: &FieldPath,
    m: &'a Metric,
    names: &mut HashSet<&'a str>,
) {
    v.unique_name(mp.field("name"), "metric", &m.name, names);
    match &m.source {
        MetricSource::CloudEye {
            namespace,
            metric_name,
        } => {
            let sp = mp.field("source");
            if namespace.trim().is_empty() {
                v.err(
                    sp.field("namespace"),
                    format!("{} must not be empty", sp.field("namespace")),
                );
            }
            if metric_name.trim().is_empty() {
                v.err(
                    sp.field("metric_name"),
                    format!("{} must not be empty", sp.field("metric_name")),
                );
            }
        }
        MetricSource::Prometheus { query } if query.trim().is_empty() => {
            let q = mp.field("source").field("query");
            v.err(q.clone(), format!("{q} must not be empty"));
        }
        MetricSource::Redis { key } if key.trim().is_empty() => {
            let q = mp.field("source").field("key");
            v.err(q.clone(), format!("{q} must not be empty"));
        }
        _ => {}
    }
}

/// A metric's target and its seed band thresholds (the declared ones and the defaults they pair with).
fn validate_metric_thresholds(v: &mut V, p: &Policy, mp: &FieldPath, m: &Metric) {
    if let Some(t) = m.target {
        let tp = mp.field("target");
        if m.kind.is_percent() && !m.per_instance {
            if v.finite(&tp, t) && !(t > 0.0 && t <= 100.0) {
                v.err(
                    tp,
                    format!(
                        "{} (a {} percentage) must be greater than 0 and at most 100, got {t}",
                        mp.field("target"),
                        m.kind.as_str()
                    ),
                );
            }
        } else {
            v.positive(&tp, t);
        }
    }
    let (above, below) = (m.scale_out_above, m.scale_in_below);
    if let Some(a) = above {
        v.finite(&mp.field("scale_out_above"), a);
    }
    if let Some(bv) = below {
        v.finite(&mp.field("scale_in_below"), bv);
    }
    // Effective band thresholds (seed defaults fill what is not declared).
    let band = p.seed.band(m.kind);
    let eff_above = above.or(band.map(|b| b.scale_out_above));
    let eff_below = below.or(band.map(|b| b.scale_in_below));
    if (above.is_some() || below.is_some())
        && let (Some(a), Some(bv)) = (eff_above, eff_below)
        && a.is_finite()
        && bv.is_finite()
        && a <= bv
    {
        v.err(
            mp.field(if above.is_some() {
                "scale_out_above"
            } else {
                "scale_in_below"
            }),
            format!(
                "{}: scale_out_above ({a}) must be greater than scale_in_below ({bv})",
                mp
            ),
        );
    }
}

/// The longest `noise_window`: the agent keeps a day of pushed readings.
const MAX_NOISE_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// A metric's weight, staleness, trend settings and missing-data rule.
fn validate_metric_signal(v: &mut V, p: &Policy, mp: &FieldPath, m: &Metric) {
    if let Some(w) = m.weight {
        v.non_negative(&mp.field("weight"), w);
    }
    if let Some(sa) = m.stale_after {
        v.duration_positive(&mp.field("stale_after"), sa);
    }
    if !m.trend_lead.is_zero() {
        v.duration_positive(&mp.field("trend_window"), m.trend_window);
    }
    v.non_negative(&mp.field("trend_noise_margin"), m.trend_noise_margin);
    v.non_negative(&mp.field("sqrt_headroom"), m.sqrt_headroom);
    v.non_negative(&mp.field("noise_headroom"), m.noise_headroom);
    if let Some(x) = m.coarse_sqrt_headroom {
        v.non_negative(&mp.field("coarse_sqrt_headroom"), x);
    }
    if let Some(x) = m.coarse_noise_headroom {
        v.non_negative(&mp.field("coarse_noise_headroom"), x);
    }
    if m.noise_headroom > 0.0 || m.coarse_noise_headroom.is_some_and(|z| z > 0.0) {
        let wp = mp.field("noise_window");
        v.duration_positive(&wp, m.noise_window);
        if m.noise_window > MAX_NOISE_WINDOW {
            v.err(
                wp.clone(),
                format!(
                    "{wp} must be at most 24h (the agent keeps a day of readings), got {}",
                    crate::time::format_duration(m.noise_window)
                ),
            );
        }
    }
    v.non_negative(&mp.field("trend_significance"), m.trend_significance);
    v.non_negative(&mp.field("trend_max_raise"), m.trend_max_raise);
    if m.missing_data == MissingData::Fallback {
        match m.fallback_capacity {
            None => v.err(
                mp.field("fallback_capacity"),
                format!(
                    "{} is required when missing_data = \"fallback\"",
                    mp.field("fallback_capacity")
                ),
            ),
            Some(f) if f > p.bounds.max => v.err(
                mp.field("fallback_capacity"),
                format!(
                    "{} ({f}) must be at most bounds.max ({})",
                    mp.field("fallback_capacity"),
                    p.bounds.max
                ),
            ),
            _ => {}
        }
    }
}

/// What the chosen strategy needs (a target, seed metrics, a step or fixed block, schedules).
fn validate_strategy(v: &mut V, p: &Policy) {
    let root = FieldPath::root();
    match p.strategy {
        Strategy::TargetTracking => {
            if !p.metrics.iter().any(|m| m.target.is_some()) {
                v.err(
                    root.field("metrics"),
                    "strategy \"target_tracking\" needs at least one metric with a target".into(),
                );
            }
        }
        Strategy::Seed => {
            let scored: Vec<f64> = p
                .metrics
                .iter()
                .filter(|m| p.seed.band(m.kind).is_some())
                .map(|m| {
                    m.weight
                        .unwrap_or_else(|| SeedSettings::default_weight(m.kind))
                })
                .collect();
            if scored.is_empty() {
                v.err(
                    root.field("metrics"),
                    "strategy \"seed\" needs at least one metric of kind cpu, memory, response_time or queue_length".into(),
                );
            } else if scored.iter().all(|w| *w == 0.0) {
                v.err(
                    root.field("metrics"),
                    "strategy \"seed\": the metric weights must not all be zero".into(),
                );
            }
        }
        Strategy::Step => match &p.step {
            None => v.err(
                root.field("step"),
                "strategy \"step\" needs a step block".into(),
            ),
            Some(s) => validate_step(v, p, s),
        },
        Strategy::Fixed => match p.fixed {
            None => v.err(
                root.field("fixed"),
                "strategy \"fixed\" needs a fixed block with the count to hold".into(),
            ),
            Some(f) if f.count < p.bounds.min || f.count > p.bounds.max => v.err(
                root.field("fixed").field("count"),
                format!(
                    "fixed.count ({}) must be within bounds.min ({}) and bounds.max ({})",
                    f.count, p.bounds.min, p.bounds.max
                ),
            ),
            Some(_) => {}
        },
        Strategy::Schedule => {
            if p.schedules.is_empty() {
                v.err(
                    root.field("schedules"),
                    "strategy \"schedule\" needs at least one schedule".into(),
                );
            }
        }
    }
    if p.strategy != Strategy::Step
        && let Some(s) = &p.step
    {
        // Still check it, so a file with a step block is fully validated.
        validate_step(v, p, s);
    }
}

/// Each schedule: unique name, cron, duration, minimum within the bounds.
fn validate_schedules(v: &mut V, p: &Policy) {
    let root = FieldPath::root();
    let mut snames = HashSet::new();
    for (i, s) in p.schedules.iter().enumerate() {
        let sp = root.field("schedules").index(i);
        v.unique_name(sp.field("name"), "schedule", &s.name, &mut snames);
        if let Err(e) = parse_cron(&s.cron) {
            v.err(sp.field("cron"), format!("{}: {e}", sp.field("cron")));
        }
        if let Err(e) = parse_timezone(&s.timezone) {
            v.err(
                sp.field("timezone"),
                format!("{}: {e}", sp.field("timezone")),
            );
        }
        validate_schedule_window(v, &sp, s);
        v.duration_positive(&sp.field("duration"), s.duration);
        if s.min_capacity > p.bounds.max {
            v.err(
                sp.field("min_capacity"),
                format!(
                    "{} ({}) must be at most bounds.max ({})",
                    sp.field("min_capacity"),
                    s.min_capacity,
                    p.bounds.max
                ),
            );
        }
    }
}

/// A schedule's optional `start_time`/`end_time` (RFC 3339, the end after the start).
fn validate_schedule_window(v: &mut V, sp: &FieldPath, s: &Schedule) {
    let mut window = [None, None];
    for (slot, (field, text)) in window
        .iter_mut()
        .zip([("start_time", &s.start_time), ("end_time", &s.end_time)])
    {
        if let Some(t) = text {
            match parse_time(t) {
                Ok(ts) => *slot = Some(ts),
                Err(e) => v.err(sp.field(field), format!("{}: {e}", sp.field(field))),
            }
        }
    }
    if let [Some(start), Some(end)] = window
        && end <= start
    {
        v.err(
            sp.field("end_time"),
            format!("{}: end_time must be after start_time", sp),
        );
    }
}

/// The prediction block: its metric, per-instance target, ratio cap and durations.
fn validate_prediction(v: &mut V, p: &Policy) {
    let root = FieldPath::root();
    let pp = root.field("prediction");
    let pr = &p.prediction;
    if pr.enabled {
        match &pr.metric {
            None => v.err(
                pp.field("metric"),
                "prediction.metric is required when prediction is enabled".into(),
            ),
            Some(m) if !p.metrics.iter().any(|x| &x.name == m) => v.err(
                pp.field("metric"),
                format!(
                    "prediction.metric {m:?} names no declared metric (declared: {})",
                    metric_names(p)
                ),
            ),
            _ => {}
        }
        match pr.target_per_instance {
            None => v.err(
                pp.field("target_per_instance"),
                "prediction.target_per_instance is required when prediction is enabled".into(),
            ),
            Some(t) => v.positive(&pp.field("target_per_instance"), t),
        }
    } else if let Some(t) = pr.target_per_instance {
        v.positive(&pp.field("target_per_instance"), t);
    }
    if let Some(r) = pr.max_ratio {
        let rp = pp.field("max_ratio");
        if v.finite(&rp, r) && r < 1.0 {
            v.err(rp.clone(), format!("{rp} must be at least 1, got {r}"));
        }
    }
    if let Some(s) = pr.min_seasonal_strength {
        v.range(&pp.field("min_seasonal_strength"), s, 0.0, 1.0);
    }
    v.duration_positive(&pp.field("lead_time"), pr.lead_time);
    v.duration_positive(&pp.field("history_window"), pr.history_window);
    v.duration_positive(&pp.field("refit_interval"), pr.refit_interval);
    for (i, s) in pr.seasonality.iter().enumerate() {
        v.duration_positive(&pp.field("seasonality").index(i), *s);
    }
}

/// The seed strategy's constants: bands, trend, scores and factors.
fn validate_seed(v: &mut V, s: &SeedSettings) {
    let root = FieldPath::root();
    let sp = root.field("seed");
    for (name, band) in [
        ("cpu", &s.cpu),
        ("memory", &s.memory),
        ("response_time", &s.response_time),
        ("queue_length", &s.queue_length),
    ] {
        validate_band(v, &sp.field(name), band);
    }
    let _ = v.finite(&sp.field("trend_weight"), s.trend_weight);
    if s.trend_weight < 0.0 {
        v.err(
            sp.field("trend_weight"),
            format!(
                "seed.trend_weight must be at least 0, got {}",
                s.trend_weight
            ),
        );
    }
    v.positive(&sp.field("trend_divisor"), s.trend_divisor);
    if s.trend_samples == 1 {
        v.err(
            sp.field("trend_samples"),
            "seed.trend_samples must be 0 (no trend) or at least 2, got 1".into(),
        );
    }
    let out_ok = v.finite(&sp.field("scale_out_score"), s.scale_out_score);
    let in_ok = v.finite(&sp.field("scale_in_score"), s.scale_in_score);
    if out_ok && in_ok && s.scale_out_score <= s.scale_in_score {
        v.err(
            sp.field("scale_out_score"),
            format!(
                "seed.scale_out_score ({}) must be greater than seed.scale_in_score ({})",
                s.scale_out_score, s.scale_in_score
            ),
        );
    }
    v.positive(&sp.field("out_factor"), s.out_factor);
    v.positive(&sp.field("in_factor"), s.in_factor);
}

fn metric_names(p: &Policy) -> String {
    let v: Vec<String> = p.metrics.iter().map(|m| format!("{:?}", m.name)).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn validate_band(v: &mut V, path: &FieldPath, b: &SeedBand) {
    let ok = [
        v.finite(&path.field("scale_out_above"), b.scale_out_above),
        v.finite(&path.field("scale_in_below"), b.scale_in_below),
        v.finite(&path.field("out_origin"), b.out_origin),
    ]
    .iter()
    .all(|x| *x);
    v.positive(&path.field("out_span"), b.out_span);
    v.positive(&path.field("in_span"), b.in_span);
    if ok && b.scale_out_above <= b.scale_in_below {
        v.err(
            path.field("scale_out_above"),
            format!(
                "{path}: scale_out_above ({}) must be greater than scale_in_below ({})",
                b.scale_out_above, b.scale_in_below
            ),
        );
    }
}

fn validate_rates(v: &mut V, path: &FieldPath, policies: &[RatePolicy], max_percent: u32) {
    for (i, r) in policies.iter().enumerate() {
        let rp = path.field("policies").index(i);
        match r.kind {
            RateKind::Pods if r.value == 0 => v.err(
                rp.field("value"),
                format!(
                    "{} (instances) must be at least 1, got 0",
                    rp.field("value")
                ),
            ),
            RateKind::Percent if r.value == 0 || r.value > max_percent => v.err(
                rp.field("value"),
                format!(
                    "{} (percent) must be between 1 and {max_percent}, got {}",
                    rp.field("value"),
                    r.value
                ),
            ),
            _ => {}
        }
        v.duration_positive(&rp.field("period"), r.period);
        if r.period > MAX_RATE_PERIOD {
            v.err(
                rp.field("period"),
                format!(
                    "{} must be at most 30m, got {}",
                    rp.field("period"),
                    crate::time::format_duration(r.period)
                ),
            );
        }
    }
}

fn validate_step(v: &mut V, p: &Policy, s: &crate::model::StepSettings) {
    let sp = FieldPath::root().field("step");
    if !p.metrics.iter().any(|m| m.name == s.metric) {
        v.err(
            sp.field("metric"),
            format!(
                "step.metric {:?} names no declared metric (declared: {})",
                s.metric,
                metric_names(p)
            ),
        );
    }
    v.finite(&sp.field("threshold"), s.threshold);
    if s.min_adjustment_magnitude == Some(0) {
        v.err(
            sp.field("min_adjustment_magnitude"),
            "step.min_adjustment_magnitude must be at least 1, got 0".into(),
        );
    }
    if s.min_adjustment_magnitude.is_some()
        && s.adjustment_type != AdjustmentType::PercentChangeInCapacity
    {
        v.err(
            sp.field("min_adjustment_magnitude"),
            "step.min_adjustment_magnitude applies only to adjustment_type = \"percent_change_in_capacity\"".into(),
        );
    }
    if s.adjustments.is_empty() {
        v.err(
            sp.field("adjustments"),
            "step.adjustments must contain at least one step".into(),
        );
    }
    let mut intervals: Vec<(usize, f64, f64)> = Vec::new();
    for (i, a) in s.adjustments.iter().enumerate() {
        let ap = sp.field("adjustments").index(i);
        let mut ok = v.finite(&ap.field("adjustment"), a.adjustment);
        if let Some(l) = a.lower {
            ok &= v.finite(&ap.field("lower"), l);
        }
        if let Some(u) = a.upper {
            ok &= v.finite(&ap.field("upper"), u);
        }
        if !ok {
            continue;
        }
        let lo = a.lower.unwrap_or(f64::NEG_INFINITY);
        let hi = a.upper.unwrap_or(f64::INFINITY);
        if lo >= hi {
            v.err(
                ap.field("upper"),
                format!("{}: upper ({hi}) must be greater than lower ({lo})", ap),
            );
            continue;
        }
        if !(step_is_above(a) || a.upper.is_some_and(|u| u <= 0.0)) {
            v.err(
                ap.clone(),
                format!(
                    "{ap}: a step lies either above the threshold (lower ≥ 0) or below it (upper ≤ 0); got lower {lo}, upper {hi}"
                ),
            );
            continue;
        }
        if s.adjustment_type == AdjustmentType::ExactCapacity && a.adjustment < 0.0 {
            v.err(
                ap.field("adjustment"),
                format!(
                    "{}: an exact capacity must be at least 0",
                    ap.field("adjustment")
                ),
            );
        }
        for (j, l2, h2) in &intervals {
            if lo < *h2 && *l2 < hi {
                v.err(ap.clone(), format!("{ap} overlaps step.adjustments[{j}]"));
            }
        }
        intervals.push((i, lo, hi));
    }
}
