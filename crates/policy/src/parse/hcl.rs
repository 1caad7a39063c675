//! HCL policy parsing: problems are located as `file:line:column`.
//!
//! The HCL body lowers to the JSON shape of [`crate::Policy`]:
//! attributes become fields; `bounds { }`, `scale_out { }`, `scale_in { }`, `prediction { }`,
//! `spot { }`, `seed { }` (with `cpu { }`, `memory { }` …) and `step { }` become objects;
//! repeated blocks become lists — `metric "name" { }` → `metrics`, `schedule "name" { }` →
//! `schedules`, `policy { }` → `policies`, `adjustment { }` → `adjustments`; a
//! `source "prometheus" { query = "…" }` block becomes `source = { type = "prometheus", … }`.
//! Only literal values are accepted (no variables, functions or interpolation).

use std::collections::HashMap;
use std::ops::Range;

use hcl::edit::Span;
use hcl::edit::expr::{Expression, ObjectKey, UnaryOperator};
use hcl::edit::structure::{Block, BlockLabel, Body, Structure};
use hcl::edit::template::Element;
use serde_json::{Map, Number, Value};

use crate::diag::{Diagnostic, Diagnostics, FieldPath, Location};
use crate::model::Policy;

/// How a block type lowers: the JSON key, whether it repeats, and the field its label
/// fills. Any other block becomes an object under its own name (and the schema check
/// reports it if the policy has no such field).
fn rule(ident: &str) -> (String, bool, Option<&'static str>) {
    match ident {
        "metric" => ("metrics".into(), true, Some("name")),
        "schedule" => ("schedules".into(), true, Some("name")),
        "policy" => ("policies".into(), true, None),
        "adjustment" => ("adjustments".into(), true, None),
        "source" => ("source".into(), false, Some("type")),
        other => (other.to_owned(), false, None),
    }
}

/// Maps byte offsets to 1-based line and column (in characters).
struct LineIndex<'a> {
    src: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(src: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { src, starts }
    }

    /// The byte offset of 1-based `line` and `column` (in characters).
    fn offset(&self, line: usize, column: usize) -> usize {
        let Some(start) = self.starts.get(line.saturating_sub(1)).copied() else {
            return self.src.len();
        };
        self.src[start..]
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(self.src.len(), |(i, _)| start + i)
    }

    fn at(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|s| *s <= offset).max(1);
        let start = self.starts[line - 1];
        let end = offset.min(self.src.len());
        let col = self
            .src
            .get(start..end)
            .map_or(end - start, |s| s.chars().count())
            + 1;
        (line, col)
    }
}

struct Lowering {
    spans: HashMap<FieldPath, usize>,
    errors: Vec<(usize, FieldPath, String)>,
    /// Number literals beyond `f64` (offset → literal), blanked before parsing.
    out_of_range: HashMap<usize, String>,
}

impl Lowering {
    fn mark(&mut self, path: &FieldPath, span: Option<Range<usize>>) {
        if let Some(r) = span {
            self.spans.entry(path.clone()).or_insert(r.start);
        }
    }

