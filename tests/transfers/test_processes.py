"""Two nodes in two processes: a 200 MB file with flat memory; kill -9 of either side resumes."""

from __future__ import annotations

from pathlib import Path

from tests.transfers.conftest import sha256_of, write_random
from tests.transfers.procs import NodeProc, free_port, start_node

MiB = 1024 * 1024


def _final(node: NodeProc, timeout: float) -> dict[str, object]:
    return node.out.wait_for(
        lambda o: (
            o.get("event") == "transfer" and o["state"] in ("completed", "failed", "declined")
        ),
        timeout,
        "the transfer's end",
    )


def test_200_mb_between_processes_with_flat_memory(tmp_path: Path) -> None:
    size = 200 * 1000 * 1000
    src = tmp_path / "big.bin"
    digest = write_random(src, size)
    bob_port = free_port()
    bob = start_node(tmp_path / "bob", "bob", bob_port, downloads=tmp_path / "dl")
    alice = start_node(tmp_path / "alice", "alice", free_port(), peer_port=bob_port, send=src)
    try:
        baseline = {"alice": alice.rss_kib(), "bob": bob.rss_kib()}
        sent, received = _final(alice, 60), _final(bob, 10)
        assert sent["state"] == "completed", sent
        assert received["state"] == "completed", received
        assert sha256_of(Path(str(received["path"]))) == digest
        # Memory does not follow the file: 200 MB moved, at most 32 MiB more than at start.
        for name, node in (("alice", alice), ("bob", bob)):
            growth = node.peak_rss_kib() - baseline[name]
            assert growth < 32 * 1024, f"{name}'s peak RSS grew by {growth} KiB"
    finally:
        alice.stop()
        bob.stop()


def _progress(node: NodeProc, at_least: int, timeout: float = 30) -> dict[str, object]:
    return node.out.wait_for(
        lambda o: (
            o.get("event") == "transfer"
            and o["state"] == "transferring"
            and o["bytes_done"] >= at_least
        ),
        timeout,
        f"{at_least} bytes",
    )


