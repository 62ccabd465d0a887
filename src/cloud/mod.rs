//! Typed EC2 operations for one (endpoint, region, credentials), in the Eucalyptus dialect:
//! no `TagSpecification` (Eucalyptus 4.4 refuses unknown parameters; tags go on with CreateTags
//! right after), no parameter the user did not ask for, any image id prefix (`emi-`, `ami-`).
//! Knows nothing about Docker.

mod address;
mod aws_launch;
mod error;
mod http;
mod in_flight;
mod inventory;
mod ownership;
mod probe;

pub use address::usable_address;
pub use aws_launch::{AwsLaunch, InstanceMetadata, RootVolume, Spot};
pub use error::CloudError;
pub use inventory::{Inventory, InventoryInstance, KEY_PAIR_PREFIX};
pub use ownership::{MACHINE_TAG, Ownership, STORE_TAG, Verdict};
pub use probe::{AccessProbe, GroupRules, IngressRule, InstanceProbe, ServerDate};

use std::time::Duration;

use aws_sdk_ec2::{
    Client,
    config::{BehaviorVersion, Credentials, Region, retry::RetryConfig, timeout::TimeoutConfig},
    types::{Filter, InstanceStateName, IpPermission, IpRange, Tag},
};

use crate::{credentials::CloudTarget, dialect::Dialect};
use error::from_sdk;

/// How long an instance may still be shown `stopped` after StartInstances before the waiter
/// believes it (EC2 is eventually consistent; Eucalyptus too).
const STALE_STATE_GRACE: Duration = Duration::from_secs(60);

/// When to ask again while an instance boots: the first look after 1 s (nothing has booted
/// sooner), then 1.6 times longer each time up to 5 s (1, 2.6, 5.2, 9.3, 14.3 s…). An address
/// that comes within 9 s costs 4 polls, a 60 s boot 14 (a fixed 1 s poll: 60); the price is
/// seeing the address up to one interval late.
#[derive(Debug, Clone)]
pub struct PollSchedule {
    next: Duration,
}

impl PollSchedule {
    pub const FIRST: Duration = Duration::from_secs(1);
    pub const CAP: Duration = Duration::from_secs(5);

    pub fn new() -> Self {
        PollSchedule { next: Self::FIRST }
    }

    /// The wait before the next poll.
    pub fn next_delay(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 8 / 5).min(Self::CAP);
        now
    }
}

impl Default for PollSchedule {
    fn default() -> Self {
        Self::new()
    }
}

/// One EC2 client for one (endpoint, region, profile).
#[derive(Debug, Clone)]
pub struct Ec2 {
    client: Client,
    endpoint: String,
    /// Which parameters requests may carry (see [`crate::dialect`]).
    dialect: Dialect,
    /// The making calls still on their way (see [`Ec2::settled`]).
    in_flight: in_flight::InFlight,
}

/// What DescribeInstances says about one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceInfo {
    pub id: String,
    pub state: String,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub state_reason: Option<String>,
    pub tags: Vec<(String, String)>,
    /// The RunInstances client token it was launched with.
    pub client_token: Option<String>,
    pub image_id: Option<String>,
    pub instance_type: Option<String>,
    pub zone: Option<String>,
    pub subnet_id: Option<String>,
    pub key_name: Option<String>,
    pub security_group_ids: Vec<String>,
    /// Its `AmiLaunchIndex` within its launch.
    pub launch_index: Option<u32>,
}

/// What DescribeSecurityGroups says about one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub id: String,
    pub name: String,
    pub tags: Vec<(String, String)>,
}

/// What a create needs to know of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    /// The device the image boots from (`/dev/sda1`, `/dev/xvda`, `/dev/vda`…): where
    /// `--root-size` applies.
    pub root_device_name: Option<String>,
}

/// How TerminateInstances answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminate {
    /// The cloud accepted it: the instance is shutting down (or already gone).
    Accepted,
    /// `InvalidInstanceID.NotFound`: not proof of anything by itself (another account, another
    /// cloud, or a purged record answer the same way).
    Unknown,
}

/// A RunInstances request, only with what the user asked for. Its `Debug` leaves out the user
/// data, which carries the bootstrap host key.
#[derive(Clone, Default)]
pub struct LaunchSpec {
    pub image_id: String,
    pub instance_type: String,
    pub zone: Option<String>,
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
    pub key_name: Option<String>,
    /// Base64 of the (maybe gzipped) user data.
    pub user_data_b64: Option<String>,
    pub root_size_gib: Option<i32>,
    /// The image's root device, where `root_size_gib` applies (`/dev/sda1` when unknown).
    pub root_device_name: Option<String>,
    pub iam_instance_profile: Option<String>,
    pub client_token: String,
    /// How many instances, all or nothing (`MinCount = MaxCount`); 0 is taken as 1.
    pub count: u32,
    /// The AWS dialect's parameters; `None` in Eucalyptus's, whose binding refuses them all.
    pub aws: Option<AwsLaunch>,
}

/// One instance of a RunInstances answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    pub id: String,
    /// Its `AmiLaunchIndex`: which of the launch's instances it is (0-based).
    pub launch_index: u32,
}

/// What one wait for "running with a usable address" came to, per instance.
pub type AddressResult = Result<InstanceInfo, CloudError>;

impl std::fmt::Debug for LaunchSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchSpec")
            .field("image_id", &self.image_id)
            .field("instance_type", &self.instance_type)
            .field("zone", &self.zone)
            .field("subnet_id", &self.subnet_id)
            .field(
                "user_data_b64",
                &self.user_data_b64.as_ref().map(|_| "REDACTED"),
            )
            .finish_non_exhaustive()
    }
}

