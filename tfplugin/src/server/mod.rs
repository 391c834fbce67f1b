//! The protocol-free core of the provider server: one handler per RPC (or RPC group), each
//! decoding its protocol request, calling the provider, and encoding the response.
//!
//! Nothing here touches sockets or gRPC, so every RPC is testable by calling the handler with
//! a protocol message (see [`crate::testing`]). The gRPC shell (the private `grpc` module) only
//! forwards.

mod apply;
mod configure;
mod convert;
mod data_source;
mod import;
mod plan;
mod read;
mod schema;
mod upgrade;
mod validate;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use tokio_util::sync::CancellationToken;

pub use convert::{decode_dynamic, encode_dynamic};

use crate::diagnostics::Diagnostic;
use crate::provider::{Context, DataSource, Provider, ProviderData, Resource};
use crate::schema::{Schema, SchemaError, SchemaKind};

/// A resource type with its schema, computed once.
struct RegisteredResource {
    resource: Arc<dyn Resource>,
    schema: Schema,
}

/// A data source type with its schema, computed once.
struct RegisteredDataSource {
    data_source: Arc<dyn DataSource>,
    schema: Schema,
}

/// What one Terraform run established: the configured provider data and the token that
/// StopProvider cancels.
#[derive(Default)]
struct RunState {
    provider_data: Option<ProviderData>,
    cancellation: CancellationToken,
}

/// Serves one provider: dispatches RPCs to its resources and data sources.
pub struct ProviderServer {
    provider: Arc<dyn Provider>,
    provider_schema: Schema,
    resources: BTreeMap<String, RegisteredResource>,
    data_sources: BTreeMap<String, RegisteredDataSource>,
    run: RwLock<RunState>,
}

impl ProviderServer {
    /// Collects the provider's schemas and checks every one against Terraform's rules, so a
    /// bad schema stops the provider at start-up (and fails its unit tests) instead of
    /// failing a user's plan.
    pub fn new(provider: Arc<dyn Provider>) -> Result<Self, SchemaError> {
        let mut problems = Vec::new();
        let provider_schema = provider.schema();
        collect(
            &mut problems,
            provider_schema.check(SchemaKind::Provider, "provider"),
        );
        let mut resources = BTreeMap::new();
        for resource in provider.resources() {
            let name = resource.type_name().to_owned();
            let schema = resource.schema();
            collect(&mut problems, check_type_name(&name));
            collect(&mut problems, schema.check(SchemaKind::Resource, &name));
            if resources
                .insert(name.clone(), RegisteredResource { resource, schema })
                .is_some()
            {
                problems.push(format!("{name}: two resources share this type name"));
            }
        }
        let mut data_sources = BTreeMap::new();
        for data_source in provider.data_sources() {
            let name = data_source.type_name().to_owned();
            let schema = data_source.schema();
            collect(&mut problems, check_type_name(&name));
            collect(
                &mut problems,
                schema.check(SchemaKind::DataSource, &format!("data.{name}")),
            );
            if data_sources
                .insert(
                    name.clone(),
                    RegisteredDataSource {
                        data_source,
                        schema,
                    },
                )
                .is_some()
            {
                problems.push(format!(
                    "data.{name}: two data sources share this type name"
                ));
            }
        }
        if !problems.is_empty() {
            return Err(SchemaError { problems });
        }
        Ok(Self {
            provider,
            provider_schema,
            resources,
            data_sources,
            run: RwLock::new(RunState::default()),
        })
    }

    /// The provider's configuration schema.
    pub fn provider_schema(&self) -> &Schema {
        &self.provider_schema
    }

    /// The schema of a resource type.
    pub fn resource_schema(&self, type_name: &str) -> Option<&Schema> {
        self.resources
            .get(type_name)
            .map(|registered| &registered.schema)
    }

    /// The schema of a data source type.
    pub fn data_source_schema(&self, type_name: &str) -> Option<&Schema> {
        self.data_sources
            .get(type_name)
            .map(|registered| &registered.schema)
    }

    /// Cancels every operation in flight and every later one of this run (StopProvider).
    pub fn stop(&self) {
        self.run
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .cancellation
            .cancel();
    }

    /// A context for one operation.
    fn context(&self) -> Context {
        let run = self
            .run
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Context::new(run.cancellation.clone(), run.provider_data.clone())
    }

    fn resource(&self, type_name: &str) -> Result<&RegisteredResource, Diagnostic> {
        self.resources
            .get(type_name)
            .ok_or_else(|| unknown_type("resource", type_name))
    }

    fn data_source(&self, type_name: &str) -> Result<&RegisteredDataSource, Diagnostic> {
        self.data_sources
            .get(type_name)
            .ok_or_else(|| unknown_type("data source", type_name))
    }
}

fn collect(problems: &mut Vec<String>, result: Result<(), SchemaError>) {
    if let Err(error) = result {
        problems.extend(error.problems);
    }
}

fn check_type_name(name: &str) -> Result<(), SchemaError> {
    if crate::schema::is_valid_name(name) && name.contains('_') {
        Ok(())
    } else {
        Err(SchemaError {
            problems: vec![format!(
                "{name}: type names are lowercase and start with the provider name and an underscore, e.g. example_thing"
            )],
        })
    }
}

fn unknown_type(kind: &str, type_name: &str) -> Diagnostic {
    let title: String = kind
        .split(' ')
        .map(|word| word[..1].to_uppercase() + &word[1..])
        .collect::<Vec<_>>()
        .join(" ");
    Diagnostic::error(
        format!("Unknown {title} Type"),
        format!(
            "This provider has no {kind} type {type_name:?}. This is a bug in Terraform or the provider."
        ),
    )
}
