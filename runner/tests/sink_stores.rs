//! The object stores the runner writes to, against their emulators: S3 on moto and Azure Blob
//! on Azurite (started by the testkit). Each scenario runs once per store (except where an
//! emulator cannot show the behaviour; see [`s3`]): the control-store primitives the lease and
//! checkpoints rely on (create-only writes, compare-and-swap replaces, conditional reads,
//! listing, prefix deletion), and the lake (every file format read back through the emulator
//! and decoded by an independent reader, and the removal of an interrupted flush's files).
//!
//! `lakestream_control::Store` reads its endpoint and credentials from the process
//! environment, and changing the environment of a running, multi-threaded test process is
//! unsound (`set_var` is `unsafe` for that reason). So each test starts its emulator, then runs
//! itself again in a child process whose environment names that emulator (see [`inside`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, BinaryArray, Decimal128Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema};
use lakestream_control::store::Fetched;
use lakestream_control::{Store, StoreError, WriteMode};
use lakestream_spec::Position;
use lakestream_spec::pipeline::Format;
use lakestream_spec::store::StoreUrl;
use lakestream_testkit::azurite::AzuriteServer;
use lakestream_testkit::moto::MotoServer;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use streaming_runner::change::ColumnType;
use streaming_runner::sink::{Lake, file_name};

/// The bucket (S3) or container (Azure) every scenario works in; the parent creates it.
const BUCKET: &str = "lakestream-test";

/// Names, in a child test process, the store whose emulator the parent started.
const CHILD_VARIABLE: &str = "LAKESTREAM_SINK_STORES_BACKEND";

/// Upper bound for a child test process; each normally takes well under two seconds.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// The object stores under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// Amazon S3, emulated by moto.
    S3,
    /// Azure Blob Storage, emulated by Azurite.
    Azure,
}

impl Backend {
    /// The value of [`CHILD_VARIABLE`] for this backend.
    fn name(self) -> &'static str {
        match self {
            Backend::S3 => "s3",
            Backend::Azure => "azure",
        }
    }

    /// A store URL for `prefix` inside [`BUCKET`].
    fn url(self, prefix: &str) -> StoreUrl {
        let scheme = match self {
            Backend::S3 => "s3",
            Backend::Azure => "az",
        };
        StoreUrl::parse(&format!("{scheme}://{BUCKET}/{prefix}")).expect("a valid store URL")
    }
}

/// Runs scenario `test` (its full libtest name) against `backend`'s emulator. In the test
/// process cargo started, this starts the emulator, creates [`BUCKET`], runs `test` again in a
/// child process whose environment names the emulator (and carries no other `AWS_*` or
/// `AZURE_*` settings that could send requests elsewhere), fails if the child did not pass
/// exactly that one test, and returns `false`. In that child it returns `true`: the scenario
/// runs there.
async fn inside(backend: Backend, test: &str) -> bool {
    if let Some(running) = std::env::var_os(CHILD_VARIABLE) {
        assert_eq!(running, backend.name(), "{test} runs against its own store");
        return true;
    }
    // `_server` keeps the emulator running until the child is done, then stops it.
    let (env, log, _server): (_, _, Box<dyn std::fmt::Debug>) = match backend {
        Backend::S3 => {
            let moto = MotoServer::start().await.expect("start moto");
            moto.create_bucket(BUCKET).await.expect("create the bucket");
            (moto.env(), moto.log_path(), Box::new(moto))
        }
        Backend::Azure => {
            let azurite = AzuriteServer::start().await.expect("start Azurite");
            azurite
                .create_container(BUCKET)
                .await
                .expect("create the container");
            (azurite.env(), azurite.log_path(), Box::new(azurite))
        }
    };
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("test binary"));
    child
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .kill_on_drop(true);
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if ["AWS_", "AZURE_", "AZURITE_"]
            .iter()
            .any(|prefix| name_text.starts_with(prefix))
        {
            child.env_remove(&name);
        }
    }
    child.envs(env).env(CHILD_VARIABLE, backend.name());
    let output = tokio::time::timeout(CHILD_TIMEOUT, child.output())
        .await
        .unwrap_or_else(|_| panic!("{test} did not finish within {CHILD_TIMEOUT:?}"))
        .expect("run the child test process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let passed_alone = stdout.contains("test result: ok. 1 passed");
    assert!(
        output.status.success() && passed_alone,
        "{test} against {backend:?} failed ({}):\n{stdout}\n{}\n--- emulator log ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    false
}

/// Declares the scenarios that run against one backend as tests of module `$module`
/// (`sink_stores::$module::<scenario>`), each inside its own emulator.
macro_rules! scenarios {
    ($module:ident, $backend:ident, [$($scenario:ident),* $(,)?]) => {
        $(
            /// See the scenario of the same name in the parent module.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let name = concat!("sink_stores::", stringify!($module), "::", stringify!($scenario));
                if super::inside(super::Backend::$backend, name).await {
                    super::$scenario(super::Backend::$backend).await;
                }
            }
        )*
    };
}

