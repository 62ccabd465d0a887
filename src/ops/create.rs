//! `create`: a journal of steps (key → security group → instance → tags → running → address →
//! SSH port), each recorded in the machine record before the next starts, so an interrupted or
//! failed create is rolled back (or removable with `rm`) without leaving anything in the cloud.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use aws_sdk_ec2::types::InstanceStateName;
use tokio_util::sync::CancellationToken;

use crate::{
    cloud::{Ec2, LaunchSpec, MACHINE_TAG, usable_address},
    credentials::{CloudFlags, Profiles},
    fsutil::{self, PRIVATE_FILE},
    names::MachineName,
    progress::Progress,
    provision::userdata,
    report::{Cancelled, Hinted},
    ssh::keys::KeyPair,
    store::{MachineRecord, MachineState, Store},
};

pub const DEFAULT_INSTANCE_TYPE: &str = "m1.large";

/// How long each wait may take.
#[derive(Debug, Clone)]
pub struct Timeouts {
    pub running: Duration,
    pub address: Duration,
    pub ssh_port: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            running: Duration::from_secs(600),
            address: Duration::from_secs(300),
            ssh_port: Duration::from_secs(300),
        }
    }
}

/// An IPv4 CIDR such as `203.0.113.0/24`.
pub fn parse_cidr(s: &str) -> Result<String, String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not a CIDR: use ADDRESS/PREFIX, e.g. 203.0.113.0/24"))?;
    let ip: std::net::Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("{ip:?} in {s:?} is not an IPv4 address"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(|| format!("prefix length {len:?} in {s:?} must be 0..=32"))?;
    Ok(format!("{ip}/{len}"))
}

/// `PORT[/PROTO]` with PROTO tcp (default) or udp.
pub fn parse_port(s: &str) -> Result<(u16, String), String> {
    let (port, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{port:?} is not a port number (1-65535)"))?;
    let proto = proto.to_ascii_lowercase();
    if proto != "tcp" && proto != "udp" {
        return Err(format!("protocol {proto:?} in {s:?} must be tcp or udp"));
    }
    Ok((port, proto))
}

#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub name: MachineName,
    pub cloud: CloudFlags,
    pub image: Option<String>,
    pub instance_type: String,
    pub zone: Option<String>,
    pub subnet: Option<String>,
    pub root_size: Option<i32>,
    pub iam_instance_profile: Option<String>,
    pub user_data: Option<PathBuf>,
    pub ssh_user: String,
    pub ssh_port: u16,
    pub allow_cidrs: Vec<String>,
    pub open_ports: Vec<(u16, String)>,
    pub security_group: Option<String>,
    pub keypair_name: Option<String>,
    pub ssh_key: Option<PathBuf>,
    /// Generate an RSA-4096 key and ImportKeyPair it (removed again by rm).
    pub import_keypair: bool,
    /// The image has no cloud-init: no user data of ours; host key from the console.
    pub no_cloud_init: bool,
    /// With `no_cloud_init`: trust the first host key seen if the console shows none.
    pub trust_first_key: bool,
    pub use_private_address: bool,
    pub keep_on_failure: bool,
    pub quiet: bool,
    pub timeouts: Timeouts,
    pub provision: super::provision::ProvisionPlan,
}

#[derive(Debug)]
pub struct CreateOutcome {
    pub record: MachineRecord,
    pub address: IpAddr,
    pub verified: super::provision::Verified,
    pub total: Duration,
}

