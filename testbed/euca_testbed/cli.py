"""`testbed` command line. See testbed/README.md and testbed/SPEC.md.

Long-lived state lives in one process, the personality; every command but up/down/env/image-tar
talks to it over its control API (`/_testbed/...` on the EC2 port, token from state.json).
"""

import argparse
import base64
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

from . import daemon

MOTO_ENV = {
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",  # DescribeImages shows the testbed's image only
    "MOTO_ENABLE_AMI_VALIDATION": "true",  # RunInstances with an unknown image fails, as on a cloud
}
DAEMON_MARK = "DOCKER_EUCA_TESTBED_DAEMON"  # =state root, in every daemon's environment: found again after a crash
BLACKHOLES = ("54.214.0.0/16", "172.31.0.0/16")  # moto's invented ranges (DESIGN.md)
IMAGE = {  # the one image, defined for moto in every account (MOTO_AMIS_PATH): public, of the first account
    "name": "euca-testbed-debian",
    "description": "docker-euca testbed image (instances boot as network-namespace VMs)",
    "owner_id": "123456789012",
    "public": True,
    "architecture": "x86_64",
    "virtualization_type": "hvm",
    "root_device_name": "/dev/sda1",
}
VPC_CIDR = "10.215.0.0/16"
SUBNET_CIDR = "10.215.1.0/24"


class Fail(Exception):
    pass


def err(msg):
    print(f"testbed: {msg}", file=sys.stderr)


# ---------------------------------------------------------------- control API client
def control(route, data=None, method=None, timeout=60, state=None):
    state = state or daemon.read_state()
    if not state or "personality" not in state:
        raise Fail("the testbed is not up (run `testbed up`)")
    url = f"http://127.0.0.1:{state['personality']['port']}/_testbed/{route}"
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, method=method or ("POST" if body is not None else "GET"))
    req.add_header("X-Testbed-Token", state["token"])
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        try:
            msg = json.load(e).get("error", str(e))
        except ValueError:
            msg = str(e)
        raise Fail(msg)
    except OSError as e:
        raise Fail(f"the testbed's personality does not answer on port {state['personality']['port']}: {e}")


# ---------------------------------------------------------------- env
def ec2_url_tls(state):
    """The HTTPS endpoint (private CA), or None for a testbed started before it had one."""
    port = (state.get("tls") or {}).get("port")
    return f"https://127.0.0.1:{port}/services/compute/" if port else None


def env_lines(state):
    from .personality import REGIONS

    http_url = f"http://127.0.0.1:{state['personality']['port']}/services/compute/"
    tls_url = ec2_url_tls(state)
    lines = [
        ("EC2_URL", tls_url if state.get("ec2_url_tls") and tls_url else http_url),
        ("AWS_ACCESS_KEY_ID", state["user"]["access_key"]),
        ("AWS_SECRET_ACCESS_KEY", state["user"]["secret_key"]),
        ("EUCA_REGION", REGIONS[state.get("speaks", "eucalyptus")]),
        ("EUCA_TESTBED_IMAGE", state["image_id"]),
        ("EUCA_TESTBED_ZONE", state["zone"]),
        ("EUCA_TESTBED_SUBNET", state["subnet_id"]),
        ("EUCA_TESTBED_MODE", state.get("mode", "edge")),
    ]
    if state.get("keyring"):
        lines.append(("DBUS_SESSION_BUS_ADDRESS", state["keyring"]["address"]))
    if tls_url:  # after today's lines: those keep their order
        lines += [
            ("EC2_URL_TLS", tls_url),
            ("EUCA_TESTBED_CA", state["tls"]["ca"]),
            ("EUCA_TESTBED_OTHER_CA", state["tls"]["other_ca"]),
        ]
    out = [f"export {k}={v}" for k, v in lines]
    example = f"docker euca create --image {state['image_id']}"
    if state.get("mode") == "vpc":
        example += f" --subnet {state['subnet_id']}"
    out.append(f"# e.g. {example} web1")
    return "\n".join(out)


