//! The Lakestream runner: change data capture from a source database into object storage.
//!
//! Layers, bottom up: [`change`] (the in-memory change buffer that sources append to and sinks
//! read from), [`source`] (one module per database), and the pipeline and control loop above
//! them. See `ARCHITECTURE.md` at the repository root for the contracts between them.

pub mod change;
pub mod control;
pub mod metrics;
pub mod pipeline;
mod retire;
pub mod secret;
pub mod sink;
pub mod source;
