//! The flavor catalogue (from `flexus_sim::capacity`), with spot prices.

use flexus_sim::capacity::{self, Flavor};

/// Looks a flavor up.
pub fn find(name: &str) -> Option<Flavor> {
    capacity::lookup(name).ok()
}

/// All flavors.
pub fn all() -> Vec<Flavor> {
    capacity::catalogue()
}

/// Spot market price per hour of a flavor.
pub fn spot_price(f: &Flavor) -> f64 {
    f.price_per_hour * f.spot_price_factor
}
