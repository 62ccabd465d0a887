"""The Eucalyptus 4.4 personality: an HTTP proxy in front of moto_server.

Per EC2 request: SigV4 check against the testbed's users (region `eucalyptus`, service `ec2`),
stats, injected faults, Eucalyptus's strict parameter binding, then moto (with the credential
scope's region rewritten to moto's), then the response made Eucalyptus-like: EDGE addresses instead
of moto's, public address hidden for a while, VMs driven by the instance lifecycle, the console
taken from the VM. `/_testbed/...` is the JSON control API the CLI uses (token in X-Testbed-Token).

A configurable clock skew (`config --clock-skew S`, global or per access key) makes the personality
behave as if its clock were S seconds ahead for the key's requests: the `Date` header of every EC2
answer and the SigV4 15-minute check use now + S (the control API keeps the real time).

Each user belongs to a moto account (`x-moto-account-id` on everything sent to moto): the first
account is moto's default, `credentials new --account new` makes others. The personality also keeps
what EC2 has and moto lacks: ClientToken idempotency of RunInstances, purged instances (unknown to
every call from then on), and the lose-answer fault (served, then 503 or a reset).
"""

import base64
import contextlib
import datetime
import hmac
import http.client
import json
import logging
import math
import os
import re
import secrets
import socket
import ssl
import string
import struct
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from . import binding, daemon, ec2xml, sigv4, tls
from .instances import MIRROR_MODES, Config, Fleet
from .machines import Machines

log = logging.getLogger("testbed.personality")

MOTO_REGION = "us-east-1"
EUCALYPTUS, AWS = "eucalyptus", "aws"
PERSONALITIES = (EUCALYPTUS, AWS)
# the SigV4 region each personality's endpoint takes (`up` / `credentials new` print it as EUCA_REGION)
REGIONS = {EUCALYPTUS: "eucalyptus", AWS: MOTO_REGION}
AWS_ROOT_GIB = "8"  # an AWS image's root snapshot size, for a root mapping that names none (moto wants one)
REQUEST_LOG_MAX = 5000  # requests remembered per access key (`testbed requests`)
IMDS_ROLE = "docker-euca-testbed-role"  # the instance profile's role the metadata service names
IMDS_TOKEN_TTL_MAX = 21600  # seconds, as EC2's IMDSv2 allows
SERVICE_PATHS = ("/", "/services/compute", "/services/compute/")
TOKEN_HEADER = "X-Testbed-Token"
DEFAULT_ACCOUNT = "123456789012"  # moto's default account: the first user's (`up` prints its keys)
ACCOUNT_HEADER = "x-moto-account-id"  # moto serves the request in this account
API_VERSION = "2016-11-15"
MAX_MIRROR_HANG = 3600  # config --mirror-hang: seconds each apt run blocks with mirror "hang"
MAX_CLOCK_SKEW = 10 * 365 * 86400  # config --clock-skew: seconds either way (keeps dates printable)
# moto checks no signature, but finds region and service in the credential scope
MOTO_AUTH = (
    f"AWS4-HMAC-SHA256 Credential=testbed/20240101/{MOTO_REGION}/ec2/aws4_request, "
    "SignedHeaders=host, Signature=" + "0" * 64
)
RESET = object()  # an EC2 "answer" that is none: the connection is reset instead (fault --lose-answer --reset)
USER_DATA_LIMIT = 16384  # bytes of the raw (base64-decoded) user data of one launch, as EC2 documents
# Eucalyptus 4.4's instance types (its VmTypes); moto takes any type, Eucalyptus refuses the others
INSTANCE_TYPES = frozenset(
    """
    t1.micro t2.nano t2.micro t2.small t2.medium t2.large
    m1.small m1.medium m1.large m1.xlarge
    c1.medium c1.xlarge
    m2.xlarge m2.2xlarge m2.4xlarge
    m3.medium m3.large m3.xlarge m3.2xlarge
    m4.large m4.xlarge m4.2xlarge m4.4xlarge m4.10xlarge
    c3.large c3.xlarge c3.2xlarge c3.4xlarge c3.8xlarge
    c4.large c4.xlarge c4.2xlarge c4.4xlarge c4.8xlarge
    r3.large r3.xlarge r3.2xlarge r3.4xlarge r3.8xlarge
    i2.xlarge i2.2xlarge i2.4xlarge i2.8xlarge
    d2.xlarge d2.2xlarge d2.4xlarge d2.8xlarge
    cc1.4xlarge cc2.8xlarge cg1.4xlarge cr1.8xlarge hi1.4xlarge hs1.8xlarge
    """.split()
)


def new_access_key():
    alphabet = string.ascii_uppercase + string.digits
    return "AKI" + "".join(secrets.choice(alphabet) for _ in range(17))


def new_secret_key():
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(40))


class Users:
    """Access key -> (secret, account id, personality). Users of one account share its resources (one
    moto account); each user's requests meet the personality it was made with (PERSONALITIES)."""

    def __init__(self):
        self._mu = threading.Lock()
        self._users = {}

    def add(self, access_key=None, secret_key=None, account=DEFAULT_ACCOUNT, personality=EUCALYPTUS):
        access_key = access_key or new_access_key()
        secret_key = secret_key or new_secret_key()
        with self._mu:
            self._users[access_key] = (secret_key, account, personality)
        return access_key, secret_key

    def personality(self, access_key):
        with self._mu:
            u = self._users.get(access_key)
            return u[2] if u else EUCALYPTUS

    def secret(self, access_key):
        with self._mu:
            u = self._users.get(access_key)
            return u[0] if u else None

    def account(self, access_key):
        with self._mu:
            u = self._users.get(access_key)
            return u[1] if u else DEFAULT_ACCOUNT

    def accounts(self):
        with self._mu:
            return sorted({u[1] for u in self._users.values()} | {DEFAULT_ACCOUNT})

    def new_account(self):
        """A fresh 12-digit account id, none of the known ones."""
        known = set(self.accounts())
        while True:
            account = str(secrets.randbelow(9 * 10**11) + 10**11)
            if account not in known:
                return account

    def count(self):
        with self._mu:
            return len(self._users)


class Stats:
    """Calls received per (access key, action); errors counted apart."""

    def __init__(self):
        self._mu = threading.Lock()
        self._calls = defaultdict(lambda: defaultdict(int))
        self._errors = defaultdict(lambda: defaultdict(int))

    def count(self, access_key, action, status):
        with self._mu:
            self._calls[access_key][action] += 1
            if status >= 400:
                self._errors[access_key][action] += 1

    def get(self, access_key=None):
        with self._mu:
            keys = [access_key] if access_key else list(self._calls)
            calls, errors = defaultdict(int), defaultdict(int)
            for k in keys:
                for a, n in self._calls.get(k, {}).items():
                    calls[a] += n
                for a, n in self._errors.get(k, {}).items():
                    errors[a] += n
            return {"total": sum(calls.values()), "actions": dict(sorted(calls.items())), "errors": dict(sorted(errors.items()))}

    def reset(self, access_key=None):
        with self._mu:
            if access_key:
                self._calls.pop(access_key, None)
                self._errors.pop(access_key, None)
            else:
                self._calls.clear()
                self._errors.clear()


