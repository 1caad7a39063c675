//! Instance refresh: replacing the instances of an older template in batches (see
//! `docs/design/instance-refresh.md`).
//!
//! An instance is *outdated* when its `flexus-tpl` tag differs from the pool's
//! [`flexus_api::PoolSpec::template_hash`]. While outdated instances remain, every pass
//! (after its scale action) launches replacements — at most `max_surge` above the
//! desired count — and retires outdated instances as far as
//! `min_healthy_percentage` of the desired count stays ready. The refresh itself is
//! an operation of kind `refresh` in the journal (open while it runs); its launches
//! (`refresh_launch`, token = operation id) and retirements (`refresh_retire`) are
//! ordinary journalled creates and deletes, so a restarted agent sees the same pool
//! and carries on from there.

use std::borrow::Cow;
use std::collections::HashSet;

use flexus_api::{
    InstanceRefresh, InstanceStatus, Lifecycle, Operation, OperationKind, OperationState, PoolSpec,
    Purchase, RefreshStatus, RefreshStrategy,
};
use flexus_policy as fp;
use uuid::Uuid;

use super::act::{Acted, CreateSpec};
use super::observe::Seen;
use super::observed::Observed;
use super::ops::NewOp;
use super::{Context, PassError};
use crate::clock::rfc3339;
use crate::runtime::PoolKey;
use crate::store::{OpRecord, RefreshProgress};

fn progress(op: &OpRecord) -> RefreshProgress {
    op.progress.clone().unwrap_or_default()
}

/// What one pass of a refresh does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    /// Outdated instances to delete now.
    pub retire: Vec<String>,
    /// Replacements to launch now.
    pub launch: u32,
    /// Outdated instances (listed or requested) left after this pass's retirements.
    pub outdated_left: u32,
    /// Replacements (current template) launched and not ready yet, this pass's included.
    pub waiting: u32,
    /// Instances that must stay ready.
    pub min_healthy: u32,
}

fn is_requested(id: &str) -> bool {
    id.starts_with("pending:")
}

/// The refresh's step for a pool of `desired` instances, after this pass's scale action
/// (`removed` instances going, `launched` asked for): retire outdated instances —
/// every one not ready yet, then the oldest ready ones while the ready count stays at
/// or above the minimum — then launch replacements up to `max_surge` above `desired`
/// (never more current-template instances than `desired`). Ready ones only when `retire_ready` (not while
/// the cloud refuses creates: their replacements could not come).
pub(super) fn plan(
    cfg: &InstanceRefresh,
    pool: &Observed,
    desired: u32,
    removed: &[String],
    launched: u32,
    retire_ready: bool,
) -> Plan {
    let removed: HashSet<&str> = removed.iter().map(String::as_str).collect();
    let listed: Vec<&InstanceStatus> = pool
        .live()
        .filter(|i| !removed.contains(i.id.as_str()))
        .collect();
    let requested_outdated = pool.outdated.iter().filter(|id| is_requested(id)).count() as u32;
    let requested_current = pool.virtual_booting.saturating_sub(requested_outdated);
    let (outdated, current): (Vec<&InstanceStatus>, Vec<&InstanceStatus>) =
        listed.iter().partition(|i| i.outdated);
    let new_ready = current
        .iter()
        .filter(|i| i.lifecycle == Lifecycle::Ready)
        .count() as u32;
    let new_live = current.len() as u32 + requested_current + launched;
    let live = listed.len() as u32 + pool.virtual_booting + launched;
    let min_healthy = cfg.min_healthy(desired);
    let outdated_total = outdated.len() as u32 + requested_outdated;
    if outdated_total == 0 {
        return Plan {
            retire: Vec::new(),
            launch: 0,
            outdated_left: 0,
            waiting: new_live.saturating_sub(new_ready),
            min_healthy,
        };
    }
    // Outdated instances not ready yet cost no ready capacity; ready ones go while the
    // ready count stays at the minimum or above.
    let ready = listed
        .iter()
        .filter(|i| i.lifecycle == Lifecycle::Ready)
        .count() as u32;
    let mut budget = ready.saturating_sub(min_healthy);
    let mut cands = outdated;
    cands.sort_by(|a, b| {
        (a.lifecycle == Lifecycle::Ready)
            .cmp(&(b.lifecycle == Lifecycle::Ready))
            .then(a.created_at.cmp(&b.created_at))
            .then(a.id.cmp(&b.id))
    });
    let mut retire = Vec::new();
    for c in cands {
        if c.lifecycle == Lifecycle::Ready {
            if budget == 0 || !retire_ready {
                break;
            }
            budget -= 1;
        }
        retire.push(c.id.clone());
    }
    // Replacements in the same pass, for what stays and what was just retired.
    let launch = (desired + cfg.max_surge)
        .saturating_sub(live - retire.len() as u32)
        .min(desired.saturating_sub(new_live));
    let waiting = (new_live + launch).saturating_sub(new_ready);
    Plan {
        outdated_left: outdated_total - retire.len() as u32,
        retire,
        launch,
        waiting,
        min_healthy,
    }
}

