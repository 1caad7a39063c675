//! Time series storage and CES-style aggregation.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest a driver-generated sample is kept (CES keeps raw data ~2 days).
pub const DRIVER_RETENTION_MS: i64 = 2 * 24 * 3600 * 1000;
/// Most samples kept per series.
pub const MAX_POINTS_PER_SERIES: usize = 20_000;

/// One series.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Series {
    /// Namespace.
    pub namespace: String,
    /// Metric name.
    pub metric_name: String,
    /// Dimensions, sorted by name.
    pub dimensions: Vec<(String, String)>,
    /// Unit.
    pub unit: String,
    /// `(timestamp ms, value, expires ms)`, ascending timestamps.
    pub points: Vec<(i64, f64, i64)>,
}

/// One sample to store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Timestamp, epoch ms.
    pub ts_ms: i64,
    /// Value.
    pub value: f64,
    /// When it expires, epoch ms.
    pub expires_ms: i64,
}

/// Series by key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetricStore {
    /// All series.
    pub series: BTreeMap<String, Series>,
}

/// The key of a series.
pub fn key(namespace: &str, metric: &str, dims: &[(String, String)]) -> String {
    let mut d: Vec<&(String, String)> = dims.iter().collect();
    d.sort();
    let dims: Vec<String> = d.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{namespace}|{metric}|{}", dims.join(","))
}

impl MetricStore {
    /// Appends a sample (kept sorted; same timestamp replaces).
    pub fn push(
        &mut self,
        namespace: &str,
        metric: &str,
        dims: &[(String, String)],
        unit: &str,
        sample: Sample,
    ) {
        let Sample {
            ts_ms,
            value,
            expires_ms,
        } = sample;
        let k = key(namespace, metric, dims);
        let s = self.series.entry(k).or_insert_with(|| {
            let mut d = dims.to_vec();
            d.sort();
            Series {
                namespace: namespace.into(),
                metric_name: metric.into(),
                dimensions: d,
                unit: unit.into(),
                points: Vec::new(),
            }
        });
        if !unit.is_empty() {
            s.unit = unit.into();
        }
        match s.points.binary_search_by_key(&ts_ms, |p| p.0) {
            Ok(i) => s.points[i] = (ts_ms, value, expires_ms),
            Err(i) => s.points.insert(i, (ts_ms, value, expires_ms)),
        }
        if s.points.len() > MAX_POINTS_PER_SERIES {
            let extra = s.points.len() - MAX_POINTS_PER_SERIES;
            s.points.drain(..extra);
        }
    }

    /// Drops expired samples and empty series.
    pub fn expire(&mut self, now: DateTime<Utc>) {
        let now_ms = now.timestamp_millis();
        for s in self.series.values_mut() {
            s.points.retain(|p| p.2 > now_ms);
        }
        self.series.retain(|_, s| !s.points.is_empty());
    }

    /// The series matching exactly.
    pub fn get(&self, namespace: &str, metric: &str, dims: &[(String, String)]) -> Option<&Series> {
        self.series.get(&key(namespace, metric, dims))
    }
}

/// Aggregates `points` in `[from, to)` into `period`-second buckets with `filter`.
/// `from` is rounded down to the period boundary, as CES does. Period 1 returns raw points.
pub fn aggregate(
    points: &[(i64, f64, i64)],
    from: i64,
    to: i64,
    period: u32,
    filter: &str,
) -> Vec<(i64, f64)> {
    let period_ms = i64::from(period) * 1000;
    let start = if period <= 1 {
        from
    } else {
        from.div_euclid(period_ms) * period_ms
    };
    let selected = points.iter().filter(|p| p.0 >= start && p.0 < to);
    if period <= 1 {
        return selected.map(|p| (p.0, p.1)).collect();
    }
    let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for p in selected {
        buckets
            .entry(p.0.div_euclid(period_ms) * period_ms)
            .or_default()
            .push(p.1);
    }
    buckets
        .into_iter()
        .map(|(t, v)| {
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            let value = match filter {
                "max" => v.iter().copied().fold(f64::MIN, f64::max),
                "min" => v.iter().copied().fold(f64::MAX, f64::min),
                "sum" => v.iter().sum(),
                "variance" => v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n,
                _ => mean,
            };
            (t, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregation_rounds_from_down_to_the_period_and_applies_the_filter() {
        let pts: Vec<(i64, f64, i64)> = vec![
            (60_000, 1.0, i64::MAX),
            (120_000, 3.0, i64::MAX),
            (360_000, 10.0, i64::MAX),
        ];
        let avg = aggregate(&pts, 100_000, 400_000, 300, "average");
        assert_eq!(avg, vec![(0, 2.0), (300_000, 10.0)]);
        assert_eq!(aggregate(&pts, 100_000, 400_000, 300, "max")[0], (0, 3.0));
        assert_eq!(aggregate(&pts, 100_000, 400_000, 300, "sum")[0], (0, 4.0));
        assert_eq!(
            aggregate(&pts, 100_000, 400_000, 300, "variance")[0],
            (0, 1.0)
        );
        assert_eq!(
            aggregate(&pts, 100_000, 400_000, 1, "average"),
            vec![(120_000, 3.0), (360_000, 10.0)]
        );
    }

    #[test]
    fn store_matches_dimensions_in_any_order_and_expires() {
        let mut m = MetricStore::default();
        let dims = vec![
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "1".to_string()),
        ];
        m.push(
            "NS.X",
            "m",
            &dims,
            "%",
            Sample {
                ts_ms: 1000,
                value: 5.0,
                expires_ms: 2000,
            },
        );
        let swapped = vec![
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
        ];
        assert_eq!(
            m.get("NS.X", "m", &swapped).map(|s| s.points.len()),
            Some(1)
        );
        m.expire(DateTime::from_timestamp_millis(2500).expect("ts"));
        assert!(m.get("NS.X", "m", &swapped).is_none());
    }
}
