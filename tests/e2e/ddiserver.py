"""A hawkBit DDI test server on a real HTTP stack (http.server on 127.0.0.1).

It follows hawkBit's DDI API as specs/hawkbit-ddi.md describes it (link
precedence, status mapping, cancel semantics, 410 after closure, ranges with
206/416) and is strict: every request body is validated against hawkBit's
own OpenAPI document (../shared/fixtures/hawkbit/ddi-openapi.json, with
python3-jsonschema) and every JSON response it sends is validated against
the schema before it goes out, unless a test deliberately overrides it
(bad-input cases).  Requests are recorded for the tests to inspect.

Actions: server.assign(...) creates one (type forced / soft / downloadonly,
optional maintenance window), server.cancel(id) makes it CANCELING."""
import copy
import hashlib
import http.server
import json
import os
import re
import socketserver
import threading
import time

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.environ.get("ABOTA_FIXTURES",
                          os.path.join(os.path.dirname(SRCDIR), "shared", "fixtures"))
OPENAPI = os.path.join(FIXTURES, "hawkbit", "ddi-openapi.json")

SLEEP_RE = re.compile(r"^\d{2}:[0-5]\d:[0-5]\d$")
# hawkBit >= 0.10 sends ISO-8601 once the interval reaches one day (PT24H, P1D...)
ISO_SLEEP_RE = re.compile(r"^P(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?$")


def load_openapi():
    with open(OPENAPI) as f:
        doc = json.load(f)
    # DdiPolling.sleep carries `"pattern": "HH:MM:SS"`, a description rather
    # than a regular expression: taken literally, hawkBit's own responses
    # ("00:05:00") would fail it.  The format is checked with SLEEP_RE instead.
    doc["components"]["schemas"]["DdiPolling"]["properties"]["sleep"].pop("pattern", None)
    return doc


class Schemas:
    """Validators for components.schemas.<Name> of the DDI OpenAPI document."""

    def __init__(self):
        self.doc = load_openapi()
        self._v = {}

    def validator(self, name):
        if name not in self._v:
            schema = {"$ref": f"#/components/schemas/{name}",
                      "components": self.doc["components"]}
            self._v[name] = jsonschema.Draft4Validator(schema)
        return self._v[name]

    def errors(self, name, obj):
        return [f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
                for e in self.validator(name).iter_errors(obj)]

    def check(self, name, obj):
        errs = self.errors(name, obj)
        if errs:
            raise AssertionError(f"{name} violates hawkBit's OpenAPI: {errs}")


SCHEMAS = Schemas()


class Action:
    def __init__(self, aid, artifact, kind="forced", window=None, sm_id=1, name="fw",
                 version="2.0.0", extra_artifacts=(), confirm=False):
        self.id = aid
        self.kind = kind             # forced | soft | downloadonly
        self.window = window         # None | "available" | "unavailable"
        # running | canceling | finished | error | canceled | downloaded | waiting (consent)
        self.status = "waiting" if confirm else "running"
        self.artifact = artifact     # name of the served artifact
        self.extra_artifacts = list(extra_artifacts)
        self.sm_id = sm_id
        self.name = name
        self.version = version
        self.feedback = []           # (resource, body)
        self.deployment_override = None  # raw bytes/obj served instead of the deployment

    @property
    def active(self):
        return self.status in ("running", "canceling", "waiting")


