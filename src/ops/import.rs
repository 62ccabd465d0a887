//! `import-machine`: a docker-machine host (amazonec2 or the Eucalyptus fork's driver) becomes
//! a docker-euca machine. Nothing is written before the cloud has shown the instance; the
//! secret goes to the OS keyring; the host key is pinned from the console; the host is then
//! provisioned the docker-euca way (or keeps docker-machine's certificates); the tags come
//! last. A failure removes every record, context and keyring entry the import wrote.
//! docker-machine's store is only read, except for `--scrub`.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;

use super::{machine, setup, teardown};
use crate::dialect::DialectChoice;
use crate::{
    cloud::{Ec2, InstanceInfo, MACHINE_TAG, Ownership, STORE_TAG, Verdict, usable_address},
    context::TlsFiles,
    credentials::{AccessKeys, CloudTarget, Keyring, Profile, Profiles},
    dmachine::{DmMachine, DmStore, scrub_secret},
    fsutil::{self, PRIVATE_FILE},
    names::MachineName,
    progress::Progress,
    provision::EngineInstall,
    report::Hinted,
    secret::Secret,
    store::{MachineRecord, MachineState, Store},
};

/// The profile name an import makes when no profile has the machine's endpoint and key.
pub const IMPORTED_PROFILE: &str = "docker-machine";

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub storage_path: Option<PathBuf>,
    /// The machines to import; empty with `all`.
    pub names: Vec<String>,
    pub all: bool,
    /// Remove the secret key from docker-machine's `config.json` after a successful import.
    pub scrub: bool,
    /// Keep docker-machine's certificates and daemon configuration; only write the context.
    pub keep_certs: bool,
    /// Trust the first host key seen when the console shows none.
    pub trust_first_key: bool,
    /// Use this profile's credentials instead of the ones in `config.json`.
    pub profile: Option<String>,
    pub ca_bundle: Option<PathBuf>,
    pub stage_timeout: Duration,
}

/// What one import did.
#[derive(Debug)]
pub struct Imported {
    pub name: MachineName,
    pub url: String,
    pub engine_version: String,
    pub profile: String,
    pub profile_created: bool,
    /// The files docker-machine's plaintext secret is still in (none after `--scrub`).
    pub secret_left_in: Vec<PathBuf>,
    /// The key pair docker-machine made, which docker-euca's `rm` leaves alone.
    pub key_pair_left: Option<String>,
}

/// Imports the chosen machines one after the other; each succeeds or leaves nothing.
pub async fn import(
    docker_config: &Path,
    opts: &ImportOptions,
    cancel: &CancellationToken,
    progress: &mut Progress,
) -> anyhow::Result<Vec<(String, anyhow::Result<Imported>)>> {
    let dm = DmStore::locate(opts.storage_path.as_deref());
    let names = if opts.all {
        let names = dm.names()?;
        if names.is_empty() {
            bail!(Hinted::new(
                format!(
                    "the docker-machine store {} has no machines",
                    dm.root().display()
                ),
                "give another store with --storage-path DIR",
            ));
        }
        names
    } else {
        opts.names.clone()
    };
    let mut results = Vec::new();
    for name in names {
        let outcome = import_one(docker_config, &dm, &name, opts, cancel, progress).await;
        let cancelled = cancel.is_cancelled();
        if outcome.is_err() {
            progress.fail_stage();
        }
        results.push((name, outcome));
        if cancelled {
            break;
        }
    }
    Ok(results)
}

