//! Cloud flags shared by every command that talks to the cloud.

use std::path::PathBuf;

use clap::Args;

use crate::credentials::CloudFlags;

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
}

impl From<CloudArgs> for CloudFlags {
    fn from(a: CloudArgs) -> Self {
        CloudFlags {
            endpoint: a.endpoint,
            region: a.region,
            profile: a.profile,
            ca_bundle: a.ca_bundle,
        }
    }
}
