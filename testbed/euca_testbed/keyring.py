"""A private D-Bus session bus with an unlocked gnome-keyring-daemon (Secret Service) on it.

Everything lives under the state root (bus socket, HOME, XDG_DATA_HOME, XDG_RUNTIME_DIR), so the
user's own keyring is never touched. The daemon is started with `--unlock` and a password on stdin:
on first start that creates the `login` collection, unlocked, and makes it the `default` alias.
"""

import os
import shutil
import subprocess
import time

from . import daemon

ROOT = os.path.join(daemon.STATE_ROOT, "keyring")
BUS_SOCKET = os.path.join(ROOT, "bus")
PASSWORD = b"testbed"

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def _env(address):
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "HOME": os.path.join(ROOT, "home"),
        "XDG_DATA_HOME": os.path.join(ROOT, "data"),
        "XDG_CONFIG_HOME": os.path.join(ROOT, "config"),
        "XDG_RUNTIME_DIR": os.path.join(ROOT, "run"),
        "DBUS_SESSION_BUS_ADDRESS": address,
        "LANG": "C.UTF-8",
    }
    return env


def _need(tool, package):
    if shutil.which(tool) is None:
        raise RuntimeError(f"{tool} not found: apt-get install {package}")


def start():
    """Start bus + keyring; returns the state.json entry."""
    _need("dbus-daemon", "dbus")
    _need("gnome-keyring-daemon", "gnome-keyring")
    _need("secret-tool", "libsecret-tools")
    for d in ("home", "data", "config", "run"):
        os.makedirs(os.path.join(ROOT, d), mode=0o700, exist_ok=True)
    conf = os.path.join(ROOT, "bus.conf")
    daemon.write_file_atomic(conf, BUS_CONFIG.format(socket=BUS_SOCKET), mode=0o644)
    if os.path.exists(BUS_SOCKET):
        os.unlink(BUS_SOCKET)

    out = subprocess.run(
        ["dbus-daemon", f"--config-file={conf}", "--fork", "--print-address=1", "--print-pid=1"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
        env=_env(""),
    ).stdout.split()
    address, dbus_pid = out[0], int(out[1])
    entry = {"dbus": daemon.proc(dbus_pid), "address": address}

    env = _env(address)
    log_path = os.path.join(daemon.LOG_DIR, "keyring.log")
    os.makedirs(daemon.LOG_DIR, exist_ok=True)
    with open(log_path, "ab") as logf:
        child = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            stdin=subprocess.PIPE,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd=ROOT,
        )
    child.stdin.write(PASSWORD)
    child.stdin.close()
    entry["keyring"] = daemon.proc(child.pid)
    check(address)
    return entry


def check(address, timeout=15.0):
    """Store, read back and clear a secret in the default collection."""
    env = _env(address)
    deadline = time.time() + timeout
    last = ""
    while time.time() < deadline:
        r = subprocess.run(
            ["secret-tool", "store", "--label=testbed probe", "docker-euca-testbed", "probe"],
            input=b"ok",
            capture_output=True,
            env=env,
            timeout=10,
        )
        if r.returncode == 0:
            got = subprocess.run(
                ["secret-tool", "lookup", "docker-euca-testbed", "probe"], capture_output=True, env=env, timeout=10
            )
            subprocess.run(["secret-tool", "clear", "docker-euca-testbed", "probe"], capture_output=True, env=env, timeout=10)
            if got.stdout.strip() == b"ok":
                return
            last = f"lookup gave {got.stdout!r} {got.stderr.decode(errors='replace')}"
        else:
            last = r.stderr.decode(errors="replace")
        time.sleep(0.2)
    raise RuntimeError(f"Secret Service on {address} does not work: {last.strip()}")


def alive(entry):
    return bool(entry) and daemon.alive(entry.get("dbus")) and daemon.alive(entry.get("keyring"))


def stop(entry):
    if entry:
        daemon.kill(entry.get("keyring"))
        daemon.kill(entry.get("dbus"))
