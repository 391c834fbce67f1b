//! An in-process driver for unit-testing a provider's resources without Terraform.
//!
//! It plays Terraform's part: builds the proposed new state from prior state and
//! configuration, calls the same RPC handlers Terraform reaches over gRPC (with values going
//! through msgpack both ways, so encoding mistakes show up), and checks the rules Terraform
//! enforces: planned values match configuration, apply keeps every known planned value, and,
//! like terraform-plugin-testing, that planning again right after an apply is empty.
//!
//! ```no_run
//! # async fn example(provider: impl tfplugin::Provider) {
//! use tfplugin::testing::TestDriver;
//! use tfplugin::Value;
//!
//! let driver = TestDriver::new(provider).expect("schemas follow Terraform's rules");
//! let config = Value::object([("name", "demo".into())]);
//! let state = driver.create("example_thing", &config).await.expect("created");
//! let change = driver.plan("example_thing", &state, &config).await.expect("planned");
//! assert!(!change.changes(&state), "an unchanged configuration plans nothing");
//! # }
//! ```

use std::sync::Arc;

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::path::AttributePath;
use crate::proto::tfplugin6 as pb;
use crate::provider::Provider;
use crate::schema::{AttributeKind, Block, BlockNesting, ObjectNesting, Schema, SchemaError};
use crate::server::{ProviderServer, decode_dynamic, encode_dynamic};
use crate::value::Value;

/// The Terraform version the driver announces to `configure`.
pub const TERRAFORM_VERSION: &str = "1.11.4";

/// What Terraform 1.11 announces.
const TERRAFORM_CAPABILITIES: pb::ClientCapabilities = pb::ClientCapabilities {
    deferral_allowed: false,
    write_only_attributes_allowed: true,
};

/// A planned change, as Terraform would hold it between plan and apply.
#[derive(Clone, Debug)]
pub struct PlannedChange {
    /// The planned state (null for a destroy).
    pub planned: Value,
    /// Attributes whose change forces replacement.
    pub requires_replace: Vec<AttributePath>,
    /// Private bytes for apply.
    pub private: Vec<u8>,
    /// Warnings from planning.
    pub diagnostics: Diagnostics,
}

impl PlannedChange {
    /// Whether the plan changes anything compared with `prior` (what
    /// `terraform plan -detailed-exitcode` reports as 2).
    pub fn changes(&self, prior: &Value) -> bool {
        self.planned != *prior
    }

    /// Whether Terraform would destroy and recreate the resource.
    pub fn replaces(&self) -> bool {
        !self.requires_replace.is_empty()
    }
}

/// Drives one provider in-process.
pub struct TestDriver {
    server: ProviderServer,
}

fn decode_diagnostics(diagnostics: &[pb::Diagnostic]) -> Diagnostics {
    diagnostics
        .iter()
        .map(|diagnostic| {
            let severity = if diagnostic.severity == pb::diagnostic::Severity::Warning as i32 {
                crate::Severity::Warning
            } else {
                crate::Severity::Error
            };
            let attribute = diagnostic.attribute.as_ref().map(|path| {
                use pb::attribute_path::step::Selector;
                AttributePath::from_steps(
                    path.steps
                        .iter()
                        .filter_map(|step| match step.selector.as_ref()? {
                            Selector::AttributeName(name) => {
                                Some(crate::PathStep::Attribute(name.clone()))
                            }
                            Selector::ElementKeyString(key) => {
                                Some(crate::PathStep::Key(key.clone()))
                            }
                            Selector::ElementKeyInt(index) => Some(crate::PathStep::Index(*index)),
                        })
                        .collect(),
                )
            });
            Diagnostic {
                severity,
                summary: diagnostic.summary.clone(),
                detail: diagnostic.detail.clone(),
                attribute,
            }
        })
        .collect()
}

/// `Err` when any diagnostic is an error, so tests can use `?`/`expect` and still print
/// every problem.
fn checked(diagnostics: Diagnostics) -> Result<Diagnostics, Diagnostics> {
    if diagnostics.has_errors() {
        Err(diagnostics)
    } else {
        Ok(diagnostics)
    }
}

