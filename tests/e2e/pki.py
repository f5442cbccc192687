"""A throw-away test PKI made with the real openssl CLI.

Root CA -> intermediate CA -> leaf signers with different properties (no EKU,
codeSigning-only EKU, expired, not yet valid, revoked), plus a CRL.  Created once
per test session in a temporary directory.
"""
import os
import subprocess
import textwrap


def _run(*args, cwd=None):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


OPENSSL_CNF = textwrap.dedent("""\
    [ req ]
    distinguished_name = dn
    prompt = no
    [ dn ]
    CN = unused
    [ ca ]
    default_ca = CA_default
    [ CA_default ]
    dir = {dir}
    database = $dir/index.txt
    new_certs_dir = $dir/newcerts
    serial = $dir/serial
    crlnumber = $dir/crlnumber
    default_md = sha256
    default_crl_days = 3650
    policy = policy_any
    unique_subject = no
    copy_extensions = none
    [ policy_any ]
    organizationName = optional
    commonName = supplied
    [ v3_ca ]
    basicConstraints = critical,CA:TRUE
    keyUsage = critical,keyCertSign,cRLSign
    subjectKeyIdentifier = hash
    authorityKeyIdentifier = keyid:always
    [ v3_leaf ]
    basicConstraints = critical,CA:FALSE
    keyUsage = critical,digitalSignature
    subjectKeyIdentifier = hash
    authorityKeyIdentifier = keyid,issuer
    [ v3_codesign ]
    basicConstraints = critical,CA:FALSE
    keyUsage = critical,digitalSignature
    extendedKeyUsage = codeSigning
    subjectKeyIdentifier = hash
    authorityKeyIdentifier = keyid,issuer
    [ v3_email ]
    basicConstraints = critical,CA:FALSE
    keyUsage = critical,digitalSignature
    extendedKeyUsage = emailProtection
    subjectKeyIdentifier = hash
    authorityKeyIdentifier = keyid,issuer
    """)


class CA:
    """A CA with an `openssl ca` database so it can issue back-dated certs and CRLs."""

    def __init__(self, base, name, parent=None):
        self.dir = os.path.join(base, name)
        os.makedirs(os.path.join(self.dir, "newcerts"))
        open(os.path.join(self.dir, "index.txt"), "w").close()
        with open(os.path.join(self.dir, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(self.dir, "crlnumber"), "w") as f:
            f.write("1000\n")
        self.cnf = os.path.join(self.dir, "openssl.cnf")
        with open(self.cnf, "w") as f:
            f.write(OPENSSL_CNF.format(dir=self.dir))
        self.key = os.path.join(self.dir, "key.pem")
        self.cert = os.path.join(self.dir, "cert.pem")
        _run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", self.key)
        subj = f"/O=abota test/CN={name}"
        if parent is None:
            _run("openssl", "req", "-new", "-x509", "-config", self.cnf, "-extensions", "v3_ca",
                 "-key", self.key, "-days", "3650", "-subj", subj, "-out", self.cert)
        else:
            csr = os.path.join(self.dir, "req.csr")
            _run("openssl", "req", "-new", "-config", self.cnf, "-key", self.key, "-subj", subj,
                 "-out", csr)
            parent.sign(csr, self.cert, "v3_ca")

    def sign(self, csr, out, ext, start=None, end=None):
        args = ["openssl", "ca", "-batch", "-config", self.cnf, "-keyfile", self.key,
                "-cert", self.cert, "-in", csr, "-out", out, "-extensions", ext, "-notext"]
        if start:
            args += ["-startdate", start]
        if end:
            args += ["-enddate", end]
        if not start and not end:
            args += ["-days", "3650"]
        _run(*args)

    def issue(self, name, ext="v3_leaf", start=None, end=None):
        key = os.path.join(self.dir, f"{name}.key.pem")
        cert = os.path.join(self.dir, f"{name}.cert.pem")
        csr = os.path.join(self.dir, f"{name}.csr")
        _run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
        _run("openssl", "req", "-new", "-config", self.cnf, "-key", key,
             "-subj", f"/O=abota test/CN={name}", "-out", csr)
        self.sign(csr, cert, ext, start, end)
        return cert, key

    def revoke(self, cert):
        _run("openssl", "ca", "-config", self.cnf, "-keyfile", self.key, "-cert", self.cert,
             "-revoke", cert)

    def crl(self, out):
        _run("openssl", "ca", "-config", self.cnf, "-keyfile", self.key, "-cert", self.cert,
             "-gencrl", "-out", out)
        return out


class PKI:
    def __init__(self, base):
        self.base = base
        self.root = CA(base, "root-ca")
        self.inter = CA(base, "intermediate-ca", parent=self.root)
        # Signed directly by the root, like the RAUC fixtures (no EKU).
        self.signer = self.root.issue("signer")
        # Signed by the intermediate: the bundle must embed the intermediate.
        self.chained = self.inter.issue("chained-signer")
        self.codesign = self.root.issue("codesign-signer", ext="v3_codesign")
        self.email = self.root.issue("email-signer", ext="v3_email")
        self.expired = self.root.issue("expired-signer", start="20200101000000Z",
                                       end="20210101000000Z")
        self.future = self.root.issue("future-signer", start="20400101000000Z",
                                      end="20500101000000Z")
        self.revoked = self.root.issue("revoked-signer")
        self.root.revoke(self.revoked[0])
        self.other = CA(base, "other-ca")
        self.stranger = self.other.issue("stranger")
        # Keyrings
        self.keyring = self.root.cert
        self.inter_keyring = self.inter.cert
        self.other_keyring = self.other.cert
        crl = self.root.crl(os.path.join(base, "root.crl.pem"))
        self.crl_keyring = os.path.join(base, "keyring-with-crl.pem")
        with open(self.crl_keyring, "w") as f:
            f.write(open(self.root.cert).read())
            f.write(open(crl).read())
