//! Attribute validators. The framework calls them during `ValidateResourceConfig` only for
//! known, non-null values (Terraform may validate before values are known), so a validator
//! never sees a value it cannot judge.

use std::collections::BTreeSet;

use crate::diag::{Diagnostic, Diagnostics};
use crate::path::AttrPath;
use crate::value::{Number, Value};

/// Checks one attribute's value.
pub trait Validator: Send + Sync {
    /// What the validator demands, e.g. "length between 1 and 64" (used in messages and docs).
    fn description(&self) -> String;
    /// Reports problems with `value` (known and non-null) at `path`.
    fn validate(&self, value: &Value, path: &AttrPath, diags: &mut Diagnostics);
}

fn invalid(path: &AttrPath, detail: String) -> Diagnostic {
    Diagnostic::error("Invalid attribute value", detail).at(path.clone())
}

/// String length (in characters) within `[min, max]`.
pub fn length_between(min: usize, max: usize) -> LengthBetween {
    LengthBetween { min, max }
}

#[derive(Debug)]
pub struct LengthBetween {
    min: usize,
    max: usize,
}

impl Validator for LengthBetween {
    fn description(&self) -> String {
        if self.max == usize::MAX {
            format!("length at least {}", self.min)
        } else {
            format!("length between {} and {}", self.min, self.max)
        }
    }
    fn validate(&self, value: &Value, path: &AttrPath, diags: &mut Diagnostics) {
        if let Some(s) = value.as_str() {
            let n = s.chars().count();
            if n < self.min || n > self.max {
                diags.push(invalid(
                    path,
                    format!(
                        "{path} must have {}, got {n} characters",
                        self.description()
                    ),
                ));
            }
        }
    }
}

/// String matches a regular expression.
pub fn matches_regex(pattern: &str) -> Result<MatchesRegex, regex::Error> {
    Ok(MatchesRegex {
        re: regex::Regex::new(pattern)?,
    })
}

#[derive(Debug)]
pub struct MatchesRegex {
    re: regex::Regex,
}

impl Validator for MatchesRegex {
    fn description(&self) -> String {
        format!("must match /{}/", self.re.as_str())
    }
    fn validate(&self, value: &Value, path: &AttrPath, diags: &mut Diagnostics) {
        if let Some(s) = value.as_str()
            && !self.re.is_match(s)
        {
            diags.push(invalid(
                path,
                format!(
                    "{path} must match the pattern /{}/, got {s:?}",
                    self.re.as_str()
                ),
            ));
        }
    }
}

/// String is one of the given values.
pub fn one_of<I: IntoIterator<Item = S>, S: Into<String>>(values: I) -> OneOf {
    OneOf {
        values: values.into_iter().map(Into::into).collect(),
    }
}

#[derive(Debug)]
pub struct OneOf {
    values: BTreeSet<String>,
}

