//! `streaming_pipeline`: one CDC pipeline assigned to one runner.
//!
//! Every change of the pipeline's configuration writes a new immutable version to the control
//! store; `desired.json` points the runner at the version to run (the latest, or
//! `pinned_version` for a rollback) and says whether it runs or is paused. Create and update
//! wait until the runner reports it applied the change.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use lakestream_control::RunnerControl;
use lakestream_spec::control::{
    Assignment, Desired, Phase, PipelineState, PipelineStatus, PipelineVersion, Retirement,
    RunnerState,
};
use lakestream_spec::pipeline::{
    self as spec_pipeline, FLUSH_INTERVAL_RANGE, Format, SchemaChangePolicy, SourceSpec, SslMode,
    TARGET_FILE_SIZE_RANGE, TargetSpec,
};
use lakestream_spec::secret::SecretKind;
use lakestream_spec::{PipelineSpec, duration, rules, size};
use serde::{Deserialize, Serialize};
use tfplugin::plan_modifier::{requires_replace, use_state_for_unknown};
use tfplugin::validator::{
    conflicts_with, custom, each_element, exactly_one_of, int_between, length_at_least, one_of,
};
use tfplugin::{
    ApplyResponse, Attribute, AttributePath, Block, Context, CreateRequest, DeleteRequest,
    Diagnostic, Diagnostics, ImportRequest, ImportResponse, ModifyPlan, NestedBlock, ReadRequest,
    ReadResponse, Resource, Schema, Timeouts, Type, UpdateRequest, Value,
};
use time::OffsetDateTime;

use crate::address::{PipelineAddress, RunnerAddress, new_id};
use crate::context::ProviderContext;
use crate::deploy::Grant;
use crate::observe::{self, PipelineView, store_error};
use crate::rules::{number_rule, string_rule, violations};
use crate::wait::{self, Check, WaitError};

/// Default time to wait for the runner to apply a change.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The `streaming_pipeline` resource.
pub struct PipelineResource;

/// The resource's Terraform shape. `source` and `target` are the spec's own types: the blocks
/// have exactly the spec's fields, so what Terraform accepts is what the runner runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PipelineModel {
    id: Option<String>,
    pipeline_id: Option<String>,
    runner_id: Option<String>,
    name: Option<String>,
    state: Option<String>,
    pinned_version: Option<u64>,
    restart_trigger: Option<String>,
    on_schema_change: Option<SchemaChangePolicy>,
    max_consecutive_failures: Option<u32>,
    drop_slot_on_destroy: Option<bool>,
    wait_for_runner: Option<bool>,
    source: Option<SourceSpec>,
    target: Option<TargetSpec>,
    version: Option<u64>,
    deployed_version: Option<u64>,
    phase: Option<String>,
    lag_seconds: Option<f64>,
    source_position: Option<String>,
    rows_delivered: Option<u64>,
    last_error: Option<String>,
    timeouts: Option<BTreeMap<String, Option<String>>>,
}

impl PipelineModel {
    /// The spec this configuration describes, with defaults of the pipeline id filled in.
    fn spec(&self, pipeline_id: &str) -> PipelineSpec {
        let mut source = self.source.clone().unwrap_or_default();
        if let Some(postgres) = &mut source.postgres {
            postgres.slot = Some(postgres.slot_name(pipeline_id));
            postgres.publication = Some(postgres.publication_name(pipeline_id));
        }
        PipelineSpec {
            name: self.name.clone().unwrap_or_default(),
            source,
            target: self.target.clone().unwrap_or_else(|| TargetSpec {
                uri: String::new(),
                format: Format::default(),
                flush_interval: spec_pipeline::DEFAULT_FLUSH_INTERVAL.into(),
                target_file_size: spec_pipeline::DEFAULT_TARGET_FILE_SIZE.into(),
            }),
            on_schema_change: self.on_schema_change.unwrap_or_default(),
            max_consecutive_failures: self
                .max_consecutive_failures
                .unwrap_or(spec_pipeline::DEFAULT_MAX_CONSECUTIVE_FAILURES),
        }
    }

    fn pipeline_state(&self) -> PipelineState {
        if self.state.as_deref() == Some("paused") {
            PipelineState::Paused
        } else {
            PipelineState::Running
        }
    }

    /// The parts that make a pipeline version; a change of any of them writes a new version.
    fn versioned(&self) -> VersionedFields<'_> {
        VersionedFields {
            name: &self.name,
            source: &self.source,
            target: &self.target,
            on_schema_change: self.on_schema_change,
            max_consecutive_failures: self.max_consecutive_failures,
        }
    }
}

/// The configuration a version is made of.
#[derive(Debug, PartialEq)]
struct VersionedFields<'a> {
    name: &'a Option<String>,
    source: &'a Option<SourceSpec>,
    target: &'a Option<TargetSpec>,
    on_schema_change: Option<SchemaChangePolicy>,
    max_consecutive_failures: Option<u32>,
}

/// The schema, built once: plans of large fleets read and upgrade every resource, and building
/// it (validators included) costs more than the rest of a read.
fn schema() -> &'static Schema {
    static SCHEMA: LazyLock<Schema> = LazyLock::new(build_schema);
    &SCHEMA
}

