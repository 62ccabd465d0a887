"""Instances as Eucalyptus shows them, and the VMs behind them.

moto keeps the EC2 records; the `Fleet` keeps what moto cannot: the EDGE addresses the personality
hands out (private 10.213.0.0/16, public 10.214.0.0/16), when a public address becomes visible, the
boot state of each instance's VM, and the background work that drives vm.py. A reconcile loop puts
the VMs back in line with moto's view (a VM for every running instance, none for the others).
It also remembers each instance's account and client token, the window after a start in which
Describe calls still show it stopped (`stale_start`), which package mirror its VM sees (`mirror`, taken
from the config of the key that launched or last started it), and which instances were purged.
"""

import ipaddress
import logging
import threading
import time
from dataclasses import dataclass, field

from .ec2xml import dns_name

log = logging.getLogger("testbed.instances")

EDGE_PRIVATE = ipaddress.ip_network("10.213.0.0/16")
EDGE_PUBLIC = ipaddress.ip_network("10.214.0.0/16")
VPC_NET = ipaddress.ip_network("10.215.0.0/16")
GATEWAYS = {EDGE_PRIVATE: "10.213.0.1", EDGE_PUBLIC: "10.214.0.1", VPC_NET: "10.215.0.1"}


class AddressPool:
    """Hands out host addresses of a network in order, never twice in one testbed run (so no client
    can mistake a new instance for an old one through an address)."""

    def __init__(self, network, first=10):
        self._hosts = (ipaddress.ip_address(int(network.network_address) + i) for i in range(first, network.num_addresses - 1))
        self._mu = threading.Lock()

    def take(self):
        with self._mu:
            while True:
                ip = next(self._hosts)
                if ip.packed[-1] not in (0, 255):
                    return str(ip)


MIRROR_MODES = ("ok", "missing", "hang", "newer")  # vm.py / vm_apt_shim.sh
MIRROR_HANG = 120.0
TEXT_SETTINGS = ("mirror",)  # every other setting is seconds


class Config:
    """boot-delay / public-ip-delay / stale-start / clock-skew / mirror (+ mirror-hang), global and
    per access key.

    clock_skew (seconds, may be negative) is read by the personality, not the fleet: how far its
    clock is ahead for requests signed by the key (Date headers, the SigV4 time check).
    mirror (ok | missing | hang | newer) and mirror_hang (seconds each apt run blocks with "hang") go to the
    VMs the key's RunInstances/StartInstances boot, as boot_delay does.
    """

    def __init__(self, boot_delay=2.0, public_ip_delay=3.0, stale_start=0.0, clock_skew=0.0, mirror="ok",
                 mirror_hang=MIRROR_HANG):
        self._mu = threading.Lock()
        self.globals = {
            "boot_delay": float(boot_delay),
            "public_ip_delay": float(public_ip_delay),
            "stale_start": float(stale_start),
            "clock_skew": float(clock_skew),
            "mirror": str(mirror),
            "mirror_hang": float(mirror_hang),
        }
        self.per_key = {}

    def set(self, access_key=None, **values):
        with self._mu:
            target = self.per_key.setdefault(access_key, {}) if access_key else self.globals
            for k, v in values.items():
                if v is not None:
                    target[k] = str(v) if k in TEXT_SETTINGS else float(v)

    def get(self, access_key=None):
        with self._mu:
            out = dict(self.globals)
            out.update(self.per_key.get(access_key, {}))
            return out

    def snapshot(self):
        with self._mu:
            return {"global": dict(self.globals), "access_keys": {k: dict(v) for k, v in self.per_key.items()}}


@dataclass
class Instance:
    id: str
    owner: str  # the launching access key
    account: str  # the moto account it lives in
    client_token: str | None  # RunInstances' ClientToken
    edge: bool
    private: str
    public: str | None
    moto_private: str | None
    moto_public: str | None
    user_data: bytes
    authorized_keys: list
    swap_host_key: bool = False
    # a VPC instance with a public address (AWS: its default subnet maps one at launch, or the launch
    # asked for one): given at launch, visible once running, given back at stop, a new one at start
    vpc_public: bool = False
    spot: bool = False  # launched with InstanceMarketOptions (AWS: a one-time spot instance cannot be stopped)
    launch_index: int = 0  # moto's amiLaunchIndex in its reservation (0..N-1 for MinCount=MaxCount=N)
    mirror: str = "ok"  # the package mirror its VM sees (config of the launching / last starting key)
    mirror_hang: float = MIRROR_HANG
    # pending -> running -> (stopping -> stopped -> pending ...) -> terminated
    phase: str = "pending"
    generation: int = 0
    booted: bool = False  # vm.boot returned for the current generation
    public_visible_at: float | None = None
    stale_until: float | None = None  # Describe calls show it stopped until then (stale_start)
    vm_error: str | None = None
    boot_seconds: float | None = None
    launched_at: float = field(default_factory=time.time)
    op_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def hostname(self):
        return "euca-" + self.private.replace(".", "-")

    @property
    def gateway(self):
        return "10.213.0.1" if self.edge else "10.215.0.1"


