//! Golden tests: every file in `examples/policies/` parses, and its decisions on a
//! recorded request sequence (NASA HTTP, 1995-07-13 06:00-11:59, one step per minute)
//! match the reviewed snapshot in `tests/golden/<policy>.txt`.
//!
//! The replay uses a deliberately small capacity model so the metrics respond to the
//! decisions: one instance serves 20 requests/minute at 100 % utilisation; new instances
//! boot for one minute and warm for one more; removed instances leave at once.
//! Regenerate the snapshots with `FLEXUS_UPDATE_GOLDEN=1` and review the diff.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use flexus_policy::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example_files() -> Vec<PathBuf> {
    let dir = root().join("../../examples/policies");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/policies exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "hcl" || e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "expected the example policies in {}",
        dir.display()
    );
    files
}

fn load(path: &Path) -> Policy {
    let src = std::fs::read_to_string(path).expect("read policy");
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("policy");
    let parsed = if name.ends_with(".json") {
        parse_json(&src)
    } else {
        parse_hcl(&src, name)
    };
    parsed.unwrap_or_else(|d| panic!("{name} does not parse:\n{d}"))
}

#[test]
fn every_example_policy_parses_and_compiles() {
    for f in example_files() {
        CompiledPolicy::new(load(&f))
            .unwrap_or_else(|d| panic!("{} does not compile:\n{d}", f.display()));
    }
}

#[test]
fn the_json_example_lowers_to_the_same_policy_as_its_hcl_twin() {
    let dir = root().join("../../examples/policies");
    assert_eq!(
        load(&dir.join("inference-target-tracking.hcl")),
        load(&dir.join("inference-target-tracking.json"))
    );
}

fn demand() -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(root().join("tests/data/nasa-1995-07-13-morning.csv"))
        .expect("read trace");
    text.lines()
        .skip(1)
        .map(|l| {
            let (m, r) = l.split_once(',').expect("minute,requests");
            (m.to_owned(), r.parse().expect("requests is a number"))
        })
        .collect()
}

const PER_INSTANCE: f64 = 20.0; // requests per minute at 100 % utilisation
const START: Timestamp = Timestamp::from_secs(1_767_592_800); // 2026-01-05T06:00:00Z, a Monday

struct Sim {
    pool: PoolState,
    next_id: u32,
}

impl Sim {
    fn observations(&self, now: Timestamp, demand: f64, policy: &Policy) -> Vec<Observation> {
        let ready = self.pool.counts().ready;
        let capacity = f64::from(ready) * PER_INSTANCE;
        let util = if capacity > 0.0 {
            (100.0 * demand / capacity).min(100.0)
        } else {
            100.0
        };
        let queue = (demand - 0.8 * capacity).max(0.0) * 2.0;
        policy
            .metrics
            .iter()
            .map(|m| {
                let value = match m.kind {
                    MetricKind::Cpu | MetricKind::Gpu => util,
                    MetricKind::Memory => 30.0 + 0.6 * util,
                    MetricKind::ResponseTime => 300.0 / (1.0 - util.min(95.0) / 100.0),
                    MetricKind::QueueLength => queue,
                    MetricKind::ErrorRate => 0.0,
                    MetricKind::Custom => demand,
                };
                Observation {
                    metric: m.name.clone(),
                    value,
                    at: now,
                }
            })
            .collect()
    }

    fn advance(&mut self, now: Timestamp) {
        for i in &mut self.pool.instances {
            let age = now.since(i.since).as_secs();
            match i.lifecycle {
                Lifecycle::Booting if age >= 60 => {
                    i.lifecycle = Lifecycle::Warming;
                    i.since = now;
                }
                Lifecycle::Warming if age >= 60 => {
                    i.lifecycle = Lifecycle::Ready;
                    i.since = now;
                }
                _ => {}
            }
        }
    }

    fn apply(&mut self, d: &Decision, now: Timestamp) {
        match d.action {
            Action::ScaleOut { by } => {
                for _ in 0..by {
                    self.next_id += 1;
                    self.pool.instances.push(Instance {
                        id: format!("i-{}", self.next_id),
                        lifecycle: Lifecycle::Booting,
                        purchase: Purchase::OnDemand,
                        since: now,
                    });
                }
            }
            Action::ScaleIn { by } => {
                // Newest first (pending ones go before ready ones).
                for _ in 0..by {
                    self.pool.instances.pop();
                }
            }
            Action::None => {}
        }
    }
}