def healthy(state):
    if not state or state.get("corrupt") or "personality" not in state:
        return False
    if not (daemon.alive(state.get("moto")) and daemon.alive(state.get("personality"))):
        return False
    try:
        control("status", state=state, timeout=5)
    except Fail:
        return False
    return True


# ---------------------------------------------------------------- up / down
def _ip(*args):
    return subprocess.run(["ip", *args], capture_output=True, text=True)


def add_blackholes():
    for net in BLACKHOLES:
        r = _ip("route", "replace", "blackhole", net)
        if r.returncode != 0:
            raise Fail(f"ip route replace blackhole {net}: {r.stderr.strip()}")


def remove_blackholes():
    for net in BLACKHOLES:
        _ip("route", "del", "blackhole", net)


def _marked_pids():
    mark = f"{DAEMON_MARK}={daemon.STATE_ROOT}".encode()
    me = os.getpid()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if mark in f.read().split(b"\0"):
                    out.append(int(name))
        except OSError:
            pass
    return out


def cleanup(state, quiet=False):
    """Stop whatever a (possibly crashed) testbed left: daemons, VMs, network, state root."""
    from . import keyring
    from .machines import load_vm_module

    if state and not state.get("corrupt"):
        if daemon.alive(state.get("personality")):
            with contextlib.suppress(Fail):
                control("shutdown", {}, state=state, timeout=3)
        daemon.kill(state.get("personality"))
        daemon.kill(state.get("moto"))
        keyring.stop(state.get("keyring"))
    for pid in _marked_pids():  # daemons a crash left behind without a state.json
        daemon.kill(daemon.proc(pid), timeout=2)
    vm, fake = load_vm_module()
    for step in ("cleanup_all", "teardown_network"):
        try:
            getattr(vm, step)()
        except Exception as e:
            err(f"vm.{step}: {e}")
    remove_blackholes()
    shutil.rmtree(daemon.STATE_ROOT, ignore_errors=True)


def _log_tail(name, lines=30):
    try:
        with open(os.path.join(daemon.LOG_DIR, name), errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def _write_amis():
    """The image's definition for moto (MOTO_AMIS_PATH): every account's backend loads it, so the
    one image id launches in any account. Returns (path, image id)."""
    image_id = "ami-" + secrets.token_hex(9)[:17]
    path = os.path.join(daemon.STATE_ROOT, "amis.json")
    daemon.write_file_atomic(path, json.dumps([dict(IMAGE, ami_id=image_id)], indent=2) + "\n")
    return path, image_id


def _setup_moto(port, image_id):
    import boto3

    ec2 = boto3.client(
        "ec2",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testbed",
        aws_secret_access_key="testbed",
    )
    if not ec2.describe_images(ImageIds=[image_id])["Images"]:
        raise Fail(f"moto did not load the image {image_id} (MOTO_AMIS_PATH)")
    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    vpc_id = ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock=SUBNET_CIDR, AvailabilityZone=zone)["Subnet"]["SubnetId"]
    default_vpc = [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v.get("IsDefault")]
    return {
        "image_id": image_id,
        "zone": zone,
        "vpc_id": vpc_id,
        "subnet_id": subnet_id,
        "default_vpc_id": default_vpc[0] if default_vpc else None,
    }


