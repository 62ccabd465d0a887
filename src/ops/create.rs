//! `create`: a journal of steps (SSH keys → security group → launch → tags → running → address
//! → SSH port → setup over SSH), as libmachine's `performCreate` orders them, each one a
//! function below. Every step journals its intent (a unique name, a client token) in the
//! machine record before the call that makes something, and the fact (the id, "owned") once
//! the cloud confirms it; a failed or interrupted create is rolled back by
//! [`super::teardown`] from that journal alone, touching only what is proved ours.
//!
//! A fleet (several names, or `--count`) is one create of several machines: one security group
//! and one RunInstances (`MinCount = MaxCount = N`, one client token, all or nothing) for all,
//! each machine's keys in its own `Launch-Index` part of the user data, one DescribeInstances
//! per poll for every instance still pending; then each machine is brought up on its own
//! (a bounded number at once) and succeeds or is rolled back on its own. A single create is
//! a fleet of one.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;

use super::{ingress, machine, setup, swarm, teardown};
use crate::{
    cloud::{
        Ec2, GroupInfo, ImageInfo, LaunchSpec, Launched, MACHINE_TAG, Ownership, STORE_TAG,
        SubnetInfo, Verdict, usable_address,
    },
    crash,
    credentials::{CloudFlags, CloudTarget, Profiles},
    dialect::Dialect,
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
    /// The machines to make: one, or a fleet.
    pub names: Vec<MachineName>,
    /// How many machines of a fleet are set up over SSH at once.
    pub parallel: usize,
    /// One CA for the whole fleet (one client certificate opens every host).
    pub shared_ca: bool,
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
    /// `--count`'s base name: the fleet's label (else the first name).
    pub fleet_label: Option<String>,
    /// `--swarm CLUSTER`: the machines form (or join) a Docker Swarm cluster.
    pub swarm: Option<swarm::SwarmPlan>,
    /// The AWS dialect's launch options (refused on a Eucalyptus cloud).
    pub aws: super::aws_options::AwsOptions,
}

#[derive(Debug)]
pub struct CreateOutcome {
    /// One per machine, in the order named.
    pub machines: Vec<MachineOutcome>,
    pub total: Duration,
    /// With `--swarm`: from "all verified" to "all nodes Ready".
    pub swarm_took: Option<Duration>,
}

#[derive(Debug)]
pub struct MachineOutcome {
    pub name: MachineName,
    /// Ready, or why not (what it made was rolled back, unless `--keep-on-failure`).
    pub result: anyhow::Result<Ready>,
}

#[derive(Debug)]
pub struct Ready {
    pub record: MachineRecord,
    pub address: IpAddr,
    pub verified: setup::Verified,
    /// With `--swarm`: its role in the cluster.
    pub swarm_role: Option<String>,
}

/// Runs the create. A failure before the machines are launched (or of a single machine) is
/// the error, after what was made is removed (unless `--keep-on-failure`); a fleet's machines
/// then each succeed or roll back on their own, as the outcome says.
pub async fn create(
    docker_config: &Path,
    mut opts: CreateOptions,
    cancel: CancellationToken,
) -> anyhow::Result<CreateOutcome> {
    // Everything that can be told before the first call that makes something: the options,
    // the local files, then what the cloud has (nothing is made, nothing is written).
    check_options(&opts)?;
    let user_data = read_user_data(&opts)?;
    check_user_data_size(&opts, user_data.as_deref())?;
    check_ssh_key(&opts)?;
    refuse_taken_contexts(docker_config, &opts)?;
    let target = super::cloud_target::resolve(docker_config, &opts.cloud, None).await?;
    let ec2 = Ec2::connect(&target)?;
    super::aws_options::check(&opts.aws, &target)?;
    let image = find_image(docker_config, &ec2, &opts, &target).await?;
    check_zone(&ec2, &opts).await?;
    let subnet_vpc = match default_subnet(&ec2, &opts).await? {
        Some(default) => {
            opts.subnet = Some(default.id);
            default.vpc_id
        }
        None => find_subnet_vpc(&ec2, &opts).await?,
    };
    let users_group = find_users_group(&ec2, &opts).await?;
    let allow_cidrs = allowed_cidrs(docker_config, &opts, &target)?;
    let store = Store::new(docker_config);
    if let Some(plan) = &opts.swarm {
        swarm::check_plan(docker_config, &store, plan, &opts.names).await?;
    }
    let _locks = lock_all(&store, &opts.names)?;
    let store_id = store.id()?;
    let label = fleet_label(&opts);
    let progress = Progress::new(opts.quiet);
    let members = new_members(&store, &opts, &target, &image, &label, &store_id, &progress)?;
    let mut job = Job {
        docker_config,
        ec2,
        store,
        group_owner: Ownership::new(label.clone(), store_id),
        label,
        opts: &opts,
        image,
        user_data,
        found_group: users_group,
        subnet_vpc,
        progress,
        allow_cidrs,
        allowed: tokio::sync::Mutex::new(Vec::new()),
        unanswered_launch: None,
        fell_back: false,
        members,
    };
    let launched = tokio::select! {
        r = job.launch_fleet() => r,
        _ = cancel.cancelled() => Err(anyhow::Error::new(Cancelled)),
    };
    if let Err(err) = launched {
        job.progress.fail_stage();
        let all: Vec<usize> = (0..job.members.len()).collect();
        job.fail(&all, &err).await;
        return Err(err);
    }
    job.progress.finish_stage();
    let results = tokio::select! {
        r = job.bring_up_all() => r,
        _ = cancel.cancelled() => vec![],
    };
    let (results, swarm_took) = tokio::select! {
        r = job.form_swarm(results) => r,
        _ = cancel.cancelled() => (vec![], None),
    };
    let outcome = job.settle(results, swarm_took).await?;
    // Cancelled: what was not ready was rolled back, and the create ends as cancelled; a
    // machine already ready stays (it is whole), and when all were, the create simply finished.
    if cancel.is_cancelled() && outcome.machines.iter().any(|m| m.result.is_err()) {
        return Err(anyhow::Error::new(Cancelled));
    }
    Ok(outcome)
}

