//! TLS material for a docker host: a per-machine CA, a server certificate for the daemon and a
//! client certificate for the docker CLI and bollard. ECDSA P-256 (fast to make, accepted by
//! Go's TLS), random serials, not-before one day in the past to absorb clock skew. The
//! serverAuth/clientAuth EKUs sit on the leaves only: Go checks EKUs along the chain, so a CA
//! that carried them would restrict its leaves.

use std::net::IpAddr;

use rand::Rng;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::secret::Secret;

/// Default validity of every certificate: three years, like docker-machine's.
pub const DEFAULT_VALIDITY_DAYS: u32 = 3 * 365;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot generate {what}: {source}")]
    Generate {
        what: &'static str,
        source: rcgen::Error,
    },
    #[error("cannot load the CA from its PEM files: {source}")]
    LoadCa { source: rcgen::Error },
    #[error("{value:?} is not a valid DNS name or IP address for a certificate")]
    BadSan { value: String },
}

/// A certificate and its private key, PEM encoded.
#[derive(Debug, Clone)]
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: Secret<String>,
}

/// One subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    Ip(IpAddr),
    Dns(String),
}

impl San {
    /// An IP address if it parses as one, otherwise a DNS name.
    pub fn parse(value: &str) -> Result<San, TlsError> {
        if let Ok(ip) = value.parse::<IpAddr>() {
            return Ok(San::Ip(ip));
        }
        let ok = !value.is_empty()
            && value.len() <= 253
            && value.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
            });
        if ok {
            Ok(San::Dns(value.to_string()))
        } else {
            Err(TlsError::BadSan {
                value: value.into(),
            })
        }
    }
}

/// A certificate authority that can issue leaves: a fresh one, or one reloaded from PEM.
pub struct CertificateAuthority {
    cert_pem: String,
    key: KeyPair,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

fn generate_err(what: &'static str) -> impl FnOnce(rcgen::Error) -> TlsError {
    move |source| TlsError::Generate { what, source }
}

/// A positive, non-zero 127-bit serial.
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

fn base_params(common_name: &str, validity_days: u32) -> CertificateParams {
    let mut params = CertificateParams::default();
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(i64::from(validity_days.max(1)));
    params.serial_number = Some(random_serial());
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "docker-euca");
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params
}

impl CertificateAuthority {
    /// A new CA named after the machine.
    pub fn generate(common_name: &str, validity_days: u32) -> Result<Self, TlsError> {
        let key = KeyPair::generate().map_err(generate_err("the CA key"))?;
        let mut params = base_params(common_name, validity_days);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params
            .self_signed(&key)
            .map_err(generate_err("the CA certificate"))?;
        Ok(CertificateAuthority {
            cert_pem: cert.pem(),
            key,
        })
    }

    /// Reloads a CA (to issue new leaves for an existing machine).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, TlsError> {
        let key = KeyPair::from_pem(key_pem).map_err(|source| TlsError::LoadCa { source })?;
        // Parse now so a damaged certificate fails here, not at first issue.
        Issuer::from_ca_cert_pem(cert_pem, &key).map_err(|source| TlsError::LoadCa { source })?;
        Ok(CertificateAuthority {
            cert_pem: cert_pem.to_string(),
            key,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> Secret<String> {
        Secret::new(self.key.serialize_pem())
    }

    /// A daemon certificate valid for every given address and name.
    pub fn issue_server(&self, sans: &[San], validity_days: u32) -> Result<CertPair, TlsError> {
        let cn = sans
            .iter()
            .map(|s| match s {
                San::Ip(ip) => ip.to_string(),
                San::Dns(d) => d.clone(),
            })
            .next()
            .unwrap_or_else(|| "docker-euca server".into());
        let mut params = base_params(&cn, validity_days);
        params.subject_alt_names = sans
            .iter()
            .map(|s| match s {
                San::Ip(ip) => Ok(SanType::IpAddress(*ip)),
                San::Dns(d) => d
                    .clone()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(|_| TlsError::BadSan { value: d.clone() }),
            })
            .collect::<Result<_, _>>()?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, "the server certificate")
    }

    /// A client certificate for the docker CLI.
    pub fn issue_client(
        &self,
        common_name: &str,
        validity_days: u32,
    ) -> Result<CertPair, TlsError> {
        let mut params = base_params(common_name, validity_days);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, "the client certificate")
    }

