//! PostgreSQL source against a real server.
