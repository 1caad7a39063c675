//! The first seeds of each corpus, from the checkout's examples and test fixtures
//! (`flexus-fuzz seed <target>`); `flexus-fuzz run --grow-corpus N` adds inputs that
//! reached new outcomes.

use std::path::Path;

use arbitrary::Unstructured;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tfplugin::codec::{json, msgpack};

use crate::targets::{agent, codec};

/// Seeds of `target`, read from the checkout at `repo`.
pub fn seeds(target: &str, repo: &Path) -> Vec<Vec<u8>> {
    match target {
        "policy" => policy_seeds(repo),
        "codec" => codec_seeds(repo),
        _ => agent_seeds(repo),
    }
}

/// Every file of `dir` whose name ends with one of `exts`.
fn files(dir: &Path, exts: &[&str]) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| exts.iter().any(|x| p.to_string_lossy().ends_with(x)))
        .collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// The `r#"..."#` strings of the Rust files in `dir` (the policy tests' inline policies).
fn raw_strings(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for file in files(dir, &[".rs"]) {
        let text = String::from_utf8_lossy(&file);
        for chunk in text.split("r#\"").skip(1) {
            if let Some((s, _)) = chunk.split_once("\"#") {
                out.push(s.as_bytes().to_vec());
            }
        }
    }
    out
}

fn policy_seeds(repo: &Path) -> Vec<Vec<u8>> {
    let mut out = files(&repo.join("examples/policies"), &[".hcl", ".json"]);
    out.extend(files(
        &repo.join("crates/policy/tests/data"),
        &[".hcl", ".json"],
    ));
    out.extend(raw_strings(&repo.join("crates/policy/tests")));
    out
}

fn codec_seeds(repo: &Path) -> Vec<Vec<u8>> {
    let types = codec::types();
    let object = (types.len() - 2) as u8;
    let mut out = Vec::new();
    for version in ["terraform-1.15.5", "terraform-1.0.3"] {
        for f in files(
            &repo.join("crates/tfplugin/tests/fixtures").join(version),
            &[".msgpack"],
        ) {
            out.push([vec![object << 2], f].concat());
        }
    }
    let mut rng = StdRng::seed_from_u64(12);
    for (i, ty) in types.iter().enumerate() {
        let mut made = 0;
        for _ in 0..200 {
            let noise: Vec<u8> = (0..rng.random_range(8..256))
                .map(|_| rng.random())
                .collect();
            let Ok(v) = codec::arb_value(&mut Unstructured::new(&noise), ty, 3) else {
                continue;
            };
            if let Ok(b) = msgpack::encode(&v, ty) {
                out.push([vec![(i as u8) << 2], b].concat());
            }
            if let Ok(j) = json::encode(&v, false) {
                out.push([vec![((i as u8) << 2) | 1], j.to_string().into_bytes()].concat());
            }
            made += 1;
            if made == 8 {
                break;
            }
        }
    }
    out
}

fn agent_seeds(repo: &Path) -> Vec<Vec<u8>> {
    let pool = serde_json::json!({"spec": {
        "flavor": "x1.2u.4g", "image": "img-1", "vpc_id": "vpc-1", "subnet_ids": ["sub-1"],
        "min_size": 1, "max_size": 5, "tags": {"team": "ml"},
        "spot": {"enabled": true, "spot_percentage": 50}
    }});
    let mut policies: Vec<serde_json::Value> = files(&repo.join("examples/policies"), &[".json"])
        .iter()
        .filter_map(|f| serde_json::from_slice(f).ok())
        .collect();
    for f in files(&repo.join("examples/policies"), &[".hcl"]) {
        if let Ok(p) = flexus_policy::parse_hcl(&String::from_utf8_lossy(&f), "seed.hcl") {
            policies.extend(serde_json::to_value(p).ok());
        }
    }
    let metrics = serde_json::json!([
        {"metric": "cpu", "value": 61.5},
        {"metric": "queue", "value": 3, "at": "2026-05-28T10:00:00Z"}
    ]);
    let mut bodies: Vec<(usize, serde_json::Value)> = vec![(0, pool.clone()), (3, pool)];
    bodies.extend(
        policies
            .into_iter()
            .map(|p| (1, serde_json::json!({"spec": {"pool": "web", "policy": p}}))),
    );
    bodies.push((2, metrics));
    bodies.push((4, serde_json::json!({})));
    let mut out = Vec::new();
    for (route, body) in bodies {
        for ct in 0..agent::CONTENT_TYPES.len() as u8 {
            if ct == 0 || route == 0 {
                out.push([vec![route as u8, ct], body.to_string().into_bytes()].concat());
            }
        }
    }
    out
}
