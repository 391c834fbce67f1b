//! Plan modifiers: described adjustments of one attribute's planned value.
//!
//! The planning algorithm ([`crate::planning`]) runs them after defaults are applied and
//! computed attributes are marked unknown, in the order they were attached, each seeing the
//! previous one's result. Requires-replace paths are dropped on create and wherever the prior
//! and planned values turn out equal, so a modifier may ask for replacement freely.

use crate::diagnostics::Diagnostics;
use crate::path::AttributePath;
use crate::value::Value;

/// What a plan modifier looks at.
pub struct PlanModifierRequest<'a> {
    /// The attribute's path.
    pub path: &'a AttributePath,
    /// The attribute's configured value (null when not configured).
    pub config: &'a Value,
    /// The attribute's value in prior state (null on create).
    pub prior: &'a Value,
    /// The attribute's planned value so far.
    pub planned: &'a Value,
    /// Whether the whole resource is being created (there is no prior state).
    pub creating: bool,
}

/// What a plan modifier decides.
pub struct PlanModifierResponse {
    /// The planned value; starts as the request's.
    pub planned: Value,
    /// Whether a change of this attribute forces replacement.
    pub requires_replace: bool,
    /// Problems found while planning.
    pub diagnostics: Diagnostics,
}

/// An adjustment of a planned value.
pub trait PlanModifier: Send + Sync + 'static {
    /// Lowercase, no trailing period; shown in docs.
    fn description(&self) -> String;

    /// Adjusts `response` for `request`.
    fn modify(&self, request: &PlanModifierRequest<'_>, response: &mut PlanModifierResponse);
}

struct RequiresReplaceIf<F> {
    description: String,
    condition: F,
}

impl<F> PlanModifier for RequiresReplaceIf<F>
where
    F: Fn(&PlanModifierRequest<'_>) -> bool + Send + Sync + 'static,
{
    fn description(&self) -> String {
        self.description.clone()
    }

    fn modify(&self, request: &PlanModifierRequest<'_>, response: &mut PlanModifierResponse) {
        if request.creating || request.prior == request.planned {
            return;
        }
        if (self.condition)(request) {
            response.requires_replace = true;
        }
    }
}

/// Changing the value destroys and recreates the resource. Put it after
/// [`use_state_for_unknown`] on optional+computed attributes, or every update would plan an
/// unknown value and so a replacement.
pub fn requires_replace() -> impl PlanModifier {
    RequiresReplaceIf {
        description: "changing this value destroys and recreates the resource".into(),
        condition: |_: &PlanModifierRequest<'_>| true,
    }
}

/// Like [`requires_replace`], but only when `condition` holds for the change (e.g. only
/// when a size shrinks). `description` says when, for the docs.
pub fn requires_replace_if<F>(description: impl Into<String>, condition: F) -> impl PlanModifier
where
    F: Fn(&PlanModifierRequest<'_>) -> bool + Send + Sync + 'static,
{
    RequiresReplaceIf {
        description: description.into(),
        condition,
    }
}

struct UseStateForUnknown;

impl PlanModifier for UseStateForUnknown {
    fn description(&self) -> String {
        "once set, the value of this attribute does not change".into()
    }

    fn modify(&self, request: &PlanModifierRequest<'_>, response: &mut PlanModifierResponse) {
        if request.prior.is_null() || !response.planned.is_unknown() || request.config.is_unknown()
        {
            return;
        }
        response.planned = request.prior.clone();
    }
}

/// Keeps the prior state's value instead of planning "known after apply" on updates: for
/// values that never change once created (ids, creation times), so plans stay readable.
pub fn use_state_for_unknown() -> impl PlanModifier {
    UseStateForUnknown
}
