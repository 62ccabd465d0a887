#!/bin/bash
# End-to-end test of the testbed VM layer (euca_testbed/vm.py) with real namespaces, cloud-init, sshd
# and dockerd. Root only. Uses its own state root (EUCA_TESTBED_ROOT) so a running testbed's files are
# not touched -- but like `testbed down`, cleanup_all() at the start and end removes *every* etb-* VM.
#   usage: sudo testbed/tests_vm.sh        (PYTHON=... to pick the interpreter; stdlib only)
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "tests_vm.sh: must run as root" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
export EUCA_TESTBED_ROOT=${EUCA_TESTBED_ROOT:-/var/lib/docker-euca-testbed-vmtest}
export TESTBED_DIR=$here
# cleanup_all() kills every VM on the machine: do not run while a testbed is up, and hold the lock
# `testbed up/down` take (their cleanup_all would kill our VMs) for the whole test.
mkdir -p /run/lock
exec 9>>/run/lock/docker-euca-testbed.lock
for i in $(seq 240); do
    flock 9
    pgrep -f 'euca_testbed serve' >/dev/null || break
    flock -u 9
    [ "$i" = 1 ] && echo "tests_vm.sh: a testbed is up (euca_testbed serve); waiting for it to go down..." >&2
    [ "$i" = 240 ] && { echo "tests_vm.sh: testbed still up after 20 min" >&2; exit 2; }
    sleep 5
done
work=$(mktemp -d /var/tmp/tests_vm.XXXXXX)
export WORK=$work
trap 'rm -rf "$work"' EXIT
"${PYTHON:-python3}" - "$@" <<'PYEOF'
import gzip, json, os, subprocess, sys, threading, time
sys.path.insert(0, os.environ["TESTBED_DIR"])
from euca_testbed import vm

W = os.environ["WORK"]
FAILS = []
T0 = time.monotonic()


def step(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


def check(cond, msg, detail=""):
    if cond:
        print("  ok   %s" % msg, flush=True)
    else:
        print("  FAIL %s %s" % (msg, detail), flush=True)
        FAILS.append(msg)
    return cond


def sh(*argv, input=None, timeout=60):
    return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)


def keygen(name):
    p = os.path.join(W, name)
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", p)
    return p, open(p).read(), open(p + ".pub").read().strip()


def ssh(key, user, ip, cmd, known_hosts, timeout=60):
    return sh("ssh", "-i", key, "-o", "UserKnownHostsFile=" + known_hosts, "-o", "StrictHostKeyChecking=yes",
              "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", "%s@%s" % (user, ip), cmd,
              timeout=timeout)


def known_hosts(name, ips, pub):
    p = os.path.join(W, name)
    with open(p, "w") as f:
        for ip in ips:
            f.write("%s %s\n" % (ip, pub))
    return p


def vm_namespace_pids(info):
    """host pids still in any namespace of the VM (by the inodes recorded at boot)"""
    targets = {v for k, v in (info.get("ns") or {}).items() if k in ("mnt", "pid", "net") and v}
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            for n in ("mnt", "pid", "net"):
                try:
                    if os.readlink("/proc/%s/ns/%s" % (p, n)) in targets:
                        try:
                            cmd = open("/proc/%s/cmdline" % p, "rb").read().replace(b"\0", b" ").decode()[:100]
                        except OSError:
                            cmd = "?"
                        out.append((int(p), n, cmd))
                        break
                except OSError:
                    pass
    return out


def vm_info(iid):
    return json.load(open(os.path.join(vm.VMS_DIR, iid, "vm.json")))


def wait_for(fn, timeout=30, interval=0.3):
    deadline = time.monotonic() + timeout
    while True:
        r = fn()
        if r or time.monotonic() > deadline:
            return r
        time.sleep(interval)


def cloud_config(user_pub, host_priv, host_pub, extra=""):
    indented = "".join("    %s\n" % l for l in host_priv.splitlines())
    return ("#cloud-config\n"
            "ssh_authorized_keys:\n  - %s\n"
            "ssh_keys:\n  ed25519_private: |\n%s  ed25519_public: |\n    %s\n"
            "write_files:\n  - path: /etc/testbed-hello\n    content: hello from write_files\n"
            "runcmd:\n  - [sh, -c, 'echo runcmd ran on $(hostname) > /root/runcmd.out']\n%s"
            % (user_pub, indented, host_pub, extra))


