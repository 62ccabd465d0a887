//! One machine: its record, the instance, the security group, ports 22 and 2376, SSH with the
//! pinned host key, the daemon's mutual TLS, the server certificate, the docker context and the
//! console. Read-only throughout: the SSH check connects with [`Session::connect`] itself, not
//! through `ops::machine::connect`, which would pin a pending host key in the record.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::Path,
    time::Duration,
};

use super::{Check, Run, cloud_checks::CloudFacts, net, secs};
use crate::{
    cloud::{GroupRules, IngressRule, InstanceProbe, usable_address},
    context::{ContextError, ContextStore},
    credentials::{CloudFlags, CloudTarget},
    ops::{
        cloud_target, ingress,
        machine::{self, CloudKey},
        setup::certs_dir,
    },
    provision::daemon::DOCKER_PORT,
    report::hint_for,
    ssh::{Session, SshError},
    store::{MachineRecord, MachineState, Store, StoreError},
};

/// The machine checks, in order (the last ten of [`super::CHECKS`]), for the `skip` lines
/// when the record cannot be read.
const MACHINE_CHECKS: &[&str] = super::CHECKS.split_at(7).1;

/// How many of the console's last lines a failure shows.
const CONSOLE_LINES: usize = 20;
/// A server certificate this close to its end gets a warning.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// The credentials for a machine's own cloud, refused as every command refuses them: flags
/// that point at another cloud, keys of another identity.
pub(super) async fn machine_target(
    docker_config: &Path,
    record: &MachineRecord,
    flags: &CloudFlags,
) -> anyhow::Result<CloudTarget> {
    let key = CloudKey::of(record);
    machine::check_flags(&key, flags)?;
    let flags = machine::machine_flags(&key, flags);
    let target = cloud_target::resolve(docker_config, &flags, key.profile.clone()).await?;
    machine::check_identity(&key, &target.keys.access_key_id, &target.keys_source)?;
    Ok(target)
}

/// Where the network checks go, and why not when they cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reach {
    address: Option<IpAddr>,
    /// Why there is no address to check (for the `skip` lines).
    why_not: String,
    /// The cloud shows another address than the record: it changed outside docker-euca.
    stale_record: bool,
}

impl Reach {
    fn none(why: impl Into<String>) -> Reach {
        Reach {
            address: None,
            why_not: why.into(),
            stale_record: false,
        }
    }

    fn recorded(record: &MachineRecord) -> Reach {
        match machine::machine_address(record) {
            Some(a) => Reach {
                address: Some(a),
                why_not: String::new(),
                stale_record: false,
            },
            None => Reach::none("the machine has no address on record"),
        }
    }
}

