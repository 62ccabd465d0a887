//! Cloud credentials: profiles whose secret lives in the OS keyring, and the resolution chain
//! every command uses:
//!
//! 1. flags (`--endpoint`, `--region`, `--profile`, `--ca-bundle`, `--dialect`);
//! 2. environment: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, euca2ools 2's
//!    `EC2_ACCESS_KEY`/`EC2_SECRET_KEY`, `EC2_URL` (also `REGION::URL`), `AWS_ENDPOINT_URL_EC2`,
//!    `AWS_REGION`/`AWS_DEFAULT_REGION`, `EUCA_DEFAULT_REGION`;
//! 3. the profile: `--profile`, else the one recorded for the machine, else `default`;
//! 4. euca2ools' `~/.euca/*.ini`, read only;
//! 5. the AWS shared config's profile (`AWS_PROFILE`, else `default`): static keys or a
//!    `credential_process`, read only, with its region when its keys are the ones used.
//!
//! Each setting (endpoint, region, keys) comes from the first source that has it; an access key
//! and its secret always come from the same source. Secrets never touch disk or argv. With no
//! endpoint anywhere, an AWS region's is EC2's own (`https://ec2.REGION.amazonaws.com/`).

pub mod aws_shared;
pub mod euca2ools;
pub mod instance_role;
pub mod keyring;
pub mod profiles;

use std::path::PathBuf;

use crate::dialect::{Dialect, DialectChoice};
use crate::secret::Secret;
pub use keyring::{Backend, Keyring, KeyringError};
pub use profiles::{Profile, Profiles};

/// Eucalyptus' region name when nothing else says.
pub const DEFAULT_REGION: &str = "eucalyptus";
pub const DEFAULT_PROFILE: &str = "default";

/// An access key pair.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessKeys {
    pub access_key_id: String,
    pub secret_access_key: Secret<String>,
    pub session_token: Option<Secret<String>>,
}

/// Everything needed to talk to one cloud account.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudTarget {
    pub endpoint: String,
    pub region: String,
    pub keys: AccessKeys,
    /// The profile these settings belong to (recorded in machine records; never the keys).
    pub profile: String,
    pub ca_bundle: Option<PathBuf>,
    /// Where the keys came from, for `-D` output: "flags", "environment", "profile NAME", …
    pub keys_source: String,
    /// The EC2 dialect requests are built in (`--dialect`, the profile's, else `auto`).
    pub dialect: Dialect,
}

#[cfg(test)]
impl CloudTarget {
    /// A target for unit tests: `endpoint` in `dialect`, with made-up keys.
    pub fn for_tests(endpoint: &str, region: &str, dialect: Dialect) -> CloudTarget {
        CloudTarget {
            endpoint: endpoint.into(),
            region: region.into(),
            keys: AccessKeys {
                access_key_id: "AKIA".into(),
                secret_access_key: Secret::new("s".into()),
                session_token: None,
            },
            profile: "default".into(),
            ca_bundle: None,
            keys_source: "test".into(),
            dialect,
        }
    }
}

/// The cloud flags shared by every command that talks to the cloud.
#[derive(Debug, Clone, Default)]
pub struct CloudFlags {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub ca_bundle: Option<PathBuf>,
    pub dialect: Option<DialectChoice>,
    /// `--use-instance-role`: the keys are the instance role's (IMDS), whatever else is set.
    pub use_instance_role: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("no EC2 endpoint is configured")]
    NoEndpoint,
    #[error("no access keys are configured{}", profile_note(.profile))]
    NoKeys { profile: String },
    #[error("profile {0:?} does not exist")]
    UnknownProfile(String),
    #[error("{0} is set but {1} is not")]
    HalfPair(&'static str, &'static str),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the AWS shared config's profile {profile:?} gave no keys: {message}")]
    AwsProfile { profile: String, message: String },
    #[error("--use-instance-role: the instance metadata service gave no role keys: {0}")]
    InstanceRole(String),
}

fn profile_note(p: &str) -> String {
    format!(" (looked in flags, environment, profile {p:?}, ~/.euca and the AWS shared config)")
}

