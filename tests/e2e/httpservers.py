"""HTTP servers for the streaming tests, all on 127.0.0.1: the real nginx
(range support), and small fault-injecting proxies in front of it (drop the
connection mid-transfer, flip a byte) plus a server without range support."""
import http.server
import os
import socket
import socketserver
import subprocess
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Nginx:
    """nginx serving ROOT on 127.0.0.1:PORT, as the unprivileged config of a
    test: its own prefix, logs and pid file, no daemon."""

    def __init__(self, base, root, tls=None, client_ca=None, extra=""):
        """tls: (cert, key) to serve https; client_ca: require client
        certificates signed by it; extra: more directives for the server
        block."""
        self.base = base
        self.root = root
        self.port = free_port()
        self.scheme = "https" if tls else "http"
        listen = f"listen 127.0.0.1:{self.port}" + (" ssl" if tls else "") + ";"
        if tls:
            listen += f"\n        ssl_certificate {tls[0]};\n        ssl_certificate_key {tls[1]};"
        if client_ca:
            listen += (f"\n        ssl_client_certificate {client_ca};"
                       "\n        ssl_verify_client on;")
        listen += "\n        " + extra
        os.makedirs(os.path.join(base, "tmp"), exist_ok=True)
        self.access_log = os.path.join(base, "access.log")
        conf = os.path.join(base, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""daemon off;
master_process off;
worker_processes 1;
pid {base}/nginx.pid;
error_log {base}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {self.access_log};
    client_body_temp_path {base}/tmp/body;
    proxy_temp_path {base}/tmp/proxy;
    fastcgi_temp_path {base}/tmp/fastcgi;
    uwsgi_temp_path {base}/tmp/uwsgi;
    scgi_temp_path {base}/tmp/scgi;
    default_type application/octet-stream;
    server {{
        {listen}
        root {root};
    }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", base],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("nginx did not start: " + self.proc.stderr.read().decode())

    def url(self, name):
        return f"{self.scheme}://127.0.0.1:{self.port}/{name}"

    def requests(self):
        with open(self.access_log) as f:
            return [l for l in f if l.strip()]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class FaultProxy:
    """Forwards one request per connection to nginx (Connection: close).
    drop_after: cut every response after this many body bytes (a dropped
    connection mid-transfer).  flip_at: flip the bit of this absolute file
    offset in any 206 response that covers it."""

    def __init__(self, upstream_port, drop_after=None, flip_at=None, drop_every=1):
        self.upstream = upstream_port
        self.drop_after = drop_after
        self.flip_at = flip_at
        self.drop_every = drop_every
        self.count = 0
        self.heads = []  # request heads as received, in arrival order
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/{name}"

    def _serve(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(c,), daemon=True).start()

    def _handle(self, c):
        try:
            req = b""
            while b"\r\n\r\n" not in req:
                d = c.recv(65536)
                if not d:
                    return
                req += d
            head, _, _ = req.partition(b"\r\n\r\n")
            with self.lock:
                self.heads.append(head.decode("latin-1"))
            lines = [l for l in head.split(b"\r\n") if not l.lower().startswith(b"connection:")]
            lines.append(b"Connection: close")
            u = socket.create_connection(("127.0.0.1", self.upstream))
            u.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
            resp = b""
            while b"\r\n\r\n" not in resp:
                d = u.recv(65536)
                if not d:
                    break
                resp += d
            rhead, _, body = resp.partition(b"\r\n\r\n")
            start = None
            for l in rhead.split(b"\r\n"):
                if l.lower().startswith(b"content-range:"):
                    start = int(l.split(b" ")[2].split(b"-")[0])
            with self.lock:
                self.count += 1
                n = self.count
            limit = self.drop_after if (self.drop_after and n % self.drop_every == 0) else None
            c.sendall(rhead + b"\r\n\r\n")
            sent = 0
            while True:
                if body:
                    if self.flip_at is not None and start is not None and \
                            start + sent <= self.flip_at < start + sent + len(body):
                        b = bytearray(body)
                        b[self.flip_at - start - sent] ^= 0x01
                        body = bytes(b)
                    if limit is not None and sent + len(body) > limit:
                        c.sendall(body[:limit - sent])
                        return  # drop the connection mid-transfer
                    c.sendall(body)
                    sent += len(body)
                body = u.recv(65536)
                if not body:
                    break
            u.close()
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.stopped = True
        self.sock.close()


class NoRangeServer:
    """Python's http.server: answers range requests with 200 and the whole file."""

    def __init__(self, root):
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=root, **kw)

            def log_message(self, *args):
                pass
        handler = Quiet
        socketserver.TCPServer.allow_reuse_address = True
        self.httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/{name}"

    def stop(self):
        self.httpd.shutdown()
