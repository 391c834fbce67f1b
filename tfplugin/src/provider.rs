//! The traits a provider implements: [`Provider`], [`Resource`], [`DataSource`].
//!
//! Shaped like terraform-plugin-framework: every operation gets a request and returns a
//! response that carries diagnostics (never `Err`), and optional capabilities (validation,
//! plan modification, import, state upgrade) are default methods. Values are [`Value`]s
//! checked against the schema; convert them to structs with [`Value::to_typed`] and back with
//! [`Schema::to_value`].

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::path::AttributePath;
use crate::schema::{Block, Schema};
use crate::value::{Value, decode_json};

/// Whatever [`Provider::configure`] produced (an API client, say), shared with every resource
/// operation through [`Context::provider_data`].
pub type ProviderData = Arc<dyn Any + Send + Sync>;

/// What every resource and data source operation gets besides its request.
#[derive(Clone)]
pub struct Context {
    cancellation: CancellationToken,
    provider_data: Option<ProviderData>,
}

impl Context {
    /// A context; the server makes one per operation, tests may make their own.
    pub fn new(cancellation: CancellationToken, provider_data: Option<ProviderData>) -> Self {
        Self {
            cancellation,
            provider_data,
        }
    }

    /// Cancelled when Terraform sends StopProvider (the user pressed Ctrl-C): long waits
    /// should `select!` on [`Context::cancelled`] and return what they have.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancellation
    }

    /// Completes when the operation should stop.
    pub async fn cancelled(&self) {
        self.cancellation.cancelled().await;
    }

    /// Whether the operation should stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancellation.is_cancelled()
    }

    /// The data [`Provider::configure`] returned, as its concrete type. The error diagnostic
    /// covers the one legitimate way it can be missing: Terraform validating or planning
    /// before the provider's configuration is known.
    pub fn provider_data<T: Any + Send + Sync>(&self) -> Result<Arc<T>, Diagnostic> {
        let data = self.provider_data.clone().ok_or_else(|| {
            Diagnostic::error(
                "Provider Not Configured",
                "The provider has not been configured yet, typically because its configuration depends \
                 on values known only after apply. Apply the resources it depends on first.",
            )
        })?;
        data.downcast::<T>().map_err(|_| {
            Diagnostic::error(
                "Unexpected Provider Data",
                format!(
                    "The provider's configured data is not a {}. This is a bug in the provider.",
                    std::any::type_name::<T>()
                ),
            )
        })
    }
}

/// Feature flags Terraform announces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientCapabilities {
    /// Terraform can handle deferred changes.
    pub deferral_allowed: bool,
    /// Terraform supports write-only attributes (1.11+).
    pub write_only_attributes_allowed: bool,
}

/// The provider's configuration, once per run.
#[derive(Clone, Debug)]
pub struct ConfigureRequest {
    /// The `provider` block's value (may contain unknowns on a first plan).
    pub config: Value,
    /// The calling Terraform's version, e.g. "1.11.4".
    pub terraform_version: String,
    /// What the calling Terraform supports.
    pub client_capabilities: ClientCapabilities,
}

/// The outcome of configuring.
#[derive(Default)]
pub struct ConfigureResponse {
    /// Shared with every later operation via [`Context::provider_data`].
    pub provider_data: Option<ProviderData>,
    /// Problems with the configuration.
    pub diagnostics: Diagnostics,
}

/// A Terraform provider: its configuration schema, its resources and data sources.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The schema of the `provider` block. Default: no configuration.
    fn schema(&self) -> Schema {
        Schema::default()
    }

    /// Checks configuration beyond what the schema's validators express.
    fn validate(&self, _config: &Value, _diagnostics: &mut Diagnostics) {}

    /// Prepares for resource operations (e.g. builds an API client). Called once per
    /// Terraform run, and again for each run in `--debug` mode.
    async fn configure(&self, _request: ConfigureRequest) -> ConfigureResponse {
        ConfigureResponse::default()
    }

    /// Every managed resource type.
    fn resources(&self) -> Vec<Arc<dyn Resource>>;

    /// Every data source type. Default: none.
    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        Vec::new()
    }
}

/// The plan as the resource's [`Resource::modify_plan`] hook sees and changes it.
#[derive(Debug)]
pub struct ModifyPlan {
    /// Configuration (null when destroying).
    pub config: Value,
    /// Prior state (null when creating).
    pub prior: Value,
    /// The plan so far: set computed values you can predict, or leave them unknown.
    pub planned: Value,
    /// Attributes whose change forces replacement; add paths freely, since unchanged ones are
    /// dropped afterwards.
    pub requires_replace: Vec<AttributePath>,
    /// Private bytes travelling with the plan to apply.
    pub private: Vec<u8>,
    /// Problems found while planning.
    pub diagnostics: Diagnostics,
}

