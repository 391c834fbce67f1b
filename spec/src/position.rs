//! Positions in a source's change log.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a change sits in the source's log: the log coordinate of its transaction (for
/// PostgreSQL the commit LSN) and its order inside that transaction. Ordered
/// lexicographically; see `ARCHITECTURE.md` ("Positions").
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position {
    /// The transaction's log coordinate.
    pub log: u64,
    /// Order within the transaction (or within a backfill), from 0.
    pub seq: u64,
}

impl Position {
    /// A position from its two parts.
    pub const fn new(log: u64, seq: u64) -> Self {
        Self { log, seq }
    }

    /// The `_position` column's text: `log` as 16 upper-case hex digits, sortable as a string.
    pub fn log_hex(&self) -> String {
        format!("{:016X}", self.log)
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}.{}", self.log, self.seq)
    }
}

/// A PostgreSQL LSN in its usual `X/Y` spelling.
pub fn lsn_text(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_log_then_seq() {
        let a = Position { log: 5, seq: 9 };
        let b = Position { log: 6, seq: 0 };
        assert!(a < b);
        assert_eq!(a.log_hex(), "0000000000000005");
        assert_eq!(lsn_text(0x1_0000_00A0), "1/A0");
    }
}