# host state we must not change
def host_fingerprint():
    files = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf",
             "/etc/ssh/sshd_config", "/etc/docker/daemon.json", "/etc/default/docker", "/etc/init.d/docker"]
    files += sorted("/etc/ssh/" + n for n in os.listdir("/etc/ssh") if n.startswith("ssh_host_"))
    fp = {}
    for f in files:
        try:
            fp[f] = open(f, "rb").read()
        except OSError:
            fp[f] = None
    for d in ("/etc/rc2.d", "/home", "/var/lib/cloud", "/var/lib/docker", "/etc/sudoers.d"):
        fp[d] = sorted(os.listdir(d)) if os.path.isdir(d) else None
    fp["hostname"] = os.uname().nodename
    fp["/dev"] = sorted(os.listdir("/dev"))
    return fp


bridge_existed = os.path.exists("/sys/class/net/eucatb0")
step("cleanup_all + ensure_network")
vm.cleanup_all()
vm.ensure_network()
before = host_fingerprint()
r = sh("ip", "-br", "addr", "show", "eucatb0")
check(all(a in r.stdout for a in ("10.213.0.1/16", "10.214.0.1/16", "10.215.0.1/16")), "bridge addresses", r.stdout)
r = sh("ip", "route", "show", "type", "blackhole")
check("54.214.0.0/16" in r.stdout and "172.31.0.0/16" in r.stdout, "blackhole routes", r.stdout)
vm.ensure_network()  # idempotent
check(sh("ip", "rule", "show", "priority", vm.RULE_PRIORITY).stdout.count("eucatb0") == 1, "forward-drop rule once")

user_key, _, user_pub = keygen("user")
_, host_priv, host_pub = keygen("hostkey")
ec2_key, _, ec2_pub = keygen("ec2keypair")

# ---------------------------------------------------------------------------------------------- VM 1
IID1, PRIV1, PUB1, PUB1B = "i-0vmtest000000001", "10.213.0.10", "10.214.0.10", "10.214.0.11"
step("boot %s (EDGE: private %s public %s)" % (IID1, PRIV1, PUB1))
ud1 = cloud_config(user_pub, host_priv, host_pub, "packages:\n  - openssh-server\n")
spec1 = vm.VmSpec(instance_id=IID1, hostname="ip-10-213-0-10", private_ip=PRIV1, public_ip=PUB1, prefix_len=16,
                  gateway="10.213.0.1", user_data=ud1.encode(), authorized_keys=[ec2_pub], swap_host_key=False)
t = time.monotonic()
vm.boot(spec1)
boot1 = time.monotonic() - t
info = [v for v in vm.list_vms() if v["id"] == IID1][0]
print("  boot took %.2f s (boot_seconds %s)" % (boot1, info["boot_seconds"]))
check(info["state"] == "running" and info["addresses"] == [PRIV1, PUB1], "list_vms shows it running", info)
kh1 = known_hosts("kh1", [PRIV1, PUB1, PUB1B], host_pub)

con = vm.console(IID1)
check("-----BEGIN SSH HOST KEY KEYS-----\n%s\n-----END SSH HOST KEY KEYS-----" % host_pub in con,
      "console has the SSH HOST KEY KEYS block with the injected key", con[-1500:])
check("Cloud-init v." in con and "finished at" in con, "console has cloud-init output")

r = ssh(user_key, "ubuntu", PRIV1, "sudo -n true && echo SUDO-OK && hostname && cat /etc/testbed-hello && "
        "sudo cat /root/runcmd.out && cloud-init status", kh1)
check(r.returncode == 0 and "SUDO-OK" in r.stdout, "ssh ubuntu@private with pinned host key, sudo -n", r.stderr)
check("ip-10-213-0-10" in r.stdout, "hostname set", r.stdout)
check("hello from write_files" in r.stdout, "write_files ran", r.stdout)
check("runcmd ran on ip-10-213-0-10" in r.stdout, "runcmd ran", r.stdout)
check("status: done" in r.stdout, "cloud-init status done (packages: installed package ok)", r.stdout)
r = ssh(ec2_key, "ubuntu", PUB1, "echo via-public", kh1)
check(r.returncode == 0 and "via-public" in r.stdout, "EC2 key pair (meta-data public-keys) on public address",
      r.stderr)
