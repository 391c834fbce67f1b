//! A throwaway moto server (the AWS emulator) for tests of S3 and the other AWS APIs the
//! provider calls: started from `$LAKESTREAM_MOTO_SERVER` on 127.0.0.1 with a free port,
//! stopped by the PID of the process this handle started.
//!
//! moto does not check signatures, so any dummy credentials do; [`MotoServer::env`] gives the
//! variables an AWS client (or `object_store`, or `lakestream_control::Store`) needs to talk to
//! it instead of AWS. Also home to the small pieces every emulator here shares: a free port,
//! a process stopped by PID, and a minimal HTTP/1.1 client (an emulator is driven with a
//! handful of requests, which does not justify a full HTTP stack in the testkit).

use std::fs::File;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The variable `scripts/test` (through `ensure_moto` in `scripts/lib/tools.sh`) exports with
/// the path of the `moto_server` executable.
pub const MOTO_SERVER_VARIABLE: &str = "LAKESTREAM_MOTO_SERVER";

/// The region every test client uses; moto keeps state per region.
pub const REGION: &str = "us-east-1";

/// moto accepts any credentials, but an S3 request without an `Authorization` header is
/// anonymous and moto then refuses it (403) on existing objects; this dummy header makes the
/// testkit's own requests look like an authenticated client's.
const DUMMY_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";

/// A running moto server owned by one test. Dropping it stops the server.
#[derive(Debug)]
pub struct MotoServer {
    process: ServerProcess,
}

impl MotoServer {
    /// Starts `$LAKESTREAM_MOTO_SERVER -H 127.0.0.1 -p <free port>` with ECS services that
    /// reach running and AWS managed IAM policies loaded, and waits until it answers HTTP (one
    /// to two seconds). Fails, telling how to install moto, when the variable is not set.
    pub async fn start() -> io::Result<Self> {
        Self::start_with(&[]).await
    }

