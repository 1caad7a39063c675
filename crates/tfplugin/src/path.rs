//! Attribute paths: where in a resource's value a diagnostic or a replacement points.

use std::fmt;

use crate::pb::tfplugin6 as pb;
use crate::value::Value;

/// The walk of [`AttrPath::get`] and [`AttrPath::get_mut`]: one body, with `$get` (`get` or
/// `get_mut`) taking each step.
macro_rules! walk {
    ($path:expr, $root:expr, $get:ident) => {{
        let mut cur = $root;
        for step in &$path.0 {
            cur = match (step, cur) {
                (Step::Attr(n), Value::Object(m)) => m.$get(n)?,
                (Step::Key(k), Value::Map(m)) => m.$get(k)?,
                (Step::Index(i), Value::List(v) | Value::Tuple(v) | Value::Set(v)) => {
                    v.$get(usize::try_from(*i).ok()?)?
                }
                _ => return None,
            };
        }
        Some(cur)
    }};
}

/// One step of an [`AttrPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// An object attribute or nested block name.
    Attr(String),
    /// A map key (or a MAP block label).
    Key(String),
    /// A list index.
    Index(i64),
}

/// A path from the root of a resource's value, e.g. `rule[0].name`.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrPath(pub Vec<Step>);

impl AttrPath {
    pub fn root() -> AttrPath {
        AttrPath(Vec::new())
    }
    /// A path to a top-level attribute.
    pub fn new(attr: &str) -> AttrPath {
        AttrPath::root().attr(attr)
    }
    pub fn attr(&self, name: &str) -> AttrPath {
        self.then(Step::Attr(name.to_string()))
    }
    pub fn key(&self, key: &str) -> AttrPath {
        self.then(Step::Key(key.to_string()))
    }
    pub fn index(&self, i: i64) -> AttrPath {
        self.then(Step::Index(i))
    }
    /// This path followed by one more step.
    fn then(&self, step: Step) -> AttrPath {
        let mut p = self.clone();
        p.0.push(step);
        p
    }
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
    pub fn steps(&self) -> &[Step] {
        &self.0
    }

    /// The value at this path (`None` when the path leads nowhere; null/unknown stop the walk).
    pub fn get<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        walk!(self, root, get)
    }

    /// Mutable access to the value at this path.
    pub fn get_mut<'a>(&self, root: &'a mut Value) -> Option<&'a mut Value> {
        walk!(self, root, get_mut)
    }

    pub(crate) fn to_pb(&self) -> pb::AttributePath {
        use pb::attribute_path::step::Selector;
        pb::AttributePath {
            steps: self
                .0
                .iter()
                .map(|s| pb::attribute_path::Step {
                    selector: Some(match s {
                        Step::Attr(n) => Selector::AttributeName(n.clone()),
                        Step::Key(k) => Selector::ElementKeyString(k.clone()),
                        Step::Index(i) => Selector::ElementKeyInt(*i),
                    }),
                })
                .collect(),
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(root)");
        }
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Step::Attr(n) if i == 0 => write!(f, "{n}")?,
                Step::Attr(n) => write!(f, ".{n}")?,
                Step::Key(k) => write!(f, "[{k:?}]")?,
                Step::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AttrPath({self})")
    }
}
