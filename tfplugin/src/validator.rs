//! Validators: composable, described checks of configured values.
//!
//! Attach them per attribute (or per nested block, or per block for checks across several
//! attributes). The framework runs them in `ValidateResourceConfig` (and the provider and
//! data source equivalents) on values that are known and not null, so a validator never sees
//! an unknown value: a value only known after apply cannot be judged at plan time. Each
//! validator has a lowercase description that the generated docs show.

use std::sync::Arc;

use regex::Regex;

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::path::AttributePath;
use crate::schema::Block;
use crate::value::Value;

/// What a validator looks at.
pub struct ValidationRequest<'a> {
    /// Where the value is; diagnostics should carry it.
    pub path: &'a AttributePath,
    /// The value: known and not null. For a block-level validator, the block's object.
    pub value: &'a Value,
    /// The object holding the value (for a block-level validator, the object itself), so
    /// validators can compare siblings.
    pub parent: &'a Value,
    /// The schema of `parent`.
    pub parent_block: &'a Block,
}

impl ValidationRequest<'_> {
    /// The value of a sibling attribute or nested block.
    pub fn sibling(&self, name: &str) -> &Value {
        self.parent.attribute(name)
    }

    /// Whether a sibling is set: `Some(true)` when configured, `Some(false)` when null (or,
    /// for a nested block, when no block is written), `None` when not known yet.
    pub fn sibling_is_set(&self, name: &str) -> Option<bool> {
        let value = self.sibling(name);
        if value.is_unknown() {
            return None;
        }
        if value.is_null() {
            return Some(false);
        }
        match self.parent_block.find_block(name) {
            // Only a GROUP block is never null; written or not, so all-null means absent.
            Some(nested) if nested.nesting == crate::BlockNesting::Group => {
                Some(!all_attributes_null(value))
            }
            // A SINGLE block that is not null was written, even when empty (`local {}`).
            Some(nested) if nested.nesting == crate::BlockNesting::Single => Some(true),
            Some(_) => value.length().map(|length| length > 0),
            None => Some(true),
        }
    }
}

/// A GROUP block with every attribute null is "not written".
fn all_attributes_null(value: &Value) -> bool {
    matches!(value, Value::Object(attributes) if attributes.values().all(Value::is_null))
}

/// A check of a configured value.
pub trait Validator: Send + Sync + 'static {
    /// Lowercase, no trailing period; shown in docs, e.g. "length must be between 1 and 63".
    fn description(&self) -> String;

    /// Adds diagnostics (with `request.path`) for what is wrong with the value.
    fn validate(&self, request: &ValidationRequest<'_>, diagnostics: &mut Diagnostics);

    /// Sibling names the validator refers to; the schema self-check verifies they exist.
    fn referenced_names(&self) -> Vec<String> {
        Vec::new()
    }
}

fn invalid(request: &ValidationRequest<'_>, summary: &str, detail: String) -> Diagnostic {
    Diagnostic::attribute_error(request.path.clone(), summary, detail)
}

fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

struct Length {
    min: Option<usize>,
    max: Option<usize>,
}

impl Validator for Length {
    fn description(&self) -> String {
        match (self.min, self.max) {
            (Some(min), Some(max)) => format!("length must be between {min} and {max}"),
            (Some(min), None) => format!("length must be at least {min}"),
            (None, Some(max)) => format!("length must be at most {max}"),
            (None, None) => "any length".into(),
        }
    }

    fn validate(&self, request: &ValidationRequest<'_>, diagnostics: &mut Diagnostics) {
        let Some(length) = request.value.length() else {
            return;
        };
        let too_short = self.min.is_some_and(|min| length < min);
        let too_long = self.max.is_some_and(|max| length > max);
        if too_short || too_long {
            diagnostics.push(invalid(
                request,
                "Invalid Attribute Value Length",
                format!(
                    "Attribute {} {}, got: {length}.",
                    request.path,
                    self.description()
                ),
            ));
        }
    }
}

/// String length (in characters) or collection size between `min` and `max`, inclusive.
pub fn length_between(min: usize, max: usize) -> impl Validator {
    Length {
        min: Some(min),
        max: Some(max),
    }
}

/// String length or collection size of at least `min`.
pub fn length_at_least(min: usize) -> impl Validator {
    Length {
        min: Some(min),
        max: None,
    }
}

/// String length or collection size of at most `max`.
pub fn length_at_most(max: usize) -> impl Validator {
    Length {
        min: None,
        max: Some(max),
    }
}

struct Matches {
    pattern: Regex,
    message: String,
}

impl Validator for Matches {
    fn description(&self) -> String {
        self.message.clone()
    }

