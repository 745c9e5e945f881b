"""Discovery through real zeroconf between namespace hosts on the harness LAN.

Each host runs p2pmsg/bench/discovery_probe.py, which prints one JSON line
per discovery event. Every wait has a deadline and every probe a maximum
lifetime, so a broken network makes a test fail quickly, never hang.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from p2pmsg.protocol.limits import PROTOCOL_VERSION
from tests.harness import DISCOVERY_PROBE, Host, JsonLines
from tests.harness.fixtures import MakeLan
from tests.harness.procs import JsonObject

pytestmark = pytest.mark.timeout(60)

SEE_TIMEOUT = 10.0  # generous for a loaded 2-core CI box; typical is ~2 s


def fp(n: int) -> str:
    return f"{n:02x}" * 32


def probe(
    host: Host, fingerprint: str, name: str, *extra: str, port: int = 41000, duration: float = 25.0
) -> JsonLines:
    proc = host.run(
        [
            sys.executable,
            "-m",
            DISCOVERY_PROBE,
            "--fp",
            fingerprint,
            "--name",
            name,
            "--port",
            str(port),
            "--duration",
            str(duration),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return JsonLines(proc)


def advertised(
    fingerprint: str, where: Callable[[JsonObject], bool] = lambda o: True
) -> Callable[[JsonObject], bool]:
    return lambda o: o["event"] == "advertised" and o["fp"] == fingerprint and where(o)


def stop(lines: JsonLines) -> JsonObject:
    """SIGTERM the probe (a clean exit) and return its final `stopped` line."""
    lines.proc.send_signal(signal.SIGTERM)
    return lines.wait_for(lambda o: o["event"] == "stopped", 10, "a clean stop")


def test_two_hosts_find_each_other(make_lan: MakeLan) -> None:
    a, b = make_lan(2).hosts
    started = time.monotonic()
    pa = probe(a, fp(1), "alice", port=41001)
    pb = probe(b, fp(2), "bob", port=41002)
    seen_b = pa.wait_for(advertised(fp(2)), SEE_TIMEOUT, "alice to see bob")
    seen_a = pb.wait_for(advertised(fp(1)), SEE_TIMEOUT, "bob to see alice")
    elapsed = time.monotonic() - started
    print(
        f"\n[measure] two hosts saw each other {elapsed:.2f} s after both probes were "
        f"launched (probe-reported: alice {seen_b['t']:.2f} s, bob {seen_a['t']:.2f} s)"
    )
    assert (seen_b["name"], seen_b["addresses"], seen_b["port"]) == ("bob", [b.ip], 41002)
    assert (seen_a["name"], seen_a["addresses"], seen_a["port"]) == ("alice", [a.ip], 41001)
    assert seen_a["version"] == seen_b["version"] == PROTOCOL_VERSION
    # Nobody reports itself.
    assert all(o.get("fp") != fp(1) for o in pa.seen)
    assert all(o.get("fp") != fp(2) for o in pb.seen)


def test_a_third_host_joins_and_equal_names_do_not_collide(make_lan: MakeLan) -> None:
    a, b, c = make_lan(3).hosts
    pa = probe(a, fp(1), "alice")
    pb = probe(b, fp(2), "bob")
    pa.wait_for(advertised(fp(2)), SEE_TIMEOUT, "alice to see bob")
    pb.wait_for(advertised(fp(1)), SEE_TIMEOUT, "bob to see alice")
    # A second "alice" with another identity: a different peer, not a clash.
    pc = probe(c, fp(3), "alice")
    for lines, who in ((pa, "alice"), (pb, "bob")):
        seen = lines.wait_for(advertised(fp(3)), SEE_TIMEOUT, f"{who} to see the newcomer")
        assert (seen["name"], seen["addresses"]) == ("alice", [c.ip])
    pc.wait_for_all({"alice": advertised(fp(1)), "bob": advertised(fp(2))}, SEE_TIMEOUT)
    assert stop(pc)["ignored"] == {}
    assert all(o["event"] != "withdrawn" for o in pa.seen + pb.seen)


def test_a_host_with_two_addresses_is_one_peer_with_both(make_lan: MakeLan) -> None:
    lan = make_lan(2)
    a, b = lan.hosts
    second = lan.new_address()
    b.add_address(second)
    pa = probe(a, fp(1), "alice")
    probe(b, fp(2), "bob")
    both = sorted([b.ip, second])
    pa.wait_for(
        advertised(fp(2), lambda o: sorted(o["addresses"]) == both),
        SEE_TIMEOUT,
        "bob with both addresses",
    )
    stop(pa)
    peers = {o["fp"] for o in pa.seen if o["event"] in ("advertised", "withdrawn")}
    assert peers == {fp(2)}
    assert all(o["event"] != "withdrawn" for o in pa.seen)


def test_an_address_added_later_is_announced_again(make_lan: MakeLan) -> None:
    lan = make_lan(2)
    a, b = lan.hosts
    pa = probe(a, fp(1), "alice")
    probe(b, fp(2), "bob", "--check-interval", "0.5")
    pa.wait_for(advertised(fp(2), lambda o: o["addresses"] == [b.ip]), SEE_TIMEOUT, "bob")
    second = lan.new_address()
    b.add_address(second)
    changed = time.monotonic()
    pa.wait_for(
        advertised(fp(2), lambda o: second in o["addresses"]), SEE_TIMEOUT, "bob's new address"
    )
    print(
        f"\n[measure] a new address reached the peer {time.monotonic() - changed:.2f} s "
        "after it was added"
    )


def test_the_interface_option_limits_what_is_announced(make_lan: MakeLan) -> None:
    lan = make_lan(2)
    a, b = lan.hosts
    b.add_address(lan.new_address())
    pa = probe(a, fp(1), "alice")
    pb = probe(b, fp(2), "bob", "--interface", b.ip)
    assert pb.wait_for(lambda o: o["event"] == "ready", SEE_TIMEOUT)["announced"] == [b.ip]
    seen = pa.wait_for(advertised(fp(2)), SEE_TIMEOUT, "bob")
    assert seen["addresses"] == [b.ip]
    missing = probe(b, fp(3), "carol", "--interface", "10.99.0.1")
    error = missing.wait_for(lambda o: o["event"] == "error", SEE_TIMEOUT)
    assert error["error"] == "DiscoveryError" and "--interface" in error["message"]


def test_a_clean_exit_is_seen_as_withdrawal(make_lan: MakeLan) -> None:
    a, b = make_lan(2).hosts
    pa = probe(a, fp(1), "alice")
    pb = probe(b, fp(2), "bob")
    pa.wait_for(advertised(fp(2)), SEE_TIMEOUT, "bob")
    left = time.monotonic()
    stop(pb)
    assert pb.proc.wait(timeout=5) == 0
    pa.wait_for(
        lambda o: o["event"] == "withdrawn" and o["fp"] == fp(2), SEE_TIMEOUT, "bob's withdrawal"
    )
    print(f"\n[measure] withdrawal seen {time.monotonic() - left:.2f} s after SIGTERM to bob")


def test_hostile_advertisements_are_ignored(make_lan: MakeLan) -> None:
    attacker, observer, honest = make_lan(3).hosts
    hostile = {
        "badhex": ["v=1", "fp=" + "zz" * 32, "name=mallory"],
        "escape": ["v=1", f"fp={fp(7)}", "name=\x1b[2Jroot"],
        "selfie": ["v=1", f"fp={fp(1)}", "name=alice"],  # claims the observer's identity
        "noversion": ["v=banana", f"fp={fp(8)}", "name=eve"],
    }
    attacks = [
        probe(attacker, fp(9), "unused", "--instance", instance, "--hostile-txt", *txt)
        for instance, txt in hostile.items()
    ]
    for lines in attacks:  # all registered before the observer looks
        lines.wait_for(lambda o: o["event"] == "ready", SEE_TIMEOUT, "a hostile record")
    po = probe(observer, fp(1), "alice")
    probe(honest, fp(2), "bob")
    po.wait_for(advertised(fp(2)), SEE_TIMEOUT, "the honest peer")
    expected = {"bad_fingerprint", "bad_name", "own_fingerprint", "bad_version"}
    po.wait_for(
        lambda o: o["event"] == "ignored" and expected <= set(o["counts"]),
        SEE_TIMEOUT,
        "every hostile record to be rejected",
    )
    stop(po)
    reported = {o["fp"] for o in po.seen if o["event"] in ("advertised", "withdrawn")}
    assert reported == {fp(2)}


def test_the_same_identity_twice_on_one_lan_is_refused(make_lan: MakeLan) -> None:
    a, b = make_lan(2).hosts
    first = probe(a, fp(1), "alice")
    first.wait_for(lambda o: o["event"] == "ready", SEE_TIMEOUT, "the first alice")
    second = probe(b, fp(1), "alice")
    error = second.wait_for(lambda o: o["event"] == "error", SEE_TIMEOUT, "the refusal")
    assert error["error"] == "DiscoveryError" and "already advertises" in error["message"]


def test_an_impostor_advertising_a_peers_identity_only_adds_a_candidate_address(
    make_lan: MakeLan,
) -> None:
    """Discovery cannot tell the impostor apart (the handshake will): it merges, never replaces."""
    observer, honest, impostor = make_lan(3).hosts
    po = probe(observer, fp(1), "alice")
    probe(honest, fp(2), "bob")
    po.wait_for(advertised(fp(2), lambda o: o["addresses"] == [honest.ip]), SEE_TIMEOUT, "bob")
    fake = probe(
        impostor,
        fp(9),
        "unused",
        "--instance",
        "bob-impostor",
        "--hostile-txt",
        "v=1",
        f"fp={fp(2)}",
        "name=bob",
    )
    merged = po.wait_for(
        advertised(fp(2), lambda o: impostor.ip in o["addresses"]),
        SEE_TIMEOUT,
        "the impostor's address merged into bob",
    )
    assert merged["addresses"][0] == honest.ip  # the first-seen address stays first
    stop(fake)
    back = po.wait_for(advertised(fp(2)), SEE_TIMEOUT, "bob without the impostor")
    assert back["addresses"] == [honest.ip]
    assert all(o["event"] != "withdrawn" for o in po.seen)
