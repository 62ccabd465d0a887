//! Certificates checked by x509 tools and by a real mutual-TLS exchange: a local Debian dockerd
//! on a loopback TLS port, serving the generated server certificate, answers the real docker CLI
//! through a context the module wrote, and bollard's `/version`.

use std::{
    fs,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use docker_euca::{
    context::{ContextMeta, ContextStore, TlsFiles},
    tls::{CertificateAuthority, San},
};

use crate::support::{DockerHome, free_port, ok, run, text};

fn write(dir: &Path, name: &str, data: &str) {
    fs::write(dir.join(name), data).unwrap();
}

#[test]
fn openssl_verifies_purposes_and_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::generate("web1", 30).unwrap();
    let server = ca
        .issue_server(
            &[
                San::parse("127.0.0.1").unwrap(),
                San::parse("web1.test").unwrap(),
            ],
            30,
        )
        .unwrap();
    let client = ca.issue_client("client", 30).unwrap();
    write(dir.path(), "ca.pem", ca.cert_pem());
    write(dir.path(), "server.pem", &server.cert_pem);
    write(dir.path(), "client.pem", &client.cert_pem);
    let verify = |args: &[&str]| {
        let out = run(Command::new("openssl")
            .arg("verify")
            .args(args)
            .current_dir(dir.path()));
        (out.status.success(), text(&out))
    };
    let (good, out) = verify(&[
        "-CAfile",
        "ca.pem",
        "-purpose",
        "sslserver",
        "-verify_ip",
        "127.0.0.1",
        "server.pem",
    ]);
    assert!(good, "{out}");
    let (good, out) = verify(&[
        "-CAfile",
        "ca.pem",
        "-purpose",
        "sslserver",
        "-verify_hostname",
        "web1.test",
        "server.pem",
    ]);
    assert!(good, "{out}");
    let (good, out) = verify(&["-CAfile", "ca.pem", "-purpose", "sslclient", "client.pem"]);
    assert!(good, "{out}");
    // And the negatives: wrong address, wrong purpose.
    assert!(
        !verify(&[
            "-CAfile",
            "ca.pem",
            "-purpose",
            "sslserver",
            "-verify_ip",
            "10.9.9.9",
            "server.pem"
        ])
        .0
    );
    assert!(!verify(&["-CAfile", "ca.pem", "-purpose", "sslserver", "client.pem"]).0);
    assert!(!verify(&["-CAfile", "ca.pem", "-purpose", "sslclient", "server.pem"]).0);
}

/// A throwaway dockerd on 127.0.0.1:PORT with TLS verification, killed on drop.
struct LocalDockerd {
    child: Child,
    _root: tempfile::TempDir,
    port: u16,
}

impl LocalDockerd {
    fn start(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Self {
        let root = tempfile::Builder::new()
            .prefix("euca-dockerd-")
            .tempdir()
            .unwrap();
        let r = root.path();
        write(r, "ca.pem", ca_pem);
        write(r, "server.pem", cert_pem);
        write(r, "server-key.pem", key_pem);
        let port = free_port();
        let log = fs::File::create(r.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg(format!("--data-root={}", r.join("data").display()))
            .arg(format!("--exec-root={}", r.join("exec").display()))
            .arg(format!("--pidfile={}", r.join("dockerd.pid").display()))
            .arg(format!("--host=unix://{}", r.join("docker.sock").display()))
            .arg(format!("--host=tcp://127.0.0.1:{port}"))
            .args([
                "--tlsverify",
                "--storage-driver=vfs",
                "--iptables=false",
                "--bridge=none",
            ])
            .arg(format!("--tlscacert={}", r.join("ca.pem").display()))
            .arg(format!("--tlscert={}", r.join("server.pem").display()))
            .arg(format!("--tlskey={}", r.join("server-key.pem").display()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("dockerd must be installed (.ci/run installs docker.io)");
        let me = LocalDockerd {
            child,
            _root: root,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not listen: {}",
                me.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        me
    }

    fn log(&self) -> String {
        fs::read_to_string(self._root.path().join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for LocalDockerd {
    fn drop(&mut self) {
        unsafe { libc_kill(self.child.id() as i32, 15) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn real_dockerd_answers_docker_cli_and_bollard_over_mutual_tls() {
    let ca = CertificateAuthority::generate("mtls", 30).unwrap();
    let server = ca
        .issue_server(&[San::parse("127.0.0.1").unwrap()], 30)
        .unwrap();
    let client = ca.issue_client("client", 30).unwrap();
    let dockerd = LocalDockerd::start(ca.cert_pem(), &server.cert_pem, server.key_pem.expose());
    let url = format!("tcp://127.0.0.1:{}", dockerd.port);

    let home = DockerHome::new();
    let contexts = ContextStore::new(home.path());
    let tls = TlsFiles {
        ca_pem: ca.cert_pem().as_bytes().to_vec(),
        cert_pem: client.cert_pem.clone().into_bytes(),
        key_pem: client.key_pem.expose().clone().into_bytes().into(),
    };
    contexts
        .write(&ContextMeta::new("mtls", "local dockerd", &url), Some(&tls))
        .unwrap();

    let version = ok(home.docker().args([
        "--context",
        "mtls",
        "version",
        "--format",
        "{{.Server.Version}}",
    ]));
    assert!(!version.trim().is_empty(), "{}", dockerd.log());

    let rt = tokio::runtime::Runtime::new().unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let v = rt
        .block_on(docker_euca::engine::version(
            &url,
            &contexts.tls_dir("mtls"),
            Duration::from_secs(20),
        ))
        .unwrap();
    assert_eq!(v.version, version.trim());
    assert!(!v.api_version.is_empty());

    // Without a client certificate the daemon refuses: the TLS really is mutual.
    let home2 = DockerHome::new();
    let no_client = ContextStore::new(home2.path());
    no_client
        .write(&ContextMeta::new("nocert", "", &url), None)
        .unwrap();
    let out = run(home2.docker().args([
        "--context",
        "nocert",
        "version",
        "--format",
        "{{.Server.Version}}",
    ]));
    assert!(!out.status.success(), "{}", text(&out));

    // A client certificate from another CA is refused as well.
    let other = CertificateAuthority::generate("other", 30).unwrap();
    let stranger = other.issue_client("stranger", 30).unwrap();
    let tls_bad = TlsFiles {
        ca_pem: ca.cert_pem().as_bytes().to_vec(),
        cert_pem: stranger.cert_pem.into_bytes(),
        key_pem: stranger.key_pem.expose().clone().into_bytes().into(),
    };
    contexts
        .write(&ContextMeta::new("stranger", "", &url), Some(&tls_bad))
        .unwrap();
    let err = rt.block_on(docker_euca::engine::version(
        &url,
        &contexts.tls_dir("stranger"),
        Duration::from_secs(10),
    ));
    assert!(err.is_err());
}
