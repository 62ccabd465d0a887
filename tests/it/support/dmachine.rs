//! Plays docker-machine on the testbed for the import tests: launches a host the way its
//! amazonec2 driver does (an imported RSA key pair named after the machine, a shared
//! `docker-machine` group open on 22 and 2376, a `Name` tag), configures its daemon the way
//! its provisioner does (`/etc/default/docker` with `--tlsverify` and certificates from a store
//! CA made with openssl), and renders a fixture store of `tests/fixtures/docker-machine/` with
//! the host's ids filled in.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use aws_sdk_ec2::types::{InstanceType, IpPermission, IpRange, Tag};

use super::{
    ok, run_with_input,
    testbed::{User, block_on, env, testbed_bin, unique},
    text,
};

/// One host docker-machine made.
pub struct DmHost {
    pub name: String,
    pub instance_id: String,
    pub key_name: String,
    pub private_ip: String,
    pub public_ip: String,
}

/// The shared group docker-machine makes once per account (`docker-machine`), here unique.
pub struct DmGroup {
    pub name: String,
    pub id: String,
}

pub fn make_group(user: &User) -> DmGroup {
    let ec2 = user.ec2();
    let name = unique("docker-machine");
    let id = block_on(
        ec2.sdk()
            .create_security_group()
            .group_name(&name)
            .description("Docker Machine")
            .send(),
    )
    .unwrap()
    .group_id()
    .unwrap()
    .to_string();
    for port in [22, 2376] {
        block_on(
            ec2.sdk()
                .authorize_security_group_ingress()
                .group_id(&id)
                .ip_permissions(
                    IpPermission::builder()
                        .ip_protocol("tcp")
                        .from_port(port)
                        .to_port(port)
                        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                        .build(),
                )
                .send(),
        )
        .unwrap();
    }
    DmGroup { name, id }
}

/// The machine's `id_rsa` (PEM, as docker-machine's `ssh.GenerateSSHKey` writes it).
pub fn make_ssh_key(machine_dir: &Path) {
    std::fs::create_dir_all(machine_dir).unwrap();
    let key = machine_dir.join("id_rsa");
    ok(Command::new("ssh-keygen")
        .args([
            "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-C", "",
        ])
        .arg("-f")
        .arg(&key));
}

/// Launches the host with the key in `machine_dir` and waits until its sshd answers.
pub fn launch(user: &User, name: &str, machine_dir: &Path, group: &DmGroup) -> DmHost {
    make_ssh_key(machine_dir);
    let ec2 = user.ec2();
    let key_name = unique(name);
    let public = std::fs::read_to_string(machine_dir.join("id_rsa.pub")).unwrap();
    block_on(
        ec2.sdk()
            .import_key_pair()
            .key_name(&key_name)
            .public_key_material(aws_sdk_ec2::primitives::Blob::new(public.trim().as_bytes()))
            .send(),
    )
    .unwrap();
    let out = block_on(
        ec2.sdk()
            .run_instances()
            .image_id(&env()["EUCA_TESTBED_IMAGE"])
            .instance_type(InstanceType::T2Micro)
            .key_name(&key_name)
            .security_group_ids(&group.id)
            .min_count(1)
            .max_count(1)
            .send(),
    )
    .unwrap();
    let id = out.instances()[0].instance_id().unwrap().to_string();
    block_on(
        ec2.sdk()
            .create_tags()
            .resources(&id)
            .tags(Tag::builder().key("Name").value(name).build())
            .send(),
    )
    .unwrap();
    let info = block_on(ec2.wait_for_address(&id, false, Duration::from_secs(120))).unwrap();
    let public_ip = info.public_ip.unwrap();
    wait_port(public_ip.parse().unwrap(), 22);
    DmHost {
        name: name.to_string(),
        instance_id: id,
        key_name,
        private_ip: info.private_ip.unwrap(),
        public_ip,
    }
}

/// Waits (bounded) until `addr:port` accepts a connection.
pub fn wait_port(addr: IpAddr, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let to = SocketAddr::new(addr, port);
    while TcpStream::connect_timeout(&to, Duration::from_secs(2)).is_err() {
        assert!(Instant::now() < deadline, "{to} never answered");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    ok(Command::new("openssl").current_dir(dir).args(args));
}

/// The store's CA and client certificate (`certs/`), copied into the machine directory as
/// docker-machine does.
pub fn make_store_certs(store: &Path) {
    let certs = store.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    openssl(
        &certs,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/O=docker-machine",
        ],
    );
    openssl(
        &certs,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "client.csr",
            "-subj",
            "/O=docker-machine.<bootstrap>",
        ],
    );
    std::fs::write(certs.join("client.ext"), "extendedKeyUsage = clientAuth\n").unwrap();
    openssl(
        &certs,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "30",
            "-extfile",
            "client.ext",
        ],
    );
    for f in ["client.csr", "client.ext", "ca.srl"] {
        let _ = std::fs::remove_file(certs.join(f));
    }
}

