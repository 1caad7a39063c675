//! Helpers shared by the integration tests.
#![allow(dead_code)]

use flexus_policy::*;

/// Builds and compiles a policy from JSON, panicking with every diagnostic if invalid.
pub fn policy(json: &str) -> CompiledPolicy {
    let p = parse_json(json).unwrap_or_else(|d| panic!("test policy is invalid:\n{d}"));
    CompiledPolicy::new(p).unwrap_or_else(|d| panic!("test policy does not compile:\n{d}"))
}

/// A pool with `ready` ready and `booting` booting on-demand instances.
pub fn pool(ready: u32, booting: u32) -> PoolState {
    let mut p = PoolState::ready(ready, Timestamp::from_secs(0));
    for i in 0..booting {
        p.instances.push(Instance {
            id: format!("b-{i}"),
            lifecycle: Lifecycle::Booting,
            purchase: Purchase::OnDemand,
            since: Timestamp::from_secs(0),
        });
    }
    p
}

/// Observations all taken at `at`.
pub fn obs(at: Timestamp, values: &[(&str, f64)]) -> Vec<Observation> {
    values
        .iter()
        .map(|(m, v)| Observation {
            metric: (*m).to_owned(),
            value: *v,
            at,
        })
        .collect()
}

/// Decides with no forecast.
pub fn run(
    cp: &CompiledPolicy,
    now: Timestamp,
    o: &[Observation],
    pool: &PoolState,
    h: &History,
) -> Decision {
    decide(
        cp,
        &DecisionInput {
            now,
            observations: o,
            pool,
            history: h,
            prediction: None,
        },
    )
}

/// A policy JSON with the given strategy, bounds, metrics and extra top-level fields, and
/// with stabilisation and rate limits switched off unless `extra` sets them.
pub fn json(strategy: &str, min: u32, max: u32, metrics: &str, extra: &str) -> String {
    let behaviour = if extra.contains("\"scale_in\"") || extra.contains("\"scale_out\"") {
        String::new()
    } else {
        r#", "scale_out": {"policies": []}, "scale_in": {"stabilisation_window": "0s", "policies": []}"#.to_owned()
    };
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    format!(
        r#"{{"strategy": "{strategy}", "bounds": {{"min": {min}, "max": {max}}}, "metrics": [{metrics}]{behaviour}{extra}}}"#
    )
}

/// A pushed metric declaration.
pub fn metric(name: &str, kind: &str, rest: &str) -> String {
    let rest = if rest.is_empty() {
        String::new()
    } else {
        format!(", {rest}")
    };
    format!(r#"{{"name": "{name}", "kind": "{kind}", "source": {{"type": "push"}}{rest}}}"#)
}

/// Asserts that among `err`'s diagnostics there is one at each of the field paths `want`.
pub fn assert_paths_named(err: &Diagnostics, want: &[&str]) {
    let paths: Vec<String> = err.iter().map(|d| d.path.to_string()).collect();
    for want in want {
        assert!(
            paths.iter().any(|p| p == want),
            "missing {want} in {paths:?}"
        );
    }
}
