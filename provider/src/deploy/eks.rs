//! `eks`: the runner as a one-replica StatefulSet in an existing EKS cluster.
//!
//! The provider finds the cluster's endpoint and CA with `DescribeCluster` (or takes them from
//! the block, for private endpoints reached through a proxy and for tests), authenticates with
//! an EKS token made from its own AWS credentials, and creates in the namespace a ServiceAccount
//! (annotated with an IRSA role when one is given) and the StatefulSet; everything Kubernetes
//! is in [`super::kubernetes`], shared with the other Kubernetes targets. Destroy removes both.
//! The namespace must exist: the provider neither creates nor deletes namespaces, which other
//! workloads may share.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine;
use serde::{Deserialize, Serialize};
use tfplugin::plan_modifier::{requires_replace, use_state_for_unknown};
use tfplugin::validator::{custom, regex};
use tfplugin::{Attribute, Block, NestedBlock, async_trait};

use super::kubernetes::{self, KubeClient, RESTARTED_AT, TokenSource, Workload};
use super::{Applied, DeployError, Deployment, Observation, RunnerTarget, error, read_record};
use crate::aws::{AwsClients, error_text};

/// The namespace when none is given: it exists in every cluster.
pub const DEFAULT_NAMESPACE: &str = "default";
/// Default CPU request and limit.
pub const DEFAULT_CPU: &str = "500m";
/// Default memory request and limit.
pub const DEFAULT_MEMORY: &str = "1Gi";
/// The ServiceAccount annotation that binds an IAM role to the pod (IRSA).
pub const ROLE_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// How EKS tokens start.
const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// How long the presigned URL inside a token is valid (what `aws eks get-token` uses).
const TOKEN_EXPIRY: Duration = Duration::from_secs(60);
/// How long destroy waits for the runner's pod to terminate.
const DESTROY_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The `eks` block as Terraform holds it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EksBlock {
    /// `cluster_name`.
    pub cluster_name: String,
    /// `namespace`.
    pub namespace: Option<String>,
    /// `service_account_role_arn`.
    pub service_account_role_arn: Option<String>,
    /// `cpu`.
    pub cpu: Option<String>,
    /// `memory`.
    pub memory: Option<String>,
    /// `image`.
    pub image: Option<String>,
    /// `endpoint` (override).
    pub endpoint: Option<String>,
    /// `cluster_ca_certificate` (override).
    pub cluster_ca_certificate: Option<String>,
    /// `stateful_set` (computed).
    pub stateful_set: Option<String>,
    /// `service_account` (computed).
    pub service_account: Option<String>,
}

impl EksBlock {
    /// The deployment settings, defaults filled in.
    pub fn settings(&self) -> EksSettings {
        EksSettings {
            cluster_name: self.cluster_name.clone(),
            namespace: self
                .namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
            service_account_role_arn: self.service_account_role_arn.clone(),
            cpu: self.cpu.clone().unwrap_or_else(|| DEFAULT_CPU.into()),
            memory: self.memory.clone().unwrap_or_else(|| DEFAULT_MEMORY.into()),
            image: self
                .image
                .clone()
                .unwrap_or_else(super::fargate::default_image),
            endpoint: self.endpoint.clone(),
            cluster_ca_certificate: self.cluster_ca_certificate.clone(),
        }
    }

    /// The block as a record describes it (refresh and import).
    pub fn from_record(record: &serde_json::Value) -> Self {
        let record: EksRecord = serde_json::from_value(record.clone()).unwrap_or_default();
        let settings = record.settings;
        Self {
            cluster_name: settings.cluster_name,
            namespace: Some(settings.namespace),
            service_account_role_arn: settings.service_account_role_arn,
            cpu: Some(settings.cpu),
            memory: Some(settings.memory),
            image: Some(settings.image),
            endpoint: settings.endpoint,
            cluster_ca_certificate: settings.cluster_ca_certificate,
            stateful_set: Some(record.name.clone()),
            service_account: Some(record.name),
        }
    }
}