pub(super) async fn run(
    run: &mut Run<'_>,
    docker_config: &Path,
    record: Result<MachineRecord, StoreError>,
    cloud: &CloudFacts,
    timeout: Duration,
) {
    let record = match record {
        Ok(record) => {
            run.push(record_check(&record));
            record
        }
        Err(e) => {
            run.push(Check::fail(
                "record",
                e.to_string(),
                e.hint()
                    .unwrap_or_else(|| "`docker euca ls` lists the machines".into()),
            ));
            for &id in &MACHINE_CHECKS[1..] {
                run.push(Check::skip(
                    id,
                    "the machine record cannot be read (see record)",
                ));
            }
            return;
        }
    };
    let name = record.name.to_string();
    let ec2 = cloud.ec2.as_ref().filter(|_| cloud.answers);

    // instance
    let (instance, probe, reach) = match (&record.cloud.instance_id, ec2) {
        (None, _) => (
            Check::fail(
                "instance",
                format!("{name} has no instance (its create did not get that far)"),
                format!("`docker euca rm {name}` removes what is left; then create it again"),
            ),
            None,
            Reach::none("there is no instance"),
        ),
        (Some(_), None) => (
            Check::skip(
                "instance",
                format!("the cloud cannot be asked: {}", cloud.why_not),
            ),
            None,
            Reach::recorded(&record),
        ),
        (Some(id), Some(ec2)) => match ec2.probe_instance(id, timeout).await {
            Ok(Some(probe)) => {
                let (check, reach) = instance_verdict(&record, &probe);
                (check, Some(probe), reach)
            }
            Ok(None) => (
                Check::fail(
                    "instance",
                    format!("the cloud shows no instance {id}"),
                    format!(
                        "it may have been terminated outside docker-euca (the cloud forgets \
                         terminated instances after a while); `docker euca rm {name}` removes \
                         the rest"
                    ),
                ),
                None,
                Reach::none("the cloud shows no instance"),
            ),
            Err(e) => (
                Check::fail(
                    "instance",
                    e.to_string(),
                    e.hint()
                        .unwrap_or_else(|| "run doctor again; the cloud may be busy".into()),
                ),
                None,
                Reach::recorded(&record),
            ),
        },
    };
    run.push(instance);

    // security-group, port-22, port-2376: the ports first, so that a rule-less group whose
    // ports answer anyway (NAT, a rule for another address) reads as a warning.
    let ssh_port = record.ssh.port.unwrap_or(22);
    let (p22, p2376) = match reach.address {
        Some(a) => (
            Some(net::tcp(SocketAddr::new(a, ssh_port), timeout).await),
            Some(net::tcp(SocketAddr::new(a, DOCKER_PORT), timeout).await),
        ),
        None => (None, None),
    };
    let open = [
        (ssh_port, p22.as_ref().is_some_and(Result::is_ok)),
        (DOCKER_PORT, p2376.as_ref().is_some_and(Result::is_ok)),
    ];
    let sg = match (reach.address, ec2) {
        (None, _) => Check::skip("security-group", reach.why_not.clone()),
        (Some(_), None) => Check::skip(
            "security-group",
            format!("the cloud cannot be asked: {}", cloud.why_not),
        ),
        (Some(address), Some(ec2)) => {
            let mut groups = probe
                .as_ref()
                .map(|p| p.group_ids.clone())
                .unwrap_or_default();
            if groups.is_empty() {
                groups.extend(record.cloud.security_group_id.clone());
            }
            security_group_check(ec2, &groups, address, open, timeout).await
        }
    };
    run.push(sg);
    run.push(port_check(
        "port-22",
        &name,
        &reach,
        p22.as_ref(),
        ssh_port,
        timeout,
    ));
    run.push(port_check(
        "port-2376",
        &name,
        &reach,
        p2376.as_ref(),
        DOCKER_PORT,
        timeout,
    ));

    // ssh
    let ssh = match (reach.address, p22.as_ref()) {
        (None, _) => Check::skip("ssh", reach.why_not.clone()),
        (Some(_), Some(Err(_))) | (Some(_), None) => Check::skip(
            "ssh",
            format!("port {ssh_port} does not answer (see port-22)"),
        ),
        (Some(address), Some(Ok(_))) => ssh_check(&record, address, timeout).await,
    };
    run.push(ssh);

    // daemon-tls
    let contexts = ContextStore::new(docker_config);
    let context_name = record.context_name();
    let mut leaf: Option<(Vec<u8>, &'static str)> = None;
    let daemon = match (reach.address, p2376.as_ref()) {
        (None, _) => Check::skip("daemon-tls", reach.why_not.clone()),
        (Some(_), Some(Err(_))) | (Some(_), None) => Check::skip(
            "daemon-tls",
            format!("port {DOCKER_PORT} does not answer (see port-2376)"),
        ),
        (Some(address), Some(Ok(_))) => match contexts.read_tls(&context_name) {
            Ok(Some(files)) => {
                let (check, shown) = daemon_tls_check(
                    &name,
                    address,
                    &files,
                    &contexts.tls_dir(&context_name),
                    timeout,
                )
                .await;
                leaf = shown.map(|der| (der, "the daemon's"));
                check
            }
            Ok(None) | Err(_) => Check::skip(
                "daemon-tls",
                format!("context {context_name} has no TLS files to connect with (see context)"),
            ),
        },
    };
    run.push(daemon);

    // certificate
    let store = Store::new(docker_config);
    if leaf.is_none() {
        let copy = certs_dir(&store, &record.name).join("server.pem");
        leaf = std::fs::read(copy)
            .ok()
            .and_then(|pem| net::pem_certificates(&pem).into_iter().next())
            .map(|der| (der.to_vec(), "the local copy of the"));
    }
    let certificate = match (reach.address, &leaf) {
        (None, _) => Check::skip("certificate", reach.why_not.clone()),
        (Some(_), None) => Check::skip(
            "certificate",
            "no server certificate to look at (the daemon did not show one and there is no \
             local copy)",
        ),
        (Some(address), Some((der, whose))) => {
            certificate_check(&name, address, der, whose, reach.stale_record)
        }
    };
    run.push(certificate);

    // context
    run.push(context_check(&store, &contexts, &record));

    // console
    let console = match (&record.cloud.instance_id, ec2) {
        (None, _) => Check::skip("console", "there is no instance"),
        (Some(_), None) => Check::skip(
            "console",
            format!("the cloud cannot be asked: {}", cloud.why_not),
        ),
        (Some(id), Some(ec2)) => {
            let failed = run.any_failed();
            match tokio::time::timeout(timeout, ec2.console_output(id)).await {
                Ok(Ok(Some(text))) if !text.trim().is_empty() => {
                    console_check(&name, id, &text, failed)
                }
                Ok(Ok(_)) => Check::ok(
                    "console",
                    format!("the cloud has no console output for {id} (yet)"),
                ),
                Ok(Err(e)) => Check::warn(
                    "console",
                    e.to_string(),
                    e.hint().unwrap_or_else(|| {
                        format!("`docker euca logs {name} --console` tries again")
                    }),
                ),
                Err(_) => Check::warn(
                    "console",
                    format!("no console output within {}", secs(timeout)),
                    format!("`docker euca logs {name} --console` tries again, without a limit"),
                ),
            }
        }
    };
    run.push(console);
}

fn record_check(record: &MachineRecord) -> Check {
    let name = &record.name;
    let place = format!(
        "{} on {} (region {})",
        record.cloud.instance_id.as_deref().unwrap_or("no instance"),
        record
            .cloud
            .endpoint
            .as_deref()
            .unwrap_or("an unknown endpoint"),
        record.cloud.region.as_deref().unwrap_or("?"),
    );
    match record.state {
        MachineState::Ready => Check::ok("record", format!("{name}: {place}")),
        MachineState::Creating => Check::warn(
            "record",
            format!("{name}: {place}; its create has not finished"),
            format!(
                "`docker euca provision {name}` finishes the set-up of a running instance; \
                 `docker euca rm {name}` removes what the create made"
            ),
        ),
        MachineState::Failed => Check::warn(
            "record",
            format!("{name}: {place}; its create failed and kept what it made"),
            format!(
                "`docker euca provision {name}` tries the set-up again; `docker euca rm {name}` \
                 removes it"
            ),
        ),
    }
}

/// The instance's state and address against the record (pure).
fn instance_verdict(record: &MachineRecord, probe: &InstanceProbe) -> (Check, Reach) {
    const ID: &str = "instance";
    let name = &record.name;
    let info = &probe.info;
    let id = &info.id;
    let reason = info
        .state_reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    match info.state.as_str() {
        "running" => {
            let use_private = record.cloud.use_private_address;
            let Some(address) = usable_address(
                info.public_ip.as_deref(),
                info.private_ip.as_deref(),
                use_private,
            ) else {
                return (
                    Check::warn(
                        ID,
                        format!(
                            "{id} is running but has no usable address yet (EDGE assigns the \
                             public one after boot)"
                        ),
                        "wait a minute, then run doctor again",
                    ),
                    Reach::none("the instance has no address yet"),
                );
            };
            let recorded = machine::machine_address(record);
            if recorded != Some(address) {
                let was = recorded
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "no address".into());
                (
                    Check::warn(
                        ID,
                        format!(
                            "{id} is running at {address}, but the record says {was}: the \
                             address changed outside docker-euca"
                        ),
                        format!(
                            "`docker euca start {name}` picks up the new address, reissues the \
                             certificate and updates the context"
                        ),
                    ),
                    Reach {
                        address: Some(address),
                        why_not: String::new(),
                        stale_record: true,
                    },
                )
            } else {
                (
                    Check::ok(ID, format!("{id} is running at {address}")),
                    Reach {
                        address: Some(address),
                        why_not: String::new(),
                        stale_record: false,
                    },
                )
            }
        }
        "stopped" => (
            Check::fail(
                ID,
                format!("{id} is stopped{reason}"),
                format!("`docker euca start {name}`"),
            ),
            Reach::none("the instance is stopped"),
        ),
        "stopping" => (
            Check::fail(
                ID,
                format!("{id} is stopping{reason}"),
                format!("wait for it to stop, then `docker euca start {name}`"),
            ),
            Reach::none("the instance is stopping"),
        ),
        "pending" => (
            Check::warn(
                ID,
                format!("{id} is still starting (pending)"),
                "wait for it to run, then run doctor again",
            ),
            Reach::none("the instance is still starting"),
        ),
        state @ ("shutting-down" | "terminated") => (
            Check::fail(
                ID,
                format!("{id} is {state}{reason}"),
                format!(
                    "`docker euca rm {name}` removes the rest (record, context, security group)"
                ),
            ),
            Reach::none(format!("the instance is {state}")),
        ),
        other => (
            Check::warn(
                ID,
                format!("{id} is {other}{reason}"),
                "run doctor again in a minute",
            ),
            Reach::none(format!("the instance is {other}")),
        ),
    }
}

