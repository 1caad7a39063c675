//! Data source `flexus_policy_recommendation`: asks the agent to tune a pool's policy
//! on its recorded history (`POST .../pools/{name}/tune`), waits for the job at plan
//! time, and exposes the recommended parameters as attributes a module can feed into
//! `flexus_autoscaling_policy`. Nothing is applied.

use std::collections::BTreeMap;
use std::time::Duration;

use flexus_api::{TuneJob, TuneRequest};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tfplugin::{AttrPath, Ctx, DataSource, Diagnostic, Diagnostics, ReadDataRequest};

use crate::errors::{Object, to_diagnostics};
use crate::provider::Flexus;

/// Tunes a pool's policy by replaying the history the agent recorded for it (or a named
/// trace): the first two thirds tune, the last third validates. The outputs are the
/// recommended values and the before/after measured on the validation window.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RecommendationModel {
    /// Namespace of the pool; defaults to the provider's `namespace`.
    #[schemars(extend("x-tf" = {"optional": true, "computed": true}))]
    pub namespace: Option<String>,
    /// Name of the pool whose policy is tuned.
    pub pool: String,
    /// Share of the time the SLO may be missed, in (0, 1) (default 0.01).
    pub budget: Option<f64>,
    /// `cost` (default) or `instance_hours`.
    pub objective: Option<String>,
    /// Replays the search may spend (2-500, default 60).
    #[schemars(range(min = 2, max = 500))]
    pub max_evaluations: Option<u32>,
    /// What to stay within: `budget` (default) or `baselines` (beat HPA's and AWS target
    /// tracking's defaults on both violation minutes and instance-hours or cost; `budget`
    /// is then not used).
    pub aim: Option<String>,
    /// Tune on this built-in trace instead of the pool's recorded history.
    pub trace: Option<String>,
    /// With `trace`: instances at its 99.9th-percentile rate (default 40).
    pub peak_instances: Option<u32>,
    /// With `trace`: use only its first hours.
    pub hours: Option<f64>,
    /// How long to wait for the job (seconds, default 600).
    pub timeout_seconds: Option<u32>,
    /// The job's id.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub id: Option<String>,
    /// Recommended target of each metric that has one, by metric name.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub targets: Option<BTreeMap<String, f64>>,
    /// Recommended `scale_in.stabilisation_window`, e.g. `"4m45s"`.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub scale_in_stabilisation_window: Option<String>,
    /// Recommended scale-in rate: percent of the pool per minute (`scale_in.policy { type = "percent", period = "1m" }`).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub scale_in_percent_per_minute: Option<u32>,
    /// Recommended `trend_lead` of the targeted metrics, e.g. `"6m"`.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub trend_lead: Option<String>,
    /// Recommended `sqrt_headroom` of the targeted metrics.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub sqrt_headroom: Option<f64>,
    /// Recommended `noise_headroom` of the targeted metrics.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub noise_headroom: Option<f64>,
    /// Recommended `coarse_sqrt_headroom` of the targeted metrics (null when the policy sets none).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub coarse_sqrt_headroom: Option<f64>,
    /// Recommended `coarse_noise_headroom` of the targeted metrics (null when the policy sets none).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub coarse_noise_headroom: Option<f64>,
    /// Recommended `prediction.target_per_instance` (when prediction is on).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub prediction_target_per_instance: Option<f64>,
    /// Recommended `prediction.max_ratio` (when prediction is on).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub prediction_max_ratio: Option<f64>,
    /// Recommended `prediction.lead_time` (when prediction is on).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub prediction_lead_time: Option<String>,
    /// The whole recommended policy as JSON (the agent's policy format).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub policy_json: Option<String>,
    /// SLO-violation minutes on the validation window: current policy.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub before_violation_minutes: Option<f64>,
    /// Instance-hours on the validation window: current policy.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub before_instance_hours: Option<f64>,
    /// SLO-violation minutes on the validation window: recommendation.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub after_violation_minutes: Option<f64>,
    /// Instance-hours on the validation window: recommendation.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub after_instance_hours: Option<f64>,
    /// Whether the recommendation has fewer violation minutes and fewer instance-hours
    /// than both HPA's and AWS target tracking's defaults on the validation window.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub beats_baselines: Option<bool>,
    /// Whether the recommendation stays within `budget` on the validation window (the
    /// later history it was not tuned on). `false` comes with a warning: review the
    /// recommendation before feeding it to a policy (a `precondition` can refuse it).
    /// Null with `aim = "baselines"` (see `beats_baselines`).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub within_budget: Option<bool>,
    /// The tuner's report (changes and before/after on both windows).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub report: Option<String>,
}

/// `data "flexus_policy_recommendation"`.
#[derive(Debug, Clone, Copy)]
pub struct RecommendationDataSource;

fn fail(summary: &str, detail: String) -> Diagnostics {
    Diagnostic::error(summary, detail)
        .at(AttrPath::new("pool"))
        .into()
}

