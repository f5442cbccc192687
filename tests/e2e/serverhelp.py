"""abota-server for the end-to-end tests: start/stop on a free loopback port,
a small HTTP client (http.client, no third-party modules), and validation of
responses against hawkBit's OpenAPI documents (python3-jsonschema)."""
import base64
import http.client
import json
import os
import re
import signal
import subprocess
import time
import urllib.parse
import uuid

import jsonschema

from conftest import BUILD, FIXTURES, SRCDIR

SERVER = os.path.join(BUILD, "src", "abota-server", "abota-server")
ADMIN = ("admin", "test-password-1")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class Server:
    """One abota-server process with its own data directory."""

    def __init__(self, data, keyring=None, extra=(), admin=ADMIN):
        self.data = str(data)
        self.keyring = keyring
        self.extra = list(extra)
        self.admin = admin
        self.violations = []
        self.proc = None
        self.url = None
        self.port = None
        self.log = os.path.join(self.data + ".log")
        self.start()

    def start(self, listen=None):
        args = [SERVER, "--data", self.data,
                "--listen", listen or f"127.0.0.1:{self.port or 0}"]
        if self.keyring:
            args += ["--keyring", self.keyring]
        if self.admin:
            args += ["--admin-user", self.admin[0], "--admin-password", self.admin[1]]
        args += self.extra
        self.logf = open(self.log, "a")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.logf, text=True)
        self.banner = []
        deadline = time.time() + 20
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.banner.append(line)
            m = re.search(r"listening on (http\S*)/", line)
            if m:
                self.url = m.group(1)
                self.port = int(self.url.rsplit(":", 1)[1])
                return
        self.proc.kill()
        raise AssertionError(f"abota-server did not start: {self.banner} "
                             f"{open(self.log).read()[-2000:]}")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else 0
        if self.proc:
            self.proc.stdout.close()
            self.logf.close()
        self.proc = None
        assert not self.violations, "\n".join(self.violations)
        # sanitizer reports (ASan pass) fail the test that ran the server
        log = self.stderr()
        assert "AddressSanitizer" not in log and "runtime error" not in log and \
            "LeakSanitizer" not in log, log[-4000:]
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self):
        return open(self.log).read()

    # ---- HTTP ----
    def request(self, method, path, body=None, headers=None, auth=None, timeout=30):
        h = dict(headers or {})
        if auth == "admin":
            auth = self.admin
        if isinstance(auth, tuple):
            h["Authorization"] = "Basic " + base64.b64encode(
                f"{auth[0]}:{auth[1]}".encode()).decode()
        elif isinstance(auth, str):
            h["Authorization"] = auth
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            resp = Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()
        # every response on a hawkBit path is checked against hawkBit's documents
        p = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
        doc = contract("mgmt-openapi.json") if p.startswith("/rest/v1/") else \
            contract("ddi-openapi.json") if "/controller/v1/" in p else None
        if doc and method != "HEAD":
            v = doc.check(method, p, resp)
            if v:
                self.violations.append(v)
        return resp

    def mgmt(self, method, path, body=None, **kw):
        return self.request(method, "/rest/v1" + path, body, auth="admin", **kw)

    def ddi(self, method, cid, path="", body=None, token=None, **kw):
        auth = f"TargetToken {token}" if token else None
        return self.request(method, f"/DEFAULT/controller/v1/{cid}{path}", body, auth=auth, **kw)

    def upload(self, sm_id, name, data, query=""):
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
        return self.request("POST", f"/rest/v1/softwaremodules/{sm_id}/artifacts{query}", body,
                            headers={"Content-Type":
                                     f"multipart/form-data; boundary={boundary}"},
                            auth="admin")

    # ---- common setups ----
    def create_target(self, cid, token=None):
        body = {"controllerId": cid, "name": cid}
        if token:
            body["securityToken"] = token
        r = self.mgmt("POST", "/targets", [body])
        assert r.status == 201, r
        return r.json()[0]["securityToken"]

    def publish(self, bundle_path, name="fw", version="1.0", filename="update.raucb",
                sm_type="os"):
        r = self.mgmt("POST", "/softwaremodules",
                      [{"name": name, "version": version, "type": sm_type}])
        assert r.status == 201, r
        sm = r.json()[0]["id"]
        with open(bundle_path, "rb") as f:
            r = self.upload(sm, filename, f.read())
        assert r.status == 201, r
        r = self.mgmt("POST", "/distributionsets",
                      [{"name": name, "version": version, "type": "os", "modules": [{"id": sm}]}])
        assert r.status == 201, r
        return sm, r.json()[0]["id"]

    def assign(self, ds, cid, typ="forced"):
        r = self.mgmt("POST", f"/distributionsets/{ds}/assignedTargets", [{"id": cid, "type": typ}])
        assert r.status == 200, r
        return r.json()["assignedActions"][-1]["id"]


