//! The cloud side: endpoint DNS, TCP and TLS, the credentials, the clock, the region and the
//! keyring.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use super::{Check, Run, Status, human_secs, net, secs};
use crate::{
    cloud::{CloudError, Ec2, check_endpoint},
    credentials::{Backend, CloudTarget, CredentialsError, Keyring},
    ops::ingress::endpoint_host_port,
    report::hint_for,
};

/// SigV4 refuses a request whose time is further off than this.
const SIGV4_SKEW: i64 = 15 * 60;
/// Past this a skew is worth a warning: it is on its way to the limit.
const WARN_SKEW: i64 = 60;
/// A certificate this close to its end gets a warning.
const EXPIRY_WARNING_DAYS: i64 = 14;

/// What the cloud checks start from.
pub(super) struct CloudInput {
    /// The resolved credentials and endpoint, or why they could not be resolved.
    target: anyhow::Result<CloudTarget>,
    /// The endpoint to probe: the target's, or one known without it (the machine's record,
    /// `--endpoint`).
    endpoint: Option<String>,
}

impl CloudInput {
    pub(super) fn new(target: anyhow::Result<CloudTarget>, fallback: Option<String>) -> Self {
        let endpoint = match &target {
            Ok(t) => Some(t.endpoint.clone()),
            Err(_) => fallback,
        };
        CloudInput { target, endpoint }
    }
}

/// What the machine checks need from the cloud side.
pub(super) struct CloudFacts {
    /// A client for the cloud, when one could be made.
    pub ec2: Option<Ec2>,
    /// The cloud accepted a signed call.
    pub answers: bool,
    /// Why the cloud cannot be asked, for the machine checks' `skip` lines.
    pub why_not: String,
}

/// Runs the seven cloud checks in order.
pub(super) async fn run(run: &mut Run<'_>, input: CloudInput, timeout: Duration) -> CloudFacts {
    let no_endpoint = input.endpoint.is_none();
    // endpoint-dns
    let resolved: Option<Vec<SocketAddr>> = match &input.endpoint {
        Some(url) => {
            let (check, addrs) = endpoint_dns(url, timeout).await;
            run.push(check);
            addrs
        }
        None => {
            match &input.target {
                Err(e) if is_no_endpoint(e) => run.push(Check::fail(
                    "endpoint-dns",
                    format!("{e:#}"),
                    hint_for(e).unwrap_or_else(|| "give --endpoint URL".into()),
                )),
                _ => run.push(Check::skip(
                    "endpoint-dns",
                    "the endpoint is not known: the credentials could not be resolved (see credentials)",
                )),
            }
            None
        }
    };
    // endpoint-tcp
    let connected: Option<SocketAddr> = match &resolved {
        Some(addrs) => {
            let (check, addr) = endpoint_tcp(addrs, timeout).await;
            run.push(check);
            addr
        }
        None => {
            run.push(Check::skip(
                "endpoint-tcp",
                if no_endpoint {
                    "no endpoint to connect to"
                } else {
                    "the endpoint's host name does not resolve (see endpoint-dns)"
                },
            ));
            None
        }
    };
    // endpoint-tls
    match (&input.endpoint, connected) {
        (Some(url), _) if url.starts_with("http://") => run.push(Check::warn(
            "endpoint-tls",
            "the endpoint is plain http: EC2 answers (addresses, console output with the host \
             keys) are not protected on the way",
            "use the cloud's https:// endpoint if it has one (`docker euca login --endpoint \
             https://…`)",
        )),
        (Some(url), Some(addr)) => {
            let ca_bundle = input.target.as_ref().ok().and_then(|t| t.ca_bundle.clone());
            run.push(endpoint_tls(url, addr, ca_bundle.as_deref(), timeout).await);
        }
        (Some(_), None) => run.push(Check::skip(
            "endpoint-tls",
            "the endpoint does not accept connections (see endpoint-tcp)",
        )),
        (None, _) => run.push(Check::skip("endpoint-tls", "no endpoint to check")),
    }
    // credentials, clock, region
    let facts = signed_checks(run, &input, connected.is_some(), timeout).await;
    // keyring
    let keys_from_keyring = input
        .target
        .as_ref()
        .is_ok_and(|t| t.keys_source.contains("keyring"));
    run.push(keyring(keys_from_keyring, timeout).await);
    facts
}

