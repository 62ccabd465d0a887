//! The network probes doctor makes itself, each bounded by a timeout: a TCP connect, and a TLS
//! handshake that keeps the server's certificate even when verification fails (so that the
//! message can say what the certificate names, who issued it and until when it is valid).

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime},
};

use super::secs;

/// Why a TCP connection did not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TcpFailure {
    /// The host answered with a reset: nothing listens on the port.
    Refused,
    /// No answer at all: dropped by a firewall or security group, or the host is down.
    Timeout,
    Other(String),
}

impl TcpFailure {
    pub(super) fn describe(&self, addr: SocketAddr, timeout: Duration) -> String {
        match self {
            TcpFailure::Refused => format!("{addr} refused the connection"),
            TcpFailure::Timeout => format!("no answer from {addr} within {}", secs(timeout)),
            TcpFailure::Other(e) => format!("cannot connect to {addr}: {e}"),
        }
    }
}

/// Opens (and closes) a TCP connection; how long it took.
pub(super) async fn tcp(addr: SocketAddr, timeout: Duration) -> Result<Duration, TcpFailure> {
    let started = Instant::now();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_stream)) => Ok(started.elapsed()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(TcpFailure::Refused),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => Err(TcpFailure::Timeout),
        Ok(Err(e)) => Err(TcpFailure::Other(e.to_string())),
        Err(_) => Err(TcpFailure::Timeout),
    }
}

/// How to shake hands.
pub(super) struct TlsSetup {
    /// The CAs the server's chain must lead to.
    pub roots: RootCertStore,
    /// A client certificate chain and key, for mutual TLS.
    pub client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    pub server_name: ServerName<'static>,
    /// Accept a chain that verifies but does not name `server_name`: the name is judged on
    /// its own (see [`TlsOutcome::name_mismatch`]), so that one cause gives one failure.
    pub ignore_name: bool,
    /// An HTTP request to send once the handshake is done. With TLS 1.3 the server judges a
    /// client certificate only after the client has finished, so a refusal shows here.
    pub request: Option<String>,
}

/// What a handshake found.
#[derive(Debug)]
pub(super) struct TlsOutcome {
    /// The server's certificate (DER), as it was shown, also when verification failed.
    pub leaf: Option<Vec<u8>>,
    /// The first line of the answer to the request (`HTTP/1.1 200 OK`), if one was sent.
    pub result: Result<Option<String>, TlsFailure>,
    /// The chain verified, but does not name the server (with `ignore_name`).
    pub name_mismatch: bool,
}

#[derive(Debug)]
pub(super) enum TlsFailure {
    Setup(String),
    Connect(String),
    /// The TLS layer's own verdict: a certificate refused, an alert received.
    Handshake(rustls::Error),
    Io(String),
}

impl TlsFailure {
    pub(super) fn describe(&self) -> String {
        match self {
            TlsFailure::Setup(e) => format!("the TLS client cannot be set up: {e}"),
            TlsFailure::Connect(e) => format!("cannot connect: {e}"),
            TlsFailure::Handshake(e) => e.to_string(),
            TlsFailure::Io(e) => e.clone(),
        }
    }
}

