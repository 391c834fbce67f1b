//! The Terraform plugin protocol (tfplugin6) for providers written in Rust.
//!
//! This crate is the protocol layer and nothing else; it knows no provider. It gives Rust
//! authors what terraform-plugin-go and terraform-plugin-framework give Go authors:
//!
//! - [`serve`]: go-plugin's handshake, real mutual TLS with Terraform's client certificate,
//!   the gRPC services (`tfplugin6.Provider`, `plugin.GRPCController`, health), prompt exit
//!   on Shutdown, and `--debug` mode printing `TF_REATTACH_PROVIDERS`;
//! - [`Value`] and [`Type`]: cty values with null and unknown, msgpack and JSON codecs, and
//!   serde conversion to and from your own structs ([`Value::to_typed`], [`Schema::to_value`],
//!   [`MaybeUnknown`]);
//! - [`Schema`]: attributes, nested attributes and blocks, flags, defaults,
//!   [`validator`]s, [`plan_modifier`]s, `timeouts` blocks, and a self-check of Terraform's
//!   schema rules that runs at start-up and in unit tests;
//! - the [`planning`] algorithm Terraform users expect (defaults, "known after apply" only
//!   when something changes, use-state-for-unknown, requires-replace);
//! - [`Provider`], [`Resource`] and [`DataSource`] traits whose operations return
//!   diagnostics with attribute paths, never `Err`;
//! - [`docs::render_schema`] for registry docs, [`testing::TestDriver`] for in-process
//!   tests, and [`logging`] in the hclog JSON format Terraform reads.
//!
//! # A minimal provider
//!
//! ```no_run
//! use std::process::ExitCode;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use serde::{Deserialize, Serialize};
//! use tfplugin::plan_modifier::{requires_replace, use_state_for_unknown};
//! use tfplugin::validator::{length_between, one_of};
//! use tfplugin::{
//!     ApplyResponse, Attribute, Block, Context, CreateRequest, DeleteRequest, Diagnostic, Diagnostics,
//!     Provider, ReadRequest, ReadResponse, Resource, Schema, ServeConfig, Timeouts, UpdateRequest,
//! };
//!
//! struct ExampleProvider;
//!
//! impl Provider for ExampleProvider {
//!     fn resources(&self) -> Vec<Arc<dyn Resource>> {
//!         vec![Arc::new(Bucket)]
//!     }
//! }
//!
//! struct Bucket;
//!
//! /// The resource as a struct: computed fields are `Option`s, filled in by create.
//! #[derive(Serialize, Deserialize)]
//! struct BucketModel {
//!     id: Option<String>,
//!     name: String,
//!     tier: String,
//! }
//!
//! #[tfplugin::async_trait]
//! impl Resource for Bucket {
//!     fn type_name(&self) -> &str {
//!         "example_bucket"
//!     }
//!
//!     fn schema(&self) -> Schema {
//!         Schema::new(
//!             Block::new()
//!                 .description("A storage bucket.")
//!                 .attribute(Attribute::string("id").computed().plan_modifier(use_state_for_unknown()))
//!                 .attribute(
//!                     Attribute::string("name")
//!                         .required()
//!                         .description("Bucket name.")
//!                         .validator(length_between(3, 63))
//!                         .plan_modifier(requires_replace()),
//!                 )
//!                 .attribute(
//!                     Attribute::string("tier")
//!                         .optional()
//!                         .computed()
//!                         .default("standard")
//!                         .validator(one_of(&["standard", "archive"])),
//!                 )
//!                 .timeouts(&["create", "delete"]),
//!         )
//!     }
//!
//!     async fn create(&self, context: &Context, request: CreateRequest) -> ApplyResponse {
//!         let timeout = match Timeouts::from_resource(&request.planned) {
//!             Ok(timeouts) => timeouts.create(Duration::from_secs(300)),
//!             Err(diagnostic) => return ApplyResponse::failed(diagnostic),
//!         };
//!         let mut bucket: BucketModel = match request.planned.unknowns_as_null().to_typed() {
//!             Ok(bucket) => bucket,
//!             Err(error) => return ApplyResponse::failed(Diagnostic::from(error)),
//!         };
//!         // ... call the API within `timeout`, giving up when `context.cancelled()` fires ...
//!         # let _ = (timeout, context);
//!         bucket.id = Some(format!("bucket-{}", bucket.name));
//!         // Keep the timeouts block the plan carries: apply returns every planned value.
//!         let mut state = match self.schema().to_value(&bucket) {
//!             Ok(state) => state,
//!             Err(diagnostic) => return ApplyResponse::failed(diagnostic),
//!         };
//!         *state.attribute_mut("timeouts").unwrap() = request.planned.attribute("timeouts").clone();
//!         ApplyResponse::with_state(state)
//!     }
//!
//!     async fn read(&self, _context: &Context, request: ReadRequest) -> ReadResponse {
//!         // Look the bucket up; `ReadResponse::gone()` if it was deleted behind Terraform's back.
//!         ReadResponse::found(request.state)
//!     }
//!
//!     async fn update(&self, _context: &Context, request: UpdateRequest) -> ApplyResponse {
//!         ApplyResponse::with_state(request.planned)
//!     }
//!
//!     async fn delete(&self, _context: &Context, _request: DeleteRequest) -> Diagnostics {
//!         Diagnostics::new()
//!     }
//! }
//!
//! fn main() -> ExitCode {
//!     tfplugin::serve(ExampleProvider, ServeConfig::new("registry.terraform.io/example/example"))
//! }
//! ```
//!
//! Test it in-process with [`testing::TestDriver`] (`create`, `update`, `plan`, `import`,
//! `destroy`, each checked against Terraform's rules), check its schemas with
//! [`testing::TestDriver::new`] in a unit test, and render its docs with
//! [`docs::render_schema`]. `examples/toy_provider.rs` is a complete provider that the
//! crate's end-to-end tests run under the real `terraform`.
//!
//! # Decisions worth knowing
//!
//! - Refined unknowns (msgpack extension 12) are accepted and read as plain unknowns; this
//!   crate never writes refinements, so nothing it plans promises more than "unknown" (see
//!   [`value`]).
//! - Unknown values reach typed structs only as [`MaybeUnknown`]; reading one into any other
//!   field is an error naming the attribute path.
//! - `plan_destroy` is announced only if some resource returns true from
//!   [`Resource::plan_destroy`]; `get_provider_schema_optional` is always on.
//! - Logging is off unless `TF_LOG_PROVIDER` or `TF_LOG` asks for it, as in Terraform's Go SDK
//!   (see [`logging`]).
//! - Under Terraform, SIGINT is ignored like go-plugin does (Terraform stops providers with
//!   StopProvider and Shutdown); SIGTERM exits. In `--debug` mode Ctrl-C exits.

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