/// Runs the create; on failure or cancellation removes what it made (unless
/// `--keep-on-failure`), then returns the error.
pub async fn create(
    docker_config: &Path,
    opts: CreateOptions,
    cancel: CancellationToken,
) -> anyhow::Result<CreateOutcome> {
    if opts.no_cloud_init && !opts.import_keypair && opts.keypair_name.is_none() {
        bail!(Hinted::new(
            "without cloud-init nothing can authorise an SSH key on the instance",
            "add --import-keypair, or --keypair-name NAME --ssh-key PATH",
        ));
    }
    if opts.import_keypair && opts.keypair_name.is_some() {
        bail!(Hinted::new(
            "--import-keypair and --keypair-name exclude each other",
            "pick one"
        ));
    }
    if opts.keypair_name.is_some() != opts.ssh_key.is_some() {
        bail!(Hinted::new(
            "--keypair-name and --ssh-key go together",
            "give both: the key pair's name and its private key file"
        ));
    }
    let user_data = match &opts.user_data {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read --user-data {}", p.display()))?,
        ),
        None => None,
    };
    if crate::context::ContextStore::new(docker_config).exists(&opts.provision.context_name) {
        bail!(Hinted::new(
            format!(
                "a docker context named {:?} already exists",
                opts.provision.context_name
            ),
            "pick another machine name, or name the context with --context-name",
        ));
    }
    let target = super::cloud_target::resolve(docker_config, &opts.cloud, None).await?;
    let image = match opts.image.clone() {
        Some(i) => i,
        None => Profiles::new(docker_config)
            .get(&target.profile)?
            .and_then(|p| p.default_image)
            .ok_or_else(|| {
                Hinted::new(
                    "no image given",
                    "give --image emi-… (`euca-describe-images` lists them)",
                )
            })?,
    };
    let ec2 = Ec2::connect(&target)?;
    if !ec2.image_exists(&image).await? {
        bail!(Hinted::new(
            format!("image {image:?} does not exist on {}", target.endpoint),
            "check --image: `euca-describe-images` lists the images you may use",
        ));
    }
    let store = Store::new(docker_config);
    let mut record = MachineRecord::new(opts.name.clone());
    record.cloud.endpoint = Some(target.endpoint.clone());
    record.cloud.region = Some(target.region.clone());
    record.cloud.profile = Some(target.profile.clone());
    record.cloud.ca_bundle = target.ca_bundle.as_ref().map(|p| {
        std::path::absolute(p)
            .unwrap_or(p.clone())
            .display()
            .to_string()
    });
    record.engine.context_name = Some(opts.provision.context_name.clone());
    record.cloud.image_id = Some(image.clone());
    record.cloud.instance_type = Some(opts.instance_type.clone());
    record.cloud.zone = opts.zone.clone();
    record.cloud.subnet_id = opts.subnet.clone();
    record.cloud.use_private_address = opts.use_private_address;
    record.ssh.user = Some(opts.ssh_user.clone());
    record.ssh.port = Some(opts.ssh_port);
    let dir = store.create(&record)?;

    let mut progress = Progress::new(opts.quiet);
    let steps = run_steps(
        docker_config,
        &ec2,
        &store,
        &dir,
        &opts,
        &image,
        user_data.as_deref(),
        &mut progress,
    );
    let outcome = tokio::select! {
        r = steps => r,
        _ = cancel.cancelled() => Err(anyhow::Error::new(Cancelled)),
    };
    match outcome {
        Ok((address, verified)) => {
            progress.finish_stage();
            let record = store.load(&opts.name)?;
            Ok(CreateOutcome {
                record,
                address,
                verified,
                total: progress.total(),
            })
        }
        Err(err) => {
            progress.fail_stage();
            if opts.keep_on_failure {
                let _ = store.update(&opts.name, |r| r.state = MachineState::Failed);
                return Err(err.context(format!(
                    "create failed; its resources were kept (--keep-on-failure): `docker euca rm {}` removes them",
                    opts.name
                )));
            }
            roll_back(docker_config, &ec2, &store, &opts, &mut progress).await;
            Err(err)
        }
    }
}