fn is_no_endpoint(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        matches!(
            c.downcast_ref::<CredentialsError>(),
            Some(CredentialsError::NoEndpoint)
        )
    })
}

async fn endpoint_dns(url: &str, timeout: Duration) -> (Check, Option<Vec<SocketAddr>>) {
    const ID: &str = "endpoint-dns";
    let parsed = check_endpoint(url)
        .ok()
        .and_then(|()| endpoint_host_port(url));
    let Some((host, port)) = parsed else {
        return (
            Check::fail(
                ID,
                format!("{url:?} is not a usable EC2 endpoint URL"),
                "use http://HOST:8773/services/compute/ or https://ec2.DOMAIN/",
            ),
            None,
        );
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return (
            Check::ok(ID, format!("{host} is an address (nothing to look up)")),
            Some(vec![SocketAddr::new(ip, port)]),
        );
    }
    let hint = "check the host name in the endpoint URL and this machine's DNS settings \
                (/etc/resolv.conf)";
    match tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), port))).await {
        Ok(Ok(found)) => {
            let mut addrs: Vec<SocketAddr> = Vec::new();
            for a in found {
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
            if addrs.is_empty() {
                return (
                    Check::fail(ID, format!("{host} resolves to no address"), hint),
                    None,
                );
            }
            let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            (
                Check::ok(ID, format!("{host} resolves to {}", shown.join(", "))),
                Some(addrs),
            )
        }
        Ok(Err(e)) => (
            Check::fail(ID, format!("cannot resolve {host}: {e}"), hint),
            None,
        ),
        Err(_) => (
            Check::fail(
                ID,
                format!("no DNS answer for {host} within {}", secs(timeout)),
                hint,
            ),
            None,
        ),
    }
}

async fn endpoint_tcp(addrs: &[SocketAddr], timeout: Duration) -> (Check, Option<SocketAddr>) {
    const ID: &str = "endpoint-tcp";
    let mut last = None;
    // A few addresses at most: a name with many would make the check slow.
    for addr in addrs.iter().take(3) {
        match net::tcp(*addr, timeout).await {
            Ok(took) => {
                return (
                    Check::ok(
                        ID,
                        format!(
                            "{addr} accepts connections ({} ms)",
                            took.as_millis().max(1)
                        ),
                    ),
                    Some(*addr),
                );
            }
            Err(e) => last = Some((*addr, e)),
        }
    }
    let Some((addr, e)) = last else {
        return (Check::skip(ID, "no address to connect to"), None);
    };
    let hint = match &e {
        net::TcpFailure::Refused => {
            "nothing listens on that port: check the port in the endpoint URL (Eucalyptus serves \
             EC2 on 8773) and that the cloud's API service runs"
        }
        net::TcpFailure::Timeout => {
            "no answer: the cloud is down, or a firewall or proxy drops the connection"
        }
        net::TcpFailure::Other(_) => "check the network route to the endpoint",
    };
    (Check::fail(ID, e.describe(addr, timeout), hint), None)
}

