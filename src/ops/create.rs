//! `create`: a journal of steps (SSH keys → security group → launch → tags → running → address
//! → SSH port → setup over SSH), as libmachine's `performCreate` orders them, each one a
//! function below. Every step journals its intent (a unique name, a client token) in the
//! machine record before the call that makes something, and the fact (the id, "owned") once
//! the cloud confirms it; a failed or interrupted create is rolled back by
//! [`super::teardown`] from that journal alone, touching only what is proved ours.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;

use super::{ingress, machine, setup, teardown};
use crate::{
    cloud::{
        Ec2, GroupInfo, ImageInfo, LaunchSpec, MACHINE_TAG, Ownership, STORE_TAG, Verdict,
        usable_address,
    },
    crash,
    credentials::{CloudFlags, CloudTarget, Profiles},
    fsutil::{self, PRIVATE_FILE},
    names::MachineName,
    progress::Progress,
    provision::{EngineInstall, daemon::DOCKER_PORT, userdata},
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
    /// Source CIDRs for SSH and the daemon; empty: this machine's own address only.
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
    pub provision: setup::ProvisionPlan,
}

#[derive(Debug)]
pub struct CreateOutcome {
    pub record: MachineRecord,
    pub address: IpAddr,
    pub verified: setup::Verified,
    pub total: Duration,
}

/// Runs the create; on failure or cancellation removes what it made (unless
/// `--keep-on-failure`), then returns the error.
pub async fn create(
    docker_config: &Path,
    opts: CreateOptions,
    cancel: CancellationToken,
) -> anyhow::Result<CreateOutcome> {
    // Everything that can be told before the first call that makes something: the options,
    // the local files, then what the cloud has (nothing is made, nothing is written).
    check_options(&opts)?;
    let user_data = read_user_data(&opts)?;
    check_user_data_size(&opts, user_data.as_deref())?;
    check_ssh_key(&opts)?;
    refuse_taken_context(docker_config, &opts)?;
    let target = super::cloud_target::resolve(docker_config, &opts.cloud, None).await?;
    let ec2 = Ec2::connect(&target)?;
    let image = find_image(docker_config, &ec2, &opts, &target).await?;
    check_zone(&ec2, &opts).await?;
    let subnet_vpc = find_subnet_vpc(&ec2, &opts).await?;
    let users_group = find_users_group(&ec2, &opts).await?;
    let allow_cidrs = allowed_cidrs(docker_config, &opts, &target)?;
    let store = Store::new(docker_config);
    let _lock = store.lock_operation(&opts.name, "create")?;
    let owner = Ownership::new(opts.name.as_str(), store.id()?);
    let dir = store.create(&new_record(&opts, &target, &image))?;
    let mut job = Job {
        docker_config,
        ec2,
        store,
        owner,
        dir,
        opts: &opts,
        image,
        user_data,
        found_group: users_group,
        subnet_vpc,
        progress: Progress::new(opts.quiet),
        allow_cidrs,
        allowed: Vec::new(),
        unanswered_launch: None,
    };
    let outcome = tokio::select! {
        r = job.run() => r,
        _ = cancel.cancelled() => Err(anyhow::Error::new(Cancelled)),
    };
    match outcome {
        Ok((address, verified)) => {
            job.progress.finish_stage();
            Ok(CreateOutcome {
                record: job.store.load(&opts.name)?,
                address,
                verified,
                total: job.progress.total(),
            })
        }
        Err(err) => {
            job.progress.fail_stage();
            if opts.keep_on_failure {
                let _ = job
                    .store
                    .update(&opts.name, |r| r.state = MachineState::Failed);
                return Err(err.context(format!(
                    "create failed; its resources were kept (--keep-on-failure): `docker euca rm {}` removes them",
                    opts.name
                )));
            }
            job.roll_back().await;
            Err(err)
        }
    }
}

/// Checks that need no I/O: flag combinations.
fn check_options(opts: &CreateOptions) -> anyhow::Result<()> {
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
    Ok(())
}