/// The scenarios against S3, served by moto. Not `concurrent_replacers_never_lose_an_update`:
/// moto checks `If-Match` and then writes, without a lock around both, under a threaded
/// server, so two replaces holding the same version can both succeed (eight writers making
/// 200 increments lose one to four of them on every run). Real S3 makes the check atomic;
/// moto cannot show it.
mod s3 {
    scenarios!(
        s3,
        S3,
        [
            create_only_and_replace_are_conditional,
            a_version_names_content_on_s3_and_a_write_on_azure,
            conditional_reads_see_unchanged_and_changed,
            list_and_delete_prefix_stay_inside_the_prefix,
            parquet_round_trips_through_pyarrow,
            jsonl_round_trips_through_python_json,
            avro_round_trips_through_fastavro,
            remove_uncommitted_removes_only_later_files_of_one_pipeline,
        ]
    );
}

/// The scenarios against Azure Blob Storage, served by Azurite.
mod azure {
    scenarios!(
        azure,
        Azure,
        [
            create_only_and_replace_are_conditional,
            a_version_names_content_on_s3_and_a_write_on_azure,
            concurrent_replacers_never_lose_an_update,
            conditional_reads_see_unchanged_and_changed,
            list_and_delete_prefix_stay_inside_the_prefix,
            parquet_round_trips_through_pyarrow,
            jsonl_round_trips_through_python_json,
            avro_round_trips_through_fastavro,
            remove_uncommitted_removes_only_later_files_of_one_pipeline,
        ]
    );
}

/// A control-store document.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Doc {
    /// Any content.
    n: u32,
}

/// Opens the control store at `prefix` of the backend's bucket.
fn control_store(backend: Backend, prefix: &str) -> Store {
    Store::open(&backend.url(prefix)).expect("open the store")
}

