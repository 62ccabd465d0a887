//! Validated names. A machine name is also a docker context name, so it follows docker's rule.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize};

/// The docker CLI's context name rule, which machine names share.
pub const NAME_RULE: &str = "^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$";

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
             `_`, `.`, `+`, `-`) and may not be `default`"
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
    fn deserialize_checks_the_rule() {
        assert!(serde_json::from_str::<MachineName>("\"web1\"").is_ok());
        assert!(serde_json::from_str::<MachineName>("\"../etc\"").is_err());
    }
}