/// The CIDR of the first rule that lets `source` in on TCP `port` (pure). Group-pair sources
/// never count: they admit the cloud's own instances, not a client outside it.
fn admitting_cidr(rules: &[IngressRule], source: Ipv4Addr, port: u16) -> Option<String> {
    rules
        .iter()
        .filter(|r| covers(r, port))
        .flat_map(|r| r.cidrs.iter())
        .find(|c| cidr_contains(c, source))
        .cloned()
}

/// Whether a rule's protocol and port range take in TCP `port`.
fn covers(rule: &IngressRule, port: u16) -> bool {
    match rule.protocol.to_ascii_lowercase().as_str() {
        "-1" | "all" => true,
        "tcp" | "6" => {
            let port = i32::from(port);
            match (rule.from_port, rule.to_port) {
                (Some(from), Some(to)) if from >= 0 && to >= 0 => from <= port && port <= to,
                // No range (or -1) on a TCP rule: all ports.
                _ => true,
            }
        }
        _ => false,
    }
}

/// Whether the IPv4 CIDR `cidr` (`a.b.c.d/n`, or a bare address) contains `ip` (pure).
fn cidr_contains(cidr: &str, ip: Ipv4Addr) -> bool {
    let cidr = cidr.trim();
    let net = match cidr.parse::<ipnet::Ipv4Net>() {
        Ok(net) => net,
        Err(_) => match cidr.parse::<Ipv4Addr>() {
            Ok(host) => ipnet::Ipv4Net::from(host),
            Err(_) => return false,
        },
    };
    net.contains(&ip)
}