async fn run_job(
    api: &Flexus,
    ns: &str,
    pool: &str,
    req: TuneRequest,
    wait: Duration,
) -> Result<TuneJob, Diagnostics> {
    let what = format!("tune pool {ns}/{pool}");
    let mut job = api
        .call_once(&what, |c| {
            let (ns, pool, req) = (ns.to_string(), pool.to_string(), req.clone());
            async move { c.start_tune(&ns, &pool, &req).await }
        })
        .await
        .map_err(|e| to_diagnostics(Object::Pool, "Cannot tune the policy", &e))?;
    let deadline = tokio::time::Instant::now() + wait;
    while job.state == "running" {
        if tokio::time::Instant::now() >= deadline {
            let why = if job.started_at.is_some() {
                "still running"
            } else {
                "still waiting for a search slot of the agent (other tunes run; [tune] in agent.toml)"
            };
            return Err(fail(
                "Tune timed out",
                format!(
                    "tune job {} of {ns}/{pool} {why} after {}s; raise timeout_seconds or lower max_evaluations",
                    job.id,
                    wait.as_secs()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let id = job.id.clone();
        job = api
            .call(&what, |c| {
                let (ns, pool, id) = (ns.to_string(), pool.to_string(), id.clone());
                async move { c.tune_job(&ns, &pool, &id).await }
            })
            .await
            .map_err(|e| to_diagnostics(Object::Pool, "Cannot read the tune job", &e))?;
    }
    if job.state != "done" {
        return Err(fail(
            "Tune failed",
            format!(
                "tune job {} of {ns}/{pool} failed: {}",
                job.id,
                job.error.as_deref().unwrap_or("no reason given")
            ),
        ));
    }
    Ok(job)
}

impl DataSource for RecommendationDataSource {
    type Data = Flexus;
    type Model = RecommendationModel;

    const TYPE_NAME: &str = "flexus_policy_recommendation";

    async fn read(
        &self,
        ctx: &Ctx<Flexus>,
        req: ReadDataRequest<RecommendationModel>,
    ) -> Result<RecommendationModel, Diagnostics> {
        let api = ctx.data()?;
        let mut m = req.config;
        let ns = api.namespace_for(m.namespace.as_deref())?;
        let d = TuneRequest::default();
        let tune = TuneRequest {
            budget: m.budget.unwrap_or(d.budget),
            objective: m.objective.clone().unwrap_or(d.objective),
            max_evaluations: m.max_evaluations.unwrap_or(d.max_evaluations),
            aim: m.aim.clone().unwrap_or(d.aim),
            trace: m.trace.clone(),
            peak_instances: m.peak_instances,
            hours: m.hours,
        };
        let wait = Duration::from_secs(u64::from(m.timeout_seconds.unwrap_or(600)));
        let job = run_job(api, &ns, &m.pool, tune, wait).await?;
        let r = job
            .result
            .ok_or_else(|| fail("Tune failed", format!("tune job {} has no result", job.id)))?;
        let p = &r.policy;
        m.namespace = Some(ns);
        m.id = Some(job.id);
        m.targets = Some(
            p.metrics
                .iter()
                .filter_map(|x| {
                    x.target
                        .map(|t| (x.name.clone(), (t * 1000.0).round() / 1000.0))
                })
                .collect(),
        );
        m.scale_in_stabilisation_window = Some(flexus_policy::format_duration(
            p.scale_in.stabilisation_window,
        ));
        m.scale_in_percent_per_minute = p
            .scale_in
            .policies
            .first()
            .filter(|r| r.kind == flexus_policy::RateKind::Percent)
            .map(|r| r.value);
        let targeted = p.metrics.iter().find(|x| x.target.is_some());
        m.trend_lead = targeted.map(|x| flexus_policy::format_duration(x.trend_lead));
        m.sqrt_headroom = targeted.map(|x| x.sqrt_headroom);
        m.noise_headroom = targeted.map(|x| x.noise_headroom);
        m.coarse_sqrt_headroom = targeted.and_then(|x| x.coarse_sqrt_headroom);
        m.coarse_noise_headroom = targeted.and_then(|x| x.coarse_noise_headroom);
        let pr = &p.prediction;
        m.prediction_target_per_instance = pr.enabled.then_some(pr.target_per_instance).flatten();
        m.prediction_max_ratio = pr.enabled.then_some(pr.max_ratio).flatten();
        m.prediction_lead_time = pr
            .enabled
            .then(|| flexus_policy::format_duration(pr.lead_time));
        m.policy_json = serde_json::to_string(p).ok();
        m.before_violation_minutes = Some(r.before.violation_min);
        m.before_instance_hours = Some(r.before.instance_hours);
        m.after_violation_minutes = Some(r.after.violation_min);
        m.after_instance_hours = Some(r.after.instance_hours);
        m.beats_baselines = Some(!r.baselines.is_empty() && r.baselines.iter().all(|b| b.beaten));
        m.within_budget = r.within_budget;
        m.report = Some(r.report);
        Ok(m)
    }

    fn warnings(&self, m: &RecommendationModel) -> Diagnostics {
        let mut d = Diagnostics::new();
        if m.within_budget == Some(false) {
            let budget = m.budget.unwrap_or(TuneRequest::default().budget);
            d.warning(
                "Recommendation over its violation budget on the validation window",
                format!(
                    "tune {} of {}/{}: on the validation window (the later history it was not tuned on) the recommendation is in violation {:.0} minutes (the current policy: {:.0}), over the budget of {:.2} % of the time. That history was harder than the part it was tuned on: review the recommendation (`report`) before feeding it to a policy.",
                    m.id.as_deref().unwrap_or_default(),
                    m.namespace.as_deref().unwrap_or_default(),
                    m.pool,
                    m.after_violation_minutes.unwrap_or_default(),
                    m.before_violation_minutes.unwrap_or_default(),
                    budget * 100.0
                ),
            );
        }
        d
    }
}
