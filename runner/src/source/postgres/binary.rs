//! Readers of PostgreSQL's binary send formats, for the backfill's `COPY … (FORMAT binary)`:
//! the server skips its text output functions and the runner its text parsers. Each reader
//! writes the cell the text parser writes for the same value, so a row reads the same whether
//! it came through the backfill or the stream (the source tests hold both to the same rows).

use crate::change::Cell;

use super::text::{DATE_INFINITY, Scratch, TIMESTAMP_INFINITY, ValueError, Written, write_value};
use super::types::{CopyFormat, Decoder};

/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's binary epoch.
const EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The signature a binary `COPY` stream starts with.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Strips the binary `COPY` header (signature, flags, header extension) from the start of the
/// stream; `None` when it is not one.
pub(crate) fn strip_header(stream: &[u8]) -> Option<&[u8]> {
    let rest = stream.strip_prefix(SIGNATURE)?;
    let (flags, rest) = split_be::<4>(rest)?;
    // Bits 16–31 flag format changes a reader must not ignore (bit 16: OIDs included, which
    // this runner never asks for); bits 0–15 are for backward-compatible ones.
    if u32::from_be_bytes(flags) & 0xFFFF_0000 != 0 {
        return None;
    }
    let (extension, rest) = split_be::<4>(rest)?;
    rest.get(usize::try_from(u32::from_be_bytes(extension)).ok()?..)
}

/// Whether `tuple` is the stream's trailer (a field count of -1) rather than a row.
pub(crate) fn is_trailer(tuple: &[u8]) -> bool {
    tuple == [0xff, 0xff]
}

/// The fields of one binary `COPY` tuple: the field count, then per field its raw bytes
/// (`None` for NULL).
pub(crate) struct Fields<'a> {
    /// The bytes after the fields read so far.
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    /// The tuple's field count and its fields; `None` when the count is missing.
    pub(crate) fn of(tuple: &'a [u8]) -> Option<(usize, Self)> {
        let (count, rest) = split_be::<2>(tuple)?;
        let count = usize::try_from(i16::from_be_bytes(count)).ok()?;
        Some((count, Fields { rest }))
    }

    /// The next field, `Err(())` when the tuple ends inside it.
    pub(crate) fn next_field(&mut self) -> Result<Option<&'a [u8]>, ()> {
        let (length, rest) = split_be::<4>(self.rest).ok_or(())?;
        let length = i32::from_be_bytes(length);
        if length == -1 {
            self.rest = rest;
            return Ok(None);
        }
        let length = usize::try_from(length).map_err(|_| ())?;
        if rest.len() < length {
            return Err(());
        }
        let (field, rest) = rest.split_at(length);
        self.rest = rest;
        Ok(Some(field))
    }

    /// Whether every byte of the tuple was read.
    pub(crate) fn is_done(&self) -> bool {
        self.rest.is_empty()
    }
}

/// Reads one non-null field carried as `format` into `cell`, as [`write_value`] would write the
/// value's text.
pub(crate) fn write_binary_value(
    decoder: &Decoder,
    format: CopyFormat,
    bytes: &[u8],
    cell: Cell<'_>,
    scratch: &mut Scratch,
) -> Result<Written, ValueError> {
    match format {
        CopyFormat::Text => return write_value(decoder, bytes, cell, scratch),
        CopyFormat::Jsonb => match bytes.split_first() {
            Some((1, text)) => cell.str(utf8(text)?)?,
            _ => return Err(ValueError::Invalid("jsonb binary")),
        },
        CopyFormat::Uuid => cell.str(format_uuid(bytes, &mut [0; 36])?)?,
        CopyFormat::Binary => return write_native(decoder, bytes, cell),
    }
    Ok(Written::Value)
}

