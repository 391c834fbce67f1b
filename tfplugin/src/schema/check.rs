//! The self-check of Terraform's schema rules.
//!
//! Terraform rejects a bad schema only when a user runs a plan, with a message naming the
//! provider. Running the same rules at start-up and in unit tests turns that into a failing
//! test for the provider's authors.

use std::collections::BTreeSet;
use std::fmt;

use super::{Attribute, AttributeKind, Block, BlockNesting, NestedBlock, ObjectNesting, Schema};
use crate::value::encode_msgpack;

/// Which kind of schema is checked; each has its own reserved top-level names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaKind {
    /// The provider's configuration block.
    Provider,
    /// A managed resource.
    Resource,
    /// A data source.
    DataSource,
}

impl SchemaKind {
    /// Names Terraform's language takes for meta-arguments at the top level.
    fn reserved_names(self) -> &'static [&'static str] {
        match self {
            Self::Provider => &["alias", "version"],
            Self::Resource => &[
                "connection",
                "count",
                "depends_on",
                "for_each",
                "lifecycle",
                "provider",
                "provisioner",
            ],
            Self::DataSource => &["count", "depends_on", "for_each", "lifecycle", "provider"],
        }
    }
}

/// Every rule a schema breaks, each with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// `"<where>: <rule broken>"` lines.
    pub problems: Vec<String>,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid schema: {}", self.problems.join("; "))
    }
}

impl std::error::Error for SchemaError {}

/// Whether `name` is a valid Terraform attribute, block or type name: `^[a-z_][a-z0-9_]*$`.
pub fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

impl Schema {
    /// Checks Terraform's schema rules; `context` names the schema in messages (e.g. the
    /// resource type).
    pub fn check(&self, kind: SchemaKind, context: &str) -> Result<(), SchemaError> {
        let mut problems = Vec::new();
        if self.version < 0 {
            problems.push(format!("{context}: schema version must not be negative"));
        }
        if kind != SchemaKind::Resource && self.version != 0 {
            problems.push(format!("{context}: only resource schemas have versions"));
        }
        for name in kind.reserved_names() {
            if self.block.find_attribute(name).is_some() || self.block.find_block(name).is_some() {
                problems.push(format!(
                    "{context}.{name}: \"{name}\" is a reserved name at the top level"
                ));
            }
        }
        check_block(&self.block, context, false, &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SchemaError { problems })
        }
    }
}

fn check_block(block: &Block, at: &str, in_set: bool, problems: &mut Vec<String>) {
    let mut names = BTreeSet::new();
    let all_names = block
        .attributes
        .iter()
        .map(|attribute| attribute.name.as_str())
        .chain(block.blocks.iter().map(|nested| nested.type_name.as_str()));
    for name in all_names {
        if !names.insert(name) {
            problems.push(format!("{at}.{name}: name is used twice in the same block"));
        }
    }
    for validator in &block.validators {
        for name in validator.referenced_names() {
            if !names.contains(name.as_str()) {
                problems.push(format!(
                    "{at}: a validator refers to \"{name}\", which is not in this block"
                ));
            }
        }
    }
    for attribute in &block.attributes {
        check_attribute(
            attribute,
            &format!("{at}.{}", attribute.name),
            &names,
            in_set,
            problems,
        );
    }
    for nested in &block.blocks {
        check_nested_block(
            nested,
            &format!("{at}.{}", nested.type_name),
            &names,
            in_set,
            problems,
        );
    }
}

fn check_references(
    validators: &[std::sync::Arc<dyn crate::validator::Validator>],
    at: &str,
    siblings: &BTreeSet<&str>,
    problems: &mut Vec<String>,
) {
    for validator in validators {
        for name in validator.referenced_names() {
            if !siblings.contains(name.as_str()) {
                problems.push(format!(
                    "{at}: a validator refers to \"{name}\", which is not in the same block"
                ));
            }
        }
    }
}

fn check_attribute(
    attribute: &Attribute,
    at: &str,
    siblings: &BTreeSet<&str>,
    in_set: bool,
    problems: &mut Vec<String>,
) {
    if !is_valid_name(&attribute.name) {
        problems.push(format!("{at}: name must match ^[a-z_][a-z0-9_]*$"));
    }
    if !(attribute.required || attribute.optional || attribute.computed) {
        problems.push(format!("{at}: must be required, optional or computed"));
    }
    if attribute.required && attribute.optional {
        problems.push(format!("{at}: cannot be both required and optional"));
    }
    if attribute.required && attribute.computed {
        problems.push(format!("{at}: cannot be both required and computed"));
    }
    if attribute.write_only && attribute.computed {
        problems.push(format!("{at}: a write-only attribute cannot be computed"));
    }
    if attribute.write_only && attribute.default.is_some() {
        problems.push(format!(
            "{at}: a write-only attribute cannot have a default"
        ));
    }
    if attribute.write_only && in_set {
        problems.push(format!(
            "{at}: write-only attributes are not allowed inside sets"
        ));
    }
    if let Some(default) = &attribute.default {
        if !attribute.computed {
            problems.push(format!(
                "{at}: an attribute with a default must be computed (usually optional + computed)"
            ));
        }
        if let Err(error) = encode_msgpack(default, &attribute.value_type()) {
            problems.push(format!(
                "{at}: default does not match the attribute's type: {error}"
            ));
        }
    }
    check_references(&attribute.validators, at, siblings, problems);
    if let AttributeKind::Nested(nested) = &attribute.kind {
        if nested.attributes.is_empty() {
            problems.push(format!(
                "{at}: nested attributes need at least one attribute"
            ));
        }
        check_block(
            &nested.as_block(),
            at,
            in_set || nested.nesting == ObjectNesting::Set,
            problems,
        );
    }
}

fn check_nested_block(
    nested: &NestedBlock,
    at: &str,
    siblings: &BTreeSet<&str>,
    in_set: bool,
    problems: &mut Vec<String>,
) {
    if !is_valid_name(&nested.type_name) {
        problems.push(format!(
            "{at}: block type name must match ^[a-z_][a-z0-9_]*$"
        ));
    }
    let (min, max) = (nested.min_items, nested.max_items);
    if min < 0 || max < 0 {
        problems.push(format!(
            "{at}: min_items and max_items must not be negative"
        ));
    }
    match nested.nesting {
        BlockNesting::Single if min > 1 || max > 1 => {
            problems.push(format!(
                "{at}: a single block has min_items and max_items of 0 or 1"
            ));
        }
        // Terraform's own check: a required single block sets both to 1, an optional one neither.
        BlockNesting::Single if min != max => {
            problems.push(format!(
                "{at}: a single block's min_items and max_items must match (both 1 for a required block)"
            ));
        }
        BlockNesting::Group | BlockNesting::Map if min != 0 || max != 0 => {
            problems.push(format!(
                "{at}: group and map blocks cannot set min_items or max_items"
            ));
        }
        BlockNesting::List | BlockNesting::Set if max > 0 && min > max => {
            problems.push(format!("{at}: min_items must not exceed max_items"));
        }
        _ => {}
    }
    check_references(&nested.validators, at, siblings, problems);
    check_block(
        &nested.block,
        at,
        in_set || nested.nesting == BlockNesting::Set,
        problems,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["a", "_x", "port_80", "snake_case"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", "A", "9lives", "kebab-case", "spa ce", "Ünicode"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
