//! Ed25519 key pairs for the client (authorised through cloud-init) and for the server (sent as
//! the instance's host key through cloud-init `ssh_keys`, so it is pinned before first contact).

use rand::RngCore;
use russh::keys::{
    PrivateKey,
    ssh_key::{LineEnding, private::Ed25519Keypair},
};

use crate::secret::Secret;

/// A fresh ed25519 key pair.
pub struct KeyPair {
    key: PrivateKey,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public_openssh())
            .finish()
    }
}

impl KeyPair {
    pub fn generate_ed25519(comment: &str) -> KeyPair {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
        key.set_comment(comment);
        KeyPair { key }
    }

    /// `ssh-ed25519 AAAA… comment`
    pub fn public_openssh(&self) -> String {
        self.key
            .public_key()
            .to_openssh()
            .expect("an ed25519 public key always encodes")
    }

    /// The OpenSSH private key file contents.
    pub fn private_openssh(&self) -> Secret<String> {
        Secret::new(
            self.key
                .to_openssh(LineEnding::LF)
                .expect("an ed25519 key always encodes")
                .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_encode_in_openssh_format() {
        let k = KeyPair::generate_ed25519("web1");
        assert!(k.public_openssh().starts_with("ssh-ed25519 AAAA"));
        assert!(k.public_openssh().ends_with(" web1"));
        assert!(
            k.private_openssh()
                .expose()
                .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
        );
        let again = PrivateKey::from_openssh(k.private_openssh().expose()).unwrap();
        assert_eq!(again.public_key().to_openssh().unwrap(), k.public_openssh());
        assert!(!format!("{k:?}").contains("PRIVATE"));
    }
}
