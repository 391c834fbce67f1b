//! The planning algorithm of PlanResourceChange, and the apply-consistency check.
//!
//! What terraform-plugin-framework does, and what users expect:
//!
//! 1. start from Terraform's `proposed_new_state` (configuration merged with prior state for
//!    computed attributes);
//! 2. plan each attribute's default where configuration leaves it null;
//! 3. null every write-only attribute (they never enter plan or state);
//! 4. if the result differs from the prior state (a create or an update), mark every computed
//!    attribute whose configuration is null as unknown ("known after apply"); an unchanged
//!    resource keeps its prior values, so its plan is empty;
//! 5. run the attributes' plan modifiers (use-state-for-unknown, requires-replace, ...),
//!    recursively through nested attributes and blocks;
//! 6. the resource's own `modify_plan` hook runs next (in the server), and finally
//!    requires-replace paths are kept only where prior and planned values differ, and
//!    dropped on create.

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::path::AttributePath;
use crate::plan_modifier::{PlanModifierRequest, PlanModifierResponse};
use crate::schema::{AttributeKind, Block, Schema};
use crate::value::Value;

/// The result of planning before the resource's own hook.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOutcome {
    /// The planned new state.
    pub planned: Value,
    /// Attributes whose change forces replacement.
    pub requires_replace: Vec<AttributePath>,
    /// Problems found by plan modifiers.
    pub diagnostics: Diagnostics,
}

/// Runs steps 1–5 of the algorithm for a create or update (`proposed` not null).
pub fn plan_resource(
    schema: &Schema,
    prior: &Value,
    proposed: &Value,
    config: &Value,
) -> PlanOutcome {
    let block = &schema.block;
    let mut planned = proposed.clone();
    apply_defaults(block, &mut planned, config);
    nullify_write_only(block, &mut planned);
    if planned != *prior {
        mark_computed_unknown(block, &mut planned, config);
    }
    let mut outcome = PlanOutcome {
        planned: Value::Null,
        requires_replace: Vec::new(),
        diagnostics: Diagnostics::new(),
    };
    let creating = prior.is_null();
    run_plan_modifiers(
        block,
        &mut planned,
        config,
        prior,
        &AttributePath::empty(),
        creating,
        &mut outcome,
    );
    outcome.planned = planned;
    outcome
}

/// Step 6: requires-replace paths survive only on update, and only where the value changes
/// (or is not known yet).
pub fn retain_replacing_paths(
    prior: &Value,
    planned: &Value,
    paths: Vec<AttributePath>,
) -> Vec<AttributePath> {
    if prior.is_null() || planned.is_null() {
        return Vec::new();
    }
    let mut kept: Vec<AttributePath> = Vec::new();
    for path in paths {
        let changed = match (prior.get(&path), planned.get(&path)) {
            (Some(before), Some(after)) => before != after,
            _ => true,
        };
        if changed && !kept.contains(&path) {
            kept.push(path);
        }
    }
    kept
}

/// Visits each object of a nested value in `planned` together with the matching objects of
/// `config` and `prior` (by index for lists, by key for maps, by content for sets; set
/// elements cannot be matched to prior elements, so they get a null prior).
fn for_each_nested(
    planned: &mut Value,
    config: &Value,
    prior: &Value,
    path: &AttributePath,
    f: &mut dyn FnMut(&mut Value, &Value, &Value, &AttributePath),
) {
    let config = config.unwrap_dynamic();
    let prior = prior.unwrap_dynamic();
    match planned {
        Value::Object(_) => f(planned, config, prior, path),
        Value::List(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                let at = |value: &Value| {
                    value
                        .as_elements()
                        .and_then(|elements| elements.get(index))
                        .cloned()
                };
                let config_item = at(config).unwrap_or(Value::Null);
                let prior_item = at(prior).unwrap_or(Value::Null);
                f(item, &config_item, &prior_item, &path.clone().index(index));
            }
        }
        Value::Set(items) => {
            let config_items = config.as_elements().unwrap_or_default();
            let matches = match_set_elements(items, config_items);
            for (item, matched) in items.iter_mut().zip(matches) {
                let config_item = matched.map_or(&Value::Null, |index| &config_items[index]);
                f(item, config_item, &Value::Null, path);
            }
        }
        Value::Map(entries) => {
            for (key, item) in entries.iter_mut() {
                let config_item = config
                    .as_object()
                    .and_then(|entries| entries.get(key))
                    .cloned();
                let prior_item = prior
                    .as_object()
                    .and_then(|entries| entries.get(key))
                    .cloned();
                f(
                    item,
                    &config_item.unwrap_or(Value::Null),
                    &prior_item.unwrap_or(Value::Null),
                    &path.clone().key(key.clone()),
                );
            }
        }
        _ => {}
    }
}

