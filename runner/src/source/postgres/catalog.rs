//! Catalog queries on an ordinary session: server checks, the included tables and their
//! columns and types, the publication, the replication slot. Each failure becomes a one-line
//! error naming the object.

use std::sync::Arc;

use crate::change::{Column, TableName, TableSchema};
use crate::source::{ErrorKind, SourceError};

use super::config::PostgresSourceConfig;
use super::types::{CopyFormat, Decoder, TypeCache, TypeInfo};
use super::wire::{Conn, Rows, WireError, quote_ident, quote_literal};

/// Oldest supported server: pgoutput's `messages` option needs PostgreSQL 14.
const MIN_SERVER_VERSION: u32 = 140_000;

/// A captured table as the source knows it: its schema plus what decoding needs per column.
#[derive(Debug, Clone)]
pub(crate) struct TableState {
    /// The table's OID when described (a dropped and recreated table gets a new one).
    pub(crate) oid: u32,
    /// `r` ordinary or `p` partitioned.
    pub(crate) relkind: u8,
    /// The schema written to the lake.
    pub(crate) schema: Arc<TableSchema>,
    /// Per column: what the server sends and how to decode it.
    pub(crate) columns: Vec<SourceColumn>,
    /// Indexes of the key columns (primary key, else replica identity index).
    pub(crate) key: Vec<usize>,
    /// The publication's row filter for this table (PostgreSQL 15), applied to the backfill too.
    pub(crate) row_filter: Option<String>,
}

impl TableState {
    /// The table's name.
    pub(crate) fn name(&self) -> &TableName {
        self.schema.table()
    }

    /// Whether a `Relation` message's columns (name, type, modifier) are the ones this state
    /// decodes.
    pub(crate) fn matches(&self, columns: &[super::pgoutput::RelationColumn]) -> bool {
        self.columns.len() == columns.len()
            && self.columns.iter().zip(columns).all(|(mine, theirs)| {
                mine.name == theirs.name
                    && mine.type_oid == theirs.type_oid
                    && mine.typmod == theirs.typmod
            })
    }
}

/// A column as the server describes it, with its decoder.
#[derive(Debug, Clone)]
pub(crate) struct SourceColumn {
    /// Its name.
    pub(crate) name: String,
    /// Its type's OID.
    pub(crate) type_oid: u32,
    /// Its type modifier.
    pub(crate) typmod: i32,
    /// How its text values are parsed.
    pub(crate) decoder: Decoder,
    /// How the backfill's binary `COPY` carries it.
    pub(crate) copy: CopyFormat,
}

/// What the publication looks like.
#[derive(Debug, Clone, Default)]
pub(crate) struct Publication {
    /// `FOR ALL TABLES`.
    pub(crate) all_tables: bool,
    /// This start created it.
    pub(crate) created: bool,
    /// Partition changes are published as the root table's.
    pub(crate) via_root: bool,
    /// Operations not published (`insert`, `update` …), for a warning.
    pub(crate) unpublished: Vec<&'static str>,
    /// Published tables with their column list and row filter.
    pub(crate) tables: Vec<PublishedTable>,
}

impl Publication {
    /// The entry of `table`, if published.
    fn entry(&self, table: &TableName) -> Option<&PublishedTable> {
        self.tables.iter().find(|t| t.name == *table)
    }
}

/// A table of the publication.
#[derive(Debug, Clone)]
pub(crate) struct PublishedTable {
    /// The table.
    pub(crate) name: TableName,
    /// Its published columns (PostgreSQL 15 column lists); `None` for all.
    pub(crate) columns: Option<Vec<String>>,
    /// Its row filter (PostgreSQL 15), as SQL.
    pub(crate) row_filter: Option<String>,
}

