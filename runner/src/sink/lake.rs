//! The lake: where change files are named, encoded and published.

use std::sync::Arc;

use arrow_array::RecordBatch;
use futures::TryStreamExt;
use lakestream_control::{Store, WriteMode};
use lakestream_spec::Position;
use lakestream_spec::pipeline::Format;
use lakestream_spec::store::StoreUrl;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::{FileEncoder, SinkError, encoder};

/// A file published to the lake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Path below the lake's root.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Rows in the file.
    pub rows: u64,
}

/// A lake folder and the format its files are written in.
#[derive(Clone)]
pub struct Lake {
    store: Store,
    encoder: Arc<dyn FileEncoder>,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake")
            .field("url", &self.store.url().to_string())
            .field("extension", &self.encoder.extension())
            .finish()
    }
}

/// The folder of one source table: `schema.table`, with `/`, `%` and control characters
/// percent-encoded so every table gets exactly one folder.
pub fn table_folder(schema: &str, table: &str) -> String {
    let mut folder = String::with_capacity(schema.len() + table.len() + 1);
    for (i, part) in [schema, table].into_iter().enumerate() {
        if i > 0 {
            folder.push('.');
        }
        for c in part.chars() {
            if c == '/' || c == '%' || c.is_control() {
                let mut buffer = [0u8; 4];
                for byte in c.encode_utf8(&mut buffer).bytes() {
                    folder.push_str(&format!("%{byte:02X}"));
                }
            } else {
                folder.push(c);
            }
        }
    }
    folder
}

/// The name of the file holding a table's changes in `(from, to]`, schema segment `segment`:
/// `<pipeline>-<from>-<to>-<segment>.<ext>`, positions as 32 hex digits. Deterministic, so a
/// replayed flush overwrites the same object; and sortable, so the files of a table list in
/// change order and the uncommitted ones can be found with one listing from an offset.
pub fn file_name(
    pipeline_id: &str,
    from: Position,
    to: Position,
    segment: u32,
    extension: &str,
) -> String {
    format!(
        "{pipeline_id}-{}-{}-{segment:03}.{extension}",
        position_key(from),
        position_key(to)
    )
}

fn position_key(position: Position) -> String {
    format!("{:016X}{:016X}", position.log, position.seq)
}

impl Lake {
    /// Opens the lake at `url`, writing `format`.
    pub fn open(url: &StoreUrl, format: Format) -> Result<Self, SinkError> {
        Ok(Self {
            store: Store::open(url)?,
            encoder: Arc::from(encoder(format)),
        })
    }

    /// The lake's URL.
    pub fn url(&self) -> &StoreUrl {
        self.store.url()
    }

