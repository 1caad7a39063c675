//! Tune jobs (`POST /v1/namespaces/{ns}/pools/{name}/tune`): the policy tuner of
//! flexus-sim ([`flexus_sim::tune`]) run on a pool's recorded history, as a job the
//! client polls. Nothing is applied: the job's result is a recommendation.
//!
//! History: the request-rate history the agent already keeps for predictive pools —
//! the prediction metric's 15-minute buckets (`forecast_history`, each bucket's
//! time-weighted mean), replayed as a 15-minute trace (interpolated to the replay's
//! tick, see `Trace::interpolated`) on the pool's flavor — or, when the request names
//! one, a built-in trace.
//!
//! Guarantees: the request, the pool, its policy and the history's length are checked
//! before a job is created (a bad request or too short a history is answered at once,
//! naming what is wrong and how much history is needed); the search runs on a blocking
//! thread, never on the async workers.
//! Caveats: jobs live in memory (a restart forgets them; start again) and the newest
//! [`MAX_JOBS`] are kept.

use std::collections::BTreeMap;
use std::sync::Mutex;

use flexus_api::{TuneChange, TuneJob, TuneMeasure, TuneOutcome, TuneRequest};
use flexus_sim::tune::{Measured, Objective, TuneResult};

use crate::store::{Store, StoreError};

/// Jobs kept (the oldest finished ones go first).
pub const MAX_JOBS: usize = 64;

