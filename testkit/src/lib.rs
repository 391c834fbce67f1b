//! Throwaway servers for Lakestream's tests.
//!
//! Every server binds 127.0.0.1 on a free port, lives in its own temporary folder, is stopped by
//! the PID it recorded (never by name), and is removed when its handle is dropped. Nothing here
//! is fit for production: durability is switched off for speed.

pub mod azurite;
pub mod kubernetes;
pub mod lake;
pub mod moto;
pub mod postgres;