r = ssh(user_key, "root", PRIV1, "true", kh1, timeout=30)
check('Please login as the user "ubuntu" rather than the user "root"' in r.stdout, "root login shows the stub",
      r.stdout + r.stderr)
r = ssh(user_key, "ubuntu", PRIV1, "sudo apt-get update >/dev/null && sudo apt-get install -y docker.io "
        "openssh-server | tail -1; sudo apt-get install -y no-such-package-xyz; echo rc=$?", kh1)
check("0 newly installed" in r.stdout and "Unable to locate package no-such-package-xyz" in r.stderr
      and "rc=100" in r.stdout, "apt-get shim: host packages install, others fail like apt", r.stdout + r.stderr)
r = ssh(user_key, "ubuntu", PRIV1, "ls /etc/rc2.d | tr '\\n' ' '; echo; sudo service docker status; echo rc=$?", kh1)
check(r.stdout.split("\n")[0].split() == ["S01ssh"] and "rc=3" in r.stdout,
      "image: only ssh enabled, docker installed but not running", r.stdout)

step("enable + start docker over ssh, as the plugin does")
r = ssh(user_key, "ubuntu", PRIV1, "sudo update-rc.d docker defaults && sudo update-rc.d docker enable && "
        "sudo service docker start", kh1)
check(r.returncode == 0, "update-rc.d docker defaults && update-rc.d docker enable && service docker start",
      r.stdout + r.stderr)
r = wait_for(lambda: (lambda x: x if x.returncode == 0 else None)(
    ssh(user_key, "ubuntu", PRIV1, "sudo docker -H unix:///var/run/docker.sock version --format '{{.Server.Version}}'",
        kh1)), timeout=40)
check(r is not None and "20.10" in r.stdout, "docker version answers through the unix socket",
      r.stdout if r else "")

step("docker load + run the busybox image (exec_in)")
tar = os.path.join(vm.STATE_ROOT, "busybox-image.tar")
vm.build_image_tar(tar)
r = vm.exec_in(IID1, ["docker", "load", "-i", tar])
check(r.returncode == 0 and b"euca-testbed/busybox:latest" in r.stdout, "docker load", r.stdout + r.stderr)
r = vm.exec_in(IID1, ["docker", "run", "--rm", "--network", "none", "euca-testbed/busybox:latest", "echo", "hi"])
check(r.returncode == 0 and r.stdout == b"hi\n", "docker run --network none busybox echo hi", r.stdout + r.stderr)
r = vm.exec_in(IID1, ["sh", "-c", "echo x > /usr/local/bin/etb-vm-only && echo y > /opt/etb-vm-only && "
                      "cat /usr/local/bin/etb-vm-only"])
check(r.stdout == b"x\n" and not os.path.exists("/usr/local/bin/etb-vm-only")
      and not os.path.exists("/opt/etb-vm-only"), "VM writes to /usr and /opt stay in the VM (overlay)", r)
r = vm.exec_in(IID1, ["sh", "-c", "cat; exit 7"], input="stdin-data")
check(r.returncode == 7 and r.stdout == b"stdin-data", "exec_in passes stdin and exit code", r)

step("dockerd with -H tcp://0.0.0.0:2376 --tlsverify in DOCKER_OPTS, reached from the host")
tls = os.path.join(W, "tls")
os.makedirs(tls)
san = "subjectAltName=IP:%s,IP:%s,IP:%s,IP:127.0.0.1" % (PRIV1, PUB1, PUB1B)
cmds = [
    ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca-key.pem"],
    ["openssl", "req", "-x509", "-new", "-key", "ca-key.pem", "-subj", "/CN=testca", "-days", "2", "-out", "ca.pem"],
    ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "server-key.pem"],
    ["openssl", "req", "-new", "-key", "server-key.pem", "-subj", "/CN=server", "-out", "server.csr"],
    ["sh", "-c", "printf '%s\\nextendedKeyUsage=serverAuth\\n' > server.ext" % san],
    ["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
     "-days", "2", "-extfile", "server.ext", "-out", "server.pem"],
    ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "key.pem"],
    ["openssl", "req", "-new", "-key", "key.pem", "-subj", "/CN=client", "-out", "client.csr"],
    ["sh", "-c", "printf 'extendedKeyUsage=clientAuth\\n' > client.ext"],
    ["openssl", "x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
     "-days", "2", "-extfile", "client.ext", "-out", "cert.pem"],
]
for c in cmds:
    rr = subprocess.run(c, cwd=tls, capture_output=True)
    assert rr.returncode == 0, rr
