"""AWS Signature Version 4 verification, as an EC2 endpoint does it.

moto checks no signature at all, so the personality verifies every request itself: the canonical
request is rebuilt from what arrived (method, path as sent, query, the signed headers, the payload
hash), the signing key is derived from the user's secret and the scope the client chose, and the
signatures are compared in constant time.
"""

import datetime
import hashlib
import hmac
import posixpath
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = datetime.timedelta(minutes=15)
UNKNOWN_KEY = "AWS was not able to validate the provided access credentials"


class AuthError(Exception):
    """A request the endpoint refuses to attribute to a user; code/message go into EC2 error XML."""

    def __init__(self, message, code="AuthFailure", status=401):
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


@dataclass
class Authorization:
    access_key: str
    date: str
    region: str
    service: str
    signed_headers: list
    signature: str

    @property
    def scope(self):
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+"
    r"Credential=(?P<ak>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)/aws4_request\s*,\s*"
    r"SignedHeaders=(?P<headers>[a-z0-9\-;]+)\s*,\s*"
    r"Signature=(?P<sig>[0-9a-f]{64})\s*$"
)


def parse_authorization(value):
    """Parse an `Authorization: AWS4-HMAC-SHA256 ...` header; None when it is no SigV4 header."""
    if not value:
        return None
    m = _AUTH_RE.match(value.strip())
    if not m:
        return None
    return Authorization(
        access_key=m["ak"],
        date=m["date"],
        region=m["region"],
        service=m["service"],
        signed_headers=m["headers"].split(";"),
        signature=m["sig"],
    )


def rescope(value, region):
    """The same Authorization header with the credential scope's region replaced (for moto)."""
    return re.sub(r"(Credential=[^/]+/\d{8}/)[^/]+/", lambda m: m.group(1) + region + "/", value, count=1)


def _uri_encode(s, safe=""):
    return quote(s, safe=safe + "~")


def canonical_uri(raw_path):
    # EC2 (every service but S3): normalise dot segments, then encode the path as it was sent
    # once more, so an escaped character is encoded twice.
    path = raw_path or "/"
    trailing = path.endswith("/")
    norm = posixpath.normpath(path) if path not in ("", "/") else "/"
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    if trailing and not norm.endswith("/"):
        norm += "/"
    return _uri_encode(norm, safe="/")


def canonical_query(raw_query):
    pairs = []
    for part in (raw_query or "").split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        pairs.append((_uri_encode(unquote(k)), _uri_encode(unquote(v))))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def _canonical_header_value(values):
    return ",".join(re.sub(r"\s+", " ", v.strip()) for v in values)


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret, date, region, service):
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def verify(method, raw_path, raw_query, headers, body, secret_for, *, regions=("eucalyptus",), services=("ec2",), now=None):
    """Check a request's SigV4 signature. Returns the parsed Authorization on success.

    headers: object with get_all(name) (email.message.Message, as http.server gives);
    secret_for: access key -> secret or None.
    """
    auth_value = headers.get("Authorization")
    auth = parse_authorization(auth_value)
    if auth is None:
        if auth_value:
            raise AuthError(UNKNOWN_KEY)
        raise AuthError("Request is missing Authentication Token", code="MissingAuthenticationToken")
    secret = secret_for(auth.access_key)
    if secret is None:
        raise AuthError(UNKNOWN_KEY)
    if auth.region not in regions:
        raise AuthError(f"Credential should be scoped to a valid region, not '{auth.region}'. ")
    if auth.service not in services:
        raise AuthError(f"Credential should be scoped to correct service: '{services[0]}'. ")
    if "host" not in auth.signed_headers:
        raise AuthError("'Host' must be a 'SignedHeader' in the AWS Authorization.")

    amz_date = headers.get("X-Amz-Date")
    if not amz_date:
        raise AuthError("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        raise AuthError(f"Invalid X-Amz-Date: {amz_date}")
    if not amz_date.startswith(auth.date):
        raise AuthError("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if abs(now - when) > MAX_SKEW:
        raise AuthError(f"Request has expired. Timestamp date is {amz_date}", code="RequestExpired", status=400)

    lines = []
    for name in auth.signed_headers:
        values = headers.get_all(name)
        if values is None:
            raise AuthError(f"The request is missing the signed header '{name}'.")
        lines.append(f"{name}:{_canonical_header_value(values)}\n")

    payload_hash = hashlib.sha256(body or b"").hexdigest()
    claimed = headers.get("X-Amz-Content-Sha256")
    if claimed == "UNSIGNED-PAYLOAD":
        payload_hash = claimed
    elif claimed and claimed != payload_hash:
        raise AuthError("The provided 'x-amz-content-sha256' header does not match what was computed.")

    key = signing_key(secret, auth.date, auth.region, auth.service)
    # Signers differ on whether `//` and dot segments are normalised away: accept either form.
    uris = dict.fromkeys([canonical_uri(raw_path), _uri_encode(raw_path or "/", safe="/")])
    for uri in uris:
        canonical_request = "\n".join(
            [method, uri, canonical_query(raw_query), "".join(lines), ";".join(auth.signed_headers), payload_hash]
        )
        string_to_sign = "\n".join(
            [ALGORITHM, amz_date, auth.scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
        )
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, auth.signature):
            return auth
    raise AuthError(UNKNOWN_KEY)
