//! The one place where problems become Terraform diagnostics: agent errors (with the
//! agent's field paths mapped onto Terraform attribute paths), policy diagnostics from
//! `flexus-policy`, timeouts.

use std::time::Duration;

use flexus_api::ClientError;
use flexus_policy::{FieldPath, PathSegment};
use tfplugin::{AttrPath, Diagnostic, Diagnostics};

/// Errors of the provider's calls to the agent.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot {what}: {source}")]
    Api {
        what: String,
        #[source]
        source: ClientError,
    },
    #[error("cannot {what}: the agent did not answer within {}s", after.as_secs_f64())]
    Timeout { what: String, after: Duration },
}

impl ProviderError {
    /// True when the agent said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ProviderError::Api { source, .. } if source.is_not_found())
    }
    /// True when a conditional write failed (`If-None-Match: *` on an existing object).
    pub fn is_precondition_failed(&self) -> bool {
        matches!(self, ProviderError::Api { source, .. } if source.is_precondition_failed())
    }
}

/// Which kind of object an agent field path belongs to (decides how it maps to Terraform).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Pool,
    Policy,
}

/// Maps an agent or policy field path (`spec.policy.metrics[0].target`,
/// `spec.root_volume.size`, `tags.team`) onto the resource's attribute path
/// (`metric[0].target`, `root_volume.size`, `tags["team"]`). `None` for the object itself.
pub fn field_to_attr(object: Object, field: &str) -> AttrPath {
    let mut text = field.trim();
    for prefix in ["spec.policy.", "spec.", "policy."] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest;
            break;
        }
    }
    if object == Object::Policy && matches!(text, "spec.policy" | "policy" | "spec") {
        return AttrPath::root();
    }
    match object {
        Object::Pool => pool_path(&FieldPath::parse(text)),
        Object::Policy => policy_path(&FieldPath::parse(text)),
    }
}

fn pool_path(p: &FieldPath) -> AttrPath {
    let mut out = AttrPath::root();
    let mut after_tags = false;
    for seg in p.segments() {
        match seg {
            PathSegment::Field(f) if after_tags => {
                out = out.key(f);
                after_tags = false;
            }
            PathSegment::Field(f) => {
                after_tags = f == "tags";
                out = out.attr(f);
            }
            PathSegment::Index(i) => out = out.index(*i as i64),
        }
    }
    out
}

/// The policy model's field names that differ in Terraform (plural lists become repeated
/// singular blocks).
fn policy_field(name: &str) -> &str {
    match name {
        "metrics" => "metric",
        "schedules" => "schedule",
        "policies" => "policy",
        "adjustments" => "adjustment",
        other => other,
    }
}

/// Maps a `flexus-policy` field path onto the `flexus_autoscaling_policy` attribute path.
pub fn policy_path(p: &FieldPath) -> AttrPath {
    let mut out = AttrPath::root();
    for seg in p.segments() {
        match seg {
            PathSegment::Field(f) => out = out.attr(policy_field(f)),
            PathSegment::Index(i) => out = out.index(*i as i64),
        }
    }
    out
}

/// Policy diagnostics from `flexus-policy` (parse or validate) as Terraform diagnostics,
/// each pointing at the offending attribute.
pub fn policy_diagnostics(d: &flexus_policy::Diagnostics) -> Diagnostics {
    let mut out = Diagnostics::new();
    for x in d.iter() {
        let path = policy_path(&x.path);
        out.push(Diagnostic::error("Invalid autoscaling policy", x.message.clone()).at(path));
    }
    out
}

/// Pool field errors (`PoolSpec::validate`) as Terraform diagnostics.
pub fn pool_field_errors(errs: &[flexus_api::FieldError]) -> Diagnostics {
    let mut out = Diagnostics::new();
    for e in errs {
        out.push(
            Diagnostic::error("Invalid pool", format!("{}: {}", e.field, e.message))
                .at(field_to_attr(Object::Pool, &e.field)),
        );
    }
    out
}

