//! The provider's `aws {}` configuration and the AWS clients built from it.
//!
//! Credentials come from the standard AWS chain (environment, shared config and profiles, SSO,
//! web identity, container and instance roles), optionally through an assumed role; nothing
//! secret is configured in Terraform. Clients are built once per provider process, on first
//! use, and shared by every resource, so a fleet of runners in one apply reuses connections
//! and shares the SDK's adaptive retry budget for throttling.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use lakestream_control::S3Access;
use lakestream_spec::error_chain;
use object_store::CredentialProvider;
use object_store::aws::AwsCredential;
use serde::{Deserialize, Serialize};
use tfplugin::validator::{custom, each_element, regex};
use tfplugin::{Attribute, Block, Diagnostic, NestedBlock, Type};
use tokio::sync::OnceCell;

/// Attempts per AWS call, with the SDK's adaptive backoff (throttling slows the client down).
const MAX_ATTEMPTS: u32 = 10;

/// Services the provider calls whose endpoint can be overridden (VPC endpoints, emulators).
/// Secrets Manager is read by the runner, not the provider.
pub const SERVICES: [&str; 6] = ["ecs", "iam", "logs", "eks", "s3", "sts"];

/// How long before their expiry temporary credentials are renewed for the S3 control store.
const CREDENTIAL_RENEWAL: Duration = Duration::from_secs(5 * 60);

/// The `aws {}` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AwsSettings {
    /// Region; by default the chain's (`AWS_REGION`, the profile).
    pub region: Option<String>,
    /// Named profile of the shared configuration files.
    pub profile: Option<String>,
    /// A role to assume for every call.
    pub assume_role: Option<AssumeRole>,
    /// Per-service endpoint overrides (a service left out of the block is null).
    pub endpoints: Option<BTreeMap<String, Option<String>>>,
    /// Tags added to everything the provider creates.
    pub default_tags: Option<BTreeMap<String, String>>,
}

/// The `assume_role {}` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssumeRole {
    /// The role's ARN.
    pub role_arn: String,
    /// Session name in CloudTrail.
    pub session_name: Option<String>,
    /// External id the role's trust policy requires.
    pub external_id: Option<String>,
}

impl AwsSettings {
    /// The endpoint override for `service`, if any.
    pub fn endpoint(&self, service: &str) -> Option<&str> {
        self.endpoints.as_ref()?.get(service)?.as_deref()
    }

    /// Tags for a created resource: the default tags plus Lakestream's own.
    pub fn tags(&self, runner_id: &str) -> BTreeMap<String, String> {
        let mut tags = self.default_tags.clone().unwrap_or_default();
        tags.insert("lakestream:runner".into(), runner_id.into());
        tags.insert(
            "lakestream:managed-by".into(),
            "terraform-provider-streaming".into(),
        );
        tags
    }
}

