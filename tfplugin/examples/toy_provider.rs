//! A small but complete provider, `example/toy`, used by this crate's end-to-end tests and as
//! a worked example: one resource, `toy_thing`, whose "remote API" is a folder of JSON files.
//!
//! Run by Terraform through `dev_overrides`, or by hand with `--debug`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tfplugin::plan_modifier::{requires_replace, use_state_for_unknown};
use tfplugin::validator::{
    conflicts_with, each_element, int_between, length_at_least, length_between, one_of, regex,
};
use tfplugin::{
    ApplyResponse, Attribute, Block, ConfigureRequest, ConfigureResponse, Context, CreateRequest,
    DeleteRequest, Diagnostic, Diagnostics, ImportRequest, ImportResponse, Provider, ReadRequest,
    ReadResponse, Resource, Schema, ServeConfig, Timeouts, Type, UpdateRequest, Value, serve,
};

fn main() -> ExitCode {
    serve(
        ToyProvider,
        ServeConfig::new("registry.terraform.io/example/toy"),
    )
}

/// The provider: configured with the folder that stands in for a remote API.
struct ToyProvider;

/// What `configure` hands to every operation.
struct ToyApi {
    folder: PathBuf,
}

#[tfplugin::async_trait]
impl Provider for ToyProvider {
    fn schema(&self) -> Schema {
        Schema::new(
            Block::new().attribute(
                Attribute::string("folder")
                    .required()
                    .description("Folder where things are stored, one JSON file each."),
            ),
        )
    }

    async fn configure(&self, request: ConfigureRequest) -> ConfigureResponse {
        let mut response = ConfigureResponse::default();
        match request.config.attribute("folder").as_str() {
            Some(folder) => {
                response.provider_data = Some(Arc::new(ToyApi {
                    folder: PathBuf::from(folder),
                }))
            }
            None => response.diagnostics.push(Diagnostic::error(
                "Folder Unknown",
                "`folder` must be known to configure the provider.",
            )),
        }
        response
    }

    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        vec![Arc::new(ThingResource)]
    }
}

/// `toy_thing`.
struct ThingResource;

/// The resource's state as a struct; the schema below is its Terraform shape.
#[derive(Debug, Serialize, Deserialize)]
struct Thing {
    id: Option<String>,
    name: String,
    size: i64,
    mode: Option<String>,
    legacy_mode: Option<bool>,
    tags: Option<BTreeMap<String, String>>,
    revision: Option<i64>,
    timeouts: Option<BTreeMap<String, Option<String>>>,
}

impl ThingResource {
    fn path(api: &ToyApi, id: &str) -> PathBuf {
        api.folder.join(format!("{id}.json"))
    }

    /// Stores `thing` and returns its state (write-only `secret` is never stored).
    async fn save(
        &self,
        context: &Context,
        thing: &Thing,
        deadline: Duration,
    ) -> Result<Value, Diagnostic> {
        let api = context.provider_data::<ToyApi>()?;
        let id = thing.id.as_deref().unwrap_or(&thing.name);
        let body = serde_json::to_vec_pretty(thing)
            .map_err(|error| Diagnostic::error("Encoding Failed", error.to_string()))?;
        let write = tokio::fs::write(Self::path(&api, id), body);
        tokio::select! {
            result = tokio::time::timeout(deadline, write) => match result {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(Diagnostic::error("Write Failed", error.to_string())),
                Err(_) => return Err(Diagnostic::error("Timed Out", format!("saving took longer than {deadline:?}"))),
            },
            () = context.cancelled() => return Err(Diagnostic::error("Interrupted", "Terraform asked the provider to stop.")),
        }
        self.schema().to_value(thing)
    }
}