    /// Starts a server that checks credentials as AWS does (moto's IAM authentication from
    /// the first request): the dummy credentials of [`MotoServer::env`] are refused, so every
    /// call fails with AWS's "security token … is invalid" error. For tests of how access
    /// denied is reported.
    pub async fn start_denying() -> io::Result<Self> {
        Self::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]).await
    }

    async fn start_with(extra_env: &[(&str, &str)]) -> io::Result<Self> {
        let program = installed_program(MOTO_SERVER_VARIABLE, "ensure_moto")?;
        let process = ServerProcess::start("moto", |port, dir| {
            let mut command = Command::new(&program);
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_ECS_SERVICE_RUNNING", "1")
                .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
                .envs(extra_env.iter().copied())
                .current_dir(dir);
            command
        })
        .await?;
        Ok(Self { process })
    }

    /// `http://127.0.0.1:<port>`: every AWS service moto emulates answers here.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.process.port)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// The PID of the moto process, the one stopped on drop.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The server's output (requests and errors), useful when a test fails.
    pub fn log_path(&self) -> PathBuf {
        self.process.log_path()
    }

    /// Forgets every bucket, object and resource (`POST /moto-api/reset`), so one server can
    /// serve several tests one after the other.
    pub async fn reset(&self) -> io::Result<()> {
        let response = request(self.port(), "POST", "/moto-api/reset", &[]).await?;
        response.expect_success("reset moto")
    }

    /// From now on, checks every request's credentials and IAM policies as AWS does
    /// (`POST /moto-api/reset-auth`): set up users, roles and buckets first, then switch this
    /// on to test who is allowed what.
    pub async fn enforce_authentication(&self) -> io::Result<()> {
        let response = send(self.port(), "POST", "/moto-api/reset-auth", &[], b"0").await?;
        response.expect_success("switch on moto's authentication")
    }

    /// Creates an S3 bucket in [`REGION`]; tests create the buckets a store URL names before
    /// opening the store, as an operator would.
    pub async fn create_bucket(&self, name: &str) -> io::Result<()> {
        let response = request(
            self.port(),
            "PUT",
            &format!("/{name}"),
            &[("Authorization", DUMMY_AUTHORIZATION.to_owned())],
        )
        .await?;
        response.expect_success(&format!("create bucket {name}"))
    }

    /// Creates an ECS cluster, as an operator would before deploying runners on Fargate.
    pub async fn create_ecs_cluster(&self, name: &str) -> io::Result<()> {
        let body = format!(r#"{{"clusterName":"{name}"}}"#);
        let response = send(
            self.port(),
            "POST",
            "/",
            &[
                (
                    "Authorization",
                    DUMMY_AUTHORIZATION.replace("/s3/", "/ecs/"),
                ),
                (
                    "X-Amz-Target",
                    "AmazonEC2ContainerServiceV20141113.CreateCluster".to_owned(),
                ),
                ("Content-Type", "application/x-amz-json-1.1".to_owned()),
            ],
            body.as_bytes(),
        )
        .await?;
        response.expect_success(&format!("create ECS cluster {name}"))
    }

    /// A subnet and the default security group of moto's default VPC: ECS checks that the
    /// network settings of a service exist, as AWS does.
    pub async fn default_network(&self) -> io::Result<(String, String)> {
        let subnets = self.ec2("DescribeSubnets").await?;
        let groups = self.ec2("DescribeSecurityGroups").await?;
        let first = |xml: &str, tag: &str| {
            let open = format!("<{tag}>");
            xml.split(&open)
                .nth(1)
                .and_then(|rest| rest.split('<').next())
                .map(str::to_owned)
                .ok_or_else(|| io::Error::other(format!("no {tag} in moto's answer: {xml:.300}")))
        };
        Ok((first(&subnets, "subnetId")?, first(&groups, "groupId")?))
    }

    /// One EC2 Query API call without parameters; the XML answer.
    async fn ec2(&self, action: &str) -> io::Result<String> {
        let body = format!("Action={action}&Version=2016-11-15");
        let response = send(
            self.port(),
            "POST",
            "/",
            &[
                (
                    "Authorization",
                    DUMMY_AUTHORIZATION.replace("/s3/", "/ec2/"),
                ),
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded".to_owned(),
                ),
            ],
            body.as_bytes(),
        )
        .await?;
        if response.status != 200 {
            return Err(io::Error::other(format!(
                "EC2 {action}: HTTP {}: {}",
                response.status, response.body
            )));
        }
        Ok(response.body)
    }

    /// The environment an AWS client needs to use this server instead of AWS: dummy
    /// credentials, [`REGION`], no instance-metadata lookups, the endpoint, and plain HTTP
    /// allowed. Environment variables are process-wide: give them to a child process, or set
    /// them before anything reads them.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
    }
}

/// The executable named by `variable`, or an error telling how to install it: a missing
/// emulator is an installation problem to fix, not a reason to skip tests.
pub(crate) fn installed_program(variable: &str, installer: &str) -> io::Result<PathBuf> {
    let missing = |why: String| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{why}: run the tests through scripts/test, which installs the emulators, or \
                 export it first with `. scripts/lib/tools.sh && {installer}`"
            ),
        )
    };
    let program = std::env::var_os(variable)
        .map(PathBuf::from)
        .ok_or_else(|| missing(format!("{variable} is not set")))?;
    if program.is_file() {
        Ok(program)
    } else {
        Err(missing(format!(
            "{variable} names {}, which does not exist",
            program.display()
        )))
    }
}

/// An emulator process this process started, in its own temporary folder (its working
/// directory and log), on a port of 127.0.0.1. Dropping it kills exactly that PID.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    /// The started process; its PID is the one stopped.
    child: Child,
    /// The port the server listens on.
    pub(crate) port: u16,
    /// The server's working directory and `server.log`; removed after the process stops.
    dir: TempDir,
}

/// How many times a server start picks a new port when another process took the chosen one
/// between our probe and the server's bind.
const PORT_ATTEMPTS: usize = 5;

/// How long a server may take to answer its first request; they normally need one to three
/// seconds, more on a loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

