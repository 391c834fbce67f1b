//! `streaming_runner` on EKS, through the real terraform: the cluster exists in moto (EKS,
//! STS, S3 for the control store), and since moto's cluster endpoint is made up, the block's
//! `endpoint` and `cluster_ca_certificate` point at the project's strict Kubernetes fake, which
//! validates every object against the official schemas and checks the provider's EKS token
//! (its SigV4 signature for this cluster). In the lifecycle test no pod really runs, so the
//! runner does not wait for a heartbeat and its status comes from the fake's ready replicas; a
//! second test runs the pods as local runner processes ([`Kubelet`]) and waits for heartbeats
//! through the S3 control store.

use aws_sdk_eks::types::VpcConfigRequest;
use std::sync::Arc;
use std::time::Duration;

use lakestream_acceptance::fargate::moto_config;
use lakestream_acceptance::kubelet::Kubelet;
use lakestream_acceptance::{
    Workspace, apply_example_runner_for_real, assert_error, cloud_variable, real_cloud,
};
use lakestream_testkit::kubernetes::{KubeFake, KubeFakeOptions};
use lakestream_testkit::moto::MotoServer;
use serde_json::{Value, json};

const CLUSTER: &str = "lakestream";
const CONTROL_BUCKET: &str = "lakestream-control";
const ROLE: &str = "arn:aws:iam::123456789012:role/lakestream-runner";

/// The configuration under test.
const CONFIG: &str = r#"
variable "aws_endpoint" { type = string }
variable "cluster" { type = string }
variable "kube_endpoint" { type = string }
variable "kube_ca" { type = string }
variable "namespace" { type = string }
variable "cpu" { type = string }
variable "desired_state" {
  type    = string
  default = "running"
}

provider "streaming" {
  aws {
    region = "us-east-1"
    endpoints {
      eks = var.aws_endpoint
      sts = var.aws_endpoint
    }
  }
}

resource "streaming_runner" "orders" {
  name               = "orders on eks"
  control_store      = "s3://lakestream-control/runners"
  wait_for_heartbeat = false
  desired_state      = var.desired_state

  eks {
    cluster_name             = var.cluster
    namespace                = var.namespace
    cpu                      = var.cpu
    memory                   = "512Mi"
    service_account_role_arn = "arn:aws:iam::123456789012:role/lakestream-runner"
    endpoint                 = var.kube_endpoint
    cluster_ca_certificate   = var.kube_ca
  }
}
"#;

/// moto with the EKS cluster and the control bucket, the Kubernetes fake accepting tokens
/// for that cluster, and a workspace wired to both.
struct Cluster {
    moto: MotoServer,
    kube: Arc<KubeFake>,
    workspace: Workspace,
}

impl Cluster {
    async fn new() -> Self {
        Self::accepting(CLUSTER).await
    }

    /// Like [`Cluster::new`], with a Kubernetes fake that accepts only tokens for `accepted`.
    async fn accepting(accepted: &str) -> Self {
        let moto = MotoServer::start().await.expect("moto starts");
        let config = moto_config(&moto).await;
        aws_sdk_eks::Client::new(&config)
            .create_cluster()
            .name(CLUSTER)
            .role_arn("arn:aws:iam::123456789012:role/eks-cluster")
            .resources_vpc_config(
                VpcConfigRequest::builder()
                    .subnet_ids("subnet-0123abcd")
                    .build(),
            )
            .send()
            .await
            .expect("EKS cluster");
        moto.create_bucket(CONTROL_BUCKET).await.unwrap();
        // moto's dummy secret key, so the fake can verify the token's signature as STS would.
        let kube = Arc::new(
            KubeFake::start(KubeFakeOptions::eks(accepted, "testing").namespace("lakestream"))
                .await
                .expect("the Kubernetes fake starts"),
        );
        let mut workspace = Workspace::new();
        for (key, value) in moto.env() {
            workspace.env(key, &value);
        }
        Self {
            moto,
            kube,
            workspace,
        }
    }

    fn vars(&self, cluster: &str, namespace: &str, cpu: &str) -> Value {
        json!({
            "aws_endpoint": self.moto.endpoint(),
            "cluster": cluster,
            "kube_endpoint": self.kube.endpoint(),
            "kube_ca": self.kube.ca_pem(),
            "namespace": namespace,
            "cpu": cpu,
        })
    }

