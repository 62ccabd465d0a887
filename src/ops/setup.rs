//! Setting a machine up over SSH, shared by the operations that do it (`create`, `provision`,
//! `start` after an address change, `regenerate-certs`): one SSH session for all of it, the
//! host key replaced crash-safely, TLS material, the daemon, then the docker context, then
//! verification over mutual TLS.

use std::{
    net::IpAddr,
    path::Path,
    time::{Duration, Instant},
};

use super::machine;
use crate::{
    context::{ConfigFile, ContextMeta, ContextStore, TlsFiles},
    engine,
    fsutil::{self, PRIVATE_FILE},
    names::MachineName,
    progress::Progress,
    provision::{self, EngineInstall, EngineOptions, daemon},
    ssh::{RemoteFile, Session},
    store::{MachineRecord, MachineState, Store},
    tls::{CertificateAuthority, DEFAULT_VALIDITY_DAYS, San},
};

impl ProvisionPlan {
    /// The plan a machine was created with, from its record (for `provision`).
    pub fn from_record(record: &MachineRecord, stage_timeout: Duration) -> ProvisionPlan {
        let e = &record.engine;
        ProvisionPlan {
            engine: EngineOptions {
                opts: e.opts.clone(),
                labels: e.labels.clone(),
                storage_driver: e.storage_driver.clone(),
                registry_mirrors: e.registry_mirrors.clone(),
                insecure_registries: e.insecure_registries.clone(),
                env: e.env.clone(),
            },
            install: match e.install.as_deref() {
                None | Some("package") => EngineInstall::Package,
                Some("skip") => EngineInstall::Skip,
                Some(url) => EngineInstall::Url(url.to_string()),
            },
            tls_sans: e.tls_sans.clone(),
            context_name: record.context_name(),
            use_context: false,
            stage_timeout,
        }
    }
}

/// What to provision.
#[derive(Debug, Clone)]
pub struct ProvisionPlan {
    pub engine: EngineOptions,
    pub install: EngineInstall,
    pub tls_sans: Vec<String>,
    pub context_name: String,
    pub use_context: bool,
    pub stage_timeout: Duration,
}

#[derive(Debug)]
pub struct Verified {
    pub url: String,
    pub version: engine::EngineVersion,
    /// From "SSH connected" to "verified".
    pub provision_time: Duration,
}

/// The machine's certificate directory (CA key, client key: 0600).
pub fn certs_dir(store: &Store, name: &MachineName) -> std::path::PathBuf {
    store.machine_dir(name).join("certs")
}

/// Loads the machine's CA, or makes one (first provisioning or `--client-certs`).
fn load_or_create_ca(
    dir: &Path,
    name: &MachineName,
    fresh: bool,
) -> anyhow::Result<CertificateAuthority> {
    let (cert, key) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
    if !fresh && cert.exists() && key.exists() {
        return Ok(CertificateAuthority::from_pem(
            &std::fs::read_to_string(&cert)?,
            &std::fs::read_to_string(&key)?,
        )?);
    }
    fsutil::create_private_dir(dir)?;
    let ca = CertificateAuthority::generate(
        &format!("docker-euca CA for {name}"),
        DEFAULT_VALIDITY_DAYS,
    )?;
    fsutil::write_atomic(&key, ca.key_pem().expose().as_bytes(), PRIVATE_FILE)?;
    fsutil::write_atomic(&cert, ca.cert_pem().as_bytes(), PRIVATE_FILE)?;
    // A new CA invalidates the old client certificate.
    let _ = std::fs::remove_file(dir.join("cert.pem"));
    let _ = std::fs::remove_file(dir.join("key.pem"));
    Ok(ca)
}