/// The endpoint's TLS chain against the system roots and the CA bundle: trust, name, expiry.
async fn endpoint_tls(
    url: &str,
    addr: SocketAddr,
    ca_bundle: Option<&std::path::Path>,
    timeout: Duration,
) -> Check {
    const ID: &str = "endpoint-tls";
    let Some((host, _)) = endpoint_host_port(url) else {
        return Check::skip(ID, "the endpoint URL has no host");
    };
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (system, _) = roots.add_parsable_certificates(native.certs);
    let mut trusted = format!("{system} system roots");
    if let Some(path) = ca_bundle {
        let pem = match std::fs::read(path) {
            Ok(pem) => pem,
            Err(e) => {
                return Check::fail(
                    ID,
                    format!("cannot read the CA bundle {}: {e}", path.display()),
                    "check the path given with --ca-bundle (or the profile's: `docker euca login \
                     --ca-bundle FILE` replaces it)",
                );
            }
        };
        let ders = net::pem_certificates(&pem);
        if ders.is_empty() {
            return Check::fail(
                ID,
                format!("the CA bundle {} holds no PEM certificate", path.display()),
                "give a PEM file (-----BEGIN CERTIFICATE-----)",
            );
        }
        let (added, _) = roots.add_parsable_certificates(ders);
        trusted = format!("{trusted} and {added} from {}", path.display());
    }
    let server_name = match rustls::pki_types::ServerName::try_from(host.clone()) {
        Ok(name) => name,
        Err(_) => {
            return Check::fail(
                ID,
                format!("{host:?} is no name a certificate can carry"),
                "use the cloud's host name in the endpoint URL",
            );
        }
    };
    let outcome = net::handshake(
        addr,
        net::TlsSetup {
            roots,
            client: None,
            server_name,
            ignore_name: false,
            request: None,
        },
        timeout,
    )
    .await;
    let facts = outcome.leaf.as_deref().and_then(net::cert_facts);
    let names = facts
        .as_ref()
        .map(|f| f.names().join(", "))
        .unwrap_or_else(|| "nothing".into());
    match outcome.result {
        Ok(_) => {
            let Some(facts) = facts else {
                return Check::ok(ID, format!("{host}'s certificate verifies ({trusted})"));
            };
            let left = facts.days_left();
            let detail = format!(
                "{host}'s certificate verifies ({trusted}); it names {names} and is valid until {}",
                facts.not_after_date()
            );
            if left < EXPIRY_WARNING_DAYS {
                Check::warn(
                    ID,
                    format!("{detail}: {left} days left"),
                    "the cloud's certificate must be renewed soon (tell the cloud's operators)",
                )
            } else {
                Check::ok(ID, detail)
            }
        }
        Err(net::TlsFailure::Handshake(rustls::Error::InvalidCertificate(e))) => {
            use rustls::CertificateError as C;
            let issuer = facts
                .as_ref()
                .map(|f| f.issuer.clone())
                .unwrap_or_else(|| "an unknown issuer".into());
            match e {
                C::UnknownIssuer | C::BadSignature => Check::fail(
                    ID,
                    format!(
                        "{host}'s certificate (issued by {issuer}) is not signed by a CA this \
                         machine trusts ({trusted})"
                    ),
                    "give the cloud's CA certificate with --ca-bundle FILE (`docker euca login \
                     --ca-bundle FILE` keeps it with the profile)",
                ),
                C::NotValidForName | C::NotValidForNameContext { .. } => Check::fail(
                    ID,
                    format!("{host}'s certificate does not name {host} (it names {names})"),
                    "use a host name the certificate names in the endpoint URL",
                ),
                C::Expired | C::ExpiredContext { .. } => Check::fail(
                    ID,
                    format!(
                        "{host}'s certificate expired on {}",
                        facts
                            .as_ref()
                            .map(|f| f.not_after_date())
                            .unwrap_or_else(|| "?".into())
                    ),
                    "the cloud's certificate must be renewed (unless this machine's clock is \
                     wrong: see clock)",
                ),
                C::NotValidYet | C::NotValidYetContext { .. } => Check::fail(
                    ID,
                    format!("{host}'s certificate is not valid yet"),
                    "check this machine's clock (see clock)",
                ),
                other => Check::fail(
                    ID,
                    format!("{host}'s certificate is refused: {other:?}"),
                    "give the cloud's CA certificate with --ca-bundle FILE",
                ),
            }
        }
        Err(e) => Check::fail(
            ID,
            format!(
                "TLS handshake with {host} ({addr}) failed: {}",
                e.describe()
            ),
            "check that the endpoint speaks https on that port (Eucalyptus: often http on 8773)",
        ),
    }
}

