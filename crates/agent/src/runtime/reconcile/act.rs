//! Act: carry out a decision through the operation journal — replace what the cloud
//! broke or took back, create for a scale-out (unless the cloud's refusal holds
//! creates, see [`crate::runtime::holds`]), delete the chosen victims for a scale-in —
//! and empty a deleted pool.

use std::collections::HashSet;

use base64::Engine as _;
use flexus_api::{
    DecisionOutcome, InstanceStatus, Lifecycle, OperationKind, PoolSpec, Purchase, RefreshStatus,
    RefreshStrategy, RemovalRule, TAG_NAMESPACE, TAG_OPERATION, TAG_POOL, TAG_TEMPLATE,
};
use flexus_cloud::{CloudError, CreateServersRequest, ErrorKind, SpotOptions};
use flexus_policy as fp;
use uuid::Uuid;

use super::observe::Seen;
use super::observed::Observed;
use super::ops::NewOp;
use super::{Context, PassError};
use crate::runtime::holds::{Gate, Hold, Refusal};
use crate::runtime::{Next, PoolKey};

/// What the act stage did.
#[derive(Debug)]
pub(super) struct Acted {
    pub outcome: DecisionOutcome,
    /// Operations started, in order.
    pub op_ids: Vec<String>,
    /// A scale action went out (its scale event starts cooldowns).
    pub scaled: bool,
    /// Why acting stopped (the pass fails and is retried with backoff).
    pub error: Option<PassError>,
    /// Creates the cloud's refusal holds back.
    pub held: Vec<Hold>,
    /// Instances the scale-in chose to delete.
    pub removed: Vec<String>,
    /// Instances the scale-out asked for.
    pub launched: u32,
    /// The refresh's progress, when one runs (`None` also when acting stopped first).
    pub refresh: Option<RefreshStatus>,
}

/// What a scale action started.
#[derive(Debug, Default)]
pub(super) struct Scaled {
    pub ops: Vec<String>,
    pub held: Vec<Hold>,
    pub removed: Vec<String>,
    pub launched: u32,
}

/// One create: started (its operation id), or refused and held.
#[derive(Debug)]
enum Created {
    /// The operation id and its count.
    Started(String, u32),
    Refused(Hold),
}

/// What a create is built from.
pub(super) struct CreateSpec<'a> {
    pub key: &'a PoolKey,
    pub seen: &'a Seen,
    /// `scale_out` or `refresh_launch`.
    pub kind: OperationKind,
}

impl Context {
    /// Carry out `decision` (nothing in dry run).
    pub(super) async fn act(
        &self,
        key: &PoolKey,
        seen: &Seen,
        policy: &fp::Policy,
        decision: &fp::Decision,
    ) -> Acted {
        let mut acted = Acted {
            outcome: if policy.dry_run && decision.desired != decision.current {
                DecisionOutcome::DryRun
            } else if !policy.enabled {
                DecisionOutcome::Disabled
            } else {
                DecisionOutcome::None
            },
            op_ids: Vec::new(),
            scaled: false,
            error: None,
            held: Vec::new(),
            removed: Vec::new(),
            launched: 0,
            refresh: None,
        };
        if policy.dry_run {
            return acted;
        }
        // Replace what the cloud took back or broke.
        if !seen.pool.broken.is_empty() {
            let broken = seen.pool.broken.clone();
            match self
                .start_op(key, NewOp::delete(OperationKind::Replace, broken))
                .await
            {
                Ok(op) => acted.op_ids.push(op.op.id),
                Err(e) => acted.error = Some(e),
            }
        }
        if acted.error.is_none() {
            let scaled = match decision.action {
                fp::Action::ScaleOut { by } => self.scale_out(key, seen, decision, by).await,
                fp::Action::ScaleIn { by } => self.scale_in(key, seen, by).await,
                fp::Action::None => Ok(Scaled::default()),
            };
            match scaled {
                Ok(s) => {
                    acted.scaled = !s.ops.is_empty();
                    acted.op_ids.extend(s.ops);
                    acted.held = s.held;
                    acted.removed = s.removed;
                    acted.launched = s.launched;
                }
                Err(e) => acted.error = Some(e),
            }
        }
        if acted.error.is_none() {
            match self.refresh(key, seen, decision.desired, &acted).await {
                Ok(r) => acted.refresh = r,
                Err(e) => acted.error = Some(e),
            }
        }
        if acted.scaled {
            acted.outcome = DecisionOutcome::Acted;
        }
        let failed = acted.error.is_some() || (!acted.held.is_empty() && !acted.scaled);
        if failed && decision.action != fp::Action::None {
            acted.outcome = DecisionOutcome::Failed;
        }
        acted
    }

