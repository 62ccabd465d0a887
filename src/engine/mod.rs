//! The remote docker engine, over mutual TLS with bollard.

pub mod swarm;

use std::{path::Path, time::Duration};

use bollard::{API_DEFAULT_VERSION, BollardRequest, Docker};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot set up a TLS client for {url}: {source}")]
    Client {
        url: String,
        source: bollard::errors::Error,
    },
    #[error("the docker daemon at {url} did not answer /version: {message}")]
    Version { url: String, message: String },
    #[error("cannot read the client TLS files in {dir}: {message}")]
    TlsFiles { dir: String, message: String },
    #[error("the docker daemon at {url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("{call} on the docker daemon at {url} failed: {message}")]
    Swarm {
        url: String,
        call: &'static str,
        message: String,
    },
}

impl EngineError {
    pub fn hint(&self) -> String {
        if let EngineError::Swarm { .. } = self {
            return "`docker --context CLUSTER node ls` shows the cluster as its managers see it;                     `docker euca swarm ls` lists the clusters"
                .into();
        }
        "check that the instance runs and its security group lets you reach port 2376 (--allow-cidr); \
         `docker euca regenerate-certs NAME` if its address changed outside docker-euca"
            .into()
    }
}

/// A bollard client for one daemon over our own rustls client: it trusts the machine's CA
/// alone (bollard's `connect_with_ssl` adds the system's roots, which a daemon endpoint has no
/// business being vouched for by, and loads them anew for every client: milliseconds each, for
/// every machine `ls` probes) and keeps its connection, so that the version negotiation and the
/// call share one TLS handshake.
pub(crate) fn client(url: &str, tls_dir: &Path, timeout: Duration) -> Result<Docker, EngineError> {
    let client = Client::builder(TokioExecutor::new()).build(connector(tls_dir, timeout)?);
    let transport = move |request: BollardRequest| {
        let client = client.clone();
        async move {
            client.request(request).await.map_err(|e| {
                bollard::errors::Error::from(std::io::Error::other(crate::error_text::chain(&e)))
            })
        }
    };
    let addr = url.replacen("tcp://", "https://", 1);
    Docker::connect_with_custom_transport(
        transport,
        Some(addr),
        timeout.as_secs().max(1),
        API_DEFAULT_VERSION,
    )
    .map_err(|source| EngineError::Client {
        url: url.to_string(),
        source,
    })
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// HTTPS with mutual TLS (the context's files), connecting within `timeout`.
fn connector(tls_dir: &Path, timeout: Duration) -> Result<Https, EngineError> {
    let config = tls_config(tls_dir).map_err(|message| EngineError::TlsFiles {
        dir: tls_dir.display().to_string(),
        message,
    })?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(timeout));
    Ok(hyper_rustls::HttpsConnector::from((http, config)))
}

/// Mutual TLS with the files of a docker context's TLS directory.
fn tls_config(dir: &Path) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let read = |file: &str| std::fs::read(dir.join(file)).map_err(|e| format!("{file}: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&read("ca.pem")?) {
        roots
            .add(ca.map_err(|e| format!("ca.pem: {e}"))?)
            .map_err(|e| format!("ca.pem: {e}"))?;
    }
    let chain = CertificateDer::pem_slice_iter(&read("cert.pem")?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cert.pem: {e}"))?;
    let key =
        PrivateKeyDer::from_pem_slice(&read("key.pem")?).map_err(|e| format!("key.pem: {e}"))?;
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("cert.pem and key.pem: {e}"))
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
/// (`ca.pem`, `cert.pem`, `key.pem`, as in a docker context): one unversioned `GET /version`
/// (every daemon answers it in its own API version), so one round trip after the handshake where
/// a negotiating client makes two — what `ls` does for every running machine at once.
pub async fn version(
    url: &str,
    tls_dir: &Path,
    timeout: Duration,
) -> Result<EngineVersion, EngineError> {
    use http_body_util::BodyExt;
    let client: Client<Https, http_body_util::Empty<bytes::Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector(tls_dir, timeout)?);
    let failed = |message: String| EngineError::Version {
        url: url.to_string(),
        message,
    };
    let uri: hyper::Uri = format!("{}/version", url.replacen("tcp://", "https://", 1))
        .parse()
        .map_err(|e| failed(format!("{e}")))?;
    let call = async {
        let answer = client
            .get(uri)
            .await
            .map_err(|e| failed(crate::error_text::chain(&e)))?;
        let status = answer.status();
        let body = answer
            .into_body()
            .collect()
            .await
            .map_err(|e| failed(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(failed(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body).trim()
            )));
        }
        serde_json::from_slice::<bollard::models::SystemVersion>(&body)
            .map_err(|e| failed(format!("not a /version answer: {e}")))
    };
    let v = tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| EngineError::Timeout {
            url: url.to_string(),
            timeout,
        })??;
    Ok(EngineVersion {
        version: v.version.unwrap_or_default(),
        api_version: v.api_version.unwrap_or_default(),
        os: v.os.unwrap_or_default(),
        arch: v.arch.unwrap_or_default(),
    })
}
