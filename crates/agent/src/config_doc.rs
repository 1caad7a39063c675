//! `docs/reference/agent-config.md`, generated from the config types.
//!
//! Every key comes from the JSON schema of [`crate::config`]'s `RawConfig` (schemars reads the
//! serde attributes and doc comments); a field's doc comment is its meaning, and what follows
//! `Default:` is its default — a TOML value in backticks, which a test sets explicitly and
//! checks that [`crate::config::Config::parse`] resolves the same configuration as without it.
//! `FLEXUS_UPDATE_GOLDEN=1 cargo test -p flexus-agent --lib config_doc` rewrites the page.

use serde_json::{Map, Value};

/// One documented key.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// Dotted path, e.g. `reconcile.job_poll`, `auth.namespaces[].name`,
    /// `cost.prices."<flavor>".spot`.
    pub path: String,
    /// Type shown in the table (`duration` for strings whose default is one).
    pub kind: String,
    /// The default as written after `Default:` (`required` when the doc says so, `—` when
    /// there is none).
    pub default: String,
    /// The default as a TOML value, when the doc gives one in backticks.
    pub default_toml: Option<String>,
    /// What the key means.
    pub meaning: String,
}

/// One `[section]` (the top level has an empty name).
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// `cloud`, `metrics`, ... (empty for the top level).
    pub name: String,
    /// The section type's doc comment.
    pub about: String,
    /// Its keys, nested tables flattened into dotted paths.
    pub keys: Vec<Key>,
}

const INTRO: &str = "\
# `agent.toml` reference

<!-- Generated from the config types (crates/agent/src/config.rs, cost/, advisor/) by
crates/agent/src/config_doc.rs; FLEXUS_UPDATE_GOLDEN=1 cargo test -p flexus-agent --lib config_doc
rewrites it. Edit the doc comments there, not this file. -->

`flexus-agent run --config agent.toml` reads one TOML file; `flexus-agent check-config
--config agent.toml` validates it and reports every problem at once, naming the key. Unknown keys
are refused. Durations are written like `\"15s\"`, `\"10m\"`, `\"7d\"` (the grammar of policies).
Secrets are never in the file: it names the environment variables that hold them. A worked
example: [`examples/agent/agent.toml`](../../examples/agent/agent.toml).
";

/// The sections of `agent.toml`, in the order of the config type.
pub fn sections() -> Vec<Section> {
    let schema = schemars::schema_for!(crate::config::RawConfig);
    let root = schema.as_value();
    let defs = root
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut top = Section {
        name: String::new(),
        about: String::new(),
        keys: Vec::new(),
    };
    let mut sections = Vec::new();
    for (name, prop) in properties(root) {
        match resolve(prop, &defs) {
            Some((about, table)) => {
                let mut s = Section {
                    name: name.clone(),
                    about,
                    keys: Vec::new(),
                };
                collect(&name, table, &defs, "", &mut s.keys);
                sections.push(s);
            }
            None => top.keys.push(key(&name, prop, &defs)),
        }
    }
    sections.insert(0, top);
    sections
}

/// The whole page.
pub fn markdown() -> String {
    let mut out = String::from(INTRO);
    for s in sections() {
        if s.name.is_empty() {
            out.push_str("\n## Top level\n\n");
        } else {
            out.push_str(&format!("\n## `[{}]`\n\n", s.name));
        }
        if !s.about.is_empty() {
            out.push_str(&s.about);
            out.push_str("\n\n");
        }
        out.push_str("| key | type | default | meaning |\n|---|---|---|---|\n");
        for k in &s.keys {
            let default = match &k.default_toml {
                Some(t) => format!("`{t}`"),
                None => k.default.clone(),
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                k.path,
                k.kind,
                default,
                k.meaning.replace('|', "\\|")
            ));
        }
    }
    out
}

fn properties(schema: &Value) -> Vec<(String, &Value)> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v)).collect())
        .unwrap_or_default()
}

