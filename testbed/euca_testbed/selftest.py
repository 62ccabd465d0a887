"""`testbed selftest`: checks the EC2 side of a running testbed through boto3, the way a client sees it.

Uses a user of its own (`credentials new`) with its own delays, so it can run next to other tests;
terminates what it launched. With real VMs it also logs in over SSH with a pinned host key. It also
makes a user of a new account (isolation), loses answers (fault --lose-answer), re-sends a launch
with its ClientToken, calls the HTTPS port (trusting the testbed's CA; the system roots and the other
CA must refuse it), purges an instance, skews one user's clock (config --clock-skew), and boots a VM
behind a hanging package mirror, then (stopped, started) behind one without packages (config --mirror);
launches two instances in one RunInstances with per-index user data parts (launch index).
Prints one line per check and ends with `N passed, M failed`.
"""

import ipaddress
import re
import subprocess
import sys
import tempfile
import time

from . import cli, daemon

RESULTS = []


def check(ok, what, detail=""):
    RESULTS.append(bool(ok))
    print(f"  {'ok  ' if ok else 'FAIL'} {what}" + (f"  [{detail}]" if detail and not ok else ""), flush=True)
    return ok


def in_net(ip, net):
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(net)
    except ValueError:
        return False


def main(argv=None):
    import boto3
    import botocore
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    from botocore.config import Config

    state = daemon.read_state()
    if not cli.healthy(state):
        print("testbed: selftest needs a running testbed (testbed up)", file=sys.stderr)
        return 1
    status = cli.control("status", state=state)
    url = f"http://127.0.0.1:{state['personality']['port']}/services/compute/"
    user = cli.control("credentials", {}, state=state)
    ak, sk = user["access_key"], user["secret_key"]
    cli.control("config", {"access_key": ak, "boot_delay": 1, "public_ip_delay": 2}, state=state)

    def client(a=ak, s=sk, region="eucalyptus"):
        return boto3.client(
            "ec2",
            endpoint_url=url,
            region_name=region,
            aws_access_key_id=a,
            aws_secret_access_key=s,
            config=Config(retries={"total_max_attempts": 1}),
        )

    def error_of(fn):
        try:
            fn()
            return None, None, None
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"].get("Message", "")

    def raw(params, method="POST", path="/services/compute/", secret=sk):
        import urllib.request
        from urllib.parse import urlencode

        base = url.rsplit("/services/", 1)[0]
        body = urlencode(params)
        if method == "GET":
            req = botocore.awsrequest.AWSRequest(method="GET", url=f"{base}{path}?{body}")
        else:
            req = botocore.awsrequest.AWSRequest(
                method="POST", url=base + path, data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            )
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(ak, secret), "ec2", "eucalyptus").add_auth(req)
        p = req.prepare()
        r = urllib.request.Request(p.url, data=p.body.encode() if isinstance(p.body, str) else p.body, method=p.method)
        for k, v in p.headers.items():
            r.add_header(k, v)
        try:
            with urllib.request.urlopen(r, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    c = client()
    image = state["image_id"]

    print("auth")
    c.describe_availability_zones()
    check(True, "signed request accepted")
    code, st, _ = error_of(lambda: client(s="x" * 40).describe_instances())
    check(code == "AuthFailure" and st in (401, 403), "bad secret -> AuthFailure", f"{code} {st}")
    code, st, _ = error_of(lambda: client(a="AKIDOESNOTEXIST00000").describe_instances())
    check(code == "AuthFailure" and st in (401, 403), "unknown access key -> AuthFailure", f"{code} {st}")
    code, st, _ = error_of(lambda: client(region="us-east-1").describe_instances())
    check(code == "AuthFailure", "region other than eucalyptus -> AuthFailure", f"{code} {st}")
    st, body = raw({"Action": "DescribeRegions", "Version": "2016-11-15"}, method="GET", path="/")
    check(st == 200 and "<regionName>eucalyptus</regionName>" in body, "GET query string on / accepted", f"{st}")
    st, body = raw({"Action": "DescribeVpcs", "Version": "2016-11-15"}, secret="y" * 40)
    check(st == 401 and "<Code>AuthFailure</Code>" in body, "raw bad signature -> 401 AuthFailure XML", f"{st} {body[:120]}")

    print("TLS (private CA)")
    check_tls(state, check, error_of, ak, sk)

    print("clock skew")
    check_clock_skew(state, client, check, c, url)

    print("Eucalyptus dialect")
    regions = c.describe_regions()["Regions"]
    check([r["RegionName"] for r in regions] == ["eucalyptus"], "DescribeRegions: eucalyptus only", regions)
    zones = c.describe_availability_zones()["AvailabilityZones"]
    check(zones and all(z["RegionName"] == "eucalyptus" for z in zones), "zones are in region eucalyptus")
    check(zones[0]["ZoneName"] == state["zone"], "EUCA_TESTBED_ZONE is the first zone")
    vpcs = [v["CidrBlock"] for v in c.describe_vpcs()["Vpcs"]]
    check(vpcs == ["10.215.0.0/16"], "DescribeVpcs shows the testbed VPC only", vpcs)
    subnets = [(s["SubnetId"], s["CidrBlock"]) for s in c.describe_subnets()["Subnets"]]
    check(subnets == [(state["subnet_id"], "10.215.1.0/24")], "DescribeSubnets shows the testbed subnet only", subnets)
    images = [i["ImageId"] for i in c.describe_images()["Images"]]
    check(image in images, "DescribeImages lists EUCA_TESTBED_IMAGE", images)
    code, st, msg = error_of(
        lambda: c.run_instances(
            ImageId=image, MinCount=1, MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "x"}]}],
        )
    )
    check(st == 400 and "Failed to bind the following fields" in msg and "TagSpecification.1.ResourceType" in msg,
          "RunInstances TagSpecification -> 400 Failed to bind", f"{code} {st} {msg!r}")
    code, st, msg = error_of(lambda: c.describe_key_pairs(IncludePublicKey=True))
    check(st == 400 and "IncludePublicKey" in msg, "DescribeKeyPairs IncludePublicKey -> 400", f"{code} {st}")
    st, body = raw({"Action": "DescribeVolumes", "Version": "2016-11-15"})
    check(st == 400 and "InvalidAction" in body, "unknown action -> 400 InvalidAction", f"{st}")
    code, st, _ = error_of(lambda: c.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId="subnet-12345678"))
    check(code == "InvalidSubnetID.NotFound", "RunInstances into a foreign subnet -> InvalidSubnetID.NotFound", code)

    tmp = tempfile.mkdtemp(prefix="testbed-selftest-")
    for name, typ in (("client", ["ed25519"]), ("host", ["ed25519"]), ("rsa", ["rsa", "-b", "2048"]), ("rsa3072", ["rsa", "-b", "3072"])):
        subprocess.run(["ssh-keygen", "-q", "-t", *typ, "-N", "", "-C", "selftest", "-f", f"{tmp}/{name}"], check=True)
    code, st, _ = error_of(lambda: c.import_key_pair(KeyName=f"st-ed-{ak}", PublicKeyMaterial=open(f"{tmp}/client.pub", "rb").read()))
    check(code == "InvalidKey.Format", "ImportKeyPair ed25519 -> InvalidKey.Format", code)
    code, st, _ = error_of(lambda: c.import_key_pair(KeyName=f"st-3072-{ak}", PublicKeyMaterial=open(f"{tmp}/rsa3072.pub", "rb").read()))
    check(code == "InvalidKey.Format", "ImportKeyPair RSA 3072 -> InvalidKey.Format", code)
    kp = f"st-rsa-{ak}"
    c.import_key_pair(KeyName=kp, PublicKeyMaterial=open(f"{tmp}/rsa.pub", "rb").read())
    check(True, "ImportKeyPair RSA 2048 accepted")

    print("EDGE instance")
    host_pub = open(f"{tmp}/host.pub").read().strip()
    host_priv = "".join("    " + l + "\n" for l in open(f"{tmp}/host").read().strip().splitlines())
    user_data = (
        "#cloud-config\nssh_authorized_keys:\n  - %s\nssh_keys:\n  ed25519_private: |\n%s  ed25519_public: %s\n"
        % (open(f"{tmp}/client.pub").read().strip(), host_priv, host_pub)
    )
    t0 = time.time()
    r = c.run_instances(ImageId=image, MinCount=1, MaxCount=1, KeyName=kp, UserData=user_data)  # boto3 base64-encodes
    inst = r["Instances"][0]
    iid = inst["InstanceId"]
    check(in_net(inst.get("PrivateIpAddress"), "10.213.0.0/16"), "RunInstances: private address in 10.213.0.0/16", inst.get("PrivateIpAddress"))
    check("SubnetId" not in inst and "VpcId" not in inst, "EDGE instance has no subnet/VPC")
    c.create_tags(Resources=[iid], Tags=[{"Key": "docker-euca:selftest", "Value": ak}])
    seen = []
    public = None
    while time.time() - t0 < 180:
        d = c.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        s = (d["State"]["Name"], d.get("PrivateIpAddress"), d.get("PublicIpAddress"))
        if not seen or seen[-1][1:] != s:
            seen.append((round(time.time() - t0, 1),) + s)
        if s[0] == "running" and s[2] and s[2] != s[1]:
            public = s[2]
            break
        time.sleep(0.2)
    check(public and in_net(public, "10.214.0.0/16"), "public address in 10.214.0.0/16 appears", seen)
    check(any(x[1] == "pending" and x[3] == "0.0.0.0" for x in seen), "while pending the public address is 0.0.0.0", seen)
    check(any(x[1] == "running" and x[3] == x[2] for x in seen), "running, first shown with public == private", seen)
    check(seen[-1][0] >= 3.0, "public address hidden for boot-delay + public-ip-delay", seen[-1][0])
    _, body = raw({"Action": "DescribeInstances", "Version": "2016-11-15", "InstanceId.1": iid})
    body = re.sub(r'xmlns="[^"]*"', "", body)
    check(not re.search(r"\b(54\.214|172\.31)\.\d+\.\d+", body) and "ec2.internal" not in body and "amazonaws" not in body,
          "no moto address or name in DescribeInstances XML")
    check(c.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"][0]["InstanceState"]["Name"] == "running",
          "DescribeInstanceStatus: running")
    if not status["fake_vms"]:
        kh = f"{tmp}/known_hosts"
        with open(kh, "w") as f:
            f.write(f"{public} {host_pub}\n")

        def ssh(ip, key):
            return subprocess.run(
                ["ssh", "-i", key, "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={kh}",
                 "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                 f"ubuntu@{ip}", "hostname"], capture_output=True, text=True, timeout=30)

        res = ssh(public, f"{tmp}/client")
        check(res.returncode == 0 and res.stdout.strip() == "euca-" + inst["PrivateIpAddress"].replace(".", "-"),
              "ssh ubuntu@public (user-data key, pinned host key)", res.stderr.strip()[-200:])
        res = ssh(public, f"{tmp}/rsa")
        check(res.returncode == 0, "ssh with the EC2 key pair's key", res.stderr.strip()[-200:])
        out = c.get_console_output(InstanceId=iid).get("Output", "")
        check("-----BEGIN SSH HOST KEY KEYS-----" in out and host_pub.split()[1] in out,
              "GetConsoleOutput has the SSH HOST KEY KEYS block with the pinned key")

    print("stop / start")
    c.stop_instances(InstanceIds=[iid])
    for _ in range(300):
        d = c.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        if d["State"]["Name"] == "stopped":
            break
        time.sleep(0.2)
    check(d["State"]["Name"] == "stopped" and "PublicIpAddress" not in d, "stopped, without public address", d["State"])
    cfg = cli.control("config", {"access_key": ak, "stale_start": 2}, state=state)
    check(cfg["access_keys"][ak].get("stale_start") == 2 and cfg["global"]["stale_start"] == 0,
          "config --stale-start 2 for this key (global 0)", cfg)
    t_start = time.time()
    c.start_instances(InstanceIds=[iid])
    d = c.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    s = c.describe_instance_status(InstanceIds=[iid], IncludeAllInstances=True)["InstanceStatuses"][0]
    stale_ok = time.time() - t_start < 2
    check(not stale_ok or (d["State"] == {"Code": 80, "Name": "stopped"} and "PublicIpAddress" not in d
                           and s["InstanceState"]["Name"] == "stopped" and s["InstanceStatus"]["Status"] == "not-applicable"),
          "stale-start: just started, DescribeInstances/DescribeInstanceStatus still show it stopped", (d["State"], s))
    public2 = None
    unstale = None
    for _ in range(900):
        d = c.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        p = d.get("PublicIpAddress")
        if unstale is None and d["State"]["Name"] != "stopped":
            unstale = time.time() - t_start
        if d["State"]["Name"] == "running" and p and p != d["PrivateIpAddress"]:
            public2 = p
            break
        time.sleep(0.2)
    check(unstale is not None and unstale >= 2, "stale-start: shown started after 2 s", unstale)
    cli.control("config", {"access_key": ak, "stale_start": 0}, state=state)
    check(public2 and public2 != public and in_net(public2, "10.214.0.0/16"), "new public address after stop/start", f"{public} -> {public2}")
    check(d["PrivateIpAddress"] == inst["PrivateIpAddress"], "same private address after stop/start")

    print("VPC instance")
    r = c.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=state["subnet_id"])
    vpc = r["Instances"][0]
    check(in_net(vpc.get("PrivateIpAddress"), "10.215.1.0/24") and not vpc.get("PublicIpAddress"),
          "VPC instance: private in 10.215.1.0/24, no public", (vpc.get("PrivateIpAddress"), vpc.get("PublicIpAddress")))

    print("faults and stats")
    u2 = cli.control("credentials", {}, state=state)
    c2 = client(u2["access_key"], u2["secret_key"])
    cli.control("fault", {"action": "DescribeInstances", "status": 503, "count": 2, "access_key": u2["access_key"]}, state=state)
    c.describe_instances(InstanceIds=[iid])
    check(True, "a fault scoped to another access key does not hit this one")
    code1, st1, _ = error_of(lambda: c2.describe_instances())
    code2, st2, _ = error_of(lambda: c2.describe_instances())
    code3, _, _ = error_of(lambda: c2.describe_instances())
    check((code1, st1, code2, st2, code3) == ("ServiceUnavailable", 503, "ServiceUnavailable", 503, None),
          "--status 503 --count 2", (code1, st1, code2, st2, code3))
    cli.control("fault", {"action": "DescribeImages", "throttle": True, "access_key": u2["access_key"]}, state=state)
    code, st, _ = error_of(lambda: c2.describe_images())
    check((code, st) == ("RequestLimitExceeded", 503), "--throttle -> RequestLimitExceeded 503", (code, st))
    cli.control("fault", {"action": "DescribeVpcs", "delay_ms": 600, "access_key": u2["access_key"]}, state=state)
    t = time.time()
    c2.describe_vpcs()
    check(time.time() - t >= 0.6, "--delay 600", round(time.time() - t, 2))
    stats = cli.control("stats", {"access_key": u2["access_key"]}, state=state)
    check(stats["actions"] == {"DescribeImages": 1, "DescribeInstances": 3, "DescribeVpcs": 1} and stats["total"] == 5,
          "stats --access-key counts that user's calls", stats)
    cli.control("stats", {"access_key": u2["access_key"], "reset": True}, state=state)
    check(cli.control("stats", {"access_key": u2["access_key"]}, state=state)["total"] == 0, "stats --reset")

    print("users of one account")
    group = f"st-sg-{ak}"
    c.create_security_group(GroupName=group, Description="selftest")
    code, st, _ = error_of(lambda: c2.create_security_group(GroupName=group, Description="selftest"))
    check((code, st) == ("InvalidGroup.Duplicate", 400), "CreateSecurityGroup of a name another user made -> InvalidGroup.Duplicate", (code, st))
    code, st, _ = error_of(lambda: c2.import_key_pair(KeyName=kp, PublicKeyMaterial=open(f"{tmp}/rsa.pub", "rb").read()))
    check((code, st) == ("InvalidKeyPair.Duplicate", 400), "ImportKeyPair of an existing name -> InvalidKeyPair.Duplicate", (code, st))
    check(iid in [i["InstanceId"] for r in c2.describe_instances()["Reservations"] for i in r["Instances"]],
          "another user of the account sees the instance")

    print("a second account")
    other = check_second_account(state, client, error_of, check, c, iid, kp, group, image, tmp, status["fake_vms"])

    print("lost answers, client tokens")
    lost = check_lost_answers(state, client, error_of, check, u2, c, image, iid)

    print("purge")
    check_purge(state, error_of, check, c, lost, iid)

    print("launch index (one RunInstances of 2)")
    check_launch_index(state, check, c, ak, image, status["fake_vms"])

    print("package mirror")
    check_mirror(state, client, check, image, status["fake_vms"])

    print("terminate")
    c.delete_security_group(GroupName=group)
    c.terminate_instances(InstanceIds=[iid, vpc["InstanceId"]])
    time.sleep(0.5)
    ds = [i for res in c.describe_instances(InstanceIds=[iid, vpc["InstanceId"]])["Reservations"] for i in res["Instances"]]
    check(all(i["State"]["Name"] in ("shutting-down", "terminated") and "PrivateIpAddress" not in i for i in ds),
          "terminated instances show no address")
    if not status["fake_vms"]:
        gone = False
        for _ in range(100):
            ids = {i["instance_id"]: i for i in cli.control("status", state=state)["instances"]}
            if all(ids.get(x, {}).get("vm_state") in (None, "destroyed") for x in (iid, vpc["InstanceId"], other, lost)):
                gone = True
                break
            time.sleep(0.2)
        check(gone, "their VMs are gone")
    c.delete_key_pair(KeyName=kp)
    subprocess.run(["rm", "-rf", tmp])

    failed = RESULTS.count(False)
    print(f"{len(RESULTS) - failed} passed, {failed} failed")
    return 1 if failed else 0


def vm_exec(state, instance_id, argv):
    """(returncode, stdout, stderr, seconds) of argv run in the instance's VM (control API exec)."""
    import base64

    t = time.time()
    out = cli.control("exec", {"instance_id": instance_id, "argv": argv}, state=state, timeout=600)
    return (out["returncode"], base64.b64decode(out["stdout"]).decode(errors="replace"),
            base64.b64decode(out["stderr"]).decode(errors="replace"), time.time() - t)


def check_launch_index(state, check, c, ak, image, fake_vms):
    """MinCount=MaxCount=2 with one multipart user data: each instance gets its amiLaunchIndex, its VM
    the NoCloud `launch-index`, so cloud-init keeps the parts without Launch-Index and its own part;
    a --swap-host-key fault of count 1 hits one instance of the two."""
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    msg = MIMEMultipart()
    msg.attach(MIMEText("#cloud-config\nwrite_files:\n- path: /etc/common\n  content: common\n", "cloud-config"))
    for i in (0, 1):
        part = MIMEText(f"#cloud-config\nwrite_files:\n- path: /etc/which-index\n  content: index-{i}\n", "cloud-config")
        part["Launch-Index"] = str(i)
        # cloud-init's default merge replaces write_files of an earlier part: append instead
        part["Merge-Type"] = "list(append)+dict(recurse_array)+str()"
        msg.attach(part)
    cli.control("fault", {"action": "RunInstances", "swap_host_key": True, "count": 1, "access_key": ak}, state=state)
    r = c.run_instances(ImageId=image, MinCount=2, MaxCount=2, UserData=msg.as_string())
    ids = [i["InstanceId"] for i in r["Instances"]]
    check(sorted(i.get("AmiLaunchIndex") for i in r["Instances"]) == [0, 1], "RunInstances MinCount=MaxCount=2: AmiLaunchIndex 0 and 1",
          [i.get("AmiLaunchIndex") for i in r["Instances"]])
    by_id = {i["instance_id"]: i for i in cli.control("status", state=state)["instances"]}
    want = {i["InstanceId"]: i["AmiLaunchIndex"] for i in r["Instances"]}
    check(all(by_id.get(x, {}).get("launch_index") == n for x, n in want.items()), "status: each instance's launch_index",
          {x: by_id.get(x, {}).get("launch_index") for x in ids})
    check(sorted(bool(by_id.get(x, {}).get("swap_host_key")) for x in ids) == [False, True],
          "--swap-host-key --count 1 hits one instance of the two", {x: by_id.get(x, {}).get("swap_host_key") for x in ids})
    if not fake_vms:
        for x, n in want.items():
            wait_vm(state, x)
            rc, out, err, _ = vm_exec(state, x, ["sh", "-c", "cat /etc/common; echo; cat /etc/which-index; echo; grep -c launch-index /var/lib/cloud/seed/nocloud/meta-data"])
            check(rc == 0 and out.split() == ["common", f"index-{n}", "1"],
                  f"VM of launch index {n}: the common part and only its own Launch-Index part ran", (rc, out, err))
    c.terminate_instances(InstanceIds=ids)


def check_mirror(state, client, check, image, fake_vms):
    """config --mirror, per key: a launch behind a hanging mirror waits it out in cloud-init's packages
    module (update, install) and still boots; started again behind a mirror without packages, apt fails
    at once. The mode is read-only in the VM."""
    u = cli.control("credentials", {}, state=state)
    ak = u["access_key"]
    cu = client(ak, u["secret_key"])
    for bad, what in (({"mirror": "slow"}, "mirror"), ({"mirror_hang": -1}, "mirror_hang"), ({"mirror_hang": "x"}, "mirror_hang")):
        try:
            cli.control("config", dict(bad, access_key=ak), state=state)
            check(False, f"config {bad} -> 400")
        except cli.Fail as e:
            check(what in str(e), f"config {bad} -> 400", e)
    cfg = cli.control("config", {"access_key": ak, "mirror": "hang", "mirror_hang": 2, "boot_delay": 0.5}, state=state)
    check(cfg["access_keys"][ak].get("mirror") == "hang" and cfg["access_keys"][ak].get("mirror_hang") == 2
          and cfg["global"].get("mirror") == "ok", "config --mirror hang --mirror-hang 2 for this key (global ok)", cfg)
    hang = 2
    j = cu.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                         UserData="#cloud-config\npackages:\n  - docker.io\n")["Instances"][0]["InstanceId"]
    vm = wait_vm(state, j, timeout=300)
    check(vm.get("vm_state") == "running" and vm.get("mirror") == "hang",
          "behind a hanging mirror, a launch with packages: still boots (status: mirror hang)", vm)
    if not fake_vms and vm.get("vm_state") == "running":
        check((vm.get("boot_seconds") or 0) >= 2 * hang, f"... after waiting out update and install ({2 * hang} s at least)",
              vm.get("boot_seconds"))
        rc, out, err, _ = vm_exec(state, j, ["cat", "/etc/euca-testbed/mirror"])
        check(out.strip() == f"hang {hang}", "/etc/euca-testbed/mirror says `hang 2` in the VM", (rc, out, err))
        rc, out, err, _ = vm_exec(state, j, ["sh", "-c", "echo ok > /etc/euca-testbed/mirror"])
        check(rc != 0 and "Read-only" in err, "... and is read-only there", (rc, err))
        rc, out, err, _ = vm_exec(state, j, ["cloud-init", "status"])
        check("status: error" in out, "cloud-init: the packages module failed (status: error)", out)
        rc, out, err, _ = vm_exec(state, j, ["cat", "/var/log/euca-testbed-mirror.log"])
        ends = [l for l in out.splitlines() if " end " in l]
        check(len(ends) == 2 and "update -> exit 0" in ends[0] and "install -> exit 100" in ends[1],
              "mirror log: cloud-init's update (exit 0) and install (exit 100)", out)
        rc, out, err, secs = vm_exec(state, j, ["apt-get", "update"])
        check(rc == 0 and secs >= hang and "connection timed out" in out and "W: Some index files failed" in err,
              "apt-get update blocks, then warns and exits 0 as apt does", (rc, round(secs, 2), out, err))
        rc, out, err, secs = vm_exec(state, j, ["apt-get", "install", "-y", "docker.io"])
        check(rc == 100 and secs >= hang and "E: Unable to fetch some archives" in err,
              "apt-get install docker.io blocks, then fails (100)", (rc, round(secs, 2), err))
        rc, out, err, secs = vm_exec(state, j, ["timeout", "1", "apt-get", "update"])
        check(rc == 124 and secs < hang, "a hanging apt-get ends on SIGTERM", (rc, round(secs, 2)))
    cu.stop_instances(InstanceIds=[j])
    wait_vm(state, j, "stopped", timeout=60)
    for _ in range(100):
        if cu.describe_instances(InstanceIds=[j])["Reservations"][0]["Instances"][0]["State"]["Name"] == "stopped":
            break
        time.sleep(0.2)
    cli.control("config", {"access_key": ak, "mirror": "missing"}, state=state)
    cu.start_instances(InstanceIds=[j])
    time.sleep(1)
    vm = wait_vm(state, j, timeout=120)
    check(vm.get("vm_state") == "running" and vm.get("mirror") == "missing",
          "config --mirror missing, then StartInstances: the VM boots behind the empty mirror", vm)
    if not fake_vms and vm.get("vm_state") == "running":
        rc, out, err, _ = vm_exec(state, j, ["cat", "/etc/euca-testbed/mirror"])
        check(out.strip() == "missing", "/etc/euca-testbed/mirror says `missing`", (rc, out))
        rc, out, err, secs = vm_exec(state, j, ["apt-get", "update"])
        check(rc == 0 and secs < 5, "apt-get update succeeds at once", (rc, round(secs, 2), err))
        rc, out, err, secs = vm_exec(state, j, ["apt-get", "install", "-y", "docker.io"])
        check(rc == 100 and secs < 5 and "E: Unable to locate package docker.io" in err,
              "apt-get install docker.io fails at once: Unable to locate package (100)", (rc, round(secs, 2), err))
    cli.control("config", {"access_key": ak, "mirror": "ok"}, state=state)
    cu.terminate_instances(InstanceIds=[j])