/// The pool as the decision engine sees it. During a rolling refresh the instances
/// beyond the last desired count are the refresh's own surplus — replacements not
/// ready yet, then the outdated ready instances this pass retires — and are hidden, so
/// the engine neither scales in what the refresh launched nor counts a replacement and
/// the instance it replaces twice.
pub(super) fn engine_view<'a>(
    spec: &PoolSpec,
    pool: &'a Observed,
    previous_desired: Option<u32>,
) -> Cow<'a, fp::PoolState> {
    let state = &pool.policy_state;
    let live = |i: &&fp::Instance| i.lifecycle.counts_toward_capacity();
    let refreshing = spec.instance_refresh.strategy == RefreshStrategy::Rolling
        && state
            .instances
            .iter()
            .filter(live)
            .any(|i| pool.outdated.contains(&i.id));
    let Some(previous) = previous_desired.filter(|_| refreshing) else {
        return Cow::Borrowed(state);
    };
    let surplus = (state.instances.iter().filter(live).count() as u32).saturating_sub(previous);
    if surplus == 0 {
        return Cow::Borrowed(state);
    }
    let mut replacements: Vec<&fp::Instance> = state
        .instances
        .iter()
        .filter(|i| !pool.outdated.contains(&i.id))
        .filter(|i| matches!(i.lifecycle, fp::Lifecycle::Booting | fp::Lifecycle::Warming))
        .collect();
    replacements.sort_by(|a, b| b.since.0.cmp(&a.since.0).then(a.id.cmp(&b.id)));
    let mut retiring: Vec<&fp::Instance> = state
        .instances
        .iter()
        .filter(|i| pool.outdated.contains(&i.id) && i.lifecycle == fp::Lifecycle::Ready)
        .collect();
    retiring.sort_by(|a, b| a.since.0.cmp(&b.since.0).then(a.id.cmp(&b.id)));
    let hidden: HashSet<&str> = replacements
        .into_iter()
        .chain(retiring)
        .take(surplus as usize)
        .map(|i| i.id.as_str())
        .collect();
    let mut view = state.clone();
    view.instances.retain(|i| !hidden.contains(i.id.as_str()));
    Cow::Owned(view)
}

/// Replacements split like the instances they replace: spot for the outdated spot
/// instances (when the pool still uses spot), on-demand for the rest.
fn launch_split(spec: &PoolSpec, pool: &Observed, launch: u32) -> (u32, u32) {
    if !spec.spot.enabled {
        return (launch, 0);
    }
    let outdated_spot = pool
        .live()
        .filter(|i| i.outdated && i.purchase == Purchase::Spot)
        .count() as u32;
    let spot = launch.min(outdated_spot);
    (launch - spot, spot)
}

