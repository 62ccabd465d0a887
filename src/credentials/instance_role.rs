//! `--use-instance-role`: the instance role's keys from the instance metadata service, IMDSv2
//! only (a session token first, then `iam/security-credentials/ROLE`). At
//! `AWS_EC2_METADATA_SERVICE_ENDPOINT` if set, else 169.254.169.254; asked only when the flag
//! says so. Three plain HTTP calls on the hyper client the engine module already uses.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

use super::{AccessKeys, CredentialsError};
use crate::secret::Secret;

const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
/// Each call's limit: the service answers in milliseconds, or the instance has none.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
const TOKEN_TTL_SECONDS: &str = "21600";

/// The role's keys (with their session token).
pub async fn keys() -> Result<AccessKeys, CredentialsError> {
    let base = std::env::var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
    let base = base.trim_end_matches('/');
    let imds = Imds {
        client: Client::builder(TokioExecutor::new()).build_http(),
    };
    let token = imds
        .call(
            "PUT",
            &format!("{base}/latest/api/token"),
            ("X-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL_SECONDS),
        )
        .await?;
    let auth = ("X-aws-ec2-metadata-token", token.trim());
    let roles = format!("{base}/latest/meta-data/iam/security-credentials/");
    let listed = imds.call("GET", &roles, auth).await?;
    let role = listed
        .lines()
        .next()
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| failed("the instance has no role"))?
        .trim()
        .to_string();
    let answer = imds.call("GET", &format!("{roles}{role}"), auth).await?;
    parse_keys(&answer)
}

struct Imds {
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Imds {
    /// One call's body; anything but 200 is an error naming the path.
    async fn call(
        &self,
        method: &str,
        url: &str,
        header: (&str, &str),
    ) -> Result<String, CredentialsError> {
        let request = hyper::Request::builder()
            .method(method)
            .uri(url)
            .header(header.0, header.1)
            .body(Full::new(Bytes::new()))
            .map_err(|e| failed(&format!("{url}: {e}")))?;
        let response = tokio::time::timeout(CALL_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| failed(&format!("{url}: no answer within {CALL_TIMEOUT:?}")))?
            .map_err(|e| failed(&format!("{url}: {}", crate::error_text::chain(&e))))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| failed(&format!("{url}: {e}")))?
            .to_bytes();
        if !status.is_success() {
            return Err(failed(&format!("{url}: HTTP {status}")));
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoleKeys {
    code: Option<String>,
    access_key_id: String,
    secret_access_key: String,
    token: Option<String>,
}

/// The role's answer: `{"Code": "Success", "AccessKeyId": …, "SecretAccessKey": …, "Token": …}`.
fn parse_keys(answer: &str) -> Result<AccessKeys, CredentialsError> {
    let keys: RoleKeys = serde_json::from_str(answer)
        .map_err(|e| failed(&format!("the role's keys are not the JSON expected ({e})")))?;
    if keys.code.as_deref().is_some_and(|c| c != "Success") {
        return Err(failed(&format!(
            "the service answered {:?}",
            keys.code.unwrap_or_default()
        )));
    }
    Ok(AccessKeys {
        access_key_id: keys.access_key_id,
        secret_access_key: Secret::new(keys.secret_access_key),
        session_token: keys.token.map(Secret::new),
    })
}

fn failed(what: &str) -> CredentialsError {
    CredentialsError::InstanceRole(what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_answer_gives_keys_with_their_token_and_a_failure_is_said() {
        let keys = parse_keys(
            r#"{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIA1","SecretAccessKey":"s","Token":"t","Expiration":"2030-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(keys.access_key_id, "ASIA1");
        assert_eq!(keys.session_token.unwrap().expose(), "t");
        let err = parse_keys(
            r#"{"Code":"AssumeRoleUnauthorizedAccess","AccessKeyId":"","SecretAccessKey":""}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("AssumeRoleUnauthorizedAccess"),
            "{err}"
        );
        assert!(parse_keys("<html>").is_err());
    }
}