/// credentials, clock and region: the checks that need a signed call.
async fn signed_checks(
    run: &mut Run<'_>,
    input: &CloudInput,
    reachable: bool,
    timeout: Duration,
) -> CloudFacts {
    fn unasked(run: &mut Run<'_>, why: &str) {
        run.push(Check::skip("clock", why.to_string()));
        run.push(Check::skip("region", why.to_string()));
    }
    let target = match &input.target {
        Err(e) if is_no_endpoint(e) => {
            let why = "no endpoint to send a request to (see endpoint-dns)";
            run.push(Check::skip("credentials", why));
            unasked(run, why);
            return CloudFacts {
                ec2: None,
                answers: false,
                why_not: "no endpoint is configured (see endpoint-dns)".into(),
            };
        }
        Err(e) => {
            run.push(Check::fail(
                "credentials",
                format!("{e:#}"),
                hint_for(e).unwrap_or_else(|| "`docker euca login` stores credentials".into()),
            ));
            unasked(
                run,
                "no credentials to sign a request with (see credentials)",
            );
            return CloudFacts {
                ec2: None,
                answers: false,
                why_not: "the credentials could not be resolved (see credentials)".into(),
            };
        }
        Ok(t) => t,
    };
    let ec2 = match Ec2::connect(target) {
        Ok(ec2) => ec2,
        Err(e) => {
            let hint = e
                .hint()
                .unwrap_or_else(|| "check the endpoint and --ca-bundle".into());
            run.push(Check::fail("credentials", e.to_string(), hint));
            unasked(run, "no EC2 client could be made (see credentials)");
            return CloudFacts {
                ec2: None,
                answers: false,
                why_not: "no EC2 client could be made (see credentials)".into(),
            };
        }
    };
    if !reachable {
        let why = "the endpoint does not accept connections (see endpoint-tcp)";
        run.push(Check::skip("credentials", why));
        unasked(run, why);
        return CloudFacts {
            ec2: Some(ec2),
            answers: false,
            why_not: why.into(),
        };
    }
    let probe = ec2.probe_access(timeout).await;
    let skew = probe.date.as_ref().and_then(|d| d.skew_secs());
    let refused_time = probe
        .zones
        .as_ref()
        .err()
        .and_then(|e| e.code())
        .is_some_and(is_time_code);
    let clock = clock_check(skew, refused_time, probe.zones.is_ok());
    let clock_failed = clock.status == Status::Fail;
    let (credentials, answers) = match &probe.zones {
        Ok(zones) => (
            Check::ok(
                "credentials",
                format!(
                    "the cloud accepts access key {} (from {}); zones: {}",
                    target.keys.access_key_id,
                    target.keys_source,
                    if zones.is_empty() {
                        "none listed".to_string()
                    } else {
                        zones.join(", ")
                    }
                ),
            ),
            true,
        ),
        Err(_) if clock_failed => (
            Check::skip(
                "credentials",
                "the cloud refused the request's time (see clock), so the keys could not be \
                 checked",
            ),
            false,
        ),
        Err(e) => (
            Check::fail(
                "credentials",
                e.to_string(),
                credentials_hint(e, &target.keys_source),
            ),
            false,
        ),
    };
    run.push(credentials);
    run.push(clock);
    if !answers {
        run.push(Check::skip(
            "region",
            "the cloud does not accept signed requests (see credentials)",
        ));
        return CloudFacts {
            ec2: Some(ec2),
            answers: false,
            why_not: if clock_failed {
                "the cloud refuses signed requests (see clock)".into()
            } else {
                "the cloud refuses the credentials (see credentials)".into()
            },
        };
    }
    run.push(region_check(&ec2, &target.region, timeout).await);
    CloudFacts {
        ec2: Some(ec2),
        answers: true,
        why_not: String::new(),
    }
}

