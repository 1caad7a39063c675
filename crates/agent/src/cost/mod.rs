//! The cost report: what each pool and namespace paid over a window, and what to change.
//!
//! - [`usage`]: the usage recorder, a task of its own that samples every pool's status
//!   every `cost.sample_interval` and keeps hourly rollups in the store (never inside a
//!   reconcile pass).
//! - [`report`]: figures (instance-hours and cost by flavor and purchase type, spot
//!   savings, idle %, cost per 1,000 requests, violation minutes, scaling actions) from
//!   the rollups and the price table.
//! - [`replay`]: the pool's own recent load replayed through `flexus-sim` as it is and as
//!   changed (min_size or a policy-less pool's size, spot share, flavor) — every recommendation carries that effect.
//! - the stored shapes ([`UsageHour`](crate::store::UsageHour), ...) and their SQL live in
//!   [`crate::store::usage`], behind the [`Store`](crate::store::Store) trait.
//!
//! Prices come from `[cost.prices]` in agent.toml; flavors not listed there cost what the
//! emulator charges (the `flexus_sim::capacity` catalogue, relative price units).

pub mod replay;
pub mod report;
pub mod usage;

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

/// On-demand and spot price of one flavor, per instance-hour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub on_demand: f64,
    pub spot: f64,
}

/// Prices per flavor.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    prices: BTreeMap<String, Price>,
}

impl Default for PriceTable {
    /// The emulator's prices: the `flexus_sim::capacity` catalogue (on-demand price, and
    /// spot at the flavor's spot factor).
    fn default() -> Self {
        let prices = flexus_sim::capacity::catalogue()
            .into_iter()
            .map(|f| {
                let p = Price {
                    on_demand: f.price_per_hour,
                    spot: f.price_per_hour * f.spot_price_factor,
                };
                (f.name, p)
            })
            .collect();
        Self { prices }
    }
}

impl PriceTable {
    /// The price of `flavor`, if known.
    pub fn get(&self, flavor: &str) -> Option<Price> {
        self.prices.get(flavor).copied()
    }

    /// Hourly price of one instance of `flavor` bought as `purchase` (0 if unknown).
    pub fn hourly(&self, flavor: &str, purchase: flexus_api::Purchase) -> f64 {
        self.get(flavor).map_or(0.0, |p| match purchase {
            flexus_api::Purchase::Spot => p.spot,
            flexus_api::Purchase::OnDemand => p.on_demand,
        })
    }

    /// Every priced flavor.
    pub fn flavors(&self) -> impl Iterator<Item = (&str, Price)> {
        self.prices.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

/// `[cost]` of agent.toml, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct CostConfig {
    /// Unit of the prices (shown in reports).
    pub currency: String,
    pub prices: PriceTable,
    /// Default report window.
    pub window: Duration,
    /// How often the usage recorder samples every pool.
    pub sample_interval: Duration,
    /// How long hourly rollups are kept.
    pub retention: Duration,
    /// Spot reclamations per instance-hour assumed by the replays.
    pub spot_hazard_per_hour: f64,
}

impl Default for CostConfig {
    fn default() -> Self {
        Self {
            currency: "price units".into(),
            prices: PriceTable::default(),
            window: Duration::from_secs(24 * 3600),
            sample_interval: Duration::from_secs(60),
            retention: Duration::from_secs(7 * 24 * 3600),
            spot_hazard_per_hour: 0.05,
        }
    }
}

/// The cost report and the usage recorder (see [operator](../design/operator.md)). The hourly
/// usage rollups are kept in the store for `cost.retention` (pruned with the rest, every
/// `retention.prune_every`); a deleted pool's rollups stay until then.
#[derive(Debug, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCostConfig {
    /// Label of the prices in reports. Default: `"price units"`
    currency: Option<String>,
    /// Default report window (at most `cost.retention`). Default: `"24h"`
    window: Option<String>,
    /// How often every held pool's status is sampled (1s–15m). Default: `"60s"`
    sample_interval: Option<String>,
    /// Usage rollups of hours older than this are deleted. Default: `"7d"`
    retention: Option<String>,
    /// Spot reclamations per instance-hour assumed by the replays behind recommendations (0–10).
    /// Default: `0.05`
    spot_hazard_per_hour: Option<f64>,
    /// Prices of the flavor named in the key (`[cost.prices."x1.2u.4g"]`):
    #[serde(default)]
    prices: BTreeMap<String, RawPrice>,
}

