//! Integration tests of the runner against real servers. One module per area.

mod source_postgres;
