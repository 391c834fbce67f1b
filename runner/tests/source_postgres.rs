//! The PostgreSQL source against a real PostgreSQL server (started by the testkit, one per
//! test): type mapping through both the backfill (COPY) and the stream (pgoutput), TOAST,
//! updates and deletes under both replica identities, truncate, a backfill racing a writer,
//! resume and replay limits, schema changes, slot advancement, a server restart, and the errors
//! users see for bad configuration.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use lakestream_testkit::postgres::PostgresServer;
use streaming_runner::change::{ChangeBuffer, Position};
use streaming_runner::source::postgres::{PostgresSource, PostgresSourceConfig, SslMode};
use streaming_runner::source::{ErrorKind, Event, Resume, Source, SourceError};

use support::{
    Change, config, confirmed_flush, drain, latest, limits, source, start_with_backfill, take,
};

/// Generous upper bound for one drain; tests normally finish in well under a second.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A budget large enough that nothing in these tests fills it.
const BIG: usize = 64 << 20;

/// A fresh server.
async fn server() -> PostgresServer {
    PostgresServer::start().await.expect("start PostgreSQL")
}

/// Starts `source` and calls `next` once, retrying while the slot is still held by a
/// previous session that is shutting down (a retryable error).
async fn start_and_next(
    source: &mut PostgresSource,
    resume: Resume,
    buf: &mut ChangeBuffer,
    stop_after: Option<Position>,
) -> Event {
    let until = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let attempt = async {
            source.start(resume.clone()).await?;
            source.next(buf, &limits(BIG, stop_after)).await
        };
        match attempt.await {
            Ok(event) => return event,
            Err(e) if e.retryable() && tokio::time::Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("start failed: {e}"),
        }
    }
}