bundle = ""
for n in ("ca.pem", "server.pem", "server-key.pem"):
    bundle += "cat > /etc/docker/tls/%s <<'EOT'\n%sEOT\n" % (n, open(os.path.join(tls, n)).read())
script = ("set -e\nmkdir -p /etc/docker/tls\n" + bundle +
          "echo 'DOCKER_OPTS=\"-H tcp://0.0.0.0:2376 -H unix:///var/run/docker.sock --tlsverify "
          "--tlscacert=/etc/docker/tls/ca.pem --tlscert=/etc/docker/tls/server.pem "
          "--tlskey=/etc/docker/tls/server-key.pem\"' >> /etc/default/docker\nservice docker restart\n")
r = sh("ssh", "-i", user_key, "-o", "UserKnownHostsFile=" + kh1, "-o", "StrictHostKeyChecking=yes", "-o",
       "BatchMode=yes", "ubuntu@" + PRIV1, "sudo sh -s", input=script)
check(r.returncode == 0, "TLS DOCKER_OPTS + service docker restart", r.stdout + r.stderr)
dcfg = os.path.join(W, "dockercfg")
os.makedirs(dcfg)


def docker_tcp(ip):
    env = dict(os.environ, DOCKER_CONFIG=dcfg)
    return subprocess.run(["docker", "--tlsverify", "--tlscacert", os.path.join(tls, "ca.pem"), "--tlscert",
                           os.path.join(tls, "cert.pem"), "--tlskey", os.path.join(tls, "key.pem"), "-H",
                           "tcp://%s:2376" % ip, "version", "--format", "{{.Server.Version}}"],
                          capture_output=True, text=True, env=env, timeout=30)


r = wait_for(lambda: (lambda x: x if x.returncode == 0 else None)(docker_tcp(PRIV1)), timeout=40)
check(r is not None and "20.10" in r.stdout, "host docker client -> tcp://%s:2376 (TLS)" % PRIV1,
      (r.stdout + r.stderr) if r else docker_tcp(PRIV1).stderr)
r = docker_tcp(PUB1)
check(r.returncode == 0, "host docker client -> tcp://%s:2376 (public address)" % PUB1, r.stderr)

step("stop %s" % IID1)
info1 = vm_info(IID1)
t = time.monotonic()
vm.stop(IID1)
print("  stop took %.2f s" % (time.monotonic() - t))
left = vm_namespace_pids(info1)
check(left == [], "no process left in the VM's namespaces", left)
check(info1["netns"] not in sh("ip", "netns", "list").stdout, "netns removed while stopped")
check([v for v in vm.list_vms() if v["id"] == IID1][0]["state"] == "stopped", "list_vms: stopped")
try:
    vm.exec_in(IID1, ["true"])
    check(False, "exec_in on a stopped VM raises")
except vm.VmError:
    check(True, "exec_in on a stopped VM raises")

step("boot %s again with a new public address %s" % (IID1, PUB1B))
spec1.public_ip = PUB1B
t = time.monotonic()
vm.boot(spec1)
print("  boot took %.2f s" % (time.monotonic() - t))
r = ssh(user_key, "ubuntu", PUB1B, "hostname; sudo cat /root/runcmd.out; ip -4 -o addr show eth0", kh1)
check(r.returncode == 0 and PUB1B in r.stdout and PUB1 + "/" not in r.stdout, "ssh on the new public address",
      r.stdout + r.stderr)
r = wait_for(lambda: (lambda x: x if x.returncode == 0 else None)(docker_tcp(PUB1B)), timeout=40)
check(r is not None, "docker started again at boot (enabled), reachable on the new public address",
      docker_tcp(PUB1B).stderr if r is None else "")