def _start(args):
    from . import keyring, tls
    from .machines import load_vm_module
    from .personality import new_access_key, new_secret_key

    os.makedirs(daemon.LOG_DIR, mode=0o700, exist_ok=True)
    os.chmod(daemon.STATE_ROOT, 0o700)
    vm, fake = load_vm_module()
    if fake:
        err("vm.py is not there (or EUCA_TESTBED_FAKE_VMS=1): instances get no VMs")
    vm.ensure_network()  # bridge, host addresses, blackhole routes for moto's ranges
    if fake:
        add_blackholes()

    amis_path, image_id = _write_amis()
    env = dict(os.environ, **MOTO_ENV, MOTO_AMIS_PATH=amis_path, **{DAEMON_MARK: daemon.STATE_ROOT})
    moto_bin = os.path.join(os.path.dirname(sys.executable), "moto_server")
    for attempt in range(3):
        port = daemon.free_port()
        moto, child = daemon.spawn([moto_bin, "-H", "127.0.0.1", "-p", str(port)], "moto.log", env=env)
        if daemon.wait_port(port, 30, child):
            break
        daemon.kill(moto)
    else:
        raise Fail("moto_server did not start:\n" + _log_tail("moto.log"))
    state = {
        "version": 1,
        "moto": dict(moto, port=port),
        "token": base64.urlsafe_b64encode(os.urandom(24)).decode(),
        "user": {"access_key": new_access_key(), "secret_key": new_secret_key()},
        "mode": args.mode or "edge",
        "speaks": args.personality or "eucalyptus",  # the personality of the first user and of new ones
        "boot_delay": args.boot_delay if args.boot_delay is not None else 2.0,
        "public_ip_delay": args.public_ip_delay if args.public_ip_delay is not None else 3.0,
        "fake_vms": fake,
        "started_at": time.time(),
        "ec2_url_tls": bool(args.tls),  # EC2_URL is the HTTPS one (the last `up` decides)
    }
    try:
        state["tls"] = tls.make(daemon.STATE_ROOT)  # CA, server certificate, other CA (paths); port below
    except (OSError, tls.TlsError) as e:
        raise Fail(f"making the testbed's CA: {e}")
    state.update(_setup_moto(port, image_id))
    daemon.write_state(state)

    port_file = os.path.join(daemon.STATE_ROOT, "personality.port")
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    penv = dict(env, PYTHONPATH=pkg_parent + os.pathsep + os.environ.get("PYTHONPATH", ""))
    pers, child = daemon.spawn([sys.executable, "-m", "euca_testbed", "serve"], "personality.log", env=penv)
    deadline = time.time() + 30
    while not os.path.exists(port_file):
        if child.poll() is not None or time.time() > deadline:
            raise Fail("the personality did not start:\n" + _log_tail("personality.log"))
        time.sleep(0.05)
    with open(port_file) as f:
        state["personality"] = dict(pers, port=int(f.read().strip()))
    with open(os.path.join(daemon.STATE_ROOT, "personality.tls_port")) as f:  # written before personality.port
        state["tls"]["port"] = int(f.read().strip())
    daemon.write_state(state)
    control("status", state=state, timeout=10)

    if args.keyring:
        state["keyring"] = keyring.start()
        daemon.write_state(state)
    return state


def cmd_up(args):
    with daemon.locked():
        state = daemon.read_state()
        if healthy(state):
            changes = {k: v for k, v in (("boot_delay", args.boot_delay), ("public_ip_delay", args.public_ip_delay)) if v is not None}
            if changes:
                control("config", changes, state=state)
            if args.mode and args.mode != state.get("mode"):
                state["mode"] = args.mode
                daemon.write_state(state)
            if args.personality and args.personality != state.get("speaks", "eucalyptus"):
                raise Fail(f"this testbed speaks {state.get('speaks', 'eucalyptus')} to its first user: `down`, then "
                           f"`up --personality {args.personality}` (or `credentials new --personality {args.personality}`)")
            if args.tls and not ec2_url_tls(state):
                raise Fail("this testbed was started without an HTTPS port (before it had one): `down`, then `up --tls`")
            if bool(args.tls) != bool(state.get("ec2_url_tls")):
                state["ec2_url_tls"] = bool(args.tls)
                daemon.write_state(state)
            from . import keyring

            if state.get("keyring") and not keyring.alive(state["keyring"]):
                err("the keyring daemons died: restarting them")
                keyring.stop(state["keyring"])
                state["keyring"] = None
                args.keyring = True
            if args.keyring and not state.get("keyring"):
                state["keyring"] = keyring.start()
                daemon.write_state(state)
            print(env_lines(state))
            return 0
        if state is not None or os.path.exists(daemon.STATE_ROOT) or _marked_pids():
            err("cleaning up after a previous testbed that is not healthy")
            cleanup(state)
        os.makedirs(daemon.STATE_ROOT, mode=0o700, exist_ok=True)
        try:
            state = _start(args)
        except BaseException as e:
            err(f"up failed: {e}")
            with contextlib.suppress(Exception):
                cleanup(daemon.read_state())
            if isinstance(e, Fail):
                return 1
            raise
        print(env_lines(state))
        return 0


