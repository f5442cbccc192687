"""Bad and hostile bundles: each a clear one-line error, non-zero exit, no crash
(these tests also run under ASan+UBSan), nothing written."""
import json
import os
import re
import struct
import subprocess

import pytest

import bundlecraft as bc
from conftest import abota, abota_fails, make_content, run


@pytest.fixture(scope="module")
def good(pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("good")
    content = make_content(str(d / "content"), adaptive=True)
    out = {}
    for fmt in ("verity", "plain"):
        b = d / f"{fmt}.raucb"
        abota("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], f"--format={fmt}",
              content, b)
        out[fmt] = str(b)
    out["content"] = content
    return out


def info_fails(pki, path, match=None, extra=()):
    return abota_fails("info", "--keyring", pki.keyring, *extra, path, match=match)


def extract_fails(pki, path, tmp_path, match=None):
    target = tmp_path / "never"
    p = abota_fails("extract", "--keyring", pki.keyring, path, target, match=match)
    assert not target.exists(), "extract left a directory behind"
    assert not [f for f in os.listdir(tmp_path) if f.startswith("never")], "temp dir left"
    return p


def layout(path):
    data = open(path, "rb").read()
    s = int.from_bytes(data[-8:], "big")
    return data, len(data) - 8 - s, s


@pytest.mark.parametrize("fmt", ["verity", "plain"])
def test_truncation_at_every_boundary(pki, good, tmp_path, fmt):
    """SC-06: files of 0..7 bytes and truncated at every region boundary (inside the CMS, at the trailer) are refused with a clear error."""
    data, p, s = layout(good[fmt])
    info = json.loads(abota("info", "--keyring", pki.keyring, "--output-format=json",
                            good[fmt]).stdout)
    cuts = {0, 1, 7, 8, 4096, p - 4096, p - 1, p, p + 1, p + s // 2, p + s, p + s + 4,
            len(data) - 1}
    if fmt == "verity":
        d = p - info["bundle"]["verity-size"]
        cuts |= {d - 1, d, d + 1}
    for cut in sorted(c for c in cuts if 0 <= c < len(data)):
        f = tmp_path / f"cut-{cut}.raucb"
        f.write_bytes(data[:cut])
        info_fails(pki, str(f))


def test_trailer_values(pki, good, tmp_path):
    """SC-01 little-endian trailer, SC-02 size 0, SC-03 size beyond the file, SC-04 65537 over the default 64 KiB limit, SC-05 2^31/2^32/2^63/2^64-1 without wrap or huge allocation."""
    data, p, s = layout(good["verity"])
    body = data[:-8]
    cases = {
        0: "signature size in the trailer is 0",
        len(data): "exceeds bundle size",
        2**31: "exceeds bundle size",
        2**32: "exceeds bundle size",
        2**63: "exceeds bundle size",
        2**64 - 1: "exceeds bundle size",
    }
    for value, msg in cases.items():
        f = tmp_path / f"tr-{value}.raucb"
        f.write_bytes(body + value.to_bytes(8, "big"))
        info_fails(pki, str(f), match=msg)
    # little-endian trailer (SC-01)
    f = tmp_path / "tr-le.raucb"
    f.write_bytes(body + s.to_bytes(8, "little"))
    info_fails(pki, str(f), match="exceeds bundle size")
    # a CMS region over 64 KiB: pad the payload so the size is plausible
    big = (b"\0" * (200 * 1024)) + body
    f = tmp_path / "tr-big.raucb"
    f.write_bytes(big + (65537).to_bytes(8, "big"))
    info_fails(pki, str(f), match="exceeds the limit of 65536")


def test_payload_not_multiple_of_4096(pki, good, tmp_path):
    """SC-07: payload size not a multiple of 4096 is refused."""
    payload, cms = bc.split(good["plain"])
    f = bc.assemble(tmp_path / "odd.raucb", payload + b"\0", cms)
    info_fails(pki, str(f), match="not a multiple of 4096")


def test_garbage_cms(pki, good, tmp_path):
    """SC-08: garbage CMS bytes with a valid length are refused."""
    payload, cms = bc.split(good["verity"])
    f = bc.assemble(tmp_path / "garbage.raucb", payload, os.urandom(len(cms)))
    info_fails(pki, str(f), match="no valid CMS")
    f = bc.assemble(tmp_path / "trailing.raucb", payload, cms + b"\0\0")
    info_fails(pki, str(f), match="trailing bytes")


def flip(data, off):
    b = bytearray(data)
    b[off] ^= 0x40
    return bytes(b)


def test_flipped_byte_plain_squashfs(pki, good, tmp_path):
    """SC-09: a flipped payload byte of a plain bundle fails the CMS check before anything is used."""
    data, p, s = layout(good["plain"])
    for off in (100, p // 2, p - 5000):
        f = tmp_path / f"flip-{off}.raucb"
        f.write_bytes(flip(data, off))
        info_fails(pki, str(f), match="CMS verification failed")


def test_flipped_byte_verity_payload(pki, good, tmp_path):
    """SC-18: a flipped squashfs byte of a verity bundle fails every read of that block; SC-19: a flipped hash-tree byte fails when the bundle is opened."""
    data, p, s = layout(good["verity"])
    info = json.loads(abota("info", "--keyring", pki.keyring, "--output-format=json",
                            good["verity"]).stdout)
    d = p - info["bundle"]["verity-size"]
    # hash tree: caught when the bundle is opened
    f = tmp_path / "flip-tree.raucb"
    f.write_bytes(flip(data, d + 10))
    info_fails(pki, str(f), match="does not match the signed root hash")
    # squashfs data: like rauc info, info may not read that block, but
    # every read of it fails
    f = tmp_path / "flip-data.raucb"
    f.write_bytes(flip(data, 8192 + 17))
    extract_fails(pki, str(f), tmp_path, match="corrupted")


def test_flipped_byte_manifest_and_cms(pki, good, tmp_path):
    payload, cms = bc.split(good["verity"])
    manifest = bc.cms_content(cms, str(tmp_path))
    pos = cms.find(manifest)
    assert pos > 0
    for off in (pos + 3, pos + len(manifest) // 2, len(cms) - 10):
        f = bc.assemble(tmp_path / f"m-{off}.raucb", payload, flip(cms, off))
        info_fails(pki, str(f))


def test_signer_not_in_keyring(pki, good):
    """SC-12: a signer not chaining to the keyring is refused."""
    abota_fails("info", "--keyring", pki.other_keyring, good["verity"],
                match="unable to get local issuer certificate")


def test_unreadable_or_empty_keyring(pki, good, tmp_path):
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    abota_fails("info", "--keyring", str(empty), good["verity"], match="keyring")
    abota_fails("info", "--keyring", str(tmp_path / "missing.pem"), good["verity"],
                match="keyring")


def make_signed_by(pki, good, tmp_path, signer, fmt="verity"):
    out = tmp_path / f"{os.path.basename(signer[0])}-{fmt}.raucb"
    abota("bundle", "--cert", signer[0], "--key", signer[1], f"--format={fmt}",
          good["content"], out)
    return str(out)


def test_expired_and_future_signer(pki, good, tmp_path):
    """SC-15: expired / not yet valid signer certificates are refused."""
    b = make_signed_by(pki, good, tmp_path, pki.expired)
    p = info_fails(pki, b, match="certificate has expired (notAfter Jan  1 00:00:00 2021 GMT)")
    abota("info", "--keyring", pki.keyring, "--no-check-time", b)
    b = make_signed_by(pki, good, tmp_path, pki.future)
    info_fails(pki, b, match="certificate is not yet valid")


def test_signing_time_policy(pki, good, tmp_path):
    """SC-15: ... unless use-bundle-signing-time / no-check-time is configured."""
    # signed now by a certificate that expired in 2021: the signing time does
    # not help, validity at signing time still fails
    b = make_signed_by(pki, good, tmp_path, pki.expired)
    info_fails(pki, b, extra=("--use-bundle-signing-time",), match="expired")
    good_b = make_signed_by(pki, good, tmp_path, pki.signer)
    abota("info", "--keyring", pki.keyring, "--use-bundle-signing-time", good_b)


def test_key_usage_purpose(pki, good, tmp_path):
    """SC-13: EKU codeSigning only under the default purpose is refused, accepted with check-purpose=codesign."""
    codesign = make_signed_by(pki, good, tmp_path, pki.codesign)
    plain_leaf = make_signed_by(pki, good, tmp_path, pki.signer)
    email = make_signed_by(pki, good, tmp_path, pki.email)
    # default purpose smimesign: a codeSigning-only leaf is refused (as RAUC)
    info_fails(pki, codesign, match="unsuitable certificate purpose")
    abota("info", "--keyring", pki.keyring, email)
    # check-purpose=codesign: codeSigning EKU required
    abota("info", "--keyring", pki.keyring, "--check-purpose=codesign", codesign)
    info_fails(pki, plain_leaf, extra=("--check-purpose=codesign",),
               match="unsuitable certificate purpose")
    info_fails(pki, email, extra=("--check-purpose=codesign",),
               match="unsuitable certificate purpose")
    abota("info", "--keyring", pki.keyring, "--check-purpose=any", codesign)
    info_fails(pki, codesign, extra=("--check-purpose=nonsense",),
               match="unknown check-purpose")


def test_revoked_signer_with_crl(pki, good, tmp_path):
    """SC-17: a signer revoked by a CRL in the keyring is refused with check-crl."""
    b = make_signed_by(pki, good, tmp_path, pki.revoked)
    abota("info", "--keyring", pki.crl_keyring, b)
    abota_fails("info", "--keyring", pki.crl_keyring, "--check-crl", b,
                match="certificate revoked")
    ok = make_signed_by(pki, good, tmp_path, pki.signer)
    abota("info", "--keyring", pki.crl_keyring, "--check-crl", ok)


def test_allowed_signer_cns(pki, good, tmp_path):
    """SC-16: a signer CN not in allowed-signer-cns is refused."""
    abota("info", "--keyring", pki.keyring, "--allowed-signer-cn=signer", good["verity"])
    info_fails(pki, good["verity"], extra=("--allowed-signer-cn=someone-else",),
               match="signer CN 'signer' is not in allowed-signer-cns")


@pytest.mark.parametrize("fmt", ["verity", "plain"])
def test_two_signers(pki, good, tmp_path, fmt):
    """SC-11: a CMS with two SignerInfos is refused, as every released RAUC does."""
    payload, cms = bc.split(good[fmt])
    two = bc.add_signer(str(tmp_path), cms, pki.email[0], pki.email[1])
    f = bc.assemble(tmp_path / "two.raucb", payload, two)
    info_fails(pki, str(f), match="unsupported number of signers: 2")


def resigned_manifest(pki, good, tmp_path, edit, name):
    """A verity bundle whose signed manifest was edited and validly re-signed."""
    payload, cms = bc.split(good["verity"])
    manifest = bc.cms_content(cms, str(tmp_path)).decode()
    new = edit(manifest)
    assert new != manifest
    sig = bc.sign(str(tmp_path), pki.signer[0], pki.signer[1], new.encode(), detached=False)
    return str(bc.assemble(tmp_path / f"{name}.raucb", payload, sig))


@pytest.mark.parametrize("name,edit,match", [
    ("unknown-key", lambda m: m.replace("[update]\n", "[update]\nfoo=bar\n"),
     "invalid key 'foo' in group [update]"),
    ("unknown-group", lambda m: m + "\n[custom]\na=b\n", "invalid group [custom]"),
    ("duplicate-key", lambda m: m.replace("version=1.0\n", "version=1.0\nversion=2.0\n"),
     "duplicate key 'version'"),
    ("no-compatible", lambda m: re.sub(r"compatible=.*\n", "", m), "missing key 'compatible'"),
    ("empty-compatible", lambda m: re.sub(r"compatible=.*\n", "compatible=\n", m),
     "missing value for key 'compatible'"),
    ("slash-filename", lambda m: m.replace("filename=fip.img", "filename=../fip.img"),
     "is not a plain file name"),
    ("dotdot-filename", lambda m: m.replace("filename=fip.img", "filename=.."),
     "is not a plain file name"),
    ("size-mismatch", lambda m: re.sub(r"size=32000\n", "size=28000\n", m),
     "but the manifest says size=28000"),
    ("huge-size", lambda m: re.sub(r"size=32000\n", f"size={2**64 - 1}\n", m),
     "out of range"),
    ("negative-size", lambda m: re.sub(r"size=32000\n", "size=-1\n", m),
     "not an unsigned decimal"),
    ("no-sha256", lambda m: re.sub(r"sha256=.*\n(size=32000)", r"\1", m),
     "every installed byte must be covered"),
    ("bad-verity-hash", lambda m: re.sub(r"verity-hash=(.*)", lambda x: "verity-hash=" + x.group(1).upper(), m),
     "64 lowercase hexadecimal"),
    ("verity-size-odd", lambda m: re.sub(r"verity-size=(\d+)", "verity-size=4095", m),
     "multiple of 4096"),
    ("format-plain-inline", lambda m: m.replace("format=verity", "format=plain"),
     "plain"),
    ("format-crypt-unencrypted", lambda m: m.replace("format=verity", "format=crypt\ncrypt-key=" + "ab" * 32),
     "not encrypted"),
    ("wrong-case-group", lambda m: m.replace("[update]", "[Update]"),
     "[update]"),
])
def test_signed_but_bad_manifest(pki, good, tmp_path, name, edit, match):
    """SC-10 format=plain in inline SignedData, SC-20 bad verity-size, SC-21 verity-hash not lowercase hex, SC-22 crypt bundle not encrypted, SC-41 huge/negative sizes, SC-50 '/' and '..' in filename, SC-62 unknown key/group, duplicate key, [Update], SC-64 empty compatible: all refused."""
    b = resigned_manifest(pki, good, tmp_path, edit, name)
    info_fails(pki, b, match=match)


def test_image_sha256_mismatch(pki, good, tmp_path):
    """SC-43: an image not matching its manifest sha256 is refused."""
    def edit(m):
        return re.sub(r"(\[image.bootloader\]\n)sha256=[0-9a-f]{64}",
                      r"\1sha256=" + "0" * 64, m)
    b = resigned_manifest(pki, good, tmp_path, edit, "sha-mismatch")
    # info checks only what it must read; extract hashes every image
    abota("info", "--keyring", pki.keyring, b)
    extract_fails(pki, b, tmp_path, match="does not match the manifest")


def test_missing_image_file(pki, good, tmp_path):
    b = resigned_manifest(pki, good, tmp_path,
                          lambda m: m.replace("filename=fip.img", "filename=nothere.img"),
                          "missing-image")
    info_fails(pki, b, match="'nothere.img' (slot class bootloader) is missing")


def test_file_fifo_directory_as_bundle(pki, tmp_path):
    """SC-35: a FIFO, a character device or a directory as the bundle path is refused."""
    os.mkfifo(tmp_path / "fifo")
    abota_fails("info", "--keyring", pki.keyring, str(tmp_path / "fifo"),
                match="not a regular file")
    abota_fails("info", "--keyring", pki.keyring, str(tmp_path), match="not a regular file")
    abota_fails("info", "--keyring", pki.keyring, str(tmp_path / "nope"),
                match="No such file")


def find_inode(img, size):
    """Offset of the basic regular-file inode with file_size `size` in an
    uncompressed squashfs inode table (mksquashfs -noI)."""
    inode_table = struct.unpack_from("<Q", img, 64)[0]
    dir_table = struct.unpack_from("<Q", img, 72)[0]
    pos = inode_table
    while pos < dir_table:
        hdr = struct.unpack_from("<H", img, pos)[0]
        length = hdr & 0x7FFF
        assert hdr & 0x8000, "inode table must be uncompressed"
        block = img[pos + 2: pos + 2 + length]
        # basic regular file (type 2): file_size u32 at +28;
        # extended regular file (type 9): file_size u64 at +24
        for typ, fmt, at in ((2, "<I", 28), (9, "<Q", 24)):
            i = 0
            while True:
                i = block.find(struct.pack("<H", typ), i)
                if i < 0:
                    break
                if i + at + 8 <= len(block) and struct.unpack_from(fmt, block, i + at)[0] == size:
                    return pos + 2 + i, typ
                i += 1
        pos += 2 + length
    raise AssertionError("inode not found")


def test_squashfs_inode_outside_image(pki, good, tmp_path):
    """A validly signed plain bundle whose squashfs has an inode pointing past
    the image: a clear error, not a crash."""
    content = good["content"]
    sq = tmp_path / "evil.sqfs"
    work = tmp_path / "c"
    os.makedirs(work)
    for f in ("rootfs.ext4", "fip.img"):
        os.link(os.path.join(content, f), work / f)
    manifest = json.loads(abota("info", "--keyring", pki.keyring, "--output-format=json",
                                good["plain"]).stdout)
    tmpx = tmp_path / "x"
    abota("extract", "--keyring", pki.keyring, good["plain"], tmpx)
    (work / "manifest.raucm").write_bytes((tmpx / "manifest.raucm").read_bytes())
    run("mksquashfs", work, sq, "-noappend", "-all-root", "-no-xattrs", "-noI", "-quiet",
        "-no-progress")
    img = bytearray(sq.read_bytes())
    off, typ = find_inode(img, 8 << 20)  # rootfs.ext4, stored in full blocks
    if typ == 2:
        struct.pack_into("<I", img, off + 16, 0xFFFFF000)  # blocks_start
    else:
        struct.pack_into("<Q", img, off + 16, 1 << 40)  # blocks_start
    payload = bytes(img) + b"\0" * ((-len(img)) % 4096)
    sig = bc.sign(str(tmp_path), pki.signer[0], pki.signer[1], payload, detached=True)
    b = bc.assemble(tmp_path / "evil.raucb", payload, sig)
    del manifest
    extract_fails(pki, str(b), tmp_path)


def test_bundle_create_bad_input(pki, tmp_path):
    content = make_content(str(tmp_path / "content"))
    out = tmp_path / "out.raucb"
    # generated keys in the input manifest
    m = open(os.path.join(content, "manifest.raucm")).read()
    open(os.path.join(content, "manifest.raucm"), "w").write(
        m.replace("filename=fip.img", "filename=fip.img\nsha256=" + "0" * 64))
    abota_fails("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content, out,
                match="must not be in the input manifest")
    assert not out.exists()
    open(os.path.join(content, "manifest.raucm"), "w").write(
        m.replace("filename=fip.img", "filename=missing.img"))
    abota_fails("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content, out,
                match="missing.img")
    assert not out.exists()
    assert not [f for f in os.listdir(tmp_path) if ".tmp-" in f]
    open(os.path.join(content, "manifest.raucm"), "w").write(m)
    # wrong key for the certificate
    abota_fails("bundle", "--cert", pki.signer[0], "--key", pki.email[1], content, out)
    assert not out.exists()
    # existing output is never overwritten
    out.write_text("keep")
    abota_fails("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content, out,
                match="already exists")
    assert out.read_text() == "keep"
    abota_fails("bundle", "--cert", pki.signer[0], "--key", pki.signer[1],
                "--compression=brotli", content, tmp_path / "o2.raucb", match="--compression")
    # a FIFO in the content is refused
    os.mkfifo(os.path.join(content, "pipe"))
    abota_fails("bundle", "--cert", pki.signer[0], "--key", pki.signer[1], content,
                tmp_path / "o3.raucb", match="only regular files")
    assert not (tmp_path / "o3.raucb").exists()


def test_keyring_directory(pki, good, tmp_path):
    """RAUC's [keyring] directory=: an OpenSSL hashed certificate directory."""
    d = tmp_path / "certs"
    d.mkdir()
    (d / "root.pem").write_bytes(open(pki.keyring, "rb").read())
    run("openssl", "rehash", d)
    abota("info", "--keyring-directory", str(d), good["verity"])
    other = tmp_path / "other"
    other.mkdir()
    (other / "o.pem").write_bytes(open(pki.other_keyring, "rb").read())
    run("openssl", "rehash", other)
    abota_fails("info", "--keyring-directory", str(other), good["verity"],
                match="unable to get local issuer")