def signed_get(url, ak, sk, params, when):
    """A GET query request signed by hand at `when` (a client whose clock says `when`):
    (HTTP status, Date header, body)."""
    import datetime
    import hashlib
    import hmac
    import urllib.error
    import urllib.parse
    import urllib.request

    from . import sigv4

    u = urllib.parse.urlsplit(url)
    query = urllib.parse.urlencode(sorted(params.items()), quote_via=urllib.parse.quote)
    amz = when.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz[:8]}/eucalyptus/ec2/aws4_request"
    creq = "\n".join(["GET", sigv4.canonical_uri(u.path), sigv4.canonical_query(query),
                      f"host:{u.netloc}\nx-amz-date:{amz}\n", "host;x-amz-date", hashlib.sha256(b"").hexdigest()])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(creq.encode()).hexdigest()])
    sig = hmac.new(sigv4.signing_key(sk, amz[:8], "eucalyptus", "ec2"), sts.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"{url}?{query}", headers={
        "X-Amz-Date": amz,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders=host;x-amz-date, Signature={sig}",
    })
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers.get("Date"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Date"), e.read().decode()


def check_clock_skew(state, client, check, c, url):
    """config --clock-skew S for one user: its answers carry Date = now+S, and the SigV4 15-minute
    check compares against now+S (RequestExpired past it); other users see the real clock."""
    import datetime
    import email.utils

    import botocore.exceptions

    u = cli.control("credentials", {}, state=state)
    ak, sk = u["access_key"], u["secret_key"]
    cu = client(ak, sk)

    def skew_of(date):
        """Seconds the Date header is ahead of this clock."""
        if not date:
            return None
        return (email.utils.parsedate_to_datetime(date) - datetime.datetime.now(datetime.timezone.utc)).total_seconds()

    def call(cl):
        """(error code or None, HTTP status, seconds the answer's Date is ahead)."""
        try:
            r = cl.describe_regions()
            code = None
        except botocore.exceptions.ClientError as e:
            r, code = e.response, e.response["Error"]["Code"]
        meta = r["ResponseMetadata"]
        return code, meta["HTTPStatusCode"], skew_of(meta["HTTPHeaders"].get("date"))

    def near(x, want):
        return x is not None and abs(x - want) <= 5

    code, st, d = call(cu)
    check(code is None and near(d, 0), "every answer has a Date header, the real time by default", (code, st, d))
    cfg = cli.control("config", {"access_key": ak, "clock_skew": 600}, state=state)
    check(cfg["access_keys"][ak].get("clock_skew") == 600 and cfg["global"].get("clock_skew") == 0,
          "config --clock-skew 600 for this key (global 0)", cfg)
    code, st, d = call(cu)
    check(code is None and near(d, 600), "skew 600: the call succeeds (within 15 min), Date is 600 s ahead", (code, st, d))
    code, st, d = call(c)
    check(code is None and near(d, 0), "... another user's answers keep the real Date", (code, st, d))
    cli.control("config", {"access_key": ak, "clock_skew": 1200}, state=state)
    code, st, d = call(cu)
    check((code, st) == ("RequestExpired", 400) and near(d, 1200),
          "skew 1200: signed calls fail 400 RequestExpired, the error's Date is 1200 s ahead", (code, st, d))
    ahead = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1200)
    st, date, body = signed_get(url, ak, sk, {"Action": "DescribeRegions", "Version": "2016-11-15"}, ahead)
    check(st == 200 and "<regionName>eucalyptus</regionName>" in body and near(skew_of(date), 1200),
          "... a request signed with the endpoint's (skewed) time is accepted", (st, date, body[:120]))
    cli.control("config", {"access_key": ak, "clock_skew": -1200}, state=state)
    code, st, d = call(cu)
    check((code, st) == ("RequestExpired", 400) and near(d, -1200),
          "skew -1200 (endpoint behind): RequestExpired too, Date 1200 s behind", (code, st, d))
    try:
        cli.control("config", {"access_key": ak, "clock_skew": "soon"}, state=state)
        check(False, "config clock_skew that is no number -> 400")
    except cli.Fail as e:
        check("clock_skew" in str(e), "config clock_skew that is no number -> 400", e)
    cli.control("config", {"access_key": ak, "clock_skew": 0}, state=state)
    code, st, d = call(cu)
    check(code is None and near(d, 0), "skew 0 again: real Date, calls succeed", (code, st, d))