def cmd_down(args):
    with daemon.locked():
        cleanup(daemon.read_state())
    return 0


def cmd_env(args):
    state = daemon.read_state()
    if not healthy(state):
        raise Fail("the testbed is not up (run `testbed up`)")
    print(env_lines(state))
    return 0


# ---------------------------------------------------------------- the rest
def cmd_status(args):
    state = daemon.read_state()
    if not healthy(state):
        if args.json:
            print(json.dumps({"up": False}))
        else:
            print("testbed: down")
        return 1
    st = control("status", state=state)
    st["up"] = True
    st["ec2_url"] = f"http://127.0.0.1:{state['personality']['port']}/services/compute/"
    st["ec2_url_tls"] = ec2_url_tls(state)
    st["ca"] = (state.get("tls") or {}).get("ca")
    st["keyring"] = bool(state.get("keyring"))
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(f"testbed: up  EC2 {st['ec2_url']}  HTTPS {st['ec2_url_tls'] or 'off'}  moto :{st['moto_port']}  users {st['users']}  "
          f"VMs {'fake' if st['fake_vms'] else 'real'}  keyring {'on' if st['keyring'] else 'off'}")
    g = st["config"]["global"]
    print(f"boot-delay {g['boot_delay']:g}s  public-ip-delay {g['public_ip_delay']:g}s  stale-start {g.get('stale_start', 0):g}s  "
          f"clock-skew {g.get('clock_skew', 0):g}s  mirror {_mirror_text(g)}  faults {len(st['faults'])}  "
          f"accounts {len(st.get('accounts', []))}")
    if st["instances"]:
        print(f"{'INSTANCE':<21} {'ACCOUNT':<12} {'MODE':<4} {'PHASE':<10} {'PRIVATE':<15} {'PUBLIC':<15} {'SHOWN':<15} {'VM':<9} BOOT")
        for i in st["instances"]:
            phase = "purged" if i.get("purged") else i["phase"]
            print(f"{i['instance_id']:<21} {i.get('account') or '-':<12} {i['mode']:<4} {phase:<10} {i['private_ip'] or '-':<15} "
                  f"{i['public_ip'] or '-':<15} {i['shown_public_ip'] or '-':<15} {i['vm_state'] or '-':<9} "
                  f"{i['boot_seconds'] if i['boot_seconds'] is not None else '-'}")
    return 0


def cmd_stats(args):
    out = control("stats", {"access_key": args.access_key, "reset": args.reset})
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for action, n in out["actions"].items():
            e = out["errors"].get(action, 0)
            print(f"{action} {n}" + (f" ({e} errors)" if e else ""))
        print(f"total {out['total']}")
    return 0


def cmd_credentials(args):
    ask = {k: v for k, v in (("account", args.account), ("personality", args.personality)) if v}
    out = control("credentials", ask)
    if args.personality and "personality" not in out:
        raise Fail("the running personality knows no --personality (it predates it): restart the testbed (down, up)")
    print(f"AWS_ACCESS_KEY_ID={out['access_key']}")
    print(f"AWS_SECRET_ACCESS_KEY={out['secret_key']}")
    print(f"EUCA_TESTBED_ACCOUNT={out['account']}")
    print(f"EUCA_REGION={out.get('region', 'eucalyptus')}")
    return 0


def cmd_imds(args):
    out = control("imds", {"access_key": args.access_key} if args.access_key else None)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"AWS_EC2_METADATA_SERVICE_ENDPOINT={out['endpoint']}")
        print(f"EUCA_TESTBED_IMDS_ROLE={out['role']}")
        print(f"EUCA_TESTBED_IMDS_REQUESTS={out['requests']}")
    return 0