    fn validate(&self, request: &ValidationRequest<'_>, diagnostics: &mut Diagnostics) {
        let Some(text) = request.value.as_str() else {
            return;
        };
        if !self.pattern.is_match(text) {
            diagnostics.push(invalid(
                request,
                "Invalid Attribute Value Match",
                format!(
                    "Attribute {} {}, got: {text:?}.",
                    request.path, self.message
                ),
            ));
        }
    }
}

/// The string must match `pattern`; `message` says in words what that means (it is what
/// users read, e.g. "must start with a letter and contain only lowercase letters, digits and
/// hyphens").
///
/// # Panics
/// When `pattern` is not a valid regular expression: a schema is built from constants, so a
/// bad pattern is a programming error that the schema's unit test catches.
pub fn regex(pattern: &str, message: impl Into<String>) -> impl Validator {
    Matches {
        pattern: Regex::new(pattern)
            .unwrap_or_else(|error| panic!("invalid validator pattern {pattern:?}: {error}")),
        message: message.into(),
    }
}

struct OneOf {
    allowed: Vec<String>,
}

impl Validator for OneOf {
    fn description(&self) -> String {
        let allowed: Vec<String> = self
            .allowed
            .iter()
            .map(|value| format!("{value:?}"))
            .collect();
        format!("value must be one of: {}", allowed.join(", "))
    }

    fn validate(&self, request: &ValidationRequest<'_>, diagnostics: &mut Diagnostics) {
        let Some(text) = request.value.as_str() else {
            return;
        };
        if !self.allowed.iter().any(|allowed| allowed == text) {
            diagnostics.push(invalid(
                request,
                "Invalid Attribute Value Match",
                format!(
                    "Attribute {} {}, got: {text:?}.",
                    request.path,
                    self.description()
                ),
            ));
        }
    }
}

/// The string must be one of `allowed`.
pub fn one_of(allowed: &[&str]) -> impl Validator {
    OneOf {
        allowed: allowed.iter().map(|value| (*value).to_owned()).collect(),
    }
}

struct IntBetween {
    min: i64,
    max: i64,
}

impl Validator for IntBetween {
    fn description(&self) -> String {
        format!(
            "value must be a whole number between {} and {}",
            self.min, self.max
        )
    }

    fn validate(&self, request: &ValidationRequest<'_>, diagnostics: &mut Diagnostics) {
        let Some(number) = request.value.as_number() else {
            return;
        };
        if !number
            .as_i64()
            .is_some_and(|value| (self.min..=self.max).contains(&value))
        {
            diagnostics.push(invalid(
                request,
                "Invalid Attribute Value",
                format!(
                    "Attribute {} {}, got: {number}.",
                    request.path,
                    self.description()
                ),
            ));
        }
    }
}

/// The number must be an integer between `min` and `max`, inclusive.
pub fn int_between(min: i64, max: i64) -> impl Validator {
    IntBetween { min, max }
}

struct NumberBetween {
    min: f64,
    max: f64,
}

impl Validator for NumberBetween {
    fn description(&self) -> String {
        format!("value must be between {} and {}", self.min, self.max)
    }

    fn validate(&self, request: &ValidationRequest<'_>, diagnostics: &mut Diagnostics) {
        let Some(number) = request.value.as_number() else {
            return;
        };
        if !(self.min..=self.max).contains(&number.as_f64()) {
            diagnostics.push(invalid(
                request,
                "Invalid Attribute Value",
                format!(
                    "Attribute {} {}, got: {number}.",
                    request.path,
                    self.description()
                ),
            ));
        }
    }
}

/// The number must be between `min` and `max`, inclusive.
pub fn number_between(min: f64, max: f64) -> impl Validator {
    NumberBetween { min, max }
}

struct EachElement {
    inner: Arc<dyn Validator>,
}

impl Validator for EachElement {
    fn description(&self) -> String {
        format!("each element: {}", self.inner.description())
    }

    fn validate(&self, request: &ValidationRequest<'_>, diagnostics: &mut Diagnostics) {
        let check = |path: AttributePath, element: &Value, diagnostics: &mut Diagnostics| {
            if element.is_null() || element.is_unknown() {
                return;
            }
            let element_request = ValidationRequest {
                path: &path,
                value: element,
                ..*request
            };
            self.inner.validate(&element_request, diagnostics);
        };
        match request.value.unwrap_dynamic() {
            Value::List(items) | Value::Tuple(items) => {
                for (index, element) in items.iter().enumerate() {
                    check(request.path.clone().index(index), element, diagnostics);
                }
            }
            // Terraform's attribute paths cannot name a set element; point at the set.
            Value::Set(items) => items
                .iter()
                .for_each(|element| check(request.path.clone(), element, diagnostics)),
            Value::Map(entries) => {
                for (key, element) in entries {
                    check(request.path.clone().key(key.clone()), element, diagnostics);
                }
            }
            _ => {}
        }
    }
}

