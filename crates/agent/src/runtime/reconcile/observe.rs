//! Observe: what the pass knows before it decides — the pool (spec, open operations
//! advanced as far as they go, tagged instances) and, unless it is being deleted, its
//! policy, the engine's history, the signals and the forecast.

use std::sync::Arc;

use flexus_api::{PolicySpec, PoolSpec, PoolStatus, TAG_NAMESPACE, TAG_POOL};
use flexus_cloud::{Server, ServerFilter};
use flexus_policy as fp;

use super::observed::Observed;
use super::policy::effective_policy;
use super::signals::prediction_samples;
use super::{Context, PassError};
use crate::clock::Millis;
use crate::runtime::PoolKey;
use crate::runtime::predict;
use crate::store::OpRecord;

/// The pool as the pass found it.
#[derive(Debug)]
pub(super) struct Seen {
    pub spec: PoolSpec,
    /// The spec's version (a change lifts creates held after a refusal).
    pub spec_version: u64,
    /// The pool was deleted: its instances go, then its record.
    pub deleting: bool,
    /// Operations still open after this pass advanced them.
    pub open: Vec<OpRecord>,
    pub pool: Observed,
    /// Clock time of the observation.
    pub now: Millis,
}

/// The policy and what it reads.
#[derive(Debug)]
pub(super) struct Inputs {
    pub compiled: Arc<fp::CompiledPolicy>,
    /// The engine's history (recommendations, scale events) as the last pass left it.
    pub history: fp::History,
    /// The status the last pass recorded.
    pub previous: Option<PoolStatus>,
    pub observations: Vec<fp::Observation>,
    pub forecast: predict::Outcome,
}

/// A compiled policy with the policy and pool versions it was built from.
pub(super) type CompiledEntry = (u64, u64, Arc<fp::CompiledPolicy>);

fn bad(what: &'static str, key: &PoolKey, reason: impl ToString) -> PassError {
    PassError::BadSpec {
        what,
        pool: key.to_string(),
        reason: reason.to_string(),
    }
}

impl Context {
    /// The pool, its open operations (advanced as far as they go without waiting) and
    /// its instances; `None` when the pool is gone.
    pub(super) async fn observe_pool(&self, key: &PoolKey) -> Result<Option<Seen>, PassError> {
        let Some(doc) = self.store.get_pool(&key.ns, &key.name).await? else {
            return Ok(None);
        };
        let spec: PoolSpec = doc.spec.clone();
        let mut open = self
            .store
            .open_operations(Some((&key.ns, &key.name)))
            .await?;
        for op in open.iter_mut() {
            self.track(key, op, Some(doc.version)).await?;
        }
        open.retain(|o| !o.op.state.is_final());
        let now = self.now();
        let servers = self.list_pool_servers(key).await?;
        let pool = Observed::new(&spec, &servers, &open, now);
        Ok(Some(Seen {
            spec,
            spec_version: doc.version,
            deleting: doc.deleting,
            open,
            pool,
            now,
        }))
    }

    /// The policy, the engine's history, the signals and the forecast.
    pub(super) async fn observe_signals(
        &self,
        key: &PoolKey,
        seen: &Seen,
    ) -> Result<Inputs, PassError> {
        let (compiled, declared) = self.policy_of(key, seen).await?;
        let runtime = self.store.get_runtime(&key.ns, &key.name).await?;
        let history = runtime
            .as_ref()
            .map(|r| r.history.clone())
            .unwrap_or_default();
        let previous = runtime.map(|r| r.status);
        let policy = compiled.policy();
        // (A pool without a policy has nothing that can be pushed to it.)
        let pushed = match declared {
            true => self.read_pushed(key, policy, seen.now).await?,
            false => Vec::new(),
        };
        let observations = self
            .observe_metrics(key, policy, &seen.pool, &pushed, seen.now)
            .await;
        let samples = prediction_samples(policy, &observations, &pushed);
        let forecast = self
            .forecaster
            .step(self.store.as_ref(), key, policy, &samples, seen.now)
            .await?;
        if let Some(took) = forecast.fit {
            self.telemetry
                .forecast_fit_duration
                .observe(took.as_secs_f64());
        }
        Ok(Inputs {
            compiled,
            history,
            previous,
            observations,
            forecast,
        })
    }

    /// The compiled effective policy, and whether the pool has a declared one.
    async fn policy_of(
        &self,
        key: &PoolKey,
        seen: &Seen,
    ) -> Result<(Arc<fp::CompiledPolicy>, bool), PassError> {
        let doc = self.store.policy_for_pool(&key.ns, &key.name).await?;
        let declared: Option<PolicySpec> = doc.as_ref().map(|d| d.spec.clone());
        let version = doc.as_ref().map_or(0, |d| d.version);
        let compiled = self
            .compiled(key, version, seen.spec_version, || {
                let policy = self.clamped(key, effective_policy(&seen.spec, declared.as_ref()));
                fp::CompiledPolicy::new(policy).map_err(|d| d.to_string())
            })
            .map_err(|reason| bad("policy", key, reason))?;
        Ok((compiled, declared.is_some()))
    }

    /// The compiled policy of `key` for these versions, built once.
    fn compiled(
        &self,
        key: &PoolKey,
        policy_version: u64,
        pool_version: u64,
        build: impl FnOnce() -> Result<fp::CompiledPolicy, String>,
    ) -> Result<Arc<fp::CompiledPolicy>, String> {
        let mut cache = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((pv, sv, c)) = cache.get(key)
            && *pv == policy_version
            && *sv == pool_version
        {
            return Ok(c.clone());
        }
        let c = Arc::new(build()?);
        cache.insert(key.clone(), (policy_version, pool_version, c.clone()));
        Ok(c)
    }

    /// The pool's instances: only those carrying both its namespace and pool tags.
    async fn list_pool_servers(&self, key: &PoolKey) -> Result<Vec<Server>, PassError> {
        let filter = ServerFilter {
            tags: vec![
                (TAG_POOL.to_owned(), key.name.to_string()),
                (TAG_NAMESPACE.to_owned(), key.ns.to_string()),
            ],
            ..ServerFilter::default()
        };
        let servers = self.cloud_for(&key.ns).list_servers(&filter).await?;
        // Belt and braces: never act on an instance without both tags.
        Ok(servers
            .into_iter()
            .filter(|s| s.tag(TAG_POOL) == Some(&key.name) && s.tag(TAG_NAMESPACE) == Some(&key.ns))
            .filter(|s| !s.status.is_gone())
            .collect())
    }
}