/// Locks every name of the create (sorted, so two creates never wait on each other in turn).
fn lock_all(store: &Store, names: &[MachineName]) -> anyhow::Result<Vec<crate::fsutil::LockFile>> {
    let mut sorted: Vec<&MachineName> = names.iter().collect();
    sorted.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    sorted
        .into_iter()
        .map(|n| Ok(store.lock_operation(n, "create")?))
        .collect()
}

/// The `docker-euca:machine` tag of what the machines share (the group): the machine's own
/// name, or for a fleet the `--count` base name (the first name otherwise).
fn fleet_label(opts: &CreateOptions) -> String {
    opts.fleet_label
        .clone()
        .unwrap_or_else(|| opts.names[0].to_string())
}

/// One record per machine, made before anything in the cloud (removed again if one cannot be).
fn new_members(
    store: &Store,
    opts: &CreateOptions,
    target: &CloudTarget,
    image: &ImageInfo,
    label: &str,
    store_id: &str,
    progress: &Progress,
) -> anyhow::Result<Vec<Member>> {
    let fleet = opts.names.len() > 1;
    let multi = if fleet { progress.multi() } else { None };
    let mut members = Vec::new();
    for (index, name) in opts.names.iter().enumerate() {
        let context = if fleet {
            name.to_string()
        } else {
            opts.provision.context_name.clone()
        };
        let mut record = new_record(opts, name, &context, target, image);
        if fleet {
            record.cloud.fleet = Some(label.to_string());
            record.cloud.launch_index = Some(index as u32);
        }
        let dir = match store.create(&record) {
            Ok(dir) => dir,
            Err(e) => {
                for m in &members {
                    let m: &Member = m;
                    let _ = store.remove(&m.name);
                }
                return Err(e.into());
            }
        };
        members.push(Member {
            name: name.clone(),
            dir,
            context,
            index: index as u32,
            owner: Ownership::new(name.as_str(), store_id),
            progress: if fleet {
                progress.for_machine(name.as_str(), multi.as_ref())
            } else {
                Progress::new(opts.quiet)
            },
            keys: None,
            instance: None,
        });
    }
    Ok(members)
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
    check_fleet(opts)
}

