//! Decoder of the logical replication stream: the CopyBoth payloads (`XLogData` and primary
//! keepalives) and the pgoutput messages inside them (protocol version 1, text tuple data).
//!
//! Everything borrows from the receive buffer; only `Relation` messages (rare) allocate.
//! Reference: PostgreSQL's "Logical Replication Message Formats" and
//! "Streaming Replication Protocol" chapters.

use std::fmt;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00:00 UTC).
pub(crate) const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// Malformed replication data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed replication message: {0}")]
pub(crate) struct DecodeError(pub(crate) String);

/// Result of decoding.
type Result<T> = std::result::Result<T, DecodeError>;

/// A CopyData payload of the replication stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CopyMessage<'a> {
    /// `w`: WAL data, here one pgoutput message.
    XLogData {
        /// LSN the data starts at (for logical replication: the message's LSN).
        start: u64,
        /// The server's WAL end as it reports it.
        wal_end: u64,
        /// The pgoutput message.
        data: &'a [u8],
    },
    /// `k`: the server's keepalive.
    Keepalive {
        /// The walsender's current position (everything before it was decoded and sent).
        wal_end: u64,
        /// The server wants a status update now (else it disconnects at `wal_sender_timeout`).
        reply: bool,
    },
}

impl<'a> CopyMessage<'a> {
    /// Decodes a CopyData body.
    pub(crate) fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        match r.u8()? {
            b'w' => {
                let start = r.u64()?;
                let wal_end = r.u64()?;
                let _send_time = r.i64()?;
                Ok(CopyMessage::XLogData {
                    start,
                    wal_end,
                    data: r.rest(),
                })
            }
            b'k' => {
                let wal_end = r.u64()?;
                let _send_time = r.i64()?;
                let reply = r.u8()? != 0;
                Ok(CopyMessage::Keepalive { wal_end, reply })
            }
            other => Err(DecodeError(format!(
                "unknown CopyData message {:?}",
                char::from(other)
            ))),
        }
    }
}

/// A standby status update (`r`) as a CopyData message appended to `out`: `written` is how far
/// the client has received (PostgreSQL only uses it for monitoring and to let a shutting-down
/// walsender finish), `flushed` is durable and becomes the slot's `confirmed_flush_lsn`, and is
/// also reported as applied.
pub(crate) fn status_update(
    written: u64,
    flushed: u64,
    now_unix_micros: i64,
    reply: bool,
    out: &mut bytes::BytesMut,
) {
    use bytes::BufMut;
    out.put_u8(b'd');
    out.put_u32(4 + 1 + 8 * 4 + 1);
    out.put_u8(b'r');
    out.put_u64(written.max(flushed));
    out.put_u64(flushed);
    out.put_u64(flushed);
    out.put_i64(now_unix_micros - PG_EPOCH_OFFSET_MICROS);
    out.put_u8(u8::from(reply));
}

/// A pgoutput message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message<'a> {
    /// Start of a transaction.
    Begin {
        /// LSN of the commit record: the transaction's position.
        final_lsn: u64,
        /// Commit time, microseconds since the Unix epoch.
        commit_ts: i64,
        /// Transaction id.
        xid: u32,
    },
    /// End of a transaction.
    Commit {
        /// LSN of the commit record.
        commit_lsn: u64,
        /// End of the commit record: acknowledging it means the transaction is done.
        end_lsn: u64,
        /// Commit time, microseconds since the Unix epoch.
        commit_ts: i64,
    },
    /// Replication origin of the transaction (ignored).
    Origin,
    /// A table's shape, sent before its first change in the session and after every change
    /// of its definition.
    Relation(Relation),
    /// A non-built-in type's name.
    Type {
        /// The type's OID.
        oid: u32,
        /// Its schema.
        namespace: &'a str,
        /// Its name.
        name: &'a str,
    },
    /// A new row.
    Insert {
        /// The table.
        relid: u32,
        /// The row.
        new: Tuple<'a>,
    },
    /// A changed row.
    Update {
        /// The table.
        relid: u32,
        /// The old key (`K`, when the key changed) or old row (`O`, `REPLICA IDENTITY FULL`).
        old: Option<OldTuple<'a>>,
        /// The new row (unchanged TOASTed values marked `u`).
        new: Tuple<'a>,
    },
    /// A deleted row.
    Delete {
        /// The table.
        relid: u32,
        /// The old key or old row.
        old: OldTuple<'a>,
    },
    /// Tables truncated together.
    Truncate {
        /// The tables' OIDs.
        relids: Vec<u32>,
    },
    /// A logical decoding message (`pg_logical_emit_message`).
    Logical {
        /// Emitted inside a transaction (delivered with it) or not (delivered at once).
        transactional: bool,
        /// Its LSN.
        lsn: u64,
        /// Its prefix (`lakestream` for our heartbeats).
        prefix: &'a str,
    },
}

