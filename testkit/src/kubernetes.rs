//! A throwaway strict Kubernetes API fake (`python/kube_fake.py`) for the tests of the
//! provider's Kubernetes targets: no real API server can be installed where the tests run.
//!
//! The fake keeps namespaces, ServiceAccounts, StatefulSets and the pods a StatefulSet
//! controller would make, validates every object written against the official strict schemas
//! of PyPI `kubernetes-validate` and the API server's own rules, and answers errors with the
//! real server's `Status` bodies. It serves HTTPS with a certificate from a throwaway CA
//! ([`KubeFake::ca_pem`], what EKS's `DescribeCluster` hands out as the cluster CA), and
//! requires a bearer token: a fixed one, or an EKS token whose presigned-STS signature it
//! verifies with the (dummy) secret key. Plain HTTP on the same port serves only the test-only
//! endpoints used by [`KubeFake::objects`], [`KubeFake::set_status`] and
//! [`KubeFake::set_pod_status`].

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::moto::{ServerProcess, installed_program, send};

/// The variable `scripts/test` (through `ensure_kube_fake` in `scripts/lib/tools.sh`) exports
/// with the Python interpreter that has `kubernetes-validate`.
pub const KUBE_FAKE_PYTHON_VARIABLE: &str = "LAKESTREAM_KUBE_FAKE_PYTHON";

/// How the fake authenticates API requests.
#[derive(Debug, Clone)]
pub enum KubeAuth {
    /// `Authorization: Bearer <token>` with exactly this token.
    Token(String),
    /// An EKS token (`k8s-aws-v1.` + a presigned STS `GetCallerIdentity` URL) for `cluster`,
    /// whose SigV4 signature verifies with `secret_access_key`.
    Eks {
        /// The cluster name the token must be signed for (`x-k8s-aws-id`).
        cluster: String,
        /// The secret key of the (dummy) credentials the client signs with.
        secret_access_key: String,
    },
}

/// What a fake starts with.
#[derive(Debug, Clone)]
pub struct KubeFakeOptions {
    auth: KubeAuth,
    namespaces: Vec<String>,
    ready_after: Option<Duration>,
}

impl KubeFakeOptions {
    /// A fake requiring `token`; rollouts complete 300 ms after each change.
    pub fn token(token: &str) -> Self {
        Self::with(KubeAuth::Token(token.to_owned()))
    }

    /// A fake requiring EKS tokens for `cluster` signed with `secret_access_key`; rollouts
    /// complete 300 ms after each change.
    pub fn eks(cluster: &str, secret_access_key: &str) -> Self {
        Self::with(KubeAuth::Eks {
            cluster: cluster.to_owned(),
            secret_access_key: secret_access_key.to_owned(),
        })
    }

    fn with(auth: KubeAuth) -> Self {
        Self {
            auth,
            namespaces: Vec::new(),
            ready_after: Some(Duration::from_millis(300)),
        }
    }

    /// Adds a namespace besides `default`, `kube-system`, `kube-public` and `kube-node-lease`.
    pub fn namespace(mut self, name: &str) -> Self {
        self.namespaces.push(name.to_owned());
        self
    }

    /// Rollouts never complete by themselves: a StatefulSet's readiness changes only through
    /// [`KubeFake::set_status`] and [`KubeFake::set_pod_status`].
    pub fn manual_rollout(mut self) -> Self {
        self.ready_after = None;
        self
    }

    /// Rollouts complete `delay` after each change of a StatefulSet's spec.
    pub fn ready_after(mut self, delay: Duration) -> Self {
        self.ready_after = Some(delay);
        self
    }
}

/// A running Kubernetes API fake owned by one test. Dropping it stops the server.
#[derive(Debug)]
pub struct KubeFake {
    process: ServerProcess,
    ca_pem: String,
    /// The CA and server certificate and key the fake was started with.
    _certificates: TempDir,
}

impl KubeFake {
    /// Starts `python/kube_fake.py` under `$LAKESTREAM_KUBE_FAKE_PYTHON` on 127.0.0.1 with a
    /// free port and a fresh certificate, and waits until it answers. Fails, telling how to
    /// install it, when the variable is not set.
    pub async fn start(options: KubeFakeOptions) -> io::Result<Self> {
        let python = installed_program(KUBE_FAKE_PYTHON_VARIABLE, "ensure_kube_fake")?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/kube_fake.py");
        let certificates = tempfile::Builder::new()
            .prefix("lakestream-kube-certs-")
            .tempdir()?;
        let ca_pem = write_certificates(certificates.path())?;
        let (cert, key) = (
            certificates.path().join("server.crt"),
            certificates.path().join("server.key"),
        );
        let process = ServerProcess::start("kube-fake", |port, dir| {
            let mut command = Command::new(&python);
            command
                .arg(&script)
                .args(["--port", &port.to_string()])
                .arg("--tls-cert")
                .arg(&cert)
                .arg("--tls-key")
                .arg(&key)
                .current_dir(dir);
            match &options.auth {
                KubeAuth::Token(token) => {
                    command.args(["--token", token]);
                }
                KubeAuth::Eks {
                    cluster,
                    secret_access_key,
                } => {
                    command.args([
                        "--eks-cluster",
                        cluster,
                        "--aws-secret-key",
                        secret_access_key,
                    ]);
                }
            }
            for namespace in &options.namespaces {
                command.args(["--namespace", namespace]);
            }
            if let Some(delay) = options.ready_after {
                command.args(["--ready-after", &delay.as_secs_f64().to_string()]);
            }
            command
        })
        .await?;
        Ok(Self {
            process,
            ca_pem,
            _certificates: certificates,
        })
    }