    /// Delete the victims of a scale-in by `by`.
    async fn scale_in(&self, key: &PoolKey, seen: &Seen, by: u32) -> Result<Scaled, PassError> {
        let victims = choose_victims(&seen.spec, &seen.pool, by as usize);
        if victims.is_empty() {
            return Ok(Scaled::default());
        }
        let op = self
            .start_op(key, NewOp::delete(OperationKind::ScaleIn, victims.clone()))
            .await?;
        Ok(Scaled {
            ops: vec![op.op.id],
            removed: victims,
            ..Scaled::default()
        })
    }

    /// Create `by` instances, split so that on-demand and spot reach the decision's
    /// mix; spot the cloud cannot supply falls back to on-demand when the pool allows.
    /// Returns the operations started and the creates held back.
    async fn scale_out(
        &self,
        key: &PoolKey,
        seen: &Seen,
        decision: &fp::Decision,
        by: u32,
    ) -> Result<Scaled, PassError> {
        let (want_od, want_spot) = purchase_split(&seen.spec, &seen.pool, decision, by);
        let c = CreateSpec {
            key,
            seen,
            kind: OperationKind::ScaleOut,
        };
        self.create_split(&c, want_od, want_spot).await
    }

    /// Create `want_od` on-demand and `want_spot` spot instances (spot the cloud cannot
    /// supply falls back to on-demand when the pool allows).
    pub(super) async fn create_split(
        &self,
        c: &CreateSpec<'_>,
        want_od: u32,
        want_spot: u32,
    ) -> Result<Scaled, PassError> {
        let (key, spec) = (c.key, &c.seen.spec);
        let mut done = Vec::new();
        if want_od > 0 {
            done.push(self.create_gated(c, want_od, Purchase::OnDemand).await?);
        }
        if want_spot > 0 {
            match self.create_gated(c, want_spot, Purchase::Spot).await? {
                Created::Refused(h)
                    if matches!(h.error.kind, ErrorKind::SoldOut | ErrorKind::Quota)
                        && spec.spot.fallback_to_on_demand =>
                {
                    tracing::warn!(pool = %key, error = %h.error, count = want_spot, "spot capacity unavailable; falling back to on-demand");
                    self.telemetry.scale("scale_out", "fallback_on_demand");
                    done.push(self.create_gated(c, want_spot, Purchase::OnDemand).await?);
                }
                other => done.push(other),
            }
        }
        let mut out = Scaled::default();
        for d in done {
            match d {
                Created::Started(id, n) => {
                    out.ops.push(id);
                    out.launched += n;
                }
                Created::Refused(h) => out.held.push(h),
            }
        }
        Ok(out)
    }

    /// A create unless the cloud's refusal holds it: a held create sends nothing; an
    /// expired hold is checked with a dry run first.
    async fn create_gated(
        &self,
        c: &CreateSpec<'_>,
        count: u32,
        purchase: Purchase,
    ) -> Result<Created, PassError> {
        let (key, version) = (c.key, c.seen.spec_version);
        match self.holds.gate(key, purchase, version, self.now()) {
            Gate::Held(h) => return Ok(Created::Refused(h)),
            Gate::Check => {
                let req = create_request(key, c.seen, count, purchase, Uuid::new_v4());
                match self.cloud_for(&key.ns).check_create_servers(&req).await {
                    Ok(()) => self.holds.lift(key, purchase),
                    Err(e) if e.kind.is_retryable() => return Err(e.into()),
                    Err(e) => {
                        let h = self.refuse(key, version, count, purchase, e);
                        return Ok(Created::Refused(h));
                    }
                }
            }
            Gate::Open => {}
        }
        match self.create(c, count, purchase).await {
            Ok(id) => Ok(Created::Started(id, count)),
            Err(PassError::Cloud(e)) if !e.kind.is_retryable() => Ok(Created::Refused(
                self.refuse(key, version, count, purchase, e),
            )),
            Err(e) => Err(e),
        }
    }

