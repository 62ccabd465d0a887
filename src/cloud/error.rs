//! The cloud layer's error: the EC2 action that failed, with the service's code kept as a field
//! so callers can match on it (`InvalidInstanceID.NotFound`, `DependencyViolation`, …).

use std::time::Duration;

use aws_smithy_runtime_api::http::Response as HttpResponse;

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("{action} failed{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Api {
        action: &'static str,
        code: Option<String>,
        message: String,
    },
    /// The endpoint answered, but not in EC2's language (the SDK found no error code in the
    /// answer, which it reports as an "unhandled error"): a web server's 404 page for a wrong
    /// path, a proxy's 502 page, a login portal. Not a refusal: nothing says the cloud saw it.
    #[error(
        "{action} on {endpoint}: the endpoint answered HTTP {status} with something that is not an EC2 answer ({})",
        answer_kind(content_type.as_deref(), summary.as_deref())
    )]
    NotEc2 {
        action: &'static str,
        endpoint: String,
        status: u16,
        /// The media type, without parameters (`text/html`).
        content_type: Option<String>,
        /// The page's `<title>`, or the first line of a text answer.
        summary: Option<String>,
    },
    /// The endpoint's TLS certificate is not signed by a CA we trust (the system's, and
    /// `--ca-bundle`'s): a private cloud's in-house CA, most often.
    #[error("{action}: the TLS certificate of {endpoint} is not trusted ({reason})")]
    UntrustedCertificate {
        action: &'static str,
        endpoint: String,
        reason: String,
    },
    #[error("{action}: no answer from the EC2 endpoint {endpoint}: {message}")]
    Unreachable {
        action: &'static str,
        endpoint: String,
        message: String,
    },
    #[error("{endpoint:?} is not a usable EC2 endpoint: {reason}")]
    BadEndpoint { endpoint: String, reason: String },
    #[error("cannot read the CA bundle {path}: {source}")]
    CaBundle {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The CA bundle holds no certificate, or a PEM section that does not decode: checked
    /// where it is read, so that a wrong file is named instead of every TLS call failing.
    #[error("the CA bundle {path} holds no PEM certificate")]
    CaBundleNotPem { path: std::path::PathBuf },
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout { what: String, waited: Duration },
    #[error("instance {instance} {state} while waiting for it to run{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    InstanceGone {
        instance: String,
        state: String,
        reason: Option<String>,
    },
}

/// A copy for each of several waiters of one failed call (an `io::Error` keeps its kind and
/// message).
impl Clone for CloudError {
    fn clone(&self) -> Self {
        use CloudError::*;
        match self {
            Api {
                action,
                code,
                message,
            } => Api {
                action,
                code: code.clone(),
                message: message.clone(),
            },
            NotEc2 {
                action,
                endpoint,
                status,
                content_type,
                summary,
            } => NotEc2 {
                action,
                endpoint: endpoint.clone(),
                status: *status,
                content_type: content_type.clone(),
                summary: summary.clone(),
            },
            Unreachable {
                action,
                endpoint,
                message,
            } => Unreachable {
                action,
                endpoint: endpoint.clone(),
                message: message.clone(),
            },
            BadEndpoint { endpoint, reason } => BadEndpoint {
                endpoint: endpoint.clone(),
                reason: reason.clone(),
            },
            CaBundle { path, source } => CaBundle {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            CaBundleNotPem { path } => CaBundleNotPem { path: path.clone() },
            UntrustedCertificate {
                action,
                endpoint,
                reason,
            } => UntrustedCertificate {
                action,
                endpoint: endpoint.clone(),
                reason: reason.clone(),
            },
            Timeout { what, waited } => Timeout {
                what: what.clone(),
                waited: *waited,
            },
            InstanceGone {
                instance,
                state,
                reason,
            } => InstanceGone {
                instance: instance.clone(),
                state: state.clone(),
                reason: reason.clone(),
            },
        }
    }
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
                "this cloud's EC2 does not take a parameter that was sent: with --dialect aws on a \
                 Eucalyptus cloud, leave --dialect out (auto picks eucalyptus); otherwise please report this"
                    .into()
            }
            (_, "InvalidParameterValue") if self.to_string().contains("InstanceType") => {
                "check --instance-type: `euca-describe-instance-types` lists the types this cloud offers".into()
            }
            (CloudError::CaBundle { .. }, _) => {
                "check the path given with --ca-bundle (or the profile's: `docker euca login --ca-bundle FILE` replaces it)".into()
            }
            (CloudError::CaBundleNotPem { .. }, _) => "give a PEM file (-----BEGIN CERTIFICATE-----)".into(),
            (CloudError::UntrustedCertificate { .. }, _) => {
                "give the CA that signed it with --ca-bundle FILE (PEM); `docker euca login --ca-bundle FILE` keeps it in the profile".into()
            }
            (CloudError::Unreachable { .. }, _) => {
                "check --endpoint (http://HOST:8773/services/compute/ or https://ec2.DOMAIN/) and that the cloud is up".into()
            }
            (CloudError::BadEndpoint { .. }, _) => "use http://HOST:8773/services/compute/ or https://ec2.DOMAIN/".into(),
            (CloudError::NotEc2 { status: 502..=504, .. }, _) => {
                "a proxy or gateway answered for the cloud: check that the cloud is up, and HTTPS_PROXY/NO_PROXY".into()
            }
            (CloudError::NotEc2 { .. }, _) => {
                "check the endpoint URL: Eucalyptus serves EC2 under the path /services/compute/ (http://HOST:8773/services/compute/), a DNS-style cloud at https://ec2.DOMAIN/".into()
            }
            (CloudError::Timeout { .. }, _) => "the cloud is slow or the instance is stuck; retry, or raise the timeout".into(),
            _ => return None,
        })
    }
}