impl TestDriver {
    /// Wraps `provider`, checking every schema against Terraform's rules first.
    pub fn new(provider: impl Provider) -> Result<Self, SchemaError> {
        Ok(Self {
            server: ProviderServer::new(Arc::new(provider))?,
        })
    }

    /// The protocol-level server, for calling RPC handlers directly.
    pub fn server(&self) -> &ProviderServer {
        &self.server
    }

    fn schema(&self, type_name: &str) -> Result<&Schema, Diagnostics> {
        self.server
            .resource_schema(type_name)
            .ok_or_else(|| Diagnostic::error("Unknown Resource Type", type_name.to_owned()).into())
    }

    fn encode(&self, schema: &Schema, value: &Value) -> Result<pb::DynamicValue, Diagnostics> {
        encode_dynamic(value, &schema.value_type()).map_err(Diagnostics::from)
    }

    fn decode(
        &self,
        schema: &Schema,
        value: Option<&pb::DynamicValue>,
    ) -> Result<Value, Diagnostics> {
        decode_dynamic(value, &schema.value_type()).map_err(Diagnostics::from)
    }

    /// Validates and configures the provider, as every Terraform run starts.
    pub async fn configure(&self, config: &Value) -> Result<Diagnostics, Diagnostics> {
        let schema = self.server.provider_schema();
        let config = Some(self.encode(schema, &schema.block.normalize(config.clone()))?);
        let mut diagnostics = decode_diagnostics(
            &self
                .server
                .validate_provider_config(pb::validate_provider_config::Request {
                    config: config.clone(),
                })
                .diagnostics,
        );
        if diagnostics.has_errors() {
            return Err(diagnostics);
        }
        let request = pb::configure_provider::Request {
            terraform_version: TERRAFORM_VERSION.to_owned(),
            config,
            client_capabilities: Some(TERRAFORM_CAPABILITIES),
        };
        diagnostics.extend(decode_diagnostics(
            &self.server.configure_provider(request).await.diagnostics,
        ));
        checked(diagnostics)
    }

    /// ValidateResourceConfig for a configuration (missing attributes are null, as in HCL).
    pub fn validate(&self, type_name: &str, config: &Value) -> Diagnostics {
        let result = self.schema(type_name).and_then(|schema| {
            let config = Some(self.encode(schema, &schema.block.normalize(config.clone()))?);
            let request = pb::validate_resource_config::Request {
                type_name: type_name.to_owned(),
                config,
                client_capabilities: Some(TERRAFORM_CAPABILITIES),
            };
            Ok(decode_diagnostics(
                &self.server.validate_resource_config(request).diagnostics,
            ))
        });
        result.unwrap_or_else(|diagnostics| diagnostics)
    }

    /// Plans `config` against `prior` (null to create) the way Terraform does, and checks the
    /// plan obeys Terraform's rules.
    pub async fn plan(
        &self,
        type_name: &str,
        prior: &Value,
        config: &Value,
    ) -> Result<PlannedChange, Diagnostics> {
        let schema = self.schema(type_name)?;
        let config = schema.block.normalize(config.clone());
        let proposed = proposed_new(&schema.block, prior, &config);
        self.plan_proposed(type_name, prior, &proposed, &config, Vec::new())
            .await
    }

    async fn plan_proposed(
        &self,
        type_name: &str,
        prior: &Value,
        proposed: &Value,
        config: &Value,
        prior_private: Vec<u8>,
    ) -> Result<PlannedChange, Diagnostics> {
        let schema = self.schema(type_name)?;
        let request = pb::plan_resource_change::Request {
            type_name: type_name.to_owned(),
            prior_state: Some(self.encode(schema, prior)?),
            proposed_new_state: Some(self.encode(schema, proposed)?),
            config: Some(self.encode(schema, config)?),
            prior_private,
            ..Default::default()
        };
        let response = self.server.plan_resource_change(request).await;
        let mut diagnostics = checked(decode_diagnostics(&response.diagnostics))?;
        let planned = self.decode(schema, response.planned_state.as_ref())?;
        if !config.is_null() {
            check_plan_valid(
                &schema.block,
                &planned,
                config,
                &AttributePath::empty(),
                &mut diagnostics,
            );
        }
        let diagnostics = checked(diagnostics)?;
        let requires_replace = response
            .requires_replace
            .iter()
            .map(|path| {
                let proto = pb::Diagnostic {
                    attribute: Some(path.clone()),
                    ..Default::default()
                };
                decode_diagnostics(&[proto])
                    .into_iter()
                    .next()
                    .and_then(|diagnostic| diagnostic.attribute)
                    .unwrap_or_default()
            })
            .collect();
        Ok(PlannedChange {
            planned,
            requires_replace,
            private: response.planned_private,
            diagnostics,
        })
    }

