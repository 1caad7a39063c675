//! Creates the cloud refused, held back with backoff.
//!
//! A create that ECS refuses outright (a 4xx: unknown flavor or image, quota, sold out,
//! credentials — any error the client does not retry) would be refused again on the
//! next pass, and the pass after. So the refusal *holds* creates of that purchase kind
//! for the pool: while held, a pass sends nothing and records no operation; the
//! pool's status shows the error. When the hold expires, the next pass first sends the
//! same request as a dry run (`check_create_servers`: ECS checks it and creates
//! nothing); only if that passes is a real create recorded and sent. Each failure in a
//! row doubles the hold (30 s, 1 min, 2 min, … up to `max_backoff`, clock time). A
//! change of the pool's spec drops the hold at once (the user fixed the flavor), and a
//! create whose job succeeds forgets it.
//!
//! Holds live in memory: after a restart the first pass tries once, and holds again if
//! the cloud still refuses.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use flexus_api::{PoolError, Purchase};
use flexus_cloud::CloudError;

use super::PoolKey;
use crate::clock::{Millis, rfc3339};

/// The first hold; each failure in a row doubles it.
const FIRST_HOLD: Duration = Duration::from_secs(30);

/// Creates of one purchase kind of one pool, held after a refusal.
#[derive(Debug, Clone)]
pub struct Hold {
    /// The pool spec version the refusal was for.
    pub spec_version: u64,
    /// Refusals in a row.
    pub failures: u32,
    /// What was refused, e.g. `create of 2 on-demand instances`.
    pub operation: String,
    /// The cloud's answer.
    pub error: CloudError,
    /// When it was refused.
    pub at: Millis,
    /// Until when creates are held; `None` once a dry-run check passed and a create is
    /// on its way (the failure count is kept until that create's job succeeds).
    pub until: Option<Millis>,
}

impl Hold {
    /// The hold as the pool's status shows it.
    pub fn status(&self) -> PoolError {
        PoolError {
            operation: self.operation.clone(),
            code: self.error.code.clone(),
            message: self.error.to_string(),
            permanent: true,
            failures: Some(self.failures),
            at: rfc3339(self.at),
            retry_at: self.until.map(rfc3339),
        }
    }

    /// One line for `last_error` and the decision log.
    pub fn summary(&self) -> String {
        match self.until {
            Some(u) => format!(
                "{} refused ({} in a row): {}; held until {} (then checked with a dry run)",
                self.operation,
                self.failures,
                self.error,
                rfc3339(u)
            ),
            None => format!("{} refused: {}", self.operation, self.error),
        }
    }
}

/// A create (or its dry-run check) the cloud refused.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub purchase: Purchase,
    /// The pool spec version the request was built from.
    pub spec_version: u64,
    /// What was refused, e.g. `create of 2 on-demand instances`.
    pub operation: String,
    pub error: CloudError,
    pub at: Millis,
}

/// What a pass may do about a create.
#[derive(Debug, Clone)]
pub enum Gate {
    /// Nothing held: create.
    Open,
    /// The hold expired: check the request with a dry run first.
    Check,
    /// Held: send nothing.
    Held(Hold),
}

/// Every pool's holds.
#[derive(Debug, Default)]
pub struct CreateHolds {
    holds: Mutex<HashMap<(PoolKey, Purchase), Hold>>,
}

impl CreateHolds {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(PoolKey, Purchase), Hold>> {
        self.holds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a create of `purchase` for `key` (at pool spec `spec_version`) may be
    /// sent at `now`. A hold from another spec version is dropped.
    pub fn gate(&self, key: &PoolKey, purchase: Purchase, spec_version: u64, now: Millis) -> Gate {
        let mut holds = self.lock();
        let k = (key.clone(), purchase);
        match holds.get(&k) {
            None => Gate::Open,
            Some(h) if h.spec_version != spec_version => {
                holds.remove(&k);
                Gate::Open
            }
            Some(h) => match h.until {
                None => Gate::Open,
                Some(u) if now >= u => Gate::Check,
                Some(_) => Gate::Held(h.clone()),
            },
        }
    }