/// A cloud's message on one line: Eucalyptus lists the fields its binding refused one per
/// line ("Failed to bind the following fields:\nA = 1\nB = 2"); they follow the first line
/// here, separated by commas.
fn one_line(message: &str) -> String {
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default().to_string();
    let rest: Vec<&str> = lines.collect();
    if rest.is_empty() {
        first
    } else {
        format!("{first} {}", rest.join(", "))
    }
}

/// Turns an SDK error into a [`CloudError`] naming the action. An error answer with an EC2 code
/// keeps it (callers match on it); one without a code is not EC2 talking, so the message says
/// what did answer instead of the SDK's bare "unhandled error".
pub fn from_sdk<E>(
    action: &'static str,
    endpoint: &str,
    err: aws_sdk_ec2::error::SdkError<E, HttpResponse>,
) -> CloudError
where
    E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_ec2::error::SdkError;
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match e.code() {
                Some(code) => CloudError::Api {
                    action,
                    code: Some(code.to_string()),
                    message: one_line(
                        &e.message()
                            .map(str::to_string)
                            .unwrap_or_else(|| e.to_string()),
                    ),
                },
                None => not_ec2(action, endpoint, service.raw()),
            }
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            match certificate_problem(&err) {
                Some(reason) => CloudError::UntrustedCertificate {
                    action,
                    endpoint: endpoint.to_string(),
                    reason,
                },
                None => CloudError::Unreachable {
                    action,
                    endpoint: endpoint.to_string(),
                    message: crate::error_text::chain(&err),
                },
            }
        }
        SdkError::ResponseError(response) => CloudError::Api {
            action,
            code: None,
            message: format!(
                "the answer from {endpoint} (HTTP {}) could not be read: {}",
                response.raw().status().as_u16(),
                crate::error_text::chain(&err)
            ),
        },
        _ => CloudError::Api {
            action,
            code: None,
            message: crate::error_text::chain(&err),
        },
    }
}

/// Why the endpoint's certificate was refused, if that is what stopped the call: a rustls
/// certificate error anywhere in the chain.
fn certificate_problem(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(rustls::Error::InvalidCertificate(why)) = e.downcast_ref::<rustls::Error>() {
            return Some(format!("{why:?}"));
        }
        let text = e.to_string();
        if text.contains("invalid peer certificate") {
            return Some(text.rsplit(": ").next().unwrap_or(&text).to_string());
        }
        cause = e.source();
    }
    None
}

/// [`CloudError::NotEc2`] from what answered.
fn not_ec2(action: &'static str, endpoint: &str, raw: &HttpResponse) -> CloudError {
    CloudError::NotEc2 {
        action,
        endpoint: endpoint.to_string(),
        status: raw.status().as_u16(),
        content_type: raw
            .headers()
            .get("content-type")
            .map(|t| t.split(';').next().unwrap_or(t).trim().to_string())
            .filter(|t| !t.is_empty()),
        summary: raw.body().bytes().and_then(answer_summary),
    }
}

/// What the answer was, for the message: `text/html: "502 Bad Gateway"`.
fn answer_kind(content_type: Option<&str>, summary: Option<&str>) -> String {
    let kind = content_type.unwrap_or("no content type");
    match summary {
        Some(s) => format!("{kind}: {s:?}"),
        None => kind.to_string(),
    }
}

/// A few words that say what answered: an HTML page's `<title>`, or the first line of a body
/// that is not markup. Whitespace is squeezed and the result cut to 80 characters, so a whole
/// page never lands in an error line.
fn answer_summary(body: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    // ASCII lowercasing keeps every byte offset, so positions found in `lower` fit `head`.
    let lower = head.to_ascii_lowercase();
    let text = match lower.find("<title") {
        Some(open) => {
            let start = open + lower[open..].find('>')? + 1;
            let end = start
                + lower[start..]
                    .find("</title")
                    .unwrap_or(lower.len() - start);
            &head[start..end]
        }
        None if !head.trim_start().starts_with('<') => {
            head.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
        }
        None => "",
    };
    let squeezed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!squeezed.is_empty()).then(|| squeezed.chars().take(80).collect())
}

/// Codes that mean the cloud may have acted even though the call failed (or that it was busy):
/// the answer is lost, not a refusal.
const TRANSIENT_CODES: &[&str] = &[
    "ServiceUnavailable",
    "Unavailable",
    "InternalError",
    "InternalFailure",
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
];

