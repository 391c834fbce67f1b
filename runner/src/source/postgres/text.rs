//! Parsers of PostgreSQL's text output (as configured by the session: ISO dates, UTC,
//! ISO 8601 intervals, hex bytea) writing straight into change-buffer cells. No value goes
//! through a `String`.

use crate::change::{BufferError, Cell};

use super::types::Decoder;

/// Days from 0000-03-01 (proleptic Gregorian, astronomical years) to 1970-01-01.
const UNIX_EPOCH_DAYS: i64 = 719_468;
/// Microseconds per day.
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// What `infinity` / `-infinity` timestamps become: DuckDB's convention (±`i64::MAX`), so DuckDB
/// shows them as `infinity` again.
pub(crate) const TIMESTAMP_INFINITY: i64 = i64::MAX;
/// What `infinity` / `-infinity` dates become (±`i32::MAX`, DuckDB's convention).
pub(crate) const DATE_INFINITY: i32 = i32::MAX;

/// Why a value could not be written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ValueError {
    /// The text is not what the type's output function produces.
    #[error("invalid {0} text")]
    Invalid(&'static str),
    /// The change buffer refused the value (a mapping bug).
    #[error(transparent)]
    Buffer(#[from] BufferError),
}

/// A written value, or a value (or array element) the logical type cannot hold, written as null;
/// the caller warns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// The value was written.
    Value,
    /// Not representable (NaN in a decimal column, a timestamp beyond the microsecond range, a
    /// multi-dimensional value in a list column): written as null.
    Unrepresentable,
}

/// Reusable buffers, so parsing never allocates per value.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// An unescaped array element.
    element: Vec<u8>,
    /// Decoded bytes (bytea).
    bytes: Vec<u8>,
}

/// Parses `text` with `decoder` and writes it into `cell`.
pub(crate) fn write_value(
    decoder: &Decoder,
    text: &[u8],
    cell: Cell<'_>,
    scratch: &mut Scratch,
) -> Result<Written, ValueError> {
    match decoder {
        Decoder::Bool => match text {
            b"t" => cell.bool(true)?,
            b"f" => cell.bool(false)?,
            _ => return Err(ValueError::Invalid("bool")),
        },
        Decoder::Int2 => cell.i16(
            parse_int(text)
                .and_then(|v| i16::try_from(v).ok())
                .ok_or(ValueError::Invalid("int2"))?,
        )?,
        Decoder::Int4 => cell.i32(
            parse_int(text)
                .and_then(|v| i32::try_from(v).ok())
                .ok_or(ValueError::Invalid("int4"))?,
        )?,
        Decoder::Int8 => cell.i64(parse_int(text).ok_or(ValueError::Invalid("int8"))?)?,
        Decoder::Float4 => cell.f32(
            std::str::from_utf8(text)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(ValueError::Invalid("float4"))?,
        )?,
        Decoder::Float8 => cell.f64(
            std::str::from_utf8(text)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(ValueError::Invalid("float8"))?,
        )?,
        Decoder::Decimal { scale } => {
            if text == b"NaN" {
                cell.null();
                return Ok(Written::Unrepresentable);
            }
            cell.decimal(parse_decimal(text, *scale).ok_or(ValueError::Invalid("numeric"))?)?;
        }
        Decoder::Text => {
            cell.str(std::str::from_utf8(text).map_err(|_| ValueError::Invalid("UTF-8"))?)?
        }
        Decoder::Bytea => {
            decode_hex_bytea(text, &mut scratch.bytes).ok_or(ValueError::Invalid("bytea"))?;
            cell.binary(&scratch.bytes)?;
        }
        Decoder::Date => cell.date(parse_date(text).ok_or(ValueError::Invalid("date"))?)?,
        Decoder::Time => cell.time(parse_time(text).ok_or(ValueError::Invalid("time"))?)?,
        Decoder::Timestamp | Decoder::Timestamptz => {
            let with_zone = *decoder == Decoder::Timestamptz;
            match parse_timestamp(text, with_zone).ok_or(ValueError::Invalid("timestamp"))? {
                Some(micros) => cell.timestamp(micros)?,
                None => {
                    cell.null();
                    return Ok(Written::Unrepresentable);
                }
            }
        }
        Decoder::Interval => {
            let (months, days, micros) =
                parse_interval(text).ok_or(ValueError::Invalid("interval"))?;
            cell.interval(months, days, micros)?;
        }
        Decoder::List { element, delimiter } => {
            return write_array(element, *delimiter, text, cell, scratch);
        }
    }
    Ok(Written::Value)
}

