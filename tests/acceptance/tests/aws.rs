//! The provider's `aws {}` block and an S3 control store, through the real terraform against a
//! moto that checks credentials and IAM policies as AWS does: the provider must reach the
//! control store as the block says (its profile, its assumed role, its `s3` endpoint), not as
//! the process environment happens to allow.

use aws_config::sts::AssumeRoleProvider;
use futures::TryStreamExt;
use lakestream_acceptance::fargate::{create_role, moto_config};
use lakestream_acceptance::{Workspace, assert_error};
use lakestream_testkit::moto::MotoServer;
use object_store::ObjectStore;
use serde_json::json;

const BUCKET: &str = "lakestream-control";
const PROFILE: &str = "lakestream-ci";

/// A runner that runs nowhere (`stopped`), so the only AWS traffic is the provider's own
/// control-store requests.
const CONFIG: &str = r#"
variable "endpoint" { type = string }
variable "role" { type = string }

provider "streaming" {
  aws {
    region  = "us-east-1"
    profile = "lakestream-ci"
    assume_role {
      role_arn     = var.role
      session_name = "lakestream-acceptance"
    }
    endpoints {
      s3  = var.endpoint
      sts = var.endpoint
    }
  }
}

resource "streaming_runner" "idle" {
  name          = "idle"
  control_store = "s3://lakestream-control/runners"
  desired_state = "stopped"
  local {}
}
"#;

/// moto with a bucket, a user who may only assume a role, and the role, which may use the
/// bucket; authentication switched on afterwards.
struct Account {
    moto: MotoServer,
    role_arn: String,
    user_key: (String, String),
    files: tempfile::TempDir,
}

impl Account {
    async fn new() -> Self {
        let moto = MotoServer::start().await.expect("moto starts");
        moto.create_bucket(BUCKET).await.unwrap();
        let iam = aws_sdk_iam::Client::new(&moto_config(&moto).await);
        iam.create_user().user_name("ci").send().await.unwrap();
        let key = iam
            .create_access_key()
            .user_name("ci")
            .send()
            .await
            .unwrap()
            .access_key
            .unwrap();
        // Trusting the user by name: moto does not read an account root principal as AWS does.
        let role_arn = create_role(
            &iam,
            "control-store-writer",
            json!({"AWS": "arn:aws:iam::123456789012:user/ci"}),
        )
        .await;
        // Any role: moto matches the resources of non-S3 actions only against "*".
        iam.put_user_policy()
            .user_name("ci")
            .policy_name("assume-only")
            .policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        iam.put_role_policy()
            .role_name("control-store-writer")
            .policy_name("control-store")
            .policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*",
                    "Resource": [format!("arn:aws:s3:::{BUCKET}"), format!("arn:aws:s3:::{BUCKET}/*")]}]})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        moto.enforce_authentication().await.unwrap();

        let files = tempfile::tempdir().unwrap();
        std::fs::write(
            files.path().join("credentials"),
            format!(
                "[{PROFILE}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                key.access_key_id, key.secret_access_key
            ),
        )
        .unwrap();
        std::fs::write(
            files.path().join("config"),
            format!("[profile {PROFILE}]\nregion = us-east-1\n"),
        )
        .unwrap();
        Self {
            moto,
            role_arn,
            user_key: (key.access_key_id, key.secret_access_key),
            files,
        }
    }

    /// A workspace whose environment holds no credentials and no endpoint: only the shared
    /// files with the user's profile.
    fn workspace(&self) -> Workspace {
        let mut workspace = Workspace::new();
        let path = |name: &str| self.files.path().join(name).display().to_string();
        workspace
            .env("AWS_SHARED_CREDENTIALS_FILE", &path("credentials"))
            .env("AWS_CONFIG_FILE", &path("config"))
            .env("AWS_EC2_METADATA_DISABLED", "true");
        workspace.vars(json!({"endpoint": self.moto.endpoint(), "role": self.role_arn}));
        workspace
    }

    /// Every key in the control bucket, listed as the role (the user alone may not).
    async fn keys(&self) -> Vec<String> {
        let user = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(self.moto.endpoint())
            .credentials_provider(aws_credential_types::Credentials::new(
                &self.user_key.0,
                &self.user_key.1,
                None,
                None,
                "test",
            ))
            .load()
            .await;
        let role = AssumeRoleProvider::builder(&self.role_arn)
            .configure(&user)
            .build()
            .await;
        use aws_credential_types::provider::ProvideCredentials;
        let credentials = role.provide_credentials().await.expect("the role");
        let bucket = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_endpoint(self.moto.endpoint())
            .with_region("us-east-1")
            .with_access_key_id(credentials.access_key_id())
            .with_secret_access_key(credentials.secret_access_key())
            .with_token(credentials.session_token().unwrap_or_default())
            .with_allow_http(true)
            .build()
            .unwrap();
        let listed: Vec<_> = bucket.list(None).try_collect().await.expect("list");
        listed
            .into_iter()
            .map(|meta| meta.location.to_string())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_block_profile_and_assumed_role_reach_the_s3_control_store() {
    let account = Account::new().await;
    let workspace = account.workspace();
    workspace.config(CONFIG);
    workspace.apply();
    let keys = account.keys().await;
    assert!(
        keys.iter().any(|key| key.ends_with("/runner.json")),
        "the runner was written as the role: {keys:?}"
    );
    workspace.assert_plan_empty();
    workspace.destroy();
    assert_eq!(account.keys().await, Vec::<String>::new());

    // Without the role, the profile's user may not touch the bucket: the provider says so
    // (and so did not fall back to some other identity before).
    let start = CONFIG.find("    assume_role {").unwrap();
    let end = start + CONFIG[start..].find("    }\n").unwrap() + "    }\n".len();
    workspace.config(&format!("{}{}", &CONFIG[..start], &CONFIG[end..]));
    let errors = workspace.apply_fails();
    assert_error(
        &errors,
        r"(?s)Control Store Unavailable.*lakestream-control.*(AccessDenied|403)",
        r#"resource "streaming_runner" "idle""#,
    );
    assert!(workspace.state().is_empty());
}
