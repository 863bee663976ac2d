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
    "mL", "%" (of the union of both segments) or "" (a ratio); ``digits``: decimals shown; ``better``: HIGHER,
    LOWER, ZERO or None (a size); ``shown``: in the short views (printed table, web page) by default; ``options``:
    the comparison options its value depends on; ``infiniteWhenEmpty``: infinite when one side is empty."""

    key: str
    title: str
    short: str
    unit: str = ""
    digits: int = 4
    better: str = HIGHER
    shown: bool = True
    options: tuple = ()
    infiniteWhenEmpty: bool = False

    def columnTitle(self, surfaceDiceTolerance=None, hausdorffPercentile=None):
        """The table / CSV column title, units in parentheses (the surface Dice tolerance, the Hausdorff percentile
        when given)."""
        if "surfaceDiceTolerance" in self.options and surfaceDiceTolerance is not None:
            return f"{self.title} ({surfaceDiceTolerance:g} mm)"
        title = self.title
        if "hausdorffPercentile" in self.options and hausdorffPercentile is not None:
            title = f"Hausdorff {hausdorffPercentile:g}%"
        return f"{title} ({self.unit})" if self.unit else title

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
    Metric("hausdorff95", "Hausdorff 95%", "HD95", "mm", 2, LOWER,  # the percentile is a choice (95 by default)
           options=("hausdorff95Mode", "hausdorffPercentile"), infiniteWhenEmpty=True),
    Metric("averageSurfaceDistance", "Average surface distance", "ASSD", "mm", 3, LOWER,
           options=("averageSurfaceDistanceMode",), infiniteWhenEmpty=True),
    Metric("surfaceDice", "Surface Dice", "SurfDice", options=("surfaceDiceTolerance",)),
    Metric("sensitivity", "Sensitivity", "Sens", shown=False),
    Metric("precision", "Precision", "Prec", shown=False),
    Metric("truePositiveVolume", "True positive volume", "TP", "mL", 2, better=None, shown=False),
    Metric("falsePositiveVolume", "False positive volume", "FP", "mL", 2, LOWER, shown=False),
    Metric("falseNegativeVolume", "False negative volume", "FN", "mL", 2, LOWER, shown=False),
    Metric("truePositivePercent", "True positive", "TP", "%", 2, HIGHER, shown=False),
    Metric("falsePositivePercent", "False positive", "FP", "%", 2, LOWER, shown=False),
    Metric("falseNegativePercent", "False negative", "FN", "%", 2, LOWER, shown=False),
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