/// Writes a one-dimensional PostgreSQL array (`{a,"b c",NULL}`, optionally prefixed with its
/// bounds `[0:2]=`) as a list.
fn write_array(
    element: &Decoder,
    delimiter: u8,
    text: &[u8],
    cell: Cell<'_>,
    scratch: &mut Scratch,
) -> Result<Written, ValueError> {
    let invalid = ValueError::Invalid("array");
    let mut rest = text;
    if rest.first() == Some(&b'[') {
        let eq = rest
            .iter()
            .position(|&b| b == b'=')
            .ok_or(ValueError::Invalid("array"))?;
        if rest[..eq].iter().filter(|&&b| b == b'[').count() > 1 {
            cell.null();
            return Ok(Written::Unrepresentable);
        }
        rest = &rest[eq + 1..];
    }
    let inner = rest
        .strip_prefix(b"{")
        .and_then(|r| r.strip_suffix(b"}"))
        .ok_or(ValueError::Invalid("array"))?;
    if inner.first() == Some(&b'{') {
        cell.null();
        return Ok(Written::Unrepresentable);
    }
    let mut list = cell.list()?;
    if inner.is_empty() {
        return Ok(Written::Value);
    }
    let mut at = 0;
    let mut outcome = Written::Value;
    let mut element_scratch = std::mem::take(&mut scratch.element);
    let result = loop {
        element_scratch.clear();
        let (quoted, next) = match read_array_element(inner, at, delimiter, &mut element_scratch) {
            Some(parsed) => parsed,
            None => break Err(invalid),
        };
        let value = &element_scratch[..];
        let slot = list.element();
        if !quoted && value.eq_ignore_ascii_case(b"NULL") {
            slot.null();
        } else {
            match write_value(element, value, slot, scratch) {
                Ok(Written::Value) => {}
                Ok(Written::Unrepresentable) => outcome = Written::Unrepresentable,
                Err(e) => break Err(e),
            }
        }
        match inner.get(next) {
            None => break Ok(outcome),
            Some(&b) if b == delimiter => at = next + 1,
            Some(_) => break Err(ValueError::Invalid("array")),
        }
    };
    scratch.element = element_scratch;
    result
}

/// Reads one array element starting at `at`: returns whether it was quoted and the index just
/// after it; its unescaped text goes to `out`.
fn read_array_element(
    inner: &[u8],
    mut at: usize,
    delimiter: u8,
    out: &mut Vec<u8>,
) -> Option<(bool, usize)> {
    while inner.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    if inner.get(at) == Some(&b'"') {
        at += 1;
        loop {
            match *inner.get(at)? {
                b'"' => {
                    at += 1;
                    break;
                }
                b'\\' => {
                    out.push(*inner.get(at + 1)?);
                    at += 2;
                }
                b => {
                    out.push(b);
                    at += 1;
                }
            }
        }
        while inner.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        return Some((true, at));
    }
    while let Some(&b) = inner.get(at) {
        if b == delimiter || b == b'{' || b == b'}' || b == b'"' {
            break;
        }
        if b == b'\\' {
            out.push(*inner.get(at + 1)?);
            at += 2;
        } else {
            out.push(b);
            at += 1;
        }
    }
    while out.last().is_some_and(u8::is_ascii_whitespace) {
        out.pop();
    }
    (!out.is_empty()).then_some((false, at))
}

/// A decimal integer (optional `-`), checked for overflow.
pub(crate) fn parse_int(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for &b in digits {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(i64::from(digit))?
        } else {
            value.checked_add(i64::from(digit))?
        };
    }
    Some(value)
}

