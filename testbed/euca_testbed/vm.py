"""VM layer of the euca testbed: an "instance" is a set of Linux namespaces running real programs.

A VM is
  * a network namespace `etb-<10 hex>` whose eth0 (a veth whose other end `etbh<10 hex>` sits in the
    bridge `eucatb0`) carries the private address (and the EDGE public one) /prefix_len, default route
    via the spec's gateway, loopback up;
    The other testbed ranges get on-link routes (VM to VM across subnets without host routing);
  * an init process (vm_init.py, run with the system /usr/bin/python3) that is PID 1 of a new PID
    namespace, in new mount and UTS namespaces, inside that netns. It reaps orphans (the host's PID 1
    does not), drains the VM's /dev/console (a FIFO) into console.log, serves /dev/log into the VM's
    /var/log/syslog, and when it is killed the kernel kills the whole VM;
  * a private file system view made of bind mounts of per-VM directories (its "disk", kept across
    stop/start): /etc (a copy of an image /etc made from the host's), /var/lib/cloud, /var/lib/docker,
    /root, /home, /var/log, /tmp, /var/tmp, /var/mail; a fresh tmpfs /run on every
    boot (no /run/systemd/system: `service` uses the sysvinit scripts); its own /proc, /sys (the
    netns's view, host cgroups kept) and a private /dev (tmpfs with the usual nodes, own devpts);
    /usr, /opt, /var/lib/dpkg, /var/lib/apt, /var/cache/{apt,debconf}, /var/lib/{systemd,sudo},
    /var/spool are the host's seen through an overlay: the VM reads the host's files, its writes stay
    in its disk (so write_files into /usr/local or a dpkg -i never reaches the host or other VMs).
Boot = write the NoCloud seed (meta-data: instance-id, local-hostname, launch-index, public-keys), run
the real cloud-init (init --local, init, modules config, modules final) with its output on the
console, then start what /etc/rc2.d enables (ssh always; docker once
the plugin ran `update-rc.d docker defaults`), so sshd answers only after cloud-init's final stage.
boot() returns when sshd answers on the private address. Later commands enter with
`nsenter -t <init pid> -m -u -n -p`. The state root can be moved with EUCA_TESTBED_ROOT (as daemon.py).

The image (made once per state root from the host's /etc, copied per VM):
  * cloud.cfg.d/90_euca_testbed.cfg: NoCloud, no growpart/resize/locale/network config, manage_etc_hosts,
    default user `ubuntu` with passwordless sudo (root gets cloud-init's disable_root stub);
  * rc?.d holds only ssh's links; docker is installed but not enabled; /etc/init.d/docker's `ulimit`
    calls may fail (the host's hard limit is lower); /etc/docker/daemon.json sets storage-driver vfs,
    iptables false, bridge none (dockerd needs them here) so the plugin's DOCKER_OPTS in
    /etc/default/docker (-H ..., --tlsverify ...) only add to them;
  * sshd: pubkey only, no passwords, listens on all addresses; the host's host keys are removed
    (cloud-init makes or installs the VM's own).

`packages:` (and any apt-get/apt run in the VM) -- decision: the VM has no mirror and shares /usr and
/var/lib/dpkg with the host, so vm_apt_shim.sh is bind-mounted (read-only) over /usr/bin/apt-get and
/usr/bin/apt inside the VM's mount namespace only. Which mirror it plays is the spec's `mirror`
(`testbed config --mirror`, decided by the key of the RunInstances/StartInstances that boots the VM),
written at every boot to a file bind-mounted read-only at /etc/euca-testbed/mirror ("MODE" or
"hang SECONDS"):
  * ok (default): a reachable mirror that carries exactly the host's installed packages, all already
    at the newest version: `apt-get update` succeeds and changes nothing; `apt-get install PKG...`
    succeeds without side effects (no postinst: nothing gets enabled or started) when every PKG is
    installed on the host (dpkg-query), and otherwise prints "E: Unable to locate package PKG" and
    exits 100 like apt (so cloud-init reports an error for the packages module while the rest of the
    boot goes on, as on a private cloud without the package);
  * missing: a reachable mirror without any package: update succeeds, every install fails at once
    ("E: Unable to locate package PKG", exit 100);
  * hang: no route to any mirror: update and install block `mirror_hang` seconds (default 120) as apt
    does while its connections time out, then fail with apt's messages (update: "W: ... connection
    timed out" and exit 0, as apt treats transient network failures, 100 with --error-on=any;
    install: "E: Unable to fetch some archives", exit 100). cloud-init's packages module makes two
    such calls (update, install), so the boot's own time limit (BOOT_TIMEOUT) grows by twice
    mirror_hang: the boot waits the mirror out as a VM on such a cloud does, then goes on, and sshd
    answers (later). A stop or destroy interrupts a hanging boot as any other (the VM's init dies,
    and the shim with it).
Upgrades are no-ops and remove/purge fail (exit 100) in every mode. Each apt run is logged in the VM's
/var/log/euca-testbed-mirror.log (start and end, mode, arguments, exit code, seconds).

Everything lives under /var/lib/docker-euca-testbed/ (image/: template /etc and helper files);
vms/<instance id>/ holds the VM's disk dirs,
console.log, boot.log (host-side steps and command output), holder.log (init errors) and vm.json.
Every address is on the bridge eucatb0; an `ip rule iif eucatb0 blackhole` makes sure nothing a VM
sends is ever forwarded off the machine.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

from .vm_image import build_image_tar, IMAGE_NAME  # noqa: F401  (re-exported)

STATE_ROOT = os.environ.get("EUCA_TESTBED_ROOT", "/var/lib/docker-euca-testbed")  # as daemon.py
VMS_DIR = os.path.join(STATE_ROOT, "vms")
IMAGE_DIR = os.path.join(STATE_ROOT, "image")
IMAGE_VERSION = "5"

BRIDGE = "eucatb0"
BRIDGE_ADDRS = ("10.213.0.1/16", "10.214.0.1/16", "10.215.0.1/16")
BLACKHOLES = ("54.214.0.0/16", "172.31.0.0/16")
RULE_PRIORITY = "1213"
NETNS_PREFIX = "etb-"
VETH_HOST_PREFIX = "etbh"
VETH_PEER_PREFIX = "etbp"

SYS_PYTHON = "/usr/bin/python3"
VM_ENV = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
    "LANG=C.UTF-8",
    "USER=root",
    "LOGNAME=root",
]
HOLDER_START_TIMEOUT = 30
BOOT_TIMEOUT = 900
MIRROR_MODES = ("ok", "missing", "hang", "newer")
MIRROR_HANG = 120.0  # seconds each apt run blocks with mirror "hang" (unless the spec says otherwise)
MIRROR_HANG_MAX = 3600.0
MIRROR_FILE = "/etc/euca-testbed/mirror"  # in the VM (read-only); vm_apt_shim.sh reads it
SSH_WAIT = 10

_HERE = os.path.dirname(os.path.abspath(__file__))
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

# Directories of the VM's "disk", bind-mounted over these paths (created on the host if missing: a
# bind mount needs an existing mount point).
DISK_MOUNTS = (
    ("var-lib-cloud", "/var/lib/cloud", 0o755),
    ("var-lib-docker", "/var/lib/docker", 0o710),
    ("root", "/root", 0o700),
    ("home", "/home", 0o755),
    ("var-log", "/var/log", 0o755),
    ("tmp", "/tmp", 0o1777),
    ("var-tmp", "/var/tmp", 0o1777),
    ("var-mail", "/var/mail", 0o2775),
)
# Host directories the VM sees through an overlay (copy-on-write, upper dir in the VM's disk): it reads
# the host's /usr and dpkg database, but whatever it writes there (write_files into /usr/local, dpkg -i,
# a stray rm) stays in the VM.
OVERLAYS = (
    ("usr", "/usr"),
    ("opt", "/opt"),
    ("srv", "/srv"),
    ("var-lib-dpkg", "/var/lib/dpkg"),
    ("var-lib-apt", "/var/lib/apt"),
    ("var-cache-apt", "/var/cache/apt"),
    ("var-cache-debconf", "/var/cache/debconf"),
    ("var-lib-systemd", "/var/lib/systemd"),
    ("var-lib-sudo", "/var/lib/sudo"),
    ("var-spool", "/var/spool"),
)

CLOUD_CFG = """\
# euca-testbed VM image: cloud-init defaults of an Ubuntu-like cloud image on the testbed.
datasource_list: [ NoCloud, None ]
resize_rootfs: false
growpart: {mode: "off"}
locale: false
network: {config: disabled}
manage_etc_hosts: true
disable_root: true
grub_dpkg: {enabled: false}
apt_get_wrapper: {enabled: false}
output: {all: '| tee -a /var/log/cloud-init-output.log'}
system_info:
  distro: debian
  default_user:
    name: ubuntu
    lock_passwd: true
    gecos: Ubuntu
    groups: [adm, sudo]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
  paths:
    cloud_dir: /var/lib/cloud/
    templates_dir: /etc/cloud/templates/
  package_mirrors:
    - arches: [default]
      failsafe:
        primary: https://deb.debian.org/debian
        security: https://deb.debian.org/debian-security
  ssh_svcname: ssh