fn build_schema() -> Schema {
    Schema::new(
        Block::new()
            .description(
                "One change-data-capture pipeline, assigned to a runner: a source database's change log streamed into a \
                 lake folder. Each configuration change writes a new immutable version; the runner runs the latest, or \
                 `pinned_version`.",
            )
            .attribute(
                Attribute::string("id")
                    .computed()
                    .description("The pipeline's address: `<runner id>/pipelines/<pipeline_id>`; `terraform import` takes it.")
                    .plan_modifier(use_state_for_unknown()),
            )
            .attribute(
                Attribute::string("pipeline_id")
                    .computed()
                    .description("The pipeline's id: its name's slug and a random suffix. It prefixes the pipeline's file names in the lake.")
                    .plan_modifier(use_state_for_unknown()),
            )
            .attribute(
                Attribute::string("runner_id")
                    .required()
                    .description("The `id` of the `streaming_runner` that runs this pipeline. A runner runs one pipeline. Changing it replaces the pipeline.")
                    .validator(string_rule("the id of a streaming_runner", RunnerAddress::parse))
                    .plan_modifier(requires_replace()),
            )
            .attribute(
                Attribute::string("name")
                    .required()
                    .description("Display name.")
                    .validator(string_rule("1 to 64 characters of `A-Z`, `a-z`, `0-9`, space (not first), `-` and `_`", |name| {
                        rules::display_name(name, rules::PIPELINE_NAME_MAX)
                    })),
            )
            .attribute(
                Attribute::string("state")
                    .optional()
                    .computed()
                    .default("running")
                    .description(
                        "`running` or `paused`. Pausing stops consuming without losing the slot's position; resuming continues \
                         from it. A pipeline created `paused` skips the initial backfill when resumed (to move a slot between runners).",
                    )
                    .validator(one_of(&["running", "paused"])),
            )
            .attribute(
                Attribute::number("pinned_version")
                    .optional()
                    .description("Run this version instead of the latest (a rollback). Remove it to run the latest again.")
                    .validator(int_between(1, i64::from(u32::MAX))),
            )
            .attribute(
                Attribute::string("restart_trigger")
                    .optional()
                    .description("Any value; changing it restarts the pipeline and takes it out of `crash_loop`."),
            )
            .attribute(
                Attribute::string("on_schema_change")
                    .optional()
                    .computed()
                    .default("evolve")
                    .description("What the runner does when a source table's columns change: `evolve` (new files carry the new schema) or `fail` (stop with an error).")
                    .validator(one_of(&SchemaChangePolicy::ALL)),
            )
            .attribute(
                Attribute::number("max_consecutive_failures")
                    .optional()
                    .computed()
                    .default(i64::from(spec_pipeline::DEFAULT_MAX_CONSECUTIVE_FAILURES))
                    .description("Failures in a row (retried with backoff) after which the pipeline enters `crash_loop` and stops retrying until the configuration or `restart_trigger` changes.")
                    .validator(number_rule("from 1 to 1000", spec_pipeline::max_consecutive_failures)),
            )
            .attribute(
                Attribute::bool("drop_slot_on_destroy")
                    .optional()
                    .computed()
                    .default(false)
                    .description("Whether destroying the pipeline drops its replication slot (and its publication, when the runner created it). Off by default: a kept slot lets another pipeline resume where this one stopped; a kept slot also keeps WAL.")
            )
            .attribute(
                Attribute::bool("wait_for_runner")
                    .optional()
                    .computed()
                    .default(true)
                    .description("Whether create, update and delete wait (within `timeouts`) until the runner reports it applied the change."),
            )
            .block(NestedBlock::single("source", source_block()).min_items(1).max_items(1))
            .block(NestedBlock::single("target", target_block()).min_items(1).max_items(1))
            .attribute(Attribute::number("version").computed().description("The latest version of the configuration. Every change of `name`, `source`, `target`, `on_schema_change` or `max_consecutive_failures` adds one."))
            .attribute(Attribute::number("deployed_version").computed().description("The version the runner runs (as it last reported)."))
            .attribute(Attribute::string("phase").computed().description("What the pipeline does: `starting`, `backfilling`, `streaming`, `paused`, `failed` (retrying) or `crash_loop`."))
            .attribute(Attribute::number("lag_seconds").computed().description("Age of the oldest change not yet in the lake, in seconds."))
            .attribute(Attribute::string("source_position").computed().description("The last source position durably in the lake (for PostgreSQL the commit LSN as 16 hex digits, and the order in its transaction)."))
            .attribute(Attribute::number("rows_delivered").computed().description("Rows written to the lake since the pipeline was created."))
            .attribute(Attribute::string("last_error").computed().description("The last error, until the pipeline runs cleanly again."))
            .timeouts(&["create", "update", "delete"]),
    )
}

fn source_block() -> Block {
    Block::new()
        .description("The source database: exactly one of the blocks below.")
        .block(NestedBlock::single("postgres", postgres_block()))
        .validator(exactly_one_of(&spec_pipeline::SOURCE_KINDS))
}