/// Runs `inner` on every known, non-null element of a list, set, tuple or map.
pub fn each_element(inner: impl Validator) -> impl Validator {
    EachElement {
        inner: Arc::new(inner),
    }
}

struct ConflictsWith {
    names: Vec<String>,
}

impl Validator for ConflictsWith {
    fn description(&self) -> String {
        format!("conflicts with {}", quoted_list(&self.names))
    }

    fn validate(&self, request: &ValidationRequest<'_>, diagnostics: &mut Diagnostics) {
        for name in &self.names {
            if request.sibling_is_set(name) == Some(true) {
                diagnostics.push(invalid(
                    request,
                    "Invalid Attribute Combination",
                    format!(
                        "Attribute {} cannot be set together with `{name}`.",
                        request.path
                    ),
                ));
            }
        }
    }

    fn referenced_names(&self) -> Vec<String> {
        self.names.clone()
    }
}

/// When this attribute (or block) is set, none of the sibling `names` may be.
pub fn conflicts_with(names: &[&str]) -> impl Validator {
    ConflictsWith {
        names: names.iter().map(|name| (*name).to_owned()).collect(),
    }
}

struct AlsoRequires {
    names: Vec<String>,
}

impl Validator for AlsoRequires {
    fn description(&self) -> String {
        format!("requires {} to be set", quoted_list(&self.names))
    }

    fn validate(&self, request: &ValidationRequest<'_>, diagnostics: &mut Diagnostics) {
        for name in &self.names {
            if request.sibling_is_set(name) == Some(false) {
                diagnostics.push(invalid(
                    request,
                    "Invalid Attribute Combination",
                    format!(
                        "Attribute {} requires `{name}` to be set as well.",
                        request.path
                    ),
                ));
            }
        }
    }

    fn referenced_names(&self) -> Vec<String> {
        self.names.clone()
    }
}

/// When this attribute (or block) is set, every sibling in `names` must be set too.
pub fn also_requires(names: &[&str]) -> impl Validator {
    AlsoRequires {
        names: names.iter().map(|name| (*name).to_owned()).collect(),
    }
}

struct CountOf {
    names: Vec<String>,
    exactly_one: bool,
}

impl Validator for CountOf {
    fn description(&self) -> String {
        let quantity = if self.exactly_one {
            "exactly one"
        } else {
            "at least one"
        };
        format!("{quantity} of {} must be set", quoted_list(&self.names))
    }

    fn validate(&self, request: &ValidationRequest<'_>, diagnostics: &mut Diagnostics) {
        let states: Vec<Option<bool>> = self
            .names
            .iter()
            .map(|name| request.sibling_is_set(name))
            .collect();
        let set = states.iter().filter(|state| **state == Some(true)).count();
        let undecided = states.iter().any(Option::is_none);
        let detail = if set == 0 && !undecided {
            let quantity = if self.exactly_one {
                "Exactly one"
            } else {
                "At least one"
            };
            format!(
                "{quantity} of {} must be set; none is.",
                quoted_list(&self.names)
            )
        } else if self.exactly_one && set > 1 {
            format!(
                "Only one of {} may be set; {set} are.",
                quoted_list(&self.names)
            )
        } else {
            return;
        };
        diagnostics.push(invalid(request, "Invalid Attribute Combination", detail));
    }

    fn referenced_names(&self) -> Vec<String> {
        self.names.clone()
    }
}

/// Block-level: at least one of the attributes or nested blocks in `names` must be set.
/// Attach with [`Block::validator`](crate::schema::Block::validator), since it must also run
/// when every one of them is null.
pub fn at_least_one_of(names: &[&str]) -> impl Validator {
    CountOf {
        names: names.iter().map(|name| (*name).to_owned()).collect(),
        exactly_one: false,
    }
}

/// Block-level: exactly one of the attributes or nested blocks in `names` must be set.
/// Attach with [`Block::validator`](crate::schema::Block::validator).
pub fn exactly_one_of(names: &[&str]) -> impl Validator {
    CountOf {
        names: names.iter().map(|name| (*name).to_owned()).collect(),
        exactly_one: true,
    }
}

/// A validator written as a closure; `Err(detail)` becomes an "Invalid Attribute Value"
/// error at the value's path.
pub struct Custom<F> {
    description: String,
    check: F,
}