    fn runner(&self) -> Value {
        self.workspace.resource("streaming_runner.orders")
    }

    /// `namespace/name` of every stored object of `plural`.
    async fn names(&self, plural: &str) -> Vec<String> {
        self.kube
            .objects(plural)
            .await
            .unwrap()
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["metadata"]["namespace"].as_str().unwrap_or_default(),
                    o["metadata"]["name"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }

    async fn stateful_set(&self) -> Value {
        let all = self.kube.objects("statefulsets").await.unwrap();
        assert_eq!(all.len(), 1, "exactly one StatefulSet: {all:#?}");
        all[0].clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn eks_runner_through_its_lifecycle_against_moto_and_the_kubernetes_fake() {
    let cluster = Cluster::new().await;
    let workspace = &cluster.workspace;
    workspace
        .config(CONFIG)
        .vars(cluster.vars(CLUSTER, "default", "500m"));

    // Create: a ServiceAccount with the IRSA role and a one-replica StatefulSet, rolled out.
    workspace.apply();
    let runner = cluster.runner();
    let runner_id = runner["runner_id"].as_str().unwrap().to_owned();
    let name = format!("lakestream-{runner_id}");
    assert_eq!(runner["eks"]["stateful_set"], name.as_str(), "{runner:#}");
    assert_eq!(runner["eks"]["service_account"], name.as_str());
    assert_eq!(
        runner["eks"]["image"],
        format!(
            "ghcr.io/lakestream/streaming-runner:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(
        runner["status"], "pending",
        "no heartbeat without a real pod: {runner:#}"
    );
    assert_eq!(
        cluster.names("serviceaccounts").await,
        [format!("default/{name}")]
    );
    let accounts = cluster.kube.objects("serviceaccounts").await.unwrap();
    assert_eq!(
        accounts[0]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        ROLE
    );
    let sts = cluster.stateful_set().await;
    let uid = sts["metadata"]["uid"].clone();
    assert_eq!(sts["spec"]["replicas"], 1);
    let container = &sts["spec"]["template"]["spec"]["containers"][0];
    let env: Vec<(String, String)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        env.contains(&(
            "LAKESTREAM_CONTROL_STORE".into(),
            "s3://lakestream-control/runners".into()
        )),
        "{env:?}"
    );
    assert!(
        env.contains(&("LAKESTREAM_RUNNER_ID".into(), runner_id.clone())),
        "{env:?}"
    );
    assert!(
        env.contains(&("LAKESTREAM_LOG_FORMAT".into(), "json".into())),
        "{env:?}"
    );
    assert_eq!(
        container["resources"]["limits"],
        json!({"cpu": "500m", "memory": "512Mi"})
    );

    // Resize: the StatefulSet is updated in place (same object, next generation).
    workspace.vars(cluster.vars(CLUSTER, "default", "1"));
    let actions = workspace.planned_actions();
    assert_eq!(
        actions.get("streaming_runner.orders"),
        Some(&vec!["update".to_owned()]),
        "{actions:?}"
    );
    workspace.apply();
    let sts = cluster.stateful_set().await;
    assert_eq!(
        sts["metadata"]["uid"], uid,
        "updated in place, not replaced"
    );
    assert_eq!(sts["metadata"]["generation"], 2);
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "1"
    );

    // The pod dies outside Terraform: refresh reports it in the kubelet's words, the plan
    // brings it back, and the apply restarts it.
    let pod = format!("{name}-0");
    cluster
        .kube
        .set_pod_status("default", &pod, &json!({"phase": "Running", "containerStatuses": [{
            "name": "runner", "ready": false, "restartCount": 5, "image": "runner", "imageID": "",
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}}}]}))
        .await
        .unwrap();
    cluster
        .kube
        .set_status(
            "default",
            &name,
            &json!({"readyReplicas": 0, "availableReplicas": 0}),
        )
        .await
        .unwrap();
    let refreshed = workspace.run(&["apply", "-refresh-only", "-auto-approve", "-no-color"]);
    assert_eq!(refreshed.code, 0, "{}", refreshed.stderr);
    let runner = cluster.runner();
    assert_eq!(runner["status"], "stopped", "{runner:#}");
    let reason = runner["status_reason"].as_str().unwrap();
    assert!(
        reason.contains("CrashLoopBackOff: back-off 5m0s"),
        "{reason}"
    );
    assert_eq!(
        workspace.planned_actions().get("streaming_runner.orders"),
        Some(&vec!["update".to_owned()])
    );
    workspace.apply();
    let sts = cluster.stateful_set().await;
    assert_eq!(sts["metadata"]["uid"], uid);
    assert!(
        sts["spec"]["template"]["metadata"]["annotations"]["lakestream.io/restarted-at"]
            .is_string(),
        "the restart rolls the pod: {sts:#}"
    );
    assert_eq!(cluster.runner()["desired_state"], "running");

