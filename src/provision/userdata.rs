//! The cloud-init user data a create sends: our cloud-config (the client's authorised key and the
//! pinned host key), combined with the user's own `--user-data` as a MIME multipart so cloud-init
//! merges the two itself (lists append, the user's values are kept). Gzipped over 16 KiB.

use std::io::Write;

use base64::Engine;

/// Above this size the user data goes gzipped (cloud-init detects gzip itself).
pub const GZIP_ABOVE: usize = 16 * 1024;

/// What our part of the cloud-config says.
#[derive(Debug, Clone, Default)]
pub struct OurConfig {
    pub authorized_keys: Vec<String>,
    /// (private OpenSSH, public OpenSSH) of the ed25519 host key.
    pub host_key: Option<(crate::secret::Secret<String>, String)>,
    /// Packages cloud-init should install while the instance boots.
    pub packages: Vec<String>,
    /// `Some(false)` lets root log in (for `--ssh-user root`); images default to refusing it.
    pub disable_root: Option<bool>,
}

/// Our cloud-config as JSON (valid YAML, which cloud-config is).
fn our_cloud_config(cfg: &OurConfig) -> String {
    let mut doc = serde_json::Map::new();
    if !cfg.authorized_keys.is_empty() {
        doc.insert(
            "ssh_authorized_keys".into(),
            cfg.authorized_keys.clone().into(),
        );
    }
    if let Some((private, public)) = &cfg.host_key {
        doc.insert(
            "ssh_keys".into(),
            // cloud-init prints the key block wrong without the trailing newline.
            serde_json::json!({ "ed25519_private": private.expose(), "ed25519_public": format!("{}\n", public.trim_end()) }),
        );
        // Only our host key: cloud-init would otherwise generate others next to it.
        doc.insert("ssh_deletekeys".into(), true.into());
        doc.insert("ssh_genkeytypes".into(), serde_json::Value::Array(vec![]));
    }
    if let Some(disable_root) = cfg.disable_root {
        doc.insert("disable_root".into(), disable_root.into());
    }
    if !cfg.packages.is_empty() {
        doc.insert("packages".into(), cfg.packages.clone().into());
    }
    doc.insert(
        "merge_how".into(),
        serde_json::json!([
            {"name": "list", "settings": ["append"]},
            {"name": "dict", "settings": ["no_replace", "recurse_list"]}
        ]),
    );
    format!(
        "#cloud-config\n{}\n",
        serde_json::to_string_pretty(&doc).expect("json")
    )
}

/// The MIME type cloud-init expects for a user-data part, from its first line.
fn part_type(data: &str) -> &'static str {
    let first = data.lines().next().unwrap_or_default();
    if first.starts_with("#cloud-config") {
        "text/cloud-config"
    } else if first.starts_with("#!") {
        "text/x-shellscript"
    } else if first.starts_with("#cloud-boothook") {
        "text/cloud-boothook"
    } else if first.starts_with("#include") {
        "text/x-include-url"
    } else {
        "text/plain"
    }
}

/// The complete user data, raw bytes (maybe gzipped).
pub fn build(cfg: &OurConfig, user: Option<&str>) -> Vec<u8> {
    let ours = our_cloud_config(cfg);
    let text = match user {
        None => ours,
        Some(user) => {
            let boundary = format!("==docker-euca-{:016x}==", rand::random::<u64>());
            let mut out = format!(
                "Content-Type: multipart/mixed; boundary=\"{boundary}\"\nMIME-Version: 1.0\n\n"
            );
            // The user's part first, so that with `no_replace` their values win.
            for (name, body) in [("user-data", user), ("docker-euca.cfg", ours.as_str())] {
                out.push_str(&format!(
                    "--{boundary}\nContent-Type: {}; charset=\"utf-8\"\nMIME-Version: 1.0\n\
                     Content-Disposition: attachment; filename=\"{name}\"\n\n{body}\n",
                    part_type(body)
                ));
            }
            out.push_str(&format!("--{boundary}--\n"));
            out
        }
    };
    if text.len() > GZIP_ABOVE {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(text.as_bytes()).expect("write to memory");
        gz.finish().expect("gzip to memory")
    } else {
        text.into_bytes()
    }
}

pub fn to_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> OurConfig {
        OurConfig {
            authorized_keys: vec!["ssh-ed25519 AAAAC3 client".into()],
            host_key: Some((
                crate::secret::Secret::new("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n".into()),
                "ssh-ed25519 AAAAH host".into(),
            )),
            packages: vec![],
            disable_root: None,
        }
    }

    #[test]
    fn plain_cloud_config_carries_keys() {
        let text = String::from_utf8(build(&cfg(), None)).unwrap();
        assert!(text.starts_with("#cloud-config\n"));
        let doc: serde_json::Value =
            serde_json::from_str(&text["#cloud-config\n".len()..]).unwrap();
        assert_eq!(doc["ssh_authorized_keys"][0], "ssh-ed25519 AAAAC3 client");
        assert_eq!(
            doc["ssh_keys"]["ed25519_public"],
            "ssh-ed25519 AAAAH host\n"
        );
    }

    #[test]
    fn user_data_is_kept_as_its_own_part() {
        let user = "#cloud-config\nruncmd:\n  - echo hi\n";
        let text = String::from_utf8(build(&cfg(), Some(user))).unwrap();
        assert!(text.starts_with("Content-Type: multipart/mixed"));
        assert!(text.contains("runcmd:\n  - echo hi"));
        assert_eq!(text.matches("Content-Type: text/cloud-config").count(), 2);
        let script = String::from_utf8(build(&cfg(), Some("#!/bin/sh\necho hi\n"))).unwrap();
        assert!(script.contains("Content-Type: text/x-shellscript"));
    }

    #[test]
    fn large_user_data_is_gzipped() {
        let big = format!(
            "#cloud-config\nwrite_files:\n  - path: /x\n    content: {}\n",
            "a".repeat(20_000)
        );
        let bytes = build(&cfg(), Some(&big));
        assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
            .unwrap();
        assert!(text.contains(&"a".repeat(20_000)));
    }
}