r = vm.exec_in(IID1, ["docker", "run", "--rm", "--network", "none", "euca-testbed/busybox:latest", "echo", "again"])
check(r.stdout == b"again\n", "image survived stop/start (disk kept)", r.stderr)
con = vm.console(IID1)
check(con.count("running 'init-local'") == 2 and con.count("BEGIN SSH HOST KEY KEYS") == 1,
      "second boot: cloud-init ran again, per-instance keys-to-console did not", "")
r = vm.exec_in(IID1, ["sh", "-c", "service docker stop && service docker status; echo rc=$?"])
check(b"rc=3" in r.stdout, "service docker stop works", r.stdout + r.stderr)

step("parallel boots of two more VMs (gzip user data, missing package, swap_host_key; VPC, meta-data key only)")
_, host2_priv, host2_pub = keygen("hostkey2")
IID2, PRIV2, PUB2 = "i-0vmtest000000002", "10.213.0.20", "10.214.0.20"
IID3, PRIV3 = "i-0vmtest000000003", "10.215.1.30"
ud2 = gzip.compress(cloud_config(user_pub, host2_priv, host2_pub,
                                 "packages:\n  - no-such-package-xyz\n").encode())
spec2 = vm.VmSpec(IID2, "ip-10-213-0-20", PRIV2, PUB2, 16, "10.213.0.1", ud2, [], True)
spec3 = vm.VmSpec(IID3, "ip-10-215-1-30", PRIV3, None, 16, "10.215.0.1", b"", [ec2_pub], False)
errs = []


def boot_bg(s):
    try:
        vm.boot(s)
    except Exception as e:  # noqa: BLE001
        errs.append(e)


t = time.monotonic()
ths = [threading.Thread(target=boot_bg, args=(s,)) for s in (spec2, spec3)]
[th.start() for th in ths]
[th.join() for th in ths]
print("  both booted in %.2f s" % (time.monotonic() - t))
check(not errs, "parallel boots succeed", errs)
kh2 = known_hosts("kh2", [PRIV2], host2_pub)
r = ssh(user_key, "ubuntu", PRIV2, "true", kh2)
check(r.returncode != 0 and "Host key verification failed" in r.stderr,
      "swap_host_key: server key differs from the pinned one", r.stderr)
check(host2_pub in vm.console(IID2), "swap_host_key: console still shows the pinned (user data) key")
r = vm.exec_in(IID2, ["cloud-init", "status"])
check(b"status: error" in r.stdout, "gzip user data processed; missing package -> cloud-init error", r.stdout)
r = vm.exec_in(IID2, ["cat", "/etc/testbed-hello"])
check(r.stdout == b"hello from write_files", "gzip user data: write_files ran")
kh3 = os.path.join(W, "kh3")
r = sh("ssh", "-i", ec2_key, "-o", "UserKnownHostsFile=" + kh3, "-o", "StrictHostKeyChecking=accept-new", "-o",
       "BatchMode=yes", "ubuntu@" + PRIV3, "sudo -n hostname")
check(r.returncode == 0 and "ip-10-215-1-30" in r.stdout, "VPC VM, empty user data, EC2 key pair only",
      r.stdout + r.stderr)
keys3 = [l.split()[1] for l in open(kh3) if l.strip()]
con3 = vm.console(IID3)
check(keys3 and all(k in con3 for k in keys3), "console key block matches the generated host keys", con3[-800:])
r = sh("ssh", "-i", ec2_key, "-o", "UserKnownHostsFile=" + kh3, "-o", "StrictHostKeyChecking=yes", "-o",
       "BatchMode=yes", "ubuntu@" + PRIV1, "true")
check(r.returncode != 0, "VMs have different host keys")
r = vm.exec_in(IID3, ["sh", "-c", "busybox nc -w 2 %s 22 </dev/null | head -c 7" % PRIV2])
check(r.stdout.startswith(b"SSH-2.0"), "VM to VM across subnets on the bridge", r.stdout + r.stderr)
r = vm.exec_in(IID3, ["sh", "-c", "busybox ping -c1 -W1 192.0.2.1 >/dev/null && echo LEAK || echo blocked"])
check(b"blocked" in r.stdout, "nothing routed off the bridge", r)

step("set_public_ip on the running VPC VM (extension)")
vm.set_public_ip(IID3, "10.214.0.30")
r = sh("ssh", "-i", ec2_key, "-o", "UserKnownHostsFile=" + kh3, "-o", "StrictHostKeyChecking=no", "-o",
       "BatchMode=yes", "ubuntu@10.214.0.30", "ip -4 -o addr show eth0")
