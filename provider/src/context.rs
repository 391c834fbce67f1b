//! What `ConfigureProvider` produces and every operation shares: the provider's settings, the
//! lazily built cloud clients and the control stores opened so far.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use lakestream_control::{RunnerControl, S3Access, Store};
use lakestream_spec::StoreUrl;
use lakestream_spec::store::Scheme;
use tfplugin::{Context, Diagnostic};

use crate::address::RunnerAddress;
use crate::aws::{AwsSettings, LazyAws};
use crate::observe::store_error;

/// The configured provider.
#[derive(Debug, Default)]
pub struct ProviderContext {
    /// AWS clients, built on first use (local runners never touch AWS).
    pub aws: LazyAws,
    /// Control stores by URL, opened once so that every resource of a run shares their
    /// connections and credentials.
    stores: Mutex<HashMap<StoreUrl, Store>>,
}

impl ProviderContext {
    /// A context for these settings.
    pub fn new(aws: AwsSettings) -> Self {
        Self {
            aws: LazyAws::new(aws),
            stores: Mutex::default(),
        }
    }

    /// The configured provider of `context`, or, while Terraform plans before the provider's
    /// configuration is known, one with the default settings (the standard credential chains).
    pub fn of(context: &Context) -> Arc<Self> {
        static UNCONFIGURED: LazyLock<Arc<ProviderContext>> = LazyLock::new(Arc::default);
        context
            .provider_data::<Self>()
            .unwrap_or_else(|_| Arc::clone(&UNCONFIGURED))
    }

    /// The store at `url`. An S3 bucket is reached as the `aws {}` block says (its profile,
    /// assumed role, region and `s3` endpoint), like every other AWS call of the provider.
    pub async fn store(&self, url: &StoreUrl) -> Result<Store, Diagnostic> {
        if let Some(store) = self.opened().get(url) {
            return Ok(store.clone());
        }
        let access = match url.scheme() {
            Scheme::S3 => self.aws.clients().await?.s3_access(),
            Scheme::File | Scheme::Azure => S3Access::default(),
        };
        let store = Store::open_with(url, &access).map_err(store_error)?;
        Ok(self.opened().entry(url.clone()).or_insert(store).clone())
    }

    /// A runner's documents in its control store.
    pub async fn runner_control(
        &self,
        address: &RunnerAddress,
    ) -> Result<RunnerControl, Diagnostic> {
        let store = self.store(&address.control_store).await?;
        Ok(RunnerControl::new(store, &address.runner_id))
    }

    fn opened(&self) -> std::sync::MutexGuard<'_, HashMap<StoreUrl, Store>> {
        self.stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