impl CredentialsError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            CredentialsError::NoEndpoint => "give --endpoint http://HOST:8773/services/compute/, set EC2_URL, \
                 or store one with `docker euca login --endpoint URL`"
                .into(),
            CredentialsError::NoKeys { .. } => "run `docker euca login --endpoint URL --access-key AK` \
                 (the secret goes to the OS keyring), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                .into(),
            CredentialsError::UnknownProfile(_) => "`docker euca profiles` lists them; `docker euca login --profile NAME` makes one".into(),
            CredentialsError::HalfPair(_, missing) => format!("set {missing} as well, or neither"),
            CredentialsError::Keyring(_) => "start a Secret Service (gnome-keyring) or check the keyring's lock".into(),
            CredentialsError::Read { .. } => "check that the file is readable and that DOCKER_CONFIG (docker's --config) is a directory of yours".into(),
            CredentialsError::AwsProfile { profile, .. } => format!(
                "check [profile {profile}] in ~/.aws/config (its credential_process must print the keys as JSON), \
                 or pick another with AWS_PROFILE"
            ),
            CredentialsError::InstanceRole(_) => "run on an instance with an IAM role (its metadata service at 169.254.169.254, \
                 or AWS_EC2_METADATA_SERVICE_ENDPOINT), or leave out --use-instance-role"
                .into(),
        })
    }
}

/// Splits euca2ools' `REGION::URL` form.
pub fn split_region_url(value: &str) -> (Option<String>, String) {
    match value.split_once("::") {
        Some((region, url)) if !region.is_empty() && !region.contains('/') => {
            (Some(region.to_string()), url.to_string())
        }
        _ => (None, value.to_string()),
    }
}

/// Reads a profile's secret key.
pub type SecretLookup = dyn Fn(&str) -> Result<Option<Secret<String>>, KeyringError>;

/// Where settings can come from; `env` is a function so tests can feed their own.
pub struct Sources<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub profiles: &'a Profiles,
    /// Reads a profile's secret (the OS keyring in real use).
    pub secret_of: &'a SecretLookup,
    /// `~/.euca` (a directory of *.ini) or a file.
    pub euca2ools: Option<PathBuf>,
    /// The AWS shared config's selected profile, loaded only when no other source has keys.
    pub aws_profile: &'a AwsProfileLookup<'a>,
    /// The instance role's keys (IMDS), asked only with `--use-instance-role`.
    pub instance_role: &'a InstanceRoleLookup<'a>,
}

/// Asks the instance metadata service for the role's keys.
pub type InstanceRoleLookup<'a> = dyn Fn() -> Result<AccessKeys, CredentialsError> + 'a;

/// Loads the AWS shared config's profile (it may run a `credential_process`).
pub type AwsProfileLookup<'a> =
    dyn Fn() -> Result<Option<aws_shared::SharedProfile>, CredentialsError> + 'a;

fn static_keys(access_key_id: String, secret: Secret<String>) -> AccessKeys {
    AccessKeys {
        access_key_id,
        secret_access_key: secret,
        session_token: None,
    }
}

/// EC2's own endpoint of an AWS region (`None` for any other region name).
pub fn aws_endpoint(region: &str) -> Option<String> {
    crate::dialect::is_aws_region(region).then(|| format!("https://ec2.{region}.amazonaws.com/"))
}

