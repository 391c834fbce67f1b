//! Kubernetes code shared by the Kubernetes targets (`eks` now; AKS and GKE reuse it): a small
//! client for the few calls the provider makes, the runner's workload (a ServiceAccount and a
//! StatefulSet with one replica) built from typed settings, rollout waits and observation.
//!
//! A StatefulSet, not a Deployment: only a StatefulSet promises at most one pod at a time (a
//! Deployment may briefly run two during a node failure or a rollout), and two runners must
//! never consume one replication slot. Its rolling update stops the old pod before it starts
//! the new one.
//!
//! The client talks plain JSON over `reqwest` to an endpoint verified against the cluster's own
//! CA only, authenticating with a bearer token from a [`TokenSource`] (each cloud has its own:
//! a presigned STS URL on EKS). It needs no kubeconfig, exec plugin or cloud CLI, and the token
//! never leaves memory: not in state, plan, records or logs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lakestream_spec::error_chain;
use serde_json::{Value, json};
use tfplugin::async_trait;

use super::{DeployError, Observation};

/// The runner container's name.
const CONTAINER: &str = "runner";
/// The user and group the runner runs as (the image's non-root user).
const RUNNER_UID: i64 = 65532;
/// How long the runner gets to finish a flush after SIGTERM before it is killed.
const TERMINATION_GRACE_SECONDS: i64 = 60;
/// How often waits look at the cluster.
const POLL: Duration = Duration::from_secs(1);
/// How long one API call may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Replacements tried when an update loses a race with another writer (409 Conflict).
const CONFLICT_RETRIES: usize = 3;
/// The longest StatefulSet name: its pods' `controller-revision-hash` label
/// (`<name>-<10 characters>`) must fit a label value's 63 characters.
const MAX_NAME: usize = 52;

/// Label naming the runner; the StatefulSet's selector.
pub const RUNNER_LABEL: &str = "lakestream.io/runner";
/// Pod-template annotation changed to restart the runner (as `kubectl rollout restart` does).
pub const RESTARTED_AT: &str = "lakestream.io/restarted-at";

/// Where bearer tokens for a cluster come from. Tokens are short-lived, so one is asked for
/// each request.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A token valid now.
    async fn token(&self) -> Result<String, DeployError>;

    /// What to check when the API server refuses the token (401), in the cloud's terms.
    fn refused(&self) -> String;
}

/// An error answer of the API server (its `Status` object), or a failed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (HTTP {code}{})", if reason.is_empty() { String::new() } else { format!(" {reason}") })]
pub struct KubeError {
    /// The HTTP status; 0 when no answer came.
    pub code: u16,
    /// The `Status` reason (`NotFound`, `Invalid`, `Conflict` …).
    pub reason: String,
    /// The server's message, verbatim.
    pub message: String,
}

impl KubeError {
    fn transport(error: impl std::fmt::Display) -> Self {
        Self {
            code: 0,
            reason: String::new(),
            message: error.to_string(),
        }
    }
}

/// The kinds of object the provider writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// core/v1 ServiceAccount.
    ServiceAccount,
    /// apps/v1 StatefulSet.
    StatefulSet,
}

impl Kind {
    fn collection(self, namespace: &str) -> String {
        match self {
            Kind::ServiceAccount => format!("/api/v1/namespaces/{namespace}/serviceaccounts"),
            Kind::StatefulSet => format!("/apis/apps/v1/namespaces/{namespace}/statefulsets"),
        }
    }

    /// The kind's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::ServiceAccount => "ServiceAccount",
            Kind::StatefulSet => "StatefulSet",
        }
    }
}

/// A client for one cluster's API server.
#[derive(Clone)]
pub struct KubeClient {
    http: reqwest::Client,
    endpoint: String,
    token: Arc<dyn TokenSource>,
}

