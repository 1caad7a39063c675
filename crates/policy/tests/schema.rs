//! The checked-in JSON Schema (`docs/reference/policy.schema.json`) matches the model.
//! Regenerate with `make schema` (sets `FLEXUS_UPDATE_GOLDEN=1`).

use std::path::PathBuf;

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/reference/policy.schema.json")
}

fn generated() -> String {
    let mut s =
        serde_json::to_string_pretty(&flexus_policy::policy_schema()).expect("schema serializes");
    s.push('\n');
    s
}

#[test]
fn checked_in_schema_matches_the_model() {
    let path = schema_path();
    let want = generated();
    if std::env::var("FLEXUS_UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&path, &want).expect("write docs/reference/policy.schema.json");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/reference/policy.schema.json is stale or missing; run `make schema` and commit the result"
    );
}

#[test]
fn schema_rejects_unknown_fields_and_names_every_top_level_section() {
    let s = flexus_policy::policy_schema();
    assert_eq!(s["additionalProperties"], serde_json::json!(false));
    for key in [
        "strategy",
        "bounds",
        "metrics",
        "scale_out",
        "scale_in",
        "schedules",
        "prediction",
        "spot",
        "seed",
        "step",
        "tolerance",
        "enabled",
        "dry_run",
        "evaluation_interval",
    ] {
        assert!(s["properties"].get(key).is_some(), "schema lacks {key}");
    }
}