    fn issue(
        &self,
        mut params: CertificateParams,
        what: &'static str,
    ) -> Result<CertPair, TlsError> {
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(generate_err(what))?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)
            .map_err(|source| TlsError::LoadCa { source })?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(generate_err(what))?;
        Ok(CertPair {
            cert_pem: cert.pem(),
            key_pem: Secret::new(key.serialize_pem()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::{extensions::GeneralName, pem::parse_x509_pem};

    fn parse(pem: &str) -> x509_parser::pem::Pem {
        parse_x509_pem(pem.as_bytes()).unwrap().1
    }

    #[test]
    fn ca_is_a_ca_without_ekus() {
        let ca = CertificateAuthority::generate("web1", 30).unwrap();
        let pem = parse(ca.cert_pem());
        let cert = pem.parse_x509().unwrap();
        assert!(cert.is_ca());
        assert!(cert.extended_key_usage().unwrap().is_none());
        let now = OffsetDateTime::now_utc().unix_timestamp();
        assert!(cert.validity().not_before.timestamp() < now - 23 * 3600);
        assert!(cert.validity().not_after.timestamp() > now + 29 * 86400);
        assert_eq!(
            cert.signature_algorithm.algorithm.to_id_string(),
            "1.2.840.10045.4.3.2"
        );
    }

    #[test]
    fn server_and_client_leaves_have_sans_and_ekus() {
        let ca = CertificateAuthority::generate("web1", 30).unwrap();
        let sans = [
            San::parse("10.0.0.5").unwrap(),
            San::parse("web1.example").unwrap(),
        ];
        let server = ca.issue_server(&sans, 30).unwrap();
        let pem = parse(&server.cert_pem);
        let cert = pem.parse_x509().unwrap();
        assert!(!cert.is_ca());
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        let names = &cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names;
        assert!(names.contains(&GeneralName::IPAddress(&[10, 0, 0, 5])));
        assert!(names.contains(&GeneralName::DNSName("web1.example")));

        let client = ca.issue_client("docker-euca client", 30).unwrap();
        let pem = parse(&client.cert_pem);
        let cert = pem.parse_x509().unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
    }

    #[test]
    fn serials_are_random_and_positive() {
        let ca = CertificateAuthority::generate("web1", 30).unwrap();
        let a = ca.issue_client("a", 1).unwrap();
        let b = ca.issue_client("b", 1).unwrap();
        let sa = parse(&a.cert_pem)
            .parse_x509()
            .unwrap()
            .raw_serial()
            .to_vec();
        let sb = parse(&b.cert_pem)
            .parse_x509()
            .unwrap()
            .raw_serial()
            .to_vec();
        assert_ne!(sa, sb);
        assert!(sa[0] < 0x80 && sa.len() >= 15);
    }

    #[test]
    fn reloaded_ca_issues_leaves_it_signed() {
        let ca = CertificateAuthority::generate("web1", 30).unwrap();
        let again = CertificateAuthority::from_pem(ca.cert_pem(), ca.key_pem().expose()).unwrap();
        let leaf = again.issue_client("c", 1).unwrap();
        let ca_pem = parse(ca.cert_pem());
        let ca_cert = ca_pem.parse_x509().unwrap();
        let leaf_pem = parse(&leaf.cert_pem);
        let leaf_cert = leaf_pem.parse_x509().unwrap();
        assert_eq!(leaf_cert.issuer(), ca_cert.subject());
        leaf_cert
            .verify_signature(Some(ca_cert.public_key()))
            .unwrap();
    }

    #[test]
    fn bad_sans_are_refused() {
        assert!(San::parse("bad name").is_err());
        assert!(San::parse("").is_err());
        assert_eq!(San::parse("::1").unwrap(), San::Ip("::1".parse().unwrap()));
    }
}
