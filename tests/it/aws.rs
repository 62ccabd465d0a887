//! The AWS dialect against the testbed's AWS personality (no strict binding, region
//! us-east-1, the testbed's VPC as the default VPC): what a create sends and what it leaves,
//! through the whole life of a machine; spot, with and without its fallback; and the same
//! create on Eucalyptus sending none of it.

use aws_sdk_ec2::types::{Filter, HttpTokensState, InstanceLifecycleType, VolumeType};
use docker_euca::dialect::Dialect;

use crate::support::{
    DockerHome, ok, run, server_version,
    testbed::{
        User, assert_nothing_left, block_on, create_ok, env, euca, groups_named_for, record, unique,
    },
    text,
};

/// The parameters `action`'s requests carried (every one of them, merged).
fn params_of(requests: &[(String, Vec<String>)], action: &str) -> Vec<String> {
    requests
        .iter()
        .filter(|(a, _)| a == action)
        .flat_map(|(_, p)| p.clone())
        .collect()
}

/// The parameters only the AWS dialect sends (Eucalyptus 4.4's binding refuses each).
const AWS_ONLY: &[&str] = &[
    "TagSpecification.",
    "MetadataOptions.",
    "InstanceMarketOptions.",
    "Ebs.Encrypted",
    "Ebs.VolumeType",
    "NetworkInterface.",
];

fn aws_only(params: &[String]) -> Vec<&String> {
    params
        .iter()
        .filter(|p| AWS_ONLY.iter().any(|a| p.contains(a)))
        .collect()
}

fn instance(user: &User, id: &str) -> aws_sdk_ec2::types::Instance {
    let out = block_on(
        user.ec2()
            .sdk()
            .describe_instances()
            .instance_ids(id)
            .send(),
    )
    .unwrap();
    out.reservations()[0].instances()[0].clone()
}

fn tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// The volumes tagged as the machine's (deleted ones are gone from the answer).
fn volumes_of(user: &User, name: &str) -> Vec<aws_sdk_ec2::types::Volume> {
    let f = Filter::builder()
        .name("tag:docker-euca:machine")
        .values(name)
        .build();
    let out = block_on(user.ec2().sdk().describe_volumes().filters(f).send()).unwrap();
    out.volumes().to_vec()
}

