//! The AWS shared config (`~/.aws/config`, `~/.aws/credentials`; `AWS_CONFIG_FILE`,
//! `AWS_SHARED_CREDENTIALS_FILE`; the profile `AWS_PROFILE` names, else `default`) as a
//! read-only source of keys and region: static keys, or a `credential_process` (run as the AWS
//! CLI runs it: split as a shell would, no shell; JSON on stdout). Nothing is written, and the
//! keys it yields stay in memory.
//!
//! The files are read here rather than through aws-config's profile provider: that one links
//! an STS client for role profiles (a megabyte of binary) and would dial the instance metadata
//! or container address for a `credential_source`. Role, SSO and `credential_source` profiles
//! are refused in one line instead.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use super::{AccessKeys, CredentialsError};
use crate::secret::Secret;

/// The profile used when `AWS_PROFILE` names none.
pub const DEFAULT_AWS_PROFILE: &str = "default";

/// What one profile of the shared config gave.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedProfile {
    pub name: String,
    pub keys: AccessKeys,
    pub region: Option<String>,
}

/// The profile to read: `AWS_PROFILE`, else `default`.
pub fn selected(env: &dyn Fn(&str) -> Option<String>) -> String {
    env("AWS_PROFILE")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_AWS_PROFILE.to_string())
}

/// One profile's settings: the credentials file's over the config file's, as the AWS CLI
/// reads them.
type Settings = BTreeMap<String, String>;

/// The keys (and region) of profile `name`, running its `credential_process` if it has one.
/// `None` when there is no shared config, no such profile, or no credentials in it.
pub async fn load(name: &str) -> Result<Option<SharedProfile>, CredentialsError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let home = dirs::home_dir().unwrap_or_default().join(".aws");
    let config = env("AWS_CONFIG_FILE").map_or_else(|| home.join("config"), PathBuf::from);
    let credentials =
        env("AWS_SHARED_CREDENTIALS_FILE").map_or_else(|| home.join("credentials"), PathBuf::from);
    let Some(settings) = profile_settings(name, &config, &credentials)? else {
        return Ok(None);
    };
    let failed = |message: String| CredentialsError::AwsProfile {
        profile: name.to_string(),
        message,
    };
    let keys = match keys_of(&settings).map_err(failed)? {
        Some(keys) => keys,
        None => match settings.get("credential_process") {
            Some(command) => run_process(command).await.map_err(failed)?,
            None => return Ok(None),
        },
    };
    Ok(Some(SharedProfile {
        name: name.to_string(),
        keys,
        region: settings.get("region").cloned(),
    }))
}

/// The profile's settings from both files (`[profile NAME]` or `[NAME]` in the config file,
/// `[NAME]` in the credentials file); `None` when neither has it.
fn profile_settings(
    name: &str,
    config: &Path,
    credentials: &Path,
) -> Result<Option<Settings>, CredentialsError> {
    let from_config = section(config, &[format!("profile {name}"), name.to_string()])?;
    let from_credentials = section(credentials, &[name.to_string()])?;
    if from_config.is_none() && from_credentials.is_none() {
        return Ok(None);
    }
    let mut settings = from_config.unwrap_or_default();
    settings.extend(from_credentials.unwrap_or_default());
    Ok(Some(settings))
}

/// The first of `names` that is a section of the INI file at `path` (absent file: `None`).
fn section(path: &Path, names: &[String]) -> Result<Option<Settings>, CredentialsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CredentialsError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let parsed = ini::Ini::load_from_str(&text).map_err(|e| CredentialsError::Read {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })?;
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(names.iter().find_map(|want| {
        parsed.iter().find_map(|(sec, props)| {
            (squeeze(sec.unwrap_or_default()) == *want).then(|| {
                props
                    .iter()
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .collect()
            })
        })
    }))
}

/// Static keys, or `None` to look further; what would dial a service is refused.
fn keys_of(settings: &Settings) -> Result<Option<AccessKeys>, String> {
    for (key, what) in [
        (
            "credential_source",
            "credential_source would dial a metadata service (use --use-instance-role on an instance)",
        ),
        (
            "role_arn",
            "role profiles (role_arn) are not supported: give the role's keys or a credential_process",
        ),
        (
            "sso_session",
            "SSO profiles are not supported: give keys or a credential_process",
        ),
        (
            "sso_start_url",
            "SSO profiles are not supported: give keys or a credential_process",
        ),
    ] {
        if settings.contains_key(key) {
            return Err(what.to_string());
        }
    }
    match (
        settings.get("aws_access_key_id"),
        settings.get("aws_secret_access_key"),
    ) {
        (Some(id), Some(secret)) => Ok(Some(AccessKeys {
            access_key_id: id.clone(),
            secret_access_key: Secret::new(secret.clone()),
            session_token: settings
                .get("aws_session_token")
                .map(|t| Secret::new(t.clone())),
        })),
        (Some(_), None) => Err("aws_access_key_id is set but aws_secret_access_key is not".into()),
        (None, Some(_)) => Err("aws_secret_access_key is set but aws_access_key_id is not".into()),
        (None, None) => Ok(None),
    }
}

