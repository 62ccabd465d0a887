//! Machines for `ls` measurements: records whose instances exist in the cloud (launched in one
//! RunInstances) but never boot, so only the API side of `ls` is measured.

use aws_sdk_ec2::types::InstanceType;
use docker_euca::{
    names::MachineName,
    store::{MachineRecord, Store},
};

use super::{
    DockerHome,
    testbed::{User, block_on, env},
};

/// Launches `n` instances in one call and writes a record for each; returns their ids.
pub fn pending_machines(home: &DockerHome, user: &User, prefix: &str, n: i32) -> Vec<String> {
    let ec2 = user.ec2();
    let out = block_on(
        ec2.sdk()
            .run_instances()
            .image_id(&env()["EUCA_TESTBED_IMAGE"])
            .instance_type(InstanceType::M1Small)
            .min_count(n)
            .max_count(n)
            .send(),
    )
    .unwrap();
    let ids: Vec<String> = out
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    assert_eq!(ids.len(), n as usize);
    let store = Store::new(home.path());
    for (i, id) in ids.iter().enumerate() {
        let mut r = MachineRecord::new(MachineName::new(format!("{prefix}{i:03}")).unwrap());
        r.cloud.endpoint = Some(env()["EC2_URL"].clone());
        r.cloud.region = Some("eucalyptus".into());
        r.cloud.profile = Some("default".into());
        r.cloud.access_key_id = Some(user.access_key.clone());
        r.cloud.instance_id = Some(id.clone());
        store.create(&r).unwrap();
    }
    ids
}

pub fn terminate(user: &User, ids: &[String]) {
    let ec2 = user.ec2();
    for chunk in ids.chunks(50) {
        block_on(
            ec2.sdk()
                .terminate_instances()
                .set_instance_ids(Some(chunk.to_vec()))
                .send(),
        )
        .unwrap();
    }
}