/// What `pg_replication_slots` says about the slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotInfo {
    /// Output plugin.
    pub(crate) plugin: Option<String>,
    /// Database it belongs to.
    pub(crate) database: Option<String>,
    /// `confirmed_flush_lsn`.
    pub(crate) confirmed_flush: Option<u64>,
    /// `wal_status` (`lost` when invalidated).
    pub(crate) wal_status: Option<String>,
}

/// Runs a catalog query, naming `what` on failure.
async fn query(
    conn: &mut Conn,
    sql: &str,
    what: impl FnOnce() -> String,
) -> Result<Rows, SourceError> {
    conn.query(sql).await.map_err(|e| e.context(what()))
}

/// Refuses servers the source cannot work with: too old, `wal_level` not logical, not UTF-8.
/// (Whether the role may replicate is left to the replication session's own check, which also
/// knows managed services' grants such as `rds_replication`.)
pub(crate) async fn check_server(
    conn: &mut Conn,
    config: &PostgresSourceConfig,
) -> Result<(), SourceError> {
    let endpoint = conn.endpoint.clone();
    if conn.server_version < MIN_SERVER_VERSION {
        return Err(SourceError::new(
            ErrorKind::Config,
            format!(
                "server at {endpoint} runs PostgreSQL {}.{}; logical replication into Lakestream needs 14 or later",
                conn.server_version / 10_000,
                conn.server_version % 10_000
            ),
        ));
    }
    let rows = query(
        conn,
        "SELECT current_setting('wal_level'), current_setting('server_encoding')",
        || format!("could not read the settings of {endpoint}"),
    )
    .await?;
    let row = rows.first().cloned().unwrap_or_default();
    let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    if field(0) != "logical" {
        return Err(SourceError::new(
            ErrorKind::Config,
            format!(
                "server at {endpoint} has wal_level={}; logical replication needs wal_level=logical (and a restart)",
                field(0)
            ),
        ));
    }
    if field(1) != "UTF8" {
        return Err(SourceError::new(
            ErrorKind::Config,
            format!(
                "database {} at {endpoint} uses encoding {}; Lakestream captures UTF8 databases only",
                config.database,
                field(1)
            ),
        ));
    }
    Ok(())
}

/// Reads the publication, creating it or adding missing tables when allowed, and checks that
/// it publishes every included table.
pub(crate) async fn prepare_publication(
    conn: &mut Conn,
    config: &PostgresSourceConfig,
    partitioned: &[TableName],
) -> Result<Publication, SourceError> {
    let mut publication = read_publication(conn, config).await?;
    let name = &config.publication;
    let Some(mut current) = publication.take() else {
        if !config.create_publication {
            return Err(SourceError::new(
                ErrorKind::MissingObject,
                format!("publication \"{name}\" does not exist (and create_publication is off)"),
            ));
        }
        let sql = format!(
            "CREATE PUBLICATION {} FOR TABLE {} WITH (publish_via_partition_root = true)",
            quote_ident(name),
            table_list(&config.tables)
        );
        conn.query(&sql).await.map_err(|e| {
            may_not(
                e,
                format!(
                    "role \"{}\" may not create publication \"{name}\"",
                    config.user
                ),
            )
        })?;
        let mut created = read_publication(conn, config).await?.ok_or_else(|| {
            SourceError::new(
                ErrorKind::MissingObject,
                format!("publication \"{name}\" vanished right after it was created"),
            )
        })?;
        created.created = true;
        return Ok(created);
    };
    let missing: Vec<TableName> = config
        .tables
        .iter()
        .filter(|t| !current.all_tables && current.entry(t).is_none())
        .cloned()
        .collect();
    if !missing.is_empty() {
        let list = missing
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        if !config.create_publication {
            return Err(SourceError::new(
                ErrorKind::Config,
                format!(
                    "publication \"{name}\" does not include {list} (and create_publication is off, so it is not altered)"
                ),
            ));
        }
        let sql = format!(
            "ALTER PUBLICATION {} ADD TABLE {}",
            quote_ident(name),
            table_list(&missing)
        );
        conn.query(&sql).await.map_err(|e| {
            may_not(
                e,
                format!(
                    "role \"{}\" may not add {list} to publication \"{name}\"",
                    config.user
                ),
            )
        })?;
        current = read_publication(conn, config).await?.unwrap_or_default();
    }
    if !current.via_root
        && let Some(table) = partitioned.first()
    {
        return Err(SourceError::new(
            ErrorKind::Config,
            format!(
                "publication \"{name}\" publishes partitioned table {table} per partition; it needs publish_via_partition_root = true"
            ),
        ));
    }
    Ok(current)
}