/// Records the server's certificate, then verifies it as rustls would.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    leaf: Arc<Mutex<Option<Vec<u8>>>>,
    ignore_name: bool,
    name_mismatch: Arc<AtomicBool>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut slot) = self.leaf.lock() {
            *slot = Some(end_entity.to_vec());
        }
        // webpki checks the chain (trust, validity dates) before the name: a name error means
        // that everything else verified.
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) if self.ignore_name => {
                self.name_mismatch.store(true, Ordering::Relaxed);
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Connects to `addr` and shakes hands as `setup` says (in a blocking thread, every socket
/// operation bounded by `timeout`).
pub(super) async fn handshake(addr: SocketAddr, setup: TlsSetup, timeout: Duration) -> TlsOutcome {
    tokio::task::spawn_blocking(move || handshake_blocking(addr, setup, timeout))
        .await
        .unwrap_or_else(|e| TlsOutcome {
            leaf: None,
            result: Err(TlsFailure::Setup(format!("internal error: {e}"))),
            name_mismatch: false,
        })
}

fn handshake_blocking(addr: SocketAddr, setup: TlsSetup, timeout: Duration) -> TlsOutcome {
    let leaf = Arc::new(Mutex::new(None));
    let name_mismatch = Arc::new(AtomicBool::new(false));
    let result = shake(addr, setup, timeout, &leaf, &name_mismatch);
    let leaf = leaf.lock().ok().and_then(|l| l.clone());
    TlsOutcome {
        leaf,
        result,
        name_mismatch: name_mismatch.load(Ordering::Relaxed),
    }
}

fn setup_err(e: impl std::fmt::Display) -> TlsFailure {
    TlsFailure::Setup(e.to_string())
}

fn shake(
    addr: SocketAddr,
    setup: TlsSetup,
    timeout: Duration,
    leaf: &Arc<Mutex<Option<Vec<u8>>>>,
    name_mismatch: &Arc<AtomicBool>,
) -> Result<Option<String>, TlsFailure> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner =
        WebPkiServerVerifier::builder_with_provider(Arc::new(setup.roots), provider.clone())
            .build()
            .map_err(setup_err)?;
    let verifier = Recording {
        inner,
        leaf: leaf.clone(),
        ignore_name: setup.ignore_name,
        name_mismatch: name_mismatch.clone(),
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(setup_err)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let config = match setup.client {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(setup_err)?,
        None => builder.with_no_client_auth(),
    };
    let mut conn = ClientConnection::new(Arc::new(config), setup.server_name).map_err(setup_err)?;
    let mut sock = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| TlsFailure::Connect(e.to_string()))?;
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    let io_err = |e: std::io::Error| -> TlsFailure {
        if let Some(tls) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return TlsFailure::Handshake(tls.clone());
        }
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                TlsFailure::Io(format!("no answer within {}", secs(timeout)))
            }
            std::io::ErrorKind::UnexpectedEof => {
                TlsFailure::Io("the server closed the connection".into())
            }
            _ => TlsFailure::Io(e.to_string()),
        }
    };
    while conn.is_handshaking() {
        let (read, written) = conn.complete_io(&mut sock).map_err(io_err)?;
        if read == 0 && written == 0 && conn.is_handshaking() {
            return Err(TlsFailure::Io(
                "the server closed the connection during the handshake".into(),
            ));
        }
    }
    let Some(request) = setup.request else {
        conn.send_close_notify();
        let _ = conn.complete_io(&mut sock);
        return Ok(None);
    };
    let mut stream = rustls::Stream::new(&mut conn, &mut sock);
    stream.write_all(request.as_bytes()).map_err(io_err)?;
    let mut answer: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(2).any(|w| w == b"\r\n") || answer.len() > 16 * 1024 {
                    break;
                }
            }
            Err(e) if answer.is_empty() => return Err(io_err(e)),
            Err(_) => break,
        }
    }
    if answer.is_empty() {
        return Err(TlsFailure::Io(
            "the server closed the connection without an answer".into(),
        ));
    }
    let first = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    Ok(Some(first))
}

/// Every certificate in a PEM text (nothing for text that holds none).
pub(super) fn pem_certificates(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    rustls_pemfile::certs(&mut &pem[..])
        .filter_map(Result::ok)
        .collect()
}

/// The private key in a PEM text.
pub(super) fn pem_private_key(pem: &[u8]) -> Option<PrivateKeyDer<'static>> {
    rustls_pemfile::private_key(&mut &pem[..]).ok().flatten()
}

/// What a certificate says about itself, as far as doctor's messages need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CertFacts {
    pub issuer: String,
    pub ips: Vec<IpAddr>,
    pub dns: Vec<String>,
    /// `notAfter`, Unix seconds.
    pub not_after: i64,
}

impl CertFacts {
    /// Every name the certificate carries, addresses first.
    pub(super) fn names(&self) -> Vec<String> {
        self.ips
            .iter()
            .map(IpAddr::to_string)
            .chain(self.dns.iter().cloned())
            .collect()
    }

    /// Whole days until `notAfter` (negative once it passed).
    pub(super) fn days_left(&self) -> i64 {
        (self.not_after - time::OffsetDateTime::now_utc().unix_timestamp()).div_euclid(86_400)
    }

