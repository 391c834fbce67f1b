//! Opening object stores from URLs, and versioned JSON documents in them.

use std::path::PathBuf;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use lakestream_spec::store::{Scheme, StoreUrl};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsCredentialProvider};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    GetOptions, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    UpdateVersion,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What can go wrong reading or writing a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened (bad configuration, missing credentials settings).
    #[error("cannot open {url}: {reason}")]
    Open {
        /// The store.
        url: String,
        /// Why.
        reason: String,
    },
    /// A conditional write lost a race: someone else changed the document first.
    #[error("{path} was changed by someone else at the same time")]
    Conflict {
        /// The document.
        path: String,
    },
    /// A create-only write found the document already there.
    #[error("{path} already exists")]
    AlreadyExists {
        /// The document.
        path: String,
    },
    /// The document is not what this version of Lakestream expects.
    #[error("{path} is not a valid document: {source}")]
    Decode {
        /// The document.
        path: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The object store failed.
    #[error("{operation} {path}: {source}")]
    Backend {
        /// What was attempted.
        operation: &'static str,
        /// The object.
        path: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// A local folder operation failed.
    #[error("{operation} {path}: {source}")]
    Local {
        /// What was attempted.
        operation: &'static str,
        /// The file or folder.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A document and the version it was read at, for a later conditional write.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    /// The document.
    pub value: T,
    /// Its version (ETag, and object version where the store has one).
    pub version: UpdateVersion,
}

/// How a write treats an existing document.
#[derive(Debug, Clone)]
pub enum WriteMode {
    /// Replace whatever is there.
    Overwrite,
    /// Fail with [`StoreError::AlreadyExists`] when the document exists.
    Create,
    /// Fail with [`StoreError::Conflict`] unless the document is still at this version.
    Replace(UpdateVersion),
}

/// The outcome of a conditional read.
#[derive(Debug)]
pub enum Fetched<T> {
    /// The document did not change since the known version.
    Unchanged,
    /// The document is gone.
    Missing,
    /// A new version.
    Changed(Versioned<T>),
}

/// An object store rooted at a [`StoreUrl`]: every path is relative to the URL's prefix.
#[derive(Debug, Clone)]
pub struct Store {
    objects: Arc<dyn ObjectStore>,
    url: StoreUrl,
    /// For `file://` stores, the folder: conditional replaces lock it, since `object_store`'s
    /// local backend has no compare-and-swap.
    local_root: Option<PathBuf>,
}

/// How to reach S3 when the caller knows better than the standard environment: the provider's
/// `aws {}` block (a profile, an assumed role, an endpoint override). What is left unset comes
/// from the environment (`AWS_*`), as with [`Store::open`].
#[derive(Debug, Clone, Default)]
pub struct S3Access {
    /// The bucket's region.
    pub region: Option<String>,
    /// An endpoint instead of the public one (VPC endpoint, emulator); wins over
    /// `AWS_ENDPOINT_URL_S3`.
    pub endpoint: Option<String>,
    /// Where signing credentials come from, instead of the environment's chain.
    pub credentials: Option<AwsCredentialProvider>,
}

impl Store {
    /// Opens the store named by `url`. Cloud credentials come from the standard environment
    /// (`AWS_*`, `AZURE_*`), i.e. from the runner's or provider's own identity.
    pub fn open(url: &StoreUrl) -> Result<Self, StoreError> {
        Self::open_with(url, &S3Access::default())
    }

    /// Opens the store named by `url`, reaching an S3 bucket as `s3` says.
    pub fn open_with(url: &StoreUrl, s3: &S3Access) -> Result<Self, StoreError> {
        let open_error = |reason: String| StoreError::Open {
            url: url.to_string(),
            reason,
        };
        let prefix = Path::from(url.prefix());
        let (objects, local_root): (Arc<dyn ObjectStore>, _) = match url.scheme() {
            Scheme::File => {
                // Rooted at `/` behind a prefix rather than at the folder itself, so opening
                // a store (as `terraform plan` does) creates nothing; folders appear on write.
                let root = PathBuf::from(format!("/{}", url.prefix()));
                (
                    Arc::new(PrefixStore::new(LocalFileSystem::new(), prefix)),
                    Some(root),
                )
            }
            Scheme::S3 => {
                let mut builder =
                    AmazonS3Builder::from_env().with_bucket_name(url.bucket().unwrap_or_default());
                if let Some(region) = &s3.region {
                    builder = builder.with_region(region);
                }
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder.with_config(AmazonS3ConfigKey::S3Endpoint, endpoint);
                }
                if let Some(credentials) = &s3.credentials {
                    builder = builder.with_credentials(Arc::clone(credentials));
                }
                let endpoint = s3.endpoint.clone().or_else(|| {
                    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
                        .iter()
                        .find_map(|name| std::env::var(name).ok())
                });
                if endpoint.is_some_and(|endpoint| endpoint.starts_with("http://")) {
                    builder = builder.with_allow_http(true);
                }
                let s3 = builder.build().map_err(|err| open_error(err.to_string()))?;
                (Arc::new(PrefixStore::new(s3, prefix)), None)
            }
            Scheme::Azure => {
                let mut builder = MicrosoftAzureBuilder::from_env().with_url(url.url().as_str());
                if std::env::var("AZURITE_BLOB_STORAGE_URL").is_ok() {
                    builder = builder.with_use_emulator(true).with_allow_http(true);
                }
                let azure = builder.build().map_err(|err| open_error(err.to_string()))?;
                (Arc::new(PrefixStore::new(azure, prefix)), None)
            }
        };
        Ok(Self {
            objects,
            url: url.clone(),
            local_root,
        })
    }

    /// The URL this store is rooted at.
    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    /// The underlying object store, rooted at the URL's prefix (for writers of data files).
    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    /// Reads a JSON document; `None` when it does not exist.
    pub async fn read_json<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<Versioned<T>>, StoreError> {
        match self.fetch_json(path, GetOptions::default()).await? {
            Fetched::Changed(doc) => Ok(Some(doc)),
            Fetched::Missing | Fetched::Unchanged => Ok(None),
        }
    }

    /// Reads a JSON document only if it changed since `known` (a conditional GET: cheap to
    /// poll, since an unchanged document is not transferred).
    pub async fn read_json_if_changed<T: DeserializeOwned>(
        &self,
        path: &str,
        known: Option<&UpdateVersion>,
    ) -> Result<Fetched<T>, StoreError> {
        let options = GetOptions {
            if_none_match: known.and_then(|v| v.e_tag.clone()),
            ..GetOptions::default()
        };
        self.fetch_json(path, options).await
    }

    async fn fetch_json<T: DeserializeOwned>(
        &self,
        path: &str,
        options: GetOptions,
    ) -> Result<Fetched<T>, StoreError> {
        let location = Path::from(path);
        let result = match self.objects.get_opts(&location, options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(Fetched::Missing),
            Err(object_store::Error::NotModified { .. }) => return Ok(Fetched::Unchanged),
            Err(source) => return Err(self.backend("read", path, source)),
        };
        let version = UpdateVersion {
            e_tag: result.meta.e_tag.clone(),
            version: result.meta.version.clone(),
        };
        let bytes = result
            .bytes()
            .await
            .map_err(|source| self.backend("read", path, source))?;
        let value = serde_json::from_slice(&bytes).map_err(|source| StoreError::Decode {
            path: self.describe(path),
            source,
        })?;
        Ok(Fetched::Changed(Versioned { value, version }))
    }

    /// Writes a JSON document; returns its new version.
    pub async fn write_json<T: Serialize>(
        &self,
        path: &str,
        value: &T,
        mode: WriteMode,
    ) -> Result<UpdateVersion, StoreError> {
        let mut bytes = serde_json::to_vec_pretty(value).expect("documents always serialise");
        bytes.push(b'\n');
        self.write_bytes(path, bytes.into(), mode).await
    }

    /// Writes raw bytes; returns the new version.
    pub async fn write_bytes(
        &self,
        path: &str,
        payload: PutPayload,
        mode: WriteMode,
    ) -> Result<UpdateVersion, StoreError> {
        let location = Path::from(path);
        let _lock = match (&mode, &self.local_root) {
            (WriteMode::Replace(expected), Some(root)) => {
                let lock = lock_folder(root, path).await?;
                let current = match self.objects.head(&location).await {
                    Ok(meta) => Some(meta.e_tag),
                    Err(object_store::Error::NotFound { .. }) => None,
                    Err(source) => return Err(self.backend("check", path, source)),
                };
                if current != Some(expected.e_tag.clone()) {
                    return Err(StoreError::Conflict {
                        path: self.describe(path),
                    });
                }
                Some(lock)
            }
            _ => None,
        };
        let put_mode = match mode {
            WriteMode::Overwrite => PutMode::Overwrite,
            WriteMode::Create => PutMode::Create,
            WriteMode::Replace(_) if self.local_root.is_some() => PutMode::Overwrite,
            WriteMode::Replace(version) => PutMode::Update(version),
        };
        let options = PutOptions {
            mode: put_mode,
            ..PutOptions::default()
        };
        match self.objects.put_opts(&location, payload, options).await {
            Ok(result) => Ok(UpdateVersion {
                e_tag: result.e_tag,
                version: result.version,
            }),
            Err(object_store::Error::AlreadyExists { .. }) => Err(StoreError::AlreadyExists {
                path: self.describe(path),
            }),
            Err(object_store::Error::Precondition { .. }) => Err(StoreError::Conflict {
                path: self.describe(path),
            }),
            Err(source) => Err(self.backend("write", path, source)),
        }
    }

    /// Lists every object below `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let location = Path::from(prefix);
        self.objects
            .list(Some(&location))
            .try_collect()
            .await
            .map_err(|source| self.backend("list", prefix, source))
    }

    /// Deletes one object; a missing object is not an error.
    pub async fn delete(&self, path: &str) -> Result<(), StoreError> {
        match self.objects.delete(&Path::from(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(self.backend("delete", path, source)),
        }
    }

    /// Deletes every object below `prefix` (and, on a local folder, the emptied folders);
    /// returns how many objects were deleted.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize, StoreError> {
        let objects = self.list(prefix).await?;
        let count = objects.len();
        let locations =
            futures::stream::iter(objects.into_iter().map(|meta| Ok(meta.location))).boxed();
        self.objects
            .delete_stream(locations)
            .try_collect::<Vec<_>>()
            .await
            .map_err(|source| self.backend("delete", prefix, source))?;
        if let Some(root) = &self.local_root {
            let folder = root.join(prefix);
            match tokio::fs::remove_dir_all(&folder).await {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(StoreError::Local {
                        operation: "remove",
                        path: folder.display().to_string(),
                        source,
                    });
                }
            }
        }
        Ok(count)
    }

    /// `path` as a full URL, for messages.
    pub fn describe(&self, path: &str) -> String {
        self.url.join(path).to_string()
    }

    fn backend(
        &self,
        operation: &'static str,
        path: &str,
        source: object_store::Error,
    ) -> StoreError {
        StoreError::Backend {
            operation,
            path: self.describe(path),
            source,
        }
    }
}