    /// The file extension of this lake's format.
    pub fn extension(&self) -> &'static str {
        self.encoder.extension()
    }

    /// Encodes `batch` (on a blocking thread: encoding is CPU work) and publishes it as
    /// `folder/name`.
    pub async fn write(
        &self,
        folder: &str,
        name: &str,
        batch: RecordBatch,
    ) -> Result<WrittenFile, SinkError> {
        let rows = batch.num_rows();
        let encoder = self.encoder.clone();
        let encoded = tokio::task::spawn_blocking(move || encoder.encode(batch))
            .await
            .expect("encoding does not panic");
        let path = format!("{folder}/{name}");
        let bytes = encoded.map_err(|reason| SinkError::Encode {
            format: self.encoder.extension(),
            table: folder.to_owned(),
            reason,
        })?;
        let size = bytes.len() as u64;
        self.store
            .write_bytes(&path, bytes.into(), WriteMode::Overwrite)
            .await?;
        Ok(WrittenFile {
            path,
            bytes: size,
            rows: rows as u64,
        })
    }

    /// Deletes this pipeline's files in `folder` whose range starts at or after `committed`:
    /// leftovers of a flush or backfill that never committed. Runs before a pipeline starts
    /// writing, so a replay cannot leave duplicates beside them. Returns the paths deleted.
    pub async fn remove_uncommitted(
        &self,
        folder: &str,
        pipeline_id: &str,
        committed: Option<Position>,
    ) -> Result<Vec<String>, SinkError> {
        let name_prefix = format!("{pipeline_id}-");
        let first_uncommitted = format!(
            "{folder}/{name_prefix}{}",
            position_key(committed.unwrap_or(Position { log: 0, seq: 0 }))
        );
        let objects = self.store.objects();
        let listing: Vec<_> = objects
            .list_with_offset(
                Some(&Path::from(folder)),
                &Path::from(first_uncommitted.as_str()),
            )
            .try_collect()
            .await
            .map_err(|source| lakestream_control::StoreError::Backend {
                operation: "list",
                path: self.store.describe(folder),
                source,
            })?;
        // The offset is exclusive, so a file starting exactly at `committed` is listed too
        // only when its name sorts after the offset, which it does (it is longer).
        let mut removed = Vec::new();
        for meta in listing {
            let Some(name) = meta.location.filename() else {
                continue;
            };
            if !name.starts_with(&name_prefix) || name.len() < name_prefix.len() + 32 {
                continue;
            }
            let from = &name[name_prefix.len()..name_prefix.len() + 32];
            if from.bytes().all(|b| b.is_ascii_hexdigit()) {
                objects.delete(&meta.location).await.map_err(|source| {
                    lakestream_control::StoreError::Backend {
                        operation: "delete",
                        path: self.store.describe(meta.location.as_ref()),
                        source,
                    }
                })?;
                removed.push(meta.location.to_string());
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("_op", DataType::Utf8, false),
            Field::new("id", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["c", "u"])),
                Arc::new(Int64Array::from(vec![Some(1), None])),
            ],
        )
        .unwrap()
    }

    fn lake(format: Format) -> (tempfile::TempDir, Lake) {
        let dir = tempfile::tempdir().unwrap();
        let url = StoreUrl::parse(&format!("file://{}", dir.path().display())).unwrap();
        (dir, Lake::open(&url, format).unwrap())
    }

    #[test]
    fn names_sort_by_position_and_escape_folders() {
        let a = file_name(
            "p",
            Position { log: 1, seq: 0 },
            Position { log: 1, seq: 9 },
            0,
            "parquet",
        );
        let b = file_name(
            "p",
            Position { log: 1, seq: 9 },
            Position { log: 2, seq: 0 },
            0,
            "parquet",
        );
        assert!(a < b);
        assert_eq!(
            a,
            "p-00000000000000010000000000000000-00000000000000010000000000000009-000.parquet"
        );
        assert_eq!(table_folder("public", "a/b%"), "public.a%2Fb%25");
    }

    #[tokio::test]
    async fn every_format_writes_identical_bytes_for_identical_input() {
        for format in [Format::Parquet, Format::Jsonl, Format::Avro] {
            let (dir, lake) = lake(format);
            let first = lake.write("public.t", "f1", batch()).await.unwrap();
            let second = lake.write("public.t", "f2", batch()).await.unwrap();
            assert_eq!((first.rows, first.bytes), (second.rows, second.bytes));
            let read = |name: &str| std::fs::read(dir.path().join("public.t").join(name)).unwrap();
            assert_eq!(read("f1"), read("f2"), "{format:?} is deterministic");
        }
    }

    #[tokio::test]
    async fn removes_only_uncommitted_files_of_the_pipeline() {
        let (dir, lake) = lake(Format::Jsonl);
        let p = |log| Position { log, seq: 0 };
        for (pipeline, from, to) in [
            ("p", 0, 5),
            ("p", 5, 9),
            ("p", 9, 12),
            ("q", 9, 12),
            ("p", 12, 15),
        ] {
            let name = file_name(pipeline, p(from), p(to), 0, "jsonl");
            lake.write("public.t", &name, batch()).await.unwrap();
        }
        let removed = lake
            .remove_uncommitted("public.t", "p", Some(p(9)))
            .await
            .unwrap();
        assert_eq!(removed.len(), 2, "{removed:?}");
        let mut left: Vec<String> = std::fs::read_dir(dir.path().join("public.t"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let expected = [("p", 0, 5), ("p", 5, 9), ("q", 9, 12)]
            .map(|(pipeline, from, to)| file_name(pipeline, p(from), p(to), 0, "jsonl"));
        assert_eq!(left, expected);
    }
}