    /// `https://127.0.0.1:<port>`, the API server's URL.
    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.process.port)
    }

    /// The PEM of the CA that signed the fake's certificate (the cluster CA).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// The PID of the fake's process, the one stopped on drop.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The fake's output (one line per request, rejected tokens with the reason).
    pub fn log_path(&self) -> PathBuf {
        self.process.log_path()
    }

    /// Every stored object of `plural` (`serviceaccounts`, `statefulsets`, `pods`) in every
    /// namespace, as the API server holds it.
    pub async fn objects(&self, plural: &str) -> io::Result<Vec<Value>> {
        let document = self
            .admin("GET", &format!("/fake/objects/{plural}"), None)
            .await?;
        Ok(document["items"].as_array().cloned().unwrap_or_default())
    }

    /// Merges `status` into the StatefulSet's status (as its controller would write it), where
    /// it stays until the StatefulSet's spec changes; returns the StatefulSet.
    pub async fn set_status(
        &self,
        namespace: &str,
        name: &str,
        status: &Value,
    ) -> io::Result<Value> {
        self.admin(
            "POST",
            &format!("/fake/statefulsets/{namespace}/{name}/status"),
            Some(status),
        )
        .await
    }

    /// Replaces a pod's status (as the kubelet would report it); returns the pod.
    pub async fn set_pod_status(
        &self,
        namespace: &str,
        pod: &str,
        status: &Value,
    ) -> io::Result<Value> {
        self.admin(
            "POST",
            &format!("/fake/pods/{namespace}/{pod}/status"),
            Some(status),
        )
        .await
    }

    async fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> io::Result<Value> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let response = send(
            self.port(),
            method,
            path,
            &[("Content-Type", "application/json".to_owned())],
            body.as_bytes(),
        )
        .await?;
        response.expect_success(&format!("{method} {path}"))?;
        serde_json::from_str(&response.body).map_err(io::Error::other)
    }
}

/// Writes a fresh CA and a server certificate for 127.0.0.1 signed by it into `dir`
/// (`server.crt`, `server.key`); returns the CA's PEM.
fn write_certificates(dir: &Path) -> io::Result<String> {
    let ca_key = rcgen::KeyPair::generate().map_err(io::Error::other)?;
    let mut ca_params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(io::Error::other)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "lakestream-testkit kubernetes CA",
    );
    let ca_cert = ca_params.self_signed(&ca_key).map_err(io::Error::other)?;
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let server_key = rcgen::KeyPair::generate().map_err(io::Error::other)?;
    let mut server_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).map_err(io::Error::other)?;
    server_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kube-apiserver");
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .map_err(io::Error::other)?;
    std::fs::write(dir.join("server.crt"), server_cert.pem())?;
    std::fs::write(dir.join("server.key"), server_key.serialize_pem())?;
    Ok(ca_cert.pem())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::moto::request;

    /// The fake answers its test-only endpoints over plain HTTP, refuses the API over plain
    /// HTTP (the API is HTTPS only), knows of no objects yet, and is stopped by its PID.
    #[tokio::test]
    async fn kube_fake_starts_serves_test_endpoints_and_stops_by_pid() {
        let fake = KubeFake::start(KubeFakeOptions::token("t0ken").namespace("lakestream"))
            .await
            .expect("start the Kubernetes fake");
        assert!(fake.endpoint().starts_with("https://127.0.0.1:"));
        assert!(fake.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(fake.objects("statefulsets").await.unwrap().is_empty());
        assert!(fake.objects("serviceaccounts").await.unwrap().is_empty());
        let missing = fake
            .set_status(
                "default",
                "nothing",
                &serde_json::json!({"readyReplicas": 1}),
            )
            .await
            .unwrap_err();
        assert!(missing.to_string().contains("404"), "{missing}");
        let plain = request(fake.port(), "GET", "/api/v1/namespaces/default", &[])
            .await
            .unwrap();
        assert_eq!(plain.status, 400);
        assert!(plain.body.contains("HTTP request to an HTTPS server"));

        let pid = fake.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(fake);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "the fake is stopped by its PID"
        );
    }
}
