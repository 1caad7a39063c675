//! Policy files: bytes → `source_text` → `parse_hcl` and `parse_json` → `validate` →
//! `CompiledPolicy::new`. Properties: no panic; every diagnostic has a message; a
//! policy that parses survives JSON (serialised and parsed again, it is the same
//! policy and validates the same way).

use flexus_policy::{CompiledPolicy, Diagnostics, Policy, parse_hcl, parse_json, source_text};

use super::shape;
use crate::Target;

#[derive(Debug)]
pub struct PolicyTarget;

const DICTIONARY: &[&[u8]] = &[
    b"strategy",
    b"target_tracking",
    b"step",
    b"scheduled",
    b"bounds",
    b"min",
    b"max",
    b"metrics",
    b"metric",
    b"name",
    b"kind",
    b"source",
    b"type",
    b"target",
    b"cpu",
    b"prometheus",
    b"redis",
    b"push",
    b"cloud_eye",
    b"query",
    b"scale_in",
    b"scale_out",
    b"cooldown",
    b"policies",
    b"value",
    b"stabilization_window",
    b"prediction",
    b"enabled",
    b"lead_time",
    b"schedule",
    b"cron",
    b"timezone",
    b"evaluation_interval",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b"=",
    b":",
    b",",
    b"\n",
    b"${",
    b"%{",
    b"<<EOF\n",
    b"\nEOF\n",
    b"true",
    b"null",
    b"1e309",
    b"\"5m\"",
    b"\"0 9 * * MON-FRI\"",
    b"#",
    b"//",
    b"/*",
    b"*/",
    b"\\u0000",
    b"\\ud800",
];

impl Target for PolicyTarget {
    fn name(&self) -> &'static str {
        "policy"
    }

    fn dictionary(&self) -> &'static [&'static [u8]] {
        DICTIONARY
    }

    fn run(&mut self, input: &[u8]) -> Result<String, String> {
        let text = match source_text(input, "fuzz") {
            Ok(text) => text,
            Err(d) => return Ok(format!("utf8 {}", diagnosed(&d)?)),
        };
        let hcl = outcome("hcl", parse_hcl(text, "fuzz.hcl"))?;
        let json = outcome("json", parse_json(text))?;
        Ok(format!("{hcl} | {json}"))
    }
}

/// The signature of one parse, checking the properties on the way.
fn outcome(format: &str, parsed: Result<Policy, Diagnostics>) -> Result<String, String> {
    let policy = match parsed {
        Ok(p) => p,
        Err(d) => return Ok(format!("{format} {}", diagnosed(&d)?)),
    };
    let valid = policy.validate().map_err(|d| d.to_string());
    let text = serde_json::to_string(&policy)
        .map_err(|e| format!("{format}: a parsed policy does not serialise: {e}"))?;
    let again = parse_json(&text).map_err(|d| {
        format!("{format}: the parsed policy does not parse back from JSON: {d}\n{text}")
    })?;
    if again != policy {
        return Err(format!(
            "{format}: the policy changed through JSON:\n{policy:?}\n{again:?}"
        ));
    }
    if again.validate().map_err(|d| d.to_string()) != valid {
        return Err(format!("{format}: validation changed through JSON\n{text}"));
    }
    match valid {
        Ok(()) => {
            CompiledPolicy::new(policy)
                .map_err(|d| format!("{format}: a valid policy does not compile: {d}\n{text}"))?;
            Ok(format!("{format} ok"))
        }
        Err(e) => Ok(format!("{format} invalid {}", shape(&e))),
    }
}

/// The shape of a parse error; an error without a message breaks a property.
fn diagnosed(d: &Diagnostics) -> Result<String, String> {
    if d.0.is_empty() || d.0.iter().any(|d| d.message.trim().is_empty()) {
        return Err(format!("a diagnostic without a message: {d:?}"));
    }
    Ok(shape(&d.0[0].message))
}