    pub(super) fn expired(&self) -> bool {
        self.not_after < time::OffsetDateTime::now_utc().unix_timestamp()
    }

    /// `notAfter` as a date (`2029-11-03`).
    pub(super) fn not_after_date(&self) -> String {
        time::OffsetDateTime::from_unix_timestamp(self.not_after)
            .map(|t| t.date().to_string())
            .unwrap_or_else(|_| self.not_after.to_string())
    }
}

/// Parses a DER certificate; `None` when it does not parse.
pub(super) fn cert_facts(der: &[u8]) -> Option<CertFacts> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut ips = Vec::new();
    let mut dns = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        ips.push(IpAddr::V4(Ipv4Addr::from(v4)));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        ips.push(IpAddr::V6(Ipv6Addr::from(v6)));
                    }
                }
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                _ => {}
            }
        }
    }
    Some(CertFacts {
        issuer: cert.issuer().to_string(),
        ips,
        dns,
        not_after: cert.validity().not_after.timestamp(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{CertificateAuthority, San};

    #[test]
    fn a_certificate_tells_its_names_and_end() {
        let ca = CertificateAuthority::generate("ca.test", 30).unwrap();
        let server = ca
            .issue_server(
                &[
                    San::parse("10.214.0.7").unwrap(),
                    San::parse("web1.example").unwrap(),
                ],
                30,
            )
            .unwrap();
        let der = pem_certificates(server.cert_pem.as_bytes());
        assert_eq!(der.len(), 1);
        let facts = cert_facts(der[0].as_ref()).unwrap();
        assert_eq!(facts.ips, vec!["10.214.0.7".parse::<IpAddr>().unwrap()]);
        assert_eq!(facts.dns, vec!["web1.example".to_string()]);
        assert_eq!(facts.names(), ["10.214.0.7", "web1.example"]);
        assert!(facts.issuer.contains("ca.test"), "{}", facts.issuer);
        assert!(
            (29..=30).contains(&facts.days_left()),
            "{}",
            facts.days_left()
        );
        assert!(!facts.expired());
        assert_eq!(facts.not_after_date().len(), 10);
        assert!(pem_private_key(server.key_pem.expose().as_bytes()).is_some());
        assert!(pem_certificates(b"no certificate here").is_empty());
        assert!(cert_facts(b"junk").is_none());
    }

    #[tokio::test]
    async fn mutual_tls_with_a_name_the_certificate_lacks_is_told_apart() {
        use rustls::{ServerConfig, ServerConnection, server::WebPkiClientVerifier};
        let ca = CertificateAuthority::generate("ca.test", 30).unwrap();
        let server = ca
            .issue_server(&[San::parse("10.9.9.9").unwrap()], 30)
            .unwrap();
        let client = ca.issue_client("client", 30).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(pem_certificates(ca.cert_pem().as_bytes()));
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots.clone()), provider.clone())
                .build()
                .unwrap();
        let server_config = Arc::new(
            ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_client_cert_verifier(client_verifier)
                .with_single_cert(
                    pem_certificates(server.cert_pem.as_bytes()),
                    pem_private_key(server.key_pem.expose().as_bytes()).unwrap(),
                )
                .unwrap(),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let mut conn = ServerConnection::new(server_config).unwrap();
            let mut stream = rustls::Stream::new(&mut conn, &mut sock);
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK");
            let _ = stream.flush();
        });
        let outcome = handshake(
            addr,
            TlsSetup {
                roots,
                client: Some((
                    pem_certificates(client.cert_pem.as_bytes()),
                    pem_private_key(client.key_pem.expose().as_bytes()).unwrap(),
                )),
                server_name: ServerName::from(addr.ip()),
                ignore_name: true,
                request: Some("GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n".into()),
            },
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(outcome.result.unwrap().as_deref(), Some("HTTP/1.1 200 OK"));
        assert!(outcome.name_mismatch, "127.0.0.1 is not 10.9.9.9");
        let facts = cert_facts(&outcome.leaf.unwrap()).unwrap();
        assert_eq!(facts.ips, vec!["10.9.9.9".parse::<IpAddr>().unwrap()]);
    }
}