/// Every mapped type, through the backfill and then through the stream.
#[tokio::test]
async fn types_round_trip_through_backfill_and_stream() {
    let pg = server().await;
    pg.execute(
        "CREATE TYPE mood AS ENUM ('sad', 'happy');
         CREATE DOMAIN price AS numeric(10,2);
         CREATE TABLE types (
             id int PRIMARY KEY,
             i2 int2, i4 int4, i8 int8, o oid,
             n numeric(12,3), nu numeric, f4 float4, f8 float8, b bool,
             t text, vc varchar(10), bp char(3), nm name,
             by bytea, j json, jb jsonb, u uuid,
             d date, tm time, ttz timetz, ts timestamp, tstz timestamptz, iv interval,
             ai int4[], at text[], an numeric(5,2)[], ats timestamptz[], ab bool[], aby bytea[],
             a2 int4[][],
             e mood, dm price, pt point, ea mood[]
         );",
    )
    .await
    .unwrap();
    let rows = "
        (1, -32768, 2147483647, -9223372036854775808, 4294967295,
         123456789.123, 3.14159265358979323846264338327950288419716939937510, 1.5, -0.1, true,
         E'h\\u00e9llo\\nworld\\ttab\\\\', 'abc', 'ab', 'name',
         '\\x00ff10', '{\"a\": [1, 2]}', '{\"b\": 1, \"a\": \"x\"}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
         '2024-02-29', '13:14:15.123456', '13:14:15+02', '2024-02-29 13:14:15.5', '2024-02-29 13:14:15.5+02',
         '1 year 2 months 3 days 04:05:06.789',
         '{1,NULL,3}', ARRAY['a b', 'x\"y', 'NULL', NULL, '', E'back\\\\slash', '{}', 'comma,'],
         '{1.5,NULL,-2.25}', ARRAY['2024-01-01 00:00:00+00'::timestamptz, 'infinity'], '{t,f}',
         ARRAY['\\x0102'::bytea, NULL],
         '{{1,2},{3,4}}', 'happy', 12.5, '(1,2)', '{sad,happy}'),
        (2{nulls}),
        (3, 32767, -2147483648, 9223372036854775807, 0,
         -0.001, 'NaN', 'NaN', 'Infinity', false,
         '', '', '', '',
         '\\x', '[]', 'null', '00000000-0000-0000-0000-000000000000',
         '0001-01-01 BC', '24:00:00', '00:00:00-12:30', '-infinity', '0044-03-15 12:00:00+00 BC',
         '-1 day +02:00:00',
         '{}', '{}', '{}', '{}', '{}', '{}',
         '{7}', 'sad', -0.01, '(0,0)', '{}'),
        (4, 0, 0, 0, 0, 0, '-Infinity', '-Infinity', 0.25, NULL,
         'x', NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         'infinity', '00:00:00', NULL, 'infinity', 'infinity', '-0.000001 seconds',
         NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'NaN', NULL, NULL)";
    let rows = rows.replace("{nulls}", &", NULL".repeat(34));
    pg.execute(&format!("INSERT INTO types VALUES {rows}"))
        .await
        .unwrap();

    let expected: BTreeMap<&str, Vec<(&str, Option<&str>)>> = BTreeMap::from([
        (
            "1",
            vec![
                ("i2", Some("-32768")),
                ("i4", Some("2147483647")),
                ("i8", Some("-9223372036854775808")),
                ("o", Some("4294967295")),
                ("n", Some("123456789.123")),
                (
                    "nu",
                    Some("3.14159265358979323846264338327950288419716939937510"),
                ),
                ("f4", Some("1.5")),
                ("f8", Some("-0.1")),
                ("b", Some("true")),
                ("t", Some("h\u{e9}llo\nworld\ttab\\")),
                ("vc", Some("abc")),
                ("bp", Some("ab ")),
                ("nm", Some("name")),
                ("by", Some("00ff10")),
                ("j", Some("{\"a\": [1, 2]}")),
                ("jb", Some("{\"a\": \"x\", \"b\": 1}")),
                ("u", Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
                ("d", Some("19782")),
                ("tm", Some("47655123456")),
                ("ttz", Some("13:14:15+02")),
                ("ts", Some("1709212455500000")),
                ("tstz", Some("1709205255500000")),
                ("iv", Some("14/3/14706789000")),
                ("ai", Some("[1,NULL,3]")),
                ("at", Some("[a b,x\"y,NULL,NULL,,back\\slash,{},comma,]")),
                ("an", Some("[1.50,NULL,-2.25]")),
                ("ats", Some("[1704067200000000,9223372036854775807]")),
                ("ab", Some("[true,false]")),
                ("aby", Some("[0102,NULL]")),
                ("a2", Some("{{1,2},{3,4}}")),
                ("e", Some("happy")),
                ("dm", Some("12.50")),
                ("pt", Some("(1,2)")),
                ("ea", Some("[sad,happy]")),
            ],
        ),
        (
            "3",
            vec![
                ("i2", Some("32767")),
                ("i4", Some("-2147483648")),
                ("i8", Some("9223372036854775807")),
                ("o", Some("0")),
                ("n", Some("-0.001")),
                ("nu", Some("NaN")),
                ("f4", Some("NaN")),
                ("f8", Some("inf")),
                ("b", Some("false")),
                ("t", Some("")),
                ("bp", Some("   ")),
                ("by", Some("")),
                ("j", Some("[]")),
                ("jb", Some("null")),
                ("d", Some("-719528")),
                ("tm", Some("86400000000")),
                ("ttz", Some("00:00:00-12:30")),
                ("ts", Some("-9223372036854775807")),
                ("tstz", Some("-63517780800000000")),
                ("iv", Some("0/-1/7200000000")),
                ("ai", Some("[]")),
                ("at", Some("[]")),
                ("aby", Some("[]")),
                ("a2", Some("{7}")),
                ("e", Some("sad")),
                ("dm", Some("-0.01")),
                ("ea", Some("[]")),
            ],
        ),
        (
            "4",
            vec![
                ("nu", Some("-Infinity")),
                ("f4", Some("-inf")),
                ("f8", Some("0.25")),
                ("d", Some("2147483647")),
                ("tm", Some("0")),
                ("ts", Some("9223372036854775807")),
                ("tstz", Some("9223372036854775807")),
                ("iv", Some("0/0/-1")),
                ("dm", None),
            ],
        ),
    ]);
    let check = |changes: &[Change], op: &str, offset: i64| {
        let rows: Vec<&Change> = changes.iter().filter(|c| c.op == op).collect();
        assert_eq!(rows.len(), 4, "{op} rows: {rows:?}");
        for change in rows {
            let id = (change.get("id").unwrap().parse::<i64>().unwrap() - offset).to_string();
            if id == "2" {
                for (column, value) in &change.values {
                    if column != "id" {
                        assert_eq!(value, &None, "row 2 column {column} ({op})");
                    }
                }
                continue;
            }
            for (column, value) in &expected[id.as_str()] {
                assert_eq!(
                    change.get(column),
                    *value,
                    "row {id} column {column} ({op}); row {change:?}"
                );
            }
        }
    };

    let mut src = source(config(&pg, &["types"], "types_slot"));
    let started = start_with_backfill(&mut src).await;
    assert!(started.backfill);
    assert!(src.publication_created());
    let schema = &started.tables[0];
    let lake_type = |name: &str| {
        schema
            .columns()
            .iter()
            .find(|c| c.name == name)
            .map(|c| (c.column_type.to_string(), c.source_type.clone()))
            .unwrap()
    };
    assert_eq!(
        lake_type("n"),
        ("decimal(12,3)".into(), "numeric(12,3)".into())
    );
    assert_eq!(lake_type("nu").0, "utf8");
    assert_eq!(lake_type("jb").0, "json");
    assert_eq!(lake_type("a2").0, "text");
    assert_eq!(lake_type("pt"), ("text".into(), "point".into()));
    assert_eq!(lake_type("dm"), ("decimal(10,2)".into(), "price".into()));
    assert_eq!(lake_type("an").0, "list<decimal(5,2)>");
    assert_eq!(lake_type("iv").0, "interval");
    assert_eq!(lake_type("tstz").0, "timestamptz");
    assert!(schema.columns()[0].key);

    let mut buf = ChangeBuffer::new();
    let (changes, _) = drain(&mut src, &mut buf, BIG, TIMEOUT, |c| c.len() == 4).await;
    check(&changes, "r", 0);
    assert!(
        changes
            .iter()
            .all(|c| c.commit_ts.is_none() && c.txid.is_none())
    );
    assert_eq!(
        changes[0].log + 1,
        started.stream_from,
        "snapshot rows sit just before the stream"
    );

    pg.execute("INSERT INTO types SELECT id + 10, i2, i4, i8, o, n, nu, f4, f8, b, t, vc, bp, nm, by, j, jb, u, d, tm, ttz, ts, tstz, iv, ai, at, an, ats, ab, aby, a2, e, dm, pt, ea FROM types")
        .await
        .unwrap();
    let (changes, _) = drain(&mut src, &mut buf, BIG, TIMEOUT, |c| c.len() == 4).await;
    check(&changes, "c", 10);
    assert!(
        changes
            .iter()
            .all(|c| c.commit_ts.is_some() && c.txid.is_some())
    );
    let seqs: Vec<u64> = changes.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, [0, 1, 2, 3], "one transaction, seq from 0");
}