    /// Applies a planned change and checks the result against the plan.
    pub async fn apply(
        &self,
        type_name: &str,
        prior: &Value,
        change: &PlannedChange,
        config: &Value,
    ) -> Result<Value, Diagnostics> {
        let schema = self.schema(type_name)?;
        let config = if change.planned.is_null() {
            Value::Null
        } else {
            schema.block.normalize(config.clone())
        };
        let request = pb::apply_resource_change::Request {
            type_name: type_name.to_owned(),
            prior_state: Some(self.encode(schema, prior)?),
            planned_state: Some(self.encode(schema, &change.planned)?),
            config: Some(self.encode(schema, &config)?),
            planned_private: change.private.clone(),
            provider_meta: None,
        };
        let response = self.server.apply_resource_change(request).await;
        checked(decode_diagnostics(&response.diagnostics))?;
        let state = self.decode(schema, response.new_state.as_ref())?;
        checked(crate::planning::check_apply_result(&change.planned, &state))?;
        Ok(state)
    }

    /// Validate, plan, apply and plan again (which must be empty) a new resource; returns its
    /// state.
    pub async fn create(&self, type_name: &str, config: &Value) -> Result<Value, Diagnostics> {
        self.apply_config(type_name, &Value::Null, config).await
    }

    /// Validate, plan, apply and plan again (which must be empty) a change of configuration;
    /// replacements are carried out as delete then create, as Terraform does by default.
    pub async fn update(
        &self,
        type_name: &str,
        state: &Value,
        config: &Value,
    ) -> Result<Value, Diagnostics> {
        self.apply_config(type_name, state, config).await
    }

    async fn apply_config(
        &self,
        type_name: &str,
        prior: &Value,
        config: &Value,
    ) -> Result<Value, Diagnostics> {
        checked(self.validate(type_name, config))?;
        let change = self.plan(type_name, prior, config).await?;
        let state = if change.replaces() {
            self.destroy(type_name, prior).await?;
            let change = self.plan(type_name, &Value::Null, config).await?;
            self.apply(type_name, &Value::Null, &change, config).await?
        } else if change.changes(prior) {
            self.apply(type_name, prior, &change, config).await?
        } else {
            prior.clone()
        };
        let again = self.plan(type_name, &state, config).await?;
        if again.changes(&state) {
            return Err(Diagnostic::error(
                "Plan Not Empty After Apply",
                format!("Planning the same configuration again after apply still changes it:\n  state: {state}\n  plan:  {}", again.planned),
            )
            .into());
        }
        Ok(state)
    }

    /// Refreshes a resource; `Ok(Value::Null)` means it is gone.
    pub async fn read(&self, type_name: &str, state: &Value) -> Result<Value, Diagnostics> {
        let schema = self.schema(type_name)?;
        let request = pb::read_resource::Request {
            type_name: type_name.to_owned(),
            current_state: Some(self.encode(schema, state)?),
            ..Default::default()
        };
        let response = self.server.read_resource(request).await;
        checked(decode_diagnostics(&response.diagnostics))?;
        self.decode(schema, response.new_state.as_ref())
    }

    /// Plans and applies a destroy.
    pub async fn destroy(&self, type_name: &str, state: &Value) -> Result<(), Diagnostics> {
        let change = PlannedChange {
            planned: Value::Null,
            requires_replace: Vec::new(),
            private: Vec::new(),
            diagnostics: Diagnostics::new(),
        };
        let remaining = self.apply(type_name, state, &change, &Value::Null).await?;
        if remaining.is_null() {
            Ok(())
        } else {
            Err(Diagnostic::error("Destroy Left State", remaining.to_string()).into())
        }
    }