/// Creating a resource.
#[derive(Clone, Debug)]
pub struct CreateRequest {
    /// Configuration.
    pub config: Value,
    /// The plan: computed attributes may be unknown, everything else is what must be stored.
    /// `planned.unknowns_as_null().to_typed::<Model>()` reads it into a model whose computed
    /// fields are `Option`s.
    pub planned: Value,
    /// Private bytes from the plan.
    pub private: Vec<u8>,
}

/// Updating a resource in place.
#[derive(Clone, Debug)]
pub struct UpdateRequest {
    /// Configuration.
    pub config: Value,
    /// State before the update.
    pub prior: Value,
    /// The plan.
    pub planned: Value,
    /// Private bytes from the plan.
    pub private: Vec<u8>,
}

/// Deleting a resource.
#[derive(Clone, Debug)]
pub struct DeleteRequest {
    /// The state being destroyed.
    pub prior: Value,
    /// Private bytes from state.
    pub private: Vec<u8>,
}

/// The outcome of a create or update.
#[derive(Debug, Default)]
pub struct ApplyResponse {
    /// The new state: every known planned value unchanged, every unknown one filled in.
    /// On failure, leave it null (create: nothing was made; update: state is kept as it was)
    /// or set what exists, which Terraform then stores as tainted.
    pub state: Value,
    /// New private bytes; `None` keeps the plan's.
    pub private: Option<Vec<u8>>,
    /// Problems.
    pub diagnostics: Diagnostics,
}

impl ApplyResponse {
    /// A successful outcome with `state`.
    pub fn with_state(state: Value) -> Self {
        Self {
            state,
            ..Self::default()
        }
    }

    /// A failed outcome.
    pub fn failed(diagnostics: impl Into<Diagnostics>) -> Self {
        Self {
            diagnostics: diagnostics.into(),
            ..Self::default()
        }
    }
}

/// Refreshing a resource.
#[derive(Clone, Debug)]
pub struct ReadRequest {
    /// The current state.
    pub state: Value,
    /// Private bytes from state.
    pub private: Vec<u8>,
}

/// The outcome of a refresh.
#[derive(Debug, Default)]
pub struct ReadResponse {
    /// The object as it is now; null means it no longer exists and Terraform should plan to
    /// create it again.
    pub state: Value,
    /// New private bytes; `None` keeps the current ones.
    pub private: Option<Vec<u8>>,
    /// Problems.
    pub diagnostics: Diagnostics,
}

impl ReadResponse {
    /// The object exists and looks like `state`.
    pub fn found(state: Value) -> Self {
        Self {
            state,
            ..Self::default()
        }
    }

    /// The object is gone.
    pub fn gone() -> Self {
        Self::default()
    }

    /// Reading failed.
    pub fn failed(diagnostics: impl Into<Diagnostics>) -> Self {
        Self {
            diagnostics: diagnostics.into(),
            ..Self::default()
        }
    }
}

/// `terraform import` / an `import {}` block.
#[derive(Clone, Debug)]
pub struct ImportRequest {
    /// The id the user gave.
    pub id: String,
}

/// One imported object; Terraform reads it right after.
#[derive(Clone, Debug)]
pub struct ImportedResource {
    /// The resource type; `None` means the requested one.
    pub type_name: Option<String>,
    /// Enough state for [`Resource::read`] to find the object (usually just the id).
    pub state: Value,
    /// Private bytes.
    pub private: Vec<u8>,
}

/// The outcome of an import.
#[derive(Debug, Default)]
pub struct ImportResponse {
    /// The imported objects.
    pub resources: Vec<ImportedResource>,
    /// Problems (e.g. a malformed id: say which format is expected).
    pub diagnostics: Diagnostics,
}

impl ImportResponse {
    /// The common case: one object of the requested type whose state is the schema's null
    /// object with `attribute` set to the id; [`Resource::read`] fills in the rest.
    pub fn passthrough_id(schema: &Schema, attribute: &str, id: &str) -> Self {
        let mut state = schema.null_object();
        if let Some(slot) = state.attribute_mut(attribute) {
            *slot = Value::from(id);
        }
        Self {
            resources: vec![ImportedResource {
                type_name: None,
                state,
                private: Vec::new(),
            }],
            diagnostics: Diagnostics::new(),
        }
    }
}

/// A stored state to bring up to the current schema version.
#[derive(Clone, Debug)]
pub struct UpgradeStateRequest {
    /// The schema version the state was written with.
    pub version: i64,
    /// The state as Terraform stored it (JSON).
    pub raw_json: Vec<u8>,
}

impl UpgradeStateRequest {
    /// Decodes the stored JSON with the block of the version it was written with (keep old
    /// schema versions as functions for this). Attributes that block lacks are ignored.
    pub fn decode(&self, block: &Block) -> Result<Value, Diagnostic> {
        decode_json(&self.raw_json, &block.value_type())
            .map(|value| block.normalize(value))
            .map_err(|error| {
                Diagnostic::error(
                    "Unable to Read Stored State",
                    format!("The state stored for this resource (schema version {}) cannot be read: {error}.", self.version),
                )
            })
    }
}