async fn security_group_check(
    ec2: &crate::cloud::Ec2,
    groups: &[String],
    address: IpAddr,
    open: [(u16, bool); 2],
    timeout: Duration,
) -> Check {
    const ID: &str = "security-group";
    if groups.is_empty() {
        return Check::warn(
            ID,
            "the instance shows no security group",
            "check the instance's groups with `euca-describe-instances`",
        );
    }
    let source = tokio::task::spawn_blocking(move || ingress::source_toward(address))
        .await
        .ok()
        .flatten();
    let source = match source {
        Some(IpAddr::V4(v4)) if !v4.is_loopback() && !v4.is_unspecified() => v4,
        Some(other) => {
            return Check::skip(
                ID,
                format!("this machine reaches {address} from {other}, which no IPv4 rule names"),
            );
        }
        None => return Check::skip(ID, format!("this machine has no route toward {address}")),
    };
    let found: Vec<GroupRules> = match ec2.ingress_rules(groups, timeout).await {
        Ok(found) => found,
        Err(e) => {
            return Check::fail(
                ID,
                e.to_string(),
                e.hint().unwrap_or_else(|| "run doctor again".into()),
            );
        }
    };
    if found.is_empty() {
        return Check::fail(
            ID,
            format!(
                "the cloud shows none of the instance's groups ({})",
                groups.join(", ")
            ),
            "the group may have been deleted; the instance then admits no one",
        );
    }
    let rules: Vec<IngressRule> = found.iter().flat_map(|g| g.rules.clone()).collect();
    let names: Vec<String> = found.iter().map(|g| g.id.clone()).collect();
    let groups_shown = names.join(", ");
    let mut admitted = Vec::new();
    let mut missing = Vec::new();
    for (port, answers) in open {
        match admitting_cidr(&rules, source, port) {
            Some(cidr) => admitted.push(format!("{port} ({cidr})")),
            None => missing.push((port, answers)),
        }
    }
    if missing.is_empty() {
        return Check::ok(
            ID,
            format!(
                "{groups_shown} admits {source} on {}",
                admitted.join(" and ")
            ),
        );
    }
    let ports: Vec<String> = missing.iter().map(|(p, _)| p.to_string()).collect();
    let ports = ports.join(" and ");
    if missing.iter().all(|(_, answers)| *answers) {
        return Check::warn(
            ID,
            format!(
                "no rule of {groups_shown} names {source} for port {ports}, yet it answers: the \
                 cloud sees this machine at another address (NAT), or a rule for another \
                 source applies"
            ),
            "nothing to do while the ports answer; a rule for the address the cloud sees keeps \
             it so",
        );
    }
    let first_group = names.first().cloned().unwrap_or_default();
    let (first_port, _) = missing[0];
    Check::fail(
        ID,
        format!("no rule of {groups_shown} admits {source} on port {ports}"),
        format!(
            "admit this machine: `euca-authorize -P tcp -p {first_port} -s {source}/32 \
             {first_group}` for each port (behind NAT, the address the cloud sees); EDGE applies \
             a change within about 2 minutes"
        ),
    )
}

fn port_check(
    id: &'static str,
    name: &str,
    reach: &Reach,
    result: Option<&Result<Duration, net::TcpFailure>>,
    port: u16,
    timeout: Duration,
) -> Check {
    let (Some(address), Some(result)) = (reach.address, result) else {
        return Check::skip(id, reach.why_not.clone());
    };
    let addr = SocketAddr::new(address, port);
    match result {
        Ok(took) => Check::ok(
            id,
            format!(
                "{addr} accepts connections ({} ms)",
                took.as_millis().max(1)
            ),
        ),
        Err(e) if *e == net::TcpFailure::Refused => {
            let (what, hint) = if port == DOCKER_PORT {
                (
                    "the docker daemon does not listen",
                    format!(
                        "start it: `docker euca ssh {name} -- sudo service docker start` \
                         (systemd: `sudo systemctl start docker`); `docker euca provision {name}` \
                         applies its configuration again"
                    ),
                )
            } else {
                (
                    "sshd does not listen",
                    format!(
                        "`docker euca logs {name} --console` shows how the boot went; `docker \
                         euca restart {name}` boots it again"
                    ),
                )
            };
            Check::fail(id, format!("{}: {what}", e.describe(addr, timeout)), hint)
        }
        Err(e) if *e == net::TcpFailure::Timeout => Check::fail(
            id,
            e.describe(addr, timeout),
            "the security group or a firewall drops it (see security-group), or the instance is \
             not up",
        ),
        Err(e) => Check::fail(
            id,
            e.describe(addr, timeout),
            "no route to the instance: check its address (see instance) and this machine's \
             network",
        ),
    }
}