impl Context {
    /// The refresh step of a pass (after its scale action): start, advance or finish
    /// the pool's refresh; its progress for the status while one runs.
    pub(super) async fn refresh(
        &self,
        key: &PoolKey,
        seen: &Seen,
        desired: u32,
        acted: &Acted,
    ) -> Result<Option<RefreshStatus>, PassError> {
        let cfg = seen.spec.instance_refresh;
        let template = &seen.pool.template;
        let mut running = seen
            .open
            .iter()
            .find(|o| o.op.kind == OperationKind::Refresh)
            .cloned();
        if let Some(op) = running.as_mut()
            && progress(op).template != *template
        {
            let why = format!("superseded by a refresh to template {template}");
            self.end_op(op, OperationState::Abandoned, Some(why))
                .await?;
            running = None;
        }
        let rolling = cfg.strategy == RefreshStrategy::Rolling;
        let retire_ready = self.holds.holding(key).is_none();
        let plan = plan(
            &cfg,
            &seen.pool,
            desired,
            &acted.removed,
            acted.launched,
            retire_ready,
        );
        if !rolling || (plan.outdated_left == 0 && plan.retire.is_empty()) {
            if let Some(mut op) = running {
                self.end_op(&mut op, OperationState::Succeeded, None)
                    .await?;
                tracing::info!(pool = %key, op_id = %op.op.id, template = %template, "instance refresh finished");
            }
            return Ok(None);
        }
        let mut op = match running {
            Some(op) => op,
            None => {
                self.begin_refresh(key, template, plan.outdated_left + plan.retire.len() as u32)
                    .await?
            }
        };
        let mut prog = progress(&op);
        if !plan.retire.is_empty() {
            let retire = NewOp::delete(OperationKind::RefreshRetire, plan.retire.clone());
            self.start_op(key, retire).await?;
        }
        if plan.launch > 0 {
            let (od, spot) = launch_split(&seen.spec, &seen.pool, plan.launch);
            let c = CreateSpec {
                key,
                seen,
                kind: OperationKind::RefreshLaunch,
            };
            if self.create_split(&c, od, spot).await?.launched > 0 {
                prog.batch += 1;
            }
        }
        op.op.count = op.op.count.max(plan.outdated_left);
        op.progress = Some(prog.clone());
        self.save_op(&mut op, OperationState::Submitted).await?;
        let st = RefreshStatus {
            operation_id: op.op.id.clone(),
            template: template.clone(),
            total: op.op.count,
            replaced: op.op.count - plan.outdated_left,
            batch: prog.batch,
            waiting_for_ready: plan.waiting,
            min_healthy: plan.min_healthy,
            started_at: op.op.created_at.clone(),
        };
        tracing::info!(pool = %key, op_id = %st.operation_id, replaced = st.replaced, total = st.total,
            batch = st.batch, waiting = st.waiting_for_ready, retired = plan.retire.len(),
            launched = plan.launch, "instance refresh");
        Ok(Some(st))
    }

    /// Record the start of a refresh of `count` outdated instances to `template`.
    async fn begin_refresh(
        &self,
        key: &PoolKey,
        template: &str,
        count: u32,
    ) -> Result<OpRecord, PassError> {
        let now = rfc3339(self.now());
        let prog = RefreshProgress {
            template: template.to_owned(),
            batch: 0,
        };
        let op = OpRecord {
            namespace: key.ns.to_string(),
            pool: key.name.to_string(),
            request: None,
            progress: Some(prog),
            op: Operation {
                id: Uuid::new_v4().to_string(),
                kind: OperationKind::Refresh,
                state: OperationState::Submitted,
                count,
                purchase: None,
                job_id: None,
                server_ids: Vec::new(),
                error: None,
                created_at: now.clone(),
                updated_at: now,
            },
        };
        self.store.insert_operation(&op).await?;
        tracing::info!(pool = %key, op_id = %op.op.id, template, count, "instance refresh started");
        Ok(op)
    }