    // Stopped: scaled to zero in place, reported as stopped, and the plan stays empty.
    let mut stopped = cluster.vars(CLUSTER, "default", "1");
    stopped["desired_state"] = json!("stopped");
    workspace.vars(stopped);
    workspace.apply();
    assert_eq!(cluster.stateful_set().await["spec"]["replicas"], 0);
    let runner = cluster.runner();
    assert_eq!(runner["status"], "stopped", "{runner:#}");
    assert!(
        runner["status_reason"]
            .as_str()
            .unwrap()
            .contains("stopped on request"),
        "{runner:#}"
    );
    assert!(cluster.names("pods").await.is_empty(), "no runner pod");
    workspace.vars(cluster.vars(CLUSTER, "default", "1"));
    workspace.apply();
    assert_eq!(cluster.stateful_set().await["spec"]["replicas"], 1);
    assert_eq!(cluster.stateful_set().await["metadata"]["uid"], uid);

    // Another namespace replaces the runner, and the plan says so.
    workspace.vars(cluster.vars(CLUSTER, "lakestream", "1"));
    let actions = workspace.planned_actions();
    assert_eq!(
        actions.get("streaming_runner.orders"),
        Some(&vec!["delete".to_owned(), "create".to_owned()]),
        "{actions:?}"
    );
    workspace.apply();
    let moved = cluster.runner();
    let moved_name = format!("lakestream-{}", moved["runner_id"].as_str().unwrap());
    assert_ne!(moved_name, name);
    assert_eq!(
        cluster.names("statefulsets").await,
        [format!("lakestream/{moved_name}")]
    );
    assert_eq!(
        cluster.names("serviceaccounts").await,
        [format!("lakestream/{moved_name}")]
    );

    // Import: the block is rebuilt from the runner's record.
    workspace.import_verify(
        "streaming_runner.orders",
        moved["id"].as_str().unwrap(),
        &["wait_for_heartbeat", "timeouts"],
    );

    // Destroy: nothing the provider created is left in the cluster.
    workspace.destroy();
    for plural in ["statefulsets", "serviceaccounts", "pods"] {
        assert!(
            cluster.names(plural).await.is_empty(),
            "{plural} left behind"
        );
    }
}