/// The CA bundle's bytes, once they are known to hold PEM certificates and nothing broken: a
/// wrong file is named here, for every command, instead of showing up as a TLS failure.
fn read_ca_bundle(path: &std::path::Path) -> Result<Vec<u8>, CloudError> {
    let pem = std::fs::read(path).map_err(|source| CloudError::CaBundle {
        path: path.to_path_buf(),
        source,
    })?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut pem.as_slice()).collect();
    match certs {
        Ok(certs) if !certs.is_empty() => Ok(pem),
        _ => Err(CloudError::CaBundleNotPem {
            path: path.to_path_buf(),
        }),
    }
}

/// How long one EC2 call may take before it is retried (60 s; `DOCKER_EUCA_API_TIMEOUT=SECS`
/// sets it, for a slow cloud or a test). A whole call, retries included, gets three times that.
pub fn api_attempt_timeout() -> Duration {
    parse_api_timeout(std::env::var(API_TIMEOUT_ENV).ok().as_deref())
}

/// The variable that sets [`api_attempt_timeout`].
pub const API_TIMEOUT_ENV: &str = "DOCKER_EUCA_API_TIMEOUT";

fn parse_api_timeout(value: Option<&str>) -> Duration {
    value
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(60))
}

/// Validates the endpoint URL: http(s), a host, nothing else.
pub fn check_endpoint(endpoint: &str) -> Result<(), CloudError> {
    let bad = |reason: &str| CloudError::BadEndpoint {
        endpoint: endpoint.into(),
        reason: reason.into(),
    };
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .ok_or_else(|| bad("it must start with http:// or https://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad("it has no host"));
    }
    Ok(())
}

impl Ec2 {
    /// Builds the client: rustls with the ring provider, system roots plus the CA bundle,
    /// connect and operation timeouts, standard retries with jitter (throttling backs off).
    pub fn connect(target: &CloudTarget) -> Result<Ec2, CloudError> {
        check_endpoint(&target.endpoint)?;
        let ca_bundle = match &target.ca_bundle {
            Some(path) => Some(read_ca_bundle(path)?),
            None => None,
        };
        let http =
            http::client(ca_bundle.as_deref()).map_err(|reason| CloudError::BadEndpoint {
                endpoint: target.endpoint.clone(),
                reason: format!("TLS set-up: {reason}"),
            })?;
        let keys = &target.keys;
        let credentials = Credentials::new(
            keys.access_key_id.clone(),
            keys.secret_access_key.expose().clone(),
            keys.session_token.as_ref().map(|t| t.expose().clone()),
            None,
            "docker-euca",
        );
        let config = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(target.region.clone()))
            .endpoint_url(target.endpoint.clone())
            .credentials_provider(credentials)
            .http_client(http)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(api_attempt_timeout())
                    .operation_timeout(api_attempt_timeout() * 3)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(5))
            .build();
        Ok(Ec2 {
            client: Client::from_conf(config),
            endpoint: target.endpoint.clone(),
            dialect: target.dialect,
            in_flight: Default::default(),
        })
    }

    /// `TagSpecification` for a resource made by this call: AWS only, and only with tags.
    fn tags_at_creation(
        &self,
        kind: aws_sdk_ec2::types::ResourceType,
        tags: &[(&str, &str)],
    ) -> Option<Vec<aws_sdk_ec2::types::TagSpecification>> {
        use aws_sdk_ec2::types::{Tag, TagSpecification};
        (self.dialect == Dialect::Aws && !tags.is_empty()).then(|| {
            vec![
                TagSpecification::builder()
                    .resource_type(kind)
                    .set_tags(Some(
                        tags.iter()
                            .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                            .collect(),
                    ))
                    .build(),
            ]
        })
    }

    /// Waits until every making call this client sent has ended, answered or given up: a
    /// rollback looks only then, so a call its operation stopped waiting for (a Ctrl-C) cannot
    /// land after it and leave what it made behind.
    pub async fn settled(&self) {
        self.in_flight.settled().await;
    }

    /// The dialect this client's requests are built in.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The underlying SDK client, for calls this layer does not wrap (tests, diagnostics).
    pub fn sdk(&self) -> &Client {
        &self.client
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The cheapest authenticated call: proves endpoint, region and keys work.
    pub async fn check_access(&self) -> Result<Vec<String>, CloudError> {
        let out = self
            .client
            .describe_availability_zones()
            .send()
            .await
            .map_err(|e| from_sdk("DescribeAvailabilityZones", &self.endpoint, e))?;
        Ok(out
            .availability_zones()
            .iter()
            .filter_map(|z| z.zone_name().map(str::to_string))
            .collect())
    }

    /// The image, if it exists and may be launched by these credentials (checked before a
    /// create makes anything).
    pub async fn image(&self, image_id: &str) -> Result<Option<ImageInfo>, CloudError> {
        match self
            .client
            .describe_images()
            .image_ids(image_id)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .images()
                .iter()
                .find(|i| i.image_id() == Some(image_id))
                .map(|i| ImageInfo {
                    id: image_id.to_string(),
                    root_device_name: i.root_device_name().map(str::to_string),
                })),
            Err(e) => {
                let err = from_sdk("DescribeImages", &self.endpoint, e);
                match err.code() {
                    Some(c) if c.starts_with("InvalidAMIID") => Ok(None),
                    _ => Err(err),
                }
            }
        }
    }

    /// The instance's console output, decoded; `None` while there is none yet.
    pub async fn console_output(&self, id: &str) -> Result<Option<String>, CloudError> {
        use base64::Engine;
        let out = self
            .client
            .get_console_output()
            .instance_id(id)
            .send()
            .await
            .map_err(|e| from_sdk("GetConsoleOutput", &self.endpoint, e))?;
        Ok(out
            .output()
            .and_then(|o| {
                base64::engine::general_purpose::STANDARD
                    .decode(o.trim())
                    .ok()
            })
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Finds a security group by name.
    pub async fn find_security_group(&self, name: &str) -> Result<Option<GroupInfo>, CloudError> {
        Ok(self
            .groups_where("group-name", name)
            .await?
            .into_iter()
            .find(|g| g.name == name))
    }

    /// The security group with this id, if it exists (a filter, so an unknown id is simply
    /// absent rather than an error).
    pub async fn security_group(&self, id: &str) -> Result<Option<GroupInfo>, CloudError> {
        Ok(self
            .groups_where("group-id", id)
            .await?
            .into_iter()
            .find(|g| g.id == id))
    }

    async fn groups_where(&self, filter: &str, value: &str) -> Result<Vec<GroupInfo>, CloudError> {
        let out = self
            .client
            .describe_security_groups()
            .filters(Filter::builder().name(filter).values(value).build())
            .send()
            .await
            .map_err(|e| from_sdk("DescribeSecurityGroups", &self.endpoint, e))?;
        Ok(out
            .security_groups()
            .iter()
            .map(|g| GroupInfo {
                id: g.group_id().unwrap_or_default().to_string(),
                name: g.group_name().unwrap_or_default().to_string(),
                tags: tag_pairs(g.tags()),
            })
            .collect())
    }

    /// Creates a security group; returns its id.
    /// Makes a security group; in the AWS dialect it carries `tags` from its first moment
    /// (Eucalyptus has no TagSpecification: the caller tags it with CreateTags, as always).
    pub async fn create_security_group(
        &self,
        name: &str,
        description: &str,
        vpc_id: Option<&str>,
        tags: &[(&str, &str)],
    ) -> Result<String, CloudError> {
        let out = self
            .client
            .create_security_group()
            .group_name(name)
            .description(description)
            .set_vpc_id(vpc_id.map(str::to_string))
            .set_tag_specifications(
                self.tags_at_creation(aws_sdk_ec2::types::ResourceType::SecurityGroup, tags),
            )
            .send();
        let out = self
            .in_flight
            .send("CreateSecurityGroup", &self.endpoint, out)
            .await?;
        out.group_id()
            .map(str::to_string)
            .ok_or_else(|| CloudError::Api {
                action: "CreateSecurityGroup",
                code: None,
                message: "the answer carried no group id".into(),
            })
    }

    /// Opens `(port, protocol)` pairs to each CIDR.
    pub async fn authorize_ingress(
        &self,
        group_id: &str,
        ports: &[(u16, String)],
        cidrs: &[String],
    ) -> Result<(), CloudError> {
        let ranges: Vec<IpRange> = cidrs
            .iter()
            .map(|c| IpRange::builder().cidr_ip(c).build())
            .collect();
        let perms: Vec<IpPermission> = ports
            .iter()
            .map(|(port, proto)| {
                IpPermission::builder()
                    .ip_protocol(proto)
                    .from_port(i32::from(*port))
                    .to_port(i32::from(*port))
                    .set_ip_ranges(Some(ranges.clone()))
                    .build()
            })
            .collect();
        self.authorize(group_id, perms).await
    }

    /// Opens `(port, protocol)` pairs (port `None`: the whole protocol, such as ESP, `50`)
    /// to the members of the group itself: group-pair rules, no CIDR. One permission per
    /// pair, each with the group alone (Eucalyptus drops the CIDRs of a permission that also
    /// names groups).
    pub async fn authorize_from_itself(
        &self,
        group_id: &str,
        ports: &[(Option<u16>, &str)],
    ) -> Result<(), CloudError> {
        use aws_sdk_ec2::types::UserIdGroupPair;
        let perms: Vec<IpPermission> = ports
            .iter()
            .map(|(port, proto)| {
                let p = IpPermission::builder()
                    .ip_protocol(*proto)
                    .user_id_group_pairs(UserIdGroupPair::builder().group_id(group_id).build());
                match port {
                    Some(port) => p.from_port(i32::from(*port)).to_port(i32::from(*port)),
                    None => p,
                }
                .build()
            })
            .collect();
        self.authorize(group_id, perms).await
    }

    /// One AuthorizeSecurityGroupIngress with these permissions.
    async fn authorize(&self, group_id: &str, perms: Vec<IpPermission>) -> Result<(), CloudError> {
        let call = self
            .client
            .authorize_security_group_ingress()
            .group_id(group_id)
            .set_ip_permissions(Some(perms))
            .send();
        self.in_flight
            .send("AuthorizeSecurityGroupIngress", &self.endpoint, call)
            .await?;
        Ok(())
    }

    /// Deletes a group; a group already gone is fine. `DependencyViolation` (still in use by an
    /// instance that is shutting down) is returned for the caller to retry.
    pub async fn delete_security_group(&self, group_id: &str) -> Result<(), CloudError> {
        match self
            .client
            .delete_security_group()
            .group_id(group_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = from_sdk("DeleteSecurityGroup", &self.endpoint, e);
                match err.code() {
                    Some(c) if c.starts_with("InvalidGroup") && c.ends_with("NotFound") => Ok(()),
                    _ => Err(err),
                }
            }
        }
    }

    /// Imports a key pair; tagged from its first moment in the AWS dialect (see
    /// [`Ec2::create_security_group`]).
    pub async fn import_key_pair(
        &self,
        name: &str,
        public_key_openssh: &str,
        tags: &[(&str, &str)],
    ) -> Result<(), CloudError> {
        let call = self
            .client
            .import_key_pair()
            .key_name(name)
            .public_key_material(aws_smithy_types::Blob::new(public_key_openssh.as_bytes()))
            .set_tag_specifications(
                self.tags_at_creation(aws_sdk_ec2::types::ResourceType::KeyPair, tags),
            )
            .send();
        self.in_flight
            .send("ImportKeyPair", &self.endpoint, call)
            .await?;
        Ok(())
    }

    /// Deletes a key pair; one already gone is fine.
    pub async fn delete_key_pair(&self, name: &str) -> Result<(), CloudError> {
        match self.client.delete_key_pair().key_name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = from_sdk("DeleteKeyPair", &self.endpoint, e);
                if err.code() == Some("InvalidKeyPair.NotFound") {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Launches one instance; returns its id. Tags go on separately (see module docs).
    /// Launches `spec.count` instances in one call (all or nothing), each with its launch index.
    pub async fn run_instances(&self, spec: &LaunchSpec) -> Result<Vec<Launched>, CloudError> {
        let call = self.run_instances_request(spec)?.send();
        let out = self
            .in_flight
            .send("RunInstances", &self.endpoint, call)
            .await?;
        let launched: Vec<Launched> = out
            .instances()
            .iter()
            .enumerate()
            .filter_map(|(n, i)| {
                Some(Launched {
                    id: i.instance_id()?.to_string(),
                    launch_index: i
                        .ami_launch_index()
                        .and_then(|x| u32::try_from(x).ok())
                        .unwrap_or(n as u32),
                })
            })
            .collect();
        if launched.len() != spec.count.max(1) as usize {
            return Err(CloudError::Api {
                action: "RunInstances",
                code: None,
                message: format!(
                    "the answer carried {} instances, not the {} asked for",
                    launched.len(),
                    spec.count.max(1)
                ),
            });
        }
        Ok(launched)
    }

    /// The RunInstances request for `spec`, in this client's dialect: AWS-only parameters are
    /// refused here, before anything is sent, if a Eucalyptus client is given them.
    fn run_instances_request(
        &self,
        spec: &LaunchSpec,
    ) -> Result<
        aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder,
        CloudError,
    > {
        use aws_sdk_ec2::types::{
            BlockDeviceMapping, EbsBlockDevice, IamInstanceProfileSpecification, Placement,
        };
        let mut req = self
            .client
            .run_instances()
            .image_id(&spec.image_id)
            .instance_type(spec.instance_type.as_str().into())
            .min_count(spec.count.max(1) as i32)
            .max_count(spec.count.max(1) as i32)
            .client_token(&spec.client_token)
            .set_security_group_ids(
                (!spec.security_group_ids.is_empty()).then(|| spec.security_group_ids.clone()),
            )
            .set_key_name(spec.key_name.clone())
            .set_user_data(spec.user_data_b64.clone())
            .set_subnet_id(spec.subnet_id.clone());
        if let Some(zone) = &spec.zone {
            req = req.placement(Placement::builder().availability_zone(zone).build());
        }
        let root_device = spec.root_device_name.as_deref().unwrap_or("/dev/sda1");
        match (&spec.aws, self.dialect) {
            (Some(aws), Dialect::Aws) => req = aws.apply(req, spec),
            (Some(_), Dialect::Eucalyptus) => {
                return Err(CloudError::Api {
                    action: "RunInstances",
                    code: None,
                    message: "AWS-dialect parameters for a Eucalyptus cloud (not sent)".into(),
                });
            }
            (None, _) => {
                if let Some(size) = spec.root_size_gib {
                    req = req.block_device_mappings(
                        BlockDeviceMapping::builder()
                            .device_name(root_device)
                            .ebs(EbsBlockDevice::builder().volume_size(size).build())
                            .build(),
                    );
                }
            }
        }
        if let Some(profile) = &spec.iam_instance_profile {
            let p = IamInstanceProfileSpecification::builder();
            let p = if profile.starts_with("arn:") {
                p.arn(profile)
            } else {
                p.name(profile)
            };
            req = req.iam_instance_profile(p.build());
        }
        Ok(req)
    }

    /// Launches one instance (see [`Ec2::run_instances`]).
    pub async fn run_instance(&self, spec: &LaunchSpec) -> Result<String, CloudError> {
        let one = LaunchSpec {
            count: 1,
            ..spec.clone()
        };
        Ok(self.run_instances(&one).await?.remove(0).id)
    }

    pub async fn create_tags(
        &self,
        resource_ids: &[String],
        tags: &[(&str, &str)],
    ) -> Result<(), CloudError> {
        let call = self
            .client
            .create_tags()
            .set_resources(Some(resource_ids.to_vec()))
            .set_tags(Some(tag_list(tags)))
            .send();
        self.in_flight
            .send("CreateTags", &self.endpoint, call)
            .await?;
        Ok(())
    }

    /// Removes tags (key and value must both match) from resources.
    pub async fn delete_tags(
        &self,
        resource_ids: &[String],
        tags: &[(&str, &str)],
    ) -> Result<(), CloudError> {
        self.client
            .delete_tags()
            .set_resources(Some(resource_ids.to_vec()))
            .set_tags(Some(tag_list(tags)))
            .send()
            .await
            .map_err(|e| from_sdk("DeleteTags", &self.endpoint, e))?;
        Ok(())
    }

    /// Describes the given instances in one call (an empty list means "all"). A filter on
    /// `instance-id`, not an id list: with a list, one id the cloud no longer knows fails the
    /// whole call, and every other machine would look gone.
    pub async fn describe_instances(
        &self,
        ids: &[String],
    ) -> Result<Vec<InstanceInfo>, CloudError> {
        let mut req = self.client.describe_instances();
        if !ids.is_empty() {
            req = req.filters(
                Filter::builder()
                    .name("instance-id")
                    .set_values(Some(ids.to_vec()))
                    .build(),
            );
        }
        let out = req
            .send()
            .await
            .map_err(|e| from_sdk("DescribeInstances", &self.endpoint, e))?;
        Ok(instance_infos(&out))
    }

    pub async fn describe_instance(&self, id: &str) -> Result<Option<InstanceInfo>, CloudError> {
        Ok(self
            .describe_instances(&[id.to_string()])
            .await?
            .into_iter()
            .find(|i| i.id == id))
    }

    /// Terminates. `InvalidInstanceID.NotFound` is reported as [`Terminate::Unknown`] for the
    /// caller to prove, never taken as "gone".
    pub async fn terminate_instance(&self, id: &str) -> Result<Terminate, CloudError> {
        match self
            .client
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await
        {
            Ok(_) => Ok(Terminate::Accepted),
            Err(e) => {
                let err = from_sdk("TerminateInstances", &self.endpoint, e);
                if err.code() == Some("InvalidInstanceID.NotFound") {
                    Ok(Terminate::Unknown)
                } else {
                    Err(err)
                }
            }
        }
    }

    pub async fn stop_instances(&self, ids: &[String], force: bool) -> Result<(), CloudError> {
        self.client
            .stop_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .set_force(force.then_some(true))
            .send()
            .await
            .map_err(|e| from_sdk("StopInstances", &self.endpoint, e))?;
        Ok(())
    }

    pub async fn start_instances(&self, ids: &[String]) -> Result<(), CloudError> {
        self.client
            .start_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| from_sdk("StartInstances", &self.endpoint, e))?;
        Ok(())
    }

    /// Polls until the instance is in `want` (`running` or `stopped`; for `terminated` see
    /// [`Ec2::wait_until_terminated`]). Waiting for `running`, a `stopped` answer is believed
    /// only after [`STALE_STATE_GRACE`]: just after StartInstances the cloud may still say so.
    pub async fn wait_for_state(
        &self,
        id: &str,
        want: InstanceStateName,
        timeout: Duration,
    ) -> Result<InstanceInfo, CloudError> {
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        let mut delay = Duration::from_millis(500);
        loop {
            let info = self.describe_instance(id).await?;
            match &info {
                Some(i) if i.state == want.as_str() => return Ok(i.clone()),
                Some(i)
                    if want == InstanceStateName::Running
                        && (i.state == "terminated"
                            || i.state == "shutting-down"
                            || (i.state == "stopped"
                                && started.elapsed() >= STALE_STATE_GRACE)) =>
                {
                    return Err(CloudError::InstanceGone {
                        instance: id.into(),
                        state: i.state.clone(),
                        reason: i.state_reason.clone(),
                    });
                }
                _ => {}
            }
            if tokio::time::Instant::now() + delay > deadline {
                return Err(CloudError::Timeout {
                    what: format!("instance {id} to be {}", want.as_str()),
                    waited: timeout,
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(Duration::from_secs(3));
        }
    }

    /// Polls until the instance shows `terminated` (`Ok(true)`) or is absent from a
    /// DescribeInstances by id (`Ok(false)`: the caller proves what that absence means).
    pub async fn wait_until_terminated(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<bool, CloudError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut delay = Duration::from_millis(500);
        loop {
            match self.describe_instance(id).await? {
                Some(i) if i.state == InstanceStateName::Terminated.as_str() => return Ok(true),
                None => return Ok(false),
                Some(_) => {}
            }
            if tokio::time::Instant::now() + delay > deadline {
                return Err(CloudError::Timeout {
                    what: format!("instance {id} to be terminated"),
                    waited: timeout,
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(Duration::from_secs(3));
        }
    }

    /// Polls until the instance runs with a usable address (see [`usable_address`]): one wait
    /// for both, with polls that back off ([`PollSchedule`]). A `terminated` or
    /// `shutting-down` instance fails at once, a `stopped` one after [`STALE_STATE_GRACE`]
    /// (just after StartInstances the cloud may still say so).
    pub async fn wait_for_address(
        &self,
        id: &str,
        use_private: bool,
        timeout: Duration,
    ) -> Result<InstanceInfo, CloudError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.wait_for_addresses(vec![(id.to_string(), tx)], use_private, timeout)
            .await;
        rx.await.unwrap_or_else(|_| {
            Err(CloudError::Timeout {
                what: format!("instance {id} to run"),
                waited: timeout,
            })
        })
    }

    /// [`Ec2::wait_for_address`] for several instances with one DescribeInstances per poll
    /// for all that are still pending: each waiter is answered as soon as its instance is
    /// ready or gone (a waiter that went away is dropped), and all that remain are answered
    /// with the error when a call fails or the time is up.
    pub async fn wait_for_addresses(
        &self,
        mut waiters: Vec<(String, tokio::sync::oneshot::Sender<AddressResult>)>,
        use_private: bool,
        timeout: Duration,
    ) {
        let started = tokio::time::Instant::now();
        let mut schedule = PollSchedule::new();
        let mut seen_running = std::collections::HashSet::new();
        loop {
            waiters.retain(|(_, tx)| !tx.is_closed());
            if waiters.is_empty() {
                return;
            }
            let wait = schedule.next_delay();
            if started.elapsed() + wait > timeout {
                for (id, tx) in waiters {
                    let running = seen_running.contains(&id);
                    let _ = tx.send(Err(address_timeout(&id, running, use_private, timeout)));
                }
                return;
            }
            tokio::time::sleep(wait).await;
            let ids: Vec<String> = waiters.iter().map(|(id, _)| id.clone()).collect();
            let infos = match self.describe_instances(&ids).await {
                Ok(infos) => infos,
                Err(e) => {
                    for (_, tx) in waiters {
                        let _ = tx.send(Err(e.clone()));
                    }
                    return;
                }
            };
            let mut pending = Vec::new();
            for (id, tx) in waiters {
                let Some(info) = infos.iter().find(|i| i.id == id) else {
                    pending.push((id, tx));
                    continue;
                };
                if info.state == InstanceStateName::Running.as_str() {
                    seen_running.insert(id.clone());
                }
                match address_verdict(info, use_private, started.elapsed()) {
                    Some(result) => {
                        let _ = tx.send(result);
                    }
                    None => pending.push((id, tx)),
                }
            }
            waiters = pending;
        }
    }

    /// The VPC of a subnet (security groups for VPC instances must live there).
    pub async fn subnet_vpc(&self, subnet_id: &str) -> Result<Option<String>, CloudError> {
        let out = self
            .client
            .describe_subnets()
            .subnet_ids(subnet_id)
            .send()
            .await
            .map_err(|e| from_sdk("DescribeSubnets", &self.endpoint, e))?;
        Ok(out
            .subnets()
            .first()
            .and_then(|s| s.vpc_id().map(str::to_string)))
    }

    /// The subnet with this id, if it exists (a `subnet-id` filter, so an unknown id is simply
    /// absent rather than an error), with its VPC.
    pub async fn find_subnet(&self, subnet_id: &str) -> Result<Option<SubnetInfo>, CloudError> {
        let out = self
            .client
            .describe_subnets()
            .filters(
                Filter::builder()
                    .name("subnet-id")
                    .values(subnet_id)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| from_sdk("DescribeSubnets", &self.endpoint, e))?;
        Ok(out
            .subnets()
            .iter()
            .find(|s| s.subnet_id() == Some(subnet_id))
            .map(|s| SubnetInfo {
                id: subnet_id.to_string(),
                vpc_id: s.vpc_id().map(str::to_string),
            }))
    }

    /// A subnet of the default VPC (in `zone` when given; else the first zone's), as AWS
    /// launches into without a subnet named: `None` when the account has no default VPC.
    pub async fn default_subnet(
        &self,
        zone: Option<&str>,
    ) -> Result<Option<SubnetInfo>, CloudError> {
        let mut req = self.client.describe_subnets().filters(
            Filter::builder()
                .name("default-for-az")
                .values("true")
                .build(),
        );
        if let Some(zone) = zone {
            req = req.filters(
                Filter::builder()
                    .name("availability-zone")
                    .values(zone)
                    .build(),
            );
        }
        let out = req
            .send()
            .await
            .map_err(|e| from_sdk("DescribeSubnets", &self.endpoint, e))?;
        Ok(out
            .subnets()
            .iter()
            .filter(|s| s.subnet_id().is_some())
            .min_by_key(|s| s.availability_zone().unwrap_or_default().to_string())
            .map(|s| SubnetInfo {
                id: s.subnet_id().unwrap_or_default().to_string(),
                vpc_id: s.vpc_id().map(str::to_string),
            }))
    }

    /// Instances tagged as belonging to `machine`, of any store (for checks in tests).
    pub async fn instances_tagged(&self, machine: &str) -> Result<Vec<InstanceInfo>, CloudError> {
        let out = self
            .client
            .describe_instances()
            .filters(
                Filter::builder()
                    .name(format!("tag:{MACHINE_TAG}"))
                    .values(machine)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| from_sdk("DescribeInstances", &self.endpoint, e))?;
        Ok(instance_infos(&out))
    }

    /// Instances carrying both of `owner`'s tags.
    pub async fn instances_owned(
        &self,
        owner: &Ownership,
    ) -> Result<Vec<InstanceInfo>, CloudError> {
        let tag = |k: &str, v: &str| Filter::builder().name(format!("tag:{k}")).values(v).build();
        let out = self
            .client
            .describe_instances()
            .filters(tag(MACHINE_TAG, &owner.machine))
            .filters(tag(STORE_TAG, &owner.store))
            .send()
            .await
            .map_err(|e| from_sdk("DescribeInstances", &self.endpoint, e))?;
        Ok(instance_infos(&out))
    }

    /// Instances a RunInstances with this client token launched: finds an instance whose launch
    /// answer never arrived and that carries no tag yet. The `client-token` filter is missing
    /// in some clouds (moto; maybe Eucalyptus), so every page is read and matched here; this
    /// runs only to recover a lost answer.
    pub async fn instances_launched_with(
        &self,
        token: &str,
    ) -> Result<Vec<InstanceInfo>, CloudError> {
        let all = self.every_instance(None, instance_info).await?;
        Ok(all
            .into_iter()
            .filter(|i| i.client_token.as_deref() == Some(token))
            .collect())
    }

    /// Every page of a DescribeInstances (with `filter`, if any), each instance mapped by `map`.
    async fn every_instance<T>(
        &self,
        filter: Option<Filter>,
        map: fn(&aws_sdk_ec2::types::Instance) -> T,
    ) -> Result<Vec<T>, CloudError> {
        let mut found = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_instances()
                .set_filters(filter.clone().map(|f| vec![f]))
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| from_sdk("DescribeInstances", &self.endpoint, e))?;
            found.extend(
                out.reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .map(map),
            );
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => return Ok(found),
            }
        }
    }
}

/// What DescribeSubnets says about one subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetInfo {
    pub id: String,
    /// The VPC a security group for instances in this subnet must belong to.
    pub vpc_id: Option<String>,
}

fn tag_pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().into(),
                t.value().unwrap_or_default().into(),
            )
        })
        .collect()
}