"""

SSHD_CFG = """\
# euca-testbed VM image
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
ListenAddress 0.0.0.0
ListenAddress ::
UseDNS no
"""

DAEMON_JSON = {"storage-driver": "vfs", "iptables": False, "bridge": "none"}

# Runs inside the VM (stdout/stderr = console.log); stage results go to $ETB_STATUS.
BOOT_SH = r"""#!/bin/sh
set -u
st() { echo "$1 $2" >> "$ETB_STATUS"; }
cloud-init init --local; st init-local $?
cloud-init init; st init $?
cloud-init modules --mode=config; st modules-config $?
cloud-init modules --mode=final; st modules-final $?
if [ "${ETB_SWAP_HOST_KEY:-0}" = 1 ]; then
    rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub /etc/ssh/ssh_host_*_key-cert.pub
    ssh-keygen -A >/dev/null 2>&1; st swap-host-key $?
fi
for s in /etc/rc2.d/S*; do
    [ -x "$s" ] || continue
    "$s" start </dev/null; st "start:${s##*/}" $?
done
st done 0
"""


class VmError(RuntimeError):
    pass


class VmNotFound(VmError):
    pass


@dataclass
class VmSpec:
    instance_id: str
    hostname: str
    private_ip: str
    public_ip: str | None = None
    prefix_len: int = 16
    gateway: str | None = None  # None: first address of the private network (x.y.0.1 for a /16)
    user_data: bytes = b""
    authorized_keys: list[str] = field(default_factory=list)
    swap_host_key: bool = False
    launch_index: int = 0  # the instance's amiLaunchIndex: NoCloud meta-data `launch-index` (cloud-init's
    # launch-index filter keeps only the user-data parts without a Launch-Index header or with this one)
    mirror: str = "ok"  # the package mirror the VM sees: ok | missing | hang (vm_apt_shim.sh)
    mirror_hang: float = MIRROR_HANG  # seconds each apt run blocks with mirror "hang"


# ---------------------------------------------------------------------------------------------------
# helpers


def _run(argv, check=True, input=None, timeout=60, log=None):
    r = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=None if input is not None else subprocess.DEVNULL, timeout=timeout)
    out = r.stdout.decode("utf-8", "replace")
    if log is not None:
        log("$ %s -> %d%s" % (" ".join(argv), r.returncode, ("\n" + out.rstrip()) if out.strip() else ""))
    if check and r.returncode != 0:
        raise VmError("%s failed (exit %d): %s" % (" ".join(argv), r.returncode, out.strip()))
    return r.returncode, out


def _key(instance_id):
    return hashlib.sha1(instance_id.encode()).hexdigest()[:10]


def _mac(instance_id):
    h = hashlib.sha1(("mac:" + instance_id).encode()).digest()
    return "02:%02x:%02x:%02x:%02x:%02x" % tuple(h[:5])


def _check_id(instance_id):
    if not isinstance(instance_id, str) or not _ID_RE.match(instance_id):
        raise VmError("bad instance id %r" % (instance_id,))


def _vm_dir(instance_id):
    return os.path.join(VMS_DIR, instance_id)


def _proc_starttime(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        return int(s[s.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        return s[s.rindex(")") + 2]
    except (OSError, ValueError, IndexError):
        return None


def _ns_inode(pid, ns):
    try:
        return os.readlink("/proc/%d/ns/%s" % (pid, ns))
    except OSError:
        return None


def _all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _alive(pid, starttime):
    return bool(pid) and _proc_starttime(pid) == starttime and _proc_state(pid) not in (None, "Z", "X")


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _netns_inode(name):
    try:
        st = os.stat("/run/netns/" + name)
        return "net:[%d]" % st.st_ino
    except OSError:
        return None


def _list_netns():
    try:
        return sorted(n for n in os.listdir("/run/netns") if n.startswith(NETNS_PREFIX))
    except FileNotFoundError:
        return []


def _host_links():
    try:
        return os.listdir("/sys/class/net")
    except OSError:
        return []


# ---------------------------------------------------------------------------------------------------
# network


_net_lock = threading.Lock()


def ensure_network():
    """Bridge eucatb0 with the host addresses, blackhole routes for moto's ranges, and a rule that
    drops anything the VMs would have the host forward elsewhere. Idempotent."""
    with _net_lock:
        if BRIDGE not in _host_links():
            _run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=False)
        _run(["ip", "link", "set", BRIDGE, "up"])
        for a in BRIDGE_ADDRS:
            _run(["ip", "addr", "replace", a, "dev", BRIDGE])
        for r in BLACKHOLES:
            _run(["ip", "route", "replace", "blackhole", r])
        _, rules = _run(["ip", "rule", "show", "priority", RULE_PRIORITY], check=False)
        if BRIDGE not in rules:
            _run(["ip", "rule", "add", "priority", RULE_PRIORITY, "iif", BRIDGE, "blackhole"])
        for _, mp, _ in DISK_MOUNTS:
            os.makedirs(mp, exist_ok=True)
        os.makedirs(VMS_DIR, exist_ok=True)


def teardown_network():
    with _net_lock:
        for _ in range(5):
            rc, _ = _run(["ip", "rule", "del", "priority", RULE_PRIORITY], check=False)
            if rc != 0:
                break
        for r in BLACKHOLES:
            _run(["ip", "route", "del", "blackhole", r], check=False)
        if BRIDGE in _host_links():
            _run(["ip", "link", "del", BRIDGE], check=False)


# ---------------------------------------------------------------------------------------------------
# image (template /etc + helper files), made once per state root

_image_lock = threading.Lock()


def _image_version():
    """Changes whenever the image recipe or the helper files change, so a stale image is rebuilt."""
    h = hashlib.sha256(IMAGE_VERSION.encode())
    for part in (BOOT_SH, CLOUD_CFG, SSHD_CFG, json.dumps(DAEMON_JSON, sort_keys=True)):
        h.update(part.encode())
    for name in ("vm_init.py", "vm_apt_shim.sh"):
        with open(os.path.join(_HERE, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def _ensure_image():
    version = _image_version()
    with _image_lock:
        try:
            if open(os.path.join(IMAGE_DIR, "version")).read().strip() == version:
                return
        except OSError:
            pass
        # build beside, then swap in (VMs of this state root may be reading the old one)
        tmp = "%s.tmp.%d" % (IMAGE_DIR, os.getpid())
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        etc = os.path.join(tmp, "etc")
        _run(["cp", "-a", "/etc", etc])
        _customise_etc(etc)
        for name in ("vm_init.py", "vm_apt_shim.sh"):
            shutil.copy(os.path.join(_HERE, name), os.path.join(tmp, name))
        os.chmod(os.path.join(tmp, "vm_apt_shim.sh"), 0o755)
        with open(os.path.join(tmp, "boot.sh"), "w") as f:
            f.write(BOOT_SH)
        os.chmod(os.path.join(tmp, "boot.sh"), 0o755)
        with open(os.path.join(tmp, "version"), "w") as f:
            f.write(version + "\n")
        old = "%s.old.%d" % (IMAGE_DIR, os.getpid())
        if os.path.exists(IMAGE_DIR):
            os.rename(IMAGE_DIR, old)
        os.rename(tmp, IMAGE_DIR)
        shutil.rmtree(old, ignore_errors=True)


def _customise_etc(etc):
    # no host keys of the host: cloud-init installs ssh_keys or generates the VM's own
    for n in os.listdir(os.path.join(etc, "ssh")):
        if n.startswith("ssh_host_"):
            os.unlink(os.path.join(etc, "ssh", n))
    # only ssh starts at boot; everything else must be enabled by the VM's user (update-rc.d)
    for n in os.listdir(etc):
        if re.match(r"^rc[0-6S]\.d$", n):
            d = os.path.join(etc, n)
            for link in os.listdir(d):
                p = os.path.join(d, link)
                if os.path.islink(p) and os.path.basename(os.readlink(p)) != "ssh":
                    os.unlink(p)
    # Debian's docker init script: its ulimit calls fail here (hard limit lower than 1048576)
    initd = os.path.join(etc, "init.d", "docker")
    if os.path.exists(initd):
        s = open(initd).read()
        s = re.sub(r"^(\s*ulimit [^\n|]*?)\s*$", r"\1 || true", s, flags=re.M)
        open(initd, "w").write(s)
    os.makedirs(os.path.join(etc, "docker"), exist_ok=True)
    with open(os.path.join(etc, "docker", "daemon.json"), "w") as f:
        json.dump(DAEMON_JSON, f, indent=2)
        f.write("\n")
    with open(os.path.join(etc, "cloud", "cloud.cfg.d", "90_euca_testbed.cfg"), "w") as f:
        f.write(CLOUD_CFG)
    os.makedirs(os.path.join(etc, "ssh", "sshd_config.d"), exist_ok=True)
    with open(os.path.join(etc, "ssh", "sshd_config.d", "50-euca-testbed.conf"), "w") as f:
        f.write(SSHD_CFG)
    with open(os.path.join(etc, "hostname"), "w") as f:
        f.write("localhost\n")
    with open(os.path.join(etc, "hosts"), "w") as f:
        f.write("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
    sd = os.path.join(etc, "sudoers.d")
    for n in os.listdir(sd):
        if n != "README":
            os.unlink(os.path.join(sd, n))
    # nothing of the host's cloud-init state or instance
    for n in ("cloud/cloud-init.disabled",):
        p = os.path.join(etc, n)
        if os.path.exists(p):
            os.unlink(p)


# ---------------------------------------------------------------------------------------------------
# VM records


class _Vm:
    def __init__(self, instance_id):
        self.id = instance_id
        self.dir = _vm_dir(instance_id)
        self.lock = threading.RLock()
        self.popen = None  # the `unshare` parent of the VM's init (our child: we reap it)
        self.booting = False  # a boot() of this process is in progress
        self.stop_requested = False
        self.info = {}
        self._load()

    # persisted state ------------------------------------------------------------------------------
    def _load(self):
        try:
            with open(os.path.join(self.dir, "vm.json")) as f:
                self.info = json.load(f)
        except (OSError, ValueError):
            self.info = {}

    def save(self):
        os.makedirs(self.dir, exist_ok=True)
        tmp = os.path.join(self.dir, "vm.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.info, f, indent=2)
        os.replace(tmp, os.path.join(self.dir, "vm.json"))

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def log(self, msg):
        try:
            with open(self.path("boot.log"), "a") as f:
                now = time.time()
                f.write("%s.%03d %s\n" % (time.strftime("%H:%M:%S", time.localtime(now)), int(now * 1000) % 1000, msg))
        except OSError:
            pass

    def console_write(self, text):
        with open(self.path("console.log"), "a") as f:
            f.write(text)

    # runtime ----------------------------------------------------------------------------------------
    def holder_pid(self):
        pid = self.info.get("holder_pid")
        if pid and _alive(pid, self.info.get("holder_start")):
            return pid
        return None

    def state(self):
        st = self.info.get("state", "stopped")
        if st == "booting" and self.booting:
            return "booting"
        if st in ("running", "booting") and not self.holder_pid():
            return "stopped"  # killed behind our back, or the process that booted it died mid-boot
        return st


_registry_lock = threading.Lock()
_registry: dict[str, _Vm] = {}


def _get(instance_id, create=False):
    _check_id(instance_id)
    with _registry_lock:
        vm = _registry.get(instance_id)
        if (vm is not None and not create and not vm.booting and not vm.holder_pid()
                and not os.path.exists(os.path.join(vm.dir, "vm.json"))):
            del _registry[instance_id]  # its directory was removed behind our back
            raise VmNotFound("no VM %s" % instance_id)
        if vm is None:
            if not create and not os.path.exists(os.path.join(_vm_dir(instance_id), "vm.json")):
                raise VmNotFound("no VM %s" % instance_id)
            vm = _Vm(instance_id)
            _registry[instance_id] = vm
        return vm


# ---------------------------------------------------------------------------------------------------
# boot


def boot(spec: VmSpec):
    """Make (first boot) or reuse (boot after stop) the VM, set its addresses, run cloud-init with the
    user data, start what it enables. Blocks until sshd answers. A running VM is rebooted."""
    t0 = time.monotonic()
    vm = _get(spec.instance_id, create=True)
    with vm.lock:
        vm.booting, vm.stop_requested = True, False
        try:
            _boot_locked(vm, spec, t0)
        finally:
            vm.booting = False


def _mirror_of(spec):
    mode = getattr(spec, "mirror", None) or "ok"
    if mode not in MIRROR_MODES:
        raise VmError("mirror %r: one of %s expected" % (mode, ", ".join(MIRROR_MODES)))
    hang = getattr(spec, "mirror_hang", None)
    hang = MIRROR_HANG if hang is None else float(hang)
    if not 0 <= hang <= MIRROR_HANG_MAX:
        raise VmError("mirror_hang %r: 0 to %d seconds expected" % (hang, MIRROR_HANG_MAX))
    return mode, hang


def _boot_locked(vm, spec, t0):
    mirror, mirror_hang = _mirror_of(spec)
    if vm.holder_pid():
        vm.log("boot requested while running: rebooting")
        _stop_locked(vm)
    ensure_network()
    _ensure_image()
    vm.log("boot requested (image ready)")
    gateway = spec.gateway or _default_gateway(spec.private_ip, spec.prefix_len)
    first = not vm.info.get("created") or not os.path.isdir(vm.path("etc"))
    key = _key(spec.instance_id)
    vm.info.update({
        "instance_id": spec.instance_id,
        "hostname": spec.hostname,
        "private_ip": spec.private_ip,
        "public_ip": spec.public_ip if spec.public_ip != spec.private_ip else None,
        "prefix_len": spec.prefix_len,
        "gateway": gateway,
        "netns": NETNS_PREFIX + key,
        "veth": VETH_HOST_PREFIX + key,
        "state": "booting",
        "boot_seconds": None,
        "holder_pid": None,
        "holder_start": None,
        "error": None,
        "mirror": mirror,
        "mirror_hang": mirror_hang,
    })
    vm.save()
    try:
        if first:
            _create_disk(vm)
        _write_mirror(vm)
        vm.log("boot #%d (private %s, public %s)" % (vm.info.get("boots", 0) + 1, spec.private_ip,
                                                     spec.public_ip))
        vm.console_write("[    0.000000] euca-testbed: booting %s (%s) private %s%s\n" % (
            spec.instance_id, spec.hostname, spec.private_ip,
            (" public %s" % spec.public_ip) if spec.public_ip else ""))
        _write_seed(vm, spec)
        _setup_netns(vm, spec, gateway)
        _start_holder(vm)
        swap = bool(spec.swap_host_key) and not vm.info.get("host_key_swapped")
        _run_boot_script(vm, swap)
        if swap:
            vm.info["host_key_swapped"] = True
        _ensure_key_block(vm)
        _wait_ssh(vm, spec.private_ip)
        vm.log("sshd answers")
    except Exception as e:
        vm.info["error"] = str(e)
        vm.log("boot failed: %s" % e)
        try:
            _stop_locked(vm, final_state="stopped")
        except Exception as e2:  # noqa: BLE001
            vm.log("cleanup after failed boot: %s" % e2)
        vm.info["error"] = str(e)
        vm.save()
        if vm.stop_requested:
            raise VmError("boot of %s interrupted by stop (logs: %s)" % (spec.instance_id, vm.dir)) from e
        if isinstance(e, VmError) and vm.dir in str(e):
            raise
        raise VmError("boot of %s failed: %s (logs: %s)" % (spec.instance_id, e, vm.dir)) from e
    vm.info["created"] = vm.info.get("created") or time.time()
    vm.info["boots"] = vm.info.get("boots", 0) + 1
    vm.info["state"] = "running"
    vm.info["boot_seconds"] = round(time.monotonic() - t0, 3)
    vm.save()
    vm.log("running after %.3f s" % vm.info["boot_seconds"])


def _default_gateway(ip, prefix_len):
    a = [int(x) for x in ip.split(".")]
    n = int.from_bytes(bytes(a), "big") & (0xFFFFFFFF << (32 - prefix_len)) & 0xFFFFFFFF
    return socket.inet_ntoa((n + 1).to_bytes(4, "big"))


def _create_disk(vm):
    for d in ("disk", "overlay"):
        shutil.rmtree(vm.path(d), ignore_errors=True)  # a failed first boot starts over
    tmp = vm.path("etc.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _run(["cp", "-a", os.path.join(IMAGE_DIR, "etc"), tmp])
    shutil.rmtree(vm.path("etc"), ignore_errors=True)
    os.rename(tmp, vm.path("etc"))
    for name, _, mode in DISK_MOUNTS:
        p = vm.path("disk", name)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
    # /root as on a fresh Debian image; /var/log with the usual files; debconf db of the host
    for n in (".bashrc", ".profile"):
        src = os.path.join("/etc/skel", n)
        if os.path.exists(src):
            shutil.copy(src, vm.path("disk", "root", n))
    for n, mode in (("wtmp", 0o664), ("btmp", 0o660), ("lastlog", 0o664)):
        p = vm.path("disk", "var-log", n)
        open(p, "a").close()
        os.chmod(p, mode)
    for name, _ in OVERLAYS:
        for sub in ("upper", "work"):
            os.makedirs(vm.path("overlay", name, sub), exist_ok=True)
    grp = _group_id(vm.path("etc"), "mail")
    if grp is not None:
        os.chown(vm.path("disk", "var-mail"), 0, grp)
    if not os.path.exists(vm.path("console.fifo")):
        os.mkfifo(vm.path("console.fifo"), 0o600)
    open(vm.path("console.log"), "a").close()
    vm.log("disk created in %s" % vm.dir)


def _group_id(etc, name):
    try:
        for line in open(os.path.join(etc, "group")):
            f = line.split(":")
            if f[0] == name:
                return int(f[2])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _write_seed(vm, spec):
    seed = vm.path("disk", "var-lib-cloud", "seed", "nocloud")
    os.makedirs(seed, exist_ok=True)
    ud = spec.user_data or b""
    if isinstance(ud, str):
        ud = ud.encode()
    if ud[:2] == b"\x1f\x8b":
        try:
            ud = gzip.decompress(ud)
        except (OSError, EOFError) as e:
            vm.log("user data looks gzip but does not decompress (%s): passed as is" % e)
    md = {"instance-id": spec.instance_id, "local-hostname": spec.hostname,
          "launch-index": int(getattr(spec, "launch_index", 0) or 0),
          "public-keys": [k.strip() for k in (spec.authorized_keys or []) if k and k.strip()]}
    with open(os.path.join(seed, "meta-data"), "w") as f:
        json.dump(md, f, indent=1)  # JSON is YAML
        f.write("\n")
    with open(os.path.join(seed, "user-data"), "wb") as f:
        f.write(ud)
    # no DNS on the testbed: the gateway refuses at once rather than timing out
    etc_resolv = vm.path("etc", "resolv.conf")
    if os.path.islink(etc_resolv):
        os.unlink(etc_resolv)
    with open(etc_resolv, "w") as f:
        f.write("nameserver %s\n" % vm.info["gateway"])


def _write_mirror(vm):
    """The mirror mode for vm_apt_shim.sh: a file outside the VM's /etc, bind-mounted read-only over
    MIRROR_FILE (whose mount point is made in the VM's /etc, also on disks older than this)."""
    mode, hang = vm.info.get("mirror", "ok"), vm.info.get("mirror_hang", MIRROR_HANG)
    with open(vm.path("mirror"), "w") as f:
        f.write("hang %g\n" % hang if mode == "hang" else mode + "\n")
    mp = vm.path("etc", MIRROR_FILE.lstrip("/").split("/", 1)[1])
    os.makedirs(os.path.dirname(mp), exist_ok=True)
    if not os.path.isfile(mp):
        open(mp, "w").close()
    vm.log("mirror %s" % (("hang %g s" % hang) if mode == "hang" else mode))


def _setup_netns(vm, spec, gateway):
    ns, key = vm.info["netns"], _key(spec.instance_id)
    host_if, peer_if = VETH_HOST_PREFIX + key, VETH_PEER_PREFIX + key
    with _net_lock:
        # leftovers of a crashed run
        if os.path.exists("/run/netns/" + ns):
            _run(["ip", "netns", "del", ns], check=False, log=vm.log)
        for link in (host_if, peer_if):
            if link in _host_links():
                _run(["ip", "link", "del", link], check=False, log=vm.log)
        _run(["ip", "netns", "add", ns], log=vm.log)
    try:
        _run(["ip", "link", "add", host_if, "type", "veth", "peer", "name", peer_if], log=vm.log)
        _run(["ip", "link", "set", peer_if, "netns", ns], log=vm.log)
        _run(["ip", "link", "set", host_if, "master", BRIDGE, "up"], log=vm.log)
        cmds = ["link set lo up",
                "link set %s name eth0 address %s" % (peer_if, _mac(spec.instance_id)),
                "addr add %s/%d dev eth0" % (spec.private_ip, spec.prefix_len)]
        if spec.public_ip and spec.public_ip != spec.private_ip:
            cmds.append("addr add %s/%d dev eth0" % (spec.public_ip, spec.prefix_len))
        cmds += ["link set eth0 up", "route add default via %s dev eth0" % gateway]
        # the other testbed ranges are on the same bridge: reach them on-link (VM to VM across subnets,
        # and to other VMs' public addresses) without the host having to route
        own = [ipaddress.ip_interface("%s/%d" % (a, spec.prefix_len)).network
               for a in (spec.private_ip, spec.public_ip) if a]
        for a in BRIDGE_ADDRS:
            net = ipaddress.ip_interface(a).network
            if not any(net.overlaps(o) for o in own):
                cmds.append("route add %s dev eth0" % net)
        _run(["ip", "-netns", ns, "-batch", "-"], input="\n".join(cmds).encode() + b"\n", log=vm.log)
        for ip in filter(None, (spec.private_ip, spec.public_ip)):
            _run(["ip", "neigh", "del", ip, "dev", BRIDGE], check=False)
    except Exception:
        with _net_lock:
            _run(["ip", "netns", "del", ns], check=False, log=vm.log)
            _run(["ip", "link", "del", host_if], check=False)
        raise


def _start_holder(vm):
    for n, _ in OVERLAYS:
        for sub in ("upper", "work"):
            os.makedirs(vm.path("overlay", n, sub), exist_ok=True)
    cfg = {
        "dir": vm.dir,
        "hostname": vm.info["hostname"],
        "console_fifo": vm.path("console.fifo"),
        "console_log": vm.path("console.log"),
        "overlays": [[mp, vm.path("overlay", n, "upper"), vm.path("overlay", n, "work")]
                     for n, mp in OVERLAYS if os.path.isdir(mp) and not os.path.islink(mp)],
        "binds": [[vm.path("etc"), "/etc"]] + [[vm.path("disk", n), mp] for n, mp, _ in DISK_MOUNTS],
        "ro_binds": [[os.path.join(IMAGE_DIR, "vm_apt_shim.sh"), p]
                     for p in ("/usr/bin/apt-get", "/usr/bin/apt") if os.path.exists(p)]
                    + [[vm.path("mirror"), MIRROR_FILE]],
    }
    with open(vm.path("init.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    argv = ["nsenter", "--net=/run/netns/" + vm.info["netns"], "--",
            "unshare", "--pid", "--fork", "--mount", "--uts", "--propagation", "private", "--",
            SYS_PYTHON, "-I", "-S", os.path.join(IMAGE_DIR, "vm_init.py"), vm.path("init.json")]
    vm.log("$ " + " ".join(argv))
    errlog = open(vm.path("holder.log"), "ab")
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errlog,
                             cwd="/", start_new_session=True, close_fds=True)
    finally:
        errlog.close()
    vm.popen = p
    line = b""
    deadline = time.monotonic() + HOLDER_START_TIMEOUT
    while not line.endswith(b"\n") and time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            break
        line += chunk
    p.stdout.close()
    text = line.decode("utf-8", "replace").strip()
    if not text.startswith("READY "):
        _kill_tree_of_popen(p)
        raise VmError("VM init of %s did not start: %s (see %s)" % (
            vm.id, text or "no answer", vm.path("holder.log")))
    pid = int(text.split()[1])
    vm.info.update({
        "holder_pid": pid,
        "holder_start": _proc_starttime(pid),
        "ns": {n: _ns_inode(pid, n) for n in ("mnt", "pid", "net", "uts")},
    })
    vm.save()
    vm.log("init running as host pid %d" % pid)


def _kill_tree_of_popen(p):
    try:
        for c in open("/proc/%d/task/%d/children" % (p.pid, p.pid)).read().split():
            _kill(int(c))
    except OSError:
        pass
    _kill(p.pid)
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        pass


def _nsenter_argv(pid, argv, env=None):
    return (["nsenter", "-t", str(pid), "-m", "-u", "-n", "-p", "--", "/usr/bin/env", "-i"]
            + VM_ENV + list(env or []) + list(argv))


def _run_boot_script(vm, swap):
    status = vm.path("boot-status")
    open(status, "w").close()
    env = ["ETB_STATUS=" + status, "ETB_SWAP_HOST_KEY=" + ("1" if swap else "0")]
    argv = _nsenter_argv(vm.info["holder_pid"], ["/bin/sh", os.path.join(IMAGE_DIR, "boot.sh")], env)
    # a hanging mirror: cloud-init's packages module waits it out twice (update, install), as on a cloud
    limit = BOOT_TIMEOUT + (2 * vm.info.get("mirror_hang", MIRROR_HANG) if vm.info.get("mirror") == "hang" else 0)
    t = time.monotonic()
    with open(vm.path("console.log"), "ab") as con:
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=con, stderr=con, timeout=limit, cwd="/")
        except subprocess.TimeoutExpired:
            raise VmError("boot of %s did not finish within %d s (see %s)" % (
                vm.id, limit, vm.path("console.log")))
    results = open(status).read()
    vm.log("boot script exit %d in %.2f s:\n%s" % (r.returncode, time.monotonic() - t, results.rstrip()))
    if "done 0" not in results:
        raise VmError("boot script of %s failed (exit %d; see %s and %s)" % (
            vm.id, r.returncode, vm.path("console.log"), vm.path("boot.log")))