/// An agent error as diagnostics: field errors point at their attributes; authentication
/// problems say which setting to check. The token never appears (the client redacts it).
pub fn to_diagnostics(object: Object, summary: &str, e: &ProviderError) -> Diagnostics {
    let mut out = Diagnostics::new();
    if let ProviderError::Api {
        source: ClientError::Api(failure),
        ..
    } = e
    {
        let (status, fields, field, message) = (
            failure.status,
            &failure.fields,
            &failure.field,
            &failure.message,
        );
        match status {
            401 => {
                out.push(Diagnostic::error(
                    summary,
                    format!("{e}\n\nThe agent refused the token: check `token` in the provider block or FLEXUS_TOKEN."),
                ));
                return out;
            }
            403 => {
                out.push(Diagnostic::error(
                    summary,
                    format!("{e}\n\nThe token may not use this namespace: check `namespace` and the token's namespace."),
                ));
                return out;
            }
            _ => {}
        }
        if !fields.is_empty() {
            for f in fields {
                out.push(
                    Diagnostic::error(summary, format!("{}: {}", f.field, f.message))
                        .at(field_to_attr(object, &f.field)),
                );
            }
            return out;
        }
        if let Some(f) = field {
            out.push(
                Diagnostic::error(summary, format!("{f}: {message}")).at(field_to_attr(object, f)),
            );
            return out;
        }
    }
    if let ProviderError::Api {
        source: ClientError::Transport { .. },
        ..
    } = e
    {
        out.push(Diagnostic::error(
            summary,
            format!("{e}\n\nIs the agent running? Check `endpoint` in the provider block or FLEXUS_ENDPOINT."),
        ));
        return out;
    }
    out.push(Diagnostic::error(summary, e.to_string()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_field_paths_map_onto_singular_blocks() {
        for (field, attr) in [
            ("spec.policy.metrics[2].target", "metric[2].target"),
            ("scale_in.policies[0].value", "scale_in.policy[0].value"),
            ("step.adjustments[1].upper", "step.adjustment[1].upper"),
            ("prediction.seasonality[1]", "prediction.seasonality[1]"),
        ] {
            assert_eq!(
                field_to_attr(Object::Policy, field).to_string(),
                attr,
                "{field}"
            );
        }
        assert!(field_to_attr(Object::Policy, "spec.policy").is_root());
    }

    #[test]
    fn pool_field_paths_map_tags_to_map_keys() {
        assert_eq!(
            field_to_attr(Object::Pool, "spec.root_volume.size").to_string(),
            "root_volume.size"
        );
        let tag = field_to_attr(Object::Pool, "spec.tags.flexus-x");
        assert_eq!(tag, AttrPath::new("tags").key("flexus-x"));
        assert_eq!(
            field_to_attr(Object::Pool, "subnet_ids[1]"),
            AttrPath::new("subnet_ids").index(1)
        );
    }

    fn refusal(status: u16, fields: Vec<flexus_api::FieldError>) -> ProviderError {
        ProviderError::Api {
            what: "update policy team-a/web".into(),
            source: ClientError::Api(Box::new(flexus_api::client::ApiFailure {
                method: "PUT".into(),
                path: "/v1/namespaces/team-a/policies/web".into(),
                status,
                code: "invalid_request".into(),
                message: "invalid policy".into(),
                field: fields.first().map(|f| f.field.clone()),
                fields,
            })),
        }
    }

    #[test]
    fn agent_field_errors_become_diagnostics_at_each_attribute() {
        let e = refusal(
            422,
            vec![
                flexus_api::FieldError::new("spec.policy.metrics[0].target", "must be positive"),
                flexus_api::FieldError::new("spec.policy.bounds.max", "must be at least 1"),
            ],
        );
        let d = to_diagnostics(Object::Policy, "Cannot update", &e);
        let paths: Vec<String> = d
            .iter()
            .filter_map(|x| x.path.as_ref().map(ToString::to_string))
            .collect();
        assert_eq!(
            paths,
            vec!["metric[0].target".to_string(), "bounds.max".to_string()]
        );
    }

    #[test]
    fn an_unauthorised_call_names_the_setting_to_check() {
        let d = to_diagnostics(Object::Pool, "Cannot read", &refusal(401, Vec::new()));
        let text = d.to_string();
        assert!(
            text.contains("FLEXUS_TOKEN") && text.contains("token"),
            "{text}"
        );
        assert!(d.iter().all(|x| x.path.is_none()));
    }
}
