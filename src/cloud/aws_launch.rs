//! What RunInstances carries in the AWS dialect only: tags at launch on the instance, its
//! volumes and its network interfaces (no untagged moment, so that IAM conditions on the
//! `docker-euca:*` tags hold), IMDSv2, and a typed, encrypted root volume. Eucalyptus 4.4's
//! binding refuses every one of these; a [`LaunchSpec`](super::LaunchSpec) of that dialect has
//! none.

use aws_sdk_ec2::{
    operation::run_instances::builders::RunInstancesFluentBuilder,
    types::{
        BlockDeviceMapping, EbsBlockDevice, HttpTokensState, InstanceMetadataEndpointState,
        InstanceMetadataOptionsRequest, ResourceType, Tag, TagSpecification, VolumeType,
    },
};

/// The AWS dialect's launch options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsLaunch {
    /// On every instance of the launch from its first moment, and on its volumes and network
    /// interfaces. (A fleet's per-machine name tags still follow with CreateTags: one launch
    /// carries one set of tags.)
    pub tags: Vec<(String, String)>,
    pub metadata: InstanceMetadata,
    pub root_volume: RootVolume,
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
    /// Adds the AWS-only parameters to a RunInstances request; the root volume goes on
    /// `device` (the image's root device) with `size_gib` when given.
    pub(super) fn apply(
        &self,
        req: RunInstancesFluentBuilder,
        device: &str,
        size_gib: Option<i32>,
    ) -> RunInstancesFluentBuilder {
        let tags: Vec<Tag> = self
            .tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let spec = |kind: ResourceType| {
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
            .set_volume_size(size_gib)
            .volume_type(VolumeType::from(root.volume_type.as_str()))
            .set_iops(root.iops)
            .set_throughput(root.throughput)
            .encrypted(root.encrypted)
            .set_kms_key_id(root.kms_key_id.clone())
            .delete_on_termination(true)
            .build();
        req.tag_specifications(spec(ResourceType::Instance))
            .tag_specifications(spec(ResourceType::Volume))
            .tag_specifications(spec(ResourceType::NetworkInterface))
            .metadata_options(metadata)
            .block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name(device)
                    .ebs(ebs)
                    .build(),
            )
    }
}