/// Resolves a cloud target through the chain. `machine_profile` is the profile recorded for
/// the machine being worked on, if any.
pub fn resolve(
    flags: &CloudFlags,
    machine_profile: Option<&str>,
    src: &Sources,
) -> Result<CloudTarget, CredentialsError> {
    let env = |k: &str| (src.env)(k).filter(|v| !v.is_empty());
    let profile_name = flags
        .profile
        .clone()
        .or_else(|| machine_profile.map(str::to_string))
        .unwrap_or_else(|| DEFAULT_PROFILE.to_string());
    let read_err = |source| CredentialsError::Read {
        path: src.profiles.path().to_path_buf(),
        source,
    };
    let profile = src.profiles.get(&profile_name).map_err(read_err)?;
    if flags.profile.is_some() && profile.is_none() {
        return Err(CredentialsError::UnknownProfile(profile_name));
    }

    // Endpoint (and a region carried by REGION::URL).
    let env_url = env("EC2_URL").or_else(|| env("AWS_ENDPOINT_URL_EC2"));
    let (url_region, endpoint) = match flags.endpoint.clone().or(env_url) {
        Some(v) => {
            let (r, u) = split_region_url(&v);
            (r, Some(u))
        }
        None => (None, None),
    };
    let env_region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| env("EUCA_DEFAULT_REGION"));
    let asked_region = flags.region.clone().or(url_region).or(env_region);
    let euca = match &src.euca2ools {
        Some(path) => euca2ools::from_ini(
            path,
            asked_region
                .as_deref()
                .or(profile.as_ref().map(|p| p.region.as_str())),
        )
        .map_err(|source| CredentialsError::Read {
            path: path.clone(),
            source,
        })?,
        None => None,
    };

    let endpoint = endpoint
        .or_else(|| profile.as_ref().map(|p| p.endpoint.clone()))
        .or_else(|| euca.as_ref().and_then(|e| e.endpoint.clone()));
    let region = asked_region
        .or_else(|| {
            profile
                .as_ref()
                .map(|p| p.region.clone())
                .filter(|r| !r.is_empty())
        })
        .or_else(|| euca.as_ref().and_then(|e| e.region.clone()));

    // Keys: one source for the pair.
    let session_token = env("AWS_SESSION_TOKEN").map(Secret::new);
    let from_env =
        |id: &'static str, secret: &'static str| -> Result<Option<AccessKeys>, CredentialsError> {
            match (env(id), env(secret)) {
                (Some(access_key_id), Some(s)) => Ok(Some(AccessKeys {
                    access_key_id,
                    secret_access_key: Secret::new(s),
                    session_token: session_token.clone(),
                })),
                (Some(_), None) => Err(CredentialsError::HalfPair(id, secret)),
                (None, Some(_)) => Err(CredentialsError::HalfPair(secret, id)),
                (None, None) => Ok(None),
            }
        };
    let found = if flags.use_instance_role {
        Some(((src.instance_role)()?, "instance role (IMDS)".to_string()))
    } else if let Some(k) = from_env("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")? {
        Some((k, "environment (AWS_ACCESS_KEY_ID)".to_string()))
    } else if let Some(k) = from_env("EC2_ACCESS_KEY", "EC2_SECRET_KEY")? {
        Some((k, "environment (EC2_ACCESS_KEY)".to_string()))
    } else if let Some(secret) = match &profile {
        Some(_) => (src.secret_of)(&profile_name)?,
        None => None,
    } {
        let p = profile.as_ref().expect("profile checked above");
        let keys = static_keys(p.access_key_id.clone(), secret);
        Some((keys, format!("profile {profile_name:?} (OS keyring)")))
    } else {
        euca.as_ref()
            .and_then(|e| Some((e.access_key_id.clone()?, e.secret_access_key.clone()?)))
            .map(|(id, secret)| (static_keys(id, secret), "~/.euca".to_string()))
    };
    // The AWS shared config last, and its region only with its keys.
    let (found, shared_region) = match found {
        Some(k) => (Some(k), None),
        None => match (src.aws_profile)()? {
            Some(shared) => {
                let source = format!("AWS shared config (profile {:?})", shared.name);
                (Some((shared.keys, source)), shared.region)
            }
            None => (None, None),
        },
    };
    let region = region
        .or(shared_region)
        .unwrap_or_else(|| DEFAULT_REGION.to_string());
    let endpoint = endpoint
        .or_else(|| aws_endpoint(&region))
        .ok_or(CredentialsError::NoEndpoint)?;
    let (keys, keys_source) = found.ok_or_else(|| CredentialsError::NoKeys {
        profile: profile_name.clone(),
    })?;
    let ca_bundle = flags
        .ca_bundle
        .clone()
        .or_else(|| profile.as_ref().and_then(|p| p.ca_bundle.clone()));
    let dialect = flags
        .dialect
        .or_else(|| profile.as_ref().map(|p| p.dialect))
        .unwrap_or_default()
        .resolve(&region, &endpoint);
    Ok(CloudTarget {
        endpoint,
        region,
        keys,
        profile: profile_name,
        ca_bundle,
        keys_source,
        dialect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Fixture {
        dir: tempfile::TempDir,
        profiles: Profiles,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let profiles = Profiles::new(dir.path());
        profiles
            .set(
                "default",
                Some(Profile {
                    endpoint: "http://prof:8773/services/compute/".into(),
                    region: "profregion".into(),
                    access_key_id: "AKPROF".into(),
                    ..Default::default()
                }),
            )
            .unwrap();
        Fixture { dir, profiles }
    }

    fn resolve_with(
        fx: &Fixture,
        flags: CloudFlags,
        env: &[(&str, &str)],
        euca: bool,
    ) -> Result<CloudTarget, CredentialsError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env_fn = move |k: &str| env.get(k).cloned();
        let secret_of =
            |p: &str| Ok((p == "default").then(|| Secret::new("profsecret".to_string())));
        let ini = fx.dir.path().join("euca");
        std::fs::create_dir_all(&ini).unwrap();
        std::fs::write(
            ini.join("a.ini"),
            "[region r1]\nec2-url = http://ini:8773/\nuser = u\n[user u]\nkey-id = AKINI\nsecret-key = inisecret\n",
        )
        .unwrap();
        resolve(
            &flags,
            None,
            &Sources {
                env: &env_fn,
                profiles: &fx.profiles,
                secret_of: &secret_of,
                euca2ools: euca.then_some(ini),
                aws_profile: &|| Ok(None),
                instance_role: &|| Err(CredentialsError::InstanceRole("not in unit tests".into())),
            },
        )
    }

    /// With nothing else holding keys (no profile of ours, no ~/.euca), the AWS shared
    /// config's profile is the last source; its region counts only with its keys, and an AWS
    /// region without an endpoint anywhere is EC2's own.
    #[test]
    fn the_aws_shared_config_comes_last_and_brings_its_region_with_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let profiles = Profiles::new(dir.path());
        let shared = || {
            Ok(Some(aws_shared::SharedProfile {
                name: "work".into(),
                keys: static_keys("AKAWS".into(), Secret::new("awssecret".into())),
                region: Some("eu-west-2".into()),
            }))
        };
        let resolve_env = |env: &[(&str, &str)]| {
            let env: HashMap<String, String> = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let env_fn = move |k: &str| env.get(k).cloned();
            resolve(
                &CloudFlags::default(),
                None,
                &Sources {
                    env: &env_fn,
                    profiles: &profiles,
                    secret_of: &|_| Ok(None),
                    euca2ools: None,
                    aws_profile: &shared,
                    instance_role: &|| Err(CredentialsError::InstanceRole("none".into())),
                },
            )
        };
        let t = resolve_env(&[]).unwrap();
        assert_eq!(t.keys.access_key_id, "AKAWS");
        assert_eq!(t.region, "eu-west-2");
        assert_eq!(t.endpoint, "https://ec2.eu-west-2.amazonaws.com/");
        assert_eq!(t.dialect, Dialect::Aws);
        assert!(
            t.keys_source.contains("AWS shared config"),
            "{}",
            t.keys_source
        );
        // Keys in the environment win, and the shared config's region does not come with them.
        let t = resolve_env(&[
            ("AWS_ACCESS_KEY_ID", "AKENV"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("EC2_URL", "http://clc:8773/services/compute/"),
        ])
        .unwrap();
        assert_eq!(t.keys.access_key_id, "AKENV");
        assert_eq!(t.region, DEFAULT_REGION);
        assert_eq!(t.dialect, Dialect::Eucalyptus);
        // Eucalyptus's region has no endpoint of its own.
        let err = resolve_env(&[
            ("AWS_ACCESS_KEY_ID", "AKENV"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ]);
        assert!(matches!(err, Err(CredentialsError::NoEndpoint)), "{err:?}");
        assert_eq!(aws_endpoint("eucalyptus"), None);
    }

    #[test]
    fn the_dialect_comes_from_the_flag_then_the_profile_then_the_region_and_endpoint() {
        let fx = fixture();
        let dialect = |flags: CloudFlags, env: &[(&str, &str)]| {
            resolve_with(&fx, flags, env, false).unwrap().dialect
        };
        assert_eq!(dialect(CloudFlags::default(), &[]), Dialect::Eucalyptus);
        // An AWS region name, whatever the endpoint.
        assert_eq!(
            dialect(CloudFlags::default(), &[("AWS_REGION", "us-east-1")]),
            Dialect::Aws
        );
        let aws = CloudFlags {
            dialect: Some(DialectChoice::Aws),
            ..Default::default()
        };
        assert_eq!(dialect(aws, &[]), Dialect::Aws);
        // The profile's, when the flag does not say.
        let mut p = fx.profiles.get("default").unwrap().unwrap();
        p.dialect = DialectChoice::Aws;
        fx.profiles.set("default", Some(p)).unwrap();
        assert_eq!(dialect(CloudFlags::default(), &[]), Dialect::Aws);
        let euca = CloudFlags {
            dialect: Some(DialectChoice::Eucalyptus),
            ..Default::default()
        };
        assert_eq!(
            dialect(euca, &[("AWS_REGION", "us-east-1")]),
            Dialect::Eucalyptus
        );
    }

    #[test]
    fn flags_beat_environment_beat_profile() {
        let fx = fixture();
        let t = resolve_with(&fx, CloudFlags::default(), &[], false).unwrap();
        assert_eq!(
            (
                t.endpoint.as_str(),
                t.region.as_str(),
                t.keys.access_key_id.as_str()
            ),
            ("http://prof:8773/services/compute/", "profregion", "AKPROF")
        );
        assert_eq!(t.keys.secret_access_key.expose(), "profsecret");

        let env = [
            ("EC2_URL", "envr::http://env:8773/"),
            ("AWS_ACCESS_KEY_ID", "AKENV"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
        ];
        let t = resolve_with(&fx, CloudFlags::default(), &env, false).unwrap();
        assert_eq!(
            (
                t.endpoint.as_str(),
                t.region.as_str(),
                t.keys.access_key_id.as_str()
            ),
            ("http://env:8773/", "envr", "AKENV")
        );

        let flags = CloudFlags {
            endpoint: Some("http://flag:8773/".into()),
            region: Some("flagr".into()),
            ..Default::default()
        };
        let t = resolve_with(&fx, flags, &env, false).unwrap();
        assert_eq!(
            (t.endpoint.as_str(), t.region.as_str()),
            ("http://flag:8773/", "flagr")
        );
    }

    #[test]
    fn euca2ools_env_names_and_ini_fallback() {
        let fx = fixture();
        let env = [("EC2_ACCESS_KEY", "AK2"), ("EC2_SECRET_KEY", "s2")];
        assert_eq!(
            resolve_with(&fx, CloudFlags::default(), &env, false)
                .unwrap()
                .keys
                .access_key_id,
            "AK2"
        );
        fx.profiles.set("default", None).unwrap();
        let t = resolve_with(&fx, CloudFlags::default(), &[], true).unwrap();
        assert_eq!(
            (
                t.endpoint.as_str(),
                t.region.as_str(),
                t.keys.access_key_id.as_str()
            ),
            ("http://ini:8773/", "r1", "AKINI")
        );
        assert_eq!(t.keys.secret_access_key.expose(), "inisecret");
    }

    #[test]
    fn missing_pieces_are_named() {
        let fx = fixture();
        fx.profiles.set("default", None).unwrap();
        assert!(matches!(
            resolve_with(&fx, CloudFlags::default(), &[], false),
            Err(CredentialsError::NoEndpoint)
        ));
        let flags = CloudFlags {
            endpoint: Some("http://x/".into()),
            ..Default::default()
        };
        assert!(matches!(
            resolve_with(&fx, flags.clone(), &[], false),
            Err(CredentialsError::NoKeys { .. })
        ));
        assert!(matches!(
            resolve_with(&fx, flags.clone(), &[("AWS_ACCESS_KEY_ID", "a")], false),
            Err(CredentialsError::HalfPair(
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY"
            ))
        ));
        let named = CloudFlags {
            profile: Some("nope".into()),
            ..flags
        };
        assert!(matches!(
            resolve_with(&fx, named, &[], false),
            Err(CredentialsError::UnknownProfile(_))
        ));
        let t = resolve_with(
            &fx,
            CloudFlags {
                endpoint: Some("http://x/".into()),
                ..Default::default()
            },
            &[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")],
            false,
        )
        .unwrap();
        assert_eq!(t.region, DEFAULT_REGION);
    }

    #[test]
    fn region_url_form() {
        assert_eq!(
            split_region_url("r::http://h/"),
            (Some("r".into()), "http://h/".into())
        );
        assert_eq!(
            split_region_url("http://h:8773/"),
            (None, "http://h:8773/".into())
        );
    }
}