/// Pairs each planned set element with the configuration element it came from. Sets have no
/// order to go by, and the planned element differs from its configuration where computed
/// attributes were filled in; what they share is every value the configuration sets. So an
/// element matches a configuration element whose non-null attributes it carries unchanged
/// (each configuration element is used once).
fn match_set_elements(planned: &[Value], config: &[Value]) -> Vec<Option<usize>> {
    let mut used = vec![false; config.len()];
    planned
        .iter()
        .map(|item| {
            let found = config.iter().enumerate().position(|(index, candidate)| {
                !used[index]
                    && match (item.as_object(), candidate.as_object()) {
                        (Some(item), Some(candidate)) => candidate
                            .iter()
                            .all(|(name, value)| value.is_null() || item.get(name) == Some(value)),
                        _ => item == candidate,
                    }
            });
            if let Some(index) = found {
                used[index] = true;
            }
            found
        })
        .collect()
}

/// Visits the nested blocks and nested attributes of `block` with their schemas.
fn for_each_child_block(
    block: &Block,
    planned: &mut Value,
    config: &Value,
    prior: &Value,
    path: &AttributePath,
    f: &mut dyn FnMut(&Block, &mut Value, &Value, &Value, &AttributePath),
) {
    for attribute in &block.attributes {
        if let AttributeKind::Nested(nested) = &attribute.kind {
            let inner = nested.as_block();
            if let Some(slot) = planned.attribute_mut(&attribute.name) {
                for_each_nested(
                    slot,
                    config.attribute(&attribute.name),
                    prior.attribute(&attribute.name),
                    &path.clone().attribute(attribute.name.clone()),
                    &mut |element, config, prior, element_path| {
                        f(&inner, element, config, prior, element_path)
                    },
                );
            }
        }
    }
    for nested in &block.blocks {
        if let Some(slot) = planned.attribute_mut(&nested.type_name) {
            for_each_nested(
                slot,
                config.attribute(&nested.type_name),
                prior.attribute(&nested.type_name),
                &path.clone().attribute(nested.type_name.clone()),
                &mut |element, config, prior, element_path| {
                    f(&nested.block, element, config, prior, element_path)
                },
            );
        }
    }
}

fn apply_defaults(block: &Block, planned: &mut Value, config: &Value) {
    if !matches!(planned, Value::Object(_)) {
        return;
    }
    for attribute in &block.attributes {
        if let Some(default) = &attribute.default
            && config.attribute(&attribute.name).is_null()
            && let Some(slot) = planned.attribute_mut(&attribute.name)
        {
            *slot = default.clone();
        }
    }
    for_each_child_block(
        block,
        planned,
        config,
        &Value::Null,
        &AttributePath::empty(),
        &mut |inner, element, config, _, _| {
            apply_defaults(inner, element, config);
        },
    );
}

/// Sets every write-only attribute to null: Terraform requires them to be null in planned
/// and applied state.
pub(crate) fn nullify_write_only(block: &Block, value: &mut Value) {
    if !matches!(value, Value::Object(_)) {
        return;
    }
    for attribute in block
        .attributes
        .iter()
        .filter(|attribute| attribute.write_only)
    {
        if let Some(slot) = value.attribute_mut(&attribute.name) {
            *slot = Value::Null;
        }
    }
    for_each_child_block(
        block,
        value,
        &Value::Null,
        &Value::Null,
        &AttributePath::empty(),
        &mut |inner, element, _, _, _| {
            nullify_write_only(inner, element);
        },
    );
}

