//! PostgreSQL types → [`ColumnType`] and the [`Decoder`] that parses their text output. The
//! table in `docs/type-mapping.md` is the user-facing description of this file.

use std::collections::HashMap;

use crate::change::ColumnType;

/// `VARHDRSZ`: the offset PostgreSQL adds to length-like type modifiers.
const VARHDRSZ: i32 = 4;

/// What the catalog (`pg_type`) says about a type, as far as the mapping needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TypeInfo {
    /// `pg_type.oid`.
    pub(crate) oid: u32,
    /// `typname`.
    pub(crate) name: String,
    /// The type's schema (`nspname`).
    pub(crate) namespace: String,
    /// `typtype`: `b` base, `c` composite, `d` domain, `e` enum, `p` pseudo, `r` range,
    /// `m` multirange.
    pub(crate) kind: u8,
    /// `typcategory` (`A` array, `S` string …).
    pub(crate) category: u8,
    /// `typelem` of an array type (0 otherwise).
    pub(crate) element: u32,
    /// `typbasetype` of a domain (0 otherwise).
    pub(crate) base: u32,
    /// `typtypmod` of a domain (-1 otherwise).
    pub(crate) base_typmod: i32,
    /// `typdelim`: the array element delimiter (`,` for everything but `box`).
    pub(crate) delimiter: u8,
}

/// Known types by OID; filled from the catalog as tables are described.
#[derive(Debug, Default, Clone)]
pub(crate) struct TypeCache {
    /// Types by OID.
    types: HashMap<u32, TypeInfo>,
}

/// How a column's text values are parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decoder {
    /// `t`/`f` → bool.
    Bool,
    /// → int16.
    Int2,
    /// → int32.
    Int4,
    /// `int8` and `oid` → int64.
    Int8,
    /// → float32 (NaN, ±Infinity kept).
    Float4,
    /// → float64 (NaN, ±Infinity kept).
    Float8,
    /// `numeric(p,s)` → decimal128 with this scale.
    Decimal {
        /// Digits after the point.
        scale: u8,
    },
    /// Verbatim UTF-8 text (strings, JSON, uuid, timetz, unconstrained numeric, enums, fallback).
    Text,
    /// `\x…` hex → bytes.
    Bytea,
    /// → days since 1970-01-01.
    Date,
    /// → microseconds since midnight.
    Time,
    /// → microseconds since 1970-01-01 (wall clock).
    Timestamp,
    /// → microseconds since 1970-01-01 UTC.
    Timestamptz,
    /// ISO 8601 interval → (months, days, micros).
    Interval,
    /// A one-dimensional array of the element decoder.
    List {
        /// How elements are parsed.
        element: Box<Decoder>,
        /// The element delimiter.
        delimiter: u8,
    },
}

/// How the backfill's binary `COPY` carries a column. Binary output spares the server its
/// text output functions and the runner its text parsers; types without a binary reader here
/// are cast to `text` by the server and parsed exactly as the stream parses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CopyFormat {
    /// The type's binary send format, read as the column's [`Decoder`] says.
    Binary,
    /// `jsonb`: a version byte, then the text.
    Jsonb,
    /// `uuid`: 16 bytes, written as the canonical text.
    Uuid,
    /// `column::text`: the output function's text.
    Text,
}

/// A column's mapping: the logical type and how to parse values into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mapping {
    /// The type written to the lake.
    pub(crate) column_type: ColumnType,
    /// How text values are parsed.
    pub(crate) decoder: Decoder,
    /// How the backfill reads it.
    pub(crate) copy: CopyFormat,
}

impl Mapping {
    /// A verbatim text column of the given logical type (utf8, json or text fallback), cast to
    /// text in the backfill.
    fn text(column_type: ColumnType) -> Self {
        Mapping {
            column_type,
            decoder: Decoder::Text,
            copy: CopyFormat::Text,
        }
    }

    /// A verbatim text column whose binary format is other than `text`'s own.
    fn text_as(column_type: ColumnType, copy: CopyFormat) -> Self {
        Mapping {
            copy,
            ..Mapping::text(column_type)
        }
    }

    /// A column with a dedicated decoder, read in binary by the backfill (arrays as text).
    fn of(column_type: ColumnType, decoder: Decoder) -> Self {
        let copy = match decoder {
            Decoder::List { .. } => CopyFormat::Text,
            _ => CopyFormat::Binary,
        };
        Mapping {
            column_type,
            decoder,
            copy,
        }
    }
}

impl TypeCache {
    /// Remembers a type.
    pub(crate) fn insert(&mut self, info: TypeInfo) {
        self.types.insert(info.oid, info);
    }

    /// The type's name as the catalog spells it (`int4`, `mood` …), if known.
    pub(crate) fn name(&self, oid: u32) -> Option<&str> {
        self.types.get(&oid).map(|info| info.name.as_str())
    }

