//! Data source `flexus_policy_simulation`: replays a real trace (or a CSV file) through a
//! policy with `flexus-sim` at plan time and exposes the scorecard, so a reviewer sees in
//! `terraform plan` what a policy change would have cost and violated on real traffic.

use std::collections::BTreeMap;

use flexus_sim::simulation::{SimulateOptions, simulate_named_trace};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tfplugin::{AttrPath, Ctx, DataSource, Diagnostic, Diagnostics, ReadDataRequest};

use crate::provider::Flexus;

/// Replays a trace through a policy with the Flexus simulator (the same decision engine
/// the agent runs) and reports the scorecard: SLO violations, cost, instance-hours,
/// scaling actions. Runs at plan time, locally; it does not contact the agent.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SimulationModel {
    /// A named trace (`nasa-http-1995`, `worldcup98`, `nab-elb`, `nyc-taxi`,
    /// `google-cluster-cpu`, `azure-llm-code`, `azure-llm-conv`; found under
    /// `FLEXUS_TRACES_DIR`) or the path of a CSV file.
    pub trace: String,
    /// The policy, as HCL or JSON text (for example `file("policy.hcl")` or `jsonencode({...})`).
    pub policy: String,
    /// Flavor of the simulated pool; defaults to the trace's flavor.
    pub flavor: Option<String>,
    /// The trace's 99.9th-percentile rate maps to this many instances (default 40).
    #[schemars(range(min = 1, max = 1000))]
    pub peak_instances: Option<u32>,
    /// Replay at most this many hours from the start of the trace (default: all of it).
    pub max_hours: Option<f64>,
    /// Baselines replayed next to the policy for comparison, e.g. `["hpa", "aws-tt"]`
    /// (known: `static-peak`, `hpa`, `aws-tt`, `aws-step`, `aws-predictive`, `seed`, `oracle`).
    pub against: Option<Vec<String>>,
    /// Replayed hours.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub hours: Option<f64>,
    /// Peak demand of the trace, in instances.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub peak_demand: Option<u32>,
    /// Percent of time the latency SLO was missed.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub slo_violation_pct: Option<f64>,
    /// Minutes the SLO was missed.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub slo_violation_minutes: Option<f64>,
    /// Percent of requests not served within the SLO.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub bad_requests_pct: Option<f64>,
    /// Cost of the replay (price units of the flavor catalogue).
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub cost: Option<f64>,
    /// Billed instance-hours.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub instance_hours: Option<f64>,
    /// Over-provisioned instance-hours.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub over_instance_hours: Option<f64>,
    /// Under-provisioned instance-hours.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub under_instance_hours: Option<f64>,
    /// Scaling actions per hour.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub actions_per_hour: Option<f64>,
    /// Longest time to capacity after a shortfall, minutes.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub time_to_capacity_max_minutes: Option<f64>,
    /// Cost of each baseline in `against`, keyed by the name written there.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub baseline_cost: Option<BTreeMap<String, f64>>,
    /// SLO violation percent of each baseline in `against`, keyed by the name written there.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub baseline_slo_violation_pct: Option<BTreeMap<String, f64>>,
    /// The whole scorecard as a Markdown table.
    #[schemars(extend("x-tf" = {"computed": true}))]
    pub scorecard: Option<String>,
}

/// `data "flexus_policy_simulation"`.
#[derive(Debug, Clone, Copy)]
pub struct SimulationDataSource;

/// Parses policy text (JSON when it starts with `{`, else HCL) with `flexus-policy`,
/// reporting every problem on the `policy` attribute with its location in the text.
pub fn parse_policy_text(text: &str) -> Result<flexus_policy::Policy, Diagnostics> {
    let parsed = if text.trim_start().starts_with('{') {
        flexus_policy::parse_json(text)
    } else {
        flexus_policy::parse_hcl(text, "policy")
    };
    parsed.map_err(|ds| {
        let mut out = Diagnostics::new();
        for d in ds.iter() {
            out.push(
                Diagnostic::error("Invalid policy", d.to_string()).at(AttrPath::new("policy")),
            );
        }
        out
    })
}

impl DataSource for SimulationDataSource {
    type Data = Flexus;
    type Model = SimulationModel;

    const TYPE_NAME: &str = "flexus_policy_simulation";

    fn validate(&self, config: &tfplugin::Value) -> Diagnostics {
        match config.attr("policy").and_then(tfplugin::Value::as_str) {
            Some(text) => parse_policy_text(text).err().unwrap_or_default(),
            None => Diagnostics::new(),
        }
    }

    async fn read(
        &self,
        _ctx: &Ctx<Flexus>,
        req: ReadDataRequest<SimulationModel>,
    ) -> Result<SimulationModel, Diagnostics> {
        let mut m = req.config;
        let policy = parse_policy_text(&m.policy)?;
        let mut opts = SimulateOptions {
            against: m.against.clone().unwrap_or_default(),
            ..SimulateOptions::default()
        };
        opts.flavor = m.flavor.clone();
        if let Some(p) = m.peak_instances {
            opts.peak_instances = p;
        }
        opts.max_hours = m.max_hours;
        let trace = m.trace.clone();
        let card =
            tokio::task::spawn_blocking(move || simulate_named_trace(&trace, &policy, &opts))
                .await
                .map_err(|e| {
                    Diagnostics::from(Diagnostic::error("Simulation failed", e.to_string()))
                })?
                .map_err(|e| {
                    Diagnostics::from(
                        Diagnostic::from_error("Simulation failed", &e).at(AttrPath::new("trace")),
                    )
                })?;
        let ours = card.scores.first().ok_or_else(|| {
            Diagnostics::from(Diagnostic::error(
                "Simulation failed",
                "the simulator returned no score",
            ))
        })?;
        m.hours = Some(card.hours);
        m.peak_demand = Some(card.peak_demand);
        m.slo_violation_pct = Some(ours.slo_violation_pct);
        m.slo_violation_minutes = Some(ours.slo_violation_min);
        m.bad_requests_pct = Some(ours.bad_requests_pct);
        m.cost = Some(ours.cost);
        m.instance_hours = Some(ours.instance_hours);
        m.over_instance_hours = Some(ours.over_instance_hours);
        m.under_instance_hours = Some(ours.under_instance_hours);
        m.actions_per_hour = Some(ours.actions_per_hour);
        m.time_to_capacity_max_minutes = Some(ours.ttc_max_min);
        // Keyed by the names written in `against` (the simulator replays them in that order).
        let against = m.against.clone().unwrap_or_default();
        let baselines: Vec<(&String, &flexus_sim::scorecard::Score)> =
            against.iter().zip(card.scores.iter().skip(1)).collect();
        m.baseline_cost = Some(
            baselines
                .iter()
                .map(|(n, s)| ((*n).clone(), s.cost))
                .collect(),
        );
        m.baseline_slo_violation_pct = Some(
            baselines
                .iter()
                .map(|(n, s)| ((*n).clone(), s.slo_violation_pct))
                .collect(),
        );
        m.scorecard = Some(card.markdown());
        Ok(m)
    }
}
