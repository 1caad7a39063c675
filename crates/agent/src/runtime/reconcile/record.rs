//! Record: what the pass leaves behind — the engine's history (a failed action
//! records no scale event, so no cooldown starts for nothing), the decision log
//! (changes at once, an unchanged decision at most every five minutes), the pool's
//! status, its metrics — and when it runs next.

use std::time::Duration;

use flexus_api::{DecisionOutcome, DecisionRecord, PoolError, PoolPhase};
use flexus_policy as fp;

use super::act::Acted;
use super::decide::Decided;
use super::observe::{Inputs, Seen};
use super::observed::StatusReport;
use super::{Context, PassError};
use crate::clock::{Millis, rfc3339};
use crate::runtime::{Next, PoolKey};
use crate::store::RuntimeState;

/// A decision that changes nothing is logged at most this often.
const QUIET_LOG_EVERY: Duration = Duration::from_secs(300);

impl Context {
    /// Record the pass; `Next` when to run again, or the acting error (after the
    /// status shows it).
    pub(super) async fn record(
        &self,
        key: &PoolKey,
        seen: Seen,
        inputs: Inputs,
        decided: Decided,
        acted: Acted,
    ) -> Result<Next, PassError> {
        let Inputs {
            compiled,
            mut history,
            previous,
            ..
        } = inputs;
        let decision = &decided.decision;
        // A failed action leaves no scale event (no cooldown for nothing).
        if acted.scaled || decision.action == fp::Action::None {
            history.record(decision);
        } else {
            let mut d = decision.clone();
            d.action = fp::Action::None;
            history.record(&d);
        }
        history.prune(
            fp::Timestamp(seen.now),
            compiled.history_horizon(),
            compiled.trend_samples().max(1),
        );
        let record = decision_record(&seen, &decided, &acted);
        let (record, logged) = self.log_decision(key, record, seen.now).await?;
        if decision.action != fp::Action::None || acted.outcome == DecisionOutcome::DryRun {
            tracing::info!(pool = %key, current = decision.current, desired = decision.desired,
                action = %record.action, outcome = ?acted.outcome, explanation = %record.explanation, "decision");
        }
        // Unlogged, the decision the log holds stays the status's "last decision".
        let last_decision = match logged {
            true => Some(record),
            false => previous.and_then(|s| s.last_decision).or(Some(record)),
        };
        let error = match &acted.error {
            Some(e) => Some(pass_error_status(e, seen.now)),
            None => self.holds.holding(key).map(|h| (h.summary(), h.status())),
        };
        let pending: Vec<_> = self
            .store
            .open_operations(Some((&key.ns, &key.name)))
            .await?
            .into_iter()
            .map(|o| o.op)
            .collect();
        let polling = !pending.is_empty();
        let status = seen.pool.status(StatusReport {
            desired: Some(decision.desired),
            last_decision,
            now: seen.now,
            error,
            pending,
            min_size: seen.spec.min_size,
            refresh: acted.refresh.clone(),
        });
        self.telemetry
            .set_pool(&key.to_string(), decision.desired, seen.pool.counted());
        let rt = RuntimeState {
            history,
            status: status.clone(),
        };
        self.store.put_runtime(&key.ns, &key.name, &rt).await?;
        if let Some(e) = acted.error {
            return Err(e);
        }
        let next = fp::Timestamp(decision.next_evaluation.0.max(seen.now + 200))
            .since(fp::Timestamp(seen.now));
        // While operations are open, look again soon to track them.
        Ok(Next::After(match polling {
            true => next.min(self.config.job_poll),
            false => next,
        }))
    }

