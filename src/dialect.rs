//! Which EC2 dialect a cloud speaks: Eucalyptus 4.4's, whose strict query binding refuses any
//! parameter its message classes lack (so only what the user asked for may be sent), or AWS's
//! (tags at launch, IMDSv2, typed and encrypted volumes, spot). `auto` decides from the region
//! name and the endpoint, never by asking the cloud. Resolved with the credentials
//! ([`crate::credentials::CloudTarget`]), used by the cloud layer to build requests.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The dialect requests are built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Eucalyptus,
    Aws,
}

/// What the user chose (`--dialect`), kept in the profile and the record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DialectChoice {
    /// AWS for an AWS region name or an amazonaws.com endpoint, Eucalyptus otherwise.
    #[default]
    Auto,
    Eucalyptus,
    Aws,
}

impl DialectChoice {
    pub fn is_auto(&self) -> bool {
        *self == DialectChoice::Auto
    }
}

impl From<Dialect> for DialectChoice {
    fn from(d: Dialect) -> DialectChoice {
        match d {
            Dialect::Eucalyptus => DialectChoice::Eucalyptus,
            Dialect::Aws => DialectChoice::Aws,
        }
    }
}

/// AWS's published commercial, GovCloud and China region names. An endpoint is often
/// overridden (a proxy, a VPC endpoint, LocalStack), the region name rarely.
const AWS_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

impl DialectChoice {
    /// The dialect for a cloud of `region` at `endpoint`.
    pub fn resolve(self, region: &str, endpoint: &str) -> Dialect {
        match self {
            DialectChoice::Eucalyptus => Dialect::Eucalyptus,
            DialectChoice::Aws => Dialect::Aws,
            DialectChoice::Auto if is_aws_region(region) || is_aws_endpoint(endpoint) => {
                Dialect::Aws
            }
            DialectChoice::Auto => Dialect::Eucalyptus,
        }
    }
}

pub fn is_aws_region(region: &str) -> bool {
    AWS_REGIONS.contains(&region.trim().to_ascii_lowercase().as_str())
}

/// `https://ec2.REGION.amazonaws.com[.cn]/` and the like; a `/services/compute` path is
/// Eucalyptus's whatever the host.
pub fn is_aws_endpoint(endpoint: &str) -> bool {
    let Ok(uri) = endpoint.trim().parse::<hyper::Uri>() else {
        return false;
    };
    if uri.scheme().is_none()
        || uri
            .path()
            .trim_end_matches('/')
            .ends_with("/services/compute")
    {
        return false;
    }
    uri.host().is_some_and(|host| {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        host == "amazonaws.com"
            || host.ends_with(".amazonaws.com")
            || host.ends_with(".amazonaws.com.cn")
    })
}

impl fmt::Display for DialectChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialectChoice::Auto => f.write_str("auto"),
            DialectChoice::Eucalyptus => Dialect::Eucalyptus.fmt(f),
            DialectChoice::Aws => Dialect::Aws.fmt(f),
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Eucalyptus => "eucalyptus",
            Dialect::Aws => "aws",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_aws_by_region_name_or_endpoint_and_eucalyptus_otherwise() {
        let auto = DialectChoice::Auto;
        for (region, endpoint, want) in [
            (
                "us-east-1",
                "https://ec2.us-east-1.amazonaws.com/",
                Dialect::Aws,
            ),
            // An overridden endpoint: the region name decides.
            ("eu-west-2", "http://127.0.0.1:5000/", Dialect::Aws),
            ("EU-WEST-2", "http://proxy.internal/", Dialect::Aws),
            (
                "cn-north-1",
                "https://ec2.cn-north-1.amazonaws.com.cn",
                Dialect::Aws,
            ),
            // A custom region name at an amazonaws.com endpoint.
            (
                "custom",
                "https://ec2.us-west-2.amazonaws.com",
                Dialect::Aws,
            ),
            (
                "eucalyptus",
                "http://10.0.0.1:8773/services/compute/",
                Dialect::Eucalyptus,
            ),
            (
                "eucalyptus",
                "https://ec2.cloud.example/",
                Dialect::Eucalyptus,
            ),
            (
                "region-one",
                "https://compute.cloud.example:8773/",
                Dialect::Eucalyptus,
            ),
            // Eucalyptus's path wins over a host name that merely looks like AWS's.
            (
                "lab",
                "https://x.amazonaws.com/services/compute",
                Dialect::Eucalyptus,
            ),
            (
                "lab",
                "https://amazonaws.com.evil.example/",
                Dialect::Eucalyptus,
            ),
            ("us-east-1x", "not a url", Dialect::Eucalyptus),
        ] {
            assert_eq!(auto.resolve(region, endpoint), want, "{region} {endpoint}");
        }
    }

    #[test]
    fn an_explicit_dialect_is_kept_whatever_the_cloud_looks_like() {
        let aws_looking = ("us-east-1", "https://ec2.us-east-1.amazonaws.com/");
        let euca_looking = ("eucalyptus", "http://10.0.0.1:8773/services/compute/");
        assert_eq!(
            DialectChoice::Eucalyptus.resolve(aws_looking.0, aws_looking.1),
            Dialect::Eucalyptus
        );
        assert_eq!(
            DialectChoice::Aws.resolve(euca_looking.0, euca_looking.1),
            Dialect::Aws
        );
    }
}
