"""extract-signature and replace-signature: RAUC's offline (HSM) signing
workflow.  The real `rauc` 1.8 (which has both verbs) runs beside abota on
the same inputs and the files are compared byte for byte; `openssl cms`
plays the offline signer and checks what abota extracts.  Every refused
input leaves the output directory as it was."""
import hashlib
import json
import os
import stat

import pytest

from conftest import abota, abota_fails, make_content, run


def split_bundle(path):
    """(payload, cms) of a bundle: payload || CMS || uint64 BE size."""
    data = open(path, "rb").read()
    size = int.from_bytes(data[-8:], "big")
    return data[:-8 - size], data[-8 - size:-8]


def listing(d):
    return sorted(os.listdir(d))


def hsm_sign(pki_pair, infile, out, detached):
    """What an offline signer does: CMS SignedData, SHA-256, binary, no
    SMIMECapabilities (RAUC's signed attributes), DER."""
    args = ["openssl", "cms", "-sign", "-binary", "-md", "sha256", "-nosmimecap",
            "-in", infile, "-signer", pki_pair[0], "-inkey", pki_pair[1],
            "-outform", "DER", "-out", out]
    if not detached:
        args.append("-nodetach")
    run(*args)
    return out


@pytest.fixture(scope="module")
def bundles(pki, tmp_path_factory):
    """A verity and a plain bundle made by abota, signed by the development
    signer (root CA = pki.keyring)."""
    d = tmp_path_factory.mktemp("sigverbs")
    signer = ["--cert", pki.signer[0], "--key", pki.signer[1]]
    out = {}
    for fmt in ("verity", "plain"):
        content = make_content(str(d / f"content-{fmt}"), rootfs_kib=1024, fmt=fmt)
        out[fmt] = str(d / f"{fmt}.raucb")
        abota("bundle", *signer, content, out[fmt])
    return out


# ------------------------------------------------------------------ extract-signature

@pytest.mark.parametrize("name", ["sample-verity.raucb", "sample-plain.raucb"])
def test_extract_signature_same_as_rauc(fixtures, tmp_path, name):
    """The bytes rauc writes, mode 0600, verifiable with openssl."""
    ca = os.path.join(fixtures, "ca.cert.pem")
    src = os.path.join(fixtures, name)
    a, r = tmp_path / "a.sig", tmp_path / "r.sig"
    p = abota("extract-signature", f"--keyring={ca}", src, a)
    assert "succeeded" in p.stdout
    run("rauc", "extract-signature", f"--keyring={ca}", src, r)
    payload, cms = split_bundle(src)
    assert a.read_bytes() == r.read_bytes() == cms
    assert stat.S_IMODE(os.stat(a).st_mode) == 0o600
    # the global --keyring before the verb and -c's [keyring] work as well
    abota(f"--keyring={ca}", "extract-signature", src, tmp_path / "g.sig")
    conf = tmp_path / "system.conf"
    conf.write_text(f"[system]\ncompatible=x\nbootloader=noop\n\n[keyring]\npath={ca}\n")
    abota("extract-signature", "-c", conf, src, tmp_path / "c.sig")
    assert (tmp_path / "g.sig").read_bytes() == (tmp_path / "c.sig").read_bytes() == cms
    # openssl verifies what was extracted, with the bundle's payload if detached
    if "plain" in name:
        (tmp_path / "payload").write_bytes(payload)
        run("openssl", "cms", "-verify", "-inform", "DER", "-in", a, "-binary",
            "-content", tmp_path / "payload", "-CAfile", ca, "-purpose", "any",
            "-out", "/dev/null")
    else:
        # the signed manifest: its SHA-256 is the bundle's manifest hash
        run("openssl", "cms", "-verify", "-inform", "DER", "-in", a, "-binary", "-CAfile", ca,
            "-purpose", "any", "-out", tmp_path / "manifest")
        m = (tmp_path / "manifest").read_bytes()
        assert b"format=verity" in m and b"verity-hash=" in m
        info = json.loads(abota("info", f"--keyring={ca}", "--output-format=json", src).stdout)
        assert hashlib.sha256(m).hexdigest() == info["hash"]