    /// A deleted pool's refresh ends with it.
    pub(super) async fn abandon_refresh(&self, seen: &Seen) -> Result<(), PassError> {
        for o in seen.open.iter() {
            if o.op.kind == OperationKind::Refresh {
                let mut o = o.clone();
                let why = "the pool was deleted".to_owned();
                self.end_op(&mut o, OperationState::Abandoned, Some(why))
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str, lc: Lifecycle, outdated: bool, created: &str) -> InstanceStatus {
        InstanceStatus {
            id: id.into(),
            name: id.into(),
            lifecycle: lc,
            purchase: Purchase::OnDemand,
            flavor: "f".into(),
            availability_zone: None,
            created_at: created.into(),
            age_seconds: 0,
            template: None,
            outdated,
        }
    }

    fn pool(instances: Vec<InstanceStatus>, requested: u32) -> Observed {
        let mut state = fp::PoolState::default();
        for (n, i) in instances.iter().enumerate() {
            state.instances.push(fp::Instance {
                id: i.id.clone(),
                lifecycle: i.lifecycle,
                purchase: fp::Purchase::OnDemand,
                since: fp::Timestamp(n as i64),
            });
        }
        for n in 0..requested {
            state.instances.push(fp::Instance {
                id: format!("pending:op:{n}"),
                lifecycle: fp::Lifecycle::Booting,
                purchase: fp::Purchase::OnDemand,
                since: fp::Timestamp(100 + i64::from(n)),
            });
        }
        Observed {
            servers: vec![],
            outdated: instances
                .iter()
                .filter(|i| i.outdated)
                .map(|i| i.id.clone())
                .collect(),
            instances,
            policy_state: state,
            ready_ids: vec![],
            broken: vec![],
            virtual_booting: requested,
            template: "new".into(),
        }
    }

    fn booting(id: &str, outdated: bool) -> InstanceStatus {
        inst(id, Lifecycle::Booting, outdated, "2026-01-02T00:00:00Z")
    }

    fn old_ready(n: usize) -> Vec<InstanceStatus> {
        (0..n)
            .map(|i| {
                inst(
                    &format!("old-{i}"),
                    Lifecycle::Ready,
                    true,
                    &format!("2026-01-01T00:00:{i:02}Z"),
                )
            })
            .collect()
    }

    fn cfg(min: u32, surge: u32) -> InstanceRefresh {
        InstanceRefresh {
            strategy: RefreshStrategy::Rolling,
            min_healthy_percentage: min,
            max_surge: surge,
        }
    }

    #[test]
    fn a_first_batch_surges_then_retires_only_within_the_minimum_healthy_share() {
        // 10 outdated and ready, 90 % → 9 must stay ready; surge 2.
        let p = plan(&cfg(90, 2), &pool(old_ready(10), 0), 10, &[], 0, true);
        assert_eq!(p.min_healthy, 9);
        assert_eq!(p.retire, vec!["old-0"], "one may go: 10 ready − 1 = 9");
        assert_eq!(p.launch, 3, "its replacement and the 2 of the surge");
        assert_eq!(p.waiting, 3);
        assert_eq!(p.outdated_left, 9);
    }

    #[test]
    fn with_full_health_nothing_is_retired_until_replacements_are_ready() {
        let mut i = old_ready(4);
        i.push(booting("new-0", false));
        let p = plan(&cfg(100, 1), &pool(i.clone(), 0), 4, &[], 0, true);
        assert_eq!((p.launch, p.retire.len()), (0, 0), "{p:?}");
        i[4].lifecycle = Lifecycle::Ready;
        let p = plan(&cfg(100, 1), &pool(i, 0), 4, &[], 0, true);
        assert_eq!(
            p.retire,
            vec!["old-0"],
            "the replacement is ready: the oldest goes"
        );
        assert_eq!(p.launch, 1, "the next replacement in the same pass");
    }

    #[test]
    fn without_surge_one_outdated_instance_goes_first_even_at_full_health() {
        let p = plan(&cfg(100, 0), &pool(old_ready(3), 0), 3, &[], 0, true);
        assert_eq!(p.retire, vec!["old-0"]);
        assert_eq!(p.launch, 1, "its replacement, within the desired count");
        assert_eq!(p.min_healthy, 2);
    }

    #[test]
    fn outdated_instances_not_ready_go_before_ready_ones() {
        let mut i = old_ready(2);
        i.push(booting("old-boot", true));
        let p = plan(&cfg(100, 1), &pool(i, 0), 3, &[], 0, true);
        assert_eq!(p.retire, vec!["old-boot"]);
    }

    #[test]
    fn while_creates_are_refused_no_ready_instance_is_retired() {
        let p = plan(&cfg(50, 2), &pool(old_ready(4), 0), 4, &[], 0, false);
        assert!(p.retire.is_empty(), "{p:?}");
        assert_eq!(p.launch, 2);
    }

    #[test]
    fn a_refresh_ends_when_no_outdated_instance_is_left_and_counts_requested_ones() {
        let mut o = pool(vec![inst("new", Lifecycle::Ready, false, "x")], 1);
        let p = plan(&cfg(90, 1), &o, 2, &[], 0, true);
        assert_eq!((p.outdated_left, p.launch, p.waiting), (0, 0, 1));
        o.outdated.insert("pending:op:0".into());
        let p = plan(&cfg(90, 1), &o, 2, &[], 0, true);
        assert_eq!(p.outdated_left, 1, "an old-template create not listed yet");
    }

    #[test]
    fn the_scale_action_of_the_pass_is_counted_before_the_refresh_acts() {
        // The engine scaled in by 2 (two outdated removed): nothing more to retire at 100 %.
        let removed = vec!["old-0".to_owned(), "old-1".to_owned()];
        let p = plan(&cfg(100, 1), &pool(old_ready(4), 0), 2, &removed, 0, true);
        assert_eq!(p.launch, 1);
        assert!(p.retire.is_empty(), "{p:?}");
        // The engine scaled out by 2: those are current-template, not ready.
        let p = plan(&cfg(100, 1), &pool(old_ready(2), 0), 4, &[], 2, true);
        assert_eq!(p.launch, 1, "4 + 1 surge − 4 live");
        assert_eq!(p.waiting, 3);
    }

    #[test]
    fn the_engine_does_not_see_the_refresh_surplus() {
        let spec: PoolSpec = serde_json::from_value(serde_json::json!({
            "flavor": "f", "image": "i", "vpc_id": "v", "subnet_ids": ["s"],
            "min_size": 0, "max_size": 20
        }))
        .unwrap();
        let mut i = old_ready(4);
        i.push(booting("new-0", false));
        let o = pool(i, 1);
        let view = engine_view(&spec, &o, Some(4));
        let ids: Vec<&str> = view.instances.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, vec!["old-0", "old-1", "old-2", "old-3"]);
        // Replacements ready: the oldest outdated ones (retired this pass) are hidden.
        let mut i = old_ready(3);
        i.push(inst(
            "new-0",
            Lifecycle::Ready,
            false,
            "2026-01-02T00:00:00Z",
        ));
        let o = pool(i, 0);
        let view = engine_view(&spec, &o, Some(3));
        assert_eq!(view.counts().counted, 3);
        assert!(!view.instances.iter().any(|i| i.id == "old-0"));
        // No refresh: the engine sees everything.
        let o = pool(vec![inst("a", Lifecycle::Ready, false, "x")], 2);
        assert_eq!(engine_view(&spec, &o, Some(1)).counts().counted, 3);
    }
}
