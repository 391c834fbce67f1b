//! The Terraform plugin protocol layer (tfplugin6).

pub mod diagnostics;
pub mod docs;
mod grpc;
pub mod logging;
pub mod path;
pub mod plan_modifier;
pub mod planning;
pub mod provider;
pub mod schema;
mod serve;
pub mod server;
pub mod testing;
pub use serve::tls;
pub mod validator;
pub mod value;

/// Code generated from `proto/tfplugin6/*.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    /// The Terraform plugin protocol, version 6.8.
    pub mod tfplugin6 {
        tonic::include_proto!("tfplugin6");
    }
    /// go-plugin's controller service.
    pub mod plugin {
        tonic::include_proto!("plugin");
    }
}

/// Re-exported so providers implement the traits without a direct dependency.
pub use async_trait::async_trait;
pub use diagnostics::{Diagnostic, Diagnostics, Severity};
pub use path::{AttributePath, PathStep};
pub use provider::*;
pub use schema::{Attribute, Block, BlockNesting, NestedBlock, ObjectNesting, Schema, Timeouts};
pub use serve::{ServeConfig, serve};
pub use value::{MaybeUnknown, Number, Type, Value};
