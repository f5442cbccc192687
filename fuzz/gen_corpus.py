#!/usr/bin/env python3
"""Builds the seed corpora of the fuzz targets from the project's fixtures.

  fuzz/gen_corpus.py SRCDIR OUTDIR

SRCDIR is the source tree (boards/, tests/unit/, ../shared/fixtures/rauc);
OUTDIR gets one directory per target.  fuzz/corpus/ in the tree is the
committed output of this script (small: the two RAUC fixture bundles and
what is derived from them, board profiles, FWU reference dumps); `make fuzz`
copies it into build-fuzz/corpus/ where libFuzzer adds what it finds.
"""
import glob
import hashlib
import os
import re
import struct
import subprocess
import sys
import tempfile
import zlib


def put(outdir, target, data, name=None):
    d = os.path.join(outdir, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    name = name or hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def c_strings(path):
    """Concatenated C string literals of `static const char NAME[] = "...";`."""
    text = open(path, encoding="utf-8").read()
    out = []
    for m in re.finditer(r'static const char \w+\[\]\s*=\s*((?:\s*"(?:[^"\\]|\\.)*")+)\s*;', text):
        parts = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))
        s = "".join(parts)
        out.append(s.encode().decode("unicode_escape").encode("latin-1"))
    return out


def c_byte_arrays(path):
    text = open(path, encoding="utf-8").read()
    out = []
    for m in re.finditer(r'static const uint8_t \w+\[\d*\]\s*=\s*\{([^}]*)\}', text):
        vals = [int(v, 0) for v in re.findall(r'0x[0-9a-fA-F]+|\b\d+\b', m.group(1))]
        if len(vals) >= 32:
            out.append(bytes(vals))
    return out


def fwu_v1(active=0, prev=1, banks=2, images=1, accepted=1):
    body = struct.pack("<III", 1, active, prev)
    for i in range(images):
        body += bytes(range(16 * i, 16 * i + 16)) + b"\x11" * 16
        for b in range(banks):
            body += bytes([0x40 + b] * 16) + struct.pack("<II", accepted, 0)
    return struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF) + body


def bundle_parts(data):
    (sig,) = struct.unpack(">Q", data[-8:])
    return data[: len(data) - 8 - sig], data[len(data) - 8 - sig : -8]


def main():
    src, out = sys.argv[1], sys.argv[2]
    fixtures = os.path.join(src, "..", "shared", "fixtures", "rauc")
    bundles = sorted(glob.glob(os.path.join(fixtures, "*.raucb")))
    confs = sorted(glob.glob(os.path.join(src, "boards", "*", "*.conf")))

    manifests = []
    for b in bundles:
        data = open(b, "rb").read()
        put(out, "bundle", data, os.path.basename(b))
        payload, _ = bundle_parts(data)
        with tempfile.TemporaryDirectory() as td:
            img = os.path.join(td, "p.sqfs")
            open(img, "wb").write(payload)
            r = subprocess.run(["unsquashfs", "-cat", img, "manifest.raucm"],
                               capture_output=True)
            if r.returncode == 0:
                manifests.append(r.stdout)
            # squashfs size: bytes_used (offset 40) rounded up to 4096
            (used,) = struct.unpack("<Q", payload[40:48])
            sq = payload[: (used + 4095) // 4096 * 4096]
            put(out, "squashfs", b"\x00" + sq, os.path.basename(b) + ".sqfs")
            put(out, "squashfs", b"\x01" + sq, os.path.basename(b) + ".threads.sqfs")
            tree = payload[len(sq):]
            if tree:
                # fuzz_verity header: data_size/hash_size selectors, salt,
                # root, flags (1: recompute root, 4: hash_size from data,
                # 8: use the valid tree).
                nblk = len(sq) // 4096
                hdr = struct.pack("<QQ", nblk, len(tree) // 4096) + b"\x5a" * 32 + b"\0" * 32
                put(out, "verity", hdr + b"\x01" + payload, "verity-fixture")
                put(out, "verity", hdr + b"\x0d" + payload, "verity-fixture-validtree")
                put(out, "verity", hdr + b"\x02" + payload, "verity-fixture-raw")
    for m in manifests + c_strings(os.path.join(src, "tests", "unit", "test_manifest.c")):
        put(out, "manifest", m)
        put(out, "keyfile", m)
    for c in confs:
        data = open(c, "rb").read()
        target = "board" if c.endswith("board.conf") else "config"
        put(out, target, data, os.path.basename(os.path.dirname(c)) + "-" + os.path.basename(c))
        put(out, "keyfile", data, os.path.basename(os.path.dirname(c)) + "-" + os.path.basename(c))
    for s in c_strings(os.path.join(src, "tests", "unit", "test_config.c")):
        put(out, "config", s)
    for s in c_strings(os.path.join(src, "tests", "unit", "test_board.c")):
        put(out, "board", s)
    for s in c_strings(os.path.join(src, "tests", "unit", "test_slot_status.c")):
        put(out, "slot_status", s)
        put(out, "keyfile", s)
    for s in c_strings(os.path.join(src, "tests", "unit", "test_keyfile.c")):
        put(out, "keyfile", s)
    for i, d in enumerate(c_byte_arrays(os.path.join(src, "tests", "unit", "test_fwu_metadata.c"))):
        put(out, "fwu_metadata", d, "ref-%d" % i)
    put(out, "fwu_metadata", fwu_v1(), "v1-st")
    put(out, "fwu_metadata", fwu_v1(1, 0, 4, 2, 0), "v1-4x2")
    for s in ["bytes 0-0/1", "bytes 0-4095/17829", "bytes 1048576-2097151/157286400",
              "bytes 18446744073709551614-18446744073709551614/18446744073709551615",
              "bytes */17829"]:
        put(out, "http_range", s)


if __name__ == "__main__":
    main()