#[test]
fn an_aws_machine_is_tagged_at_launch_imdsv2_encrypted_gp3_through_its_whole_life() {
    // What the test itself looks at, it asks as another user of the account: the machine's
    // user's calls are the plugin's alone (for the request log and the policy check).
    let (home, user, audit) = (DockerHome::new(), User::aws(), User::aws());
    let name = unique("aws-life");
    create_ok(&home, &user, &name, &["-q"]);
    let rec = record(&home, &name);
    assert_eq!(rec.cloud.dialect, Some(Dialect::Aws));
    assert_eq!(rec.cloud.region.as_deref(), Some("us-east-1"));
    assert_eq!(
        rec.cloud.subnet_id.as_deref(),
        Some(env()["EUCA_TESTBED_SUBNET"].as_str()),
        "without --subnet, the default VPC's subnet"
    );
    let id = rec.cloud.instance_id.clone().unwrap();

    // What was sent: tags, IMDSv2 and the root volume in the launch itself; no CreateTags.
    let requests = user.requests();
    let run_params = params_of(&requests, "RunInstances");
    for p in [
        "TagSpecification.1.ResourceType",
        "TagSpecification.2.ResourceType",
        "TagSpecification.3.ResourceType",
        "MetadataOptions.HttpTokens",
        "MetadataOptions.HttpPutResponseHopLimit",
        "BlockDeviceMapping.1.Ebs.VolumeType",
        "BlockDeviceMapping.1.Ebs.Encrypted",
        "SubnetId",
    ] {
        assert!(
            run_params.iter().any(|x| x == p),
            "RunInstances lacks {p}: {run_params:?}"
        );
    }
    let group_params = params_of(&requests, "CreateSecurityGroup");
    assert!(
        group_params
            .iter()
            .any(|p| p == "TagSpecification.1.ResourceType"),
        "the group is not tagged at creation: {group_params:?}"
    );
    let actions: Vec<&str> = requests.iter().map(|(a, _)| a.as_str()).collect();
    assert!(
        !actions.contains(&"CreateTags"),
        "tagged after the fact: {actions:?}"
    );
    eprintln!("AWS create: {} requests: {actions:?}", actions.len());

    // What the cloud has: every resource tagged, IMDSv2, an encrypted gp3 root volume.
    let i = instance(&audit, &id);
    assert_eq!(tag(i.tags(), "docker-euca:machine"), Some(name.as_str()));
    assert_eq!(tag(i.tags(), "Name"), Some(name.as_str()));
    let md = i.metadata_options().unwrap();
    assert_eq!(md.http_tokens(), Some(&HttpTokensState::Required));
    assert_eq!(md.http_put_response_hop_limit(), Some(1));
    assert!(
        i.public_ip_address().is_some(),
        "the default subnet maps a public address"
    );
    let volumes = volumes_of(&audit, &name);
    assert_eq!(volumes.len(), 1, "{volumes:?}");
    assert_eq!(volumes[0].volume_type(), Some(&VolumeType::Gp3));
    assert_eq!(volumes[0].encrypted(), Some(true));
    assert!(tag(volumes[0].tags(), "docker-euca:store").is_some());
    assert_eq!(groups_named_for(&audit, &name).len(), 1);

    // Its life: ls, the real docker CLI, ssh, stop/start with a new public address.
    let listed = ok(&mut euca(&home, &user, &["ls"]));
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&name) && l.contains("Running")),
        "{listed}"
    );
    assert!(!server_version(&home, &name).is_empty());
    let out = ok(&mut euca(
        &home,
        &user,
        &["ssh", &name, "--", "echo", "via-ssh"],
    ));
    assert_eq!(out.trim(), "via-ssh");
    let before = rec.cloud.public_ip.clone().unwrap();
    ok(&mut euca(&home, &user, &["stop", &name]));
    ok(&mut euca(&home, &user, &["start", &name]));
    let after = record(&home, &name).cloud.public_ip.unwrap();
    assert_ne!(
        before, after,
        "AWS gives a stopped instance's public address back"
    );
    assert!(!server_version(&home, &name).is_empty());

    ok(&mut euca(&home, &user, &["rm", "-y", &name]));
    assert_nothing_left(&audit, &name);
    assert!(
        volumes_of(&audit, &name).is_empty(),
        "the root volume outlived rm"
    );
    crate::iam_policy::assert_allows(&user.stats());
}

#[test]
fn a_spot_machine_is_one_launch_cannot_be_stopped_and_leaves_nothing() {
    let (home, user) = (DockerHome::new(), User::aws());
    let name = unique("aws-spot");
    let args = ["-q", "--spot", "--spot-max-price", "0.05", "--no-public-ip"];
    create_ok(&home, &user, &name, &args);
    let rec = record(&home, &name);
    assert!(rec.cloud.spot);
    assert!(
        rec.cloud.use_private_address,
        "--no-public-ip reaches the private address"
    );
    let i = instance(&user, rec.cloud.instance_id.as_deref().unwrap());
    assert_eq!(i.instance_lifecycle(), Some(&InstanceLifecycleType::Spot));
    assert_eq!(i.public_ip_address(), None, "--no-public-ip");
    let requests = user.requests();
    assert_eq!(
        params_of(&requests, "RequestSpotInstances"),
        Vec::<String>::new()
    );
    let run_params = params_of(&requests, "RunInstances");
    for p in [
        "InstanceMarketOptions.MarketType",
        "InstanceMarketOptions.SpotOptions.MaxPrice",
        "NetworkInterface.1.AssociatePublicIpAddress",
    ] {
        assert!(
            run_params.iter().any(|x| x == p),
            "RunInstances lacks {p}: {run_params:?}"
        );
    }
    assert!(!server_version(&home, &name).is_empty());

    // EC2 stops no one-time spot instance: said in one line, before any call.
    let calls = user.stats().get("StopInstances").copied().unwrap_or(0);
    let out = run(&mut euca(&home, &user, &["stop", &name]));
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is a spot instance") && err.contains("rm"),
        "{err}"
    );
    assert_eq!(
        user.stats().get("StopInstances").copied().unwrap_or(0),
        calls
    );
    assert_eq!(
        instance(&user, rec.cloud.instance_id.as_deref().unwrap())
            .state()
            .and_then(|s| s.name())
            .map(|s| s.as_str().to_string())
            .as_deref(),
        Some("running")
    );

    ok(&mut euca(&home, &user, &["rm", "-y", &name]));
    assert_nothing_left(&user, &name);
    assert!(volumes_of(&user, &name).is_empty());
}