def test_extract_signature_refusals_as_rauc(fixtures, pki, tmp_path):
    ca = os.path.join(fixtures, "ca.cert.pem")
    src = os.path.join(fixtures, "sample-verity.raucb")
    out = tmp_path / "out"
    out.mkdir()
    # an existing OUTFILE is never replaced (rauc: "File exists")
    (out / "exists.sig").write_bytes(b"keep me")
    r = run("rauc", "extract-signature", f"--keyring={ca}", src, out / "exists.sig",
            check=False)
    assert r.returncode == 1 and "exists" in r.stderr
    abota_fails("extract-signature", f"--keyring={ca}", src, out / "exists.sig",
                match="already exists")
    assert (out / "exists.sig").read_bytes() == b"keep me"
    # no keyring at all, and a keyring that does not hold the signer's CA
    r = run("rauc", "extract-signature", src, out / "x.sig", check=False)
    assert r.returncode == 1 and "No keyring" in r.stderr
    p = abota_fails("extract-signature", src, out / "x.sig", match="keyring")
    assert p.returncode == 1
    r = run("rauc", "extract-signature", f"--keyring={pki.other_keyring}", src, out / "x.sig",
            check=False)
    assert r.returncode == 1
    p = abota_fails("extract-signature", f"--keyring={pki.other_keyring}", src, out / "x.sig",
                    match="sample-verity.raucb")
    assert p.returncode == 1
    # a damaged bundle (trailer says more than the file holds)
    bad = tmp_path / "bad.raucb"
    data = bytearray(open(src, "rb").read())
    data[-8:] = (1 << 40).to_bytes(8, "big")
    bad.write_bytes(bytes(data))
    abota_fails("extract-signature", f"--keyring={ca}", bad, out / "x.sig",
                match="exceeds bundle size")
    r = run("rauc", "extract-signature", f"--keyring={ca}", bad, out / "x.sig", check=False)
    assert r.returncode == 1
    # usage errors exit 2 (rauc says 1 for these)
    for args in ([src], [src, out / "x.sig", out / "y.sig"], ["--no-verify", src, out / "x.sig"]):
        p = abota_fails("extract-signature", f"--keyring={ca}", *args)
        assert p.returncode == 2, (args, p.stderr)
    # no directory for OUTFILE
    abota_fails("extract-signature", f"--keyring={ca}", src, out / "nodir" / "x.sig",
                match="nodir")
    assert listing(out) == ["exists.sig"]


# ------------------------------------------------------------------ replace-signature

def test_same_signature_gives_the_same_bundle_as_rauc(fixtures, tmp_path):
    """Putting a bundle's own signature back yields the bundle, in abota and rauc."""
    ca = os.path.join(fixtures, "ca.cert.pem")
    for name in ("sample-verity.raucb", "sample-plain.raucb"):
        src = os.path.join(fixtures, name)
        sig = tmp_path / f"{name}.sig"
        abota("extract-signature", f"--keyring={ca}", src, sig)
        a, r = tmp_path / f"a-{name}", tmp_path / f"r-{name}"
        abota("replace-signature", f"--keyring={ca}", src, sig, a)
        run("rauc", "replace-signature", f"--keyring={ca}", src, sig, r)
        assert a.read_bytes() == r.read_bytes() == open(src, "rb").read()