/// Error codes that say "your clock is off", whatever the clock check could measure.
fn is_time_code(code: &str) -> bool {
    matches!(
        code,
        "RequestExpired" | "RequestTimeTooSkewed" | "RequestInTheFuture"
    )
}

fn credentials_hint(err: &CloudError, source: &str) -> String {
    let base = err
        .hint()
        .unwrap_or_else(|| "check the endpoint URL and the keys".into());
    let refused = matches!(
        err.code(),
        Some("AuthFailure" | "SignatureDoesNotMatch" | "InvalidClientTokenId")
    );
    if !refused {
        return base;
    }
    if source.starts_with("environment (AWS_") {
        format!(
            "the keys come from the environment: check AWS_SECRET_ACCESS_KEY (or unset \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to use the profile); {base}"
        )
    } else if source.starts_with("environment (EC2_") {
        format!(
            "the keys come from the environment: check EC2_SECRET_KEY (or unset EC2_ACCESS_KEY \
             and EC2_SECRET_KEY to use the profile); {base}"
        )
    } else {
        format!("the keys come from {source}; {base}")
    }
}

/// The clock check from the measured skew (the cloud's clock minus ours) and whether the
/// cloud refused the request for its time.
fn clock_check(skew: Option<i64>, refused_time: bool, answered: bool) -> Check {
    const ID: &str = "clock";
    let hint = "set this machine's clock right (`timedatectl set-ntp true`, or run chrony or \
                ntpd); if this machine's clock is right, the cloud's is wrong: tell its operators";
    match skew {
        Some(s) => {
            let off = human_secs(s.unsigned_abs());
            let way = if s > 0 { "ahead of" } else { "behind" };
            if s.abs() > SIGV4_SKEW {
                Check::fail(
                    ID,
                    format!(
                        "the cloud's clock is {off} {way} this machine's: signed requests more \
                         than 15 min off are refused"
                    ),
                    hint,
                )
            } else if s.abs() > WARN_SKEW {
                Check::warn(
                    ID,
                    format!(
                        "the cloud's clock is {off} {way} this machine's (signed requests are \
                         refused past 15 min)"
                    ),
                    hint,
                )
            } else {
                Check::ok(
                    ID,
                    format!(
                        "the cloud's clock agrees with this machine's (within {} s)",
                        s.abs().max(1)
                    ),
                )
            }
        }
        None if refused_time => Check::fail(
            ID,
            "the cloud refused the request for its time (its answer had no Date header to \
             measure by)",
            hint,
        ),
        None if answered => Check::skip(ID, "the cloud's answer had no Date header"),
        None => Check::skip(ID, "no answer from the cloud to read its time from"),
    }
}

async fn region_check(ec2: &Ec2, region: &str, timeout: Duration) -> Check {
    const ID: &str = "region";
    match ec2.region_names(timeout).await {
        Ok(names) if names.iter().any(|n| n == region) => Check::ok(
            ID,
            format!(
                "region {region} is one of the cloud's ({})",
                names.join(", ")
            ),
        ),
        Ok(names) if names.is_empty() => Check::warn(
            ID,
            format!("the cloud lists no regions; {region} could not be confirmed"),
            "nothing to do while the other checks pass",
        ),
        Ok(names) => Check::fail(
            ID,
            format!(
                "the cloud lists the regions {}, not {region}",
                names.join(", ")
            ),
            format!(
                "give --region {} (`docker euca login --region {}` sets the profile's)",
                names[0], names[0]
            ),
        ),
        Err(e) if matches!(e.code(), Some("InvalidAction" | "UnsupportedOperation")) => {
            Check::warn(
                ID,
                format!(
                    "the cloud does not answer DescribeRegions ({e}); {region} was not checked"
                ),
                "nothing to do while the other checks pass",
            )
        }
        Err(e) => Check::fail(
            ID,
            e.to_string(),
            e.hint()
                .unwrap_or_else(|| "check --region and the cloud's state".into()),
        ),
    }
}

