//! What RunInstances carries in the AWS dialect only: tags at launch on the instance, its
//! volumes and its network interfaces (no untagged moment, so that IAM conditions on the
//! `docker-euca:*` tags hold), IMDSv2, a typed, encrypted root volume, spot in the same call (no
//! separate spot request to orphan), and the public address asked for. Eucalyptus 4.4's
//! binding refuses every one of these; a [`LaunchSpec`](super::LaunchSpec) of that dialect has
//! none.

use aws_sdk_ec2::{
    operation::run_instances::builders::RunInstancesFluentBuilder,
    types::{
        BlockDeviceMapping, EbsBlockDevice, HttpTokensState, InstanceInterruptionBehavior,
        InstanceMarketOptionsRequest, InstanceMetadataEndpointState,
        InstanceMetadataOptionsRequest, InstanceNetworkInterfaceSpecification, MarketType,
        ResourceType, SpotInstanceType, SpotMarketOptions, Tag, TagSpecification, VolumeType,
    },
};

use super::LaunchSpec;

/// The AWS dialect's launch options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsLaunch {
    /// On every instance of the launch from its first moment, and on its volumes and network
    /// interfaces. (A fleet's per-machine name tags still follow with CreateTags: one launch
    /// carries one set of tags.)
    pub tags: Vec<(String, String)>,
    pub metadata: InstanceMetadata,
    pub root_volume: RootVolume,
    /// A one-time spot instance, terminated when interrupted; `None`: on demand.
    pub spot: Option<Spot>,
    /// `Some(false)`: no public address (`--no-public-ip`); `Some(true)`: one even in a subnet
    /// that maps none; `None`: as the subnet says (a default subnet maps one).
    pub public_ip: Option<bool>,
}

/// A spot launch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Spot {
    /// The most to pay per hour, in USD (`None`: up to the on-demand price).
    pub max_price: Option<String>,
}

/// The instance metadata service's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceMetadata {
    /// IMDSv2: a session token is required (the default); `false` allows v1 too.
    pub tokens_required: bool,
    /// How many network hops the token's answer may travel (1: not into containers).
    pub hop_limit: i32,
}

impl Default for InstanceMetadata {
    fn default() -> Self {
        InstanceMetadata {
            tokens_required: true,
            hop_limit: 1,
        }
    }
}

/// The root volume's EBS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootVolume {
    pub volume_type: String,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
}

impl Default for RootVolume {
    fn default() -> Self {
        RootVolume {
            volume_type: "gp3".into(),
            iops: None,
            throughput: None,
            encrypted: true,
            kms_key_id: None,
        }
    }
}

impl AwsLaunch {
    /// Adds the AWS-only parameters to the RunInstances request of `spec`; the root volume goes
    /// on the image's root device with the spec's size when given.
    pub(super) fn apply(
        &self,
        req: RunInstancesFluentBuilder,
        spec: &LaunchSpec,
    ) -> RunInstancesFluentBuilder {
        let device = spec.root_device_name.as_deref().unwrap_or("/dev/sda1");
        let req = self.with_network_interface(req, spec);
        let req = match &self.spot {
            Some(spot) => req.instance_market_options(spot.market_options()),
            None => req,
        };
        let tags: Vec<Tag> = self
            .tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let tagged = |kind: ResourceType| {
            TagSpecification::builder()
                .resource_type(kind)
                .set_tags(Some(tags.clone()))
                .build()
        };
        let tokens = if self.metadata.tokens_required {
            HttpTokensState::Required
        } else {
            HttpTokensState::Optional
        };
        let metadata = InstanceMetadataOptionsRequest::builder()
            .http_endpoint(InstanceMetadataEndpointState::Enabled)
            .http_tokens(tokens)
            .http_put_response_hop_limit(self.metadata.hop_limit)
            .build();
        let root = &self.root_volume;
        let ebs = EbsBlockDevice::builder()
            .set_volume_size(spec.root_size_gib)
            .volume_type(VolumeType::from(root.volume_type.as_str()))
            .set_iops(root.iops)
            .set_throughput(root.throughput)
            .encrypted(root.encrypted)
            .set_kms_key_id(root.kms_key_id.clone())
            .delete_on_termination(true)
            .build();
        req.tag_specifications(tagged(ResourceType::Instance))
            .tag_specifications(tagged(ResourceType::Volume))
            .tag_specifications(tagged(ResourceType::NetworkInterface))
            .metadata_options(metadata)
            .block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name(device)
                    .ebs(ebs)
                    .build(),
            )
    }

    /// With an explicit public-address choice, the subnet and the groups go in the launch's
    /// network interface (EC2 takes the choice only there) instead of the request itself.
    fn with_network_interface(
        &self,
        req: RunInstancesFluentBuilder,
        spec: &LaunchSpec,
    ) -> RunInstancesFluentBuilder {
        let Some(public) = self.public_ip else {
            return req;
        };
        let interface = InstanceNetworkInterfaceSpecification::builder()
            .device_index(0)
            .associate_public_ip_address(public)
            .delete_on_termination(true)
            .set_subnet_id(spec.subnet_id.clone())
            .set_groups(
                (!spec.security_group_ids.is_empty()).then(|| spec.security_group_ids.clone()),
            )
            .build();
        req.set_subnet_id(None)
            .set_security_group_ids(None)
            .network_interfaces(interface)
    }
}

impl Spot {
    fn market_options(&self) -> InstanceMarketOptionsRequest {
        InstanceMarketOptionsRequest::builder()
            .market_type(MarketType::Spot)
            .spot_options(
                SpotMarketOptions::builder()
                    .set_max_price(self.max_price.clone())
                    .spot_instance_type(SpotInstanceType::OneTime)
                    .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
                    .build(),
            )
            .build()
    }
}
