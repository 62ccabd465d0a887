//! The remote docker engine, over mutual TLS with bollard.

use std::{path::Path, time::Duration};

use bollard::{API_DEFAULT_VERSION, Docker};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot set up a TLS client for {url}: {source}")]
    Client {
        url: String,
        source: bollard::errors::Error,
    },
    #[error("the docker daemon at {url} did not answer /version: {source}")]
    Version {
        url: String,
        source: bollard::errors::Error,
    },
    #[error("the docker daemon at {url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
}

impl EngineError {
    pub fn hint(&self) -> String {
        "check that the instance runs and its security group lets you reach port 2376 (--allow-cidr); \
         `docker euca regenerate-certs NAME` if its address changed outside docker-euca"
            .into()
    }
}

/// What `/version` says about the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineVersion {
    pub version: String,
    pub api_version: String,
    pub os: String,
    pub arch: String,
}

/// Calls `/version` on `url` (`tcp://HOST:2376`) with the client TLS files in `tls_dir`
/// (`ca.pem`, `cert.pem`, `key.pem`, as in a docker context).
pub async fn version(
    url: &str,
    tls_dir: &Path,
    timeout: Duration,
) -> Result<EngineVersion, EngineError> {
    let docker = Docker::connect_with_ssl(
        url,
        &tls_dir.join("key.pem"),
        &tls_dir.join("cert.pem"),
        &tls_dir.join("ca.pem"),
        timeout.as_secs().max(1),
        API_DEFAULT_VERSION,
    )
    .map_err(|source| EngineError::Client {
        url: url.to_string(),
        source,
    })?;
    let call = async {
        let docker = docker.negotiate_version().await?;
        docker.version().await
    };
    let v = tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| EngineError::Timeout {
            url: url.to_string(),
            timeout,
        })?
        .map_err(|source| match source {
            bollard::errors::Error::RequestTimeoutError => EngineError::Timeout {
                url: url.to_string(),
                timeout,
            },
            source => EngineError::Version {
                url: url.to_string(),
                source,
            },
        })?;
    Ok(EngineVersion {
        version: v.version.unwrap_or_default(),
        api_version: v.api_version.unwrap_or_default(),
        os: v.os.unwrap_or_default(),
        arch: v.arch.unwrap_or_default(),
    })
}
