//! A throwaway Azurite blob server (the Azure Storage emulator): `$LAKESTREAM_AZURITE_BLOB` on
//! 127.0.0.1 with a free port, its data in a temporary folder, telemetry off, stopped by the
//! PID of the process this handle started.
//!
//! `azurite-blob` is a node script (`#!/usr/bin/env node`), so the process started is node
//! itself, serving in-process: killing its PID stops the server, with no wrapper shell that
//! could leave node running. Azurite checks SharedKey signatures, so requests here are signed
//! with the well-known development account's key, as Azure clients do.

use std::io;
use std::process::Command;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::moto::{ServerProcess, installed_program, request};

/// The variable `scripts/test` (through `ensure_azurite` in `scripts/lib/tools.sh`) exports
/// with the path of the `azurite-blob` executable.
pub const AZURITE_BLOB_VARIABLE: &str = "LAKESTREAM_AZURITE_BLOB";

/// The development storage account every Azurite serves.
pub const ACCOUNT: &str = "devstoreaccount1";

/// The development account's published key (the same in every Azurite).
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The Blob API version the testkit's own requests announce (Azurite runs with
/// `--skipApiVersionCheck`, so clients newer than the installed Azurite work too).
const API_VERSION: &str = "2021-12-02";

/// A running Azurite blob server owned by one test. Dropping it stops the server and removes
/// its data.
#[derive(Debug)]
pub struct AzuriteServer {
    process: ServerProcess,
}

impl AzuriteServer {
    /// Starts `$LAKESTREAM_AZURITE_BLOB --blobHost 127.0.0.1 --blobPort <free port> --location
    /// <temporary folder> --skipApiVersionCheck --disableTelemetry` and waits until it answers
    /// HTTP (one to two seconds). Fails, telling how to install Azurite, when the variable is
    /// not set.
    pub async fn start() -> io::Result<Self> {
        let program = installed_program(AZURITE_BLOB_VARIABLE, "ensure_azurite")?;
        let process = ServerProcess::start("azurite", |port, dir| {
            let mut command = Command::new(&program);
            command
                .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
                .arg("--location")
                .arg(dir)
                .args(["--skipApiVersionCheck", "--disableTelemetry"])
                .current_dir(dir);
            command
        })
        .await?;
        Ok(Self { process })
    }

    /// The blob service's base URL, `http://127.0.0.1:<port>`, as `AZURITE_BLOB_STORAGE_URL`
    /// wants it: clients append the account, so the account's endpoint is
    /// `<blob_url>/devstoreaccount1`.
    pub fn blob_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.process.port)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// The PID of the node process serving blobs, the one stopped on drop.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The server's output, useful when a test fails.
    pub fn log_path(&self) -> std::path::PathBuf {
        self.process.log_path()
    }

    /// Creates a blob container in the development account; tests create the containers a
    /// store URL names before opening the store, as an operator would.
    pub async fn create_container(&self, name: &str) -> io::Result<()> {
        let date = httpdate::fmt_http_date(SystemTime::now());
        let headers = [
            ("x-ms-date", date),
            ("x-ms-version", API_VERSION.to_owned()),
        ];
        let resource = format!("/{ACCOUNT}/{ACCOUNT}/{name}\nrestype:container");
        let authorization = shared_key("PUT", &headers, &resource)?;
        let mut all_headers = headers.to_vec();
        all_headers.push(("Authorization", authorization));
        let response = request(
            self.port(),
            "PUT",
            &format!("/{ACCOUNT}/{name}?restype=container"),
            &all_headers,
        )
        .await?;
        response.expect_success(&format!("create container {name}"))
    }

    /// The environment an Azure client needs to use this server: the development account and
    /// key, the emulator's URL, and the emulator switch (`object_store` reads all four).
    /// Environment variables are process-wide: give them to a child process, or set them
    /// before anything reads them.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT.to_owned()),
            ("AZURE_STORAGE_ACCOUNT_KEY", ACCOUNT_KEY.to_owned()),
            ("AZURITE_BLOB_STORAGE_URL", self.blob_url()),
            ("AZURE_STORAGE_USE_EMULATOR", "true".to_owned()),
        ]
    }
}

/// The `Authorization` header for a bodiless request with only `x-ms-*` headers (sorted by
/// name), signed with the development key: the verb, eleven empty standard headers, the
/// canonical `x-ms-*` headers and the canonical resource, HMAC-SHA256, base64.
fn shared_key(verb: &str, headers: &[(&str, String)], resource: &str) -> io::Result<String> {
    let mut to_sign = format!("{verb}\n{}", "\n".repeat(11));
    for (name, value) in headers {
        to_sign.push_str(&format!("{name}:{value}\n"));
    }
    to_sign.push_str(resource);
    let key = BASE64.decode(ACCOUNT_KEY).map_err(io::Error::other)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(io::Error::other)?;
    mac.update(to_sign.as_bytes());
    let signature = BASE64.encode(mac.finalize().into_bytes());
    Ok(format!("SharedKey {ACCOUNT}:{signature}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signed requests are accepted (a container is created, a second create is refused as
    /// Azure would), and the node process is gone after drop.
    #[tokio::test]
    async fn starts_creates_containers_and_stops_by_pid() {
        let server = AzuriteServer::start().await.expect("start Azurite");
        server.create_container("testkit").await.expect("container");
        let again = server
            .create_container("testkit")
            .await
            .expect_err("a second create of the same container");
        assert!(
            again.to_string().contains("409"),
            "Azurite answers 409 Conflict: {again}"
        );
        assert!(
            server
                .env()
                .contains(&("AZURITE_BLOB_STORAGE_URL", server.blob_url()))
        );

        let pid = server.pid();
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).expect("running");
        assert_eq!(comm.trim(), "node", "the PID recorded is node's itself");
        drop(server);
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "Azurite is stopped by its PID"
        );
    }
}
