"""The cohort table: one row per case x structure from the case records, written as CSV and Parquet, and the
summary statistics per structure (n, mean, median, IQR, min, max of every metric, the worst cases by Dice).

A case record (also ``cases/<case>/case.json``) holds "case", "status" ("done" | "failed"), "error", "seconds",
"metrics" (one entry per compared segment pair, the comparison engine's fields) and "volumes" (one entry per
segment: "segment", "labelValue", "voxels", "volumeMl"). Rows:
- a failed case: one row with its error;
- a done case with metrics: one row per segment pair, structure = the reference segment's name, with the compared
  segment's volume from "volumes" when it is there;
- a done case without metrics: one row per segment of "volumes" (the segment volume);
- a done case with neither: one row without a structure, so that every case is in the table.

Infinite distances (one mask empty) may come as float("inf"), "inf"/"Infinity" (JSON has no infinity) or None:
for the distance fields all three mean infinite. Statistics are taken over the finite values; the number of
infinite values is given beside them. Needs no Slicer (numpy, and pyarrow for Parquet).
"""

import math
import os

import numpy as np

from ..AtomicWrite import atomicOutput, writeText
from ..Comparison.Metrics import KEYS, METRICS
from ..CsvOutput import csvText

DISTANCE_FIELDS = tuple(metric.key for metric in METRICS if metric.infiniteWhenEmpty)
METRIC_FIELDS = tuple(metric.key for metric in METRICS)  # every declared metric (Comparison/Metrics.py)
NUMBER_FIELDS = METRIC_FIELDS + ("segmentVolumeMl",)
COLUMNS = (("case", "string"), ("status", "string"), ("structure", "string"), ("referenceSegment", "string"),
           ("comparedSegment", "string")) + tuple((field, "float64") for field in METRIC_FIELDS) + (
    ("segmentVolumeMl", "float64"), ("labelValue", "int64"), ("voxels", "int64"), ("note", "string"),
    ("error", "string"), ("seconds", "float64"))
SUMMARY_COLUMNS = ("structure", "metric", "n", "infinite", "mean", "median", "q1", "q3", "min", "max", "worstCases",
                   "detected", "falsePositiveCases")
WORST_CASES = 3
INFINITE_TEXTS = {"inf", "+inf", "infinity", "+infinity"}


def cohortRows(records):
    """Rows (dicts with every column of COLUMNS) of the cohort table, in the order of the records."""
    rows = []
    for record in records:
        case = _requireCase(record)
        base = {"case": case, "status": str(record.get("status") or ""),
                "seconds": _number(record.get("seconds"), case, "seconds")}
        if base["status"] != "done":
            rows.append(_row(base, error=str(record.get("error") or f"status '{base['status']}'")))
            continue
        volumes = {str(entry.get("segment")): entry for entry in record.get("volumes") or []}
        metrics = record.get("metrics") or []
        for entry in metrics:
            rows.append(_metricRow(base, entry, volumes, case))
        if not metrics:
            for name, entry in volumes.items():
                rows.append(_row(base, structure=name, **_volumeFields(entry, case)))
        if not metrics and not volumes:
            rows.append(_row(base))
    return rows


def _requireCase(record):
    if not isinstance(record, dict) or not str(record.get("case") or "").strip():
        raise ValueError(f"A case record must be a dict with a non-empty 'case', got {str(record)[:80]!r}")
    return str(record["case"])


def _row(base, **values):
    row = {name: None for name, _ in COLUMNS}
    row.update(base)
    row.update(values)
    return row


def _metricRow(base, entry, volumes, case):
    reference, compared = entry.get("referenceSegment"), entry.get("comparedSegment")
    values = {field: _number(entry.get(field), case, field, infiniteIfNone=field in DISTANCE_FIELDS)
              for field in METRIC_FIELDS}
    volume = volumes.get(str(compared)) or volumes.get(str(reference))
    extra = _volumeFields(volume, case) if volume else {}
    structure = entry.get("structure") or (reference if reference is not None else compared)
    return _row(base, structure=str(structure),
                referenceSegment=None if reference is None else str(reference),
                comparedSegment=None if compared is None else str(compared),
                note=entry.get("note") or None, **values, **extra)


def _volumeFields(entry, case):
    return {"segmentVolumeMl": _number(entry.get("volumeMl"), case, "volumeMl"),
            "labelValue": _integer(entry.get("labelValue"), case, "labelValue"),
            "voxels": _integer(entry.get("voxels"), case, "voxels")}


def _number(value, case, field, infiniteIfNone=False):
    """float of a record value: numbers, "inf"/"Infinity" texts; None stays None (inf for a distance)."""
    if value is None:
        return math.inf if infiniteIfNone else None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in INFINITE_TEXTS:
            return math.inf
        if text in ("-inf", "-infinity"):
            return -math.inf
    if isinstance(value, bool):
        raise ValueError(f"Case '{case}': {field} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Case '{case}': {field} must be a number or 'inf', got {value!r:.40}") from None
    return None if math.isnan(number) else number


def _integer(value, case, field):
    number = _number(value, case, field)
    if number is None:
        return None
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"Case '{case}': {field} must be a whole number, got {value!r}")
    return int(number)


# ---------------------------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------------------------