/// `--shared-ca`: one CA and one client certificate for every machine of a fleet, written into
/// each machine's certificate directory before any is set up (which then loads them as its
/// own), so that one client certificate opens every host.
pub fn write_shared_ca(dirs: &[std::path::PathBuf], fleet: &str) -> anyhow::Result<()> {
    let ca = CertificateAuthority::generate(
        &format!("docker-euca CA for fleet {fleet}"),
        DEFAULT_VALIDITY_DAYS,
    )?;
    let client = ca.issue_client(
        &format!("docker-euca client for fleet {fleet}"),
        DEFAULT_VALIDITY_DAYS,
    )?;
    let ca_key = ca.key_pem();
    for dir in dirs {
        fsutil::create_private_dir(dir)?;
        let files = [
            ("ca-key.pem", ca_key.expose().as_bytes()),
            ("ca.pem", ca.cert_pem().as_bytes()),
            ("key.pem", client.key_pem.expose().as_bytes()),
            ("cert.pem", client.cert_pem.as_bytes()),
        ];
        for (file, bytes) in files {
            fsutil::write_atomic(&dir.join(file), bytes, PRIVATE_FILE)?;
        }
    }
    Ok(())
}

/// The client certificate for the context: reused unless missing.
fn client_tls(
    dir: &Path,
    ca: &CertificateAuthority,
    name: &MachineName,
) -> anyhow::Result<TlsFiles> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if !(cert.exists() && key.exists()) {
        let pair = ca.issue_client(
            &format!("docker-euca client for {name}"),
            DEFAULT_VALIDITY_DAYS,
        )?;
        fsutil::write_atomic(&key, pair.key_pem.expose().as_bytes(), PRIVATE_FILE)?;
        fsutil::write_atomic(&cert, pair.cert_pem.as_bytes(), PRIVATE_FILE)?;
    }
    Ok(TlsFiles {
        ca_pem: ca.cert_pem().as_bytes().to_vec(),
        cert_pem: std::fs::read(&cert)?,
        key_pem: std::fs::read(&key)?.into(),
    })
}

/// Server SANs: the address used, the private one, the hostname, and the user's `--tls-san`s.
/// A remote hostname that is no valid DNS name (images set odd ones) is left out, not fatal;
/// the user's own SANs were checked when given.
fn server_sans(
    record: &MachineRecord,
    address: IpAddr,
    hostname: &str,
    extra: &[String],
) -> anyhow::Result<Vec<San>> {
    let mut sans = Vec::new();
    let mut add = |san: San| {
        if !sans.contains(&san) {
            sans.push(san);
        }
    };
    add(San::Ip(address));
    let addresses = [&record.cloud.private_ip, &record.cloud.public_ip];
    for ip in addresses.into_iter().flatten() {
        if let Ok(ip) = ip.parse() {
            add(San::Ip(ip));
        }
    }
    match San::parse(hostname) {
        Ok(san) if !hostname.is_empty() => add(san),
        Ok(_) => {}
        Err(e) => tracing::debug!("the host's name is left out of the certificate: {e}"),
    }
    add(San::parse("localhost")?);
    add(San::Ip(std::net::Ipv4Addr::LOCALHOST.into()));
    for v in extra {
        add(San::parse(v)?);
    }
    Ok(sans)
}

/// The server's TLS files: the CA certificate, the server certificate and its key.
struct ServerTls {
    ca_pem: String,
    cert_pem: String,
    key_pem: crate::secret::Secret<String>,
}

impl ServerTls {
    /// The files as the daemon's configuration names them.
    fn files(&self) -> [RemoteFile<'_>; 3] {
        [
            RemoteFile {
                path: daemon::CA_PATH,
                contents: self.ca_pem.as_bytes(),
                mode: 0o644,
            },
            RemoteFile {
                path: daemon::CERT_PATH,
                contents: self.cert_pem.as_bytes(),
                mode: 0o644,
            },
            RemoteFile {
                path: daemon::KEY_PATH,
                contents: self.key_pem.expose().as_bytes(),
                mode: 0o600,
            },
        ]
    }
}

/// Issues the server certificate for `address` and the host's name; a copy of the certificate
/// (not its key) stays in the machine's directory.
fn issue_server_cert(
    store: &Store,
    record: &MachineRecord,
    ca: &CertificateAuthority,
    address: IpAddr,
    hostname: &str,
    tls_sans: &[String],
) -> anyhow::Result<ServerTls> {
    let server = ca.issue_server(
        &server_sans(record, address, hostname, tls_sans)?,
        DEFAULT_VALIDITY_DAYS,
    )?;
    fsutil::write_atomic(
        &certs_dir(store, &record.name).join("server.pem"),
        server.cert_pem.as_bytes(),
        PRIVATE_FILE,
    )?;
    Ok(ServerTls {
        ca_pem: ca.cert_pem().to_string(),
        cert_pem: server.cert_pem,
        key_pem: server.key_pem,
    })
}

