"""build_image_tar: a `docker load`-able image (docker save format) of a busybox-static root file system.

Pure Python (tarfile/hashlib/json); no docker daemon. Layout of the tar:
    manifest.json                      [{"Config": "<id>.json", "RepoTags": [...], "Layers": ["<l>/layer.tar"]}]
    repositories                       {"euca-testbed/busybox": {"latest": "<l>"}}
    <id>.json                          image config (Cmd ["sh"], rootfs.diff_ids = [sha256 of layer.tar])
    <l>/VERSION, <l>/json, <l>/layer.tar
"""

import hashlib
import io
import json
import os
import subprocess
import tarfile

IMAGE_REPO = "euca-testbed/busybox"
IMAGE_TAG = "latest"
IMAGE_NAME = "%s:%s" % (IMAGE_REPO, IMAGE_TAG)
BUSYBOX = "/bin/busybox"
_MTIME = 1700000000  # fixed: the same host busybox always gives the same image id
_CREATED = "2023-11-14T22:13:20Z"
_FALLBACK_APPLETS = (
    "sh ash echo ls cat true false sleep env id uname hostname ps mkdir rm rmdir cp mv ln grep wc head "
    "tail date pwd touch printf test [ [[ sed awk sort uniq tr cut find xargs chmod chown stat df du "
    "free top kill which whoami nc wget vi tee basename dirname seq yes mount umount ip ifconfig"
).split()


def _applets():
    try:
        out = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, timeout=10).stdout
        names = [n.strip() for n in out.split() if n.strip()]
        if "sh" in names:
            return sorted(set(names) - {"busybox"})
    except (OSError, subprocess.SubprocessError):
        pass
    return sorted(set(_FALLBACK_APPLETS))


def _layer_tar():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:

        def add_dir(name, mode=0o755):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, mode, _MTIME
            tf.addfile(ti)

        def add_file(name, data, mode=0o644):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), mode, _MTIME
            tf.addfile(ti, io.BytesIO(data))

        for d, mode in (("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("home", 0o755), ("proc", 0o555),
                        ("root", 0o700), ("sys", 0o555), ("tmp", 0o1777), ("usr", 0o755), ("usr/bin", 0o755),
                        ("usr/sbin", 0o755), ("sbin", 0o755), ("var", 0o755), ("var/tmp", 0o1777)):
            add_dir(d, mode)
        with open(BUSYBOX, "rb") as f:
            add_file("bin/busybox", f.read(), 0o755)
        for a in _applets():
            if "/" in a or a in (".", ".."):
                continue
            ti = tarfile.TarInfo("bin/" + a)
            ti.type, ti.linkname, ti.mode, ti.mtime = tarfile.SYMTYPE, "busybox", 0o777, _MTIME
            tf.addfile(ti)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        add_file("etc/hostname", b"busybox\n")
    return buf.getvalue()


def build_image_tar(path):
    """Write a docker-load-able tar of image euca-testbed/busybox:latest (Cmd ["sh"]) to `path`."""
    layer = _layer_tar()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": _CREATED,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": _CREATED, "created_by": "euca-testbed: busybox-static from the host"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    image_id = hashlib.sha256(config_bytes).hexdigest()
    layer_dir = hashlib.sha256((diff_id + "\n").encode()).hexdigest()
    manifest = [{"Config": image_id + ".json", "RepoTags": [IMAGE_NAME], "Layers": [layer_dir + "/layer.tar"]}]
    legacy = {"id": layer_dir, "created": _CREATED, "os": "linux", "architecture": "amd64",
              "config": config["config"]}
    members = [
        (layer_dir + "/VERSION", b"1.0"),
        (layer_dir + "/json", json.dumps(legacy).encode()),
        (layer_dir + "/layer.tar", layer),
        (image_id + ".json", config_bytes),
        ("manifest.json", json.dumps(manifest).encode()),
        ("repositories", json.dumps({IMAGE_REPO: {IMAGE_TAG: layer_dir}}).encode()),
    ]
    path = os.fspath(path)
    tmp = path + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo(layer_dir)
        ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, _MTIME
        tf.addfile(ti)
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, _MTIME
            tf.addfile(ti, io.BytesIO(data))
    os.replace(tmp, path)
    return path