@pytest.mark.parametrize("fmt", ["verity", "plain"])
def test_hsm_workflow_matches_rauc(bundles, pki, tmp_path, fmt):
    """Development-signed bundle -> extract-signature -> the manifest (verity)
    or payload (plain) re-signed offline by a release key of another CA ->
    replace-signature.  abota and rauc write the same bytes, and both accept
    the result with the release keyring only."""
    src = bundles[fmt]
    old = tmp_path / "old.sig"
    abota("extract-signature", f"--keyring={pki.keyring}", src, old)
    payload, cms = split_bundle(src)
    assert old.read_bytes() == cms
    tosign = tmp_path / "tosign"
    if fmt == "verity":
        # the signed manifest, as the offline signer gets it out of the CMS
        run("openssl", "cms", "-verify", "-inform", "DER", "-in", old, "-CAfile", pki.keyring,
            "-purpose", "any", "-binary", "-out", tosign)
    else:
        tosign.write_bytes(payload)
    new = hsm_sign(pki.stranger, tosign, tmp_path / "new.sig", detached=(fmt == "plain"))
    a, r = tmp_path / "a.raucb", tmp_path / "r.raucb"
    p = abota("replace-signature", f"--keyring={pki.keyring}",
              f"--signing-keyring={pki.other_keyring}", src, new, a)
    assert f"'{fmt}' format" in p.stdout
    run("rauc", "replace-signature", f"--keyring={pki.keyring}",
        f"--signing-keyring={pki.other_keyring}", src, new, r)
    assert a.read_bytes() == r.read_bytes() == payload + new.read_bytes() + \
        len(new.read_bytes()).to_bytes(8, "big")
    assert stat.S_IMODE(os.stat(a).st_mode) == stat.S_IMODE(os.stat(r).st_mode)
    # the release keyring accepts it, the development one no longer does
    run("rauc", "info", f"--keyring={pki.other_keyring}", a)
    abota("info", f"--keyring={pki.other_keyring}", a)
    abota_fails("info", f"--keyring={pki.keyring}", a)
    # a verity bundle's payload is checked whole against the new manifest
    if fmt == "verity":
        abota("extract", f"--keyring={pki.other_keyring}", a, tmp_path / "x")
    # without --signing-keyring the new signature must verify with --keyring:
    # both refuse, and neither leaves a file
    before = listing(tmp_path)
    r = run("rauc", "replace-signature", f"--keyring={pki.keyring}", src, new,
            tmp_path / "r2.raucb", check=False)
    assert r.returncode == 1 and "failed to verify the new bundle" in r.stderr
    p = abota_fails("replace-signature", f"--keyring={pki.keyring}", src, new,
                    tmp_path / "a2.raucb", match="is not valid for this bundle")
    assert "unable to get local issuer certificate" in p.stderr
    assert p.returncode == 1
    assert listing(tmp_path) == before
    # an existing OUTFILE is refused by both and kept
    r = run("rauc", "replace-signature", f"--keyring={pki.keyring}",
            f"--signing-keyring={pki.other_keyring}", src, new, a, check=False)
    assert r.returncode == 1 and "already exists" in r.stderr
    abota_fails("replace-signature", f"--keyring={pki.keyring}",
                f"--signing-keyring={pki.other_keyring}", src, new, a, match="already exists")
    assert a.read_bytes() == r_bytes(tmp_path / "r.raucb")


def r_bytes(path):
    return open(path, "rb").read()


def test_replace_refuses_a_signature_of_something_else(bundles, pki, tmp_path):
    """A valid signature that belongs to another payload or manifest is
    refused before anything is written -- by rauc too."""
    out = tmp_path / "out"
    out.mkdir()
    kr = [f"--keyring={pki.keyring}"]
    # plain: a detached signature over other bytes
    other = tmp_path / "other"
    other.write_bytes(os.urandom(8192))
    wrong = hsm_sign(pki.signer, other, tmp_path / "wrong-plain.sig", detached=True)
    r = run("rauc", "replace-signature", *kr, bundles["plain"], wrong, out / "r.raucb",
            check=False)
    assert r.returncode == 1
    abota_fails("replace-signature", *kr, bundles["plain"], wrong, out / "a.raucb",
                match="is not valid for this bundle")
    # verity: a validly signed manifest whose verity-hash is not this payload's
    old = tmp_path / "old.sig"
    abota("extract-signature", *kr, bundles["verity"], old)
    m = run("openssl", "cms", "-verify", "-inform", "DER", "-in", old, "-CAfile", pki.keyring,
            "-purpose", "any").stdout
    h = m.split("verity-hash=")[1][:64]
    flipped = ("0" if h[0] != "0" else "1") + h[1:]
    (tmp_path / "m2").write_text(m.replace(h, flipped))
    wrong_v = hsm_sign(pki.signer, tmp_path / "m2", tmp_path / "wrong-verity.sig",
                       detached=False)
    p = abota_fails("replace-signature", *kr, bundles["verity"], wrong_v, out / "a.raucb",
                    match="is not valid for this bundle")
    assert "verity hash tree does not match the signed root hash" in p.stderr
    assert ".abota-" not in p.stderr  # the staging file is no concern of the user
    # rauc 1.8 checks only the CMS of the new bundle and writes it; the
    # result is broken: its payload fails the signed verity root
    run("rauc", "replace-signature", *kr, bundles["verity"], wrong_v, out / "r.raucb")
    abota_fails("extract", *kr, out / "r.raucb", tmp_path / "x")
    os.unlink(out / "r.raucb")
    # the kinds do not mix: a detached signature for a verity bundle and back
    abota_fails("replace-signature", *kr, bundles["verity"], wrong, out / "a.raucb",
                match="holds a detached (plain) signature")
    abota_fails("replace-signature", *kr, bundles["plain"], wrong_v, out / "a.raucb",
                match="needs a detached one")
    r = run("rauc", "replace-signature", *kr, bundles["verity"], wrong, out / "r.raucb",
            check=False)
    assert r.returncode == 1
    assert listing(out) == []