/// Reads a value in its type's own send format.
fn write_native(decoder: &Decoder, bytes: &[u8], cell: Cell<'_>) -> Result<Written, ValueError> {
    match decoder {
        Decoder::Bool => match bytes {
            [0] => cell.bool(false)?,
            [1] => cell.bool(true)?,
            _ => return Err(ValueError::Invalid("bool binary")),
        },
        Decoder::Int2 => cell.i16(i16::from_be_bytes(exact(bytes, "int2 binary")?))?,
        Decoder::Int4 => cell.i32(i32::from_be_bytes(exact(bytes, "int4 binary")?))?,
        // `oid` shares the int8 mapping but is sent as four unsigned bytes.
        Decoder::Int8 => match bytes.len() {
            4 => cell.i64(i64::from(u32::from_be_bytes(exact(bytes, "oid binary")?)))?,
            _ => cell.i64(i64::from_be_bytes(exact(bytes, "int8 binary")?))?,
        },
        Decoder::Float4 => cell.f32(f32::from_be_bytes(exact(bytes, "float4 binary")?))?,
        Decoder::Float8 => cell.f64(f64::from_be_bytes(exact(bytes, "float8 binary")?))?,
        Decoder::Decimal { scale } => match read_numeric(bytes, *scale)? {
            Some(value) => cell.decimal(value)?,
            None => {
                cell.null();
                return Ok(Written::Unrepresentable);
            }
        },
        Decoder::Text => cell.str(utf8(bytes)?)?,
        Decoder::Bytea => cell.binary(bytes)?,
        Decoder::Date => {
            let days = match i32::from_be_bytes(exact(bytes, "date binary")?) {
                i32::MAX => DATE_INFINITY,
                i32::MIN => -DATE_INFINITY,
                days => days
                    .checked_add(EPOCH_DAYS)
                    .ok_or(ValueError::Invalid("date binary"))?,
            };
            cell.date(days)?;
        }
        Decoder::Time => cell.time(i64::from_be_bytes(exact(bytes, "time binary")?))?,
        Decoder::Timestamp | Decoder::Timestamptz => {
            let micros = match i64::from_be_bytes(exact(bytes, "timestamp binary")?) {
                i64::MAX => TIMESTAMP_INFINITY,
                i64::MIN => -TIMESTAMP_INFINITY,
                micros => match micros.checked_add(EPOCH_MICROS) {
                    Some(micros) => micros,
                    // Valid in PostgreSQL, beyond i64 microseconds since 1970.
                    None => {
                        cell.null();
                        return Ok(Written::Unrepresentable);
                    }
                },
            };
            cell.timestamp(micros)?;
        }
        Decoder::Interval => {
            let [
                m0,
                m1,
                m2,
                m3,
                m4,
                m5,
                m6,
                m7,
                d0,
                d1,
                d2,
                d3,
                n0,
                n1,
                n2,
                n3,
            ] = exact::<16>(bytes, "interval binary")?;
            cell.interval(
                i32::from_be_bytes([n0, n1, n2, n3]),
                i32::from_be_bytes([d0, d1, d2, d3]),
                i64::from_be_bytes([m0, m1, m2, m3, m4, m5, m6, m7]),
            )?;
        }
        // Arrays are always cast to text (`CopyFormat::Text`); binary here is a mapping bug.
        Decoder::List { .. } => return Err(ValueError::Invalid("array binary")),
    }
    Ok(Written::Value)
}

/// A `numeric` in a column of `scale` as its unscaled integer; `None` for NaN. Infinity and
/// digits beyond the scale are invalid, as they are in the text parser (a `numeric(p,s)` column
/// holds neither).
fn read_numeric(bytes: &[u8], scale: u8) -> Result<Option<i128>, ValueError> {
    const INVALID: ValueError = ValueError::Invalid("numeric binary");
    let (header, digits) = bytes.split_first_chunk::<8>().ok_or(INVALID)?;
    let word = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
    let (count, weight, sign) = (usize::from(word(0)), i32::from(word(2) as i16), word(4));
    let negative = match sign {
        0x0000 => false,
        0x4000 => true,
        0xC000 => return Ok(None),
        _ => return Err(INVALID),
    };
    if digits.len() != count * 2 {
        return Err(INVALID);
    }
    let mut value: i128 = 0;
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let digit = i128::from(u16::from_be_bytes([pair[0], pair[1]]));
        if digit >= 10_000 {
            return Err(INVALID);
        }
        if digit == 0 {
            continue;
        }
        // The digit is worth 10000^(weight - i); in units of 10^-scale that is this power of ten.
        let exponent = 4 * (weight - i32::try_from(i).map_err(|_| INVALID)?) + i32::from(scale);
        let part = if exponent >= 0 {
            10i128
                .checked_pow(exponent.unsigned_abs())
                .and_then(|power| digit.checked_mul(power))
        } else {
            let power = 10i128.checked_pow(exponent.unsigned_abs()).ok_or(INVALID)?;
            (digit % power == 0).then(|| digit / power)
        };
        value = part
            .and_then(|part| value.checked_add(part))
            .ok_or(INVALID)?;
    }
    Ok(Some(if negative { -value } else { value }))
}

