//! `create`'s AWS-dialect options: refused in one line, before anything is made, on a cloud of
//! the Eucalyptus dialect (its binding would fail the launch, and the user meant something
//! this cloud cannot do); on AWS, the launch's safe defaults with the user's changes.

use crate::{
    cloud::{AwsLaunch, InstanceMetadata, MACHINE_TAG, Ownership, RootVolume, STORE_TAG, Spot},
    credentials::CloudTarget,
    dialect::Dialect,
    report::Hinted,
};

/// The flags as given; `None` takes the AWS dialect's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsOptions {
    /// `--metadata-http-tokens required|optional` (default required: IMDSv2 only).
    pub metadata_tokens_required: Option<bool>,
    /// `--metadata-hop-limit N` (default 1).
    pub metadata_hop_limit: Option<i32>,
    /// `--root-volume-type` (default gp3).
    pub root_volume_type: Option<String>,
    pub root_iops: Option<i32>,
    pub root_throughput: Option<i32>,
    /// `--root-encrypted=false` opts out (default true).
    pub root_encrypted: Option<bool>,
    pub kms_key_id: Option<String>,
    /// `--spot`: a one-time spot instance.
    pub spot: bool,
    /// `--spot-max-price USD`: the most to pay per hour.
    pub spot_max_price: Option<String>,
    /// `--spot-fallback on-demand`: no spot capacity, then an on-demand instance.
    pub spot_fallback_on_demand: bool,
    /// `--associate-public-ip` (true) / `--no-public-ip` (false); `None`: as the subnet says.
    pub public_ip: Option<bool>,
}

impl AwsOptions {
    /// The flags that were given, as the user typed them.
    fn given(&self) -> Vec<&'static str> {
        [
            (
                self.metadata_tokens_required.is_some(),
                "--metadata-http-tokens",
            ),
            (self.metadata_hop_limit.is_some(), "--metadata-hop-limit"),
            (self.root_volume_type.is_some(), "--root-volume-type"),
            (self.root_iops.is_some(), "--root-iops"),
            (self.root_throughput.is_some(), "--root-throughput"),
            (self.root_encrypted.is_some(), "--root-encrypted"),
            (self.kms_key_id.is_some(), "--kms-key-id"),
            (self.spot, "--spot"),
            (self.spot_max_price.is_some(), "--spot-max-price"),
            (self.spot_fallback_on_demand, "--spot-fallback"),
            (self.public_ip == Some(true), "--associate-public-ip"),
            (self.public_ip == Some(false), "--no-public-ip"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect()
    }
}

/// Refuses AWS-only flags for a cloud of the Eucalyptus dialect, and contradictions.
pub fn check(opts: &AwsOptions, target: &CloudTarget) -> Result<(), Hinted> {
    let given = opts.given();
    if target.dialect == Dialect::Eucalyptus && !given.is_empty() {
        return Err(Hinted::new(
            format!(
                "{} {} only in the AWS dialect; {} (region {}) is a Eucalyptus cloud",
                given.join(", "),
                if given.len() == 1 { "works" } else { "work" },
                target.endpoint,
                target.region
            ),
            "leave them out, or pass --dialect aws if this cloud speaks AWS's EC2",
        ));
    }
    if opts.kms_key_id.is_some() && opts.root_encrypted == Some(false) {
        return Err(Hinted::new(
            "--kms-key-id encrypts the root volume, and --root-encrypted=false says not to",
            "leave out one of the two",
        ));
    }
    Ok(())
}

/// The AWS launch's options (`None` in the Eucalyptus dialect). Every instance of the launch
/// carries the store's tag from its first moment; a single machine's launch carries its name
/// tags too (a fleet's instances get theirs right after, one set of tags per launch).
pub fn launch(
    opts: &AwsOptions,
    dialect: Dialect,
    group_owner: &Ownership,
    single: Option<&Ownership>,
) -> Option<AwsLaunch> {
    if dialect != Dialect::Aws {
        return None;
    }
    let mut tags = vec![(STORE_TAG.to_string(), group_owner.store.clone())];
    if let Some(owner) = single {
        tags.push(("Name".into(), owner.machine.clone()));
        tags.push((MACHINE_TAG.into(), owner.machine.clone()));
    }
    let defaults = RootVolume::default();
    Some(AwsLaunch {
        tags,
        metadata: InstanceMetadata {
            tokens_required: opts.metadata_tokens_required.unwrap_or(true),
            hop_limit: opts.metadata_hop_limit.unwrap_or(1),
        },
        root_volume: RootVolume {
            volume_type: opts
                .root_volume_type
                .clone()
                .unwrap_or(defaults.volume_type),
            iops: opts.root_iops,
            throughput: opts.root_throughput,
            encrypted: opts.root_encrypted.unwrap_or(true) || opts.kms_key_id.is_some(),
            kms_key_id: opts.kms_key_id.clone(),
        },
        spot: opts.spot.then(|| Spot {
            max_price: opts.spot_max_price.clone(),
        }),
        public_ip: opts.public_ip,
    })
}

/// The error codes that say "no spot capacity for this request now": with
/// `--spot-fallback on-demand` the launch is made again on demand.
pub fn is_no_spot_capacity(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "InsufficientInstanceCapacity"
                | "SpotMaxPriceTooLow"
                | "MaxSpotInstanceCountExceeded"
                | "InsufficientCapacity"
        )
    )
}