/// `--user-data`: readable text in a format cloud-init knows (it is merged with ours). Without
/// cloud-init it goes to the instance as it is, so only its being text is checked.
fn read_user_data(opts: &CreateOptions) -> anyhow::Result<Option<String>> {
    let Some(path) = &opts.user_data else {
        return Ok(None);
    };
    let bytes = std::fs::read(path).map_err(|e| {
        Hinted::new(
            format!("cannot read --user-data {}: {e}", path.display()),
            "give a readable file",
        )
    })?;
    let text = if opts.no_cloud_init {
        String::from_utf8(bytes).map_err(|_| userdata::UserDataError::NotText)
    } else {
        userdata::check_format(bytes)
    };
    text.map(Some)
        .map_err(|e| Hinted::new(format!("--user-data {} {e}", path.display()), e.hint()).into())
}

/// The whole user data the launch will send (ours and the user's, gzipped when large) fits
/// EC2's limit. Measured with stand-in keys of the kinds [`Job::ssh_keys`] makes (ed25519, the
/// same comments): the same lengths, so the same size but for a few bytes of gzip's.
fn check_user_data_size(opts: &CreateOptions, user_data: Option<&str>) -> anyhow::Result<()> {
    let name = &opts.name;
    let host_key =
        (!opts.no_cloud_init).then(|| KeyPair::generate_ed25519(&format!("{name} host")));
    let authorized = if opts.import_keypair || opts.keypair_name.is_some() {
        vec![]
    } else {
        vec![KeyPair::generate_ed25519(&format!("docker-euca {name}")).public_openssh()]
    };
    match user_data_payload(opts, user_data, &authorized, host_key.as_ref()) {
        Some(payload) => {
            userdata::check_size(&payload).map_err(|e| Hinted::new(e.to_string(), e.hint()).into())
        }
        None => Ok(()),
    }
}

/// `--ssh-key` is readable and an OpenSSH private key without a passphrase: what the SSH
/// session loads later, long after the instance was launched.
fn check_ssh_key(opts: &CreateOptions) -> anyhow::Result<()> {
    let Some(path) = &opts.ssh_key else {
        return Ok(());
    };
    let text = std::fs::read(path).map_err(|e| {
        Hinted::new(
            format!("cannot read --ssh-key {}: {e}", path.display()),
            "give the private key file of --keypair-name",
        )
    })?;
    let key = russh::keys::PrivateKey::from_openssh(text).map_err(|_| {
        Hinted::new(
            format!("--ssh-key {} is not an OpenSSH private key", path.display()),
            "give the key pair's private key in the OpenSSH format (-----BEGIN OPENSSH PRIVATE KEY-----); \
             `ssh-keygen -p -f FILE` rewrites a PEM key in it",
        )
    })?;
    if key.is_encrypted() {
        bail!(Hinted::new(
            format!("--ssh-key {} is protected by a passphrase", path.display()),
            "docker-euca cannot ask for it: give a copy without one (`ssh-keygen -p -f COPY`)",
        ));
    }
    Ok(())
}

fn refuse_taken_context(docker_config: &Path, opts: &CreateOptions) -> anyhow::Result<()> {
    let name = &opts.provision.context_name;
    if crate::context::ContextStore::new(docker_config).exists(name) {
        bail!(Hinted::new(
            format!("a docker context named {name:?} already exists"),
            "pick another machine name, or name the context with --context-name",
        ));
    }
    Ok(())
}

/// The image to launch (`--image`, else the profile's default), checked to exist before
/// anything is made.
async fn find_image(
    docker_config: &Path,
    ec2: &Ec2,
    opts: &CreateOptions,
    target: &CloudTarget,
) -> anyhow::Result<ImageInfo> {
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
    ec2.image(&image).await?.ok_or_else(|| {
        Hinted::new(
            format!("image {image:?} does not exist on {}", target.endpoint),
            "check --image: `euca-describe-images` lists the images you may use",
        )
        .into()
    })
}

