//! `--metrics-addr`: Prometheus `/metrics` and `/healthz` over plain HTTP/1.1. Two read-only
//! endpoints do not justify a web framework; requests are parsed just enough to route them.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use lakestream_spec::control::Phase;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::pipeline::StatusBoard;

/// The pipeline whose status the endpoints report; swapped as pipelines start and stop.
#[derive(Debug, Clone, Default)]
pub struct Published(Arc<RwLock<Option<StatusBoard>>>);

impl Published {
    /// Reports `board` from now on (or nothing).
    pub fn set(&self, board: Option<StatusBoard>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = board;
    }

    fn board(&self) -> Option<StatusBoard> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Binds `address` and serves until the task is dropped.
pub async fn serve(
    address: SocketAddr,
    published: Published,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(address).await?;
    tracing::info!(address = %listener.local_addr()?, "serving /metrics and /healthz");
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let published = published.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 1024];
                let Ok(read) = stream.read(&mut request).await else {
                    return;
                };
                let line = String::from_utf8_lossy(&request[..read]);
                let path = line.split_whitespace().nth(1).unwrap_or("/");
                let (code, body) = respond(path, published.board());
                let response = format!(
                    "HTTP/1.1 {code}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    }))
}

fn respond(path: &str, board: Option<StatusBoard>) -> (&'static str, String) {
    let status = board.map(|b| b.snapshot());
    match path {
        "/healthz" => match &status {
            Some(s) if matches!(s.phase, Phase::Failed | Phase::CrashLoop) => (
                "503 Service Unavailable",
                format!(
                    "{}: {}\n",
                    s.phase.as_str(),
                    s.last_error.as_deref().unwrap_or("")
                ),
            ),
            _ => ("200 OK", "ok\n".to_owned()),
        },
        "/metrics" => ("200 OK", status.map(|s| render(&s)).unwrap_or_default()),
        _ => ("404 Not Found", "not found\n".to_owned()),
    }
}

fn render(status: &lakestream_spec::control::PipelineStatus) -> String {
    let mut out = String::new();
    let pipeline = &status.pipeline_id;
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{pipeline=\"{pipeline}\"}} {value}"
        );
    };
    metric(
        "lakestream_rows_delivered_total",
        "counter",
        "Rows written to the lake.",
        status.rows_delivered as f64,
    );
    metric(
        "lakestream_bytes_delivered_total",
        "counter",
        "Bytes of files written to the lake.",
        status.bytes_delivered as f64,
    );
    metric(
        "lakestream_files_written_total",
        "counter",
        "Files written to the lake.",
        status.files_written as f64,
    );
    metric(
        "lakestream_lag_seconds",
        "gauge",
        "Age of the oldest change not yet in the lake.",
        status.lag_seconds.unwrap_or(0.0),
    );
    metric(
        "lakestream_lag_bytes",
        "gauge",
        "Source log not yet acknowledged, in bytes.",
        status.lag_bytes.unwrap_or(0) as f64,
    );
    metric(
        "lakestream_consecutive_failures",
        "gauge",
        "Failures since the last success.",
        f64::from(status.consecutive_failures),
    );
    let _ = writeln!(
        out,
        "# HELP lakestream_phase The pipeline's phase (1 for the current one).\n# TYPE lakestream_phase gauge"
    );
    for phase in [
        Phase::Starting,
        Phase::Backfilling,
        Phase::Streaming,
        Phase::Paused,
        Phase::Failed,
        Phase::CrashLoop,
    ] {
        let value = u8::from(phase == status.phase);
        let _ = writeln!(
            out,
            "lakestream_phase{{pipeline=\"{pipeline}\",phase=\"{}\"}} {value}",
            phase.as_str()
        );
    }
    let _ = writeln!(
        out,
        "# HELP lakestream_table_rows_delivered_total Rows written per table by this process.\n# TYPE lakestream_table_rows_delivered_total counter"
    );
    for table in &status.tables {
        let _ = writeln!(
            out,
            "lakestream_table_rows_delivered_total{{pipeline=\"{pipeline}\",table=\"{}\"}} {}",
            table.table.replace('"', "\\\""),
            table.rows_delivered
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_the_phase_and_metrics_render() {
        let board = StatusBoard::new("p1", 1);
        board.add_table_rows("public.t", 7);
        board.set_phase(Phase::Streaming);
        assert_eq!(respond("/healthz", Some(board.clone())).0, "200 OK");
        let (_, body) = respond("/metrics", Some(board.clone()));
        assert!(
            body.contains("lakestream_phase{pipeline=\"p1\",phase=\"streaming\"} 1"),
            "{body}"
        );
        assert!(body.contains(
            "lakestream_table_rows_delivered_total{pipeline=\"p1\",table=\"public.t\"} 7"
        ));
        board.record_failure("boom");
        board.set_phase(Phase::CrashLoop);
        assert_eq!(
            respond("/healthz", Some(board)).0,
            "503 Service Unavailable"
        );
        assert_eq!(respond("/nope", None).0, "404 Not Found");
    }
}