/// A uuid's 16 bytes as PostgreSQL prints them (`a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11`).
fn format_uuid<'a>(bytes: &[u8], out: &'a mut [u8; 36]) -> Result<&'a str, ValueError> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes: [u8; 16] = exact(bytes, "uuid binary")?;
    let mut at = 0;
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out[at] = b'-';
            at += 1;
        }
        out[at] = HEX[usize::from(byte >> 4)];
        out[at + 1] = HEX[usize::from(byte & 0xf)];
        at += 2;
    }
    utf8(out)
}

/// `bytes` as exactly `N` bytes.
fn exact<const N: usize>(bytes: &[u8], what: &'static str) -> Result<[u8; N], ValueError> {
    bytes.try_into().map_err(|_| ValueError::Invalid(what))
}

/// The first `N` bytes and the rest.
fn split_be<const N: usize>(bytes: &[u8]) -> Option<([u8; N], &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<N>()?;
    Some((*head, rest))
}

/// Text that must be UTF-8 (the server's encoding).
fn utf8(bytes: &[u8]) -> Result<&str, ValueError> {
    std::str::from_utf8(bytes).map_err(|_| ValueError::Invalid("UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A numeric's binary form from its base-10000 digits.
    fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut out = Vec::new();
        for word in [digits.len() as u16, weight as u16, sign, dscale] {
            out.extend(word.to_be_bytes());
        }
        for digit in digits {
            out.extend(digit.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics_scale_exactly() {
        // 123456789.123 = 1|2345|6789 . 1230, weight 2.
        let value = numeric(2, 0, 3, &[1, 2345, 6789, 1230]);
        assert_eq!(read_numeric(&value, 3), Ok(Some(123_456_789_123)));
        // -0.001 = 0.0010 → weight -1, one digit 10.
        assert_eq!(
            read_numeric(&numeric(-1, 0x4000, 3, &[10]), 3),
            Ok(Some(-1))
        );
        // Trailing zero groups are dropped by PostgreSQL: 12.5 in a scale-2 column.
        assert_eq!(
            read_numeric(&numeric(0, 0, 2, &[12, 5000]), 2),
            Ok(Some(1250))
        );
        assert_eq!(read_numeric(&numeric(0, 0, 0, &[]), 2), Ok(Some(0)));
        assert_eq!(read_numeric(&numeric(0, 0xC000, 0, &[]), 2), Ok(None));
        // Infinity, digits beyond the scale, a digit out of range, a short value.
        assert!(read_numeric(&numeric(0, 0xD000, 0, &[]), 2).is_err());
        assert!(read_numeric(&numeric(-1, 0, 4, &[1]), 2).is_err());
        assert!(read_numeric(&numeric(0, 0, 0, &[10_000]), 0).is_err());
        assert!(read_numeric(&value[..9], 3).is_err());
        // Overflow of i128 is an error, not a wrap.
        assert!(read_numeric(&numeric(12, 0, 0, &[9999]), 0).is_err());
    }

    #[test]
    fn headers_tuples_and_trailers() {
        let mut stream = SIGNATURE.to_vec();
        stream.extend([0, 0, 0, 0, 0, 0, 0, 2, 0xaa, 0xbb]);
        stream.extend([0, 2, 0, 0, 0, 1, 7, 0xff, 0xff, 0xff, 0xff]);
        let tuple = strip_header(&stream).unwrap();
        let (count, mut fields) = Fields::of(tuple).unwrap();
        assert_eq!(count, 2);
        assert_eq!(fields.next_field(), Ok(Some(&[7u8][..])));
        assert_eq!(fields.next_field(), Ok(None));
        assert!(fields.is_done());
        assert_eq!(fields.next_field(), Err(()));
        assert!(is_trailer(&[0xff, 0xff]));
        assert!(strip_header(b"PGCOPY\n\xff\r\n\0\0\x01\0\0\0\0\0\0").is_none());
        assert!(strip_header(b"PGCOPY\n\xff\r\n\0\x80\0\0\0\0\0\0\0").is_none());
        assert!(strip_header(b"PGCOPY\n\xff\r\n\0\0\0\0\x01\0\0\0\0").is_some());
        assert!(strip_header(b"1\t2").is_none());
    }

    #[test]
    fn uuids_print_as_postgres_does() {
        let bytes = [
            0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
            0x0a, 0x11,
        ];
        assert_eq!(
            format_uuid(&bytes, &mut [0; 36]),
            Ok("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
        );
        assert!(format_uuid(&bytes[..15], &mut [0; 36]).is_err());
    }
}
