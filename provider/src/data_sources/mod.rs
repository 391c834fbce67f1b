//! The provider's data sources.

pub mod pipeline_status;
pub mod runner;
