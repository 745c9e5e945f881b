"""A model alert names the features that drove it, in words and natural units, beside
the normal range `p2pmsg train` recorded (p2pmsg.monitor.explain)."""

from __future__ import annotations

import math

from p2pmsg.monitor.detect import model_verdicts
from p2pmsg.monitor.explain import TOP_FEATURES, drivers, normal_ranges, readable
from p2pmsg.monitor.features import FEATURE_NAMES, featurize
from p2pmsg.monitor.model import load_models
from p2pmsg.monitor.simulate import SimConfig, generate

MIB = 1024 * 1024


def test_features_read_in_natural_units() -> None:
    assert readable("n5m_hs_timeout", math.log1p(12)) == ("hs_timeout events in 5 min", 12.0)
    assert readable("n_unlock_guess", math.log1p(3)) == ("unlock_guess events in 1 min", 3.0)
    assert readable("log_bytes_out_1h", math.log1p(300 * MIB)) == ("MiB out in 1 h", 300.0)
    assert readable("log_bytes_in", math.log1p(2 * MIB)) == ("MiB in in 1 min", 2.0)
    assert readable("timeout_share", 0.5) == ("timeout share", 0.5)


def test_the_furthest_outside_weighted_by_importance_come_first() -> None:
    n = len(FEATURE_NAMES)
    rows = [[0.0] * n for _ in range(100)]
    ranges = normal_ranges(rows)
    assert ranges["n_conn_open"] == [0.0, 0.0]
    features = [0.0] * n
    at = {name: i for i, name in enumerate(FEATURE_NAMES)}
    features[at["n_conn_open"]] = math.log1p(40)  # far out, but the forest ignores it
    features[at["n5m_hs_timeout"]] = math.log1p(12)
    features[at["n1h_hs_timeout"]] = math.log1p(3)
    importances = [0.0] * n
    importances[at["n5m_hs_timeout"]] = 0.2
    importances[at["n1h_hs_timeout"]] = 0.5
    found = drivers(features, ranges, importances)
    assert [(e.name, e.observed, e.expected) for e in found] == [
        ("hs_timeout events in 1 h", 3.0, "normal 0"),
        ("hs_timeout events in 5 min", 12.0, "normal 0"),
    ]
    assert drivers([0.0] * n, ranges, [1.0] * n) == ()  # nothing outside: nothing said


def test_shipped_model_alerts_name_their_features() -> None:
    bundle = load_models()
    assert set(bundle.manifest["normal_ranges"]) == set(FEATURE_NAMES)
    windows = featurize(generate(SimConfig(hours=48, seed=11)))
    explained = [
        v for v in model_verdicts(bundle, windows) if v.kind in ("flood", "replay", "exfiltration")
    ]
    assert explained
    for verdict in explained:
        features = [e for e in verdict.evidence if e.expected.startswith("normal")]
        assert 1 <= len(features) <= TOP_FEATURES, verdict