/// Create-only writes refuse an existing document; a replace succeeds only at the version it
/// names. The lease and checkpoints depend on both.
async fn create_only_and_replace_are_conditional(backend: Backend) {
    let store = control_store(backend, "control");
    let v1 = store
        .write_json("runners/r1/lease.json", &Doc { n: 1 }, WriteMode::Create)
        .await
        .expect("first create");
    let second = store
        .write_json("runners/r1/lease.json", &Doc { n: 9 }, WriteMode::Create)
        .await;
    assert!(
        matches!(second, Err(StoreError::AlreadyExists { .. })),
        "{second:?}"
    );

    let v2 = store
        .write_json(
            "runners/r1/lease.json",
            &Doc { n: 2 },
            WriteMode::Replace(v1.clone()),
        )
        .await
        .expect("replace at the current version");
    assert_ne!(v1.e_tag, v2.e_tag, "a new version has a new ETag");
    let stale = store
        .write_json(
            "runners/r1/lease.json",
            &Doc { n: 3 },
            WriteMode::Replace(v1),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    store
        .write_json(
            "runners/r1/lease.json",
            &Doc { n: 4 },
            WriteMode::Replace(v2),
        )
        .await
        .expect("replace at the version read last");

    let read = store
        .read_json::<Doc>("runners/r1/lease.json")
        .await
        .expect("read")
        .expect("the document exists");
    assert_eq!(read.value, Doc { n: 4 });
    let after_read = store
        .write_json(
            "runners/r1/lease.json",
            &Doc { n: 5 },
            WriteMode::Replace(read.version),
        )
        .await
        .expect("the version a read returns is usable for a replace");

    store.delete("runners/r1/lease.json").await.expect("delete");
    let deleted = store
        .write_json(
            "runners/r1/lease.json",
            &Doc { n: 6 },
            WriteMode::Replace(after_read),
        )
        .await;
    assert!(
        matches!(deleted, Err(StoreError::Conflict { .. })),
        "a deleted document is not at any version: {deleted:?}"
    );
}

/// What a version names differs between the stores. On S3 an ETag is the MD5 of the content
/// (for single-part uploads without KMS), so a document rewritten with earlier content gets
/// its earlier version back, and a replace holding that old version succeeds (A-B-A). On
/// Azure every write gets a new ETag. Documents a stale writer may still hold a version of
/// (lease, checkpoint) must therefore change content on every write.
async fn a_version_names_content_on_s3_and_a_write_on_azure(backend: Backend) {
    let store = control_store(backend, "control");
    let v1 = store
        .write_json("aba.json", &Doc { n: 1 }, WriteMode::Create)
        .await
        .expect("create");
    let v2 = store
        .write_json("aba.json", &Doc { n: 2 }, WriteMode::Replace(v1.clone()))
        .await
        .expect("replace");
    let v3 = store
        .write_json("aba.json", &Doc { n: 1 }, WriteMode::Replace(v2))
        .await
        .expect("replace with the first content again");
    let stale = store
        .write_json("aba.json", &Doc { n: 7 }, WriteMode::Replace(v1.clone()))
        .await;
    match backend {
        Backend::S3 => {
            assert_eq!(v3.e_tag, v1.e_tag, "the same content, the same ETag");
            assert!(stale.is_ok(), "the first version matches again: {stale:?}");
        }
        Backend::Azure => {
            assert_ne!(v3.e_tag, v1.e_tag, "every write, a new ETag");
            assert!(
                matches!(stale, Err(StoreError::Conflict { .. })),
                "{stale:?}"
            );
        }
    }
}

/// Several writers incrementing one counter with read-then-replace: every increment lands
/// exactly once, so compare-and-swap is atomic in the store, not just checked.
async fn concurrent_replacers_never_lose_an_update(backend: Backend) {
    const WRITERS: u32 = 4;
    const INCREMENTS: u32 = 8;
    let store = control_store(backend, "control");
    store
        .write_json("counter.json", &Doc { n: 0 }, WriteMode::Create)
        .await
        .expect("create the counter");
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..INCREMENTS {
                loop {
                    let current = store
                        .read_json::<Doc>("counter.json")
                        .await
                        .expect("read")
                        .expect("the counter exists");
                    let next = Doc {
                        n: current.value.n + 1,
                    };
                    match store
                        .write_json("counter.json", &next, WriteMode::Replace(current.version))
                        .await
                    {
                        Ok(_) => break,
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(err) => panic!("{err}"),
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let counter = store
        .read_json::<Doc>("counter.json")
        .await
        .expect("read")
        .expect("the counter exists");
    assert_eq!(
        counter.value,
        Doc {
            n: WRITERS * INCREMENTS
        }
    );
}

/// A conditional read answers Unchanged for the version the reader holds, the new document
/// once it changed, and Missing for a document that is not there.
async fn conditional_reads_see_unchanged_and_changed(backend: Backend) {
    let store = control_store(backend, "control");
    let v1 = store
        .write_json("desired.json", &Doc { n: 1 }, WriteMode::Overwrite)
        .await
        .expect("write");
    let unchanged = store
        .read_json_if_changed::<Doc>("desired.json", Some(&v1))
        .await
        .expect("conditional read");
    assert!(matches!(unchanged, Fetched::Unchanged), "{unchanged:?}");
    let v2 = store
        .write_json("desired.json", &Doc { n: 2 }, WriteMode::Overwrite)
        .await
        .expect("write");
    match store
        .read_json_if_changed::<Doc>("desired.json", Some(&v1))
        .await
        .expect("conditional read")
    {
        Fetched::Changed(doc) => {
            assert_eq!(doc.value, Doc { n: 2 });
            assert_eq!(
                doc.version.e_tag, v2.e_tag,
                "the read returns the new version"
            );
        }
        other => panic!("expected the new version, got {other:?}"),
    }
    let first_read = store
        .read_json_if_changed::<Doc>("desired.json", None)
        .await
        .expect("unconditional read");
    assert!(matches!(first_read, Fetched::Changed(_)), "{first_read:?}");
    let missing = store
        .read_json_if_changed::<Doc>("absent.json", Some(&v2))
        .await
        .expect("conditional read of a missing document");
    assert!(matches!(missing, Fetched::Missing), "{missing:?}");
}

/// Listing and prefix deletion see only the store's own prefix: a store rooted at
/// `control` neither lists nor deletes a sibling prefix's objects.
async fn list_and_delete_prefix_stay_inside_the_prefix(backend: Backend) {
    let store = control_store(backend, "control");
    let sibling = control_store(backend, "control-other");
    for path in [
        "runners/r1/a.json",
        "runners/r1/x/b.json",
        "runners/r10/a.json",
        "runners/r2/a.json",
    ] {
        store
            .write_json(path, &Doc { n: 1 }, WriteMode::Overwrite)
            .await
            .expect("write");
    }
    sibling
        .write_json("runners/r1/a.json", &Doc { n: 1 }, WriteMode::Overwrite)
        .await
        .expect("write beside");

    let listed = |objects: Vec<object_store::ObjectMeta>| {
        let mut paths: Vec<String> = objects.into_iter().map(|m| m.location.into()).collect();
        paths.sort();
        paths
    };
    assert_eq!(
        listed(store.list("runners").await.expect("list")),
        [
            "runners/r1/a.json",
            "runners/r1/x/b.json",
            "runners/r10/a.json",
            "runners/r2/a.json"
        ]
    );
    assert_eq!(
        listed(store.list("runners/r1").await.expect("list")),
        ["runners/r1/a.json", "runners/r1/x/b.json"],
        "a prefix is a whole path segment: r1 does not match r10"
    );

    assert_eq!(store.delete_prefix("runners/r1").await.expect("delete"), 2);
    assert_eq!(
        listed(store.list("runners").await.expect("list")),
        ["runners/r10/a.json", "runners/r2/a.json"]
    );
    assert_eq!(
        listed(sibling.list("runners").await.expect("list beside")),
        ["runners/r1/a.json"]
    );
    assert_eq!(
        store.delete_prefix("runners/r1").await.expect("again"),
        0,
        "deleting an empty prefix is not an error"
    );
    store
        .delete("runners/r1/a.json")
        .await
        .expect("deleting a missing object is not an error");

    let root = control_store(backend, "");
    assert_eq!(
        listed(
            root.list("control/runners/r2")
                .await
                .expect("list the root")
        ),
        ["control/runners/r2/a.json"],
        "objects live below the URL's prefix in the bucket"
    );
}

/// The columns of a change file that exercise every encoding path, typed as the runner's
/// change buffer types them: the change columns, then signed integers at their limits, text
/// needing escapes, an instant before and one after the epoch, a narrow and a 38-digit
/// decimal, binary, a list with a null element, and nulls.
fn sample() -> RecordBatch {
    let instant = ColumnType::TimestampTz.arrow_type();
    let column =
        |name: &str, column_type: ColumnType| Field::new(name, column_type.arrow_type(), true);
    let schema = Arc::new(Schema::new(vec![
        Field::new("_op", DataType::Utf8, false),
        Field::new("_position", DataType::Utf8, false),
        Field::new("_seq", DataType::Int64, false),
        Field::new("_commit_ts", instant.clone(), true),
        column("id", ColumnType::Int64),
        column("small", ColumnType::Int32),
        column("name", ColumnType::Utf8),
        column("at", ColumnType::TimestampTz),
        column(
            "amount",
            ColumnType::Decimal {
                precision: 12,
                scale: 3,
            },
        ),
        column(
            "big",
            ColumnType::Decimal {
                precision: 38,
                scale: 10,
            },
        ),
        column("payload", ColumnType::Binary),
        column("tags", ColumnType::List(Box::new(ColumnType::Utf8))),
    ]));
    let mut tags = ListBuilder::new(StringBuilder::new());
    tags.values().append_value("a");
    tags.values().append_null();
    tags.values().append_value("b");
    tags.append(true);
    tags.append(true);
    tags.append(false);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["c", "u", "d"])),
        Arc::new(StringArray::from(vec![
            "00000000000000A0",
            "00000000000000A0",
            "00000000000000B1",
        ])),
        Arc::new(Int64Array::from(vec![0, 1, 0])),
        Arc::new(
            TimestampMicrosecondArray::from(vec![
                Some(1_709_212_455_123_456),
                Some(1_709_212_455_123_456),
                None,
            ])
            .with_data_type(instant.clone()),
        ),
        Arc::new(Int64Array::from(vec![
            Some(i64::MIN),
            Some(42),
            Some(i64::MAX),
        ])),
        Arc::new(Int32Array::from(vec![Some(i32::MIN), None, Some(i32::MAX)])),
        Arc::new(StringArray::from(vec![
            Some("h\u{e9}llo \"w\u{f6}rld\"\n\ttab\\ \u{1f600}"),
            Some(""),
            None,
        ])),
        Arc::new(
            TimestampMicrosecondArray::from(vec![Some(-1), Some(0), None]).with_data_type(instant),
        ),
        Arc::new(
            Decimal128Array::from(vec![Some(123_456_789_123), Some(-1), None])
                .with_precision_and_scale(12, 3)
                .expect("decimal(12,3)"),
        ),
        Arc::new(
            Decimal128Array::from(vec![
                Some(123_456_789_012_345_678_900_123_456_789),
                Some(-10_000_000_000),
                None,
            ])
            .with_precision_and_scale(38, 10)
            .expect("decimal(38,10)"),
        ),
        Arc::new(BinaryArray::from(vec![
            Some(&b"\x00\xff\x10"[..]),
            Some(&b""[..]),
            None,
        ])),
        Arc::new(tags.finish()),
    ];
    RecordBatch::try_new(schema, columns).expect("a valid batch")
}

/// [`sample`]'s rows as the independent reader reports them: timestamps in ISO 8601 with
/// their UTC offset, decimals as exact text, binary as lower-case hex.
fn expected_rows() -> Value {
    json!([
        {
            "_op": "c", "_position": "00000000000000A0", "_seq": 0,
            "_commit_ts": "2024-02-29T13:14:15.123456+00:00",
            "id": i64::MIN, "small": i32::MIN,
            "name": "h\u{e9}llo \"w\u{f6}rld\"\n\ttab\\ \u{1f600}",
            "at": "1969-12-31T23:59:59.999999+00:00",
            "amount": "123456789.123", "big": "12345678901234567890.0123456789",
            "payload": "00ff10", "tags": ["a", null, "b"]
        },
        {
            "_op": "u", "_position": "00000000000000A0", "_seq": 1,
            "_commit_ts": "2024-02-29T13:14:15.123456+00:00",
            "id": 42, "small": null, "name": "", "at": "1970-01-01T00:00:00.000000+00:00",
            "amount": "-0.001", "big": "-1.0000000000",
            "payload": "", "tags": []
        },
        {
            "_op": "d", "_position": "00000000000000B1", "_seq": 0,
            "_commit_ts": null, "id": i64::MAX, "small": i32::MAX, "name": null, "at": null,
            "amount": null, "big": null, "payload": null, "tags": null
        }
    ])
}

/// Decodes a lake file with the Python tools (pyarrow for Parquet, the standard `json` module
/// for JSON Lines, fastavro for Avro) and prints `{"types": …, "rows": …}` with values made
/// plain as in [`expected_rows`]. JSON Lines carries no schema, so argument 3 names the
/// columns whose text is a timestamp or a decimal.
const DECODER: &str = r#"
import datetime, decimal, json, sys

fmt, path, kinds = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])