/// The backfill's binary `COPY` in its `SELECT` form: a partitioned table published through its
/// root and a publication with a row filter, each with columns read in binary (uuid, jsonb,
/// enum) beside ones the server casts to text (arrays, unconstrained numeric), copied one row
/// per call.
#[tokio::test]
async fn backfill_copies_partitioned_and_row_filtered_tables() {
    let pg = server().await;
    pg.execute(
        "CREATE TYPE tier AS ENUM ('free', 'paid');
         CREATE TABLE events (id bigint, u uuid, doc jsonb, tags text[], n numeric, t tier,
                              PRIMARY KEY (id)) PARTITION BY RANGE (id);
         CREATE TABLE events_low PARTITION OF events FOR VALUES FROM (0) TO (100);
         CREATE TABLE events_high PARTITION OF events FOR VALUES FROM (100) TO (1000);
         CREATE TABLE accounts (id int PRIMARY KEY, name text, ids int[]);
         CREATE PUBLICATION pub_parts FOR TABLE events, accounts WHERE (id % 2 = 0)
             WITH (publish_via_partition_root = true);
         INSERT INTO events SELECT g, md5(g::text)::uuid, jsonb_build_object('g', g),
             ARRAY['a', NULL, g::text], g / 3.0, CASE WHEN g % 2 = 0 THEN 'paid' ELSE 'free' END::tier
             FROM generate_series(95, 104) g;
         INSERT INTO accounts SELECT g, 'name ' || g, ARRAY[g, -g] FROM generate_series(1, 6) g;",
    )
    .await
    .unwrap();
    let mut config = config(&pg, &["events", "accounts"], "parts_slot");
    config.publication = "pub_parts".into();
    config.create_publication = false;
    let mut src = source(config);
    let started = start_with_backfill(&mut src).await;
    assert!(started.backfill);
    let mut buf = ChangeBuffer::new();
    // A one-byte budget pauses the copy before every row but a call's first, the first row of
    // each table (behind the copy's header) included.
    let (changes, _) = drain(&mut src, &mut buf, 1, TIMEOUT, |c| c.len() == 13).await;
    assert!(changes.iter().all(|c| c.op == "r"));
    let row = |table: &str, id: &str| {
        changes
            .iter()
            .find(|c| c.table == table && c.get("id") == Some(id))
            .unwrap_or_else(|| panic!("no row {id} of {table} in {changes:?}"))
    };
    let events = changes
        .iter()
        .filter(|c| c.table == "public.events")
        .count();
    assert_eq!(events, 10, "both partitions, as the root table");
    let expected_uuid = pg
        .query_scalar("SELECT md5('95')::uuid::text")
        .await
        .unwrap();
    assert_eq!(
        row("public.events", "95").get("u"),
        expected_uuid.as_deref()
    );
    assert_eq!(row("public.events", "104").get("doc"), Some("{\"g\": 104}"));
    assert_eq!(
        row("public.events", "104").get("tags"),
        Some("[a,NULL,104]")
    );
    assert_eq!(
        row("public.events", "99").get("n"),
        Some("33.0000000000000000")
    );
    assert_eq!(row("public.events", "99").get("t"), Some("free"));
    assert_eq!(row("public.accounts", "4").get("name"), Some("name 4"));
    assert_eq!(row("public.accounts", "6").get("ids"), Some("[6,-6]"));
    let accounts: Vec<&str> = changes
        .iter()
        .filter(|c| c.table == "public.accounts")
        .filter_map(|c| c.get("id"))
        .collect();
    assert_eq!(accounts, ["2", "4", "6"], "the row filter holds");
}

/// Unchanged TOASTed values are never written as NULL: named in `_unchanged` under the default
/// replica identity, filled from the old row under `REPLICA IDENTITY FULL`.
#[tokio::test]
async fn unchanged_toast_is_marked_or_filled() {
    let pg = server().await;
    pg.execute(
        "CREATE TABLE toasty (id int PRIMARY KEY, big text, small int);
         CREATE TABLE toasty_full (id int PRIMARY KEY, big text, small int);
         ALTER TABLE toasty ALTER COLUMN big SET STORAGE EXTERNAL;
         ALTER TABLE toasty_full ALTER COLUMN big SET STORAGE EXTERNAL;
         ALTER TABLE toasty_full REPLICA IDENTITY FULL;",
    )
    .await
    .unwrap();
    let mut src = source(config(&pg, &["toasty", "toasty_full"], "toast_slot"));
    src.start(Resume::default()).await.unwrap();
    let mut buf = ChangeBuffer::new();
    // Start streaming before the changes.
    src.next(&mut buf, &limits(BIG, None)).await.unwrap();

    pg.execute(
        "INSERT INTO toasty SELECT 1, string_agg(md5(i::text), ''), 1 FROM generate_series(1, 500) i;
         INSERT INTO toasty_full SELECT 1, string_agg(md5(i::text), ''), 1 FROM generate_series(1, 500) i;
         UPDATE toasty SET small = 2 WHERE id = 1;
         UPDATE toasty_full SET small = 2 WHERE id = 1;
         DELETE FROM toasty_full WHERE id = 1;
         INSERT INTO toasty VALUES (2, repeat('x', 20000000), 0);",
    )
    .await
    .unwrap();
    let (changes, _) = drain(&mut src, &mut buf, BIG, TIMEOUT, |c| c.len() == 6).await;
    let huge = changes.iter().find(|c| c.get("id") == Some("2")).unwrap();
    assert_eq!(
        huge.get("big").map(str::len),
        Some(20_000_000),
        "a 20 MB value in one message"
    );
    let big = pg
        .query_scalar("SELECT string_agg(md5(i::text), '') FROM generate_series(1, 500) i")
        .await
        .unwrap();

    let update = changes
        .iter()
        .find(|c| c.table == "public.toasty" && c.op == "u")
        .unwrap();
    assert_eq!(update.get("small"), Some("2"));
    assert_eq!(update.get("big"), None);
    assert_eq!(
        update.unchanged,
        ["big"],
        "the TOASTed column is named, not nulled"
    );
    let toasty: Vec<Change> = changes
        .iter()
        .filter(|c| c.table == "public.toasty")
        .cloned()
        .collect();
    assert_eq!(
        latest(&toasty)["1"]["big"],
        big,
        "replaying keeps the previous value"
    );

    let update = changes
        .iter()
        .find(|c| c.table == "public.toasty_full" && c.op == "u")
        .unwrap();
    assert_eq!(
        update.get("big"),
        big.as_deref(),
        "filled from the full old row"
    );
    assert!(update.unchanged.is_empty());
    let delete = changes
        .iter()
        .find(|c| c.table == "public.toasty_full" && c.op == "d")
        .unwrap();
    assert_eq!(
        delete.get("big"),
        big.as_deref(),
        "a FULL delete carries the whole row"
    );
    assert_eq!(delete.get("small"), Some("2"));
}