/// The `aws {}` block's schema.
pub fn block() -> NestedBlock {
    let endpoint = |service: &str| {
        Attribute::string(service)
            .optional()
            .description(format!("Endpoint URL for {service}, instead of the public one (a VPC endpoint, a proxy, a test emulator)."))
            .validator(regex(r"^https?://[^\s]+$", "must be an http:// or https:// URL"))
    };
    let mut endpoints = Block::new().description(
        "Per-service endpoint overrides; `s3` is the one of an S3 control store. Without one, the standard environment \
         (`AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`) or the public endpoint is used.",
    );
    for service in SERVICES {
        endpoints = endpoints.attribute(endpoint(service));
    }
    NestedBlock::single(
        "aws",
        Block::new()
            .description(
                "Where and as whom the provider calls AWS: for `fargate` and `eks` runners, and for an `s3://` control store. \
                 Credentials come from the standard AWS chain (environment, shared configuration and profiles, SSO, web \
                 identity, container or instance role); nothing secret is set here.",
            )
            .attribute(
                Attribute::string("region")
                    .optional()
                    .description("AWS region; by default the one of the credential chain (`AWS_REGION`, the profile).")
                    .validator(regex(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$", "must be an AWS region such as eu-west-1")),
            )
            .attribute(Attribute::string("profile").optional().description("Named profile of the shared AWS configuration files."))
            .attribute(
                Attribute::map("default_tags", Type::String)
                    .optional()
                    .description("Tags added to every AWS resource the provider creates (besides `lakestream:runner`).")
                    .validator(each_element(custom("tag values of at most 256 characters", |request| {
                        match request.value.as_str() {
                            Some(value) if value.chars().count() > 256 => Err(format!("{}: a tag value has at most 256 characters", request.path)),
                            _ => Ok(()),
                        }
                    }))),
            )
            .block(NestedBlock::single(
                "assume_role",
                Block::new()
                    .description("Assume this role for every AWS call.")
                    .attribute(
                        Attribute::string("role_arn")
                            .required()
                            .description("ARN of the role.")
                            .validator(regex(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$", "must be an IAM role ARN")),
                    )
                    .attribute(Attribute::string("session_name").optional().description("Session name, shown in CloudTrail; `lakestream` when not set."))
                    .attribute(Attribute::string("external_id").optional().description("External id required by the role's trust policy.")),
            ))
            .block(NestedBlock::single("endpoints", endpoints)),
    )
}

/// The AWS clients of one provider process.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// The shared SDK configuration (region, credentials, retries).
    pub config: SdkConfig,
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// IAM.
    pub iam: aws_sdk_iam::Client,
    /// CloudWatch Logs.
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// EKS.
    pub eks: aws_sdk_eks::Client,
    /// STS.
    pub sts: aws_sdk_sts::Client,
    /// The settings they were built from.
    pub settings: AwsSettings,
}

impl AwsClients {
    /// The region the clients call (empty when the chain gives none).
    pub fn region(&self) -> String {
        self.config
            .region()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// How the control store reaches S3: with these clients' identity (profile, assumed role),
    /// region and `s3` endpoint.
    pub fn s3_access(&self) -> S3Access {
        S3Access {
            region: self.config.region().map(ToString::to_string),
            endpoint: self.settings.endpoint("s3").map(str::to_owned),
            credentials: self.config.credentials_provider().map(|provider| {
                Arc::new(SdkCredentials::new(provider))
                    as Arc<dyn CredentialProvider<Credential = AwsCredential>>
            }),
        }
    }
}

/// The SDK's credentials for `object_store`'s S3 client. The SDK caches credentials in its
/// clients, not in the provider chain, so this keeps the last ones until shortly before they
/// expire: an assumed role is not asked of STS for every control-store request.
#[derive(Debug)]
struct SdkCredentials {
    chain: SharedCredentialsProvider,
    last: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl SdkCredentials {
    fn new(chain: SharedCredentialsProvider) -> Self {
        Self {
            chain,
            last: tokio::sync::Mutex::new(None),
        }
    }
}

#[async_trait::async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut last = self.last.lock().await;
        if let Some((credential, expiry)) = last.as_ref()
            && expiry.is_none_or(|expiry| expiry > SystemTime::now() + CREDENTIAL_RENEWAL)
        {
            return Ok(Arc::clone(credential));
        }
        let fresh =
            self.chain
                .provide_credentials()
                .await
                .map_err(|err| object_store::Error::Generic {
                    store: "S3",
                    source: format!("no AWS credentials: {}", error_chain(&err)).into(),
                })?;
        let credential = Arc::new(AwsCredential {
            key_id: fresh.access_key_id().to_owned(),
            secret_key: fresh.secret_access_key().to_owned(),
            token: fresh.session_token().map(str::to_owned),
        });
        *last = Some((Arc::clone(&credential), fresh.expiry()));
        Ok(credential)
    }
}

/// Builds [`AwsClients`] on first use and hands out the same ones afterwards.
#[derive(Debug, Default)]
pub struct LazyAws {
    settings: AwsSettings,
    clients: OnceCell<Arc<AwsClients>>,
}

impl LazyAws {
    /// Clients will be built from `settings`.
    pub fn new(settings: AwsSettings) -> Self {
        Self {
            settings,
            clients: OnceCell::new(),
        }
    }

    /// The clients, built on the first call.
    pub async fn clients(&self) -> Result<Arc<AwsClients>, Diagnostic> {
        self.clients
            .get_or_try_init(|| async { build(&self.settings).await.map(Arc::new) })
            .await
            .cloned()
    }
}

async fn build(settings: &AwsSettings) -> Result<AwsClients, Diagnostic> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::adaptive().with_max_attempts(MAX_ATTEMPTS));
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = settings.endpoint("sts") {
        loader = loader.endpoint_url(endpoint);
    }
    let base = loader.load().await;
    if base.region().is_none() {
        return Err(Diagnostic::error(
            "AWS Region Unknown",
            "No AWS region: set aws.region in the provider block, AWS_REGION, or a region in the profile.",
        ));
    }
    let config = match &settings.assume_role {
        Some(role) => {
            let mut provider = AssumeRoleProvider::builder(&role.role_arn)
                .session_name(role.session_name.as_deref().unwrap_or("lakestream"));
            if let Some(external_id) = &role.external_id {
                provider = provider.external_id(external_id);
            }
            let credentials = provider.configure(&base).build().await;
            base.into_builder()
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
                )
                .build()
        }
        None => base,
    };
    macro_rules! client {
        ($sdk:ident, $service:literal) => {{
            let mut builder = $sdk::config::Builder::from(&config);
            // Only an override replaces the endpoint: otherwise the chain's own
            // (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, the profile) stays.
            if let Some(url) = settings.endpoint($service) {
                builder.set_endpoint_url(Some(url.to_owned()));
            }
            $sdk::Client::from_conf(builder.build())
        }};
    }
    Ok(AwsClients {
        ecs: client!(aws_sdk_ecs, "ecs"),
        iam: client!(aws_sdk_iam, "iam"),
        logs: client!(aws_sdk_cloudwatchlogs, "logs"),
        eks: client!(aws_sdk_eks, "eks"),
        sts: client!(aws_sdk_sts, "sts"),
        config,
        settings: settings.clone(),
    })
}

