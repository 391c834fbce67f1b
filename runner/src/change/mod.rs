//! Change buffer.
