//! What `ConfigureProvider` produces and every operation shares: the provider's settings and
//! the lazily built cloud clients.

use crate::aws::{AwsSettings, LazyAws};

/// The configured provider.
#[derive(Debug, Default)]
pub struct ProviderContext {
    /// AWS clients, built on first use (local runners never touch AWS).
    pub aws: LazyAws,
}

impl ProviderContext {
    /// A context for these settings.
    pub fn new(aws: AwsSettings) -> Self {
        Self {
            aws: LazyAws::new(aws),
        }
    }
}