    /// Imports by id and reads the result, as `terraform import` does; returns the states.
    pub async fn import(&self, type_name: &str, id: &str) -> Result<Vec<Value>, Diagnostics> {
        let request = pb::import_resource_state::Request {
            type_name: type_name.to_owned(),
            id: id.to_owned(),
            client_capabilities: None,
        };
        let response = self.server.import_resource_state(request).await;
        checked(decode_diagnostics(&response.diagnostics))?;
        let mut states = Vec::new();
        for imported in response.imported_resources {
            let schema = self.schema(&imported.type_name)?;
            let state = self.decode(schema, imported.state.as_ref())?;
            states.push(self.read(&imported.type_name, &state).await?);
        }
        Ok(states)
    }

    /// UpgradeResourceState with stored JSON written at schema `version`.
    pub fn upgrade(&self, type_name: &str, version: i64, json: &str) -> Result<Value, Diagnostics> {
        let schema = self.schema(type_name)?;
        let request = pb::upgrade_resource_state::Request {
            type_name: type_name.to_owned(),
            version,
            raw_state: Some(pb::RawState {
                json: json.as_bytes().to_vec(),
                flatmap: Default::default(),
            }),
        };
        let response = self.server.upgrade_resource_state(request);
        checked(decode_diagnostics(&response.diagnostics))?;
        self.decode(schema, response.upgraded_state.as_ref())
    }

    /// Validates and reads a data source.
    pub async fn read_data_source(
        &self,
        type_name: &str,
        config: &Value,
    ) -> Result<Value, Diagnostics> {
        let schema = self.server.data_source_schema(type_name).ok_or_else(|| {
            Diagnostics::from(Diagnostic::error(
                "Unknown Data Source Type",
                type_name.to_owned(),
            ))
        })?;
        let config = Some(self.encode(schema, &schema.block.normalize(config.clone()))?);
        let validation = pb::validate_data_resource_config::Request {
            type_name: type_name.to_owned(),
            config: config.clone(),
        };
        checked(decode_diagnostics(
            &self
                .server
                .validate_data_resource_config(validation)
                .diagnostics,
        ))?;
        let request = pb::read_data_source::Request {
            type_name: type_name.to_owned(),
            config,
            ..Default::default()
        };
        let response = self.server.read_data_source(request).await;
        checked(decode_diagnostics(&response.diagnostics))?;
        self.decode(schema, response.state.as_ref())
    }

    /// StopProvider: cancels in-flight operations.
    pub fn stop(&self) {
        self.server.stop();
    }
}

/// Terraform's proposed new state: configuration, with prior values kept for computed
/// attributes the configuration leaves null. Set elements are not matched to prior
/// elements (Terraform does so heuristically), so computed attributes inside nested sets
/// start null.
pub fn proposed_new(block: &Block, prior: &Value, config: &Value) -> Value {
    if config.is_null() || config.is_unknown() {
        return config.clone();
    }
    let Some(configured) = config.as_object() else {
        return config.clone();
    };
    let mut proposed = configured.clone();
    for attribute in &block.attributes {
        let config_value = config.attribute(&attribute.name);
        let prior_value = prior.attribute(&attribute.name);
        let value = if attribute.computed && config_value.is_null() {
            prior_value.clone()
        } else if let AttributeKind::Nested(nested) = &attribute.kind {
            let nesting = match nested.nesting {
                ObjectNesting::Single => BlockNesting::Single,
                ObjectNesting::List => BlockNesting::List,
                ObjectNesting::Set => BlockNesting::Set,
                ObjectNesting::Map => BlockNesting::Map,
            };
            proposed_nested(&nested.as_block(), nesting, prior_value, config_value)
        } else {
            config_value.clone()
        };
        proposed.insert(attribute.name.clone(), value);
    }
    for nested in &block.blocks {
        let value = proposed_nested(
            &nested.block,
            nested.nesting,
            prior.attribute(&nested.type_name),
            config.attribute(&nested.type_name),
        );
        proposed.insert(nested.type_name.clone(), value);
    }
    Value::Object(proposed)
}

