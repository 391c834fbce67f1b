//! `fargate`: the runner as an ECS service on Fargate in an existing cluster.
//!
//! Creates (and on destroy removes) a log group, an execution role and a task role when none
//! are given, a task definition, and a service with `minimumHealthyPercent = 0` and
//! `maximumPercent = 100`, so a deployment stops the old task before it starts the new one and
//! two runners never consume one slot. The task role the provider creates may read and write
//! only the runner's control-store folder; a pipeline assigned to the runner adds its lake
//! prefix and its secrets ([`Deployment::grant`]). A create that fails part-way removes what it
//! made, so nothing is orphaned.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, CpuArchitecture,
    DeploymentConfiguration, DesiredStatus, KeyValuePair, LaunchType, LogConfiguration, LogDriver,
    NetworkConfiguration, NetworkMode, OsFamily, RuntimePlatform, Tag,
};
use lakestream_spec::StoreUrl;
use lakestream_spec::secret::SecretKind;
use lakestream_spec::store::Scheme;
use serde::{Deserialize, Serialize};
use tfplugin::plan_modifier::{requires_replace, use_state_for_unknown};
use tfplugin::validator::{custom, each_element, length_at_least, one_of, regex};
use tfplugin::{Attribute, Block, NestedBlock, Type, Value, async_trait};

use super::{
    Applied, DeployError, Deployment, Grant, Observation, RunnerTarget, error, read_record,
};
use crate::aws::{AwsClients, error_text};

/// The container's name in the task definition.
const CONTAINER: &str = "runner";
/// The inline policy of a created task role that reaches the control store.
const CONTROL_POLICY: &str = "lakestream-control-store";
/// The inline policy of a created task role that reaches the assigned pipeline's lake and secrets.
const PIPELINE_POLICY: &str = "lakestream-pipeline";
/// The managed policy an execution role needs to pull images and write logs.
const EXECUTION_POLICY: &str =
    "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";
/// How often waits look at the service.
const POLL: Duration = Duration::from_secs(2);
/// How long deleting a runner waits for its task to stop (ECS's stop timeout is 30 s by
/// default, at most 120 s).
const TASK_STOP_TIMEOUT: Duration = Duration::from_secs(180);

/// Fargate's CPU units and, for each, the memory sizes in MiB it allows (the Linux platform).
pub fn allowed_memory(cpu: u32) -> Option<Vec<u32>> {
    let range = |from: u32, to: u32, step: u32| (from..=to).step_by(step as usize).collect();
    match cpu {
        256 => Some(vec![512, 1024, 2048]),
        512 => Some(range(1024, 4096, 1024)),
        1024 => Some(range(2048, 8192, 1024)),
        2048 => Some(range(4096, 16384, 1024)),
        4096 => Some(range(8192, 30720, 1024)),
        8192 => Some(range(16384, 61440, 4096)),
        16384 => Some(range(32768, 122880, 8192)),
        _ => None,
    }
}

/// The rule for a `cpu`/`memory` pair, with a message listing what is allowed.
pub fn check_size(cpu: u32, memory: u32) -> Result<(), String> {
    let Some(memory_sizes) = allowed_memory(cpu) else {
        return Err(format!(
            "cpu = {cpu} is not a Fargate size; allowed: 256, 512, 1024, 2048, 4096, 8192, 16384 (CPU units)"
        ));
    };
    if memory_sizes.contains(&memory) {
        return Ok(());
    }
    let (first, last) = (memory_sizes[0], memory_sizes[memory_sizes.len() - 1]);
    let step = if memory_sizes.len() > 1 {
        memory_sizes[1] - first
    } else {
        0
    };
    Err(format!(
        "memory = {memory} is not allowed with cpu = {cpu}; allowed: {} MiB",
        if cpu == 256 {
            "512, 1024 or 2048".to_owned()
        } else {
            format!("{first} to {last} in steps of {step}")
        }
    ))
}

/// Default CPU units.
pub const DEFAULT_CPU: u32 = 1024;
/// Default memory in MiB.
pub const DEFAULT_MEMORY: u32 = 2048;
/// Default log retention in days.
pub const DEFAULT_LOG_RETENTION_DAYS: i32 = 30;
/// Retention periods CloudWatch Logs accepts.
const RETENTION_DAYS: [i64; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// The runner image for this provider's version (published with each release).
pub fn default_image() -> String {
    format!("ghcr.io/lakestream/streaming-runner:{}", crate::VERSION)
}

/// The `fargate` block as Terraform holds it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FargateBlock {
    /// `cluster`.
    pub cluster: String,
    /// `subnets`.
    pub subnets: Vec<String>,
    /// `security_groups`.
    pub security_groups: Vec<String>,
    /// `assign_public_ip`.
    pub assign_public_ip: Option<bool>,
    /// `cpu`.
    pub cpu: Option<u32>,
    /// `memory`.
    pub memory: Option<u32>,
    /// `cpu_architecture`.
    pub cpu_architecture: Option<String>,
    /// `image`.
    pub image: Option<String>,
    /// `task_role_arn` (created when not set).
    pub task_role_arn: Option<String>,
    /// `execution_role_arn` (created when not set).
    pub execution_role_arn: Option<String>,
    /// `log_retention_days`.
    pub log_retention_days: Option<i32>,
    /// `service_arn` (computed).
    pub service_arn: Option<String>,
    /// `task_definition_arn` (computed).
    pub task_definition_arn: Option<String>,
    /// `log_group` (computed).
    pub log_group: Option<String>,
}

