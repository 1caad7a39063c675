//! `flexus-policy` — validates policy files and prints every problem with its location.
//!
//! ```text
//! cargo run -p flexus-policy --example flexus-policy -- examples/policies/*.hcl
//! cargo run -p flexus-policy --example flexus-policy -- --schema
//! ```
//!
//! Files ending in `.json` are read as JSON, anything else as HCL. Exit status 1 when any
//! file has problems, 2 on usage errors.

use std::process::ExitCode;

use anyhow::Context;
use flexus_policy::{CompiledPolicy, Policy, parse_hcl, parse_json, policy_schema, source_text};

fn check(path: &str) -> anyhow::Result<Result<Policy, flexus_policy::Diagnostics>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read policy file {path}"))?;
    let src = match source_text(&bytes, path) {
        Ok(src) => src,
        Err(diags) => return Ok(Err(diags)),
    };
    Ok(if path.ends_with(".json") {
        parse_json(src)
    } else {
        parse_hcl(src, path)
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!("usage: flexus-policy <policy.hcl|policy.json>... | --schema");
        return ExitCode::from(2);
    }
    if args.iter().any(|a| a == "--schema") {
        match serde_json::to_string_pretty(&policy_schema()) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: failed to render the schema: {e}");
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    let mut failed = false;
    for path in &args {
        match check(path) {
            Err(e) => {
                eprintln!("error: {e:#}");
                failed = true;
            }
            Ok(Err(diags)) => {
                for d in &diags {
                    match &d.location {
                        Some(flexus_policy::Location::Json { .. }) | None => {
                            println!("{path}: {d}")
                        }
                        Some(_) => println!("{d}"),
                    }
                }
                println!("{path}: {} problem(s)", diags.len());
                failed = true;
            }
            Ok(Ok(policy)) => match CompiledPolicy::new(policy) {
                Ok(cp) => {
                    let p = cp.policy();
                    println!(
                        "{path}: ok ({} strategy, {} metric(s), bounds {}..{}, {} schedule(s))",
                        p.strategy.as_str(),
                        p.metrics.len(),
                        p.bounds.min,
                        p.bounds.max,
                        p.schedules.len()
                    );
                }
                Err(diags) => {
                    for d in &diags {
                        println!("{path}: {d}");
                    }
                    failed = true;
                }
            },
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
