"""The one adapter between the personality and the VM layer (vm.py, see SPEC.md).

Everything the personality does to a VM goes through `Machines`. With `EUCA_TESTBED_FAKE_VMS=1`
(or while vm.py does not exist yet) a stand-in keeps the same interface without namespaces, so the
EC2 side can be exercised alone; `up` says which one is in use.
"""

import importlib
import logging
import os
import subprocess
import threading
import time

log = logging.getLogger("testbed.machines")


class _FakeVm:
    """Records what would have happened; no processes, no network."""

    def __init__(self):
        self._vms = {}
        self._mu = threading.Lock()

    def ensure_network(self):
        pass

    def teardown_network(self):
        pass

    def cleanup_all(self):
        with self._mu:
            self._vms.clear()

    def boot(self, spec):
        t0 = time.time()
        time.sleep(0.2)
        with self._mu:
            self._vms[spec.instance_id] = {
                "id": spec.instance_id,
                "hostname": spec.hostname,
                "addresses": [a for a in (spec.private_ip, spec.public_ip) if a],
                "state": "running",
                "boot_seconds": round(time.time() - t0, 3),
                "mirror": getattr(spec, "mirror", "ok"),
                "launch_index": getattr(spec, "launch_index", 0),
                "console": f"fake console of {spec.instance_id}\n",
            }

    def stop(self, instance_id):
        with self._mu:
            if instance_id in self._vms:
                self._vms[instance_id]["state"] = "stopped"

    def destroy(self, instance_id):
        with self._mu:
            self._vms.pop(instance_id, None)

    def console(self, instance_id):
        with self._mu:
            vm = self._vms.get(instance_id)
            return vm["console"] if vm else ""

    def exec_in(self, instance_id, argv, input=None):
        return subprocess.CompletedProcess(argv, 127, b"", b"fake VM layer: no exec\n")

    def list_vms(self):
        with self._mu:
            return [{k: v for k, v in vm.items() if k != "console"} for vm in self._vms.values()]

    def build_image_tar(self, path):
        raise RuntimeError("fake VM layer: no image")

    class VmSpec:
        def __init__(self, **kw):
            self.__dict__.update(kw)


def load_vm_module():
    """vm.py, or the fake when asked for (EUCA_TESTBED_FAKE_VMS=1) or when vm.py is absent."""
    if os.environ.get("EUCA_TESTBED_FAKE_VMS") == "1":
        return _FakeVm(), True
    try:
        return importlib.import_module(".vm", __package__), False
    except ModuleNotFoundError as e:
        if e.name != f"{__package__}.vm":
            raise
        log.warning("vm.py not found: using the fake VM layer")
        return _FakeVm(), True


class Machines:
    def __init__(self):
        self.vm, self.fake = load_vm_module()

    def spec(self, *, instance_id, hostname, private_ip, public_ip, gateway, user_data, authorized_keys, swap_host_key,
             launch_index=0, mirror="ok", mirror_hang=120.0):
        return self.vm.VmSpec(
            instance_id=instance_id,
            hostname=hostname,
            private_ip=private_ip,
            public_ip=public_ip,
            prefix_len=16,
            gateway=gateway,
            user_data=user_data,
            authorized_keys=list(authorized_keys),
            swap_host_key=swap_host_key,
            launch_index=launch_index,
            mirror=mirror,
            mirror_hang=mirror_hang,
        )

    def boot(self, spec):
        self.vm.boot(spec)

    def stop(self, instance_id):
        self.vm.stop(instance_id)

    def destroy(self, instance_id):
        self.vm.destroy(instance_id)

    def console(self, instance_id):
        try:
            return self.vm.console(instance_id) or ""
        except Exception as e:  # a VM that never booted has no console yet
            log.debug("console %s: %s", instance_id, e)
            return ""

    def exec_in(self, instance_id, argv, input=None):
        return self.vm.exec_in(instance_id, argv, input=input)

    def list_vms(self):
        return self.vm.list_vms()