/// The old image carried by an update or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OldTuple<'a> {
    /// `true` for a full old row (`O`), `false` for the replica identity key only (`K`).
    pub(crate) full: bool,
    /// The tuple; non-key columns are null in a key tuple.
    pub(crate) tuple: Tuple<'a>,
}

/// A `Relation` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Relation {
    /// The table's OID.
    pub(crate) relid: u32,
    /// Its schema (`pg_catalog` is sent as an empty string by the server).
    pub(crate) namespace: String,
    /// Its name.
    pub(crate) name: String,
    /// `relreplident`: `d` default, `n` nothing, `f` full, `i` index.
    pub(crate) replica_identity: u8,
    /// The published columns.
    pub(crate) columns: Vec<RelationColumn>,
}

/// A column of a `Relation` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RelationColumn {
    /// Part of the replica identity key.
    pub(crate) key: bool,
    /// Its name.
    pub(crate) name: String,
    /// Its type's OID.
    pub(crate) type_oid: u32,
    /// Its type modifier (`atttypmod`).
    pub(crate) typmod: i32,
}

/// The columns of a row as the server sent them (`TupleData`), decoded lazily by
/// [`Tuple::cells`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tuple<'a> {
    /// Number of columns.
    count: u16,
    /// The column data, starting after the count.
    data: &'a [u8],
}

impl fmt::Debug for Tuple<'_> {
    /// The column count and size (the data itself may be large or sensitive).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tuple({} columns, {} bytes)",
            self.count,
            self.data.len()
        )
    }
}

/// One column of a [`Tuple`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TupleCell<'a> {
    /// SQL NULL.
    Null,
    /// An unchanged TOASTed value the server did not send.
    Unchanged,
    /// The value in text format.
    Text(&'a [u8]),
}

impl<'a> Tuple<'a> {
    /// Number of columns.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// The columns, in order.
    pub(crate) fn cells(&self) -> Cells<'a> {
        Cells {
            remaining: self.count,
            reader: Reader::new(self.data),
        }
    }

    /// Reads a tuple from `r`, leaving `r` after it.
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        let count = r.u16()?;
        let start = r.data;
        let mut cells = Cells {
            remaining: count,
            reader: Reader::new(start),
        };
        for cell in cells.by_ref() {
            cell?;
        }
        let used = start.len() - cells.reader.data.len();
        r.data = &start[used..];
        Ok(Tuple {
            count,
            data: &start[..used],
        })
    }
}

/// Iterator over a tuple's cells.
#[derive(Debug, Clone)]
pub(crate) struct Cells<'a> {
    /// Cells not read yet.
    remaining: u16,
    /// Position in the tuple data.
    reader: Reader<'a>,
}

impl<'a> Iterator for Cells<'a> {
    type Item = Result<TupleCell<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        Some(self.read_cell())
    }
}

impl<'a> Cells<'a> {
    /// Reads one cell.
    fn read_cell(&mut self) -> Result<TupleCell<'a>> {
        match self.reader.u8()? {
            b'n' => Ok(TupleCell::Null),
            b'u' => Ok(TupleCell::Unchanged),
            b't' => {
                let len = self.reader.u32()? as usize;
                Ok(TupleCell::Text(self.reader.bytes(len)?))
            }
            b'b' => Err(DecodeError(
                "binary tuple data (the source asks for text)".into(),
            )),
            other => Err(DecodeError(format!(
                "unknown tuple data kind {:?}",
                char::from(other)
            ))),
        }
    }
}