fn postgres_block() -> Block {
    let separate = ["host", "port", "database", "user"];
    Block::new()
        .description(
            "PostgreSQL logical replication (pgoutput), PostgreSQL 10 or later with `wal_level = logical`. Give either `url` \
             or `host`, `database` and `user`. The role needs the REPLICATION attribute and SELECT on the tables.",
        )
        .attribute(
            Attribute::string("url")
                .optional()
                .description("`postgresql://user@host:port/database?sslmode=…`, instead of the separate fields. It must not contain a password.")
                .validator(conflicts_with(&separate))
                .validator(custom("a postgresql:// URL without a password", |request| {
                    let url = request.value.as_str().unwrap_or_default();
                    let probe = lakestream_spec::pipeline::PostgresSpec { url: Some(url.to_owned()), tables: vec!["t".into()], ..Default::default() };
                    probe.connection().map(drop).map_err(|message| format!("{}: {message}", request.path))
                })),
        )
        .attribute(Attribute::string("host").optional().description("Server host name or address.").validator(string_rule("a host name or address", rules::host)))
        .attribute(Attribute::number("port").optional().description("Server port; 5432 when not set.").validator(number_rule("from 1 to 65535", rules::port)))
        .attribute(Attribute::string("database").optional().description("Database name.").validator(string_rule("1 to 63 bytes", rules::pg_identifier)))
        .attribute(Attribute::string("user").optional().description("Role to connect as; it needs the REPLICATION attribute.").validator(string_rule("1 to 63 bytes", rules::pg_identifier)))
        .block(NestedBlock::single("password", secret_block()))
        .attribute(
            Attribute::string("sslmode")
                .optional()
                .description("TLS mode, as libpq's `sslmode`; `prefer` when not set.")
                .validator(one_of(&SslMode::ALL)),
        )
        .attribute(
            Attribute::string("ssl_root_cert")
                .optional()
                .description("CA certificate file (on the runner) for `verify-ca` and `verify-full`.")
                .validator(string_rule("an absolute path", rules::absolute_path)),
        )
        .attribute(
            Attribute::list("tables", Type::String)
                .required()
                .description("Tables to capture, as `schema.table` or `table` (schema `public`); quote parts that need upper case, as in SQL.")
                .validator(length_at_least(1))
                .validator(each_element(string_rule("schema.table or table", rules::table_name))),
        )
        .attribute(
            Attribute::string("publication")
                .optional()
                .computed()
                .description("Publication to read; `lakestream_<pipeline_id>` by default.")
                .validator(string_rule("1 to 63 bytes", rules::pg_identifier))
                .plan_modifier(use_state_for_unknown()),
        )
        .attribute(
            Attribute::bool("create_publication")
                .optional()
                .computed()
                .default(true)
                .description("Create the publication (FOR TABLE the listed tables) when it does not exist."),
        )
        .attribute(
            Attribute::string("slot")
                .optional()
                .computed()
                .description("Replication slot; `lakestream_<pipeline_id>` by default. Name an existing slot to continue from it (with `state = \"paused\"` at create, to skip the backfill).")
                .validator(string_rule("1 to 63 characters of a-z, 0-9 and '_'", rules::slot_name))
                .plan_modifier(use_state_for_unknown()),
        )
        .validator(custom("host, database and user are required unless url is given", |request| {
            if request.sibling_is_set("url") != Some(false) {
                return Ok(());
            }
            let missing: Vec<&str> = ["host", "database", "user"].into_iter().filter(|name| request.sibling_is_set(name) == Some(false)).collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("{}: give url, or host, database and user (missing: {})", request.path, missing.join(", ")))
            }
        }))
}

fn secret_block() -> Block {
    Block::new()
        .description(
            "Where the role's password lives. The runner reads it at run time with its own identity; the value never enters \
             Terraform state, plan output or the control store.",
        )
        .attribute(
            Attribute::string("type")
                .required()
                .description("`env` (an environment variable of the runner) or `file` (a file the runner can read).")
                .validator(one_of(&SecretKind::ALL)),
        )
        .attribute(
            Attribute::string("name")
                .required()
                .description("The variable name (`env`) or absolute file path (`file`).")
                .validator(custom("an environment variable name for env, an absolute path for file", |request| {
                    let name = request.value.as_str().unwrap_or_default();
                    let outcome = match request.sibling("type").as_str() {
                        Some("env") => rules::env_var_name(name),
                        Some("file") => rules::absolute_path(name),
                        _ => Ok(()),
                    };
                    outcome.map_err(|message| format!("{}: {message}", request.path))
                })),
        )
        .attribute(Attribute::string("key").optional().description("When the secret is a JSON object, the key whose value is the password."))
}

fn target_block() -> Block {
    Block::new()
        .description("Where change files go: one folder per source table, each file holding the changes of one position range.")
        .attribute(
            Attribute::string("uri")
                .required()
                .description("The lake folder: `file:///<absolute folder>`, `s3://<bucket>/<prefix>`, `az://<container>/<prefix>` or `abfss://<container>@<account>.dfs.core.windows.net/<prefix>`.")
                .validator(custom("a store URL naming a folder", |request| {
                    let format = format_of(request.sibling("format"));
                    spec_pipeline::lake_uri(request.value.as_str().unwrap_or_default(), format)
                        .map(drop)
                        .map_err(|message| format!("{}: {message}", request.path))
                })),
        )
        .attribute(
            Attribute::string("format")
                .optional()
                .computed()
                .default("parquet")
                .description("`parquet` (Snappy-compressed), `jsonl` (JSON Lines) or `avro` (Snappy-compressed object container files).")
                .validator(one_of(&Format::ALL)),
        )
        .attribute(
            Attribute::string("flush_interval")
                .optional()
                .computed()
                .default(spec_pipeline::DEFAULT_FLUSH_INTERVAL)
                .description("Longest time a change waits in memory before it is written. Longer intervals make fewer, larger files.")
                .validator(string_rule(&format!("a duration from `{}` to `{}`", duration::format(FLUSH_INTERVAL_RANGE.0), duration::format(FLUSH_INTERVAL_RANGE.1)), |text| duration::between(text, FLUSH_INTERVAL_RANGE.0, FLUSH_INTERVAL_RANGE.1))),
        )
        .attribute(
            Attribute::string("target_file_size")
                .optional()
                .computed()
                .default(spec_pipeline::DEFAULT_TARGET_FILE_SIZE)
                .description("Buffered size at which changes are written without waiting for `flush_interval`, e.g. `\"64MiB\"`. It bounds the runner's memory too.")
                .validator(string_rule(&format!("a size from `{}` to `{}`", size::format(TARGET_FILE_SIZE_RANGE.0), size::format(TARGET_FILE_SIZE_RANGE.1)), |text| size::between(text, TARGET_FILE_SIZE_RANGE.0, TARGET_FILE_SIZE_RANGE.1))),
        )
}

/// The format a `format` value names; the default when it is not set (yet).
fn format_of(value: &Value) -> Format {
    match value.as_str() {
        Some("jsonl") => Format::Jsonl,
        Some("avro") => Format::Avro,
        _ => Format::default(),
    }
}