impl std::fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeClient")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl KubeClient {
    /// A client for `endpoint` (`https://…`) that trusts only `ca_pem` (the cluster's CA).
    pub fn new(
        endpoint: &str,
        ca_pem: &[u8],
        token: Arc<dyn TokenSource>,
    ) -> Result<Self, DeployError> {
        let certificates = reqwest::Certificate::from_pem_bundle(ca_pem).map_err(|err| {
            DeployError::new(format!("the cluster CA certificate is unusable: {err}"))
        })?;
        if certificates.is_empty() {
            return Err(DeployError::new(
                "the cluster CA certificate holds no PEM certificate",
            ));
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .https_only(true)
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10));
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
        let http = builder
            .build()
            .map_err(|err| DeployError::new(format!("building the Kubernetes client: {err}")))?;
        Ok(Self {
            http,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// One API call; `Ok(None)` for 404.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, KubeError> {
        let token = self
            .token
            .token()
            .await
            .map_err(|err| KubeError::transport(format!("no token for the cluster: {err}")))?;
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.endpoint))
            .bearer_auth(token)
            .header("Accept", "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|err| {
            KubeError::transport(format!(
                "{} unreachable: {}",
                self.endpoint,
                error_chain(&err)
            ))
        })?;
        let code = response.status();
        let text = response.text().await.map_err(KubeError::transport)?;
        if code == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        if code.is_success() {
            return parsed
                .map(Some)
                .ok_or_else(|| KubeError::transport(format!("not JSON: {text:.200}")));
        }
        let status = parsed.unwrap_or(Value::Null);
        let mut message = status["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{:.300}", text.trim()));
        if code == reqwest::StatusCode::UNAUTHORIZED {
            message = format!("{message}: {}", self.token.refused());
        }
        Err(KubeError {
            code: code.as_u16(),
            reason: status["reason"].as_str().unwrap_or_default().to_owned(),
            message,
        })
    }

    /// The object, or `None` when it does not exist.
    pub async fn get(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, KubeError> {
        self.call(
            reqwest::Method::GET,
            &format!("{}/{name}", kind.collection(namespace)),
            None,
        )
        .await
    }

    /// Whether the namespace exists.
    pub async fn namespace_exists(&self, namespace: &str) -> Result<bool, KubeError> {
        Ok(self
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/namespaces/{namespace}"),
                None,
            )
            .await?
            .is_some())
    }

    /// Creates `object`, or replaces the existing one with it (keeping nothing of the old one
    /// but what the server keeps: the provider owns these objects); returns the stored object.
    pub async fn apply(&self, kind: Kind, object: &Value) -> Result<Value, KubeError> {
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let collection = kind.collection(namespace);
        let mut attempts = 0;
        loop {
            let written = match self.get(kind, namespace, name).await? {
                None => {
                    self.call(reqwest::Method::POST, &collection, Some(object))
                        .await
                }
                Some(current) => {
                    let mut replacement = object.clone();
                    replacement["metadata"]["resourceVersion"] =
                        current["metadata"]["resourceVersion"].clone();
                    self.call(
                        reqwest::Method::PUT,
                        &format!("{collection}/{name}"),
                        Some(&replacement),
                    )
                    .await
                }
            };
            match written {
                Ok(Some(stored)) => return Ok(stored),
                // Someone else created or changed it between our read and our write.
                Err(err) if err.code == 409 && attempts < CONFLICT_RETRIES => attempts += 1,
                Ok(None) if attempts < CONFLICT_RETRIES => attempts += 1,
                Ok(None) => {
                    return Err(KubeError {
                        code: 404,
                        reason: "NotFound".into(),
                        message: format!(
                            "{} {namespace}/{name} vanished while being written",
                            kind.name()
                        ),
                    });
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Deletes the object (its dependents first when `foreground`); `false` when it did not
    /// exist.
    pub async fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        foreground: bool,
    ) -> Result<bool, KubeError> {
        let options = json!({
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": if foreground { "Foreground" } else { "Background" },
        });
        Ok(self
            .call(
                reqwest::Method::DELETE,
                &format!("{}/{name}", kind.collection(namespace)),
                Some(&options),
            )
            .await?
            .is_some())
    }

    /// The pods matching `selector`.
    pub async fn pods(
        &self,
        namespace: &str,
        selector: &BTreeMap<String, String>,
    ) -> Result<Vec<Value>, KubeError> {
        let selector: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let list = self
            .call(
                reqwest::Method::GET,
                &format!(
                    "/api/v1/namespaces/{namespace}/pods?labelSelector={}",
                    encode(&selector.join(","))
                ),
                None,
            )
            .await?
            .unwrap_or(Value::Null);
        Ok(list["items"].as_array().cloned().unwrap_or_default())
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// The runner's workload in a cluster: what its ServiceAccount and StatefulSet are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Name of both objects.
    pub name: String,
    /// Their namespace.
    pub namespace: String,
    /// The runner's id (its label and selector).
    pub runner_id: String,
    /// The runner image.
    pub image: String,
    /// The runner's environment.
    pub env: Vec<(String, String)>,
    /// CPU request and limit (a Kubernetes quantity).
    pub cpu: String,
    /// Memory request and limit (a Kubernetes quantity).
    pub memory: String,
    /// Whether the runner should run (one replica) or not (zero).
    pub running: bool,
    /// Annotations of the ServiceAccount (a cloud identity binding such as IRSA's role).
    pub service_account_annotations: BTreeMap<String, String>,
    /// Annotations of the pod template (a restart marker).
    pub pod_annotations: BTreeMap<String, String>,
}

impl Workload {
    /// The labels of every object and pod.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".into(), "streaming-runner".into()),
            (
                "app.kubernetes.io/managed-by".into(),
                "terraform-provider-streaming".into(),
            ),
            (RUNNER_LABEL.into(), self.runner_id.clone()),
        ])
    }

    /// The StatefulSet's selector (immutable once created).
    pub fn selector(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(RUNNER_LABEL.into(), self.runner_id.clone())])
    }

    /// The ServiceAccount: the runner's identity, and what a cloud binds its role to.
    pub fn service_account(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": self.labels(),
                "annotations": self.service_account_annotations,
            },
            // The runner never calls the Kubernetes API.
            "automountServiceAccountToken": false,
        })
    }

    /// The StatefulSet: one replica (zero when stopped) of the runner, with requests equal to
    /// limits (the Guaranteed QoS class, the last to be evicted under node pressure: an evicted
    /// runner stops streaming), non-root with a read-only root filesystem.
    pub fn stateful_set(&self) -> Value {
        let env: Vec<Value> = self
            .env
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
        let resources = json!({"cpu": self.cpu, "memory": self.memory});
        json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": self.labels(),
            },
            "spec": {
                "replicas": i64::from(self.running),
                // Required by older API servers; no Service is created, as the runner takes no
                // inbound traffic.
                "serviceName": self.name,
                "selector": {"matchLabels": self.selector()},
                "updateStrategy": {"type": "RollingUpdate"},
                "template": {
                    "metadata": {
                        "labels": self.labels(),
                        "annotations": self.pod_annotations,
                    },
                    "spec": {
                        "serviceAccountName": self.name,
                        "automountServiceAccountToken": false,
                        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                        "securityContext": {
                            "runAsNonRoot": true,
                            "runAsUser": RUNNER_UID,
                            "runAsGroup": RUNNER_UID,
                            // Lets the non-root runner read projected cloud identity tokens.
                            "fsGroup": RUNNER_UID,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [{
                            "name": CONTAINER,
                            "image": self.image,
                            "args": ["run"],
                            "env": env,
                            "resources": {"requests": resources, "limits": resources},
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }],
                    },
                },
            },
        })
    }
}