/// Runs the profile's `credential_process` and reads its answer.
async fn run_process(command: &str) -> Result<AccessKeys, String> {
    let argv = shlex::split(command)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| format!("credential_process {command:?} is not a command line"))?;
    let out = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("credential_process {:?} did not start: {e}", argv[0]))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let said = said.lines().next().unwrap_or_default().trim();
        return Err(format!(
            "credential_process {:?} failed ({}){}",
            argv[0],
            out.status,
            if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            }
        ));
    }
    process_keys(&out.stdout)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessAnswer {
    version: u32,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

/// The process's answer: `{"Version": 1, "AccessKeyId": …, "SecretAccessKey": …,
/// "SessionToken": …}` (the AWS CLI's format; `Expiration` is not needed for one command).
fn process_keys(stdout: &[u8]) -> Result<AccessKeys, String> {
    let answer: ProcessAnswer = serde_json::from_slice(stdout)
        .map_err(|e| format!("credential_process printed no keys as JSON ({e})"))?;
    if answer.version != 1 {
        return Err(format!(
            "credential_process answered Version {}; version 1 is the one there is",
            answer.version
        ));
    }
    Ok(AccessKeys {
        access_key_id: answer.access_key_id,
        secret_access_key: Secret::new(answer.secret_access_key),
        session_token: answer.session_token.map(Secret::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(config: &str, credentials: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("config"), dir.path().join("credentials"));
        std::fs::write(&c, config).unwrap();
        std::fs::write(&k, credentials).unwrap();
        (dir, c, k)
    }

    #[test]
    fn a_profile_is_read_from_both_files_the_credentials_file_winning() {
        let (_d, c, k) = files(
            "[default]\nregion = eu-west-1\n[profile work]\nregion = us-east-1\naws_access_key_id = AKOLD\n",
            "[work]\naws_access_key_id = AKNEW\naws_secret_access_key = s\n",
        );
        let work = profile_settings("work", &c, &k).unwrap().unwrap();
        assert_eq!(work["region"], "us-east-1");
        let keys = keys_of(&work).unwrap().unwrap();
        assert_eq!(keys.access_key_id, "AKNEW");
        assert_eq!(keys.session_token, None);
        let default = profile_settings("default", &c, &k).unwrap().unwrap();
        assert_eq!(
            keys_of(&default).unwrap(),
            None,
            "a region alone gives no keys"
        );
        assert_eq!(profile_settings("nosuch", &c, &k).unwrap(), None);
        let gone = Path::new("/nonexistent/aws");
        assert_eq!(profile_settings("work", gone, gone).unwrap(), None);
    }

    #[test]
    fn what_would_dial_a_service_is_refused_and_half_a_pair_too() {
        let refused = |line: &str| {
            let (_d, c, k) = files(&format!("[profile p]\n{line}\n"), "");
            keys_of(&profile_settings("p", &c, &k).unwrap().unwrap()).unwrap_err()
        };
        assert!(refused("credential_source = Ec2InstanceMetadata").contains("metadata service"));
        assert!(refused("role_arn = arn:aws:iam::1:role/r").contains("role_arn"));
        assert!(refused("sso_start_url = https://x").contains("SSO"));
        assert!(refused("aws_access_key_id = AK").contains("aws_secret_access_key is not"));
    }

    #[test]
    fn a_process_answer_is_read_as_the_aws_cli_reads_it() {
        let keys = process_keys(
            br#"{"Version": 1, "AccessKeyId": "AK", "SecretAccessKey": "s", "SessionToken": "t"}"#,
        )
        .unwrap();
        assert_eq!(keys.access_key_id, "AK");
        assert_eq!(keys.session_token.unwrap().expose(), "t");
        let v2 = process_keys(br#"{"Version": 2, "AccessKeyId": "A", "SecretAccessKey": "s"}"#);
        assert!(v2.unwrap_err().contains("Version 2"));
        assert!(
            process_keys(b"not json")
                .unwrap_err()
                .contains("no keys as JSON")
        );
    }

    #[test]
    fn the_profile_is_aws_profile_or_default() {
        assert_eq!(selected(&|_| None), "default");
        assert_eq!(
            selected(&|k| (k == "AWS_PROFILE").then(|| "".into())),
            "default"
        );
        assert_eq!(
            selected(&|k| (k == "AWS_PROFILE").then(|| "work".into())),
            "work"
        );
    }
}
