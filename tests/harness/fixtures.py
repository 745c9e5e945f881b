"""pytest plugin: the `make_lan` fixture and the stale-namespace sweep.

Registered for the whole suite by `pytest_plugins` in tests/conftest.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator

import pytest

from p2pmsg.bench.netns import Lan, netns_unavailable_reason, sweep_stale_namespaces

REQUIRE_NETNS_ENV = "P2PMSG_REQUIRE_NETNS"

_availability: list[str | None] = []  # memo: computed once per process


def require_netns() -> None:
    """Skip (or, with P2PMSG_REQUIRE_NETNS=1, fail) when namespaces are unavailable."""
    if not _availability:
        _availability.append(netns_unavailable_reason())
    reason = _availability[0]
    if reason is None:
        return
    if os.environ.get(REQUIRE_NETNS_ENV) == "1":
        pytest.fail(f"{reason}; {REQUIRE_NETNS_ENV}=1 makes this an error")
    pytest.skip(reason)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Remove namespaces that a killed earlier run left behind (owner pid gone)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return
    try:
        removed = sweep_stale_namespaces()
    except Exception as exc:  # a sweep problem must not stop unrelated tests
        print(f"[harness] stale namespace sweep failed: {exc}")
        return
    if removed:
        print(f"[harness] removed {len(removed)} stale namespace(s): {', '.join(removed)}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tag every test that builds a LAN with the `netns` marker (`-m "not netns"`)."""
    for item in items:
        if "make_lan" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.netns)


MakeLan = Callable[..., Lan]


@pytest.fixture
def make_lan() -> Iterator[MakeLan]:
    """Factory: `lan = make_lan(3)` gives a Lan with hosts `lan.hosts[0..2]`.

    Every Lan made is torn down after the test, pass or fail: processes in
    it are killed first, then its namespaces are deleted.
    """
    require_netns()
    made: list[Lan] = []

    def factory(n_hosts: int = 2) -> Lan:
        lan = Lan()
        made.append(lan)
        for _ in range(n_hosts):
            lan.add_host()
        return lan

    try:
        yield factory
    finally:
        for lan in made:
            lan.teardown()