def test_kill_9_receiver_then_sender_resumes_without_starting_over(tmp_path: Path) -> None:
    size = 24 * MiB
    src = tmp_path / "resume.bin"
    digest = write_random(src, size)
    bob_port, alice_port = free_port(), free_port()
    throttle = 8 * MiB  # bytes/s at the receiver's disk: slow enough to kill mid-way
    dl = tmp_path / "dl"
    bob = start_node(tmp_path / "bob", "bob", bob_port, downloads=dl, throttle=throttle)
    alice = start_node(tmp_path / "alice", "alice", alice_port, peer_port=bob_port, send=src)
    procs = [alice, bob]
    try:
        _progress(bob, size // 4)
        bob.kill9()
        bob = start_node(tmp_path / "bob", "bob", bob_port, downloads=dl, throttle=throttle)
        procs.append(bob)
        resumed = bob.out.wait_for(
            lambda o: o.get("event") == "transfer" and o["state"] == "transferring",
            30,
            "the resume",
        )
        assert int(resumed["bytes_done"]) >= size // 4  # not from zero

        _progress(bob, size * 2 // 3)
        alice.kill9()
        alice = start_node(tmp_path / "alice", "alice", alice_port)  # no --send: the store resumes
        procs.append(alice)
        received = _final(bob, 60)
        assert received["state"] == "completed", received
        sent = _final(alice, 20)
        assert sent["state"] == "completed"
        assert sha256_of(Path(str(received["path"]))) == digest
        # The digests the two sides agreed on (sent in file_done, after two resumes in
        # which each re-hashed its prefix) are of the whole file, not of the last part.
        assert received["sha256"] == digest.hex()
        assert sent["sha256"] == digest.hex()
        recv_event = next(o for o in bob.out.seen if o.get("event") == "file_recv")
        assert recv_event["bytes"] == size
        assert recv_event["detail"]["resumed_from"] >= size * 2 // 3 - 2 * MiB
        assert not (dl / ".partial").exists()  # no empty .partial/ left behind
    finally:
        for proc in procs:
            proc.stop()


def test_a_source_changed_before_the_sender_restarts_fails_verification(tmp_path: Path) -> None:
    """The sender is killed mid-way and its file's first bytes change (same size) before
    it starts again. It resumes, re-reading the prefix the receiver already holds to hash
    it, so the digest in its file_done no longer matches the receiver's hash of what it
    wrote: the receiver removes the partial file, moves nothing into place, reports the
    integrity failure, and tells the sender, whose transfer fails with that reason."""
    size = 12 * MiB
    src = tmp_path / "changing.bin"
    write_random(src, size)
    bob_port, alice_port = free_port(), free_port()
    throttle = 4 * MiB
    dl = tmp_path / "dl"
    bob = start_node(tmp_path / "bob", "bob", bob_port, downloads=dl, throttle=throttle)
    alice = start_node(tmp_path / "alice", "alice", alice_port, peer_port=bob_port, send=src)
    procs = [alice, bob]
    try:
        _progress(bob, size // 4)
        alice.kill9()
        with src.open("r+b") as f:  # inside the part bob already wrote
            f.write(b"not what was offered")
        alice = start_node(tmp_path / "alice", "alice", alice_port)  # the store resumes
        procs.append(alice)
        integrity = bob.out.wait_for(  # (logged just before the transfer's end)
            lambda o: o.get("event") == "file_integrity_fail", 60, "the integrity event"
        )
        received = _final(bob, 10)
        assert received["state"] == "failed", received
        assert "integrity check" in str(received["error"])
        assert integrity["detail"]["transfer"] == received["id"]
        sent = _final(alice, 20)
        assert sent["state"] == "failed" and "integrity check" in str(sent["error"]), sent
        assert not dl.exists() or [p for p in dl.rglob("*") if p.is_file()] == []
    finally:
        for proc in procs:
            proc.stop()


def _bundle(node: NodeProc, pred: object, timeout: float, what: str) -> dict[str, object]:
    return node.out.wait_for(
        lambda o: o.get("event") == "transfer" and int(o.get("files", 0)) > 0 and pred(o),  # type: ignore[operator]
        timeout,
        what,
    )


def test_kill_9_of_either_side_mid_folder_resumes(tmp_path: Path) -> None:
    """A folder offer survives kill -9 of the receiver, then of the sender: it goes on
    from the files (and the bytes of the file) it had reached, and arrives identical."""
    from tests.transfers.test_folders import tree

    src = tmp_path / "album"
    (src / "raw").mkdir(parents=True)
    for i in range(6):
        write_random(src / "raw" / f"img-{i}.bin", 3 * MiB + i)
    for i in range(30):
        write_random(src / f"note-{i:02}.txt", 50 * i)
    (src / "empty.txt").write_bytes(b"")
    expected = tree(src)
    total = sum((src / p).stat().st_size for p in expected)
    bob_port, alice_port = free_port(), free_port()
    throttle = 6 * MiB
    dl = tmp_path / "dl"
    bob = start_node(tmp_path / "bob", "bob", bob_port, downloads=dl, throttle=throttle)
    alice = start_node(
        tmp_path / "alice", "alice", alice_port, peer_port=bob_port, send=src, folder=True
    )
    procs = [alice, bob]
    try:
        _bundle(bob, lambda o: o["bytes_done"] >= total // 4, 30, "a quarter of the folder")
        bob.kill9()
        bob = start_node(tmp_path / "bob", "bob", bob_port, downloads=dl, throttle=throttle)
        procs.append(bob)
        _bundle(bob, lambda o: o["state"] == "transferring", 30, "the resume")
        _bundle(bob, lambda o: o["bytes_done"] >= total * 2 // 3, 30, "two thirds")
        alice.kill9()
        alice = start_node(tmp_path / "alice", "alice", alice_port)  # the store resumes
        procs.append(alice)
        received = _bundle(bob, lambda o: o["state"] in ("completed", "failed"), 60, "the end")
        assert received["state"] == "completed", received
        assert received["files_done"] == len(expected)
        sent = _bundle(alice, lambda o: o["state"] in ("completed", "failed"), 20, "sent")
        assert sent["state"] == "completed", sent
        assert tree(Path(str(received["path"]))) == expected
        assert not (dl / ".partial").exists()
        # Not from zero: the restarted receiver took no file it had verified before, and
        # went on with the files it was writing from their partial files.
        second_bob = [o for o in bob.out.seen if o.get("event") == "file_recv"]
        assert len(second_bob) < len(expected)
        assert any(o["detail"]["resumed_from"] > 0 for o in second_bob)

    finally:
        for proc in procs:
            proc.stop()