async fn import_one(
    docker_config: &Path,
    dm: &DmStore,
    name: &str,
    opts: &ImportOptions,
    cancel: &CancellationToken,
    progress: &mut Progress,
) -> anyhow::Result<Imported> {
    let host = dm.load(name)?;
    let name = MachineName::new(name)?;
    let store = Store::new(docker_config);
    refuse_taken(docker_config, &store, &name)?;
    let _lock = store.lock_operation(&name, "import-machine")?;
    let credentials = credentials_for(docker_config, &host, opts).await?;
    let ec2 = Ec2::connect(&credentials.target)?;
    progress.stage(format!(
        "looking up {} on {}",
        host.instance_id, host.endpoint
    ));
    let owner = machine::ownership(&store, &name)?;
    let instance = find_instance(&ec2, &host, &owner).await?;
    let address = usable_address(
        instance.public_ip.as_deref(),
        instance.private_ip.as_deref(),
        host.use_private_address,
    )
    .with_context(|| format!("{} has no usable address yet", instance.id))?;
    let host_key = pin_host_key(&ec2, &host, address, opts, progress).await?;
    progress.finish_stage();
    let mut job = Job {
        docker_config,
        store,
        ec2,
        host: &host,
        name: name.clone(),
        owner,
        credentials,
        opts,
        wrote_profile: false,
        wrote_record: false,
        tagged: false,
    };
    let outcome = tokio::select! {
        outcome = job.run(&instance, address, host_key, progress) => outcome,
        _ = cancel.cancelled() => Err(anyhow::Error::new(crate::report::Cancelled)),
    };
    match outcome {
        Ok(mut imported) => {
            imported.secret_left_in = scrub(&host, opts, progress);
            Ok(imported)
        }
        Err(e) => {
            job.roll_back(progress).await;
            Err(e)
        }
    }
}

/// A machine or context of that name would be overwritten.
fn refuse_taken(docker_config: &Path, store: &Store, name: &MachineName) -> anyhow::Result<()> {
    if store.exists(name) {
        bail!(Hinted::new(
            format!("docker-euca already has a machine named {name}"),
            "`docker euca inspect NAME` shows it; remove it first or import another machine",
        ));
    }
    if crate::context::ContextStore::new(docker_config).exists(name.as_str()) {
        bail!(Hinted::new(
            format!("a docker context named {name:?} already exists"),
            format!("remove it (`docker context rm {name}`) or rename it, then import again"),
        ));
    }
    Ok(())
}

/// The credentials an import uses and the profile they will be kept in.
struct Credentials {
    target: CloudTarget,
    /// A profile to write once the import succeeds (none: an existing one is reused).
    new_profile: Option<Profile>,
}

/// An existing `--profile` as it is; else (without `--profile`) a profile with the host's
/// endpoint and access key; else a new profile (`--profile`'s name, or `docker-machine[-N]`)
/// holding the secret from `config.json`.
async fn credentials_for(
    docker_config: &Path,
    host: &DmMachine,
    opts: &ImportOptions,
) -> anyhow::Result<Credentials> {
    let profiles = Profiles::new(docker_config);
    let all = profiles.all()?;
    if let Some(given) = &opts.profile
        && let Some(profile) = all.get(given)
    {
        return existing_profile(given, profile.clone(), opts).await;
    }
    let same = all.iter().find(|(_, p)| {
        machine::same_endpoint(&p.endpoint, &host.endpoint) && p.access_key_id == host.access_key
    });
    if let (None, Some((found, profile))) = (&opts.profile, same) {
        return existing_profile(found, profile.clone(), opts).await;
    }
    if host.session_token.is_some() {
        bail!(Hinted::new(
            format!(
                "{}: docker-machine holds temporary credentials (a session token) for it",
                host.name
            ),
            "log in with long-term keys (`docker euca login --profile P …`), then import with --profile P",
        ));
    }
    if host.secret_key.expose().is_empty() {
        bail!(Hinted::new(
            format!(
                "{} holds no secret key (scrubbed?)",
                host.config_path.display()
            ),
            "log in first (`docker euca login --profile P --endpoint URL --access-key AK`), then import with --profile P",
        ));
    }
    let profile_name = opts
        .profile
        .clone()
        .unwrap_or_else(|| free_profile_name(&all));
    let profile = Profile {
        endpoint: host.endpoint.clone(),
        region: host.region.clone(),
        access_key_id: host.access_key.clone(),
        ca_bundle: opts
            .ca_bundle
            .clone()
            .map(|p| std::path::absolute(&p).unwrap_or(p)),
        ..Default::default()
    };
    Ok(Credentials {
        target: CloudTarget {
            endpoint: host.endpoint.clone(),
            region: host.region.clone(),
            keys: AccessKeys {
                access_key_id: host.access_key.clone(),
                secret_access_key: host.secret_key.clone(),
                session_token: None,
            },
            profile: profile_name,
            ca_bundle: profile.ca_bundle.clone(),
            keys_source: format!("docker-machine ({})", host.config_path.display()),
            dialect: DialectChoice::Auto.resolve(&host.region, &host.endpoint),
        },
        new_profile: Some(profile),
    })
}

