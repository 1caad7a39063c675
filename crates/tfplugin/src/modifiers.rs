//! Attribute plan modifiers, run by the framework's plan pipeline for each attribute after
//! defaults are applied and unset computed attributes are marked unknown.

use crate::path::AttrPath;
use crate::value::Value;

/// What a plan modifier sees.
#[derive(Debug)]
pub struct ModifyPlanRequest<'a> {
    pub path: &'a AttrPath,
    /// The attribute's configuration value (null if unset; may be unknown).
    pub config: &'a Value,
    /// The attribute's prior state value; `None` when the resource is being created.
    pub prior: Option<&'a Value>,
}

/// What a plan modifier may change.
#[derive(Debug)]
pub struct ModifyPlanResponse {
    /// The planned value so far; a modifier may replace it.
    pub planned: Value,
    /// Set to ask for the resource to be replaced because of this attribute.
    pub requires_replace: bool,
}

/// Adjusts one attribute's planned value or asks for replacement.
pub trait PlanModifier: Send + Sync {
    fn description(&self) -> String;
    fn modify(&self, req: &ModifyPlanRequest<'_>, resp: &mut ModifyPlanResponse);
}

/// Replace the resource when this attribute's planned value differs from its state.
pub fn requires_replace() -> RequiresReplace {
    RequiresReplace {
        only_if_configured: false,
    }
}

/// Like [`requires_replace`], but only when the configuration sets the attribute.
pub fn requires_replace_if_configured() -> RequiresReplace {
    RequiresReplace {
        only_if_configured: true,
    }
}

#[derive(Debug)]
pub struct RequiresReplace {
    only_if_configured: bool,
}

impl PlanModifier for RequiresReplace {
    fn description(&self) -> String {
        "changing this value replaces the resource".into()
    }
    fn modify(&self, req: &ModifyPlanRequest<'_>, resp: &mut ModifyPlanResponse) {
        let Some(prior) = req.prior else { return };
        if self.only_if_configured && req.config.is_null() {
            return;
        }
        if resp.planned.is_unknown() || !resp.planned.equals(prior) {
            resp.requires_replace = true;
        }
    }
}

/// Keep the prior state's value instead of "known after apply" when the configuration does
/// not decide it (for computed values that never change, such as ids).
pub fn use_state_for_unknown() -> UseStateForUnknown {
    UseStateForUnknown
}

#[derive(Debug)]
pub struct UseStateForUnknown;

impl PlanModifier for UseStateForUnknown {
    fn description(&self) -> String {
        "once set, the value does not change".into()
    }
    fn modify(&self, req: &ModifyPlanRequest<'_>, resp: &mut ModifyPlanResponse) {
        let Some(prior) = req.prior else { return };
        if resp.planned.is_unknown() && !req.config.is_unknown() {
            resp.planned = prior.clone();
        }
    }
}

/// A modifier from a closure.
pub fn from_fn<F>(description: &str, f: F) -> FromFn<F>
where
    F: Fn(&ModifyPlanRequest<'_>, &mut ModifyPlanResponse) + Send + Sync,
{
    FromFn {
        description: description.to_string(),
        f,
    }
}

/// The closure wrapper is shared with [`crate::validators`].
pub use crate::validators::FromFn;

impl<F> PlanModifier for FromFn<F>
where
    F: Fn(&ModifyPlanRequest<'_>, &mut ModifyPlanResponse) + Send + Sync,
{
    fn description(&self) -> String {
        self.description.clone()
    }
    fn modify(&self, req: &ModifyPlanRequest<'_>, resp: &mut ModifyPlanResponse) {
        (self.f)(req, resp);
    }
}