/// A diagnostic on `runner_id`.
fn runner_error(summary: &str, detail: impl Into<String>) -> Diagnostic {
    Diagnostic::attribute_error(AttributePath::root("runner_id"), summary, detail)
}

/// Why an assignment was refused.
enum Refusal {
    Busy(String),
}

impl PipelineResource {
    async fn control(
        &self,
        context: &Context,
        runner_id: &str,
    ) -> Result<(RunnerAddress, RunnerControl), Diagnostic> {
        let address = RunnerAddress::parse(runner_id)
            .map_err(|message| runner_error("Invalid Runner Id", message))?;
        let control = ProviderContext::of(context)
            .runner_control(&address)
            .await?;
        match control.record().await.map_err(store_error)? {
            Some(_) => Ok((address, control)),
            None => Err(runner_error(
                "Runner Not Found",
                format!(
                    "There is no runner {} in {} (no runner.json). Create the streaming_runner first, or check runner_id.",
                    address.runner_id, address.control_store
                ),
            )),
        }
    }

    /// A diagnostic naming the pipeline that holds a runner.
    /// The display name of a pipeline (its latest version's), if it can be read.
    async fn pipeline_name(&self, control: &RunnerControl, pipeline_id: &str) -> Option<String> {
        let latest = *control.version_numbers(pipeline_id).await.ok()?.last()?;
        control
            .version(pipeline_id, latest)
            .await
            .ok()
            .flatten()
            .map(|v| v.spec.name)
    }

    /// A diagnostic naming the pipeline that holds a runner.
    async fn busy(&self, control: &RunnerControl, holder: &str) -> Diagnostic {
        let holder = match self.pipeline_name(control, holder).await {
            Some(name) => format!("pipeline {holder} ({name:?})"),
            None => format!("pipeline {holder}"),
        };
        runner_error(
            "Runner Busy",
            format!(
                "Runner {} already runs {holder}; a runner runs one pipeline. Assign this pipeline to another streaming_runner.",
                control.runner_id()
            ),
        )
    }

    /// Points `desired.json` at `assignment`; refuses when another pipeline holds the runner.
    async fn assign(
        &self,
        control: &RunnerControl,
        assignment: Assignment,
    ) -> Result<Desired, Diagnostic> {
        let id = assignment.pipeline_id.clone();
        let outcome = control
            .update_desired(|desired| match &desired.pipeline {
                Some(other) if other.pipeline_id != id => {
                    Err(Refusal::Busy(other.pipeline_id.clone()))
                }
                _ => {
                    desired.pipeline = Some(assignment.clone());
                    desired.retire.retain(|r| r.pipeline_id != id);
                    Ok(())
                }
            })
            .await;
        match outcome {
            Ok(desired) => Ok(desired),
            Err(lakestream_control::runner::DesiredError::Refused(Refusal::Busy(holder))) => {
                Err(self.busy(control, &holder).await)
            }
            Err(lakestream_control::runner::DesiredError::Store(err)) => Err(store_error(err)),
        }
    }

    /// Waits until the runner applied `generation` and the pipeline settled (running,
    /// backfilling, streaming or paused); a failure the runner reports is returned as an error.
    async fn wait_applied(
        &self,
        context: &Context,
        control: &RunnerControl,
        pipeline_id: &str,
        generation: u64,
        timeout: Duration,
    ) -> Result<(), Diagnostic> {
        let desired = control
            .desired()
            .await
            .map_err(store_error)?
            .map(|d| d.value)
            .unwrap_or_default();
        if desired.runner_state == RunnerState::Stopped {
            return Ok(());
        }
        let outcome = wait::until(context, timeout, || async {
            let status = match control.status().await {
                Ok(Some(status)) => status,
                Ok(None) => return Check::Pending("the runner has not reported yet".into()),
                Err(err) => return Check::Pending(err.to_string()),
            };
            if status.observed_generation < generation {
                return Check::Pending(format!(
                    "the runner applied generation {} of {generation}",
                    status.observed_generation
                ));
            }
            match status.pipeline.filter(|p| p.pipeline_id == pipeline_id) {
                None => Check::Done(()),
                Some(PipelineStatus {
                    phase: phase @ (Phase::Failed | Phase::CrashLoop),
                    last_error,
                    ..
                }) => Check::Failed(format!(
                    "the pipeline is {}: {}",
                    phase.as_str(),
                    last_error.unwrap_or_default()
                )),
                Some(PipelineStatus {
                    phase: Phase::Starting,
                    ..
                }) => Check::Pending("the pipeline is starting".into()),
                Some(_) => Check::Done(()),
            }
        })
        .await;
        match outcome {
            Ok(()) => Ok(()),
            Err(WaitError::Failed(why)) => Err(Diagnostic::error(
                "Pipeline Failed",
                format!("Pipeline {pipeline_id}: {why}"),
            )),
            Err(WaitError::TimedOut(last)) => Err(Diagnostic::error(
                "Runner Did Not Apply The Change",
                format!(
                    "Runner {} did not report pipeline {pipeline_id} within {timeout:?}: {last}. Is the runner running? Raise timeouts or set wait_for_runner = false.",
                    control.runner_id()
                ),
            )),
            Err(WaitError::Cancelled) => Err(Diagnostic::error(
                "Interrupted",
                "Terraform asked the provider to stop while waiting for the runner.",
            )),
        }
    }