/// Where a StatefulSet's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// The controller has seen the latest spec and every wanted pod is updated and ready.
    pub done: bool,
    /// Ready pods.
    pub ready: i64,
    /// Wanted pods.
    pub wanted: i64,
    /// The state in words, for messages.
    pub summary: String,
}

/// Reads a StatefulSet's rollout from its status, as `kubectl rollout status` does.
pub fn rollout(stateful_set: &Value) -> Rollout {
    let number = |value: &Value| value.as_i64().unwrap_or(0);
    let (spec, status) = (&stateful_set["spec"], &stateful_set["status"]);
    let wanted = spec["replicas"].as_i64().unwrap_or(1);
    let generation = number(&stateful_set["metadata"]["generation"]);
    let observed = number(&status["observedGeneration"]);
    let ready = number(&status["readyReplicas"]);
    let updated = number(&status["updatedReplicas"]);
    let revisions_match = status["currentRevision"] == status["updateRevision"];
    let seen = observed >= generation;
    let done = seen
        && ready == wanted
        && number(&status["replicas"]) == wanted
        && (wanted == 0 || (updated == wanted && revisions_match));
    let summary = if !seen {
        "the StatefulSet controller has not seen the latest spec yet".to_owned()
    } else {
        format!("{ready}/{wanted} pods ready, {updated} updated")
    };
    Rollout {
        done,
        ready,
        wanted,
        summary,
    }
}