/// `docker-machine`, else `docker-machine-2`, `-3`…
fn free_profile_name(all: &std::collections::BTreeMap<String, Profile>) -> String {
    std::iter::once(IMPORTED_PROFILE.to_string())
        .chain((2..).map(|n| format!("{IMPORTED_PROFILE}-{n}")))
        .find(|n| !all.contains_key(n))
        .expect("an unbounded sequence has a free name")
}

async fn existing_profile(
    name: &str,
    profile: Profile,
    opts: &ImportOptions,
) -> anyhow::Result<Credentials> {
    let lookup = name.to_string();
    let secret = tokio::task::spawn_blocking(move || Keyring::open()?.get(&lookup))
        .await??
        .ok_or_else(|| {
            Hinted::new(
                format!("profile {name:?} has no secret in the OS keyring"),
                format!("`docker euca login --profile {name}` stores it again"),
            )
        })?;
    Ok(Credentials {
        target: CloudTarget {
            endpoint: profile.endpoint.clone(),
            region: profile.region.clone(),
            keys: AccessKeys {
                access_key_id: profile.access_key_id.clone(),
                secret_access_key: secret,
                session_token: None,
            },
            profile: name.to_string(),
            ca_bundle: opts.ca_bundle.clone().or(profile.ca_bundle.clone()),
            keys_source: format!("profile {name}"),
            dialect: profile.dialect.resolve(&profile.region, &profile.endpoint),
        },
        new_profile: None,
    })
}

/// The host's instance: it must exist, run, and be no other docker-euca store's.
async fn find_instance(
    ec2: &Ec2,
    host: &DmMachine,
    owner: &Ownership,
) -> anyhow::Result<InstanceInfo> {
    let id = &host.instance_id;
    let gone = |what: &str| {
        Hinted::new(
            format!("{}: its instance {id} {what}", host.name),
            format!(
                "nothing was imported; `docker-machine rm -f {}` forgets it in docker-machine",
                host.name
            ),
        )
    };
    let Some(instance) = ec2.describe_instance(id).await? else {
        bail!(gone("does not exist (or these credentials cannot see it)"));
    };
    match instance.state.as_str() {
        "running" => {}
        "terminated" | "shutting-down" => bail!(gone(&format!("is {}", instance.state))),
        state => bail!(Hinted::new(
            format!("{}: its instance {id} is {state}, not running", host.name),
            format!(
                "start it (`docker-machine start {}`), then import",
                host.name
            ),
        )),
    }
    if let Verdict::Someone = owner.judge(&instance.tags) {
        bail!(Hinted::new(
            format!(
                "{}: instance {id} already belongs to another docker-euca machine or store",
                host.name
            ),
            "import it from the docker-euca store that owns it",
        ));
    }
    Ok(instance)
}