async fn ssh_check(record: &MachineRecord, address: IpAddr, timeout: Duration) -> Check {
    const ID: &str = "ssh";
    let name = &record.name;
    let target = match machine::ssh_target(record, address) {
        Ok(t) => t,
        Err(e) => {
            return Check::fail(
                ID,
                format!("{e:#}"),
                format!(
                    "the create did not get that far: `docker euca rm {name}`, then create it \
                     again"
                ),
            );
        }
    };
    let pinned = record.ssh.host_key.clone().unwrap_or_default();
    let kind = pinned.split_whitespace().next().unwrap_or("?").to_string();
    // Session::connect retries while sshd comes up; the outer bound keeps one slow handshake
    // from holding the check longer.
    match tokio::time::timeout(timeout * 2, Session::connect(&target, timeout)).await {
        Ok(Ok(session)) => {
            let shown = session.host_key().to_string();
            session.close().await;
            if shown.trim() != pinned.trim() {
                Check::warn(
                    ID,
                    format!(
                        "logged in as {}@{address} with the host key of an unfinished host key \
                         rotation ({kind})",
                        target.user
                    ),
                    format!("the next `docker euca ssh {name}` pins it"),
                )
            } else {
                Check::ok(
                    ID,
                    format!(
                        "logged in as {}@{address}; the host key is the pinned one ({kind})",
                        target.user
                    ),
                )
            }
        }
        Ok(Err(SshError::HostKeyMismatch { expected, got, .. })) => Check::fail(
            ID,
            format!("the host key changed: {address} shows {got}, the record pins {expected}"),
            "someone else may be answering at this address (or the instance was replaced): do \
             not trust it. If the host key changed legitimately, recreate the machine",
        ),
        Ok(Err(e)) => {
            let hint = e
                .hint()
                .unwrap_or_else(|| format!("`docker euca logs {name} --console` shows the boot"));
            Check::fail(ID, e.to_string(), hint)
        }
        Err(_) => Check::fail(
            ID,
            format!("no SSH login at {address} within {}", secs(timeout * 2)),
            format!("sshd is slow or stuck: `docker euca logs {name} --console`"),
        ),
    }
}