impl<'a> Message<'a> {
    /// Decodes one pgoutput message (protocol version 1).
    pub(crate) fn parse(data: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(data);
        let message = match r.u8()? {
            b'B' => Message::Begin {
                final_lsn: r.u64()?,
                commit_ts: r.i64()? + PG_EPOCH_OFFSET_MICROS,
                xid: r.u32()?,
            },
            b'C' => {
                let _flags = r.u8()?;
                Message::Commit {
                    commit_lsn: r.u64()?,
                    end_lsn: r.u64()?,
                    commit_ts: r.i64()? + PG_EPOCH_OFFSET_MICROS,
                }
            }
            b'O' => Message::Origin,
            b'R' => {
                let relid = r.u32()?;
                let namespace = r.cstr()?.to_owned();
                let name = r.cstr()?.to_owned();
                let replica_identity = r.u8()?;
                let count = r.u16()?;
                let mut columns = Vec::with_capacity(usize::from(count));
                for _ in 0..count {
                    let flags = r.u8()?;
                    columns.push(RelationColumn {
                        key: flags & 1 == 1,
                        name: r.cstr()?.to_owned(),
                        type_oid: r.u32()?,
                        typmod: r.i32()?,
                    });
                }
                Message::Relation(Relation {
                    relid,
                    namespace: if namespace.is_empty() {
                        "pg_catalog".to_owned()
                    } else {
                        namespace
                    },
                    name,
                    replica_identity,
                    columns,
                })
            }
            b'Y' => Message::Type {
                oid: r.u32()?,
                namespace: r.cstr()?,
                name: r.cstr()?,
            },
            b'I' => {
                let relid = r.u32()?;
                r.expect(b'N')?;
                Message::Insert {
                    relid,
                    new: Tuple::read(&mut r)?,
                }
            }
            b'U' => {
                let relid = r.u32()?;
                let old = match r.u8()? {
                    kind @ (b'K' | b'O') => {
                        let tuple = Tuple::read(&mut r)?;
                        r.expect(b'N')?;
                        Some(OldTuple {
                            full: kind == b'O',
                            tuple,
                        })
                    }
                    b'N' => None,
                    other => {
                        return Err(DecodeError(format!(
                            "update with tuple kind {:?}",
                            char::from(other)
                        )));
                    }
                };
                Message::Update {
                    relid,
                    old,
                    new: Tuple::read(&mut r)?,
                }
            }
            b'D' => {
                let relid = r.u32()?;
                let full = match r.u8()? {
                    b'K' => false,
                    b'O' => true,
                    other => {
                        return Err(DecodeError(format!(
                            "delete with tuple kind {:?}",
                            char::from(other)
                        )));
                    }
                };
                Message::Delete {
                    relid,
                    old: OldTuple {
                        full,
                        tuple: Tuple::read(&mut r)?,
                    },
                }
            }
            b'T' => {
                let count = r.u32()?;
                let _options = r.u8()?;
                let relids = (0..count).map(|_| r.u32()).collect::<Result<Vec<_>>>()?;
                Message::Truncate { relids }
            }
            b'M' => {
                let flags = r.u8()?;
                let lsn = r.u64()?;
                let prefix = r.cstr()?;
                Message::Logical {
                    transactional: flags & 1 == 1,
                    lsn,
                    prefix,
                }
            }
            other => {
                return Err(DecodeError(format!(
                    "unknown pgoutput message {:?}",
                    char::from(other)
                )));
            }
        };
        Ok(message)
    }
}

