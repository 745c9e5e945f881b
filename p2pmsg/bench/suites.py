"""Scenario `suites`: seal+open throughput of each cipher suite beside its baseline.

One op = `seal` then `open` of one message under a keyed suite object (the
record layer's hot path), with 16 bytes of associated data like a record
header. Each suite is measured interleaved with its baseline in the same run:

- aes-256-gcm, chacha20-poly1305: the raw `cryptography` AEAD with a fixed
  instance: the suite may cost at most 1.5x that at 4 KiB.
- twofish-cbc-hmac-sha256: a CBC loop over the stock `twofish.Twofish`
  block wrapper (pad, encrypt, decrypt, unpad; NO MAC, which makes the
  baseline cheaper than our suite, so the comparison is conservative): the
  suite must be at least 2x faster at 4 KiB. The stock wrapper does
  `import imp`; where that fails (Python >= 3.12) the baseline is reported
  as skipped with the reason.

Twofish has two paths (p2pmsg/crypto/twofish.py): the result says which one
the suite ran on (`twofish_path`, and in the table), and when that is the
libgcrypt path the same suite on the portable fallback path is measured
interleaved in the same run (`portable_path` per size), so the gain of the
fast path is a ratio from one run.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from p2pmsg.bench.report import fmt_mb, fmt_rate, fmt_ratio, fmt_size
from p2pmsg.bench.timing import Budget, measure_interleaved
from p2pmsg.crypto import twofish
from p2pmsg.crypto.suites import SUITE_NAMES, TWOFISH_SUITE_NAME, get_suite, twofish_keyed_on_path

TITLE = "cipher suites, seal+open per message, vs. baseline"
SIZES = (100, 4096, 65536)
TARGET_SIZE = 4096
AEAD_MAX_SLOWDOWN = 1.5
TWOFISH_MIN_SPEEDUP = 2.0
_AAD = bytes(range(16))

RoundTrip = Callable[[], bytes]


class _Baseline:
    """A named baseline round trip, or the reason there is none."""

    def __init__(self, name: str, fn: RoundTrip | None, skipped: str | None = None) -> None:
        self.name, self.fn, self.skipped = name, fn, skipped


def _aead_baseline(
    cls: type[AESGCM] | type[ChaCha20Poly1305], key: bytes, nonce: bytes, message: bytes
) -> _Baseline:
    aead = cls(key)

    def round_trip() -> bytes:
        return aead.decrypt(nonce, aead.encrypt(nonce, message, _AAD), _AAD)

    return _Baseline(f"cryptography {cls.__name__}", round_trip)


def _stock_twofish_baseline(key: bytes, nonce: bytes, message: bytes) -> _Baseline:
    name = "stock twofish.Twofish CBC loop (no MAC)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # `import imp` is deprecated on 3.11
            stock = importlib.import_module("twofish")
        cipher = stock.Twofish(key)
    except Exception as exc:  # any failure of the third-party wrapper: report, go on
        return _Baseline(name, None, f"stock wrapper unavailable: {type(exc).__name__}: {exc}")
    iv = cipher.encrypt(nonce + bytes(4))

    def round_trip() -> bytes:
        pad = 16 - len(message) % 16
        padded = message + bytes((pad,)) * pad
        blocks, chain = [], iv
        for i in range(0, len(padded), 16):
            x = int.from_bytes(padded[i : i + 16], "big") ^ int.from_bytes(chain, "big")
            chain = cipher.encrypt(x.to_bytes(16, "big"))
            blocks.append(chain)
        out, chain = [], iv
        for block in blocks:
            x = int.from_bytes(cipher.decrypt(block), "big") ^ int.from_bytes(chain, "big")
            out.append(x.to_bytes(16, "big"))
            chain = block
        plain = b"".join(out)
        return plain[: -plain[-1]]

    return _Baseline(name, round_trip)


def _baseline(suite_name: str, key: bytes, nonce: bytes, message: bytes) -> _Baseline:
    if suite_name == "aes-256-gcm":
        return _aead_baseline(AESGCM, key, nonce, message)
    if suite_name == "chacha20-poly1305":
        return _aead_baseline(ChaCha20Poly1305, key, nonce, message)
    return _stock_twofish_baseline(key, nonce, message)


def _measure_one(suite_name: str, size: int, budget: Budget) -> dict[str, Any]:
    key, nonce, message = os.urandom(32), os.urandom(12), os.urandom(size)
    keyed = get_suite(suite_name).keyed(key)

    def round_trip() -> bytes:
        return keyed.open(nonce, keyed.seal(nonce, message, _AAD), _AAD)

    baseline = _baseline(suite_name, key, nonce, message)
    fns: dict[str, RoundTrip] = {"suite": round_trip}
    if baseline.fn is not None:
        fns["baseline"] = baseline.fn
    fast = suite_name == TWOFISH_SUITE_NAME and _twofish_path() == twofish.LIBGCRYPT
    if fast and twofish.status().portable:
        portable = twofish_keyed_on_path(key, twofish.PORTABLE)

        def portable_round_trip() -> bytes:
            return portable.open(nonce, portable.seal(nonce, message, _AAD), _AAD)

        fns["portable"] = portable_round_trip
    for label, fn in fns.items():  # never time a broken path
        if fn() != message:
            raise AssertionError(f"{suite_name} {label} round trip is wrong at {size} B")
    measured = measure_interleaved(fns, budget)
    entry: dict[str, Any] = {"suite": suite_name, "size": size, **measured["suite"].as_dict(size)}
    if suite_name == TWOFISH_SUITE_NAME:
        entry["path"] = _twofish_path()
    if "portable" in measured:
        fallback = measured["portable"]
        entry["portable_path"] = {
            **fallback.as_dict(size),
            "speedup": round(measured["suite"].ops_per_s / fallback.ops_per_s, 3),
        }
    if "baseline" in measured:
        base = measured["baseline"]
        entry["baseline"] = {"name": baseline.name, **base.as_dict(size)}
        entry["speedup"] = round(measured["suite"].ops_per_s / base.ops_per_s, 3)
    else:
        entry["baseline"] = {"name": baseline.name, "skipped": baseline.skipped}
        entry["speedup"] = None
    return entry


def _target(entry: dict[str, Any]) -> dict[str, Any]:
    speedup = entry["speedup"]
    if entry["suite"] == "twofish-cbc-hmac-sha256":
        target: dict[str, Any] = {
            "description": f"at least {TWOFISH_MIN_SPEEDUP:g}x faster than the stock-wrapper loop",
            "measure": "speedup",
            "limit": TWOFISH_MIN_SPEEDUP,
            "value": speedup,
            "met": None if speedup is None else speedup >= TWOFISH_MIN_SPEEDUP,
        }
    else:
        slowdown = None if speedup is None else round(1 / speedup, 3)
        target = {
            "description": f"within {AEAD_MAX_SLOWDOWN:g}x of the raw primitive",
            "measure": "slowdown",
            "limit": AEAD_MAX_SLOWDOWN,
            "value": slowdown,
            "met": None if slowdown is None else slowdown <= AEAD_MAX_SLOWDOWN,
        }
    if speedup is None:
        target["skipped"] = entry["baseline"]["skipped"]
    return {"suite": entry["suite"], "size": entry["size"], **target}


def _twofish_path() -> str | None:
    """The path the Twofish suite runs on in this process ('libgcrypt', 'portable')."""
    return twofish.status().active


def run(quick: bool) -> dict[str, Any]:
    budget = Budget.for_run(quick)
    results = [_measure_one(name, size, budget) for name in SUITE_NAMES for size in SIZES]
    targets = [_target(e) for e in results if e["size"] == TARGET_SIZE]
    return {
        "op": "seal + open of one message, keyed suite object, 16 B associated data",
        "sizes": list(SIZES),
        "twofish_path": twofish.status().as_dict(),
        "results": results,
        "targets": targets,
        "all_targets_met": all(t["met"] is True for t in targets),
    }


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    targets = {(t["suite"], t["size"]): t for t in result["targets"]}
    table: list[tuple[str, ...]] = [
        ("suite", "size", "ops/s", "MB/s", "baseline ops/s", "MB/s", "vs base", "target")
    ]
    for e in result["results"]:
        base = e["baseline"]
        skipped = "skipped" in base
        path = e.get("path")
        table.append(
            (
                f"{e['suite']} [{path}]" if path else e["suite"],
                fmt_size(e["size"]),
                fmt_rate(e["ops_per_s"]),
                fmt_mb(e["mb_per_s"]),
                "skipped" if skipped else fmt_rate(base["ops_per_s"]),
                "-" if skipped else fmt_mb(base["mb_per_s"]),
                fmt_ratio(e["speedup"]),
                _target_cell(targets.get((e["suite"], e["size"]))),
            )
        )
    return table


def _target_cell(target: dict[str, Any] | None) -> str:
    if target is None:
        return ""
    bound = ("<=" if target["measure"] == "slowdown" else ">=") + f"{target['limit']:g}x"
    if target["met"] is None:
        return f"{target['measure']} {bound}: skipped"
    verdict = "met" if target["met"] else "MISSED"
    return f"{target['measure']} {target['value']:.2f}x {bound}: {verdict}"


def notes(result: dict[str, Any]) -> list[str]:
    lines = [f"one op = {result['op']}; 'vs base' = suite ops/s / baseline ops/s"]
    path = result.get("twofish_path")
    if path is not None:
        lines.append(f"Twofish path: {path['describe']}")
    for e in result["results"]:
        fallback = e.get("portable_path")
        if fallback is not None:
            lines.append(
                f"{e['suite']} on the portable path, same run, {fmt_size(e['size'])}: "
                f"{fmt_rate(fallback['ops_per_s'])} ops/s ({fmt_mb(fallback['mb_per_s'])} MB/s); "
                f"{e['path']} is {fallback['speedup']:.2f}x that"
            )
    baselines = {e["suite"]: e["baseline"] for e in result["results"]}
    for suite, base in baselines.items():
        lines.append(
            f"baseline for {suite}: {base['name']}"
            + (f" ({base['skipped']})" if "skipped" in base else "")
        )
    return lines
