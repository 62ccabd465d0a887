//! Read-only calls for `doctor`. Each gets a short timeout of its own and no retry, so that a
//! check never hangs behind the client's usual minutes of patience, and the cheapest call also
//! keeps the answer's `Date` header: the cloud's clock, for the skew check (SigV4 requests more
//! than 15 minutes off are refused).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use aws_sdk_ec2::{
    config::{retry::RetryConfig, timeout::TimeoutConfig},
    types::Filter,
};
use aws_smithy_runtime_api::{
    box_error::BoxError,
    client::{
        interceptors::{Intercept, context::BeforeDeserializationInterceptorContextRef},
        runtime_components::RuntimeComponents,
    },
};
use aws_smithy_types::config_bag::ConfigBag;

use super::{CloudError, Ec2, InstanceInfo, error::from_sdk, instance_info};

/// Added to a probe's own timeout for the outer guard: the SDK's timeout normally ends the
/// call first and names what happened; the guard only makes sure that nothing waits longer.
const GUARD: Duration = Duration::from_secs(2);

/// The cloud's clock as one answer's `Date` header showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerDate {
    /// The header as sent (`Tue, 03 Nov 2026 10:00:00 GMT`).
    pub header: String,
    /// This machine's clock when the answer arrived.
    pub received: SystemTime,
}

impl ServerDate {
    /// The cloud's clock minus ours, in whole seconds (positive: the cloud is ahead); `None`
    /// when the header is no HTTP date. The header has one-second resolution, so the answer is
    /// good to a second or two.
    pub fn skew_secs(&self) -> Option<i64> {
        use aws_smithy_types::{DateTime, date_time::Format};
        let theirs = DateTime::from_str(self.header.trim(), Format::HttpDate).ok()?;
        let ours = DateTime::from(self.received);
        Some(theirs.secs() - ours.secs())
    }
}

/// What DescribeAvailabilityZones said, and the `Date` of its answer (an error answer has one
/// too: a refusal for a skewed clock still shows the cloud's time).
#[derive(Debug)]
pub struct AccessProbe {
    pub zones: Result<Vec<String>, CloudError>,
    pub date: Option<ServerDate>,
}

/// What DescribeInstances says about one instance, with the security groups it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceProbe {
    pub info: InstanceInfo,
    /// The instance's own group list, else its reservation's (EC2-Classic and EDGE answers
    /// carry the groups at the reservation).
    pub group_ids: Vec<String>,
}

/// One ingress permission of a security group, as far as "does it let us in" needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressRule {
    /// `tcp`, `udp`, `icmp`, a protocol number, or `-1` for all.
    pub protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    /// The source CIDRs the rule admits.
    pub cidrs: Vec<String>,
    /// How many sources are other groups (EDGE group pairs): they admit those groups'
    /// instances, never a client outside the cloud.
    pub group_pairs: usize,
}

/// A security group's ingress rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRules {
    pub id: String,
    pub name: String,
    pub rules: Vec<IngressRule>,
}

/// Keeps the `Date` header of the last answer an operation received.
#[derive(Debug, Clone, Default)]
struct DateRecorder(Arc<Mutex<Option<ServerDate>>>);

impl Intercept for DateRecorder {
    fn name(&self) -> &'static str {
        "DoctorDateRecorder"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            let seen = ServerDate {
                header: date.to_string(),
                received: SystemTime::now(),
            };
            if let Ok(mut slot) = self.0.lock() {
                *slot = Some(seen);
            }
        }
        Ok(())
    }
}

/// The per-call override: one attempt, bounded by `timeout` from connect to answer.
fn quick(timeout: Duration) -> aws_sdk_ec2::config::Builder {
    aws_sdk_ec2::config::Builder::new()
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeout)
                .operation_attempt_timeout(timeout)
                .operation_timeout(timeout)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(1))
}

impl Ec2 {
    fn no_answer(&self, action: &'static str, timeout: Duration) -> CloudError {
        CloudError::Unreachable {
            action,
            endpoint: self.endpoint.clone(),
            message: format!("no answer within {}s", timeout.as_secs_f64()),
        }
    }

    /// DescribeAvailabilityZones (the cheapest signed call), keeping the answer's `Date`.
    pub async fn probe_access(&self, timeout: Duration) -> AccessProbe {
        let recorder = DateRecorder::default();
        let call = self
            .client
            .describe_availability_zones()
            .customize()
            .interceptor(recorder.clone())
            .config_override(quick(timeout))
            .send();
        let action = "DescribeAvailabilityZones";
        let zones = match tokio::time::timeout(timeout + GUARD, call).await {
            Ok(Ok(out)) => Ok(out
                .availability_zones()
                .iter()
                .filter_map(|z| z.zone_name().map(str::to_string))
                .collect()),
            Ok(Err(e)) => Err(from_sdk(action, &self.endpoint, e)),
            Err(_) => Err(self.no_answer(action, timeout)),
        };
        let date = recorder.0.lock().ok().and_then(|d| d.clone());
        AccessProbe { zones, date }
    }

