"""Helpers to take bundles apart and put (possibly hostile) ones together,
signing with the real openssl CLI so the parser behind the signature check
gets exercised."""
import os
import subprocess


def split(path):
    data = open(path, "rb").read()
    s = int.from_bytes(data[-8:], "big")
    p = len(data) - 8 - s
    return data[:p], data[p:p + s]


def assemble(path, payload, cms):
    with open(path, "wb") as f:
        f.write(payload)
        f.write(cms)
        f.write(len(cms).to_bytes(8, "big"))
    return path


def cms_content(cms, tmp):
    """The encapsulated content (signed manifest) of an inline CMS, unverified."""
    src = os.path.join(tmp, "cms.der")
    out = os.path.join(tmp, "content.bin")
    open(src, "wb").write(cms)
    subprocess.run(["openssl", "cms", "-verify", "-noverify", "-binary", "-inform", "DER",
                    "-in", src, "-out", out], check=True, capture_output=True)
    return open(out, "rb").read()


def sign(tmp, cert, key, content, detached):
    src = os.path.join(tmp, "tosign.bin")
    out = os.path.join(tmp, "sig.der")
    open(src, "wb").write(content)
    args = ["openssl", "cms", "-sign", "-binary", "-nosmimecap", "-md", "sha256", "-signer",
            cert, "-inkey", key, "-in", src, "-outform", "DER", "-out", out]
    if not detached:
        args.insert(3, "-nodetach")
    subprocess.run(args, check=True, capture_output=True)
    return open(out, "rb").read()


def add_signer(tmp, cms, cert, key):
    """Adds a second SignerInfo (like `rauc resign --append`)."""
    src = os.path.join(tmp, "in.der")
    out = os.path.join(tmp, "out.der")
    open(src, "wb").write(cms)
    subprocess.run(["openssl", "cms", "-resign", "-binary", "-nosmimecap", "-md", "sha256",
                    "-inform", "DER", "-in", src, "-signer", cert, "-inkey", key, "-outform",
                    "DER", "-out", out], check=True, capture_output=True)
    return open(out, "rb").read()
