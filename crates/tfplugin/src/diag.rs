//! Diagnostics: how every problem reaches the Terraform user. Errors become diagnostics here,
//! in one place, with an attribute path when the problem belongs to one argument.

use std::fmt;

use crate::path::AttrPath;
use crate::pb::tfplugin6 as pb;

/// Severity of a [`Diagnostic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem report shown by Terraform, optionally pointing at an attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub summary: String,
    pub detail: String,
    pub path: Option<AttrPath>,
}

impl Diagnostic {
    pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            summary: summary.into(),
            detail: detail.into(),
            path: None,
        }
    }
    pub fn warning(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            summary: summary.into(),
            detail: detail.into(),
            path: None,
        }
    }
    /// Points the diagnostic at an attribute (Terraform underlines that argument).
    pub fn at(mut self, path: AttrPath) -> Diagnostic {
        self.path = if path.is_root() { None } else { Some(path) };
        self
    }
    /// A diagnostic from an error and its `source()` chain.
    pub fn from_error(
        summary: impl Into<String>,
        err: &(dyn std::error::Error + 'static),
    ) -> Diagnostic {
        let mut detail = err.to_string();
        let mut src = err.source();
        while let Some(s) = src {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            src = s.source();
        }
        Diagnostic::error(summary, detail)
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub(crate) fn to_pb(&self) -> pb::Diagnostic {
        pb::Diagnostic {
            severity: match self.severity {
                Severity::Error => pb::diagnostic::Severity::Error as i32,
                Severity::Warning => pb::diagnostic::Severity::Warning as i32,
            },
            summary: self.summary.clone(),
            detail: self.detail.clone(),
            attribute: self.path.as_ref().map(AttrPath::to_pb),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = if self.is_error() { "error" } else { "warning" };
        write!(f, "{sev}: {}", self.summary)?;
        if let Some(p) = &self.path {
            write!(f, " (at {p})")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// A list of diagnostics; the error type of every framework callback.
///
/// Any `std::error::Error` converts into it (with `?`), becoming one error diagnostic whose
/// detail is the error chain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn new() -> Diagnostics {
        Diagnostics(Vec::new())
    }
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    pub fn error(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.0.push(Diagnostic::error(summary, detail));
    }
    pub fn error_at(
        &mut self,
        path: AttrPath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.0.push(Diagnostic::error(summary, detail).at(path));
    }
    pub fn warning(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.0.push(Diagnostic::warning(summary, detail));
    }
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
    /// `Ok(())` when there is no error, else `Err(self)`.
    pub fn into_result(self) -> Result<(), Diagnostics> {
        if self.has_errors() { Err(self) } else { Ok(()) }
    }
    pub(crate) fn to_pb(&self) -> Vec<pb::Diagnostic> {
        self.0.iter().map(Diagnostic::to_pb).collect()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

impl<E: std::error::Error + 'static> From<E> for Diagnostics {
    fn from(e: E) -> Self {
        Diagnostics(vec![Diagnostic::from_error(e.to_string(), &e)])
    }
}

/// Attaches context to fallible provider code: `api.get(id).await.at_attr("name", "cannot read item")?`.
pub trait ResultExt<T> {
    /// Maps the error to one error diagnostic with `summary`, pointing at `path`.
    fn at_path(self, path: AttrPath, summary: &str) -> Result<T, Diagnostics>;
    /// Like [`ResultExt::at_path`] for a top-level attribute.
    fn at_attr(self, attr: &str, summary: &str) -> Result<T, Diagnostics>;
    /// Maps the error to one error diagnostic with `summary` (no attribute).
    fn summary(self, summary: &str) -> Result<T, Diagnostics>;
}

impl<T, E: std::error::Error + 'static> ResultExt<T> for Result<T, E> {
    fn at_path(self, path: AttrPath, summary: &str) -> Result<T, Diagnostics> {
        self.map_err(|e| Diagnostic::from_error(summary, &e).at(path).into())
    }
    fn at_attr(self, attr: &str, summary: &str) -> Result<T, Diagnostics> {
        self.at_path(AttrPath::new(attr), summary)
    }
    fn summary(self, summary: &str) -> Result<T, Diagnostics> {
        self.map_err(|e| Diagnostic::from_error(summary, &e).into())
    }
}
