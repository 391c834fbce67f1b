//! The two table shapes the engine cases write, and how rows are generated for them (on the
//! server, with `generate_series`, so loading is fast and does not depend on the bench's client).

use crate::error::Result;
use crate::postgres::Database;

/// Rows per transaction when loading a table in batches.
const BATCH_ROWS: u64 = 10_000;

/// A table shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Five columns: bigint key, int, bigint, text (≈ 45 bytes), timestamptz.
    Narrow,
    /// Thirty columns of mixed types (integers, numerics, floats, text, timestamps, date, time,
    /// uuid, jsonb, bytea, arrays, interval); one row in ten carries a 3.2 kB text stored out of
    /// line (TOAST, `STORAGE EXTERNAL`, so it is not just compressed inline).
    Wide,
}

impl Shape {
    /// `CREATE TABLE` for a table of this shape named `table`.
    pub fn create(self, table: &str) -> String {
        match self {
            Self::Narrow => format!(
                "CREATE TABLE {table} (id bigint PRIMARY KEY, account int NOT NULL, amount bigint, \
                 note text, created_at timestamptz NOT NULL)"
            ),
            Self::Wide => format!(
                "CREATE TABLE {table} (
                   id bigint PRIMARY KEY, c_int int, c_int2 int, c_small smallint, c_big bigint,
                   c_big2 bigint, c_num numeric(12,2), c_num2 numeric(18,4), c_real real,
                   c_double double precision, c_bool boolean, c_text text, c_text2 text,
                   c_varchar varchar(64), c_char char(8), c_ts timestamptz, c_ts2 timestamp,
                   c_date date, c_time time, c_uuid uuid, c_json jsonb, c_bytea bytea,
                   c_ints int[], c_texts text[], c_interval interval, c_int3 int,
                   c_double2 double precision, c_text3 text, c_ts3 timestamptz, c_doc text);
                 ALTER TABLE {table} ALTER COLUMN c_doc SET STORAGE EXTERNAL"
            ),
        }
    }

    /// An `INSERT` of the rows with ids `first..=last` (one statement, one transaction).
    pub fn insert(self, table: &str, first: u64, last: u64) -> String {
        let values = match self {
            Self::Narrow => {
                "g, (g % 10000)::int, g * 37, 'order ' || g || ' ' || md5(g::text), \
                 '2024-01-01'::timestamptz + g * interval '1 second'"
            }
            Self::Wide => {
                "g, g % 1000, (g * 7) % 100000, (g % 300)::smallint, g * 1000003, -g,
                 (g % 100000) / 100.0, g / 7.0, (g % 1000) / 3.0, g / 11.0, g % 2 = 0,
                 'customer ' || g, md5(g::text), 'sku-' || (g % 5000), lpad((g % 1000)::text, 8, '0'),
                 '2024-01-01'::timestamptz + g * interval '1 second',
                 '2024-01-01'::timestamp + g * interval '1 minute', '2024-01-01'::date + (g % 3650)::int,
                 time '00:00' + (g % 86400) * interval '1 second', md5(g::text)::uuid,
                 jsonb_build_object('id', g, 'tags', jsonb_build_array('a', 'b'), 'score', g % 100),
                 decode(md5(g::text), 'hex'), ARRAY[g % 10, g % 100, g % 1000]::int[],
                 ARRAY['x' || g % 10, 'y' || g % 100], (g % 1000) * interval '1 minute', g % 77,
                 g / 3.0, 'status ' || (g % 5), '2024-06-01'::timestamptz - g * interval '1 second',
                 CASE WHEN g % 10 = 0 THEN repeat(md5(g::text), 100) ELSE 'short note ' || g END"
            }
        };
        format!(
            "INSERT INTO {table} SELECT {values} FROM generate_series({first}::bigint, {last}::bigint) g"
        )
    }

    /// Inserts `rows` rows with ids from `first`, `BATCH_ROWS` per transaction (or all in one
    /// transaction when `one_transaction`).
    pub async fn load(
        self,
        database: &Database,
        table: &str,
        first: u64,
        rows: u64,
        one_transaction: bool,
    ) -> Result<()> {
        let batch = if one_transaction { rows } else { BATCH_ROWS };
        let mut next = first;
        while next < first + rows {
            let last = (next + batch).min(first + rows) - 1;
            database
                .execute(
                    &self.insert(table, next, last),
                    &format!("loading rows {next}..={last} into {table}"),
                )
                .await?;
            next = last + 1;
        }
        Ok(())
    }
}