/// The `eks` block's schema.
pub fn block() -> NestedBlock {
    let quantity = |name: &'static str, default: &str, example: &str| {
        Attribute::string(name)
            .optional()
            .computed()
            .default(default)
            .description(format!(
                "The runner's {name} request, also its limit (a Kubernetes quantity such as `{example}`). Changing it rolls the pod."
            ))
            .validator(custom("a Kubernetes quantity above zero", move |request| {
                match request.value.as_str() {
                    Some(text) => kubernetes::quantity(text, name)
                        .map_err(|message| format!("{}: {message}", request.path)),
                    None => Ok(()),
                }
            }))
    };
    let computed = |name: &str, description: &str| {
        Attribute::string(name)
            .computed()
            .description(description)
            .plan_modifier(use_state_for_unknown())
    };
    NestedBlock::single(
        "eks",
        Block::new()
            .description(
                "Runs the runner in an existing EKS cluster as a StatefulSet with one replica (Kubernetes promises at most \
                 one pod only for StatefulSets), with its own ServiceAccount. The provider reads the cluster's endpoint and \
                 CA with `DescribeCluster` and authenticates with an EKS token from its AWS credentials, which must be \
                 allowed into the cluster (an access entry or the `aws-auth` ConfigMap). Requests equal limits, so the pod \
                 is in the Guaranteed QoS class; it runs as a non-root user with a read-only root filesystem.",
            )
            .attribute(
                Attribute::string("cluster_name")
                    .required()
                    .description("The EKS cluster's name.")
                    .validator(regex(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$", "must be an EKS cluster name (letters, digits, - and _, at most 100)"))
                    .plan_modifier(requires_replace()),
            )
            .attribute(
                Attribute::string("namespace")
                    .optional()
                    .computed()
                    .default(DEFAULT_NAMESPACE)
                    .description("An existing namespace for the runner's objects; the provider neither creates nor deletes it.")
                    .validator(regex(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", "must be a Kubernetes namespace name (lower-case letters, digits and -, at most 63)"))
                    .plan_modifier(requires_replace()),
            )
            .attribute(
                Attribute::string("service_account_role_arn")
                    .optional()
                    .description(
                        "An IAM role for the runner through IRSA (the ServiceAccount's `eks.amazonaws.com/role-arn` annotation); \
                         its trust policy must allow the cluster's OIDC provider and this ServiceAccount. It needs the control \
                         store, the lake and the secrets of the pipeline. For EKS Pod Identity instead, associate the role with \
                         `service_account` (`aws_eks_pod_identity_association`). Changing it restarts the pod.",
                    )
                    .validator(regex(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$", "must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)")),
            )
            .attribute(quantity("cpu", DEFAULT_CPU, "500m"))
            .attribute(quantity("memory", DEFAULT_MEMORY, "1Gi"))
            .attribute(
                Attribute::string("image")
                    .optional()
                    .computed()
                    .description("The runner image; by default `ghcr.io/lakestream/streaming-runner:<provider version>`. Changing it rolls the pod.")
                    .plan_modifier(use_state_for_unknown()),
            )
            .attribute(
                Attribute::string("endpoint")
                    .optional()
                    .description("The API server's URL instead of the one `DescribeCluster` reports (a private endpoint reached through a proxy).")
                    .validator(regex(r"^https://[^\s/]+(/\S*)?$", "must be an https:// URL")),
            )
            .attribute(
                Attribute::string("cluster_ca_certificate")
                    .optional()
                    .description("The cluster CA to trust instead of the one `DescribeCluster` reports.")
                    .validator(custom("PEM, or base64-encoded PEM as EKS reports it", |request| match request.value.as_str() {
                        Some(text) => ca_pem(text).map(|_| ()).map_err(|message| format!("{}: {message}", request.path)),
                        None => Ok(()),
                    })),
            )
            .attribute(computed("stateful_set", "The StatefulSet's name (in `namespace`)."))
            .attribute(computed("service_account", "The ServiceAccount's name (in `namespace`), for an IAM role's trust policy or a Pod Identity association.")),
    )
}

/// The PEM bytes of a CA given as PEM or as base64-encoded PEM.
pub fn ca_pem(text: &str) -> Result<Vec<u8>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    let pem = if text.trim_start().starts_with(BEGIN) {
        text.as_bytes().to_vec()
    } else {
        let compact: String = text.split_whitespace().collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|_| format!("neither PEM (starting with {BEGIN}) nor base64"))?
    };
    if !String::from_utf8_lossy(&pem)
        .trim_start()
        .starts_with(BEGIN)
    {
        return Err(format!("the decoded text does not start with {BEGIN}"));
    }
    Ok(pem)
}

/// The `eks` block's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EksSettings {
    /// The cluster's name.
    pub cluster_name: String,
    /// The namespace of the runner's objects.
    pub namespace: String,
    /// The IRSA role, if any.
    pub service_account_role_arn: Option<String>,
    /// CPU request and limit.
    pub cpu: String,
    /// Memory request and limit.
    pub memory: String,
    /// The runner image.
    pub image: String,
    /// API server URL override.
    pub endpoint: Option<String>,
    /// Cluster CA override (PEM or base64 PEM).
    pub cluster_ca_certificate: Option<String>,
}

/// What an EKS deployment created, kept in `runner.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EksRecord {
    /// The settings applied.
    pub settings: EksSettings,
    /// The runner's id.
    pub runner_id: String,
    /// The control store URL the runner is given.
    pub control_store: String,
    /// The name of the ServiceAccount and the StatefulSet.
    pub name: String,
    /// When a restart was last asked for (the pod template's annotation).
    pub restarted_at: Option<String>,
}

