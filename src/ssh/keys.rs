//! Ed25519 key pairs for the client (authorised through cloud-init) and for the server (sent as
//! the instance's host key through cloud-init `ssh_keys`, so it is pinned before first contact).

use rand::Rng;
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

    /// A fresh RSA key pair (Eucalyptus' ImportKeyPair takes only RSA 1024/2048/4096).
    pub fn generate_rsa(
        bits: usize,
        comment: &str,
    ) -> Result<KeyPair, russh::keys::ssh_key::Error> {
        let rsa = russh::keys::ssh_key::private::RsaKeypair::random(&mut rand::rng(), bits)?;
        let mut key = PrivateKey::from(rsa);
        key.set_comment(comment);
        Ok(KeyPair { key })
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

/// The host public keys in a console's `-----BEGIN SSH HOST KEY KEYS-----` block, as cloud-init
/// prints it (`TYPE BASE64 [COMMENT]`, one per line; the END marker may follow a key on its line).
pub fn console_host_keys(console: &str) -> Vec<String> {
    let Some(start) = console.find("-----BEGIN SSH HOST KEY KEYS-----") else {
        return Vec::new();
    };
    let block = &console[start + "-----BEGIN SSH HOST KEY KEYS-----".len()..];
    let block = block
        .split("-----END SSH HOST KEY KEYS-----")
        .next()
        .unwrap_or_default();
    block
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (kind, data) = (parts.next()?, parts.next()?);
            let line = format!("{kind} {data}");
            russh::keys::PublicKey::from_openssh(&line)
                .ok()
                .map(|_| line)
        })
        .collect()
}

/// The key a client will be offered first: ed25519, then ECDSA, then RSA.
pub fn preferred_host_key(keys: &[String]) -> Option<String> {
    [
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "ssh-rsa",
    ]
    .iter()
    .find_map(|kind| {
        keys.iter()
            .find(|k| k.starts_with(&format!("{kind} ")))
            .cloned()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn console_block_is_parsed_leniently() {
        let ed = super::KeyPair::generate_ed25519("x").public_openssh();
        let ed = ed.rsplit_once(' ').unwrap().0.to_string();
        let console = format!(
            "boot noise\nec2: \n-----BEGIN SSH HOST KEY KEYS-----\necdsa-sha2-nistp256 AAAAbad root@vm\n{ed} root@vm-----END SSH HOST KEY KEYS-----\nmore\n"
        );
        let keys = super::console_host_keys(&console);
        assert_eq!(
            keys,
            vec![ed.clone()],
            "the damaged ECDSA line is skipped, the glued END marker tolerated"
        );
        assert_eq!(super::preferred_host_key(&keys), Some(ed));
        assert!(super::console_host_keys("no block here").is_empty());
    }

    use super::*;

    #[test]
    fn rsa_keys_for_import() {
        let k = KeyPair::generate_rsa(2048, "c").unwrap();
        assert!(k.public_openssh().starts_with("ssh-rsa AAAA"));
        assert!(PrivateKey::from_openssh(k.private_openssh().expose()).is_ok());
    }

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
