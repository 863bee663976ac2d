"""Pictures of a cohort: box and strip plots of Dice and of HD95 per structure (dice.png, hd95.png).

Horizontal layout (one line per structure, sorted by median, the worst at the top) so that many structures stay
readable; the figure grows with their number. Infinite values (one mask empty) cannot be drawn: they are left out
and counted in the title. Drawn with matplotlib's object API on an Agg canvas: no display, and no change to
pyplot's global backend (this may run inside desktop Slicer). Files are written atomically.
"""

import math
import os

import numpy as np

from ..AtomicWrite import atomicOutput
from ..Comparison.Metrics import HIGHER, metric

PLOTS = {"dice": ("dice", (0.0, 1.0)), "hd95": ("hausdorff95", None)}  # file name: (metric key, axis limits)
ROW_HEIGHT_INCHES = 0.32
MINIMUM_HEIGHT_INCHES = 2.5
WIDTH_INCHES = 8.0
DPI = 100
JITTER = 0.18


def _finiteByStructure(rows, field):
    """({structure: [finite values]}, number of infinite values) from the done rows."""
    values, infinite = {}, 0
    for row in rows:
        value = row.get(field)
        if row.get("status") != "done" or row.get("structure") is None or value is None:
            continue
        if math.isinf(value):
            infinite += 1
            values.setdefault(row["structure"], [])
        else:
            values.setdefault(row["structure"], []).append(float(value))
    return values, infinite


def structureOrder(values, higherIsBetter=True):
    """Structures from the bottom of the plot to its top: best median first, worst (or without values) last."""
    worst = -math.inf if higherIsBetter else math.inf
    return sorted(values, key=lambda name: (np.median(values[name]) if values[name] else worst, name),
                  reverse=higherIsBetter)


def plotMetric(rows, field, label, path, limits=None, higherIsBetter=True):
    """Box + strip plot of one metric per structure into a PNG, the structure with the worst median at the top;
    returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values, infinite = _finiteByStructure(rows, field)
    order = structureOrder(values, higherIsBetter)
    figure = Figure(figsize=(WIDTH_INCHES, max(MINIMUM_HEIGHT_INCHES, 1.2 + ROW_HEIGHT_INCHES * len(order))),
                    dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = np.arange(1, len(order) + 1)
    if order:
        axes.boxplot([values[name] for name in order], positions=positions, orientation="horizontal",
                     widths=0.6, showfliers=False, medianprops={"color": "tab:red"})
        random = np.random.default_rng(0)
        for position, name in zip(positions, order):
            points = np.asarray(values[name])
            axes.scatter(points, position + random.uniform(-JITTER, JITTER, points.size),
                         s=max(3.0, 12.0 - points.size / 20), alpha=0.6,
                         color="tab:blue", zorder=3)
        axes.set_yticks(positions, order)
    else:
        axes.text(0.5, 0.5, "no values", ha="center", va="center", transform=axes.transAxes)
    if limits is not None:
        axes.set_xlim(limits[0] - 0.02, limits[1] + 0.02)
    axes.set_xlabel(label)
    axes.grid(axis="x", alpha=0.3)
    count = sum(len(v) for v in values.values())
    excluded = f"; {infinite} infinite value{'s' if infinite != 1 else ''} excluded" if infinite else ""
    axes.set_title(f"{label} per structure ({count} values, {len(order)} structures{excluded})")
    with atomicOutput(path) as temporary:
        figure.savefig(temporary, format="png")
    return path


def writeCohortPlots(rows, outputDir):
    """dice.png and hd95.png in outputDir from the cohort rows (CohortTable.cohortRows); returns {name: path}."""
    return {name: plotMetric(rows, field, metric(field).shortTitle(), os.path.join(outputDir, f"{name}.png"), limits,
                             metric(field).better == HIGHER)
            for name, (field, limits) in PLOTS.items()}