    /// The state for a pipeline as seen now; configuration-only attributes come from `known`.
    fn state(
        &self,
        view: &PipelineView,
        address: &PipelineAddress,
        known: &PipelineModel,
    ) -> Result<Value, Diagnostic> {
        let spec = &view.latest.spec;
        let importing = known.runner_id.is_none();
        let assigned_version = view.assignment.as_ref().map(|a| a.version);
        let pinned_version = if importing {
            assigned_version.filter(|v| *v != view.latest.version)
        } else {
            known.pinned_version
        };
        let state = match &view.assignment {
            Some(assignment) if assignment.state == PipelineState::Running => "running",
            _ => "paused",
        };
        let model = PipelineModel {
            id: Some(address.id()),
            pipeline_id: Some(address.pipeline_id.clone()),
            runner_id: Some(address.runner.id()),
            name: Some(spec.name.clone()),
            state: Some(state.into()),
            pinned_version,
            restart_trigger: known.restart_trigger.clone(),
            on_schema_change: Some(spec.on_schema_change),
            max_consecutive_failures: Some(spec.max_consecutive_failures),
            drop_slot_on_destroy: Some(known.drop_slot_on_destroy.unwrap_or(false)),
            wait_for_runner: Some(known.wait_for_runner.unwrap_or(true)),
            source: Some(spec.source.clone()),
            target: Some(spec.target.clone()),
            version: Some(view.latest.version),
            deployed_version: view
                .status
                .as_ref()
                .map(|s| s.deployed_version)
                .or(assigned_version),
            phase: Some(match (&view.status, &view.assignment) {
                (Some(status), _) => status.phase.as_str().into(),
                (None, Some(a)) if a.state == PipelineState::Paused => {
                    Phase::Paused.as_str().into()
                }
                _ => Phase::Starting.as_str().into(),
            }),
            lag_seconds: view.status.as_ref().and_then(|s| s.lag_seconds),
            source_position: view.status.as_ref().and_then(|s| s.source_position.clone()),
            rows_delivered: view.status.as_ref().map(|s| s.rows_delivered),
            last_error: view.status.as_ref().and_then(|s| s.last_error.clone()),
            timeouts: known.timeouts.clone(),
        };
        schema().to_value(&model)
    }

    async fn read_state(
        &self,
        context: &Context,
        address: &PipelineAddress,
        known: &PipelineModel,
    ) -> Result<Option<Value>, Diagnostic> {
        match observe::pipeline(address, context).await? {
            Some(view) => self.state(&view, address, known).map(Some),
            None => Ok(None),
        }
    }

    /// Writes a new version, lets the runner's identity reach the assigned version's lake and
    /// secrets, and assigns the pipeline; returns the desired generation to wait for.
    async fn deploy(
        &self,
        context: &Context,
        control: &RunnerControl,
        pipeline_id: &str,
        model: &PipelineModel,
        new_version: Option<u64>,
        assignment: Assignment,
    ) -> Result<u64, Diagnostics> {
        if let Some(version) = new_version {
            let spec = model.spec(pipeline_id);
            let mut diagnostics = Diagnostics::new();
            violations(&spec.validate(), &AttributePath::empty(), &mut diagnostics);
            if diagnostics.has_errors() {
                return Err(diagnostics);
            }
            let document = PipelineVersion {
                pipeline_id: pipeline_id.to_owned(),
                version,
                spec,
                created_at: OffsetDateTime::now_utc(),
            };
            control
                .put_version(&document)
                .await
                .map_err(|err| Diagnostics::from(store_error(err)))?;
        }
        let assigned = control
            .version(pipeline_id, assignment.version)
            .await
            .map_err(|err| Diagnostics::from(store_error(err)))?
            .ok_or_else(|| {
                Diagnostics::from(Diagnostic::error(
                    "Version Not Found",
                    format!(
                        "Version {} of pipeline {pipeline_id} is not in the control store.",
                        assignment.version
                    ),
                ))
            })?;
        self.access(context, control, |deployment, record| {
            let grant = Grant {
                pipeline_id: pipeline_id.to_owned(),
                lake: assigned
                    .spec
                    .target
                    .store_url()
                    .unwrap_or_else(|_| control.store().url().clone()),
                secrets: assigned
                    .spec
                    .source
                    .postgres
                    .iter()
                    .filter_map(|p| p.password.clone())
                    .collect(),
            };
            async move { deployment.grant(&record, &grant).await }
        })
        .await?;
        let desired = self
            .assign(control, assignment)
            .await
            .map_err(Diagnostics::from)?;
        Ok(desired.generation)
    }

    /// Runs `change` (a grant or a revoke) on the runner's deployment.
    async fn access<F, Fut>(
        &self,
        context: &Context,
        control: &RunnerControl,
        change: F,
    ) -> Result<(), Diagnostics>
    where
        F: FnOnce(Box<dyn crate::deploy::Deployment>, serde_json::Value) -> Fut,
        Fut: std::future::Future<Output = Result<(), crate::deploy::DeployError>>,
    {
        let record = control
            .record()
            .await
            .map_err(|err| Diagnostics::from(store_error(err)))?
            .ok_or_else(|| {
                Diagnostics::from(runner_error(
                    "Runner Not Found",
                    format!("Runner {} has no runner.json.", control.runner_id()),
                ))
            })?;
        let provider = context.provider_data::<ProviderContext>().ok();
        let deployment = crate::deploy::for_record(&record.deployment, provider.as_deref())
            .await
            .map_err(|err| {
                Diagnostics::from(Diagnostic::error("Runner Unavailable", err.message))
            })?;
        change(deployment, record.deployment.settings.clone())
            .await
            .map_err(|err| {
                Diagnostics::from(Diagnostic::error(
                    "Access Not Granted",
                    format!("Runner {}: {err}", control.runner_id()),
                ))
            })
    }
}

#[tfplugin::async_trait]
impl Resource for PipelineResource {
    fn type_name(&self) -> &str {
        "streaming_pipeline"
    }

    fn schema(&self) -> Schema {
        schema().clone()
    }

