"""The terminal app's node receives where the profile's Settings say, by default the
user's usual downloads folder, and follows changes to them (found in a tmux trial:
the app's node had no downloads folder at all, so "Accept" could only fail)."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pmsg.errors import TransferRejectedError
from p2pmsg.node.transfers.settings import TransferSettings
from tests.node.conftest import NodeFactory, connect, eventually, loopback_config
from tests.transfers.conftest import (
    file_settings,
    sha256_of,
    wait_final,
    wait_incoming,
    write_random,
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home of its own: ~/Downloads (platformdirs' answer without XDG settings) is here."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CONFIG_HOME", "XDG_DOWNLOAD_DIR"):
        monkeypatch.delenv(name, raising=False)
    return home


async def test_the_app_node_accepts_into_the_usual_downloads_folder_then_into_settings(
    make_node: NodeFactory, tmp_path: Path, home: Path
) -> None:
    alice = await make_node("alice", config=loopback_config(files=file_settings(tmp_path / "a")))
    bob = await make_node("bob", config=loopback_config(files=TransferSettings(from_profile=True)))
    await connect(alice, bob)
    source = tmp_path / "minutes.txt"
    digest = write_random(source, 100_000)

    first = await alice.send_file(bob.fingerprint, str(source))
    await wait_incoming(bob)
    await bob.accept_file(first.id)
    assert (await wait_final(bob, first.id)).state == "completed"
    assert sha256_of(home / "Downloads" / "minutes.txt") == digest  # made on first use

    # The user picks another folder and allows only PDFs: the next offers follow.
    elsewhere = tmp_path / "inbox"
    await bob.update_settings(downloads_dir=str(elsewhere), accepted_extensions=["pdf"])
    second = await alice.send_file(bob.fingerprint, str(source))

    async def offered() -> bool:
        return any(v.id == second.id for v in await bob.transfers())

    await eventually(offered)
    with pytest.raises(TransferRejectedError, match="does not accept this type of file"):
        await bob.accept_file(second.id)
    await bob.update_settings(accepted_extensions=None)  # while the offer still waits
    await bob.accept_file(second.id)
    assert (await wait_final(bob, second.id)).state == "completed"
    assert sha256_of(elsewhere / "minutes.txt") == digest
