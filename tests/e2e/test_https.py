"""HTTPS for URL bundles (issue #6): server verification on by default,
--tls-ca, --tls-no-verify, client certificates, extra headers (hawkBit's
Authorization: TargetToken) -- for info, extract and install, against nginx
with TLS on 127.0.0.1."""
import os
import subprocess

import pytest

from conftest import abota, abota_fails, make_content
from httpservers import Nginx
from test_install import Device


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""
    d = tmp_path_factory.mktemp("tls")
    p = {k: str(d / k) for k in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem",
                                 "cli.key", "cli.csr", "cli.pem", "ext")}
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", p["ca.key"], "-out", p["ca.pem"], "-days", "30",
            "-subj", "/CN=test CA")
    open(p["ext"], "w").write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    for who, ext in (("srv", p["ext"]), ("cli", None)):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", p[f"{who}.key"], "-out", p[f"{who}.csr"], "-subj", f"/CN={who}")
        args = ["x509", "-req", "-in", p[f"{who}.csr"], "-CA", p["ca.pem"], "-CAkey",
                p["ca.key"], "-CAcreateserial", "-out", p[f"{who}.pem"], "-days", "30"]
        if ext:
            args += ["-extfile", ext]
        openssl(*args)
    return p


@pytest.fixture(scope="module")
def www(pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("www")
    content = make_content(str(d / "content"), version="2.0", rootfs_kib=8192)
    abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content, d / "b.raucb")
    return d


@pytest.fixture(scope="module")
def servers(tls, www, tmp_path_factory):
    d = tmp_path_factory.mktemp("nginx")
    plain = Nginx(str(d / "tls"), str(www), tls=(tls["srv.pem"], tls["srv.key"]))
    mtls = Nginx(str(d / "mtls"), str(www), tls=(tls["srv.pem"], tls["srv.key"]),
                 client_ca=tls["ca.pem"])
    token = Nginx(str(d / "token"), str(www), tls=(tls["srv.pem"], tls["srv.key"]),
                  extra='if ($http_authorization != "TargetToken s3cret") { return 401; }')
    yield {"tls": plain, "mtls": mtls, "token": token}
    for n in (plain, mtls, token):
        n.stop()


def test_info_https_with_ca(servers, tls, pki):
    p = abota("--keyring", pki.keyring, "info", "--tls-ca", tls["ca.pem"],
              servers["tls"].url("b.raucb"))
    assert "abota-test" in p.stdout and "2.0" in p.stdout, p.stdout


def test_server_verified_by_default(servers, pki):
    p = abota_fails("--keyring", pki.keyring, "info", servers["tls"].url("b.raucb"))
    assert "certificate" in p.stderr.lower() or "ssl" in p.stderr.lower(), p.stderr


def test_tls_no_verify(servers, pki):
    abota("--keyring", pki.keyring, "info", "--tls-no-verify", servers["tls"].url("b.raucb"))


def test_client_certificate(servers, tls, pki, tmp_path):
    url = servers["mtls"].url("b.raucb")
    abota_fails("--keyring", pki.keyring, "info", "--tls-ca", tls["ca.pem"], url)
    abota("--keyring", pki.keyring, "info", "--tls-ca", tls["ca.pem"], "--tls-cert",
          tls["cli.pem"], "--tls-key", tls["cli.key"], url)
    abota("--keyring", pki.keyring, "extract", "--tls-ca", tls["ca.pem"], "--tls-cert",
          tls["cli.pem"], "--tls-key", tls["cli.key"], url, str(tmp_path / "x"))
    assert os.path.exists(tmp_path / "x" / "manifest.raucm")


def test_http_header_token(servers, tls, pki):
    url = servers["token"].url("b.raucb")
    p = abota_fails("--keyring", pki.keyring, "info", "--tls-ca", tls["ca.pem"], url)
    assert "401" in p.stderr
    abota("--keyring", pki.keyring, "info", "--tls-ca", tls["ca.pem"],
          "--http-header", "Authorization: TargetToken s3cret", url)
    # the token never shows up in messages
    p = abota_fails("--keyring", pki.keyring, "info", "--tls-ca", tls["ca.pem"],
                    "--http-header", "Authorization: TargetToken wrong", url)
    assert "wrong" not in p.stderr


def test_install_over_https_with_client_cert(servers, tls, pki, tmp_path):
    dev = Device(str(tmp_path / "dev"), pki)
    p = abota("-c", dev.conf, "install", "--tls-ca", tls["ca.pem"], "--tls-cert", tls["cli.pem"],
              "--tls-key", tls["cli.key"], servers["mtls"].url("b.raucb"))
    assert "succeeded" in p.stdout


@pytest.mark.parametrize("args,msg", [
    (["--tls-key", "/etc/hostname"], "--tls-cert and --tls-key go together"),
    (["--tls-ca", "/nonexistent/ca.pem"], "cannot read"),
    (["--http-header", "NoColon"], "is not 'Name: value'"),
    (["--http-header", "Bad Name: x"], "is not 'Name: value'"),
    (["--http-header", "X: a\r\nInjected: 1"], "is not 'Name: value'"),
])
def test_bad_http_options(args, msg, servers):
    p = abota("info", *args, servers["tls"].url("b.raucb"), check=False)
    assert p.returncode == 2 and msg in p.stderr, p.stderr
