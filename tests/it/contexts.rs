//! Contexts written by the plugin's module are what the real docker CLI reads, and the other way
//! round; `config.json` keeps every key the plugin does not know.

use docker_euca::context::{ConfigFile, ContextMeta, ContextStore, TlsFiles};
use docker_euca::tls::{CertificateAuthority, San};

use crate::support::{DockerHome, ok};

fn tls_files() -> TlsFiles {
    let ca = CertificateAuthority::generate("ctx-test", 30).unwrap();
    let client = ca.issue_client("client", 30).unwrap();
    let _ = ca
        .issue_server(&[San::parse("127.0.0.1").unwrap()], 30)
        .unwrap();
    TlsFiles {
        ca_pem: ca.cert_pem().as_bytes().to_vec(),
        cert_pem: client.cert_pem.into_bytes(),
        key_pem: client.key_pem.expose().clone().into_bytes().into(),
    }
}

#[test]
fn docker_reads_contexts_the_module_writes() {
    let home = DockerHome::new();
    let store = ContextStore::new(home.path());
    let meta = ContextMeta::new(
        "web1",
        "i-0abc on http://euca:8773",
        "tcp://10.213.0.9:2376",
    );
    store.write(&meta, Some(&tls_files())).unwrap();

    let ls = ok(home.docker().args([
        "context",
        "ls",
        "--format",
        "{{.Name}}|{{.DockerEndpoint}}|{{.Description}}",
    ]));
    assert!(
        ls.lines()
            .any(|l| l == "web1|tcp://10.213.0.9:2376|i-0abc on http://euca:8773"),
        "{ls}"
    );

    let inspect = ok(home.docker().args(["context", "inspect", "web1"]));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v[0]["Endpoints"]["docker"]["Host"], "tcp://10.213.0.9:2376");
    assert_eq!(v[0]["Endpoints"]["docker"]["SkipTLSVerify"], false);
    let tls_path = v[0]["Storage"]["TLSPath"].as_str().unwrap();
    assert_eq!(
        std::path::Path::new(tls_path),
        store.tls_dir("web1").parent().unwrap()
    );
    let material = &v[0]["TLSMaterial"]["docker"];
    let mut files: Vec<_> = material
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    files.sort();
    assert_eq!(files, ["ca.pem", "cert.pem", "key.pem"]);
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        assert_eq!(
            docker_euca::fsutil::mode_of(&store.tls_dir("web1").join(f)),
            Some(0o600)
        );
    }
    assert_eq!(
        docker_euca::fsutil::mode_of(&store.tls_dir("web1")),
        Some(0o700)
    );

    // docker context use / show agree with the module's view of config.json.
    ok(home.docker().args(["context", "use", "web1"]));
    assert_eq!(
        ConfigFile::new(home.path())
            .current_context()
            .unwrap()
            .as_deref(),
        Some("web1")
    );
    ConfigFile::new(home.path())
        .clear_current_context_if("web1")
        .unwrap();
    assert_eq!(
        ok(home.docker().args(["context", "show"])).trim(),
        "default"
    );
    ConfigFile::new(home.path())
        .set_current_context("web1")
        .unwrap();
    assert_eq!(ok(home.docker().args(["context", "show"])).trim(), "web1");

    // Removal through the module is seen by docker too.
    ConfigFile::new(home.path())
        .clear_current_context_if("web1")
        .unwrap();
    store.remove("web1").unwrap();
    let ls = ok(home
        .docker()
        .args(["context", "ls", "--format", "{{.Name}}"]));
    assert!(!ls.lines().any(|l| l == "web1"), "{ls}");
}

#[test]
fn module_reads_contexts_docker_creates_byte_for_byte() {
    let home = DockerHome::new();
    ok(home.docker().args([
        "context",
        "create",
        "made",
        "--description",
        "by <docker> & co",
        "--docker",
        "host=tcp://192.0.2.10:2376",
    ]));
    let store = ContextStore::new(home.path());
    let meta = store.read("made").unwrap();
    assert_eq!(meta.description, "by <docker> & co");
    assert_eq!(meta.docker.as_ref().unwrap().host, "tcp://192.0.2.10:2376");
    // Re-serialising gives exactly the bytes docker wrote.
    let on_disk = std::fs::read(
        home.path()
            .join("contexts/meta")
            .join(docker_euca::context::context_id("made"))
            .join("meta.json"),
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(meta.to_json()).unwrap(),
        String::from_utf8(on_disk).unwrap()
    );
    assert!(store.list().unwrap().iter().any(|c| c.name == "made"));
}

#[test]
fn unknown_config_keys_survive_docker_and_the_module() {
    let home = DockerHome::new();
    let path = home.path().join("config.json");
    std::fs::write(&path, "{\n\t\"auths\": {\"registry.example\": {}},\n\t\"detachKeys\": \"ctrl-q\",\n\t\"plugins\": {\"euca\": {\"x\": \"y\"}}\n}").unwrap();
    let store = ContextStore::new(home.path());
    store
        .write(
            &ContextMeta::new("keep1", "", "tcp://10.213.0.2:2376"),
            None,
        )
        .unwrap();
    ConfigFile::new(home.path())
        .set_current_context("keep1")
        .unwrap();
    assert_eq!(ok(home.docker().args(["context", "show"])).trim(), "keep1");
    ConfigFile::new(home.path())
        .clear_current_context_if("keep1")
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["detachKeys"], "ctrl-q");
    assert_eq!(doc["plugins"]["euca"]["x"], "y");
    assert!(doc["auths"]["registry.example"].is_object());
    assert!(doc.get("currentContext").is_none());
}