impl<F> Validator for Custom<F>
where
    F: Fn(&ValidationRequest<'_>) -> Result<(), String> + Send + Sync + 'static,
{
    fn description(&self) -> String {
        self.description.clone()
    }

    fn validate(&self, request: &ValidationRequest<'_>, diagnostics: &mut Diagnostics) {
        if let Err(detail) = (self.check)(request) {
            diagnostics.push(invalid(request, "Invalid Attribute Value", detail));
        }
    }
}

/// A validator from a description and a closure.
pub fn custom<F>(description: impl Into<String>, check: F) -> Custom<F>
where
    F: Fn(&ValidationRequest<'_>) -> Result<(), String> + Send + Sync + 'static,
{
    Custom {
        description: description.into(),
        check,
    }
}

/// Runs every validator of `block` over a configuration value, and warns about deprecated
/// attributes and blocks that are set. Unknown and null values are skipped.
pub(crate) fn validate_block(
    block: &Block,
    value: &Value,
    path: &AttributePath,
    diagnostics: &mut Diagnostics,
) {
    if value.is_null() || value.is_unknown() {
        return;
    }
    for validator in &block.validators {
        let request = ValidationRequest {
            path,
            value,
            parent: value,
            parent_block: block,
        };
        validator.validate(&request, diagnostics);
    }
    for attribute in &block.attributes {
        let attribute_path = path.clone().attribute(attribute.name.clone());
        let attribute_value = value.attribute(&attribute.name);
        if attribute_value.is_null() || attribute_value.is_unknown() {
            continue;
        }
        if let Some(message) = &attribute.deprecation {
            diagnostics.push(Diagnostic::attribute_warning(
                attribute_path.clone(),
                "Attribute Deprecated",
                message.clone(),
            ));
        }
        let request = ValidationRequest {
            path: &attribute_path,
            value: attribute_value,
            parent: value,
            parent_block: block,
        };
        for validator in &attribute.validators {
            validator.validate(&request, diagnostics);
        }
        if let crate::schema::AttributeKind::Nested(nested) = &attribute.kind {
            let inner = nested.as_block();
            for_each_object(attribute_value, &attribute_path, |element, element_path| {
                validate_block(&inner, element, &element_path, diagnostics);
            });
        }
    }
    for nested in &block.blocks {
        let block_path = path.clone().attribute(nested.type_name.clone());
        let block_value = value.attribute(&nested.type_name);
        if block_value.is_null() || block_value.is_unknown() {
            continue;
        }
        let present = block_value.length().is_some_and(|length| length > 0);
        if present {
            if let Some(message) = &nested.block.deprecation {
                diagnostics.push(Diagnostic::attribute_warning(
                    block_path.clone(),
                    "Block Deprecated",
                    message.clone(),
                ));
            }
            let request = ValidationRequest {
                path: &block_path,
                value: block_value,
                parent: value,
                parent_block: block,
            };
            for validator in &nested.validators {
                validator.validate(&request, diagnostics);
            }
        }
        for_each_object(block_value, &block_path, |element, element_path| {
            validate_block(&nested.block, element, &element_path, diagnostics);
        });
    }
}

/// Refuses write-only attributes set in configuration when Terraform cannot handle them
/// (before 1.11 it would store them in state like any other attribute).
pub(crate) fn refuse_write_only(
    block: &Block,
    value: &Value,
    path: &AttributePath,
    diagnostics: &mut Diagnostics,
) {
    if value.is_null() || value.is_unknown() {
        return;
    }
    for attribute in &block.attributes {
        let attribute_path = path.clone().attribute(attribute.name.clone());
        let attribute_value = value.attribute(&attribute.name);
        if attribute.write_only && !attribute_value.is_null() {
            diagnostics.push(Diagnostic::attribute_error(
                attribute_path.clone(),
                "Write-Only Attribute Not Allowed",
                format!(
                    "`{attribute_path}` is write-only, which this version of Terraform does not support: it would \
                     store the value in state. Use Terraform 1.11 or later, or leave it unset."
                ),
            ));
        }
        if let crate::schema::AttributeKind::Nested(nested) = &attribute.kind {
            let inner = nested.as_block();
            for_each_object(attribute_value, &attribute_path, |element, element_path| {
                refuse_write_only(&inner, element, &element_path, diagnostics);
            });
        }
    }
    for nested in &block.blocks {
        let block_path = path.clone().attribute(nested.type_name.clone());
        for_each_object(
            value.attribute(&nested.type_name),
            &block_path,
            |element, element_path| {
                refuse_write_only(&nested.block, element, &element_path, diagnostics);
            },
        );
    }
}

/// Calls `f` with each object of a nested value and its path: the value itself when it is an
/// object, else each element (set elements get the set's path, as Terraform's paths cannot
/// name them).
pub(crate) fn for_each_object(
    value: &Value,
    path: &AttributePath,
    mut f: impl FnMut(&Value, AttributePath),
) {
    match value.unwrap_dynamic() {
        Value::Object(_) => f(value, path.clone()),
        Value::List(items) => {
            for (index, item) in items.iter().enumerate() {
                f(item, path.clone().index(index));
            }
        }
        Value::Set(items) => items.iter().for_each(|item| f(item, path.clone())),
        Value::Map(entries) => {
            for (key, item) in entries {
                f(item, path.clone().key(key.clone()));
            }
        }
        _ => {}
    }
}
