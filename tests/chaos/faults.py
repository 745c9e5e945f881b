"""Doing and undoing faults on the namespace LAN (the schedule says which, when).

Everything here acts on hosts the harness created: their switch ports, their
addresses, their queueing disciplines, the relay, a tmpfs we mounted. Faults
of the same kind may overlap on one host, so link and shaping faults are
reference-counted: the cable goes back in when the last pull of it ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from p2pmsg.bench.netns import HOST_IFACE, SUBNET, Host, Lan, ip_cmd


def _tc(netns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    tc = shutil.which("tc") or "tc"
    result = subprocess.run(
        [shutil.which("ip") or "ip", "netns", "exec", netns, tc, *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"tc {' '.join(args)} in {netns}: {result.stderr.strip()}")
    return result


def netem_available(host: Host) -> bool:
    """Whether this kernel has sch_netem (checked once, on a harness host)."""
    ok = (
        _tc(
            host.name,
            "qdisc",
            "add",
            "dev",
            HOST_IFACE,
            "root",
            "netem",
            "delay",
            "1ms",
            check=False,
        ).returncode
        == 0
    )
    if ok:
        _tc(host.name, "qdisc", "del", "dev", HOST_IFACE, "root", check=False)
    return ok


class FaultBox:
    def __init__(self, lan: Lan, *, netem: bool) -> None:
        self.lan = lan
        self.netem = netem
        self._links_down: Counter[str] = Counter()
        self._shaped: Counter[str] = Counter()

    # --- the cable -----------------------------------------------------------------------

    def link_down(self, host: Host) -> None:
        if self._links_down[host.name] == 0:
            host.link_down()
        self._links_down[host.name] += 1

    def link_up(self, host: Host) -> None:
        self._links_down[host.name] -= 1
        if self._links_down[host.name] <= 0:
            self._links_down[host.name] = 0
            host.link_up()

    # --- kernel shaping: netem where the kernel has it, else a token bucket --------------

    def shape(self, host: Host, rate_kbit: int) -> str:
        """Slow both directions of the host's port; returns what was applied."""
        if self.netem:
            spec = ["netem", "delay", "80ms", "20ms", "loss", "3%", "rate", f"{rate_kbit}kbit"]
        else:
            # A small bucket and a short queue: bursts beyond it are dropped (real loss).
            spec = ["tbf", "rate", f"{rate_kbit}kbit", "burst", "16kbit", "latency", "150ms"]
        if self._shaped[host.name] == 0:
            _tc(host.name, "qdisc", "replace", "dev", HOST_IFACE, "root", *spec)
            _tc(self.lan.switch, "qdisc", "replace", "dev", f"v{host.index}", "root", *spec)
        self._shaped[host.name] += 1
        return " ".join(spec)

    def unshape(self, host: Host) -> None:
        self._shaped[host.name] -= 1
        if self._shaped[host.name] <= 0:
            self._shaped[host.name] = 0
            _tc(host.name, "qdisc", "del", "dev", HOST_IFACE, "root", check=False)
            _tc(self.lan.switch, "qdisc", "del", "dev", f"v{host.index}", "root", check=False)

    # --- a new address (DHCP gave us another lease) --------------------------------------

    def change_address(self, host: Host) -> tuple[str, str]:
        old, new = host.ip, self.lan.new_address()
        prefix = SUBNET.prefixlen
        ip_cmd("-n", host.name, "addr", "del", f"{old}/{prefix}", "dev", HOST_IFACE)
        ip_cmd("-n", host.name, "addr", "add", f"{new}/{prefix}", "dev", HOST_IFACE)
        host.ip = new
        host.addresses = [new]
        return old, new

    # --- a full downloads disk -----------------------------------------------------------

    @staticmethod
    def fill_disk(filler: Path) -> int:
        """Take every free byte of the filesystem holding `filler`; returns how many."""
        st = os.statvfs(filler.parent)
        free = st.f_bavail * st.f_frsize
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            with contextlib.suppress(OSError):
                os.posix_fallocate(fd, 0, max(1, free))
            with contextlib.suppress(OSError):  # whatever fallocate left, byte blocks take
                os.lseek(fd, 0, os.SEEK_END)
                while os.write(fd, b"\0" * 65536):
                    pass
        finally:
            os.close(fd)
        return free

    @staticmethod
    def free_disk(filler: Path) -> None:
        filler.unlink(missing_ok=True)

    def restore_all(self, hosts: list[Host]) -> None:
        """The end of the fault phase: every cable in, every shaping gone."""
        for host in hosts:
            if self._links_down[host.name]:
                self._links_down[host.name] = 1
                self.link_up(host)
            if self._shaped[host.name]:
                self._shaped[host.name] = 1
                self.unshape(host)


def mount_tmpfs(path: Path, mib: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0700", "tmpfs", str(path)],  # noqa: S607
        check=True,
        capture_output=True,
        timeout=10,
    )


def unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True, timeout=10)  # noqa: S607
