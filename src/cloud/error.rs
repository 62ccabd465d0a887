//! The cloud layer's error: the EC2 action that failed, with the service's code kept as a field
//! so callers can match on it (`InvalidInstanceID.NotFound`, `DependencyViolation`, …).

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("{action} failed: {message}")]
    Api {
        action: &'static str,
        code: Option<String>,
        message: String,
    },
    #[error("cannot reach the EC2 endpoint {endpoint}: {message}")]
    Unreachable { endpoint: String, message: String },
    #[error("{endpoint:?} is not a usable EC2 endpoint: {reason}")]
    BadEndpoint { endpoint: String, reason: String },
    #[error("cannot read the CA bundle {path}: {source}")]
    CaBundle {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout { what: String, waited: Duration },
    #[error("instance {instance} {state} while waiting for it to run{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    InstanceGone {
        instance: String,
        state: String,
        reason: Option<String>,
    },
}

impl CloudError {
    pub fn code(&self) -> Option<&str> {
        match self {
            CloudError::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    pub fn hint(&self) -> Option<String> {
        let code = self.code().unwrap_or_default();
        Some(match (self, code) {
            (_, "AuthFailure" | "SignatureDoesNotMatch" | "InvalidClientTokenId") => {
                "check the access key and secret (`docker euca login` stores new ones)".into()
            }
            (_, c) if c.starts_with("InvalidAMIID") => "check --image: `euca-describe-images` lists the images you may use".into(),
            (_, "InvalidParameterValue") if self.to_string().contains("Failed to bind") => {
                "the cloud rejected a parameter it does not know; please report this".into()
            }
            (CloudError::Unreachable { .. }, _) => {
                "check --endpoint (http://HOST:8773/services/compute/ or https://ec2.DOMAIN/) and that the cloud is up".into()
            }
            (CloudError::BadEndpoint { .. }, _) => "use http://HOST:8773/services/compute/ or https://ec2.DOMAIN/".into(),
            (CloudError::Timeout { .. }, _) => "the cloud is slow or the instance is stuck; retry, or raise the timeout".into(),
            _ => return None,
        })
    }
}

/// Turns an SDK error into a [`CloudError`] naming the action.
pub fn from_sdk<E, R>(
    action: &'static str,
    endpoint: &str,
    err: aws_sdk_ec2::error::SdkError<E, R>,
) -> CloudError
where
    E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_ec2::error::SdkError;
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            CloudError::Api {
                action,
                code: e.code().map(str::to_string),
                message: e
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| e.to_string()),
            }
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => CloudError::Unreachable {
            endpoint: endpoint.to_string(),
            message: source_chain(&err),
        },
        _ => CloudError::Api {
            action,
            code: None,
            message: source_chain(&err),
        },
    }
}

fn source_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}