/// The table a property stands for (an object type behind `$ref`, possibly optional), with the
/// type's description; `None` for a plain value.
fn resolve<'a>(prop: &'a Value, defs: &'a Map<String, Value>) -> Option<(String, &'a Value)> {
    let target = deref(prop, defs)?;
    target.get("properties")?;
    let about = target
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Some((one_line(about), target))
}

/// Follows `$ref` (directly, or inside `anyOf` with `null` for an `Option`).
fn deref<'a>(v: &'a Value, defs: &'a Map<String, Value>) -> Option<&'a Value> {
    if let Some(r) = v.get("$ref").and_then(Value::as_str) {
        return defs.get(r.rsplit('/').next()?);
    }
    v.get("anyOf")?
        .as_array()?
        .iter()
        .find_map(|x| deref(x, defs))
}

/// Flattens a table's keys into `keys`, nested tables, arrays of tables and maps included; the
/// doc comment of the field that holds a nested table (`context`) prefixes its keys' meanings.
fn collect(
    prefix: &str,
    table: &Value,
    defs: &Map<String, Value>,
    context: &str,
    keys: &mut Vec<Key>,
) {
    for (name, prop) in properties(table) {
        let path = format!("{prefix}.{name}");
        let about = one_line(
            prop.get("description")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        if let Some((_, inner)) = resolve(prop, defs) {
            collect(&path, inner, defs, &about, keys);
        } else if let Some(inner) = prop.get("items").and_then(|i| resolve(i, defs)) {
            collect(&format!("{path}[]"), inner.1, defs, &about, keys);
        } else if let Some(inner) = prop
            .get("additionalProperties")
            .and_then(|i| resolve(i, defs))
        {
            collect(&format!("{path}.\"<name>\""), inner.1, defs, &about, keys);
        } else {
            let mut k = key(&path, prop, defs);
            if !context.is_empty() {
                k.meaning = format!("{context} {}", k.meaning);
            }
            keys.push(k);
        }
    }
}

/// A value key: its type from the schema, meaning and default from its doc comment.
fn key(path: &str, prop: &Value, defs: &Map<String, Value>) -> Key {
    let doc = one_line(
        prop.get("description")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    );
    let (meaning, default) = match doc.rfind("Default: ") {
        Some(i) => (
            doc[..i].trim().to_owned(),
            doc[i + "Default: ".len()..].trim().to_owned(),
        ),
        None if doc.trim_end().ends_with("Required") => (
            doc.trim_end()
                .trim_end_matches("Required")
                .trim()
                .to_owned(),
            "required".to_owned(),
        ),
        None => (doc.trim().to_owned(), "—".to_owned()),
    };
    let default_toml = default
        .strip_prefix('`')
        .and_then(|d| d.strip_suffix('`'))
        .filter(|d| !d.contains('`') && toml_value(d).is_some())
        .map(str::to_owned);
    let kind = kind(prop, defs, default_toml.as_deref());
    Key {
        path: path.to_owned(),
        kind,
        default,
        default_toml,
        meaning,
    }
}

/// The table's type column: `duration` when the default is one, enum values spelt out.
fn kind(prop: &Value, defs: &Map<String, Value>, default: Option<&str>) -> String {
    let target = deref(prop, defs).unwrap_or(prop);
    if let Some(values) = target.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        return names.join(" \\| ");
    }
    if let Some(values) = target.get("oneOf").and_then(Value::as_array) {
        let names: Vec<String> = values
            .iter()
            .filter_map(|v| v.get("const").or_else(|| v.get("enum")?.get(0)))
            .map(|v| format!("`{v}`"))
            .collect();
        if !names.is_empty() {
            return names.join(" \\| ");
        }
    }
    let ty = match target.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("value")
            .to_owned(),
        _ => "value".to_owned(),
    };
    let is_duration = default
        .and_then(toml_value)
        .and_then(|v| v.as_str().map(flexus_policy::time::parse_duration))
        .is_some_and(|r| r.is_ok());
    match ty.as_str() {
        "string" if is_duration => "duration".into(),
        "boolean" => "bool".into(),
        other => other.into(),
    }
}