class Requests:
    """What each access key sent, in order: the action and its parameter names (never a value: user
    data carries host keys). Shows what reached the endpoint in each dialect (`testbed requests`)."""

    def __init__(self):
        self._mu = threading.Lock()
        self._log = defaultdict(list)

    def add(self, access_key, action, params):
        """Logs a call as it arrives; `done` marks it once it is served (a test waits on that for a
        call still being applied after its client went away: `fault --slow`)."""
        names = sorted(k for k in params if k not in ("Action", "Version"))
        entry = {"action": action, "params": names, "done": False}
        with self._mu:
            entries = self._log[access_key]
            entries.append(entry)
            del entries[:-REQUEST_LOG_MAX]
        return entry

    def done(self, entry, status):
        with self._mu:
            entry.update(done=True, status=status)

    def get(self, access_key):
        with self._mu:
            return [dict(e) for e in self._log.get(access_key, [])]

    def reset(self, access_key):
        with self._mu:
            self._log.pop(access_key, None)


class Imds:
    """An instance metadata service with IMDSv2's session tokens, serving one role's keys: those of
    the user `testbed imds --access-key AK` names (plus a session token, as role keys carry). It
    answers on the personality's port under /latest/, so that `AWS_EC2_METADATA_SERVICE_ENDPOINT`
    can point a client at it: the real metadata address is never dialled."""

    def __init__(self, users):
        self.users = users
        self._mu = threading.Lock()
        self._tokens = {}
        self.role_key = None
        self.session_token = None
        self.requests = 0

    def assume(self, access_key):
        with self._mu:
            self.role_key = access_key
            self.session_token = secrets.token_urlsafe(48)
            self.requests = 0

    def handle(self, headers, method, path):
        """(status, content type, body, extra headers) of one metadata request."""
        with self._mu:
            self.requests += 1
        if method == "PUT" and path == "/latest/api/token":
            ttl = headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= IMDS_TOKEN_TTL_MAX:
                return 400, "text/plain", b"Bad Request", {}
            token = secrets.token_urlsafe(32)
            with self._mu:
                self._tokens[token] = time.time() + int(ttl)
            return 200, "text/plain", token.encode(), {"X-aws-ec2-metadata-token-ttl-seconds": ttl}
        with self._mu:
            expires = self._tokens.get(headers.get("X-aws-ec2-metadata-token", ""))
        if method != "GET" or expires is None or time.time() > expires:
            return 401, "text/plain", b"Unauthorized", {}  # IMDSv2 only: no token, no answer
        base = "/latest/meta-data/iam/security-credentials/"
        if self.role_key is None or not path.startswith(base):
            return 404, "text/plain", b"Not Found", {}
        if path == base:
            return 200, "text/plain", IMDS_ROLE.encode(), {}
        if path != base + IMDS_ROLE:
            return 404, "text/plain", b"Not Found", {}
        now = datetime.datetime.now(datetime.timezone.utc)
        body = {
            "Code": "Success",
            "LastUpdated": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Type": "AWS-HMAC",
            "AccessKeyId": self.role_key,
            "SecretAccessKey": self.users.secret(self.role_key),
            "Token": self.session_token,
            "Expiration": (now + datetime.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return 200, "text/plain", json.dumps(body).encode(), {}


class Faults:
    """Per-action faults, consumed one per matching request (swap-host-key: one per VM)."""

    def __init__(self):
        self._mu = threading.Lock()
        self._rules = []
        self._next_id = 1

    def add(self, rule):
        with self._mu:
            rule = dict(rule, id=self._next_id)
            rule["count"] = int(rule.get("count") or 1)
            self._next_id += 1
            self._rules.append(rule)
            return rule

    def clear(self, action=None, access_key=None):
        with self._mu:
            self._rules = [
                r for r in self._rules
                if not ((action is None or r["action"] == action) and (access_key is None or r.get("access_key") == access_key))
            ]

    def list(self):
        with self._mu:
            return [dict(r) for r in self._rules]

    def take(self, action, access_key, kind):
        """Consume one matching rule of this kind: "request" (the call's own faults), "swap"
        (swap_host_key, one per VM) or "capacity" (spot launches only)."""
        with self._mu:
            for r in self._rules:
                if r["action"] != action or r["count"] <= 0:
                    continue
                if r.get("access_key") and r["access_key"] != access_key:
                    continue
                rule_kind = "swap" if r.get("swap_host_key") else "capacity" if r.get("capacity") else "request"
                if kind != rule_kind:
                    continue
                r["count"] -= 1
                rule = dict(r)
                if r["count"] <= 0:
                    self._rules.remove(r)
                return rule
        return None


class Moto:
    """Direct access to moto for the personality's own needs (never counted, never faulted).

    Every call names the moto account it acts in (`x-moto-account-id`); `accounts` gives the ones
    the testbed's users belong to, for what concerns them all (the reconcile loop).
    """

    def __init__(self, port, accounts=None):
        self.port = port
        self.accounts = accounts or (lambda: [DEFAULT_ACCOUNT])
        self._clients = {}
        self._default_vpcs = {}
        self._mu = threading.Lock()

    def client(self, account=DEFAULT_ACCOUNT):
        with self._mu:
            if account not in self._clients:
                import boto3  # heavy; only the personality process needs it
                from botocore.config import Config as BotoConfig

                c = boto3.client(
                    "ec2",
                    endpoint_url=f"http://127.0.0.1:{self.port}",
                    region_name=MOTO_REGION,
                    aws_access_key_id="testbed",
                    aws_secret_access_key="testbed",
                    config=BotoConfig(retries={"max_attempts": 2}),
                )

                def in_account(request, **kwargs):
                    request.headers[ACCOUNT_HEADER] = account

                c.meta.events.register("before-sign.ec2.*", in_account)
                self._clients[account] = c
            return self._clients[account]

    def query(self, account, params):
        """One EC2 query-API call to moto in `account`: (HTTP status, XML body)."""
        from urllib.parse import urlencode

        headers = {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "Authorization": MOTO_AUTH,
            ACCOUNT_HEADER: account,
        }
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request("POST", "/", body=urlencode(dict(params, Version=API_VERSION)), headers=headers)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def public_key(self, key_name, account=DEFAULT_ACCOUNT):
        kp = self.client(account).describe_key_pairs(KeyNames=[key_name], IncludePublicKey=True)["KeyPairs"]
        return kp[0].get("PublicKey") if kp else None

    def _instances(self, account):
        for page in self.client(account).get_paginator("describe_instances").paginate():
            for res in page["Reservations"]:
                yield from res["Instances"]

    def instance_states(self, accounts=None):
        """{instance id: moto's state name}, over the given accounts (default: every account)."""
        out = {}
        for account in self.accounts() if accounts is None else accounts:
            for i in self._instances(account):
                out[i["InstanceId"]] = i["State"]["Name"]
        return out

    def instance_ids(self, account):
        return {i["InstanceId"] for i in self._instances(account)}

    def find_instance(self, instance_id):
        """The account an instance is in, None when no account has it."""
        for account in self.accounts():
            if instance_id in self.instance_ids(account):
                return account
        return None

    def terminate(self, instance_id, account):
        self.client(account).terminate_instances(InstanceIds=[instance_id])

    def default_vpc_id(self, account):
        """moto's default VPC of the account (made with the account), which the testbed hides."""
        with self._mu:
            if account in self._default_vpcs:
                return self._default_vpcs[account]
        vpcs = self.client(account).describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        vpc_id = vpcs[0]["VpcId"] if vpcs else None
        with self._mu:
            self._default_vpcs[account] = vpc_id
        return vpc_id

    def known_default_vpc(self, account, vpc_id):
        with self._mu:
            self._default_vpcs[account] = vpc_id


class ClientTokens:
    """RunInstances client tokens, per account: the reservation each launched (EC2's idempotency).

    Calls with one token are serialised, so a re-sent RunInstances that overtakes the first one
    still finds what that launched.
    """

    def __init__(self):
        self._mu = threading.Lock()
        self._launched = {}
        self._locks = {}

    @contextlib.contextmanager
    def serialised(self, account, token):
        if not token:
            yield
            return
        with self._mu:
            lock = self._locks.setdefault((account, token), threading.Lock())
        with lock:
            yield

    def get(self, account, token):
        with self._mu:
            return self._launched.get((account, token))

    def put(self, account, token, reservation_id, instance_ids):
        with self._mu:
            self._launched[(account, token)] = {"reservation_id": reservation_id, "instance_ids": list(instance_ids)}


def _client_gone(req):
    """Whether the client closed its connection (it timed out and gave up on the request)."""
    import select

    conn = req.connection
    try:
        if isinstance(conn, ssl.SSLSocket) and conn.pending():
            return False  # decrypted bytes waiting: a next request
        readable, _, _ = select.select([conn], [], [], 0)
        if not readable:
            return False
        if not isinstance(conn, ssl.SSLSocket):
            return conn.recv(1, socket.MSG_PEEK) == b""
        # TLS: peek at the raw TCP bytes (an SSLSocket takes no MSG_PEEK) without consuming them
        with socket.socket(fileno=os.dup(conn.fileno())) as raw:
            waiting = raw.recv(64, socket.MSG_PEEK)
        return waiting == b"" or _only_tls_alert(waiting)
    except (OSError, ValueError):
        return True


def _only_tls_alert(data):
    """Whether the bytes waiting are one TLS record that can only be an alert (the client's
    close_notify before its FIN): TLS 1.2's alert record type, or a TLS 1.3 record whose
    encrypted payload is 2 alert bytes + content type + 16 bytes of AEAD tag (no request is 3 bytes)."""
    if len(data) < 5:
        return False
    length = int.from_bytes(data[3:5], "big")
    if len(data) != 5 + length:
        return False
    return data[0] == 0x15 or (data[0] == 0x17 and length == 19)


def _seconds(v):
    """A JSON number of seconds (not a bool, not NaN or infinite)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _rsa_bits(key_text):
    """Bits of an OpenSSH `ssh-rsa` public key, None for anything else."""
    parts = key_text.strip().split()
    if len(parts) < 2 or parts[0] != "ssh-rsa":
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
        fields = []
        off = 0
        while off < len(blob) and len(fields) < 3:
            (n,) = struct.unpack(">I", blob[off : off + 4])
            fields.append(blob[off + 4 : off + 4 + n])
            off += 4 + n
        if len(fields) < 3 or fields[0] != b"ssh-rsa":
            return None
        return int.from_bytes(fields[2], "big").bit_length()
    except Exception:
        return None


def _user_data_size(raw):
    """Bytes of a launch's user data once base64-decoded (what EC2's limit counts)."""
    try:
        return len(base64.b64decode(raw, validate=True))
    except ValueError:  # binascii.Error: not base64; count it as it came
        return len(raw.encode())


def _defer_filters(params, names):
    """The params without the filters named in `names` (their values go under names[filter], for
    the answer's rewrite to apply), or None when there is none of them. The others are renumbered."""
    groups = defaultdict(dict)
    rest = {}
    for k, v in params.items():
        m = re.fullmatch(r"Filter\.(\d+)\.(.+)", k)
        if m:
            groups[int(m[1])][m[2]] = v
        else:
            rest[k] = v
    deferred, kept = {}, []
    for n in sorted(groups):
        g = groups[n]
        if g.get("Name") in names:
            deferred.setdefault(names[g["Name"]], []).extend(v for k, v in sorted(g.items()) if k.startswith("Value."))
        else:
            kept.append(g)
    if not deferred:
        return None
    for n, g in enumerate(kept, 1):
        rest.update({f"Filter.{n}.{k}": v for k, v in g.items()})
    return dict(rest, **deferred)


def instance_not_found(instance_ids, rid=None):
    """EC2's answer to a call naming instances that do not exist (moto's and EC2's wording)."""
    if len(instance_ids) > 1:
        msg = f"The instance IDs '{', '.join(instance_ids)}' do not exist"
    else:
        msg = f"The instance ID '{instance_ids[0]}' does not exist"
    return ec2xml.error("InvalidInstanceID.NotFound", msg, rid)


class Personality:
    def __init__(self, state):
        self.state = state
        self.token = state["token"]
        self.users = Users()
        self.default_personality = state.get("speaks", EUCALYPTUS)
        self.users.add(state["user"]["access_key"], state["user"]["secret_key"], personality=self.default_personality)
        self.requests = Requests()
        self.moto = Moto(state["moto"]["port"], accounts=self.users.accounts)
        self.stats = Stats()
        self.faults = Faults()
        self.tokens = ClientTokens()
        self.config = Config(state.get("boot_delay", 2.0), state.get("public_ip_delay", 3.0))
        self.machines = Machines()
        # the reconcile loop asks moto about every account that has instances
        self.fleet = Fleet(self.machines, self.config, describe_moto=lambda: self.moto.instance_states(self.fleet.accounts()))
        self.subnet_id = state["subnet_id"]
        self.vpc_id = state.get("vpc_id")
        if state.get("default_vpc_id"):
            self.moto.known_default_vpc(DEFAULT_ACCOUNT, state["default_vpc_id"])
        self.port = None
        self.tls_port = None
        self.local = threading.local()  # per request thread: .tls, whether it came in on the HTTPS port
        self.imds = Imds(self.users)

    # ---------------- EC2 ----------------
    def is_aws(self, ak):
        return self.users.personality(ak) == AWS

    def clock_skew(self, headers):
        """Seconds the personality's clock runs ahead for this request: the clock_skew of the key in
        its Authorization header (signature not checked yet: a refused request gets the skewed Date
        too), else the global one."""
        auth = sigv4.parse_authorization(headers.get("Authorization"))
        return self.config.get(auth.access_key if auth else None).get("clock_skew", 0.0)

    def handle_ec2(self, req, method, path, query, body):
        rid = ec2xml.request_id()
        params = dict(parse_qsl(query, keep_blank_values=True))
        ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if method == "POST" and ctype in ("", "application/x-www-form-urlencoded"):
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        action = params.get("Action", "")
        req.tb_action = action

        skew = getattr(req, "tb_clock_skew", 0.0)
        now = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=skew)
        claimed = sigv4.parse_authorization(req.headers.get("Authorization"))
        region = REGIONS[self.users.personality(claimed.access_key if claimed else None)]
        try:
            auth = sigv4.verify(method, path, query, req.headers, body, self.users.secret, regions=(region,), now=now)
        except sigv4.AuthError as e:
            ak = sigv4.parse_authorization(req.headers.get("Authorization"))
            self.stats.count(ak.access_key if ak else "-", action or "-", e.status)
            return e.status, ec2xml.error(e.code, e.message, rid)
        ak = auth.access_key
        req.tb_access_key = ak
        logged = self.requests.add(ak, action or "-", params)
        status = None
        try:
            status, out = self._ec2_after_auth(req, ak, action, params, method, path, query, body, rid)
        finally:
            self.requests.done(logged, status)
        self.stats.count(ak, action or "-", status)
        return status, out

    def _ec2_after_auth(self, req, ak, action, params, method, path, query, body, rid):
        fault = self.faults.take(action, ak, "request")
        if fault:
            if fault.get("slow_ms"):
                # The cloud has the call and is slow to apply it: it applies it even if the client
                # goes away meanwhile (EC2 does not take back a call it received).
                log.info("fault: %s by %s applied slowly (%d ms)", action, ak, fault["slow_ms"])
                time.sleep(fault["slow_ms"] / 1000.0)
            if fault.get("delay_ms"):
                time.sleep(fault["delay_ms"] / 1000.0)
                if _client_gone(req):
                    # A request held up on the way: the client gave up on it, so it never
                    # arrives (a call applied with its answer lost is --lose-answer's job).
                    log.info("fault: %s by %s delayed past the client's patience; dropped", action, ak)
                    return 504, ec2xml.error("RequestTimeout", "the client went away", rid)
            failed = self._fault_answer(fault, rid)
            if failed:
                return failed
        if action == "RunInstances" and params.get("InstanceMarketOptions.MarketType") == "spot":
            if self.faults.take(action, ak, "capacity"):
                log.info("fault: no spot capacity for %s", ak)
                return 500, ec2xml.error(
                    "InsufficientInstanceCapacity",
                    "There is no Spot capacity available that matches your request.",
                    rid,
                )
        status, out = self._serve(req, ak, action, params, method, query, body, rid)
        if fault and fault.get("lose_answer"):
            # the call took effect; only its answer is lost on the way back
            log.info("fault: losing the answer (HTTP %d) of %s by %s%s", status, action, ak, " by a reset" if fault.get("reset") else "")
            if fault.get("reset"):
                return 503, RESET
            return 503, ec2xml.error("ServiceUnavailable", "Service Unavailable", rid)
        return status, out

    @staticmethod
    def _fault_answer(fault, rid):
        """The error a --throttle / --status fault answers instead of serving the call, or None."""
        if fault.get("throttle"):
            return 503, ec2xml.error("RequestLimitExceeded", "Request limit exceeded.", rid)
        if fault.get("status"):
            st = int(fault["status"])
            code = {503: "ServiceUnavailable", 500: "InternalError"}.get(st, "InternalError")
            msg = {503: "Service Unavailable", 500: "An internal error has occurred"}.get(st, "Injected fault")
            return st, ec2xml.error(code, msg, rid)
        return None

    def _serve(self, req, ak, action, params, method, query, body, rid):
        """Binding, then the action: answered by the personality, or by moto and rewritten."""
        if not action:
            return 400, ec2xml.error("MissingAction", "The request must contain the parameter Action", rid)
        aws = self.is_aws(ak)
        if aws:
            pass  # AWS binds what moto binds: no Eucalyptus binding, no Eucalyptus names
        elif not binding.known_action(action):
            return 400, ec2xml.error("InvalidAction", f"The action {action} is not valid for this web service.", rid)
        leftovers = [] if aws else binding.unbound(action, params)
        if leftovers:
            return 400, ec2xml.error("InvalidParameterValue", binding.failure_message(params, leftovers), rid)
        account = self.users.account(ak)
        unknown = self._unknown_instances(account, params)
        if unknown:
            return 400, instance_not_found(unknown, rid)

        token = params.get("ClientToken") if action == "RunInstances" else None
        with self.tokens.serialised(account, token):
            status, resp = self._answer(req, ak, account, action, params, method, query, body, rid)
        if not aws:
            resp = resp.replace(f":{MOTO_REGION}:".encode(), b":eucalyptus:")
        return status, ec2xml.sanitize(resp)

    def _answer(self, req, ak, account, action, params, method, query, body, rid):
        special = getattr(self, "_pre_" + action, None)
        if special:
            early = special(ak, params, rid)
            if early is not None:
                return early

        rewrite = getattr(self, "_aws_" + action, None) if self.is_aws(ak) else None
        sent = rewrite(ak, params) if rewrite else None
        if isinstance(sent, tuple):
            return sent  # refused, as AWS would
        if sent is not None:
            # the request as AWS would read it: sent to moto as rewritten (moto checks no signature)
            status, resp = self.moto.query(account, {k: v for k, v in sent.items() if not k.startswith("_tb.")})
            params = sent
        else:
            status, resp = self._forward(req, method, query, body, account)
        post = getattr(self, "_post_" + action, None)
        if status == 200 and post:
            try:
                resp = post(ak, params, resp)
            except Exception:
                log.exception("rewriting %s failed", action)
                return 500, ec2xml.error("InternalError", "testbed personality failed to process the response", rid)
        return status, resp

    def _forward(self, req, method, query, body, account):
        headers = {}
        for name in ("Content-Type", "X-Amz-Date", "User-Agent", "X-Amz-Content-Sha256"):
            v = req.headers.get(name)
            if v:
                headers[name] = v
        headers["Authorization"] = sigv4.rescope(req.headers.get("Authorization", ""), MOTO_REGION)
        headers["Host"] = f"127.0.0.1:{self.moto.port}"
        headers[ACCOUNT_HEADER] = account
        conn = http.client.HTTPConnection("127.0.0.1", self.moto.port, timeout=120)
        try:
            conn.request(method, "/" + ("?" + query if query else ""), body=body if body else None, headers=headers)
            r = conn.getresponse()
            return r.status, r.read()
        except OSError as e:
            log.error("moto unreachable: %s", e)
            return 503, ec2xml.error("ServiceUnavailable", "Service Unavailable")
        finally:
            conn.close()

    # ---- purged instances: gone from every answer, unknown to every call that names them ----
    @staticmethod
    def _named_instances(params):
        """Instance ids a call names (InstanceId, InstanceId.N; ResourceId.N of the tag calls)."""
        return [
            v for k, v in params.items()
            if k == "InstanceId" or k.startswith("InstanceId.") or (k.startswith("ResourceId.") and v.startswith("i-"))
        ]

    def _unknown_instances(self, account, params):
        """When a call names a purged instance: every id it names that the account does not have."""
        named = self._named_instances(params)
        if not any(self.fleet.is_purged(i) for i in named):
            return []
        try:
            existing = self.moto.instance_ids(account)
        except Exception as e:
            log.warning("instance ids of %s: %s", account, e)
            existing = set(named)
        return list(dict.fromkeys(i for i in named if self.fleet.is_purged(i) or i not in existing))

    def _drop_purged(self, doc):
        """Remove purged instances (and reservations left empty) from a parsed answer."""
        for parent in list(doc.root.iter()):
            for item in list(parent.findall(doc.q("item"))):
                iid = doc.text(item, "instanceId") or doc.text(item, "resourceId")
                if iid and self.fleet.is_purged(iid):
                    parent.remove(item)
        for rset in list(doc.iter("reservationSet")):
            for res in list(rset.findall(doc.q("item"))):
                instances = doc.child(res, "instancesSet")
                if instances is not None and not len(instances):
                    rset.remove(res)

    # ---- per-action hooks: _pre_X may answer early; _post_X rewrites moto's 200 answer ----
    def _pre_DescribeRegions(self, ak, params, rid):
        # the endpoint of the port asked: HTTPS answers name the HTTPS port
        if getattr(self.local, "tls", False):
            endpoint = f"https://127.0.0.1:{self.tls_port}/services/compute"
        else:
            endpoint = f"http://127.0.0.1:{self.port}/services/compute"
        ns = ec2xml.EC2_NS
        region = REGIONS[self.users.personality(ak)]
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<DescribeRegionsResponse xmlns="{ns}">'
            f"<requestId>{rid}</requestId><regionInfo><item><regionName>{region}</regionName>"
            f"<regionEndpoint>{endpoint}</regionEndpoint></item></regionInfo></DescribeRegionsResponse>"
        )
        names = [v for k, v in params.items() if k.startswith("RegionName.")]
        if names and region not in names:
            return 400, ec2xml.error("InvalidParameterValue", f"Invalid region: {names[0]}", rid)
        return 200, body.encode()

    def _pre_RunInstances(self, ak, params, rid):
        account = self.users.account(ak)
        subnet = params.get("SubnetId") or params.get("NetworkInterface.1.SubnetId")
        if subnet and (subnet != self.subnet_id or account != DEFAULT_ACCOUNT):
            # the testbed's VPC and subnet are the first account's; other accounts have none
            return 400, ec2xml.error("InvalidSubnetID.NotFound", f"The subnet ID '{subnet}' does not exist", rid)
        itype = params.get("InstanceType")
        if itype is not None and itype not in INSTANCE_TYPES and not self.is_aws(ak):
            return 400, ec2xml.error("InvalidParameterValue", f"Invalid value '{itype}' for InstanceType.", rid)
        if _user_data_size(params.get("UserData", "")) > USER_DATA_LIMIT:
            return 400, ec2xml.error("InvalidParameterValue", f"User data is limited to {USER_DATA_LIMIT} bytes", rid)
        token = params.get("ClientToken")
        launched = self.tokens.get(account, token) if token else None
        if launched:
            return self._relaunch_answer(account, token, launched, rid)
        return None

    def _relaunch_answer(self, account, token, launched, rid):
        """A RunInstances whose client token was used: the first call's reservation, as it is now."""
        ids = launched["instance_ids"]
        log.info("RunInstances client token %s of %s used before: answering reservation %s", token, account, launched["reservation_id"])
        status, body = self.moto.query(
            account, {"Action": "DescribeInstances", **{f"InstanceId.{n}": i for n, i in enumerate(ids, 1)}}
        )
        if status != 200:
            return status, body
        doc = ec2xml.Doc(ec2xml.run_instances_answer(body, launched["reservation_id"], rid))
        self._drop_purged(doc)
        self._rewrite_doc_instances(doc)
        return 200, doc.serialize()

    def _pre_ImportKeyPair(self, ak, params, rid):
        material = params.get("PublicKeyMaterial", "")
        try:
            text = base64.b64decode(material, validate=True).decode()
        except Exception:
            text = material
        bits = _rsa_bits(text)
        if bits not in (1024, 2048, 4096):
            return 400, ec2xml.error(
                "InvalidKey.Format",
                "Key is not in valid OpenSSH public key format: only ssh-rsa keys of 1024, 2048 or 4096 bits are supported",
                rid,
            )
        return None

    def _post_RunInstances(self, ak, params, resp):
        account = self.users.account(ak)
        doc = ec2xml.Doc(resp)
        edge = not (params.get("SubnetId") or params.get("NetworkInterface.1.SubnetId"))
        # AWS: the default subnet maps a public address at launch unless the launch says no
        vpc_public = self.is_aws(ak) and params.get("NetworkInterface.1.AssociatePublicIpAddress") != "false"
        raw = params.get("UserData", "")
        try:
            user_data = base64.b64decode(raw) if raw else b""
        except Exception:
            user_data = raw.encode()
        keys = []
        if params.get("KeyName"):
            try:
                pk = self.moto.public_key(params["KeyName"], account)
                if pk:
                    keys.append(pk.strip())
            except Exception as e:
                log.warning("public key of %s in %s: %s", params["KeyName"], account, e)
        token = params.get("ClientToken") or None
        ids = []
        for item in doc.instance_items():
            iid = doc.text(item, "instanceId")
            ids.append(iid)
            swap = self.faults.take("RunInstances", ak, "swap") is not None
            try:  # moto numbers the instances of one reservation 0..N-1, as EC2 does
                launch_index = int(doc.text(item, "amiLaunchIndex") or 0)
            except ValueError:
                launch_index = 0
            self.fleet.launched(
                instance_id=iid,
                owner=ak,
                account=account,
                client_token=token,
                edge=edge,
                moto_private=doc.text(item, "privateIpAddress"),
                moto_public=doc.text(item, "ipAddress"),
                user_data=user_data,
                authorized_keys=keys,
                swap_host_key=swap,
                launch_index=launch_index,
                vpc_public=vpc_public,
                spot=params.get("InstanceMarketOptions.MarketType") == "spot",
            )
        if token:
            self.tokens.put(account, token, doc.text(doc.root, "reservationId"), ids)
        self._rewrite_doc_instances(doc)
        return doc.serialize()

    def _instance_ids(self, params):
        return [v for k, v in params.items() if k.startswith("InstanceId.")]

    def _post_StartInstances(self, ak, params, resp):
        for iid in self._instance_ids(params):
            self.fleet.started(iid, ak)
        return resp

    def _post_StopInstances(self, ak, params, resp):
        for iid in self._instance_ids(params):
            self.fleet.stopped(iid)
        return resp

    def _post_RebootInstances(self, ak, params, resp):
        for iid in self._instance_ids(params):
            self.fleet.rebooted(iid)
        return resp

    def _post_TerminateInstances(self, ak, params, resp):
        for iid in self._instance_ids(params):
            self.fleet.terminated(iid)
        return resp

    def _post_GetConsoleOutput(self, ak, params, resp):
        doc = ec2xml.Doc(resp)
        iid = params.get("InstanceId")
        text = self.machines.console(iid) if self.fleet.get(iid) else ""
        doc.set_text(doc.root, "output", base64.b64encode(text.encode()).decode() if text else None)
        now = datetime.datetime.now(datetime.timezone.utc)
        doc.set_text(doc.root, "timestamp", now.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
        return doc.serialize()

    def _post_DescribeAvailabilityZones(self, ak, params, resp):
        if self.is_aws(ak):
            return resp
        doc = ec2xml.Doc(resp)
        for item in doc.iter("item"):
            if doc.text(item, "regionName") == MOTO_REGION:
                doc.set_text(item, "regionName", "eucalyptus")
        return doc.serialize()

    def _post_DescribeImages(self, ak, params, resp):
        doc = ec2xml.Doc(resp)
        for item in doc.iter("item"):
            doc.set_text(item, "imageOwnerAlias", None)  # moto's "amazon" for images it loads itself
        return doc.serialize()

    def _drop_items(self, resp, predicate):
        doc = ec2xml.Doc(resp)
        for parent in list(doc.root.iter()):
            for item in list(parent.findall(doc.q("item"))):
                if predicate(doc, item):
                    parent.remove(item)
        return doc.serialize()

    def _post_DescribeVpcs(self, ak, params, resp):
        # moto's default VPC (172.31.0.0/16) is not the testbed's: an instance there would get an
        # address outside the testbed's ranges.
        resp = self._drop_items(resp, lambda d, it: d.text(it, "vpcId") is not None and d.text(it, "isDefault") == "true")
        if not self.is_aws(ak):
            return resp
        # AWS: the testbed's VPC is the first account's default VPC
        doc = ec2xml.Doc(resp)
        for item in doc.iter("item"):
            if doc.text(item, "vpcId") == self.vpc_id and doc.child(item, "isDefault") is not None:
                doc.set_text(item, "isDefault", "true")
        wanted = params.get("_tb.is-default")
        return self._filtered(doc, "vpcId", lambda it: doc.text(it, "isDefault") in wanted) if wanted else doc.serialize()

    def _post_DescribeSubnets(self, ak, params, resp):
        default_vpc = self.moto.default_vpc_id(self.users.account(ak))
        resp = self._drop_items(
            resp,
            lambda d, it: d.text(it, "subnetId") is not None
            and (d.text(it, "defaultForAz") == "true" or d.text(it, "vpcId") == default_vpc),
        )
        if not self.is_aws(ak):
            return resp
        # AWS: the testbed's subnet is the default VPC's subnet of its zone, mapping public addresses
        doc = ec2xml.Doc(resp)
        for item in doc.iter("item"):
            if doc.text(item, "subnetId") == self.subnet_id:
                doc.set_text(item, "defaultForAz", "true")
                doc.set_text(item, "mapPublicIpOnLaunch", "true")
        wanted = params.get("_tb.default-for-az")
        return self._filtered(doc, "subnetId", lambda it: doc.text(it, "defaultForAz") in wanted) if wanted else doc.serialize()

    def _filtered(self, doc, id_tag, keep):
        """The answer with only the items (those with `id_tag`) that `keep`."""
        for parent in list(doc.root.iter()):
            for item in list(parent.findall(doc.q("item"))):
                if doc.child(item, id_tag) is not None and not keep(item):
                    parent.remove(item)
        return doc.serialize()

    # ---- AWS: the request as AWS reads it (_aws_X returns the params to send moto, None for as
    # sent, or an error answer); "_tb.*" entries carry what the answer's rewrite needs ----
    def _aws_DescribeVpcs(self, ak, params):
        return _defer_filters(params, {"is-default": "_tb.is-default", "isDefault": "_tb.is-default"})

    def _aws_DescribeSubnets(self, ak, params):
        return _defer_filters(params, {"default-for-az": "_tb.default-for-az", "defaultForAz": "_tb.default-for-az"})

    def _aws_CreateSecurityGroup(self, ak, params):
        if params.get("VpcId") or self.users.account(ak) != DEFAULT_ACCOUNT:
            return None
        return dict(params, VpcId=self.vpc_id)  # AWS makes it in the default VPC

    def _aws_RunInstances(self, ak, params):
        """Into the default subnet when no subnet is named, and a size for a root mapping without
        one (EC2 takes the image's; moto insists on one)."""
        out = dict(params)
        if not (params.get("SubnetId") or params.get("NetworkInterface.1.SubnetId")):
            if self.users.account(ak) != DEFAULT_ACCOUNT:
                return 400, ec2xml.error("VPCIdNotSpecified", "No default VPC for this user.")
            if "NetworkInterface.1.DeviceIndex" in params:
                out["NetworkInterface.1.SubnetId"] = self.subnet_id
            else:
                out["SubnetId"] = self.subnet_id
        for k in params:
            m = re.fullmatch(r"BlockDeviceMapping\.(\d+)\.Ebs\.(\w+)", k)
            if m:
                base = f"BlockDeviceMapping.{m[1]}.Ebs."
                if base + "VolumeSize" not in params and base + "SnapshotId" not in params:
                    out[base + "VolumeSize"] = AWS_ROOT_GIB
        return out if out != params else None

    def _pre_StopInstances(self, ak, params, rid):
        spot = [i for i in self._instance_ids(params) if (inst := self.fleet.get(i)) is not None and inst.spot]
        if spot and self.is_aws(ak):
            return 400, ec2xml.error(
                "UnsupportedOperation",
                f"You can't stop the Spot Instance '{spot[0]}' because it is associated with a one-time Spot Instance request. You can only stop Spot Instances associated with persistent Spot Instance requests.",
                rid,
            )
        return None

    def _post_DescribeSecurityGroups(self, ak, params, resp):
        default_vpc = self.moto.default_vpc_id(self.users.account(ak))
        if self.is_aws(ak):  # moto's default VPC is hidden, and its groups with it
            return self._drop_items(resp, lambda d, it: d.text(it, "groupId") is not None and d.text(it, "vpcId") == default_vpc)
        doc = ec2xml.Doc(resp)
        for item in doc.iter("item"):
            if doc.text(item, "groupId") and doc.text(item, "vpcId") == default_vpc:
                doc.set_text(item, "vpcId", None)  # EDGE groups belong to no VPC
        return doc.serialize()

    def _post_DescribeTags(self, ak, params, resp):
        doc = ec2xml.Doc(resp)
        self._drop_purged(doc)
        return doc.serialize()

    def _post_DescribeInstances(self, ak, params, resp):
        doc = ec2xml.Doc(resp)
        self._drop_purged(doc)
        self._rewrite_doc_instances(doc)
        return doc.serialize()

    _post_DescribeInstanceStatus = _post_DescribeInstances

    def _rewrite_doc_instances(self, doc):
        for item in doc.instance_items():
            iid = doc.text(item, "instanceId")
            st = doc.child(item, "instanceState")
            moto_state = doc.text(st, "name") if st is not None else None
            p = self.fleet.present(iid, moto_state)
            if p is None:
                if doc.child(item, "imageId") is None:
                    continue
                # not launched through the personality: show no address at all
                for name in ("privateIpAddress", "privateDnsName", "ipAddress", "dnsName"):
                    doc.set_text(item, name, None)
                doc.remove(item, "networkInterfaceSet")
                continue
            if p.state:
                ec2xml.set_state(doc, item, p.state)
            if doc.child(item, "imageId") is None:
                # a status item (DescribeInstanceStatus): no addresses in it
                if p.stale:
                    for name in ("instanceStatus", "systemStatus"):
                        ec2xml.set_not_applicable(doc, item, name)
                continue
            doc.set_text(item, "clientToken", p.client_token or "")  # moto's own default is "ABCDE"
            doc.set_text(item, "privateIpAddress", p.private_ip)
            doc.set_text(item, "privateDnsName", p.private_dns if p.private_ip else "")
            doc.set_text(item, "ipAddress", p.public_ip)
            doc.set_text(item, "dnsName", p.public_dns or "")
            if p.edge or p.private_ip is None:
                # EDGE instances live in no VPC and have no ENIs; terminated ones have none either
                if p.edge:
                    doc.set_text(item, "subnetId", None)
                    doc.set_text(item, "vpcId", None)
                nis = doc.child(item, "networkInterfaceSet")
                if nis is not None:
                    for c in list(nis):
                        nis.remove(c)
            else:
                nis = doc.child(item, "networkInterfaceSet")
                for eni in doc.iter("item", nis) if nis is not None else []:
                    assoc = doc.child(eni, "association")
                    if assoc is not None and p.public_ip:
                        doc.set_text(assoc, "publicIp", p.public_ip)
                        doc.set_text(assoc, "publicDnsName", p.public_dns or "")
                    elif not p.public_ip:
                        doc.remove(eni, "association")  # no public address (Eucalyptus VPC instances never get one here)
                    if doc.child(eni, "privateDnsName") is not None:
                        doc.set_text(eni, "privateDnsName", p.private_dns or "")
            # anything left that still names moto's addresses
            for el in item.iter():
                if el.text and p.moto_private and el.text == p.moto_private:
                    el.text = p.private_ip or ""
                elif el.text and p.moto_public and el.text == p.moto_public:
                    el.text = p.public_ip or ""

    # ---------------- control API ----------------
    def handle_control(self, req, method, path, query, body):
        if not hmac.compare_digest(req.headers.get(TOKEN_HEADER, ""), self.token):
            return 403, {"error": "bad or missing control token"}
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return 400, {"error": "body is not JSON"}
        q = dict(parse_qsl(query))
        route = path[len("/_testbed/"):].strip("/")
        if route == "status":
            return 200, {
                "moto_port": self.moto.port,
                "port": self.port,
                "tls_port": self.tls_port,
                "fake_vms": self.machines.fake,
                "users": self.users.count(),
                "accounts": self.users.accounts(),
                "config": self.config.snapshot(),
                "faults": self.faults.list(),
                "instances": self.fleet.status(),
            }
        if route == "stats":
            ak = data.get("access_key") or q.get("access_key")
            out = self.stats.get(ak)
            if data.get("reset") or q.get("reset"):
                self.stats.reset(ak)
            return 200, out
        if route == "credentials":
            return self._control_credentials(data)
        if route == "imds":
            ak = data.get("access_key")
            if method == "POST":
                if not ak or self.users.secret(ak) is None:
                    return 400, {"error": "imds needs the access key of a testbed user"}
                self.imds.assume(ak)
            return 200, {"role": IMDS_ROLE, "access_key": self.imds.role_key, "requests": self.imds.requests,
                         "endpoint": f"http://127.0.0.1:{self.port}/"}
        if route == "requests":
            ak = data.get("access_key") or q.get("access_key")
            if not ak:
                return 400, {"error": "requests needs access_key"}
            out = {"access_key": ak, "personality": self.users.personality(ak), "requests": self.requests.get(ak)}
            if data.get("reset") or q.get("reset"):
                self.requests.reset(ak)
            return 200, out
        if route == "config":
            if method == "POST":
                values = {k: data.get(k) for k in ("boot_delay", "public_ip_delay", "stale_start")}
                bad = [k for k, v in values.items() if v is not None and not (_seconds(v) and v >= 0)]
                if bad:
                    return 400, {"error": f"{', '.join(bad)}: seconds >= 0 expected"}
                skew = data.get("clock_skew")
                if skew is not None and not (_seconds(skew) and abs(skew) <= MAX_CLOCK_SKEW):
                    return 400, {"error": f"clock_skew: seconds expected (negative: behind), at most {MAX_CLOCK_SKEW} either way"}
                mirror, hang = data.get("mirror"), data.get("mirror_hang")
                if mirror is not None and mirror not in MIRROR_MODES:
                    return 400, {"error": f"mirror: one of {', '.join(MIRROR_MODES)} expected"}
                if hang is not None and not (_seconds(hang) and 0 <= hang <= MAX_MIRROR_HANG):
                    return 400, {"error": f"mirror_hang: seconds from 0 to {MAX_MIRROR_HANG} expected"}
                self.config.set(data.get("access_key"), clock_skew=skew, mirror=mirror, mirror_hang=hang, **values)
            return 200, self.config.snapshot()
        if route == "fault":
            if method == "POST":
                return self._control_fault(data)
            return 200, {"faults": self.faults.list()}
        if route == "purge":
            return self._control_purge(data)
        if route == "exec":
            iid = data.get("instance_id")
            if not iid or not isinstance(data.get("argv"), list) or not data["argv"]:
                return 400, {"error": "exec needs instance_id and argv"}
            stdin = base64.b64decode(data["input"]) if data.get("input") is not None else None
            try:
                cp = self.machines.exec_in(iid, data["argv"], input=stdin)
            except Exception as e:
                return 404, {"error": f"{type(e).__name__}: {e}"}
            return 200, {
                "returncode": cp.returncode,
                "stdout": base64.b64encode(cp.stdout or b"").decode(),
                "stderr": base64.b64encode(cp.stderr or b"").decode(),
            }
        if route == "shutdown":
            self.fleet.shutdown()
            threading.Thread(target=self._exit_soon, daemon=True).start()
            return 200, {"ok": True}
        return 404, {"error": f"no control route {route!r}"}

    def _control_credentials(self, data):
        """A new user: of the first account (default), of a new account, or of a known one; its
        requests meet the personality asked for (default: the testbed's, `up --personality`)."""
        personality = data.get("personality") or self.default_personality
        if personality not in PERSONALITIES:
            return 400, {"error": f"personality must be one of {', '.join(PERSONALITIES)}, not {personality!r}"}
        want = data.get("account")
        if personality == AWS and want not in (None, "", DEFAULT_ACCOUNT):
            return 400, {"error": "an AWS user belongs to the first account: the testbed's default VPC is there"}
        if want in (None, ""):
            account = DEFAULT_ACCOUNT
        elif want == "new":
            account = self.users.new_account()
        elif str(want) in self.users.accounts():
            account = str(want)
        elif re.fullmatch(r"\d{12}", str(want)):
            return 404, {"error": f"no account {want} (known: {', '.join(self.users.accounts())})"}
        else:
            return 400, {"error": f"account must be 'new' or a 12-digit account id, not {want!r}"}
        ak, sk = self.users.add(account=account, personality=personality)
        log.info("new user %s in account %s (%s)", ak, account, personality)
        return 200, {"access_key": ak, "secret_key": sk, "account": account, "personality": personality,
                     "region": REGIONS[personality]}

    def _control_fault(self, data):
        if data.get("clear"):
            self.faults.clear(data.get("action"), data.get("access_key"))
            return 200, {"faults": self.faults.list()}
        if not data.get("action"):
            return 400, {"error": "fault needs an action"}
        if not binding.known_action(data["action"]):
            return 400, {"error": f"unknown action {data['action']!r} (known: {', '.join(sorted(binding.ACTIONS))})"}
        if data.get("swap_host_key") and data["action"] != "RunInstances":
            return 400, {"error": "--swap-host-key applies to RunInstances only"}
        if data.get("capacity") and data["action"] != "RunInstances":
            return 400, {"error": "--capacity applies to RunInstances only"}
        if data.get("capacity") and any(data.get(k) for k in ("status", "throttle", "swap_host_key", "lose_answer")):
            return 400, {"error": "--capacity answers the spot launch itself: it does not combine with other faults"}
        if data.get("reset") and not data.get("lose_answer"):
            return 400, {"error": "--reset goes with --lose-answer"}
        if data.get("slow_ms") and data.get("delay_ms"):
            return 400, {"error": "--slow applies the call whatever the client does, --delay drops it if the client gave up: one of them"}
        if data.get("lose_answer") and any(data.get(k) for k in ("status", "throttle", "swap_host_key")):
            return 400, {"error": "--lose-answer serves the call: it does not combine with --status, --throttle or --swap-host-key"}
        rule = self.faults.add({k: v for k, v in data.items() if v not in (None, False)})
        log.info("fault added %s", rule)
        return 200, {"fault": rule, "faults": self.faults.list()}

    def _control_purge(self, data):
        """Terminate an instance in moto and make it vanish: from now on no call finds it."""
        iid = data.get("instance_id")
        if not iid:
            return 400, {"error": "purge needs instance_id"}
        inst = self.fleet.get(iid)
        account = inst.account if inst else self.moto.find_instance(iid)
        if account is None:
            return 404, {"error": f"no instance {iid}"}
        if not self.fleet.is_purged(iid):
            try:
                self.moto.terminate(iid, account)
            except Exception as e:
                return 500, {"error": f"terminating {iid} in moto: {type(e).__name__}: {e}"}
            self.fleet.purge(iid)
            log.info("purged %s of account %s", iid, account)
        return 200, {"instance_id": iid, "account": account, "purged": True}

    def _exit_soon(self):
        time.sleep(0.2)
        log.info("shutdown requested")
        os._exit(0)


def make_handler(p):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "Eucalyptus/4.4"
        sys_version = ""

        def log_message(self, fmt, *args):  # the personality logs its own line per request
            pass

        def date_time_string(self, timestamp=None):
            # the Date header send_response writes: the personality's clock (clock_skew) for EC2 answers
            if timestamp is None:
                timestamp = time.time() + getattr(self, "tb_clock_skew", 0.0)
            return super().date_time_string(timestamp)

        def _send(self, status, body, ctype, headers=None):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _reset(self):
            """Drop the connection without a byte of answer: linger 0 makes the close a TCP reset."""
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()  # the socket goes when the handler's files close, before any FIN

        def _handle(self):
            t0 = time.time()
            self.tb_action = self.tb_access_key = "-"
            self.tb_clock_skew = 0.0  # one handler serves every request of a keep-alive connection
            p.local.tls = isinstance(self.connection, ssl.SSLSocket)
            split = urlsplit(self.path)
            path, query = split.path, split.query
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if path.startswith("/_testbed/"):
                status, out = p.handle_control(self, self.command, path, query, body)
                self._send(status, json.dumps(out).encode(), "application/json")
                return
            if path.startswith("/latest/"):
                status, ctype, out, headers = p.imds.handle(self.headers, self.command, path)
                self._send(status, out, ctype, headers)
                log.info("%s %s (metadata) -> %s", self.command, path, status)
                return
            self.tb_clock_skew = p.clock_skew(self.headers)
            if re.sub("/+", "/", path) not in SERVICE_PATHS:
                self._send(404, ec2xml.error("InvalidAction", f"No service at {path}"), "text/xml;charset=UTF-8")
                return
            try:
                status, out = p.handle_ec2(self, self.command, path, query, body)
            except Exception:
                log.exception("request failed")
                status, out = 500, ec2xml.error("InternalError", "testbed personality error")
            if out is RESET:
                self._reset()
            else:
                self._send(status, out, "text/xml;charset=UTF-8")
            log.info(
                "%s %s %s by %s -> %s (%.0f ms)",
                self.command,
                path,
                getattr(self, "tb_action", "-"),
                getattr(self, "tb_access_key", "-"),
                "reset" if out is RESET else status,
                (time.time() - t0) * 1000,
            )

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _handle

    return Handler


def serve(state_root):
    state = daemon.read_state()
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(threadName)s: %(message)s",
        stream=sys.stderr,
    )
    p = Personality(state)
    handler = make_handler(p)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    p.port = server.server_address[1]
    tls_server = None
    if state.get("tls"):
        # the same handler (same Personality: users, stats, faults, config) behind TLS on a second port
        tls_server = TLSServer(("127.0.0.1", 0), handler, tls.server_context(state["tls"]))
        tls_server.daemon_threads = True
        p.tls_port = tls_server.server_address[1]
    log.info("personality on 127.0.0.1:%d (HTTPS %s), moto on %d, fake VMs: %s",
             p.port, p.tls_port or "off", p.moto.port, p.machines.fake)
    p.fleet.start_reconciler()
    if tls_server:
        threading.Thread(target=tls_server.serve_forever, name="https", daemon=True).start()
        # written before personality.port, which `up` waits for
        daemon.write_file_atomic(os.path.join(state_root, "personality.tls_port"), str(p.tls_port))
    daemon.write_file_atomic(os.path.join(state_root, "personality.port"), str(p.port))
    server.serve_forever()


class TLSServer(ThreadingHTTPServer):
    """ThreadingHTTPServer whose connections speak TLS. The handshake runs in the connection's own
    thread (not in accept), so a slow or failing client holds up nobody else."""

    HANDSHAKE_TIMEOUT = 30

    def __init__(self, address, handler, context):
        self.tls_context = context
        super().__init__(address, handler)

    def finish_request(self, request, client_address):
        request.settimeout(self.HANDSHAKE_TIMEOUT)
        try:
            conn = self.tls_context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        except OSError as e:
            log.info("TLS from %s:%d: %s", *client_address, e)
            return
        try:
            try:
                conn.do_handshake()
            except (OSError, ssl.SSLError) as e:
                # e.g. a client that does not trust the CA: "tlsv1 alert unknown ca"
                log.info("TLS handshake with %s:%d failed: %s", *client_address, e)
                return
            conn.settimeout(None)
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            # the plain socket `request` was detached by wrap_socket: close the TLS one here
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
            with contextlib.suppress(OSError):
                conn.close()