fn instance_infos(
    out: &aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput,
) -> Vec<InstanceInfo> {
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(instance_info)
        .collect()
}

/// Whether a wait for an address is over for this instance: ready (`Ok`), gone (`Err`), or
/// not yet (`None`).
fn address_verdict(
    info: &InstanceInfo,
    use_private: bool,
    waited: Duration,
) -> Option<AddressResult> {
    let gone = info.state == "terminated"
        || info.state == "shutting-down"
        || (info.state == "stopped" && waited >= STALE_STATE_GRACE);
    if gone {
        return Some(Err(CloudError::InstanceGone {
            instance: info.id.clone(),
            state: info.state.clone(),
            reason: info.state_reason.clone(),
        }));
    }
    let ready = info.state == InstanceStateName::Running.as_str()
        && usable_address(
            info.public_ip.as_deref(),
            info.private_ip.as_deref(),
            use_private,
        )
        .is_some();
    ready.then(|| Ok(info.clone()))
}

fn address_timeout(id: &str, running: bool, use_private: bool, timeout: Duration) -> CloudError {
    let what = if !running {
        "be running"
    } else if use_private {
        "get a private address"
    } else {
        "get a public address (EDGE assigns it after the instance runs)"
    };
    CloudError::Timeout {
        what: format!("instance {id} to {what}"),
        waited: timeout,
    }
}