class Contract:
    """Validates response bodies against an OpenAPI 3.0 document."""

    def __init__(self, name):
        with open(os.path.join(FIXTURES, "hawkbit", name)) as f:
            self.doc = json.load(f)
        # hawkBit documents the polling interval with "pattern": "HH:MM:SS",
        # a notation rather than a regular expression (no real value matches
        # it as a regex); check the notation it means.
        def fix(node):
            if isinstance(node, dict):
                if node.get("pattern") == "HH:MM:SS":
                    node["pattern"] = r"^[0-9]{2}:[0-5][0-9]:[0-5][0-9]$"
                for v in node.values():
                    fix(v)
            elif isinstance(node, list):
                for v in node:
                    fix(v)
        fix(self.doc)
        # A configuration value is a Java Object in hawkBit (string, boolean or
        # number on the wire), documented as "type": "object"; hawkBit's own
        # answers ("value": "00:05:00") do not match that either.
        v = self.doc["components"]["schemas"].get("MgmtSystemTenantConfigurationValue")
        if v:
            v["properties"]["value"].pop("type", None)
            v["properties"]["value"]["type"] = ["string", "boolean", "number"]
        self.checked = set()

    def match(self, path):
        """The document's path template for a concrete path, or None."""
        if not hasattr(self, "_templates"):
            self._templates = []
            for t in self.doc["paths"]:
                rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(t)) + "$"
                # literal characters first: ".../{fileName}.MD5SUM" before ".../{fileName}"
                self._templates.append((-len(re.sub(r"\{[^}]+\}", "", t)), t, re.compile(rx)))
            self._templates.sort()
        for _, t, rx in self._templates:
            if rx.match(path):
                return t
        return None

    def check(self, method, path, r):
        """Any response on a documented path: a documented status must carry the
        documented body; any other error status an empty body or an
        ExceptionInfo.  Returns a violation message or None."""
        t = self.match(path)
        if t is None:
            return None
        op = self.doc["paths"][t].get(method.lower())
        try:
            if op and str(r.status) in op["responses"]:
                self.validate(t, method, r)
            elif r.status >= 400 and r.body:
                resolver = jsonschema.RefResolver("", self.doc)
                jsonschema.validate(json.loads(r.body),
                                    {"$ref": "#/components/schemas/ExceptionInfo"},
                                    resolver=resolver, cls=jsonschema.Draft7Validator)
        except (jsonschema.ValidationError, ValueError, AssertionError) as e:
            return f"{method} {path} -> {r.status}: {str(e)[:500]}"
        return None

    def schema_for(self, path, method, status):
        op = self.doc["paths"][path][method.lower()]
        resp = op["responses"].get(str(status))
        assert resp is not None, f"{method} {path}: status {status} not documented"
        content = resp.get("content") or {}
        for ct in ("application/hal+json", "application/json", "application/cbor"):
            if ct in content and "schema" in content[ct]:
                return content[ct]["schema"]
        return None

    def validate(self, path, method, r):
        """r: Response.  The status must be documented for the path; a body
        must match the documented schema."""
        schema = self.schema_for(path, method, r.status)
        self.checked.add((method.upper(), path, r.status))
        if schema is None or not r.body:
            return
        resolver = jsonschema.RefResolver("", self.doc)
        jsonschema.validate(json.loads(r.body), schema, resolver=resolver,
                            cls=jsonschema.Draft7Validator)
        return json.loads(r.body)


_contracts = {}


def contract(name):
    if name not in _contracts:
        _contracts[name] = Contract(name)
    return _contracts[name]