    /// The cloud refused a create (or its check): hold, twice as long as last time.
    pub fn refused(&self, key: &PoolKey, r: Refusal, max_hold: Duration) -> Hold {
        let mut holds = self.lock();
        let k = (key.clone(), r.purchase);
        let failures = holds
            .get(&k)
            .filter(|h| h.spec_version == r.spec_version)
            .map_or(0, |h| h.failures)
            + 1;
        let hold = FIRST_HOLD
            .saturating_mul(1u32 << (failures - 1).min(16))
            .min(max_hold.max(FIRST_HOLD));
        let h = Hold {
            spec_version: r.spec_version,
            failures,
            operation: r.operation,
            error: r.error,
            at: r.at,
            until: Some(r.at + hold.as_millis() as Millis),
        };
        holds.insert(k, h.clone());
        h
    }

    /// A dry-run check passed: the next create goes (the failure count is kept).
    pub fn lift(&self, key: &PoolKey, purchase: Purchase) {
        if let Some(h) = self.lock().get_mut(&(key.clone(), purchase)) {
            h.until = None;
        }
    }

    /// A create of `purchase` succeeded: forget its hold.
    pub fn succeeded(&self, key: &PoolKey, purchase: Purchase) {
        self.lock().remove(&(key.clone(), purchase));
    }

    /// The pool's hold in force, if any (the most recent refusal).
    pub fn holding(&self, key: &PoolKey) -> Option<Hold> {
        self.lock()
            .iter()
            .filter(|((k, _), h)| k == key && h.until.is_some())
            .map(|(_, h)| h.clone())
            .max_by_key(|h| h.at)
    }

    /// The pool is gone.
    pub fn forget(&self, key: &PoolKey) {
        self.lock().retain(|(k, _), _| k != key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flexus_cloud::ErrorKind;

    fn refusal(purchase: Purchase, spec_version: u64) -> Refusal {
        Refusal {
            purchase,
            spec_version,
            operation: "create of 1 on-demand instance(s)".into(),
            error: CloudError {
                kind: ErrorKind::Invalid,
                code: Some("Ecs.0005".into()),
                message: "server.flavorRef \"x1.1u.2g\" does not exist".into(),
                request_id: None,
                status: Some(400),
                operation: "create_servers".into(),
            },
            at: 0,
        }
    }

    #[test]
    fn a_refusal_holds_creates_twice_as_long_each_time_up_to_the_cap() {
        let holds = CreateHolds::default();
        let key = PoolKey::new("ns", "p");
        let cap = Duration::from_secs(100);
        let od = Purchase::OnDemand;
        assert!(matches!(holds.gate(&key, od, 1, 0), Gate::Open));
        let mut until = Vec::new();
        for _ in 0..4 {
            let h = holds.refused(&key, refusal(od, 1), cap);
            until.push(h.until.unwrap());
        }
        assert_eq!(until, vec![30_000, 60_000, 100_000, 100_000]);
        assert!(matches!(holds.gate(&key, od, 1, 99_999), Gate::Held(_)));
        assert!(matches!(holds.gate(&key, od, 1, 100_000), Gate::Check));
        assert!(
            matches!(holds.gate(&key, Purchase::Spot, 1, 0), Gate::Open),
            "spot creates are not held by an on-demand refusal"
        );
        let shown = holds.holding(&key).unwrap().status();
        assert_eq!(shown.code.as_deref(), Some("Ecs.0005"));
        assert!(shown.permanent);
        assert_eq!(shown.failures, Some(4));
    }

    #[test]
    fn a_new_spec_drops_the_hold_and_a_passed_check_lifts_it_until_the_create_succeeds() {
        let holds = CreateHolds::default();
        let key = PoolKey::new("ns", "p");
        let od = Purchase::OnDemand;
        let cap = Duration::from_secs(300);
        holds.refused(&key, refusal(od, 1), cap);
        assert!(matches!(holds.gate(&key, od, 2, 0), Gate::Open));
        assert!(holds.holding(&key).is_none(), "dropped with the old spec");

        holds.refused(&key, refusal(od, 2), cap);
        holds.lift(&key, od);
        assert!(matches!(holds.gate(&key, od, 2, 1), Gate::Open));
        assert!(holds.holding(&key).is_none(), "a lifted hold is not shown");
        // Refused again after the check passed: the count goes on.
        let h = holds.refused(&key, refusal(od, 2), cap);
        assert_eq!(h.failures, 2);
        holds.succeeded(&key, od);
        let h = holds.refused(&key, refusal(od, 2), cap);
        assert_eq!(h.failures, 1, "a success starts the count again");
    }
}
