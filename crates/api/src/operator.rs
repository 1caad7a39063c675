//! What the operator sees and asks: the cost report, the advisor's proposals, and the
//! usage series the dashboard charts — bodies and client calls.
//!
//! Every recommendation (cost or advisor) carries a [`ReplayEffect`]: the pool's own
//! recent load replayed through the simulator with the pool as it is and as proposed.
//! Nothing here is ever applied by the agent.

use reqwest::Method;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::client::{Client, ClientError};
use crate::types::{Purchase, TuneMeasure, TuneOutcome};

/// `/v1/namespaces/{ns}/cost`
pub fn namespace_cost_path(ns: &str) -> String {
    format!("/v1/namespaces/{ns}/cost")
}
/// `/v1/namespaces/{ns}/pools/{name}/cost`
pub fn pool_cost_path(ns: &str, name: &str) -> String {
    format!("/v1/namespaces/{ns}/pools/{name}/cost")
}
/// `/v1/namespaces/{ns}/pools/{name}/usage`
pub fn pool_usage_path(ns: &str, name: &str) -> String {
    format!("/v1/namespaces/{ns}/pools/{name}/usage")
}
/// `/v1/namespaces/{ns}/pools/{name}/advice`
pub fn pool_advice_path(ns: &str, name: &str) -> String {
    format!("/v1/namespaces/{ns}/pools/{name}/advice")
}
/// `/v1/advisor`
pub const ADVISOR_PATH: &str = "/v1/advisor";

/// The time range a report covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Window {
    /// RFC 3339 start (inclusive).
    pub from: String,
    /// RFC 3339 end.
    pub to: String,
    pub hours: f64,
}

/// Instance-hours and cost of one flavor and purchase type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PurchaseCost {
    pub flavor: String,
    pub purchase: Purchase,
    pub instance_hours: f64,
    pub cost: f64,
}

/// The figures of a pool, a namespace or a whole report.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CostFigures {
    /// Billed instance-hours: from the end of boot until deletion (warming, ready,
    /// draining), as pay-per-use ECS and the emulator bill.
    pub instance_hours: f64,
    /// Cost at the agent's price table.
    pub cost: f64,
    /// By flavor and purchase type.
    pub by_purchase: Vec<PurchaseCost>,
    /// What the spot hours would have cost on demand, minus what they cost.
    pub spot_savings: f64,
    /// Ready capacity above demand, as a share of billed instance-hours (%). Absent when
    /// no sample in the window had a load signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_pct: Option<f64>,
    /// Requests served (estimated from the load signal).
    pub requests: f64,
    /// Cost per 1,000 requests; absent without requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_1k_requests: Option<f64>,
    /// Minutes the demand exceeded the ready capacity.
    pub violation_minutes: f64,
    /// Changes of the desired count.
    pub scaling_actions: u32,
    /// Minutes of the window covered by samples.
    pub covered_minutes: f64,
}

/// A replayed run: what the simulator measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReplayScore {
    pub cost: f64,
    pub instance_hours: f64,
    pub violation_minutes: f64,
    pub scaling_actions_per_hour: f64,
}

/// The measured effect of a change: the pool's recent load replayed as it is and as
/// proposed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReplayEffect {
    /// Hours of the pool's history replayed.
    pub hours: f64,
    pub before: ReplayScore,
    pub after: ReplayScore,
}

/// One cost recommendation with its replayed effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CostRecommendation {
    /// `min_size` (a pool with a policy), `size` (the count a pool without one holds:
    /// its `initial_size`, else `min_size`), `spot_share` or `flavor`.
    pub kind: String,
    /// Where to change it (e.g. `flexus_x_pool.min_size`).
    pub setting: String,
    pub current: String,
    pub proposed: String,
    /// One sentence.
    pub summary: String,
    pub effect: ReplayEffect,
}

/// The cost of one pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PoolCost {
    /// `<namespace>/<name>`.
    pub pool: String,
    pub flavor: String,
    #[serde(flatten)]
    pub figures: CostFigures,
    /// Only on a single pool's report (`recommend=true`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recommendations: Vec<CostRecommendation>,
    /// Why there are no recommendations (e.g. too little history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation_note: Option<String>,
}

/// Answer of `GET .../cost`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CostReport {
    pub window: Window,
    /// Currency or unit of the price table.
    pub currency: String,
    pub totals: CostFigures,
    pub pools: Vec<PoolCost>,
}

/// One point of a pool's usage series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UsagePoint {
    pub at: String,
    /// Offered load, requests/s (absent without a load signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_rps: Option<f64>,
    /// Instances the load needs at the flavor's SLO rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demand: Option<u32>,
    pub ready: u32,
    pub billed: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<u32>,
    /// Instances the last forecast asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast_capacity: Option<u32>,
}

