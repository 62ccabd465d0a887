//! `scp [-r] [NAME:]SRC [NAME:]DST` over the machine's pinned SSH session: files travel on the
//! channel (`cat`), directories as a tar stream.

use std::{path::Path, time::Duration};

use anyhow::{Context, bail};

use crate::{names::MachineName, report::Hinted, ssh::shell_quote, store::Store};

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(String),
    Remote(MachineName, String),
}

impl Location {
    /// `NAME:PATH` is remote when NAME is a valid machine name; anything else is local
    /// (`./a:b` forces a local path with a colon).
    pub fn parse(s: &str) -> Location {
        if let Some((name, path)) = s.split_once(':')
            && !name.contains('/')
            && let Ok(name) = MachineName::new(name)
        {
            return Location::Remote(
                name,
                if path.is_empty() {
                    ".".into()
                } else {
                    path.into()
                },
            );
        }
        Location::Local(s.to_string())
    }
}

pub async fn scp(
    docker_config: &Path,
    src: &str,
    dst: &str,
    recursive: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    let (name, upload, local, remote) = match (Location::parse(src), Location::parse(dst)) {
        (Location::Local(l), Location::Remote(n, r)) => (n, true, l, r),
        (Location::Remote(n, r), Location::Local(l)) => (n, false, l, r),
        (Location::Local(_), Location::Local(_)) => {
            bail!(Hinted::new(
                "neither side names a machine",
                "write the remote side as NAME:PATH"
            ))
        }
        (Location::Remote(..), Location::Remote(..)) => {
            bail!(Hinted::new(
                "both sides name a machine",
                "copy through a local file in two steps"
            ))
        }
    };
    let store = Store::new(docker_config);
    let record = store.load(&name)?;
    let session = super::machine::session(&store, &record, timeout).await?;
    let result = async {
        match (upload, recursive) {
            (true, false) => {
                let meta =
                    std::fs::metadata(&local).with_context(|| format!("cannot read {local}"))?;
                if meta.is_dir() {
                    bail!(Hinted::new(
                        format!("{local} is a directory"),
                        "add -r to copy directories"
                    ));
                }
                let bytes =
                    std::fs::read(&local).with_context(|| format!("cannot read {local}"))?;
                // Windows has no mode bits: a plain file's, as scp gives it there.
                let mode = crate::fsutil::mode_in(&meta).unwrap_or(0o644) & 0o777;
                // Copying into a directory keeps the file name, as scp does.
                let is_dir = session
                    .exec(&format!("test -d {}", shell_quote(&remote)))
                    .await?
                    .status
                    == 0;
                let target = if is_dir {
                    let file = Path::new(&local)
                        .file_name()
                        .context("no file name")?
                        .to_string_lossy()
                        .into_owned();
                    format!("{}/{file}", remote.trim_end_matches('/'))
                } else {
                    remote.clone()
                };
                session.upload_as(&target, &bytes, mode, false).await?;
            }
            (false, false) => {
                let bytes = session.download(&remote).await?;
                let target = if Path::new(&local).is_dir() {
                    Path::new(&local).join(Path::new(&remote).file_name().context("no file name")?)
                } else {
                    local.clone().into()
                };
                std::fs::write(&target, bytes)
                    .with_context(|| format!("cannot write {}", target.display()))?;
            }
            (true, true) => {
                let path = Path::new(&local);
                let parent = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let base = path.file_name().context("no directory name")?;
                let tar = std::process::Command::new("tar")
                    .arg("-C")
                    .arg(parent)
                    .arg("-cf")
                    .arg("-")
                    .arg(base)
                    .output()?;
                if !tar.status.success() {
                    bail!(
                        "tar of {local} failed: {}",
                        String::from_utf8_lossy(&tar.stderr).trim()
                    );
                }
                let cmd = format!("mkdir -p {r} && tar -C {r} -xf -", r = shell_quote(&remote));
                let out = session.exec_with_input(&cmd, Some(&tar.stdout)).await?;
                if out.status != 0 {
                    bail!("unpacking on {name} failed: {}", out.stderr_text().trim());
                }
            }
            (false, true) => {
                let p = Path::new(&remote);
                let parent = p
                    .parent()
                    .map(|p| p.to_string_lossy().into_owned())
                    .filter(|p| !p.is_empty())
                    .unwrap_or(".".into());
                let base = p
                    .file_name()
                    .context("no directory name")?
                    .to_string_lossy()
                    .into_owned();
                let out = session
                    .exec(&format!(
                        "tar -C {} -cf - {}",
                        shell_quote(&parent),
                        shell_quote(&base)
                    ))
                    .await?;
                if out.status != 0 {
                    bail!(
                        "packing {remote} on {name} failed: {}",
                        out.stderr_text().trim()
                    );
                }
                std::fs::create_dir_all(&local)?;
                let mut child = std::process::Command::new("tar")
                    .arg("-C")
                    .arg(&local)
                    .arg("-xf")
                    .arg("-")
                    .stdin(std::process::Stdio::piped())
                    .spawn()?;
                std::io::Write::write_all(child.stdin.as_mut().expect("piped"), &out.stdout)?;
                drop(child.stdin.take());
                if !child.wait()?.success() {
                    bail!("unpacking into {local} failed");
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    session.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            Location::parse("web1:/etc/hosts"),
            Location::Remote(MachineName::new("web1").unwrap(), "/etc/hosts".into())
        );
        assert_eq!(
            Location::parse("web1:"),
            Location::Remote(MachineName::new("web1").unwrap(), ".".into())
        );
        assert_eq!(Location::parse("./a:b"), Location::Local("./a:b".into()));
        assert_eq!(Location::parse("/tmp/x"), Location::Local("/tmp/x".into()));
    }
}