class DDIServer:
    def __init__(self, tenant="DEFAULT", controller="dev1", token="target-secret-123",
                 gateway_token=None, sleep="00:00:01", tls=None):
        """tls: (cert, key, client_ca) -- https, and a client certificate
        whose CN is the controller id authenticates the device (hawkBit's
        reverse-proxy mTLS mode: the proxy checks the chain and passes the
        CN as X-Controller-Id)."""
        self.tenant = tenant
        self.controller = controller
        self.token = token
        self.gateway_token = gateway_token
        self.sleep = sleep
        self.lock = threading.RLock()
        self.actions = {}
        self.next_id = 1
        self.artifacts = {}          # name -> bytes
        self.request_attributes = True
        self.attributes = {}
        self.installed_base = []     # PUT installedBase bodies
        self.distribution_sets = set()  # (name, version) the server knows
        self.requests = []           # dicts: method, path, range, auth, body
        self.violations = []         # schema violations in requests
        self.injections = []         # [regex, method, status, count, body, headers]
        self.rate = None             # artifact bytes/s
        self.cut_after = None        # close the artifact connection after N bytes (once)
        self.extra_body = 0          # send this many bytes more than the artifact
        self.base_override = None    # raw body served for the poll
        self.last_finished = None
        self.etags = True            # ETag / If-None-Match on the poll
        self.stall_poll = 0          # seconds the poll answer hangs mid-body
        # hostile artifact answers (security cases SC-111, SC-113, SC-114, SC-116)
        self.endless_chunked = False  # chunked body without end, no Content-Length
        self.ignore_range = False    # answer a Range request with 200 and the whole file
        self.content_range_shift = 0  # 206 whose Content-Range is off by this much
        self.gone_after_cut = None   # after cut_after fired: this status for the artifact
        self.gone_status = None
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                srv._handle(self, "GET")

            def do_POST(self):
                srv._handle(self, "POST")

            def do_PUT(self):
                srv._handle(self, "PUT")

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.scheme = "http"
        if tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
            ctx.load_verify_locations(tls[2])
            ctx.verify_mode = ssl.CERT_OPTIONAL
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- test API ---------------------------------------------------------
    @property
    def base(self):
        return f"{self.scheme}://{self.host}/{self.tenant}/controller/v1/{self.controller}"

    def add_artifact(self, name, data):
        self.artifacts[name] = data

    def assign(self, artifact, **kw):
        with self.lock:
            a = Action(str(self.next_id), artifact, **kw)
            self.next_id += 1
            self.actions[a.id] = a
            self.distribution_sets.add((a.name, a.version))
            return a

    def cancel(self, aid):
        with self.lock:
            self.actions[aid].status = "canceling"

    def inject(self, pattern, status, count=1, method=None, body=b"", headers=None):
        """The next `count` requests whose path matches get `status`."""
        with self.lock:
            self.injections.append([re.compile(pattern), method, status, count, body,
                                    headers or {}])

    def feedback_of(self, aid, resource="deploymentBase"):
        return [b for r, b in self.actions[aid].feedback if r == resource]

    def requests_to(self, pattern, method=None):
        rx = re.compile(pattern)
        return [r for r in self.requests if rx.search(r["path"]) and
                (method is None or r["method"] == method)]

    # --- request handling -------------------------------------------------
    def _active(self):
        act = [a for a in self.actions.values() if a.active]
        return act[0] if act else None

    def _send(self, h, status, body=b"", ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        h.send_response(status)
        if body or status not in (204, 304):
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if h.command != "HEAD" and body:
            h.wfile.write(body)

    def _json_response(self, h, schema, obj):
        SCHEMAS.check(schema, obj)
        if schema == "DdiControllerBase":
            s = obj.get("config", {}).get("polling", {}).get("sleep")
            assert s is None or SLEEP_RE.match(s) or ISO_SLEEP_RE.match(s), s
        self._send(h, 200, obj, "application/hal+json")

    def _auth_ok(self, h):
        auth = h.headers.get("Authorization")
        if self.token and auth == f"TargetToken {self.token}":
            return True
        if self.gateway_token and auth == f"GatewayToken {self.gateway_token}":
            return True
        if self.scheme == "https":
            cert = h.connection.getpeercert()
            cn = [v for rdn in (cert or {}).get("subject", ()) for k, v in rdn if k == "commonName"]
            if cn == [self.controller]:
                return True
        return False

    def _read_body(self, h):
        n = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(n) if n else b""

    def _validate(self, schema, raw, req):
        try:
            obj = json.loads(raw)
        except ValueError as e:
            self.violations.append(f"{req['method']} {req['path']}: not JSON: {e}")
            return None
        errs = SCHEMAS.errors(schema, obj)
        if errs:
            self.violations.append(f"{req['method']} {req['path']}: {errs}")
            return None
        ctype = req["content_type"] or ""
        if not ctype.startswith("application/json"):
            self.violations.append(f"{req['method']} {req['path']}: content type {ctype!r}")
            return None
        return obj

    def _handle(self, h, method):
        path = h.path.split("?")[0]
        body = self._read_body(h) if method in ("POST", "PUT") else b""
        req = dict(method=method, path=path, query=h.path[len(path):],
                   range=h.headers.get("Range"), auth=h.headers.get("Authorization"),
                   content_type=h.headers.get("Content-Type"), body=body, time=time.time())
        with self.lock:
            self.requests.append(req)
            for inj in self.injections:
                rx, m, status, count, ibody, hdrs = inj
                if count > 0 and rx.search(path) and (m is None or m == method):
                    inj[3] -= 1
                    self._send(h, status, ibody, headers=hdrs)
                    return
        prefix = f"/{self.tenant}/controller/v1/{self.controller}"
        if not path.startswith(prefix):
            return self._send(h, 404)
        if not self._auth_ok(h):
            return self._send(h, 401)
        rest = path[len(prefix):]
        m = re.fullmatch(r"/softwaremodules/(\d+)/artifacts/([^/]+)", rest)
        if m and method == "GET":
            # streamed without the lock: polls go on during a slow download
            return self._artifact(h, m.group(2))
        if rest == "" and method == "GET" and self.stall_poll:
            # headers and a few bytes, then nothing: a body that never ends
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", "100000")
            h.end_headers()
            h.wfile.write(b'{"config":')
            h.wfile.flush()
            time.sleep(self.stall_poll)
            h.close_connection = True
            return
        with self.lock:
            try:
                return self._route(h, method, rest, body, req)
            except AssertionError:
                self._send(h, 500, {"message": "server-side schema failure"})
                raise

    def _route(self, h, method, rest, body, req):
        base = self.base
        if rest == "" and method == "GET":
            if self.base_override is not None:
                return self._send(h, 200, self.base_override)
            links = {}
            a = self._active()
            if a and a.status == "canceling":
                links["cancelAction"] = {"href": f"{base}/cancelAction/{a.id}"}
            elif a and a.status == "waiting":
                links["confirmationBase"] = {"href": f"{base}/confirmationBase/{a.id}?c=7"}
            elif a:
                links["deploymentBase"] = {"href": f"{base}/deploymentBase/{a.id}?c=-2127183556"}
            if self.request_attributes:
                links["configData"] = {"href": f"{base}/configData"}
            if self.last_finished:
                links["installedBase"] = {"href": f"{base}/installedBase/{self.last_finished}"}
            obj = {"config": {"polling": {"sleep": self.sleep}}}
            if links:
                obj["_links"] = links
            SCHEMAS.check("DdiControllerBase", obj)
            # hawkBit's shallow ETag: 304 when the answer did not change
            etag = '"' + hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest() + '"'
            if self.etags and h.headers.get("If-None-Match") == etag:
                req["status"] = 304
                return self._send(h, 304, headers={"ETag": etag})
            return self._send(h, 200, obj, "application/hal+json",
                              headers={"ETag": etag} if self.etags else None)
        m = re.fullmatch(r"/deploymentBase/(\d+)", rest)
        if m and method == "GET":
            a = self.actions.get(m.group(1))
            if not a or a.status != "running":
                return self._send(h, 404)
            if a.deployment_override is not None:
                return self._send(h, 200, a.deployment_override)
            return self._json_response(h, "DdiDeploymentBase", self.deployment(a))
        m = re.fullmatch(r"/deploymentBase/(\d+)/feedback", rest)
        if m and method == "POST":
            obj = self._validate("DdiActionFeedback", body, req)
            if obj is None:
                return self._send(h, 400)
            a = self.actions.get(m.group(1))
            if not a:
                return self._send(h, 404)
            if not a.active and not (a.kind == "downloadonly" and a.status == "downloaded"):
                return self._send(h, 410)
            a.feedback.append(("deploymentBase", obj))
            st = obj["status"]
            if st["execution"] == "closed":
                if st["result"]["finished"] == "failure":
                    a.status = "error"
                else:
                    a.status = "finished"
                    self.last_finished = a.id
            elif st["execution"] == "downloaded" and a.kind == "downloadonly":
                a.status = "downloaded"
            elif st["execution"] == "canceled":
                a.status = "canceled"
            return self._send(h, 200)
        m = re.fullmatch(r"/confirmationBase/(\d+)", rest)
        if m and method == "GET":
            a = self.actions.get(m.group(1))
            if not a or a.status != "waiting":
                return self._send(h, 404)
            d = self.deployment(a)
            return self._json_response(h, "DdiConfirmationBaseAction",
                                       {"id": a.id, "confirmation": d["deployment"]})
        m = re.fullmatch(r"/confirmationBase/(\d+)/feedback", rest)
        if m and method == "POST":
            obj = self._validate("DdiConfirmationFeedback", body, req)
            if obj is None:
                return self._send(h, 400)
            a = self.actions.get(m.group(1))
            if not a:
                return self._send(h, 404)
            if not a.active:
                return self._send(h, 410)
            if a.status != "waiting":
                return self._send(h, 404)
            a.feedback.append(("confirmationBase", obj))
            if obj["confirmation"] == "confirmed":
                a.status = "running"
            return self._send(h, 200)
        m = re.fullmatch(r"/cancelAction/(\d+)", rest)
        if m and method == "GET":
            a = self.actions.get(m.group(1))
            if not a or a.status != "canceling":
                return self._send(h, 404)
            return self._json_response(h, "DdiCancel",
                                       {"id": a.id, "cancelAction": {"stopId": a.id}})
        m = re.fullmatch(r"/cancelAction/(\d+)/feedback", rest)
        if m and method == "POST":
            obj = self._validate("DdiActionFeedback", body, req)
            if obj is None:
                return self._send(h, 400)
            a = self.actions.get(m.group(1))
            if not a:
                return self._send(h, 404)
            if a.status != "canceling":
                return self._send(h, 405)
            a.feedback.append(("cancelAction", obj))
            st = obj["status"]
            if st["execution"] == "closed" and st["result"]["finished"] in ("success", "none"):
                a.status = "canceled"
            elif st["execution"] == "rejected":
                a.status = "running"
            elif st["execution"] == "closed":
                a.status = "running"
            return self._send(h, 200)
        if rest == "/configData" and method == "PUT":
            obj = self._validate("DdiConfigData", body, req)
            if obj is None:
                return self._send(h, 400)
            if any(len(k) > 128 or len(v) > 128 for k, v in obj["data"].items()):
                return self._send(h, 400)
            self.attributes.update(obj["data"])
            self.request_attributes = False
            return self._send(h, 200)
        if rest == "/installedBase" and method == "PUT":
            obj = self._validate("DdiAssignedVersion", body, req)
            if obj is None:
                return self._send(h, 400)
            self.installed_base.append(obj)
            if (obj["name"], obj["version"]) not in self.distribution_sets:
                return self._send(h, 404)
            return self._send(h, 200)
        return self._send(h, 405 if rest in ("", "/configData") else 404)

    def deployment(self, a):
        base = self.base
        arts = []
        for name in [a.artifact] + a.extra_artifacts:
            data = self.artifacts[name]
            url = f"{base}/softwaremodules/{a.sm_id}/artifacts/{name}"
            arts.append({
                "filename": name,
                "hashes": {"sha1": hashlib.sha1(data).hexdigest(),
                           "md5": hashlib.md5(data).hexdigest(),
                           "sha256": hashlib.sha256(data).hexdigest()},
                "size": len(data),
                "_links": {"download": {"href": url}, "download-http": {"href": url},
                           "md5sum": {"href": url + ".MD5SUM"},
                           "md5sum-http": {"href": url + ".MD5SUM"}}})
        if a.kind == "downloadonly":
            download, update = "forced", "skip"
        else:
            download = update = "forced" if a.kind == "forced" else "attempt"
        if a.window == "unavailable":
            update = "skip"
        dep = {"download": download, "update": update,
               "chunks": [{"part": "os", "version": a.version, "name": a.name,
                           "artifacts": arts}]}
        if a.window:
            dep["maintenanceWindow"] = a.window
        return {"id": a.id, "deployment": dep}

    def _endless_chunked(self, h):
        """200 with Transfer-Encoding: chunked and chunks until the client
        gives up (or 256 MiB, so a broken client cannot hang the test)."""
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        piece = b"Z" * 65536
        self.endless_sent = 0
        try:
            for _ in range(4096):
                h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.endless_sent += len(piece)
            h.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        h.close_connection = True

    def _artifact(self, h, name):
        data = self.artifacts.get(name)
        if data is None:
            return self._send(h, 404)
        if self.gone_status:
            return self._send(h, self.gone_status)
        if self.endless_chunked:
            return self._endless_chunked(h)
        total = len(data)
        etag = '"' + hashlib.sha1(data).hexdigest() + '"'
        rng = h.headers.get("Range")
        start, end, status = 0, total - 1, 200
        if rng and not self.ignore_range:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not m or (m.group(1) == "" and m.group(2) == ""):
                return self._send(h, 416, headers={"Content-Range": f"bytes */{total}"})
            if m.group(1) == "":
                start = max(0, total - int(m.group(2)))
            else:
                start = int(m.group(1))
                if m.group(2):
                    end = min(int(m.group(2)), total - 1)
            if start >= total or start > end:
                return self._send(h, 416, headers={"Content-Range": f"bytes */{total}"})
            status = 206
        body = data[start:end + 1]
        h.send_response(status)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("ETag", etag)
        h.send_header("Content-Length", str(len(body) + self.extra_body))
        if status == 206:
            s = start + self.content_range_shift
            h.send_header("Content-Range", f"bytes {s}-{end}/{total}")
        h.end_headers()
        chunk = 16384
        if self.rate and self.rate < chunk:
            # a drip: a few bytes every 0.1 s rather than a burst and a long pause
            chunk = max(1, int(self.rate / 10))
        sent = 0
        with self.lock:
            cut = self.cut_after
            if cut is not None:
                self.cut_after = None
        for off in range(0, len(body), chunk):
            piece = body[off:off + chunk]
            if cut is not None and sent + len(piece) > cut:
                piece = piece[:max(0, cut - sent)]
                h.wfile.write(piece)
                h.wfile.flush()
                h.close_connection = True
                if self.gone_after_cut:
                    self.gone_status = self.gone_after_cut
                return
            try:
                h.wfile.write(piece)
            except (BrokenPipeError, ConnectionResetError):
                return
            sent += len(piece)
            if self.rate:
                time.sleep(len(piece) / self.rate)
        if self.extra_body:
            try:
                h.wfile.write(b"X" * self.extra_body)
            except (BrokenPipeError, ConnectionResetError):
                pass
