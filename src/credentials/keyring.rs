//! The OS keyring: the Secret Service through keyring-core's zbus store on Linux, and when no
//! Secret Service answers, the kernel's per-user keyring (keyutils). Calls block: run them in
//! `spawn_blocking`.
//!
//! The kernel fallback talks to `linux-keyutils` directly instead of through
//! `linux-keyutils-keyring-store`: that store insists on linking every key into the persistent
//! keyring, which the kernel refuses (EACCES) in containers and user namespaces, so it could not
//! store anything there. The user keyring (`@u`) has the same lifetime: until reboot.

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
    #[error("the kernel keyring refused to {action} the secret of profile {profile:?}: {message}")]
    Kernel {
        action: &'static str,
        profile: String,
        message: String,
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
            Backend::Native if cfg!(windows) => "Windows Credential Manager",
            Backend::Native if cfg!(target_os = "macos") => "macOS Keychain",
            Backend::Native => "OS keychain",
        }
    }
}

enum Store {
    Core(Arc<CredentialStore>),
    #[cfg(target_os = "linux")]
    UserKeyring(linux_keyutils::KeyRing),
}

pub struct Keyring {
    store: Store,
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
            use linux_keyutils::{KeyRing, KeyRingIdentifier};
            let ring = KeyRing::from_special_id(KeyRingIdentifier::User, true)
                .map_err(|e| format!("kernel keyring: {e:?}"))?;
            Ok(Keyring {
                store: Store::UserKeyring(ring),
                backend: Backend::KernelKeyutils,
            })
        };
        if forced.as_deref() == Some("keyutils") {
            return keyutils();
        }
        match zbus_secret_service_keyring_store::Store::new() {
            Ok(store) => Ok(Keyring {
                store: Store::Core(store),
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

    /// The login keychain, through keyring-core as on Linux.
    #[cfg(target_os = "macos")]
    fn open_uncached() -> Result<Keyring, String> {
        let store = apple_native_keyring_store::keychain::Store::new()
            .map_err(|e| format!("macOS Keychain: {e}"))?;
        Ok(Keyring {
            store: Store::Core(store),
            backend: Backend::Native,
        })
    }

    /// The Credential Manager (generic credentials), through keyring-core as on Linux.
    #[cfg(windows)]
    fn open_uncached() -> Result<Keyring, String> {
        let store = windows_native_keyring_store::Store::new()
            .map_err(|e| format!("Windows Credential Manager: {e}"))?;
        Ok(Keyring {
            store: Store::Core(store),
            backend: Backend::Native,
        })
    }

    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    fn open_uncached() -> Result<Keyring, String> {
        Err("this platform has no keyring docker-euca knows (Linux, macOS, Windows)".into())
    }

    fn entry(store: &Arc<CredentialStore>, profile: &str) -> Result<Entry, KeyringError> {
        Entry::new_in_store(store, SERVICE, profile).map_err(|source| KeyringError::Access {
            action: "open",
            profile: profile.into(),
            source,
        })
    }

    /// The kernel key's description.
    #[cfg(target_os = "linux")]
    fn description(profile: &str) -> String {
        format!("{SERVICE}:{profile}")
    }

    pub fn set(&self, profile: &str, secret: &Secret<String>) -> Result<(), KeyringError> {
        match &self.store {
            Store::Core(store) => Self::entry(store, profile)?
                .set_password(secret.expose())
                .map_err(|source| KeyringError::Access {
                    action: "store",
                    profile: profile.into(),
                    source,
                }),
            #[cfg(target_os = "linux")]
            Store::UserKeyring(ring) => ring
                .add_key(&Self::description(profile), secret.expose().as_bytes())
                .map(|_| ())
                .map_err(|e| kernel_err("store", profile, e)),
        }
    }

    pub fn get(&self, profile: &str) -> Result<Option<Secret<String>>, KeyringError> {
        match &self.store {
            Store::Core(store) => match Self::entry(store, profile)?.get_password() {
                Ok(s) => Ok(Some(Secret::new(s))),
                Err(keyring_core::Error::NoEntry) => Ok(None),
                Err(source) => Err(KeyringError::Access {
                    action: "read",
                    profile: profile.into(),
                    source,
                }),
            },
            #[cfg(target_os = "linux")]
            Store::UserKeyring(ring) => match ring.search(&Self::description(profile)) {
                Ok(key) => {
                    let bytes = key
                        .read_to_vec()
                        .map_err(|e| kernel_err("read", profile, e))?;
                    Ok(Some(Secret::new(
                        String::from_utf8_lossy(&bytes).into_owned(),
                    )))
                }
                Err(linux_keyutils::KeyError::KeyDoesNotExist) => Ok(None),
                Err(e) => Err(kernel_err("read", profile, e)),
            },
        }
    }

    /// Removes the secret; returns whether there was one.
    pub fn delete(&self, profile: &str) -> Result<bool, KeyringError> {
        match &self.store {
            Store::Core(store) => match Self::entry(store, profile)?.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring_core::Error::NoEntry) => Ok(false),
                Err(source) => Err(KeyringError::Access {
                    action: "delete",
                    profile: profile.into(),
                    source,
                }),
            },
            #[cfg(target_os = "linux")]
            Store::UserKeyring(ring) => match ring.search(&Self::description(profile)) {
                Ok(key) => key
                    .invalidate()
                    .map(|_| true)
                    .map_err(|e| kernel_err("delete", profile, e)),
                Err(linux_keyutils::KeyError::KeyDoesNotExist) => Ok(false),
                Err(e) => Err(kernel_err("delete", profile, e)),
            },
        }
    }
}

#[cfg(target_os = "linux")]
fn kernel_err(action: &'static str, profile: &str, e: linux_keyutils::KeyError) -> KeyringError {
    KeyringError::Kernel {
        action,
        profile: profile.into(),
        message: format!("{e:?}"),
    }
}
