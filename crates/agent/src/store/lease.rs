//! Pool leases: which agent may reconcile which pool, with a fencing token.
//!
//! The protocol (why it is safe, what it assumes) is in `docs/design/leases.md`. In
//! short: a lease row per pool names its holder (agent name + session), a token that
//! grows on every change of hands, and an expiry on the database's clock. Agents renew
//! theirs in one statement, claim free or expired pools up to a fair share, and give
//! up their surplus. Every fenced write checks, inside its own transaction, that the
//! lease row still names this agent's session and token — so a write of an agent that
//! lost its lease (paused, partitioned) is refused, and every cloud mutation, which is
//! journalled by a fenced write before it is sent, is visible to the next holder.
//!
//! A lease is valid while its holder's session is alive: the holder's heartbeat row
//! (`agents`) is renewed every round, so renewing costs one row however many pools an
//! agent holds. This module keeps the leases held by this process in memory with one
//! local deadline (the start of the last round + ttl − margin, on the monotonic clock),
//! so that `holds()` answers without a query and turns false before the heartbeat can
//! expire in the database.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::{Monotonic, monotonic_now};

/// Lease settings (`[lease]` in agent.toml). Durations are real time.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseConfig {
    /// This agent's name in the lease table. Two agents must not share it; an agent
    /// restarted under the same name takes its own leases back at once.
    pub holder: String,
    /// How long a lease lasts without renewal.
    pub ttl: Duration,
    /// How often leases are renewed and free pools claimed (well under `ttl`).
    pub renew_every: Duration,
    /// A lease counts as lost locally this long before it expires in the database
    /// (covers the time a renewal takes and clock-rate differences).
    pub margin: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            holder: "flexus-agent".into(),
            ttl: Duration::from_secs(10),
            renew_every: Duration::from_secs(3),
            margin: Duration::from_secs(2),
        }
    }
}

impl LeaseConfig {
    /// Problems with these settings (field names as in agent.toml).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.holder.trim().is_empty() {
            p.push("lease.holder: must not be empty".into());
        }
        if self.ttl.is_zero() {
            p.push("lease.ttl: must be greater than 0".into());
        }
        if self.renew_every.is_zero() || self.renew_every >= self.ttl {
            p.push(format!(
                "lease.renew_every: {:?} must be greater than 0 and less than lease.ttl ({:?})",
                self.renew_every, self.ttl
            ));
        }
        if self.margin + self.renew_every >= self.ttl {
            p.push(format!(
                "lease.margin: {:?} plus renew_every {:?} must be less than ttl {:?}",
                self.margin, self.renew_every, self.ttl
            ));
        }
        p
    }
}

/// A pool by namespace and name.
pub type PoolId = (String, String);
/// A lease held: namespace, pool, token.
pub type HeldLease = (String, String, i64);

/// Proof of a lease: what a fenced write checks against the lease row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub holder: String,
    pub session: String,
    pub token: i64,
}

/// What a lease renewal round changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseSync {
    /// Pools leased now that were not before (reconcile them soon).
    pub acquired: Vec<PoolId>,
    /// Pools held before and not any more.
    pub lost: Vec<PoolId>,
    /// Pools held after this round.
    pub held: usize,
    /// Live agents (including this one) and this agent's share of the pools.
    pub agents: u64,
    pub share: u64,
}

/// The leases of this process: one local deadline for all (leases live as long as
/// the holder's heartbeat, renewed in one round), and each pool's token.
#[derive(Debug, Default)]
pub(crate) struct HeldSet {
    /// Until when (monotonic) this process may act on its pools.
    until: Option<Monotonic>,
    tokens: HashMap<PoolId, i64>,
}

/// The leases this process holds. `Unfenced` is a private store nobody shares (the
/// in-memory store of unit tests): everything counts as held and nothing is checked.
#[derive(Debug)]
pub(crate) enum LeaseTable {
    Unfenced,
    Fenced {
        config: LeaseConfig,
        session: String,
        held: Mutex<HeldSet>,
    },
}

impl LeaseTable {
    pub(crate) fn fenced(config: LeaseConfig) -> Self {
        Self::Fenced {
            config,
            session: uuid::Uuid::new_v4().to_string(),
            held: Mutex::new(HeldSet::default()),
        }
    }

    pub(crate) fn holds(&self, ns: &str, pool: &str) -> bool {
        self.fence(ns, pool).is_some()
    }