/// Parses one TOML value (`"15s"`, `64`, `0.05`, `false`).
pub fn toml_value(text: &str) -> Option<toml::Value> {
    let t: toml::Table = toml::from_str(&format!("v = {text}")).ok()?;
    t.get("v").cloned()
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    const MINIMAL: &str = r#"
[cloud]
region = "cn-north-4"
project_id = "p1"
[auth]
admin_token_env = "ADMIN"
"#;

    fn env(k: &str) -> Option<String> {
        (k == "ADMIN").then(|| "admin-token-0123456789".to_owned())
    }

    fn parse(text: &str) -> Config {
        Config::parse(text, "agent.toml", Path::new("/etc/flexus"), env)
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn the_reference_page_is_generated_from_the_config_types() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/reference/agent-config.md"
        );
        let want = markdown();
        if std::env::var_os("FLEXUS_UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &want).expect("write agent-config.md");
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/reference/agent-config.md is stale: run \
             FLEXUS_UPDATE_GOLDEN=1 cargo test -p flexus-agent --lib config_doc"
        );
    }

    #[test]
    fn every_key_is_documented_with_a_meaning_and_the_sections_are_all_there() {
        let sections = sections();
        let names: Vec<&str> = sections.iter().map(|s| s.name.as_str()).collect();
        for want in [
            "",
            "cloud",
            "auth",
            "metrics",
            "reconcile",
            "cost",
            "advisor",
            "retention",
            "lease",
            "tune",
        ] {
            assert!(names.contains(&want), "section {want:?} missing: {names:?}");
        }
        let keys: Vec<&Key> = sections.iter().flat_map(|s| &s.keys).collect();
        assert!(keys.len() >= 40, "{} keys", keys.len());
        for k in &keys {
            assert!(!k.meaning.is_empty(), "{} has no meaning", k.path);
        }
        for path in [
            "listen",
            "reconcile.min_evaluation_interval",
            "auth.namespaces[].token_env",
            "metrics.prometheus.url",
            "cost.prices.\"<name>\".spot",
            "lease.margin",
        ] {
            assert!(keys.iter().any(|k| k.path == path), "{path} missing");
        }
        let d = keys
            .iter()
            .find(|k| k.path == "reconcile.job_poll")
            .expect("job_poll");
        assert_eq!(
            (d.kind.as_str(), d.default_toml.as_deref()),
            ("duration", Some("\"2s\""))
        );
    }

    /// Sets `path` (dotted; no arrays or maps) to `value` in the TOML `text`.
    fn with_key(text: &str, path: &str, value: toml::Value) -> String {
        let mut doc: toml::Table = toml::from_str(text).expect("minimal config");
        let parts: Vec<&str> = path.split('.').collect();
        let mut table = &mut doc;
        for p in &parts[..parts.len() - 1] {
            table = table
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("a table");
        }
        table.insert(parts[parts.len() - 1].to_owned(), value);
        toml::to_string(&doc).expect("serialise")
    }

    #[test]
    fn every_documented_default_is_what_the_agent_resolves_when_the_key_is_absent() {
        let base = parse(MINIMAL);
        let mut checked = 0;
        for k in sections().iter().flat_map(|s| s.keys.clone()) {
            let Some(t) = &k.default_toml else { continue };
            if k.path.contains('[') || k.path.contains('"') {
                continue;
            }
            let value = toml_value(t).expect("checked when generated");
            let text = with_key(MINIMAL, &k.path, value);
            assert_eq!(
                parse(&text),
                base,
                "{} = {t} (its documented default) resolves differently from leaving it out",
                k.path
            );
            checked += 1;
        }
        assert!(checked >= 30, "only {checked} defaults checked");
    }

    #[test]
    fn a_wrong_documented_default_would_be_caught() {
        // The check above is not vacuous: a value that is not the default changes the config.
        let base = parse(MINIMAL);
        let text = with_key(
            MINIMAL,
            "reconcile.job_poll",
            toml::Value::String("3s".into()),
        );
        assert_ne!(parse(&text), base);
    }
}
