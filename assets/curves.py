"""The time-to-quality curve of a training record: its validation metric against elapsed training seconds, as a
plot for the run folder and the asset's page."""

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from assets.common import png_bytes


def curve_rows(history: Sequence[Mapping[str, Any]], metric: str) -> list[Mapping[str, Any]]:
    """The history rows that carry the validation metric (every row when the fit has no metric)."""
    return [row for row in history if metric in row] if metric else list(history)


def time_to_quality_png(history: Sequence[Mapping[str, Any]], metric: str, model: str) -> bytes:
    """The curve as PNG bytes: ``metric`` against ``elapsed_seconds`` (the epoch when a row has no clock); a fit
    without validation rows gets a labelled empty plot, so every run folder has the same files."""
    rows = curve_rows(history, metric) if metric else []  # without a metric there is nothing to plot
    clocked = all("elapsed_seconds" in row for row in rows)
    x = [row["elapsed_seconds"] if clocked else row.get("epoch", n + 1) for n, row in enumerate(rows)]
    figure = Figure(figsize=(5, 3))
    axes = figure.add_subplot()
    if rows:
        axes.plot(x, [row[metric] for row in rows], marker="o")
    else:
        axes.text(0.5, 0.5, "no validation during this fit", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("elapsed training seconds" if clocked else "epoch")
    axes.set_ylabel(metric or "validation metric")
    axes.set_title(f"{model}: time to quality")
    axes.grid(alpha=0.3)
    return png_bytes(figure)