    /// Whether the type is known.
    pub(crate) fn contains(&self, oid: u32) -> bool {
        self.types.contains_key(&oid)
    }

    /// The OIDs among `oids` (and their element / base types, transitively as far as known)
    /// that are not known yet.
    pub(crate) fn missing(&self, oids: impl IntoIterator<Item = u32>) -> Vec<u32> {
        let mut missing = Vec::new();
        let mut pending: Vec<u32> = oids.into_iter().collect();
        while let Some(oid) = pending.pop() {
            if oid == 0 || missing.contains(&oid) {
                continue;
            }
            match self.types.get(&oid) {
                Some(info) => pending.extend([info.element, info.base]),
                None => missing.push(oid),
            }
        }
        missing
    }

    /// The mapping of a column of type `oid` with modifier `typmod`, declared with `dims`
    /// array dimensions (`pg_attribute.attndims`; 0 when unknown).
    pub(crate) fn mapping(&self, oid: u32, typmod: i32, dims: i32) -> Mapping {
        self.mapping_depth(oid, typmod, dims, 0)
    }

    /// [`TypeCache::mapping`] with a recursion guard against pathological domain chains.
    fn mapping_depth(&self, oid: u32, typmod: i32, dims: i32, depth: u8) -> Mapping {
        let Some(info) = self.types.get(&oid) else {
            return Mapping::text(ColumnType::Text);
        };
        if depth > 8 {
            return Mapping::text(ColumnType::Text);
        }
        match info.kind {
            b'd' => {
                let typmod = if typmod == -1 {
                    info.base_typmod
                } else {
                    typmod
                };
                return self.mapping_depth(info.base, typmod, dims, depth + 1);
            }
            // An enum's binary format is its label.
            b'e' => return Mapping::text_as(ColumnType::Utf8, CopyFormat::Binary),
            _ => {}
        }
        if info.category == b'A' && info.element != 0 {
            if dims > 1 {
                return Mapping::text(ColumnType::Text);
            }
            let element = self.mapping_depth(info.element, typmod, 0, depth + 1);
            if matches!(element.decoder, Decoder::List { .. }) {
                return Mapping::text(ColumnType::Text);
            }
            let delimiter = self.types.get(&info.element).map_or(b',', |e| e.delimiter);
            return Mapping::of(
                ColumnType::List(Box::new(element.column_type)),
                Decoder::List {
                    element: Box::new(element.decoder),
                    delimiter,
                },
            );
        }
        if info.namespace == "pg_catalog"
            && let Some(mapping) = builtin(&info.name, typmod)
        {
            return mapping;
        }
        if info.name == "citext" || info.category == b'S' {
            return Mapping::text(ColumnType::Utf8);
        }
        Mapping::text(ColumnType::Text)
    }
}

/// The mapping of a built-in (`pg_catalog`) type by name, `None` for the text fallback.
fn builtin(name: &str, typmod: i32) -> Option<Mapping> {
    Some(match name {
        "bool" => Mapping::of(ColumnType::Bool, Decoder::Bool),
        "int2" => Mapping::of(ColumnType::Int16, Decoder::Int2),
        "int4" => Mapping::of(ColumnType::Int32, Decoder::Int4),
        "int8" | "oid" => Mapping::of(ColumnType::Int64, Decoder::Int8),
        "float4" => Mapping::of(ColumnType::Float32, Decoder::Float4),
        "float8" => Mapping::of(ColumnType::Float64, Decoder::Float8),
        "numeric" => numeric(typmod),
        "text" | "varchar" | "bpchar" | "name" => {
            Mapping::text_as(ColumnType::Utf8, CopyFormat::Binary)
        }
        "uuid" => Mapping::text_as(ColumnType::Utf8, CopyFormat::Uuid),
        "char" | "timetz" | "xml" => Mapping::text(ColumnType::Utf8),
        "json" => Mapping::text_as(ColumnType::Json, CopyFormat::Binary),
        "jsonb" => Mapping::text_as(ColumnType::Json, CopyFormat::Jsonb),
        "bytea" => Mapping::of(ColumnType::Binary, Decoder::Bytea),
        "date" => Mapping::of(ColumnType::Date, Decoder::Date),
        "time" => Mapping::of(ColumnType::Time, Decoder::Time),
        "timestamp" => Mapping::of(ColumnType::Timestamp, Decoder::Timestamp),
        "timestamptz" => Mapping::of(ColumnType::TimestampTz, Decoder::Timestamptz),
        "interval" => Mapping::of(ColumnType::Interval, Decoder::Interval),
        _ => return None,
    })
}

