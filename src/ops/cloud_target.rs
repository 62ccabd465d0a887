//! Resolving the cloud target for a command through the credentials chain, with the real
//! environment, profiles and keyring.

use std::path::Path;

use crate::{
    credentials::{
        self, CloudFlags, CloudTarget, CredentialsError, Keyring, Profiles, Sources, aws_shared,
    },
    secret::Secret,
};

/// Resolves in a blocking thread (the keyring blocks). `machine_profile`: the machine's profile.
pub async fn resolve(
    docker_config: &Path,
    flags: &CloudFlags,
    machine_profile: Option<String>,
) -> Result<CloudTarget, CredentialsError> {
    let docker_config = docker_config.to_path_buf();
    let flags = flags.clone();
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let profiles = Profiles::new(&docker_config);
        let env = |k: &str| std::env::var(k).ok();
        let secret_of =
            |profile: &str| -> Result<Option<Secret<String>>, credentials::KeyringError> {
                Keyring::open()?.get(profile)
            };
        let euca2ools = dirs::home_dir()
            .map(|h| h.join(".euca"))
            .filter(|p| p.exists());
        // A blocking thread of the runtime: the async loader runs on the runtime meanwhile.
        let aws_profile = || runtime.block_on(aws_shared::load(&aws_shared::selected(&env)));
        let instance_role = || runtime.block_on(credentials::instance_role::keys());
        credentials::resolve(
            &flags,
            machine_profile.as_deref(),
            &Sources {
                env: &env,
                profiles: &profiles,
                secret_of: &secret_of,
                euca2ools,
                aws_profile: &aws_profile,
                instance_role: &instance_role,
            },
        )
    })
    .await
    .expect("credential resolution does not panic")
}
