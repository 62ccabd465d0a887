//! Read-only import of the files Eucalyptus users already have: euca2ools' `~/.euca/*.ini`
//! (`[region NAME] ec2-url`, `[user NAME] key-id/secret-key`, `[global] default-region`) and an
//! `eucarc` shell file (`export EC2_URL=…`, `EC2_ACCESS_KEY`, `EC2_SECRET_KEY`, …).

use std::{collections::BTreeMap, path::Path};

use crate::secret::Secret;

/// What such a file says about one cloud account; any part may be missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Imported {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret<String>>,
}

type Sections = BTreeMap<String, BTreeMap<String, String>>;

/// Parses INI text as euca2ools' Python `ConfigParser` does (rust-ini): `[section]` headers,
/// `key = value` or `key: value`, `#`/`;` comment lines, indented continuation lines; no
/// quotes or escapes taken out of values. Section names are kept with single spaces
/// (`[region  x]` is `region x`).
fn parse_ini(path: &Path, text: &str, into: &mut Sections) -> std::io::Result<()> {
    let options = ini::ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        enabled_indented_mutiline_value: true,
        ..Default::default()
    };
    let parsed = ini::Ini::load_from_str_opt(text, options).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    for (section, properties) in parsed.iter() {
        let name = section
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let entry = into.entry(name).or_default();
        for (k, v) in properties.iter() {
            entry.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    Ok(())
}

/// Reads every `*.ini` in `dir` (or one file) and picks the region asked for, else
/// `[global] default-region`, else the only region; its `user`, else the only user.
pub fn from_ini(path: &Path, region: Option<&str>) -> std::io::Result<Option<Imported>> {
    let mut sections = Sections::new();
    if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "ini"))
            .collect();
        files.sort();
        for f in files {
            parse_ini(&f, &std::fs::read_to_string(&f)?, &mut sections)?;
        }
    } else if path.exists() {
        parse_ini(path, &std::fs::read_to_string(path)?, &mut sections)?;
    }
    Ok(pick(&sections, region))
}

fn pick(sections: &Sections, region: Option<&str>) -> Option<Imported> {
    let named = |kind: &str| -> Vec<(&str, &BTreeMap<String, String>)> {
        sections
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(kind).map(|n| (n.trim(), v)))
            .collect()
    };
    let regions = named("region ");
    let users = named("user ");
    let default_region = sections
        .get("global")
        .and_then(|g| g.get("default-region"))
        .map(String::as_str);
    let wanted = region.or(default_region);
    let region = match wanted {
        Some(w) => regions.iter().find(|(n, _)| *n == w).copied(),
        None if regions.len() == 1 => Some(regions[0]),
        None => None,
    };
    let user_name = region.and_then(|(_, r)| r.get("user")).map(String::as_str);
    let user = match user_name {
        Some(u) => users.iter().find(|(n, _)| *n == u).copied(),
        None if users.len() == 1 => Some(users[0]),
        None => None,
    };
    if region.is_none() && user.is_none() {
        return None;
    }
    Some(Imported {
        endpoint: region.and_then(|(_, r)| r.get("ec2-url").cloned()),
        region: region.map(|(n, _)| n.to_string()),
        access_key_id: user.and_then(|(_, u)| u.get("key-id").cloned()),
        secret_access_key: user
            .and_then(|(_, u)| u.get("secret-key").cloned())
            .map(Secret::new),
    })
}

