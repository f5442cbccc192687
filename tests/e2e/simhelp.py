"""Helpers for the FWU metadata and board simulator tests (test_fwu_*.py,
test_sim_*.py): run abota / abota-sim, read the simulated board, and an
independent Python encoder of FWU metadata (specs/fwu-metadata.md §1) used to
cross-check the C codec and to craft bad input."""
import json
import os
import struct
import subprocess
import uuid
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("ABOTA_BUILD", os.path.join(SRCDIR, "build"))
ABOTA = os.path.join(BUILD, "src", "abota", "abota")
SIM = os.path.join(BUILD, "src", "abota-sim", "abota-sim")

FIP_TYPE = "19d5df83-11b0-457b-be2c-7559c13142a5"
MDATA_TYPE = "8a7a84a0-8387-40f6-ab41-a8b9a5a60d23"
FIP_A = "4fd84c93-54ef-463f-a7ef-ae25ff887087"
FIP_B = "09c54952-d5bf-45af-acee-335303766fb3"
ROOTFS_A = "e91c4e10-16e6-4c0e-bd0e-77becf4a3582"
ROOTFS_B = "087c3ebe-60ca-4517-a55d-c1d7237ead55"
ACCEPTED, VALID, INVALID = 0xFC, 0xFE, 0xFF
STATE_LETTER = {ACCEPTED: "A", VALID: "V", INVALID: "I"}
STATE_NAME = {"accepted": "A", "valid": "V", "invalid": "I"}

# The three BL2 variants of specs/fwu-metadata.md §2.3.
VARIANTS = {
    "r3": dict(tfa="r3", md_version=2, max=4),
    "upstream": dict(tfa="upstream", md_version=2, max=3),
    "v1": dict(tfa="v1", md_version=1, max=3),
}


def run(args, check=True, env=None, input=None):
    e = dict(os.environ)
    e.pop("ABOTA_POWERCUT", None)
    e.pop("ABOTA_POWERCUT_LOG", None)
    if env:
        e.update(env)
    p = subprocess.run([str(a) for a in args], capture_output=True, env=e, input=input)
    out = p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace")
    assert "AddressSanitizer" not in err and "runtime error" not in err, err
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}):\nstdout: {out}\nstderr: {err}")
    p.out, p.err = out, err
    return p


def abota(*args, check=True, env=None):
    return run([ABOTA, *args], check=check, env=env)


def sim(*args, check=True, env=None):
    return run([SIM, *args], check=check, env=env)


# --- an independent FWU metadata encoder ------------------------------------

def guid_le(s):
    return uuid.UUID(s).bytes_le


def encode_md(version=2, active=0, previous=1, states=(ACCEPTED, ACCEPTED), accepted=None,
              images=None, banks=2, metadata_size=None, desc_offset=0x20,
              img_entry_size=None, bank_info_entry_size=24, crc_len=None):
    """FWU metadata bytes. images: list of (location, type, [bank guids]);
    accepted: per bank accepted flag (default 1 everywhere, as mkfwumdata)."""
    if images is None:
        images = [(MDATA_TYPE, FIP_TYPE, [FIP_A, FIP_B][:banks])]
    if accepted is None:
        accepted = [1] * banks
    entries = b""
    for loc, typ, bguids in images:
        entries += guid_le(typ) + guid_le(loc)
        for b in range(banks):
            entries += guid_le(bguids[b]) + struct.pack("<II", accepted[b], 0)
    if version == 1:
        body = struct.pack("<III", 1, active, previous) + entries
    else:
        size = 32 + 8 + len(entries)
        st = list(states) + [INVALID] * (4 - len(states))
        hdr = struct.pack("<IIIIHH4BI", 2, active, previous,
                          size if metadata_size is None else metadata_size,
                          desc_offset, 0, *st, 0)
        desc = struct.pack("<BBHHH", banks, 0, len(images),
                           32 + 24 * banks if img_entry_size is None else img_entry_size,
                           bank_info_entry_size)
        body = hdr + desc + entries  # version .. end, without the crc
    data = body
    n = len(data) + 4 if crc_len is None else crc_len
    crc = zlib.crc32(data[:n - 4]) & 0xFFFFFFFF
    return struct.pack("<I", crc) + data