/// `--zone` is one of the cloud's availability zones.
async fn check_zone(ec2: &Ec2, opts: &CreateOptions) -> anyhow::Result<()> {
    let Some(zone) = &opts.zone else {
        return Ok(());
    };
    let zones = ec2.check_access().await?;
    if zones.contains(zone) {
        return Ok(());
    }
    let hint = if zones.is_empty() {
        "leave out --zone: the cloud lists no zones".to_string()
    } else {
        format!("the cloud has {}; or leave out --zone", zones.join(", "))
    };
    bail!(Hinted::new(
        format!(
            "availability zone {zone:?} does not exist on {}",
            ec2.endpoint()
        ),
        hint,
    ))
}

/// `--subnet` exists; returns its VPC, where our security group must be made.
async fn find_subnet_vpc(ec2: &Ec2, opts: &CreateOptions) -> anyhow::Result<Option<String>> {
    let Some(subnet) = &opts.subnet else {
        return Ok(None);
    };
    match ec2.find_subnet(subnet).await? {
        Some(found) => Ok(found.vpc_id),
        None => bail!(Hinted::new(
            format!("subnet {subnet:?} does not exist on {}", ec2.endpoint()),
            "check --subnet (`euca-describe-subnets` lists them); an EDGE cloud has none: leave it out",
        )),
    }
}

/// `--security-group` exists (it is used as it is, never edited).
async fn find_users_group(ec2: &Ec2, opts: &CreateOptions) -> anyhow::Result<Option<GroupInfo>> {
    let Some(group) = &opts.security_group else {
        return Ok(None);
    };
    let found = ec2.find_security_group(group).await?.ok_or_else(|| {
        Hinted::new(
            format!("security group {group:?} does not exist"),
            "create it first, or leave out --security-group",
        )
    })?;
    Ok(Some(found))
}

/// `--allow-cidr`s, else the profile's; empty: this machine's own address.
fn allowed_cidrs(
    docker_config: &Path,
    opts: &CreateOptions,
    target: &CloudTarget,
) -> anyhow::Result<Vec<String>> {
    if !opts.allow_cidrs.is_empty() {
        return Ok(opts.allow_cidrs.clone());
    }
    Ok(Profiles::new(docker_config)
        .get(&target.profile)?
        .map(|p| p.allow_cidrs)
        .unwrap_or_default())
}

fn new_record(opts: &CreateOptions, target: &CloudTarget, image: &ImageInfo) -> MachineRecord {
    let mut record = MachineRecord::new(opts.name.clone());
    let c = &mut record.cloud;
    c.endpoint = Some(target.endpoint.clone());
    c.region = Some(target.region.clone());
    c.profile = Some(target.profile.clone());
    c.access_key_id = Some(target.keys.access_key_id.clone());
    c.ca_bundle = target.ca_bundle.as_ref().map(|p| {
        std::path::absolute(p)
            .unwrap_or(p.clone())
            .display()
            .to_string()
    });
    c.image_id = Some(image.id.clone());
    c.instance_type = Some(opts.instance_type.clone());
    c.zone = opts.zone.clone();
    c.subnet_id = opts.subnet.clone();
    c.use_private_address = opts.use_private_address;
    record.engine.context_name = Some(opts.provision.context_name.clone());
    record.ssh.user = Some(opts.ssh_user.clone());
    record.ssh.port = Some(opts.ssh_port);
    record
}

/// A name no one else can already have: `docker-euca-NAME-` and 8 random hex digits.
fn unique_name(name: &MachineName) -> String {
    format!("docker-euca-{name}-{:08x}", rand::random::<u32>())
}

/// The SSH material a launch needs.
struct Keys {
    /// The client's private key file.
    path: PathBuf,
    /// Public keys for cloud-init to authorise.
    authorized: Vec<String>,
    /// The EC2 key pair to launch with.
    key_name: Option<String>,
    /// The bootstrap host key sent through cloud-init (none without cloud-init).
    host_key: Option<KeyPair>,
}

