//! `login`: check access keys with a real call, then keep the secret in the OS keyring and the
//! rest in `profiles.json`. `logout` removes both.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::{
    cloud::Ec2,
    credentials::{
        AccessKeys, Backend, CloudTarget, DEFAULT_REGION, Keyring, Profile, Profiles, aws_endpoint,
        aws_shared, euca2ools, split_region_url,
    },
    dialect::{Dialect, DialectChoice},
    report::Hinted,
    secret::Secret,
};

#[derive(Debug, Clone, Default)]
pub struct LoginOptions {
    pub profile: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<Secret<String>>,
    pub ca_bundle: Option<PathBuf>,
    /// `--from-euca2ools [FILE]`: `Some(None)` means `~/.euca`.
    pub from_euca2ools: Option<Option<PathBuf>>,
    pub from_eucarc: Option<PathBuf>,
    /// `--from-aws-profile NAME`: a static key of the AWS shared config.
    pub from_aws_profile: Option<String>,
    /// Default `--allow-cidr`s for creates with this profile (kept from before when empty).
    pub allow_cidrs: Vec<String>,
    /// `--dialect`, kept in the profile.
    pub dialect: DialectChoice,
}

#[derive(Debug)]
pub struct LoginOutcome {
    pub profile: String,
    pub endpoint: String,
    pub region: String,
    pub dialect: Dialect,
    pub backend: Backend,
    pub zones: Vec<String>,
}

/// Whether the options still lack a secret (the command then prompts or reads stdin).
pub fn needs_secret(opts: &LoginOptions) -> bool {
    opts.secret_key.is_none()
        && opts.from_euca2ools.is_none()
        && opts.from_eucarc.is_none()
        && opts.from_aws_profile.is_none()
}

/// `--from-aws-profile NAME`: the profile's long-term key and region. Temporary keys (a
/// session token: credential_process, SSO, a role) are refused: they would expire in the
/// keyring; the shared config is read as it is on every command instead.
async fn from_aws_profile(name: &str) -> anyhow::Result<euca2ools::Imported> {
    let Some(shared) = aws_shared::load(name).await? else {
        bail!(Hinted::new(
            format!("the AWS shared config has no profile {name:?} with keys"),
            "`aws configure list-profiles` lists them (~/.aws/config, ~/.aws/credentials, AWS_CONFIG_FILE)",
        ));
    };
    if shared.keys.session_token.is_some() {
        bail!(Hinted::new(
            format!(
                "profile {name:?} gives temporary credentials (a session token); login keeps only long-term keys"
            ),
            format!(
                "use them as they are: AWS_PROFILE={name} docker euca … reads the shared config on every command"
            ),
        ));
    }
    Ok(euca2ools::Imported {
        endpoint: None,
        region: shared.region,
        access_key_id: Some(shared.keys.access_key_id),
        secret_access_key: Some(shared.keys.secret_access_key),
    })
}

