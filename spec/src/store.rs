//! Object-store URLs: where the control store and the lake live.

use std::fmt;

use url::Url;

/// The object stores Lakestream can read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `file:///absolute/folder` — a local folder, for development and tests.
    File,
    /// `s3://bucket/prefix` — Amazon S3.
    S3,
    /// `az://container/prefix` (account from the environment) or
    /// `abfss://container@account.dfs.core.windows.net/prefix` — Azure Blob Storage / ADLS Gen2.
    Azure,
}

/// How the allowed schemes are listed in messages.
pub const ALLOWED_SCHEMES: &str = "file:///<absolute folder>, s3://<bucket>/<prefix>, az://<container>/<prefix> or abfss://<container>@<account>.dfs.core.windows.net/<prefix>";

/// A validated store URL: a scheme, the location of the bucket or folder, and a prefix inside
/// it. Displayed without a trailing slash, so two spellings of one place compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoreUrl {
    scheme: Scheme,
    url: Url,
}

impl StoreUrl {
    /// Parses and checks a store URL; the message names the allowed forms.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = Url::parse(text).map_err(|err| {
            format!("{text:?} is not a URL ({err}); use one of {ALLOWED_SCHEMES}")
        })?;
        let scheme = match url.scheme() {
            "file" => {
                if url
                    .host_str()
                    .is_some_and(|host| !host.is_empty() && host != "localhost")
                {
                    return Err(format!(
                        "{text:?} names a host; a file URL must be file:///<absolute folder>"
                    ));
                }
                Scheme::File
            }
            "s3" => {
                let bucket = url.host_str().unwrap_or_default();
                check_bucket(bucket).map_err(|why| format!("{text:?}: {why}"))?;
                Scheme::S3
            }
            "az" | "abfss" => {
                let host = url.host_str().unwrap_or_default();
                if host.is_empty() {
                    return Err(format!("{text:?} names no container"));
                }
                if url.scheme() == "abfss"
                    && (url.username().is_empty() || !host.ends_with(".dfs.core.windows.net"))
                {
                    return Err(format!(
                        "{text:?}: write abfss://<container>@<account>.dfs.core.windows.net/<prefix>"
                    ));
                }
                Scheme::Azure
            }
            other => {
                return Err(format!(
                    "{text:?} uses the unsupported scheme {other}://; use one of {ALLOWED_SCHEMES}"
                ));
            }
        };
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{text:?} must not carry a query or a fragment"));
        }
        if url.password().is_some() {
            return Err(format!("{text:?} must not carry credentials"));
        }
        let mut url = url;
        let trimmed = url.path().trim_end_matches('/').to_owned();
        if scheme == Scheme::File && trimmed.is_empty() {
            return Err(format!("{text:?} is the file-system root; name a folder"));
        }
        url.set_path(&trimmed);
        Ok(Self { scheme, url })
    }

    /// Which object store this is.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The URL, without a trailing slash.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The path inside the bucket or container (for `file://`, the absolute folder), without
    /// leading or trailing slashes.
    pub fn prefix(&self) -> &str {
        self.url.path().trim_matches('/')
    }

    /// A URL `relative` below this one.
    pub fn join(&self, relative: &str) -> StoreUrl {
        let mut url = self.url.clone();
        let path = format!("{}/{}", self.url.path(), relative.trim_matches('/'));
        url.set_path(&path);
        StoreUrl {
            scheme: self.scheme,
            url,
        }
    }

    /// The bucket (S3) or container (Azure); `None` for local folders.
    pub fn bucket(&self) -> Option<&str> {
        match self.scheme {
            Scheme::File => None,
            Scheme::S3 => self.url.host_str(),
            Scheme::Azure if self.url.scheme() == "abfss" => Some(self.url.username()),
            Scheme::Azure => self.url.host_str(),
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

/// S3's bucket naming rules (the general-purpose subset everyone can rely on).
fn check_bucket(bucket: &str) -> Result<(), String> {
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{bucket:?} is not a valid bucket name; allowed: 3-63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_trailing_slashes() {
        let a = StoreUrl::parse("file:///tmp/lake/").unwrap();
        let b = StoreUrl::parse("file:///tmp/lake").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "file:///tmp/lake");
        assert_eq!(a.prefix(), "tmp/lake");
        assert_eq!(
            a.join("runners/x/").to_string(),
            "file:///tmp/lake/runners/x"
        );
    }

    #[test]
    fn accepts_cloud_stores() {
        let s3 = StoreUrl::parse("s3://my-bucket/control").unwrap();
        assert_eq!(
            (s3.scheme(), s3.bucket(), s3.prefix()),
            (Scheme::S3, Some("my-bucket"), "control")
        );
        let az = StoreUrl::parse("abfss://lake@acct.dfs.core.windows.net/cdc").unwrap();
        assert_eq!(
            (az.scheme(), az.bucket(), az.prefix()),
            (Scheme::Azure, Some("lake"), "cdc")
        );
        assert_eq!(
            StoreUrl::parse("az://lake/cdc").unwrap().bucket(),
            Some("lake")
        );
    }

    #[test]
    fn refuses_with_reasons() {
        let cases = [
            ("gs://bucket/x", "unsupported scheme gs://"),
            ("s3://B/x", "not a valid bucket name"),
            ("file://host/tmp", "names a host"),
            ("file:///", "root"),
            ("tmp/lake", "is not a URL"),
            ("s3://bucket/x?versionId=1", "query"),
            ("abfss://lake/x", "abfss://<container>@<account>"),
        ];
        for (text, expected) in cases {
            let err = StoreUrl::parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
