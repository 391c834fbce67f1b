//! Shared test helpers: a test provider with an in-memory "API", Terraform-like client
//! certificates, and the example binary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, PKCS_ECDSA_P521_SHA512};
use tfplugin::plan_modifier::{requires_replace, use_state_for_unknown};
use tfplugin::validator::{exactly_one_of, length_between};
use tfplugin::{
    ApplyResponse, Attribute, Block, Context, CreateRequest, DeleteRequest, Diagnostics,
    ImportRequest, ImportResponse, MaybeUnknown, ModifyPlan, NestedBlock, ObjectNesting, Provider,
    ReadRequest, ReadResponse, Resource, Schema, UpdateRequest, Value,
};

/// A client certificate shaped like Terraform's: self-signed ECDSA P-521 with SHA-512 and
/// `CA:TRUE`. Returns (certificate PEM, certificate DER, key DER).
pub fn terraform_like_client_certificate() -> (String, Vec<u8>, Vec<u8>) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P521_SHA512).expect("P-521 key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "HashiCorp");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let certificate = params.self_signed(&key).expect("self-signed certificate");
    (
        certificate.pem(),
        certificate.der().to_vec(),
        key.serialize_der(),
    )
}

/// The example provider binary, built by `cargo test` (examples are built before tests run).
pub fn toy_provider_binary() -> PathBuf {
    let tests_binary = std::env::current_exe().expect("test binary path");
    let profile_dir = tests_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let binary = profile_dir.join("examples").join("toy_provider");
    assert!(
        binary.exists(),
        "{} is missing: run the tests with `cargo test -p tfplugin` (which builds examples), \
         or `cargo build -p tfplugin --examples` first",
        binary.display()
    );
    binary
}

/// `test_widget`: a resource exercising every planning feature, stored in memory.
#[derive(Default, Clone)]
pub struct WidgetResource {
    pub store: Arc<Mutex<BTreeMap<String, Value>>>,
}

pub fn widget_schema() -> Schema {
    Schema::new(
        Block::new()
            .attribute(
                Attribute::string("id")
                    .computed()
                    .plan_modifier(use_state_for_unknown()),
            )
            .attribute(
                Attribute::string("name")
                    .required()
                    .validator(length_between(1, 20))
                    .plan_modifier(requires_replace()),
            )
            .attribute(Attribute::number("size").optional().computed().default(3))
            .attribute(Attribute::string("note").optional())
            .attribute(Attribute::number("generation").computed())
            .attribute(Attribute::string("color").optional())
            .attribute(Attribute::string("shade").optional())
            .attribute(
                Attribute::string("password")
                    .optional()
                    .sensitive()
                    .write_only(),
            )
            .attribute(
                Attribute::nested(
                    "endpoint",
                    ObjectNesting::Single,
                    vec![
                        Attribute::string("host").required(),
                        Attribute::string("address").computed(),
                    ],
                )
                .optional(),
            )
            .block(
                NestedBlock::list(
                    "rule",
                    Block::new()
                        .attribute(Attribute::number("port").required())
                        .attribute(
                            Attribute::string("label")
                                .optional()
                                .computed()
                                .default("web"),
                        ),
                )
                .max_items(3),
            )
            .validator(exactly_one_of(&["color", "shade"]))
            .timeouts(&["create"]),
    )
}

#[tfplugin::async_trait]
impl Resource for WidgetResource {
    fn type_name(&self) -> &str {
        "test_widget"
    }

    fn schema(&self) -> Schema {
        widget_schema()
    }

    async fn modify_plan(&self, _context: &Context, plan: &mut ModifyPlan) {
        // A note change forces replacement, decided by the hook rather than the schema.
        plan.requires_replace
            .push(tfplugin::AttributePath::root("note"));
    }

    async fn create(&self, _context: &Context, request: CreateRequest) -> ApplyResponse {
        let mut state = request.planned.unknowns_as_null();
        let name = state
            .attribute("name")
            .as_str()
            .unwrap_or_default()
            .to_owned();
        *state.attribute_mut("id").unwrap() = Value::from(format!("w-{name}"));
        *state.attribute_mut("generation").unwrap() = Value::from(1);
        if let Some(Value::Object(endpoint)) = state.attribute_mut("endpoint") {
            endpoint.insert("address".into(), Value::from("10.0.0.1"));
        }
        self.store
            .lock()
            .unwrap()
            .insert(format!("w-{name}"), state.clone());
        ApplyResponse::with_state(state)
    }

    async fn read(&self, _context: &Context, request: ReadRequest) -> ReadResponse {
        let id = request
            .state
            .attribute("id")
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match self.store.lock().unwrap().get(&id) {
            Some(state) => ReadResponse::found(state.clone()),
            None => ReadResponse::gone(),
        }
    }

    async fn update(&self, _context: &Context, request: UpdateRequest) -> ApplyResponse {
        let generation: MaybeUnknown<Option<i64>> =
            request.prior.attribute("generation").to_typed().unwrap();
        let mut state = request.planned.unknowns_as_null();
        *state.attribute_mut("generation").unwrap() =
            Value::from(generation.known().flatten().unwrap_or(0) + 1);
        if let Some(Value::Object(endpoint)) = state.attribute_mut("endpoint") {
            endpoint.insert("address".into(), Value::from("10.0.0.2"));
        }
        let id = state
            .attribute("id")
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.store.lock().unwrap().insert(id, state.clone());
        ApplyResponse::with_state(state)
    }