@dataclass
class Presentation:
    """How one instance looks in a response right now."""

    edge: bool
    state: str | None  # overrides moto's state name when set
    private_ip: str | None
    public_ip: str | None
    moto_private: str | None
    moto_public: str | None
    client_token: str | None = None
    stale: bool = False  # shown stopped although started (stale_start)

    @property
    def private_dns(self):
        return dns_name(self.private_ip) if self.private_ip else None

    @property
    def public_dns(self):
        return dns_name(self.public_ip) if self.public_ip else None


class Fleet:
    def __init__(self, machines, config, describe_moto=None):
        self.machines = machines
        self.config = config
        self.describe_moto = describe_moto  # () -> {instance_id: state name}, straight from moto (every account with instances)
        self.private_pool = AddressPool(EDGE_PRIVATE)
        self.public_pool = AddressPool(EDGE_PUBLIC)
        self._mu = threading.RLock()
        self._instances = {}
        self._purged = set()
        self._stop = threading.Event()

    # ---- lookups ----
    def get(self, instance_id):
        with self._mu:
            return self._instances.get(instance_id)

    def all(self):
        with self._mu:
            return list(self._instances.values())

    def accounts(self):
        """The accounts of the instances not terminated (those the reconcile loop asks moto about)."""
        with self._mu:
            return sorted({i.account for i in self._instances.values() if i.phase != "terminated"})

    def is_purged(self, instance_id):
        with self._mu:
            return instance_id in self._purged

    # ---- lifecycle, called after moto accepted the action ----
    def launched(self, *, instance_id, owner, account, client_token, edge, moto_private, moto_public, user_data,
                 authorized_keys, swap_host_key, launch_index=0, vpc_public=False, spot=False):
        private = self.private_pool.take() if edge else moto_private
        vpc_public = vpc_public and not edge
        public = self.public_pool.take() if edge or vpc_public else None
        inst = Instance(
            id=instance_id,
            owner=owner,
            account=account,
            client_token=client_token,
            edge=edge,
            private=private,
            public=public,
            moto_private=moto_private,
            moto_public=moto_public,
            user_data=user_data,
            authorized_keys=authorized_keys,
            swap_host_key=swap_host_key,
            launch_index=launch_index,
            vpc_public=vpc_public,
            spot=spot,
        )
        with self._mu:
            self._instances[instance_id] = inst
        log.info("launched %s account=%s edge=%s private=%s public=%s launch_index=%d swap_host_key=%s", instance_id, account, edge, private, public, launch_index, swap_host_key)
        self._schedule_boot(inst, self.config.get(owner))
        return inst

    def started(self, instance_id, access_key):
        inst = self.get(instance_id)
        if inst is None or inst.phase not in ("stopped", "stopping"):
            return
        cfg = self.config.get(access_key)
        with self._mu:
            if inst.edge or inst.vpc_public:
                inst.public = self.public_pool.take()  # a stopped instance gives its public address back
            inst.swap_host_key = False
            inst.stale_until = time.time() + cfg["stale_start"] if cfg["stale_start"] > 0 else None
        log.info("start %s public=%s stale for %gs", instance_id, inst.public, cfg["stale_start"])
        self._schedule_boot(inst, cfg)

    def stopped(self, instance_id):
        inst = self.get(instance_id)
        if inst is None or inst.phase in ("stopped", "stopping", "terminated"):
            return
        with self._mu:
            inst.generation += 1
            inst.phase = "stopping"
            inst.booted = False
            inst.public_visible_at = None
            inst.stale_until = None
            gen = inst.generation
        self._spawn(self._do_stop, inst, gen)

    def rebooted(self, instance_id):
        inst = self.get(instance_id)
        if inst is None or inst.phase != "running":
            return
        self._spawn(self._do_reboot, inst, inst.generation)

    def terminated(self, instance_id):
        inst = self.get(instance_id)
        if inst is None or inst.phase == "terminated":
            return
        with self._mu:
            inst.generation += 1
            inst.phase = "terminated"
            inst.booted = False
            inst.public_visible_at = None
            inst.stale_until = None
        self._spawn(self._do_destroy, inst)

    def purge(self, instance_id):
        """After moto terminated it: the VM goes, and the instance from every answer."""
        with self._mu:
            self._purged.add(instance_id)
        self.terminated(instance_id)

    # ---- presentation ----
    def present(self, instance_id, moto_state):
        inst = self.get(instance_id)
        if inst is None:
            return None
        if inst.stale_until and time.time() < inst.stale_until and moto_state not in ("terminated", "shutting-down"):
            # eventual consistency: just started, still seen as it was
            return Presentation(inst.edge, "stopped", inst.private, None, inst.moto_private, inst.moto_public,
                                inst.client_token, stale=True)
        state = None
        if inst.phase == "pending" and moto_state in ("running", "pending"):
            state = "pending"
        elif inst.phase == "stopping" and moto_state in ("stopped", "stopping"):
            state = "stopping"
        shown = state or moto_state
        private = inst.private
        public = None
        if shown in ("terminated", "shutting-down"):
            private = None
        elif inst.edge or inst.vpc_public:
            if shown == "pending":
                public = "0.0.0.0" if inst.edge else None
            elif shown == "running":
                visible = inst.public_visible_at is not None and time.time() >= inst.public_visible_at
                public = inst.public if visible or not inst.edge else inst.private
        return Presentation(inst.edge, state, private, public, inst.moto_private, inst.moto_public, inst.client_token)

    # ---- background work ----
    def _spawn(self, fn, *args):
        threading.Thread(target=fn, args=args, daemon=True, name=f"{fn.__name__}-{args[0].id}").start()

    def _schedule_boot(self, inst, cfg):
        with self._mu:
            inst.generation += 1
            inst.phase = "pending"
            inst.booted = False
            inst.public_visible_at = None
            inst.mirror = cfg.get("mirror", "ok")
            inst.mirror_hang = cfg.get("mirror_hang", MIRROR_HANG)
            gen = inst.generation
        self._spawn(self._do_boot, inst, gen, cfg["boot_delay"], cfg["public_ip_delay"])

    def _current(self, inst, gen):
        with self._mu:
            return inst.generation == gen

    def _do_boot(self, inst, gen, boot_delay, public_ip_delay):
        deadline = time.time() + boot_delay
        while time.time() < deadline:
            if not self._current(inst, gen) or self._stop.is_set():
                return
            time.sleep(min(0.1, max(0.0, deadline - time.time())))
        with inst.op_lock:
            with self._mu:
                if inst.generation != gen:
                    return
                inst.phase = "running"
            self._boot_vm(inst, gen)
        with self._mu:
            if inst.generation == gen:
                # EDGE shows the public address a while after boot; a VPC one is there once running
                inst.public_visible_at = time.time() + (public_ip_delay if inst.edge else 0)

    def _boot_vm(self, inst, gen):
        """vm.boot for the instance as it is now; the caller holds op_lock."""
        spec = self.machines.spec(
            instance_id=inst.id,
            hostname=inst.hostname,
            private_ip=inst.private,
            public_ip=inst.public,
            gateway=inst.gateway,
            user_data=inst.user_data,
            authorized_keys=inst.authorized_keys,
            swap_host_key=inst.swap_host_key,
            launch_index=inst.launch_index,
            mirror=inst.mirror,
            mirror_hang=inst.mirror_hang,
        )
        t0 = time.time()
        try:
            self.machines.boot(spec)
            ok = True
        except Exception as e:
            log.exception("boot %s failed", inst.id)
            ok = False
            inst.vm_error = f"{type(e).__name__}: {e}"
        with self._mu:
            inst.boot_seconds = round(time.time() - t0, 3)
            if ok and inst.generation == gen:
                inst.booted = True
                inst.vm_error = None
        log.info("boot %s done in %.2fs ok=%s%s", inst.id, time.time() - t0, ok, "" if ok else f": {inst.vm_error}")

    def _interrupt_boot(self, inst, gen=None):
        """A boot in progress holds op_lock for as long as the VM's cloud-init runs (minutes behind a
        hanging mirror, or user data that never ends): a stop or terminate stops the VM at once, as a
        cloud stops an instance mid-boot, instead of waiting for it. The boot then fails ("interrupted
        by stop") and releases the lock. Not when a newer operation (a start after this stop) has
        been scheduled meanwhile: the lock may be that one's."""
        if not inst.op_lock.locked() or (gen is not None and not self._current(inst, gen)):
            return
        vm = {v["id"]: v for v in self.machines.list_vms()}.get(inst.id)
        if vm and vm.get("state") == "booting":
            log.info("%s: interrupting its VM's boot", inst.id)
            try:
                self.machines.stop(inst.id)
            except Exception:
                log.exception("interrupting the boot of %s failed", inst.id)

    def _do_stop(self, inst, gen):
        self._interrupt_boot(inst, gen)
        with inst.op_lock:
            try:
                self.machines.stop(inst.id)
            except Exception:
                log.exception("stop %s failed", inst.id)
        with self._mu:
            if inst.generation == gen:
                inst.phase = "stopped"
        log.info("stopped %s", inst.id)

    def _do_reboot(self, inst, gen):
        with inst.op_lock:
            if not self._current(inst, gen):
                return
            try:
                self.machines.stop(inst.id)
            except Exception:
                log.exception("reboot: stop %s failed", inst.id)
            if self._current(inst, gen):
                self._boot_vm(inst, gen)
        log.info("rebooted %s", inst.id)

    def _do_destroy(self, inst):
        self._interrupt_boot(inst)
        with inst.op_lock:
            try:
                self.machines.destroy(inst.id)
            except Exception:
                log.exception("destroy %s failed", inst.id)
        log.info("terminated %s", inst.id)

    # ---- reconcile ----
    def start_reconciler(self, interval=3.0):
        threading.Thread(target=self._reconcile_loop, args=(interval,), daemon=True, name="reconcile").start()

    def shutdown(self):
        self._stop.set()

    def _reconcile_loop(self, interval):
        while not self._stop.wait(interval):
            try:
                self.reconcile()
            except Exception:
                log.exception("reconcile failed")

    def reconcile(self):
        moto_states = self.describe_moto() if self.describe_moto else {}
        vms = {vm["id"]: vm for vm in self.machines.list_vms()}
        for inst in self.all():
            moto_state = moto_states.get(inst.id)
            if moto_state in ("terminated", "shutting-down") and inst.phase != "terminated":
                log.warning("reconcile: %s is %s in moto; destroying its VM", inst.id, moto_state)
                self.terminated(inst.id)
                continue
            if not inst.op_lock.acquire(blocking=False):
                continue  # an operation is under way
            try:
                gen = inst.generation
                vm = vms.get(inst.id)
                vm_state = vm.get("state") if vm else None
                if self._suspicious(inst, vm, vm_state):
                    # the snapshot may predate an operation that finished meanwhile: look again
                    vm = {v["id"]: v for v in self.machines.list_vms()}.get(inst.id)
                    vm_state = vm.get("state") if vm else None
                if inst.phase == "running" and inst.booted and vm_state not in ("running", "booting"):
                    log.warning("reconcile: %s runs without a VM (%s); booting it", inst.id, vm_state)
                    with self._mu:
                        inst.booted = False
                    self._boot_vm(inst, gen)
                elif inst.phase == "stopped" and vm_state in ("running", "booting"):
                    log.warning("reconcile: %s is stopped but its VM runs; stopping it", inst.id)
                    self.machines.stop(inst.id)
                elif inst.phase == "terminated" and vm is not None:
                    log.warning("reconcile: %s is terminated but its VM exists; destroying it", inst.id)
                    self.machines.destroy(inst.id)
            finally:
                inst.op_lock.release()
        known = {i.id for i in self.all()}
        for vm_id in vms:
            if vm_id not in known:
                log.warning("reconcile: VM %s belongs to no instance; destroying it", vm_id)
                try:
                    self.machines.destroy(vm_id)
                except Exception:
                    log.exception("destroy %s failed", vm_id)

    @staticmethod
    def _suspicious(inst, vm, vm_state):
        return (
            (inst.phase == "running" and inst.booted and vm_state not in ("running", "booting"))
            or (inst.phase == "stopped" and vm_state in ("running", "booting"))
            or (inst.phase == "terminated" and vm is not None)
        )

    def status(self):
        vms = {}
        try:
            vms = {vm["id"]: vm for vm in self.machines.list_vms()}
        except Exception as e:
            log.warning("list_vms: %s", e)
        out = []
        for inst in self.all():
            p = self.present(inst.id, {"pending": "running"}.get(inst.phase, inst.phase))
            vm = vms.get(inst.id, {})
            out.append(
                {
                    "instance_id": inst.id,
                    "owner": inst.owner,
                    "account": inst.account,
                    "client_token": inst.client_token,
                    "launch_index": inst.launch_index,
                    "swap_host_key": inst.swap_host_key,
                    "purged": self.is_purged(inst.id),
                    "mode": "edge" if inst.edge else "vpc",
                    "phase": inst.phase,
                    "private_ip": inst.private,
                    "public_ip": inst.public,
                    "shown_public_ip": p.public_ip if p else None,
                    "hostname": inst.hostname,
                    "vm_state": vm.get("state"),
                    "boot_seconds": inst.boot_seconds,
                    "vm_error": inst.vm_error,
                    "mirror": inst.mirror,
                    "mirror_hang": inst.mirror_hang,
                }
            )
        return out
