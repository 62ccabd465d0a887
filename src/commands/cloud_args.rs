//! Cloud flags shared by every command that talks to the cloud.

use std::path::PathBuf;

use clap::Args;

use crate::{credentials::CloudFlags, dialect::DialectChoice};

#[derive(Debug, Clone, Args)]
pub struct CloudArgs {
    /// EC2 endpoint: http://HOST:8773/services/compute/, https://ec2.DOMAIN/ or REGION::URL
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Region (default: eucalyptus)
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Credential profile (see `docker euca profiles`)
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Extra CA certificates (PEM) to trust for the endpoint
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
    /// The cloud's EC2 dialect [default: the profile's, else auto: aws for an AWS region name
    /// or an amazonaws.com endpoint, eucalyptus otherwise]
    #[arg(long, value_name = "DIALECT")]
    pub dialect: Option<DialectArg>,
    /// Keys of the instance's role, from the instance metadata service (IMDSv2; never asked
    /// without this flag)
    #[arg(long)]
    pub use_instance_role: bool,
}

/// `--dialect`'s values (clap's side of [`DialectChoice`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DialectArg {
    Auto,
    Eucalyptus,
    Aws,
}

impl From<DialectArg> for DialectChoice {
    fn from(d: DialectArg) -> DialectChoice {
        match d {
            DialectArg::Auto => DialectChoice::Auto,
            DialectArg::Eucalyptus => DialectChoice::Eucalyptus,
            DialectArg::Aws => DialectChoice::Aws,
        }
    }
}

impl From<CloudArgs> for CloudFlags {
    fn from(a: CloudArgs) -> Self {
        CloudFlags {
            endpoint: a.endpoint,
            region: a.region,
            profile: a.profile,
            ca_bundle: a.ca_bundle,
            dialect: a.dialect.map(Into::into),
            use_instance_role: a.use_instance_role,
        }
    }
}

/// An IPv4 CIDR such as `203.0.113.0/24` (the `ipnet` crate's parser; the address is kept as
/// given, host bits and all, as the cloud takes it).
pub fn parse_cidr(s: &str) -> Result<String, String> {
    if !s.contains('/') {
        return Err(format!(
            "{s:?} is not a CIDR: use ADDRESS/PREFIX, e.g. 203.0.113.0/24"
        ));
    }
    s.parse::<ipnet::Ipv4Net>()
        .map(|net| net.to_string())
        .map_err(|_| {
            // Which half is wrong, for the message.
            let (ip, len) = s.split_once('/').unwrap_or((s, ""));
            if ip.parse::<std::net::Ipv4Addr>().is_err() {
                format!("{ip:?} in {s:?} is not an IPv4 address")
            } else {
                format!("prefix length {len:?} in {s:?} must be 0..=32")
            }
        })
}
