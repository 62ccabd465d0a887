//! The cloud-init user data a create sends: our cloud-config (the client's authorised key and the
//! pinned host key), combined with the user's own `--user-data` as a MIME multipart so cloud-init
//! merges the two itself (our list items go first, the user's values are kept). Gzipped over 16 KiB.
//! [`check_format`] and [`check_size`] say before anything is made whether the cloud and
//! cloud-init can take it.

use std::io::Write;

use base64::Engine;

/// Above this size the user data goes gzipped (cloud-init detects gzip itself).
pub const GZIP_ABOVE: usize = 16 * 1024;

/// EC2's limit on one launch's user data: 16 KiB of the raw bytes (before base64).
pub const MAX_USER_DATA: usize = 16384;

/// The first lines cloud-init knows (its `INCLUSION_TYPES_MAP`, cloud-init 22.4) and the MIME
/// type of each, longest first: cloud-init takes the longest match, so `#cloud-config-archive`
/// is not `#cloud-config`.
const FORMATS: &[(&str, &str)] = &[
    ("#cloud-config-archive", "text/cloud-config-archive"),
    ("#cloud-config-jsonp", "text/cloud-config-jsonp"),
    ("## template: jinja", "text/jinja2"),
    ("#cloud-boothook", "text/cloud-boothook"),
    ("#include-once", "text/x-include-once-url"),
    ("#part-handler", "text/part-handler"),
    ("#cloud-config", "text/cloud-config"),
    ("#include", "text/x-include-url"),
    ("#!", "text/x-shellscript"),
];

/// Why user data cannot go to the instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserDataError {
    #[error("is not text (UTF-8)")]
    NotText,
    #[error("is empty")]
    Empty,
    #[error("starts with {first_line:?}, which is no user data format cloud-init knows")]
    UnknownFormat { first_line: String },
    #[error(
        "the user data to send is {size} bytes{}, over EC2's limit of {MAX_USER_DATA}",
        if *gzipped { " even gzipped" } else { "" }
    )]
    TooBig { size: usize, gzipped: bool },
}

impl UserDataError {
    pub fn hint(&self) -> String {
        match self {
            UserDataError::NotText => {
                "give the user data as text (docker-euca gzips it itself when it is large)".into()
            }
            UserDataError::Empty => {
                "leave out --user-data, or start the file with #cloud-config".into()
            }
            UserDataError::UnknownFormat { .. } => format!(
                "start the file with one of {}, or make it a MIME multipart (MIME-Version: 1.0, Content-Type: multipart/mixed)",
                FORMATS
                    .iter()
                    .rev()
                    .map(|(first, _)| *first)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            UserDataError::TooBig { .. } => {
                "shorten --user-data, or let it fetch the rest (#include URL, or a script that downloads it)".into()
            }
        }
    }
}

/// The MIME type of a known first line, matched as cloud-init does (leading whitespace
/// skipped, case ignored).
fn known_format(text: &str) -> Option<&'static str> {
    let head: String = text
        .trim_start()
        .chars()
        .take(32)
        .collect::<String>()
        .to_ascii_lowercase();
    FORMATS
        .iter()
        .find(|(first, _)| head.starts_with(*first))
        .map(|(_, mime)| *mime)
}

/// A MIME message (a multipart, usually): it starts with a header and names its MIME version
/// early, which is how cloud-init tells one (`mime-version:` in the first 4096 bytes).
fn is_mime(text: &str) -> bool {
    let head = text.trim_start().as_bytes();
    let head = head[..head.len().min(4096)].to_ascii_lowercase();
    let starts_with_a_header =
        head.starts_with(b"content-type:") || head.starts_with(b"mime-version:");
    starts_with_a_header && head.windows(13).any(|w| w == b"mime-version:")
}

/// The user's own `--user-data`, checked before anything is made: text, in a format cloud-init
/// knows (one of its first lines, or a MIME message). Returns it as text.
pub fn check_format(data: Vec<u8>) -> Result<String, UserDataError> {
    let text = String::from_utf8(data).map_err(|_| UserDataError::NotText)?;
    if text.trim().is_empty() {
        return Err(UserDataError::Empty);
    }
    if known_format(&text).is_none() && !is_mime(&text) {
        let first_line: String = text
            .trim_start()
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(40)
            .collect();
        return Err(UserDataError::UnknownFormat { first_line });
    }
    Ok(text)
}