/// Why a pod is not ready, in the cluster's words (a waiting or terminated container's reason
/// and message, or the pod's condition), if it says.
pub fn pod_problem(pod: &Value) -> Option<String> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("pod");
    let status = &pod["status"];
    for container in status["containerStatuses"].as_array().into_iter().flatten() {
        if container["ready"] == true {
            continue;
        }
        let state = &container["state"];
        let (what, detail) = if state["waiting"].is_object() {
            ("waiting", &state["waiting"])
        } else if state["terminated"].is_object() {
            ("terminated", &state["terminated"])
        } else {
            continue;
        };
        let reason = detail["reason"].as_str().unwrap_or(what);
        return Some(match detail["message"].as_str() {
            Some(message) => format!("pod {name}: {reason}: {message}"),
            None => format!("pod {name}: {reason}"),
        });
    }
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["status"] == "False" && c["message"].is_string())
        .map(|c| format!("pod {name}: {}", c["message"].as_str().unwrap_or_default()))
        .or_else(|| {
            status["message"]
                .as_str()
                .map(|message| format!("pod {name}: {message}"))
        })
}

fn failed(what: &str, err: KubeError) -> DeployError {
    DeployError::new(format!("{what}: {err}"))
}

impl KubeClient {
    /// Creates or updates the workload's ServiceAccount and StatefulSet in an existing
    /// namespace, then waits (within `timeout`) until the rollout is done; returns the
    /// StatefulSet as written.
    pub async fn deploy(
        &self,
        workload: &Workload,
        timeout: Duration,
    ) -> Result<Value, DeployError> {
        let at = format!("namespace {}", workload.namespace);
        let exists = self
            .namespace_exists(&workload.namespace)
            .await
            .map_err(|err| failed(&format!("reading {at}"), err))?;
        if !exists {
            return Err(DeployError::new(format!(
                "{at} does not exist in the cluster; create it first or choose another namespace"
            )));
        }
        let place = format!("{}/{}", workload.namespace, workload.name);
        self.apply(Kind::ServiceAccount, &workload.service_account())
            .await
            .map_err(|err| failed(&format!("writing ServiceAccount {place}"), err))?;
        let stored = self
            .apply(Kind::StatefulSet, &workload.stateful_set())
            .await
            .map_err(|err| failed(&format!("writing StatefulSet {place}"), err))?;
        self.wait_rollout(workload, timeout).await?;
        Ok(stored)
    }