impl FargateBlock {
    /// The deployment settings, defaults filled in. A role the provider created earlier is
    /// kept: only a role named in the configuration replaces it.
    pub fn settings(&self, previous: Option<&FargateRecord>) -> FargateSettings {
        let configured = |arn: &Option<String>, created: Option<&RoleRef>| match (arn, created) {
            (Some(arn), Some(role)) if role.created && role.arn == *arn => None,
            (arn, _) => arn.clone(),
        };
        FargateSettings {
            cluster: self.cluster.clone(),
            subnets: self.subnets.clone(),
            security_groups: self.security_groups.clone(),
            assign_public_ip: self.assign_public_ip.unwrap_or(false),
            cpu: self.cpu.unwrap_or(DEFAULT_CPU),
            memory: self.memory.unwrap_or(DEFAULT_MEMORY),
            cpu_architecture: self
                .cpu_architecture
                .clone()
                .unwrap_or_else(|| "X86_64".into()),
            image: self.image.clone().unwrap_or_else(default_image),
            task_role_arn: configured(
                &self.task_role_arn,
                previous.and_then(|r| r.task_role.as_ref()),
            ),
            execution_role_arn: configured(
                &self.execution_role_arn,
                previous.and_then(|r| r.execution_role.as_ref()),
            ),
            log_retention_days: self
                .log_retention_days
                .unwrap_or(DEFAULT_LOG_RETENTION_DAYS),
        }
    }

    /// The block as a record describes it.
    pub fn from_record(record: &serde_json::Value) -> Self {
        let record: FargateRecord = serde_json::from_value(record.clone()).unwrap_or_default();
        let settings = record.settings;
        Self {
            cluster: settings.cluster,
            subnets: settings.subnets,
            security_groups: settings.security_groups,
            assign_public_ip: Some(settings.assign_public_ip),
            cpu: Some(settings.cpu),
            memory: Some(settings.memory),
            cpu_architecture: Some(settings.cpu_architecture),
            image: Some(settings.image),
            task_role_arn: record.task_role.map(|r| r.arn),
            execution_role_arn: record.execution_role.map(|r| r.arn),
            log_retention_days: Some(settings.log_retention_days),
            service_arn: record.service_arn,
            task_definition_arn: record.task_definition_arn,
            log_group: record.log_group,
        }
    }
}

fn number(value: &Value) -> Option<u32> {
    value
        .as_number()
        .and_then(|n| n.as_u64())
        .and_then(|n| u32::try_from(n).ok())
}