def cmd_requests(args):
    out = control("requests", {"access_key": args.access_key, "reset": args.reset})
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for r in out["requests"]:
            print(r["action"] + (" " + " ".join(r["params"]) if r["params"] else ""))
    return 0


def _mirror_text(cfg):
    """`ok`, `missing` or `hang` (with its seconds) of a config's values."""
    m = cfg.get("mirror", "ok")
    return f"hang({cfg.get('mirror_hang', 120):g}s)" if m == "hang" else m


def cmd_config(args):
    values = {"boot_delay": args.boot_delay, "public_ip_delay": args.public_ip_delay, "stale_start": args.stale_start,
              "clock_skew": args.clock_skew, "mirror": args.mirror, "mirror_hang": args.mirror_hang}
    if any(v is not None for v in values.values()):
        out = control("config", dict(values, access_key=args.access_key))
        applied = out["access_keys"].get(args.access_key, {}) if args.access_key else out["global"]
        for k in ("clock_skew", "mirror", "mirror_hang"):
            if values[k] is not None and k not in applied:
                raise Fail(f"the running personality knows no {k} (it predates it): restart the testbed (down, up)")
    else:
        out = control("config")
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        g = out["global"]
        print(f"global boot-delay {g['boot_delay']:g} public-ip-delay {g['public_ip_delay']:g} stale-start {g['stale_start']:g} "
              f"clock-skew {g.get('clock_skew', 0):g} mirror {g.get('mirror', 'ok')} mirror-hang {g.get('mirror_hang', 120):g}")
        for ak, v in out["access_keys"].items():
            print(f"{ak} " + " ".join(f"{k.replace('_', '-')} {x if isinstance(x, str) else format(x, 'g')}"
                                      for k, x in v.items()))
    return 0


def cmd_fault(args):
    if args.clear:
        out = control("fault", {"clear": True, "action": args.action, "access_key": args.access_key})
    elif args.list or not args.action:
        out = control("fault")
    else:
        if args.reset and not args.lose_answer:
            raise Fail("--reset goes with --lose-answer")
        if args.slow and args.delay:
            raise Fail("--slow and --delay: one of them (--slow applies the call even if the client gave up)")
        if not (args.status or args.throttle or args.delay or args.slow or args.swap_host_key or args.lose_answer
                or args.capacity):
            raise Fail("fault needs one of --status CODE, --throttle, --delay MS, --slow MS, --swap-host-key, "
                       "--lose-answer, --capacity")
        out = control(
            "fault",
            {
                "action": args.action,
                "status": args.status,
                "throttle": args.throttle,
                "delay_ms": args.delay,
                "slow_ms": args.slow,
                "swap_host_key": args.swap_host_key,
                "lose_answer": args.lose_answer,
                "reset": args.reset,
                "capacity": args.capacity,
                "count": args.count,
                "access_key": args.access_key,
            },
        )
    for r in [out["fault"]] if "fault" in out else out["faults"]:
        what = ", ".join(
            f"{k}={r[k]}" for k in ("status", "throttle", "delay_ms", "slow_ms", "swap_host_key", "lose_answer", "reset", "capacity",
                                    "access_key")
            if r.get(k)
        )
        print(f"{r['id']}: {r['action']} x{r['count']} {what}")
    return 0


def cmd_purge(args):
    out = control("purge", {"instance_id": args.instance_id})
    print(f"purged {out['instance_id']} (account {out['account']})")
    return 0


def cmd_exec(args):
    argv = args.cmd
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise Fail("exec needs a command: testbed exec INSTANCE_ID -- CMD...")
    data = {"instance_id": args.instance_id, "argv": argv}
    if args.stdin:
        data["input"] = base64.b64encode(sys.stdin.buffer.read()).decode()
    out = control("exec", data, timeout=3600)
    sys.stdout.buffer.write(base64.b64decode(out["stdout"]))
    sys.stdout.flush()
    sys.stderr.buffer.write(base64.b64decode(out["stderr"]))
    sys.stderr.flush()
    rc = out["returncode"]
    return 128 - rc if rc < 0 else rc