/// The whole user data a launch sends (raw bytes, maybe gzipped) fits EC2's limit.
pub fn check_size(payload: &[u8]) -> Result<(), UserDataError> {
    if payload.len() <= MAX_USER_DATA {
        return Ok(());
    }
    Err(UserDataError::TooBig {
        size: payload.len(),
        gzipped: payload.starts_with(&[0x1f, 0x8b]),
    })
}

/// What our part of the cloud-config says.
#[derive(Debug, Clone, Default)]
pub struct OurConfig {
    pub authorized_keys: Vec<String>,
    /// (private OpenSSH, public OpenSSH) of the ed25519 host key.
    pub host_key: Option<(crate::secret::Secret<String>, String)>,
    /// Install the engine while the instance boots, if the image lacks it ([`ENGINE_BOOT_SCRIPT`]).
    pub install_engine: bool,
    /// `Some(false)` lets root log in (for `--ssh-user root`); images default to refusing it.
    pub disable_root: Option<bool>,
}

/// Installs the engine at boot only when the image lacks it. cloud-init's `packages:` would run
/// the package manager's update first whatever the image holds, and on a cloud without a mirror
/// that waits until every connection times out (minutes). The lines it prints are in the
/// cloud-init output (`docker euca logs NAME`).
pub const ENGINE_BOOT_SCRIPT: &str = r#"PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin:/usr/local/bin"
if command -v dockerd >/dev/null 2>&1; then
  echo "docker-euca: engine present ($(dockerd --version 2>/dev/null)), no package install"
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  echo "docker-euca: installing the engine with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io
elif command -v dnf >/dev/null 2>&1; then
  echo "docker-euca: installing the engine with dnf"
  dnf install -y docker || dnf install -y moby-engine
elif command -v yum >/dev/null 2>&1; then
  echo "docker-euca: installing the engine with yum"
  yum install -y docker
elif command -v zypper >/dev/null 2>&1; then
  echo "docker-euca: installing the engine with zypper"
  zypper --non-interactive install docker
elif command -v apk >/dev/null 2>&1; then
  echo "docker-euca: installing the engine with apk"
  apk add --no-cache docker
else
  echo "docker-euca: no known package manager; provisioning tries over SSH"