/// Answer of `GET .../usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UsageSeries {
    pub pool: String,
    pub flavor: String,
    pub points: Vec<UsagePoint>,
}

/// Where an advice request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdviceState {
    /// Queued or waiting for the model.
    Pending,
    /// Answered; the proposal (if any) passed every check and was replayed.
    Proposed,
    /// Answered, but the proposal was refused (see `rejected`).
    Rejected,
    /// The model could not be asked (see `error`).
    Failed,
}

/// One answer of the advisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Advice {
    pub id: String,
    /// `<namespace>/<name>`.
    pub pool: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<String>,
    pub state: AdviceState,
    pub model: String,
    /// The model's plain-language explanation of recent behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// The policy change the model proposed (JSON merge patch onto the policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_patch: Option<serde_json::Value>,
    /// The whole proposed policy, validated by flexus-policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed_policy: Option<serde_json::Value>,
    /// The proposal replayed on the pool's history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<ReplayEffect>,
    /// The tuner's recommendation for the same pool on the same history, next to the
    /// model's proposal (absent only on a pending answer and on answers stored before the
    /// tuner ran beside the advisor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuner: Option<TunerAdvice>,
    /// Why the proposal was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    /// Why the model could not be asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Tokens the call used.
    #[serde(default)]
    pub tokens: u64,
}

/// The tuner beside the advisor: flexus-sim's tuner run on the history the model's
/// proposal is replayed on (the first two thirds tune), and the pool's policy, the
/// tuner's recommendation and the model's proposal all replayed on the same validation
/// window (the last third, which the search never saw), so that the two can be compared
/// side by side. Nothing is applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TunerAdvice {
    /// The tuner's recommendation: the policy diff (`changes`, empty when nothing beat
    /// the pool's policy), the recommended policy, and `before` (the pool's policy) and
    /// `after` (the recommendation) on the validation window. Absent with `reason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<TuneOutcome>,
    /// The model's proposal replayed on the same validation window, the same way.
    /// Absent when the model proposed no change or its proposal was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<TuneMeasure>,
    /// Why the tuner has no recommendation (too little history, no policy, a flavor
    /// without a capacity model, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Answer of `GET /v1/advisor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AdvisorStatus {
    pub enabled: bool,
    pub model: String,
    /// `ok`, `unhealthy` (bad key), `paused` (no balance), `budget_exhausted`, `disabled`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub tokens_today: u64,
    pub daily_token_budget: u64,
}

impl Client {
    /// `GET /v1/namespaces/{ns}/cost` — every pool of the namespace over `window` (e.g. `24h`).
    pub async fn namespace_cost(
        &self,
        ns: &str,
        window: Option<&str>,
    ) -> Result<CostReport, ClientError> {
        self.request::<_, ()>(
            Method::GET,
            &namespace_cost_path(ns),
            &window_query(window),
            None,
        )
        .await
    }

    /// `GET /v1/namespaces/{ns}/pools/{name}/cost?recommend=true` — one pool, with
    /// replayed recommendations.
    pub async fn pool_cost(
        &self,
        ns: &str,
        name: &str,
        window: Option<&str>,
    ) -> Result<CostReport, ClientError> {
        let mut q = vec![("recommend", "true".to_owned())];
        q.extend(window_query(window));
        self.request::<_, ()>(Method::GET, &pool_cost_path(ns, name), &q, None)
            .await
    }

    /// `GET /v1/namespaces/{ns}/pools/{name}/usage`.
    pub async fn pool_usage(
        &self,
        ns: &str,
        name: &str,
        window: Option<&str>,
    ) -> Result<UsageSeries, ClientError> {
        self.request::<_, ()>(
            Method::GET,
            &pool_usage_path(ns, name),
            &window_query(window),
            None,
        )
        .await
    }

    /// `POST /v1/namespaces/{ns}/pools/{name}/advice` — ask the advisor (answered later).
    pub async fn request_advice(&self, ns: &str, name: &str) -> Result<Advice, ClientError> {
        self.request::<_, ()>(Method::POST, &pool_advice_path(ns, name), &[], None)
            .await
    }

    /// `GET /v1/namespaces/{ns}/pools/{name}/advice` — newest first.
    pub async fn list_advice(&self, ns: &str, name: &str) -> Result<Vec<Advice>, ClientError> {
        self.request::<_, ()>(Method::GET, &pool_advice_path(ns, name), &[], None)
            .await
    }

    /// `GET /v1/advisor`.
    pub async fn advisor_status(&self) -> Result<AdvisorStatus, ClientError> {
        self.request::<_, ()>(Method::GET, ADVISOR_PATH, &[], None)
            .await
    }
}

/// The `window` query parameter, when one is given.
fn window_query(window: Option<&str>) -> Vec<(&'static str, String)> {
    window
        .map(|w| ("window", w.to_owned()))
        .into_iter()
        .collect()
}