def plain(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() != datetime.timedelta(0):
            raise SystemExit(f"timestamp {value!r} is not marked as UTC")
        return value.isoformat(timespec="microseconds")
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value

if fmt == "parquet":
    import pyarrow.parquet as pq
    table = pq.read_table(path)
    types = {field.name: str(field.type) for field in table.schema}
    rows = table.to_pylist()
elif fmt == "avro":
    import fastavro
    with open(path, "rb") as file:
        reader = fastavro.reader(file)
        types = {field["name"]: field["type"] for field in reader.writer_schema["fields"]}
        rows = list(reader)
elif fmt == "jsonl":
    types = None
    rows = []
    with open(path, encoding="utf-8") as file:
        for line in file:
            row = json.loads(line, parse_float=decimal.Decimal)
            for name, kind in kinds.items():
                if row[name] is None:
                    continue
                if kind == "timestamp":
                    row[name] = datetime.datetime.fromisoformat(row[name])
                elif kind == "decimal":
                    row[name] = decimal.Decimal(str(row[name]))
            rows.append(row)
else:
    raise SystemExit(f"unknown format {fmt}")
print(json.dumps({"types": types, "rows": [plain(row) for row in rows]}))
"#;

/// Runs [`DECODER`] on `bytes` written to a temporary file.
async fn decode(format: Format, bytes: &[u8]) -> Value {
    let python = std::env::var_os("LAKESTREAM_PYTHON").expect(
        "LAKESTREAM_PYTHON is not set: run the tests through scripts/test, which installs the \
         Python readers (ensure_python_tools in scripts/lib/tools.sh)",
    );
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), bytes).expect("write the downloaded file");
    let kinds = json!({
        "_commit_ts": "timestamp", "at": "timestamp", "amount": "decimal", "big": "decimal"
    });
    let output = tokio::process::Command::new(python)
        .arg("-c")
        .arg(DECODER)
        .arg(extension(format))
        .arg(file.path())
        .arg(kinds.to_string())
        .output()
        .await
        .expect("run the Python decoder");
    assert!(
        output.status.success(),
        "decoding {format:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the decoder prints JSON")
}