/// The console's `SSH HOST KEY KEYS` block, or with `--ssh-trust-first-key` the first key the
/// host shows (its fingerprint is shown either way when it is not on the console).
async fn pin_host_key(
    ec2: &Ec2,
    host: &DmMachine,
    address: IpAddr,
    opts: &ImportOptions,
    progress: &mut Progress,
) -> anyhow::Result<String> {
    progress.stage("reading the SSH host key from the console");
    let console = ec2
        .console_output(&host.instance_id)
        .await?
        .unwrap_or_default();
    let keys = crate::ssh::keys::console_host_keys(&console);
    if let Some(key) = crate::ssh::keys::preferred_host_key(&keys) {
        return Ok(key);
    }
    let addr = SocketAddr::new(address, host.ssh_port);
    let seen = crate::ssh::first_seen_host_key(addr, opts.stage_timeout).await?;
    let fingerprint = russh::keys::PublicKey::from_openssh(&seen)
        .map(|k| k.fingerprint(russh::keys::HashAlg::Sha256).to_string())
        .unwrap_or_else(|_| seen.clone());
    if !opts.trust_first_key {
        bail!(Hinted::new(
            format!(
                "{}: the console of {} shows no SSH host keys; the host at {addr} shows {fingerprint}",
                host.name, host.instance_id
            ),
            "check that fingerprint on the host, then import again with --ssh-trust-first-key",
        ));
    }
    progress.note(format!(
        "warning: no host key on the console; trusting {fingerprint} (--ssh-trust-first-key)"
    ));
    Ok(seen)
}

/// One import after the instance was found: everything it writes, and how to undo it.
struct Job<'a> {
    docker_config: &'a Path,
    store: Store,
    ec2: Ec2,
    host: &'a DmMachine,
    name: MachineName,
    owner: Ownership,
    credentials: Credentials,
    opts: &'a ImportOptions,
    wrote_profile: bool,
    wrote_record: bool,
    tagged: bool,
}

