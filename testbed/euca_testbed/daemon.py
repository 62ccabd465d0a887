"""State root, state.json, and the detached processes the testbed starts.

A process is remembered as (pid, start time from /proc/PID/stat), so a recycled pid after a crash is
never mistaken for ours and never killed.
"""

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import time

DEFAULT_ROOT = "/var/lib/docker-euca-testbed"
# Another root only makes sense with the fake VM layer (vm.py keeps its own files under the default).
STATE_ROOT = os.environ.get("EUCA_TESTBED_ROOT", DEFAULT_ROOT)
STATE_FILE = os.path.join(STATE_ROOT, "state.json")
LOG_DIR = os.path.join(STATE_ROOT, "logs")
LOCK_FILE = f"/run/lock/{os.path.basename(STATE_ROOT)}.lock"  # outside the state root: `down` removes that


@contextlib.contextmanager
def locked():
    """Serialise up/down (tests may run several at once)."""
    os.makedirs(os.path.dirname(LOCK_FILE), exist_ok=True)
    with open(LOCK_FILE, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def write_file_atomic(path, text, mode=0o600):
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def read_state():
    try:
        with open(STATE_FILE) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except ValueError:
        return {"corrupt": True}


def write_state(state):
    os.makedirs(STATE_ROOT, mode=0o700, exist_ok=True)
    write_file_atomic(STATE_FILE, json.dumps(state, indent=2, sort_keys=True) + "\n")


def start_time(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = data[data.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def proc(pid):
    return {"pid": pid, "start": start_time(pid)}


def alive(p):
    return bool(p) and p.get("pid") and p.get("start") is not None and start_time(p["pid"]) == p["start"]


def kill(p, timeout=5.0):
    """TERM the process (and its process group, it leads one), then KILL after `timeout`."""
    if not alive(p):
        return
    pid = p["pid"]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for target in (lambda s: os.killpg(pid, s), lambda s: os.kill(pid, s)):
            with contextlib.suppress(OSError):
                target(sig)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not alive(p):
                return
            time.sleep(0.05)


def spawn(argv, log_name, env=None, cwd="/"):
    """Start a detached daemon (own session, stdin /dev/null, output to logs/NAME)."""
    os.makedirs(LOG_DIR, mode=0o700, exist_ok=True)
    out = open(os.path.join(LOG_DIR, log_name), "ab")
    try:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
            cwd=cwd,
        )
    finally:
        out.close()
    # wait for /proc to show it, so the start time is known
    for _ in range(100):
        st = start_time(child.pid)
        if st is not None:
            return {"pid": child.pid, "start": st}, child
        time.sleep(0.01)
    return {"pid": child.pid, "start": None}, child


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout, child=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if child is not None and child.poll() is not None:
            return False
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False
