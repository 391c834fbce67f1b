//! The in-process driver: full lifecycles through the RPC handlers, including the
//! resource's `modify_plan` hook, import, state upgrade and cancellation.

use tfplugin::testing::TestDriver;
use tfplugin::{AttributePath, Value};

use crate::support::{TestProvider, rule};

fn config(note: Option<&str>) -> Value {
    Value::object([
        ("name", "a".into()),
        ("color", "red".into()),
        ("note", note.map(Value::from).unwrap_or(Value::Null)),
        ("endpoint", Value::object([("host", "h".into())])),
        ("rule", Value::list([rule(80)])),
    ])
}

#[tokio::test]
async fn create_update_replace_import_destroy() {
    let driver = TestDriver::new(TestProvider::default()).expect("valid schemas");
    driver
        .configure(&Value::object::<&str>([]))
        .await
        .expect("configured");

    let state = driver
        .create("test_widget", &config(None))
        .await
        .expect("created");
    assert_eq!(state.attribute("id"), &Value::from("w-a"));
    assert_eq!(state.attribute("generation"), &Value::from(1));
    assert_eq!(
        state.attribute("endpoint").attribute("address"),
        &Value::from("10.0.0.1")
    );

    let mut with_port = config(None);
    *with_port.attribute_mut("rule").unwrap() = Value::list([rule(443)]);
    let change = driver
        .plan("test_widget", &state, &with_port)
        .await
        .unwrap();
    assert!(change.changes(&state) && !change.replaces());
    let state = driver
        .update("test_widget", &state, &with_port)
        .await
        .expect("updated in place");
    assert_eq!(state.attribute("generation"), &Value::from(2));

    // The hook asks for replacement on `note`; it only counts when note changes.
    let change = driver
        .plan("test_widget", &state, &config(Some("x")))
        .await
        .unwrap();
    assert_eq!(change.requires_replace, vec![AttributePath::root("note")]);

    let imported = driver.import("test_widget", "w-a").await.expect("imported");
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0].attribute("name"), &Value::from("a"));

    driver
        .destroy("test_widget", &state)
        .await
        .expect("destroyed");
    assert_eq!(
        driver.read("test_widget", &state).await.unwrap(),
        Value::Null,
        "gone after destroy"
    );
}

#[tokio::test]
async fn validation_runs_block_validators_with_paths() {
    let driver = TestDriver::new(TestProvider::default()).unwrap();
    let mut both = config(None);
    *both.attribute_mut("shade").unwrap() = "dark".into();
    let diagnostics = driver.validate("test_widget", &both);
    assert!(
        diagnostics
            .iter()
            .any(|d| d.detail.contains("Only one of `color`, `shade`")),
        "{diagnostics}"
    );
    let mut neither = config(None);
    *neither.attribute_mut("color").unwrap() = Value::Null;
    assert!(driver.validate("test_widget", &neither).has_errors());
    let mut unknown = config(None);
    *unknown.attribute_mut("color").unwrap() = Value::Unknown;
    assert!(
        driver.validate("test_widget", &unknown).is_empty(),
        "undecidable until apply"
    );
    let mut long = config(None);
    *long.attribute_mut("name").unwrap() = "x".repeat(30).into();
    let diagnostics = driver.validate("test_widget", &long);
    assert_eq!(
        diagnostics.iter().next().unwrap().attribute,
        Some(AttributePath::root("name"))
    );
    let mut bad_timeout = config(None);
    *bad_timeout.attribute_mut("timeouts").unwrap() = Value::object([("create", "soon".into())]);
    let diagnostics = driver.validate("test_widget", &bad_timeout);
    assert_eq!(
        diagnostics.iter().next().unwrap().attribute,
        Some(AttributePath::root("timeouts").attribute("create"))
    );
}

#[tokio::test]
async fn upgrade_decodes_current_state_and_refuses_newer() {
    let driver = TestDriver::new(TestProvider::default()).unwrap();
    let json = r#"{"id":"w-a","name":"a","size":3,"rule":[{"port":80,"label":"web"}],"dropped":1}"#;
    let state = driver
        .upgrade("test_widget", 0, json)
        .expect("current version decodes");
    assert_eq!(state.attribute("size"), &Value::from(3));
    assert_eq!(state.attribute("color"), &Value::Null);
    assert!(driver.upgrade("test_widget", 7, json).is_err());
}

#[tokio::test]
async fn stop_provider_cancels_operations_in_flight() {
    let driver = TestDriver::new(TestProvider::default()).unwrap();
    driver.configure(&Value::object::<&str>([])).await.unwrap();
    let started = std::time::Instant::now();
    let empty = Value::object::<&str>([]);
    let (created, stop) = tokio::join!(driver.create("test_sleeper", &empty), async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        driver.server().stop_provider(Default::default())
    });
    assert!(
        stop.error.is_empty(),
        "StopProvider answers with an empty error"
    );
    let diagnostics = created.unwrap_err();
    assert_eq!(diagnostics.iter().next().unwrap().summary, "Interrupted");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn state_upgrades_from_older_versions() {
    let driver = TestDriver::new(TestProvider::default()).unwrap();
    let state = driver
        .upgrade("test_versioned", 0, r#"{"id":"v","title":"old"}"#)
        .expect("upgraded");
    assert_eq!(
        state,
        Value::object([("id", "v".into()), ("label", "old".into())])
    );
    let current = driver
        .upgrade("test_versioned", 1, r#"{"id":"v","label":"new"}"#)
        .expect("current");
    assert_eq!(current.attribute("label"), &Value::from("new"));
    assert!(driver.upgrade("test_versioned", 0, "{not json").is_err());
}

#[tokio::test]
async fn data_sources_validate_and_read() {
    let driver = TestDriver::new(TestProvider::default()).unwrap();
    let state = driver
        .read_data_source("test_echo", &Value::object([("text", "héllo".into())]))
        .await
        .unwrap();
    assert_eq!(state.attribute("length"), &Value::from(5));
    let error = driver
        .read_data_source(
            "test_echo",
            &Value::object([("text", "far too long text".into())]),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.iter().next().unwrap().attribute,
        Some(AttributePath::root("text"))
    );
}

#[tokio::test]
async fn write_only_attributes_need_a_capable_terraform() {
    use tfplugin::proto::tfplugin6 as pb;
    let driver = TestDriver::new(TestProvider::default()).unwrap();
    let mut with_password = config(None);
    *with_password.attribute_mut("password").unwrap() = "hunter2".into();
    assert!(
        driver.validate("test_widget", &with_password).is_empty(),
        "Terraform 1.11 supports them"
    );

    let schema = driver.server().resource_schema("test_widget").unwrap();
    let encoded = tfplugin::server::encode_dynamic(
        &schema.block.normalize(with_password.clone()),
        &schema.value_type(),
    )
    .unwrap();
    let request = pb::validate_resource_config::Request {
        type_name: "test_widget".into(),
        config: Some(encoded),
        client_capabilities: None,
    };
    let response = driver.server().validate_resource_config(request);
    assert_eq!(response.diagnostics.len(), 1);
    assert_eq!(
        response.diagnostics[0].summary,
        "Write-Only Attribute Not Allowed"
    );

    // Never stored: planned and applied state hold null.
    let state = driver.create("test_widget", &with_password).await.unwrap();
    assert_eq!(state.attribute("password"), &Value::Null);
}