fn tag_list(tags: &[(&str, &str)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

fn instance_info(i: &aws_sdk_ec2::types::Instance) -> InstanceInfo {
    InstanceInfo {
        id: i.instance_id().unwrap_or_default().to_string(),
        state: i
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default(),
        private_ip: i.private_ip_address().map(str::to_string),
        public_ip: i.public_ip_address().map(str::to_string),
        state_reason: i
            .state_reason()
            .and_then(|r| r.message())
            .map(str::to_string),
        tags: tag_pairs(i.tags()),
        client_token: i.client_token().map(str::to_string),
        image_id: i.image_id().map(str::to_string),
        instance_type: i.instance_type().map(|t| t.as_str().to_string()),
        zone: i
            .placement()
            .and_then(|p| p.availability_zone())
            .map(str::to_string),
        subnet_id: i.subnet_id().map(str::to_string),
        key_name: i.key_name().map(str::to_string),
        security_group_ids: i
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_string))
            .collect(),
        launch_index: i.ami_launch_index().and_then(|n| u32::try_from(n).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client of `dialect` (building it dials nothing).
    fn client(dialect: Dialect) -> Ec2 {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ec2::connect(&CloudTarget::for_tests("http://127.0.0.1:1/", "r", dialect)).unwrap()
    }

    fn aws_launch() -> AwsLaunch {
        AwsLaunch {
            tags: vec![("docker-euca:store".into(), "s1".into())],
            metadata: InstanceMetadata::default(),
            root_volume: RootVolume::default(),
            spot: None,
            public_ip: None,
        }
    }

    #[test]
    fn groups_and_key_pairs_are_tagged_at_creation_in_the_aws_dialect_only() {
        use aws_sdk_ec2::types::ResourceType;
        let tags = [("docker-euca:machine", "web1"), ("docker-euca:store", "s1")];
        let euca = client(Dialect::Eucalyptus);
        assert!(
            euca.tags_at_creation(ResourceType::SecurityGroup, &tags)
                .is_none()
        );
        let aws = client(Dialect::Aws);
        assert!(aws.tags_at_creation(ResourceType::KeyPair, &[]).is_none());
        let specs = aws.tags_at_creation(ResourceType::KeyPair, &tags).unwrap();
        assert_eq!(specs[0].resource_type(), Some(&ResourceType::KeyPair));
        let keys: Vec<_> = specs[0].tags().iter().filter_map(|t| t.key()).collect();
        assert_eq!(keys, ["docker-euca:machine", "docker-euca:store"]);
    }

    #[test]
    fn the_eucalyptus_dialect_sends_none_of_the_aws_only_parameters() {
        let spec = LaunchSpec {
            image_id: "emi-1".into(),
            root_size_gib: Some(20),
            ..Default::default()
        };
        let req = client(Dialect::Eucalyptus)
            .run_instances_request(&spec)
            .unwrap();
        let input = req.as_input();
        assert!(input.get_tag_specifications().is_none());
        assert!(input.get_metadata_options().is_none());
        assert!(input.get_instance_market_options().is_none());
        let ebs = input.get_block_device_mappings().as_ref().unwrap()[0]
            .ebs()
            .unwrap()
            .clone();
        assert_eq!(ebs.volume_size(), Some(20));
        assert_eq!(
            (ebs.volume_type(), ebs.encrypted(), ebs.kms_key_id()),
            (None, None, None),
            "only the size, which 4.4 binds"
        );
        // AWS-only parameters given to a Eucalyptus client are refused, not sent.
        let aws = LaunchSpec {
            aws: Some(aws_launch()),
            ..spec
        };
        assert!(
            client(Dialect::Eucalyptus)
                .run_instances_request(&aws)
                .is_err()
        );
    }

    #[test]
    fn spot_is_one_launch_and_a_public_address_choice_moves_subnet_and_groups_to_the_interface() {
        use aws_sdk_ec2::types::{InstanceInterruptionBehavior, MarketType, SpotInstanceType};
        let spec = LaunchSpec {
            image_id: "ami-1".into(),
            subnet_id: Some("subnet-1".into()),
            security_group_ids: vec!["sg-1".into()],
            aws: Some(AwsLaunch {
                spot: Some(Spot {
                    max_price: Some("0.05".into()),
                }),
                public_ip: Some(false),
                ..aws_launch()
            }),
            ..Default::default()
        };
        let req = client(Dialect::Aws).run_instances_request(&spec).unwrap();
        let input = req.as_input();
        let market = input.get_instance_market_options().as_ref().unwrap();
        assert_eq!(market.market_type(), Some(&MarketType::Spot));
        let spot = market.spot_options().unwrap();
        assert_eq!(spot.max_price(), Some("0.05"));
        assert_eq!(spot.spot_instance_type(), Some(&SpotInstanceType::OneTime));
        assert_eq!(
            spot.instance_interruption_behavior(),
            Some(&InstanceInterruptionBehavior::Terminate)
        );
        assert_eq!(input.get_subnet_id(), &None, "in the interface instead");
        assert_eq!(input.get_security_group_ids(), &None);
        let eni = &input.get_network_interfaces().as_ref().unwrap()[0];
        assert_eq!(eni.device_index(), Some(0));
        assert_eq!(eni.associate_public_ip_address(), Some(false));
        assert_eq!(eni.subnet_id(), Some("subnet-1"));
        assert_eq!(eni.groups(), ["sg-1".to_string()]);
        // On demand and as the subnet says: neither is sent.
        let plain = LaunchSpec {
            aws: Some(aws_launch()),
            ..spec
        };
        let req = client(Dialect::Aws).run_instances_request(&plain).unwrap();
        let input = req.as_input();
        assert!(input.get_instance_market_options().is_none());
        assert!(input.get_network_interfaces().is_none());
        assert_eq!(input.get_subnet_id().as_deref(), Some("subnet-1"));
    }

    #[test]
    fn the_aws_dialect_tags_at_launch_requires_imdsv2_and_encrypts_a_gp3_root() {
        use aws_sdk_ec2::types::{HttpTokensState, ResourceType, VolumeType};
        let spec = LaunchSpec {
            image_id: "ami-1".into(),
            root_device_name: Some("/dev/xvda".into()),
            aws: Some(aws_launch()),
            ..Default::default()
        };
        let req = client(Dialect::Aws).run_instances_request(&spec).unwrap();
        let input = req.as_input();
        let specs = input.get_tag_specifications().as_ref().unwrap();
        let kinds: Vec<_> = specs
            .iter()
            .filter_map(|s| s.resource_type().cloned())
            .collect();
        assert_eq!(
            kinds,
            [
                ResourceType::Instance,
                ResourceType::Volume,
                ResourceType::NetworkInterface
            ]
        );
        for s in specs {
            assert_eq!(s.tags()[0].key(), Some("docker-euca:store"));
        }
        let md = input.get_metadata_options().as_ref().unwrap();
        assert_eq!(md.http_tokens(), Some(&HttpTokensState::Required));
        assert_eq!(md.http_put_response_hop_limit(), Some(1));
        let mapping = &input.get_block_device_mappings().as_ref().unwrap()[0];
        assert_eq!(
            mapping.device_name(),
            Some("/dev/xvda"),
            "the image's root device"
        );
        let ebs = mapping.ebs().unwrap();
        assert_eq!(ebs.volume_type(), Some(&VolumeType::Gp3));
        assert_eq!(ebs.encrypted(), Some(true));
        assert_eq!(
            ebs.volume_size(),
            None,
            "the image's size unless --root-size"
        );
        // Relaxed as asked.
        let relaxed = LaunchSpec {
            aws: Some(AwsLaunch {
                metadata: InstanceMetadata {
                    tokens_required: false,
                    hop_limit: 2,
                },
                root_volume: RootVolume {
                    volume_type: "io2".into(),
                    iops: Some(4000),
                    encrypted: true,
                    kms_key_id: Some("alias/k".into()),
                    ..RootVolume::default()
                },
                ..aws_launch()
            }),
            ..spec
        };
        let req = client(Dialect::Aws)
            .run_instances_request(&relaxed)
            .unwrap();
        let input = req.as_input();
        let md = input.get_metadata_options().as_ref().unwrap();
        assert_eq!(md.http_tokens(), Some(&HttpTokensState::Optional));
        assert_eq!(md.http_put_response_hop_limit(), Some(2));
        let ebs = input.get_block_device_mappings().as_ref().unwrap()[0]
            .ebs()
            .unwrap()
            .clone();
        assert_eq!(ebs.volume_type(), Some(&VolumeType::Io2));
        assert_eq!(
            (ebs.iops(), ebs.kms_key_id()),
            (Some(4000), Some("alias/k"))
        );
    }

    #[test]
    fn polls_back_off_to_a_cap_so_a_long_boot_costs_few_calls() {
        let polls_within = |secs: u64| {
            let mut schedule = PollSchedule::new();
            let mut t = Duration::ZERO;
            let mut n = 0;
            loop {
                t += schedule.next_delay();
                if t > Duration::from_secs(secs) {
                    return n;
                }
                n += 1;
            }
        };
        assert_eq!(polls_within(1), 1);
        assert!(polls_within(9) <= 4, "{}", polls_within(9));
        assert!(polls_within(60) <= 14, "{}", polls_within(60));
        let mut schedule = PollSchedule::new();
        let delays: Vec<_> = (0..8).map(|_| schedule.next_delay()).collect();
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*delays.last().unwrap(), PollSchedule::CAP);
    }

    #[test]
    fn the_api_timeout_is_sixty_seconds_unless_set_to_a_positive_number() {
        assert_eq!(parse_api_timeout(None), Duration::from_secs(60));
        assert_eq!(parse_api_timeout(Some("2.5")), Duration::from_millis(2500));
        for bad in ["0", "-1", "soon", "", "inf"] {
            assert_eq!(
                parse_api_timeout(Some(bad)),
                Duration::from_secs(60),
                "{bad}"
            );
        }
    }

    #[test]
    fn endpoint_shapes() {
        assert!(check_endpoint("http://10.0.0.1:8773/services/compute/").is_ok());
        assert!(check_endpoint("https://ec2.cloud.example/").is_ok());
        assert!(check_endpoint("ec2.cloud.example").is_err());
        assert!(check_endpoint("http:///x").is_err());
    }

    #[test]
    fn a_ca_bundle_must_hold_pem_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let ca = crate::tls::CertificateAuthority::generate("ca.test", 1).unwrap();
        assert!(read_ca_bundle(&write("ca.pem", ca.cert_pem())).is_ok());
        let key = ca.key_pem();
        for (name, text) in [
            ("junk.pem", "this is not a certificate\n"),
            ("empty.pem", ""),
            ("key.pem", key.expose().as_str()),
            (
                "broken.pem",
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            ),
        ] {
            let err = read_ca_bundle(&write(name, text)).unwrap_err();
            assert!(
                matches!(err, CloudError::CaBundleNotPem { .. }),
                "{name}: {err}"
            );
            assert!(err.hint().unwrap().contains("BEGIN CERTIFICATE"), "{name}");
        }
        let err = read_ca_bundle(&dir.path().join("missing.pem")).unwrap_err();
        assert!(matches!(err, CloudError::CaBundle { .. }), "{err}");
        assert!(err.hint().is_some());
    }
}
