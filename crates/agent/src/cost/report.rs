//! Cost figures from hourly usage rollups and the price table (pure).

use std::collections::BTreeMap;

use flexus_api::{CostFigures, CostReport, PoolCost, Purchase, PurchaseCost, Window};

use super::PriceTable;
use crate::store::UsageHour;

/// Figures of a set of rollups (one pool's, or any mix).
pub fn figures<'a>(
    rows: impl IntoIterator<Item = &'a UsageHour>,
    prices: &PriceTable,
) -> CostFigures {
    let mut by: BTreeMap<(String, bool), f64> = BTreeMap::new();
    let mut f = CostFigures::default();
    let (mut idle, mut load_billed, mut viol, mut covered) = (0.0, 0.0, 0.0, 0.0);
    let mut with_load = false;
    for r in rows {
        for (flavor, purchase, secs) in &r.by_purchase {
            *by.entry((flavor.clone(), *purchase == Purchase::Spot))
                .or_default() += secs;
        }
        f.instance_hours += r.billed_seconds / 3600.0;
        idle += r.idle_seconds;
        if r.load_seconds > 0.0 {
            with_load = true;
            // Billed seconds while the load was known: the base of the idle share.
            load_billed +=
                r.billed_seconds * (r.load_seconds / r.covered_seconds.max(1e-9)).min(1.0);
        }
        f.requests += r.requests;
        viol += r.violation_seconds;
        f.scaling_actions += r.actions;
        covered += r.covered_seconds;
    }
    for ((flavor, spot), secs) in by {
        if secs <= 0.0 {
            continue;
        }
        let purchase = if spot {
            Purchase::Spot
        } else {
            Purchase::OnDemand
        };
        let hours = secs / 3600.0;
        let cost = hours * prices.hourly(&flavor, purchase);
        if spot {
            f.spot_savings += hours * prices.hourly(&flavor, Purchase::OnDemand) - cost;
        }
        f.cost += cost;
        f.by_purchase.push(PurchaseCost {
            flavor,
            purchase,
            instance_hours: hours,
            cost,
        });
    }
    f.idle_pct = (with_load && load_billed > 0.0).then(|| 100.0 * idle / load_billed);
    f.cost_per_1k_requests = (f.requests > 0.0).then(|| f.cost / (f.requests / 1000.0));
    f.violation_minutes = viol / 60.0;
    f.covered_minutes = covered / 60.0;
    f
}

/// Adds `b` into `a` (the totals of a report).
pub fn add(a: &mut CostFigures, b: &CostFigures) {
    a.instance_hours += b.instance_hours;
    a.cost += b.cost;
    a.spot_savings += b.spot_savings;
    a.requests += b.requests;
    a.violation_minutes += b.violation_minutes;
    a.scaling_actions += b.scaling_actions;
    a.covered_minutes += b.covered_minutes;
    for p in &b.by_purchase {
        match a
            .by_purchase
            .iter_mut()
            .find(|x| x.flavor == p.flavor && x.purchase == p.purchase)
        {
            Some(x) => {
                x.instance_hours += p.instance_hours;
                x.cost += p.cost;
            }
            None => a.by_purchase.push(p.clone()),
        }
    }
}

/// The report of every pool in `rows` (ordered by namespace, pool, hour, as the store
/// returns them). `idle_pct` of the totals weighs each pool by its billed hours.
pub fn report(
    rows: &[UsageHour],
    prices: &PriceTable,
    window: Window,
    currency: &str,
) -> CostReport {
    let mut pools = Vec::new();
    let mut totals = CostFigures::default();
    let (mut idle_weighted, mut idle_hours) = (0.0, 0.0);
    let mut start = 0;
    while start < rows.len() {
        let (ns, pool) = (&rows[start].namespace, &rows[start].pool);
        let end = start
            + rows[start..]
                .iter()
                .take_while(|r| &r.namespace == ns && &r.pool == pool)
                .count();
        let group = &rows[start..end];
        let f = figures(group, prices);
        add(&mut totals, &f);
        if let Some(i) = f.idle_pct {
            idle_weighted += i * f.instance_hours;
            idle_hours += f.instance_hours;
        }
        pools.push(PoolCost {
            pool: format!("{ns}/{pool}"),
            flavor: group.last().map(|r| r.flavor.clone()).unwrap_or_default(),
            figures: f,
            recommendations: Vec::new(),
            recommendation_note: None,
        });
        start = end;
    }
    totals.idle_pct = (idle_hours > 0.0).then(|| idle_weighted / idle_hours);
    totals.cost_per_1k_requests =
        (totals.requests > 0.0).then(|| totals.cost / (totals.requests / 1000.0));
    CostReport {
        window,
        currency: currency.to_owned(),
        totals,
        pools,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(pool: &str, od: f64, spot: f64) -> UsageHour {
        let mut h = UsageHour::new("team-a", pool, 3600, "x1.2u.4g");
        h.by_purchase = vec![
            ("x1.2u.4g".into(), Purchase::OnDemand, od),
            ("x1.2u.4g".into(), Purchase::Spot, spot),
        ];
        h.billed_seconds = od + spot;
        h.covered_seconds = 3600.0;
        h.load_seconds = 3600.0;
        h.idle_seconds = 0.25 * (od + spot);
        h.requests = 360_000.0;
        h.violation_seconds = 120.0;
        h.actions = 2;
        h
    }

    #[test]
    fn cost_spot_savings_idle_share_and_cost_per_request_follow_the_price_table() {
        let prices = PriceTable::default();
        let p = prices.get("x1.2u.4g").unwrap();
        let f = figures(&[hour("web", 2.0 * 3600.0, 3600.0)], &prices);
        assert!((f.instance_hours - 3.0).abs() < 1e-9);
        assert!((f.cost - (2.0 * p.on_demand + p.spot)).abs() < 1e-9);
        assert!((f.spot_savings - (p.on_demand - p.spot)).abs() < 1e-9);
        assert!((f.idle_pct.unwrap() - 25.0).abs() < 1e-9);
        assert!((f.cost_per_1k_requests.unwrap() - f.cost / 360.0).abs() < 1e-12);
        assert!((f.violation_minutes - 2.0).abs() < 1e-9);
        assert_eq!(f.scaling_actions, 2);
    }

    #[test]
    fn a_report_groups_rows_by_pool_and_adds_them_up() {
        let prices = PriceTable::default();
        let rows = vec![
            hour("api", 3600.0, 0.0),
            hour("web", 3600.0, 0.0),
            hour("web", 3600.0, 0.0),
        ];
        let w = Window {
            from: "a".into(),
            to: "b".into(),
            hours: 1.0,
        };
        let r = report(&rows, &prices, w, "units");
        assert_eq!(r.pools.len(), 2);
        assert_eq!(r.pools[1].pool, "team-a/web");
        assert!((r.pools[1].figures.instance_hours - 2.0).abs() < 1e-9);
        assert!((r.totals.instance_hours - 3.0).abs() < 1e-9);
        assert_eq!(r.totals.by_purchase.len(), 1);
        assert!((r.totals.idle_pct.unwrap() - 25.0).abs() < 1e-9);
    }
}
