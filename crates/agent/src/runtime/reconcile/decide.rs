//! Decide: `flexus_policy::decide` on what the pass observed. Pure — no I/O, no clock
//! (the observation's time is the decision's `now`).

use flexus_api::PredictionRecord;
use flexus_policy as fp;

use super::observe::{Inputs, Seen};
use crate::runtime::predict;

/// The engine's decision, and the forecast's decision-log record (predictive pools).
#[derive(Debug)]
pub(super) struct Decided {
    pub decision: fp::Decision,
    pub prediction: Option<PredictionRecord>,
}

/// Decide the pool's size, the engine seeing the pool as `pool` (the observed pool
/// less a refresh's surplus, see `refresh::engine_view`).
pub(super) fn decide(seen: &Seen, inputs: &Inputs, pool: &fp::PoolState) -> Decided {
    let decision = fp::decide(
        &inputs.compiled,
        &fp::DecisionInput {
            now: fp::Timestamp(seen.now),
            observations: &inputs.observations,
            pool,
            history: &inputs.history,
            prediction: inputs.forecast.prediction.as_ref(),
        },
    );
    let max = inputs.compiled.policy().bounds.max;
    let prediction = inputs
        .forecast
        .record
        .clone()
        .map(|r| predict::finish_record(r, &decision, max));
    Decided {
        decision,
        prediction,
    }
}