def decode_header(data):
    crc, version, active, previous = struct.unpack_from("<IIII", data, 0)
    d = dict(crc=crc, version=version, active=active, previous=previous)
    if version == 2:
        d["metadata_size"], d["desc_offset"] = struct.unpack_from("<IH", data, 16)
        d["states"] = list(data[0x18:0x1C])
    return d


# --- the simulated board ----------------------------------------------------

class Board:
    """A simulated board directory."""

    def __init__(self, path, board="stm32mp157f-dk2", variant="r3", full=True, seed=1,
                 uboot="st", create=True, extra=()):
        self.dir = str(path)
        self.board = board
        self.variant = variant
        self.v = VARIANTS[variant]
        self.disk = os.path.join(self.dir, "disk.img")
        if create:
            args = ["create", board, self.dir, f"--tfa={self.v['tfa']}", f"--seed={seed}",
                    f"--uboot={uboot}", "--force", *extra]
            if full:
                args.append("--full")
            sim(*args)

    # firmware
    def boot(self, *opts, check_rc=None):
        p = sim("boot", self.dir, "--quiet", *opts, check=False)
        assert p.returncode in (0, 3, 4, 137), p.err
        if check_rc is not None:
            assert p.returncode == check_rc, (p.returncode, p.err, self.console_tail())
        h = self.history()[-1]
        assert h["event"] == "boot"
        h["rc"] = p.returncode
        return h

    def event(self, *args, check=True):
        return sim("event", self.dir, *args, check=check)

    def status(self):
        return json.loads(sim("status", self.dir, "--output-format=json").out)

    def history(self):
        with open(os.path.join(self.dir, "history.log")) as f:
            return [json.loads(l) for l in f if l.strip()]

    def console_tail(self, n=40):
        with open(os.path.join(self.dir, "console.log")) as f:
            return "".join(f.readlines()[-n:])

    def last_console(self):
        """Console lines of the last power-on."""
        with open(os.path.join(self.dir, "console.log")) as f:
            text = f.read()
        return text.rsplit("=== abota-sim power-on", 1)[-1]

    def fwu_info(self):
        with open(os.path.join(self.dir, "fwu_info"), "rb") as f:
            v = struct.unpack("<I", f.read())[0]
        return v & 0xF, (v >> 4) & 0xF

    def set_fwu_info(self, idx, counter):
        with open(os.path.join(self.dir, "fwu_info"), "wb") as f:
            f.write(struct.pack("<I", (counter & 0xF) << 4 | (idx & 0xF)))

    def cmdline(self):
        with open(os.path.join(self.dir, "cmdline")) as f:
            return f.read().strip()

    # metadata
    def md_args(self):
        return ["--disk", self.disk, f"--md-version={self.v['md_version']}"]

    def dump(self, check=True):
        p = abota("fwu", "dump", *self.md_args(), "--output-format=json", check=check)
        return json.loads(p.out)

    def md(self):
        """(active, previous, "AV"...) of the metadata in effect."""
        d = self.dump()["metadata"]
        return (d["active_index"], d["previous_active_index"],
                "".join(STATE_NAME[b["state"]] for b in d["banks"]))

    def copies_valid(self):
        return [c["valid"] for c in self.dump(check=False)["copies"]]

    def st_update_metadata(self, active, previous, mode, env=None, check=True):
        """ST's update_metadata.sh <active> <previous> accept|refuse: regenerate
        both copies with mkfwumdata (-s A,A or the active bank V)."""
        if mode == "accept":
            states = "A,A"
        else:
            states = "V,A" if active == 0 else "A,V"
        return abota("fwu", "create", *self.md_args(), "-a", str(active), "-p", str(previous),
                     "-s", states, env=env, check=check)

    def raw_copy(self, name):
        off = self.part(name)["start"]
        with open(self.disk, "rb") as f:
            f.seek(off)
            return f.read(4096)

    def part(self, name):
        if not hasattr(self, "_parts"):
            self._parts = gpt_parts(self.disk)
        return self._parts[name]

    def write_copy(self, name, data, nbytes=None):
        path = os.path.join(self.dir, f".{name}.new")
        with open(path, "wb") as f:
            f.write(data)
        args = ["write", self.dir, name, path]
        if nbytes is not None:
            args.append(f"--bytes={nbytes}")
        sim(*args)