def _ensure_key_block(vm):
    """cloud-init's keys_to_console prints the block on first boot (via /dev/console, our FIFO). If it
    is missing (module failed), write the block the way cloud-init would, from the VM's host keys."""
    try:
        text = open(vm.path("console.log"), encoding="utf-8", errors="replace").read()
    except OSError:
        text = ""
    if "-----BEGIN SSH HOST KEY KEYS-----" in text:
        return
    sshdir = vm.path("etc", "ssh")
    keys = []
    for n in sorted(os.listdir(sshdir)):
        if n.startswith("ssh_host_") and n.endswith("_key.pub"):
            parts = open(os.path.join(sshdir, n)).read().split()
            if len(parts) >= 2 and parts[0] != "ssh-dss":
                keys.append("%s %s" % (parts[0], parts[1]))
    if keys:
        vm.log("console had no host key block: writing it from /etc/ssh")
        vm.console_write("-----BEGIN SSH HOST KEY KEYS-----\n%s\n-----END SSH HOST KEY KEYS-----\n"
                         % "\n".join(keys))


def _wait_ssh(vm, ip):
    deadline = time.monotonic() + SSH_WAIT
    last = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((ip, 22), timeout=1) as s:
                s.settimeout(2)
                if s.recv(64).startswith(b"SSH-"):
                    return
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise VmError("sshd of %s does not answer on %s:22 (%s); see %s" % (vm.id, ip, last, vm.path("console.log")))


