//! Located errors: every problem found while parsing or validating a policy, each with
//! its field path (`scale_in.cooldown`, `metrics[2].target`) and, when it came from a
//! file, where in the file.

use std::fmt;

use serde::Serialize;

/// One segment of a field path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum PathSegment {
    /// An object field.
    Field(String),
    /// An array index.
    Index(usize),
}

/// A path to a field of the policy model, e.g. `metrics[2].target`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
pub struct FieldPath(pub Vec<PathSegment>);

impl FieldPath {
    /// The empty path (the policy itself).
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }

    /// This path extended by a field.
    pub fn field(&self, name: &str) -> Self {
        let mut v = self.0.clone();
        v.push(PathSegment::Field(name.to_owned()));
        FieldPath(v)
    }

    /// This path extended by an index.
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(PathSegment::Index(i));
        FieldPath(v)
    }

    /// Parses the dotted form (`metrics[2].target`).
    pub fn parse(text: &str) -> Self {
        let mut out = Vec::new();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let (name, rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if !name.is_empty() {
                out.push(PathSegment::Field(name.to_owned()));
            }
            for idx in rest.split('[').filter(|s| !s.is_empty()) {
                let n = idx.trim_end_matches(']');
                match n.parse() {
                    Ok(i) => out.push(PathSegment::Index(i)),
                    Err(_) => out.push(PathSegment::Field(n.to_owned())),
                }
            }
        }
        FieldPath(out)
    }

    /// The JSON pointer (RFC 6901) of this path, e.g. `/metrics/2/target`.
    pub fn json_pointer(&self) -> String {
        let mut s = String::new();
        for seg in &self.0 {
            s.push('/');
            match seg {
                PathSegment::Field(f) => s.push_str(&f.replace('~', "~0").replace('/', "~1")),
                PathSegment::Index(i) => s.push_str(&i.to_string()),
            }
        }
        s
    }

    /// The segments of this path.
    pub fn segments(&self) -> &[PathSegment] {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(policy)");
        }
        let mut first = true;
        for seg in &self.0 {
            match seg {
                PathSegment::Field(name) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(name)?;
                }
                PathSegment::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// Where in a source file a problem is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum Location {
    /// A position in an HCL file (1-based line and column).
    Hcl {
        /// File name as given to [`crate::parse_hcl`].
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
    },
    /// A JSON pointer into a JSON document.
    Json {
        /// RFC 6901 pointer, e.g. `/scale_in/cooldown` (empty for the document root).
        pointer: String,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Hcl { file, line, column } => write!(f, "{file}:{line}:{column}"),
            Location::Json { pointer } if pointer.is_empty() => f.write_str("(document)"),
            Location::Json { pointer } => f.write_str(pointer),
        }
    }
}

/// One problem with a policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    /// Where in the source, when the policy came from a file.
    pub location: Option<Location>,
    /// The field the problem is about.
    pub path: FieldPath,
    /// What is wrong, naming the field and the allowed values.
    pub message: String,
}

impl Diagnostic {
    /// A problem with a field, not yet located in a file.
    pub fn new(path: FieldPath, message: impl Into<String>) -> Self {
        Diagnostic {
            location: None,
            path,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(loc) => write!(f, "{loc}: {}", self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Every problem found, in source order where known. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Default, Serialize, thiserror::Error)]
#[serde(transparent)]
#[error("{}", render(.0))]
pub struct Diagnostics(pub Vec<Diagnostic>);

fn render(v: &[Diagnostic]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl Diagnostics {
    /// No problems.
    pub fn new() -> Self {
        Diagnostics(Vec::new())
    }

    /// Records a problem at a field.
    pub fn push(&mut self, path: FieldPath, message: impl Into<String>) {
        self.0.push(Diagnostic::new(path, message));
    }

    /// Whether there are no problems.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Iterates over the problems.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// `Ok(())` when empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), Diagnostics> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// How a message names the `i`th element of list `key` (`metrics`, `schedules`) that the
/// author named: `metrics[0]` → `metric "cpu"` (`None` for an empty name).
pub(crate) fn block_label(key: &str, i: usize, name: &str) -> Option<(String, String)> {
    let block = key.strip_suffix('s').unwrap_or(key);
    (!name.trim().is_empty()).then(|| (format!("{key}[{i}]"), format!("{block} {name:?}")))
}

/// `message` with each model path of `labels` replaced by the name the author wrote
/// (`Diagnostic::path` keeps the model's path for tools and locations).
pub(crate) fn name_blocks(mut message: String, labels: &[(String, String)]) -> String {
    for (model, named) in labels {
        if message.contains(model.as_str()) {
            message = message.replace(model.as_str(), named);
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_print_dotted_and_as_json_pointers() {
        let p = FieldPath::root().field("metrics").index(2).field("target");
        assert_eq!(p.to_string(), "metrics[2].target");
        assert_eq!(p.json_pointer(), "/metrics/2/target");
        assert_eq!(FieldPath::parse("metrics[2].target"), p);
        assert_eq!(
            FieldPath::parse("scale_in.cooldown").to_string(),
            "scale_in.cooldown"
        );
    }

    #[test]
    fn a_located_diagnostic_prints_file_line_column_then_the_message() {
        let d = Diagnostic {
            location: Some(Location::Hcl {
                file: "p.hcl".into(),
                line: 3,
                column: 5,
            }),
            path: FieldPath::parse("bounds.min"),
            message: "bounds.min must be at most bounds.max (4)".into(),
        };
        assert_eq!(
            d.to_string(),
            "p.hcl:3:5: bounds.min must be at most bounds.max (4)"
        );
        let j = Diagnostic {
            location: Some(Location::Json {
                pointer: "/bounds/min".into(),
            }),
            ..d
        };
        assert_eq!(
            j.to_string(),
            "/bounds/min: bounds.min must be at most bounds.max (4)"
        );
    }
}