fn mark_computed_unknown(block: &Block, planned: &mut Value, config: &Value) {
    if !matches!(planned, Value::Object(_)) {
        return;
    }
    for attribute in &block.attributes {
        let unconfigured = config.attribute(&attribute.name).is_null();
        if attribute.computed
            && unconfigured
            && attribute.default.is_none()
            && let Some(slot) = planned.attribute_mut(&attribute.name)
        {
            *slot = Value::Unknown;
        }
    }
    for_each_child_block(
        block,
        planned,
        config,
        &Value::Null,
        &AttributePath::empty(),
        &mut |inner, element, config, _, _| {
            mark_computed_unknown(inner, element, config);
        },
    );
}

fn run_modifier_chain(
    modifiers: &[std::sync::Arc<dyn crate::plan_modifier::PlanModifier>],
    slot: &mut Value,
    config: &Value,
    prior: &Value,
    path: &AttributePath,
    creating: bool,
    outcome: &mut PlanOutcome,
) {
    for modifier in modifiers {
        let current = slot.clone();
        let request = PlanModifierRequest {
            path,
            config,
            prior,
            planned: &current,
            creating,
        };
        let mut response = PlanModifierResponse {
            planned: current.clone(),
            requires_replace: false,
            diagnostics: Diagnostics::new(),
        };
        modifier.modify(&request, &mut response);
        *slot = response.planned;
        if response.requires_replace {
            outcome.requires_replace.push(path.clone());
        }
        outcome.diagnostics.extend(response.diagnostics);
    }
}

fn run_plan_modifiers(
    block: &Block,
    planned: &mut Value,
    config: &Value,
    prior: &Value,
    path: &AttributePath,
    creating: bool,
    outcome: &mut PlanOutcome,
) {
    if !matches!(planned, Value::Object(_)) {
        return;
    }
    for attribute in block
        .attributes
        .iter()
        .filter(|attribute| !attribute.plan_modifiers.is_empty())
    {
        if let Some(slot) = planned.attribute_mut(&attribute.name) {
            let attribute_path = path.clone().attribute(attribute.name.clone());
            let (config, prior) = (
                config.attribute(&attribute.name),
                prior.attribute(&attribute.name),
            );
            run_modifier_chain(
                &attribute.plan_modifiers,
                slot,
                config,
                prior,
                &attribute_path,
                creating,
                outcome,
            );
        }
    }
    for nested in block
        .blocks
        .iter()
        .filter(|nested| !nested.plan_modifiers.is_empty())
    {
        if let Some(slot) = planned.attribute_mut(&nested.type_name) {
            let block_path = path.clone().attribute(nested.type_name.clone());
            let (config, prior) = (
                config.attribute(&nested.type_name),
                prior.attribute(&nested.type_name),
            );
            run_modifier_chain(
                &nested.plan_modifiers,
                slot,
                config,
                prior,
                &block_path,
                creating,
                outcome,
            );
        }
    }
    for_each_child_block(
        block,
        planned,
        config,
        prior,
        path,
        &mut |inner, element, config, prior, element_path| {
            run_plan_modifiers(
                inner,
                element,
                config,
                prior,
                element_path,
                creating,
                outcome,
            );
        },
    );
}

/// Checks what Terraform checks after apply: every value the plan knew must come back
/// unchanged, and nothing may be left unknown. Terraform's own message ("Provider produced
/// inconsistent result after apply") names neither the rule nor the attribute; this one does.
/// The server runs it in debug builds (so tests and the in-process driver catch the bug), and
/// providers can call it in their own tests.
pub fn check_apply_result(planned: &Value, new_state: &Value) -> Diagnostics {
    let mut diagnostics = Diagnostics::new();
    compare_planned(
        planned,
        new_state,
        &AttributePath::empty(),
        &mut diagnostics,
    );
    find_unknowns(new_state, &AttributePath::empty(), &mut diagnostics);
    diagnostics
}