/// The file extension (and decoder argument) of `format`.
fn extension(format: Format) -> &'static str {
    match format {
        Format::Parquet => "parquet",
        Format::Jsonl => "jsonl",
        Format::Avro => "avro",
    }
}

/// Downloads `path` (relative to the store's prefix) through the emulator.
async fn download(store: &Store, path: &str) -> Vec<u8> {
    store
        .objects()
        .get(&Path::from(path))
        .await
        .expect("get the file")
        .bytes()
        .await
        .expect("read the file")
        .to_vec()
}

/// Writes [`sample`] in `format` through the lake into the emulator, downloads it again, and
/// decodes it with a reader that shares no code with the runner: the values must be exactly
/// the ones written. Returns the column types the reader saw.
async fn round_trip(backend: Backend, format: Format) -> Value {
    let url = backend.url("lake");
    let store = Store::open(&url).expect("open the lake's store");
    let lake = Lake::open(&url, format).expect("open the lake");
    let name = format!("changes.{}", lake.extension());
    let written = lake
        .write("public.orders", &name, sample())
        .await
        .expect("write");
    assert_eq!(written.path, format!("public.orders/{name}"));
    assert_eq!(written.rows, 3);
    let bytes = download(&store, &written.path).await;
    assert_eq!(bytes.len() as u64, written.bytes, "the whole file");
    let decoded = decode(format, &bytes).await;
    assert_eq!(decoded["rows"], expected_rows(), "{format:?} values");
    decoded["types"].clone()
}

