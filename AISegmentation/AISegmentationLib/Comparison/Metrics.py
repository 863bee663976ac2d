"""The comparison metrics, declared once: every front and output (ComparisonResult, the table node and CSV, the
CLI's printed table and JSON, the cohort table, report and plots, the web page) reads this list, as Slicer's
SegmentStatistics plugins declare their keys and measurement info. A new metric is one declaration here, its
definition in SegmentComparison and its test.

No Slicer, no numpy: importable anywhere.
"""

import dataclasses
import math

HIGHER, LOWER, ZERO = "higher", "lower", "zero"  # better: larger values, smaller values, values closer to 0


@dataclasses.dataclass(frozen=True)
class Metric:
    """One metric of a comparison row. ``key``: the ComparisonResult attribute (and JSON / cohort field);
    ``title``: its column title without the unit; ``short``: a short title (printed table, report); ``unit``: "mm",
    "mL" or "" (a ratio); ``digits``: decimals shown; ``better``: HIGHER, LOWER, ZERO or None (a size); ``shown``: in the short
    views (printed table, web page) by default; ``options``: the comparison options its value depends on;
    ``infiniteWhenEmpty``: infinite when one side is empty (a distance)."""

    key: str
    title: str
    short: str
    unit: str = ""
    digits: int = 4
    better: str = HIGHER
    shown: bool = True
    options: tuple = ()
    infiniteWhenEmpty: bool = False

    def columnTitle(self, surfaceDiceTolerance=None):
        """The table / CSV column title, units in parentheses (the surface Dice tolerance when given)."""
        if "surfaceDiceTolerance" in self.options and surfaceDiceTolerance is not None:
            return f"{self.title} ({surfaceDiceTolerance:g} mm)"
        return f"{self.title} ({self.unit})" if self.unit else self.title

    def shortTitle(self):
        return f"{self.short} ({self.unit})" if self.unit else self.short

    def format(self, value):
        """The value as text with the declared decimals ("inf" / "-inf" for infinite ones)."""
        value = float(value)
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.{self.digits}f}"


METRICS = (
    Metric("dice", "Dice", "Dice"),
    Metric("jaccard", "Jaccard", "Jaccard"),
    Metric("referenceVolume", "Reference volume", "Vref", "mL", 2, better=None),
    Metric("comparedVolume", "Compared volume", "Vcmp", "mL", 2, better=None),
    Metric("volumeDifference", "Volume difference", "Vdiff", "mL", 2, better=ZERO, shown=False),
    Metric("hausdorff", "Hausdorff", "HD", "mm", 2, LOWER, infiniteWhenEmpty=True),
    Metric("hausdorff95", "Hausdorff 95%", "HD95", "mm", 2, LOWER, options=("hausdorff95Mode",),
           infiniteWhenEmpty=True),
    Metric("averageSurfaceDistance", "Average surface distance", "ASSD", "mm", 3, LOWER,
           options=("averageSurfaceDistanceMode",), infiniteWhenEmpty=True),
    Metric("surfaceDice", "Surface Dice", "SurfDice", options=("surfaceDiceTolerance",)),
)
BY_KEY = {metric.key: metric for metric in METRICS}
KEYS = tuple(metric.key for metric in METRICS)


def metric(key):
    """The declaration of a metric; ValueError naming the known keys for an unknown one."""
    if key not in BY_KEY:
        raise ValueError(f"Unknown comparison metric {key!r}; known: {', '.join(KEYS)}")
    return BY_KEY[key]


def shownMetrics():
    return tuple(metric for metric in METRICS if metric.shown)