def test_replace_signature_bad_inputs(bundles, fixtures, pki, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    kr = [f"--keyring={pki.keyring}"]
    src = bundles["plain"]
    good = tmp_path / "good.sig"
    abota("extract-signature", *kr, src, good)
    cases = {}
    (tmp_path / "empty.sig").write_bytes(b"")
    cases["empty.sig"] = "is empty"
    (tmp_path / "garbage.sig").write_bytes(os.urandom(200))
    cases["garbage.sig"] = "is not a DER CMS signature"
    (tmp_path / "big.sig").write_bytes(os.urandom(70000))
    cases["big.sig"] = "larger than the signature limit of 65536 bytes"
    (tmp_path / "trailing.sig").write_bytes(good.read_bytes() + b"\0")
    cases["trailing.sig"] = "is not a DER CMS signature"
    # PEM is not DER
    run("openssl", "cms", "-cmsout", "-inform", "DER", "-in", good, "-outform", "PEM",
        "-out", tmp_path / "pem.sig")
    cases["pem.sig"] = "is not a DER CMS signature"
    (tmp_path / "dir.sig").mkdir()
    cases["dir.sig"] = "not a regular file"
    cases["missing.sig"] = "No such file"
    for name, msg in cases.items():
        p = abota_fails("replace-signature", *kr, src, tmp_path / name, out / "a.raucb",
                        match=msg)
        assert p.returncode == 1, (name, p.stderr)
        assert name in p.stderr
        assert len([line for line in p.stderr.splitlines() if line.strip()]) == 1, p.stderr
    # the limit is system.conf's max-bundle-signature-size when one is given
    conf = tmp_path / "system.conf"
    conf.write_text("[system]\ncompatible=x\nbootloader=noop\n"
                    "max-bundle-signature-size=100000\n")
    abota_fails("replace-signature", "-c", conf, *kr, src, tmp_path / "big.sig",
                out / "a.raucb", match="big.sig is not a DER CMS signature")
    # rauc 1.8 refuses the same files (after reading the bundle)
    for name in ("empty.sig", "garbage.sig", "missing.sig"):
        r = run("rauc", "replace-signature", *kr, src, tmp_path / name, out / "r.raucb",
                check=False)
        assert r.returncode == 1, name
    assert listing(out) == []
    # the bundle given as its own signature
    abota_fails("replace-signature", *kr, src, src, out / "a.raucb", match="the bundle itself")
    # OUTFILE = BUNDLE or SIGNATURE: it exists, so it is refused and kept
    before = r_bytes(src)
    abota_fails("replace-signature", *kr, src, good, src, match="already exists")
    abota_fails("replace-signature", *kr, src, good, good, match="already exists")
    assert r_bytes(src) == before and good.read_bytes() == split_bundle(src)[1]
    # no keyring for the new signature (rauc writes OUTFILE unchecked then)
    p = abota_fails("replace-signature", "--no-verify", src, good, out / "a.raucb",
                    match="--signing-keyring")
    assert p.returncode == 1
    # untrusted input bundle: refused unless --no-verify (as rauc)
    stranger = tmp_path / "stranger.raucb"
    abota("resign", "--no-verify", "--cert", pki.stranger[0], "--key", pki.stranger[1], src,
          stranger)
    abota_fails("replace-signature", *kr, stranger, good, out / "a.raucb")
    r = run("rauc", "replace-signature", *kr, stranger, good, out / "r.raucb", check=False)
    assert r.returncode == 1
    assert listing(out) == []
    abota("replace-signature", "--no-verify", f"--signing-keyring={pki.keyring}", stranger,
          good, out / "a.raucb")
    run("rauc", "replace-signature", "--no-verify", f"--signing-keyring={pki.keyring}",
        stranger, good, out / "r.raucb")
    assert r_bytes(out / "a.raucb") == r_bytes(out / "r.raucb") == r_bytes(src)
    # usage errors exit 2
    for args in ([src, good], [src, good, out / "x", out / "y"], ["--bogus", src, good, out / "x"]):
        p = abota_fails("replace-signature", *kr, *args)
        assert p.returncode == 2, (args, p.stderr)
    assert listing(out) == ["a.raucb", "r.raucb"]


def test_replace_signature_corrupted_payload(bundles, pki, tmp_path):
    """A verity bundle whose squashfs was damaged after signing: the payload
    is copied through the verified view, so the copy fails; with --no-verify
    the whole result is still read against the new manifest."""
    kr = [f"--keyring={pki.keyring}"]
    sig = tmp_path / "v.sig"
    abota("extract-signature", *kr, bundles["verity"], sig)
    data = bytearray(r_bytes(bundles["verity"]))
    data[100000] ^= 0xFF
    bad = tmp_path / "bad.raucb"
    bad.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    p = abota_fails("replace-signature", *kr, bad, sig, out / "a.raucb",
                    match="bad.raucb: bundle payload is corrupted")
    assert p.returncode == 1
    abota_fails("replace-signature", "--no-verify", f"--signing-keyring={pki.keyring}", bad,
                sig, out / "a.raucb", match="is not valid for this bundle")
    r = run("rauc", "replace-signature", *kr, bad, sig, out / "r.raucb", check=False)
    assert r.returncode == 1
    assert listing(out) == []


def test_signature_verbs_help_and_global_intermediate(pki, tmp_path):
    for verb in ("extract-signature", "replace-signature"):
        out = abota(verb, "--help").stdout
        assert f"abota {verb}" in out and "--keyring" in out
    assert "--signing-keyring" in abota("replace-signature", "--help").stdout
    # a bundle signed by the intermediate's signer without embedding it:
    # the global --intermediate (as for info/extract/resign) lets it verify
    content = make_content(str(tmp_path / "c"), rootfs_kib=1024, fmt="verity")
    b = tmp_path / "chained.raucb"
    abota("bundle", "--cert", pki.chained[0], "--key", pki.chained[1], content, b)
    abota_fails("extract-signature", f"--keyring={pki.keyring}", b, tmp_path / "x.sig")
    abota(f"--intermediate={pki.inter_keyring}", "extract-signature",
          f"--keyring={pki.keyring}", b, tmp_path / "x.sig")
    assert (tmp_path / "x.sig").read_bytes() == split_bundle(b)[1]


@pytest.mark.parametrize("fmt", ["verity", "plain"])
def test_rauc_documented_openssl_commands(bundles, pki, tmp_path, fmt):
    """The commands of RAUC's documentation ("Resigning bundles" with an
    external signer): openssl's defaults, i.e. SMIMECapabilities and -- for
    verity, without -binary -- a manifest with CRLF line ends.  rauc and abota
    both take the result and write the same bytes."""
    src = bundles[fmt]
    ex = tmp_path / "extracted-signature.cms"
    abota("extract-signature", f"--keyring={pki.keyring}", src, ex)
    signer = ["-signer", pki.stranger[0], "-CAfile", pki.other_keyring, "-inkey",
              pki.stranger[1]]
    if fmt == "verity":
        run("openssl", "cms", "-verify", "-CAfile", pki.keyring, "-out", tmp_path / "manifest.raucm",
            "-inform", "DER", "-in", ex)
        run("openssl", "cms", "-sign", *signer, "-nodetach", "-in", tmp_path / "manifest.raucm",
            "-outform", "der", "-out", tmp_path / "new-signature.cms")
    else:
        (tmp_path / "bundle.rauci").write_bytes(split_bundle(src)[0])
        run("openssl", "cms", "-sign", *signer, "-binary", "-in", tmp_path / "bundle.rauci",
            "-outform", "der", "-out", tmp_path / "new-signature.cms")
    args = [f"--keyring={pki.keyring}", f"--signing-keyring={pki.other_keyring}", src,
            tmp_path / "new-signature.cms"]
    abota("replace-signature", *args, tmp_path / "a.raucb")
    run("rauc", "replace-signature", *args, tmp_path / "r.raucb")
    assert r_bytes(tmp_path / "a.raucb") == r_bytes(tmp_path / "r.raucb")
    # the result installs: verified with the new CA and extracted whole
    abota("extract", f"--keyring={pki.other_keyring}", tmp_path / "a.raucb", tmp_path / "x")
    run("rauc", "info", f"--keyring={pki.other_keyring}", tmp_path / "a.raucb")