/// `numeric(p,s)` with `0 <= s <= p <= 38` → decimal128; anything else (unconstrained, wider,
/// negative or oversized scale) → the exact text.
fn numeric(typmod: i32) -> Mapping {
    if typmod < VARHDRSZ {
        return Mapping::text(ColumnType::Utf8);
    }
    let packed = typmod - VARHDRSZ;
    let precision = (packed >> 16) & 0xFFFF;
    // PostgreSQL 15 stores the scale as an 11-bit signed number.
    let scale = ((packed & 0x7FF) ^ 1024) - 1024;
    match (u8::try_from(precision), u8::try_from(scale)) {
        (Ok(p @ 1..=38), Ok(s)) if s <= p => Mapping::of(
            ColumnType::Decimal {
                precision: p,
                scale: s as i8,
            },
            Decoder::Decimal { scale: s },
        ),
        _ => Mapping::text(ColumnType::Utf8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(oid: u32, name: &str, kind: u8, category: u8) -> TypeInfo {
        TypeInfo {
            oid,
            name: name.into(),
            namespace: "pg_catalog".into(),
            kind,
            category,
            element: 0,
            base: 0,
            base_typmod: -1,
            delimiter: b',',
        }
    }

    fn cache() -> TypeCache {
        let mut cache = TypeCache::default();
        cache.insert(info(23, "int4", b'b', b'N'));
        cache.insert(info(1700, "numeric", b'b', b'N'));
        cache.insert(TypeInfo {
            element: 23,
            ..info(1007, "_int4", b'b', b'A')
        });
        cache.insert(TypeInfo {
            element: 1700,
            ..info(1231, "_numeric", b'b', b'A')
        });
        cache.insert(info(603, "box", b'b', b'G'));
        cache.insert(TypeInfo {
            delimiter: b';',
            ..info(603, "box", b'b', b'G')
        });
        cache.insert(TypeInfo {
            element: 603,
            ..info(1020, "_box", b'b', b'A')
        });
        cache.insert(TypeInfo {
            namespace: "public".into(),
            ..info(50000, "mood", b'e', b'E')
        });
        cache.insert(TypeInfo {
            namespace: "public".into(),
            base: 1700,
            base_typmod: (10 << 16 | 2) + 4,
            ..info(50001, "money2", b'd', b'N')
        });
        cache.insert(TypeInfo {
            namespace: "public".into(),
            ..info(50002, "citext", b'b', b'S')
        });
        cache
    }

    #[test]
    fn numerics_map_by_typmod() {
        let c = cache();
        assert_eq!(
            c.mapping(1700, (10 << 16 | 2) + 4, 0).column_type,
            ColumnType::Decimal {
                precision: 10,
                scale: 2
            }
        );
        assert_eq!(c.mapping(1700, -1, 0).column_type, ColumnType::Utf8);
        assert_eq!(
            c.mapping(1700, (39 << 16) + 4, 0).column_type,
            ColumnType::Utf8
        );
        // numeric(5,-2) and numeric(3,5) are legal in PostgreSQL 15 but not decimal128-shaped.
        assert_eq!(
            c.mapping(1700, (5 << 16 | 0x7FE) + 4, 0).column_type,
            ColumnType::Utf8
        );
        assert_eq!(
            c.mapping(1700, (3 << 16 | 5) + 4, 0).column_type,
            ColumnType::Utf8
        );
    }

    #[test]
    fn arrays_domains_enums_and_fallbacks() {
        let c = cache();
        assert_eq!(
            c.mapping(1007, -1, 1),
            Mapping::of(
                ColumnType::List(Box::new(ColumnType::Int32)),
                Decoder::List {
                    element: Box::new(Decoder::Int4),
                    delimiter: b','
                }
            )
        );
        assert_eq!(c.mapping(1007, -1, 2).column_type, ColumnType::Text);
        assert_eq!(
            c.mapping(1231, (12 << 16 | 3) + 4, 1).column_type,
            ColumnType::List(Box::new(ColumnType::Decimal {
                precision: 12,
                scale: 3
            }))
        );
        assert_eq!(
            c.mapping(1020, -1, 1).decoder,
            Decoder::List {
                element: Box::new(Decoder::Text),
                delimiter: b';'
            }
        );
        assert_eq!(c.mapping(50000, -1, 0).column_type, ColumnType::Utf8);
        assert_eq!(
            c.mapping(50001, -1, 0).column_type,
            ColumnType::Decimal {
                precision: 10,
                scale: 2
            }
        );
        assert_eq!(c.mapping(50002, -1, 0).column_type, ColumnType::Utf8);
        assert_eq!(c.mapping(603, -1, 0).column_type, ColumnType::Text);
        assert_eq!(c.mapping(99999, -1, 0).column_type, ColumnType::Text);
        assert_eq!(c.missing([1007, 99999, 50001]), vec![99999]);
    }
}
