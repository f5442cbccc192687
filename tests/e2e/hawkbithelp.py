"""Helpers of the abotad tests: a simulated board with the agent's config,
running abotad against the DDI test server (ddiserver.py)."""
import json
import os
import signal
import subprocess
import time
import uuid

from simhelp import ABOTA, BUILD, Board

ABOTAD = os.path.join(BUILD, "src", "abotad", "abotad")


class Device:
    """A simulated board plus abotad's hawkbit.conf and data."""

    def __init__(self, tmp, server, pki, stream=False, board="stm32mp157f-dk2", extra="",
                 token=None, reboot=True):
        self.dir = str(tmp)
        os.makedirs(self.dir, exist_ok=True)
        self.server = server
        self.pki = pki
        self.board = Board(os.path.join(self.dir, "board"), board=board)
        self.board.boot(check_rc=0)
        self.download = os.path.join(self.dir, "bundle.raucb")
        self.reboot_flag = os.path.join(self.dir, "reboot-requested")
        self.status_file = os.path.join(self.dir, "run", "hawkbit.status")
        self.conf = os.path.join(self.dir, "hawkbit.conf")
        # the simulated kernel's boot id: a real reboot gives a new one
        self.boot_id = os.path.join(self.dir, "boot_id")
        self.new_boot_id()
        self.write_conf(stream=stream, extra=extra, token=token, reboot=reboot)

    def write_conf(self, stream=False, extra="", token=None, reboot=True):
        tok = self.server.token if token is None else token
        text = (f"[client]\nhawkbit_server={self.server.host}\nssl=false\n"
                f"tenant_id={self.server.tenant}\ntarget_name={self.server.controller}\n"
                f"auth_token={tok}\n"
                f"bundle_download_location={self.download}\n"
                f"stream_bundle={'true' if stream else 'false'}\n"
                f"post_update_reboot={'true' if reboot else 'false'}\n"
                f"reboot_command=touch {self.reboot_flag}\n"
                f"retry_wait=1\naction_poll_interval=1\ntimeout=20\n"
                f"status_file={self.status_file}\nboot_id_file={self.boot_id}\n" + extra +
                "\n[device]\nhwRevision=2\nserial=8922673153   \n")
        with open(self.conf, "w") as f:
            f.write(text)

    @property
    def system_conf(self):
        return os.path.join(self.board.dir, "system.conf")

    @property
    def state_path(self):
        return os.path.join(self.board.dir, "data", "hawkbit.state")

    def args(self):
        return [ABOTAD, "-c", self.conf, "-s", self.system_conf, "-C",
                f"keyring:path={self.pki.keyring}"]

    def once(self, expect_rc=0, env=None):
        e = dict(os.environ)
        e.pop("ABOTA_LOG", None)
        if env:
            e.update(env)
        p = subprocess.run(self.args() + ["--run-once"], capture_output=True, text=True,
                           env=e, timeout=300)
        assert "AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
        assert not self.server.token or self.server.token not in p.stderr + p.stdout, \
            "token leaked into the log"
        if expect_rc is not None:
            assert p.returncode == expect_rc, (p.returncode, p.stderr)
        return p

    def start(self):
        e = dict(os.environ)
        e.pop("ABOTA_LOG", None)
        return subprocess.Popen(self.args(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=e)

    def state(self):
        if not os.path.exists(self.state_path):
            return {}
        st, group = {}, None
        with open(self.state_path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("["):
                    group = line[1:-1]
                elif "=" in line:
                    k, v = line.split("=", 1)
                    st[f"{group}.{k}"] = v
        return st

    def phase(self):
        return self.state().get("action.phase", "idle")

    def new_boot_id(self):
        with open(self.boot_id, "w") as f:
            f.write(str(uuid.uuid4()) + "\n")

    def reboot(self, *opts):
        """What the reboot command asked for: the harness power-cycles the
        simulated board (and the kernel it boots has a new boot id)."""
        if os.path.exists(self.reboot_flag):
            os.unlink(self.reboot_flag)
        self.new_boot_id()
        return self.board.boot(*opts)

    def abota(self, *args, check=True):
        p = subprocess.run([ABOTA, "-c", self.system_conf, "-C",
                            f"keyring:path={self.pki.keyring}", *args],
                           capture_output=True, text=True)
        if check:
            assert p.returncode == 0, p.stderr
        return p


def wait_for(pred, timeout=30, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return False


def stop(proc, sig=signal.SIGTERM, timeout=30):
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def executions(feedback):
    return [(b["status"]["execution"], b["status"]["result"]["finished"]) for b in feedback]


def details(feedback):
    return [" ".join(b["status"].get("details", [])) for b in feedback]