impl Validator for OneOf {
    fn description(&self) -> String {
        format!(
            "one of {}",
            self.values
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
    fn validate(&self, value: &Value, path: &AttrPath, diags: &mut Diagnostics) {
        if let Some(s) = value.as_str()
            && !self.values.contains(s)
        {
            diags.push(invalid(
                path,
                format!("{path} must be {}, got {s:?}", self.description()),
            ));
        }
    }
}

/// Number within `[min, max]` (either bound may be `None`).
pub fn between(min: Option<f64>, max: Option<f64>) -> Between {
    Between { min, max }
}

#[derive(Debug)]
pub struct Between {
    min: Option<f64>,
    max: Option<f64>,
}

impl Validator for Between {
    fn description(&self) -> String {
        match (self.min, self.max) {
            (Some(a), Some(b)) => format!("between {a} and {b}"),
            (Some(a), None) => format!("at least {a}"),
            (None, Some(b)) => format!("at most {b}"),
            (None, None) => "any number".into(),
        }
    }
    fn validate(&self, value: &Value, path: &AttrPath, diags: &mut Diagnostics) {
        if let Some(n) = value.as_number() {
            let x = n.as_f64();
            if self.min.is_some_and(|m| x < m) || self.max.is_some_and(|m| x > m) {
                diags.push(invalid(
                    path,
                    format!("{path} must be {}, got {n}", self.description()),
                ));
            }
        }
    }
}

/// Number is a whole number that fits in 64 bits.
pub fn whole_number() -> WholeNumber {
    WholeNumber
}

#[derive(Debug)]
pub struct WholeNumber;

impl Validator for WholeNumber {
    fn description(&self) -> String {
        "a whole number".into()
    }
    fn validate(&self, value: &Value, path: &AttrPath, diags: &mut Diagnostics) {
        if let Some(n) = value.as_number()
            && n.as_i64().is_none()
            && n.as_u64().is_none()
        {
            diags.push(invalid(
                path,
                format!("{path} must be a whole number, got {n}"),
            ));
        }
    }
}

/// Collection (list, set, map) size within `[min, max]`.
pub fn size_between(min: usize, max: usize) -> SizeBetween {
    SizeBetween { min, max }
}

#[derive(Debug)]
pub struct SizeBetween {
    min: usize,
    max: usize,
}

impl Validator for SizeBetween {
    fn description(&self) -> String {
        format!("between {} and {} elements", self.min, self.max)
    }
    fn validate(&self, value: &Value, path: &AttrPath, diags: &mut Diagnostics) {
        if let Some(n) = value.len()
            && (n < self.min || n > self.max)
        {
            diags.push(invalid(
                path,
                format!("{path} must have {}, got {n}", self.description()),
            ));
        }
    }
}

/// A validator from a closure: `from_fn("even", |v, path, diags| ...)`.
pub fn from_fn<F>(description: &str, f: F) -> FromFn<F>
where
    F: Fn(&Value, &AttrPath, &mut Diagnostics) + Send + Sync,
{
    FromFn {
        description: description.to_string(),
        f,
    }
}

impl<F> std::fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FromFn")
            .field("description", &self.description)
            .finish()
    }
}

/// A closure with a description: a [`Validator`] made by [`from_fn`], or a
/// [`PlanModifier`](crate::modifiers::PlanModifier) made by
/// [`modifiers::from_fn`](crate::modifiers::from_fn).
pub struct FromFn<F> {
    pub(crate) description: String,
    pub(crate) f: F,
}

impl<F> Validator for FromFn<F>
where
    F: Fn(&Value, &AttrPath, &mut Diagnostics) + Send + Sync,
{
    fn description(&self) -> String {
        self.description.clone()
    }
    fn validate(&self, value: &Value, path: &AttrPath, diags: &mut Diagnostics) {
        (self.f)(value, path, diags);
    }
}

/// Convenience for closures that only look at numbers.
pub fn number_fn<F>(
    description: &str,
    f: F,
) -> FromFn<impl Fn(&Value, &AttrPath, &mut Diagnostics) + Send + Sync + use<F>>
where
    F: Fn(&Number) -> Option<String> + Send + Sync,
{
    from_fn(description, move |v, path, diags| {
        if let Some(n) = v.as_number()
            && let Some(msg) = f(n)
        {
            diags.push(invalid(path, format!("{path}: {msg}")));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_validator_points_at_the_attribute() {
        let mut d = Diagnostics::new();
        length_between(1, 3).validate(&Value::from("abcd"), &AttrPath::new("name"), &mut d);
        assert_eq!(d.0.len(), 1);
        assert_eq!(d.0[0].path, Some(AttrPath::new("name")));
        assert!(
            d.0[0].detail.contains("between 1 and 3"),
            "{}",
            d.0[0].detail
        );
    }

    #[test]
    fn one_of_accepts_listed_values_only() {
        let v = one_of(["a", "b"]);
        let mut d = Diagnostics::new();
        v.validate(&Value::from("a"), &AttrPath::new("x"), &mut d);
        assert!(d.is_empty());
        v.validate(&Value::from("c"), &AttrPath::new("x"), &mut d);
        assert!(d.has_errors());
    }
}