    /// The names of the regions DescribeRegions lists.
    pub async fn region_names(&self, timeout: Duration) -> Result<Vec<String>, CloudError> {
        let call = self
            .client
            .describe_regions()
            .customize()
            .config_override(quick(timeout))
            .send();
        let action = "DescribeRegions";
        match tokio::time::timeout(timeout + GUARD, call).await {
            Ok(Ok(out)) => Ok(out
                .regions()
                .iter()
                .filter_map(|r| r.region_name().map(str::to_string))
                .collect()),
            Ok(Err(e)) => Err(from_sdk(action, &self.endpoint, e)),
            Err(_) => Err(self.no_answer(action, timeout)),
        }
    }

    /// The instance (by an `instance-id` filter, so an unknown id is simply absent) and the
    /// security groups it is in.
    pub async fn probe_instance(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<Option<InstanceProbe>, CloudError> {
        let call = self
            .client
            .describe_instances()
            .filters(Filter::builder().name("instance-id").values(id).build())
            .customize()
            .config_override(quick(timeout))
            .send();
        let action = "DescribeInstances";
        let out = match tokio::time::timeout(timeout + GUARD, call).await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => return Err(from_sdk(action, &self.endpoint, e)),
            Err(_) => return Err(self.no_answer(action, timeout)),
        };
        for reservation in out.reservations() {
            for instance in reservation.instances() {
                if instance.instance_id() != Some(id) {
                    continue;
                }
                let ids = |groups: &[aws_sdk_ec2::types::GroupIdentifier]| -> Vec<String> {
                    groups
                        .iter()
                        .filter_map(|g| g.group_id().map(str::to_string))
                        .collect()
                };
                let mut group_ids = ids(instance.security_groups());
                if group_ids.is_empty() {
                    group_ids = ids(reservation.groups());
                }
                return Ok(Some(InstanceProbe {
                    info: instance_info(instance),
                    group_ids,
                }));
            }
        }
        Ok(None)
    }

    /// The ingress rules of these groups (a `group-id` filter: a group that no longer exists
    /// is simply missing from the answer).
    pub async fn ingress_rules(
        &self,
        group_ids: &[String],
        timeout: Duration,
    ) -> Result<Vec<GroupRules>, CloudError> {
        let call = self
            .client
            .describe_security_groups()
            .filters(
                Filter::builder()
                    .name("group-id")
                    .set_values(Some(group_ids.to_vec()))
                    .build(),
            )
            .customize()
            .config_override(quick(timeout))
            .send();
        let action = "DescribeSecurityGroups";
        let out = match tokio::time::timeout(timeout + GUARD, call).await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => return Err(from_sdk(action, &self.endpoint, e)),
            Err(_) => return Err(self.no_answer(action, timeout)),
        };
        Ok(out
            .security_groups()
            .iter()
            .filter(|g| {
                g.group_id()
                    .is_some_and(|id| group_ids.iter().any(|want| want == id))
            })
            .map(|g| GroupRules {
                id: g.group_id().unwrap_or_default().to_string(),
                name: g.group_name().unwrap_or_default().to_string(),
                rules: g
                    .ip_permissions()
                    .iter()
                    .map(|p| IngressRule {
                        protocol: p.ip_protocol().unwrap_or("-1").to_string(),
                        from_port: p.from_port(),
                        to_port: p.to_port(),
                        cidrs: p
                            .ip_ranges()
                            .iter()
                            .filter_map(|r| r.cidr_ip().map(str::to_string))
                            .collect(),
                        group_pairs: p.user_id_group_pairs().len(),
                    })
                    .collect(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_skew_is_the_clouds_clock_minus_ours() {
        let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        // Sun, 06 Nov 1994 08:49:37 GMT is 784111777.
        let date = |received| ServerDate {
            header: "Sun, 06 Nov 1994 08:49:37 GMT".into(),
            received,
        };
        assert_eq!(date(at(784_111_777)).skew_secs(), Some(0));
        assert_eq!(date(at(784_111_777 - 1200)).skew_secs(), Some(1200));
        assert_eq!(date(at(784_111_777 + 120)).skew_secs(), Some(-120));
        let junk = ServerDate {
            header: "yesterday".into(),
            received: at(0),
        };
        assert_eq!(junk.skew_secs(), None);
    }
}
