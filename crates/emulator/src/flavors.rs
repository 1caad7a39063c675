//! The flavor catalogue (from `flexus_sim::capacity`), with spot prices.

use std::sync::OnceLock;

use flexus_sim::capacity::{self, Flavor};

fn catalogue() -> &'static [Flavor] {
    static CATALOGUE: OnceLock<Vec<Flavor>> = OnceLock::new();
    CATALOGUE.get_or_init(capacity::catalogue)
}

/// Looks a flavor up.
pub fn find(name: &str) -> Option<Flavor> {
    catalogue().iter().find(|f| f.name == name).cloned()
}

/// All flavors.
pub fn all() -> Vec<Flavor> {
    catalogue().to_vec()
}

/// Spot market price per hour of a flavor.
pub fn spot_price(f: &Flavor) -> f64 {
    f.price_per_hour * f.spot_price_factor
}