    /// Hold creates of `purchase` after the cloud refused one of `count` instances.
    pub(super) fn refuse(
        &self,
        key: &PoolKey,
        spec_version: u64,
        count: u32,
        purchase: Purchase,
        error: CloudError,
    ) -> Hold {
        self.telemetry.error(PassError::Cloud(error.clone()).kind());
        let refusal = Refusal {
            purchase,
            spec_version,
            operation: format!("create of {count} {} instance(s)", purchase.label()),
            error,
            at: self.now(),
        };
        let h = self.holds.refused(key, refusal, self.config.max_backoff);
        tracing::warn!(pool = %key, error = %h.error, failures = h.failures,
            until = ?h.until.map(crate::clock::rfc3339), "the cloud refused a create; creates held");
        h
    }

    /// Record and send a create of `count` instances of `purchase`.
    async fn create(
        &self,
        c: &CreateSpec<'_>,
        count: u32,
        purchase: Purchase,
    ) -> Result<String, PassError> {
        let (key, seen) = (c.key, c.seen);
        let id = Uuid::new_v4();
        let req = create_request(key, seen, count, purchase, id);
        let new = NewOp {
            kind: c.kind,
            count,
            purchase: Some(purchase),
            server_ids: Vec::new(),
            request: Some(req),
            id,
        };
        Ok(self.start_op(key, new).await?.op.id)
    }

    /// A pass over a deleted pool: delete every instance, then the pool's record.
    pub(super) async fn delete_pass(&self, key: &PoolKey, seen: &Seen) -> Result<Next, PassError> {
        let being_deleted: HashSet<&str> = seen
            .open
            .iter()
            .filter(|o| o.op.kind.deletes())
            .flat_map(|o| o.op.server_ids.iter().map(String::as_str))
            .collect();
        self.abandon_refresh(seen).await?;
        let open = seen
            .open
            .iter()
            .filter(|o| o.op.kind != OperationKind::Refresh);
        if seen.pool.servers.is_empty() && open.count() == 0 {
            self.store.purge_pool(&key.ns, &key.name).await?;
            self.forget(key);
            tracing::info!(pool = %key, "pool deleted; its instances are gone");
            return Ok(Next::Forget);
        }
        let remaining: Vec<String> = seen
            .pool
            .servers
            .iter()
            .map(|s| s.id.clone())
            .filter(|id| !being_deleted.contains(id.as_str()))
            .collect();
        if !remaining.is_empty() {
            self.start_op(key, NewOp::delete(OperationKind::ScaleIn, remaining))
                .await?;
        }
        Ok(Next::After(self.config.job_poll))
    }
}

/// (on-demand, spot) instances to create: exactly `by` in total, toward the
/// decision's split (all on-demand when the pool has no spot block).
fn purchase_split(
    spec: &PoolSpec,
    pool: &Observed,
    decision: &fp::Decision,
    by: u32,
) -> (u32, u32) {
    let (cur_od, cur_spot) = pool.purchase_counts();
    let mut want_spot = decision.spot.saturating_sub(cur_spot);
    let mut want_od = decision.on_demand.saturating_sub(cur_od);
    if !spec.spot.enabled {
        want_od += want_spot;
        want_spot = 0;
    }
    while want_od + want_spot > by {
        if want_spot > 0 {
            want_spot -= 1;
        } else {
            want_od -= 1;
        }
    }
    want_od += by - (want_od + want_spot);
    (want_od, want_spot)
}

