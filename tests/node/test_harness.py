"""The LAN harness itself: isolation from the host, connectivity, cleanup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from p2pmsg.bench.netns import NETNS_PREFIX, ip_cmd, list_namespaces, sweep_stale_namespaces
from tests.harness import HarnessError, Host, Lan, fixtures
from tests.harness.fixtures import MakeLan, require_netns

pytestmark = pytest.mark.timeout(60)

# A tiny TCP echo exchange, run inside the hosts with the test's own Python.
SERVER = (
    "import socket,sys\n"
    "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind((sys.argv[1], 45000)); s.listen(); print('up', flush=True)\n"
    "c,_=s.accept(); c.sendall(c.recv(100).upper())\n"
)
CLIENT = (
    "import socket,sys\n"
    "c=socket.create_connection((sys.argv[1], 45000), timeout=float(sys.argv[2]))\n"
    "c.sendall(b'ping'); print(c.recv(100).decode())\n"
)


def serve(host: Host, address: str) -> subprocess.Popen[str]:
    proc = host.run([sys.executable, "-c", SERVER, address], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
    return proc


def host_links() -> str:
    return ip_cmd("-o", "link", "show").stdout


def test_hosts_reach_each_other_but_nothing_touches_the_host_namespace(make_lan: MakeLan) -> None:
    before = host_links()
    lan = make_lan(2)
    a, b = lan.hosts
    serve(b, b.ip)
    assert b.ip != a.ip and b.ip.startswith("10.77.0.")
    assert a.exec([sys.executable, "-c", CLIENT, b.ip, "5"]).stdout.strip() == "PING"
    # No interface appeared here, and the test subnet is not routed from here.
    assert host_links() == before
    assert "10.77." not in ip_cmd("route", "show", "table", "all").stdout
    # Inside: loopback up, multicast on lan0 and a multicast route.
    assert "LOOPBACK,UP" in a.exec(["ip", "link", "show", "lo"]).stdout
    assert "MULTICAST" in a.exec(["ip", "link", "show", "lan0"]).stdout
    assert "224.0.0.0/4 dev lan0" in a.exec(["ip", "route"]).stdout


def test_add_address_and_link_down_up(make_lan: MakeLan) -> None:
    lan = make_lan(2)
    a, b = lan.hosts
    second = lan.new_address()
    b.add_address(second)
    assert b.addresses == [b.ip, second]
    serve(b, second)
    b.link_down()
    unplugged = a.exec([sys.executable, "-c", CLIENT, second, "1"], check=False)
    assert unplugged.returncode != 0  # no route through an unplugged port
    b.link_up()
    deadline = time.monotonic() + 10
    while True:  # the bridge port needs a moment to forward again
        result = a.exec([sys.executable, "-c", CLIENT, second, "2"], check=False)
        if result.returncode == 0 or time.monotonic() > deadline:
            break
    assert result.stdout.strip() == "PING", result.stderr


def test_children_get_the_environment_plus_extras(make_lan: MakeLan) -> None:
    (a,) = make_lan(1).hosts
    code = "import os; print(os.environ['P2PMSG_FORBID_MDNS_NETNS'], os.environ['EXTRA'])"
    out = a.exec([sys.executable, "-c", code], env={"EXTRA": "yes"}).stdout.split()
    assert out == [os.environ["P2PMSG_FORBID_MDNS_NETNS"], "yes"]
    # ...and they really run in another namespace, so mDNS would be allowed there.
    inner = a.exec(["readlink", "/proc/self/ns/net"]).stdout.strip()
    assert inner != os.environ["P2PMSG_FORBID_MDNS_NETNS"]


@pytest.mark.netns
def test_teardown_kills_processes_and_removes_every_namespace_even_after_a_failure() -> None:
    require_netns()
    lan = Lan()
    try:
        host = lan.add_host()
        stubborn = host.run(
            [
                sys.executable,
                "-c",
                "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
                "print('armed', flush=True); time.sleep(60)",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert stubborn.stdout is not None and stubborn.stdout.readline() == "armed\n"
        names = [lan.switch, host.name]
        assert set(names) <= set(list_namespaces())
        raise RuntimeError("the test body failed")
    except RuntimeError:
        pass
    finally:
        lan.teardown()
    assert stubborn.wait(timeout=5) == -signal.SIGKILL  # it ignored SIGTERM
    assert not set(names) & set(list_namespaces())


@pytest.mark.netns
def test_the_sweep_removes_namespaces_of_dead_runs_only() -> None:
    require_netns()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = f"{NETNS_PREFIX}{dead.pid}-abcdef-sw"
    ours = f"{NETNS_PREFIX}{os.getpid()}-abcdef-sw"
    for name in (stale, ours):
        ip_cmd("netns", "add", name)
    try:
        removed = sweep_stale_namespaces()
        assert stale in removed and ours not in removed
        assert ours in list_namespaces() and stale not in list_namespaces()
    finally:
        for name in (stale, ours):
            ip_cmd("netns", "delete", name, check=False)


def test_only_harness_namespaces_can_be_removed() -> None:
    from p2pmsg.bench.netns import remove_namespace

    with pytest.raises(HarnessError, match="not a harness namespace"):
        remove_namespace("somebody-elses")


def test_without_namespaces_tests_skip_unless_ci_requires_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fixtures, "_availability", ["no root here"])
    monkeypatch.delenv(fixtures.REQUIRE_NETNS_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no root here"):
        require_netns()
    monkeypatch.setenv(fixtures.REQUIRE_NETNS_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="P2PMSG_REQUIRE_NETNS=1"):
        require_netns()