/// The EKS target with the settings of one `eks` block.
pub struct Eks {
    settings: EksSettings,
    clients: Arc<AwsClients>,
}

impl Eks {
    /// The target for an `eks` block.
    pub fn new(settings: EksSettings, clients: Arc<AwsClients>) -> Self {
        Self { settings, clients }
    }

    /// The target that created `record`.
    pub fn from_record(
        record: &serde_json::Value,
        clients: Arc<AwsClients>,
    ) -> Result<Self, DeployError> {
        let record: EksRecord = read_record("eks", record)?;
        Ok(Self {
            settings: record.settings,
            clients,
        })
    }

    /// A client for the cluster's API server, or `None` when the cluster does not exist.
    async fn connect(&self) -> Result<Option<KubeClient>, DeployError> {
        let name = &self.settings.cluster_name;
        let region = self.clients.region();
        let described = match self.clients.eks.describe_cluster().name(name).send().await {
            Ok(described) => described,
            Err(err) if error_text(&err).starts_with("ResourceNotFoundException") => {
                return Ok(None);
            }
            Err(err) => {
                return Err(error(
                    &format!("describing EKS cluster {name:?} in {region}"),
                    error_text(&err),
                ));
            }
        };
        let cluster = described
            .cluster()
            .ok_or_else(|| DeployError::new(format!("EKS described no cluster {name:?}")))?;
        let status = cluster.status().map(|s| s.as_str()).unwrap_or("UNKNOWN");
        if !matches!(status, "ACTIVE" | "UPDATING") {
            return Err(DeployError::new(format!(
                "EKS cluster {name:?} is {status}, not ACTIVE"
            )));
        }
        let endpoint = match (&self.settings.endpoint, cluster.endpoint()) {
            (Some(endpoint), _) => endpoint.clone(),
            (None, Some(endpoint)) => endpoint.to_owned(),
            (None, None) => {
                return Err(DeployError::new(format!(
                    "EKS cluster {name:?} reports no API endpoint"
                )));
            }
        };
        let ca = match self
            .settings
            .cluster_ca_certificate
            .as_deref()
            .or_else(|| cluster.certificate_authority().and_then(|ca| ca.data()))
        {
            Some(text) => ca_pem(text)
                .map_err(|message| error(&format!("the CA of EKS cluster {name:?}"), message))?,
            None => {
                return Err(DeployError::new(format!(
                    "EKS cluster {name:?} reports no CA certificate"
                )));
            }
        };
        let credentials = self
            .clients
            .config
            .credentials_provider()
            .ok_or_else(|| DeployError::new("no AWS credentials to make an EKS token with"))?;
        let token = Arc::new(EksToken::new(name, &region, credentials));
        KubeClient::new(&endpoint, &ca, token).map(Some)
    }

    /// A client, or an error naming the missing cluster.
    async fn require(&self) -> Result<KubeClient, DeployError> {
        self.connect().await?.ok_or_else(|| {
            DeployError::new(format!(
                "EKS cluster {:?} not found in {}",
                self.settings.cluster_name,
                self.clients.region()
            ))
        })
    }