    async fn modify_plan(&self, context: &Context, plan: &mut ModifyPlan) {
        if plan.planned.is_null() {
            return;
        }
        let planned: PipelineModel = match plan.planned.unknowns_as_null().to_typed() {
            Ok(model) => model,
            Err(err) => {
                plan.diagnostics.push(Diagnostic::from(err));
                return;
            }
        };
        // The whole spec, checked with the runner's rules, where the configuration is known
        // (computed parts such as the default slot name may still be unknown; they are not
        // needed to judge the rest).
        let versioned_known = [
            "name",
            "source",
            "target",
            "on_schema_change",
            "max_consecutive_failures",
        ]
        .iter()
        .all(|name| plan.config.attribute(name).is_wholly_known());
        if versioned_known {
            let spec = planned.spec(planned.pipeline_id.as_deref().unwrap_or("x"));
            violations(
                &spec.validate(),
                &AttributePath::empty(),
                &mut plan.diagnostics,
            );
        }
        let creating = plan.prior.is_null();
        let prior: PipelineModel = if creating {
            PipelineModel::default()
        } else {
            plan.prior.to_typed().unwrap_or_default()
        };
        let version = if creating {
            Some(1)
        } else if versioned_known && prior.versioned() == planned.versioned() {
            prior.version
        } else if versioned_known {
            prior.version.map(|v| v + 1)
        } else {
            None
        };
        if let (Some(pinned), Some(latest)) = (planned.pinned_version, version)
            && pinned > latest
        {
            plan.diagnostics.push(Diagnostic::attribute_error(
                AttributePath::root("pinned_version"),
                "Invalid Attribute Value",
                format!("pinned_version: version {pinned} does not exist; this pipeline's versions are 1 to {latest}"),
            ));
        }
        plan.planned.set_at(
            &AttributePath::root("version"),
            version.map_or(Value::Unknown, |v| Value::from(v as i64)),
        );
        // A runner that is seen busy with another pipeline fails the plan, not the apply. A
        // create can also be the second half of a replacement (a tainted pipeline, say), whose
        // predecessor still holds the runner and goes first; Terraform does not say which, so
        // only a holder with another name is refused here. Apply refuses every other case.
        if creating
            && let Some(Ok(address)) = plan
                .planned
                .attribute("runner_id")
                .as_str()
                .map(RunnerAddress::parse)
            && let Ok(control) = ProviderContext::of(context).runner_control(&address).await
            && let Ok(Some(desired)) = control.desired().await
            && let Some(holder) = desired.value.pipeline
            && self.pipeline_name(&control, &holder.pipeline_id).await != planned.name
        {
            plan.diagnostics
                .push(self.busy(&control, &holder.pipeline_id).await);
        }
    }

    async fn create(&self, context: &Context, request: CreateRequest) -> ApplyResponse {
        let timeouts = Timeouts::from_resource(&request.planned).unwrap_or_default();
        let model: PipelineModel = match request.planned.unknowns_as_null().to_typed() {
            Ok(model) => model,
            Err(err) => return ApplyResponse::failed(Diagnostic::from(err)),
        };
        let (runner, control) = match self
            .control(context, model.runner_id.as_deref().unwrap_or_default())
            .await
        {
            Ok(found) => found,
            Err(diagnostic) => return ApplyResponse::failed(diagnostic),
        };
        let address = PipelineAddress {
            runner,
            pipeline_id: new_id(model.name.as_deref().unwrap_or_default()),
        };
        let state = model.pipeline_state();
        let assignment = Assignment {
            pipeline_id: address.pipeline_id.clone(),
            version: model.pinned_version.unwrap_or(1),
            state,
            backfill_generation: u64::from(state == PipelineState::Running),
            restart_generation: 0,
        };
        let generation = match self
            .deploy(
                context,
                &control,
                &address.pipeline_id,
                &model,
                Some(1),
                assignment,
            )
            .await
        {
            Ok(generation) => generation,
            Err(diagnostics) => {
                // Nothing is assigned: remove the version written, so nothing is left behind.
                let _ = control.delete_pipeline(&address.pipeline_id).await;
                return ApplyResponse {
                    diagnostics,
                    ..ApplyResponse::default()
                };
            }
        };
        let mut response = ApplyResponse::default();
        if model.wait_for_runner != Some(false)
            && let Err(diagnostic) = self
                .wait_applied(
                    context,
                    &control,
                    &address.pipeline_id,
                    generation,
                    timeouts.create(DEFAULT_TIMEOUT),
                )
                .await
        {
            response.diagnostics.push(diagnostic);
        }
        match self.read_state(context, &address, &model).await {
            Ok(Some(state)) => response.state = state,
            Ok(None) => response.diagnostics.push(Diagnostic::error(
                "Pipeline Vanished",
                format!("Pipeline {} disappeared during create.", address.id()),
            )),
            Err(diagnostic) => response.diagnostics.push(diagnostic),
        }
        response
    }

    async fn read(&self, context: &Context, request: ReadRequest) -> ReadResponse {
        let known: PipelineModel = request
            .state
            .unknowns_as_null()
            .to_typed()
            .unwrap_or_default();
        // After an import the state holds nothing but the id, so it is read from the value.
        let address = match request
            .state
            .attribute("id")
            .as_str()
            .map(PipelineAddress::parse)
        {
            Some(Ok(address)) => address,
            Some(Err(message)) => {
                return ReadResponse::failed(Diagnostic::error("Invalid Pipeline Id", message));
            }
            None => return ReadResponse::gone(),
        };
        match self.read_state(context, &address, &known).await {
            Ok(Some(state)) => ReadResponse::found(state),
            Ok(None) => ReadResponse::gone(),
            Err(diagnostic) => ReadResponse::failed(diagnostic),
        }
    }