def check_tls(state, check, error_of, ak, sk):
    """The HTTPS port serves the same personality, under a certificate of the testbed's CA only."""
    import boto3
    import botocore.exceptions
    from botocore.config import Config

    url_tls = cli.ec2_url_tls(state)
    if not check(url_tls, "the testbed has an HTTPS port (EC2_URL_TLS)", "started before TLS: down, up"):
        return
    ca, other = state["tls"]["ca"], state["tls"]["other_ca"]

    def client(verify, s=sk):
        return boto3.client(
            "ec2", endpoint_url=url_tls, region_name="eucalyptus", aws_access_key_id=ak, aws_secret_access_key=s,
            verify=verify, config=Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=30),
        )

    before = cli.control("stats", {"access_key": ak}, state=state)["actions"].get("DescribeAvailabilityZones", 0)
    try:
        zones = client(ca).describe_availability_zones()["AvailabilityZones"]
    except Exception as e:
        zones = None
        check(False, "verify=EUCA_TESTBED_CA: DescribeAvailabilityZones on EC2_URL_TLS", f"{type(e).__name__}: {e}")
    if zones is not None:
        check(zones and zones[0]["ZoneName"] == state["zone"] and zones[0]["RegionName"] == "eucalyptus",
              "verify=EUCA_TESTBED_CA: DescribeAvailabilityZones on EC2_URL_TLS", zones)
        after = cli.control("stats", {"access_key": ak}, state=state)["actions"].get("DescribeAvailabilityZones", 0)
        check(after == before + 1, "the HTTPS call is counted in the same stats", f"{before} -> {after}")
        code, st, _ = error_of(lambda: client(ca, s="x" * 40).describe_instances())
        check(code == "AuthFailure" and st in (401, 403), "HTTPS, bad secret -> AuthFailure (same SigV4 check)", f"{code} {st}")
        regions = client(ca).describe_regions()["Regions"]
        check([r.get("Endpoint") for r in regions] == [url_tls.rstrip("/")],
              "DescribeRegions over HTTPS names the HTTPS endpoint", regions)
    for verify, what in ((True, "verify=True (system roots)"), (other, "verify=EUCA_TESTBED_OTHER_CA")):
        try:
            client(verify).describe_availability_zones()
            check(False, f"{what}: certificate refused", "the call succeeded")
        except botocore.exceptions.SSLError as e:
            check("CERTIFICATE_VERIFY_FAILED" in str(e), f"{what}: certificate refused", str(e))
        except Exception as e:
            check(False, f"{what}: certificate refused", f"{type(e).__name__}: {e}")