/// Parquet decodes with pyarrow to the values written, with the Arrow types a consumer needs:
/// timestamps marked UTC, decimals with their precision and scale.
async fn parquet_round_trips_through_pyarrow(backend: Backend) {
    let types = round_trip(backend, Format::Parquet).await;
    assert_eq!(
        types,
        json!({
            "_op": "string", "_position": "string", "_seq": "int64",
            "_commit_ts": "timestamp[us, tz=+00:00]", "id": "int64", "small": "int32",
            "name": "string", "at": "timestamp[us, tz=+00:00]", "amount": "decimal128(12, 3)",
            "big": "decimal128(38, 10)", "payload": "binary",
            "tags": "list<item: string>"
        })
    );
}

/// JSON Lines decodes with Python's own `json` module to the values written: timestamps as
/// RFC 3339 text with their UTC offset, decimals exact, binary as hex.
async fn jsonl_round_trips_through_python_json(backend: Backend) {
    assert_eq!(round_trip(backend, Format::Jsonl).await, Value::Null);
}

/// Avro decodes with fastavro to the values written, through Avro's logical types
/// (`timestamp-micros`, `decimal` with precision and scale).
async fn avro_round_trips_through_fastavro(backend: Backend) {
    let types: BTreeMap<String, Value> =
        serde_json::from_value(round_trip(backend, Format::Avro).await).expect("Avro fields");
    let logical = |column: &str| {
        let branches = types[column].as_array().cloned().unwrap_or_default();
        branches
            .into_iter()
            .find(|branch| branch != "null")
            .unwrap_or_else(|| types[column].clone())
    };
    assert_eq!(
        (
            logical("_commit_ts")["logicalType"].clone(),
            logical("at")["logicalType"].clone()
        ),
        (json!("timestamp-micros"), json!("timestamp-micros"))
    );
    assert_eq!(
        (
            logical("amount")["logicalType"].clone(),
            logical("big")["precision"].clone(),
            logical("big")["scale"].clone()
        ),
        (json!("decimal"), json!(38), json!(10))
    );
}

