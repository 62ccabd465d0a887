//! docs/iam-policy.json, the smallest IAM policy the plugin needs: every EC2 action a
//! machine's life sends (counted by the testbed, per access key) is in it, and everything
//! that changes the cloud is conditioned on docker-euca's tags.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

const POLICY: &str = include_str!("../../docs/iam-policy.json");

fn statements() -> Vec<Value> {
    let policy: Value = serde_json::from_str(POLICY).expect("docs/iam-policy.json is JSON");
    policy["Statement"].as_array().unwrap().clone()
}

fn actions_of(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(list) => list
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect(),
        other => panic!("Action is {other}"),
    }
}

/// The EC2 actions the policy allows (`ec2:RunInstances` → `RunInstances`).
pub fn allowed() -> BTreeSet<String> {
    statements()
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(actions_of)
        .map(|a| {
            a.strip_prefix("ec2:")
                .expect("only EC2 actions")
                .to_string()
        })
        .collect()
}

/// Every action `stats` (a user's `testbed stats`) counts is allowed by the policy.
#[track_caller]
pub fn assert_allows(stats: &HashMap<String, u64>) {
    let allowed = allowed();
    let missing: Vec<&String> = stats.keys().filter(|a| !allowed.contains(*a)).collect();
    assert!(
        missing.is_empty(),
        "docs/iam-policy.json lacks {missing:?} (sent: {stats:?})"
    );
    assert!(!stats.is_empty(), "no call was counted");
}

#[test]
fn what_changes_the_cloud_is_conditioned_on_docker_eucas_tags() {
    for s in statements() {
        let sid = s["Sid"].as_str().unwrap_or("?");
        assert_eq!(s["Effect"], "Allow", "{sid}: the policy only allows");
        let actions = actions_of(&s);
        let reads = actions.iter().all(|a| a.starts_with("ec2:Describe"));
        // RunInstances also names what it launches from (image, subnet, group, key pair) and
        // CreateSecurityGroup the VPC: those resources are the user's, not made by the call.
        let made_from = s["Resource"]
            .as_array()
            .map(|r| {
                r.iter().all(|x| {
                    let arn = x.as_str().unwrap();
                    ["image/", "subnet/", "security-group/", "key-pair/", "vpc/"]
                        .iter()
                        .any(|kind| arn.contains(kind))
                })
            })
            .unwrap_or_else(|| s["Resource"].as_str().unwrap().contains("vpc/"));
        let launch_or_make = actions
            .iter()
            .all(|a| a == "ec2:RunInstances" || a == "ec2:CreateSecurityGroup");
        if reads || (made_from && launch_or_make && s["Condition"].is_null()) {
            continue;
        }
        let condition = s["Condition"].to_string();
        assert!(
            condition.contains("docker-euca:store") || condition.contains("ec2:CreateAction"),
            "{sid}: {actions:?} without a docker-euca tag condition: {condition}"
        );
    }
    assert!(
        !allowed().iter().any(|a| a == "*" || a.ends_with('*')),
        "no wildcards"
    );
}
