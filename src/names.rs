//! Validated names. A machine name is also a docker context name, so it follows docker's rule.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize};

/// The docker CLI's context name rule, which machine names share.
pub const NAME_RULE: &str = "^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$";

/// The longest machine name: every name derived from it stays within the cloud's limits, the
/// tightest being RunInstances' client token (64 characters: `docker-euca-NAME-` plus 16 hex
/// digits), then security group and key pair names (`docker-euca-NAME-` plus 8 hex digits).
pub const MAX_NAME_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid machine name {name:?}: {reason}")]
pub struct InvalidName {
    pub name: String,
    pub reason: String,
}

impl InvalidName {
    pub fn hint(&self) -> String {
        format!(
            "names must match {NAME_RULE} (a letter or digit, then at least one of letters, digits, \
             `_`, `.`, `+`, `-`), be at most {MAX_NAME_LEN} characters long and not be `default`"
        )
    }
}

/// The name of a docker-euca machine (and, by default, of its docker context).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MachineName(String);

impl MachineName {
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidName> {
        let name = name.into();
        let fail = |reason: &str| InvalidName {
            name: name.clone(),
            reason: reason.to_string(),
        };
        let mut chars = name.chars();
        match chars.next() {
            None => return Err(fail("it is empty")),
            Some(c) if !c.is_ascii_alphanumeric() => {
                return Err(fail("it must start with a letter or a digit"));
            }
            Some(_) => {}
        }
        if name.len() < 2 {
            return Err(fail("it must be at least two characters long"));
        }

        if let Some(bad) = chars.find(|c| !(c.is_ascii_alphanumeric() || "_.+-".contains(*c))) {
            return Err(fail(&format!("{bad:?} is not allowed")));
        }
        if name == "default" {
            return Err(fail("`default` is docker's own context"));
        }
        Ok(MachineName(name))
    }

    /// A name for a machine about to be made: docker's rule plus [`MAX_NAME_LEN`]. (Names
    /// read back from records or typed for existing machines are not held to the length.)
    pub fn for_new_machine(name: impl Into<String>) -> Result<Self, InvalidName> {
        let name = Self::new(name)?;
        if name.0.len() > MAX_NAME_LEN {
            return Err(InvalidName {
                reason: format!(
                    "it is {} characters long; a new machine's name may have at most {MAX_NAME_LEN} \
                     (the names derived from it must fit the cloud's limits)",
                    name.0.len()
                ),
                name: name.0,
            });
        }
        Ok(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MachineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for MachineName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for MachineName {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MachineName::new(s)
    }
}

impl<'de> Deserialize<'de> for MachineName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        MachineName::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_docker_context_names() {
        for ok in ["web1", "a1", "Web.prod+blue_2-x", "0web"] {
            assert!(MachineName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_what_docker_refuses() {
        for bad in [
            "", "a", "-web", ".web", "_web", "web/1", "web 1", "wéb", "default", "web:1",
        ] {
            let err = MachineName::new(bad).unwrap_err();
            assert_eq!(err.name, bad);
            assert!(err.hint().contains(NAME_RULE));
        }
    }

    #[test]
    fn new_machines_have_a_length_limit_that_fits_every_derived_name() {
        let longest = "a".repeat(MAX_NAME_LEN);
        assert!(MachineName::for_new_machine(longest.as_str()).is_ok());
        let err = MachineName::for_new_machine(format!("{longest}b")).unwrap_err();
        assert!(err.reason.contains("at most 32"), "{err}");
        // Existing machines with longer names stay usable.
        assert!(MachineName::new(format!("{longest}b")).is_ok());
        // The tightest limit: RunInstances' client token (64).
        assert!(format!("docker-euca-{longest}-{:016x}", u64::MAX).len() <= 64);
    }

    #[test]
    fn deserialize_checks_the_rule() {
        assert!(serde_json::from_str::<MachineName>("\"web1\"").is_ok());
        assert!(serde_json::from_str::<MachineName>("\"../etc\"").is_err());
    }
}