/// An interrupted flush is cleaned up by deleting exactly the pipeline's files that start at
/// or after its committed position: earlier files, other pipelines' files (including one whose
/// name starts the same way) and other tables stay.
async fn remove_uncommitted_removes_only_later_files_of_one_pipeline(backend: Backend) {
    let url = backend.url("lake");
    let lake = Lake::open(&url, Format::Parquet).expect("open the lake");
    let store = Store::open(&url).expect("open the lake's store");
    let at = |log| Position { log, seq: 0 };
    let name = |pipeline: &str, from, to| file_name(pipeline, at(from), at(to), 0, "parquet");
    let files = [
        ("public.orders", name("p", 0, 5)),
        ("public.orders", name("p", 5, 9)),
        ("public.orders", name("p", 9, 12)),
        ("public.orders", name("p", 12, 15)),
        ("public.orders", name("q", 9, 12)),
        ("public.orders", name("p-1", 9, 12)),
        ("public.items", name("p", 9, 12)),
    ];
    for (folder, file) in &files {
        lake.write(folder, file, sample()).await.expect("write");
    }

    let mut removed = lake
        .remove_uncommitted("public.orders", "p", Some(at(9)))
        .await
        .expect("remove");
    removed.sort();
    assert_eq!(
        removed,
        [
            format!("public.orders/{}", name("p", 9, 12)),
            format!("public.orders/{}", name("p", 12, 15)),
        ]
    );
    let mut left: Vec<String> = store
        .list("")
        .await
        .expect("list")
        .into_iter()
        .map(|meta| meta.location.into())
        .collect();
    left.sort();
    let mut expected: Vec<String> = [
        ("public.items", name("p", 9, 12)),
        ("public.orders", name("p", 0, 5)),
        ("public.orders", name("p", 5, 9)),
        ("public.orders", name("q", 9, 12)),
        ("public.orders", name("p-1", 9, 12)),
    ]
    .iter()
    .map(|(folder, file)| format!("{folder}/{file}"))
    .collect();
    expected.sort();
    assert_eq!(left, expected);

    let everything = lake
        .remove_uncommitted("public.items", "p", None)
        .await
        .expect("remove with nothing committed");
    assert_eq!(everything, [format!("public.items/{}", name("p", 9, 12))]);
}