/// `(table, op, id, v, seq)` of a change.
type Summary = (String, String, Option<String>, Option<String>, u64);

/// Updates with and without a key change, deletes under both identities, truncate.
#[tokio::test]
async fn updates_deletes_and_truncate() {
    let pg = server().await;
    pg.execute(
        "CREATE TABLE kv (id int PRIMARY KEY, v text);
         CREATE TABLE kv_full (id int PRIMARY KEY, v text);
         ALTER TABLE kv_full REPLICA IDENTITY FULL;
         CREATE TABLE other (id int PRIMARY KEY);",
    )
    .await
    .unwrap();
    let mut src = source(config(&pg, &["kv", "kv_full"], "kv_slot"));
    src.start(Resume::default()).await.unwrap();
    let mut buf = ChangeBuffer::new();
    src.next(&mut buf, &limits(BIG, None)).await.unwrap();
    // One transaction per statement (a multi-statement simple query would be one).
    for sql in [
        "INSERT INTO kv VALUES (1, 'a'), (2, 'b')",
        "INSERT INTO kv_full VALUES (1, 'a'), (2, 'b')",
        "INSERT INTO other VALUES (1)",
        "UPDATE kv SET v = 'a2' WHERE id = 1",
        "UPDATE kv SET id = 20 WHERE id = 2",
        "UPDATE kv_full SET id = 20 WHERE id = 2",
        "UPDATE kv_full SET v = 'a2' WHERE id = 1",
        "BEGIN; DELETE FROM kv WHERE id = 1; DELETE FROM kv_full WHERE id = 1; COMMIT",
        "TRUNCATE kv",
    ] {
        pg.execute(sql).await.unwrap();
    }
    let (mut changes, _) = drain(&mut src, &mut buf, BIG, TIMEOUT, |c| c.len() == 13).await;
    changes.sort_by_key(Change::position);
    let summary: Vec<Summary> = changes
        .iter()
        .map(|c| {
            (
                c.table.trim_start_matches("public.").to_owned(),
                c.op.clone(),
                c.get("id").map(str::to_owned),
                c.get("v").map(str::to_owned),
                c.seq,
            )
        })
        .collect();
    let s = |t: &str, op: &str, id: Option<&str>, v: Option<&str>, seq: u64| {
        (
            t.to_owned(),
            op.to_owned(),
            id.map(str::to_owned),
            v.map(str::to_owned),
            seq,
        )
    };
    assert_eq!(
        summary,
        [
            s("kv", "c", Some("1"), Some("a"), 0),
            s("kv", "c", Some("2"), Some("b"), 1),
            s("kv_full", "c", Some("1"), Some("a"), 0),
            s("kv_full", "c", Some("2"), Some("b"), 1),
            s("kv", "u", Some("1"), Some("a2"), 0),
            // A key change: delete of the old key, then the new row, in one transaction.
            s("kv", "d", Some("2"), None, 0),
            s("kv", "u", Some("20"), Some("b"), 1),
            s("kv_full", "d", Some("2"), Some("b"), 0),
            s("kv_full", "u", Some("20"), Some("b"), 1),
            s("kv_full", "u", Some("1"), Some("a2"), 0),
            // Default identity: the key only; FULL: the whole old row.
            s("kv", "d", Some("1"), None, 0),
            s("kv_full", "d", Some("1"), Some("a2"), 1),
            s("kv", "t", None, None, 0),
        ]
    );
    let positions: Vec<Position> = changes.iter().map(Change::position).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "positions are unique"
    );
    let transactions: Vec<u64> = changes.iter().map(|c| c.log).collect();
    let distinct = transactions
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert_eq!(
        distinct, 8,
        "one position log per transaction with captured rows"
    );
}

