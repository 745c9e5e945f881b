"""`p2pmsg group ...` and `send --group` as a user runs them: real processes on 127.0.0.1,
no mDNS (`--no-discovery`, peers reached by `add-peer HOST:PORT`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.node.test_commands_loopback import free_port, make_profile, run, start_listen, stop

pytestmark = pytest.mark.timeout(90)


def test_create_list_post_and_queue_through_the_cli(tmp_path: Path) -> None:
    alice_fp = make_profile(tmp_path, "alice")
    make_profile(tmp_path, "bob")
    port = free_port()
    alice = start_listen(tmp_path, "alice", port)
    assert run(tmp_path, "bob", "add-peer", f"127.0.0.1:{port}").returncode == 0
    assert run(tmp_path, "bob", "peers", "--no-discovery", "--wait", "2").returncode == 0

    stranger = run(tmp_path, "bob", "group", "create", "x", "--members", "nobody", "--wait", "0")
    assert stranger.returncode == 1 and "no known peer" in stranger.stderr

    made = run(tmp_path, "bob", "group", "create", "team", "--members", "alice", "--no-discovery")
    assert made.returncode == 0, made.stderr
    assert "handed to 1 of 1 members now" in made.stdout
    joined = alice.wait_for(lambda o: o.get("event") == "group_changed", 10)
    assert joined["group"]["name"] == "team"

    listed = run(tmp_path, "bob", "group", "list", "--json", "--no-discovery", "--wait", "0")
    assert listed.returncode == 0, listed.stderr
    (group,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert group["name"] == "team" and group["admin"] and group["id"] == joined["group"]["id"]
    assert {m["fingerprint"] for m in group["members"]} >= {alice_fp}

    sent = run(tmp_path, "bob", "send", "--group", "team", "hello team", "--json", "--no-discovery")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    result = json.loads(sent.stdout)
    assert (result["delivered"], result["recipients"]) == (1, 1)
    got = alice.wait_for(lambda o: o.get("event") == "group_message_received", 10)
    assert got["group"] == group["id"] and got["message"]["text"] == "hello team"
    assert got["message"]["id"] == result["id"]
    # The receipts bob's node stored: alice holds the post (a `listen` reads nothing).
    receipts = run(
        tmp_path, "bob", "group", "receipts", "team", "--json", "--wait", "0", "--no-discovery"
    )
    assert receipts.returncode == 0, receipts.stderr
    (row,) = [json.loads(line) for line in receipts.stdout.splitlines()]
    assert row == {
        "message": result["id"],
        "fingerprint": alice_fp,
        "name": "alice",
        "delivered": True,
        "read": False,
    }
    text = run(tmp_path, "bob", "group", "receipts", "team", "--wait", "0", "--no-discovery")
    assert text.returncode == 0, text.stderr
    assert 'your post 1 "hello team": delivered 1/1, read 0/1' in text.stdout
    assert f"alice ({alice_fp[:16]}): delivered, not read" in text.stdout
    gone = run(
        tmp_path,
        "bob",
        "send",
        "--group",
        "team",
        "soon gone",
        "--ttl",
        "90",
        "--json",
        "--no-discovery",
    )
    assert gone.returncode == 0, gone.stdout + gone.stderr
    got = alice.wait_for(
        lambda o: (
            o.get("event") == "group_message_received" and o["message"]["text"] == "soon gone"
        ),
        10,
    )
    assert got["message"]["ttl"] == 90
    stop(alice)

    queued = run(
        tmp_path, "bob", "send", "--group", "team", "later", "--timeout", "2", "--no-discovery"
    )
    assert queued.returncode == 3, queued.stdout + queued.stderr
    assert "delivered to 0 of 1 members" in queued.stdout
    not_allowed = run(tmp_path, "bob", "group", "remove", "team", "bob", "--no-discovery")
    assert not_allowed.returncode == 1 and "not allowed" in not_allowed.stderr, not_allowed.stderr

    renamed = run(tmp_path, "bob", "group", "rename", "team", "crew", "--no-discovery")
    assert renamed.returncode == 0, renamed.stderr
    assert renamed.stdout.startswith("crew (")
    listed = run(tmp_path, "bob", "group", "list", "--json", "--no-discovery", "--wait", "0")
    assert [json.loads(line)["name"] for line in listed.stdout.splitlines()] == ["crew"]
    # (who may rename: tests/node/test_node_groups.py, a member who is not an admin)
