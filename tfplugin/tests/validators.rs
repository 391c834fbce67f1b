//! Each validator: what it accepts, what it refuses, the path its diagnostic carries, and the
//! description the docs show.

use tfplugin::validator::{
    ValidationRequest, Validator, also_requires, at_least_one_of, conflicts_with, custom,
    each_element, exactly_one_of, int_between, length_at_least, length_at_most, length_between,
    number_between, one_of, regex,
};
use tfplugin::{Attribute, AttributePath, Block, Diagnostics, Number, Value};

fn block() -> Block {
    Block::new()
        .attribute(Attribute::string("a").optional())
        .attribute(Attribute::string("b").optional())
        .block(tfplugin::NestedBlock::list(
            "rule",
            Block::new().attribute(Attribute::string("x").optional()),
        ))
        .block(tfplugin::NestedBlock::single(
            "local",
            Block::new().attribute(Attribute::string("y").optional()),
        ))
}

fn run(validator: &dyn Validator, value: Value, parent: &Value) -> Diagnostics {
    let path = AttributePath::root("a");
    let block = block();
    let request = ValidationRequest {
        path: &path,
        value: &value,
        parent,
        parent_block: &block,
    };
    let mut diagnostics = Diagnostics::new();
    validator.validate(&request, &mut diagnostics);
    diagnostics
}

fn ok(validator: &dyn Validator, value: Value) -> bool {
    run(validator, value, &Value::object::<&str>([])).is_empty()
}

#[test]
fn lengths() {
    let between = length_between(2, 3);
    assert!(ok(&between, "ab".into()) && ok(&between, "abc".into()));
    assert!(!ok(&between, "a".into()) && !ok(&between, "abcd".into()));
    assert!(ok(&between, "éé".into()), "characters, not bytes");
    assert!(ok(&between, Value::list(["x".into(), "y".into()])));
    assert!(!ok(&length_at_least(1), Value::map::<&str>([])));
    assert!(!ok(
        &length_at_most(1),
        Value::set(["x".into(), "y".into()])
    ));
    assert_eq!(between.description(), "length must be between 2 and 3");
    let diagnostics = run(&between, "a".into(), &Value::Null);
    assert_eq!(
        diagnostics.iter().next().unwrap().attribute,
        Some(AttributePath::root("a"))
    );
}

#[test]
fn regex_one_of_and_numbers() {
    let lowercase = regex("^[a-z]+$", "must be lowercase letters");
    assert!(ok(&lowercase, "abc".into()) && !ok(&lowercase, "Abc".into()));
    assert_eq!(lowercase.description(), "must be lowercase letters");
    let modes = one_of(&["fast", "safe"]);
    assert!(ok(&modes, "fast".into()) && !ok(&modes, "slow".into()));
    assert_eq!(
        modes.description(),
        r#"value must be one of: "fast", "safe""#
    );
    let ports = int_between(1, 65535);
    assert!(
        ok(&ports, 443.into())
            && !ok(&ports, 0.into())
            && !ok(&ports, Value::Number(Number::parse("80.5").unwrap()))
    );
    let ratio = number_between(0.0, 1.0);
    assert!(ok(&ratio, Value::Number(Number::parse("0.25").unwrap())) && !ok(&ratio, 2.into()));
}

#[test]
fn each_element_points_at_the_element() {
    let validator = each_element(length_at_least(2));
    let diagnostics = run(
        &validator,
        Value::list(["ok".into(), "x".into(), Value::Unknown]),
        &Value::Null,
    );
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(
        diagnostics.iter().next().unwrap().attribute,
        Some(AttributePath::root("a").index(1))
    );
    let diagnostics = run(&validator, Value::map([("k", "x".into())]), &Value::Null);
    assert_eq!(
        diagnostics.iter().next().unwrap().attribute,
        Some(AttributePath::root("a").key("k"))
    );
    assert_eq!(
        validator.description(),
        "each element: length must be at least 2"
    );
}

#[test]
fn combinations() {
    let both = Value::object([
        ("a", "1".into()),
        ("b", "2".into()),
        ("rule", Value::list([])),
    ]);
    let only_a = Value::object([
        ("a", "1".into()),
        ("b", Value::Null),
        ("rule", Value::list([])),
    ]);
    let b_unknown = Value::object([
        ("a", "1".into()),
        ("b", Value::Unknown),
        ("rule", Value::list([])),
    ]);
    let with_rule = Value::object([
        ("a", "1".into()),
        ("b", Value::Null),
        ("rule", Value::list([Value::object([("x", Value::Null)])])),
    ]);
    let neither = Value::object([
        ("a", Value::Null),
        ("b", Value::Null),
        ("rule", Value::list([])),
    ]);

    let conflicts = conflicts_with(&["b", "rule"]);
    assert!(!run(&conflicts, "1".into(), &both).is_empty());
    assert!(
        run(&conflicts, "1".into(), &only_a).is_empty(),
        "an empty block list is not set"
    );
    assert!(
        !run(&conflicts, "1".into(), &with_rule).is_empty(),
        "a written block is set"
    );
    assert!(
        run(&conflicts, "1".into(), &b_unknown).is_empty(),
        "unknown may turn out null"
    );

    let requires = also_requires(&["b"]);
    assert!(!run(&requires, "1".into(), &only_a).is_empty());
    assert!(run(&requires, "1".into(), &both).is_empty());

    let exactly = exactly_one_of(&["a", "b"]);
    assert!(!run(&exactly, both.clone(), &both).is_empty());
    assert!(run(&exactly, only_a.clone(), &only_a).is_empty());
    assert!(!run(&exactly, neither.clone(), &neither).is_empty());
    assert!(
        run(&exactly, b_unknown.clone(), &b_unknown).is_empty(),
        "undecided until b is known"
    );
    let at_least = at_least_one_of(&["b", "rule"]);
    assert!(run(&at_least, with_rule.clone(), &with_rule).is_empty());
    assert!(!run(&at_least, neither.clone(), &neither).is_empty());
    assert_eq!(exactly.description(), "exactly one of `a`, `b` must be set");

    // A single block is set when written, even with every attribute null (`local {}`).
    let only_one = exactly_one_of(&["local"]);
    let empty_local = Value::object([("local", Value::object([("y", Value::Null)]))]);
    assert!(run(&only_one, empty_local.clone(), &empty_local).is_empty());
    let no_local = Value::object([("local", Value::Null)]);
    assert!(!run(&only_one, no_local.clone(), &no_local).is_empty());
}

#[test]
fn custom_validators() {
    let even = custom("value must be even", |request| {
        match request.value.as_number().and_then(Number::as_i64) {
            Some(n) if n % 2 == 0 => Ok(()),
            _ => Err("Odd numbers are not allowed.".to_owned()),
        }
    });
    assert!(ok(&even, 2.into()));
    let diagnostics = run(&even, 3.into(), &Value::Null);
    assert_eq!(
        diagnostics.iter().next().unwrap().detail,
        "Odd numbers are not allowed."
    );
    assert_eq!(even.description(), "value must be even");
}