fn inconsistent(path: &AttributePath, planned: &Value, actual: &Value) -> Diagnostic {
    Diagnostic::attribute_error(
        path.clone(),
        "Provider Produced Inconsistent Result",
        format!(
            "The plan promised {planned} for {where_}, but apply returned {actual}. Apply must return \
             every known planned value unchanged; this is a bug in the provider.",
            where_ = if path.is_empty() {
                "the resource".to_owned()
            } else {
                format!("`{path}`")
            }
        ),
    )
}

fn compare_planned(
    planned: &Value,
    actual: &Value,
    path: &AttributePath,
    diagnostics: &mut Diagnostics,
) {
    match (planned.unwrap_dynamic(), actual.unwrap_dynamic()) {
        (Value::Unknown, _) => {}
        (Value::Object(expected), Value::Object(_)) => {
            for (name, value) in expected {
                compare_planned(
                    value,
                    actual.attribute(name),
                    &path.clone().attribute(name.clone()),
                    diagnostics,
                );
            }
        }
        (Value::List(expected) | Value::Tuple(expected), Value::List(got) | Value::Tuple(got))
            if expected.len() == got.len() =>
        {
            for (index, (expected, got)) in expected.iter().zip(got).enumerate() {
                compare_planned(expected, got, &path.clone().index(index), diagnostics);
            }
        }
        (Value::Map(expected), Value::Map(got)) if expected.keys().eq(got.keys()) => {
            for (key, value) in expected {
                compare_planned(
                    value,
                    &got[key],
                    &path.clone().key(key.clone()),
                    diagnostics,
                );
            }
        }
        (Value::Set(_), _) if !planned.is_wholly_known() => {}
        (expected, got) => {
            if expected != got {
                diagnostics.push(inconsistent(path, planned, actual));
            }
        }
    }
}

fn find_unknowns(value: &Value, path: &AttributePath, diagnostics: &mut Diagnostics) {
    match value.unwrap_dynamic() {
        Value::Unknown => diagnostics.push(Diagnostic::attribute_error(
            path.clone(),
            "Provider Returned Unknown Value",
            format!(
                "Apply left {} unknown; after apply every value must be known. This is a bug in the provider.",
                if path.is_empty() { "the resource".to_owned() } else { format!("`{path}`") }
            ),
        )),
        Value::Object(entries) | Value::Map(entries) => {
            let is_object = matches!(value.unwrap_dynamic(), Value::Object(_));
            for (key, item) in entries {
                let item_path = if is_object { path.clone().attribute(key.clone()) } else { path.clone().key(key.clone()) };
                find_unknowns(item, &item_path, diagnostics);
            }
        }
        Value::List(items) | Value::Tuple(items) => {
            for (index, item) in items.iter().enumerate() {
                find_unknowns(item, &path.clone().index(index), diagnostics);
            }
        }
        Value::Set(items) => items.iter().for_each(|item| find_unknowns(item, path, diagnostics)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Attribute, NestedBlock};

    #[test]
    fn set_elements_match_their_configuration_by_content() {
        let schema = Schema::new(
            Block::new().block(NestedBlock::set(
                "port",
                Block::new()
                    .attribute(Attribute::number("number").required())
                    .attribute(
                        Attribute::string("protocol")
                            .optional()
                            .computed()
                            .default("tcp"),
                    )
                    .attribute(Attribute::string("id").computed()),
            )),
        );
        let element = |number: i64, protocol: Value| {
            Value::object([
                ("number", number.into()),
                ("protocol", protocol),
                ("id", Value::Null),
            ])
        };
        let config = Value::object([(
            "port",
            Value::set([element(443, "udp".into()), element(80, Value::Null)]),
        )]);
        // Terraform's proposed state lists the set in its own order.
        let proposed = Value::object([(
            "port",
            Value::set([element(80, Value::Null), element(443, "udp".into())]),
        )]);
        let planned = plan_resource(&schema, &Value::Null, &proposed, &config).planned;
        let ports = planned.attribute("port").as_elements().unwrap().to_vec();
        assert_eq!(
            ports[0].attribute("protocol"),
            &Value::from("tcp"),
            "default where configuration is null"
        );
        assert_eq!(
            ports[1].attribute("protocol"),
            &Value::from("udp"),
            "configured value kept"
        );
        assert!(ports.iter().all(|port| port.attribute("id").is_unknown()));
    }
}