/// Mutual TLS with the context's files, `/_ping` through it, then `/version` (bollard, as the
/// docker CLI would) when the certificate names the address. Returns the server certificate
/// it was shown, for the certificate check.
async fn daemon_tls_check(
    name: &str,
    address: IpAddr,
    files: &crate::context::TlsFiles,
    tls_dir: &Path,
    timeout: Duration,
) -> (Check, Option<Vec<u8>>) {
    const ID: &str = "daemon-tls";
    let regenerate = format!("`docker euca regenerate-certs {name}`");
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(net::pem_certificates(&files.ca_pem));
    let chain = net::pem_certificates(&files.cert_pem);
    let key = net::pem_private_key(files.key_pem.expose());
    let (Some(key), false, true) = (key, chain.is_empty(), added > 0) else {
        return (
            Check::fail(
                ID,
                "the context's TLS files (ca.pem, cert.pem, key.pem) do not parse",
                format!("{regenerate} writes them again"),
            ),
            None,
        );
    };
    let addr = SocketAddr::new(address, DOCKER_PORT);
    let outcome = net::handshake(
        addr,
        net::TlsSetup {
            roots,
            client: Some((chain, key)),
            server_name: rustls::pki_types::ServerName::from(address),
            ignore_name: true,
            request: Some(format!(
                "GET /_ping HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: docker-euca-doctor\r\n\
                 Connection: close\r\n\r\n"
            )),
        },
        timeout,
    )
    .await;
    let leaf = outcome.leaf.clone();
    let check = match outcome.result {
        Ok(Some(status)) if status.contains(" 200") => {
            if outcome.name_mismatch {
                Check::ok(
                    ID,
                    format!(
                        "mutual TLS with the context's certificates works at {addr}; /version \
                         needs a certificate that names {address} (see certificate)"
                    ),
                )
            } else {
                let url = format!("tcp://{addr}");
                match crate::engine::version(&url, tls_dir, timeout).await {
                    Ok(v) => Check::ok(
                        ID,
                        format!(
                            "Docker {} (API {}) answers /version at {addr} over mutual TLS",
                            v.version, v.api_version
                        ),
                    ),
                    Err(e) => Check::fail(ID, e.to_string(), e.hint()),
                }
            }
        }
        Ok(Some(status)) => Check::fail(
            ID,
            format!("the daemon answered /_ping with {status:?}"),
            format!("restart it: `docker euca ssh {name} -- sudo service docker restart`"),
        ),
        Ok(None) => Check::fail(
            ID,
            "the daemon sent no answer to /_ping",
            format!("restart it: `docker euca ssh {name} -- sudo service docker restart`"),
        ),
        Err(net::TlsFailure::Handshake(rustls::Error::AlertReceived(alert))) => {
            let alert = format!("{alert:?}");
            let refused = ["Certificate", "UnknownCA", "AccessDenied", "DecryptError"]
                .iter()
                .any(|w| alert.contains(w));
            if refused {
                Check::fail(
                    ID,
                    format!(
                        "the daemon refused the context's client certificate (TLS alert \
                         {alert})"
                    ),
                    format!(
                        "`docker euca regenerate-certs {name} --client-certs` makes a new CA and \
                         client certificate and installs both sides"
                    ),
                )
            } else {
                Check::fail(
                    ID,
                    format!("the daemon ended the TLS handshake (alert {alert})"),
                    format!("{regenerate} installs a fresh server certificate"),
                )
            }
        }
        Err(net::TlsFailure::Handshake(rustls::Error::InvalidCertificate(e))) => {
            use rustls::CertificateError as C;
            let what = match e {
                C::UnknownIssuer | C::BadSignature => {
                    "the daemon's certificate is not signed by the context's CA".to_string()
                }
                C::Expired | C::ExpiredContext { .. } => {
                    "the daemon's certificate has expired (see certificate)".to_string()
                }
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    "the daemon's certificate is not valid yet (check the clocks)".to_string()
                }
                other => format!("the daemon's certificate is refused: {other:?}"),
            };
            Check::fail(
                ID,
                what,
                format!("{regenerate} installs a certificate from the machine's CA"),
            )
        }
        Err(e) => Check::fail(
            ID,
            format!("TLS with {addr} failed: {}", e.describe()),
            format!(
                "check that dockerd runs with --tlsverify on {DOCKER_PORT} (`docker euca \
                 provision {name}` sets it up again)"
            ),
        ),
    };
    (check, leaf)
}

/// The server certificate against the machine's current address and the calendar.
fn certificate_check(
    name: &str,
    address: IpAddr,
    der: &[u8],
    whose: &str,
    stale_record: bool,
) -> Check {
    const ID: &str = "certificate";
    let regenerate = format!("`docker euca regenerate-certs {name}`");
    let Some(facts) = net::cert_facts(der) else {
        return Check::fail(
            ID,
            format!("{whose} server certificate does not parse"),
            format!("{regenerate} issues a new one"),
        );
    };
    let names = facts.names().join(", ");
    if !facts.ips.contains(&address) {
        let hint = if stale_record {
            format!(
                "the address changed outside docker-euca: `docker euca start {name}` picks up \
                 the new address, reissues the certificate and updates the context \
                 (regenerate-certs would use the recorded, old address)"
            )
        } else {
            format!("{regenerate} issues one for {address}")
        };
        return Check::fail(
            ID,
            format!("{whose} server certificate names {names}, but the machine is at {address}"),
            hint,
        );
    }
    let until = facts.not_after_date();
    if facts.expired() {
        return Check::fail(
            ID,
            format!("{whose} server certificate expired on {until}"),
            format!("{regenerate} issues a new one"),
        );
    }
    let left = facts.days_left();
    if left < EXPIRY_WARNING_DAYS {
        return Check::warn(
            ID,
            format!(
                "{whose} server certificate names {address} but expires on {until} ({left} days)"
            ),
            format!("{regenerate} issues a new one"),
        );
    }
    Check::ok(
        ID,
        format!("{whose} server certificate names {address}; valid until {until}"),
    )
}