/// A flavor's prices per instance-hour.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    /// price per instance-hour on demand (at least 0). Required
    on_demand: f64,
    /// price per instance-hour as spot (at least 0). Default: the on-demand price times the
    /// emulator's spot factor for that flavor (0.35)
    spot: Option<f64>,
}

impl CostConfig {
    /// Validate `[cost]`, pushing every problem (named by field) to `problems`.
    pub fn from_raw(raw: &RawCostConfig, problems: &mut Vec<String>) -> Self {
        let d = Self::default();
        let mut prices = d.prices.clone();
        for (flavor, p) in &raw.prices {
            let field = format!("cost.prices.\"{flavor}\"");
            if !(p.on_demand.is_finite() && p.on_demand >= 0.0) {
                problems.push(format!(
                    "{field}.on_demand: {} is not a price >= 0",
                    p.on_demand
                ));
                continue;
            }
            let spot = p.spot.unwrap_or(p.on_demand * 0.35);
            if !(spot.is_finite() && spot >= 0.0) {
                problems.push(format!("{field}.spot: {spot} is not a price >= 0"));
                continue;
            }
            prices.prices.insert(
                flavor.clone(),
                Price {
                    on_demand: p.on_demand,
                    spot,
                },
            );
        }
        let c = Self {
            currency: raw.currency.clone().unwrap_or(d.currency),
            prices,
            window: crate::config::duration_setting("cost.window", &raw.window, d.window, problems),
            sample_interval: crate::config::duration_setting(
                "cost.sample_interval",
                &raw.sample_interval,
                d.sample_interval,
                problems,
            ),
            retention: crate::config::duration_setting(
                "cost.retention",
                &raw.retention,
                d.retention,
                problems,
            ),
            spot_hazard_per_hour: raw.spot_hazard_per_hour.unwrap_or(d.spot_hazard_per_hour),
        };
        if c.sample_interval < Duration::from_secs(1)
            || c.sample_interval > Duration::from_secs(900)
        {
            problems.push("cost.sample_interval: must be between 1s and 15m".into());
        }
        if c.window > c.retention {
            problems.push(format!(
                "cost.window: {} is longer than cost.retention {}",
                flexus_policy::format_duration(c.window),
                flexus_policy::format_duration(c.retention)
            ));
        }
        if !(c.spot_hazard_per_hour.is_finite() && (0.0..=10.0).contains(&c.spot_hazard_per_hour)) {
            problems.push("cost.spot_hazard_per_hour: must be between 0 and 10".into());
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_price_table_is_the_emulators() {
        let t = PriceTable::default();
        let f = flexus_sim::capacity::lookup("x1.2u.4g").unwrap();
        let p = t.get("x1.2u.4g").unwrap();
        assert_eq!(p.on_demand, f.price_per_hour);
        assert!((p.spot - f.price_per_hour * f.spot_price_factor).abs() < 1e-12);
    }

    #[test]
    fn configured_prices_override_the_default_and_bad_ones_are_named() {
        let raw: RawCostConfig = toml::from_str(
            "window = \"2h\"\n[prices.\"x1.2u.4g\"]\non_demand = 1.0\nspot = 0.25\n[prices.\"c7.large\"]\non_demand = -1\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        let c = CostConfig::from_raw(&raw, &mut problems);
        assert_eq!(
            c.prices.get("x1.2u.4g"),
            Some(Price {
                on_demand: 1.0,
                spot: 0.25
            })
        );
        assert_eq!(c.window, Duration::from_secs(7200));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("cost.prices.\"c7.large\".on_demand"),
            "{problems:?}"
        );
    }
}
