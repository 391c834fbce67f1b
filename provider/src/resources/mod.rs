//! The provider's resources.

pub mod pipeline;
pub mod runner;
