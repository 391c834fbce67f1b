//! The schema self-check catches each of Terraform's rules.

use tfplugin::plan_modifier::requires_replace;
use tfplugin::schema::SchemaKind;
use tfplugin::testing::TestDriver;
use tfplugin::validator::{conflicts_with, exactly_one_of};
use tfplugin::{Attribute, Block, NestedBlock, ObjectNesting, Schema, Type, Value};

use crate::support::{TestProvider, widget_schema};

fn problems(block: Block, kind: SchemaKind) -> Vec<String> {
    match Schema::new(block).check(kind, "example_thing") {
        Ok(()) => Vec::new(),
        Err(error) => error.problems,
    }
}

fn assert_refused(block: Block, expected: &str) {
    let problems = problems(block, SchemaKind::Resource);
    assert!(
        problems.iter().any(|problem| problem.contains(expected)),
        "expected {expected:?} in {problems:?}"
    );
}

#[test]
fn valid_schemas_pass() {
    assert!(problems(widget_schema().block, SchemaKind::Resource).is_empty());
    assert!(TestDriver::new(TestProvider::default()).is_ok());
}

#[test]
fn flags() {
    assert_refused(
        Block::new().attribute(Attribute::string("a")),
        "must be required, optional or computed",
    );
    assert_refused(
        Block::new().attribute(Attribute::string("a").required().optional()),
        "both required and optional",
    );
    assert_refused(
        Block::new().attribute(Attribute::string("a").required().computed()),
        "both required and computed",
    );
    assert_refused(
        Block::new().attribute(Attribute::string("a").optional().computed().write_only()),
        "write-only attribute cannot be computed",
    );
    assert_refused(
        Block::new().block(NestedBlock::set(
            "s",
            Block::new().attribute(Attribute::string("a").optional().write_only()),
        )),
        "write-only attributes are not allowed inside sets",
    );
}

#[test]
fn names() {
    assert_refused(
        Block::new().attribute(Attribute::string("Name").optional()),
        "must match ^[a-z_][a-z0-9_]*$",
    );
    assert_refused(
        Block::new().attribute(Attribute::string("my-name").optional()),
        "must match",
    );
    assert_refused(
        Block::new().block(NestedBlock::list("Rule", Block::new())),
        "block type name must match",
    );
    assert_refused(
        Block::new()
            .attribute(Attribute::string("a").optional())
            .block(NestedBlock::list("a", Block::new())),
        "used twice",
    );
    for reserved in [
        "count",
        "for_each",
        "provider",
        "lifecycle",
        "depends_on",
        "connection",
        "provisioner",
    ] {
        assert_refused(
            Block::new().attribute(Attribute::string(reserved).optional()),
            "reserved name",
        );
    }
    let provider = problems(
        Block::new().attribute(Attribute::string("alias").optional()),
        SchemaKind::Provider,
    );
    assert!(provider.iter().any(|problem| problem.contains("reserved")));
    let data_source = problems(
        Block::new().attribute(Attribute::string("count").optional()),
        SchemaKind::DataSource,
    );
    assert!(
        data_source
            .iter()
            .any(|problem| problem.contains("reserved"))
    );
}

#[test]
fn defaults() {
    assert_refused(
        Block::new().attribute(Attribute::number("n").optional().default(1)),
        "must be computed",
    );
    assert_refused(
        Block::new().attribute(Attribute::number("n").optional().computed().default("x")),
        "default does not match",
    );
    assert_refused(
        Block::new().attribute(Attribute::string("s").optional().write_only().default("x")),
        "cannot have a default",
    );
}

#[test]
fn nesting() {
    assert_refused(
        Block::new().attribute(Attribute::nested("n", ObjectNesting::List, vec![]).optional()),
        "at least one attribute",
    );
    assert_refused(
        Block::new().attribute(
            Attribute::nested("n", ObjectNesting::Single, vec![Attribute::string("x")]).optional(),
        ),
        "n.x: must be required",
    );
    assert_refused(
        Block::new().block(NestedBlock::single("s", Block::new()).max_items(2)),
        "single block",
    );
    assert_refused(
        Block::new().block(NestedBlock::single("s", Block::new()).min_items(1)),
        "min_items and max_items must match",
    );
    assert!(
        problems(
            Block::new().block(
                NestedBlock::single("s", Block::new())
                    .min_items(1)
                    .max_items(1)
            ),
            SchemaKind::Resource
        )
        .is_empty(),
        "a required single block is both 1"
    );
    assert_refused(
        Block::new().block(NestedBlock::group("g", Block::new()).min_items(1)),
        "group and map",
    );
    assert_refused(
        Block::new().block(
            NestedBlock::list("l", Block::new())
                .min_items(3)
                .max_items(2),
        ),
        "min_items must not exceed",
    );
    assert_refused(
        Block::new().block(NestedBlock::list("l", Block::new()).min_items(-1)),
        "must not be negative",
    );
}

#[test]
fn validators_refer_to_siblings() {
    assert_refused(
        Block::new().attribute(
            Attribute::string("a")
                .optional()
                .validator(conflicts_with(&["missing"])),
        ),
        "refers to \"missing\"",
    );
    assert_refused(
        Block::new()
            .attribute(Attribute::string("a").optional())
            .validator(exactly_one_of(&["a", "b"])),
        "refers to \"b\"",
    );
}

#[test]
fn versions_and_type_names() {
    let versioned =
        Schema::new(Block::new().attribute(Attribute::string("a").optional())).version(1);
    assert!(versioned.check(SchemaKind::Resource, "x_y").is_ok());
    assert!(versioned.check(SchemaKind::DataSource, "x_y").is_err());

    struct Bad;
    #[tfplugin::async_trait]
    impl tfplugin::Resource for Bad {
        fn type_name(&self) -> &str {
            "NoUnderscore"
        }
        fn schema(&self) -> Schema {
            Schema::new(
                Block::new().attribute(
                    Attribute::new("a", Type::String)
                        .required()
                        .plan_modifier(requires_replace()),
                ),
            )
        }
        async fn create(
            &self,
            _: &tfplugin::Context,
            _: tfplugin::CreateRequest,
        ) -> tfplugin::ApplyResponse {
            tfplugin::ApplyResponse::with_state(Value::Null)
        }
        async fn read(
            &self,
            _: &tfplugin::Context,
            _: tfplugin::ReadRequest,
        ) -> tfplugin::ReadResponse {
            tfplugin::ReadResponse::gone()
        }
        async fn update(
            &self,
            _: &tfplugin::Context,
            _: tfplugin::UpdateRequest,
        ) -> tfplugin::ApplyResponse {
            tfplugin::ApplyResponse::with_state(Value::Null)
        }
        async fn delete(
            &self,
            _: &tfplugin::Context,
            _: tfplugin::DeleteRequest,
        ) -> tfplugin::Diagnostics {
            tfplugin::Diagnostics::new()
        }
    }
    struct BadProvider;
    impl tfplugin::Provider for BadProvider {
        fn resources(&self) -> Vec<std::sync::Arc<dyn tfplugin::Resource>> {
            vec![std::sync::Arc::new(Bad)]
        }
    }
    let error = TestDriver::new(BadProvider)
        .err()
        .expect("bad type name refused");
    assert!(error.to_string().contains("NoUnderscore"), "{error}");
}