/// An exclusive lock on the folder that holds `path` in a local store, held until dropped.
/// Locks are per open file description, so they exclude other tasks of this process as well
/// as other processes.
async fn lock_folder(root: &std::path::Path, path: &str) -> Result<std::fs::File, StoreError> {
    let folder = match std::path::Path::new(path).parent() {
        Some(parent) => root.join(parent),
        None => root.to_path_buf(),
    };
    tokio::task::spawn_blocking(move || {
        let local_error = |operation, source| StoreError::Local {
            operation,
            path: folder.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&folder).map_err(|source| local_error("create", source))?;
        let file = std::fs::File::open(&folder).map_err(|source| local_error("open", source))?;
        file.lock().map_err(|source| local_error("lock", source))?;
        Ok(file)
    })
    .await
    .expect("the lock task does not panic")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Doc {
        n: u32,
    }

    fn local_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = StoreUrl::parse(&format!("file://{}/control", dir.path().display())).unwrap();
        let store = Store::open(&url).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn replace_detects_concurrent_changes_on_a_local_folder() {
        let (_dir, store) = local_store();
        let v1 = store
            .write_json("a/doc.json", &Doc { n: 1 }, WriteMode::Create)
            .await
            .unwrap();
        let read = store.read_json::<Doc>("a/doc.json").await.unwrap().unwrap();
        assert_eq!(read.value, Doc { n: 1 });
        let v2 = store
            .write_json("a/doc.json", &Doc { n: 2 }, WriteMode::Replace(v1.clone()))
            .await
            .unwrap();
        let stale = store
            .write_json("a/doc.json", &Doc { n: 3 }, WriteMode::Replace(v1))
            .await;
        assert!(
            matches!(stale, Err(StoreError::Conflict { .. })),
            "{stale:?}"
        );
        store
            .write_json("a/doc.json", &Doc { n: 4 }, WriteMode::Replace(v2))
            .await
            .unwrap();
        let again = store
            .write_json("a/doc.json", &Doc { n: 5 }, WriteMode::Create)
            .await;
        assert!(
            matches!(again, Err(StoreError::AlreadyExists { .. })),
            "{again:?}"
        );
        assert_eq!(
            store
                .read_json::<Doc>("a/doc.json")
                .await
                .unwrap()
                .unwrap()
                .value,
            Doc { n: 4 }
        );
    }

    #[tokio::test]
    async fn many_concurrent_replacers_never_lose_an_update() {
        let (_dir, store) = local_store();
        store
            .write_json("counter.json", &Doc { n: 0 }, WriteMode::Create)
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    loop {
                        let current = store
                            .read_json::<Doc>("counter.json")
                            .await
                            .unwrap()
                            .unwrap();
                        let next = Doc {
                            n: current.value.n + 1,
                        };
                        match store
                            .write_json("counter.json", &next, WriteMode::Replace(current.version))
                            .await
                        {
                            Ok(_) => break,
                            Err(StoreError::Conflict { .. }) => continue,
                            Err(err) => panic!("{err}"),
                        }
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            store
                .read_json::<Doc>("counter.json")
                .await
                .unwrap()
                .unwrap()
                .value,
            Doc { n: 80 }
        );
    }

    #[tokio::test]
    async fn conditional_reads_skip_unchanged_documents() {
        let (_dir, store) = local_store();
        let v1 = store
            .write_json("d.json", &Doc { n: 1 }, WriteMode::Overwrite)
            .await
            .unwrap();
        assert!(matches!(
            store
                .read_json_if_changed::<Doc>("d.json", Some(&v1))
                .await
                .unwrap(),
            Fetched::Unchanged
        ));
        store
            .write_json("d.json", &Doc { n: 2 }, WriteMode::Overwrite)
            .await
            .unwrap();
        match store
            .read_json_if_changed::<Doc>("d.json", Some(&v1))
            .await
            .unwrap()
        {
            Fetched::Changed(doc) => assert_eq!(doc.value, Doc { n: 2 }),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            store
                .read_json_if_changed::<Doc>("gone.json", None)
                .await
                .unwrap(),
            Fetched::Missing
        ));
    }

    #[tokio::test]
    async fn delete_prefix_removes_objects_and_folders() {
        let (dir, store) = local_store();
        store
            .write_json("runners/r1/a.json", &Doc { n: 1 }, WriteMode::Overwrite)
            .await
            .unwrap();
        store
            .write_json("runners/r1/x/b.json", &Doc { n: 1 }, WriteMode::Overwrite)
            .await
            .unwrap();
        store
            .write_json("runners/r2/a.json", &Doc { n: 1 }, WriteMode::Overwrite)
            .await
            .unwrap();
        assert_eq!(store.delete_prefix("runners/r1").await.unwrap(), 2);
        assert!(!dir.path().join("control/runners/r1").exists());
        assert!(dir.path().join("control/runners/r2/a.json").exists());
    }
}

#[cfg(test)]
mod opening {
    use super::*;

    #[tokio::test]
    async fn opening_and_reading_a_missing_local_store_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("not/yet");
        let store = Store::open(&StoreUrl::parse(&format!("file://{}", folder.display())).unwrap())
            .unwrap();
        assert!(
            store
                .read_json::<serde_json::Value>("a.json")
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.list("runners").await.unwrap().is_empty());
        assert!(!folder.exists(), "reads leave no trace");
        store
            .write_json("x/a.json", &1, WriteMode::Overwrite)
            .await
            .unwrap();
        assert!(folder.join("x/a.json").exists());
    }
}
