//! The registry docs (`docs/`), generated from templates and the live schemas, so every
//! attribute, default and allowed value in them is what Terraform sees. A test fails when the
//! committed docs are stale; `LAKESTREAM_UPDATE_DOCS=1 cargo test -p
//! terraform-provider-streaming docs` rewrites them.

use tfplugin::docs::render_schema;
use tfplugin::{Provider, Schema};

use crate::StreamingProvider;

/// A page: its path below `docs/` and its content.
pub struct Page {
    /// E.g. `resources/streaming_runner.md`.
    pub path: String,
    /// Markdown.
    pub content: String,
}

fn fill(template: &str, schema: &Schema) -> String {
    let rendered = if schema.block.attributes.is_empty() && schema.block.blocks.is_empty() {
        "## Schema\n\nThe provider block takes no arguments.\n".to_owned()
    } else {
        render_schema(schema)
    };
    template.replace("{{schema}}", rendered.trim_end())
}

/// Every page of the registry docs.
pub fn pages() -> Vec<Page> {
    let provider = StreamingProvider;
    let mut pages = vec![Page {
        path: "index.md".into(),
        content: fill(
            include_str!("../templates/index.md.tmpl"),
            &provider.schema(),
        ),
    }];
    let resource_templates = [
        (
            "streaming_runner",
            include_str!("../templates/resources/streaming_runner.md.tmpl"),
        ),
        (
            "streaming_pipeline",
            include_str!("../templates/resources/streaming_pipeline.md.tmpl"),
        ),
    ];
    for resource in provider.resources() {
        let template = resource_templates
            .iter()
            .find(|(name, _)| *name == resource.type_name())
            .unwrap_or_else(|| panic!("no docs template for resource {}", resource.type_name()));
        pages.push(Page {
            path: format!("resources/{}.md", resource.type_name()),
            content: fill(template.1, &resource.schema()),
        });
    }
    let data_source_templates = [
        (
            "streaming_runner",
            include_str!("../templates/data-sources/streaming_runner.md.tmpl"),
        ),
        (
            "streaming_pipeline_status",
            include_str!("../templates/data-sources/streaming_pipeline_status.md.tmpl"),
        ),
    ];
    for data_source in provider.data_sources() {
        let template = data_source_templates
            .iter()
            .find(|(name, _)| *name == data_source.type_name())
            .unwrap_or_else(|| {
                panic!(
                    "no docs template for data source {}",
                    data_source.type_name()
                )
            });
        pages.push(Page {
            path: format!("data-sources/{}.md", data_source.type_name()),
            content: fill(template.1, &data_source.schema()),
        });
    }
    pages
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn docs_are_current() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        let update = std::env::var_os("LAKESTREAM_UPDATE_DOCS").is_some();
        let mut stale = Vec::new();
        for page in pages() {
            let path = docs.join(&page.path);
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &page.content).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(page.content.as_str())
            {
                stale.push(page.path);
            }
        }
        assert!(
            stale.is_empty(),
            "docs are stale: {stale:?}; regenerate with LAKESTREAM_UPDATE_DOCS=1 cargo test -p terraform-provider-streaming docs"
        );
    }
}