/// The `fargate` block's schema.
pub fn block() -> NestedBlock {
    let computed = |name: &str, description: &str| {
        Attribute::string(name)
            .computed()
            .description(description)
            .plan_modifier(use_state_for_unknown())
    };
    let role = |name: &str, what: &str| {
        Attribute::string(name)
            .optional()
            .computed()
            .description(format!("An existing IAM role for the {what}; by default the provider creates one (and deletes it with the runner)."))
            .validator(regex(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$", "must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)"))
            .plan_modifier(use_state_for_unknown())
    };
    NestedBlock::single(
        "fargate",
        Block::new()
            .description(
                "Runs the runner as an ECS service on Fargate in an existing cluster: one task, never two (the service stops the \
                 old task before it starts a new one). The provider creates the log group, the task definition, the service \
                 and, unless given, the execution and task roles; the task role may only reach the runner's control-store \
                 folder and its pipeline's lake and secrets.",
            )
            .attribute(
                Attribute::string("cluster")
                    .required()
                    .description("The ECS cluster, by name or ARN. Changing it replaces the runner.")
                    .validator(regex(r"^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster/)?[A-Za-z0-9_-]{1,255}$", "must be a cluster name (letters, digits, - and _) or a cluster ARN"))
                    .plan_modifier(requires_replace()),
            )
            .attribute(
                Attribute::list("subnets", Type::String)
                    .required()
                    .description("Subnets for the task (private subnets with a NAT or VPC endpoints, typically).")
                    .validator(length_at_least(1))
                    .validator(each_element(regex(r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$", "must be a subnet id (subnet- and 8 or 17 hex digits)"))),
            )
            .attribute(
                Attribute::list("security_groups", Type::String)
                    .required()
                    .description("Security groups for the task; they must allow it to reach the database and the stores.")
                    .validator(length_at_least(1))
                    .validator(each_element(regex(r"^sg-([0-9a-f]{8}|[0-9a-f]{17})$", "must be a security group id (sg- and 8 or 17 hex digits)"))),
            )
            .attribute(Attribute::bool("assign_public_ip").optional().computed().default(false).description("Whether the task gets a public IP, for public subnets without a NAT gateway."))
            .attribute(
                Attribute::number("cpu")
                    .optional()
                    .computed()
                    .default(i64::from(DEFAULT_CPU))
                    .description("CPU units (1024 = 1 vCPU); with `memory`, one of Fargate's sizes.")
                    .validator(one_of_numbers(&[256, 512, 1024, 2048, 4096, 8192, 16384])),
            )
            .attribute(
                Attribute::number("memory")
                    .optional()
                    .computed()
                    .default(i64::from(DEFAULT_MEMORY))
                    .description("Memory in MiB; Fargate allows ranges that depend on `cpu` (e.g. 2048 to 8192 for 1024 CPU units).")
                    .validator(custom("a memory size Fargate allows with the chosen cpu", |request| {
                        let memory = number(request.value).unwrap_or(0);
                        let cpu = match request.sibling("cpu") {
                            value if value.is_unknown() => return Ok(()),
                            value if value.is_null() => DEFAULT_CPU,
                            value => number(value).unwrap_or(0),
                        };
                        if allowed_memory(cpu).is_none() {
                            return Ok(()); // the cpu attribute reports its own error
                        }
                        check_size(cpu, memory).map_err(|message| format!("{}: {message}", request.path))
                    })),
            )
            .attribute(
                Attribute::string("cpu_architecture")
                    .optional()
                    .computed()
                    .default("X86_64")
                    .description("`X86_64` or `ARM64` (Graviton); the image must support it.")
                    .validator(one_of(&["X86_64", "ARM64"])),
            )
            .attribute(
                Attribute::string("image")
                    .optional()
                    .computed()
                    .description("The runner image; by default `ghcr.io/lakestream/streaming-runner:<provider version>`. Changing it rolls out a new task.")
                    .plan_modifier(use_state_for_unknown()),
            )
            .attribute(role("task_role_arn", "task (what the runner may reach)"))
            .attribute(role("execution_role_arn", "execution (pulling the image, writing logs)"))
            .attribute(
                Attribute::number("log_retention_days")
                    .optional()
                    .computed()
                    .default(i64::from(DEFAULT_LOG_RETENTION_DAYS))
                    .description("How long CloudWatch Logs keeps the runner's logs.")
                    .validator(one_of_numbers(&RETENTION_DAYS)),
            )
            .attribute(computed("service_arn", "The ECS service's ARN."))
            .attribute(Attribute::string("task_definition_arn").computed().description("The task definition revision the service runs."))
            .attribute(computed("log_group", "The CloudWatch Logs group of the runner.")),
    )
}

/// A validator: the number is one of `allowed`.
fn one_of_numbers(allowed: &'static [i64]) -> impl tfplugin::validator::Validator {
    let list: Vec<String> = allowed.iter().map(ToString::to_string).collect();
    custom(
        format!("one of {}", list.join(", ")),
        move |request| match request.value.as_number().and_then(|n| n.as_i64()) {
            Some(value) if allowed.contains(&value) => Ok(()),
            _ => Err(format!(
                "{}: {} is not allowed; allowed: {}",
                request.path,
                request
                    .value
                    .as_number()
                    .map(|n| n.as_str().to_owned())
                    .unwrap_or_default(),
                list.join(", ")
            )),
        },
    )
}

/// The `fargate` block's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FargateSettings {
    /// Cluster name or ARN.
    pub cluster: String,
    /// Subnet ids.
    pub subnets: Vec<String>,
    /// Security group ids.
    pub security_groups: Vec<String>,
    /// Whether the task gets a public IP (needed in public subnets without NAT).
    pub assign_public_ip: bool,
    /// CPU units.
    pub cpu: u32,
    /// Memory in MiB.
    pub memory: u32,
    /// `X86_64` or `ARM64`.
    pub cpu_architecture: String,
    /// The runner image.
    pub image: String,
    /// A task role to use instead of creating one.
    pub task_role_arn: Option<String>,
    /// An execution role to use instead of creating one.
    pub execution_role_arn: Option<String>,
    /// Days the log group keeps the runner's logs.
    pub log_retention_days: i32,
}

/// An IAM role the deployment uses, and whether it made it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRef {
    /// The role's ARN.
    pub arn: String,
    /// The role's name.
    pub name: String,
    /// Whether this deployment created it (and so may change and delete it).
    pub created: bool,
}

/// What a Fargate deployment created, kept in `runner.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FargateRecord {
    /// The settings applied.
    pub settings: FargateSettings,
    /// The runner's id.
    pub runner_id: String,
    /// The control store URL the task is given.
    pub control_store: String,
    /// The log group, when created.
    pub log_group: Option<String>,
    /// The execution role.
    pub execution_role: Option<RoleRef>,
    /// The task role.
    pub task_role: Option<RoleRef>,
    /// The task definition family.
    pub family: String,
    /// The current task definition revision's ARN.
    pub task_definition_arn: Option<String>,
    /// The service's name.
    pub service_name: String,
    /// The service's ARN, once created.
    pub service_arn: Option<String>,
    /// Roles this deployment created and no longer uses (the configuration now names others),
    /// deleted once the service runs without them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_roles: Vec<RoleRef>,
}

/// The Fargate target with the settings of one `fargate` block.
pub struct Fargate {
    settings: FargateSettings,
    clients: Arc<AwsClients>,
}

/// The AWS partition of a region (`aws`, `aws-cn`, `aws-us-gov`), for ARNs built by hand.
fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Statements letting a role read and write below `url` (S3 only; other stores need no IAM).
fn s3_statements(url: &StoreUrl, partition: &str, sid: &str) -> Vec<serde_json::Value> {
    if url.scheme() != Scheme::S3 {
        return Vec::new();
    }
    let bucket = url.bucket().unwrap_or_default();
    let objects = if url.prefix().is_empty() {
        "*".to_owned()
    } else {
        format!("{}/*", url.prefix())
    };
    vec![
        serde_json::json!({
            "Sid": format!("{sid}Objects"),
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": format!("arn:{partition}:s3:::{bucket}/{objects}"),
        }),
        serde_json::json!({
            "Sid": format!("{sid}List"),
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": format!("arn:{partition}:s3:::{bucket}"),
            "Condition": {"StringLike": {"s3:prefix": [objects]}},
        }),
    ]
}

fn policy(statements: Vec<serde_json::Value>) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

const TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

impl Fargate {
    /// The target for a `fargate` block.
    pub fn new(settings: FargateSettings, clients: Arc<AwsClients>) -> Self {
        Self { settings, clients }
    }

    /// The target that created `record`.
    pub fn from_record(
        record: &serde_json::Value,
        clients: Arc<AwsClients>,
    ) -> Result<Self, DeployError> {
        let record: FargateRecord = read_record("fargate", record)?;
        Ok(Self {
            settings: record.settings,
            clients,
        })
    }

    fn tags(&self, runner_id: &str) -> BTreeMap<String, String> {
        self.clients.settings.tags(runner_id)
    }

    async fn ensure_log_group(&self, record: &mut FargateRecord) -> Result<(), DeployError> {
        let name = format!("/lakestream/{}", record.runner_id);
        if record.log_group.as_deref() != Some(name.as_str()) {
            let created = self
                .clients
                .logs
                .create_log_group()
                .log_group_name(&name)
                .set_tags(Some(self.tags(&record.runner_id).into_iter().collect()))
                .send()
                .await;
            match created {
                Ok(_) => {}
                Err(err) if error_text(&err).starts_with("ResourceAlreadyExistsException") => {}
                Err(err) => {
                    return Err(error(
                        &format!("creating log group {name}"),
                        error_text(&err),
                    ));
                }
            }
            record.log_group = Some(name.clone());
        }
        self.clients
            .logs
            .put_retention_policy()
            .log_group_name(&name)
            .retention_in_days(self.settings.log_retention_days)
            .send()
            .await
            .map_err(|err| {
                error(
                    &format!("setting the retention of {name}"),
                    error_text(&err),
                )
            })?;
        Ok(())
    }

    async fn create_role(&self, name: &str, runner_id: &str) -> Result<RoleRef, DeployError> {
        let tags: Vec<aws_sdk_iam::types::Tag> = self
            .tags(runner_id)
            .into_iter()
            .map(|(key, value)| {
                aws_sdk_iam::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .expect("key and value are set")
            })
            .collect();
        let created = self
            .clients
            .iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(TRUST_POLICY)
            .description(format!("Lakestream runner {runner_id}"))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|err| error(&format!("creating IAM role {name}"), error_text(&err)))?;
        let arn = created
            .role()
            .map(|role| role.arn().to_owned())
            .unwrap_or_default();
        Ok(RoleRef {
            arn,
            name: name.to_owned(),
            created: true,
        })
    }

    /// The roles to use: the configured ones, or ones this deployment creates (kept across
    /// updates until the configuration names others).
    async fn ensure_roles(
        &self,
        record: &mut FargateRecord,
        control_store: &StoreUrl,
    ) -> Result<Vec<RoleRef>, DeployError> {
        let mut made = Vec::new();
        let (execution, created) = self
            .role(
                &self.settings.execution_role_arn,
                record.execution_role.take(),
                &mut record.retired_roles,
                &format!("lakestream-{}-exec", record.runner_id),
                &record.runner_id,
            )
            .await?;
        // Recorded before its policy is attached, so a failure there rolls the role back too.
        record.execution_role = Some(execution.clone());
        if created {
            made.push(execution.clone());
            self.clients
                .iam
                .attach_role_policy()
                .role_name(&execution.name)
                .policy_arn(EXECUTION_POLICY)
                .send()
                .await
                .map_err(|err| {
                    error(
                        &format!("attaching {EXECUTION_POLICY} to {}", execution.name),
                        error_text(&err),
                    )
                })?;
        }
        let (task, created) = self
            .role(
                &self.settings.task_role_arn,
                record.task_role.take(),
                &mut record.retired_roles,
                &format!("lakestream-{}-task", record.runner_id),
                &record.runner_id,
            )
            .await?;
        record.task_role = Some(task.clone());
        if created {
            made.push(task.clone());
            let runner_folder = control_store.join(&format!("runners/{}", record.runner_id));
            let statements = s3_statements(
                &runner_folder,
                partition(&self.clients.region()),
                "ControlStore",
            );
            if !statements.is_empty() {
                self.clients
                    .iam
                    .put_role_policy()
                    .role_name(&task.name)
                    .policy_name(CONTROL_POLICY)
                    .policy_document(policy(statements))
                    .send()
                    .await
                    .map_err(|err| {
                        error(
                            &format!("granting {} the control store", task.name),
                            error_text(&err),
                        )
                    })?;
            }
        }
        Ok(made)
    }

    /// The role to use: the one configured, the one the provider created earlier, or a new
    /// one (`true`: just created, its policies still to attach).
    async fn role(
        &self,
        configured: &Option<String>,
        existing: Option<RoleRef>,
        retired: &mut Vec<RoleRef>,
        name: &str,
        runner_id: &str,
    ) -> Result<(RoleRef, bool), DeployError> {
        match (configured, existing) {
            (Some(arn), existing) => {
                retired.extend(existing.filter(|role| role.created && &role.arn != arn));
                Ok((
                    RoleRef {
                        arn: arn.clone(),
                        name: role_name(arn),
                        created: false,
                    },
                    false,
                ))
            }
            (None, Some(existing)) if existing.created => Ok((existing, false)),
            (None, _) => Ok((self.create_role(name, runner_id).await?, true)),
        }
    }

    async fn register_task_definition(
        &self,
        record: &FargateRecord,
    ) -> Result<String, DeployError> {
        let region = self.clients.region();
        let mut logs = BTreeMap::new();
        logs.insert(
            "awslogs-group".to_owned(),
            record.log_group.clone().unwrap_or_default(),
        );
        logs.insert("awslogs-region".to_owned(), region.clone());
        logs.insert("awslogs-stream-prefix".to_owned(), "runner".to_owned());
        let environment = [
            ("LAKESTREAM_CONTROL_STORE", record.control_store.as_str()),
            ("LAKESTREAM_RUNNER_ID", record.runner_id.as_str()),
            ("LAKESTREAM_LOG_FORMAT", "json"),
            ("AWS_REGION", region.as_str()),
        ];
        let container = ContainerDefinition::builder()
            .name(CONTAINER)
            .image(&self.settings.image)
            .essential(true)
            .command("run")
            .memory(self.settings.memory as i32)
            .readonly_root_filesystem(true)
            .set_environment(Some(
                environment
                    .iter()
                    .map(|(k, v)| KeyValuePair::builder().name(*k).value(*v).build())
                    .collect(),
            ))
            .log_configuration(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Awslogs)
                    .set_options(Some(logs.into_iter().collect()))
                    .build()
                    .map_err(|err| error("building the log configuration", err))?,
            )
            .build();
        let registered = self
            .clients
            .ecs
            .register_task_definition()
            .family(&record.family)
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu(self.settings.cpu.to_string())
            .memory(self.settings.memory.to_string())
            .runtime_platform(
                RuntimePlatform::builder()
                    .cpu_architecture(CpuArchitecture::from(
                        self.settings.cpu_architecture.as_str(),
                    ))
                    .operating_system_family(OsFamily::Linux)
                    .build(),
            )
            .set_execution_role_arn(record.execution_role.as_ref().map(|r| r.arn.clone()))
            .set_task_role_arn(record.task_role.as_ref().map(|r| r.arn.clone()))
            .container_definitions(container)
            .set_tags(Some(self.ecs_tags(&record.runner_id)))
            .send()
            .await
            .map_err(|err| {
                error(
                    &format!("registering task definition {}", record.family),
                    error_text(&err),
                )
            })?;
        registered
            .task_definition()
            .and_then(|definition| definition.task_definition_arn())
            .map(str::to_owned)
            .ok_or_else(|| DeployError::new("ECS returned no task definition ARN"))
    }

    fn ecs_tags(&self, runner_id: &str) -> Vec<Tag> {
        self.tags(runner_id)
            .into_iter()
            .map(|(key, value)| Tag::builder().key(key).value(value).build())
            .collect()
    }

    fn network(&self) -> Result<NetworkConfiguration, DeployError> {
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(self.settings.subnets.clone()))
            .set_security_groups(Some(self.settings.security_groups.clone()))
            .assign_public_ip(if self.settings.assign_public_ip {
                AssignPublicIp::Enabled
            } else {
                AssignPublicIp::Disabled
            })
            .build()
            .map_err(|err| error("building the network configuration", err))?;
        Ok(NetworkConfiguration::builder()
            .awsvpc_configuration(vpc)
            .build())
    }

    /// Creates the service, or updates it to `task_definition` and `desired`.
    async fn ensure_service(
        &self,
        record: &mut FargateRecord,
        desired: i32,
        restart: bool,
    ) -> Result<(), DeployError> {
        let task_definition = record.task_definition_arn.clone().unwrap_or_default();
        if record.service_arn.is_some() {
            self.clients
                .ecs
                .update_service()
                .cluster(&self.settings.cluster)
                .service(&record.service_name)
                .task_definition(&task_definition)
                .desired_count(desired)
                .network_configuration(self.network()?)
                .force_new_deployment(restart)
                .send()
                .await
                .map_err(|err| {
                    error(
                        &format!("updating ECS service {}", record.service_name),
                        error_text(&err),
                    )
                })?;
            return Ok(());
        }
        let created = self
            .clients
            .ecs
            .create_service()
            .cluster(&self.settings.cluster)
            .service_name(&record.service_name)
            .task_definition(&task_definition)
            .desired_count(desired)
            .launch_type(LaunchType::Fargate)
            .deployment_configuration(one_task_at_a_time())
            .network_configuration(self.network()?)
            .set_tags(Some(self.ecs_tags(&record.runner_id)))
            .enable_ecs_managed_tags(true)
            .send()
            .await
            .map_err(|err| {
                error(
                    &format!(
                        "creating ECS service {} in cluster {}",
                        record.service_name, self.settings.cluster
                    ),
                    error_text(&err),
                )
            })?;
        record.service_arn = created
            .service()
            .and_then(|service| service.service_arn())
            .map(str::to_owned);
        Ok(())
    }

    /// Waits until the service runs `desired` tasks of its current task definition, one
    /// deployment only; a failed rollout ends the wait with the service's reason.
    async fn wait_stable(
        &self,
        record: &FargateRecord,
        desired: i32,
        timeout: Duration,
    ) -> Result<(), DeployError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let described = self
                .clients
                .ecs
                .describe_services()
                .cluster(&self.settings.cluster)
                .services(&record.service_name)
                .send()
                .await
                .map_err(|err| {
                    error(
                        &format!("describing ECS service {}", record.service_name),
                        error_text(&err),
                    )
                })?;
            let last = match described.services().first() {
                Some(service) => {
                    let deployments = service.deployments();
                    if let Some(failed) = deployments
                        .iter()
                        .find(|d| d.rollout_state().is_some_and(|s| s.as_str() == "FAILED"))
                    {
                        return Err(DeployError::new(format!(
                            "ECS service {} failed to deploy: {}",
                            record.service_name,
                            failed.rollout_state_reason().unwrap_or("no reason given")
                        )));
                    }
                    if deployments.len() <= 1
                        && service.running_count() == desired
                        && service.desired_count() == desired
                    {
                        return Ok(());
                    }
                    format!(
                        "{}/{} tasks running, {} deployments",
                        service.running_count(),
                        desired,
                        deployments.len()
                    )
                }
                None => "the service is not visible yet".to_owned(),
            };
            if tokio::time::Instant::now() >= deadline {
                let reason = self
                    .stopped_reason(record)
                    .await
                    .map(|r| format!("; last task stopped: {r}"))
                    .unwrap_or_default();
                return Err(DeployError::new(format!(
                    "ECS service {} did not become stable within {timeout:?} ({last}{reason})",
                    record.service_name
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Why the service's last task stopped, in ECS's words.
    async fn stopped_reason(&self, record: &FargateRecord) -> Option<String> {
        let tasks = self
            .clients
            .ecs
            .list_tasks()
            .cluster(&self.settings.cluster)
            .family(&record.family)
            .desired_status(DesiredStatus::Stopped)
            .send()
            .await
            .ok()?;
        let arns = tasks.task_arns();
        if arns.is_empty() {
            return None;
        }
        let described = self
            .clients
            .ecs
            .describe_tasks()
            .cluster(&self.settings.cluster)
            .set_tasks(Some(arns.to_vec()))
            .send()
            .await
            .ok()?;
        let task = described
            .tasks()
            .iter()
            .max_by_key(|task| task.stopped_at().map(|t| t.secs()))?;
        let container = task
            .containers()
            .iter()
            .find_map(|c| c.reason())
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        Some(format!(
            "{}{container}",
            task.stopped_reason().unwrap_or("no reason given")
        ))
    }

    /// Waits until every task of the runner's family has stopped: a task still draining
    /// after its service is deleted would write to the control store after the provider
    /// cleaned it, and its role must outlive it.
    async fn wait_tasks_stopped(&self, record: &FargateRecord) -> Result<(), DeployError> {
        let deadline = tokio::time::Instant::now() + TASK_STOP_TIMEOUT;
        loop {
            let mut arns = Vec::new();
            for status in [DesiredStatus::Running, DesiredStatus::Stopped] {
                let listed = self
                    .clients
                    .ecs
                    .list_tasks()
                    .cluster(&self.settings.cluster)
                    .family(&record.family)
                    .desired_status(status)
                    .send()
                    .await;
                match listed {
                    Ok(listed) => arns.extend(listed.task_arns().iter().cloned()),
                    // No cluster, no tasks.
                    Err(err) if error_text(&err).contains("ClusterNotFound") => return Ok(()),
                    Err(err) => {
                        return Err(error(
                            &format!("listing the tasks of {}", record.family),
                            error_text(&err),
                        ));
                    }
                }
            }
            let mut running = Vec::new();
            // DescribeTasks takes at most 100 tasks per call.
            for chunk in arns.chunks(100) {
                let described = self
                    .clients
                    .ecs
                    .describe_tasks()
                    .cluster(&self.settings.cluster)
                    .set_tasks(Some(chunk.to_vec()))
                    .send()
                    .await
                    .map_err(|err| {
                        error(
                            &format!("describing the tasks of {}", record.family),
                            error_text(&err),
                        )
                    })?;
                running.extend(
                    described
                        .tasks()
                        .iter()
                        .filter(|task| task.last_status() != Some("STOPPED"))
                        .filter_map(|task| task.task_arn().map(str::to_owned)),
                );
            }
            if running.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(DeployError::new(format!(
                    "tasks of {} still running {TASK_STOP_TIMEOUT:?} after the service was deleted: {}",
                    record.family,
                    running.join(", ")
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Removes what `record` says this deployment created, tolerating what is already gone.
    async fn remove(&self, record: &FargateRecord) -> Result<(), DeployError> {
        let missing = |text: &str| {
            [
                "NotFound",
                "ServiceNotFoundException",
                "ServiceNotActiveException",
                "NoSuchEntity",
                "ResourceNotFoundException",
            ]
            .iter()
            .any(|code| text.contains(code))
        };
        if record.service_arn.is_some() {
            let scaled = self
                .clients
                .ecs
                .update_service()
                .cluster(&self.settings.cluster)
                .service(&record.service_name)
                .desired_count(0)
                .send()
                .await;
            if let Err(err) = scaled
                && !missing(&error_text(&err))
            {
                return Err(error(
                    &format!("scaling ECS service {} to zero", record.service_name),
                    error_text(&err),
                ));
            }
            let deleted = self
                .clients
                .ecs
                .delete_service()
                .cluster(&self.settings.cluster)
                .service(&record.service_name)
                .force(true)
                .send()
                .await;
            if let Err(err) = deleted
                && !missing(&error_text(&err))
            {
                return Err(error(
                    &format!("deleting ECS service {}", record.service_name),
                    error_text(&err),
                ));
            }
        }
        self.wait_tasks_stopped(record).await?;
        let definitions = self
            .clients
            .ecs
            .list_task_definitions()
            .family_prefix(&record.family)
            .send()
            .await
            .map_err(|err| {
                error(
                    &format!("listing task definitions {}", record.family),
                    error_text(&err),
                )
            })?;
        for arn in definitions.task_definition_arns() {
            // `family_prefix` matches prefixes: keep only this family's revisions.
            if arn
                .rsplit('/')
                .next()
                .and_then(|tail| tail.rsplit_once(':'))
                .is_some_and(|(family, _)| family == record.family)
            {
                self.clients
                    .ecs
                    .deregister_task_definition()
                    .task_definition(arn)
                    .send()
                    .await
                    .map_err(|err| error(&format!("deregistering {arn}"), error_text(&err)))?;
            }
        }
        for role in [&record.task_role, &record.execution_role]
            .into_iter()
            .flatten()
            .chain(&record.retired_roles)
            .filter(|role| role.created)
        {
            self.delete_role(&role.name).await?;
        }
        if let Some(group) = &record.log_group {
            let deleted = self
                .clients
                .logs
                .delete_log_group()
                .log_group_name(group)
                .send()
                .await;
            if let Err(err) = deleted
                && !missing(&error_text(&err))
            {
                return Err(error(
                    &format!("deleting log group {group}"),
                    error_text(&err),
                ));
            }
        }
        Ok(())
    }

    async fn delete_role(&self, name: &str) -> Result<(), DeployError> {
        let iam = &self.clients.iam;
        let gone = |text: &str| text.contains("NoSuchEntity");
        match iam.list_role_policies().role_name(name).send().await {
            Ok(inline) => {
                for policy in inline.policy_names() {
                    iam.delete_role_policy()
                        .role_name(name)
                        .policy_name(policy)
                        .send()
                        .await
                        .map_err(|err| {
                            error(
                                &format!("deleting policy {policy} of {name}"),
                                error_text(&err),
                            )
                        })?;
                }
            }
            Err(err) if gone(&error_text(&err)) => return Ok(()),
            Err(err) => {
                return Err(error(
                    &format!("listing the policies of {name}"),
                    error_text(&err),
                ));
            }
        }
        let attached = iam
            .list_attached_role_policies()
            .role_name(name)
            .send()
            .await
            .map_err(|err| {
                error(
                    &format!("listing the attached policies of {name}"),
                    error_text(&err),
                )
            })?;
        for policy in attached.attached_policies() {
            if let Some(arn) = policy.policy_arn() {
                iam.detach_role_policy()
                    .role_name(name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map_err(|err| {
                        error(&format!("detaching {arn} from {name}"), error_text(&err))
                    })?;
            }
        }
        match iam.delete_role().role_name(name).send().await {
            Ok(_) => Ok(()),
            Err(err) if gone(&error_text(&err)) => Ok(()),
            Err(err) => Err(error(
                &format!("deleting IAM role {name}"),
                error_text(&err),
            )),
        }
    }

    /// Create or update, without cleaning up after a failure; returns whether a new task was
    /// started.
    async fn converge(
        &self,
        target: &RunnerTarget,
        record: &mut FargateRecord,
        made_roles: &mut Vec<RoleRef>,
    ) -> Result<bool, DeployError> {
        self.ensure_log_group(record).await?;
        made_roles.extend(self.ensure_roles(record, &target.control_store).await?);
        let previous_definition = record.task_definition_arn.clone();
        let settings_changed = previous_definition.is_none() || record.settings != self.settings;
        record.settings = self.settings.clone();
        if settings_changed {
            record.task_definition_arn = Some(self.register_task_definition(record).await?);
        }
        let desired = i32::from(target.running);
        let was_running = self.running_count(record).await > 0;
        self.ensure_service(record, desired, target.restart && !settings_changed)
            .await?;
        if settings_changed
            && let Some(old) = previous_definition
            && Some(&old) != record.task_definition_arn.as_ref()
        {
            self.clients
                .ecs
                .deregister_task_definition()
                .task_definition(&old)
                .send()
                .await
                .map_err(|err| {
                    error(
                        &format!("deregistering the previous revision {old}"),
                        error_text(&err),
                    )
                })?;
        }
        self.wait_stable(record, desired, target.timeout).await?;
        // The service now runs the revision with the configured roles.
        while let Some(role) = record.retired_roles.last() {
            self.delete_role(&role.name).await?;
            record.retired_roles.pop();
        }
        Ok(target.running && (settings_changed || target.restart || !was_running))
    }

    /// Tasks the service runs now (0 when there is no service yet).
    async fn running_count(&self, record: &FargateRecord) -> i32 {
        if record.service_arn.is_none() {
            return 0;
        }
        let described = self
            .clients
            .ecs
            .describe_services()
            .cluster(&self.settings.cluster)
            .services(&record.service_name)
            .send()
            .await;
        described
            .ok()
            .and_then(|output| output.services().first().map(|s| s.running_count()))
            .unwrap_or(0)
    }
}

/// A rollout that stops the old task before starting the new one: two runners must never
/// consume one replication slot, even for a moment.
fn one_task_at_a_time() -> DeploymentConfiguration {
    DeploymentConfiguration::builder()
        .minimum_healthy_percent(0)
        .maximum_percent(100)
        .build()
}

/// The name of a role from its ARN (`arn:aws:iam::123:role/path/name` → `name`).
fn role_name(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_owned()
}

#[async_trait]
impl Deployment for Fargate {
    fn kind(&self) -> &'static str {
        "fargate"
    }

    async fn apply(
        &self,
        target: &RunnerTarget,
        previous: Option<&serde_json::Value>,
    ) -> Result<Applied, DeployError> {
        let mut record = match previous {
            Some(previous) => read_record("fargate", previous)?,
            None => FargateRecord {
                runner_id: target.runner_id.clone(),
                control_store: target.control_store.to_string(),
                family: format!("lakestream-{}", target.runner_id),
                service_name: format!("lakestream-{}", target.runner_id),
                ..FargateRecord::default()
            },
        };
        let creating = record.service_arn.is_none();
        let mut made_roles = Vec::new();
        match self.converge(target, &mut record, &mut made_roles).await {
            Ok(started) => Ok(Applied {
                record: serde_json::to_value(&record).expect("records serialise"),
                started,
            }),
            // The log group comes first: without it nothing was created.
            Err(err) if creating && record.log_group.is_none() => Err(err),
            Err(err) if creating => {
                // Roll back a create that failed part-way, so nothing is orphaned.
                record.task_role = record.task_role.filter(|r| made_roles.contains(r));
                record.execution_role = record.execution_role.filter(|r| made_roles.contains(r));
                match self.remove(&record).await {
                    Ok(()) => Err(err),
                    Err(cleanup) => Err(DeployError::new(format!(
                        "{err}; removing what was created failed too: {cleanup}"
                    ))),
                }
            }
            Err(err) => Err(err),
        }
    }

    async fn observe(&self, record: &serde_json::Value) -> Observation {
        let record: FargateRecord = match read_record("fargate", record) {
            Ok(record) => record,
            Err(err) => {
                return Observation {
                    running: false,
                    reason: err.message,
                };
            }
        };
        let described = self
            .clients
            .ecs
            .describe_services()
            .cluster(&self.settings.cluster)
            .services(&record.service_name)
            .send()
            .await;
        let service = match described {
            Ok(output) => output
                .services()
                .iter()
                .find(|s| s.status() != Some("INACTIVE"))
                .cloned(),
            Err(err) => {
                return Observation {
                    running: false,
                    reason: format!("ECS: {}", error_text(&err)),
                };
            }
        };
        let Some(service) = service else {
            return Observation {
                running: false,
                reason: format!(
                    "ECS service {} no longer exists in cluster {}",
                    record.service_name, self.settings.cluster
                ),
            };
        };
        let (running, desired) = (service.running_count(), service.desired_count());
        if running >= 1 {
            return Observation {
                running: true,
                reason: format!(
                    "ECS service {}: {running}/{desired} tasks running",
                    record.service_name
                ),
            };
        }
        let stopped = self
            .stopped_reason(&record)
            .await
            .map(|r| format!("; last task stopped: {r}"))
            .unwrap_or_default();
        Observation {
            running: false,
            reason: format!(
                "ECS service {}: {running}/{desired} tasks running{stopped}",
                record.service_name
            ),
        }
    }

    async fn destroy(&self, record: &serde_json::Value) -> Result<(), DeployError> {
        let record: FargateRecord = read_record("fargate", record)?;
        self.remove(&record).await
    }

    async fn grant(&self, record: &serde_json::Value, grant: &Grant) -> Result<(), DeployError> {
        let record: FargateRecord = read_record("fargate", record)?;
        let Some(role) = record.task_role.filter(|role| role.created) else {
            return Ok(());
        };
        let region = self.clients.region();
        let partition = partition(&region);
        let mut statements = s3_statements(&grant.lake, partition, "Lake");
        let secrets: Vec<String> = grant
            .secrets
            .iter()
            .filter(|secret| secret.kind == SecretKind::AwsSecretsManager)
            .map(|secret| {
                if secret.name.starts_with("arn:") {
                    secret.name.clone()
                } else {
                    format!(
                        "arn:{partition}:secretsmanager:{region}:*:secret:{}-??????",
                        secret.name
                    )
                }
            })
            .collect();
        if !secrets.is_empty() {
            statements.push(serde_json::json!({"Sid": "Secrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secrets}));
        }
        if statements.is_empty() {
            return self.revoke_role(&role.name).await;
        }
        self.clients
            .iam
            .put_role_policy()
            .role_name(&role.name)
            .policy_name(PIPELINE_POLICY)
            .policy_document(policy(statements))
            .send()
            .await
            .map_err(|err| {
                error(
                    &format!("granting {} pipeline {}", role.name, grant.pipeline_id),
                    error_text(&err),
                )
            })?;
        Ok(())
    }

    async fn revoke(
        &self,
        record: &serde_json::Value,
        _pipeline_id: &str,
    ) -> Result<(), DeployError> {
        let record: FargateRecord = read_record("fargate", record)?;
        match record.task_role.filter(|role| role.created) {
            Some(role) => self.revoke_role(&role.name).await,
            None => Ok(()),
        }
    }
}

impl Fargate {
    async fn revoke_role(&self, role: &str) -> Result<(), DeployError> {
        match self
            .clients
            .iam
            .delete_role_policy()
            .role_name(role)
            .policy_name(PIPELINE_POLICY)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if error_text(&err).contains("NoSuchEntity") => Ok(()),
            Err(err) => Err(error(
                &format!("revoking the pipeline policy of {role}"),
                error_text(&err),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollout_never_runs_two_tasks() {
        let rollout = one_task_at_a_time();
        assert_eq!(rollout.minimum_healthy_percent(), Some(0));
        assert_eq!(rollout.maximum_percent(), Some(100));
    }

    #[test]
    fn sizes_follow_fargates_table() {
        assert!(check_size(256, 512).is_ok());
        assert!(check_size(1024, 8192).is_ok());
        assert!(check_size(16384, 122880).is_ok());
        assert_eq!(
            check_size(256, 4096).unwrap_err(),
            "memory = 4096 is not allowed with cpu = 256; allowed: 512, 1024 or 2048 MiB"
        );
        assert_eq!(
            check_size(1024, 1024).unwrap_err(),
            "memory = 1024 is not allowed with cpu = 1024; allowed: 2048 to 8192 in steps of 1024 MiB"
        );
        assert!(
            check_size(300, 1024)
                .unwrap_err()
                .starts_with("cpu = 300 is not a Fargate size")
        );
        assert!(
            check_size(8192, 20000).is_err(),
            "8 vCPU memory comes in 4 GiB steps"
        );
    }

    #[test]
    fn policies_reach_only_the_runners_folder() {
        let url = StoreUrl::parse("s3://ctl-bucket/cdc/runners/r-1").unwrap();
        let statements = s3_statements(&url, "aws", "ControlStore");
        assert_eq!(
            statements[0]["Resource"],
            "arn:aws:s3:::ctl-bucket/cdc/runners/r-1/*"
        );
        assert_eq!(
            statements[1]["Condition"]["StringLike"]["s3:prefix"][0],
            "cdc/runners/r-1/*"
        );
        assert!(s3_statements(&StoreUrl::parse("file:///tmp/x").unwrap(), "aws", "X").is_empty());
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(
            role_name("arn:aws:iam::123456789012:role/path/runner-task"),
            "runner-task"
        );
    }
}
