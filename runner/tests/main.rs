//! Integration tests of the runner against real servers. One module per area.

mod pipeline;
mod sink_stores;
mod source_postgres;
