"""The private CA of the personality's HTTPS port, as a private Eucalyptus cloud runs its endpoints.

`up` makes, with the `openssl` command (no Python dependency), under `STATE_ROOT/tls/`:
- `ca.pem` / `ca-key.pem`: a self-signed CA (EC P-256, 10 years) — `EUCA_TESTBED_CA`;
- `server.pem` / `server-key.pem`: the personality's certificate, signed by that CA, for
  `127.0.0.1` (IP SAN) and `localhost` (DNS SAN), serverAuth;
- `other-ca.pem` / `other-ca-key.pem`: a second CA that signed nothing the testbed serves —
  `EUCA_TESTBED_OTHER_CA`, for "a bundle of another CA is refused".
Keys are 0600 (the directory 0700); `down` removes them with the state root.
"""

import os
import secrets
import ssl
import subprocess
import tempfile

CA_DAYS = 3650
SERVER_DAYS = 825

_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


class TlsError(Exception):
    pass


def _openssl(*args):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise TlsError(f"openssl {args[0]} failed: {(r.stderr or r.stdout).strip()}")


def _new_key(path):
    # made with umask 077: the key is 0600 from its first byte
    old = os.umask(0o077)
    try:
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)


def _ca(cfg, d, name, cn):
    key, cert = os.path.join(d, f"{name}-key.pem"), os.path.join(d, f"{name}.pem")
    _new_key(key)
    _openssl("req", "-config", cfg, "-new", "-x509", "-key", key, "-out", cert, "-days", str(CA_DAYS),
             "-subj", f"/O=docker-euca testbed/CN={cn}", "-extensions", "ca", "-sha256",
             "-set_serial", "0x" + secrets.token_hex(16))
    os.chmod(cert, 0o644)
    return cert, key


def make(state_root):
    """Make both CAs and the server certificate; returns their paths (for state.json)."""
    d = os.path.join(state_root, "tls")
    os.makedirs(d, mode=0o700, exist_ok=True)
    os.chmod(d, 0o700)
    with tempfile.TemporaryDirectory(prefix="tls-", dir=d) as tmp:
        cfg = os.path.join(tmp, "openssl.cnf")
        with open(cfg, "w") as f:
            f.write(_CONFIG)
        ca, ca_key = _ca(cfg, d, "ca", "docker-euca testbed CA")
        other, other_key = _ca(cfg, d, "other-ca", "docker-euca testbed other CA (signs nothing served)")
        key, cert = os.path.join(d, "server-key.pem"), os.path.join(d, "server.pem")
        _new_key(key)
        csr = os.path.join(tmp, "server.csr")
        _openssl("req", "-config", cfg, "-new", "-key", key, "-out", csr, "-subj", "/O=docker-euca testbed/CN=127.0.0.1")
        _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-out", cert, "-days", str(SERVER_DAYS),
                 "-sha256", "-set_serial", "0x" + secrets.token_hex(16), "-extfile", cfg, "-extensions", "server")
        os.chmod(cert, 0o644)
    # the certificate must verify against its CA (and not against the other one) before anything serves it
    _openssl("verify", "-CAfile", ca, "-purpose", "sslserver", cert)
    return {"dir": d, "ca": ca, "ca_key": ca_key, "other_ca": other, "other_ca_key": other_key,
            "cert": cert, "key": key}


def server_context(tls):
    """The SSL context of the personality's HTTPS port (TLS 1.2+, HTTP/1.1)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(tls["cert"], tls["key"])
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
