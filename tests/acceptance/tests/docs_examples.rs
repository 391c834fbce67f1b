//! Every `terraform` example in the registry docs is valid configuration for this provider.

use std::collections::BTreeSet;
use std::path::Path;

use lakestream_acceptance::Workspace;
use regex::Regex;

fn examples(markdown: &str) -> Vec<String> {
    let fence = Regex::new(r"(?s)```terraform\n(.*?)```").unwrap();
    fence
        .captures_iter(markdown)
        .map(|c| c[1].to_owned())
        .collect()
}

/// Resources an example declares (`streaming_runner.local`) and references.
fn names(text: &str, pattern: &str) -> BTreeSet<String> {
    Regex::new(pattern)
        .unwrap()
        .captures_iter(text)
        .map(|c| format!("{}.{}", &c[1], &c[2]))
        .collect()
}

#[test]
fn every_docs_example_validates() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let index = std::fs::read_to_string(docs.join("index.md")).unwrap();
    let index_examples = examples(&index);
    let declared_pattern = r#"resource "(streaming_\w+)" "(\w+)""#;
    let referenced_pattern = r"\b(streaming_(?:runner|pipeline))\.(\w+)\b";
    let mut checked = 0;
    for page in [
        "index.md",
        "resources/streaming_runner.md",
        "resources/streaming_pipeline.md",
        "data-sources/streaming_runner.md",
        "data-sources/streaming_pipeline_status.md",
    ] {
        let markdown = std::fs::read_to_string(docs.join(page)).unwrap();
        let mut config: String = examples(&markdown).join("\n");
        // Add the index's declarations of resources the examples use but do not declare, until
        // nothing is missing (a pipeline brings its runner).
        loop {
            let missing: BTreeSet<String> = names(&config, referenced_pattern)
                .difference(&names(&config, declared_pattern))
                .cloned()
                .collect();
            let Some(context) = index_examples.iter().find(|c| {
                names(c, declared_pattern)
                    .iter()
                    .any(|name| missing.contains(name))
            }) else {
                break;
            };
            config.push('\n');
            config.push_str(&context.replace("terraform {\n  required_providers {\n    streaming = {\n      source = \"lakestream/streaming\"\n    }\n  }\n}\n", ""));
        }
        let workspace = Workspace::new();
        workspace.config(&config);
        let run = workspace.run(&["validate", "-no-color"]);
        assert_eq!(
            run.code, 0,
            "the examples of {page} do not validate:\n{}\n--- configuration\n{config}",
            run.stderr
        );
        checked += 1;
    }
    assert_eq!(checked, 5);
}

/// Every folder of `examples/terraform/` is a valid configuration (`terraform validate`).
#[test]
fn every_example_folder_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/terraform");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let workspace = Workspace::new();
        workspace.config(&Workspace::example(&name));
        let run = workspace.run(&["validate", "-no-color"]);
        assert_eq!(run.code, 0, "examples/terraform/{name}: {}", run.describe());
        checked.push(name);
    }
    for expected in ["local", "aws-fargate", "aws-eks"] {
        assert!(checked.iter().any(|name| name == expected), "{checked:?}");
    }
}
