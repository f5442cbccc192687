"""Drives qemu-system-aarch64 over its serial console (plain pipes, no pexpect).

One VM object is one QEMU process: a guest reset (reboot, kernel panic with panic=-1)
boots U-Boot again in the same process, as a real board resets; kill() is a power cut
of the whole machine.  Everything the guest prints is kept in order (and in a log file)
so a test can wait for the next line matching a pattern."""
import os
import re
import signal
import subprocess
import threading
import time

UBOOT_BIN = "/usr/lib/u-boot/qemu_arm64/u-boot.bin"
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


class VMError(AssertionError):
    pass


class VM:
    def __init__(self, disk, log_path, pflash=None, memory=512):
        self.log_path = log_path
        self.buf = ""
        self.pos = 0
        self.cond = threading.Condition()
        self.exited = None
        self.cmd_no = 0
        args = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a53", "-m", str(memory),
                "-smp", "1", "-display", "none", "-monitor", "none", "-serial", "stdio",
                "-nic", "none", "-bios", UBOOT_BIN,
                "-drive", f"if=virtio,format=raw,file={disk}"]
        if pflash:
            args += ["-drive", f"if=pflash,index=1,format=raw,file={pflash}"]
        self.log = open(log_path, "ab")
        self.log.write(b"\n===== power on: " + " ".join(args).encode() + b"\n")
        self.log.flush()
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            self.log.write(chunk)
            self.log.flush()
            text = ANSI.sub(b"", chunk).replace(b"\r", b"").decode("utf-8", "replace")
            with self.cond:
                self.buf += text
                self.cond.notify_all()
        rc = self.proc.wait()
        with self.cond:
            self.exited = rc
            self.cond.notify_all()

    def tail(self, n=3000):
        with self.cond:
            return self.buf[-n:]

    def expect(self, pattern, timeout=60, fail=None):
        """Waits for pattern after the current position; returns the match and moves
        past it.  fail: a pattern that must not appear first (e.g. a panic)."""
        rx = re.compile(pattern, re.M)
        frx = re.compile(fail, re.M) if fail else None
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                # complete lines only: a line still being printed must not match half
                end = self.buf.rfind("\n") + 1
                m = rx.search(self.buf, self.pos, max(end, self.pos))
                f = frx.search(self.buf, self.pos, max(end, self.pos)) if frx else None
                if f and (not m or f.start() < m.start()):
                    raise VMError(f"{f.group(0)!r} before {pattern!r}; console:\n"
                                  f"{self.buf[self.pos:][-3000:]}")
                if m:
                    self.pos = m.end()
                    return m
                if self.exited is not None:
                    raise VMError(f"QEMU exited ({self.exited}) waiting for {pattern!r}; "
                                  f"console:\n{self.buf[self.pos:][-3000:]}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise VMError(f"timeout ({timeout}s) waiting for {pattern!r}; console:\n"
                                  f"{self.buf[self.pos:][-3000:]}")
                self.cond.wait(left)

    def booted(self, timeout=60):
        """Waits for the guest's next boot to reach its shell: (slot, version)."""
        m = self.expect(r"ABOTA-QEMU: booted slot=(\w*) version=(\S*) boot=(\w*)", timeout,
                        fail=r"Kernel panic - not syncing(?!: sysrq triggered crash)")
        self.expect(r"ABOTA-QEMU: ready", 30)
        return m.group(1), m.group(2)

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def sh(self, line, timeout=60, check=True):
        """Runs a shell command line in the guest; returns (exit code, output)."""
        self.cmd_no += 1
        tag = f"@@{self.cmd_no}"
        # the marker is printed by echo, so the command text itself never matches it
        self.send(f"{line}; echo \"{tag} RC=$?@@\"\n")
        start = self.pos
        m = self.expect(re.escape(tag) + r" RC=(\d+)@@", timeout)
        out = self.buf[start:m.start()]
        rc = int(m.group(1))
        if check and rc != 0:
            raise VMError(f"guest command failed ({rc}): {line}\n{out}")
        return rc, out

    def reboot(self):
        """A clean reboot: sync, unmount, reset (U-Boot runs again in this process)."""
        self.send("sync; umount /data; umount /boot; reboot -f\n")

    def kill(self):
        """Power cut: the whole machine stops at once (guest page cache lost)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.reader.join(5)
        self.log.write(b"\n===== power cut\n")
        self.log.close()

    def poweroff(self, timeout=30):
        self.send("sync; umount /data; umount /boot; poweroff -f\n")
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise VMError("guest did not power off")
        self.reader.join(5)
        self.log.close()

    def close(self):
        if self.proc.poll() is None:
            self.kill()
        elif not self.log.closed:
            self.reader.join(5)
            self.log.close()
