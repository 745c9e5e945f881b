"""The LAN test harness: hosts as network namespaces on a private virtual LAN.

Why: p2pmsg is tested through the real stack (real mDNS, real TCP), but this
machine's real interface is not ours. Each test builds its own LAN out of
network namespaces, so multicast and TCP stay inside it (DESIGN.md,
"Networking safety").

Using it in a test (the `make_lan` fixture is registered for the whole
suite by `pytest_plugins` in tests/conftest.py)::

    import subprocess, sys
    from tests.harness import JsonLines

    def test_two_nodes(make_lan, tmp_path):
        lan = make_lan(2)                       # two hosts, 10.77.0.1 and .2
        a, b = lan.hosts
        proc = a.run([sys.executable, "-m", "p2pmsg", "listen", "--json",
                      "--data-dir", str(tmp_path / "a")],
                     env={"P2PMSG_PASSWORD": "..."},
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = JsonLines(proc)                 # background reader, deadlines
        ready = lines.wait_for(lambda o: o.get("event") == "ready", timeout=10)
        result = b.exec([sys.executable, "-m", "p2pmsg", "send", ...])  # runs to completion

API (p2pmsg/bench/netns.py: shipped, since `p2pmsg bench discovery` builds the same LAN):

- `make_lan(n_hosts=2) -> Lan`; `lan.hosts: list[Host]`; `lan.add_host()` adds one later.
- `Host.name` (the namespace), `Host.ip` (first address), `Host.addresses`.
- `Host.run(argv, env=None, **popen_kwargs) -> Popen`: `ip netns exec NAME argv`,
  with this process's environment plus `env`, in a new session.
- `Host.exec(argv, env=None, timeout=30, check=True) -> CompletedProcess[str]`.
- `Host.add_address(ip)`: a second address on the same link (`lan.new_address()`
  hands out a free one).
- `Host.link_down()` / `Host.link_up()`: unplug / replug its switch port.
- `Host.kill_all(grace=1.0)`: SIGTERM, then SIGKILL, every process started there.

Topology: a bridge in its own "switch" namespace, one veth pair per host
(`lan0` inside the host, 10.77.0.0/24, multicast on, route 224.0.0.0/4 on
`lan0`, loopback up). Nothing is attached to the namespace pytest runs in.

Cleanup: the fixture's finalizer runs whether the test passed or failed; it
kills every process started in the hosts (and anything else still inside the
namespaces) and deletes all of the LAN's namespaces, which destroys the
bridge and the veth pairs with them. Names are `p2pt-<pid>-<random>-...`; at
session start, namespaces whose owner pid is gone (a killed run) are swept.
Concurrent runs never touch each other's namespaces.

Without root or `ip` the tests that use `make_lan` skip with the reason;
with `P2PMSG_REQUIRE_NETNS=1` (CI) they fail instead. They carry the
`netns` marker automatically.

mDNS safety: tests/conftest.py puts the host namespace in
`P2PMSG_FORBID_MDNS_NETNS`; p2pmsg's discovery refuses to start there
(p2pmsg/node/net/netguard.py), so a process accidentally started outside a
harness host fails instead of announcing itself on the real LAN.

`p2pmsg/bench/discovery_probe.py` (shipped: `p2pmsg bench discovery` uses it too)
runs discovery alone and prints one JSON
line per event; see its docstring.
"""

from __future__ import annotations

from p2pmsg.bench.netns import SUBNET, HarnessError, Host, Lan
from tests.harness.procs import JsonLines

#: Run with `[sys.executable, "-m", DISCOVERY_PROBE, ...]` inside a host.
DISCOVERY_PROBE = "p2pmsg.bench.discovery_probe"

__all__ = ["DISCOVERY_PROBE", "SUBNET", "HarnessError", "Host", "JsonLines", "Lan"]
