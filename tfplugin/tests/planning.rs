//! The planning algorithm: empty plans for unchanged resources, unknowns only on change,
//! use-state-for-unknown, defaults, and requires-replace.

use tfplugin::planning::{plan_resource, retain_replacing_paths};
use tfplugin::testing::proposed_new;
use tfplugin::{AttributePath, Value};

use crate::support::widget_schema;

fn prior() -> Value {
    widget_schema().block.normalize(Value::object([
        ("id", "w-a".into()),
        ("name", "a".into()),
        ("size", 3.into()),
        ("generation", 1.into()),
        ("color", "red".into()),
        (
            "endpoint",
            Value::object([("host", "h".into()), ("address", "10.0.0.1".into())]),
        ),
        (
            "rule",
            Value::list([Value::object([
                ("port", 80.into()),
                ("label", "web".into()),
            ])]),
        ),
    ]))
}

fn config(changes: &[(&str, Value)]) -> Value {
    let mut config = widget_schema().block.normalize(Value::object([
        ("name", "a".into()),
        ("color", "red".into()),
        ("endpoint", Value::object([("host", "h".into())])),
        ("rule", Value::list([Value::object([("port", 80.into())])])),
    ]));
    for (name, value) in changes {
        *config.attribute_mut(name).unwrap() = value.clone();
    }
    widget_schema().block.normalize(config)
}

fn plan(prior: &Value, config: &Value) -> (Value, Vec<AttributePath>) {
    let schema = widget_schema();
    let proposed = proposed_new(&schema.block, prior, config);
    let outcome = plan_resource(&schema, prior, &proposed, config);
    assert!(outcome.diagnostics.is_empty(), "{}", outcome.diagnostics);
    let replace = retain_replacing_paths(prior, &outcome.planned, outcome.requires_replace);
    (outcome.planned, replace)
}

#[test]
fn unchanged_resource_plans_nothing() {
    let prior = prior();
    let (planned, replace) = plan(&prior, &config(&[]));
    assert_eq!(planned, prior);
    assert!(planned.is_wholly_known());
    assert!(replace.is_empty());
}

#[test]
fn create_marks_computed_unknown_and_applies_defaults() {
    let (planned, replace) = plan(&Value::Null, &config(&[]));
    assert_eq!(planned.attribute("id"), &Value::Unknown);
    assert_eq!(planned.attribute("generation"), &Value::Unknown);
    assert_eq!(
        planned.attribute("size"),
        &Value::from(3),
        "default for a null optional+computed attribute"
    );
    assert_eq!(
        planned.attribute("endpoint").attribute("address"),
        &Value::Unknown
    );
    assert_eq!(
        planned
            .attribute("rule")
            .get(&AttributePath::empty().index(0).attribute("label")),
        Some(&Value::from("web"))
    );
    assert_eq!(
        planned.attribute("note"),
        &Value::Null,
        "optional without computed stays as configured"
    );
    assert!(replace.is_empty(), "requires-replace is ignored on create");
}

#[test]
fn update_keeps_state_for_unknown_and_marks_the_rest() {
    let prior = prior();
    let (planned, replace) = plan(&prior, &config(&[("color", "blue".into())]));
    assert_eq!(planned.attribute("color"), &Value::from("blue"));
    assert_eq!(
        planned.attribute("id"),
        &Value::from("w-a"),
        "use-state-for-unknown"
    );
    assert_eq!(
        planned.attribute("generation"),
        &Value::Unknown,
        "computed, changed resource"
    );
    assert_eq!(
        planned.attribute("endpoint").attribute("address"),
        &Value::Unknown
    );
    assert_eq!(planned.attribute("size"), &Value::from(3));
    assert!(replace.is_empty());
}

#[test]
fn configured_values_beat_defaults() {
    let (planned, _) = plan(&prior(), &config(&[("size", 5.into())]));
    assert_eq!(planned.attribute("size"), &Value::from(5));
    let rule = Value::list([Value::object([
        ("port", 80.into()),
        ("label", "api".into()),
    ])]);
    let (planned, _) = plan(&prior(), &config(&[("rule", rule.clone())]));
    assert_eq!(planned.attribute("rule"), &rule);
}

#[test]
fn requires_replace_only_where_values_differ() {
    let (_, replace) = plan(&prior(), &config(&[("name", "b".into())]));
    assert_eq!(replace, vec![AttributePath::root("name")]);
    let (_, replace) = plan(&prior(), &config(&[("color", "blue".into())]));
    assert!(replace.is_empty(), "name is unchanged");
    let unknown_name = config(&[("name", Value::Unknown)]);
    let (planned, replace) = plan(&prior(), &unknown_name);
    assert_eq!(planned.attribute("name"), &Value::Unknown);
    assert_eq!(
        replace,
        vec![AttributePath::root("name")],
        "an unknown new value may differ"
    );
}

#[test]
fn retain_drops_duplicates_and_unchanged_paths() {
    let prior = Value::object([("a", 1.into()), ("b", 2.into())]);
    let planned = Value::object([("a", 1.into()), ("b", 3.into())]);
    let paths = vec![
        AttributePath::root("a"),
        AttributePath::root("b"),
        AttributePath::root("b"),
    ];
    assert_eq!(
        retain_replacing_paths(&prior, &planned, paths.clone()),
        vec![AttributePath::root("b")]
    );
    assert!(retain_replacing_paths(&Value::Null, &planned, paths).is_empty());
}
