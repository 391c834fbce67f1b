//! Registry-style markdown for a schema, in the layout tfplugindocs produces, so provider docs
//! can be generated from the same schema Terraform sees and tested for staleness.
//!
//! Attributes are grouped as Required, Optional and Read-Only; nested attributes and blocks
//! get their own "Nested Schema" sections with anchors. Each entry shows its type, flags
//! (sensitive, write-only, deprecated), description, default, and the descriptions of its
//! validators and plan modifiers (which is where allowed values and "forces replacement"
//! come from).

use std::fmt::Write as _;

use crate::schema::{
    Attribute, AttributeKind, Block, BlockNesting, NestedBlock, ObjectNesting, Schema,
};

/// What a docs page describes; decides its title and folder conventions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageKind {
    /// `docs/index.md`.
    Provider,
    /// `docs/resources/<name>.md`.
    Resource,
    /// `docs/data-sources/<name>.md`.
    DataSource,
}

/// Renders a whole registry page: front matter, title, the schema's description, an optional
/// example (HCL, without fences), and the schema section. `name` is the resource or data
/// source type (or the provider's name), e.g. `streaming_runner`.
pub fn render_page(
    kind: PageKind,
    name: &str,
    schema: &Schema,
    example_hcl: Option<&str>,
) -> String {
    let label = match kind {
        PageKind::Provider => "Provider",
        PageKind::Resource => "Resource",
        PageKind::DataSource => "Data Source",
    };
    let description = schema
        .block
        .description
        .as_deref()
        .unwrap_or_default()
        .trim();
    let mut out = format!("---\npage_title: \"{name} {label}\"\ndescription: |-\n");
    for line in description.lines() {
        let _ = writeln!(out, "  {line}");
    }
    let _ = write!(out, "---\n\n# {name} ({label})\n\n");
    if !description.is_empty() {
        let _ = write!(out, "{description}\n\n");
    }
    if let Some(example) = example_hcl {
        let _ = write!(
            out,
            "## Example Usage\n\n```terraform\n{}\n```\n\n",
            example.trim_end()
        );
    }
    out.push_str(&render_schema(schema));
    out
}

/// Renders the `## Schema` section for a resource, data source or provider.
pub fn render_schema(schema: &Schema) -> String {
    let mut out = String::from("## Schema\n");
    let mut nested_sections = Vec::new();
    render_block(&schema.block, "", &mut out, &mut nested_sections, "###");
    while !nested_sections.is_empty() {
        let sections = std::mem::take(&mut nested_sections);
        for section in sections {
            let _ = write!(
                out,
                "\n<a id=\"{}\"></a>\n### Nested Schema for `{}`\n",
                section.anchor, section.path
            );
            render_block(
                &section.block,
                &section.path,
                &mut out,
                &mut nested_sections,
                "",
            );
        }
    }
    out
}

/// A nested schema section waiting to be rendered after the current level.
struct Section {
    anchor: String,
    path: String,
    block: Block,
}

fn sentence(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut sentence: String = first.to_uppercase().chain(chars).collect();
    if !sentence.ends_with(['.', '!', '?']) {
        sentence.push('.');
    }
    sentence
}