pub async fn login(docker_config: &Path, opts: LoginOptions) -> anyhow::Result<LoginOutcome> {
    let imported = match (&opts.from_euca2ools, &opts.from_eucarc) {
        (Some(file), _) => {
            let path = file
                .clone()
                .or_else(|| dirs::home_dir().map(|h| h.join(".euca")))
                .context("no home directory")?;
            euca2ools::from_ini(&path, opts.region.as_deref())
                .with_context(|| format!("cannot read {}", path.display()))?
                .ok_or_else(|| {
                    Hinted::new(
                        format!("{} holds no region or user", path.display()),
                        "check the file, or give --endpoint and --access-key",
                    )
                })?
        }
        (None, Some(path)) => euca2ools::from_eucarc(
            &std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ),
        (None, None) => match &opts.from_aws_profile {
            Some(name) => from_aws_profile(name).await?,
            None => euca2ools::Imported::default(),
        },
    };
    let (url_region, endpoint) = match opts.endpoint.clone().or(imported.endpoint) {
        Some(e) => split_region_url(&e),
        None => (None, String::new()),
    };
    let region = opts
        .region
        .clone()
        .or(url_region)
        .or(imported.region)
        .unwrap_or_else(|| DEFAULT_REGION.into());
    let endpoint = match endpoint.is_empty() {
        false => endpoint,
        true => aws_endpoint(&region).ok_or_else(|| {
            Hinted::new(
                "no endpoint given",
                "give --endpoint http://HOST:8773/services/compute/",
            )
        })?,
    };
    let access_key_id = opts
        .access_key
        .clone()
        .or(imported.access_key_id)
        .ok_or_else(|| Hinted::new("no access key given", "give --access-key AKI…"))?;
    let secret = opts
        .secret_key
        .clone()
        .or(imported.secret_access_key)
        .ok_or_else(|| {
            Hinted::new(
                "no secret key given",
                "pipe it to --secret-key-stdin, or run in a terminal to be asked",
            )
        })?;
    let target = CloudTarget {
        endpoint: endpoint.clone(),
        region: region.clone(),
        keys: AccessKeys {
            access_key_id: access_key_id.clone(),
            secret_access_key: secret.clone(),
            session_token: None,
        },
        profile: opts.profile.clone(),
        ca_bundle: opts.ca_bundle.clone(),
        keys_source: "login".into(),
        dialect: opts.dialect.resolve(&region, &endpoint),
    };
    let ec2 = Ec2::connect(&target)?;
    let zones = ec2.check_access().await.map_err(|e| {
        // Only the cloud's own answer says anything about the keys.
        let refused = matches!(e, crate::cloud::CloudError::Api { code: Some(_), .. });
        anyhow::Error::new(e).context(if refused {
            format!("the cloud at {endpoint} refused these keys; nothing was stored")
        } else {
            format!("login to {endpoint} failed; nothing was stored")
        })
    })?;
    let profile_name = opts.profile.clone();
    let docker_config = docker_config.to_path_buf();
    let ca_bundle = opts
        .ca_bundle
        .clone()
        .map(|p| std::path::absolute(&p).unwrap_or(p));
    let allow_cidrs = opts.allow_cidrs.clone();
    let dialect = opts.dialect;
    let backend = tokio::task::spawn_blocking(move || -> anyhow::Result<Backend> {
        let keyring = Keyring::open()?;
        keyring.set(&profile_name, &secret)?;
        let previous = Profiles::new(&docker_config).get(&profile_name)?;
        let (default_image, previous_cidrs) = previous
            .map(|p| (p.default_image, p.allow_cidrs))
            .unwrap_or_default();
        Profiles::new(&docker_config).set(
            &profile_name,
            Some(Profile {
                endpoint,
                region,
                access_key_id,
                ca_bundle,
                default_image,
                allow_cidrs: if allow_cidrs.is_empty() {
                    previous_cidrs
                } else {
                    allow_cidrs
                },
                dialect,
            }),
        )?;
        Ok(keyring.backend)
    })
    .await??;
    Ok(LoginOutcome {
        profile: opts.profile,
        endpoint: target.endpoint,
        region: target.region,
        dialect: target.dialect,
        backend,
        zones,
    })
}

/// Removes the profile's secret and settings; fails if there was neither.
pub async fn logout(docker_config: &Path, profile: &str) -> anyhow::Result<()> {
    let docker_config = docker_config.to_path_buf();
    let profile = profile.to_string();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        // Nothing is written for a profile that does not exist.
        let profiles = Profiles::new(&docker_config);
        let keyring = Keyring::open()?;
        if profiles.get(&profile)?.is_none() && keyring.get(&profile)?.is_none() {
            bail!(Hinted::new(
                format!("profile {profile:?} does not exist"),
                "`docker euca profiles` lists them"
            ));
        }
        let had_secret = keyring.delete(&profile)?;
        let had_profile = profiles.set(&profile, None)?;
        if !had_secret && !had_profile {
            bail!(Hinted::new(
                format!("profile {profile:?} does not exist"),
                "`docker euca profiles` lists them"
            ));
        }
        Ok(())
    })
    .await?
}