/// The outcome of a state upgrade.
#[derive(Debug, Default)]
pub struct UpgradeStateResponse {
    /// The state in the current schema.
    pub state: Value,
    /// Problems.
    pub diagnostics: Diagnostics,
}

/// The default state upgrade: states of the current version are decoded with the current
/// schema (Terraform asks for this on every run); older versions need the resource's own
/// upgrader; newer ones come from a newer provider and cannot be read safely.
pub fn upgrade_current_version(
    schema: &Schema,
    request: &UpgradeStateRequest,
) -> UpgradeStateResponse {
    let outcome = if request.version == schema.version {
        request.decode(&schema.block)
    } else if request.version > schema.version {
        Err(Diagnostic::error(
            "State From a Newer Provider",
            format!(
                "This resource's state was written with schema version {}, but this provider only knows \
                 versions up to {}. Upgrade the provider.",
                request.version, schema.version
            ),
        ))
    } else {
        Err(Diagnostic::error(
            "Unable to Upgrade State",
            format!(
                "This resource's state uses schema version {}, and the provider has no upgrade from it to \
                 version {}. This is a bug in the provider.",
                request.version, schema.version
            ),
        ))
    };
    match outcome {
        Ok(state) => UpgradeStateResponse {
            state,
            diagnostics: Diagnostics::new(),
        },
        Err(diagnostic) => UpgradeStateResponse {
            state: Value::Null,
            diagnostics: diagnostic.into(),
        },
    }
}

/// A managed resource type.
#[async_trait]
pub trait Resource: Send + Sync + 'static {
    /// The full type name, e.g. `streaming_runner`.
    fn type_name(&self) -> &str;

    /// The schema; the server calls it once at start-up.
    fn schema(&self) -> Schema;

    /// Checks configuration beyond the schema's validators. Values may be unknown.
    fn validate(&self, _config: &Value, _diagnostics: &mut Diagnostics) {}

    /// Adjusts the plan after the framework's planning algorithm: set computed values that
    /// can be predicted, add requires-replace paths, or report problems only visible when
    /// planning. Default: nothing.
    async fn modify_plan(&self, _context: &Context, _plan: &mut ModifyPlan) {}

    /// Whether Terraform should call PlanResourceChange (and so [`Resource::modify_plan`],
    /// with a null `planned`) for destroys. Turning it on for any resource turns on the
    /// provider-wide `plan_destroy` capability; only resources that check something before
    /// a destroy need it.
    fn plan_destroy(&self) -> bool {
        false
    }

    /// Creates the object.
    async fn create(&self, context: &Context, request: CreateRequest) -> ApplyResponse;

    /// Reads the object; [`ReadResponse::gone`] when it no longer exists.
    async fn read(&self, context: &Context, request: ReadRequest) -> ReadResponse;

    /// Updates the object in place.
    async fn update(&self, context: &Context, request: UpdateRequest) -> ApplyResponse;

    /// Deletes the object; errors keep it in state.
    async fn delete(&self, context: &Context, request: DeleteRequest) -> Diagnostics;

    /// Imports an object by id. Default: not importable.
    async fn import(&self, _context: &Context, _request: ImportRequest) -> ImportResponse {
        ImportResponse {
            resources: Vec::new(),
            diagnostics: Diagnostic::error(
                "Import Not Supported",
                format!("The resource type {} cannot be imported.", self.type_name()),
            )
            .into(),
        }
    }

    /// Brings stored state up to `current`, the schema registered at start-up (passed in so
    /// that the many calls of a large plan do not rebuild it). Called for every resource in
    /// state on every run, usually with the current version. Default:
    /// [`upgrade_current_version`]; override to handle older versions (decode with
    /// [`UpgradeStateRequest::decode`] and the old block, then convert) and delegate the rest
    /// to the default.
    fn upgrade_state(
        &self,
        current: &Schema,
        request: UpgradeStateRequest,
    ) -> UpgradeStateResponse {
        upgrade_current_version(current, &request)
    }
}

/// Reading a data source.
#[derive(Clone, Debug)]
pub struct ReadDataRequest {
    /// Configuration; known (Terraform defers reads until it is).
    pub config: Value,
}

/// The outcome of reading a data source.
#[derive(Debug, Default)]
pub struct ReadDataResponse {
    /// The data source's value: configured attributes unchanged, computed ones filled in.
    pub state: Value,
    /// Problems.
    pub diagnostics: Diagnostics,
}

/// A data source type.
#[async_trait]
pub trait DataSource: Send + Sync + 'static {
    /// The full type name.
    fn type_name(&self) -> &str;

    /// The schema; called once at start-up.
    fn schema(&self) -> Schema;

    /// Checks configuration beyond the schema's validators. Values may be unknown.
    fn validate(&self, _config: &Value, _diagnostics: &mut Diagnostics) {}

    /// Reads the data.
    async fn read(&self, context: &Context, request: ReadDataRequest) -> ReadDataResponse;
}