/// Why a tune could not start.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// The request, the pool or its history does not allow a tune.
    #[error("{0}")]
    Invalid(String),
    /// The pool does not exist.
    #[error("pool {0} not found")]
    NoPool(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The jobs of this agent.
#[derive(Debug, Default)]
pub struct TuneJobs {
    jobs: Mutex<BTreeMap<u64, TuneJob>>,
}

impl TuneJobs {
    /// A job by id.
    pub fn get(&self, pool: &str, id: &str) -> Option<TuneJob> {
        let n: u64 = id.strip_prefix("tune-")?.parse().ok()?;
        self.lock().get(&n).filter(|j| j.pool == pool).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, TuneJob>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, mut job: TuneJob) -> TuneJob {
        let mut jobs = self.lock();
        let n = jobs.keys().next_back().map_or(1, |k| k + 1);
        job.id = format!("tune-{n}");
        jobs.insert(n, job.clone());
        while jobs.len() > MAX_JOBS {
            let Some(old) = jobs
                .iter()
                .find(|(_, j)| j.state != "running")
                .map(|(k, _)| *k)
            else {
                break;
            };
            jobs.remove(&old);
        }
        job
    }

    fn finish(&self, id: &str, outcome: Result<TuneOutcome, String>) {
        let Some(n) = id.strip_prefix("tune-").and_then(|s| s.parse::<u64>().ok()) else {
            return;
        };
        if let Some(j) = self.lock().get_mut(&n) {
            match outcome {
                Ok(r) => {
                    j.state = "done".into();
                    j.result = Some(r);
                }
                Err(e) => {
                    j.state = "failed".into();
                    j.error = Some(e);
                }
            }
        }
    }

    /// Checks the request, assembles the history and starts the search on a
    /// blocking thread; returns the running job.
    pub async fn start(
        self: &std::sync::Arc<Self>,
        store: &dyn Store,
        ns: &str,
        name: &str,
        req: TuneRequest,
        now: String,
    ) -> Result<TuneJob, TuneError> {
        let tune_req = prepare(store, ns, name, &req).await?;
        let job = self.insert(TuneJob {
            id: String::new(),
            pool: format!("{ns}/{name}"),
            state: "running".into(),
            created_at: now,
            request: req,
            result: None,
            error: None,
        });
        let jobs = self.clone();
        let id = job.id.clone();
        tracing::info!(pool = %job.pool, job = %id, "tune started");
        tokio::task::spawn_blocking(move || {
            let r = flexus_sim::tune::tune(&tune_req)
                .map(outcome)
                .map_err(|e| e.to_string());
            tracing::info!(job = %id, ok = r.is_ok(), "tune finished");
            jobs.finish(&id, r);
        });
        Ok(job)
    }
}

fn invalid(msg: impl Into<String>) -> TuneError {
    TuneError::Invalid(msg.into())
}

/// The pool's policy, flavor and history as a tuner request.
async fn prepare(
    store: &dyn Store,
    ns: &str,
    name: &str,
    req: &TuneRequest,
) -> Result<flexus_sim::tune::TuneRequest, TuneError> {
    let objective = match req.objective.as_str() {
        "cost" => Objective::Cost,
        "instance_hours" => Objective::InstanceHours,
        other => {
            return Err(invalid(format!(
                "objective must be \"cost\" or \"instance_hours\", got {other:?}"
            )));
        }
    };
    if !(req.budget.is_finite() && req.budget > 0.0 && req.budget < 1.0) {
        return Err(invalid(format!(
            "budget is the share of time the SLO may be missed, in (0, 1), e.g. 0.01 for 1 %; got {}",
            req.budget
        )));
    }
    if !(2..=500).contains(&req.max_evaluations) {
        return Err(invalid(format!(
            "max_evaluations must be between 2 and 500, got {}",
            req.max_evaluations
        )));
    }
    let pool = store
        .get_pool(ns, name)
        .await?
        .ok_or_else(|| TuneError::NoPool(format!("{ns}/{name}")))?;
    let spec = pool.spec;
    let doc = store.policy_for_pool(ns, name).await?.ok_or_else(|| {
        invalid(format!(
            "pool {ns}/{name} has no policy to tune; declare one first"
        ))
    })?;
    let policy = doc.spec.policy;
    let options = flexus_sim::simulation::SimulateOptions {
        flavor: Some(spec.flavor.clone()),
        peak_instances: req.peak_instances.unwrap_or(40),
        max_hours: req.hours,
        against: Vec::new(),
        ..flexus_sim::simulation::SimulateOptions::default()
    };
    let (history, flavor) = match &req.trace {
        Some(t) => flexus_sim::simulation::prepare_trace(t, &options)
            .map_err(|e| invalid(e.to_string()))?,
        None => {
            let flavor = flexus_sim::capacity::lookup(&spec.flavor).map_err(|e| {
                invalid(format!(
                    "pool {ns}/{name}: {e}; the replay has no capacity model for it"
                ))
            })?;
            (recorded(store, ns, name, &policy).await?, flavor)
        }
    };
    let r = flexus_sim::tune::TuneRequest {
        objective,
        max_evaluations: req.max_evaluations as usize,
        options,
        ..flexus_sim::tune::TuneRequest::new(history, flavor, policy, req.budget)
    };
    flexus_sim::tune::check(&r).map_err(|e| invalid(e.to_string()))?;
    Ok(r)
}

/// The pool's recorded request-rate history (the prediction metric's buckets) as a
/// trace; missing buckets are interpolated between their neighbours.
async fn recorded(
    store: &dyn Store,
    ns: &str,
    name: &str,
    policy: &flexus_policy::Policy,
) -> Result<flexus_sim::trace::Trace, TuneError> {
    let none = || {
        invalid(format!(
            "pool {ns}/{name} has no recorded history: the agent records the request-rate history of pools whose policy enables prediction (prediction.metric); pass \"trace\" to tune on a trace instead"
        ))
    };
    if !policy.prediction.enabled {
        return Err(none());
    }
    let h = store.get_forecast(ns, name).await?.ok_or_else(none)?;
    let step = h.header.bucket_seconds;
    let (Some(first), Some(last)) = (h.buckets.first(), h.buckets.last()) else {
        return Err(none());
    };
    let slots = ((last.start - first.start) / step).round() as usize + 1;
    let mut y: Vec<Option<f64>> = vec![None; slots];
    for b in &h.buckets {
        let i = ((b.start - first.start) / step).round() as usize;
        if let Some(v) = y.get_mut(i) {
            *v = Some(b.value(flexus_policy::forecast::buckets::BucketStat::Mean))
                .filter(|x| x.is_finite());
        }
    }
    let rps = fill_gaps(&y);
    flexus_sim::trace::Trace::from_rps(
        &format!("{ns}/{name} recorded history"),
        first.start as i64,
        step.round() as u32,
        rps,
    )
    .map_err(|e| invalid(e.to_string()))
}

/// Linear interpolation over missing values (ends take the nearest value).
fn fill_gaps(y: &[Option<f64>]) -> Vec<f64> {
    let known: Vec<(usize, f64)> = y
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .collect();
    (0..y.len())
        .map(|i| {
            let after = known.partition_point(|k| k.0 < i);
            match (after.checked_sub(1).map(|j| known[j]), known.get(after)) {
                (_, Some(&(j, v))) if j == i => v,
                (Some((a, va)), Some(&(b, vb))) => va + (vb - va) * (i - a) as f64 / (b - a) as f64,
                (Some((_, v)), None) | (None, Some(&(_, v))) => v,
                (None, None) => 0.0,
            }
        })
        .collect()
}

fn measure(m: &Measured) -> TuneMeasure {
    TuneMeasure {
        violation_min: m.violation_min,
        violation_share: m.violation_share,
        instance_hours: m.instance_hours,
        cost: m.cost,
    }
}

fn outcome(r: TuneResult) -> TuneOutcome {
    TuneOutcome {
        report: r.text(),
        changes: r
            .changes
            .iter()
            .map(|c| TuneChange {
                field: c.field.clone(),
                before: c.before,
                after: c.after,
            })
            .collect(),
        tune_hours: r.tune_hours,
        validation_hours: r.validation_hours,
        evaluations: r.evaluations as u32,
        before: measure(&r.validation.0),
        after: measure(&r.validation.1),
        policy: r.after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_buckets_are_interpolated_between_their_neighbours() {
        let y = [None, Some(10.0), None, None, Some(40.0), None];
        assert_eq!(fill_gaps(&y), vec![10.0, 10.0, 20.0, 30.0, 40.0, 40.0]);
    }
}
