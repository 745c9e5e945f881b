"""A model verdict of a kind ordinary use resembles stands only on its own evidence.

Seen live (tests/monitor/test_live_benign_day.py): two typos became "brute force by
this device (p=0.84)" and a 50 MiB file to a new colleague "exfiltration (p=0.50)".
Here the rule behind that (p2pmsg.monitor.corroboration) on real featurised windows,
and the shipped models with it on a simulated attack, so the gate cannot simply
silence the kinds it guards.
"""

from __future__ import annotations

import dataclasses

from p2pmsg.monitor.corroboration import MIN_AUTH_FAILURES, MIN_HISTORY, corroborate
from p2pmsg.monitor.detect import model_verdicts
from p2pmsg.monitor.features import featurize
from p2pmsg.monitor.live import Monitor
from p2pmsg.monitor.model import load_models
from p2pmsg.monitor.simulate import SimConfig, generate
from tests.monitor.helpers import PEER, T0, ev

MIB = 1024 * 1024


def _window_of(events, key=None):  # type: ignore[no-untyped-def]
    windows = featurize(events)
    return [w for w in windows if key is None or w.key == key][-1]


def test_two_typos_do_not_make_a_brute_force_but_a_third_guess_does() -> None:
    typos = [ev(0, "unlock_fail"), ev(20, "unlock_fail"), ev(30, "unlock_ok")]
    window = _window_of(typos)
    assert corroborate("brute_force", window) == (False, ())
    guessed = _window_of([*typos, ev(40, "unlock_fail")])
    stands, [why] = corroborate("brute_force", guessed)
    assert stands and (why.name, why.observed) == ("failed authentications in 1 h", 3.0)
    assert why.expected == f"model alerts from {MIN_AUTH_FAILURES}"


def test_exfiltration_needs_history_to_be_unusual_against() -> None:
    send = ev(30, "file_sent", peer=PEER, size=50 * MIB, detail={"verified": False})
    fresh = _window_of([ev(0, "unlock_ok"), send], key=PEER)
    assert fresh.history < MIN_HISTORY
    assert corroborate("exfiltration", fresh) == (False, ())
    seasoned = dataclasses.replace(fresh, history=2 * 3600.0)
    stands, [why] = corroborate("exfiltration", seasoned)
    assert stands and why.observed == 2.0 and why.expected == "model alerts from 1 h"
    # The kinds that ordinary use never resembles stand on the model's word.
    assert corroborate("replay", fresh) == (True, ())


def test_the_models_still_catch_simulated_brute_force_and_exfiltration() -> None:
    """Over a simulated day with attacks, model verdicts of the guarded kinds remain,
    each with its evidence, and a verdict the window did not bear out says what the
    classifier had said."""
    bundle = load_models()
    windows = featurize(generate(SimConfig(hours=72, seed=11)))
    verdicts = model_verdicts(bundle, windows)
    kept = {v.kind for v in verdicts}
    assert {"brute_force", "exfiltration"} <= kept
    for verdict in verdicts:
        if verdict.kind in ("brute_force", "exfiltration"):
            names = [e.name for e in verdict.evidence]
            assert names[0] in (
                "failed authentications in 1 h",
                "hours of this profile's traffic seen",
            )
            assert names[-2:] == ["classifier probability", "anomaly score"]
        if verdict.unsupported is not None:
            assert verdict.kind == "normal"


def test_a_live_model_alert_carries_the_evidence() -> None:
    monitor = Monitor()
    assert monitor.load_models(T0)
    events = generate(SimConfig(hours=12, seed=5))
    alerts = []
    for i, event in enumerate(events):
        monitor.observe(event)
        if i % 200 == 199:
            alerts += monitor.tick(event.ts)
    alerts += monitor.tick(events[-1].ts + 120)
    model = [a for a in alerts if a.source == "model"]
    assert model and all(a.evidence for a in model)