    /// The string of a template made of literal parts only; interpolation or a
    /// directive is an error at `span`.
    fn literal_template<'t>(
        &mut self,
        parts: impl Iterator<Item = &'t Element>,
        span: Option<Range<usize>>,
        path: &FieldPath,
    ) -> Option<Value> {
        let mut s = String::new();
        for el in parts {
            let Element::Literal(l) = el else {
                self.error(span, path, format!("{path}: interpolation and directives are not supported in policy files; use a literal string"));
                return None;
            };
            s.push_str(l.value());
        }
        Some(Value::String(s))
    }

    fn error(&mut self, span: Option<Range<usize>>, path: &FieldPath, msg: String) {
        self.errors
            .push((span.map_or(0, |r| r.start), path.clone(), msg));
    }

    fn body(&mut self, body: &Body, path: &FieldPath) -> Map<String, Value> {
        let mut map = Map::new();
        for s in body.iter() {
            match s {
                Structure::Attribute(a) => {
                    let key = a.key.as_str();
                    let fp = path.field(key);
                    if map.contains_key(key) {
                        self.error(a.span(), &fp, format!("{fp} is set more than once"));
                        continue;
                    }
                    self.mark(&fp, a.span());
                    if let Some(v) = self.expr(&a.value, &fp) {
                        map.insert(key.to_owned(), v);
                    }
                }
                Structure::Block(b) => self.block(b, path, &mut map),
            }
        }
        map
    }

    fn block(&mut self, b: &Block, path: &FieldPath, map: &mut Map<String, Value>) {
        let ident = b.ident.as_str();
        let (key, repeated, label_field) = rule(ident);
        let fp = if repeated {
            let n = map.get(&key).and_then(Value::as_array).map_or(0, Vec::len);
            path.field(&key).index(n)
        } else {
            path.field(&key)
        };
        if !repeated && map.contains_key(&key) {
            self.error(
                b.span(),
                &fp,
                format!("block `{ident}` appears more than once in {}", where_(path)),
            );
            return;
        }
        self.mark(&fp, b.span());
        if repeated {
            self.mark(&path.field(&key), b.span());
        }
        let mut obj = self.body(&b.body, &fp);
        match (label_field, b.labels.as_slice()) {
            (_, []) => {}
            (Some(field), [label]) => {
                let text = match label {
                    BlockLabel::Ident(i) => i.as_str().to_owned(),
                    BlockLabel::String(s) => s.value().clone(),
                };
                if obj.contains_key(field) {
                    self.error(
                        b.span(),
                        &fp.field(field),
                        format!(
                            "{} is given both as the block label and as an attribute",
                            fp.field(field)
                        ),
                    );
                } else {
                    self.mark(&fp.field(field), label.span());
                    obj.insert(field.to_owned(), Value::String(text));
                }
            }
            (Some(_), _) => {
                self.error(
                    b.span(),
                    &fp,
                    format!("block `{ident}` takes one label, got {}", b.labels.len()),
                );
            }
            (None, _) => {
                self.error(
                    b.span(),
                    &fp,
                    format!("block `{ident}` takes no label, got {}", b.labels.len()),
                );
            }
        }
        if repeated {
            match map.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(a) => a.push(Value::Object(obj)),
                _ => self.error(
                    b.span(),
                    &fp,
                    format!("{fp} is set both as an attribute and as blocks"),
                ),
            }
        } else {
            map.insert(key, Value::Object(obj));
        }
    }

    fn expr(&mut self, e: &Expression, path: &FieldPath) -> Option<Value> {
        match e {
            Expression::Null(_) => Some(Value::Null),
            Expression::Bool(b) => Some(Value::Bool(*b.value())),
            Expression::Number(n) => {
                // `-1e309` is one literal to the parser: its span starts at the sign.
                let start = e.span().map_or(usize::MAX, |r| r.start);
                if let Some(literal) = self.out_of_range.remove(&start) {
                    self.error(e.span(), path, out_of_range_message(path, &literal));
                    return None;
                }
                if let Some(literal) = self.out_of_range.remove(&start.wrapping_add(1)) {
                    let literal = format!("-{literal}");
                    self.error(e.span(), path, out_of_range_message(path, &literal));
                    return None;
                }
                number(n.value()).or_else(|| {
                    self.error(e.span(), path, format!("{path}: number is not finite"));
                    None
                })
            }
            Expression::String(s) => Some(Value::String(s.value().clone())),
            Expression::Array(a) => {
                let mut out = Vec::new();
                for (i, item) in a.iter().enumerate() {
                    let ip = path.index(i);
                    self.mark(&ip, item.span());
                    if let Some(v) = self.expr(item, &ip) {
                        out.push(v);
                    }
                }
                Some(Value::Array(out))
            }
            Expression::Object(o) => {
                let mut map = Map::new();
                for (k, v) in o.iter() {
                    let key = match k {
                        ObjectKey::Ident(i) => i.as_str().to_owned(),
                        ObjectKey::Expression(Expression::String(s)) => s.value().clone(),
                        ObjectKey::Expression(other) => {
                            self.error(
                                other.span(),
                                path,
                                format!("{path}: object keys must be names or strings"),
                            );
                            continue;
                        }
                    };
                    let kp = path.field(&key);
                    self.mark(&kp, k.span());
                    if let Some(val) = self.expr(v.expr(), &kp) {
                        map.insert(key, val);
                    }
                }
                Some(Value::Object(map))
            }
            Expression::StringTemplate(t) => self.literal_template(t.iter(), e.span(), path),
            Expression::HeredocTemplate(h) => {
                self.literal_template(h.template.iter(), e.span(), path)
            }
            Expression::Parenthesis(p) => self.expr(p.inner(), path),
            Expression::UnaryOp(u) if *u.operator.value() == UnaryOperator::Neg => {
                match self.expr(&u.expr, path)? {
                    Value::Number(n) => {
                        if let Some(i) = n.as_i64() {
                            Some(Value::Number((-i).into()))
                        } else {
                            n.as_f64()
                                .and_then(|f| Number::from_f64(-f))
                                .map(Value::Number)
                        }
                    }
                    _ => {
                        self.error(
                            e.span(),
                            path,
                            format!("{path}: `-` applies only to numbers"),
                        );
                        None
                    }
                }
            }
            _ => {
                self.error(
                    e.span(),
                    path,
                    format!("{path}: only literal values (numbers, strings, booleans, lists, objects) are allowed in policy files"),
                );
                None
            }
        }
    }
}

fn where_(path: &FieldPath) -> String {
    if path.0.is_empty() {
        "the policy".into()
    } else {
        path.to_string()
    }
}

