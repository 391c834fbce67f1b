//! Reading a lake the way its users do, with no Lakestream code: an independent reader (Python:
//! pyarrow, fastavro) replays a table's change files and reports the current rows.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// A table's lake content as a user replaying the change files sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    /// Current rows, sorted by key.
    pub rows: Vec<Value>,
    /// Change records read.
    pub changes: u64,
    /// Change records sharing (`_position`, `_seq`) with another.
    pub duplicates: u64,
    /// Files read.
    pub files: u64,
}

/// Replays the table folder `folder` (key columns `key`, comma-separated) with
/// `python/replay_lake.py` under `LAKESTREAM_PYTHON` (set by `scripts/test`).
pub fn replay(folder: &Path, key: &str) -> Result<Replayed, String> {
    let python = std::env::var("LAKESTREAM_PYTHON")
        .map_err(|_| "LAKESTREAM_PYTHON is not set: run the tests through scripts/test, which installs the readers".to_owned())?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/replay_lake.py");
    let output = Command::new(python)
        .arg(script)
        .arg(folder)
        .arg(key)
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let document: Value = serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())?;
    Ok(Replayed {
        rows: document["rows"].as_array().cloned().unwrap_or_default(),
        changes: document["changes"].as_u64().unwrap_or_default(),
        duplicates: document["duplicates"].as_u64().unwrap_or_default(),
        files: document["files"].as_u64().unwrap_or_default(),
    })
}