impl ServerProcess {
    /// Starts the command `command(port, dir)` builds (with its output going to
    /// `dir/server.log`) on a free port and waits until it answers an HTTP request. A start
    /// that lost its port to another process is retried on another one.
    pub(crate) async fn start(
        name: &str,
        command: impl Fn(u16, &Path) -> Command,
    ) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("lakestream-{name}-"))
            .tempdir()?;
        let log_path = dir.path().join("server.log");
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let log = File::create(&log_path)?;
            let mut child = command(port, dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .map_err(|err| io::Error::new(err.kind(), format!("cannot start {name}: {err}")))?;
            match wait_until_ready(name, &mut child, port).await {
                Ok(()) => return Ok(ServerProcess { child, port, dir }),
                Err(err) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    let error = io::Error::new(err.kind(), format!("{err}\n{}", log.trim()));
                    if !(log.contains("in use") || log.contains("EADDRINUSE")) {
                        return Err(error);
                    }
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other(format!("{name} did not start"))))
    }

    /// The server's combined output.
    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The PID of the started process.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Polls until the server on `port` answers any HTTP request, failing early if it exits.
async fn wait_until_ready(name: &str, child: &mut Child, port: u16) -> io::Result<()> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::other(format!(
                "{name} exited during start-up on port {port} ({status})"
            )));
        }
        if request(port, "GET", "/", &[]).await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{name} did not answer on port {port} within {READY_TIMEOUT:?}"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for ServerProcess {
    /// Kills the recorded PID (never a process found by name) and reaps it, so the temporary
    /// folder is removed only after the server stopped writing to it.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago: bind port 0 on loopback and let the listener go.
pub(crate) fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// An HTTP response, as much of it as the testkit looks at.
#[derive(Debug)]
pub(crate) struct Response {
    /// The status code.
    pub(crate) status: u16,
    /// The body, as text (emulators answer errors in XML or JSON).
    pub(crate) body: String,
}

impl Response {
    /// `Ok` for a 2xx status, otherwise an error naming `what` with the status and body.
    pub(crate) fn expect_success(&self, what: &str) -> io::Result<()> {
        if (200..300).contains(&self.status) {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "{what}: HTTP {} {}",
                self.status,
                self.body.trim()
            )))
        }
    }
}

/// Sends one bodiless HTTP/1.1 request to 127.0.0.1:`port` and reads the whole response
/// (`Connection: close`, so the end of the stream ends the body).
pub(crate) async fn request(
    port: u16,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, String)],
) -> io::Result<Response> {
    send(port, method, path_and_query, headers, b"").await
}

/// Sends one HTTP/1.1 request with `body` to 127.0.0.1:`port` and reads the whole response.
pub(crate) async fn send(
    port: u16,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut head = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| text.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP response: {text:.200}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok(Response { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server answers S3 requests, forgets everything on reset, and its process and
    /// folder are gone after drop.
    #[tokio::test]
    async fn starts_resets_and_stops_by_pid() {
        let server = MotoServer::start().await.expect("start moto");
        server
            .create_bucket("testkit-bucket")
            .await
            .expect("bucket");
        let again = server.create_bucket("no").await;
        assert!(again.is_err(), "moto refuses a bucket name of two letters");
        let listing = request(
            server.port(),
            "GET",
            "/testkit-bucket",
            &[("Authorization", DUMMY_AUTHORIZATION.to_owned())],
        )
        .await
        .expect("list");
        assert_eq!(listing.status, 200, "{}", listing.body);
        server.reset().await.expect("reset");
        let gone = request(
            server.port(),
            "GET",
            "/testkit-bucket",
            &[("Authorization", DUMMY_AUTHORIZATION.to_owned())],
        )
        .await
        .expect("list after reset");
        assert_eq!(gone.status, 404, "{}", gone.body);
        assert!(
            server
                .env()
                .contains(&("AWS_ENDPOINT_URL", server.endpoint()))
        );

        let pid = server.pid();
        let dir = server.process.dir.path().to_path_buf();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(server);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "moto is stopped by its PID"
        );
        assert!(!dir.exists(), "the server's folder is removed on drop");
    }
}
