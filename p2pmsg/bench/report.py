"""Plain-text tables and number formats shared by every benchmark scenario."""

from __future__ import annotations

from collections.abc import Sequence


def fmt_rate(ops_per_s: float) -> str:
    """`12345.6` -> `12.3k`; keeps table columns narrow but readable."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if ops_per_s >= limit:
            return f"{ops_per_s / limit:.1f}{suffix}"
    return f"{ops_per_s:.1f}"


def fmt_mb(mb_per_s: float) -> str:
    return f"{mb_per_s:.2f}" if mb_per_s < 10 else f"{mb_per_s:.1f}"


def fmt_ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def fmt_size(n: int) -> str:
    """`100` -> `100 B`, `4096` -> `4 KiB`, `65536` -> `64 KiB`."""
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} B"


def render_table(rows: Sequence[Sequence[str]]) -> str:
    """First row is the header. Text columns align left, numeric ones right."""
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    cells = [list(r) + [""] * (width - len(r)) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(width)]
    numeric = [all(_looks_numeric(row[i]) for row in cells[1:]) for i in range(width)]

    def line(row: list[str]) -> str:
        parts = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def _looks_numeric(cell: str) -> bool:
    stripped = cell.rstrip("kMGx").replace(".", "", 1)
    return cell in ("", "-") or stripped.isdigit()