/// Removes what a failed create made: cloud resources, then the context, then the record. A
/// failure here is reported as a warning; the create's own error stays the one returned.
async fn roll_back(
    docker_config: &Path,
    ec2: &Ec2,
    store: &Store,
    opts: &CreateOptions,
    progress: &mut Progress,
) {
    let name = &opts.name;
    progress.note(format!("rolling back {name}…"));
    if let Err(cleanup) = super::rm::teardown(ec2, store, name, progress).await {
        progress.fail_stage();
        progress.note(format!(
            "warning: rollback of {name} failed ({cleanup:#}); the record is kept: run `docker euca rm {name}`"
        ));
        return;
    }
    let cleaned = super::rm::remove_context(docker_config, Some(&opts.provision.context_name))
        .and_then(|()| Ok(store.remove(name)?));
    match cleaned {
        Ok(()) => progress.note("rolled back: nothing was left in the cloud"),
        Err(e) => progress.note(format!("warning: nothing is left in the cloud, but {e:#}")),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_steps(
    docker_config: &Path,
    ec2: &Ec2,
    store: &Store,
    dir: &Path,
    opts: &CreateOptions,
    image: &str,
    user_data: Option<&str>,
    progress: &mut Progress,
) -> anyhow::Result<(IpAddr, super::provision::Verified)> {
    let name = &opts.name;
    // SSH keys. The client key is ours (ed25519, authorised through cloud-init), an imported
    // RSA key pair (`--import-keypair`, for images without cloud-init), or the user's key pair.
    // The host key is pinned before first contact: sent through cloud-init, or read from the
    // console (`--no-cloud-init`).
    progress.stage("generating SSH keys");
    let host_key =
        (!opts.no_cloud_init).then(|| KeyPair::generate_ed25519(&format!("{name} host")));
    let (key_path, authorized, key_name) = if opts.import_keypair {
        let pair = KeyPair::generate_rsa(4096, &format!("docker-euca {name}"))?;
        let path = write_client_key(dir, "id_rsa", &pair)?;
        let key_name = format!("docker-euca-{name}");
        // Journal the intent first: if the answer is lost, rollback still deletes the pair.
        store.update(name, |r| {
            r.cloud.key_pair_name = Some(key_name.clone());
            r.cloud.key_pair_owned = true;
        })?;
        progress.stage(format!("importing key pair {key_name} (RSA-4096)"));
        ec2.import_key_pair(&key_name, &pair.public_openssh())
            .await?;
        (path, vec![], Some(key_name))
    } else if let (Some(pair_name), Some(path)) = (&opts.keypair_name, &opts.ssh_key) {
        (
            std::path::absolute(path).unwrap_or(path.clone()),
            vec![],
            Some(pair_name.clone()),
        )
    } else {
        let client = KeyPair::generate_ed25519(&format!("docker-euca {name}"));
        let path = write_client_key(dir, "id_ed25519", &client)?;
        (path, vec![client.public_openssh()], None)
    };
    store.update(name, |r| {
        r.ssh.key_path = Some(key_path.display().to_string());
        r.ssh.host_key = host_key.as_ref().map(KeyPair::public_openssh);
        if !opts.import_keypair {
            r.cloud.key_pair_name = key_name.clone();
            r.cloud.key_pair_owned = false;
        }
    })?;

    // Security group: ours, or the user's as it is.
    let group_id = match &opts.security_group {
        Some(group) => {
            progress.stage(format!("looking up security group {group}"));
            let id = ec2.find_security_group(group).await?.ok_or_else(|| {
                Hinted::new(
                    format!("security group {group:?} does not exist"),
                    "create it first, or leave out --security-group",
                )
            })?;
            store.update(name, |r| {
                r.cloud.security_group_id = Some(id.clone());
                r.cloud.security_group_name = Some(group.clone());
                r.cloud.security_group_owned = false;
            })?;
            id
        }
        None => {
            let group = format!("docker-euca-{name}");
            progress.stage(format!("creating security group {group}"));
            let vpc = match &opts.subnet {
                Some(subnet) => ec2.subnet_vpc(subnet).await?,
                None => None,
            };
            // Journal the intent first: if the answer is lost, rollback finds the group by name.
            store.update(name, |r| {
                r.cloud.security_group_name = Some(group.clone());
                r.cloud.security_group_owned = true;
            })?;
            let id = ec2
                .create_security_group(
                    &group,
                    &format!("docker-euca machine {name}"),
                    vpc.as_deref(),
                )
                .await?;
            store.update(name, |r| {
                r.cloud.security_group_id = Some(id.clone());
                r.cloud.security_group_name = Some(group.clone());
                r.cloud.security_group_owned = true;
            })?;
            ec2.create_tags(std::slice::from_ref(&id), &[(MACHINE_TAG, name.as_str())])
                .await?;
            let mut ports = vec![
                (opts.ssh_port, "tcp".to_string()),
                (crate::provision::daemon::DOCKER_PORT, "tcp".to_string()),
            ];
            for p in &opts.open_ports {
                if !ports.contains(p) {
                    ports.push(p.clone());
                }
            }
            ec2.authorize_ingress(&id, &ports, &opts.allow_cidrs)
                .await?;
            id
        }
    };

    // Launch, then tag at once (no TagSpecification in this dialect).
    progress.stage(format!("launching {image} ({})", opts.instance_type));
    let data = match &host_key {
        // Without cloud-init, only the user's own user data (if any) goes to the instance.
        None => user_data.map(|u| u.as_bytes().to_vec()),
        Some(host_key) => Some(userdata::build(
            &userdata::OurConfig {
                authorized_keys: authorized,
                host_key: Some((host_key.private_openssh(), host_key.public_openssh())),
                packages: match opts.provision.install {
                    crate::provision::EngineInstall::Package => vec!["docker.io".into()],
                    _ => vec![],
                },
                disable_root: (opts.ssh_user == "root").then_some(false),
            },
            user_data,
        )),
    };
    let spec = LaunchSpec {
        image_id: image.to_string(),
        instance_type: opts.instance_type.clone(),
        zone: opts.zone.clone(),
        subnet_id: opts.subnet.clone(),
        security_group_ids: vec![group_id],
        key_name,
        user_data_b64: data.as_deref().map(userdata::to_base64),
        root_size_gib: opts.root_size,
        iam_instance_profile: opts.iam_instance_profile.clone(),
        client_token: format!("docker-euca-{name}-{:016x}", rand::random::<u64>()),
    };
    // Journal the client token first: if the answer is lost, rollback finds the instance by it.
    store.update(name, |r| {
        r.cloud.client_token = Some(spec.client_token.clone())
    })?;
    let instance_id = ec2.run_instance(&spec).await?;
    store.update(name, |r| r.cloud.instance_id = Some(instance_id.clone()))?;
    ec2.create_tags(
        std::slice::from_ref(&instance_id),
        &[("Name", name.as_str()), (MACHINE_TAG, name.as_str())],
    )
    .await?;

    progress.stage(format!("waiting for {instance_id} to run"));
    let info = ec2
        .wait_for_state(
            &instance_id,
            InstanceStateName::Running,
            opts.timeouts.running,
        )
        .await?;
    store.update(name, |r| r.cloud.private_ip = info.private_ip.clone())?;

    progress.stage(if opts.use_private_address {
        "waiting for the private address"
    } else {
        "waiting for a public address"
    });
    let info = ec2
        .wait_for_address(
            &instance_id,
            opts.use_private_address,
            opts.timeouts.address,
        )
        .await?;
    let address = usable_address(
        info.public_ip.as_deref(),
        info.private_ip.as_deref(),
        opts.use_private_address,
    )
    .expect("wait_for_address returns only usable addresses");
    store.update(name, |r| {
        r.cloud.private_ip = info.private_ip.clone();
        r.cloud.public_ip = info.public_ip.clone().filter(|_| !opts.use_private_address);
    })?;

    progress.stage(format!("waiting for SSH on {address}:{}", opts.ssh_port));
    wait_for_port(
        SocketAddr::new(address, opts.ssh_port),
        opts.timeouts.ssh_port,
    )
    .await?;
    if opts.no_cloud_init {
        pin_console_host_key(
            ec2,
            store,
            opts,
            &instance_id,
            SocketAddr::new(address, opts.ssh_port),
            progress,
        )
        .await?;
    }
    progress.finish_stage();
    let verified = super::provision::provision_machine(
        docker_config,
        store,
        name,
        address,
        &opts.provision,
        progress,
    )
    .await?;
    Ok((address, verified))
}

fn write_client_key(dir: &Path, file: &str, pair: &KeyPair) -> anyhow::Result<PathBuf> {
    let path = dir.join(file);
    fsutil::write_atomic(
        &path,
        pair.private_openssh().expose().as_bytes(),
        PRIVATE_FILE,
    )?;
    fsutil::write_atomic(
        &dir.join(format!("{file}.pub")),
        pair.public_openssh().as_bytes(),
        PRIVATE_FILE,
    )?;
    Ok(path)
}

/// Without cloud-init the host key is read from the console's `SSH HOST KEY KEYS` block (the
/// image's own key, so it is not replaced later); only with `--ssh-trust-first-key` is the first
/// key seen trusted when the console never shows one.
async fn pin_console_host_key(
    ec2: &Ec2,
    store: &Store,
    opts: &CreateOptions,
    instance_id: &str,
    addr: SocketAddr,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    progress.stage("reading the SSH host key from the console");
    let wait = if opts.trust_first_key {
        opts.timeouts.ssh_port.min(Duration::from_secs(60))
    } else {
        opts.timeouts.ssh_port
    };
    let deadline = tokio::time::Instant::now() + wait;
    let key = loop {
        let console = ec2.console_output(instance_id).await?.unwrap_or_default();
        if let Some(key) =
            crate::ssh::keys::preferred_host_key(&crate::ssh::keys::console_host_keys(&console))
        {
            break key;
        }
        if tokio::time::Instant::now() >= deadline {
            if !opts.trust_first_key {
                bail!(Hinted::new(
                    format!(
                        "the console of {instance_id} shows no SSH HOST KEY KEYS block after {wait:?}"
                    ),
                    "the image must print its host keys (cloud-init does), or pass --ssh-trust-first-key to trust the first key seen",
                ));
            }
            progress.note("warning: no host key on the console; trusting the first key the host shows (--ssh-trust-first-key)");
            break crate::ssh::first_seen_host_key(addr, opts.timeouts.ssh_port).await?;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    store.update(&opts.name, |r| {
        r.ssh.host_key = Some(key.clone());
        r.ssh.host_key_rotated = true;
    })?;
    Ok(())
}

/// Waits until a TCP connection to `addr` succeeds, keeping the last error for the message.
pub async fn wait_for_port(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let attempt =
            tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr))
                .await;
        let last = match attempt {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "connect timed out".to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            bail!(Hinted::new(
                format!(
                    "port {} on {} did not open within {timeout:?} (last error: {last})",
                    addr.port(),
                    addr.ip()
                ),
                "check that the security group allows it from here (--allow-cidr) and that the image runs sshd"
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        assert_eq!(parse_cidr("10.0.0.0/8").unwrap(), "10.0.0.0/8");
        assert_eq!(parse_cidr("0.0.0.0/0").unwrap(), "0.0.0.0/0");
        for bad in ["10.0.0.0", "10.0.0.0/33", "10.0.0/8", "x/1", "10.0.0.0/-1"] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("80").unwrap(), (80, "tcp".into()));
        assert_eq!(parse_port("53/UDP").unwrap(), (53, "udp".into()));
        for bad in ["0", "70000", "80/icmp", "http", ""] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }
}