    /// Waits until the StatefulSet's rollout is done; a timeout names the pods' problem.
    pub async fn wait_rollout(
        &self,
        workload: &Workload,
        timeout: Duration,
    ) -> Result<(), DeployError> {
        let place = format!("{}/{}", workload.namespace, workload.name);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let current = self
                .get(Kind::StatefulSet, &workload.namespace, &workload.name)
                .await
                .map_err(|err| failed(&format!("reading StatefulSet {place}"), err))?
                .ok_or_else(|| {
                    DeployError::new(format!("StatefulSet {place} vanished during its rollout"))
                })?;
            let state = rollout(&current);
            if state.done {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let problem = self
                    .problem(workload)
                    .await
                    .map(|p| format!("; {p}"))
                    .unwrap_or_default();
                return Err(DeployError::new(format!(
                    "StatefulSet {place} did not roll out within {timeout:?} ({}{problem})",
                    state.summary
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The first problem the workload's pods report, if any.
    pub async fn problem(&self, workload: &Workload) -> Option<String> {
        let pods = self
            .pods(&workload.namespace, &workload.selector())
            .await
            .ok()?;
        pods.iter().find_map(pod_problem)
    }

    /// What the cluster says about the workload: running when a pod is ready.
    pub async fn observe(&self, workload: &Workload) -> Observation {
        let place = format!("{}/{}", workload.namespace, workload.name);
        let current = match self
            .get(Kind::StatefulSet, &workload.namespace, &workload.name)
            .await
        {
            Ok(Some(current)) => current,
            Ok(None) => {
                return Observation {
                    running: false,
                    reason: format!("StatefulSet {place} no longer exists"),
                };
            }
            Err(err) => {
                return Observation {
                    running: false,
                    reason: format!("reading StatefulSet {place}: {err}"),
                };
            }
        };
        let state = rollout(&current);
        if state.ready >= 1 {
            return Observation {
                running: true,
                reason: format!("StatefulSet {place}: {}", state.summary),
            };
        }
        if state.wanted == 0 {
            return Observation {
                running: false,
                reason: format!("StatefulSet {place} is scaled to zero"),
            };
        }
        let problem = self
            .problem(workload)
            .await
            .map(|p| format!("; {p}"))
            .unwrap_or_default();
        Observation {
            running: false,
            reason: format!("StatefulSet {place}: {}{problem}", state.summary),
        }
    }

    /// Deletes the StatefulSet (waiting, within `timeout`, until its pod is gone, so no runner
    /// outlives it) and then the ServiceAccount; what is already gone is fine.
    pub async fn remove(&self, workload: &Workload, timeout: Duration) -> Result<(), DeployError> {
        let (namespace, name) = (&workload.namespace, &workload.name);
        let place = format!("{namespace}/{name}");
        self.delete(Kind::StatefulSet, namespace, name, true)
            .await
            .map_err(|err| failed(&format!("deleting StatefulSet {place}"), err))?;
        let deadline = tokio::time::Instant::now() + timeout;
        while self
            .get(Kind::StatefulSet, namespace, name)
            .await
            .map_err(|err| failed(&format!("reading StatefulSet {place}"), err))?
            .is_some()
        {
            if tokio::time::Instant::now() >= deadline {
                return Err(DeployError::new(format!(
                    "StatefulSet {place} was still terminating its pod after {timeout:?}"
                )));
            }
            tokio::time::sleep(POLL).await;
        }
        self.delete(Kind::ServiceAccount, namespace, name, false)
            .await
            .map_err(|err| failed(&format!("deleting ServiceAccount {place}"), err))?;
        Ok(())
    }
}

/// The name of a runner's objects: `lakestream-<runner id>`, with `_` (not allowed in
/// Kubernetes names) as `-`, shortened in the middle to fit a StatefulSet name while keeping
/// the id's random suffix, so names stay unique.
pub fn object_name(runner_id: &str) -> String {
    let id = runner_id.replace('_', "-");
    let full = format!("lakestream-{id}");
    if full.len() <= MAX_NAME {
        return full;
    }
    let (head, suffix) = id.rsplit_once('-').unwrap_or(("", id.as_str()));
    let room = MAX_NAME - "lakestream-".len() - suffix.len() - 1;
    let head = head[..room.min(head.len())].trim_end_matches('-');
    format!("lakestream-{head}-{suffix}")
}

/// Checks a Kubernetes quantity (`500m`, `2`, `1.5Gi`, `512Mi`) as the API server does, and that
/// it is above zero; `what` names the resource in the message.
pub fn quantity(text: &str, what: &str) -> Result<(), String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let value: Option<f64> = if number.matches('.').count() <= 1 {
        number.parse().ok()
    } else {
        None
    };
    let suffix_valid = match suffix {
        "" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti"
        | "Pi" | "Ei" => true,
        _ => suffix
            .strip_prefix(['e', 'E'])
            .map(|exponent| exponent.strip_prefix(['+', '-']).unwrap_or(exponent))
            .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())),
    };
    let (Some(value), true) = (value, suffix_valid) else {
        return Err(format!(
            "{text:?} is not a Kubernetes quantity; write e.g. {}",
            if what == "cpu" {
                "\"500m\" (half a CPU) or \"2\""
            } else {
                "\"512Mi\" or \"2Gi\""
            }
        ));
    };
    if value <= 0.0 {
        return Err(format!("{text:?}: the {what} must be more than zero"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> Workload {
        Workload {
            name: object_name("orders-4k2m9q"),
            namespace: "lakestream".into(),
            runner_id: "orders-4k2m9q".into(),
            image: "ghcr.io/lakestream/streaming-runner:0.1.0".into(),
            env: vec![
                ("LAKESTREAM_RUNNER_ID".into(), "orders-4k2m9q".into()),
                ("LAKESTREAM_LOG_FORMAT".into(), "json".into()),
            ],
            cpu: "500m".into(),
            memory: "1Gi".into(),
            running: true,
            service_account_annotations: BTreeMap::from([(
                "eks.amazonaws.com/role-arn".into(),
                "arn:aws:iam::123456789012:role/runner".into(),
            )]),
            pod_annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn kubernetes_objects_run_one_locked_down_runner() {
        let sts = workload().stateful_set();
        assert_eq!(sts["spec"]["replicas"], 1);
        assert_eq!(
            sts["spec"]["selector"]["matchLabels"][RUNNER_LABEL],
            "orders-4k2m9q"
        );
        let pod = &sts["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        assert_eq!(container["args"], json!(["run"]));
        assert_eq!(
            container["resources"]["requests"],
            container["resources"]["limits"]
        );
        assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["serviceAccountName"], "lakestream-orders-4k2m9q");
        assert_eq!(
            container["env"][1],
            json!({"name": "LAKESTREAM_LOG_FORMAT", "value": "json"})
        );
        let stopped = Workload {
            running: false,
            ..workload()
        };
        assert_eq!(stopped.stateful_set()["spec"]["replicas"], 0);
        let account = workload().service_account();
        assert_eq!(
            account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
            "arn:aws:iam::123456789012:role/runner"
        );
    }

    #[test]
    fn kubernetes_names_fit_and_stay_unique() {
        assert_eq!(object_name("orders-4k2m9q"), "lakestream-orders-4k2m9q");
        assert_eq!(object_name("a_b-4k2m9q"), "lakestream-a-b-4k2m9q");
        let long = object_name(&format!("{}-4k2m9q", "x".repeat(41)));
        assert_eq!(long.len(), MAX_NAME);
        assert!(long.ends_with("-4k2m9q"), "{long}");
    }

    #[test]
    fn kubernetes_quantities_follow_the_api_servers_rule() {
        for good in ["500m", "2", "0.5", "1Gi", "512Mi", "1e3", "1.5G", "100k"] {
            assert!(quantity(good, "cpu").is_ok(), "{good}");
        }
        for bad in [
            "", "abc", "1GB", "1 Gi", "-1", "1.2.3", "Gi", "1mi", "0", "1e",
        ] {
            assert!(quantity(bad, "memory").is_err(), "{bad}");
        }
        assert_eq!(
            quantity("1GB", "memory").unwrap_err(),
            "\"1GB\" is not a Kubernetes quantity; write e.g. \"512Mi\" or \"2Gi\""
        );
    }

    #[test]
    fn kubernetes_rollouts_and_pod_problems_read_like_kubectl() {
        let mut sts = workload().stateful_set();
        sts["metadata"]["generation"] = json!(2);
        sts["status"] = json!({"observedGeneration": 1, "replicas": 1, "readyReplicas": 1});
        assert!(!rollout(&sts).done, "an unobserved spec is not rolled out");
        sts["status"] = json!({"observedGeneration": 2, "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1, "currentRevision": "a", "updateRevision": "b"});
        assert!(!rollout(&sts).done, "revisions differ mid-rollout");
        sts["status"]["currentRevision"] = json!("b");
        assert!(rollout(&sts).done);
        let pod = json!({"metadata": {"name": "x-0"}, "status": {"containerStatuses": [{"ready": false, "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"nope\""}}}]}});
        assert_eq!(
            pod_problem(&pod).unwrap(),
            "pod x-0: ImagePullBackOff: Back-off pulling image \"nope\""
        );
        let unschedulable = json!({"metadata": {"name": "x-0"}, "status": {"conditions": [{"type": "PodScheduled", "status": "False", "message": "0/3 nodes are available: 3 Insufficient cpu."}]}});
        assert_eq!(
            pod_problem(&unschedulable).unwrap(),
            "pod x-0: 0/3 nodes are available: 3 Insufficient cpu."
        );
    }
}
