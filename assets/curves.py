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


def time_to_quality_overview(runs: Mapping[str, Mapping[str, Any]], valid_recall: Mapping[str, float],
                             k: int) -> bytes:
    """Every model on one plot, validation Recall@k against seconds (log scale): a model that validated while it
    trained draws its curve (``valid_recall@k`` rows of its record's history) up to its end point; any other fit
    (filters, baselines, the student) is one point at its fit seconds. End points are the ranking report's own
    validation figures, so the plot and the table agree."""
    metric = f"valid_recall@{k}"
    figure = Figure(figsize=(7, 4))
    axes = figure.add_subplot()
    for model, record in runs.items():
        rows = [row for row in record.get("history", []) if metric in row and "elapsed_seconds" in row]
        seconds = max(float(record.get("seconds") or 0.0), 1e-2)
        if rows:
            line, = axes.plot([row["elapsed_seconds"] for row in rows], [row[metric] for row in rows], marker=".",
                              label=model)
            axes.plot([seconds], [valid_recall[model]], marker="o", color=line.get_color())
        else:
            axes.plot([seconds], [valid_recall[model]], marker="s", linestyle="", label=model)
    axes.set_xscale("log")
    axes.set_xlabel("training or fit seconds (log)")
    axes.set_ylabel(f"validation Recall@{k}")
    axes.set_title("time to quality, every model")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", ncol=2)
    return png_bytes(figure)