/// A server error for an action the role may not take, phrased `what: reason`.
fn may_not(error: WireError, what: String) -> SourceError {
    let permission = error
        .server()
        .is_some_and(|e| e.kind() == ErrorKind::Permission);
    let mut source = error.context(what);
    if permission {
        source =
            SourceError::with_source(ErrorKind::Permission, source.message().to_owned(), source);
    }
    source
}

/// `"s"."t", …`.
fn table_list(tables: &[TableName]) -> String {
    tables
        .iter()
        .map(|t| format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The publication's settings and tables, `None` when it does not exist.
async fn read_publication(
    conn: &mut Conn,
    config: &PostgresSourceConfig,
) -> Result<Option<Publication>, SourceError> {
    let name = quote_literal(&config.publication);
    let what = || format!("could not read publication \"{}\"", config.publication);
    let rows = query(
        conn,
        &format!(
            "SELECT puballtables, pubviaroot, pubinsert, pubupdate, pubdelete, pubtruncate \
             FROM pg_catalog.pg_publication WHERE pubname = {name}"
        ),
        what,
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let flag = |i: usize| row.get(i).cloned().flatten().as_deref() == Some("t");
    let unpublished = [(2, "insert"), (3, "update"), (4, "delete"), (5, "truncate")]
        .into_iter()
        .filter(|(i, _)| !flag(*i))
        .map(|(_, op)| op)
        .collect();
    let sql = if conn.server_version >= 150_000 {
        format!(
            "SELECT schemaname, tablename, to_json(attnames)::text, rowfilter \
             FROM pg_catalog.pg_publication_tables WHERE pubname = {name}"
        )
    } else {
        format!(
            "SELECT schemaname, tablename, NULL, NULL \
             FROM pg_catalog.pg_publication_tables WHERE pubname = {name}"
        )
    };
    let tables = query(conn, &sql, what)
        .await?
        .into_iter()
        .map(|row| {
            let mut fields = row.into_iter();
            let schema = fields.next().flatten().unwrap_or_default();
            let table = fields.next().flatten().unwrap_or_default();
            let columns = fields
                .next()
                .flatten()
                .and_then(|json| serde_json::from_str::<Vec<String>>(&json).ok());
            let filter = fields.next().flatten();
            PublishedTable {
                name: TableName::new(schema, table),
                columns,
                row_filter: filter,
            }
        })
        .collect();
    Ok(Some(Publication {
        all_tables: flag(0),
        created: false,
        via_root: flag(1),
        unpublished,
        tables,
    }))
}

/// The slot's entry in `pg_replication_slots`, `None` when it does not exist.
pub(crate) async fn read_slot(
    conn: &mut Conn,
    slot: &str,
) -> Result<Option<SlotInfo>, SourceError> {
    let rows = query(
        conn,
        &format!(
            "SELECT plugin, database, confirmed_flush_lsn::text, wal_status \
             FROM pg_catalog.pg_replication_slots WHERE slot_name = {}",
            quote_literal(slot)
        ),
        || format!("could not read replication slot \"{slot}\""),
    )
    .await?;
    Ok(rows.into_iter().next().map(|row| {
        let mut fields = row.into_iter();
        SlotInfo {
            plugin: fields.next().flatten(),
            database: fields.next().flatten(),
            confirmed_flush: fields.next().flatten().and_then(|t| parse_lsn(&t)),
            wal_status: fields.next().flatten(),
        }
    }))
}

/// The included tables' OIDs and kinds, in configuration order; errors name a missing table or
/// a relation that is not a table.
pub(crate) async fn find_tables(
    conn: &mut Conn,
    tables: &[TableName],
    need_select: bool,
    user: &str,
) -> Result<Vec<(u32, u8)>, SourceError> {
    let values = tables
        .iter()
        .map(|t| format!("({}, {})", quote_literal(&t.schema), quote_literal(&t.name)))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = query(
        conn,
        &format!(
            "SELECT n.nspname, c.relname, c.oid, c.relkind, has_table_privilege(c.oid, 'SELECT') \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE (n.nspname, c.relname) IN (VALUES {values})"
        ),
        || "could not look up the included tables".to_owned(),
    )
    .await?;
    let mut found = Vec::with_capacity(tables.len());
    for table in tables {
        let row = rows.iter().find(|row| {
            row.first().cloned().flatten().as_deref() == Some(table.schema.as_str())
                && row.get(1).cloned().flatten().as_deref() == Some(table.name.as_str())
        });
        let Some(row) = row else {
            return Err(SourceError::new(
                ErrorKind::MissingObject,
                format!("table {table} does not exist"),
            ));
        };
        let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        let oid = field(2).parse().unwrap_or(0);
        let relkind = field(3).bytes().next().unwrap_or(b'?');
        if !matches!(relkind, b'r' | b'p') {
            let what = match relkind {
                b'v' => "a view",
                b'm' => "a materialized view",
                b'f' => "a foreign table",
                b'S' => "a sequence",
                _ => "not a table",
            };
            return Err(SourceError::new(
                ErrorKind::Config,
                format!("{table} is {what}; only tables can be captured"),
            ));
        }
        if need_select && field(4) != "t" {
            return Err(SourceError::new(
                ErrorKind::Permission,
                format!(
                    "role \"{user}\" may not read table {table} for the backfill: permission denied (GRANT SELECT)"
                ),
            ));
        }
        found.push((oid, relkind));
    }
    Ok(found)
}

/// Describes tables (by OID) as the catalog sees them through `conn`'s snapshot: published
/// columns in order, with types resolved into `types`.
pub(crate) async fn describe_tables(
    conn: &mut Conn,
    tables: &[(TableName, u32, u8)],
    publication: &Publication,
    types: &mut TypeCache,
) -> Result<Vec<TableState>, SourceError> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let oids = tables
        .iter()
        .map(|(_, oid, _)| oid.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let rows = query(
        conn,
        &format!(
            "SELECT a.attrelid, a.attname, a.atttypid, a.atttypmod, a.attndims, a.attnotnull, \
                    format_type(a.atttypid, a.atttypmod), \
                    EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = a.attrelid \
                            AND i.indisprimary AND a.attnum = ANY (i.indkey)), \
                    EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = a.attrelid \
                            AND i.indisreplident AND a.attnum = ANY (i.indkey)) \
             FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid IN ({oids}) AND a.attnum > 0 AND NOT a.attisdropped \
               AND a.attgenerated = '' \
             ORDER BY a.attrelid, a.attnum"
        ),
        || "could not read the columns of the included tables".to_owned(),
    )
    .await?;
    let type_oids: Vec<u32> = rows
        .iter()
        .filter_map(|row| row.get(2).cloned().flatten()?.parse().ok())
        .collect();
    resolve_types(conn, types, type_oids).await?;

    let mut states = Vec::with_capacity(tables.len());
    for (name, oid, relkind) in tables {
        let (published, row_filter) = match publication.entry(name) {
            Some(entry) => (entry.columns.clone(), entry.row_filter.clone()),
            None => (None, None),
        };
        let own: Vec<&Vec<Option<String>>> = rows
            .iter()
            .filter(|row| row.first().cloned().flatten() == Some(oid.to_string()))
            .filter(|row| {
                let column = row.get(1).cloned().flatten().unwrap_or_default();
                published.as_ref().is_none_or(|list| list.contains(&column))
            })
            .collect();
        let has_pk = own.iter().any(|row| flag(row, 7));
        let mut columns = Vec::with_capacity(own.len());
        let mut source_columns = Vec::with_capacity(own.len());
        let mut key = Vec::new();
        for (index, row) in own.iter().enumerate() {
            let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
            let type_oid: u32 = text(2).parse().unwrap_or(0);
            let typmod: i32 = text(3).parse().unwrap_or(-1);
            let dims: i32 = text(4).parse().unwrap_or(0);
            let mapping = types.mapping(type_oid, typmod, dims);
            let is_key = if has_pk { flag(row, 7) } else { flag(row, 8) };
            if is_key {
                key.push(index);
            }
            columns.push(Column {
                name: text(1),
                source_type: text(6),
                column_type: mapping.column_type,
                key: is_key,
                nullable: Some(!flag(row, 5)),
            });
            source_columns.push(SourceColumn {
                name: text(1),
                type_oid,
                typmod,
                decoder: mapping.decoder,
                copy: mapping.copy,
            });
        }
        let schema = TableSchema::new(name.clone(), columns)
            .map_err(|e| SourceError::with_source(ErrorKind::Config, e.to_string(), e))?;
        states.push(TableState {
            oid: *oid,
            relkind: *relkind,
            schema: Arc::new(schema),
            columns: source_columns,
            key,
            row_filter,
        });
    }
    Ok(states)
}

/// Whether boolean field `i` of a row is true.
fn flag(row: &[Option<String>], i: usize) -> bool {
    row.get(i).cloned().flatten().as_deref() == Some("t")
}

/// Loads every type in `oids` (and their element and base types) that `types` does not know.
pub(crate) async fn resolve_types(
    conn: &mut Conn,
    types: &mut TypeCache,
    oids: Vec<u32>,
) -> Result<(), SourceError> {
    let mut missing = types.missing(oids);
    while !missing.is_empty() {
        let list = missing
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let rows = query(
            conn,
            &format!(
                "SELECT t.oid, t.typname, n.nspname, t.typtype, t.typcategory, t.typelem, \
                        t.typbasetype, t.typtypmod, t.typdelim \
                 FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
                 WHERE t.oid IN ({list})"
            ),
            || "could not read column types".to_owned(),
        )
        .await?;
        let mut next = Vec::new();
        for row in rows {
            let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
            let byte = |i: usize| text(i).bytes().next().unwrap_or(0);
            let info = TypeInfo {
                oid: text(0).parse().unwrap_or(0),
                name: text(1),
                namespace: text(2),
                kind: byte(3),
                category: byte(4),
                element: text(5).parse().unwrap_or(0),
                base: text(6).parse().unwrap_or(0),
                base_typmod: text(7).parse().unwrap_or(-1),
                delimiter: byte(8),
            };
            next.extend([info.element, info.base]);
            types.insert(info);
        }
        // Types that vanished (dropped since) stay unknown and map to the text fallback.
        let unknown: Vec<u32> = missing
            .iter()
            .copied()
            .filter(|oid| !types.contains(*oid))
            .collect();
        missing = types.missing(next);
        missing.retain(|oid| !unknown.contains(oid));
    }
    Ok(())
}

/// Parses an LSN in `X/Y` form.
pub(crate) fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    Some(u64::from_str_radix(high, 16).ok()? << 32 | u64::from_str_radix(low, 16).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_parse() {
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("bogus"), None);
    }

    #[test]
    fn table_lists_are_quoted() {
        assert_eq!(
            table_list(&[
                TableName::new("public", "t"),
                TableName::new("Sales", "a\"b")
            ]),
            "\"public\".\"t\", \"Sales\".\"a\"\"b\""
        );
    }
}