fn proposed_nested(block: &Block, nesting: BlockNesting, prior: &Value, config: &Value) -> Value {
    match (nesting, config) {
        (_, Value::Null | Value::Unknown) => config.clone(),
        (BlockNesting::Single | BlockNesting::Group, _) => proposed_new(block, prior, config),
        (_, Value::List(items)) => Value::List(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    let prior_item = prior
                        .as_elements()
                        .and_then(|elements| elements.get(index))
                        .unwrap_or(&Value::Null);
                    proposed_new(block, prior_item, item)
                })
                .collect(),
        ),
        (_, Value::Set(items)) => Value::Set(
            items
                .iter()
                .map(|item| proposed_new(block, &Value::Null, item))
                .collect(),
        ),
        (_, Value::Map(entries)) => Value::Map(
            entries
                .iter()
                .map(|(key, item)| {
                    let prior_item = prior
                        .as_object()
                        .and_then(|entries| entries.get(key))
                        .unwrap_or(&Value::Null);
                    (key.clone(), proposed_new(block, prior_item, item))
                })
                .collect(),
        ),
        _ => config.clone(),
    }
}

/// Terraform's rule for plans: a value the user configured is planned unchanged (unknown
/// stays unknown); only computed attributes the configuration leaves null may differ.
fn check_plan_valid(
    block: &Block,
    planned: &Value,
    config: &Value,
    path: &AttributePath,
    diagnostics: &mut Diagnostics,
) {
    if !matches!(planned, Value::Object(_)) || !matches!(config, Value::Object(_)) {
        return;
    }
    for attribute in &block.attributes {
        let attribute_path = path.clone().attribute(attribute.name.clone());
        let (planned_value, config_value) = (
            planned.attribute(&attribute.name),
            config.attribute(&attribute.name),
        );
        if attribute.computed && config_value.is_null() {
            continue;
        }
        if let AttributeKind::Nested(nested) = &attribute.kind {
            check_nested(
                &nested.as_block(),
                planned_value,
                config_value,
                &attribute_path,
                diagnostics,
            );
            continue;
        }
        let expected = if attribute.write_only {
            &Value::Null
        } else {
            config_value
        };
        if planned_value != expected {
            diagnostics.push(Diagnostic::attribute_error(
                attribute_path,
                "Provider Produced Invalid Plan",
                format!("Configuration says {expected}, but the plan says {planned_value}; Terraform would reject this plan."),
            ));
        }
    }
    for nested in &block.blocks {
        let block_path = path.clone().attribute(nested.type_name.clone());
        let (planned_value, config_value) = (
            planned.attribute(&nested.type_name),
            config.attribute(&nested.type_name),
        );
        check_nested(
            &nested.block,
            planned_value,
            config_value,
            &block_path,
            diagnostics,
        );
    }
}

/// [`check_plan_valid`] for the objects of a nested attribute or block, matched by position
/// or key (set elements are only counted).
fn check_nested(
    block: &Block,
    planned: &Value,
    config: &Value,
    path: &AttributePath,
    diagnostics: &mut Diagnostics,
) {
    match (planned, config) {
        (Value::Object(_), Value::Object(_)) => check_plan_valid(block, planned, config, path, diagnostics),
        (Value::List(planned_items), Value::List(config_items)) if planned_items.len() == config_items.len() => {
            for (index, (planned_item, config_item)) in planned_items.iter().zip(config_items).enumerate() {
                check_plan_valid(block, planned_item, config_item, &path.clone().index(index), diagnostics);
            }
        }
        (Value::Map(planned_items), Value::Map(config_items)) if planned_items.keys().eq(config_items.keys()) => {
            for (key, planned_item) in planned_items {
                check_plan_valid(block, planned_item, &config_items[key], &path.clone().key(key.clone()), diagnostics);
            }
        }
        (Value::Set(planned_items), Value::Set(config_items)) if planned_items.len() == config_items.len() => {}
        (Value::Null, Value::Null) => {}
        (planned, config) if planned.is_unknown() && config.is_unknown() => {}
        _ => diagnostics.push(Diagnostic::attribute_error(
            path.clone(),
            "Provider Produced Invalid Plan",
            format!("Configuration says {config}, but the plan says {planned}; Terraform would reject this plan."),
        )),
    }
}