/// The launch made again on demand after a spot launch found no capacity.
pub fn on_demand(launch: &AwsLaunch) -> AwsLaunch {
    AwsLaunch {
        spot: None,
        ..launch.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(dialect: Dialect) -> CloudTarget {
        CloudTarget::for_tests("http://clc:8773/services/compute/", "eucalyptus", dialect)
    }

    #[test]
    fn aws_only_flags_are_refused_on_eucalyptus_naming_them() {
        assert!(check(&AwsOptions::default(), &target(Dialect::Eucalyptus)).is_ok());
        let opts = AwsOptions {
            root_volume_type: Some("gp3".into()),
            metadata_hop_limit: Some(2),
            ..Default::default()
        };
        let err = check(&opts, &target(Dialect::Eucalyptus)).unwrap_err();
        assert_eq!(
            err.message,
            "--metadata-hop-limit, --root-volume-type work only in the AWS dialect; \
             http://clc:8773/services/compute/ (region eucalyptus) is a Eucalyptus cloud"
        );
        assert!(err.hint.contains("--dialect aws"), "{}", err.hint);
        assert!(check(&opts, &target(Dialect::Aws)).is_ok());
        let contradiction = AwsOptions {
            kms_key_id: Some("alias/k".into()),
            root_encrypted: Some(false),
            ..Default::default()
        };
        assert!(check(&contradiction, &target(Dialect::Aws)).is_err());
    }

    #[test]
    fn the_aws_launch_is_safe_by_default_and_tags_every_instance_from_its_first_moment() {
        let group = Ownership::new("app", "store-1");
        let one = Ownership::new("web1", "store-1");
        assert_eq!(
            launch(
                &AwsOptions::default(),
                Dialect::Eucalyptus,
                &group,
                Some(&one)
            ),
            None
        );
        let single = launch(&AwsOptions::default(), Dialect::Aws, &group, Some(&one)).unwrap();
        assert_eq!(single.metadata, InstanceMetadata::default());
        assert_eq!(single.root_volume, RootVolume::default());
        assert!(single.root_volume.encrypted);
        assert!(single.tags.contains(&(STORE_TAG.into(), "store-1".into())));
        assert!(single.tags.contains(&(MACHINE_TAG.into(), "web1".into())));
        let fleet = launch(&AwsOptions::default(), Dialect::Aws, &group, None).unwrap();
        assert_eq!(fleet.tags, [(STORE_TAG.to_string(), "store-1".to_string())]);
        let relaxed = AwsOptions {
            metadata_tokens_required: Some(false),
            metadata_hop_limit: Some(2),
            root_encrypted: Some(false),
            ..Default::default()
        };
        let got = launch(&relaxed, Dialect::Aws, &group, None).unwrap();
        assert!(!got.metadata.tokens_required);
        assert_eq!(got.metadata.hop_limit, 2);
        assert!(!got.root_volume.encrypted);
        assert_eq!(got.spot, None);
        assert_eq!(got.public_ip, None);
    }

    #[test]
    fn spot_and_the_public_address_are_refused_on_eucalyptus_and_kept_on_aws() {
        let opts = AwsOptions {
            spot: true,
            spot_max_price: Some("0.05".into()),
            spot_fallback_on_demand: true,
            public_ip: Some(false),
            ..Default::default()
        };
        let err = check(&opts, &target(Dialect::Eucalyptus)).unwrap_err();
        assert!(
            err.message.starts_with(
                "--spot, --spot-max-price, --spot-fallback, --no-public-ip work only in the AWS dialect"
            ),
            "{}",
            err.message
        );
        let group = Ownership::new("app", "store-1");
        let got = launch(&opts, Dialect::Aws, &group, None).unwrap();
        assert_eq!(
            got.spot.as_ref().unwrap().max_price.as_deref(),
            Some("0.05")
        );
        assert_eq!(got.public_ip, Some(false));
        let fallback = on_demand(&got);
        assert_eq!(fallback.spot, None);
        assert_eq!(fallback.tags, got.tags);
        assert_eq!(fallback.public_ip, Some(false));
    }

    #[test]
    fn only_capacity_codes_fall_back_to_on_demand() {
        assert!(is_no_spot_capacity(Some("InsufficientInstanceCapacity")));
        assert!(is_no_spot_capacity(Some("SpotMaxPriceTooLow")));
        assert!(!is_no_spot_capacity(Some("InvalidParameterValue")));
        assert!(!is_no_spot_capacity(Some("UnauthorizedOperation")));
        assert!(!is_no_spot_capacity(None));
    }
}
