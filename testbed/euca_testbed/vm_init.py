"""PID 1 of a testbed VM (run by vm.py with the system /usr/bin/python3, stdlib only).

Started as
    nsenter --net=/run/netns/etb-XXXX unshare --pid --fork --mount --uts --propagation private \
        /usr/bin/python3 -I -S vm_init.py CONFIG.json
so it is the init process of a fresh PID namespace, in a private mount and UTS namespace, inside the
VM's network namespace. It builds the VM's file system view (private /etc, /run, /var/lib/docker, ...),
sets the hostname, reports "READY <host pid>" on stdout, then stays alive as the VM's "kernel":
  * it reaps every orphan of the VM (the host's PID 1 does not reap, so without a PID namespace every
    daemon started in the VM would end as a zombie);
  * it copies what VM programs write to /dev/console (a FIFO bind-mounted there) into console.log;
  * when it dies (SIGKILL from vm.stop), the kernel kills every process of the VM's PID namespace.
"""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time


def sh(*argv):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed (exit %d): %s" % (" ".join(argv), r.returncode, r.stdout.strip()))


def bind(src, dst):
    sh("mount", "--bind", src, dst)


def setup(cfg):
    d = cfg["dir"]
    staging = os.path.join(d, "mnt")
    os.makedirs(staging, exist_ok=True)
    # Nothing we mount may leak back to the host.
    sh("mount", "--make-rprivate", "/")
    # /sys as seen from the VM's network namespace (sysfs shows the netns of whoever mounts it), keeping
    # the host's cgroup hierarchies for dockerd/runc.
    if os.path.ismount("/sys/fs/cgroup"):
        sh("mount", "--rbind", "/sys/fs/cgroup", staging)
        sh("umount", "-l", "/sys")
        sh("mount", "-t", "sysfs", "-o", "nosuid,nodev,noexec", "sysfs", "/sys")
        sh("mount", "--move", staging, "/sys/fs/cgroup")
    else:
        sh("umount", "-l", "/sys")
        sh("mount", "-t", "sysfs", "-o", "nosuid,nodev,noexec", "sysfs", "/sys")
    # /proc of the VM's own PID namespace (ps, start-stop-daemon, pidfiles see VM pids only).
    sh("mount", "-t", "proc", "-o", "nosuid,nodev,noexec", "proc", "/proc")
    for lower, upper, work in cfg.get("overlays", []):
        sh("mount", "-t", "overlay", "overlay", "-o",
           "lowerdir=%s,upperdir=%s,workdir=%s" % (lower, upper, work), lower)
    for src, dst in cfg["binds"]:
        bind(src, dst)
    # A fresh /run per boot, as on a real machine (tmpfs). No /run/systemd/system: `service` and the
    # lsb init functions use the sysvinit scripts.
    sh("mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,nodev,size=65536k", "tmpfs", "/run")
    for p, mode in (("/run/sshd", 0o755), ("/run/lock", 0o1777), ("/run/user", 0o755)):
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
    open("/run/utmp", "a").close()
    setup_dev(cfg)
    for src, dst in cfg["ro_binds"]:
        bind(src, dst)
        sh("mount", "-o", "remount,bind,ro", dst)
    sh("hostname", cfg["hostname"])


def setup_dev(cfg):
    """A private /dev as a VM has: the usual nodes, its own devpts instance, /dev/shm, /dev/log (served
    by syslog_pump) and /dev/console (a FIFO drained into console.log; cloud-init opens /dev/console
    with O_TRUNC, which a FIFO ignores)."""
    sh("mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,size=1024k", "tmpfs", "/dev")
    old = os.umask(0)
    try:
        for name, major, minor in (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
                                   ("urandom", 1, 9), ("tty", 5, 0)):
            os.mknod("/dev/" + name, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        for d, mode in (("/dev/pts", 0o755), ("/dev/shm", 0o1777), ("/dev/mqueue", 0o1777)):
            os.mkdir(d, mode)
    finally:
        os.umask(old)
    sh("mount", "-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec", "devpts",
       "/dev/pts")
    sh("mount", "-t", "tmpfs", "-o", "mode=1777,nosuid,nodev,size=65536k", "tmpfs", "/dev/shm")
    for name, target in (("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
                         ("core", "/proc/kcore")):
        os.symlink(target, "/dev/" + name)
    open("/dev/console", "w").close()
    bind(cfg["console_fifo"], "/dev/console")


def syslog_pump(sock, hostname):
    """/dev/log: what programs send to syslog ends in the VM's /var/log/syslog."""
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            time.sleep(0.1)
            continue
        msg = data.decode("utf-8", "replace").rstrip("\n\0")
        if msg.startswith("<") and ">" in msg[:6]:
            msg = msg[msg.index(">") + 1:]
        try:
            with open("/var/log/syslog", "a") as f:
                f.write("%s %s\n" % (hostname, msg) if not msg[:3].isalpha() else
                        "%s %s %s\n" % (msg[:15], hostname, msg[16:]))
        except OSError:
            pass


def console_pump(fd, out):
    while True:
        data = os.read(fd, 65536)
        if data:
            os.write(out, data)


def main():
    cfg = json.load(open(sys.argv[1]))
    host_pid = int(os.readlink("/proc/self"))  # host /proc is still mounted here
    try:
        setup(cfg)
    except Exception as e:  # noqa: BLE001
        print("ERROR %s" % e, flush=True)
        sys.exit(1)
    # Console FIFO opened (as /dev/console) before we report ready, so no write is lost.
    fd = os.open("/dev/console", os.O_RDWR)  # read-write: never sees EOF when writers close
    out = os.open(cfg["console_log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    threading.Thread(target=console_pump, args=(fd, out), daemon=True).start()
    log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    log.bind("/dev/log")
    os.chmod("/dev/log", 0o666)
    threading.Thread(target=syslog_pump, args=(log, cfg["hostname"]), daemon=True).start()
    print("READY %d" % host_pid, flush=True)
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            time.sleep(0.5)
        except InterruptedError:
            pass


if __name__ == "__main__":
    main()