    fn workload(&self, record: &EksRecord, running: bool) -> Workload {
        let region = self.clients.region();
        let env = [
            ("LAKESTREAM_CONTROL_STORE", record.control_store.as_str()),
            ("LAKESTREAM_RUNNER_ID", record.runner_id.as_str()),
            ("LAKESTREAM_LOG_FORMAT", "json"),
            ("AWS_REGION", region.as_str()),
        ];
        Workload {
            name: record.name.clone(),
            namespace: self.settings.namespace.clone(),
            runner_id: record.runner_id.clone(),
            image: self.settings.image.clone(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            cpu: self.settings.cpu.clone(),
            memory: self.settings.memory.clone(),
            running,
            service_account_annotations: self
                .settings
                .service_account_role_arn
                .iter()
                .map(|arn| (ROLE_ANNOTATION.to_owned(), arn.clone()))
                .collect(),
            pod_annotations: record
                .restarted_at
                .iter()
                .map(|at| (RESTARTED_AT.to_owned(), at.clone()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn parse(record: &serde_json::Value) -> Result<EksRecord, DeployError> {
        read_record("eks", record)
    }
}

/// EKS tokens from the provider's AWS credentials. A token is reused while its presigned URL
/// is valid (less a margin), so a rollout wait polling every second does not ask the credential
/// chain (which may call STS or the instance metadata service) every second.
struct EksToken {
    cluster: String,
    region: String,
    credentials: SharedCredentialsProvider,
    cached: std::sync::Mutex<Option<(std::time::Instant, String)>>,
}

impl EksToken {
    fn new(cluster: &str, region: &str, credentials: SharedCredentialsProvider) -> Self {
        Self {
            cluster: cluster.to_owned(),
            region: region.to_owned(),
            credentials,
            cached: std::sync::Mutex::new(None),
        }
    }
}

/// How long a token is reused: its URL's validity less a margin for clocks and slow requests.
const TOKEN_REUSE: Duration = Duration::from_secs(45);

#[async_trait]
impl TokenSource for EksToken {
    async fn token(&self) -> Result<String, DeployError> {
        if let Some((made, token)) = &*self.cached.lock().expect("token cache")
            && made.elapsed() < TOKEN_REUSE
        {
            return Ok(token.clone());
        }
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|err| error("no AWS credentials for the EKS token", err))?;
        let token = eks_token(&credentials, &self.region, &self.cluster, SystemTime::now())?;
        *self.cached.lock().expect("token cache") =
            Some((std::time::Instant::now(), token.clone()));
        Ok(token)
    }

    fn refused(&self) -> String {
        format!(
            "EKS cluster {:?} did not accept the provider's AWS identity; give it an access entry \
             (or an aws-auth mapping) with rights on ServiceAccounts and StatefulSets",
            self.cluster
        )
    }
}

/// The STS host an EKS token is presigned for: the cluster's authenticator accepts only STS
/// hosts, so endpoint overrides (VPC endpoints, emulators) do not apply; the URL is never
/// fetched by the provider.
fn sts_host(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("sts.{region}.amazonaws.com.cn")
    } else {
        format!("sts.{region}.amazonaws.com")
    }
}

/// An EKS bearer token, as `aws eks get-token` makes it: `k8s-aws-v1.` and the unpadded
/// base64url of an STS `GetCallerIdentity` URL presigned at `at` for 60 seconds, with the
/// cluster's name in the signed `x-k8s-aws-id` header. EKS asks STS who signed it.
pub fn eks_token(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    at: SystemTime,
) -> Result<String, DeployError> {
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_EXPIRY);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(at)
        .settings(settings)
        .build()
        .map_err(|err| error("signing the EKS token", err))?
        .into();
    let url = format!(
        "https://{}/?Action=GetCallerIdentity&Version=2011-06-15",
        sts_host(region)
    );
    let request = SignableRequest::new(
        "GET",
        url.as_str(),
        std::iter::once(("x-k8s-aws-id", cluster)),
        SignableBody::Bytes(&[]),
    )
    .map_err(|err| error("signing the EKS token", err))?;
    let (instructions, _) = sign(request, &params)
        .map_err(|err| error("signing the EKS token", err))?
        .into_parts();
    let mut presigned = url;
    for (name, value) in instructions.params() {
        presigned.push_str(&format!(
            "&{}={}",
            kubernetes::encode(name),
            kubernetes::encode(value)
        ));
    }
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(presigned)
    ))
}

