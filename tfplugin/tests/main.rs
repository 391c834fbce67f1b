//! Integration tests of `tfplugin`, one module per area. The process and Terraform tests run
//! the example provider (`examples/toy_provider.rs`), which `cargo test` builds first.

mod docs;
mod driver;
mod msgpack;
mod planning;
mod process;
mod schema_check;
mod support;
mod terraform;
mod tls;
mod validators;
