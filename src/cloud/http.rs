//! The SDK's HTTP client: HTTP/1.1 over rustls (ring), trusting the system's roots and the
//! `--ca-bundle`. EC2's query API, AWS's and Eucalyptus's alike, is HTTP/1.1; the SDK's own
//! client carries HTTP/2 and a proxy layer as well (0.4 MB of the binary that no call uses).
//!
//! Errors are classified as the SDK's client does, so that its retries behave the same: a
//! connection that could not be made, was closed or reset is `io` (retried), a timeout is
//! `timeout`, a request the SDK could not turn into HTTP is `user`.

use std::{
    error::Error,
    sync::{Arc, Mutex},
    time::Duration,
};

use aws_smithy_runtime_api::client::{
    http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
        SharedHttpConnector,
    },
    orchestrator::{HttpRequest, HttpResponse},
    result::ConnectorError,
    runtime_components::RuntimeComponents,
};
use aws_smithy_types::body::SdkBody;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector as TcpConnector},
    rt::TokioExecutor,
};

type Https = hyper_rustls::HttpsConnector<TcpConnector>;

/// The client: one connector (and its connection pool) per distinct timeout settings.
#[derive(Debug)]
struct Http1Client {
    tls: Arc<rustls::ClientConfig>,
    connectors: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

type Timeouts = (Option<Duration>, Option<Duration>);

/// Builds the SDK's HTTP client trusting the system's roots and the PEM certificates of
/// `extra_roots` (the CA bundle); fails on a certificate of the bundle that does not decode.
pub fn client(extra_roots: Option<&[u8]>) -> Result<SharedHttpClient, String> {
    Ok(SharedHttpClient::new(Http1Client {
        tls: Arc::new(tls_config(extra_roots)?),
        connectors: Mutex::new(Vec::new()),
    }))
}

/// rustls (ring) with the system's roots and those of `extra_roots`.
fn tls_config(extra_roots: Option<&[u8]>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    // A system store that cannot be read in part still gives the rest (as the SDK does).
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(pem) = extra_roots {
        for cert in rustls_pemfile::certs(&mut &pem[..]) {
            let cert = cert.map_err(|e| format!("CA bundle: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("CA bundle certificate: {e}"))?;
        }
    }
    // No ALPN here: the connector offers what it enables (HTTP/1.1).
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS versions: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

impl HttpClient for Http1Client {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = connectors.iter().find(|(k, _)| *k == key) {
            return c.clone();
        }
        let connector = SharedHttpConnector::new(Http1Connector::new(self.tls.clone(), key));
        connectors.push((key, connector.clone()));
        connector
    }
}

#[derive(Debug, Clone)]
struct Http1Connector {
    client: Client<Https, SdkBody>,
    read_timeout: Option<Duration>,
}

impl Http1Connector {
    fn new(tls: Arc<rustls::ClientConfig>, (connect, read): Timeouts) -> Self {
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(connect);
        tcp.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        Http1Connector {
            client: Client::builder(TokioExecutor::new()).build(https),
            read_timeout: read,
        }
    }
}

impl HttpConnector for Http1Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let sent = self.client.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let answer = match read_timeout {
                Some(limit) => match tokio::time::timeout(limit, sent).await {
                    Ok(answer) => answer,
                    Err(elapsed) => return Err(ConnectorError::timeout(elapsed.into())),
                },
                None => sent.await,
            };
            let answer = answer.map_err(classify)?.map(SdkBody::from_body_1_x);
            HttpResponse::try_from(answer).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// The SDK's reading of a failed exchange (see the module docs).
fn classify(err: hyper_util::client::legacy::Error) -> ConnectorError {
    let hyper = find_source::<hyper::Error>(&err);
    if hyper.is_some_and(|h| h.is_timeout()) || timed_out(&err) {
        return ConnectorError::timeout(err.into());
    }
    if hyper.is_some_and(|h| h.is_user()) {
        return ConnectorError::user(err.into());
    }
    let dropped = hyper.is_some_and(|h| h.is_closed() || h.is_canceled());
    if err.is_connect() || dropped || find_source::<std::io::Error>(&err).is_some() {
        return ConnectorError::io(err.into());
    }
    if hyper.is_some_and(|h| h.is_incomplete_message()) {
        return ConnectorError::other(
            err.into(),
            Some(aws_smithy_types::retry::ErrorKind::TransientError),
        );
    }
    ConnectorError::other(err.into(), None)
}

/// A connect that hit its timeout (hyper-util's connector reports it as an I/O `TimedOut`).
fn timed_out(err: &(dyn Error + 'static)) -> bool {
    find_source::<std::io::Error>(err).is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
}

fn find_source<'a, E: Error + 'static>(err: &'a (dyn Error + 'static)) -> Option<&'a E> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Arc<rustls::ClientConfig> {
        Arc::new(tls_config(None).expect("the system's roots"))
    }

    #[test]
    fn a_connector_is_made_for_the_configuration_the_client_makes() {
        // The connector is made at the first call: a configuration it refuses (hyper-rustls
        // panics on a preset ALPN) must show here, not in the first EC2 call.
        let _rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let connector = Http1Connector::new(config(), (Some(Duration::from_secs(1)), None));
        assert!(connector.read_timeout.is_none());
    }

    #[test]
    fn a_ca_bundle_that_is_not_pem_certificates_is_refused() {
        let broken = b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
        assert!(tls_config(Some(broken)).is_err());
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_error_the_sdk_retries() {
        let connector = Http1Connector::new(config(), (Some(Duration::from_secs(2)), None));
        // A port nobody listens on, on loopback: refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let request = HttpRequest::try_from(
            hyper::Request::builder()
                .uri(format!("http://127.0.0.1:{port}/"))
                .body(SdkBody::empty())
                .unwrap(),
        )
        .unwrap();
        let err = connector.call(request).await.unwrap_err();
        assert!(err.is_io(), "{err:?}");
    }
}