/// The machine's CA and the context's client certificate, made before the host is reached
/// (they do not depend on it). `fresh_ca`: a new CA and client certificate.
fn local_tls(
    store: &Store,
    name: &MachineName,
    fresh_ca: bool,
) -> anyhow::Result<(CertificateAuthority, TlsFiles)> {
    let dir = certs_dir(store, name);
    let ca = load_or_create_ca(&dir, name, fresh_ca)?;
    let client = client_tls(&dir, &ca, name)?;
    Ok((ca, client))
}

/// Reissues the server certificate for `address` (with `fresh_ca`, a new CA and client
/// certificate too), restarts the daemon and rewrites the context: what `start` does after an
/// address change and what `regenerate-certs` does. Two round trips: the host's facts, then
/// the files and the restart. Returns the endpoint URL.
pub async fn reissue_server_cert(
    docker_config: &Path,
    store: &Store,
    record: &MachineRecord,
    address: IpAddr,
    fresh_ca: bool,
    timeout: Duration,
) -> anyhow::Result<String> {
    let (ca, client) = local_tls(store, &record.name, fresh_ca)?;
    let session = machine::connect(store, record, address, timeout).await?;
    let result = async {
        let host = provision::probe::probe(&session, timeout).await?;
        let server = issue_server_cert(
            store,
            record,
            &ca,
            address,
            &host.hostname,
            &record.engine.tls_sans,
        )?;
        daemon::install_and_restart(&session, &host.facts, &server.files(), false, timeout).await?;
        crate::crash::point("reissue-certificate");
        crate::crash::point("reissue-daemon-restart");
        anyhow::Ok(())
    }
    .await;
    session.close().await;
    result?;
    let context = record.context_name();
    let url = format!("tcp://{address}:{}", daemon::DOCKER_PORT);
    write_context(docker_config, record, &context, &url, &client, false)?;
    crate::crash::point("reissue-context");
    store.update(&record.name, |r| r.engine.url = Some(url.clone()))?;
    // A swarm's context that points at this machine follows it (new address, new client
    // certificate).
    super::swarm::follow_member(docker_config, store, record, &store.load(&record.name)?)?;
    Ok(url)
}

/// Writes (or rewrites) the machine's docker context.
pub fn write_context(
    docker_config: &Path,
    record: &MachineRecord,
    context_name: &str,
    url: &str,
    tls: &TlsFiles,
    use_it: bool,
) -> anyhow::Result<()> {
    let description = format!(
        "{}{} on {}",
        super::teardown::CONTEXT_DESCRIPTION_PREFIX_SPACED,
        record.cloud.instance_id.as_deref().unwrap_or("?"),
        record.cloud.endpoint.as_deref().unwrap_or("?")
    );
    ContextStore::new(docker_config).write(
        &ContextMeta::new(context_name, &description, url),
        Some(tls),
    )?;
    if use_it {
        ConfigFile::new(docker_config).set_current_context(context_name)?;
    }
    Ok(())
}