/// A backfill while a writer keeps inserting and updating: after the backfill and the stream,
/// the latest change per key equals the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_is_consistent_with_a_concurrent_writer() {
    let pg = server().await;
    pg.execute(
        "CREATE TABLE busy (id int PRIMARY KEY, v int, note text);
         INSERT INTO busy SELECT i, 0, 'row ' || i FROM generate_series(1, 40000) i;",
    )
    .await
    .unwrap();
    let writer_client = pg.client().await.unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer_stop = std::sync::Arc::clone(&stop);
    let writer = tokio::spawn(async move {
        let mut i = 0;
        while !writer_stop.load(std::sync::atomic::Ordering::Relaxed) {
            i += 1;
            writer_client
                .batch_execute(&format!(
                    "INSERT INTO busy VALUES ({}, {i}, 'new'); UPDATE busy SET v = {i} WHERE id = {};
                     DELETE FROM busy WHERE id = {};",
                    40000 + i,
                    1 + (i * 7919) % 40000,
                    1 + (i * 104729) % 40000
                ))
                .await
                .unwrap();
        }
        i
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut config = config(&pg, &["busy"], "busy_slot");
    config.backfill_connections = 1;
    let mut src = source(config);
    start_with_backfill(&mut src).await;
    let mut buf = ChangeBuffer::new();
    let mut changes = Vec::new();
    let mut full = 0;
    loop {
        // A small budget: the copy pauses and resumes many times while the writer runs.
        match src.next(&mut buf, &limits(256 << 10, None)).await.unwrap() {
            Event::BackfillDone => break,
            Event::BufferFull => full += 1,
            _ => {}
        }
        changes.extend(take(&mut buf));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    changes.extend(take(&mut buf));
    assert!(
        full > 3,
        "the backfill paused on a full buffer ({full} times)"
    );
    let backfilled = changes.len();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.await.unwrap();
    assert!(
        writes > 10,
        "the writer ran during the backfill ({writes} rounds)"
    );
    pg.execute("INSERT INTO busy VALUES (-1, -1, 'sentinel')")
        .await
        .unwrap();
    let (streamed, _) = drain(&mut src, &mut buf, BIG, TIMEOUT, |c| {
        c.iter().any(|c| c.get("id") == Some("-1"))
    })
    .await;
    changes.extend(streamed);
    assert!(changes.len() > backfilled);

    let positions: Vec<Position> = changes.iter().map(Change::position).collect();
    let mut unique = positions.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), positions.len(), "no position twice");
    let lake = latest(&changes);
    let table = support::table_rows(&pg, "busy", &[("v", "v"), ("note", "note")]).await;
    assert_eq!(lake.len(), table.len());
    assert!(lake == table, "the lake's latest rows equal the table");
}

/// Several tables copied in parallel sessions, paused and resumed by a small buffer: every row
/// once, one `log` for the whole backfill, `seq` counting 0.. across all tables.
#[tokio::test]
async fn backfill_copies_tables_in_parallel_and_resumes_after_full_buffers() {
    let pg = server().await;
    pg.execute(
        "CREATE TABLE a (id int PRIMARY KEY, s text);
         CREATE TABLE b (id int PRIMARY KEY, s text);
         CREATE TABLE c (id int PRIMARY KEY, s text);
         INSERT INTO a SELECT i, repeat('a', 50) FROM generate_series(1, 3000) i;
         INSERT INTO b SELECT i, repeat('b', 50) FROM generate_series(1, 2000) i;
         INSERT INTO c SELECT i, E'tab\\there' FROM generate_series(1, 1000) i;",
    )
    .await
    .unwrap();
    let mut cfg = config(&pg, &["a", "b", "c"], "parallel_slot");
    cfg.backfill_connections = 2;
    let mut src = source(cfg);
    let started = start_with_backfill(&mut src).await;
    let mut buf = ChangeBuffer::new();
    let mut changes = Vec::new();
    let mut full = 0;
    loop {
        let event = src.next(&mut buf, &limits(32 << 10, None)).await.unwrap();
        changes.extend(take(&mut buf));
        match event {
            Event::BackfillDone => break,
            Event::BufferFull => {
                full += 1;
                let progress = src.progress().backfill.expect("backfill progress");
                assert_eq!(progress.tables, 3);
                assert_eq!(progress.rows, changes.len() as u64);
            }
            _ => {}
        }
    }
    assert!(full > 10, "{full} pauses");
    assert_eq!(changes.len(), 6000);
    assert!(
        changes
            .iter()
            .all(|c| c.op == "r" && c.log + 1 == started.stream_from)
    );
    let mut seqs: Vec<u64> = changes.iter().map(|c| c.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..6000).collect::<Vec<_>>());
    for (table, rows) in [("public.a", 3000), ("public.b", 2000), ("public.c", 1000)] {
        assert_eq!(
            changes.iter().filter(|c| c.table == table).count(),
            rows,
            "{table}"
        );
    }
    let c = changes.iter().find(|c| c.table == "public.c").unwrap();
    assert_eq!(c.get("s"), Some("tab\there"), "COPY escapes resolved");
}

/// Restarting from a committed position in the middle of a transaction delivers exactly the
/// rest; `stop_after` cuts exactly and the next call continues after it.
#[tokio::test]
async fn resume_skips_committed_rows_and_stop_after_cuts_exactly() {
    let pg = server().await;
    pg.execute("CREATE TABLE r (id int PRIMARY KEY, v int)")
        .await
        .unwrap();
    let cfg = config(&pg, &["r"], "resume_slot");
    let mut buf = ChangeBuffer::new();

    let mut first = source(cfg.clone());
    first.start(Resume::default()).await.unwrap();
    first.next(&mut buf, &limits(BIG, None)).await.unwrap();
    pg.execute(
        "INSERT INTO r SELECT i, i FROM generate_series(0, 9) i;
         INSERT INTO r SELECT i, i FROM generate_series(10, 12) i;",
    )
    .await
    .unwrap();
    let (all, _) = drain(&mut first, &mut buf, BIG, TIMEOUT, |c| c.len() == 13).await;
    drop(first);
    let ids = |changes: &[Change]| -> Vec<String> {
        changes
            .iter()
            .map(|c| c.get("id").unwrap().to_owned())
            .collect()
    };
    let all_ids = ids(&all);

    // Resume after row 4 of the first transaction (nothing was acknowledged: the slot re-sends).
    let mut second = source(cfg.clone());
    let resume = Resume {
        committed: Some(all[4].position()),
        ..Resume::default()
    };
    let event = start_and_next(&mut second, resume, &mut buf, None).await;
    let mut rest = take(&mut buf);
    if rest.len() < 8 {
        let (more, _) = drain(&mut second, &mut buf, BIG, TIMEOUT, |c| c.len() == 8).await;
        rest.extend(more);
    }
    assert!(
        matches!(event, Event::Deadline | Event::BufferFull),
        "{event:?}"
    );
    assert_eq!(
        ids(&rest),
        all_ids[5..],
        "exactly the rows after the committed position"
    );
    assert_eq!(rest[0].position(), all[5].position());
    drop(second);

    // Replay with stop_after = row 7: the buffer ends exactly there.
    let mut third = source(cfg);
    let stop = Some(all[7].position());
    let mut event = start_and_next(&mut third, Resume::default(), &mut buf, stop).await;
    let mut got = take(&mut buf);
    while !matches!(event, Event::Stopped) {
        event = third.next(&mut buf, &limits(BIG, stop)).await.unwrap();
        got.extend(take(&mut buf));
    }
    assert_eq!(ids(&got), all_ids[..8], "stopped exactly after row 7");
    // Stopping again at the same place appends nothing more.
    assert!(matches!(
        third.next(&mut buf, &limits(BIG, stop)).await.unwrap(),
        Event::Stopped
    ));
    assert!(buf.is_empty());
    let (rest, _) = drain(&mut third, &mut buf, BIG, TIMEOUT, |c| c.len() == 5).await;
    assert_eq!(ids(&rest), all_ids[8..]);
}

