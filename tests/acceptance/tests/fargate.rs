//! `streaming_runner` on ECS Fargate, through the real terraform against moto (ECS, IAM, Logs,
//! Secrets Manager, S3): the provider's calls are real SDK calls, and a stand-in scheduler runs
//! what the provider registered as a local runner process, so the task definition's
//! environment, the S3 control store and lake, and the Secrets Manager reference are all
//! exercised for real. A run against a real AWS account is gated on `TF_ACC_CLOUD=aws`.

use std::time::Duration;

use futures::TryStreamExt;
use lakestream_acceptance::fargate::{Scheduler, create_role, moto_config};
use lakestream_acceptance::{
    Workspace, apply_example_runner_for_real, assert_error, cloud_variable, real_cloud,
};
use lakestream_testkit::lake::replay;
use lakestream_testkit::moto::MotoServer;
use lakestream_testkit::postgres::PostgresServer;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::{Value, json};

const CLUSTER: &str = "lakestream";
const CONTROL_BUCKET: &str = "lakestream-control";
const LAKE_BUCKET: &str = "lakestream-lake";
const SECRET: &str = "lakestream/orders-db";

/// The configuration under test; `{…}` placeholders are filled by [`Cloud::config`].
const CONFIG: &str = r#"
variable "database" {
  type = object({ host = string, port = number, name = string, user = string })
}
variable "endpoint" { type = string }
variable "cpu" { type = number }
variable "memory" { type = number }
variable "cluster" { type = string }
variable "subnet" { type = string }
variable "security_group" { type = string }
variable "execution_role" {
  type    = string
  default = null
}

provider "streaming" {
  aws {
    region       = "us-east-1"
    default_tags = { team = "data", env = "test" }
    endpoints {
      ecs  = var.endpoint
      iam  = var.endpoint
      logs = var.endpoint
      sts  = var.endpoint
    }
  }
}

resource "streaming_runner" "orders" {
  name               = "orders on fargate"
  control_store      = "s3://lakestream-control/runners"
  heartbeat_interval = "1s"

  timeouts {
    create = "3m"
    update = "3m"
  }

  fargate {
    cluster            = var.cluster
    subnets            = [var.subnet]
    security_groups    = [var.security_group]
    cpu                = var.cpu
    memory             = var.memory
    execution_role_arn = var.execution_role
    log_retention_days = 7
  }
}

resource "streaming_pipeline" "orders" {
  name      = "orders"
  runner_id = streaming_runner.orders.id

  source {
    postgres {
      host     = var.database.host
      port     = var.database.port
      database = var.database.name
      user     = var.database.user
      password {
        type = "aws_secrets_manager"
        name = "lakestream/orders-db"
        key  = "password"
      }
      tables = ["public.orders"]
    }
  }

  target {
    uri            = "s3://lakestream-lake/cdc"
    format         = "parquet"
    flush_interval = "1s"
  }
}
"#;

/// moto with a cluster, the buckets and the database secret; a database with orders; the
/// stand-in scheduler; a workspace wired to all of them.
struct Cloud {
    moto: MotoServer,
    config: aws_config::SdkConfig,
    database: PostgresServer,
    workspace: Workspace,
    scheduler: Scheduler,
    network: (String, String),
}

