//! The OS keyring through keyring-core: Secret Service on Linux (the kernel keyutils store when
//! no Secret Service answers), Keychain on macOS, Credential Manager on Windows. Calls block:
//! run them in `spawn_blocking`.

use std::sync::{Arc, OnceLock};

use keyring_core::{CredentialStore, Entry};

use crate::secret::Secret;

/// The keyring service name every secret is filed under; the account is the profile name.
pub const SERVICE: &str = "docker-euca";

/// Forces a backend: `secret-service` or `keyutils` (Linux). Mostly for tests.
pub const BACKEND_ENV: &str = "DOCKER_EUCA_KEYRING";

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("no OS keyring is available: {0}")]
    Unavailable(String),
    #[error("the keyring refused to {action} the secret of profile {profile:?}: {source}")]
    Access {
        action: &'static str,
        profile: String,
        source: keyring_core::Error,
    },
}

/// Which store answered, and whether its secrets survive a reboot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    SecretService,
    KernelKeyutils,
    Native,
}

impl Backend {
    pub fn describe(self) -> &'static str {
        match self {
            Backend::SecretService => "Secret Service",
            Backend::KernelKeyutils => "kernel keyring (keyutils)",
            Backend::Native => "OS keychain",
        }
    }
}

pub struct Keyring {
    store: Arc<CredentialStore>,
    pub backend: Backend,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("backend", &self.backend)
            .finish()
    }
}

static OPENED: OnceLock<Result<Arc<Keyring>, String>> = OnceLock::new();

impl Keyring {
    /// Opens the platform's keyring once per process.
    pub fn open() -> Result<Arc<Keyring>, KeyringError> {
        OPENED
            .get_or_init(|| Self::open_uncached().map(Arc::new))
            .clone()
            .map_err(KeyringError::Unavailable)
    }

    #[cfg(target_os = "linux")]
    fn open_uncached() -> Result<Keyring, String> {
        let forced = std::env::var(BACKEND_ENV).ok();
        let keyutils = || -> Result<Keyring, String> {
            let store: Arc<CredentialStore> =
                linux_keyutils_keyring_store::Store::new().map_err(|e| format!("keyutils: {e}"))?;
            Ok(Keyring {
                store,
                backend: Backend::KernelKeyutils,
            })
        };
        if forced.as_deref() == Some("keyutils") {
            return keyutils();
        }
        match zbus_secret_service_keyring_store::Store::new() {
            Ok(store) => Ok(Keyring {
                store,
                backend: Backend::SecretService,
            }),
            Err(e) if forced.as_deref() == Some("secret-service") => {
                Err(format!("Secret Service: {e}"))
            }
            Err(e) => {
                tracing::debug!("no Secret Service ({e}); falling back to the kernel keyring");
                keyutils()
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn open_uncached() -> Result<Keyring, String> {
        Err("this build supports the Linux keyrings only".into())
    }

    fn entry(&self, profile: &str) -> Result<Entry, KeyringError> {
        Entry::new_in_store(&self.store, SERVICE, profile).map_err(|source| KeyringError::Access {
            action: "open",
            profile: profile.into(),
            source,
        })
    }

    pub fn set(&self, profile: &str, secret: &Secret<String>) -> Result<(), KeyringError> {
        self.entry(profile)?
            .set_password(secret.expose())
            .map_err(|source| KeyringError::Access {
                action: "store",
                profile: profile.into(),
                source,
            })
    }

    pub fn get(&self, profile: &str) -> Result<Option<Secret<String>>, KeyringError> {
        match self.entry(profile)?.get_password() {
            Ok(s) => Ok(Some(Secret::new(s))),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(source) => Err(KeyringError::Access {
                action: "read",
                profile: profile.into(),
                source,
            }),
        }
    }

    /// Removes the secret; returns whether there was one.
    pub fn delete(&self, profile: &str) -> Result<bool, KeyringError> {
        match self.entry(profile)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(source) => Err(KeyringError::Access {
                action: "delete",
                profile: profile.into(),
                source,
            }),
        }
    }
}