#[async_trait]
impl Deployment for Eks {
    fn kind(&self) -> &'static str {
        "eks"
    }

    async fn apply(
        &self,
        target: &RunnerTarget,
        previous: Option<&serde_json::Value>,
    ) -> Result<Applied, DeployError> {
        let mut record = match previous {
            Some(previous) => Self::parse(previous)?,
            None => EksRecord {
                runner_id: target.runner_id.clone(),
                control_store: target.control_store.to_string(),
                name: kubernetes::object_name(&target.runner_id),
                ..EksRecord::default()
            },
        };
        let creating = previous.is_none();
        // IRSA credentials are injected when a pod starts, so a new role needs a new pod.
        let role_changed = !creating
            && record.settings.service_account_role_arn != self.settings.service_account_role_arn;
        if target.restart || role_changed {
            record.restarted_at = Some(crate::observe::rfc3339(time::OffsetDateTime::now_utc()));
        }
        record.settings = self.settings.clone();
        let client = self.require().await?;
        let workload = self.workload(&record, target.running);
        let before = client
            .get(
                kubernetes::Kind::StatefulSet,
                &workload.namespace,
                &workload.name,
            )
            .await
            .map_err(|err| {
                error(
                    &format!(
                        "reading StatefulSet {}/{}",
                        workload.namespace, workload.name
                    ),
                    err,
                )
            })?;
        match client.deploy(&workload, target.timeout).await {
            Ok(stored) => {
                let started = target.running
                    && before.is_none_or(|before| {
                        before["spec"]["template"] != stored["spec"]["template"]
                            || before["spec"]["replicas"] == 0
                    });
                Ok(Applied {
                    record: serde_json::to_value(&record).expect("records serialise"),
                    started,
                })
            }
            Err(err) if creating => {
                // Roll back a create that failed part-way, so nothing is orphaned.
                match client.remove(&workload, DESTROY_TIMEOUT).await {
                    Ok(()) => Err(err),
                    Err(cleanup) => Err(DeployError::new(format!(
                        "{err}; removing what was created failed too: {cleanup}"
                    ))),
                }
            }
            Err(err) => Err(err),
        }
    }

    async fn observe(&self, record: &serde_json::Value) -> Observation {
        let not_running = |reason: String| Observation {
            running: false,
            reason,
        };
        let record = match Self::parse(record) {
            Ok(record) => record,
            Err(err) => return not_running(err.message),
        };
        match self.connect().await {
            Ok(Some(client)) => client.observe(&self.workload(&record, true)).await,
            Ok(None) => not_running(format!(
                "EKS cluster {:?} no longer exists",
                self.settings.cluster_name
            )),
            Err(err) => not_running(err.message),
        }
    }

    async fn destroy(&self, record: &serde_json::Value) -> Result<(), DeployError> {
        let record = Self::parse(record)?;
        match self.connect().await? {
            Some(client) => {
                client
                    .remove(&self.workload(&record, false), DESTROY_TIMEOUT)
                    .await
            }
            // The cluster is gone, and everything in it.
            None => Ok(()),
        }
    }

    async fn failure_detail(&self, record: &serde_json::Value) -> Option<String> {
        let record = Self::parse(record).ok()?;
        let client = self.connect().await.ok()??;
        client.problem(&self.workload(&record, true)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakestream_testkit::kubernetes::{KubeFake, KubeFakeOptions};

    fn query(url: &str) -> BTreeMap<String, String> {
        url.split_once('?')
            .unwrap()
            .1
            .split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    #[test]
    fn eks_tokens_are_presigned_sts_urls_for_the_cluster() {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = eks_token(&credentials, "eu-west-1", "prod", at).unwrap();
        let encoded = token.strip_prefix("k8s-aws-v1.").expect("the EKS prefix");
        assert!(
            !encoded.contains(['=', '+', '/']),
            "base64url without padding"
        );
        let url = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded)
                .unwrap(),
        )
        .unwrap();
        assert!(
            url.starts_with(
                "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"
            ),
            "{url}"
        );
        let params = query(&url);
        assert_eq!(params["X-Amz-Expires"], "60");
        assert_eq!(params["X-Amz-Date"], "20231114T221320Z");
        assert_eq!(params["X-Amz-SignedHeaders"], "host%3Bx-k8s-aws-id");
        assert_eq!(
            params["X-Amz-Credential"],
            "AKIDEXAMPLE%2F20231114%2Feu-west-1%2Fsts%2Faws4_request"
        );
        assert_eq!(params["X-Amz-Signature"].len(), 64);
        let other = eks_token(&credentials, "eu-west-1", "staging", at).unwrap();
        assert_ne!(token, other, "the cluster name is signed");
        let session = Credentials::new("ASIA", "secret", Some("tok/en+=".into()), None, "test");
        let url = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(
                    &eks_token(&session, "cn-north-1", "prod", at).unwrap()["k8s-aws-v1.".len()..],
                )
                .unwrap(),
        )
        .unwrap();
        assert!(url.starts_with("https://sts.cn-north-1.amazonaws.com.cn/"));
        assert_eq!(query(&url)["X-Amz-Security-Token"], "tok%2Fen%2B%3D");
    }

    /// A client for `fake` signing EKS tokens for `cluster` with moto's dummy credentials.
    fn client(fake: &KubeFake, cluster: &str, ca: &str) -> KubeClient {
        let token = Arc::new(EksToken::new(
            cluster,
            "us-east-1",
            SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "test",
            )),
        ));
        KubeClient::new(&fake.endpoint(), ca.as_bytes(), token).unwrap()
    }

    fn workload(runner_id: &str, namespace: &str) -> Workload {
        let eks = EksSettings {
            cluster_name: "prod".into(),
            namespace: namespace.into(),
            cpu: "250m".into(),
            memory: "512Mi".into(),
            image: "ghcr.io/lakestream/streaming-runner:test".into(),
            service_account_role_arn: Some("arn:aws:iam::123456789012:role/runner".into()),
            ..EksSettings::default()
        };
        let record = EksRecord {
            settings: eks.clone(),
            runner_id: runner_id.into(),
            control_store: "s3://control/lakestream".into(),
            name: kubernetes::object_name(runner_id),
            restarted_at: None,
        };
        let env = [
            ("LAKESTREAM_CONTROL_STORE", record.control_store.clone()),
            ("LAKESTREAM_RUNNER_ID", record.runner_id.clone()),
            ("LAKESTREAM_LOG_FORMAT", "json".to_owned()),
        ];
        Workload {
            name: record.name.clone(),
            namespace: eks.namespace.clone(),
            runner_id: record.runner_id.clone(),
            image: eks.image.clone(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            cpu: eks.cpu.clone(),
            memory: eks.memory.clone(),
            running: true,
            service_account_annotations: BTreeMap::from([(
                ROLE_ANNOTATION.to_owned(),
                eks.service_account_role_arn.clone().unwrap(),
            )]),
            pod_annotations: BTreeMap::new(),
        }
    }

    /// The objects the provider builds pass the strict fake (official schemas), an update is
    /// in place, the API server's refusals are quoted, a wrong cluster's token, a wrong CA
    /// and a missing namespace fail clearly, and removal leaves nothing.
    #[tokio::test]
    async fn eks_workload_lifecycle_against_the_strict_kubernetes_fake() {
        let fake = KubeFake::start(KubeFakeOptions::eks("prod", "testing").namespace("lakestream"))
            .await
            .expect("start the Kubernetes fake");
        let kube = client(&fake, "prod", fake.ca_pem());
        let runner = workload("orders-4k2m9q", "lakestream");
        let minute = Duration::from_secs(60);
        let created = kube.deploy(&runner, minute).await.expect("deployed");
        let uid = created["metadata"]["uid"].clone();
        let stored = fake.objects("statefulsets").await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0]["status"]["readyReplicas"], 1);
        let accounts = fake.objects("serviceaccounts").await.unwrap();
        assert_eq!(
            accounts[0]["metadata"]["annotations"][ROLE_ANNOTATION],
            "arn:aws:iam::123456789012:role/runner"
        );
        assert!(kube.observe(&runner).await.running);

        let bigger = Workload {
            cpu: "1".into(),
            ..runner.clone()
        };
        let updated = kube.deploy(&bigger, minute).await.expect("updated");
        assert_eq!(updated["metadata"]["uid"], uid, "updated in place");
        assert_eq!(updated["metadata"]["generation"], 2);
        let stored = &fake.objects("statefulsets").await.unwrap()[0];
        assert_eq!(
            stored["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            "1"
        );

        let invalid = Workload {
            memory: "lots".into(),
            ..runner.clone()
        };
        let refused = kube.deploy(&invalid, minute).await.unwrap_err().message;
        assert!(
            refused.contains("is invalid: [spec.template.spec.containers[0].resources.requests.memory: Invalid value: \"lots\"")
                && refused.contains("\"lots\"")
                && refused.contains("HTTP 422 Invalid"),
            "{refused}"
        );
        let elsewhere = workload("orders-4k2m9q", "missing");
        let missing = kube.deploy(&elsewhere, minute).await.unwrap_err().message;
        assert!(
            missing.contains("namespace missing does not exist"),
            "{missing}"
        );
        let other_cluster = client(&fake, "staging", fake.ca_pem());
        let denied = other_cluster
            .deploy(&runner, minute)
            .await
            .unwrap_err()
            .message;
        assert!(
            denied.contains(
                "Unauthorized: EKS cluster \"staging\" did not accept the provider's AWS identity"
            ) && denied.ends_with("(HTTP 401 Unauthorized)"),
            "{denied}"
        );
        let other_ca = KubeFake::start(KubeFakeOptions::token("x")).await.unwrap();
        let untrusted = client(&fake, "prod", other_ca.ca_pem());
        let tls = untrusted.deploy(&runner, minute).await.unwrap_err().message;
        assert!(
            tls.contains("unreachable") && tls.contains("certificate"),
            "{tls}"
        );

        kube.remove(&runner, minute).await.expect("removed");
        kube.remove(&runner, minute)
            .await
            .expect("removing twice is fine");
        for kind in ["statefulsets", "serviceaccounts", "pods"] {
            assert!(
                fake.objects(kind).await.unwrap().is_empty(),
                "{kind} left behind"
            );
        }
    }

    /// A pod that cannot start: the rollout wait times out naming the kubelet's reason, and
    /// observation reports it.
    #[tokio::test]
    async fn eks_rollout_waits_report_the_pods_problem() {
        let fake = KubeFake::start(KubeFakeOptions::eks("prod", "testing").manual_rollout())
            .await
            .expect("start the Kubernetes fake");
        let kube = client(&fake, "prod", fake.ca_pem());
        let runner = workload("broken-4k2m9q", "default");
        let pod = format!("{}-0", runner.name);
        let stuck = kube
            .deploy(&runner, Duration::from_secs(2))
            .await
            .unwrap_err()
            .message;
        assert!(
            stuck.contains("did not roll out within 2s (0/1 pods ready"),
            "{stuck}"
        );
        assert!(
            stuck.contains(&format!("pod {pod}: ContainerCreating")),
            "{stuck}"
        );
        fake.set_pod_status(
            "default",
            &pod,
            &serde_json::json!({"phase": "Pending", "containerStatuses": [{"name": "runner", "ready": false,
                "restartCount": 0, "image": "x", "imageID": "",
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]}),
        )
        .await
        .unwrap();
        let observed = kube.observe(&runner).await;
        assert!(!observed.running);
        assert!(
            observed.reason.ends_with(&format!(
                "pod {pod}: ImagePullBackOff: Back-off pulling image"
            )),
            "{}",
            observed.reason
        );
        fake.set_status(
            "default",
            &runner.name,
            &serde_json::json!({"readyReplicas": 1}),
        )
        .await
        .unwrap();
        assert!(kube.observe(&runner).await.running);
    }

    #[test]
    fn eks_blocks_fill_defaults_and_round_trip_through_records() {
        let block = EksBlock {
            cluster_name: "prod".into(),
            service_account_role_arn: Some("arn:aws:iam::123456789012:role/runner".into()),
            ..EksBlock::default()
        };
        let settings = block.settings();
        assert_eq!(settings.namespace, "default");
        assert_eq!(
            (settings.cpu.as_str(), settings.memory.as_str()),
            ("500m", "1Gi")
        );
        assert_eq!(settings.image, super::super::fargate::default_image());
        let record = EksRecord {
            settings: settings.clone(),
            runner_id: "orders-4k2m9q".into(),
            control_store: "s3://bucket/control".into(),
            name: "lakestream-orders-4k2m9q".into(),
            restarted_at: None,
        };
        let back = EksBlock::from_record(&serde_json::to_value(&record).unwrap());
        assert_eq!(back.settings(), settings);
        assert_eq!(
            back.stateful_set.as_deref(),
            Some("lakestream-orders-4k2m9q")
        );
    }

    #[test]
    fn eks_ca_certificates_come_as_pem_or_base64_pem() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert_eq!(ca_pem(pem).unwrap(), pem.as_bytes());
        let encoded = base64::engine::general_purpose::STANDARD.encode(pem);
        assert_eq!(ca_pem(&encoded).unwrap(), pem.as_bytes());
        assert!(ca_pem("not a certificate").is_err());
        assert!(
            ca_pem(&base64::engine::general_purpose::STANDARD.encode("hello"))
                .unwrap_err()
                .contains("does not start with")
        );
    }
}
