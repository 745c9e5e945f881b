"""Hosts as network namespaces on a private virtual LAN.

Topology of one `Lan`: a "switch" namespace holding a Linux bridge, and one
namespace per host joined to it by a veth pair (`vN` on the bridge, `lan0`
in the host). Nothing is created in, attached to, or routed from the
namespace this process runs in, so the machine's real interfaces never see a
packet: the bridge has no uplink and the test subnet exists only inside.

Namespace names are `p2pt-<owner pid>-<random>-<role>`. The owner pid lets a
later run tell a namespace left behind by a killed run (owner gone: remove
it) from one a concurrent run is still using (owner alive: leave it).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import Any

NETNS_PREFIX = "p2pt-"
SUBNET = ipaddress.ip_network("10.77.0.0/24")
HOST_IFACE = "lan0"
_IP_TIMEOUT = 10.0


class HarnessError(RuntimeError):
    """The harness could not build or tear down the virtual LAN."""


def _ip_path() -> str:
    path = shutil.which("ip")
    if path is None:
        raise HarnessError("the `ip` command (iproute2) is not installed")
    return path


def ip_cmd(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip ARGS...`; a failure raises `HarnessError` with ip's own message."""
    result = subprocess.run(  # noqa: S603 - the system's `ip`, our own arguments
        [_ip_path(), *args],
        capture_output=True,
        text=True,
        timeout=_IP_TIMEOUT,
        check=False,
    )
    if check and result.returncode != 0:
        raise HarnessError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def list_namespaces() -> list[str]:
    out = ip_cmd("netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _pids_in(netns: str) -> list[int]:
    out = ip_cmd("netns", "pids", netns, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _kill_pids(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def remove_namespace(netns: str) -> None:
    """Kill whatever still runs inside `netns`, then delete it (idempotent)."""
    if not netns.startswith(NETNS_PREFIX):
        raise HarnessError(f"refusing to remove {netns!r}: not a harness namespace")
    _kill_pids(_pids_in(netns))
    ip_cmd("netns", "delete", netns, check=False)


def _owner_pid(netns: str) -> int | None:
    parts = netns[len(NETNS_PREFIX) :].split("-")
    return int(parts[0]) if parts and parts[0].isdigit() else None


def sweep_stale_namespaces() -> list[str]:
    """Remove harness namespaces whose owning test process no longer exists."""
    removed = []
    for netns in list_namespaces():
        if not netns.startswith(NETNS_PREFIX):
            continue
        owner = _owner_pid(netns)
        if owner is not None and os.path.exists(f"/proc/{owner}"):
            continue  # ours or a concurrent run's: its owner removes it
        remove_namespace(netns)
        removed.append(netns)
    return removed


def netns_unavailable_reason() -> str | None:
    """Why the harness cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the LAN harness needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "the LAN harness needs the `ip` command (iproute2)"
    probe = f"{NETNS_PREFIX}{os.getpid()}-{secrets.token_hex(3)}-probe"
    try:
        ip_cmd("netns", "add", probe)
        ip_cmd("-n", probe, "link", "add", "br0", "type", "bridge")
        ip_cmd("-n", probe, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    except (HarnessError, OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot create network namespaces, bridges or veth pairs here: {exc}"
    finally:
        with contextlib.suppress(HarnessError, OSError, subprocess.TimeoutExpired):
            remove_namespace(probe)
    return None


class Host:
    """One machine on the virtual LAN: a namespace with `lan0` and loopback."""

    def __init__(self, lan: Lan, index: int, netns: str, ip: str) -> None:
        self.lan = lan
        self.index = index
        self.name = netns
        self.ip = ip
        self.addresses = [ip]
        self.procs: list[subprocess.Popen[Any]] = []

    def __repr__(self) -> str:
        return f"Host({self.name!r}, ip={self.ip!r})"

    def _argv(self, argv: Sequence[str]) -> list[str]:
        return [_ip_path(), "netns", "exec", self.name, *argv]

    @staticmethod
    def _env(env: Mapping[str, str] | None) -> dict[str, str]:
        merged = dict(os.environ)
        merged.update(env or {})
        return merged

    def run(
        self, argv: Sequence[str], env: Mapping[str, str] | None = None, **popen_kwargs: Any
    ) -> subprocess.Popen[Any]:
        """Start `argv` inside this host; the harness kills it at teardown.

        The child gets this process's environment plus `env`, and its own
        session, so teardown can kill it together with anything it forked.
        """
        popen_kwargs.setdefault("start_new_session", True)
        # The test chooses argv; that is the point of this helper.
        proc: subprocess.Popen[Any] = subprocess.Popen(  # noqa: S603
            self._argv(argv), env=self._env(env), **popen_kwargs
        )
        self.procs.append(proc)
        return proc

    def exec(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside this host to completion, capturing text output."""
        result = subprocess.run(  # noqa: S603 - `ip netns exec` with the caller's argv
            self._argv(argv),
            env=self._env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise HarnessError(
                f"{argv!r} in {self.name} exited {result.returncode}: {result.stderr.strip()}"
            )
        return result

    def add_address(self, ip: str) -> None:
        """A further address on `lan0` (same subnet), e.g. for a multi-homed host."""
        ip_cmd("-n", self.name, "addr", "add", f"{ip}/{SUBNET.prefixlen}", "dev", HOST_IFACE)
        self.addresses.append(ip)

    def link_down(self) -> None:
        """Unplug the cable: the switch port goes down, the host keeps its addresses."""
        ip_cmd("-n", self.lan.switch, "link", "set", f"v{self.index}", "down")

    def link_up(self) -> None:
        ip_cmd("-n", self.lan.switch, "link", "set", f"v{self.index}", "up")

    def kill_all(self, grace: float = 1.0) -> None:
        """SIGTERM every process started here, SIGKILL what is left after `grace`."""
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        # Anything that escaped its session but still lives in the namespace.
        _kill_pids(_pids_in(self.name))


class Lan:
    """A private LAN of namespace hosts behind one bridge. Always call `teardown()`."""

    def __init__(self) -> None:
        self.tag = f"{NETNS_PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
        self.switch = f"{self.tag}-sw"
        self.hosts: list[Host] = []
        self._next_ip = iter(SUBNET.hosts())
        ip_cmd("netns", "add", self.switch)
        try:
            ip_cmd("-n", self.switch, "link", "set", "lo", "up")
            # No IGMP snooping: with no querier on this LAN, snooping could
            # starve multicast; a dumb hub is what mDNS expects anyway.
            ip_cmd("-n", self.switch, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
            ip_cmd("-n", self.switch, "link", "set", "br0", "up")
        except BaseException:
            self.teardown()
            raise

    def new_address(self) -> str:
        return str(next(self._next_ip))

    def add_host(self) -> Host:
        index = len(self.hosts) + 1
        host = Host(self, index, f"{self.tag}-h{index}", self.new_address())
        self.hosts.append(host)  # before creation, so teardown removes a half-built host
        ns, sw = host.name, self.switch
        ip_cmd("netns", "add", ns)
        ip_cmd("-n", ns, "link", "set", "lo", "up")
        ip_cmd(
            "-n",
            sw,
            "link",
            "add",
            f"v{index}",
            "type",
            "veth",
            "peer",
            "name",
            HOST_IFACE,
            "netns",
            ns,
        )
        ip_cmd("-n", sw, "link", "set", f"v{index}", "master", "br0")
        ip_cmd("-n", sw, "link", "set", f"v{index}", "up")
        ip_cmd("-n", ns, "addr", "add", f"{host.ip}/{SUBNET.prefixlen}", "dev", HOST_IFACE)
        ip_cmd("-n", ns, "link", "set", HOST_IFACE, "multicast", "on", "up")
        ip_cmd("-n", ns, "route", "add", "224.0.0.0/4", "dev", HOST_IFACE)
        return host

    def teardown(self) -> None:
        """Kill every process in the hosts, then delete all namespaces (never raises)."""
        for host in self.hosts:
            with contextlib.suppress(Exception):
                host.kill_all()
        for netns in [h.name for h in self.hosts] + [self.switch]:
            with contextlib.suppress(Exception):
                remove_namespace(netns)