async fn keyring(keys_from_keyring: bool, timeout: Duration) -> Check {
    const ID: &str = "keyring";
    let opened = tokio::time::timeout(
        timeout,
        tokio::task::spawn_blocking(|| {
            Keyring::open()
                .map(|k| k.backend)
                .map_err(|e| e.to_string())
        }),
    )
    .await;
    let unavailable = |detail: String| {
        let hint = "start a Secret Service (gnome-keyring) or unlock it; \
                    DOCKER_EUCA_KEYRING=keyutils uses the kernel keyring instead";
        if keys_from_keyring {
            Check::fail(ID, detail, hint)
        } else {
            Check::warn(
                ID,
                format!("{detail} (the keys in use do not come from it)"),
                hint,
            )
        }
    };
    match opened {
        Ok(Ok(Ok(Backend::SecretService))) => {
            Check::ok(ID, "Secret Service: stored secrets survive a reboot")
        }
        Ok(Ok(Ok(Backend::Native))) => {
            Check::ok(ID, "the OS keychain: stored secrets survive a reboot")
        }
        Ok(Ok(Ok(Backend::KernelKeyutils))) => Check::warn(
            ID,
            "the kernel keyring (keyutils): stored secrets are lost at reboot",
            "start a Secret Service (gnome-keyring) and run `docker euca login` again to keep \
             them; until then, log in again after every reboot",
        ),
        Ok(Ok(Err(e))) => unavailable(e),
        Ok(Err(e)) => unavailable(format!("the keyring could not be opened: {e}")),
        Err(_) => unavailable(format!(
            "the keyring did not answer within {}",
            secs(timeout)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_fails_past_fifteen_minutes_and_warns_past_one() {
        let c = clock_check(Some(1200), true, false);
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("20 min ahead of"), "{}", c.detail);
        let c = clock_check(Some(-120), false, true);
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.contains("2 min behind"), "{}", c.detail);
        assert_eq!(clock_check(Some(3), false, true).status, Status::Ok);
        assert_eq!(clock_check(Some(-60), false, true).status, Status::Ok);
        assert_eq!(clock_check(Some(901), false, true).status, Status::Fail);
        assert_eq!(clock_check(None, true, false).status, Status::Fail);
        assert_eq!(clock_check(None, false, true).status, Status::Skip);
        assert_eq!(clock_check(None, false, false).status, Status::Skip);
    }

    #[test]
    fn a_refused_key_from_the_environment_points_at_the_variable() {
        let err = CloudError::Api {
            action: "DescribeAvailabilityZones",
            code: Some("AuthFailure".into()),
            message: "AWS was not able to validate the provided access credentials".into(),
        };
        let hint = credentials_hint(&err, "environment (AWS_ACCESS_KEY_ID)");
        assert!(hint.contains("AWS_SECRET_ACCESS_KEY"), "{hint}");
        assert!(hint.contains("docker euca login"), "{hint}");
        let hint = credentials_hint(&err, "profile \"default\" (OS keyring)");
        assert!(hint.contains("profile \"default\""), "{hint}");
        let other = CloudError::Unreachable {
            action: "DescribeAvailabilityZones",
            endpoint: "http://x/".into(),
            message: "refused".into(),
        };
        assert!(!credentials_hint(&other, "environment (AWS_ACCESS_KEY_ID)").contains("AWS_"));
    }

    #[test]
    fn time_refusals_are_recognised_by_code() {
        assert!(is_time_code("RequestExpired"));
        assert!(is_time_code("RequestTimeTooSkewed"));
        assert!(!is_time_code("AuthFailure"));
    }
}
