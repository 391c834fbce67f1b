//! Types shared by the Lakestream provider and runner.
//!
//! Everything here is plain data plus the rules that decide whether it is valid. The provider
//! calls these rules at plan time and the runner calls them before it runs anything, so a
//! configuration `terraform plan` accepts is one the runner can run. Nothing here does I/O.
//!
//! - [`rules`]: leaf rules (names, durations, sizes, identifiers, URLs) as functions that
//!   return a message naming what is allowed; provider validators wrap them one by one.
//! - [`pipeline`] / [`runner`]: the specs, each with a `validate()` that reports every
//!   violation with its field path.
//! - [`secret`]: references to secrets; a secret value never appears in a spec.
//! - [`store`]: object-store URLs for the control store and the lake.
//! - [`control`]: the control-store layout and its documents.

pub mod control;
pub mod duration;
pub mod path;
pub mod pipeline;
pub mod position;
pub mod rules;
pub mod runner;
pub mod secret;
pub mod size;
pub mod store;

pub use path::{FieldPath, PathStep, Violation};
pub use pipeline::PipelineSpec;
pub use position::Position;
pub use runner::RunnerSpec;
pub use secret::SecretRef;
pub use store::StoreUrl;

/// An error with its causes on one line, `message: cause: cause`, leaving out causes the text
/// already quotes: how the runner's status and the provider's diagnostics both report failures
/// whose useful part is deep in the chain (a TLS or DNS error under an HTTP error).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