    async fn update(&self, context: &Context, request: UpdateRequest) -> ApplyResponse {
        let timeouts = Timeouts::from_resource(&request.planned).unwrap_or_default();
        let (prior, model): (PipelineModel, PipelineModel) = match (
            request.prior.to_typed(),
            request.planned.unknowns_as_null().to_typed(),
        ) {
            (Ok(prior), Ok(model)) => (prior, model),
            (Err(err), _) | (_, Err(err)) => return ApplyResponse::failed(Diagnostic::from(err)),
        };
        let address = match PipelineAddress::parse(prior.id.as_deref().unwrap_or_default()) {
            Ok(address) => address,
            Err(message) => {
                return ApplyResponse::failed(Diagnostic::error("Invalid Pipeline Id", message));
            }
        };
        let view = match observe::pipeline(&address, context).await {
            Ok(Some(view)) => view,
            Ok(None) => {
                return ApplyResponse::failed(Diagnostic::error(
                    "Pipeline Not Found",
                    format!(
                        "Pipeline {} is no longer in the control store.",
                        address.id()
                    ),
                ));
            }
            Err(diagnostic) => return ApplyResponse::failed(diagnostic),
        };
        let latest = view.latest.version;
        if prior.version.is_some_and(|v| v != latest) {
            return ApplyResponse::failed(Diagnostic::error(
                "Versions Changed Outside Terraform",
                format!(
                    "Pipeline {} has version {latest} in the control store, but state knows {}. Run terraform apply -refresh-only, then plan again.",
                    address.pipeline_id,
                    prior.version.unwrap_or_default()
                ),
            ));
        }
        let new_version = (prior.versioned() != model.versioned()).then_some(latest + 1);
        let version = new_version.unwrap_or(latest);
        let previous = view.assignment.clone();
        let state = model.pipeline_state();
        let assignment = Assignment {
            pipeline_id: address.pipeline_id.clone(),
            version: model.pinned_version.unwrap_or(version),
            state,
            backfill_generation: previous.as_ref().map_or(0, |a| a.backfill_generation),
            restart_generation: previous.as_ref().map_or(0, |a| a.restart_generation)
                + u64::from(prior.restart_trigger != model.restart_trigger),
        };
        if let Some(pinned) = model.pinned_version
            && pinned > version
        {
            return ApplyResponse::failed(Diagnostic::attribute_error(
                AttributePath::root("pinned_version"),
                "Invalid Attribute Value",
                format!(
                    "pinned_version: version {pinned} does not exist; this pipeline's versions are 1 to {version}"
                ),
            ));
        }
        let control = view.runner.control.clone();
        let generation = match self
            .deploy(
                context,
                &control,
                &address.pipeline_id,
                &model,
                new_version,
                assignment,
            )
            .await
        {
            Ok(generation) => generation,
            Err(diagnostics) => {
                return ApplyResponse {
                    diagnostics,
                    ..ApplyResponse::default()
                };
            }
        };
        let mut response = ApplyResponse::default();
        if model.wait_for_runner != Some(false)
            && let Err(diagnostic) = self
                .wait_applied(
                    context,
                    &control,
                    &address.pipeline_id,
                    generation,
                    timeouts.update(DEFAULT_TIMEOUT),
                )
                .await
        {
            response.diagnostics.push(diagnostic);
        }
        match self.read_state(context, &address, &model).await {
            Ok(Some(state)) => response.state = state,
            Ok(None) => response.diagnostics.push(Diagnostic::error(
                "Pipeline Vanished",
                format!("Pipeline {} disappeared during the update.", address.id()),
            )),
            Err(diagnostic) => response.diagnostics.push(diagnostic),
        }
        response
    }

    async fn delete(&self, context: &Context, request: DeleteRequest) -> Diagnostics {
        let known: PipelineModel = request
            .prior
            .unknowns_as_null()
            .to_typed()
            .unwrap_or_default();
        let timeouts = Timeouts::from_resource(&request.prior).unwrap_or_default();
        let Some(Ok(address)) = known.id.as_deref().map(PipelineAddress::parse) else {
            return Diagnostics::new();
        };
        let view = match observe::pipeline(&address, context).await {
            Ok(Some(view)) => view,
            Ok(None) => return Diagnostics::new(),
            Err(diagnostic) => return diagnostic.into(),
        };
        let control = view.runner.control.clone();
        let id = address.pipeline_id.clone();
        let drop_slot = known.drop_slot_on_destroy == Some(true);
        let latest = view.latest.version;
        let unassigned = control
            .update_desired(|desired| {
                if desired
                    .pipeline
                    .as_ref()
                    .is_some_and(|p| p.pipeline_id == id)
                {
                    desired.pipeline = None;
                }
                if drop_slot && !desired.retire.iter().any(|r| r.pipeline_id == id) {
                    desired.retire.push(Retirement {
                        pipeline_id: id.clone(),
                        version: latest,
                        drop_slot: true,
                    });
                }
                Ok::<_, std::convert::Infallible>(())
            })
            .await;
        let generation = match unassigned {
            Ok(desired) => desired.generation,
            Err(err) => return store_error(err).into(),
        };
        let runner_runs = view.runner.observation.running
            && view.runner.desired.runner_state == RunnerState::Running;
        if runner_runs
            && known.wait_for_runner != Some(false)
            && let Err(diagnostic) = self
                .wait_applied(
                    context,
                    &control,
                    &id,
                    generation,
                    timeouts.delete(DEFAULT_TIMEOUT),
                )
                .await
        {
            return diagnostic.into();
        }
        if drop_slot {
            if !runner_runs {
                return Diagnostic::error(
                    "Runner Not Running",
                    format!("Dropping the replication slot of pipeline {id} needs its runner running (it connects to the database). Start the runner, or set drop_slot_on_destroy = false."),
                )
                .into();
            }
            let outcome = wait::until(context, timeouts.delete(DEFAULT_TIMEOUT), || async {
                match control.status().await {
                    Ok(Some(status)) => {
                        match status.retired.into_iter().find(|r| r.pipeline_id == id) {
                            Some(retired) => match retired.error {
                                None => Check::Done(()),
                                Some(error) => Check::Failed(error),
                            },
                            None => {
                                Check::Pending("the runner has not dropped the slot yet".into())
                            }
                        }
                    }
                    Ok(None) => Check::Pending("no status".into()),
                    Err(err) => Check::Pending(err.to_string()),
                }
            })
            .await;
            match outcome {
                Ok(()) => {}
                Err(WaitError::Failed(error)) => {
                    return Diagnostic::error(
                        "Slot Not Dropped",
                        format!("Pipeline {id}: {error}"),
                    )
                    .into();
                }
                Err(WaitError::TimedOut(last)) => {
                    return Diagnostic::error("Slot Not Dropped", format!("Pipeline {id}: {last}"))
                        .into();
                }
                Err(WaitError::Cancelled) => {
                    return Diagnostic::error(
                        "Interrupted",
                        "Terraform asked the provider to stop.",
                    )
                    .into();
                }
            }
        }
        let revoked = self.access(context, &control, |deployment, record| {
            let id = id.clone();
            async move { deployment.revoke(&record, &id).await }
        });
        if let Err(diagnostics) = revoked.await {
            return diagnostics;
        }
        if let Err(err) = control.delete_pipeline(&id).await {
            return store_error(err).into();
        }
        if drop_slot {
            let _ = control
                .update_desired(|desired| {
                    desired.retire.retain(|r| r.pipeline_id != id);
                    Ok::<_, std::convert::Infallible>(())
                })
                .await;
        }
        Diagnostics::new()
    }