impl CloudError {
    /// Whether the cloud clearly refused the call (an error code that is not a transient one):
    /// then nothing was made. Anything else (no answer, a timeout, a 5xx) may hide a call the
    /// cloud carried out.
    pub fn is_refusal(&self) -> bool {
        self.code().is_some_and(|c| !TRANSIENT_CODES.contains(&c))
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::*;

    fn api(code: Option<&str>) -> CloudError {
        CloudError::Api {
            action: "RunInstances",
            code: code.map(str::to_string),
            message: "x".into(),
        }
    }

    #[test]
    fn only_a_definite_code_is_a_refusal() {
        assert!(api(Some("InvalidParameterValue")).is_refusal());
        assert!(api(Some("InvalidGroup.Duplicate")).is_refusal());
        assert!(!api(Some("ServiceUnavailable")).is_refusal());
        assert!(!api(Some("RequestLimitExceeded")).is_refusal());
        assert!(!api(None).is_refusal());
        let lost = CloudError::Unreachable {
            action: "RunInstances",
            endpoint: "http://x/".into(),
            message: "connection reset".into(),
        };
        assert!(!lost.is_refusal());
    }
}

#[cfg(test)]
mod not_ec2_tests {
    use aws_sdk_ec2::{error::SdkError, operation::describe_instances::DescribeInstancesError};
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::{body::SdkBody, error::ErrorMetadata};

    use super::*;

    fn answer(status: u16, content_type: Option<&'static str>, body: &str) -> HttpResponse {
        let mut raw = HttpResponse::new(
            StatusCode::try_from(status).unwrap(),
            SdkBody::from(body.to_string()),
        );
        if let Some(t) = content_type {
            raw.headers_mut().insert("content-type", t);
        }
        raw
    }

    #[test]
    fn an_unhandled_error_names_action_status_endpoint_and_page() {
        let page = "<html><head>\n<TITLE>404  Not\nFound</TITLE></head><body>nope</body></html>";
        let err = SdkError::service_error(
            DescribeInstancesError::unhandled("failed to parse XML"),
            answer(404, Some("text/html; charset=utf-8"), page),
        );
        let err = from_sdk("DescribeInstances", "http://x/", err);
        assert_eq!(
            err.to_string(),
            "DescribeInstances on http://x/: the endpoint answered HTTP 404 with something that is not an EC2 answer (text/html: \"404 Not Found\")"
        );
        assert!(err.hint().unwrap().contains("/services/compute/"));
        assert_eq!(err.code(), None);
        assert!(!err.is_refusal());
    }

    #[test]
    fn a_proxy_page_points_at_the_proxy() {
        let err = SdkError::service_error(
            DescribeInstancesError::generic(ErrorMetadata::builder().build()),
            answer(502, None, "Bad Gateway\n"),
        );
        let err = from_sdk("RunInstances", "http://cloud:8773/services/compute/", err);
        assert_eq!(
            err.to_string(),
            "RunInstances on http://cloud:8773/services/compute/: the endpoint answered HTTP 502 with something that is not an EC2 answer (no content type: \"Bad Gateway\")"
        );
        assert!(err.hint().unwrap().contains("proxy"));
    }

    #[test]
    fn an_ec2_error_keeps_its_code() {
        let meta = ErrorMetadata::builder()
            .code("InvalidInstanceID.NotFound")
            .message("The instance ID 'i-1' does not exist")
            .build();
        let err = SdkError::service_error(
            DescribeInstancesError::generic(meta),
            answer(400, Some("text/xml"), "<Response/>"),
        );
        let err = from_sdk("DescribeInstances", "http://x/", err);
        assert_eq!(err.code(), Some("InvalidInstanceID.NotFound"));
        assert_eq!(
            err.to_string(),
            "DescribeInstances failed (InvalidInstanceID.NotFound): The instance ID 'i-1' does not exist"
        );
    }

    #[test]
    fn answers_are_summed_up_in_a_few_words() {
        assert_eq!(answer_kind(Some("text/html"), None), "text/html");
        assert_eq!(answer_kind(None, Some("x")), "no content type: \"x\"");
        assert_eq!(answer_summary(b"<html><body>hi</body></html>"), None);
        assert_eq!(answer_summary(b""), None);
        assert_eq!(
            answer_summary(b"<title>\xc3\xa9t\xc3\xa9</title>").as_deref(),
            Some("\u{e9}t\u{e9}")
        );
        assert_eq!(
            answer_summary("x".repeat(200).as_bytes()).map(|s| s.len()),
            Some(80)
        );
        assert_eq!(
            answer_summary(b"<title>unterminated").as_deref(),
            Some("unterminated")
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_multi_line_message_is_shown_on_one_line() {
        assert_eq!(
            super::one_line(
                "Failed to bind the following fields:\nTagSpecification.1.ResourceType = instance\nMetadataOptions.HttpTokens = required\n"
            ),
            "Failed to bind the following fields: TagSpecification.1.ResourceType = instance, \
             MetadataOptions.HttpTokens = required"
        );
        assert_eq!(super::one_line("  one line  "), "one line");
    }
}
