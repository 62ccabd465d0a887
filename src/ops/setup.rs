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
    ssh::Session,
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

/// Issues and uploads the server certificate (the CA too), over an open session.
pub async fn install_server_cert(
    session: &Session,
    store: &Store,
    record: &MachineRecord,
    address: IpAddr,
    tls_sans: &[String],
    fresh_ca: bool,
) -> anyhow::Result<TlsFiles> {
    let dir = certs_dir(store, &record.name);
    let ca = load_or_create_ca(&dir, &record.name, fresh_ca)?;
    let client = client_tls(&dir, &ca, &record.name)?;
    let hostname = session
        .run("hostname -f 2>/dev/null || hostname")
        .await
        .unwrap_or_default();
    let server = ca.issue_server(
        &server_sans(record, address, hostname.trim(), tls_sans)?,
        DEFAULT_VALIDITY_DAYS,
    )?;
    session
        .upload(daemon::CA_PATH, ca.cert_pem().as_bytes(), 0o644)
        .await?;
    session
        .upload(daemon::CERT_PATH, server.cert_pem.as_bytes(), 0o644)
        .await?;
    session
        .upload(daemon::KEY_PATH, server.key_pem.expose().as_bytes(), 0o600)
        .await?;
    fsutil::write_atomic(
        &dir.join("server.pem"),
        server.cert_pem.as_bytes(),
        PRIVATE_FILE,
    )?;
    Ok(client)
}

/// Reissues the server certificate for `address` (with `fresh_ca`, a new CA and client
/// certificate too), restarts the daemon and rewrites the context: what `start` does after an
/// address change and what `regenerate-certs` does. Returns the endpoint URL.
pub async fn reissue_server_cert(
    docker_config: &Path,
    store: &Store,
    record: &MachineRecord,
    address: IpAddr,
    fresh_ca: bool,
    timeout: Duration,
) -> anyhow::Result<String> {
    let session = machine::connect(store, record, address, timeout).await?;
    let result = async {
        let facts = provision::detect::detect(&session).await?;
        let client = install_server_cert(
            &session,
            store,
            record,
            address,
            &record.engine.tls_sans,
            fresh_ca,
        )
        .await?;
        crate::crash::point("reissue-certificate");
        daemon::restart_and_wait(&session, &facts, timeout).await?;
        crate::crash::point("reissue-daemon-restart");
        anyhow::Ok(client)
    }
    .await;
    session.close().await;
    let client = result?;
    let context = record.context_name();
    let url = format!("tcp://{address}:{}", daemon::DOCKER_PORT);
    write_context(docker_config, record, &context, &url, &client, false)?;
    crate::crash::point("reissue-context");
    store.update(&record.name, |r| r.engine.url = Some(url.clone()))?;
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

/// Installs a fresh ed25519 host key and pins it. The bootstrap key travelled in the user
/// data, which the instance's metadata service serves to anything running on it (containers
/// included); the new private key goes over the pinned session only. The open session is not
/// affected by sshd's reload.
///
/// Crash-safe: the new public key is recorded as pending before sshd is touched, connects
/// accept the pinned or the pending key, and the first connect that sees the pending one pins
/// it. An interruption at any point leaves a key the record accepts.
async fn rotate_host_key(
    session: &Session,
    store: &Store,
    name: &MachineName,
) -> anyhow::Result<()> {
    let fresh = crate::ssh::keys::KeyPair::generate_ed25519(&format!("{name} host"));
    let public = fresh.public_openssh();
    store.update(name, |r| r.ssh.pending_host_key = Some(public.clone()))?;
    crate::crash::point("host-key-pending");
    session
        .upload(
            "/etc/ssh/ssh_host_ed25519_key",
            fresh.private_openssh().expose().as_bytes(),
            0o600,
        )
        .await?;
    session
        .upload(
            "/etc/ssh/ssh_host_ed25519_key.pub",
            format!("{public}\n").as_bytes(),
            0o644,
        )
        .await?;
    let sudo = session.sudo();
    let reload = format!(
        "{sudo}systemctl reload ssh 2>/dev/null || {sudo}systemctl reload sshd 2>/dev/null || \
         {sudo}service ssh reload 2>/dev/null || {sudo}service sshd reload 2>/dev/null || \
         {sudo}rc-service sshd reload 2>/dev/null || {sudo}sh -c 'kill -HUP $(cat /var/run/sshd.pid)'"
    );
    session.run(&reload).await?;
    crate::crash::point("host-key-reloaded");
    store.update(name, |r| {
        r.ssh.host_key = Some(public.clone());
        r.ssh.pending_host_key = None;
        r.ssh.host_key_rotated = true;
    })?;
    Ok(())
}

/// The whole provisioning of a machine that answers SSH at `address`.
pub async fn provision_machine(
    docker_config: &Path,
    store: &Store,
    name: &MachineName,
    address: IpAddr,
    plan: &ProvisionPlan,
    progress: &mut Progress,
) -> anyhow::Result<Verified> {
    let record = store.load(name)?;
    progress.stage(format!(
        "connecting over SSH to {address} (host key pinned)"
    ));
    let started = Instant::now();
    let session = machine::connect(store, &record, address, plan.stage_timeout).await?;
    let record = store.load(name)?;
    let result = async {
        if !record.ssh.host_key_rotated {
            progress.stage("replacing the bootstrap SSH host key");
            rotate_host_key(&session, store, name).await?;
        }
        progress.stage("waiting for cloud-init");
        let ci = provision::wait_cloud_init(&session, plan.stage_timeout).await?;
        tracing::debug!("cloud-init: {ci}");
        crate::crash::point("cloud-init");
        progress.stage("detecting the OS");
        let facts = provision::detect::detect(&session).await?;
        progress.finish_stage();
        progress.note(format!(
            "  {} with {:?} init",
            facts.pretty_name, facts.init
        ));
        progress.stage("checking the docker engine");
        let version = provision::ensure_engine(&session, &facts, &plan.install).await?;
        crate::crash::point("engine");
        progress.finish_stage();
        progress.note(format!("  {version}"));
        progress.stage("installing TLS certificates");
        let client =
            install_server_cert(&session, store, &record, address, &plan.tls_sans, false).await?;
        crate::crash::point("certificates");
        progress.stage("configuring and restarting the docker daemon");
        daemon::apply(&session, &facts, &plan.engine, plan.stage_timeout).await?;
        crate::crash::point("daemon-restart");
        anyhow::Ok(client)
    }
    .await;
    session.close().await;
    let client = result?;
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
    store.update(name, |r| {
        r.engine.context_name = Some(plan.context_name.clone());
        r.engine.url = Some(url.clone());
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
