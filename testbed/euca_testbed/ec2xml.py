"""EC2 query-protocol XML: error documents, and rewriting moto's responses into Eucalyptus's.

Responses are parsed with ElementTree and written back with the document's own default namespace,
so clients see the same element names moto sent, minus moto's addresses.
"""

import re
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"

STATE_CODES = {
    "pending": 0,
    "running": 16,
    "shutting-down": 32,
    "terminated": 48,
    "stopping": 64,
    "stopped": 80,
}


def request_id():
    return str(uuid.uuid4())


def error(code, message, rid=None):
    """An EC2 error document (what the AWS SDKs parse for `ec2` query errors)."""
    rid = rid or request_id()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"</Error></Errors><RequestID>{rid}</RequestID></Response>"
    ).encode()


class Doc:
    """A parsed response whose element names are handled without their namespace."""

    def __init__(self, body):
        self.root = ET.fromstring(body)
        m = re.match(r"\{([^}]*)\}", self.root.tag)
        self.ns = m.group(1) if m else ""

    def q(self, name):
        return f"{{{self.ns}}}{name}" if self.ns else name

    def child(self, el, name):
        return el.find(self.q(name))

    def text(self, el, name):
        c = el.find(self.q(name))
        return c.text if c is not None else None

    def set_text(self, el, name, value):
        """Set (or create, or with None remove) the child `name` of `el`."""
        c = el.find(self.q(name))
        if value is None:
            if c is not None:
                el.remove(c)
            return
        if c is None:
            c = ET.SubElement(el, self.q(name))
        c.text = value

    def remove(self, el, name):
        for c in el.findall(self.q(name)):
            el.remove(c)

    def iter(self, name, el=None):
        return (el if el is not None else self.root).iter(self.q(name))

    def local(self, el):
        return el.tag.rsplit("}", 1)[-1]

    def serialize(self):
        if self.ns:
            body = ET.tostring(self.root, encoding="unicode", default_namespace=self.ns)
        else:
            body = ET.tostring(self.root, encoding="unicode")
        return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()

    def instance_items(self):
        """Every `item` that describes an instance (has instanceId and state or addresses)."""
        out = []
        for item in self.iter("item"):
            if self.child(item, "instanceId") is None:
                continue
            if any(self.child(item, n) is not None for n in ("instanceState", "privateIpAddress", "imageId")):
                out.append(item)
        return out


def set_state(doc, item, name, tag="instanceState"):
    st = doc.child(item, tag)
    if st is None:
        return
    doc.set_text(st, "code", str(STATE_CODES.get(name, 0)))
    doc.set_text(st, "name", name)


def set_not_applicable(doc, item, tag):
    """A status item's `instanceStatus`/`systemStatus` as EC2 shows it for an instance not running."""
    st = doc.child(item, tag)
    if st is None:
        return
    for c in list(st):
        st.remove(c)
    doc.set_text(st, "status", "not-applicable")


def run_instances_answer(describe_body, reservation_id, rid):
    """A RunInstancesResponse for one reservation of a DescribeInstances answer (a replayed launch)."""
    src = Doc(describe_body)
    root = ET.Element(src.q("RunInstancesResponse"))
    ET.SubElement(root, src.q("requestId")).text = rid
    for rset in src.iter("reservationSet"):
        for res in rset.findall(src.q("item")):
            if src.text(res, "reservationId") == reservation_id:
                for c in res:
                    root.append(c)
                break
    if src.ns:
        return ET.tostring(root, encoding="unicode", default_namespace=src.ns).encode()
    return ET.tostring(root, encoding="unicode").encode()


_MOTO_PUBLIC = re.compile(rb"\b54\.214\.\d{1,3}\.\d{1,3}\b")
_MOTO_PUBLIC_DNS = re.compile(rb"(?:ec2|ip)-54-214-\d{1,3}-\d{1,3}[A-Za-z0-9.\-]*")


def sanitize(body):
    """Last line of defence: no address of moto's public range leaves the personality."""
    body = _MOTO_PUBLIC_DNS.sub(b"", body)
    return _MOTO_PUBLIC.sub(b"0.0.0.0", body)


def dns_name(ip):
    if not ip:
        return ""
    return "euca-" + ip.replace(".", "-") + ".eucalyptus.internal"