/// One create in progress.
struct Job<'a> {
    docker_config: &'a Path,
    ec2: Ec2,
    store: Store,
    owner: Ownership,
    dir: PathBuf,
    opts: &'a CreateOptions,
    image: ImageInfo,
    user_data: Option<String>,
    /// `--security-group`, as looked up before anything was made.
    found_group: Option<GroupInfo>,
    /// The VPC of `--subnet` (our group must be made there).
    subnet_vpc: Option<String>,
    progress: Progress,
    /// What the user asked to admit (`--allow-cidr`, or the profile's); empty: this machine.
    allow_cidrs: Vec<String>,
    /// The CIDRs the machine's own group admits so far.
    allowed: Vec<String>,
    /// A RunInstances sent but not answered (lost, or the create was cancelled meanwhile): the
    /// rollback sends it once more to learn what it made.
    unanswered_launch: Option<LaunchSpec>,
}

impl Job<'_> {
    async fn run(&mut self) -> anyhow::Result<(IpAddr, setup::Verified)> {
        self.warn_about_the_world();
        let keys = self.ssh_keys().await?;
        let group = self.security_group().await?;
        let instance = self.launch(&keys, &group).await?;
        self.tag_instance(&instance).await?;
        let address = self.wait_address(&instance).await?;
        self.allow_this_machine_late(&group, address).await?;
        self.wait_ssh(address).await?;
        if self.opts.no_cloud_init {
            self.pin_console_host_key(&instance, address).await?;
        }
        self.progress.finish_stage();
        let verified = setup::provision_machine(
            self.docker_config,
            &self.store,
            &self.opts.name,
            address,
            &self.opts.provision,
            &mut self.progress,
        )
        .await?;
        Ok((address, verified))
    }

    /// Writes one journal entry into the machine record.
    fn journal(&self, entry: impl FnOnce(&mut MachineRecord)) -> anyhow::Result<()> {
        self.store.update(&self.opts.name, entry)?;
        Ok(())
    }

    fn warn_about_the_world(&self) {
        if self.allow_cidrs.iter().any(|c| c == ingress::WORLD) {
            self.progress.note(
                "warning: --allow-cidr 0.0.0.0/0 opens SSH and the Docker port to the whole internet",
            );
        }
    }

    /// Step 1, SSH keys. The client key is ours (ed25519, authorised through cloud-init), an
    /// imported RSA key pair (`--import-keypair`, for images without cloud-init), or the user's
    /// key pair. The host key is pinned before first contact: sent through cloud-init, or read
    /// from the console later (`--no-cloud-init`).
    async fn ssh_keys(&mut self) -> anyhow::Result<Keys> {
        let name = &self.opts.name;
        self.progress.stage("generating SSH keys");
        let host_key =
            (!self.opts.no_cloud_init).then(|| KeyPair::generate_ed25519(&format!("{name} host")));
        let keys = if self.opts.import_keypair {
            let (path, key_name) = self.import_key_pair().await?;
            Keys {
                path,
                authorized: vec![],
                key_name: Some(key_name),
                host_key,
            }
        } else if let (Some(pair), Some(path)) = (&self.opts.keypair_name, &self.opts.ssh_key) {
            Keys {
                path: std::path::absolute(path).unwrap_or(path.clone()),
                authorized: vec![],
                key_name: Some(pair.clone()),
                host_key,
            }
        } else {
            let client = KeyPair::generate_ed25519(&format!("docker-euca {name}"));
            Keys {
                path: write_client_key(&self.dir, "id_ed25519", &client)?,
                authorized: vec![client.public_openssh()],
                key_name: None,
                host_key,
            }
        };
        let users_pair = self.opts.keypair_name.clone();
        self.journal(|r| {
            r.ssh.key_path = Some(keys.path.display().to_string());
            r.ssh.host_key = keys.host_key.as_ref().map(KeyPair::public_openssh);
            if users_pair.is_some() {
                r.cloud.key_pair_name = users_pair;
                r.cloud.key_pair_owned = false;
            }
        })?;
        crash::point("keys");
        Ok(keys)
    }

    /// `--import-keypair`: an RSA-4096 key (generated off the async runtime: it takes a
    /// while), imported under a unique name journalled first.
    async fn import_key_pair(&mut self) -> anyhow::Result<(PathBuf, String)> {
        let comment = format!("docker-euca {}", self.opts.name);
        let pair = tokio::task::spawn_blocking(move || KeyPair::generate_rsa(4096, &comment))
            .await
            .context("RSA key generation stopped")??;
        let path = write_client_key(&self.dir, "id_rsa", &pair)?;
        let key_name = unique_name(&self.opts.name);
        // The key file is journalled with the intent: a rollback imports its public half again
        // to settle an unanswered ImportKeyPair before deleting the pair.
        self.journal(|r| {
            r.cloud.key_pair_intent = Some(key_name.clone());
            r.ssh.key_path = Some(path.display().to_string());
        })?;
        crash::point("key-pair-intent");
        self.progress
            .stage(format!("importing key pair {key_name} (RSA-4096)"));
        match self
            .ec2
            .import_key_pair(&key_name, &pair.public_openssh())
            .await
        {
            Ok(()) => {}
            // The name is unique to this create: only our own earlier attempt, whose answer
            // was lost and which the SDK sent again, can have made it.
            Err(e) if e.code() == Some("InvalidKeyPair.Duplicate") => {
                tracing::debug!("ImportKeyPair {key_name}: our own earlier attempt ({e})");
            }
            Err(e) => return Err(e.into()),
        }
        self.journal(|r| {
            r.cloud.key_pair_name = Some(key_name.clone());
            r.cloud.key_pair_owned = true;
            r.cloud.key_pair_intent = None;
        })?;
        Ok((path, key_name))
    }

    /// Step 2, the security group: the user's as it is (never edited), or one of ours under
    /// a unique name, tagged, admitting SSH, the daemon and `--open-port`s.
    async fn security_group(&mut self) -> anyhow::Result<String> {
        if let Some(found) = self.found_group.clone() {
            return self.users_group(found);
        }
        let group = unique_name(&self.opts.name);
        self.progress
            .stage(format!("creating security group {group}"));
        let vpc = self.subnet_vpc.clone();
        self.journal(|r| r.cloud.security_group_intent = Some(group.clone()))?;
        crash::point("group-intent");
        let description = format!("docker-euca machine {}", self.opts.name);
        let id = match self
            .ec2
            .create_security_group(&group, &description, vpc.as_deref())
            .await
        {
            Ok(id) => id,
            Err(e) if e.code() == Some("InvalidGroup.Duplicate") => {
                self.our_earlier_group(&group).await?.ok_or(e)?
            }
            Err(e) => return Err(e.into()),
        };
        self.journal(|r| {
            r.cloud.security_group_id = Some(id.clone());
            r.cloud.security_group_name = Some(group.clone());
            r.cloud.security_group_owned = true;
            r.cloud.security_group_intent = None;
        })?;
        crash::point("group");
        self.ec2
            .create_tags(std::slice::from_ref(&id), &self.owner.tags())
            .await?;
        self.allow_ingress(&id).await?;
        Ok(id)
    }

    /// A `Duplicate` for our unique name: the group our own earlier attempt made (its answer
    /// lost, the SDK sent the call again), unless its tags say it is someone else's.
    async fn our_earlier_group(&self, group: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .ec2
            .find_security_group(group)
            .await?
            .filter(|g| self.owner.judge(&g.tags) != Verdict::Someone)
            .map(|g| g.id))
    }

    /// The user's group, found before anything was made: journalled as not ours.
    fn users_group(&mut self, found: GroupInfo) -> anyhow::Result<String> {
        self.progress.stage(format!(
            "using security group {} ({})",
            found.name, found.id
        ));
        self.journal(|r| {
            r.cloud.security_group_id = Some(found.id.clone());
            r.cloud.security_group_name = Some(found.name.clone());
            r.cloud.security_group_owned = false;
        })?;
        Ok(found.id)
    }

    /// The ports our group opens, to `--allow-cidr`s or else to this machine's address toward
    /// the endpoint (added later, once the instance's address is known, when that cannot be
    /// told now).
    async fn allow_ingress(&mut self, group_id: &str) -> anyhow::Result<()> {
        let cidrs = if self.allow_cidrs.is_empty() {
            match ingress::toward_endpoint(self.ec2.endpoint()).await {
                Some(cidr) => {
                    self.progress.note(format!(
                        "  allowing SSH and Docker from {cidr} only (this machine, toward the endpoint)"
                    ));
                    vec![cidr]
                }
                None => return Ok(()),
            }
        } else {
            self.allow_cidrs.clone()
        };
        self.authorize(group_id, &cidrs).await
    }

    async fn authorize(&mut self, group_id: &str, cidrs: &[String]) -> anyhow::Result<()> {
        let mut ports = vec![
            (self.opts.ssh_port, "tcp".to_string()),
            (DOCKER_PORT, "tcp".to_string()),
        ];
        for p in &self.opts.open_ports {
            if !ports.contains(p) {
                ports.push(p.clone());
            }
        }
        self.ec2.authorize_ingress(group_id, &ports, cidrs).await?;
        self.allowed.extend(cidrs.iter().cloned());
        Ok(())
    }

    /// Once the instance's address is known: if this machine reaches it from an address the
    /// group does not admit yet (a loopback endpoint, another route), admit that `/32` too.
    async fn allow_this_machine_late(
        &mut self,
        group: &str,
        address: IpAddr,
    ) -> anyhow::Result<()> {
        if !self.allow_cidrs.is_empty() || self.opts.security_group.is_some() {
            return Ok(());
        }
        let source = tokio::task::spawn_blocking(move || ingress::source_toward(address)).await?;
        match source.and_then(ingress::host_cidr) {
            Some(cidr) if !self.allowed.contains(&cidr) => {
                self.progress.note(format!(
                    "  allowing SSH and Docker from {cidr} only (this machine, toward {address})"
                ));
                self.authorize(group, &[cidr]).await
            }
            Some(_) => Ok(()),
            None if self.allowed.is_empty() => bail!(Hinted::new(
                format!("cannot tell which address of this machine {address} would see"),
                "give the address the cloud sees you as with --allow-cidr ADDRESS/32",
            )),
            None => Ok(()),
        }
    }

    /// Step 3, launch. The client token is journalled first; a refusal means nothing was
    /// launched; a lost answer is recovered by sending the same request again (EC2's
    /// idempotency answers with the same reservation), or later by the rollback.
    async fn launch(&mut self, keys: &Keys, group: &str) -> anyhow::Result<String> {
        self.progress.stage(format!(
            "launching {} ({})",
            self.image.id, self.opts.instance_type
        ));
        let spec = self.launch_spec(keys, group);
        self.journal(|r| r.cloud.client_token = Some(spec.client_token.clone()))?;
        self.unanswered_launch = Some(spec.clone());
        crash::point("launch-intent");
        let id = match self.ec2.run_instance(&spec).await {
            Ok(id) => id,
            Err(e) if e.is_refusal() => {
                self.unanswered_launch = None;
                self.journal(|r| r.cloud.client_token = None)?;
                return Err(e.into());
            }
            Err(e) => {
                tracing::debug!("RunInstances answer lost ({e}); sending it again");
                match self.ec2.run_instance(&spec).await {
                    Ok(id) => id,
                    // Refused with the same token: the first call made nothing either (it
                    // would have been answered with its reservation).
                    Err(again) if again.is_refusal() => {
                        self.unanswered_launch = None;
                        self.journal(|r| r.cloud.client_token = None)?;
                        return Err(again.into());
                    }
                    Err(again) => return Err(again.into()),
                }
            }
        };
        self.journal(|r| r.cloud.instance_id = Some(id.clone()))?;
        self.unanswered_launch = None;
        crash::point("launch");
        Ok(id)
    }

    fn launch_spec(&self, keys: &Keys, group: &str) -> LaunchSpec {
        let opts = self.opts;
        let data = user_data_payload(
            opts,
            self.user_data.as_deref(),
            &keys.authorized,
            keys.host_key.as_ref(),
        );
        LaunchSpec {
            image_id: self.image.id.clone(),
            instance_type: opts.instance_type.clone(),
            zone: opts.zone.clone(),
            subnet_id: opts.subnet.clone(),
            security_group_ids: vec![group.to_string()],
            key_name: keys.key_name.clone(),
            user_data_b64: data.as_deref().map(userdata::to_base64),
            root_size_gib: opts.root_size,
            root_device_name: self.image.root_device_name.clone(),
            iam_instance_profile: opts.iam_instance_profile.clone(),
            client_token: format!("docker-euca-{}-{:016x}", opts.name, rand::random::<u64>()),
        }
    }

    /// Step 4, tags, at once (this dialect has no TagSpecification).
    async fn tag_instance(&mut self, id: &str) -> anyhow::Result<()> {
        let name = self.opts.name.as_str();
        let [(_, machine), (_, store)] = self.owner.tags();
        self.ec2
            .create_tags(
                &[id.to_string()],
                &[("Name", name), (MACHINE_TAG, machine), (STORE_TAG, store)],
            )
            .await?;
        crash::point("tags");
        Ok(())
    }

    /// Steps 5 and 6: running, with the address SSH and the daemon are reached at (one wait).
    async fn wait_address(&mut self, id: &str) -> anyhow::Result<IpAddr> {
        let private = self.opts.use_private_address;
        self.progress.stage(if private {
            format!("waiting for {id} to run with its private address")
        } else {
            format!("waiting for {id} to run with a public address")
        });
        let timeout = self.opts.timeouts.running + self.opts.timeouts.address;
        let info = self.ec2.wait_for_address(id, private, timeout).await?;
        self.journal(|r| r.cloud.private_ip = info.private_ip.clone())?;
        crash::point("running");
        let address = usable_address(
            info.public_ip.as_deref(),
            info.private_ip.as_deref(),
            private,
        )
        .expect("wait_for_address returns only usable addresses");
        self.journal(|r| r.cloud.public_ip = info.public_ip.clone().filter(|_| !private))?;
        crash::point("address");
        Ok(address)
    }

    /// Step 7, the SSH port answers.
    async fn wait_ssh(&mut self, address: IpAddr) -> anyhow::Result<()> {
        let port = self.opts.ssh_port;
        self.progress
            .stage(format!("waiting for SSH on {address}:{port}"));
        let allowed = (!self.allowed.is_empty()).then(|| self.allowed.join(", "));
        machine::wait_for_port(
            SocketAddr::new(address, port),
            self.opts.timeouts.ssh_port,
            allowed.as_deref(),
        )
        .await?;
        crash::point("ssh");
        Ok(())
    }

    /// Without cloud-init the host key is read from the console's `SSH HOST KEY KEYS` block
    /// (the image's own key, so it is not replaced later); only with `--ssh-trust-first-key` is
    /// the first key seen trusted when the console never shows one.
    async fn pin_console_host_key(&mut self, id: &str, address: IpAddr) -> anyhow::Result<()> {
        self.progress
            .stage("reading the SSH host key from the console");
        let opts = self.opts;
        let wait = if opts.trust_first_key {
            opts.timeouts.ssh_port.min(Duration::from_secs(60))
        } else {
            opts.timeouts.ssh_port
        };
        let deadline = tokio::time::Instant::now() + wait;
        let key = loop {
            let console = self.ec2.console_output(id).await?.unwrap_or_default();
            let keys = crate::ssh::keys::console_host_keys(&console);
            if let Some(key) = crate::ssh::keys::preferred_host_key(&keys) {
                break key;
            }
            if tokio::time::Instant::now() >= deadline {
                if !opts.trust_first_key {
                    bail!(Hinted::new(
                        format!(
                            "the console of {id} shows no SSH HOST KEY KEYS block after {wait:?}"
                        ),
                        "the image must print its host keys (cloud-init does), or pass --ssh-trust-first-key to trust the first key seen",
                    ));
                }
                self.progress.note("warning: no host key on the console; trusting the first key the host shows (--ssh-trust-first-key)");
                let addr = SocketAddr::new(address, opts.ssh_port);
                break crate::ssh::first_seen_host_key(addr, opts.timeouts.ssh_port).await?;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        self.journal(|r| {
            r.ssh.host_key = Some(key.clone());
            r.ssh.host_key_rotated = true;
        })
    }

    /// Removes what the failed create made (see [`teardown`]), then the context and the
    /// record. A failure here is a warning; the create's own error stays the one returned.
    /// A RunInstances sent but never answered (its answer lost twice, or the create cancelled
    /// while it was on its way): asked once more with the same client token, so that EC2's
    /// idempotency says what it made (an instance, then terminated; or a refusal: nothing). A
    /// look-up alone could run before the cloud applies the first call. Until that is known
    /// nothing may go: the group may hold an instance that no answer has named yet.
    async fn settle_lost_launch(&mut self) -> anyhow::Result<()> {
        let Some(spec) = self.unanswered_launch.take() else {
            return Ok(());
        };
        match self.ec2.run_instance(&spec).await {
            Ok(id) => self.journal(|r| r.cloud.instance_id = Some(id)),
            Err(e) if e.is_refusal() => self.journal(|r| r.cloud.client_token = None),
            Err(e) => Err(e.into()),
        }
    }

    async fn roll_back(&mut self) {
        let name = self.opts.name.clone();
        let name = &name;
        self.progress.note(format!("rolling back {name}…"));
        if let Err(lost) = self.settle_lost_launch().await {
            self.progress.note(format!(
                "warning: the cloud never answered RunInstances and cannot be asked now ({lost:#}); \
                 the record is kept: `docker euca rm {name}` finds what the launch made"
            ));
            return;
        }
        if let Err(cleanup) =
            teardown::teardown(&self.ec2, &self.store, name, &mut self.progress).await
        {
            self.progress.fail_stage();
            self.progress.note(format!(
                "warning: rollback of {name} failed ({cleanup:#}); the record is kept: run `docker euca rm {name}`"
            ));
            return;
        }
        let context = Some(self.opts.provision.context_name.as_str());
        let cleaned = teardown::remove_context(self.docker_config, context)
            .and_then(|()| Ok(self.store.remove(name)?));
        match cleaned {
            Ok(()) => self
                .progress
                .note("rolled back: nothing was left in the cloud"),
            Err(e) => self
                .progress
                .note(format!("warning: nothing is left in the cloud, but {e:#}")),
        }
    }
}

/// The user data a launch sends, raw (before base64): our cloud-config merged with the user's
/// (gzipped when large), or, without cloud-init (no host key to send), the user's own as it is.
fn user_data_payload(
    opts: &CreateOptions,
    user_data: Option<&str>,
    authorized: &[String],
    host_key: Option<&KeyPair>,
) -> Option<Vec<u8>> {
    let Some(host_key) = host_key else {
        return user_data.map(|u| u.as_bytes().to_vec());
    };
    Some(userdata::build(
        &userdata::OurConfig {
            authorized_keys: authorized.to_vec(),
            host_key: Some((host_key.private_openssh(), host_key.public_openssh())),
            install_engine: opts.provision.install == EngineInstall::Package,
            disable_root: (opts.ssh_user == "root").then_some(false),
        },
        user_data,
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names_are_unique_and_within_the_clouds_limits() {
        let longest = MachineName::for_new_machine("a".repeat(crate::names::MAX_NAME_LEN)).unwrap();
        let (a, b) = (unique_name(&longest), unique_name(&longest));
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("docker-euca-{longest}-")));
        assert!(a.len() <= 255);
    }
}
