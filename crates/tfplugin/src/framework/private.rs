//! Private state: provider-only data Terraform stores next to a resource's state and hands
//! back on the next call. Stored as one JSON object of keys (empty bytes when empty).

use std::collections::BTreeMap;

use crate::diag::{Diagnostic, Diagnostics};

/// Keyed private data of one resource instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Private(BTreeMap<String, serde_json::Value>);

impl Private {
    pub fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.0
            .get(key)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
    pub fn set<T: serde::Serialize>(&mut self, key: &str, value: &T) -> Result<(), Diagnostics> {
        let v = serde_json::to_value(value)
            .map_err(|e| Diagnostic::from_error("Cannot store private state", &e))?;
        self.0.insert(key.to_string(), v);
        Ok(())
    }
    pub fn remove(&mut self, key: &str) {
        self.0.remove(key);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses the bytes Terraform hands back (empty = no private state).
    pub fn from_bytes(b: &[u8]) -> Result<Private, Diagnostics> {
        if b.is_empty() {
            return Ok(Private::default());
        }
        serde_json::from_slice(b)
            .map(Private)
            .map_err(|e| Diagnostic::from_error("Invalid private state", &e).into())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        if self.0.is_empty() {
            Vec::new()
        } else {
            serde_json::to_vec(&self.0).unwrap_or_default()
        }
    }
}
