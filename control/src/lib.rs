//! Object-store access shared by the Lakestream provider and runner.
//!
//! - [`store`]: opens an object store from a [`StoreUrl`](lakestream_spec::StoreUrl) and reads
//!   and writes JSON documents with versions, including compare-and-swap on local folders,
//!   which `object_store` cannot do by itself.
//! - [`runner`]: the typed client for one runner's documents in the control store.

pub mod runner;
pub mod store;

pub use runner::RunnerControl;
pub use store::{S3Access, Store, StoreError, Versioned, WriteMode};
