"""Suite-wide fixtures: conformance vectors, and the mDNS safety guard.

Networking safety: this machine's real interface is not ours. Before any test
runs we record the host's network namespace in `P2PMSG_FORBID_MDNS_NETNS`;
p2pmsg's discovery refuses to start zeroconf while it runs in that namespace,
and every child process inherits the variable. In this process we also wrap
`zeroconf.Zeroconf` so that a test cannot start it on the host by accident.
Zeroconf only ever runs inside the namespaces the LAN harness creates.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The LAN harness (network-namespace hosts): the `make_lan` fixture for every test dir.
pytest_plugins = ["tests.harness.fixtures"]

REPO_ROOT = Path(__file__).resolve().parent.parent
VECTORS_DIR = REPO_ROOT.parent / "shared" / "vectors"


def _current_netns() -> str:
    try:
        return os.readlink("/proc/self/ns/net")
    except OSError:
        return "unknown"


HOST_NETNS = _current_netns()
os.environ["P2PMSG_FORBID_MDNS_NETNS"] = HOST_NETNS


def _guard_zeroconf() -> None:
    try:
        import zeroconf
    except ImportError:  # pragma: no cover - zeroconf is a hard dependency
        return
    original_init = zeroconf.Zeroconf.__init__
    if getattr(original_init, "_p2pmsg_guarded", False):
        return

    def guarded_init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if _current_netns() == HOST_NETNS:
            raise RuntimeError(
                "refusing to start zeroconf in the host network namespace during tests; "
                "use the LAN harness (tests/harness)"
            )
        return original_init(self, *args, **kwargs)

    guarded_init._p2pmsg_guarded = True  # type: ignore[attr-defined]
    zeroconf.Zeroconf.__init__ = guarded_init  # type: ignore[method-assign]
    if hasattr(zeroconf, "asyncio"):
        pass  # AsyncZeroconf builds a Zeroconf internally, so the guard covers it too.


_guard_zeroconf()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-full-vectors",
        action="store_true",
        default=False,
        help="run the full Twofish Monte Carlo files (slow)",
    )
    # tests/chaos: the soak's length and seed (the default run is a short, fixed-seed form).
    parser.addoption(
        "--chaos-minutes",
        type=float,
        default=None,
        help="minutes of traffic for the chaos soak (default: a short CI run)",
    )
    parser.addoption("--chaos-seed", type=int, default=None, help="seed of the chaos soak")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-full-vectors"):
        return
    skip = pytest.mark.skip(reason="full Monte Carlo vectors: pass --run-full-vectors")
    for item in items:
        if "vectors_full" in item.keywords:
            item.add_marker(skip)


def require_vectors(*relative: str) -> Path:
    """Path to a shared conformance vector file, or skip/fail as CI demands."""
    path = VECTORS_DIR.joinpath(*relative)
    if path.exists():
        return path
    reason = (
        f"conformance vectors not found at {path} (expected ../shared/vectors beside the checkout)"
    )
    if os.environ.get("P2PMSG_REQUIRE_VECTORS") == "1":
        pytest.fail(reason + "; P2PMSG_REQUIRE_VECTORS=1 makes this an error")
    pytest.skip(reason)


@pytest.fixture
def vectors() -> type[_Vectors]:
    return _Vectors


class _Vectors:
    """`vectors.path("wycheproof", "aes_gcm_test.json")` -> Path, or skip/fail."""

    path = staticmethod(require_vectors)