/// A cursor over big-endian protocol data.
#[derive(Debug, Clone)]
struct Reader<'a> {
    /// Bytes not read yet.
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader at the start of `data`.
    fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    /// The next `n` bytes.
    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.data.len() < n {
            return Err(DecodeError(format!(
                "needed {n} more bytes, {} left",
                self.data.len()
            )));
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    /// Everything left.
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    /// A fixed-size array.
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// One byte.
    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// A specific byte.
    fn expect(&mut self, byte: u8) -> Result<()> {
        match self.u8()? {
            b if b == byte => Ok(()),
            other => Err(DecodeError(format!(
                "expected {:?}, found {:?}",
                char::from(byte),
                char::from(other)
            ))),
        }
    }

    /// Big-endian u16.
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Big-endian u32.
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Big-endian i32.
    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// Big-endian u64.
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Big-endian i64.
    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// A NUL-terminated UTF-8 string.
    fn cstr(&mut self) -> Result<&'a str> {
        let end = self
            .data
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| DecodeError("unterminated string".into()))?;
        let text = std::str::from_utf8(&self.data[..end])
            .map_err(|_| DecodeError("string is not UTF-8".into()))?;
        self.data = &self.data[end + 1..];
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};

    use super::*;

    /// `TupleData` with the given cells (`None` null, `Some(None)` unchanged).
    fn tuple(cells: &[Option<Option<&str>>], out: &mut BytesMut) {
        out.put_u16(cells.len() as u16);
        for cell in cells {
            match cell {
                None => out.put_u8(b'n'),
                Some(None) => out.put_u8(b'u'),
                Some(Some(text)) => {
                    out.put_u8(b't');
                    out.put_u32(text.len() as u32);
                    out.put_slice(text.as_bytes());
                }
            }
        }
    }

    #[test]
    fn decodes_transaction_messages() {
        let mut b = BytesMut::new();
        b.put_u8(b'B');
        b.put_u64(0x1000);
        b.put_i64(1_000_000);
        b.put_u32(777);
        assert_eq!(
            Message::parse(&b).unwrap(),
            Message::Begin {
                final_lsn: 0x1000,
                commit_ts: 1_000_000 + PG_EPOCH_OFFSET_MICROS,
                xid: 777
            }
        );
        let mut b = BytesMut::new();
        b.put_u8(b'C');
        b.put_u8(0);
        b.put_u64(0x1000);
        b.put_u64(0x1030);
        b.put_i64(0);
        assert_eq!(
            Message::parse(&b).unwrap(),
            Message::Commit {
                commit_lsn: 0x1000,
                end_lsn: 0x1030,
                commit_ts: PG_EPOCH_OFFSET_MICROS
            }
        );
    }

    #[test]
    fn decodes_relation_and_update_with_old_key() {
        let mut b = BytesMut::new();
        b.put_u8(b'R');
        b.put_u32(16384);
        b.put_slice(b"\0t\0");
        b.put_u8(b'd');
        b.put_u16(1);
        b.put_u8(1);
        b.put_slice(b"id\0");
        b.put_u32(23);
        b.put_i32(-1);
        let Message::Relation(relation) = Message::parse(&b).unwrap() else {
            panic!("relation expected");
        };
        assert_eq!(relation.namespace, "pg_catalog");
        assert_eq!(relation.columns[0].name, "id");
        assert!(relation.columns[0].key);

        let mut b = BytesMut::new();
        b.put_u8(b'U');
        b.put_u32(16384);
        b.put_u8(b'K');
        tuple(&[Some(Some("1")), None], &mut b);
        b.put_u8(b'N');
        tuple(&[Some(Some("2")), Some(None)], &mut b);
        let Message::Update { relid, old, new } = Message::parse(&b).unwrap() else {
            panic!("update expected");
        };
        assert_eq!(relid, 16384);
        let old = old.unwrap();
        assert!(!old.full);
        let old_cells: Vec<_> = old.tuple.cells().map(Result::unwrap).collect();
        assert_eq!(old_cells, [TupleCell::Text(b"1"), TupleCell::Null]);
        let new_cells: Vec<_> = new.cells().map(Result::unwrap).collect();
        assert_eq!(new_cells, [TupleCell::Text(b"2"), TupleCell::Unchanged]);
        assert_eq!(new.len(), 2);
    }

    #[test]
    fn rejects_truncated_data() {
        let mut b = BytesMut::new();
        b.put_u8(b'I');
        b.put_u32(1);
        b.put_u8(b'N');
        b.put_u16(1);
        b.put_u8(b't');
        b.put_u32(10);
        b.put_slice(b"abc");
        assert!(Message::parse(&b).is_err());
        assert!(CopyMessage::parse(b"k\0\0").is_err());
    }

    #[test]
    fn keepalives_and_status_updates() {
        let mut b = BytesMut::new();
        b.put_u8(b'k');
        b.put_u64(0xABCD);
        b.put_i64(0);
        b.put_u8(1);
        assert_eq!(
            CopyMessage::parse(&b).unwrap(),
            CopyMessage::Keepalive {
                wal_end: 0xABCD,
                reply: true
            }
        );
        let mut out = BytesMut::new();
        status_update(0x20, 0x10, PG_EPOCH_OFFSET_MICROS, false, &mut out);
        assert_eq!(out.len(), 1 + 4 + 1 + 32 + 1);
        assert_eq!(&out[..6], b"d\0\0\0\x26r");
        assert_eq!(&out[6..14], &0x20u64.to_be_bytes(), "written");
        assert_eq!(&out[14..22], &0x10u64.to_be_bytes(), "flushed");
        assert_eq!(&out[22..30], &0x10u64.to_be_bytes(), "applied");
    }
}