fn render_block(
    block: &Block,
    parent: &str,
    out: &mut String,
    sections: &mut Vec<Section>,
    heading: &str,
) {
    for validator in &block.validators {
        let _ = write!(out, "\n{}\n", sentence(&validator.description()));
    }
    let join = |name: &str| {
        if parent.is_empty() {
            name.to_owned()
        } else {
            format!("{parent}.{name}")
        }
    };
    let mut groups: [(&str, Vec<String>); 3] = [
        ("Required", Vec::new()),
        ("Optional", Vec::new()),
        ("Read-Only", Vec::new()),
    ];
    for attribute in &block.attributes {
        let group = if attribute.required {
            0
        } else if attribute.optional {
            1
        } else {
            2
        };
        let mut line = attribute_line(attribute);
        if let AttributeKind::Nested(nested) = &attribute.kind {
            let path = join(&attribute.name);
            let anchor = format!("nestedatt--{}", path.replace('.', "--"));
            let _ = write!(line, " (see [below for nested schema](#{anchor}))");
            sections.push(Section {
                anchor,
                path,
                block: nested.as_block(),
            });
        }
        groups[group].1.push(line);
    }
    for nested in &block.blocks {
        let path = join(&nested.type_name);
        let anchor = format!("nestedblock--{}", path.replace('.', "--"));
        let mut line = block_line(nested);
        let _ = write!(line, " (see [below for nested schema](#{anchor}))");
        groups[if nested.min_items > 0 { 0 } else { 1 }]
            .1
            .push(line);
        sections.push(Section {
            anchor,
            path,
            block: nested.block.clone(),
        });
    }
    for (title, lines) in groups {
        if lines.is_empty() {
            continue;
        }
        if heading.is_empty() {
            let _ = write!(out, "\n{title}:\n\n");
        } else {
            let _ = write!(out, "\n{heading} {title}\n\n");
        }
        for line in lines {
            let _ = writeln!(out, "- {line}");
        }
    }
}

fn attribute_line(attribute: &Attribute) -> String {
    let mut kind = match &attribute.kind {
        AttributeKind::Type(ty) => ty.friendly_name(),
        AttributeKind::Nested(nested) => match nested.nesting {
            ObjectNesting::Single => "Attributes".to_owned(),
            ObjectNesting::List => "Attributes List".to_owned(),
            ObjectNesting::Set => "Attributes Set".to_owned(),
            ObjectNesting::Map => "Attributes Map".to_owned(),
        },
    };
    if attribute.sensitive {
        kind.push_str(", Sensitive");
    }
    if attribute.write_only {
        kind.push_str(", Write-only");
    }
    if attribute.deprecation.is_some() {
        kind.push_str(", Deprecated");
    }
    let mut parts = Vec::new();
    if let Some(message) = &attribute.deprecation {
        parts.push(format!("**Deprecated** {}", sentence(message)));
    }
    if let Some(description) = &attribute.description {
        parts.push(sentence(description));
    }
    parts.extend(
        attribute
            .validators
            .iter()
            .map(|validator| sentence(&validator.description())),
    );
    if let Some(default) = &attribute.default {
        parts.push(format!("Defaults to `{default}`."));
    }
    parts.extend(
        attribute
            .plan_modifiers
            .iter()
            .map(|modifier| sentence(&modifier.description())),
    );
    if attribute.write_only {
        parts.push("Never stored in plan or state.".to_owned());
    }
    format!("`{}` ({kind}) {}", attribute.name, parts.join(" "))
        .trim_end()
        .to_owned()
}

fn block_line(nested: &NestedBlock) -> String {
    let mut kind = match nested.nesting {
        BlockNesting::Single | BlockNesting::Group => "Block".to_owned(),
        BlockNesting::List => "Block List".to_owned(),
        BlockNesting::Set => "Block Set".to_owned(),
        BlockNesting::Map => "Block Map".to_owned(),
    };
    if nested.nesting == BlockNesting::Single {
        kind.push_str(if nested.min_items > 0 {
            ", Required"
        } else {
            ", Optional"
        });
    } else {
        if nested.min_items > 0 {
            let _ = write!(kind, ", Min: {}", nested.min_items);
        }
        if nested.max_items > 0 {
            let _ = write!(kind, ", Max: {}", nested.max_items);
        }
    }
    if nested.block.deprecation.is_some() {
        kind.push_str(", Deprecated");
    }
    let mut parts = Vec::new();
    if let Some(message) = &nested.block.deprecation {
        parts.push(format!("**Deprecated** {}", sentence(message)));
    }
    if let Some(description) = &nested.block.description {
        parts.push(sentence(description));
    }
    parts.extend(
        nested
            .validators
            .iter()
            .map(|validator| sentence(&validator.description())),
    );
    parts.extend(
        nested
            .plan_modifiers
            .iter()
            .map(|modifier| sentence(&modifier.description())),
    );
    format!("`{}` ({kind}) {}", nested.type_name, parts.join(" "))
        .trim_end()
        .to_owned()
}