def statistics(values):
    """{"n", "infinite", "mean", "median", "q1", "q3", "min", "max"} of the finite values (None ignored; numpy's
    default linear percentiles); the statistics are None when no value is finite."""
    present = np.array([v for v in values if v is not None], float)
    finite = present[np.isfinite(present)]
    summary = {"n": int(present.size), "infinite": int(present.size - finite.size)}
    if finite.size == 0:
        return {**summary, **dict.fromkeys(("mean", "median", "q1", "q3", "min", "max"))}
    q1, median, q3 = np.percentile(finite, [25, 50, 75])
    return {**summary, "mean": float(finite.mean()), "median": float(median), "q1": float(q1), "q3": float(q3),
            "min": float(finite.min()), "max": float(finite.max())}


def detection(group):
    """{"referenceCases": cases whose reference has the structure (volume > 0), "detected": those of them where the
    compared segmentation overlaps it (Dice > 0), "falsePositiveCases": cases where only the compared segmentation
    has it} of one structure's rows."""
    inReference = [row for row in group if row["referenceSegment"] is not None and (row["referenceVolume"] or 0) > 0]
    return {"referenceCases": len(inReference),
            "detected": sum(1 for row in inReference if (row["dice"] or 0) > 0),
            "falsePositiveCases": sum(1 for row in group if row["referenceSegment"] is None
                                      and row["comparedSegment"] is not None)}


def detectionText(summary):
    return f"{summary['detected']} of {summary['referenceCases']}"


def summarizeByStructure(rows, worstCases=WORST_CASES):
    """Per structure (sorted by name), from the rows of done cases: {"structure", "cases" (how many rows),
    "metrics": {field: statistics(...)} for every metric and the segment volume, "worstCases": [{"case", "dice"}]
    lowest Dice first, and the counts of :func:`detection`}. A structure absent from one side is a row of its case
    (Dice 0, infinite distances), so the statistics are over every case that has the structure on either side."""
    byStructure = {}
    for row in rows:
        if row["status"] == "done" and row["structure"] is not None:
            byStructure.setdefault(row["structure"], []).append(row)
    summaries = []
    for structure in sorted(byStructure):
        group = byStructure[structure]
        metrics = {field: statistics([row[field] for row in group]) for field in NUMBER_FIELDS}
        scored = sorted((row for row in group if row["dice"] is not None), key=lambda row: (row["dice"], row["case"]))
        summaries.append({"structure": structure, "cases": len(group), "metrics": metrics,
                          "worstCases": [{"case": row["case"], "dice": row["dice"]} for row in scored[:worstCases]],
                          **detection(group)})
    return summaries


def cohortCounts(records):
    """{"done", "failed", "total", "infiniteDistances"}: case counts and how many distance values are infinite."""
    rows = cohortRows(records)
    done = sum(1 for record in records if record.get("status") == "done")
    infinite = sum(1 for row in rows for field in DISTANCE_FIELDS if row[field] is not None and math.isinf(row[field]))
    return {"done": done, "failed": len(records) - done, "total": len(records), "infiniteDistances": infinite}


def worstCasesText(worst):
    return "; ".join(f"{item['case']} ({item['dice']:.3f})" for item in worst)


def summaryRows(summaries):
    """The long form of summarizeByStructure (one row per structure x metric with values): summary.csv's rows."""
    rows = []
    for summary in summaries:
        for field, stats in summary["metrics"].items():
            if stats["n"]:
                first = field == "dice"
                rows.append({"structure": summary["structure"], "metric": field, **stats,
                             "worstCases": worstCasesText(summary["worstCases"]) if first else "",
                             "detected": detectionText(summary) if first else "",
                             "falsePositiveCases": summary["falsePositiveCases"] if first else ""})
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------------

def _csvText(columns, rows):
    return csvText(columns, [[_csvValue(row[name]) for name in columns] for row in rows])


def _csvValue(value):
    if isinstance(value, float):
        return "inf" if value == math.inf else "-inf" if value == -math.inf else repr(value)
    return value


def writeParquet(rows, path):
    """The rows as a Parquet file with typed columns (strings, float64 with inf kept, int64; None is null)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"string": pa.string(), "float64": pa.float64(), "int64": pa.int64()}
    schema = pa.schema([(name, types[kind]) for name, kind in COLUMNS])
    table = pa.Table.from_pylist([{name: row[name] for name, _ in COLUMNS} for row in rows], schema=schema)
    with atomicOutput(path) as temporary:
        pq.write_table(table, temporary)
    return path


def writeCohortTables(records, outputDir):
    """Write cohort.csv, cohort.parquet and summary.csv into outputDir (each atomically); returns
    {"csv", "parquet", "summaryCsv"} paths."""
    rows = cohortRows(records)
    columns = [name for name, _ in COLUMNS]
    paths = {"csv": os.path.join(outputDir, "cohort.csv"), "parquet": os.path.join(outputDir, "cohort.parquet"),
             "summaryCsv": os.path.join(outputDir, "summary.csv")}
    writeText(paths["csv"], _csvText(columns, rows))
    writeParquet(rows, paths["parquet"])
    writeText(paths["summaryCsv"], _csvText(SUMMARY_COLUMNS, summaryRows(summarizeByStructure(rows))))
    return paths


def metricRow(row):
    """A comparison row of the engine as a JSON-ready dict; infinite values become the string "inf"."""
    result = row["result"]
    values = {key: _jsonNumber(getattr(result, key)) for key in KEYS}
    return {"referenceSegment": row["referenceSegment"], "comparedSegment": row["comparedSegment"],
            "structure": row.get("structure"), **values, "note": result.note or ""}


def _jsonNumber(value):
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if math.isnan(value):
        return None
    return value