impl Job<'_> {
    async fn run(
        &mut self,
        instance: &InstanceInfo,
        address: IpAddr,
        host_key: String,
        progress: &mut Progress,
    ) -> anyhow::Result<Imported> {
        self.save_profile().await?;
        self.write_record(instance, host_key)?;
        let (url, version) = if self.opts.keep_certs {
            self.keep_docker_machine_certs(address, progress).await?
        } else {
            self.provision(address, progress).await?
        };
        self.tag(instance).await?;
        self.store.update(&self.name, |r| {
            r.state = MachineState::Ready;
            r.engine.version = Some(version.clone());
        })?;
        Ok(Imported {
            name: self.name.clone(),
            url,
            engine_version: version,
            profile: self.credentials.target.profile.clone(),
            profile_created: self.wrote_profile,
            secret_left_in: Vec::new(),
            key_pair_left: self
                .host
                .key_name
                .clone()
                .filter(|_| self.host.key_pair_made_by_machine),
        })
    }

    /// The secret into the OS keyring and the rest into `profiles.json` (a new profile only).
    async fn save_profile(&mut self) -> anyhow::Result<()> {
        let Some(profile) = self.credentials.new_profile.clone() else {
            return Ok(());
        };
        let name = self.credentials.target.profile.clone();
        let secret: Secret<String> = self.credentials.target.keys.secret_access_key.clone();
        let docker_config = self.docker_config.to_path_buf();
        self.wrote_profile = true;
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            Keyring::open()?.set(&name, &secret)?;
            Profiles::new(&docker_config).set(&name, Some(profile))?;
            Ok(())
        })
        .await?
    }

    /// The record (state `creating` until verified) and the SSH key, 0600 in its directory.
    fn write_record(&mut self, instance: &InstanceInfo, host_key: String) -> anyhow::Result<()> {
        let host = self.host;
        let mut record = MachineRecord::new(self.name.clone());
        record.imported_from = Some(host.dir.display().to_string());
        let target = &self.credentials.target;
        let c = &mut record.cloud;
        c.endpoint = Some(target.endpoint.clone());
        c.region = Some(target.region.clone());
        c.profile = Some(target.profile.clone());
        c.dialect = Some(target.dialect);
        c.access_key_id = Some(target.keys.access_key_id.clone());
        c.ca_bundle = target.ca_bundle.as_ref().map(|p| p.display().to_string());
        c.image_id = instance.image_id.clone().or(host.image.clone());
        c.instance_type = instance
            .instance_type
            .clone()
            .or(host.instance_type.clone());
        c.zone = instance.zone.clone().or(host.zone.clone());
        c.subnet_id = instance.subnet_id.clone().or(host.subnet_id.clone());
        c.instance_id = Some(instance.id.clone());
        c.private_ip = instance.private_ip.clone();
        c.public_ip = instance
            .public_ip
            .clone()
            .filter(|_| !host.use_private_address);
        c.use_private_address = host.use_private_address;
        // docker-machine's group is shared by its machines and its key pair is its own: both
        // are recorded, neither is ever deleted by docker-euca.
        c.security_group_id = instance.security_group_ids.first().cloned();
        c.key_pair_name = instance.key_name.clone().or(host.key_name.clone());
        record.ssh.user = Some(host.ssh_user.clone());
        record.ssh.port = Some(host.ssh_port);
        record.ssh.host_key = Some(host_key);
        // The key was made on the host and never travelled: nothing to replace.
        record.ssh.host_key_rotated = true;
        let e = &mut record.engine;
        e.context_name = Some(self.name.to_string());
        e.install = Some("skip".into());
        e.opts = host.engine.opts.clone();
        e.labels = host.engine.labels.clone();
        e.storage_driver = host.engine.storage_driver.clone();
        e.registry_mirrors = host.engine.registry_mirrors.clone();
        e.insecure_registries = host.engine.insecure_registries.clone();
        e.env = host.engine.env.clone();
        let dir = self.store.create(&record)?;
        self.wrote_record = true;
        let key = self.copy_ssh_key(&dir)?;
        self.store.update(&self.name, |r| {
            r.ssh.key_path = Some(key.display().to_string())
        })?;
        Ok(())
    }

    fn copy_ssh_key(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let source = self.host.ssh_key.as_ref().ok_or_else(|| {
            Hinted::new(
                format!(
                    "{}: docker-machine's SSH key (id_rsa) is missing",
                    self.host.name
                ),
                format!("it should be in {}", self.host.dir.display()),
            )
        })?;
        let key =
            std::fs::read(source).with_context(|| format!("cannot read {}", source.display()))?;
        let path = dir.join("id_rsa");
        fsutil::write_atomic(&path, &key, PRIVATE_FILE)?;
        Ok(path)
    }

    /// The docker-euca way: per-machine CA, certificates for the current addresses, the
    /// daemon's configuration (docker-machine's systemd drop-in retired), context, verify.
    async fn provision(
        &mut self,
        address: IpAddr,
        progress: &mut Progress,
    ) -> anyhow::Result<(String, String)> {
        let record = self.store.load(&self.name)?;
        progress.stage("retiring docker-machine's daemon configuration");
        let session =
            machine::connect(&self.store, &record, address, self.opts.stage_timeout).await?;
        let sudo = session.sudo();
        let retired = session
            .run(&format!(
                "{sudo}rm -f /etc/systemd/system/docker.service.d/10-machine.conf"
            ))
            .await;
        session.close().await;
        retired?;
        let mut plan = setup::ProvisionPlan::from_record(&record, self.opts.stage_timeout);
        plan.install = EngineInstall::Skip;
        let verified = setup::provision_machine(
            self.docker_config,
            &self.store,
            &self.name,
            address,
            &plan,
            progress,
        )
        .await?;
        Ok((verified.url, verified.version.version))
    }

    /// `--keep-certs`: docker-machine's CA and client certificate go into the context as they
    /// are; the host is not touched.
    async fn keep_docker_machine_certs(
        &mut self,
        address: IpAddr,
        progress: &mut Progress,
    ) -> anyhow::Result<(String, String)> {
        let tls = self.host.tls.as_ref().ok_or_else(|| {
            Hinted::new(
                format!("{}: docker-machine's client certificate (ca.pem, cert.pem, key.pem) is missing", self.host.name),
                "import without --keep-certs: docker-euca then makes its own",
            )
        })?;
        let read =
            |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
        let files = TlsFiles {
            ca_pem: read(&tls.ca_cert)?,
            cert_pem: read(&tls.client_cert)?,
            key_pem: read(&tls.client_key)?.into(),
        };
        let url = format!("tcp://{address}:{}", crate::provision::daemon::DOCKER_PORT);
        let context = self.name.to_string();
        progress.stage(format!(
            "writing docker context {context} (docker-machine's certificates)"
        ));
        let record = self.store.load(&self.name)?;
        setup::write_context(self.docker_config, &record, &context, &url, &files, false)?;
        self.store
            .update(&self.name, |r| r.engine.url = Some(url.clone()))?;
        progress.stage(format!("verifying {url} over mutual TLS"));
        let version =
            setup::verify(self.docker_config, &context, &url, self.opts.stage_timeout).await?;
        progress.finish_stage();
        Ok((url, version.version))
    }

    /// The ownership tags, last: from here on `rm` and `prune` know the instance as ours.
    async fn tag(&mut self, instance: &InstanceInfo) -> anyhow::Result<()> {
        let [(_, machine), (_, store)] = self.owner.tags();
        self.tagged = true;
        self.ec2
            .create_tags(
                std::slice::from_ref(&instance.id),
                &[(MACHINE_TAG, machine), (STORE_TAG, store)],
            )
            .await?;
        Ok(())
    }

    /// Removes what this import wrote: tags, context, record, a new profile and its secret.
    /// The host keeps the configuration provisioning gave it.
    async fn roll_back(&mut self, progress: &mut Progress) {
        // A CreateTags the cancelled import stopped waiting for may still land: undo it after.
        self.ec2.settled().await;
        let mut left = Vec::new();
        if self.tagged {
            let [(_, machine), (_, store)] = self.owner.tags();
            if let Err(e) = self
                .ec2
                .delete_tags(
                    std::slice::from_ref(&self.host.instance_id),
                    &[(MACHINE_TAG, machine), (STORE_TAG, store)],
                )
                .await
            {
                left.push(format!("the tags on {} ({e})", self.host.instance_id));
            }
        }
        if self.wrote_record {
            if let Err(e) = teardown::remove_context(self.docker_config, Some(self.name.as_str())) {
                left.push(format!("the context ({e:#})"));
            }
            if let Err(e) = self.store.remove(&self.name) {
                left.push(format!("the record ({e:#})"));
            }
        }
        if self.wrote_profile {
            let name = self.credentials.target.profile.clone();
            let docker_config = self.docker_config.to_path_buf();
            let removed = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                Keyring::open()?.delete(&name)?;
                Profiles::new(&docker_config).set(&name, None)?;
                Ok(())
            })
            .await;
            if !matches!(removed, Ok(Ok(()))) {
                left.push(format!("profile {}", self.credentials.target.profile));
            }
        }
        if left.is_empty() {
            progress.note(format!("{}: nothing was imported", self.name));
        } else {
            progress.note(format!(
                "warning: {}: the failed import could not remove {}",
                self.name,
                left.join(", ")
            ));
        }
    }
}

/// `--scrub` after a successful import; returns the files the plaintext secret is still in:
/// `config.json`, and the `config.json.bak` docker-machine leaves when it migrates an older
/// host file (the Eucalyptus fork's). A failed scrub is a warning: the machine is imported
/// either way.
fn scrub(host: &DmMachine, opts: &ImportOptions, progress: &Progress) -> Vec<PathBuf> {
    let secret = host.secret_key.expose();
    if secret.is_empty() {
        return Vec::new();
    }
    let holding: Vec<PathBuf> = [host.config_path.clone(), host.dir.join("config.json.bak")]
        .into_iter()
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(secret.as_str())))
        .collect();
    if !opts.scrub {
        return holding;
    }
    holding
        .into_iter()
        .filter(|path| match scrub_secret(path) {
            Ok(_) => false,
            Err(e) => {
                progress.note(format!("warning: {e}"));
                true
            }
        })
        .collect()
}