def wait_vm(state, instance_id, want="running", timeout=120):
    """The instance's VM state once it is `want` (or whatever it is at the timeout)."""
    deadline = time.time() + timeout
    while True:
        got = {i["instance_id"]: i for i in cli.control("status", state=state)["instances"]}.get(instance_id, {})
        if got.get("vm_state") == want or time.time() > deadline:
            return got
        time.sleep(0.3)


def instance_ids_of(c, **kw):
    return [i["InstanceId"] for r in c.describe_instances(**kw)["Reservations"] for i in r["Instances"]]


def check_second_account(state, client, error_of, check, c, iid, kp, group, image, tmp, fake_vms):
    """A user of a new account sees nothing of the first; a second user of that account sees its
    things; a launch there gets that account's key pair. Returns the instance it launched (terminated)."""
    u3 = cli.control("credentials", {"account": "new"}, state=state)
    acct = u3["account"]
    check(re.fullmatch(r"\d{12}", acct) and acct != "123456789012", "credentials --account new: a fresh 12-digit account", acct)
    c3 = client(u3["access_key"], u3["secret_key"])
    check(iid not in instance_ids_of(c3), "the new account sees none of the first account's instances")
    code, st, _ = error_of(lambda: c3.describe_instances(InstanceIds=[iid]))
    check((code, st) == ("InvalidInstanceID.NotFound", 400), "naming the first account's instance -> InvalidInstanceID.NotFound", (code, st))
    check(group not in [g["GroupName"] for g in c3.describe_security_groups()["SecurityGroups"]], "... nor its security groups")
    check(kp not in [k["KeyName"] for k in c3.describe_key_pairs()["KeyPairs"]], "... nor its key pairs")
    check(iid not in [t["ResourceId"] for t in c3.describe_tags()["Tags"]], "... nor its tags")
    check(c3.describe_vpcs()["Vpcs"] == [] and c3.describe_subnets()["Subnets"] == [], "the new account has no (shown) VPC or subnet")
    code, _, _ = error_of(lambda: c3.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=state["subnet_id"]))
    check(code == "InvalidSubnetID.NotFound", "... and cannot launch into the first account's subnet", code)
    check(image in [i["ImageId"] for i in c3.describe_images(ImageIds=[image])["Images"]], "EUCA_TESTBED_IMAGE is there too")
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "selftest", "-f", f"{tmp}/rsa3"], check=True)
    c3.import_key_pair(KeyName=kp, PublicKeyMaterial=open(f"{tmp}/rsa3.pub", "rb").read())
    c3.create_security_group(GroupName=group, Description="selftest, second account")
    check(True, "the same key pair and group names are free in the new account")
    j = c3.run_instances(ImageId=image, MinCount=1, MaxCount=1, KeyName=kp)["Instances"][0]["InstanceId"]
    code, _, _ = error_of(lambda: c.describe_instances(InstanceIds=[j]))
    check(code == "InvalidInstanceID.NotFound" and j not in instance_ids_of(c), "the first account does not see the new account's instance", code)
    u4 = cli.control("credentials", {"account": acct}, state=state)
    c4 = client(u4["access_key"], u4["secret_key"])
    check(u4["account"] == acct and j in instance_ids_of(c4), "credentials --account ID: a second user of that account sees it")
    code, _, _ = error_of(lambda: c4.create_security_group(GroupName=group, Description="selftest"))
    check(code == "InvalidGroup.Duplicate", "... and shares its names", code)
    try:
        cli.control("credentials", {"account": "999999999998"}, state=state)
        check(False, "credentials --account of an unknown account fails")
    except cli.Fail as e:
        check("no account" in str(e), "credentials --account of an unknown account fails", e)
    vm = wait_vm(state, j)
    check(vm.get("account") == acct and vm.get("vm_state") == "running", "status: the instance has its account, its VM boots", vm)
    if not fake_vms:
        ip = None
        for _ in range(100):
            d = c3.describe_instances(InstanceIds=[j])["Reservations"][0]["Instances"][0]
            if d["State"]["Name"] == "running":
                ip = d["PrivateIpAddress"]
                break
            time.sleep(0.2)
        res = subprocess.run(
            ["ssh", "-i", f"{tmp}/rsa3", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", f"ubuntu@{ip}", "true"],
            capture_output=True, text=True, timeout=60)
        check(res.returncode == 0, "its VM has the launching account's key pair (not the first account's of that name)", res.stderr[-200:])
    c3.terminate_instances(InstanceIds=[j])
    c3.delete_key_pair(KeyName=kp)
    c3.delete_security_group(GroupName=group)
    return j


def check_lost_answers(state, client, error_of, check, u2, c, image, iid):
    """--lose-answer: the call takes effect, its answer does not arrive; re-sending RunInstances with
    its client token recovers the launch. Returns the instance it launched."""
    import botocore.exceptions

    c2 = client(u2["access_key"], u2["secret_key"])
    cli.control("stats", {"access_key": u2["access_key"], "reset": True}, state=state)
    group = f"st-lost-{u2['access_key']}"
    cli.control("fault", {"action": "CreateSecurityGroup", "lose_answer": True, "access_key": u2["access_key"]}, state=state)
    code, st, _ = error_of(lambda: c2.create_security_group(GroupName=group, Description="selftest"))
    made = [g["GroupName"] for g in c2.describe_security_groups(GroupNames=[group])["SecurityGroups"]]
    check((code, st) == ("ServiceUnavailable", 503) and made == [group],
          "--lose-answer: CreateSecurityGroup answers 503 ServiceUnavailable, the group exists", (code, st, made))
    c2.delete_security_group(GroupName=group)

    token = f"selftest-{u2['access_key']}-{time.time():.0f}"
    cli.control("fault", {"action": "RunInstances", "lose_answer": True, "reset": True, "access_key": u2["access_key"]}, state=state)
    try:
        c2.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken=token)
        outcome = "answered"
    except botocore.exceptions.ClientError as e:
        outcome = e.response["Error"]["Code"]
    except botocore.exceptions.BotoCoreError as e:
        outcome = type(e).__name__
    check(outcome in ("ConnectionClosedError", "EndpointConnectionError"), "--lose-answer --reset: RunInstances gets no answer", outcome)
    mine = [i for i in cli.control("status", state=state)["instances"] if i.get("client_token") == token]
    check(len(mine) == 1, "... but it launched one instance", mine)
    first = c2.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken=token)
    again = c2.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken=token)
    lost = first["Instances"][0]["InstanceId"] if first["Instances"] else None
    check(mine and lost == mine[0]["instance_id"] and first["ReservationId"] == again["ReservationId"]
          and [i["InstanceId"] for i in again["Instances"]] == [lost],
          "re-sent with its ClientToken: the same reservation and instance", (mine, first.get("ReservationId"), lost))
    check(first["Instances"] and first["Instances"][0].get("ClientToken") == token
          and in_net(first["Instances"][0].get("PrivateIpAddress"), "10.213.0.0/16"),
          "... rewritten like any instance answer, with its clientToken", first["Instances"][:1])
    n = len([i for i in cli.control("status", state=state)["instances"] if i.get("client_token") == token])
    check(n == 1, "... and nothing new launched", n)
    vm = wait_vm(state, lost)
    check(vm.get("vm_state") == "running", "the instance whose answer was lost boots its VM", vm)
    d = c.describe_instances(InstanceIds=[lost])["Reservations"][0]["Instances"][0]
    check(d.get("ClientToken") == token, "DescribeInstances carries the clientToken (to another user of the account too)", d.get("ClientToken"))
    d = c.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    check(d.get("ClientToken") and d["ClientToken"] != "ABCDE", "every instance item carries its clientToken", d.get("ClientToken"))
    try:
        c2.describe_instances(Filters=[{"Name": "client-token", "Values": [token]}])
        failed = None
    except Exception as e:  # moto answers HTTP 500 with an HTML page: botocore fails to parse it
        failed = type(e).__name__
    check(failed, "the client-token filter stays unimplemented (moto fails the call)", failed)
    stats = cli.control("stats", {"access_key": u2["access_key"]}, state=state)
    check(stats["actions"].get("RunInstances") == 3 and stats["errors"].get("RunInstances") == 1
          and stats["errors"].get("CreateSecurityGroup") == 1, "lost answers are counted (as errors)", stats)
    return lost