#[test]
fn no_spot_capacity_falls_back_to_on_demand_when_asked_and_fails_cleanly_when_not() {
    let (home, user) = (DockerHome::new(), User::aws());
    user.fault("RunInstances", &["--capacity", "--count", "50"]);

    let refused = unique("aws-nospot");
    let out = run(&mut euca(
        &home,
        &user,
        &[
            "create",
            &refused,
            "--image",
            env()["EUCA_TESTBED_IMAGE"].as_str(),
            "-q",
            "--spot",
        ],
    ));
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("RunInstances") && err.contains("InsufficientInstanceCapacity"),
        "{err}"
    );
    assert_nothing_left(&user, &refused);
    assert!(groups_named_for(&user, &refused).is_empty());

    let name = unique("aws-fallback");
    let out = run(&mut euca(
        &home,
        &user,
        &[
            "create",
            &name,
            "--image",
            env()["EUCA_TESTBED_IMAGE"].as_str(),
            "--spot",
            "--spot-fallback",
            "on-demand",
        ],
    ));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "no spot capacity (InsufficientInstanceCapacity): launching on demand instead"
        ),
        "{}",
        text(&out)
    );
    let rec = record(&home, &name);
    assert!(!rec.cloud.spot);
    let i = instance(&user, rec.cloud.instance_id.as_deref().unwrap());
    assert_eq!(i.instance_lifecycle(), None, "on demand");
    let launches: Vec<Vec<String>> = user
        .requests()
        .into_iter()
        .filter(|(a, _)| a == "RunInstances")
        .map(|(_, p)| p)
        .collect();
    let spot = |p: &Vec<String>| p.iter().any(|x| x.starts_with("InstanceMarketOptions."));
    assert!(launches.len() >= 2 && spot(&launches[0]), "{launches:?}");
    assert!(!spot(launches.last().unwrap()), "{launches:?}");
    assert!(!server_version(&home, &name).is_empty());
    ok(&mut euca(&home, &user, &["rm", "-y", &name]));
    assert_nothing_left(&user, &name);
}

#[test]
fn the_same_create_on_eucalyptus_sends_none_of_the_aws_parameters() {
    let (home, user) = (DockerHome::new(), User::new());
    let name = unique("euca-plain");
    create_ok(&home, &user, &name, &["-q"]);
    let requests = user.requests();
    let sent: Vec<String> = requests.iter().flat_map(|(_, p)| p.clone()).collect();
    assert_eq!(aws_only(&sent), Vec::<&String>::new(), "{requests:?}");
    let actions: Vec<&str> = requests.iter().map(|(a, _)| a.as_str()).collect();
    eprintln!("Eucalyptus create: {} requests: {actions:?}", actions.len());
    assert!(
        actions.contains(&"CreateTags"),
        "Eucalyptus tags after the launch"
    );
    ok(&mut euca(&home, &user, &["rm", "-y", &name]));
    assert_nothing_left(&user, &name);
}
