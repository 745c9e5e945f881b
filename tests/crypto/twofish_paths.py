"""Which Twofish paths the tests can run here, skipping (or failing) with the reason.

libgcrypt is a system library: a machine without it runs the portable path
only, and the libgcrypt-path tests skip saying why. P2PMSG_REQUIRE_LIBGCRYPT=1
(set by .ci/run) turns that skip into a failure, so CI cannot go green
without ever testing the fast path.
"""

from __future__ import annotations

import os

import pytest

from p2pmsg.crypto import twofish
from p2pmsg.crypto.twofish import LIBGCRYPT, PORTABLE

PATHS = (LIBGCRYPT, PORTABLE)
REQUIRE_ENV = "P2PMSG_REQUIRE_LIBGCRYPT"


def require_path(path: str) -> str:
    """`path` if this process can run it; otherwise skip, or fail where it is required."""
    selection = twofish.status()
    if path == LIBGCRYPT and selection.gcrypt is None:
        reason = f"the libgcrypt Twofish path is not usable here: {selection.gcrypt_reason}"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}; {REQUIRE_ENV}=1 makes this an error")
        pytest.skip(reason)
    if path == PORTABLE and not selection.portable:
        pytest.fail(
            f"the portable Twofish path (a hard dependency) is missing: {selection.portable_reason}"
        )
    return path


def key_sizes(path: str) -> tuple[int, ...]:
    """Key sizes a path takes: libgcrypt has no 192-bit Twofish."""
    return (16, 32) if path == LIBGCRYPT else (16, 24, 32)