    /// Write `record` to the decision log when it differs from the last one logged or
    /// the last is older than [`QUIET_LOG_EVERY`]; returns it with its id, and whether
    /// it was logged.
    async fn log_decision(
        &self,
        key: &PoolKey,
        mut record: DecisionRecord,
        now: Millis,
    ) -> Result<(DecisionRecord, bool), PassError> {
        let summary = format!(
            "{}|{}|{}|{:?}|{:?}|{:?}",
            record.current,
            record.desired,
            record.action,
            record.outcome,
            record.bound_by,
            record
                .prediction
                .as_ref()
                .map(|p| (p.capacity, p.applied, p.would_add))
        );
        let due = {
            let mut ll = self.last_logged.lock().unwrap_or_else(|p| p.into_inner());
            let due = match ll.get(key) {
                Some((at, s)) => *s != summary || now - at >= QUIET_LOG_EVERY.as_millis() as i64,
                None => true,
            };
            if due {
                ll.insert(key.clone(), (now, summary));
            }
            due
        };
        if due {
            record.id = self
                .store
                .insert_decision(&key.ns, &key.name, &record, self.config.decision_log_keep)
                .await?;
        }
        Ok((record, due))
    }

    /// A failed pass: show its error in the pool's status (a first pass has none yet).
    pub(super) async fn record_failure(&self, key: &PoolKey, e: &PassError) {
        let Ok(rt) = self.store.get_runtime(&key.ns, &key.name).await else {
            return;
        };
        let mut rt = rt.unwrap_or_default();
        let (text, detail) = pass_error_status(e, self.now());
        rt.status.last_error = Some(text);
        rt.status.last_error_detail = Some(detail);
        rt.status.phase = PoolPhase::Degraded;
        if let Err(e) = self.store.put_runtime(&key.ns, &key.name, &rt).await {
            tracing::warn!(pool = %key, error = %e, "cannot record the failed pass in the pool's status");
        }
    }
}

/// The decision log entry of this pass.
fn decision_record(seen: &Seen, decided: &Decided, acted: &Acted) -> DecisionRecord {
    let decision = &decided.decision;
    let action = match decision.action {
        fp::Action::None if decision.dry_run && decision.desired > decision.current => "scale_out",
        fp::Action::None if decision.dry_run && decision.desired < decision.current => "scale_in",
        fp::Action::None => "none",
        fp::Action::ScaleOut { .. } => "scale_out",
        fp::Action::ScaleIn { .. } => "scale_in",
    };
    let mut explanation: Vec<String> = decision.explanation.iter().map(|s| s.to_string()).collect();
    if let Some(p) = &decided.prediction {
        if p.would_add > 0 {
            explanation.push(format!(
                "forecast_only: would have scaled to {}",
                decision.desired + p.would_add
            ));
        }
        if p.forecast.is_none()
            && let Some(note) = &p.note
        {
            explanation.push(format!("no forecast: {note}"));
        }
    }
    if let Some(e) = &acted.error {
        explanation.push(format!("acting failed: {e}"));
    }
    explanation.extend(acted.held.iter().map(|h| h.summary()));
    DecisionRecord {
        id: 0,
        at: rfc3339(seen.now),
        current: decision.current,
        desired: decision.desired,
        on_demand: decision.on_demand,
        spot: decision.spot,
        action: action.into(),
        outcome: acted.outcome,
        bound_by: decision
            .bound_by
            .and_then(|b| serde_json::to_value(b).ok())
            .and_then(|v| v.as_str().map(str::to_owned)),
        explanation: explanation.join("; "),
        detail: serde_json::to_value(decision).unwrap_or_default(),
        operation_id: acted.op_ids.first().cloned(),
        prediction: decided.prediction.clone(),
    }
}

/// A failed pass as the pool's status shows it.
fn pass_error_status(e: &PassError, now: Millis) -> (String, PoolError) {
    let (code, permanent) = match e {
        PassError::Cloud(c) => (c.code.clone(), !c.kind.is_retryable()),
        _ => (None, false),
    };
    let detail = PoolError {
        operation: "reconcile pass".into(),
        code,
        message: e.to_string(),
        permanent,
        failures: None,
        at: rfc3339(now),
        retry_at: None,
    };
    (e.to_string(), detail)
}