/// ADD COLUMN, DROP COLUMN and a type change each return `SchemaChanged` before the first row
/// of the new shape, which lands in a new segment.
#[tokio::test]
async fn schema_changes_are_events_before_new_rows() {
    let pg = server().await;
    pg.execute("CREATE TABLE evolving (id int PRIMARY KEY, a int)")
        .await
        .unwrap();
    let mut src = source(config(&pg, &["evolving"], "evolve_slot"));
    src.start(Resume::default()).await.unwrap();
    let mut buf = ChangeBuffer::new();
    src.next(&mut buf, &limits(BIG, None)).await.unwrap();
    pg.execute(
        "INSERT INTO evolving VALUES (1, 1);
         ALTER TABLE evolving ADD COLUMN b text;
         INSERT INTO evolving VALUES (2, 2, 'two');
         ALTER TABLE evolving DROP COLUMN a;
         INSERT INTO evolving VALUES (3, 'three');
         ALTER TABLE evolving ALTER COLUMN id TYPE bigint;
         INSERT INTO evolving VALUES (4, 'four');",
    )
    .await
    .unwrap();
    let mut rows = Vec::new();
    let mut shapes = Vec::new();
    let until = tokio::time::Instant::now() + TIMEOUT;
    while rows.len() < 4 {
        assert!(
            tokio::time::Instant::now() < until,
            "timed out with {rows:?}"
        );
        let event = src.next(&mut buf, &limits(BIG, None)).await.unwrap();
        let batch = take(&mut buf);
        if let Event::SchemaChanged {
            table,
            before,
            after,
        } = &event
        {
            assert_eq!(table.to_string(), "public.evolving");
            // Rows of the old shape were appended before the event, none of the new one.
            assert!(
                batch
                    .iter()
                    .all(|c| c.values.len() == before.columns().len())
            );
            let names = |s: &streaming_runner::change::TableSchema| {
                s.columns()
                    .iter()
                    .map(|c| format!("{}:{}", c.name, c.column_type))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            shapes.push(names(after.as_ref()));
        }
        rows.extend(batch);
    }
    assert_eq!(
        shapes,
        [
            "id:int32,a:int32,b:utf8",
            "id:int32,b:utf8",
            "id:int64,b:utf8"
        ]
    );
    assert_eq!(rows[1].get("b"), Some("two"));
    assert_eq!(rows[2].values.len(), 2);
    assert_eq!(rows[3].get("id"), Some("4"));
}

/// The slot advances although nothing in the captured tables changes: from activity in another
/// database, and from heartbeats alone.
#[tokio::test]
async fn slot_advances_on_an_idle_database() {
    let pg = server().await;
    pg.execute("CREATE TABLE quiet (id int PRIMARY KEY); CREATE TABLE noisy (id int)")
        .await
        .unwrap();
    pg.execute_in("postgres", "CREATE DATABASE elsewhere")
        .await
        .unwrap();
    pg.execute_in("elsewhere", "CREATE TABLE t (id int)")
        .await
        .unwrap();

    let mut src = source(config(&pg, &["quiet"], "idle_slot"));
    src.start(Resume::default()).await.unwrap();
    let mut buf = ChangeBuffer::new();
    src.next(&mut buf, &limits(BIG, None)).await.unwrap();
    let before = confirmed_flush(&pg, "idle_slot").await;

    pg.execute_in(
        "elsewhere",
        "INSERT INTO t SELECT generate_series(1, 10000)",
    )
    .await
    .unwrap();
    // A table in this database that is not captured: a fully filtered stream.
    pg.execute("INSERT INTO noisy SELECT generate_series(1, 10000)")
        .await
        .unwrap();
    let target = support::parse_lsn(
        &pg.query_scalar("SELECT pg_current_wal_lsn()::text")
            .await
            .unwrap()
            .unwrap(),
    );
    let until = tokio::time::Instant::now() + TIMEOUT;
    loop {
        src.next(&mut buf, &limits(BIG, None)).await.unwrap();
        assert!(buf.is_empty());
        if let Some(ack) = src.progress().ack {
            src.ack(ack).await.unwrap();
        }
        if confirmed_flush(&pg, "idle_slot").await >= target {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "slot stuck at {before:X}, target {target:X}"
        );
    }
    let progress = src.progress();
    assert_eq!(progress.lag, Duration::ZERO);
    assert!(progress.acked.unwrap() >= target);
    drop(src);

    // Heartbeats alone: no other activity at all.
    let mut cfg = config(&pg, &["quiet"], "idle_slot");
    cfg.heartbeat_interval = Duration::from_millis(200);
    let mut src = source(cfg);
    start_and_next(&mut src, Resume::default(), &mut buf, None).await;
    let before = confirmed_flush(&pg, "idle_slot").await;
    let until = tokio::time::Instant::now() + TIMEOUT;
    loop {
        src.next(&mut buf, &limits(BIG, None)).await.unwrap();
        if let Some(ack) = src.progress().ack {
            src.ack(ack).await.unwrap();
        }
        if confirmed_flush(&pg, "idle_slot").await > before {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "heartbeats did not move the slot"
        );
    }
}

/// PostgreSQL restarting mid-stream is a retryable error; a fresh start from the checkpoint
/// loses nothing.
#[tokio::test]
async fn server_restart_is_retryable_and_resumes_without_loss() {
    let mut pg = server().await;
    pg.execute("CREATE TABLE steady (id int PRIMARY KEY)")
        .await
        .unwrap();
    let cfg = config(&pg, &["steady"], "restart_slot");
    let mut src = source(cfg.clone());
    src.start(Resume::default()).await.unwrap();
    let mut buf = ChangeBuffer::new();
    src.next(&mut buf, &limits(BIG, None)).await.unwrap();
    pg.execute("INSERT INTO steady SELECT generate_series(1, 100)")
        .await
        .unwrap();
    let (first, _) = drain(&mut src, &mut buf, BIG, TIMEOUT, |c| c.len() == 100).await;
    // The pipeline flushed and acknowledged these.
    let committed = first.last().unwrap().position();
    let ack = src.progress().ack.unwrap();
    src.ack(ack).await.unwrap();

    pg.execute("INSERT INTO steady SELECT generate_series(101, 150)")
        .await
        .unwrap();
    // The source keeps reading while the server shuts down (as the pipeline does): a fast
    // shutdown waits for the walsender to hand everything over.
    let (restarted, error) = tokio::join!(pg.restart(), async {
        loop {
            if let Err(error) = src.next(&mut buf, &limits(BIG, None)).await {
                break error;
            }
        }
    });
    restarted.unwrap();
    pg.execute("INSERT INTO steady SELECT generate_series(151, 200)")
        .await
        .unwrap();
    assert!(error.retryable(), "{error} ({:?})", error.kind());
    drop(src);
    buf.take();

    let mut src = source(cfg);
    let resume = Resume {
        committed: Some(committed),
        ack: Some(ack),
        backfill: false,
    };
    start_and_next(&mut src, resume, &mut buf, None).await;
    let (rest, _) = drain(&mut src, &mut buf, BIG, TIMEOUT, |c| c.len() >= 100).await;
    let ids: Vec<i64> = rest
        .iter()
        .map(|c| c.get("id").unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (101..=200).collect::<Vec<_>>());
}

/// Configuration mistakes fail fast, fatally, with one line naming the problem; TLS modes work
/// and a wrong CA is refused.
#[tokio::test]
async fn bad_configuration_gives_clear_fatal_errors() {
    let pg = server().await;
    pg.execute(
        "CREATE TABLE guarded (id int PRIMARY KEY);
         CREATE ROLE cdc LOGIN REPLICATION PASSWORD 'secret-pw';
         CREATE ROLE plain LOGIN PASSWORD 'plain-pw';
         GRANT SELECT ON guarded TO cdc, plain;
         CREATE PUBLICATION other_pub FOR TABLE guarded WHERE (id > 0);",
    )
    .await
    .unwrap();
    let start = |config: PostgresSourceConfig| async move {
        let mut source = PostgresSource::new(config);
        source.start(Resume::default()).await
    };
    let fatal = |result: Result<streaming_runner::source::Started, SourceError>,
                 kind: ErrorKind| {
        let error = result.expect_err("must fail");
        assert_eq!(error.kind(), kind, "{error}");
        assert!(!error.retryable());
        assert!(!error.to_string().contains('\n'));
        error.to_string()
    };
    let as_role = |user: &str, password: &str| {
        let mut c = config(&pg, &["guarded"], "bad_slot");
        c.user = user.into();
        c.password = Some(password.into());
        c
    };
    let endpoint = format!("127.0.0.1:{}", pg.port());

    let message = fatal(start(as_role("cdc", "wrong")).await, ErrorKind::Auth);
    assert_eq!(
        message,
        format!("password authentication failed for user \"cdc\" at {endpoint}")
    );
    assert!(!message.contains("wrong"));

    let mut missing = as_role("cdc", "secret-pw");
    missing
        .tables
        .push(streaming_runner::change::TableName::new(
            "public", "missing",
        ));
    assert_eq!(
        fatal(start(missing).await, ErrorKind::MissingObject),
        "table public.missing does not exist"
    );

    let message = fatal(
        start(as_role("cdc", "secret-pw")).await,
        ErrorKind::Permission,
    );
    assert!(
        message.starts_with("role \"cdc\" may not create publication \"pub_bad_slot\": "),
        "{message}"
    );

    let mut no_create = as_role("cdc", "secret-pw");
    no_create.create_publication = false;
    assert_eq!(
        fatal(start(no_create).await, ErrorKind::MissingObject),
        "publication \"pub_bad_slot\" does not exist (and create_publication is off)"
    );

    let mut existing = as_role("plain", "plain-pw");
    existing.publication = "other_pub".into();
    assert_eq!(
        fatal(start(existing).await, ErrorKind::Permission),
        format!(
            "role \"plain\" may not open a replication connection to {endpoint}: must be superuser or replication role to start walsender"
        )
    );

    // TLS: verify-full against the server's CA works, with the publication's row filter
    // applied to the backfill too; a CA that did not sign the server's certificate is refused.
    pg.execute("INSERT INTO guarded VALUES (-1), (1), (2)")
        .await
        .unwrap();
    let mut tls = as_role("cdc", "secret-pw");
    tls.publication = "other_pub".into();
    tls.create_publication = false;
    tls.sslmode = SslMode::VerifyFull;
    tls.ssl_root_cert = Some(pg.ca_cert_path());
    let mut src = PostgresSource::new(tls.clone());
    src.start(Resume {
        backfill: true,
        ..Resume::default()
    })
    .await
    .expect("verify-full start");
    assert!(!src.publication_created(), "other_pub existed");
    let mut buf = ChangeBuffer::new();
    let (rows, _) = drain(&mut src, &mut buf, BIG, TIMEOUT, |c| c.len() == 2).await;
    let ids: Vec<&str> = rows.iter().map(|c| c.get("id").unwrap()).collect();
    assert_eq!(ids, ["1", "2"], "the row filter applies to the backfill");
    drop(src);

    let stranger = server().await;
    tls.ssl_root_cert = Some(stranger.ca_cert_path());
    let message = fatal(start(tls.clone()).await, ErrorKind::Config);
    assert!(
        message.starts_with(&format!("TLS handshake with {endpoint} failed")),
        "{message}"
    );
    tls.sslmode = SslMode::Require;
    tls.ssl_root_cert = None;
    start(tls).await.expect("require accepts any certificate");
}

/// Throughput of the source alone (source → buffer → take) against `pg_recvlogical` draining
/// the same WAL, and of the backfill against `COPY … TO STDOUT` into /dev/null. Run with
/// `cargo test -p streaming-runner --release --test main -- --ignored --nocapture throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly, prints rows/s"]
async fn throughput_against_pg_recvlogical_and_copy() {
    use std::time::Instant;

    let rows: i64 = std::env::var("LAKESTREAM_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let pg = server().await;
    pg.execute("CREATE TABLE narrow (id bigint PRIMARY KEY, name text, at timestamptz)")
        .await
        .unwrap();
    let mut cfg = config(&pg, &["narrow"], "bench_slot");
    // LAKESTREAM_BENCH_TLS=1 measures the source over TLS.
    if std::env::var_os("LAKESTREAM_BENCH_TLS").is_some() {
        cfg.sslmode = SslMode::Require;
    }
    // Our slot and two for pg_recvlogical, all before the data.
    let mut src = source(cfg.clone());
    src.start(Resume::default()).await.unwrap();
    pg.execute(
        "SELECT pg_create_logical_replication_slot('recv_slot', 'pgoutput');
         SELECT pg_create_logical_replication_slot('recv_slot2', 'pgoutput');",
    )
    .await
    .unwrap();
    // Rows per transaction: all in one by default, LAKESTREAM_BENCH_BATCH to commit more often.
    let batch: i64 = std::env::var("LAKESTREAM_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(rows);
    pg.execute(&format!(
        "DO $$ BEGIN
           FOR b IN 0..({rows} - 1) / {batch} LOOP
             INSERT INTO narrow SELECT i, 'name number ' || i, now() + i * interval '1 second'
             FROM generate_series(b * {batch} + 1, least((b + 1) * {batch}, {rows})) i;
             COMMIT;
           END LOOP;
         END $$"
    ))
    .await
    .unwrap();
    let end = pg
        .query_scalar("SELECT pg_current_wal_lsn()::text")
        .await
        .unwrap()
        .unwrap();

    let out = tempfile::tempdir().unwrap();
    let recvlogical = |slot: &'static str| {
        let mut command = tokio::process::Command::new("pg_recvlogical");
        command
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port().to_string(),
                "-U",
                "admin",
                "-d",
                "app",
            ])
            .args([
                "-S",
                slot,
                "--no-loop",
                "--start",
                "-E",
                &end,
                "-o",
                "proto_version=1",
            ])
            .args(["-o", "publication_names=pub_bench_slot", "-f"])
            .arg(out.path().join(format!("{slot}.bin")))
            .env("PGPASSWORD", pg.admin_password());
        command
    };
    // pg_recvlogical before and after our source, so neither profits alone from a warm cache.
    let started = Instant::now();
    assert!(recvlogical("recv_slot").status().await.unwrap().success());
    let recv_before = started.elapsed();

    let mut buf = ChangeBuffer::new();
    let started = Instant::now();
    let mut seen = 0i64;
    while seen < rows {
        src.next(&mut buf, &limits(32 << 20, None)).await.unwrap();
        seen += buf
            .take()
            .iter()
            .map(|b| b.batch.num_rows() as i64)
            .sum::<i64>();
    }
    let ours = started.elapsed();
    drop(src);

    let started = Instant::now();
    assert!(recvlogical("recv_slot2").status().await.unwrap().success());
    let recv = recv_before.min(started.elapsed());

    let started = Instant::now();
    let status = tokio::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port().to_string(),
            "-U",
            "admin",
            "-d",
            "app",
        ])
        .args(["-q", "-c", "COPY narrow TO STDOUT"])
        .env("PGPASSWORD", pg.admin_password())
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let copy = started.elapsed();

    cfg.slot = "bench_backfill".into();
    let mut src = source(cfg);
    let started = Instant::now();
    start_with_backfill(&mut src).await;
    let mut seen = 0i64;
    loop {
        let event = src.next(&mut buf, &limits(32 << 20, None)).await.unwrap();
        seen += buf
            .take()
            .iter()
            .map(|b| b.batch.num_rows() as i64)
            .sum::<i64>();
        if matches!(event, Event::BackfillDone) {
            break;
        }
    }
    let backfill = started.elapsed();
    assert_eq!(seen, rows);

    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    println!(
        "stream: ours {:.0} rows/s vs pg_recvlogical {:.0} rows/s (best of two runs) ({:.2}x)",
        rate(ours),
        rate(recv),
        recv.as_secs_f64() / ours.as_secs_f64()
    );
    println!(
        "backfill: ours {:.0} rows/s vs COPY to /dev/null {:.0} rows/s ({:.2}x)",
        rate(backfill),
        rate(copy),
        copy.as_secs_f64() / backfill.as_secs_f64()
    );
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let peak = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?");
    println!("peak RSS of the test process: {peak}");
}