def check_purge(state, error_of, check, c, gone, iid):
    """`purge`: the instance vanishes from every answer; naming it -> InvalidInstanceID.NotFound."""
    c.create_tags(Resources=[gone], Tags=[{"Key": "docker-euca:selftest", "Value": "purge"}])
    out = cli.control("purge", {"instance_id": gone}, state=state)
    check(out.get("purged") and out.get("account") == "123456789012", "purge", out)
    not_found = f"The instance ID '{gone}' does not exist"
    code, st, msg = error_of(lambda: c.describe_instances(InstanceIds=[gone]))
    check((code, st, msg) == ("InvalidInstanceID.NotFound", 400, not_found), "DescribeInstances naming it -> 400 InvalidInstanceID.NotFound", (code, st, msg))
    code, st, msg = error_of(lambda: c.describe_instances(InstanceIds=[iid, gone]))
    check((code, msg) == ("InvalidInstanceID.NotFound", not_found), "... with a live one too: fails as a whole, naming it", (code, msg))
    code, st, msg = error_of(lambda: c.describe_instances(InstanceIds=[gone, "i-0123456789abcdef0"]))
    check(code == "InvalidInstanceID.NotFound" and f"'{gone}, i-0123456789abcdef0'" in msg, "... several unknown: named comma-separated", msg)
    code, st, msg = error_of(lambda: c.describe_instance_status(InstanceIds=[gone], IncludeAllInstances=True))
    check((code, st) == ("InvalidInstanceID.NotFound", 400), "DescribeInstanceStatus naming it -> InvalidInstanceID.NotFound", (code, st))
    check(gone not in instance_ids_of(c) and iid in instance_ids_of(c), "unfiltered DescribeInstances leaves it out")
    check(gone not in [s["InstanceId"] for s in c.describe_instance_status(IncludeAllInstances=True)["InstanceStatuses"]],
          "DescribeInstanceStatus leaves it out")
    check(instance_ids_of(c, Filters=[{"Name": "instance-id", "Values": [iid, gone]}]) == [iid],
          "Filter instance-id works; the purged id is just absent")
    check(instance_ids_of(c, Filters=[{"Name": "instance-state-name", "Values": ["terminated", "shutting-down"]}]).count(gone) == 0,
          "a state filter does not find it either")
    calls = {
        "TerminateInstances": lambda: c.terminate_instances(InstanceIds=[gone]),
        "StopInstances": lambda: c.stop_instances(InstanceIds=[gone]),
        "StartInstances": lambda: c.start_instances(InstanceIds=[gone]),
        "RebootInstances": lambda: c.reboot_instances(InstanceIds=[gone]),
        "GetConsoleOutput": lambda: c.get_console_output(InstanceId=gone),
        "CreateTags": lambda: c.create_tags(Resources=[gone], Tags=[{"Key": "k", "Value": "v"}]),
    }
    got = {name: error_of(fn)[:2] for name, fn in calls.items()}
    check(all(v == ("InvalidInstanceID.NotFound", 400) for v in got.values()), "Terminate/Stop/Start/Reboot/GetConsoleOutput/CreateTags -> 400 InvalidInstanceID.NotFound", got)
    check(gone not in [t["ResourceId"] for t in c.describe_tags()["Tags"]], "DescribeTags leaves it out")
    purged = {i["instance_id"]: i for i in cli.control("status", state=state)["instances"]}.get(gone, {})
    check(purged.get("purged") and purged.get("phase") == "terminated", "status: purged, terminated", purged)
