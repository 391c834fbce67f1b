//! Helpers for the PostgreSQL source tests: a configured source on a throwaway server, draining
//! it into plain comparable rows, and replaying changes into "latest row per key".

use std::collections::BTreeMap;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Time64MicrosecondType, TimestampMicrosecondType,
};
use arrow_array::{Array, ListArray, StructArray};
use arrow_schema::DataType;
use lakestream_testkit::postgres::PostgresServer;
use streaming_runner::change::{ChangeBuffer, Position, TableName};
use streaming_runner::source::postgres::{PostgresSource, PostgresSourceConfig, SslMode};
use streaming_runner::source::{Event, Limits, Resume, Source, Started};

/// One change as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `schema.table`.
    pub table: String,
    /// `_op`.
    pub op: String,
    /// `_position` as a number.
    pub log: u64,
    /// `_seq`.
    pub seq: u64,
    /// `_commit_ts`.
    pub commit_ts: Option<i64>,
    /// `_txid`.
    pub txid: Option<i64>,
    /// `_unchanged`.
    pub unchanged: Vec<String>,
    /// The table's columns as text (`None` for null).
    pub values: BTreeMap<String, Option<String>>,
    /// The buffer segment it came from.
    pub segment: u32,
}

impl Change {
    /// The position.
    pub fn position(&self) -> Position {
        Position {
            log: self.log,
            seq: self.seq,
        }
    }

    /// A column's text value (panics when the column is absent).
    pub fn get(&self, column: &str) -> Option<&str> {
        self.values
            .get(column)
            .unwrap_or_else(|| panic!("no column {column} in {self:?}"))
            .as_deref()
    }
}

/// A source configuration for the server's admin in its test database.
pub fn config(server: &PostgresServer, tables: &[&str], slot: &str) -> PostgresSourceConfig {
    let mut config = PostgresSourceConfig::new(
        server.host(),
        server.port(),
        server.database(),
        server.admin_user(),
        tables
            .iter()
            .map(|t| TableName::new("public", *t))
            .collect(),
        format!("pub_{slot}"),
        slot,
    );
    config.password = Some(server.admin_password().to_owned());
    config.sslmode = SslMode::Disable;
    config.status_interval = Duration::from_millis(500);
    config.heartbeat_interval = Duration::ZERO;
    config
}

/// A source for `config`, not started yet.
pub fn source(config: PostgresSourceConfig) -> PostgresSource {
    PostgresSource::new(config)
}

/// Starts `source` from nothing, with the backfill.
pub async fn start_with_backfill(source: &mut PostgresSource) -> Started {
    source
        .start(Resume {
            backfill: true,
            ..Resume::default()
        })
        .await
        .expect("start with the backfill")
}

/// Limits with a near deadline and a budget.
pub fn limits(max_buffer_bytes: usize, stop_after: Option<Position>) -> Limits {
    Limits {
        deadline: tokio::time::Instant::now() + Duration::from_millis(300),
        max_buffer_bytes,
        stop_after,
    }
}

/// Converts everything in the buffer into changes.
pub fn take(buf: &mut ChangeBuffer) -> Vec<Change> {
    let mut changes = Vec::new();
    for table in buf.take() {
        let batch = &table.batch;
        let schema = batch.schema();
        for row in 0..batch.num_rows() {
            let op = batch.column(0).as_string::<i32>().value(row).to_owned();
            let log = u64::from_str_radix(batch.column(1).as_string::<i32>().value(row), 16)
                .expect("hex position");
            let seq = batch.column(2).as_primitive::<Int64Type>().value(row) as u64;
            let ts = batch.column(3).as_primitive::<TimestampMicrosecondType>();
            let txid = batch.column(4).as_primitive::<Int64Type>();
            let unchanged_list = batch
                .column(5)
                .as_any()
                .downcast_ref::<ListArray>()
                .unwrap();
            let unchanged_values = unchanged_list.value(row);
            let unchanged = unchanged_values.as_string::<i32>();
            let mut values = BTreeMap::new();
            for (i, field) in schema.fields().iter().enumerate().skip(6) {
                values.insert(field.name().clone(), text(batch.column(i).as_ref(), row));
            }
            changes.push(Change {
                table: table.schema.table().to_string(),
                op,
                log,
                seq,
                commit_ts: ts.is_valid(row).then(|| ts.value(row)),
                txid: txid.is_valid(row).then(|| txid.value(row)),
                unchanged: (0..unchanged.len())
                    .map(|i| unchanged.value(i).to_owned())
                    .collect(),
                values,
                segment: table.segment,
            });
        }
    }
    changes
}

