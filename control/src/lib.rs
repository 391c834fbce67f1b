//! Control-store client.