    async fn import(&self, _context: &Context, request: ImportRequest) -> ImportResponse {
        match PipelineAddress::parse(&request.id) {
            Ok(address) => ImportResponse::passthrough_id(schema(), "id", &address.id()),
            Err(message) => ImportResponse {
                resources: Vec::new(),
                diagnostics: Diagnostic::error("Invalid Import Id", message).into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blocks must carry exactly the spec's fields: a spec converted to a Terraform value
    /// and back is unchanged, and a Terraform object converts to the spec without loss.
    #[test]
    fn source_and_target_blocks_are_the_spec() {
        let json = r#"{"name":"o","source":{"postgres":{"host":"db","port":6543,"database":"app","user":"cdc",
            "password":{"type":"file","name":"/run/secrets/pg","key":"password"},"sslmode":"verify-full","ssl_root_cert":"/ca.pem",
            "tables":["public.a"],"publication":"p","create_publication":false,"slot":"s"}},
            "target":{"uri":"s3://bucket/lake","format":"avro","flush_interval":"5s","target_file_size":"64MiB"},
            "on_schema_change":"fail","max_consecutive_failures":3}"#;
        let spec: PipelineSpec = serde_json::from_str(json).unwrap();
        let model = PipelineModel {
            runner_id: Some("file:///x/runners/r".into()),
            name: Some(spec.name.clone()),
            source: Some(spec.source.clone()),
            target: Some(spec.target.clone()),
            on_schema_change: Some(spec.on_schema_change),
            max_consecutive_failures: Some(spec.max_consecutive_failures),
            ..PipelineModel::default()
        };
        let value = schema()
            .to_value(&model)
            .expect("the model fits the schema");
        let back: PipelineModel = value.to_typed().expect("and comes back");
        assert_eq!(back.spec("p1"), spec);
    }

    fn config(runner_id: Value) -> Value {
        let postgres = Value::object([
            ("host", Value::from("127.0.0.1")),
            ("database", Value::from("app")),
            ("user", Value::from("cdc")),
            ("tables", Value::list([Value::from("public.orders")])),
        ]);
        Value::object([
            ("name", Value::from("orders")),
            ("runner_id", runner_id),
            ("source", Value::object([("postgres", postgres)])),
            (
                "target",
                Value::object([("uri", Value::from("file:///tmp/lake"))]),
            ),
        ])
    }

    #[tokio::test]
    async fn a_new_pipeline_plans_version_one_and_defaults() {
        let driver = tfplugin::testing::TestDriver::new(crate::StreamingProvider).unwrap();
        let planned = driver
            .plan("streaming_pipeline", &Value::Null, &config(Value::Unknown))
            .await
            .unwrap()
            .planned;
        assert_eq!(planned.attribute("version"), &Value::from(1i64));
        assert!(planned.attribute("deployed_version").is_unknown());
        assert_eq!(
            planned.attribute("target").attribute("format"),
            &Value::from("parquet")
        );
        assert!(
            planned
                .attribute("source")
                .attribute("postgres")
                .attribute("slot")
                .is_unknown()
        );
    }

    #[tokio::test]
    async fn validation_names_the_attribute_and_what_is_allowed() {
        let driver = tfplugin::testing::TestDriver::new(crate::StreamingProvider).unwrap();
        let mut bad = config(Value::from("file:///tmp/x/runners/r1"));
        bad.set_at(
            &AttributePath::root("target").attribute("uri"),
            Value::from("gs://bucket/x"),
        );
        let diagnostics = driver.validate("streaming_pipeline", &bad);
        let error = diagnostics.errors().next().expect("an error");
        assert_eq!(
            error.attribute,
            Some(AttributePath::root("target").attribute("uri"))
        );
        assert!(
            error.detail.contains("unsupported scheme gs://") && error.detail.contains("s3://"),
            "{}",
            error.detail
        );
    }

    #[test]
    fn versions_follow_the_versioned_fields_only() {
        let base = PipelineModel {
            name: Some("a".into()),
            state: Some("running".into()),
            ..PipelineModel::default()
        };
        let paused = PipelineModel {
            state: Some("paused".into()),
            pinned_version: Some(1),
            ..base.clone()
        };
        assert_eq!(base.versioned(), paused.versioned());
        let renamed = PipelineModel {
            name: Some("b".into()),
            ..base.clone()
        };
        assert_ne!(base.versioned(), renamed.versioned());
    }
}