impl Cloud {
    async fn new() -> Self {
        let moto = MotoServer::start().await.expect("moto starts");
        let config = moto_config(&moto).await;
        aws_sdk_ecs::Client::new(&config)
            .create_cluster()
            .cluster_name(CLUSTER)
            .send()
            .await
            .expect("cluster");
        moto.create_bucket(CONTROL_BUCKET).await.unwrap();
        moto.create_bucket(LAKE_BUCKET).await.unwrap();
        let database = PostgresServer::start().await.expect("PostgreSQL starts");
        database
            .execute(
                "CREATE TABLE orders (id int PRIMARY KEY, amount numeric(10,2) NOT NULL);
                 INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 100) g;",
            )
            .await
            .unwrap();
        aws_sdk_secretsmanager::Client::new(&config)
            .create_secret()
            .name(SECRET)
            .secret_string(
                json!({"username": "admin", "password": database.admin_password()}).to_string(),
            )
            .send()
            .await
            .expect("secret");
        let mut workspace = Workspace::new();
        for (key, value) in moto.env() {
            workspace.env(key, &value);
        }
        let scheduler = Scheduler::start(&moto, &config, CLUSTER);
        let network = moto.default_network().await.expect("moto's default VPC");
        Self {
            network,
            moto,
            config,
            database,
            workspace,
            scheduler,
        }
    }

    fn vars(&self, cpu: u32, memory: u32, cluster: &str) -> Value {
        json!({
            "database": {
                "host": self.database.host(),
                "port": self.database.port(),
                "name": self.database.database(),
                "user": self.database.admin_user(),
            },
            "endpoint": self.moto.endpoint(),
            "cpu": cpu,
            "memory": memory,
            "cluster": cluster,
            "subnet": self.network.0,
            "security_group": self.network.1,
        })
    }

    fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.config)
    }

    fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.config)
    }

    fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.config)
    }

    fn bucket(&self, bucket: &str) -> object_store::aws::AmazonS3 {
        Self::bucket_of(&self.moto, bucket)
    }

    fn bucket_of(moto: &MotoServer, bucket: &str) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(moto.endpoint())
            .with_region("us-east-1")
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .with_allow_http(true)
            .build()
            .unwrap()
    }

    /// Every object key in `bucket`.
    async fn keys(&self, bucket: &str) -> Vec<String> {
        Self::keys_of(&self.moto, bucket).await
    }

    async fn keys_of(moto: &MotoServer, bucket: &str) -> Vec<String> {
        Self::bucket_of(moto, bucket)
            .list(None)
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .unwrap()
    }

    /// Waits until the lake in S3 holds exactly the source's orders, once each.
    async fn lake_matches(&self) {
        let store = self.bucket(LAKE_BUCKET);
        let mut last = String::new();
        for _ in 0..120 {
            let copy = tempfile::tempdir().unwrap();
            for key in self.keys(LAKE_BUCKET).await {
                if let Some(relative) = key.strip_prefix("cdc/public.orders/") {
                    let bytes = store
                        .get(&key.as_str().into())
                        .await
                        .unwrap()
                        .bytes()
                        .await
                        .unwrap();
                    let path = copy.path().join(relative);
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(path, bytes).unwrap();
                }
            }
            let source = self.source_ids().await;
            match replay(copy.path(), "id") {
                Ok(replayed) => {
                    let ids: Vec<i64> = replayed
                        .rows
                        .iter()
                        .map(|r| r["id"].as_i64().unwrap())
                        .collect();
                    if ids == source {
                        assert_eq!(replayed.duplicates, 0, "duplicates in the lake");
                        return;
                    }
                    last = format!(
                        "{} rows in the lake, {} in the source",
                        ids.len(),
                        source.len()
                    );
                }
                Err(err) => last = err,
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!(
            "the S3 lake never matched the source ({last}); runner log:\n{}",
            self.scheduler.log(&self.service_name())
        );
    }

    async fn source_ids(&self) -> Vec<i64> {
        let client = self.database.client().await.unwrap();
        let rows = client
            .query("SELECT id::int8 FROM orders ORDER BY id::text", &[])
            .await
            .unwrap();
        rows.iter().map(|row| row.get::<_, i64>(0)).collect()
    }

    fn runner(&self) -> Value {
        self.workspace.resource("streaming_runner.orders")
    }

    fn service_name(&self) -> String {
        format!(
            "lakestream-{}",
            self.runner()["runner_id"].as_str().unwrap_or_default()
        )
    }

    /// What the provider created that still exists in moto: active services and task
    /// definitions, roles, log groups (names), and control-store objects.
    async fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        let ecs = self.ecs();
        let services = ecs.list_services().cluster(CLUSTER).send().await.unwrap();
        if !services.service_arns().is_empty() {
            let described = ecs
                .describe_services()
                .cluster(CLUSTER)
                .set_services(Some(services.service_arns().to_vec()))
                .send()
                .await
                .unwrap();
            left.extend(
                described
                    .services()
                    .iter()
                    .filter(|s| s.status() != Some("INACTIVE"))
                    .map(|s| format!("service {}", s.service_name().unwrap_or_default())),
            );
        }
        let definitions = ecs.list_task_definitions().send().await.unwrap();
        left.extend(
            definitions
                .task_definition_arns()
                .iter()
                .map(|arn| format!("task definition {arn}")),
        );
        let roles = self.iam().list_roles().send().await.unwrap();
        left.extend(
            roles
                .roles()
                .iter()
                .filter(|r| r.role_name().starts_with("lakestream"))
                .map(|r| format!("role {}", r.role_name())),
        );
        let groups = self.logs().describe_log_groups().send().await.unwrap();
        left.extend(
            groups
                .log_groups()
                .iter()
                .filter_map(|g| g.log_group_name())
                .filter(|name| name.contains("lakestream"))
                .map(|name| format!("log group {name}")),
        );
        left.extend(
            self.keys(CONTROL_BUCKET)
                .await
                .into_iter()
                .map(|key| format!("control-store object {key}")),
        );
        left
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fargate_runner_and_s3_pipeline_through_their_lifecycle_against_moto() {
    let cloud = Cloud::new().await;
    let workspace = &cloud.workspace;
    workspace.config(CONFIG).vars(cloud.vars(256, 512, CLUSTER));

    // Create: the service runs, the simulated task heartbeats through the S3 control store,
    // the pipeline reads its password from Secrets Manager and lands rows in the S3 lake.
    workspace.apply();
    let runner = cloud.runner();
    assert_eq!(runner["status"], "running", "{runner:#}");
    let fargate = &runner["fargate"];
    let service = cloud.service_name();
    let first_revision = fargate["task_definition_arn"].as_str().unwrap().to_owned();
    assert!(first_revision.ends_with(":1"), "{first_revision}");
    cloud.lake_matches().await;
    cloud
        .database
        .execute("INSERT INTO orders SELECT g, g FROM generate_series(101, 150) g; DELETE FROM orders WHERE id <= 10")
        .await
        .unwrap();
    cloud.lake_matches().await;

    // What was created, as AWS would hold it.
    let ecs = cloud.ecs();
    let described = ecs
        .describe_services()
        .cluster(CLUSTER)
        .services(&service)
        .send()
        .await
        .unwrap();
    // (moto does not keep a service's deploymentConfiguration; the minimum 0 / maximum 100
    // that keeps two tasks off one slot is checked by the provider's unit tests.)
    let live = &described.services()[0];
    assert_eq!(live.launch_type().map(|t| t.as_str()), Some("FARGATE"));
    let definition = ecs
        .describe_task_definition()
        .task_definition(&first_revision)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    let task = definition.task_definition().unwrap();
    assert_eq!((task.cpu(), task.memory()), (Some("256"), Some("512")));
    let tags: Vec<(String, String)> = definition
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(tags.contains(&("team".into(), "data".into())), "{tags:?}");
    let task_role = task
        .task_role_arn()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let iam = cloud.iam();
    let policies = iam
        .list_role_policies()
        .role_name(&task_role)
        .send()
        .await
        .unwrap();
    let mut names = policies.policy_names().to_vec();
    names.sort();
    assert_eq!(names, ["lakestream-control-store", "lakestream-pipeline"]);
    let pipeline_policy = iam
        .get_role_policy()
        .role_name(&task_role)
        .policy_name("lakestream-pipeline")
        .send()
        .await
        .unwrap();
    let document = urlencoding_decode(pipeline_policy.policy_document());
    assert!(
        document.contains("arn:aws:s3:::lakestream-lake/cdc/*"),
        "{document}"
    );
    assert!(
        document.contains("secret:lakestream/orders-db-??????"),
        "{document}"
    );
    assert!(!document.contains("lakestream-control"), "{document}");
    let groups = cloud.logs().describe_log_groups().send().await.unwrap();
    let group = groups
        .log_groups()
        .iter()
        .find(|g| Some(g.log_group_name().unwrap_or_default()) == fargate["log_group"].as_str())
        .expect("the log group exists");
    assert_eq!(group.retention_in_days(), Some(7));

    // Resize: a new task-definition revision and a service update, not a replacement; the
    // previous revision is deregistered and the task restarts on the new one.
    workspace.vars(cloud.vars(512, 1024, CLUSTER));
    let actions = workspace.planned_actions();
    assert_eq!(
        actions.get("streaming_runner.orders").map(Vec::as_slice),
        Some(&["update".to_owned()][..]),
        "{actions:?}"
    );
    workspace.apply();
    let second_revision = cloud.runner()["fargate"]["task_definition_arn"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(second_revision.ends_with(":2"), "{second_revision}");
    let active: Vec<String> = ecs
        .list_task_definitions()
        .send()
        .await
        .unwrap()
        .task_definition_arns()
        .to_vec();
    assert_eq!(
        active,
        std::slice::from_ref(&second_revision),
        "the old revision is deregistered"
    );
    wait_until("the task runs the new revision", || {
        cloud.scheduler.running().get(&service) == Some(&second_revision)
    })
    .await;
    cloud
        .database
        .execute("UPDATE orders SET amount = amount + 1 WHERE id > 140; INSERT INTO orders VALUES (151, 1)")
        .await
        .unwrap();
    cloud.lake_matches().await;

    // An execution role of one's own instead of the created one: the service moves to it, and
    // the role the provider made is deleted, not orphaned.
    let created_role = format!(
        "lakestream-{}-exec",
        cloud.runner()["runner_id"].as_str().unwrap()
    );
    iam.get_role()
        .role_name(&created_role)
        .send()
        .await
        .expect("the provider made it");
    let own_role = create_role(
        &iam,
        "ops-ecs-execution",
        json!({"Service": "ecs-tasks.amazonaws.com"}),
    )
    .await;
    let with_own_role = |cluster: &str| {
        let mut vars = cloud.vars(512, 1024, cluster);
        vars["execution_role"] = json!(own_role);
        vars
    };
    workspace.vars(with_own_role(CLUSTER));
    workspace.apply();
    let third_revision = cloud.runner()["fargate"]["task_definition_arn"]
        .as_str()
        .unwrap()
        .to_owned();
    let definition = ecs
        .describe_task_definition()
        .task_definition(&third_revision)
        .send()
        .await
        .unwrap();
    assert_eq!(
        definition.task_definition().unwrap().execution_role_arn(),
        Some(own_role.as_str())
    );
    let gone = iam.get_role().role_name(&created_role).send().await;
    assert!(gone.is_err(), "the replaced role is deleted: {gone:?}");
    workspace.assert_plan_empty();

    // Another cluster cannot be reached by an update: the plan replaces the runner and says
    // why.
    workspace.vars(with_own_role("elsewhere"));
    let plan = workspace.run(&["plan", "-no-color", "-input=false"]);
    assert_eq!(plan.code, 0, "{}", plan.describe());
    assert!(
        plan.stdout
            .contains("# streaming_runner.orders must be replaced")
            && plan.stdout.contains("# forces replacement"),
        "{}",
        plan.stdout
    );
    workspace.vars(with_own_role(CLUSTER));

    // Import both resources into a fresh state: same attributes.
    let runner_id = cloud.runner()["id"].as_str().unwrap().to_owned();
    workspace.import_verify(
        "streaming_runner.orders",
        &runner_id,
        &["timeouts", "status_reason", "last_heartbeat"],
    );
    let pipeline_id = workspace.resource("streaming_pipeline.orders")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    workspace.import_verify(
        "streaming_pipeline.orders",
        &pipeline_id,
        &[
            "timeouts",
            "lag_seconds",
            "source_position",
            "rows_delivered",
            "phase",
            "last_error",
        ],
    );

    // Destroy: nothing the provider created is left, in AWS or in the control store.
    workspace.destroy();
    let left = cloud.leftovers().await;
    assert!(left.is_empty(), "left behind: {left:#?}");
    wait_until("the simulated task stops", || {
        cloud.scheduler.running().is_empty()
    })
    .await;
}

#[test]
fn fargate_bad_input_fails_at_plan_time_naming_the_attribute() {
    let base = r#"
resource "streaming_runner" "r" {
  name          = "fargate runner"
  control_store = "s3://bucket/control"
  fargate {
    cluster         = "lakestream"
    subnets         = ["subnet-0123abcd"]
    security_groups = ["sg-0123abcd"]
    cpu             = 1024
    memory          = 2048
  }
}
"#;
    let cases: [(&str, &str, &str, &str); 7] = [
        (
            "memory          = 2048",
            "memory = 1024",
            r"fargate\.memory: memory = 1024 is not allowed with cpu = 1024; allowed: 2048 to 8192",
            "memory = 1024",
        ),
        (
            "cpu             = 1024",
            "cpu = 1000",
            r"cpu: 1000 is not allowed; allowed: 256, 512",
            "cpu = 1000",
        ),
        (
            r#"subnets         = ["subnet-0123abcd"]"#,
            r#"subnets = ["subnet-xyz"]"#,
            r"must be a subnet id \(subnet- and 8 or 17 hex digits\)",
            "subnet-xyz",
        ),
        (
            r#"security_groups = ["sg-0123abcd"]"#,
            r#"security_groups = ["default"]"#,
            r"must be a security group id",
            "default",
        ),
        (
            r#"subnets         = ["subnet-0123abcd"]"#,
            "",
            r#"The argument "subnets" is required"#,
            "fargate {",
        ),
        (
            r#"cluster         = "lakestream""#,
            "",
            r#"The argument "cluster" is required"#,
            "fargate {",
        ),
        (
            r#""s3://bucket/control""#,
            r#""file:///tmp/control""#,
            r"control_store.*(fargate|Fargate).*s3://",
            "control_store",
        ),
    ];
    for (from, to, pattern, line) in cases {
        assert!(base.contains(from), "{from}");
        let workspace = Workspace::new();
        workspace.config(&base.replacen(from, to, 1));
        let errors = workspace.plan_fails();
        assert_error(&errors, pattern, line);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fargate_apply_errors_are_clear_and_leave_nothing_behind() {
    let cloud = Cloud::new().await;
    let workspace = &cloud.workspace;

    // A cluster that does not exist: the error names it, and the roles and log group made
    // before the service failed are removed again.
    // No endpoints block here: the endpoint comes from the environment (`AWS_ENDPOINT_URL`),
    // as the standard chain gives it.
    let start = CONFIG.find("    endpoints {").unwrap();
    let end = start + CONFIG[start..].find("    }\n").unwrap() + "    }\n".len();
    let from_environment = format!("{}{}", &CONFIG[..start], &CONFIG[end..]);
    workspace
        .config(&from_environment)
        .vars(cloud.vars(256, 512, "missing-cluster"));
    let errors = workspace.apply_fails();
    assert_error(
        &errors,
        r"creating ECS service .* in cluster missing-cluster: ClusterNotFoundException",
        r#"resource "streaming_runner" "orders""#,
    );
    let left = cloud.leftovers().await;
    assert!(left.is_empty(), "a failed create left: {left:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fargate_access_denied_is_reported_with_awss_words() {
    // The control store is reachable, but AWS refuses the provider's credentials for ECS, IAM
    // and Logs (a second moto that checks credentials, as AWS does).
    let store = MotoServer::start().await.expect("moto starts");
    store.create_bucket(CONTROL_BUCKET).await.unwrap();
    let denying = MotoServer::start_denying().await.expect("moto starts");
    let mut workspace = Workspace::new();
    for (key, value) in store.env() {
        workspace.env(key, &value);
    }
    workspace.config(CONFIG).vars(json!({
        "database": {"host": "127.0.0.1", "port": 5432, "name": "app", "user": "cdc"},
        "endpoint": denying.endpoint(),
        "cpu": 256,
        "memory": 512,
        "cluster": CLUSTER,
        "subnet": "subnet-0123abcd",
        "security_group": "sg-0123abcd",
    }));
    let errors = workspace.apply_fails();
    assert_error(
        &errors,
        r"Deploying runner .*: creating log group /lakestream/.*: HTTP 403: (UnrecognizedClientException|InvalidClientTokenId): The security token included in the request is invalid",
        r#"resource "streaming_runner" "orders""#,
    );
    assert!(
        workspace.state().is_empty(),
        "a failed create enters no state"
    );
    assert_eq!(
        Cloud::keys_of(&store, CONTROL_BUCKET).await,
        Vec::<String>::new(),
        "a failed create leaves nothing in the control store"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fargate_against_a_real_aws_account_when_asked() {
    if !real_cloud(
        "aws",
        "AWS credentials, LAKESTREAM_ACC_CLUSTER, LAKESTREAM_ACC_SUBNET, \
         LAKESTREAM_ACC_SECURITY_GROUP and LAKESTREAM_ACC_BUCKET to run the Fargate flow against \
         a real account",
    ) {
        return;
    }
    apply_example_runner_for_real(
        "aws-fargate",
        json!({
            "cluster": cloud_variable("LAKESTREAM_ACC_CLUSTER"),
            "subnets": [cloud_variable("LAKESTREAM_ACC_SUBNET")],
            "security_groups": [cloud_variable("LAKESTREAM_ACC_SECURITY_GROUP")],
            "control_store": format!("s3://{}/lakestream-acc/control", cloud_variable("LAKESTREAM_ACC_BUCKET")),
        }),
    );
}

/// IAM returns policy documents URL-encoded (RFC 3986); moto may return them as stored.
fn urlencoding_decode(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(byte) = bytes.next() {
        if byte == b'%' {
            let hex: Vec<u8> = bytes.by_ref().take(2).collect();
            if let Some(decoded) = std::str::from_utf8(&hex)
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                out.push(decoded);
                continue;
            }
            out.push(byte);
            out.extend(hex);
        } else {
            out.push(byte);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..150 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting until {what}");
}
