//! What a pass sees of a pool's instances: each tagged server mapped to a lifecycle
//! (booting, warming, ready, draining, reclaimed, failed), plus the instances open
//! creates asked for that the listing does not show yet.

use std::collections::{HashMap, HashSet};

use flexus_api::{
    DecisionRecord, InstanceStatus, Lifecycle, Operation, PoolError, PoolPhase, PoolSpec,
    PoolStatus, Purchase, RefreshStatus, TAG_OPERATION, TAG_TEMPLATE,
};
use flexus_cloud::{ChargingMode, Server, ServerStatus};
use flexus_policy as fp;

use crate::clock::{Millis, parse_rfc3339, rfc3339};
use crate::store::OpRecord;

/// What a pass saw of the pool.
#[derive(Debug)]
pub struct Observed {
    pub servers: Vec<Server>,
    pub instances: Vec<InstanceStatus>,
    pub policy_state: fp::PoolState,
    pub ready_ids: Vec<String>,
    /// Failed, stopped or reclaimed instances not yet being deleted.
    pub broken: Vec<String>,
    /// Requested by open creates but not listed yet.
    pub virtual_booting: u32,
    /// The pool's template hash ([`PoolSpec::template_hash`]).
    pub template: String,
    /// Ids (listed, or `pending:<op>:<i>` for requested ones) made from an older template.
    pub outdated: HashSet<String>,
}

/// What the pool's status reports besides its instances.
#[derive(Debug)]
pub struct StatusReport {
    pub desired: Option<u32>,
    pub last_decision: Option<DecisionRecord>,
    pub now: Millis,
    /// `last_error` and its detail.
    pub error: Option<(String, PoolError)>,
    pub pending: Vec<Operation>,
    pub min_size: u32,
    pub refresh: Option<RefreshStatus>,
}

/// Whether `s` was made from another template than `template` (the pool's): by its
/// `flexus-tpl` tag, or — without the tag — by the flavor and image ECS lists.
fn is_outdated(spec: &PoolSpec, template: &str, s: &Server) -> bool {
    match s.tag(TAG_TEMPLATE) {
        Some(t) => t != template,
        None => {
            (s.flavor_name != spec.flavor && s.flavor_id != spec.flavor)
                || s.image_id.as_deref().is_some_and(|i| i != spec.image)
        }
    }
}

/// The template tag an open create's stored request puts on its instances.
fn requested_template(o: &OpRecord) -> Option<String> {
    let tags = &o.request.as_ref()?.tags;
    tags.iter()
        .find(|(k, _)| k == TAG_TEMPLATE)
        .map(|(_, v)| v.clone())
}

/// The lifecycle of `s` and since when, or `None` for a server that is gone.
fn lifecycle(
    spec: &PoolSpec,
    s: &Server,
    deleting: bool,
    now: Millis,
) -> Option<(Lifecycle, Millis)> {
    let created = s.created.map(|c| c.timestamp_millis()).unwrap_or(now);
    let launched = s
        .launched_at
        .as_deref()
        .and_then(|l| {
            chrono::NaiveDateTime::parse_from_str(l, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc().timestamp_millis())
        })
        .unwrap_or(created);
    Some(if deleting {
        (Lifecycle::Draining, now)
    } else if s.spot_interruption_at.is_some() {
        (Lifecycle::Reclaimed, now)
    } else {
        match s.status {
            ServerStatus::Build => (Lifecycle::Booting, created),
            ServerStatus::Active => {
                let warm_until = launched + spec.warmup_seconds as i64 * 1000;
                if now < warm_until {
                    (Lifecycle::Warming, launched)
                } else {
                    (Lifecycle::Ready, warm_until)
                }
            }
            ServerStatus::Error | ServerStatus::Shutoff => (Lifecycle::Failed, now),
            ServerStatus::Other(_) => (Lifecycle::Ready, launched),
            ServerStatus::Deleted | ServerStatus::SoftDeleted => return None,
        }
    })
}

impl Observed {
    pub fn new(spec: &PoolSpec, servers: &[Server], open: &[OpRecord], now: Millis) -> Self {
        let deleting: HashSet<&str> = open
            .iter()
            .filter(|o| o.op.kind.deletes())
            .flat_map(|o| o.op.server_ids.iter().map(String::as_str))
            .collect();
        let mut o = Observed {
            servers: servers.to_vec(),
            instances: Vec::new(),
            policy_state: fp::PoolState::default(),
            ready_ids: Vec::new(),
            broken: Vec::new(),
            virtual_booting: 0,
            template: spec.template_hash(),
            outdated: HashSet::new(),
        };
        let mut seen_by_op: HashMap<&str, u32> = HashMap::new();
        for s in servers {
            if let Some(op) = s.tag(TAG_OPERATION) {
                *seen_by_op.entry(op).or_default() += 1;
            }
            let Some((lc, since)) = lifecycle(spec, s, deleting.contains(s.id.as_str()), now)
            else {
                continue;
            };
            if is_outdated(spec, &o.template, s) {
                o.outdated.insert(s.id.clone());
            }
            o.add(s, lc, since, now);
        }
        o.add_requested(open, &seen_by_op, now);
        o
    }