/// Parses an `eucarc`: simple `[export] NAME=VALUE` lines; computed values (`$(…)`) are skipped.
pub fn from_eucarc(text: &str) -> Imported {
    let mut vars = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.starts_with('#')
            || k.contains(char::is_whitespace)
            || v.contains("$(")
            || v.contains('`')
        {
            continue;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
            .unwrap_or(v);
        vars.insert(k.to_string(), v.to_string());
    }
    let get = |names: &[&str]| names.iter().find_map(|n| vars.get(*n).cloned());
    let (region, endpoint) = match get(&["EC2_URL", "AWS_ENDPOINT_URL_EC2"]) {
        Some(url) => match super::split_region_url(&url) {
            (Some(r), u) => (Some(r), Some(u)),
            (None, u) => (None, Some(u)),
        },
        None => (None, None),
    };
    Imported {
        endpoint,
        region: region.or_else(|| get(&["EUCA_DEFAULT_REGION", "AWS_DEFAULT_REGION"])),
        access_key_id: get(&["EC2_ACCESS_KEY", "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID"]),
        secret_access_key: get(&["EC2_SECRET_KEY", "AWS_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"])
            .map(Secret::new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_picks_default_region_and_its_user() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("euca2ools.ini"),
            "[global]\ndefault-region = cloud1\n\n[region cloud1]\nec2-url = http://c1:8773/services/compute/\nuser = alice\n\n\
             [region cloud2]\nec2-url = https://ec2.c2.example/\n\n[user alice]\nkey-id = AKIA1\nsecret-key = s3cr3t\n\n[user bob]\nkey-id = AKIA2\n",
        )
        .unwrap();
        let got = from_ini(dir.path(), None).unwrap().unwrap();
        assert_eq!(
            got.endpoint.as_deref(),
            Some("http://c1:8773/services/compute/")
        );
        assert_eq!(got.region.as_deref(), Some("cloud1"));
        assert_eq!(got.access_key_id.as_deref(), Some("AKIA1"));
        assert_eq!(got.secret_access_key.unwrap().expose(), "s3cr3t");
        let c2 = from_ini(dir.path(), Some("cloud2")).unwrap().unwrap();
        assert_eq!(c2.endpoint.as_deref(), Some("https://ec2.c2.example/"));
        assert_eq!(c2.access_key_id, None, "two users and none named: no guess");
        assert!(
            from_ini(&dir.path().join("missing"), None)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn ini_reads_what_configparser_reads() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.ini");
        // `key: value`, comments, quotes and backslashes kept as they are.
        std::fs::write(
            &file,
            "; euca2ools\n[region  east]\nec2-url: https://ec2.east.example/\nuser = carol\n\n\
             # carol's keys\n[user carol]\nkey-id : AKIA3\nsecret-key = a\\b\"c'\n",
        )
        .unwrap();
        let got = from_ini(&file, Some("east")).unwrap().unwrap();
        assert_eq!(got.endpoint.as_deref(), Some("https://ec2.east.example/"));
        assert_eq!(got.access_key_id.as_deref(), Some("AKIA3"));
        assert_eq!(got.secret_access_key.unwrap().expose(), "a\\b\"c'");
        // A line that is neither: the file is refused, named.
        std::fs::write(&file, "[user x]\nkey-id AKIA\n").unwrap();
        let err = from_ini(&file, None).unwrap_err();
        assert!(err.to_string().contains("x.ini"), "{err}");
    }

    #[test]
    fn eucarc_exports_are_read_and_computed_values_skipped() {
        let rc = "EUCA_KEY_DIR=$(cd $(dirname ${BASH_SOURCE:-$0}); pwd -P)\n\
                  export EC2_URL=http://10.1.1.1:8773/services/compute\n\
                  export EC2_ACCESS_KEY='AKIAX'\nexport EC2_SECRET_KEY=\"sx\"\n# export EC2_USER_ID=1\n";
        let got = from_eucarc(rc);
        assert_eq!(
            got.endpoint.as_deref(),
            Some("http://10.1.1.1:8773/services/compute")
        );
        assert_eq!(got.access_key_id.as_deref(), Some("AKIAX"));
        assert_eq!(got.secret_access_key.unwrap().expose(), "sx");
        let regional = from_eucarc("export EC2_URL=east::https://ec2.example/\n");
        assert_eq!(regional.region.as_deref(), Some("east"));
        assert_eq!(regional.endpoint.as_deref(), Some("https://ec2.example/"));
    }
}