/// A fleet's machines get their keys through cloud-init, each in its own launch-index part.
fn check_fleet(opts: &CreateOptions) -> anyhow::Result<()> {
    if opts.names.len() < 2 {
        return Ok(());
    }
    if opts.no_cloud_init || opts.import_keypair {
        bail!(Hinted::new(
            "a fleet needs cloud-init: each machine's keys go in its own part of the one launch's user data",
            "create machines without cloud-init one at a time",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = opts.names.iter().find(|n| !seen.insert(n.as_str())) {
        bail!(Hinted::new(
            format!("{twice} is named twice"),
            "give each machine of the fleet once",
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
    let stand_in = |name: &MachineName| {
        let host_key =
            (!opts.no_cloud_init).then(|| KeyPair::generate_ed25519(&format!("{name} host")));
        let authorized = if opts.import_keypair || opts.keypair_name.is_some() {
            vec![]
        } else {
            vec![KeyPair::generate_ed25519(&format!("docker-euca {name}")).public_openssh()]
        };
        (authorized, host_key)
    };
    let keys: Vec<_> = opts.names.iter().map(stand_in).collect();
    let per_machine: Vec<(&[String], Option<&KeyPair>)> = keys
        .iter()
        .map(|(authorized, host)| (authorized.as_slice(), host.as_ref()))
        .collect();
    match user_data_payload(opts, user_data, &per_machine) {
        Some(payload) => userdata::check_size(&payload).map_err(|e| {
            let hint = if opts.names.len() > 1 {
                format!("{}; or create fewer machines at once", e.hint())
            } else {
                e.hint()
            };
            Hinted::new(e.to_string(), hint).into()
        }),
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

fn refuse_taken_contexts(docker_config: &Path, opts: &CreateOptions) -> anyhow::Result<()> {
    let contexts = crate::context::ContextStore::new(docker_config);
    let store = Store::new(docker_config);
    if let Some(taken) = opts.names.iter().find(|n| store.exists(n)) {
        bail!(crate::store::StoreError::AlreadyExists {
            name: taken.to_string()
        });
    }
    let names: Vec<String> = if opts.names.len() == 1 {
        vec![opts.provision.context_name.clone()]
    } else {
        opts.names.iter().map(|n| n.to_string()).collect()
    };
    if let Some(name) = names.iter().find(|n| contexts.exists(n)) {
        bail!(Hinted::new(
            format!("a docker context named {name:?} already exists"),
            if opts.names.len() == 1 {
                "pick another machine name, or name the context with --context-name"
            } else {
                "pick other machine names (each machine of a fleet gets a context of its name)"
            },
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

/// In the AWS dialect without `--subnet`: the default VPC's subnet (of `--zone` when given),
/// to be named from here on as if the user had given it, so that the group is made in its VPC
/// and the record names it. `None` otherwise (EDGE needs no subnet; `--subnet` is looked up).
async fn default_subnet(ec2: &Ec2, opts: &CreateOptions) -> anyhow::Result<Option<SubnetInfo>> {
    if opts.subnet.is_some() || ec2.dialect() != Dialect::Aws {
        return Ok(None);
    }
    let zone = opts.zone.as_deref();
    match ec2.default_subnet(zone).await? {
        Some(found) => {
            tracing::debug!("no --subnet: the default VPC's {}", found.id);
            Ok(Some(found))
        }
        None => bail!(Hinted::new(
            format!(
                "{} has no default VPC subnet{}",
                ec2.endpoint(),
                zone.map(|z| format!(" in {z}")).unwrap_or_default()
            ),
            "pass --subnet SUBNET (`aws ec2 describe-subnets` lists them)",
        )),
    }
}

/// The EC2 error code of a failed call, if the failure was the cloud's answer.
fn error_code(e: &anyhow::Error) -> Option<&str> {
    e.downcast_ref::<crate::cloud::CloudError>()
        .and_then(|c| c.code())
}

/// A RunInstances client token: unique per launch, naming the fleet for whoever reads it.
fn new_client_token(label: &str) -> String {
    format!("docker-euca-{label}-{:016x}", rand::random::<u64>())
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

fn new_record(
    opts: &CreateOptions,
    name: &MachineName,
    context: &str,
    target: &CloudTarget,
    image: &ImageInfo,
) -> MachineRecord {
    let mut record = MachineRecord::new(name.clone());
    let c = &mut record.cloud;
    c.endpoint = Some(target.endpoint.clone());
    c.region = Some(target.region.clone());
    c.profile = Some(target.profile.clone());
    c.dialect = Some(target.dialect);
    c.access_key_id = Some(target.keys.access_key_id.clone());
    c.instance_role = opts.cloud.use_instance_role;
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
    record.engine.context_name = Some(context.to_string());
    record.ssh.user = Some(opts.ssh_user.clone());
    record.ssh.port = Some(opts.ssh_port);
    record
}

/// A name no one else can already have: `docker-euca-NAME-` and 8 random hex digits.
fn unique_name(name: &str) -> String {
    format!("docker-euca-{name}-{:08x}", rand::random::<u32>())
}

/// The SSH material a machine's launch needs.
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

/// How one machine's create went: its address, the verification, its role in the swarm.
type MachineResult = anyhow::Result<(IpAddr, setup::Verified, Option<String>)>;

/// One machine of the create.
struct Member {
    name: MachineName,
    dir: PathBuf,
    context: String,
    /// Its `AmiLaunchIndex` in the launch.
    index: u32,
    owner: Ownership,
    progress: Progress,
    keys: Option<Keys>,
    instance: Option<String>,
}

/// One create in progress.
struct Job<'a> {
    docker_config: &'a Path,
    ec2: Ec2,
    store: Store,
    /// The machine name, or the fleet's label: the owner tag of the shared group.
    label: String,
    group_owner: Ownership,
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
    /// The CIDRs the group admits so far (the machines add to it as they learn their route).
    allowed: tokio::sync::Mutex<Vec<String>>,
    /// A RunInstances sent but not answered (lost, or the create was cancelled meanwhile): the
    /// rollback sends it once more to learn what it made.
    unanswered_launch: Option<LaunchSpec>,
    /// The spot launch found no capacity and was made again on demand.
    fell_back: bool,
    members: Vec<Member>,
}

/// What the machines share while each is brought up.
struct Shared<'j> {
    docker_config: &'j Path,
    ec2: &'j Ec2,
    store: &'j Store,
    opts: &'j CreateOptions,
    group: &'j str,
    allow_cidrs: &'j [String],
    allowed: &'j tokio::sync::Mutex<Vec<String>>,
    /// Bounds how many machines are set up over SSH at once (`--parallel`).
    ssh_slots: tokio::sync::Semaphore,
}

impl Job<'_> {
    /// Everything the machines share, up to their instances launched and tagged.
    async fn launch_fleet(&mut self) -> anyhow::Result<()> {
        self.warn_about_the_world();
        self.ssh_keys().await?;
        let group = self.security_group().await?;
        let mut groups = vec![group];
        if let Some(plan) = &self.opts.swarm {
            let names: Vec<MachineName> = self.members.iter().map(|m| m.name.clone()).collect();
            let vpc = self.subnet_vpc.clone();
            let cluster_group = swarm::cluster_group(
                &self.ec2,
                &self.store,
                plan,
                &names,
                vpc.as_deref(),
                &mut self.progress,
            )
            .await?;
            groups.push(cluster_group);
        }
        self.launch(&groups).await?;
        self.tag_instances().await?;
        if self.opts.shared_ca {
            let dirs: Vec<PathBuf> = self.members.iter().map(|m| m.dir.join("certs")).collect();
            setup::write_shared_ca(&dirs, &self.label)?;
        }
        Ok(())
    }

    /// Waits for every instance at once (one DescribeInstances per poll for all that are
    /// pending) while each machine, once its address is known, is brought up on its own.
    async fn bring_up_all(&mut self) -> Vec<anyhow::Result<(IpAddr, setup::Verified)>> {
        let group = self.group_id();
        let shared = Shared {
            docker_config: self.docker_config,
            ec2: &self.ec2,
            store: &self.store,
            opts: self.opts,
            group: &group,
            allow_cidrs: &self.allow_cidrs,
            allowed: &self.allowed,
            ssh_slots: tokio::sync::Semaphore::new(self.opts.parallel.max(1)),
        };
        let mut waiters = Vec::new();
        let mut machines = Vec::new();
        for member in self.members.iter_mut() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let id = member.instance.clone().expect("launched");
            waiters.push((id, tx));
            machines.push(bring_up(&shared, member, rx));
        }
        let timeout = self.opts.timeouts.running + self.opts.timeouts.address;
        let private = self.opts.use_private_address;
        let (_, results) = tokio::join!(
            self.ec2.wait_for_addresses(waiters, private, timeout),
            futures_util::future::join_all(machines)
        );
        results
    }

    /// With `--swarm`: the machines brought up form (or join) the cluster; one that cannot
    /// join fails like any other step.
    async fn form_swarm(
        &mut self,
        results: Vec<anyhow::Result<(IpAddr, setup::Verified)>>,
    ) -> (Vec<MachineResult>, Option<Duration>) {
        let Some(plan) = &self.opts.swarm else {
            let results = results
                .into_iter()
                .map(|r| r.map(|(a, v)| (a, v, None)))
                .collect();
            return (results, None);
        };
        let ready: Vec<MachineName> = self
            .members
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(m, _)| m.name.clone())
            .collect();
        if ready.is_empty() {
            let results = results
                .into_iter()
                .map(|r| r.map(|(a, v)| (a, v, None)))
                .collect();
            return (results, None);
        }
        self.progress.finish_stage();
        let formed = swarm::form(
            self.docker_config,
            &self.store,
            plan,
            &ready,
            &mut self.progress,
        )
        .await;
        let mut joined = formed.results.into_iter();
        let results = results
            .into_iter()
            .map(|r| {
                let (address, verified) = r?;
                let (_, role) = joined.next().expect("one per machine brought up");
                Ok((address, verified, Some(role?)))
            })
            .collect();
        (results, Some(formed.took))
    }

    /// The group the machines are in (journalled in every record by [`Job::security_group`]).
    fn group_id(&self) -> String {
        self.store
            .load(&self.members[0].name)
            .ok()
            .and_then(|r| r.cloud.security_group_id)
            .unwrap_or_default()
    }

    /// Ends the create: machines that failed (or were cut short) are rolled back, the rest
    /// are the outcome. A single machine's failure is the error itself.
    async fn settle(
        mut self,
        mut results: Vec<MachineResult>,
        swarm_took: Option<Duration>,
    ) -> anyhow::Result<CreateOutcome> {
        // Cancelled while the machines were being brought up: every one not ready is removed.
        results.resize_with(self.members.len(), || Err(anyhow::Error::new(Cancelled)));
        let failed: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_err())
            .map(|(n, _)| n)
            .collect();
        if self.members.len() == 1 {
            if let Some(Err(err)) = results.pop_if(|r| r.is_err()) {
                self.fail(&[0], &err).await;
                return Err(err);
            }
        } else if !failed.is_empty() {
            let first = results.iter().find_map(|r| r.as_ref().err());
            let reason = anyhow::anyhow!("{:#}", first.expect("one failed"));
            self.fail(&failed, &reason).await;
        }
        let mut machines = Vec::new();
        for (member, result) in self.members.iter().zip(results) {
            let result = match result {
                Ok((address, verified, swarm_role)) => self
                    .store
                    .load(&member.name)
                    .map(|record| Ready {
                        record,
                        address,
                        verified,
                        swarm_role,
                    })
                    .map_err(anyhow::Error::from),
                Err(e) => Err(e),
            };
            machines.push(MachineOutcome {
                name: member.name.clone(),
                result,
            });
        }
        Ok(CreateOutcome {
            machines,
            total: self.progress.total(),
            swarm_took,
        })
    }

    /// Rolls back the machines `which` (unless `--keep-on-failure`, which marks them failed).
    async fn fail(&mut self, which: &[usize], err: &anyhow::Error) {
        for &n in which {
            self.members[n].progress.fail_stage();
        }
        if self.opts.keep_on_failure {
            for &n in which {
                let m = &self.members[n];
                let _ = self
                    .store
                    .update(&m.name, |r| r.state = MachineState::Failed);
                m.progress.note(format!(
                    "create failed ({err:#}); its resources were kept (--keep-on-failure): `docker euca rm {}` removes them",
                    m.name
                ));
            }
            return;
        }
        self.roll_back(which).await;
    }

    /// Writes one journal entry into every machine's record.
    fn journal_all(&self, entry: impl Fn(&mut MachineRecord)) -> anyhow::Result<()> {
        for m in &self.members {
            self.store.update(&m.name, &entry)?;
        }
        Ok(())
    }

    fn journal(
        &self,
        name: &MachineName,
        entry: impl FnOnce(&mut MachineRecord),
    ) -> anyhow::Result<()> {
        self.store.update(name, entry)?;
        Ok(())
    }

    fn warn_about_the_world(&self) {
        if self.allow_cidrs.iter().any(|c| c == ingress::WORLD) {
            self.progress.note(
                "warning: --allow-cidr 0.0.0.0/0 opens SSH and the Docker port to the whole internet",
            );
        }
    }

    /// Step 1, SSH keys, for each machine. The client key is ours (ed25519, authorised through
    /// cloud-init), an imported RSA key pair (`--import-keypair`, for images without
    /// cloud-init; one machine only), or the user's key pair. The host key is pinned before
    /// first contact: sent through cloud-init, or read from the console later
    /// (`--no-cloud-init`).
    async fn ssh_keys(&mut self) -> anyhow::Result<()> {
        self.progress.stage(if self.members.len() == 1 {
            "generating SSH keys".to_string()
        } else {
            format!("generating SSH keys for {} machines", self.members.len())
        });
        for n in 0..self.members.len() {
            let keys = self.member_keys(n).await?;
            let name = self.members[n].name.clone();
            let users_pair = self.opts.keypair_name.clone();
            self.journal(&name, |r| {
                r.ssh.key_path = Some(keys.path.display().to_string());
                r.ssh.host_key = keys.host_key.as_ref().map(KeyPair::public_openssh);
                if users_pair.is_some() {
                    r.cloud.key_pair_name = users_pair;
                    r.cloud.key_pair_owned = false;
                }
            })?;
            self.members[n].keys = Some(keys);
        }
        crash::point("keys");
        Ok(())
    }

    async fn member_keys(&mut self, n: usize) -> anyhow::Result<Keys> {
        let name = self.members[n].name.clone();
        let host_key =
            (!self.opts.no_cloud_init).then(|| KeyPair::generate_ed25519(&format!("{name} host")));
        Ok(if self.opts.import_keypair {
            let (path, key_name) = self.import_key_pair(n).await?;
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
                path: write_client_key(&self.members[n].dir, "id_ed25519", &client)?,
                authorized: vec![client.public_openssh()],
                key_name: None,
                host_key,
            }
        })
    }

    /// `--import-keypair`: an RSA-4096 key (generated off the async runtime: it takes a
    /// while), imported under a unique name journalled first.
    async fn import_key_pair(&mut self, n: usize) -> anyhow::Result<(PathBuf, String)> {
        let name = self.members[n].name.clone();
        let comment = format!("docker-euca {name}");
        let pair = tokio::task::spawn_blocking(move || KeyPair::generate_rsa(4096, &comment))
            .await
            .context("RSA key generation stopped")??;
        let path = write_client_key(&self.members[n].dir, "id_rsa", &pair)?;
        let key_name = unique_name(name.as_str());
        // The key file is journalled with the intent: a rollback imports its public half again
        // to settle an unanswered ImportKeyPair before deleting the pair.
        self.journal(&name, |r| {
            r.cloud.key_pair_intent = Some(key_name.clone());
            r.ssh.key_path = Some(path.display().to_string());
        })?;
        crash::point("key-pair-intent");
        self.progress
            .stage(format!("importing key pair {key_name} (RSA-4096)"));
        match self
            .ec2
            .import_key_pair(
                &key_name,
                &pair.public_openssh(),
                &self.members[n].owner.tags(),
            )
            .await
        {
            Ok(()) => {}
            // The name is unique to this create: only our own earlier attempt, whose answer
            // was lost and which the SDK sent again, can have made it.
            Err(e) if e.code() == Some("InvalidKeyPair.Duplicate") => {
                tracing::debug!("ImportKeyPair {key_name}: our own earlier attempt ({e})");
            }
            // A clear refusal made nothing: there is no key pair to settle in the rollback.
            Err(e) if e.is_refusal() => {
                self.journal(&name, |r| r.cloud.key_pair_intent = None)?;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        }
        self.journal(&name, |r| {
            r.cloud.key_pair_name = Some(key_name.clone());
            r.cloud.key_pair_owned = true;
            r.cloud.key_pair_intent = None;
        })?;
        Ok((path, key_name))
    }

    /// Step 2, the security group: the user's as it is (never edited), or one of ours under
    /// a unique name, tagged, admitting SSH, the daemon and `--open-port`s. A fleet's
    /// machines share one, journalled in each record (the last machine to go deletes it).
    async fn security_group(&mut self) -> anyhow::Result<String> {
        if let Some(found) = self.found_group.clone() {
            return self.users_group(found);
        }
        let group = unique_name(&self.label);
        self.progress
            .stage(format!("creating security group {group}"));
        let vpc = self.subnet_vpc.clone();
        self.journal_all(|r| r.cloud.security_group_intent = Some(group.clone()))?;
        crash::point("group-intent");
        let description = format!("docker-euca machine {}", self.label);
        let id = match self
            .ec2
            .create_security_group(
                &group,
                &description,
                vpc.as_deref(),
                &self.group_owner.tags(),
            )
            .await
        {
            Ok(id) => id,
            Err(e) if e.code() == Some("InvalidGroup.Duplicate") => {
                self.our_earlier_group(&group).await?.ok_or(e)?
            }
            // A clear refusal made nothing: there is no group to settle in the rollback.
            Err(e) if e.is_refusal() => {
                self.journal_all(|r| r.cloud.security_group_intent = None)?;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        self.journal_all(|r| {
            r.cloud.security_group_id = Some(id.clone());
            r.cloud.security_group_name = Some(group.clone());
            r.cloud.security_group_owned = true;
            r.cloud.security_group_intent = None;
        })?;
        crash::point("group");
        if self.ec2.dialect() != Dialect::Aws {
            // Eucalyptus 4.4 takes no tags at creation (AWS's CreateSecurityGroup carried them)
            self.ec2
                .create_tags(std::slice::from_ref(&id), &self.group_owner.tags())
                .await?;
        }
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
            .filter(|g| self.group_owner.judge(&g.tags) != Verdict::Someone)
            .map(|g| g.id))
    }

    /// The user's group, found before anything was made: journalled as not ours.
    fn users_group(&mut self, found: GroupInfo) -> anyhow::Result<String> {
        self.progress.stage(format!(
            "using security group {} ({})",
            found.name, found.id
        ));
        self.journal_all(|r| {
            r.cloud.security_group_id = Some(found.id.clone());
            r.cloud.security_group_name = Some(found.name.clone());
            r.cloud.security_group_owned = false;
        })?;
        Ok(found.id)
    }

    /// The ports our group opens, to `--allow-cidr`s or else to this machine's address toward
    /// the endpoint (added later, once an instance's address is known, when that cannot be
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
        let mut allowed = self.allowed.lock().await;
        authorize(&self.ec2, self.opts, &mut allowed, group_id, &cidrs).await
    }

    /// Step 3, launch: one RunInstances for every machine. The client token (and each
    /// machine's launch index) is journalled first; a refusal means nothing was launched; a
    /// lost answer is recovered by sending the same request again (EC2's idempotency answers
    /// with the same reservation), or later by the rollback.
    async fn launch(&mut self, groups: &[String]) -> anyhow::Result<()> {
        self.progress.stage(match self.members.len() {
            1 => format!("launching {} ({})", self.image.id, self.opts.instance_type),
            n => format!(
                "launching {n} instances of {} ({})",
                self.image.id, self.opts.instance_type
            ),
        });
        let spec = self.launch_spec(groups);
        let spot = spec.aws.as_ref().is_some_and(|a| a.spot.is_some());
        let launched = match self.send_launch(&spec).await {
            Err(e) if self.falls_back_to_on_demand(&spec, &e) => {
                let spec = self.on_demand_spec(spec);
                self.progress.note(format!(
                    "no spot capacity ({}): launching on demand instead (--spot-fallback on-demand)",
                    error_code(&e).unwrap_or_default()
                ));
                self.send_launch(&spec).await?
            }
            other => other?,
        };
        self.journal_launched(&launched, spot && !self.fell_back)?;
        self.unanswered_launch = None;
        crash::point("launch");
        Ok(())
    }

    /// One RunInstances, journalled first by its client token; an answer lost is asked again
    /// with the same token (EC2 then answers the first call's reservation, or refuses as it
    /// did). A refusal made nothing: the token is unjournalled again.
    async fn send_launch(&mut self, spec: &LaunchSpec) -> anyhow::Result<Vec<Launched>> {
        self.journal_all(|r| r.cloud.client_token = Some(spec.client_token.clone()))?;
        self.unanswered_launch = Some(spec.clone());
        crash::point("launch-intent");
        let refused = match self.ec2.run_instances(spec).await {
            Ok(launched) => return Ok(launched),
            Err(e) if e.is_refusal() => e,
            Err(e) => {
                tracing::debug!("RunInstances answer lost ({e}); sending it again");
                match self.ec2.run_instances(spec).await {
                    Ok(launched) => return Ok(launched),
                    // Refused with the same token: the first call made nothing either (it
                    // would have been answered with its reservation).
                    Err(again) if again.is_refusal() => again,
                    Err(again) => return Err(again.into()),
                }
            }
        };
        self.unanswered_launch = None;
        self.journal_all(|r| r.cloud.client_token = None)?;
        Err(refused.into())
    }

    /// A spot launch refused for want of capacity, with `--spot-fallback on-demand`.
    fn falls_back_to_on_demand(&self, spec: &LaunchSpec, e: &anyhow::Error) -> bool {
        self.opts.aws.spot_fallback_on_demand
            && spec.aws.as_ref().is_some_and(|a| a.spot.is_some())
            && super::aws_options::is_no_spot_capacity(error_code(e))
    }

    /// The same launch on demand, under a new client token (the spot one was refused).
    fn on_demand_spec(&mut self, spec: LaunchSpec) -> LaunchSpec {
        self.fell_back = true;
        LaunchSpec {
            aws: spec.aws.as_ref().map(super::aws_options::on_demand),
            client_token: new_client_token(&self.label),
            ..spec
        }
    }

    /// Each instance of the answer goes to the machine of its launch index.
    fn journal_launched(&mut self, launched: &[Launched], spot: bool) -> anyhow::Result<()> {
        for m in self.members.iter_mut() {
            let Some(l) = launched.iter().find(|l| l.launch_index == m.index) else {
                bail!(
                    "RunInstances answered no instance of launch index {} (for {})",
                    m.index,
                    m.name
                );
            };
            self.store.update(&m.name, |r| {
                r.cloud.instance_id = Some(l.id.clone());
                r.cloud.spot = spot;
            })?;
            m.instance = Some(l.id.clone());
        }
        Ok(())
    }

    fn launch_spec(&self, groups: &[String]) -> LaunchSpec {
        let opts = self.opts;
        let keys: Vec<&Keys> = self
            .members
            .iter()
            .map(|m| m.keys.as_ref().expect("keys come first"))
            .collect();
        let per_machine: Vec<(&[String], Option<&KeyPair>)> = keys
            .iter()
            .map(|k| (k.authorized.as_slice(), k.host_key.as_ref()))
            .collect();
        let data = user_data_payload(opts, self.user_data.as_deref(), &per_machine);
        LaunchSpec {
            image_id: self.image.id.clone(),
            instance_type: opts.instance_type.clone(),
            zone: opts.zone.clone(),
            subnet_id: opts.subnet.clone(),
            security_group_ids: groups.to_vec(),
            key_name: keys[0].key_name.clone(),
            user_data_b64: data.as_deref().map(userdata::to_base64),
            root_size_gib: opts.root_size,
            root_device_name: self.image.root_device_name.clone(),
            iam_instance_profile: opts.iam_instance_profile.clone(),
            client_token: new_client_token(&self.label),
            count: self.members.len() as u32,
            aws: super::aws_options::launch(
                &opts.aws,
                self.ec2.dialect(),
                &self.group_owner,
                match self.members.as_slice() {
                    [only] => Some(&only.owner),
                    _ => None,
                },
            ),
        }
    }

    /// Step 4, tags, at once (this dialect has no TagSpecification): each instance its own
    /// name, all calls at the same time.
    async fn tag_instances(&mut self) -> anyhow::Result<()> {
        if self.ec2.dialect() == Dialect::Aws && self.members.len() == 1 {
            return Ok(()); // the launch carried the machine's own tags
        }
        let ec2 = &self.ec2;
        let calls = self.members.iter().map(|m| async move {
            let [(_, machine), (_, store)] = m.owner.tags();
            let id = m.instance.clone().expect("launched");
            ec2.create_tags(
                &[id],
                &[
                    ("Name", m.name.as_str()),
                    (MACHINE_TAG, machine),
                    (STORE_TAG, store),
                ],
            )
            .await
        });
        for result in futures_util::future::join_all(calls).await {
            result?;
        }
        crash::point("tags");
        Ok(())
    }

    /// A RunInstances sent but never answered (its answer lost twice, or the create cancelled
    /// while it was on its way): asked once more with the same client token, so that EC2's
    /// idempotency says what it made (instances, then terminated; or a refusal: nothing). A
    /// look-up alone could run before the cloud applies the first call. Until that is known
    /// nothing may go: the group may hold an instance that no answer has named yet.
    async fn settle_lost_launch(&mut self) -> anyhow::Result<()> {
        let Some(spec) = self.unanswered_launch.take() else {
            return Ok(());
        };
        match self.ec2.run_instances(&spec).await {
            Ok(launched) => {
                let spot = spec.aws.as_ref().is_some_and(|a| a.spot.is_some());
                self.journal_launched(&launched, spot)
            }
            Err(e) if e.is_refusal() => self.journal_all(|r| r.cloud.client_token = None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes what the machines `which` made (see [`teardown`]; a group the fleet shares goes
    /// with its last machine), then their contexts and records. A failure here is a warning;
    /// the create's own error stays the one returned.
    async fn roll_back(&mut self, which: &[usize]) {
        // A call the cancelled create stopped waiting for may still land: look only after.
        self.ec2.settled().await;
        if let Err(lost) = self.settle_lost_launch().await {
            for &n in which {
                let name = &self.members[n].name;
                self.members[n].progress.note(format!(
                    "warning: the cloud never answered RunInstances and cannot be asked now ({lost:#}); \
                     the record is kept: `docker euca rm {name}` finds what the launch made"
                ));
            }
            return;
        }
        let (ec2, store, docker_config) = (&self.ec2, &self.store, self.docker_config);
        let removals = self
            .members
            .iter_mut()
            .enumerate()
            .filter(|(n, _)| which.contains(n))
            .map(|(_, m)| roll_back_machine(ec2, store, docker_config, m));
        futures_util::future::join_all(removals).await;
    }
}

/// Authorises the ports our group opens for `cidrs`, and remembers them as admitted.
async fn authorize(
    ec2: &Ec2,
    opts: &CreateOptions,
    allowed: &mut Vec<String>,
    group_id: &str,
    cidrs: &[String],
) -> anyhow::Result<()> {
    let mut ports = vec![
        (opts.ssh_port, "tcp".to_string()),
        (DOCKER_PORT, "tcp".to_string()),
    ];
    for p in &opts.open_ports {
        if !ports.contains(p) {
            ports.push(p.clone());
        }
    }
    ec2.authorize_ingress(group_id, &ports, cidrs).await?;
    allowed.extend(cidrs.iter().cloned());
    Ok(())
}

/// One machine, from its instance launched to verified: running with its address (from the
/// shared wait), SSH, then set up over SSH (in one of the `--parallel` slots).
async fn bring_up(
    shared: &Shared<'_>,
    member: &mut Member,
    address: tokio::sync::oneshot::Receiver<crate::cloud::AddressResult>,
) -> anyhow::Result<(IpAddr, setup::Verified)> {
    let result = bring_up_steps(shared, member, address).await;
    if result.is_err() {
        member.progress.fail_stage();
    }
    result
}

async fn bring_up_steps(
    shared: &Shared<'_>,
    member: &mut Member,
    address: tokio::sync::oneshot::Receiver<crate::cloud::AddressResult>,
) -> anyhow::Result<(IpAddr, setup::Verified)> {
    let id = member.instance.clone().expect("launched");
    let address = wait_address(shared, member, &id, address).await?;
    allow_this_machine_late(shared, member, address).await?;
    let _slot = shared.ssh_slots.acquire().await?;
    wait_ssh(shared, member, address).await?;
    if shared.opts.no_cloud_init {
        pin_console_host_key(shared, member, &id, address).await?;
    }
    member.progress.finish_stage();
    let mut plan = shared.opts.provision.clone();
    plan.context_name = member.context.clone();
    let verified = setup::provision_machine(
        shared.docker_config,
        shared.store,
        &member.name,
        address,
        &plan,
        &mut member.progress,
    )
    .await?;
    Ok((address, verified))
}

/// Steps 5 and 6: running, with the address SSH and the daemon are reached at (one wait,
/// shared by the fleet).
async fn wait_address(
    shared: &Shared<'_>,
    member: &mut Member,
    id: &str,
    address: tokio::sync::oneshot::Receiver<crate::cloud::AddressResult>,
) -> anyhow::Result<IpAddr> {
    let private = shared.opts.use_private_address;
    member.progress.stage(if private {
        format!("waiting for {id} to run with its private address")
    } else {
        format!("waiting for {id} to run with a public address")
    });
    let info = address
        .await
        .context("the wait for the instances' addresses stopped")??;
    let store = shared.store;
    store.update(&member.name, |r| {
        r.cloud.private_ip = info.private_ip.clone()
    })?;
    crash::point("running");
    let usable = usable_address(
        info.public_ip.as_deref(),
        info.private_ip.as_deref(),
        private,
    )
    .expect("wait_for_addresses returns only usable addresses");
    store.update(&member.name, |r| {
        r.cloud.public_ip = info.public_ip.clone().filter(|_| !private)
    })?;
    crash::point("address");
    member.progress.finish_stage();
    Ok(usable)
}

/// Once an instance's address is known: if this machine reaches it from an address the
/// group does not admit yet (a loopback endpoint, another route), admit that `/32` too.
async fn allow_this_machine_late(
    shared: &Shared<'_>,
    member: &Member,
    address: IpAddr,
) -> anyhow::Result<()> {
    if !shared.allow_cidrs.is_empty() || shared.opts.security_group.is_some() {
        return Ok(());
    }
    let source = tokio::task::spawn_blocking(move || ingress::source_toward(address)).await?;
    // Held across the call: the machines of a fleet learn the same route at the same time,
    // and the group takes each rule once.
    let mut allowed = shared.allowed.lock().await;
    match source.and_then(ingress::host_cidr) {
        Some(cidr) if !allowed.contains(&cidr) => {
            member.progress.note(format!(
                "  allowing SSH and Docker from {cidr} only (this machine, toward {address})"
            ));
            authorize(shared.ec2, shared.opts, &mut allowed, shared.group, &[cidr]).await
        }
        Some(_) => Ok(()),
        None if allowed.is_empty() => bail!(Hinted::new(
            format!("cannot tell which address of this machine {address} would see"),
            "give the address the cloud sees you as with --allow-cidr ADDRESS/32",
        )),
        None => Ok(()),
    }
}

/// Step 7, the SSH port answers.
async fn wait_ssh(shared: &Shared<'_>, member: &mut Member, address: IpAddr) -> anyhow::Result<()> {
    let port = shared.opts.ssh_port;
    member
        .progress
        .stage(format!("waiting for SSH on {address}:{port}"));
    let allowed = {
        let allowed = shared.allowed.lock().await;
        (!allowed.is_empty()).then(|| allowed.join(", "))
    };
    machine::wait_for_port(
        SocketAddr::new(address, port),
        shared.opts.timeouts.ssh_port,
        allowed.as_deref(),
    )
    .await?;
    crash::point("ssh");
    Ok(())
}

/// Without cloud-init the host key is read from the console's `SSH HOST KEY KEYS` block
/// (the image's own key, so it is not replaced later); only with `--ssh-trust-first-key` is
/// the first key seen trusted when the console never shows one.
async fn pin_console_host_key(
    shared: &Shared<'_>,
    member: &mut Member,
    id: &str,
    address: IpAddr,
) -> anyhow::Result<()> {
    member
        .progress
        .stage("reading the SSH host key from the console");
    let opts = shared.opts;
    let wait = if opts.trust_first_key {
        opts.timeouts.ssh_port.min(Duration::from_secs(60))
    } else {
        opts.timeouts.ssh_port
    };
    let deadline = tokio::time::Instant::now() + wait;
    let key = loop {
        let console = shared.ec2.console_output(id).await?.unwrap_or_default();
        let keys = crate::ssh::keys::console_host_keys(&console);
        if let Some(key) = crate::ssh::keys::preferred_host_key(&keys) {
            break key;
        }
        if tokio::time::Instant::now() >= deadline {
            if !opts.trust_first_key {
                bail!(Hinted::new(
                    format!("the console of {id} shows no SSH HOST KEY KEYS block after {wait:?}"),
                    "the image must print its host keys (cloud-init does), or pass --ssh-trust-first-key to trust the first key seen",
                ));
            }
            member.progress.note("warning: no host key on the console; trusting the first key the host shows (--ssh-trust-first-key)");
            let addr = SocketAddr::new(address, opts.ssh_port);
            break crate::ssh::first_seen_host_key(addr, opts.timeouts.ssh_port).await?;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    shared.store.update(&member.name, |r| {
        r.ssh.host_key = Some(key.clone());
        r.ssh.host_key_rotated = true;
    })?;
    Ok(())
}

/// Removes what one machine's create made, then its context and record.
async fn roll_back_machine(ec2: &Ec2, store: &Store, docker_config: &Path, member: &mut Member) {
    let name = member.name.clone();
    let progress = &mut member.progress;
    progress.note(format!("rolling back {name}…"));
    if let Ok(record) = store.load(&name)
        && let Err(e) = swarm::depart(docker_config, store, &record, progress).await
    {
        progress.note(format!("warning: {name}: leaving its swarm: {e:#}"));
    }
    if let Err(cleanup) = teardown::teardown(ec2, store, &name, progress).await {
        progress.fail_stage();
        progress.note(format!(
            "warning: rollback of {name} failed ({cleanup:#}); the record is kept: run `docker euca rm {name}`"
        ));
        return;
    }
    let cleaned = teardown::remove_context(docker_config, Some(member.context.as_str()))
        .and_then(|()| Ok(store.remove(&name)?));
    match cleaned {
        Ok(()) => progress.note("rolled back: nothing was left in the cloud"),
        Err(e) => progress.note(format!("warning: nothing is left in the cloud, but {e:#}")),
    }
}

/// The user data a launch sends, raw (before base64): our cloud-config merged with the user's
/// (gzipped when large), each machine's keys in its own launch-index part; or, without
/// cloud-init (no host key to send), the user's own as it is.
fn user_data_payload(
    opts: &CreateOptions,
    user_data: Option<&str>,
    per_machine: &[(&[String], Option<&KeyPair>)],
) -> Option<Vec<u8>> {
    if opts.no_cloud_init {
        return user_data.map(|u| u.as_bytes().to_vec());
    }
    let configs: Vec<userdata::OurConfig> = per_machine
        .iter()
        .map(|(authorized, host_key)| userdata::OurConfig {
            authorized_keys: authorized.to_vec(),
            host_key: host_key.map(|k| (k.private_openssh(), k.public_openssh())),
            install_engine: opts.provision.install == EngineInstall::Package,
            disable_root: (opts.ssh_user == "root").then_some(false),
        })
        .collect();
    Some(userdata::build_fleet(&configs, user_data))
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
        let (a, b) = (unique_name(longest.as_str()), unique_name(longest.as_str()));
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("docker-euca-{longest}-")));
        assert!(a.len() <= 255);
    }
}