/// docker-machine's provisioning of the host: server certificate for its addresses, the
/// certificates in `/etc/docker`, `DOCKER_OPTS` with `--tlsverify`, the daemon started.
pub fn provision_like_docker_machine(store: &Path, machine_dir: &Path, host: &DmHost) {
    let certs = store.join("certs");
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::copy(certs.join(f), machine_dir.join(f)).unwrap();
    }
    openssl(
        machine_dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server-key.pem",
            "-out",
            "server.csr",
            "-subj",
            &format!("/O=docker-machine.{}", host.name),
        ],
    );
    std::fs::write(
        machine_dir.join("server.ext"),
        format!(
            "subjectAltName = IP:{},IP:{},DNS:localhost\nextendedKeyUsage = serverAuth\n",
            host.public_ip, host.private_ip
        ),
    )
    .unwrap();
    let ca = certs.join("ca.pem");
    let ca_key = certs.join("ca-key.pem");
    openssl(
        machine_dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            ca.to_str().unwrap(),
            "-CAkey",
            ca_key.to_str().unwrap(),
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "30",
            "-extfile",
            "server.ext",
        ],
    );
    for f in ["server.csr", "server.ext"] {
        let _ = std::fs::remove_file(machine_dir.join(f));
    }
    let _ = std::fs::remove_file(certs.join("ca.srl"));
    let put =
        |path: &str, file: &Path| vm_write(&host.instance_id, path, &std::fs::read(file).unwrap());
    put("/etc/docker/ca.pem", &ca);
    put("/etc/docker/server.pem", &machine_dir.join("server.pem"));
    put(
        "/etc/docker/server-key.pem",
        &machine_dir.join("server-key.pem"),
    );
    vm_write(
        &host.instance_id,
        "/etc/default/docker",
        b"DOCKER_OPTS='-H tcp://0.0.0.0:2376 -H unix:///var/run/docker.sock --tlsverify --tlscacert /etc/docker/ca.pem --tlscert /etc/docker/server.pem --tlskey /etc/docker/server-key.pem --label provider=amazonec2'\n",
    );
    vm_exec(
        &host.instance_id,
        "update-rc.d docker defaults >/dev/null 2>&1; service docker start",
    );
    wait_port(host.public_ip.parse().unwrap(), 2376);
}

/// Writes a file inside the VM.
pub fn vm_write(id: &str, path: &str, contents: &[u8]) {
    let mut cmd = Command::new(testbed_bin());
    cmd.args(["exec", "-i", id, "--", "sh", "-c", &format!("cat > {path}")]);
    let out = run_with_input(&mut cmd, contents);
    assert!(
        out.status.success(),
        "writing {path} in {id}: {}",
        text(&out)
    );
}

/// Runs a shell command inside the VM.
pub fn vm_exec(id: &str, script: &str) -> String {
    ok(Command::new(testbed_bin()).args(["exec", id, "--", "sh", "-c", script]))
}

/// Renders the fixture store `fixture` (a directory of `tests/fixtures/docker-machine/`) into
/// `store`, filling in the placeholders.
pub fn render_fixture(
    fixture: &str,
    store: &Path,
    user: &User,
    group: &DmGroup,
    hosts: &[&DmHost],
) {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    values.insert("@STORE@".into(), store.display().to_string());
    values.insert("@ACCESS_KEY@".into(), user.access_key.clone());
    values.insert("@SECRET_KEY@".into(), user.secret_key.clone());
    values.insert("@ENDPOINT@".into(), env()["EC2_URL"].clone());
    values.insert("@REGION@".into(), "eucalyptus".into());
    values.insert("@IMAGE@".into(), env()["EUCA_TESTBED_IMAGE"].clone());
    values.insert("@ZONE@".into(), env()["EUCA_TESTBED_ZONE"].clone());
    // EDGE: no VPC, no subnet (docker-machine records them empty).
    values.insert("@VPC_ID@".into(), String::new());
    values.insert("@SUBNET_ID@".into(), String::new());
    values.insert("@GROUP_NAME@".into(), group.name.clone());
    values.insert("@GROUP_ID@".into(), group.id.clone());
    for h in hosts {
        let n = h.name.to_uppercase().replace('-', "_");
        values.insert(format!("@INSTANCE_ID_{n}@"), h.instance_id.clone());
        values.insert(format!("@PRIVATE_IP_{n}@"), h.private_ip.clone());
        values.insert(format!("@PUBLIC_IP_{n}@"), h.public_ip.clone());
        values.insert(format!("@KEY_NAME_{n}@"), h.key_name.clone());
    }
    let root = fixtures_dir().join(fixture);
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let to = store.join(p.strip_prefix(&root).unwrap());
            if p.is_dir() {
                std::fs::create_dir_all(&to).unwrap();
                stack.push(p);
                continue;
            }
            let mut text = std::fs::read_to_string(&p).unwrap();
            for (k, v) in &values {
                text = text.replace(k, v);
            }
            assert!(
                !text.contains("@INSTANCE_ID_"),
                "{} names a host the test did not launch",
                p.display()
            );
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::write(&to, text).unwrap();
        }
    }
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/docker-machine")
}

/// Every file under `dir` with its bytes, by relative path.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    files
}