# ---------------------------------------------------------------------------------------------------
# stop / destroy / cleanup


def stop(instance_id):
    """Kill every process of the VM (its init included); keep its disk."""
    try:
        vm = _get(instance_id)
    except VmNotFound:
        return
    _interrupt_boot(vm)
    with vm.lock:
        _stop_locked(vm)
        vm.save()


def _interrupt_boot(vm):
    """A boot in progress (e.g. user data that never finishes) would hold the lock: kill the VM's init
    so the boot fails at once; the caller then takes the lock and finishes the stop."""
    if vm.booting:
        vm.stop_requested = True
        pid = vm.holder_pid()
        if pid:
            vm.log("stop requested during boot: killing the VM")
            _kill(pid)


def _stop_locked(vm, final_state="stopped"):
    pid = vm.holder_pid()
    # The namespaces recorded at boot are this VM's only while its init lives: once they are freed,
    # the kernel gives their numbers to the next namespaces made, another VM's.
    ns = (vm.info.get("ns") or {}) if pid else {}
    targets = {v for k, v in ns.items() if k in ("mnt", "pid", "net") and v}
    netns = vm.info.get("netns")
    nsino = _netns_inode(netns) if netns else None
    if nsino:
        targets.add(nsino)
    _kill_vms([pid] if pid else [], targets)
    if vm.popen is not None:
        try:
            vm.popen.wait(5)
        except subprocess.TimeoutExpired:
            _kill(vm.popen.pid)
            vm.popen.wait(5)
        vm.popen = None
    if netns:
        with _net_lock:
            if os.path.exists("/run/netns/" + netns):
                _run(["ip", "netns", "del", netns], check=False, log=vm.log)
            veth = vm.info.get("veth")
            if veth and veth in _host_links():
                _run(["ip", "link", "del", veth], check=False, log=vm.log)
    vm.info.update({"state": final_state, "holder_pid": None, "holder_start": None, "ns": None})
    vm.log("stopped")