/// An AWS error as one line: the service's error code and message, or the transport's error.
/// An answer the SDK cannot parse (a proxy's page, an XML error where JSON was expected) is
/// quoted from its body, so the user still reads what the server said.
pub fn error_text<E>(
    error: &aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::http::Response,
    >,
) -> String
where
    E: aws_smithy_runtime_api::client::result::CreateUnhandledError
        + std::error::Error
        + aws_sdk_ecs::error::ProvideErrorMetadata
        + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match error {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            match (inner.code(), inner.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => {
                    let raw = service.raw();
                    let body = raw
                        .body()
                        .bytes()
                        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
                        .unwrap_or_default();
                    format!("HTTP {}: {}", raw.status().as_u16(), unparsed_error(&body))
                }
            }
        }
        other => error_chain(other),
    }
}

/// `Code: Message` from an XML error body, or the body's start.
fn unparsed_error(body: &str) -> String {
    let element = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find('<')? + start;
        Some(body[start..end].trim().to_owned())
    };
    match (element("Code"), element("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => body.trim().chars().take(300).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_the_sdk_cannot_parse_are_quoted() {
        let xml = r#"<?xml version="1.0"?><ErrorResponse><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error></ErrorResponse>"#;
        assert_eq!(
            unparsed_error(xml),
            "InvalidClientTokenId: The security token included in the request is invalid."
        );
        assert_eq!(unparsed_error("  Bad Gateway\n"), "Bad Gateway");
    }
}