/// `-123.45` → unscaled integer at `scale` digits (PostgreSQL prints exactly `scale` digits for
/// `numeric(p,s)`; fewer are padded, more are refused).
fn parse_decimal(text: &[u8], scale: u8) -> Option<i128> {
    let (negative, body) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, text),
    };
    let (whole, fraction) = match body.iter().position(|&b| b == b'.') {
        Some(dot) => (&body[..dot], &body[dot + 1..]),
        None => (body, &body[body.len()..]),
    };
    if whole.is_empty() && fraction.is_empty() || fraction.len() > usize::from(scale) {
        return None;
    }
    let mut value: i128 = 0;
    for &b in whole.iter().chain(fraction) {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(i128::from(digit))?;
    }
    for _ in fraction.len()..usize::from(scale) {
        value = value.checked_mul(10)?;
    }
    Some(if negative { -value } else { value })
}

/// `\x0aff` → bytes in `out`.
fn decode_hex_bytea(text: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let hex = text.strip_prefix(b"\\x")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    out.clear();
    out.reserve(hex.len() / 2);
    for pair in hex.chunks_exact(2) {
        out.push(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?);
    }
    Some(())
}

/// One hex digit's value.
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (astronomical year: 1 BC is 0).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - UNIX_EPOCH_DAYS
}

/// A cursor over ASCII text with the small reads date/time parsing needs.
struct Cursor<'a> {
    /// The text.
    text: &'a [u8],
    /// Position.
    at: usize,
}

impl Cursor<'_> {
    /// Exactly `n` digits.
    fn digits(&mut self, n: usize) -> Option<i64> {
        let digits = self.text.get(self.at..self.at + n)?;
        let mut value = 0;
        for &b in digits {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                return None;
            }
            value = value * 10 + i64::from(digit);
        }
        self.at += n;
        Some(value)
    }

    /// One or more digits (a year can have more than four).
    fn number(&mut self) -> Option<i64> {
        let start = self.at;
        let mut value: i64 = 0;
        while let Some(&b) = self.text.get(self.at) {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            value = value.checked_mul(10)?.checked_add(i64::from(digit))?;
            self.at += 1;
        }
        (self.at > start).then_some(value)
    }

    /// A specific byte.
    fn byte(&mut self, expected: u8) -> Option<()> {
        (self.text.get(self.at) == Some(&expected)).then(|| self.at += 1)
    }

    /// The next byte without consuming it.
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    /// `.ffffff` (1 to 6 digits) as microseconds, or 0 when absent.
    fn fraction(&mut self) -> Option<i64> {
        if self.byte(b'.').is_none() {
            return Some(0);
        }
        let start = self.at;
        let mut micros = 0;
        while let Some(&b) = self.text.get(self.at) {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            if self.at - start < 6 {
                micros = micros * 10 + i64::from(digit);
            }
            self.at += 1;
        }
        let len = self.at - start;
        if len == 0 {
            return None;
        }
        for _ in len.min(6)..6 {
            micros *= 10;
        }
        Some(micros)
    }

    /// Whether everything was read.
    fn done(&self) -> bool {
        self.at == self.text.len()
    }
}

/// Splits a trailing ` BC`.
fn strip_bc(text: &[u8]) -> (&[u8], bool) {
    match text.strip_suffix(b" BC") {
        Some(rest) => (rest, true),
        None => (text, false),
    }
}

