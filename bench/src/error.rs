//! Why a benchmark run stopped. A failed case is a broken harness or a broken product, never a
//! slow one: figures have no pass/fail thresholds, so every error here means "no figure".

/// A failure of the harness, a reference tool, the runner or the provider.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file, folder or process operation failed.
    #[error("{what}")]
    Io {
        /// What was attempted.
        what: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A statement on the benchmark database failed.
    #[error("{what}")]
    Postgres {
        /// The statement's purpose.
        what: String,
        /// The server's or the client's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A Parquet file of the lake could not be read.
    #[error("reading {path}")]
    Parquet {
        /// The file.
        path: String,
        /// The reader's error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Something did not behave as the case needs (a tool failed, a wait timed out, a plan was
    /// not empty …); the message says what and where to look.
    #[error("{0}")]
    Failed(String),
}

/// The result of everything that can fail in the harness.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches "what was attempted" to I/O errors.
pub trait IoContext<T> {
    /// The error, described as a failure of `what`.
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: what(),
            source,
        })
    }
}

/// Attaches the statement's purpose to database errors.
pub trait PgContext<T> {
    /// The error, described as a failure of `what`.
    fn context(self, what: &str) -> Result<T>;
}

impl<T> PgContext<T> for std::result::Result<T, tokio_postgres::Error> {
    fn context(self, what: &str) -> Result<T> {
        self.map_err(|source| Error::Postgres {
            what: what.to_owned(),
            source,
        })
    }
}

/// `error` and its causes on one line, `message: cause: cause`.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