check(r.returncode == 0 and "10.214.0.30/16" in r.stdout, "address added in place", r.stdout + r.stderr)
vm.set_public_ip(IID3, None)
r = vm.exec_in(IID3, ["ip", "-4", "-o", "addr", "show", "eth0"])
check(b"10.214.0.30" not in r.stdout, "address removed in place", r.stdout)

step("stop interrupts a boot whose user data never finishes")
IID4 = "i-0vmtest000000004"
spec4 = vm.VmSpec(IID4, "ip-10-213-0-40", "10.213.0.40", None, 16, "10.213.0.1",
                  b"#cloud-config\nruncmd:\n  - sleep 600\n", [ec2_pub], False)
errs4 = []
def boot_bg4():
    try:
        vm.boot(spec4)
    except vm.VmError as e:
        errs4.append(e)


th = threading.Thread(target=boot_bg4)
th.start()
wait_for(lambda: [v for v in vm.list_vms() if v["id"] == IID4 and v["state"] == "booting" and v["pid"]], 20, 0.1)
time.sleep(2)
t = time.monotonic()
vm.stop(IID4)
th.join(10)
print("  stop took %.2f s" % (time.monotonic() - t))
check(not th.is_alive() and errs4 and "interrupted" in str(errs4[0]), "boot raised 'interrupted by stop'", errs4)
check([v for v in vm.list_vms() if v["id"] == IID4][0]["state"] == "stopped", "VM stopped")
left = vm_namespace_pids(vm_info(IID4))
check(left == [], "nothing of it left", left)

step("destroy %s" % IID1)
info1 = vm_info(IID1)
vm.destroy(IID1)
left = vm_namespace_pids(info1)
check(left == [], "no process of the destroyed VM", left)
check(not os.path.exists(os.path.join(vm.VMS_DIR, IID1)), "VM directory removed")
check(IID1 not in [v["id"] for v in vm.list_vms()], "list_vms forgot it")
check(info1["veth"] not in sh("ip", "link").stdout, "veth removed")

step("cleanup_all")
infos = [vm_info(i) for i in (IID2, IID3)]
vm.cleanup_all()
left = [p for i in infos for p in vm_namespace_pids(i)]
check(left == [], "no VM process left", left)
check(not [n for n in sh("ip", "netns", "list").stdout.split() if n.startswith("etb-")], "no etb-* netns")
check("etb" not in sh("ip", "-br", "link").stdout, "no etb* veth")
mounts = [l for l in open("/proc/self/mountinfo") if vm.STATE_ROOT in l]
check(not mounts, "no mount under the state root", mounts)
check(os.listdir(vm.VMS_DIR) == [], "no VM directories")
zomb = sh("ps", "-eo", "stat=,cmd=").stdout
check(not [l for l in zomb.splitlines() if l.startswith("Z") and ("unshare" in l or "vm_init" in l)],
      "no zombies of VMs")
after = host_fingerprint()
changed = [k for k in before if before[k] != after[k]]
check(not changed, "host files untouched (/etc, /home, /var/lib/cloud, /var/lib/docker, /dev, hostname)", changed)

step("image tar")
tar2 = os.path.join(W, "img.tar")
vm.build_image_tar(tar2)
r = sh("tar", "tf", tar2)
check("manifest.json" in r.stdout and "layer.tar" in r.stdout, "build_image_tar writes a docker-save tar")

if bridge_existed:
    print("  (bridge eucatb0 existed before the test: a testbed may be up, leaving the network alone)")
else:
    vm.teardown_network()
    check("eucatb0" not in sh("ip", "-br", "link").stdout and "1213" not in sh("ip", "rule").stdout,
          "teardown_network removes bridge and rule")
if os.environ["EUCA_TESTBED_ROOT"].endswith("-vmtest"):
    import shutil
    shutil.rmtree(os.environ["EUCA_TESTBED_ROOT"], ignore_errors=True)
print("\n%s: %d failure(s) in %.1f s %s" % ("FAIL" if FAILS else "PASS", len(FAILS), time.monotonic() - T0,
                                           FAILS if FAILS else ""))
sys.exit(1 if FAILS else 0)
PYEOF