fn context_check(store: &Store, contexts: &ContextStore, record: &MachineRecord) -> Check {
    const ID: &str = "context";
    let name = &record.name;
    let context = record.context_name();
    let regenerate = format!("`docker euca regenerate-certs {name}` writes it again");
    let meta = match contexts.read(&context) {
        Ok(meta) => meta,
        Err(ContextError::NotFound { .. }) => {
            return Check::fail(
                ID,
                format!("docker context {context} does not exist"),
                regenerate,
            );
        }
        Err(e) => {
            let hint = hint_for(&anyhow::Error::new(e));
            return Check::fail(
                ID,
                format!("docker context {context} cannot be read"),
                hint.unwrap_or(regenerate),
            );
        }
    };
    let Some(url) = record.engine.url.as_deref() else {
        return Check::fail(
            ID,
            format!("{name} has no docker endpoint on record (its set-up did not finish)"),
            format!("`docker euca provision {name}`"),
        );
    };
    let host = meta.docker.as_ref().map(|d| d.host.as_str()).unwrap_or("");
    if host != url {
        let shown = if host.is_empty() { "nothing" } else { host };
        return Check::fail(
            ID,
            format!("context {context} points at {shown}, the record at {url}"),
            regenerate,
        );
    }
    if meta.docker.as_ref().is_some_and(|d| d.skip_tls_verify) {
        return Check::warn(
            ID,
            format!("context {context} skips TLS verification"),
            regenerate,
        );
    }
    let files = match contexts.read_tls(&context) {
        Ok(Some(files)) => files,
        Ok(None) => {
            return Check::fail(
                ID,
                format!("context {context} lacks its TLS files (ca.pem, cert.pem, key.pem)"),
                regenerate,
            );
        }
        Err(e) => {
            return Check::fail(
                ID,
                format!("the TLS files of context {context} cannot be read: {e}"),
                "check the permissions of the docker config directory",
            );
        }
    };
    let machine_ca = std::fs::read(certs_dir(store, &record.name).join("ca.pem")).ok();
    if let Some(ca) = machine_ca
        && net::pem_certificates(&ca) != net::pem_certificates(&files.ca_pem)
    {
        return Check::fail(
            ID,
            format!("context {context} trusts another CA than the machine's"),
            regenerate,
        );
    }
    Check::ok(
        ID,
        format!("context {context} points at {url}; TLS files present"),
    )
}

/// The console check: with a failure above, its last lines; without one, that it is there.
fn console_check(name: &str, id: &str, text: &str, failed: bool) -> Check {
    let lines: Vec<String> = text
        .lines()
        .map(sanitize)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .skip_while(|l| l.trim().is_empty())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if !failed {
        return Check::ok(
            "console",
            format!(
                "{} lines of console output (`docker euca logs {name} --console` shows them)",
                lines.len()
            ),
        );
    }
    let last: Vec<&String> = lines
        .iter()
        .skip(lines.len().saturating_sub(CONSOLE_LINES))
        .collect();
    let mut detail = format!("the last {} lines of {id}'s console output:", last.len());
    for l in last {
        detail.push('\n');
        detail.push_str(l);
    }
    Check::ok("console", detail)
}