    /// The fence to check for a write to `ns/pool`: `None` when this process does not
    /// hold the lease (or its local deadline passed); `Some(None)` when unfenced.
    pub(crate) fn fence(&self, ns: &str, pool: &str) -> Option<Option<Fence>> {
        match self {
            Self::Unfenced => Some(None),
            Self::Fenced {
                config,
                session,
                held,
            } => {
                let held = held.lock().unwrap_or_else(|p| p.into_inner());
                if held.until.is_none_or(|u| monotonic_now() >= u) {
                    return None;
                }
                let token = *held.tokens.get(&(ns.to_owned(), pool.to_owned()))?;
                Some(Some(Fence {
                    holder: config.holder.clone(),
                    session: session.clone(),
                    token,
                }))
            }
        }
    }

    /// This process's (holder, session) in the `agents` table; `None` when unfenced.
    pub(crate) fn session(&self) -> Option<(&str, &str)> {
        match self {
            Self::Unfenced => None,
            Self::Fenced {
                config, session, ..
            } => Some((config.holder.as_str(), session.as_str())),
        }
    }

    /// Whether this process's session is alive (its last round's deadline has not
    /// passed).
    pub(crate) fn alive(&self) -> bool {
        match self {
            Self::Unfenced => true,
            Self::Fenced { held, .. } => held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .until
                .is_some_and(|u| monotonic_now() < u),
        }
    }

    /// Pools held now (with a valid local deadline).
    pub(crate) fn count(&self) -> usize {
        match self {
            Self::Unfenced => 0,
            Self::Fenced { held, .. } => {
                let held = held.lock().unwrap_or_else(|p| p.into_inner());
                if held.until.is_some_and(|u| monotonic_now() < u) {
                    held.tokens.len()
                } else {
                    0
                }
            }
        }
    }

    /// Replace the held set after a round that started at `started`; returns
    /// (acquired, lost) relative to what was held and still valid before.
    pub(crate) fn replace(
        &self,
        started: Monotonic,
        now_held: Vec<HeldLease>,
    ) -> (Vec<PoolId>, Vec<PoolId>) {
        let Self::Fenced { config, held, .. } = self else {
            return (Vec::new(), Vec::new());
        };
        let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
        let valid = held.until.is_some_and(|u| monotonic_now() < u);
        let mut next = HashMap::with_capacity(now_held.len());
        let mut acquired = Vec::new();
        for (ns, pool, token) in now_held {
            let key = (ns, pool);
            if !valid || held.tokens.get(&key) != Some(&token) {
                acquired.push(key.clone());
            }
            next.insert(key, token);
        }
        let lost = held
            .tokens
            .keys()
            .filter(|k| !next.contains_key(*k))
            .cloned()
            .collect();
        held.tokens = next;
        held.until = Some(started + config.ttl.saturating_sub(config.margin));
        (acquired, lost)
    }

    /// Add one lease claimed between rounds (it lives as long as the heartbeat).
    pub(crate) fn add(&self, ns: &str, pool: &str, token: i64) {
        if let Self::Fenced { held, .. } = self {
            held.lock()
                .unwrap_or_else(|p| p.into_inner())
                .tokens
                .insert((ns.to_owned(), pool.to_owned()), token);
        }
    }

    /// Forget one lease locally (given up or found lost).
    pub(crate) fn drop_lease(&self, ns: &str, pool: &str) {
        if let Self::Fenced { held, .. } = self {
            held.lock()
                .unwrap_or_else(|p| p.into_inner())
                .tokens
                .remove(&(ns.to_owned(), pool.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_settings_with_renewal_slower_than_expiry_are_refused() {
        let bad = LeaseConfig {
            ttl: Duration::from_secs(5),
            renew_every: Duration::from_secs(5),
            ..LeaseConfig::default()
        };
        let p = bad.problems();
        assert!(
            p.iter().any(|m| m.starts_with("lease.renew_every")),
            "{p:?}"
        );
        assert!(LeaseConfig::default().problems().is_empty());
    }

    #[test]
    fn a_lease_past_its_local_deadline_is_not_held_and_an_unfenced_table_holds_everything() {
        let t = LeaseTable::fenced(LeaseConfig::default());
        let long_ago = monotonic_now() - Duration::from_secs(60);
        t.replace(long_ago, vec![("a".into(), "p".into(), 3)]);
        assert!(!t.holds("a", "p"), "the renewal that granted it is too old");
        let (acquired, _) = t.replace(monotonic_now(), vec![("a".into(), "p".into(), 3)]);
        assert_eq!(acquired, vec![("a".to_owned(), "p".to_owned())]);
        assert_eq!(t.fence("a", "p").flatten().map(|f| f.token), Some(3));
        let (acquired, lost) = t.replace(monotonic_now(), vec![]);
        assert!(acquired.is_empty());
        assert_eq!(lost.len(), 1);
        assert!(LeaseTable::Unfenced.holds("x", "y"));
    }
}