/// `YYYY-MM-DD` of a cursor → days since 1970-01-01 (`bc` flips to astronomical years).
fn read_date(c: &mut Cursor<'_>, bc: bool) -> Option<i64> {
    let year = c.number()?;
    c.byte(b'-')?;
    let month = c.digits(2)?;
    c.byte(b'-')?;
    let day = c.digits(2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let year = if bc { 1 - year } else { year };
    Some(days_from_civil(year, month, day))
}

/// `HH:MM:SS[.ffffff]` → microseconds since midnight (`24:00:00` allowed, as in PostgreSQL).
fn read_time(c: &mut Cursor<'_>) -> Option<i64> {
    let hour = c.digits(2)?;
    c.byte(b':')?;
    let minute = c.digits(2)?;
    c.byte(b':')?;
    let second = c.digits(2)?;
    let micros = c.fraction()?;
    Some(((hour * 60 + minute) * 60 + second) * 1_000_000 + micros)
}

/// A date: days since 1970-01-01; `±infinity` → ±[`DATE_INFINITY`].
fn parse_date(text: &[u8]) -> Option<i32> {
    match text {
        b"infinity" => return Some(DATE_INFINITY),
        b"-infinity" => return Some(-DATE_INFINITY),
        _ => {}
    }
    let (text, bc) = strip_bc(text);
    let mut c = Cursor { text, at: 0 };
    let days = read_date(&mut c, bc)?;
    c.done().then_some(())?;
    i32::try_from(days).ok()
}

/// A time of day in microseconds.
fn parse_time(text: &[u8]) -> Option<i64> {
    let mut c = Cursor { text, at: 0 };
    let micros = read_time(&mut c)?;
    c.done().then_some(micros)
}

/// A timestamp in microseconds since 1970-01-01 (UTC when `with_zone`, applying the printed
/// offset). `Some(None)` when the instant is valid in PostgreSQL but beyond `i64` microseconds
/// since 1970 (after 294247 AD); `±infinity` → ±[`TIMESTAMP_INFINITY`].
fn parse_timestamp(text: &[u8], with_zone: bool) -> Option<Option<i64>> {
    match text {
        b"infinity" => return Some(Some(TIMESTAMP_INFINITY)),
        b"-infinity" => return Some(Some(-TIMESTAMP_INFINITY)),
        _ => {}
    }
    let (text, bc) = strip_bc(text);
    let mut c = Cursor { text, at: 0 };
    let days = read_date(&mut c, bc)?;
    c.byte(b' ')?;
    let time = read_time(&mut c)?;
    let mut offset = 0;
    if with_zone {
        let sign = match c.peek()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        c.at += 1;
        let mut seconds = c.digits(2)? * 3600;
        if c.byte(b':').is_some() {
            seconds += c.digits(2)? * 60;
            if c.byte(b':').is_some() {
                seconds += c.digits(2)?;
            }
        }
        offset = sign * seconds * 1_000_000;
    }
    c.done().then_some(())?;
    Some(
        days.checked_mul(MICROS_PER_DAY)
            .and_then(|d| d.checked_add(time))
            .and_then(|t| t.checked_sub(offset))
            .filter(|t| t.abs() < TIMESTAMP_INFINITY),
    )
}

/// An ISO 8601 interval as PostgreSQL prints it with `IntervalStyle=iso_8601`
/// (`P1Y2M-3DT4H5M6.789S`, `PT0S`) → (months, days, microseconds).
fn parse_interval(text: &[u8]) -> Option<(i32, i32, i64)> {
    let mut c = Cursor {
        text: text.strip_prefix(b"P")?,
        at: 0,
    };
    let (mut months, mut days, mut micros) = (0i64, 0i64, 0i64);
    let mut in_time = false;
    while !c.done() {
        if c.byte(b'T').is_some() {
            in_time = true;
            continue;
        }
        let negative = c.byte(b'-').is_some();
        let whole = c.number()?;
        let fraction = c.fraction()?;
        let sign = if negative { -1 } else { 1 };
        let unit = c.peek()?;
        c.at += 1;
        match (in_time, unit) {
            (false, b'Y') => months += sign * whole * 12,
            (false, b'M') => months += sign * whole,
            (false, b'W') => days += sign * whole * 7,
            (false, b'D') => days += sign * whole,
            (true, b'H') => micros += sign * whole * 3_600_000_000,
            (true, b'M') => micros += sign * whole * 60_000_000,
            (true, b'S') => micros += sign * (whole * 1_000_000 + fraction),
            _ => return None,
        }
        if fraction != 0 && unit != b'S' {
            return None;
        }
    }
    Some((
        i32::try_from(months).ok()?,
        i32::try_from(days).ok()?,
        micros,
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::cast::AsArray;
    use arrow_array::types::{Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType};
    use arrow_array::{Array, ListArray};

    use super::*;
    use crate::change::{
        ChangeBuffer, Column, ColumnType, Op, Position, RowMeta, TableName, TableSchema,
    };

    /// Writes `values` into one column of `column_type` and returns the batch column.
    fn written(
        column_type: ColumnType,
        decoder: &Decoder,
        values: &[&[u8]],
    ) -> (Arc<dyn Array>, Vec<Written>) {
        let schema = Arc::new(
            TableSchema::new(
                TableName::new("s", "t"),
                vec![Column {
                    name: "c".into(),
                    source_type: "x".into(),
                    column_type,
                    key: false,
                    nullable: None,
                }],
            )
            .unwrap(),
        );
        let mut buf = ChangeBuffer::new();
        let mut scratch = Scratch::default();
        let mut outcomes = Vec::new();
        for (i, value) in values.iter().enumerate() {
            let mut row = buf.row(
                &schema,
                RowMeta {
                    op: Op::Create,
                    position: Position {
                        log: 1,
                        seq: i as u64,
                    },
                    commit_ts: None,
                    txid: None,
                },
            );
            outcomes.push(write_value(decoder, value, row.cell().unwrap(), &mut scratch).unwrap());
        }
        (Arc::clone(buf.take()[0].batch.column(6)), outcomes)
    }

    #[test]
    fn integers_and_overflow() {
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"9223372036854775808"), None);
        assert_eq!(parse_int(b"12a"), None);
        assert_eq!(parse_int(b"-"), None);
    }

    #[test]
    fn decimals_scale_exactly() {
        assert_eq!(parse_decimal(b"123.45", 2), Some(12345));
        assert_eq!(parse_decimal(b"-0.5", 2), Some(-50));
        assert_eq!(parse_decimal(b"7", 3), Some(7000));
        assert_eq!(parse_decimal(b"1.234", 2), None);
        assert_eq!(
            parse_decimal(b"99999999999999999999999999999999999999", 0),
            Some(99_999_999_999_999_999_999_999_999_999_999_999_999)
        );
        let (array, outcomes) = written(
            ColumnType::Decimal {
                precision: 10,
                scale: 2,
            },
            &Decoder::Decimal { scale: 2 },
            &[b"1.50", b"NaN"],
        );
        assert_eq!(array.as_primitive::<Decimal128Type>().value(0), 150);
        assert!(array.is_null(1));
        assert_eq!(outcomes, [Written::Value, Written::Unrepresentable]);
    }

    #[test]
    fn floats_keep_special_values() {
        let (array, _) = written(
            ColumnType::Float64,
            &Decoder::Float8,
            &[b"NaN", b"Infinity", b"-Infinity", b"1e+300", b"0.1"],
        );
        let a = array.as_primitive::<Float64Type>();
        assert!(a.value(0).is_nan());
        assert_eq!(a.value(1), f64::INFINITY);
        assert_eq!(a.value(2), f64::NEG_INFINITY);
        assert_eq!(a.value(3), 1e300);
        assert_eq!(a.value(4), 0.1);
    }

    #[test]
    fn dates_and_timestamps_including_bc_and_infinity() {
        assert_eq!(parse_date(b"1970-01-01"), Some(0));
        assert_eq!(parse_date(b"2000-03-01"), Some(11017));
        assert_eq!(parse_date(b"0001-01-01 BC"), Some(-719528));
        assert_eq!(parse_date(b"infinity"), Some(i32::MAX));
        assert_eq!(parse_date(b"-infinity"), Some(-i32::MAX));
        assert_eq!(parse_time(b"24:00:00"), Some(MICROS_PER_DAY));
        assert_eq!(parse_time(b"12:34:56.5"), Some(45_296_500_000));
        assert_eq!(
            parse_timestamp(b"2024-02-29 12:00:00.000001", false),
            Some(Some(1_709_208_000_000_001))
        );
        assert_eq!(
            parse_timestamp(b"2024-02-29 12:00:00+05:30", true),
            Some(Some(1_709_188_200_000_000))
        );
        assert_eq!(
            parse_timestamp(b"0044-03-15 12:00:00+00 BC", true),
            Some(Some(-63_517_780_800_000_000))
        );
        assert_eq!(
            parse_timestamp(b"12345-01-01 00:00:00+00", true)
                .flatten()
                .map(|t| t > 0),
            Some(true)
        );
        assert_eq!(parse_timestamp(b"infinity", true), Some(Some(i64::MAX)));
        assert_eq!(parse_timestamp(b"-infinity", false), Some(Some(-i64::MAX)));
        assert_eq!(
            parse_timestamp(b"294270-01-01 00:00:00+00", true),
            Some(None)
        );
        assert_eq!(parse_timestamp(b"2024-01-01", false), None);
        let (array, _) = written(
            ColumnType::TimestampTz,
            &Decoder::Timestamptz,
            &[b"1970-01-01 00:00:01+00"],
        );
        assert_eq!(
            array.as_primitive::<TimestampMicrosecondType>().value(0),
            1_000_000
        );
    }

    #[test]
    fn intervals_in_iso_8601() {
        assert_eq!(
            parse_interval(b"P1Y2M-3DT4H5M6.789S"),
            Some((14, -3, 14_706_789_000))
        );
        assert_eq!(parse_interval(b"PT0S"), Some((0, 0, 0)));
        assert_eq!(parse_interval(b"P-1Y-2M"), Some((-14, 0, 0)));
        assert_eq!(parse_interval(b"PT-0.000001S"), Some((0, 0, -1)));
        assert_eq!(parse_interval(b"P-1DT2H"), Some((0, -1, 7_200_000_000)));
        assert_eq!(parse_interval(b"1 day"), None);
    }

    #[test]
    fn bytea_hex() {
        let mut out = Vec::new();
        assert_eq!(decode_hex_bytea(b"\\x00ff10", &mut out), Some(()));
        assert_eq!(out, [0, 255, 16]);
        assert_eq!(decode_hex_bytea(b"\\x0", &mut out), None);
        assert_eq!(decode_hex_bytea(b"abc", &mut out), None);
    }

    #[test]
    fn arrays_with_quotes_escapes_nulls_and_bounds() {
        let decoder = Decoder::List {
            element: Box::new(Decoder::Text),
            delimiter: b',',
        };
        let (array, outcomes) = written(
            ColumnType::List(Box::new(ColumnType::Utf8)),
            &decoder,
            &[
                br#"{"a b","x\"y","NULL",NULL,"","back\\slash","{}"}"#,
                b"{}",
                b"{{1,2},{3,4}}",
            ],
        );
        let list = array.as_any().downcast_ref::<ListArray>().unwrap();
        let first = list.value(0);
        let first = first.as_string::<i32>();
        let values: Vec<_> = (0..first.len())
            .map(|i| first.is_valid(i).then(|| first.value(i)))
            .collect();
        assert_eq!(
            values,
            [
                Some("a b"),
                Some("x\"y"),
                Some("NULL"),
                None,
                Some(""),
                Some("back\\slash"),
                Some("{}")
            ]
        );
        assert_eq!(list.value(1).len(), 0);
        assert!(list.is_valid(1));
        assert!(list.is_null(2));
        assert_eq!(outcomes[2], Written::Unrepresentable);

        let ints = Decoder::List {
            element: Box::new(Decoder::Int8),
            delimiter: b',',
        };
        let (array, _) = written(
            ColumnType::List(Box::new(ColumnType::Int64)),
            &ints,
            &[b"[0:2]={1,NULL,3}"],
        );
        let list = array.as_any().downcast_ref::<ListArray>().unwrap();
        let v = list.value(0);
        let v = v.as_primitive::<Int64Type>();
        assert_eq!(
            (v.len(), v.value(0), v.is_null(1), v.value(2)),
            (3, 1, true, 3)
        );

        let bytea = Decoder::List {
            element: Box::new(Decoder::Bytea),
            delimiter: b',',
        };
        let (array, _) = written(
            ColumnType::List(Box::new(ColumnType::Binary)),
            &bytea,
            &[br#"{"\\x0102"}"#],
        );
        let list = array.as_any().downcast_ref::<ListArray>().unwrap();
        assert_eq!(list.value(0).as_binary::<i32>().value(0), [1, 2]);
    }
}