def gpt_parts(disk):
    """Partitions of a GPT image, parsed in Python (independent of libfdisk)."""
    with open(disk, "rb") as f:
        f.seek(512)
        hdr = f.read(92)
        assert hdr[:8] == b"EFI PART"
        entries_lba, n, esz = struct.unpack_from("<QII", hdr, 72)
        f.seek(entries_lba * 512)
        raw = f.read(n * esz)
    parts = {}
    for i in range(n):
        e = raw[i * esz:(i + 1) * esz]
        if e[:16] == b"\0" * 16:
            continue
        first, last = struct.unpack_from("<QQ", e, 32)
        name = e[56:128].decode("utf-16le").rstrip("\0")
        parts[name] = dict(number=i + 1, type=str(uuid.UUID(bytes_le=e[:16])),
                           uuid=str(uuid.UUID(bytes_le=e[16:32])), start=first * 512,
                           size=(last - first + 1) * 512, attrs=struct.unpack_from("<Q", e, 48)[0])
    return parts


# What a build system writes into a bank's bootfs and rootfs (naming bank A);
# abota's bank fix-ups make them name the bank they are installed into.
EXTLINUX = """menu title Select the boot mode
DEFAULT OpenSTLinux
LABEL OpenSTLinux
    KERNEL /uImage
    APPEND root=PARTUUID=e91c4e10-16e6-4c0e-bd0e-77becf4a3582 rootwait rw console=ttySTM0,115200 rauc.slot=A
"""
FSTAB = """PARTLABEL=bootfs-a /boot ext4 defaults 0 0
PARTLABEL=vendorfs-a /vendor ext4 defaults 0 0
PARTLABEL=userfs /usr/local ext4 defaults 0 0
"""


def gpt_edit(disk, name, new_name=None, new_type=None):
    """Renames / retypes the partition `name` in both GPT copies (entries and
    header CRCs recomputed), as a user's sgdisk would."""
    with open(disk, "r+b") as f:
        f.seek(512)
        hdr = bytearray(f.read(92))
        assert hdr[:8] == b"EFI PART"
        alt = struct.unpack_from("<Q", hdr, 32)[0]
        for lba in (1, alt):
            f.seek(lba * 512)
            h = bytearray(f.read(92))
            hsize = struct.unpack_from("<I", h, 12)[0]
            elba, n, esz = struct.unpack_from("<QII", h, 72)
            f.seek(elba * 512)
            raw = bytearray(f.read(n * esz))
            hit = False
            for i in range(n):
                e = i * esz
                if raw[e:e + 16] == b"\0" * 16:
                    continue
                if raw[e + 56:e + 128].decode("utf-16le").rstrip("\0") != name:
                    continue
                hit = True
                if new_type:
                    raw[e:e + 16] = uuid.UUID(new_type).bytes_le
                if new_name is not None:
                    raw[e + 56:e + 128] = new_name.encode("utf-16le").ljust(72, b"\0")
            assert hit, name
            f.seek(elba * 512)
            f.write(raw)
            struct.pack_into("<I", h, 88, zlib.crc32(bytes(raw)) & 0xFFFFFFFF)
            struct.pack_into("<I", h, 16, 0)
            struct.pack_into("<I", h, 16, zlib.crc32(bytes(h[:hsize])) & 0xFFFFFFFF)
            f.seek(lba * 512)
            f.write(h)
