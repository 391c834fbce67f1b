//! The shared spec rules ([`lakestream_spec::rules`] and friends) as Terraform validators, and
//! spec violations as diagnostics on the offending attribute. Validators wrap the rules one by
//! one, so `terraform validate` and the runner refuse exactly the same values.

use lakestream_spec::{FieldPath, PathStep, Violation};
use tfplugin::validator::{Validator, custom};
use tfplugin::{AttributePath, Diagnostic, Diagnostics};

/// A validator for string attributes from a spec rule; the rule's message becomes the detail.
pub fn string_rule<T: 'static>(
    description: &str,
    rule: fn(&str) -> Result<T, String>,
) -> impl Validator {
    custom(description.to_owned(), move |request| {
        match request.value.as_str() {
            Some(text) => rule(text)
                .map(drop)
                .map_err(|message| format!("{}: {message}", request.path)),
            None => Ok(()),
        }
    })
}

/// A validator for whole-number attributes from a spec rule.
pub fn number_rule<T: 'static>(
    description: &str,
    rule: fn(i64) -> Result<T, String>,
) -> impl Validator {
    custom(description.to_owned(), move |request| {
        match request.value.as_number() {
            Some(number) => match number.as_i64() {
                Some(value) => rule(value)
                    .map(drop)
                    .map_err(|message| format!("{}: {message}", request.path)),
                None => Err(format!(
                    "{}: {} is not a whole number",
                    request.path,
                    number.as_str()
                )),
            },
            None => Ok(()),
        }
    })
}

/// A spec field path as a Terraform attribute path (spec sub-objects are single-nested
/// blocks, so the steps are the same).
pub fn attribute_path(path: &FieldPath, under: &AttributePath) -> AttributePath {
    path.steps()
        .iter()
        .fold(under.clone(), |path, step| match step {
            PathStep::Field(name) => path.attribute(name.clone()),
            PathStep::Index(index) => path.index(*index),
            PathStep::Key(key) => path.key(key.clone()),
        })
}

/// Spec violations as error diagnostics on their attributes, worded like the validators'.
pub fn violations(violations: &[Violation], under: &AttributePath, diagnostics: &mut Diagnostics) {
    for violation in violations {
        let path = attribute_path(&violation.path, under);
        diagnostics.push(Diagnostic::attribute_error(
            path.clone(),
            "Invalid Attribute Value",
            format!("{path}: {}", violation.message),
        ));
    }
}