/// A cell as text: numbers in Rust's formatting, decimals with their scale, binary as hex,
/// dates/times/timestamps as their integer, intervals as `months/days/micros`, lists as
/// `[a,NULL,b]`.
pub fn text(array: &dyn Array, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Boolean => array.as_boolean().value(row).to_string(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).to_string(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).to_string(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).to_string(),
        DataType::Float32 => array.as_primitive::<Float32Type>().value(row).to_string(),
        DataType::Float64 => array.as_primitive::<Float64Type>().value(row).to_string(),
        DataType::Decimal128(_, scale) => {
            let value = array.as_primitive::<Decimal128Type>().value(row);
            let scale = *scale as u32;
            let negative = value < 0;
            let digits = format!(
                "{:0>width$}",
                value.unsigned_abs(),
                width = scale as usize + 1
            );
            let (whole, fraction) = digits.split_at(digits.len() - scale as usize);
            let sign = if negative { "-" } else { "" };
            if scale == 0 {
                format!("{sign}{whole}")
            } else {
                format!("{sign}{whole}.{fraction}")
            }
        }
        DataType::Utf8 => array.as_string::<i32>().value(row).to_owned(),
        DataType::Binary => array
            .as_binary::<i32>()
            .value(row)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        DataType::Date32 => array.as_primitive::<Date32Type>().value(row).to_string(),
        DataType::Time64(_) => array
            .as_primitive::<Time64MicrosecondType>()
            .value(row)
            .to_string(),
        DataType::Timestamp(_, _) => array
            .as_primitive::<TimestampMicrosecondType>()
            .value(row)
            .to_string(),
        DataType::Struct(_) => {
            let s = array.as_any().downcast_ref::<StructArray>().unwrap();
            format!(
                "{}/{}/{}",
                s.column(0).as_primitive::<Int32Type>().value(row),
                s.column(1).as_primitive::<Int32Type>().value(row),
                s.column(2).as_primitive::<Int64Type>().value(row)
            )
        }
        DataType::List(_) => {
            let list = array.as_any().downcast_ref::<ListArray>().unwrap();
            let values = list.value(row);
            let items: Vec<String> = (0..values.len())
                .map(|i| text(values.as_ref(), i).unwrap_or_else(|| "NULL".into()))
                .collect();
            format!("[{}]", items.join(","))
        }
        other => panic!("no text form for {other}"),
    })
}

/// Calls `next` until `done` says the collected changes suffice (taking the buffer after every
/// event), or fails after `timeout`. Returns the changes and the events seen.
pub async fn drain(
    source: &mut PostgresSource,
    buf: &mut ChangeBuffer,
    max_buffer_bytes: usize,
    timeout: Duration,
    done: impl Fn(&[Change]) -> bool,
) -> (Vec<Change>, Vec<Event>) {
    let until = tokio::time::Instant::now() + timeout;
    let mut changes = take(buf);
    let mut events = Vec::new();
    while !done(&changes) {
        assert!(
            tokio::time::Instant::now() < until,
            "timed out; got {} changes, events {events:?}, last {:?}",
            changes.len(),
            changes.last()
        );
        let event = source
            .next(buf, &limits(max_buffer_bytes, None))
            .await
            .expect("next");
        changes.extend(take(buf));
        events.push(event);
    }
    (changes, events)
}

/// Replays changes in position order into the latest row per key (the `id` column): what a
/// reader of the lake computes.
pub fn latest(changes: &[Change]) -> BTreeMap<String, BTreeMap<String, Option<String>>> {
    let mut ordered: Vec<&Change> = changes.iter().collect();
    ordered.sort_by_key(|c| c.position());
    let mut rows = BTreeMap::new();
    for change in ordered {
        match change.op.as_str() {
            "t" => rows.clear(),
            "d" => {
                rows.remove(change.get("id").expect("delete carries the key"));
            }
            _ => {
                let id = change.get("id").expect("row has a key").to_owned();
                let mut values = change.values.clone();
                if let Some(previous) = rows.get(&id) {
                    let previous: &BTreeMap<String, Option<String>> = previous;
                    for column in &change.unchanged {
                        values.insert(column.clone(), previous[column].clone());
                    }
                }
                rows.insert(id, values);
            }
        }
    }
    rows
}

/// The table's rows as text, keyed by `id`, with `columns` selected as SQL text expressions
/// (`(name, expression)`) that match [`text`]'s formatting.
pub async fn table_rows(
    server: &PostgresServer,
    table: &str,
    columns: &[(&str, &str)],
) -> BTreeMap<String, BTreeMap<String, Option<String>>> {
    let client = server.client().await.expect("client");
    let select = columns
        .iter()
        .map(|(_, expr)| format!("({expr})::text"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = client
        .simple_query(&format!("SELECT id::text, {select} FROM {table}"))
        .await
        .expect("select");
    let mut out = BTreeMap::new();
    for message in rows {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
            let mut values = BTreeMap::new();
            values.insert("id".to_owned(), row.get(0).map(str::to_owned));
            for (i, (name, _)) in columns.iter().enumerate() {
                values.insert((*name).to_owned(), row.get(i + 1).map(str::to_owned));
            }
            out.insert(row.get(0).unwrap().to_owned(), values);
        }
    }
    out
}

/// The slot's `confirmed_flush_lsn` as a number.
pub async fn confirmed_flush(server: &PostgresServer, slot: &str) -> u64 {
    let text = server
        .query_scalar(&format!(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '{slot}'"
        ))
        .await
        .expect("slot")
        .expect("confirmed_flush_lsn");
    parse_lsn(&text)
}

/// `X/Y` → u64.
pub fn parse_lsn(text: &str) -> u64 {
    let (high, low) = text.split_once('/').expect("lsn");
    u64::from_str_radix(high, 16).unwrap() << 32 | u64::from_str_radix(low, 16).unwrap()
}