    /// One listed server.
    fn add(&mut self, s: &Server, lifecycle: Lifecycle, since: Millis, now: Millis) {
        let purchase = if s.charging_mode == ChargingMode::Spot {
            Purchase::Spot
        } else {
            Purchase::OnDemand
        };
        if matches!(lifecycle, Lifecycle::Failed | Lifecycle::Reclaimed) {
            self.broken.push(s.id.clone());
        }
        if lifecycle == Lifecycle::Ready {
            self.ready_ids.push(s.id.clone());
        }
        self.policy_state.instances.push(fp::Instance {
            id: s.id.clone(),
            lifecycle,
            purchase,
            since: fp::Timestamp(since),
        });
        let created = s.created.map(|c| c.timestamp_millis()).unwrap_or(now);
        self.instances.push(InstanceStatus {
            id: s.id.clone(),
            name: s.name.clone(),
            lifecycle,
            purchase,
            flavor: if s.flavor_name.is_empty() {
                s.flavor_id.clone()
            } else {
                s.flavor_name.clone()
            },
            availability_zone: s.availability_zone.clone(),
            created_at: rfc3339(created),
            age_seconds: ((now - created).max(0) / 1000) as u64,
            template: s.tag(TAG_TEMPLATE).map(str::to_owned),
            outdated: self.outdated.contains(&s.id),
        });
    }

    /// Instances an open create asked for but the listing does not show yet: booting.
    fn add_requested(&mut self, open: &[OpRecord], seen_by_op: &HashMap<&str, u32>, now: Millis) {
        for o in open.iter().filter(|o| o.op.kind.creates()) {
            let seen = seen_by_op.get(o.op.id.as_str()).copied().unwrap_or(0);
            let outdated = requested_template(o).is_some_and(|t| t != self.template);
            for i in 0..o.op.count.saturating_sub(seen) {
                self.virtual_booting += 1;
                let id = format!("pending:{}:{i}", o.op.id);
                if outdated {
                    self.outdated.insert(id.clone());
                }
                self.policy_state.instances.push(fp::Instance {
                    id,
                    lifecycle: Lifecycle::Booting,
                    purchase: o.op.purchase.unwrap_or(Purchase::OnDemand),
                    since: fp::Timestamp(parse_rfc3339(&o.op.created_at).unwrap_or(now)),
                });
            }
        }
    }

    /// Booting, warming and ready instances: the pool's capacity, now or soon.
    pub fn live(&self) -> impl Iterator<Item = &InstanceStatus> {
        self.instances.iter().filter(|i| {
            matches!(
                i.lifecycle,
                Lifecycle::Booting | Lifecycle::Warming | Lifecycle::Ready
            )
        })
    }

    /// Instances counting toward capacity.
    pub fn counted(&self) -> u32 {
        self.policy_state.counts().counted
    }

    /// (on-demand, spot) counted instances.
    pub fn purchase_counts(&self) -> (u32, u32) {
        let c = self.policy_state.counts();
        (c.on_demand, c.spot)
    }

    /// The zone with the fewest counted instances (first listed wins ties).
    pub fn emptiest_zone(&self, zones: &[String]) -> Option<String> {
        zones
            .iter()
            .min_by_key(|z| {
                self.live()
                    .filter(|i| i.availability_zone.as_deref() == Some(z.as_str()))
                    .count()
            })
            .cloned()
    }

    /// The pool's status: its instances, and what `report` adds.
    pub fn status(&self, report: StatusReport) -> PoolStatus {
        let counts = self.policy_state.counts();
        let phase = if report.error.is_some() {
            PoolPhase::Degraded
        } else if report.desired == Some(counts.counted)
            && report.pending.is_empty()
            && counts.ready >= report.min_size
        {
            PoolPhase::Ready
        } else {
            PoolPhase::Scaling
        };
        let (last_error, last_error_detail) = report.error.unzip();
        PoolStatus {
            phase,
            desired_size: report.desired,
            current_size: counts.counted,
            ready_size: counts.ready,
            instance_ids: self.live().map(|i| i.id.clone()).collect(),
            instances: self.instances.clone(),
            last_decision: report.last_decision,
            last_reconcile_at: Some(rfc3339(report.now)),
            last_error,
            last_error_detail,
            pending_operations: report.pending,
            template: Some(self.template.clone()),
            refresh: report.refresh,
        }
    }
}
