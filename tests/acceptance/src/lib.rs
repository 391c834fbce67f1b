//! Acceptance harness.