fn bound(b: Option<BoundBy>) -> String {
    match b {
        None => "-".into(),
        Some(b) => serde_json::to_value(b)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
    }
}

fn replay(policy: Policy) -> String {
    let cp = CompiledPolicy::new(policy).expect("compiles");
    let p = cp.policy().clone();
    let initial = p.bounds.initial_or_min().max(1);
    let mut sim = Sim {
        pool: PoolState::ready(initial, START),
        next_id: initial,
    };
    let mut history = History::new();
    let mut out = String::new();
    let (mut actions, mut instance_minutes, mut short_minutes, mut peak) = (0u32, 0u64, 0u32, 0u32);
    let _ = writeln!(
        out,
        "# minute demand ready pending -> recommendation desired action bound_by"
    );
    for (i, (minute, demand)) in demand().into_iter().enumerate() {
        let now = START.add(std::time::Duration::from_secs(60 * i as u64));
        sim.advance(now);
        let o = sim.observations(now, demand, &p);
        let counts = sim.pool.counts();
        let d = decide(
            &cp,
            &DecisionInput {
                now,
                observations: &o,
                pool: &sim.pool,
                history: &history,
                prediction: None,
            },
        );
        let action = match d.action {
            Action::None => "none".to_owned(),
            Action::ScaleOut { by } => format!("out+{by}"),
            Action::ScaleIn { by } => format!("in-{by}"),
        };
        let _ = writeln!(
            out,
            "{minute} {demand:>4} {:>2} {:>2} -> {:>2} {:>2} {action} {}",
            counts.ready,
            counts.pending,
            d.recommendation,
            d.desired,
            bound(d.bound_by)
        );
        if d.action != Action::None {
            actions += 1;
        }
        instance_minutes += u64::from(counts.counted);
        if f64::from(counts.ready) * PER_INSTANCE < demand {
            short_minutes += 1;
        }
        peak = peak.max(d.desired);
        sim.apply(&d, now);
        history.record(&d);
        history.prune(now, cp.history_horizon(), cp.trend_samples());
    }
    let _ = writeln!(
        out,
        "# summary: actions {actions}, instance-minutes {instance_minutes}, minutes short of capacity {short_minutes}, peak desired {peak}"
    );
    out
}

#[test]
fn example_policy_decisions_match_the_reviewed_snapshots() {
    let update = std::env::var("FLEXUS_UPDATE_GOLDEN").as_deref() == Ok("1");
    let dir = root().join("tests/golden");
    let mut stale = Vec::new();
    for f in example_files() {
        let stem = f
            .file_name()
            .and_then(|n| n.to_str())
            .expect("file name")
            .replace('.', "-");
        let got = replay(load(&f));
        let path = dir.join(format!("{stem}.txt"));
        if update {
            std::fs::create_dir_all(&dir).expect("create tests/golden");
            std::fs::write(&path, &got).expect("write snapshot");
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if want != got {
            let first = want
                .lines()
                .zip(got.lines())
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("\n  want: {a}\n  got:  {b}"))
                .unwrap_or_else(|| " (length differs)".into());
            stale.push(format!("{}{first}", path.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "decisions differ from the reviewed snapshots (rerun with FLEXUS_UPDATE_GOLDEN=1 and review):\n{}",
        stale.join("\n")
    );
}

#[test]
fn the_policy_reference_examples_parse() {
    let doc = std::fs::read_to_string(root().join("../../docs/reference/policy.md"))
        .expect("read policy.md");
    let mut found = 0;
    for (fence, is_json) in [("```hcl\n", false), ("```json\n", true)] {
        for (start, _) in doc.match_indices(fence) {
            let body = &doc[start + fence.len()..];
            let end = body.find("```").expect("closed fence");
            let src = &body[..end];
            let parsed = if is_json {
                parse_json(src)
            } else {
                parse_hcl(src, "policy.md")
            };
            parsed.unwrap_or_else(|d| panic!("example in policy.md does not parse:\n{src}\n{d}"));
            found += 1;
        }
    }
    assert_eq!(found, 2, "the reference shows one HCL and one JSON example");
}