#[tfplugin::async_trait]
impl Resource for ThingResource {
    fn type_name(&self) -> &str {
        "toy_thing"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new()
                .description("A thing, stored as a JSON file.")
                .attribute(
                    Attribute::string("id")
                        .computed()
                        .description("Identifier; equal to `name`.")
                        .plan_modifier(use_state_for_unknown()),
                )
                .attribute(
                    Attribute::string("name")
                        .required()
                        .description("Name of the thing.")
                        .validator(length_between(1, 32))
                        .validator(regex("^[a-z][a-z0-9-]*$", "must start with a lowercase letter and contain only lowercase letters, digits and hyphens"))
                        .plan_modifier(requires_replace()),
                )
                .attribute(Attribute::number("size").optional().computed().default(1).validator(int_between(1, 10)))
                .attribute(Attribute::string("mode").optional().validator(one_of(&["fast", "safe"])).validator(conflicts_with(&["legacy_mode"])))
                .attribute(Attribute::bool("legacy_mode").optional().deprecated("use `mode` instead"))
                .attribute(Attribute::map("tags", Type::String).optional().validator(each_element(length_at_least(1))))
                .attribute(Attribute::string("secret").optional().sensitive().write_only().description("Sent on every apply, never stored."))
                .attribute(Attribute::number("revision").computed().description("Counts updates."))
                .timeouts(&["create", "update", "delete"]),
        )
    }

    async fn create(&self, context: &Context, request: CreateRequest) -> ApplyResponse {
        let timeouts = match Timeouts::from_resource(&request.planned) {
            Ok(timeouts) => timeouts,
            Err(diagnostic) => return ApplyResponse::failed(diagnostic),
        };
        let mut thing: Thing = match request.planned.unknowns_as_null().to_typed() {
            Ok(thing) => thing,
            Err(error) => return ApplyResponse::failed(Diagnostic::from(error)),
        };
        thing.id = Some(thing.name.clone());
        thing.revision = Some(0);
        match self
            .save(context, &thing, timeouts.create(Duration::from_secs(60)))
            .await
        {
            Ok(state) => ApplyResponse::with_state(state),
            Err(diagnostic) => ApplyResponse::failed(diagnostic),
        }
    }

    async fn read(&self, context: &Context, request: ReadRequest) -> ReadResponse {
        let api = match context.provider_data::<ToyApi>() {
            Ok(api) => api,
            Err(diagnostic) => return ReadResponse::failed(diagnostic),
        };
        let Some(id) = request.state.attribute("id").as_str() else {
            return ReadResponse::gone();
        };
        let body = match tokio::fs::read(Self::path(&api, id)).await {
            Ok(body) => body,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return ReadResponse::gone();
            }
            Err(error) => {
                return ReadResponse::failed(Diagnostic::error("Read Failed", error.to_string()));
            }
        };
        let mut thing: Thing = match serde_json::from_slice(&body) {
            Ok(thing) => thing,
            Err(error) => {
                return ReadResponse::failed(Diagnostic::error("Corrupt Thing", error.to_string()));
            }
        };
        // Timeouts are configuration, not remote data: keep what state had.
        thing.timeouts = request
            .state
            .attribute("timeouts")
            .to_typed()
            .unwrap_or_default();
        match self.schema().to_value(&thing) {
            Ok(state) => ReadResponse::found(state),
            Err(diagnostic) => ReadResponse::failed(diagnostic),
        }
    }

    async fn update(&self, context: &Context, request: UpdateRequest) -> ApplyResponse {
        let timeouts = Timeouts::from_resource(&request.planned).unwrap_or_default();
        let (mut thing, prior): (Thing, Thing) = match (
            request.planned.unknowns_as_null().to_typed(),
            request.prior.to_typed(),
        ) {
            (Ok(thing), Ok(prior)) => (thing, prior),
            (Err(error), _) | (_, Err(error)) => {
                return ApplyResponse::failed(Diagnostic::from(error));
            }
        };
        thing.revision = Some(prior.revision.unwrap_or(0) + 1);
        match self
            .save(context, &thing, timeouts.update(Duration::from_secs(60)))
            .await
        {
            Ok(state) => ApplyResponse::with_state(state),
            Err(diagnostic) => ApplyResponse::failed(diagnostic),
        }
    }

    async fn delete(&self, context: &Context, request: DeleteRequest) -> Diagnostics {
        let api = match context.provider_data::<ToyApi>() {
            Ok(api) => api,
            Err(diagnostic) => return diagnostic.into(),
        };
        let Some(id) = request.prior.attribute("id").as_str() else {
            return Diagnostics::new();
        };
        match tokio::fs::remove_file(Self::path(&api, id)).await {
            Ok(()) => Diagnostics::new(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Diagnostics::new(),
            Err(error) => Diagnostic::error("Delete Failed", error.to_string()).into(),
        }
    }

    async fn import(&self, _context: &Context, request: ImportRequest) -> ImportResponse {
        ImportResponse::passthrough_id(&self.schema(), "id", &request.id)
    }
}