/// Calls `/version` through the context's TLS files, retrying briefly while the daemon settles.
pub async fn verify(
    docker_config: &Path,
    context_name: &str,
    url: &str,
    timeout: Duration,
) -> anyhow::Result<engine::EngineVersion> {
    let tls_dir = ContextStore::new(docker_config).tls_dir(context_name);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match engine::version(url, &tls_dir, Duration::from_secs(10)).await {
            Ok(v) => return Ok(v),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!("verify: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A fresh ed25519 host key to replace the bootstrap one, which travelled in the user data
/// (the instance's metadata service serves it to anything running on it, containers
/// included); the new private key goes over the pinned session only. Its public key is
/// recorded as pending before sshd is touched: connects accept the pinned or the pending key,
/// and the first connect that sees the pending one pins it, so an interruption at any point
/// leaves a key the record accepts.
fn new_host_key(store: &Store, name: &MachineName) -> anyhow::Result<crate::ssh::keys::KeyPair> {
    let fresh = crate::ssh::keys::KeyPair::generate_ed25519(&format!("{name} host"));
    store.update(name, |r| {
        r.ssh.pending_host_key = Some(fresh.public_openssh())
    })?;
    crate::crash::point("host-key-pending");
    Ok(fresh)
}

/// The new host key is in place and sshd reloaded: it becomes the pinned one.
fn pin_new_host_key(store: &Store, name: &MachineName, public: String) -> anyhow::Result<()> {
    crate::crash::point("host-key-reloaded");
    store.update(name, |r| {
        r.ssh.host_key = Some(public);
        r.ssh.pending_host_key = None;
        r.ssh.host_key_rotated = true;
    })?;
    Ok(())
}

/// The whole provisioning of a machine that answers SSH at `address`, over one SSH connection
/// and (with the engine on the image) two round trips: the host's facts (after cloud-init),
/// then every file — TLS material, the daemon's configuration, the new host key — with the
/// sshd reload and the daemon's restart.
pub async fn provision_machine(
    docker_config: &Path,
    store: &Store,
    name: &MachineName,
    address: IpAddr,
    plan: &ProvisionPlan,
    progress: &mut Progress,
) -> anyhow::Result<Verified> {
    let (ca, client) = local_tls(store, name, false)?;
    let started = Instant::now();
    let (session, host) = connect_and_probe(store, name, address, plan, progress).await?;
    let record = store.load(name)?;
    let result = set_up_host(&session, store, &record, address, plan, &ca, host, progress).await;
    session.close().await;
    result?;
    let url = format!("tcp://{address}:{}", daemon::DOCKER_PORT);
    progress.stage(format!("writing docker context {}", plan.context_name));
    write_context(
        docker_config,
        &record,
        &plan.context_name,
        &url,
        &client,
        plan.use_context,
    )?;
    crate::crash::point("context");
    record_plan(store, name, plan, &url)?;
    progress.stage(format!("verifying {url} over mutual TLS"));
    let version = verify(docker_config, &plan.context_name, &url, plan.stage_timeout).await?;
    crate::crash::point("verify");
    progress.finish_stage();
    store.update(name, |r| {
        r.state = MachineState::Ready;
        r.engine.version = Some(version.version.clone());
    })?;
    Ok(Verified {
        url,
        version,
        provision_time: started.elapsed(),
    })
}

/// Connects (host key pinned) and reads the host in one round trip. A connection lost while
/// the host was read (it went silent: a network restart, a hypervisor's hiccup) is tried again
/// over a new one, twice at most: reading changes nothing.
async fn connect_and_probe(
    store: &Store,
    name: &MachineName,
    address: IpAddr,
    plan: &ProvisionPlan,
    progress: &mut Progress,
) -> anyhow::Result<(Session, provision::probe::HostProbe)> {
    let mut lost = 0;
    loop {
        progress.stage(format!(
            "connecting over SSH to {address} (host key pinned)"
        ));
        let record = store.load(name)?;
        let session = machine::connect(store, &record, address, plan.stage_timeout).await?;
        progress.stage("waiting for cloud-init; reading the host");
        match provision::probe::probe(&session, plan.stage_timeout).await {
            Ok(host) => return Ok((session, host)),
            Err(provision::ProvisionError::ConnectionLost) if lost < 2 => {
                lost += 1;
                session.close().await;
                progress.fail_stage();
                progress
                    .note("  the connection was lost while the host was read; connecting again");
            }
            Err(e) => {
                session.close().await;
                return Err(e.into());
            }
        }
    }
}

/// Everything done on the host over the open session, once it was read.
#[allow(clippy::too_many_arguments)]
async fn set_up_host(
    session: &Session,
    store: &Store,
    record: &MachineRecord,
    address: IpAddr,
    plan: &ProvisionPlan,
    ca: &CertificateAuthority,
    host: provision::probe::HostProbe,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    tracing::debug!("cloud-init: {}", host.cloud_init);
    crate::crash::point("cloud-init");
    progress.finish_stage();
    progress.note(format!(
        "  {} with {:?} init",
        host.facts.pretty_name, host.facts.init
    ));
    let (dockerd, version) = match (&host.dockerd, &host.engine_version) {
        (Some(path), Some(version)) => (path.clone(), version.clone()),
        _ => {
            progress.stage("installing the docker engine");
            provision::install_engine(session, &host.facts, &plan.install, plan.stage_timeout)
                .await?
        }
    };
    crate::crash::point("engine");
    progress.note(format!("  {version}"));
    let server = issue_server_cert(store, record, ca, address, &host.hostname, &plan.tls_sans)?;
    let config = daemon::render(host.facts.init, &plan.engine, &dockerd);
    let host_key = if record.ssh.host_key_rotated {
        None
    } else {
        Some(new_host_key(store, &record.name)?)
    };
    let host_key_files = host_key
        .as_ref()
        .map(|k| (k.private_openssh(), format!("{}\n", k.public_openssh())));
    let mut files = server.files().to_vec();
    files.push(RemoteFile {
        path: config.path,
        contents: config.contents.as_bytes(),
        mode: 0o644,
    });
    if let Some((private, public)) = &host_key_files {
        files.push(RemoteFile {
            path: "/etc/ssh/ssh_host_ed25519_key",
            contents: private.expose().as_bytes(),
            mode: 0o600,
        });
        files.push(RemoteFile {
            path: "/etc/ssh/ssh_host_ed25519_key.pub",
            contents: public.as_bytes(),
            mode: 0o644,
        });
    }
    progress.stage(if host_key.is_some() {
        "installing certificates, the daemon configuration and a new SSH host key; restarting the daemon"
    } else {
        "installing certificates and the daemon configuration; restarting the daemon"
    });
    daemon::install_and_restart(
        session,
        &host.facts,
        &files,
        host_key.is_some(),
        plan.stage_timeout,
    )
    .await?;
    if let Some(key) = host_key {
        pin_new_host_key(store, &record.name, key.public_openssh())?;
    }
    crate::crash::point("certificates");
    crate::crash::point("daemon-restart");
    Ok(())
}

/// Records what the machine was provisioned with.
fn record_plan(
    store: &Store,
    name: &MachineName,
    plan: &ProvisionPlan,
    url: &str,
) -> anyhow::Result<()> {
    store.update(name, |r| {
        r.engine.context_name = Some(plan.context_name.clone());
        r.engine.url = Some(url.to_string());
        r.engine.tls_sans = plan.tls_sans.clone();
        r.engine.labels = plan.engine.labels.clone();
        r.engine.opts = plan.engine.opts.clone();
        r.engine.storage_driver = plan.engine.storage_driver.clone();
        r.engine.registry_mirrors = plan.engine.registry_mirrors.clone();
        r.engine.insecure_registries = plan.engine.insecure_registries.clone();
        r.engine.env = plan.engine.env.clone();
        r.engine.install = Some(match &plan.install {
            EngineInstall::Package => "package".into(),
            EngineInstall::Skip => "skip".into(),
            EngineInstall::Url(u) => u.clone(),
        });
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostname_that_is_no_dns_name_is_left_out_of_the_certificate() {
        let mut record = MachineRecord::new(MachineName::new("web1").unwrap());
        record.cloud.private_ip = Some("10.0.0.5".into());
        record.cloud.public_ip = Some("203.0.113.7".into());
        let address: IpAddr = "203.0.113.7".parse().unwrap();
        let sans = server_sans(&record, address, "my_host!", &[]).unwrap();
        assert!(
            !sans
                .iter()
                .any(|s| matches!(s, San::Dns(d) if d.contains("my_host")))
        );
        assert!(sans.contains(&San::Ip("10.0.0.5".parse().unwrap())));
        assert!(sans.contains(&San::Ip(address)));
        assert_eq!(sans.iter().filter(|s| **s == San::Ip(address)).count(), 1);
        let sans = server_sans(&record, address, "euca-10-0-0-5", &["web.example".into()]).unwrap();
        assert!(sans.contains(&San::Dns("euca-10-0-0-5".into())));
        assert!(sans.contains(&San::Dns("web.example".into())));
        // The user's own SANs are still checked.
        assert!(server_sans(&record, address, "h", &["bad name".into()]).is_err());
    }
}