/// A console line safe to print: carriage returns and other control characters (an escape
/// sequence could rewrite the terminal) become `?`, tabs stay.
fn sanitize(line: &str) -> String {
    line.trim_end_matches('\r')
        .chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cloud::InstanceInfo, doctor::Status, names::MachineName};

    fn rule(protocol: &str, from: Option<i32>, to: Option<i32>, cidrs: &[&str]) -> IngressRule {
        IngressRule {
            protocol: protocol.into(),
            from_port: from,
            to_port: to,
            cidrs: cidrs.iter().map(|c| c.to_string()).collect(),
            group_pairs: 0,
        }
    }

    #[test]
    fn a_rule_admits_us_when_its_cidr_holds_our_address() {
        let me: Ipv4Addr = "10.214.0.1".parse().unwrap();
        let rules = [
            rule("tcp", Some(22), Some(22), &["10.214.0.1/32"]),
            rule("tcp", Some(2376), Some(2376), &["192.0.2.0/24"]),
        ];
        assert_eq!(
            admitting_cidr(&rules, me, 22).as_deref(),
            Some("10.214.0.1/32")
        );
        assert_eq!(admitting_cidr(&rules, me, 2376), None);
        let world = [rule("tcp", Some(2376), Some(2376), &["0.0.0.0/0"])];
        assert_eq!(
            admitting_cidr(&world, me, 2376).as_deref(),
            Some("0.0.0.0/0")
        );
        let range = [rule("6", Some(1), Some(65535), &["10.214.0.0/16"])];
        assert!(admitting_cidr(&range, me, 2376).is_some());
        let all = [rule("-1", None, None, &["10.0.0.0/8"])];
        assert!(admitting_cidr(&all, me, 22).is_some());
        let udp = [rule("udp", Some(22), Some(22), &["0.0.0.0/0"])];
        assert!(admitting_cidr(&udp, me, 22).is_none());
        // A group-pair rule has no CIDR: it admits other instances, never us.
        let pairs = [IngressRule {
            group_pairs: 1,
            ..rule("tcp", Some(22), Some(22), &[])
        }];
        assert!(admitting_cidr(&pairs, me, 22).is_none());
    }

    #[test]
    fn cidrs() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert!(cidr_contains("10.214.0.0/16", ip("10.214.9.9")));
        assert!(!cidr_contains("10.214.0.0/16", ip("10.213.9.9")));
        assert!(cidr_contains("0.0.0.0/0", ip("203.0.113.5")));
        assert!(cidr_contains("203.0.113.5", ip("203.0.113.5")));
        assert!(!cidr_contains("203.0.113.5/33", ip("203.0.113.5")));
        assert!(!cidr_contains("junk", ip("203.0.113.5")));
    }

    fn record_at(public: &str) -> MachineRecord {
        let mut r = MachineRecord::new(MachineName::new("web1").unwrap());
        r.cloud.instance_id = Some("i-1".into());
        r.cloud.private_ip = Some("10.213.0.5".into());
        r.cloud.public_ip = Some(public.into());
        r
    }

    fn probe(state: &str, public: Option<&str>) -> InstanceProbe {
        let info = InstanceInfo {
            id: "i-1".into(),
            state: state.into(),
            private_ip: Some("10.213.0.5".into()),
            public_ip: public.map(Into::into),
            state_reason: None,
            tags: vec![],
            client_token: None,
            image_id: None,
            instance_type: None,
            zone: None,
            subnet_id: None,
            key_name: None,
            security_group_ids: vec![],
            launch_index: None,
        };
        InstanceProbe {
            info,
            group_ids: vec!["sg-1".into()],
        }
    }

    #[test]
    fn the_instance_verdict_follows_its_state_and_address() {
        let record = record_at("10.214.0.7");
        let (c, reach) = instance_verdict(&record, &probe("running", Some("10.214.0.7")));
        assert_eq!(c.status, Status::Ok);
        assert_eq!(reach.address, Some("10.214.0.7".parse().unwrap()));
        assert!(!reach.stale_record);

        let (c, reach) = instance_verdict(&record, &probe("running", Some("10.214.0.9")));
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.contains("10.214.0.9") && c.detail.contains("10.214.0.7"));
        assert!(reach.stale_record);

        let (c, reach) = instance_verdict(&record, &probe("stopped", None));
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.hint.as_deref(), Some("`docker euca start web1`"));
        assert_eq!(reach.address, None);
        assert!(reach.why_not.contains("stopped"));

        // EDGE: public == private until the public address is assigned.
        let (c, reach) = instance_verdict(&record, &probe("running", Some("10.213.0.5")));
        assert_eq!(c.status, Status::Warn);
        assert_eq!(reach.address, None);

        let (c, _) = instance_verdict(&record, &probe("terminated", None));
        assert_eq!(c.status, Status::Fail);
        assert!(c.hint.unwrap().contains("docker euca rm web1"));
    }

    #[test]
    fn a_certificate_for_another_address_fails_with_the_fix_that_works() {
        let ca = crate::tls::CertificateAuthority::generate("ca", 30).unwrap();
        let old = ca
            .issue_server(&[crate::tls::San::parse("10.214.0.7").unwrap()], 400)
            .unwrap();
        let der = net::pem_certificates(old.cert_pem.as_bytes()).remove(0);
        let at = |a: &str| a.parse::<IpAddr>().unwrap();
        let c = certificate_check(
            "web1",
            at("10.214.0.7"),
            der.as_ref(),
            "the daemon's",
            false,
        );
        assert_eq!(c.status, Status::Ok, "{c:?}");
        let c = certificate_check(
            "web1",
            at("10.214.0.9"),
            der.as_ref(),
            "the daemon's",
            false,
        );
        assert_eq!(c.status, Status::Fail);
        assert!(c.hint.as_deref().unwrap().contains("regenerate-certs web1"));
        let c = certificate_check("web1", at("10.214.0.9"), der.as_ref(), "the daemon's", true);
        assert!(
            c.hint
                .as_deref()
                .unwrap()
                .contains("docker euca start web1")
        );
        let soon = ca
            .issue_server(&[crate::tls::San::parse("10.214.0.7").unwrap()], 3)
            .unwrap();
        let der = net::pem_certificates(soon.cert_pem.as_bytes()).remove(0);
        let c = certificate_check(
            "web1",
            at("10.214.0.7"),
            der.as_ref(),
            "the daemon's",
            false,
        );
        assert_eq!(c.status, Status::Warn);
    }

    #[test]
    fn the_console_shows_its_last_lines_only_after_a_failure() {
        let text: String = (1..=30)
            .map(|i| format!("line {i}\r\n"))
            .collect::<String>()
            + "\n\n";
        let c = console_check("web1", "i-1", &text, false);
        assert!(c.detail.starts_with("30 lines"), "{}", c.detail);
        let c = console_check("web1", "i-1", &text, true);
        let lines: Vec<&str> = c.detail.lines().collect();
        assert_eq!(lines.len(), 1 + CONSOLE_LINES);
        assert_eq!(lines[1], "line 11");
        assert_eq!(lines[CONSOLE_LINES], "line 30");
        assert_eq!(sanitize("a\x1b[2Jb\tc\r"), "a?[2Jb\tc");
    }
}