fi
"#;

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
    if cfg.install_engine {
        doc.insert(
            "runcmd".into(),
            serde_json::json!([["sh", "-c", ENGINE_BOOT_SCRIPT]]),
        );
    }
    doc.insert(
        "merge_how".into(),
        serde_json::json!([
            // Ours first: the engine-install step runs before the user's runcmd (which may
            // use docker), and a failing user command stays the last, the one cloud-init reports.
            {"name": "list", "settings": ["prepend"]},
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
    known_format(data).unwrap_or("text/plain")
}

/// The complete user data, raw bytes (maybe gzipped).
pub fn build(cfg: &OurConfig, user: Option<&str>) -> Vec<u8> {
    let ours = our_cloud_config(cfg);
    let text = match user {
        None => ours,
        // The user's part first, so that with `no_replace` their values win.
        Some(user) => multipart(&[
            ("user-data", user, None),
            ("docker-euca.cfg", ours.as_str(), None),
        ]),
    };
    gzip_if_large(text)
}

/// The user data of one launch of several instances: the user's part for all, and for each
/// instance our part with its own keys under a `Launch-Index` header, which cloud-init's
/// launch-index filter keeps only on the instance of that `AmiLaunchIndex` (the EC2
/// datasource's `ami-launch-index`). One instance: exactly [`build`].
pub fn build_fleet(cfgs: &[OurConfig], user: Option<&str>) -> Vec<u8> {
    if let [one] = cfgs {
        return build(one, user);
    }
    let ours: Vec<(String, String)> = cfgs
        .iter()
        .enumerate()
        .map(|(n, cfg)| (format!("docker-euca-{n}.cfg"), our_cloud_config(cfg)))
        .collect();
    let mut parts: Vec<(&str, &str, Option<usize>)> = Vec::new();
    if let Some(user) = user {
        parts.push(("user-data", user, None));
    }
    for (n, (name, body)) in ours.iter().enumerate() {
        parts.push((name, body, Some(n)));
    }
    gzip_if_large(multipart(&parts))
}

/// A MIME multipart of (file name, body, launch index) parts.
fn multipart(parts: &[(&str, &str, Option<usize>)]) -> String {
    let boundary = format!("==docker-euca-{:016x}==", rand::random::<u64>());
    let mut out =
        format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\nMIME-Version: 1.0\n\n");
    for (name, body, index) in parts {
        if is_mime(body) {
            // A MIME message of the user's own is a part as it is (its headers are the
            // part's): cloud-init walks nested multiparts.
            out.push_str(&format!("--{boundary}\n{}\n", body.trim_start()));
            continue;
        }
        let index = index
            .map(|n| format!("Launch-Index: {n}\n"))
            .unwrap_or_default();
        out.push_str(&format!(
            "--{boundary}\nContent-Type: {}; charset=\"utf-8\"\nMIME-Version: 1.0\n{index}\
             Content-Disposition: attachment; filename=\"{name}\"\n\n{body}\n",
            part_type(body)
        ));
    }
    out.push_str(&format!("--{boundary}--\n"));
    out
}

fn gzip_if_large(text: String) -> Vec<u8> {
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

    #[test]
    fn a_fleet_gives_each_launch_index_its_own_part_and_the_users_to_all() {
        let member = |n: usize| OurConfig {
            authorized_keys: vec![format!("ssh-ed25519 AAAA{n} client")],
            ..cfg()
        };
        let text = String::from_utf8(build_fleet(
            &[member(0), member(1), member(2)],
            Some("#cloud-config\nruncmd: [[echo, hi]]\n"),
        ))
        .unwrap();
        let parts: Vec<&str> = text.split("--==docker-euca-").skip(1).collect();
        assert_eq!(
            parts.len(),
            5,
            "user, 3 members, the closing boundary: {text}"
        );
        assert!(parts[0].contains("echo, hi") && !parts[0].contains("Launch-Index"));
        for n in 0..3 {
            let part = parts[n + 1];
            assert!(part.contains(&format!("Launch-Index: {n}\n")), "{part}");
            assert!(part.contains(&format!("AAAA{n} client")), "{part}");
            assert!(
                !part.contains(&format!("AAAA{} client", (n + 1) % 3)),
                "{part}"
            );
        }
        assert_eq!(
            build_fleet(&[member(0)], None).len(),
            build(&member(0), None).len()
        );
    }

    #[test]
    fn the_engine_is_installed_at_boot_only_by_a_script_that_checks_first() {
        let mut c = cfg();
        c.install_engine = true;
        let text = String::from_utf8(build(&c, None)).unwrap();
        // No `packages:`: cloud-init would run the package manager's update whatever the
        // image holds.
        assert!(!text.contains("\"packages\""), "{text}");
        assert!(text.contains("\"runcmd\""), "{text}");
        let check = ENGINE_BOOT_SCRIPT.find("command -v dockerd").unwrap();
        let update = ENGINE_BOOT_SCRIPT.find("apt-get update").unwrap();
        assert!(check < update);
        assert!(
            !String::from_utf8(build(&cfg(), None))
                .unwrap()
                .contains("runcmd")
        );
    }

    fn cfg() -> OurConfig {
        OurConfig {
            authorized_keys: vec!["ssh-ed25519 AAAAC3 client".into()],
            host_key: Some((
                crate::secret::Secret::new("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n".into()),
                "ssh-ed25519 AAAAH host".into(),
            )),
            install_engine: false,
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

    /// Bytes that do not compress, the same every run (xorshift).
    fn noise(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn every_format_cloud_init_knows_is_accepted() {
        for ok in [
            "#cloud-config\nruncmd: []\n",
            "  #Cloud-Config\n{}\n",
            "#!/bin/sh\necho hi\n",
            "#include\nhttp://192.0.2.1/more\n",
            "#include-once\nhttp://192.0.2.1/more\n",
            "#cloud-boothook\n#!/bin/sh\n",
            "#part-handler\ndef list_types(): pass\n",
            "#cloud-config-archive\n- type: text/cloud-config\n",
            "#cloud-config-jsonp\n[]\n",
            "## template: jinja\n#cloud-config\n",
            "Content-Type: multipart/mixed; boundary=\"b\"\nMIME-Version: 1.0\n\n--b\nContent-Type: text/x-shellscript\n\n#!/bin/sh\n--b--\n",
            "MIME-Version: 1.0\nContent-Type: text/cloud-config\n\nruncmd: []\n",
        ] {
            assert_eq!(check_format(ok.into()).as_deref(), Ok(ok), "{ok:?}");
        }
    }

    #[test]
    fn anything_else_is_refused_with_the_accepted_first_lines() {
        let err = check_format(b"runcmd:\n  - echo hi\n".to_vec()).unwrap_err();
        assert_eq!(
            err,
            UserDataError::UnknownFormat {
                first_line: "runcmd:".into()
            }
        );
        let hint = err.hint();
        for first in [
            "#cloud-config",
            "#!",
            "#include",
            "#cloud-boothook",
            "MIME-Version",
        ] {
            assert!(hint.contains(first), "{hint}");
        }
        assert_eq!(
            check_format(b"hello\n".to_vec()),
            Err(UserDataError::UnknownFormat {
                first_line: "hello".into()
            })
        );
        assert_eq!(check_format(b"\n \n".to_vec()), Err(UserDataError::Empty));
        assert_eq!(
            check_format(vec![0x1f, 0x8b, 0x08, 0x00, 0xff]),
            Err(UserDataError::NotText)
        );
    }

    #[test]
    fn part_types_follow_cloud_inits_longest_match() {
        assert_eq!(
            part_type("#cloud-config-archive\n- x\n"),
            "text/cloud-config-archive"
        );
        assert_eq!(
            part_type("#include-once\nhttp://x/\n"),
            "text/x-include-once-url"
        );
        assert_eq!(part_type("#cloud-config\n"), "text/cloud-config");
        assert_eq!(part_type("plain\n"), "text/plain");
    }

    #[test]
    fn a_users_multipart_is_a_part_as_it_is() {
        let user = "Content-Type: multipart/mixed; boundary=\"inner\"\nMIME-Version: 1.0\n\n--inner\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho hi\n--inner--\n";
        let text = String::from_utf8(build(&cfg(), Some(user))).unwrap();
        let outer = text.lines().next().unwrap();
        assert!(
            outer.starts_with("Content-Type: multipart/mixed; boundary=\"==docker-euca-"),
            "{outer}"
        );
        assert!(text.contains(&format!("\n{user}")), "{text}");
        assert!(!text.contains("text/plain"), "{text}");
    }

    #[test]
    fn the_limit_is_on_the_raw_bytes_and_says_when_gzip_did_not_help() {
        assert_eq!(check_size(&b"a".repeat(MAX_USER_DATA)), Ok(()));
        let err = check_size(&b"a".repeat(MAX_USER_DATA + 1)).unwrap_err();
        assert_eq!(
            err,
            UserDataError::TooBig {
                size: MAX_USER_DATA + 1,
                gzipped: false
            }
        );
        // Random text after a #cloud-config line: gzip cannot bring 40 KB under the limit.
        let big = format!(
            "#cloud-config\nwrite_files:\n  - path: /x\n    content: {}\n",
            to_base64(&noise(30_000))
        );
        let big = check_format(big.into_bytes()).unwrap();
        let err = check_size(&build(&cfg(), Some(&big))).unwrap_err();
        assert!(
            matches!(err, UserDataError::TooBig { gzipped: true, .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("even gzipped") && message.contains("16384"),
            "{message}"
        );
        // As much text that repeats itself gzips well under it.
        let small = format!(
            "#cloud-config\nwrite_files:\n  - path: /x\n    content: {}\n",
            "a".repeat(40_000)
        );
        assert_eq!(check_size(&build(&cfg(), Some(&small))), Ok(()));
    }
}