    async fn delete(&self, _context: &Context, request: DeleteRequest) -> Diagnostics {
        let id = request
            .prior
            .attribute("id")
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.store.lock().unwrap().remove(&id);
        Diagnostics::new()
    }

    async fn import(&self, _context: &Context, request: ImportRequest) -> ImportResponse {
        ImportResponse::passthrough_id(&self.schema(), "id", &request.id)
    }
}

/// A provider with the widget resource.
#[derive(Default)]
pub struct TestProvider {
    pub widget: WidgetResource,
}

impl Provider for TestProvider {
    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        vec![
            Arc::new(self.widget.clone()),
            Arc::new(SleeperResource),
            Arc::new(VersionedResource),
        ]
    }

    fn data_sources(&self) -> Vec<Arc<dyn tfplugin::DataSource>> {
        vec![Arc::new(EchoDataSource)]
    }
}

/// `test_echo`: returns the length of its input.
pub struct EchoDataSource;

#[tfplugin::async_trait]
impl tfplugin::DataSource for EchoDataSource {
    fn type_name(&self) -> &str {
        "test_echo"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new()
                .attribute(
                    Attribute::string("text")
                        .required()
                        .validator(length_between(1, 10)),
                )
                .attribute(Attribute::number("length").computed()),
        )
    }

    async fn read(
        &self,
        _context: &Context,
        request: tfplugin::ReadDataRequest,
    ) -> tfplugin::ReadDataResponse {
        let text = request
            .config
            .attribute("text")
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut state = request.config;
        *state.attribute_mut("length").unwrap() = Value::from(text.chars().count() as i64);
        tfplugin::ReadDataResponse {
            state,
            diagnostics: Diagnostics::new(),
        }
    }
}

/// `test_versioned`: schema version 1 renamed `title` (version 0) to `label`.
pub struct VersionedResource;

impl VersionedResource {
    fn schema_v0() -> Block {
        Block::new()
            .attribute(Attribute::string("id").computed())
            .attribute(Attribute::string("title").required())
    }
}

#[tfplugin::async_trait]
impl Resource for VersionedResource {
    fn type_name(&self) -> &str {
        "test_versioned"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new()
                .attribute(Attribute::string("id").computed())
                .attribute(Attribute::string("label").required()),
        )
        .version(1)
    }

    fn upgrade_state(
        &self,
        current: &Schema,
        request: tfplugin::UpgradeStateRequest,
    ) -> tfplugin::UpgradeStateResponse {
        if request.version != 0 {
            return tfplugin::upgrade_current_version(current, &request);
        }
        match request.decode(&Self::schema_v0()) {
            Ok(old) => tfplugin::UpgradeStateResponse {
                state: Value::object([
                    ("id", old.attribute("id").clone()),
                    ("label", old.attribute("title").clone()),
                ]),
                diagnostics: Diagnostics::new(),
            },
            Err(diagnostic) => tfplugin::UpgradeStateResponse {
                state: Value::Null,
                diagnostics: diagnostic.into(),
            },
        }
    }

    async fn create(&self, _context: &Context, request: CreateRequest) -> ApplyResponse {
        ApplyResponse::with_state(request.planned.unknowns_as_null())
    }

    async fn read(&self, _context: &Context, request: ReadRequest) -> ReadResponse {
        ReadResponse::found(request.state)
    }

    async fn update(&self, _context: &Context, request: UpdateRequest) -> ApplyResponse {
        ApplyResponse::with_state(request.planned)
    }

    async fn delete(&self, _context: &Context, _request: DeleteRequest) -> Diagnostics {
        Diagnostics::new()
    }
}

/// `test_sleeper`: creation waits until the operation is cancelled (StopProvider).
pub struct SleeperResource;

#[tfplugin::async_trait]
impl Resource for SleeperResource {
    fn type_name(&self) -> &str {
        "test_sleeper"
    }

    fn schema(&self) -> Schema {
        Schema::new(Block::new().attribute(Attribute::string("id").computed()))
    }

    async fn create(&self, context: &Context, _request: CreateRequest) -> ApplyResponse {
        tokio::select! {
            () = context.cancelled() => ApplyResponse::failed(tfplugin::Diagnostic::error("Interrupted", "stopped")),
            () = tokio::time::sleep(std::time::Duration::from_secs(30)) => ApplyResponse::failed(tfplugin::Diagnostic::error("Not Interrupted", "")),
        }
    }

    async fn read(&self, _context: &Context, request: ReadRequest) -> ReadResponse {
        ReadResponse::found(request.state)
    }

    async fn update(&self, _context: &Context, request: UpdateRequest) -> ApplyResponse {
        ApplyResponse::with_state(request.planned)
    }

    async fn delete(&self, _context: &Context, _request: DeleteRequest) -> Diagnostics {
        Diagnostics::new()
    }
}

/// One `rule` block of the widget, as configuration.
pub fn rule(port: i64) -> Value {
    Value::object([("port", Value::from(port)), ("label", Value::Null)])
}