/// The pod the provider describes is a working runner: run by the stand-in kubelet with the
/// pod's own arguments and environment, it heartbeats through the S3 control store, create and
/// a resize wait for that heartbeat, and destroy stops it.
#[tokio::test(flavor = "multi_thread")]
async fn eks_runner_pod_heartbeats_through_the_s3_control_store() {
    let cluster = Cluster::new().await;
    let kubelet = Kubelet::start(Arc::clone(&cluster.kube), cluster.moto.env());
    let workspace = &cluster.workspace;
    let config = CONFIG.replace("wait_for_heartbeat = false", "heartbeat_interval = \"1s\"");
    workspace
        .config(&config)
        .vars(cluster.vars(CLUSTER, "default", "500m"));
    let apply = workspace.run(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(
        apply.code,
        0,
        "{}\nrunner logs:\n{}",
        apply.describe(),
        kubelet.logs()
    );
    workspace.assert_plan_empty();
    let runner = cluster.runner();
    assert_eq!(runner["status"], "running", "{runner:#}");
    let first = runner["last_heartbeat"].as_str().unwrap().to_owned();

    workspace.vars(cluster.vars(CLUSTER, "default", "1"));
    workspace.apply();
    let runner = cluster.runner();
    assert_eq!(runner["status"], "running", "{runner:#}");
    assert_ne!(runner["last_heartbeat"].as_str().unwrap(), first);
    assert_eq!(kubelet.running(), 1, "one runner pod, never two");

    workspace.destroy();
    for _ in 0..50 {
        if kubelet.running() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        kubelet.running(),
        0,
        "the runner process stopped with its pod"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn eks_cluster_that_does_not_exist_fails_the_apply_naming_it() {
    let cluster = Cluster::new().await;
    let workspace = &cluster.workspace;
    workspace
        .config(CONFIG)
        .vars(cluster.vars("no-such-cluster", "default", "500m"));
    let errors = workspace.apply_fails();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|e| e.contains("EKS cluster \"no-such-cluster\" not found in us-east-1")),
        "{text:#?}"
    );
    assert!(cluster.names("statefulsets").await.is_empty());
}

/// The cluster refuses the provider's identity (here: its token is signed for the cluster
/// name moto knows, while the API server belongs to another): the apply fails saying what to
/// grant, and nothing is created.
#[tokio::test(flavor = "multi_thread")]
async fn eks_access_denied_fails_the_apply_saying_what_to_grant() {
    let cluster = Cluster::accepting("another-cluster").await;
    let workspace = &cluster.workspace;
    workspace
        .config(CONFIG)
        .vars(cluster.vars(CLUSTER, "default", "500m"));
    let errors = workspace.apply_fails();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        text.iter().any(|e| e.contains(
            "Unauthorized: EKS cluster \"lakestream\" did not accept the provider's AWS identity; give it an access entry"
        )),
        "{text:#?}"
    );
    assert!(cluster.names("statefulsets").await.is_empty());
}

#[test]
fn eks_bad_input_fails_at_plan_time_on_the_right_line() {
    let valid = r#"
resource "streaming_runner" "r" {
  name          = "orders"
  control_store = "s3://control/lakestream"
  eks {
    cluster_name = "prod"
    cpu          = "500m"
    memory       = "1Gi"
    namespace    = "cdc"
    endpoint     = "https://10.0.0.1:443"
  }
}
"#;
    let workspace = Workspace::new();
    workspace.config(valid);
    assert_eq!(
        workspace.planned_actions().get("streaming_runner.r"),
        Some(&vec!["create".to_owned()])
    );
    let cases: [(&str, &str, &str, &str); 6] = [
        (
            "    cluster_name = \"prod\"\n",
            "",
            "Missing required argument",
            "eks {",
        ),
        (
            "cpu          = \"500m\"",
            "cpu          = \"lots\"",
            r#"eks\.cpu: "lots" is not a Kubernetes quantity; write e\.g\. "500m""#,
            "cpu",
        ),
        (
            "memory       = \"1Gi\"",
            "memory       = \"1GB\"",
            r#""1GB" is not a Kubernetes quantity; write e\.g\. "512Mi" or "2Gi""#,
            "memory",
        ),
        (
            "memory       = \"1Gi\"",
            "memory       = \"0\"",
            "the memory must be more than zero",
            "memory",
        ),
        (
            "namespace    = \"cdc\"",
            "namespace    = \"CDC_runners\"",
            "must be a Kubernetes namespace name",
            "namespace",
        ),
        (
            "endpoint     = \"https://10.0.0.1:443\"",
            "endpoint     = \"http://10.0.0.1\"",
            "must be an https:// URL",
            "endpoint",
        ),
    ];
    for (from, to, pattern, line) in cases {
        assert!(valid.contains(from), "{from:?}");
        workspace.config(&valid.replacen(from, to, 1));
        assert_error(&workspace.plan_fails(), pattern, line);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn eks_against_a_real_cluster_when_asked() {
    if !real_cloud(
        "aws",
        "AWS credentials allowed into the cluster, LAKESTREAM_ACC_EKS_CLUSTER, \
         LAKESTREAM_ACC_EKS_ROLE (an IRSA role) and LAKESTREAM_ACC_BUCKET to run the EKS flow \
         against a real account",
    ) {
        return;
    }
    apply_example_runner_for_real(
        "aws-eks",
        json!({
            "cluster": cloud_variable("LAKESTREAM_ACC_EKS_CLUSTER"),
            "runner_role_arn": cloud_variable("LAKESTREAM_ACC_EKS_ROLE"),
            "control_store": format!("s3://{}/lakestream-acc/eks", cloud_variable("LAKESTREAM_ACC_BUCKET")),
        }),
    );
}
