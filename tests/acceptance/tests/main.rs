//! Acceptance tests: the real `terraform` CLI against the built provider (and, for apply
//! flows, the real runner and a real PostgreSQL). One module per area.

mod aws;
mod docs_examples;
mod eks;
mod fargate;
mod local;
mod plan_validation;
mod provider_process;