fn number(n: &hcl::edit::Number) -> Option<Value> {
    if let Some(u) = n.as_u64() {
        Some(Value::Number(u.into()))
    } else if let Some(i) = n.as_i64() {
        Some(Value::Number(i.into()))
    } else {
        n.as_f64().and_then(Number::from_f64).map(Value::Number)
    }
}

fn out_of_range_message(path: &FieldPath, literal: &str) -> String {
    format!(
        "{path}: number out of range: {literal} is beyond the largest finite number (about ±1.8e308)"
    )
}

/// The HCL parser refuses a number literal beyond `f64` as a syntax error at the
/// literal. Such literals are blanked (`0` and spaces, so every offset stays) and the
/// parse retried, so that the lowering can name the field that holds them.
fn parse_blanking_huge_numbers(
    src: &str,
    index: &LineIndex<'_>,
) -> Result<(Body, HashMap<usize, String>), hcl::edit::parser::Error> {
    const MAX_RETRIES: usize = 64;
    let mut text = std::borrow::Cow::Borrowed(src);
    let mut blanked = HashMap::new();
    loop {
        let err = match hcl::edit::parser::parse_body(&text) {
            Ok(body) => return Ok((body, blanked)),
            Err(e) => e,
        };
        let offset = index.offset(err.location().line(), err.location().column());
        match huge_literal_at(&text, offset) {
            Some((start, end)) if blanked.len() < MAX_RETRIES => {
                blanked.insert(start, text[start..end].to_owned());
                let pad = " ".repeat(end - start - 1);
                text.to_mut().replace_range(start..end, &format!("0{pad}"));
            }
            _ => return Err(err),
        }
    }
}

/// The byte range of the number literal around `offset` when it is beyond `f64`.
fn huge_literal_at(src: &str, offset: usize) -> Option<(usize, usize)> {
    let bytes = src.as_bytes();
    let offset = offset.min(bytes.len());
    let mut start = offset;
    while start > 0 && (bytes[start - 1].is_ascii_digit() || bytes[start - 1] == b'.') {
        start -= 1;
    }
    if start == offset && !bytes.get(offset).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
        return None; // part of a name, not a number
    }
    let mut end = start;
    while end < bytes.len() {
        let c = bytes[end];
        let sign = matches!(c, b'+' | b'-') && end > start && matches!(bytes[end - 1], b'e' | b'E');
        if c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E') || sign {
            end += 1;
        } else {
            break;
        }
    }
    let literal = &src[start..end];
    let first = literal.bytes().next()?;
    match literal.parse::<f64>() {
        Ok(f) if f.is_infinite() && first.is_ascii_digit() => Some((start, end)),
        _ => None,
    }
}

/// Parses an HCL policy file, reporting every problem as `file:line:column: message`.
pub fn parse_hcl(src: &str, file: &str) -> Result<Policy, Diagnostics> {
    let index = LineIndex::new(src);
    let (body, out_of_range) = parse_blanking_huge_numbers(src, &index).map_err(|e| {
        Diagnostics(vec![Diagnostic {
            location: Some(Location::Hcl {
                file: file.to_owned(),
                line: e.location().line(),
                column: e.location().column(),
            }),
            path: FieldPath::root(),
            message: format!("syntax error: {}", e.message()),
        }])
    })?;
    let mut low = Lowering {
        spans: HashMap::new(),
        errors: Vec::new(),
        out_of_range,
    };
    let root = FieldPath::root();
    let map = low.body(&body, &root);
    // A blanked literal the lowering did not meet as a number still makes the file invalid.
    for (offset, literal) in std::mem::take(&mut low.out_of_range) {
        low.errors
            .push((offset, root.clone(), out_of_range_message(&root, &literal)));
    }
    let locate = |p: &FieldPath| -> Option<Location> {
        // The most specific located ancestor of the path (a missing field points at its block).
        let mut segs = p.0.clone();
        loop {
            if let Some(off) = low.spans.get(&FieldPath(segs.clone())) {
                let (line, column) = index.at(*off);
                return Some(Location::Hcl {
                    file: file.to_owned(),
                    line,
                    column,
                });
            }
            if segs.pop().is_none() {
                return Some(Location::Hcl {
                    file: file.to_owned(),
                    line: 1,
                    column: 1,
                });
            }
        }
    };
    if !low.errors.is_empty() {
        let mut errs = low.errors.clone();
        errs.sort_by_key(|(off, _, _)| *off);
        return Err(Diagnostics(
            errs.into_iter()
                .map(|(off, path, message)| {
                    let (line, column) = index.at(off);
                    Diagnostic {
                        location: Some(Location::Hcl {
                            file: file.to_owned(),
                            line,
                            column,
                        }),
                        path,
                        message,
                    }
                })
                .collect(),
        ));
    }
    super::finish(Value::Object(map), &locate).map_err(|mut d| {
        d.0.sort_by_key(|x| match &x.location {
            Some(Location::Hcl { line, column, .. }) => (*line, *column),
            _ => (0, 0),
        });
        d
    })
}
