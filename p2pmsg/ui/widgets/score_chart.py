"""The dashboard's Trends chart: the monitor's recent anomaly scores against the
trained threshold, on fixed axes.

Plotext (through textual-plotext) draws it: axes with labelled ticks, a horizontal
threshold line and redrawing at any size come with it. The y axis always starts at
0 and reaches at least 1, so one window, or a run of ordinary windows, reads as low
(Textual's Sparkline scales to its own min..max and drew a lone score as a
full-height bar). Windows above the threshold are red; the threshold's value is a
tick of its own, so the line is labelled where it is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual_plotext import PlotextPlot

#: Up to this many windows each get a bar; more are drawn as a line, which stays
#: readable where bars would be thinner than a cell.
MAX_BARS = 40
ABOVE = "red"
BELOW = "cyan"


def x_ticks(count: int) -> tuple[list[float], list[str]]:
    """Tick positions (windows before the latest: -count+1 .. 0) and their labels:
    the oldest, a middle one and "now", whole numbers only."""
    if count <= 1:
        return [0.0], ["now"]
    oldest = -(count - 1)
    positions = sorted({oldest, round(oldest / 2), 0})
    return [float(p) for p in positions], [("now" if p == 0 else str(p)) for p in positions]


def y_ticks(threshold: float | None, top: float) -> tuple[list[float], list[str]]:
    """0, the halfway mark, the top and the threshold, leaving out a round tick that
    would share a row with the threshold's (the threshold's label wins)."""
    ticks = {0.0: "0", top / 2: f"{top / 2:.1f}", top: f"{top:.1f}"}
    if threshold is not None:
        ticks = {v: s for v, s in ticks.items() if abs(v - threshold) > top / 8}
        ticks[threshold] = f"{threshold:.2f}"
    ordered = sorted(ticks)
    return ordered, [ticks[v] for v in ordered]


class ScoreChart(PlotextPlot):
    """Anomaly score of each recent scored batch (oldest left, latest at "now")."""

    DEFAULT_CSS = """
    ScoreChart { height: 12; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.scores: tuple[float, ...] = ()
        self.threshold: float | None = None

    def set_scores(self, scores: Sequence[float], threshold: float | None) -> None:
        """Redraw with these scores (oldest first) and the model's threshold (None
        while no model is loaded: no line)."""
        self.scores = tuple(scores)
        self.threshold = threshold
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        count = len(self.scores)
        xs = [float(i - count + 1) for i in range(count)]
        top = max(1.0, *self.scores) if self.scores else 1.0
        limit = threshold if threshold is not None else top
        if count > MAX_BARS:
            plt.plot(xs, list(self.scores), marker="braille", color=BELOW)
        above = [(x, s) for x, s in zip(xs, self.scores, strict=True) if s > limit]
        below = [(x, s) for x, s in zip(xs, self.scores, strict=True) if s <= limit]
        if count <= MAX_BARS:
            for points, color in ((below, BELOW), (above, ABOVE)):
                if points:
                    plt.bar([x for x, _ in points], [s for _, s in points], color=color, width=0.6)
        elif above:
            plt.scatter([x for x, _ in above], [s for _, s in above], marker="dot", color=ABOVE)
        if threshold is not None:
            plt.hline(threshold, ABOVE)
        plt.ylim(0.0, top)
        plt.yticks(*y_ticks(threshold, top))
        plt.xlim(xs[0] - 0.5 if xs else -0.5, 0.5)
        plt.xticks(*x_ticks(count))
        plt.xlabel("scored windows (now = the latest)")
        plt.ylabel("anomaly")
        self.refresh()
