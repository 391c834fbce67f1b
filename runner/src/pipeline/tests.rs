//! The flush protocol against a scripted source: a flush interrupted between its files and its
//! commit is replayed to exactly the same cut, rewriting the same objects.

use std::sync::Arc;
use std::time::Duration;

use lakestream_control::{Store, WriteMode};
use lakestream_spec::StoreUrl;
use lakestream_spec::control::{Checkpoint, Intent};
use lakestream_spec::pipeline::{Format, SchemaChangePolicy};
use tokio_util::sync::CancellationToken;

use super::{Attempt, CheckpointFile, Ended, Fencing, Settings, StatusBoard};
use crate::change::{
    ChangeBuffer, Column, ColumnType, Op, Position, RowMeta, TableName, TableSchema,
};
use crate::sink::{Lake, file_name, table_folder};
use crate::source::{Event, Limits, Progress, Resume, Source, SourceError, Started};

/// A source that replays a fixed list of rows, honouring the contract's skip and stop rules.
struct Scripted {
    schema: Arc<TableSchema>,
    rows: Vec<Position>,
    next: usize,
    last: Option<Position>,
    resumed: Option<Resume>,
}

impl Scripted {
    fn new(rows: Vec<Position>) -> Self {
        let column = Column {
            name: "v".into(),
            source_type: "int8".into(),
            column_type: ColumnType::Int64,
            key: true,
            nullable: Some(false),
        };
        let schema =
            Arc::new(TableSchema::new(TableName::new("public", "t"), vec![column]).unwrap());
        Self {
            schema,
            rows,
            next: 0,
            last: None,
            resumed: None,
        }
    }
}

impl Source for Scripted {
    async fn start(&mut self, resume: Resume) -> Result<Started, SourceError> {
        self.next = self
            .rows
            .iter()
            .position(|p| resume.committed.is_none_or(|c| *p > c))
            .unwrap_or(self.rows.len());
        self.resumed = Some(resume);
        Ok(Started {
            tables: vec![self.schema.clone()],
            backfill: false,
            stream_from: 0,
            capture_starts_now: false,
        })
    }

    async fn next(
        &mut self,
        buf: &mut ChangeBuffer,
        limits: &Limits,
    ) -> Result<Event, SourceError> {
        while let Some(&position) = self.rows.get(self.next) {
            if limits.stop_after.is_some_and(|stop| position > stop) {
                return Ok(Event::Stopped);
            }
            let mut row = buf.row(
                &self.schema,
                RowMeta {
                    op: Op::Create,
                    position,
                    commit_ts: Some(0),
                    txid: Some(1),
                },
            );
            row.cell().unwrap().i64(position.seq as i64).unwrap();
            drop(row);
            self.next += 1;
            self.last = Some(position);
            if limits.stop_after == Some(position) {
                return Ok(Event::Stopped);
            }
            if buf.bytes() >= limits.max_buffer_bytes {
                return Ok(Event::BufferFull);
            }
        }
        tokio::time::sleep_until(limits.deadline).await;
        Ok(Event::Deadline)
    }

    async fn ack(&mut self, _log: u64) -> Result<(), SourceError> {
        Ok(())
    }

    fn progress(&self) -> Progress {
        Progress {
            position: self.last,
            ack: self.last.map(|p| p.log),
            ..Progress::default()
        }
    }
}

fn settings() -> Settings {
    Settings {
        pipeline_id: "p".into(),
        tables: vec![("public".into(), "t".into())],
        flush_interval: Duration::from_millis(100),
        max_buffer_bytes: 1 << 20,
        on_schema_change: SchemaChangePolicy::Evolve,
        backfill_generation: 0,
    }
}

async fn run_until_idle(source: Scripted, lake: &Lake, store: &Store) -> Scripted {
    let checkpoint = CheckpointFile::read(store.clone(), "checkpoints/p.json".into(), "p")
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let attempt = Attempt::new(
        source,
        lake.clone(),
        checkpoint,
        Fencing::Takeover,
        settings(),
        StatusBoard::new("p", 1),
        cancel.clone(),
    );
    let task = tokio::spawn(async move {
        let mut attempt = attempt;
        let ended = attempt.run().await;
        (ended, attempt.source)
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    cancel.cancel();
    let (ended, source) = task.await.unwrap();
    assert!(matches!(ended, Ok(Ended::Cancelled)), "{ended:?}");
    source
}

#[tokio::test]
async fn an_interrupted_flush_is_replayed_to_the_same_cut_and_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let url = StoreUrl::parse(&format!("file://{}", dir.path().display())).unwrap();
    let lake = Lake::open(&url.join("lake"), Format::Jsonl).unwrap();
    let store = Store::open(&url.join("control")).unwrap();
    let p = |log, seq| Position::new(log, seq);
    let rows: Vec<Position> = (0..5)
        .map(|seq| p(10, seq))
        .chain((0..5).map(|seq| p(20, seq)))
        .collect();

    // A crashed instance committed up to (10, 1), then wrote its intent to flush up to (20, 2)
    // and a file for that range — with content that must not survive — and died.
    let committed = p(10, 1);
    let cut = p(20, 2);
    let checkpoint = Checkpoint {
        pipeline_id: "p".into(),
        fencing: 1,
        committed: Some(committed),
        source_ack: Some(10),
        pending: Some(Intent {
            to: cut,
            source_ack: Some(10),
        }),
        ..Checkpoint::default()
    };
    store
        .write_json("checkpoints/p.json", &checkpoint, WriteMode::Create)
        .await
        .unwrap();
    let folder = table_folder("public", "t");
    let interrupted = file_name("p", committed, cut, 0, "jsonl");
    let stale = format!("{}/lake/{folder}/{interrupted}", dir.path().display());
    std::fs::create_dir_all(std::path::Path::new(&stale).parent().unwrap()).unwrap();
    std::fs::write(&stale, "{\"stale\": true}\n").unwrap();

    let source = run_until_idle(Scripted::new(rows), &lake, &store).await;
    assert_eq!(
        source.resumed.unwrap().committed,
        Some(committed),
        "rows up to the commit are skipped"
    );

    let mut names: Vec<String> = std::fs::read_dir(std::path::Path::new(&stale).parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names[0], interrupted,
        "the replay rewrote the interrupted file under the same name"
    );
    assert_eq!(
        names[1],
        file_name("p", cut, p(20, 4), 0, "jsonl"),
        "and continued from the cut"
    );
    assert_eq!(names.len(), 2);
    let replayed = std::fs::read_to_string(&stale).unwrap();
    let seqs: Vec<i64> = replayed
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["v"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        seqs,
        [2, 3, 4, 0, 1, 2],
        "exactly the rows in (committed, cut]"
    );
    let after: Checkpoint = store
        .read_json("checkpoints/p.json")
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(
        (after.committed, after.pending, after.fencing),
        (Some(p(20, 4)), None, 2)
    );
}