def cmd_image_tar(args):
    from .machines import load_vm_module

    vm, fake = load_vm_module()
    if fake:
        raise Fail("no VM layer (vm.py) to build the image with")
    vm.build_image_tar(os.path.abspath(args.path))
    return 0


def cmd_selftest(args):
    from . import selftest

    return selftest.main()


def cmd_serve(args):
    from . import personality

    personality.serve(daemon.STATE_ROOT)
    return 0


def parser():
    p = argparse.ArgumentParser(prog="testbed", description="a local Eucalyptus for docker-euca's tests (root)")
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the testbed (idempotent) and print its environment")
    up.add_argument("--boot-delay", type=float, metavar="S", help="seconds from RunInstances/StartInstances to boot (default 2)")
    up.add_argument("--public-ip-delay", type=float, metavar="S", help="seconds the public address stays hidden once booted (default 3)")
    up.add_argument("--mode", choices=["edge", "vpc"], help="which launch the printed example uses (default edge)")
    up.add_argument("--personality", choices=["eucalyptus", "aws"],
                    help="what the first user's requests meet (and new users', unless `credentials new` says): "
                         "Eucalyptus 4.4 (default), or AWS (no strict binding, region us-east-1, the testbed's VPC "
                         "as the default VPC with public addresses)")
    up.add_argument("--keyring", action="store_true", help="also start a D-Bus session with an unlocked gnome-keyring")
    up.add_argument("--tls", action="store_true",
                    help="EC2_URL is the HTTPS endpoint (private CA: EUCA_TESTBED_CA) instead of the HTTP one; "
                         "EC2_URL_TLS is printed either way (until the next `up` without --tls)")
    up.set_defaults(fn=cmd_up)

    sub.add_parser("down", help="stop everything and remove the state").set_defaults(fn=cmd_down)
    sub.add_parser("env", help="print the environment again").set_defaults(fn=cmd_env)

    st = sub.add_parser("status", help="instances and their VMs")
    st.add_argument("--json", action="store_true")
    st.set_defaults(fn=cmd_status)

    s = sub.add_parser("stats", help="EC2 calls received per action")
    s.add_argument("--json", action="store_true")
    s.add_argument("--access-key", metavar="AK", help="only calls signed with AK")
    s.add_argument("--reset", action="store_true", help="print, then zero the counters (of AK only with --access-key)")
    s.set_defaults(fn=cmd_stats)

    c = sub.add_parser("credentials", help="`credentials new`: a new user")
    c.add_argument("what", choices=["new"])
    c.add_argument("--account", metavar="new|ACCOUNT_ID",
                   help="`new`: the user of a new account; an account id: another user of that account (default: the first account)")
    c.add_argument("--personality", choices=["eucalyptus", "aws"],
                   help="what the user's requests meet (default: the testbed's, `up --personality`); an AWS user "
                        "belongs to the first account")
    c.set_defaults(fn=cmd_credentials)

    im = sub.add_parser("imds", help="the instance metadata service (IMDSv2) on the personality's port: "
                                     "with --access-key, its role's keys are that user's")
    im.add_argument("--access-key", metavar="AK", help="serve this user's keys (and a session token) as the role's")
    im.add_argument("--json", action="store_true")
    im.set_defaults(fn=cmd_imds)

    rq = sub.add_parser("requests", help="the EC2 requests an access key sent: action and parameter names")
    rq.add_argument("--access-key", metavar="AK", required=True)
    rq.add_argument("--json", action="store_true")
    rq.add_argument("--reset", action="store_true", help="print, then forget them")
    rq.set_defaults(fn=cmd_requests)

    cf = sub.add_parser("config", help="change boot-delay / public-ip-delay / stale-start / clock-skew / mirror at run time")
    cf.add_argument("--access-key", metavar="AK", help="only for requests signed with AK")
    cf.add_argument("--boot-delay", type=float, metavar="S")
    cf.add_argument("--public-ip-delay", type=float, metavar="S")
    cf.add_argument("--stale-start", type=float, metavar="S",
                    help="for S seconds after a StartInstances, Describe calls still show the instance stopped (default 0)")
    cf.add_argument("--clock-skew", type=float, metavar="S",
                    help="the endpoint's clock runs S seconds ahead (negative: behind): Date headers and the "
                         "SigV4 15-minute check use now+S (default 0)")
    cf.add_argument("--mirror", choices=["ok", "missing", "hang", "newer"],
                    help="the package mirror of the VMs the key's RunInstances/StartInstances boot: ok (the host's "
                         "packages), missing (no packages: installs fail at once), hang (no route: apt blocks "
                         "--mirror-hang seconds, then fails), newer (a newer build, VERSION+testbed1, of every "
                         "installed package: upgrades) (default ok)")
    cf.add_argument("--mirror-hang", type=float, metavar="S",
                    help="with --mirror hang: seconds each apt-get update/install blocks (default 120, at most 3600)")
    cf.add_argument("--json", action="store_true")
    cf.set_defaults(fn=cmd_config)

    f = sub.add_parser("fault", help="inject a fault into the next N calls of ACTION")
    f.add_argument("action", nargs="?", metavar="ACTION", help="EC2 action, e.g. RunInstances")
    f.add_argument("--status", type=int, metavar="CODE", help="answer with this HTTP status (503: ServiceUnavailable)")
    f.add_argument("--throttle", action="store_true", help="answer RequestLimitExceeded (HTTP 503)")
    f.add_argument("--delay", type=int, metavar="MS", help="hold the call MS milliseconds (then serve it, or fail with the above)")
    f.add_argument("--slow", type=int, metavar="MS",
                   help="take MS milliseconds to apply the call, and apply it even if the client went away meanwhile")
    f.add_argument("--swap-host-key", action="store_true", help="RunInstances: the next N VMs get other host keys than user data says")
    f.add_argument("--lose-answer", action="store_true", help="serve the call fully, then answer 503 ServiceUnavailable instead")
    f.add_argument("--reset", action="store_true", help="with --lose-answer: reset the connection instead of any answer")
    f.add_argument("--capacity", action="store_true",
                   help="RunInstances: the next N spot launches (InstanceMarketOptions) fail with InsufficientInstanceCapacity")
    f.add_argument("--count", type=int, default=1, metavar="N", help="how many calls (VMs) it applies to (default 1)")
    f.add_argument("--access-key", metavar="AK", help="only calls signed with AK")
    f.add_argument("--clear", action="store_true", help="remove faults (of ACTION / AK when given)")
    f.add_argument("--list", action="store_true", help="list pending faults")
    f.set_defaults(fn=cmd_fault)

    pg = sub.add_parser("purge", help="terminate an instance and make it vanish from every answer (InvalidInstanceID.NotFound)")
    pg.add_argument("instance_id")
    pg.set_defaults(fn=cmd_purge)

    e = sub.add_parser("exec", help="run a command in an instance's VM: exec INSTANCE_ID -- CMD...")
    e.add_argument("-i", "--stdin", action="store_true", help="pass this command's standard input")
    e.add_argument("instance_id")
    e.add_argument("cmd", nargs=argparse.REMAINDER)
    e.set_defaults(fn=cmd_exec)

    it = sub.add_parser("image-tar", help="write a docker-load-able busybox image tar")
    it.add_argument("path")
    it.set_defaults(fn=cmd_image_tar)

    sub.add_parser("selftest", help="check the EC2 side of the running testbed (boto3)").set_defaults(fn=cmd_selftest)

    sv = sub.add_parser("serve", help=argparse.SUPPRESS)
    sv.set_defaults(fn=cmd_serve)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    if os.geteuid() != 0:
        err("must run as root (namespaces, routes, /var/lib)")
        return 1
    try:
        return args.fn(args)
    except Fail as e:
        err(str(e))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed early (`| head`): not an error of ours
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