def _ppid(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _kill_vms(inits, ns_targets, cmd_marker=None, timeout=10):
    """Kill VMs: SIGKILL their inits (PID 1 of each VM's PID namespace: the kernel then kills the rest of
    the namespace), let each init be reaped by its `unshare` parent (which then exits by itself; killing
    it first would leave the init a zombie of the host's PID 1, which does not reap here), then SIGKILL
    whatever else is still in one of `ns_targets` ('mnt:[..]', 'pid:[..]', 'net:[..]') or has
    `cmd_marker` in its command line, and wait until all of it is gone.

    A namespace's number is unique only while the namespace lives: once the last process in it dies,
    the kernel gives the number to the next namespace made, maybe another VM's booting right now. So
    only targets pinned for the whole kill count: a named netns (its /run/netns bind mount holds it)
    or a namespace of one of `inits`, held open here until the end."""
    pins, ns_targets = _pin_namespaces(inits, ns_targets)
    try:
        _kill_pinned(inits, ns_targets, cmd_marker, timeout)
    finally:
        for fd in pins:
            os.close(fd)


def _pin_namespaces(inits, ns_targets):
    """Opens the namespaces of `inits` that are among `ns_targets` (an open namespace file keeps the
    namespace, and so its number, alive): the open fds, and the targets that are pinned."""
    named = {i for i in (_netns_inode(n) for n in _list_netns()) if i}
    pins, pinned = [], set(ns_targets) & named
    for pid in inits:
        for n in ("mnt", "pid", "net"):
            try:
                fd = os.open("/proc/%d/ns/%s" % (pid, n), os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            ino = "%s:[%d]" % (n, os.fstat(fd).st_ino)
            if ino in ns_targets:
                pins.append(fd)
                pinned.add(ino)
            else:
                os.close(fd)
    return pins, pinned


def _kill_pinned(inits, ns_targets, cmd_marker, timeout):
    me = os.getpid()
    spare = {}  # unshare parents: they exit when their init is reaped
    for pid in inits:
        pp = _ppid(pid)
        if pp and pp != 1:
            spare[pp] = time.monotonic() + 3
        _kill(pid)
    deadline = time.monotonic() + 3
    while any(_proc_state(p) is not None for p in inits) and time.monotonic() < deadline:
        time.sleep(0.01)

    def matching():
        found = set()
        for p in _all_pids():
            if p == me:
                continue
            for n in ("mnt", "pid", "net"):
                if _ns_inode(p, n) in ns_targets:
                    found.add(p)
                    break
            else:
                if cmd_marker:
                    try:
                        if cmd_marker in open("/proc/%d/cmdline" % p, "rb").read():
                            found.add(p)
                    except OSError:
                        pass
        return found

    deadline = time.monotonic() + timeout
    while True:
        found = matching()
        now = time.monotonic()
        live = {p for p in found if _proc_state(p) not in (None, "Z", "X")}
        # zombies still to be reaped by a live parent (not the host's PID 1, which never reaps)
        dying = {p for p in found - live if _ppid(p) not in (None, 1)}
        if not live and not dying:
            return
        if now > deadline:
            if live:
                raise VmError("processes %s survive SIGKILL" % sorted(live))
            return
        for p in live:
            if p not in spare or now > spare[p]:
                _kill(p)
        time.sleep(0.02)


def destroy(instance_id):
    """Stop the VM and remove its namespaces, mounts and directory."""
    _check_id(instance_id)
    try:
        vm = _get(instance_id)
    except VmNotFound:
        vm = None
    if vm is not None:
        _interrupt_boot(vm)
        with vm.lock:
            _stop_locked(vm, final_state="destroyed")
            _remove_dir(vm.dir)
    else:
        _remove_dir(_vm_dir(instance_id))
    with _registry_lock:
        _registry.pop(instance_id, None)


def _host_mounts_under(root):
    out = []
    try:
        for line in open("/proc/self/mountinfo"):
            mp = line.split()[4].replace("\\040", " ")
            if mp == root or mp.startswith(root.rstrip("/") + "/"):
                out.append(mp)
    except OSError:
        pass
    return sorted(out, key=len, reverse=True)


def _remove_dir(d):
    if not os.path.exists(d):
        return
    for mp in _host_mounts_under(d):
        _run(["umount", "-l", mp], check=False)
    if _host_mounts_under(d):
        raise VmError("mounts left under %s" % d)
    shutil.rmtree(d, ignore_errors=True)
    if os.path.exists(d):
        _run(["rm", "-rf", "--one-file-system", d], check=False)


def _is_vm_init(pid):
    try:
        if b"vm_init.py" not in open("/proc/%d/cmdline" % pid, "rb").read():
            return False
        for line in open("/proc/%d/status" % pid):
            if line.startswith("NSpid:"):
                return line.split()[-1] == "1"
    except OSError:
        pass
    return False


def cleanup_all():
    """Kill and remove everything any VM left, even after a crash of the process that made them:
    processes in etb-* network namespaces or in recorded VM namespaces, the namespaces, veths, mounts
    under the state root and the VM directories. The bridge stays (teardown_network removes it)."""
    targets = set()
    extra = []
    if os.path.isdir(VMS_DIR):
        for n in os.listdir(VMS_DIR):
            try:
                info = json.load(open(os.path.join(VMS_DIR, n, "vm.json")))
            except (OSError, ValueError):
                continue
            pid = info.get("holder_pid")
            if pid and _alive(pid, info.get("holder_start")):
                extra.append(pid)
                for k in ("mnt", "pid", "net"):
                    v = (info.get("ns") or {}).get(k)
                    if v:
                        targets.add(v)
    netns_inodes = {i for i in (_netns_inode(ns) for ns in _list_netns()) if i}
    targets |= netns_inodes
    for p in _all_pids():  # inits of VMs we have no record of (another state root, lost vm.json)
        if p not in extra and _ns_inode(p, "net") in netns_inodes and _is_vm_init(p):
            extra.append(p)
    _kill_vms(extra, targets, cmd_marker=os.path.join(IMAGE_DIR, "vm_init.py").encode())
    with _registry_lock:
        vms = list(_registry.values())
        _registry.clear()
    for vm in vms:
        if vm.popen is not None:
            try:
                vm.popen.wait(5)
            except subprocess.TimeoutExpired:
                pass
    with _net_lock:
        for ns in _list_netns():
            _run(["ip", "netns", "del", ns], check=False)
        for link in _host_links():
            if link.startswith(VETH_HOST_PREFIX) or link.startswith(VETH_PEER_PREFIX):
                _run(["ip", "link", "del", link], check=False)
    for mp in _host_mounts_under(STATE_ROOT):
        _run(["umount", "-l", mp], check=False)
    if os.path.isdir(VMS_DIR):
        for n in os.listdir(VMS_DIR):
            _remove_dir(os.path.join(VMS_DIR, n))


def set_public_ip(instance_id, public_ip):
    """Extension (not in SPEC.md): change the public address of a running VM in place (None removes
    it), for an EDGE public address that arrives after boot. Stopped VMs just remember it."""
    vm = _get(instance_id)
    with vm.lock:
        old = vm.info.get("public_ip")
        if public_ip == vm.info.get("private_ip"):
            public_ip = None
        if old == public_ip:
            return
        if vm.holder_pid():
            ns, plen = vm.info["netns"], vm.info.get("prefix_len", 16)
            if old and old != vm.info.get("private_ip"):
                _run(["ip", "-netns", ns, "addr", "del", "%s/%d" % (old, plen), "dev", "eth0"], check=False,
                     log=vm.log)
            if public_ip:
                _run(["ip", "-netns", ns, "addr", "add", "%s/%d" % (public_ip, plen), "dev", "eth0"], log=vm.log)
                _run(["ip", "neigh", "del", public_ip, "dev", BRIDGE], check=False)
        vm.info["public_ip"] = public_ip
        vm.save()


# ---------------------------------------------------------------------------------------------------
# queries and exec


def console(instance_id) -> str:
    """The VM's console text (all boots): cloud-init output incl. the SSH HOST KEY KEYS block."""
    vm = _get(instance_id)
    try:
        with open(vm.path("console.log"), encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def exec_in(instance_id, argv, input=None, timeout=None, env=None) -> subprocess.CompletedProcess:
    """Run argv as root inside the VM (its mount, UTS, net and PID namespaces, clean environment).
    input: bytes or str (sent on stdin; stdin is /dev/null when None). stdout/stderr are bytes."""
    vm = _get(instance_id)
    pid = vm.holder_pid()
    if not pid:
        raise VmError("VM %s is not running (state %s)" % (instance_id, vm.state()))
    if isinstance(input, str):
        input = input.encode()
    full = _nsenter_argv(pid, argv, ["%s=%s" % kv for kv in (env or {}).items()])
    r = subprocess.run(full, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, cwd="/")
    return subprocess.CompletedProcess(list(argv), r.returncode, r.stdout, r.stderr)


def list_vms() -> list[dict]:
    """One dict per VM known on disk: id, hostname, private_ip, public_ip, addresses, state
    (booting/running/stopped), boot_seconds, pid, netns, dir, error."""
    ids = set()
    if os.path.isdir(VMS_DIR):
        ids |= {n for n in os.listdir(VMS_DIR) if os.path.exists(os.path.join(VMS_DIR, n, "vm.json"))}
    with _registry_lock:
        ids |= set(_registry)
    out = []
    for i in sorted(ids):
        try:
            vm = _get(i)
        except VmError:
            continue
        info = vm.info
        out.append({
            "id": i,
            "hostname": info.get("hostname"),
            "private_ip": info.get("private_ip"),
            "public_ip": info.get("public_ip"),
            "addresses": [a for a in (info.get("private_ip"), info.get("public_ip")) if a],
            "state": vm.state(),
            "boot_seconds": info.get("boot_seconds"),
            "boots": info.get("boots", 0),
            "pid": vm.holder_pid(),
            "netns": info.get("netns"),
            "dir": vm.dir,
            "error": info.get("error"),
            "mirror": info.get("mirror", "ok"),
        })
    return out
