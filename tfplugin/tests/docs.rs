//! Registry-style docs rendered from a schema.

use tfplugin::docs::render_schema;

use crate::support::widget_schema;

#[test]
fn renders_groups_nested_sections_and_annotations() {
    let markdown = render_schema(&widget_schema());
    let expected_lines = [
        "## Schema",
        "Exactly one of `color`, `shade` must be set.",
        "### Required",
        "- `name` (String) Length must be between 1 and 20. Changing this value destroys and recreates the resource.",
        "### Optional",
        "- `size` (Number) Defaults to `3`.",
        "- `endpoint` (Attributes) (see [below for nested schema](#nestedatt--endpoint))",
        "- `rule` (Block List, Max: 3) (see [below for nested schema](#nestedblock--rule))",
        "- `timeouts` (Block, Optional) Custom timeouts for long-running operations. (see [below for nested schema](#nestedblock--timeouts))",
        "### Read-Only",
        "- `id` (String) Once set, the value of this attribute does not change.",
        "- `generation` (Number)",
        "<a id=\"nestedblock--rule\"></a>",
        "### Nested Schema for `rule`",
        "- `port` (Number)",
        "- `label` (String) Defaults to `\"web\"`.",
        "### Nested Schema for `endpoint`",
        "- `address` (String)",
    ];
    for line in expected_lines {
        assert!(
            markdown.lines().any(|candidate| candidate == line),
            "missing line {line:?} in:\n{markdown}"
        );
    }
    let required = markdown.find("### Required").unwrap();
    let optional = markdown.find("### Optional").unwrap();
    let read_only = markdown.find("### Read-Only").unwrap();
    assert!(required < optional && optional < read_only);
}

#[test]
fn marks_sensitive_write_only_and_deprecated() {
    use tfplugin::{Attribute, Block, Schema};
    let schema = Schema::new(
        Block::new()
            .attribute(
                Attribute::string("password")
                    .optional()
                    .sensitive()
                    .write_only()
                    .description("the password"),
            )
            .attribute(Attribute::bool("old").optional().deprecated("use `new`")),
    );
    let markdown = render_schema(&schema);
    assert!(markdown.contains("- `password` (String, Sensitive, Write-only) The password. Never stored in plan or state."), "{markdown}");
    assert!(
        markdown.contains("- `old` (Boolean, Deprecated) **Deprecated** Use `new`."),
        "{markdown}"
    );
}

#[test]
fn pages_have_front_matter_title_example_and_schema() {
    use tfplugin::docs::{PageKind, render_page};
    use tfplugin::{Attribute, Block, Schema};
    let schema = Schema::new(
        Block::new()
            .description("A bucket.\nStores things.")
            .attribute(Attribute::string("name").required()),
    );
    let page = render_page(
        PageKind::Resource,
        "example_bucket",
        &schema,
        Some("resource \"example_bucket\" \"b\" {\n  name = \"b\"\n}\n"),
    );
    assert!(page.starts_with("---\npage_title: \"example_bucket Resource\"\ndescription: |-\n  A bucket.\n  Stores things.\n---\n\n# example_bucket (Resource)\n\nA bucket.\nStores things.\n\n## Example Usage\n\n```terraform\nresource"), "{page}");
    assert!(
        page.contains("## Schema\n\n### Required\n\n- `name` (String)\n"),
        "{page}"
    );
}
