//! Everything docker-euca made on one cloud that these credentials can see, found by the marks a
//! create leaves on it rather than by any record: the `docker-euca:machine` tag on instances and
//! security groups, and the `docker-euca-` name prefix on key pairs (Eucalyptus 4.4 cannot tag
//! key pairs). Which of it is an orphan is decided above this layer (`ops::prune`), from the
//! records; this only lists.

use aws_sdk_ec2::types::{Filter, Instance};

use super::{CloudError, Ec2, GroupInfo, MACHINE_TAG, error::from_sdk, tag_pairs};

/// Every name docker-euca gives a key pair it imports starts with this.
pub const KEY_PAIR_PREFIX: &str = "docker-euca-";

/// Values per `key-name` filter in one DescribeInstances (EC2 allows up to 200).
const VALUES_PER_FILTER: usize = 100;

/// What [`Ec2::inventory`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Instances carrying a `docker-euca:machine` tag (of any store), in every state.
    pub instances: Vec<InventoryInstance>,
    /// Security groups carrying a `docker-euca:machine` tag (of any store).
    pub groups: Vec<GroupInfo>,
    /// Names of the key pairs that start with [`KEY_PAIR_PREFIX`], sorted.
    pub key_pairs: Vec<String>,
    /// Instances not terminated that were launched with one of those key pairs, whatever their
    /// tags (or none): a key pair still in use is never an orphan, even when the instance using
    /// it is not one of docker-euca's.
    pub key_users: Vec<InventoryInstance>,
}

/// What the inventory keeps of one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryInstance {
    pub id: String,
    pub state: String,
    pub tags: Vec<(String, String)>,
    /// The EC2 key pair it was launched with.
    pub key_name: Option<String>,
    /// The security groups it is in.
    pub group_ids: Vec<String>,
    /// The RunInstances client token it was launched with.
    pub client_token: Option<String>,
    /// Its `AmiLaunchIndex` in that launch (a fleet's instances share one token).
    pub launch_index: Option<u32>,
}

impl Ec2 {
    /// Lists what docker-euca made here: one paginated DescribeInstances and one
    /// DescribeSecurityGroups, both filtered by `tag-key=docker-euca:machine`, one
    /// DescribeKeyPairs, and (only when there are `docker-euca-` key pairs) a DescribeInstances
    /// by `key-name` for the instances that use them.
    pub async fn inventory(&self) -> Result<Inventory, CloudError> {
        let tagged = || {
            Filter::builder()
                .name("tag-key")
                .values(MACHINE_TAG)
                .build()
        };
        let instances = self.inventory_instances(tagged()).await?;
        let groups = self.inventory_groups(tagged()).await?;
        let key_pairs = self.inventory_key_pairs().await?;
        let mut key_users = Vec::new();
        for names in key_pairs.chunks(VALUES_PER_FILTER) {
            let by_key = Filter::builder()
                .name("key-name")
                .set_values(Some(names.to_vec()))
                .build();
            key_users.extend(
                self.inventory_instances(by_key)
                    .await?
                    .into_iter()
                    .filter(|i| i.state != "terminated"),
            );
        }
        Ok(Inventory {
            instances,
            groups,
            key_pairs,
            key_users,
        })
    }

    /// Every page of a DescribeInstances with `filter`.
    async fn inventory_instances(
        &self,
        filter: Filter,
    ) -> Result<Vec<InventoryInstance>, CloudError> {
        self.every_instance(Some(filter), inventory_instance).await
    }

    /// Every page of a DescribeSecurityGroups with `filter` (a next token is sent only when an
    /// answer carried one: Eucalyptus 4.4 does not page groups, nor bind `NextToken` for them).
    async fn inventory_groups(&self, filter: Filter) -> Result<Vec<GroupInfo>, CloudError> {
        let mut found = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_security_groups()
                .filters(filter.clone())
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| from_sdk("DescribeSecurityGroups", &self.endpoint, e))?;
            found.extend(out.security_groups().iter().map(|g| GroupInfo {
                id: g.group_id().unwrap_or_default().to_string(),
                name: g.group_name().unwrap_or_default().to_string(),
                tags: tag_pairs(g.tags()),
            }));
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => return Ok(found),
            }
        }
    }

    /// The key pairs named with [`KEY_PAIR_PREFIX`]. Matched here rather than with a wildcard
    /// `key-name` filter, which not every EC2 dialect implements.
    async fn inventory_key_pairs(&self) -> Result<Vec<String>, CloudError> {
        let out = self
            .client
            .describe_key_pairs()
            .send()
            .await
            .map_err(|e| from_sdk("DescribeKeyPairs", &self.endpoint, e))?;
        let mut names: Vec<String> = out
            .key_pairs()
            .iter()
            .filter_map(|k| k.key_name())
            .filter(|n| n.starts_with(KEY_PAIR_PREFIX))
            .map(str::to_string)
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}

fn inventory_instance(i: &Instance) -> InventoryInstance {
    InventoryInstance {
        launch_index: i.ami_launch_index().and_then(|n| u32::try_from(n).ok()),
        id: i.instance_id().unwrap_or_default().to_string(),
        state: i
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default(),
        tags: tag_pairs(i.tags()),
        key_name: i.key_name().filter(|k| !k.is_empty()).map(str::to_string),
        group_ids: i
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id())
            .map(str::to_string)
            .collect(),
        client_token: i
            .client_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    }
}
