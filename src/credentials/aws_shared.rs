//! The AWS shared config (`~/.aws/config`, `~/.aws/credentials`; `AWS_CONFIG_FILE`,
//! `AWS_SHARED_CREDENTIALS_FILE`; the profile `AWS_PROFILE` names, else `default`) as a
//! read-only source of keys and region, through aws-config: static keys and
//! `credential_process`. Nothing is written, and the keys it yields stay in memory.
//!
//! Instance-role and container credentials are refused here: a profile whose
//! `credential_source` names them would have the plugin dial the instance metadata address
//! (or the container one) by surprise.

use aws_config::{
    imds::credentials::ImdsCredentialsProvider,
    meta::region::ProvideRegion,
    profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider},
    provider_config::ProviderConfig,
};
use aws_credential_types::provider::{self, ProvideCredentials, future};
use aws_smithy_http_client::tls;

use super::{AccessKeys, CredentialsError};
use crate::secret::Secret;

/// The profile used when `AWS_PROFILE` names none.
pub const DEFAULT_AWS_PROFILE: &str = "default";

/// What one profile of the shared config gave.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedProfile {
    pub name: String,
    pub keys: AccessKeys,
    pub region: Option<String>,
}

/// The profile to read: `AWS_PROFILE`, else `default`.
pub fn selected(env: &dyn Fn(&str) -> Option<String>) -> String {
    env("AWS_PROFILE")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_AWS_PROFILE.to_string())
}

/// The keys (and region) of profile `name`, running its `credential_process` if it has one.
/// `None` when there is no shared config, no such profile, or no credentials in it.
pub async fn load(name: &str) -> Result<Option<SharedProfile>, CredentialsError> {
    let provider = ProfileFileCredentialsProvider::builder()
        .profile_name(name)
        .with_custom_provider(
            "Ec2InstanceMetadata",
            NoMetadataService("Ec2InstanceMetadata"),
        )
        .with_custom_provider("EcsContainer", NoMetadataService("EcsContainer"))
        .build();
    let credentials = match provider.provide_credentials().await {
        Ok(c) => c,
        Err(provider::error::CredentialsError::CredentialsNotLoaded(_)) => return Ok(None),
        // aws-config says "no such profile" only in words
        Err(e)
            if crate::error_text::chain(&e)
                .contains(&format!("profile `{name}` was not defined")) =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(CredentialsError::AwsProfile {
                profile: name.to_string(),
                message: crate::error_text::chain(&e),
            });
        }
    };
    let region = ProfileFileRegionProvider::builder()
        .profile_name(name)
        .build()
        .region()
        .await
        .map(|r| r.to_string());
    Ok(Some(SharedProfile {
        name: name.to_string(),
        keys: AccessKeys {
            access_key_id: credentials.access_key_id().to_string(),
            secret_access_key: Secret::new(credentials.secret_access_key().to_string()),
            session_token: credentials
                .session_token()
                .map(|t| Secret::new(t.to_string())),
        },
        region,
    }))
}

/// `--use-instance-role`: the keys of the instance's role, from its metadata service (IMDSv2,
/// at `AWS_EC2_METADATA_SERVICE_ENDPOINT` if set, else 169.254.169.254). Only ever called when
/// the flag asks for it.
pub async fn instance_role() -> Result<AccessKeys, CredentialsError> {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let provider = ImdsCredentialsProvider::builder()
        .configure(&ProviderConfig::without_region().with_http_client(http))
        .build();
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| CredentialsError::InstanceRole(crate::error_text::chain(&e)))?;
    Ok(AccessKeys {
        access_key_id: credentials.access_key_id().to_string(),
        secret_access_key: Secret::new(credentials.secret_access_key().to_string()),
        session_token: credentials
            .session_token()
            .map(|t| Secret::new(t.to_string())),
    })
}

/// Stands in for the instance metadata and container credential sources.
#[derive(Debug)]
struct NoMetadataService(&'static str);

impl ProvideCredentials for NoMetadataService {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Err(
            provider::error::CredentialsError::invalid_configuration(format!(
                "credential_source = {} would dial a metadata service; docker-euca does not",
                self.0
            )),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_is_aws_profile_or_default() {
        assert_eq!(selected(&|_| None), "default");
        assert_eq!(
            selected(&|k| (k == "AWS_PROFILE").then(|| "".into())),
            "default"
        );
        assert_eq!(
            selected(&|k| (k == "AWS_PROFILE").then(|| "work".into())),
            "work"
        );
    }
}