/// The create request for `count` instances of `purchase`, tagged with `id` (also its
/// client token).
fn create_request(
    key: &PoolKey,
    seen: &Seen,
    count: u32,
    purchase: Purchase,
    id: Uuid,
) -> CreateServersRequest {
    let spec = &seen.spec;
    let mut tags = vec![
        (TAG_NAMESPACE.to_owned(), key.ns.to_string()),
        (TAG_POOL.to_owned(), key.name.to_string()),
        (TAG_OPERATION.to_owned(), id.to_string()),
        (TAG_TEMPLATE.to_owned(), seen.pool.template.clone()),
    ];
    tags.extend(spec.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    CreateServersRequest {
        client_token: id,
        // ECS allows at most 59 characters when count > 1.
        name: format!("{}-{}", key.ns, key.name)
            .chars()
            .take(59)
            .collect(),
        flavor: spec.flavor.clone(),
        image: spec.image.clone(),
        vpc_id: spec.vpc_id.clone(),
        subnet_ids: spec.subnet_ids.clone(),
        security_groups: spec.security_group_ids.clone(),
        availability_zone: seen.pool.emptiest_zone(&spec.availability_zones),
        key_name: spec.key_pair.clone(),
        user_data: spec
            .user_data
            .as_ref()
            .map(|u| base64::engine::general_purpose::STANDARD.encode(u)),
        root_volume: flexus_cloud::RootVolume {
            volume_type: spec.root_volume.volume_type.clone(),
            size_gb: Some(spec.root_volume.size),
        },
        tags,
        count,
        spot: match purchase {
            Purchase::Spot => Some(SpotOptions {
                max_price: spec.spot.max_price.as_ref().and_then(|p| p.parse().ok()),
            }),
            Purchase::OnDemand => None,
        },
    }
}

/// Instances to remove for a scale-in of `by`, by the pool's removal rule. Booting,
/// warming and ready instances are candidates; the last ready instance is never
/// removed while others are still booting or warming. Outdated instances (an older
/// template) go first, oldest first, under `oldest_template_first` and whatever the
/// rule while a rolling refresh replaces them anyway.
pub fn choose_victims(spec: &PoolSpec, obs: &Observed, by: usize) -> Vec<String> {
    let mut cands: Vec<&InstanceStatus> = obs.live().collect();
    let spot_first = |i: &InstanceStatus| if i.purchase == Purchase::Spot { 0 } else { 1 };
    let spot_newest_first = |a: &&InstanceStatus, b: &&InstanceStatus| {
        spot_first(a)
            .cmp(&spot_first(b))
            .then(b.created_at.cmp(&a.created_at))
            .then(a.id.cmp(&b.id))
    };
    match spec.removal_rule {
        RemovalRule::SpotNewestFirst => cands.sort_by(spot_newest_first),
        RemovalRule::OldestTemplateFirst => cands.sort_by(|a, b| match (a.outdated, b.outdated) {
            (true, true) => a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)),
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            (false, false) => spot_newest_first(a, b),
        }),
        RemovalRule::NewestFirst => {
            cands.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)))
        }
        RemovalRule::OldestFirst => {
            cands.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)))
        }
    }
    if spec.instance_refresh.strategy == RefreshStrategy::Rolling {
        // Stable: the rule's order within outdated and within current instances.
        cands.sort_by_key(|i| !i.outdated);
    }
    let mut ready_left = cands
        .iter()
        .filter(|i| i.lifecycle == Lifecycle::Ready)
        .count();
    let mut others_left = cands.len() - ready_left;
    let mut out = Vec::new();
    for c in cands {
        if out.len() >= by {
            break;
        }
        if c.lifecycle == Lifecycle::Ready {
            if ready_left == 1 && others_left > 0 {
                continue;
            }
            ready_left -= 1;
        } else {
            others_left -= 1;
        }
        out.push(c.id.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PoolSpec {
        serde_json::from_value(serde_json::json!({
            "flavor": "x1.2u.4g", "image": "i", "vpc_id": "v", "subnet_ids": ["s"],
            "min_size": 0, "max_size": 9
        }))
        .unwrap()
    }

    fn inst(id: &str, lc: Lifecycle, purchase: Purchase, created: &str) -> InstanceStatus {
        InstanceStatus {
            id: id.into(),
            name: id.into(),
            lifecycle: lc,
            purchase,
            flavor: "f".into(),
            availability_zone: None,
            created_at: created.into(),
            age_seconds: 0,
            template: None,
            outdated: false,
        }
    }

    fn observed(instances: Vec<InstanceStatus>) -> Observed {
        Observed {
            servers: vec![],
            instances,
            policy_state: fp::PoolState::default(),
            ready_ids: vec![],
            broken: vec![],
            virtual_booting: 0,
            template: "t".into(),
            outdated: Default::default(),
        }
    }

    #[test]
    fn scale_in_removes_spot_and_newest_first() {
        let o = observed(vec![
            inst(
                "od-old",
                Lifecycle::Ready,
                Purchase::OnDemand,
                "2026-01-01T00:00:00Z",
            ),
            inst(
                "od-new",
                Lifecycle::Ready,
                Purchase::OnDemand,
                "2026-01-03T00:00:00Z",
            ),
            inst(
                "spot-old",
                Lifecycle::Ready,
                Purchase::Spot,
                "2026-01-01T00:00:00Z",
            ),
            inst(
                "spot-new",
                Lifecycle::Ready,
                Purchase::Spot,
                "2026-01-02T00:00:00Z",
            ),
        ]);
        let v = choose_victims(&spec(), &o, 3);
        assert_eq!(v, vec!["spot-new", "spot-old", "od-new"]);
    }

    #[test]
    fn scale_in_never_removes_the_last_ready_instance_while_others_boot() {
        let o = observed(vec![
            inst(
                "ready",
                Lifecycle::Ready,
                Purchase::OnDemand,
                "2026-01-03T00:00:00Z",
            ),
            inst(
                "boot",
                Lifecycle::Booting,
                Purchase::OnDemand,
                "2026-01-01T00:00:00Z",
            ),
        ]);
        let mut s = spec();
        s.removal_rule = RemovalRule::NewestFirst;
        assert_eq!(choose_victims(&s, &o, 1), vec!["boot"]);
    }

    fn outdated(mut i: InstanceStatus) -> InstanceStatus {
        i.outdated = true;
        i
    }

    fn mixed_templates() -> Observed {
        observed(vec![
            inst(
                "new-a",
                Lifecycle::Ready,
                Purchase::Spot,
                "2026-01-05T00:00:00Z",
            ),
            outdated(inst(
                "old-b",
                Lifecycle::Ready,
                Purchase::OnDemand,
                "2026-01-02T00:00:00Z",
            )),
            outdated(inst(
                "old-a",
                Lifecycle::Ready,
                Purchase::OnDemand,
                "2026-01-01T00:00:00Z",
            )),
            inst(
                "new-b",
                Lifecycle::Ready,
                Purchase::OnDemand,
                "2026-01-04T00:00:00Z",
            ),
        ])
    }

    #[test]
    fn oldest_template_first_removes_outdated_instances_oldest_first_then_spot_newest() {
        let mut s = spec();
        s.removal_rule = RemovalRule::OldestTemplateFirst;
        s.instance_refresh.strategy = flexus_api::RefreshStrategy::OnScaleIn;
        assert_eq!(
            choose_victims(&s, &mixed_templates(), 3),
            vec!["old-a", "old-b", "new-a"]
        );
        // Without the rule (and without a rolling refresh) the spot instance goes first.
        s.removal_rule = RemovalRule::SpotNewestFirst;
        assert_eq!(choose_victims(&s, &mixed_templates(), 1), vec!["new-a"]);
    }

    #[test]
    fn during_a_rolling_refresh_outdated_instances_go_first_whatever_the_rule() {
        let mut s = spec();
        s.removal_rule = RemovalRule::NewestFirst;
        assert_eq!(
            choose_victims(&s, &mixed_templates(), 2),
            vec!["old-b", "old-a"],
            "outdated first, in the rule's own order (newest first)"
        );
    }
}
