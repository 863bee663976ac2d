"""The cohort's HTML report (report.html): one self-contained page people look at.

It gives the counts (done, failed, total, infinite distances), the plots and the tables of the cohort folder, a
summary table per structure, then EVERY case, worst first: failed cases at the very top, then by the case's lowest
Dice (cases without a Dice last). Each case shows its overview PNG, its metrics, its segment volumes, its error,
and links to its files. Inline CSS, no script, no external asset; links are relative to the cohort folder (the
record's paths are), so the folder can be moved or zipped as a whole. Every text from a record is escaped.
"""

import html
import math
import os
import urllib.parse

from ..AtomicWrite import writeText
from ..Comparison.Metrics import METRICS
from .CohortPlots import writeCohortPlots
from .CohortTable import cohortCounts, cohortRows, detectionText, summarizeByStructure, writeCohortTables

REPORT_NAME = "report.html"
CASE_METRICS = tuple((metric.key, metric.shortTitle(), metric.digits) for metric in METRICS)  # every declared one
STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f0f0f0; }
section.case { border-top: 2px solid #ddd; padding-top: 0.5em; margin-top: 1em; }
.failed h2 { color: #b00020; }
pre.error { background: #fff0f0; border: 1px solid #e0a0a0; padding: 0.5em; white-space: pre-wrap; }
img { max-width: 100%; border: 1px solid #ccc; }
.counts span { margin-right: 1.5em; font-weight: bold; }
.low { background: #ffe0e0; }
p.warning { color: #8a5300; }
"""


def _text(value):
    return html.escape("" if value is None else str(value))


def _link(relativePath):
    """An href for a path relative to the cohort folder (escaped for the attribute, quoted for the URL)."""
    return html.escape(urllib.parse.quote(str(relativePath).replace(os.sep, "/")), quote=True)


def _number(value, digits):
    if value is None:
        return ""
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.{digits}f}"


def caseOrder(records):
    """Records worst first: failed cases, then by lowest Dice (ascending), then cases without Dice; ties by id."""
    def key(record):
        if record.get("status") != "done":
            return (0, 0.0, str(record.get("case")))
        dice = [d for d in (_lowestDice(record),) if d is not None]
        return (1, dice[0], str(record.get("case"))) if dice else (2, 0.0, str(record.get("case")))
    return sorted(records, key=key)


def _lowestDice(record):
    values = []
    for entry in record.get("metrics") or []:
        try:
            values.append(float(entry.get("dice")))
        except (TypeError, ValueError):
            continue
    values = [v for v in values if not math.isnan(v)]
    return min(values) if values else None


def _iqr(stats, digits):
    return f"{_number(stats['q1'], digits)}–{_number(stats['q3'], digits)}" if stats["q1"] is not None else ""


def _summaryTable(summaries, anchors):
    header = ("<tr><th>Structure</th><th>n</th><th>Dice median</th><th>Dice IQR</th><th>Dice mean</th>"
              "<th>Dice min</th><th>HD95 median (mm)</th><th>HD95 IQR (mm)</th><th>HD95 ∞</th>"
              "<th>Volume median (mL)</th><th>Detected</th><th>False-positive cases</th>"
              "<th>Worst cases (Dice)</th></tr>")
    lines = [header]
    for summary in summaries:
        dice, hd95 = summary["metrics"]["dice"], summary["metrics"]["hausdorff95"]
        volume = summary["metrics"]["segmentVolumeMl"]
        worst = ", ".join(f'<a href="#{anchors[item["case"]]}">{_text(item["case"])}</a> '
                          f'({_number(item["dice"], 3)})' for item in summary["worstCases"])
        lines.append(f"<tr><td>{_text(summary['structure'])}</td><td>{summary['cases']}</td>"
                     f"<td>{_number(dice['median'], 3)}</td><td>{_iqr(dice, 3)}</td>"
                     f"<td>{_number(dice['mean'], 3)}</td>"
                     f"<td>{_number(dice['min'], 3)}</td><td>{_number(hd95['median'], 2)}</td><td>{_iqr(hd95, 2)}</td>"
                     f"<td>{hd95['infinite']}</td><td>{_number(volume['median'], 2)}</td>"
                     f"<td>{detectionText(summary)}</td><td>{summary['falsePositiveCases']}</td><td>{worst}</td></tr>")
    return "<table>" + "\n".join(lines) + "</table>"


def _metricsTable(rows):
    metricRows = [row for row in rows if row["referenceSegment"] is not None or row["comparedSegment"] is not None]
    if not metricRows:
        return ""
    header = "<tr><th>Reference</th><th>Compared</th>" + "".join(f"<th>{_text(t)}</th>" for _, t, _ in CASE_METRICS)
    lines = [header + "<th>Note</th></tr>"]
    for row in sorted(metricRows, key=lambda r: (r["dice"] if r["dice"] is not None else math.inf)):
        low = ' class="low"' if row["dice"] is not None and row["dice"] < 0.5 else ""
        cells = "".join(f"<td>{_number(row[field], digits)}</td>" for field, _, digits in CASE_METRICS)
        lines.append(f"<tr{low}><td>{_text(row['referenceSegment'])}</td><td>{_text(row['comparedSegment'])}</td>"
                     f"{cells}<td>{_text(row['note'])}</td></tr>")
    return "<table>" + "\n".join(lines) + "</table>"


def _volumesTable(record):
    volumes = record.get("volumes") or []
    if not volumes:
        return ""
    lines = ["<tr><th>Segment</th><th>Label value</th><th>Voxels</th><th>Volume (mL)</th></tr>"]
    for entry in volumes:
        try:
            volume = _number(float(entry.get("volumeMl")), 2)
        except (TypeError, ValueError):
            volume = _text(entry.get("volumeMl"))
        lines.append(f"<tr><td>{_text(entry.get('segment'))}</td><td>{_text(entry.get('labelValue'))}</td>"
                     f"<td>{_text(entry.get('voxels'))}</td><td>{volume}</td></tr>")
    return "<table>" + "\n".join(lines) + "</table>"


def _existing(outputDir, relativePath):
    return bool(relativePath) and os.path.isfile(os.path.join(outputDir, str(relativePath)))


def _filesList(record, outputDir):
    outputs = {key: path for key, path in (record.get("outputs") or {}).items() if path}
    paths = list(dict.fromkeys(list(outputs.values()) + list(record.get("files") or {})))
    items = []
    for path in paths:
        what = ", ".join(key for key, value in outputs.items() if value == path)
        label = f"{_text(path)}{f' ({_text(what)})' if what else ''}"
        items.append(f'<li><a href="{_link(path)}">{label}</a></li>' if _existing(outputDir, path)
                     else f"<li>{label} (missing)</li>")
    return f"<ul>{''.join(items)}</ul>" if items else ""


def _caseSection(record, rows, anchor, outputDir):
    status = str(record.get("status") or "")
    seconds = record.get("seconds")
    timing = f", {float(seconds):.1f} s" if isinstance(seconds, (int, float)) else ""
    parts = [f'<section class="case {"failed" if status != "done" else "done"}" id="{anchor}">',
             f"<h2>{_text(record.get('case'))} <small>({_text(status)}{timing})</small></h2>"]
    if status != "done":
        parts.append(f'<pre class="error">{_text(record.get("error") or "failed without a message")}</pre>')
    parts += [f'<p class="warning">Warning: {_text(warning)}</p>' for warning in record.get("warnings") or []]
    overview = (record.get("outputs") or {}).get("overview")
    if overview and _existing(outputDir, overview):
        parts.append(f'<a href="{_link(overview)}"><img loading="lazy" src="{_link(overview)}" alt="overview of '
                     f'{_text(record.get("case"))}"></a>')
    distanceMap = (record.get("outputs") or {}).get("distanceMap")
    if distanceMap and _existing(outputDir, distanceMap):
        structure = _text(record.get("distanceMapStructure") or "")
        parts.append(f'<figure><a href="{_link(distanceMap)}"><img loading="lazy" src="{_link(distanceMap)}" '
                     f'alt="surface-distance map of {structure}"></a><figcaption>Surface distance of {structure}, '
                     f"this case's lowest Dice (blue inside the reference, red outside)</figcaption></figure>")
    parts += [_metricsTable(rows), _volumesTable(record), _filesList(record, outputDir), "</section>"]
    return "\n".join(part for part in parts if part)


def reportHtml(records, outputDir, links=None):
    """The report page as text. links: {label: path relative to outputDir} of cohort files (tables, plots) to link;
    the PNG ones are shown."""
    rows = cohortRows(records)
    counts = cohortCounts(records)
    summaries = summarizeByStructure(rows)
    ordered = caseOrder(records)
    anchors = {str(record.get("case")): f"case-{index}" for index, record in enumerate(ordered, start=1)}
    rowsByCase = {}
    for row in rows:
        rowsByCase.setdefault(row["case"], []).append(row)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', "<title>Cohort report</title>",
             f"<style>{STYLE}</style></head><body>", "<h1>Cohort report</h1>",
             f'<p class="counts"><span>{counts["done"]} done</span><span>{counts["failed"]} failed</span>'
             f'<span>{counts["total"]} total</span><span>{counts["infiniteDistances"]} infinite distances '
             f"(one mask empty)</span></p>"]
    links = {label: path for label, path in (links or {}).items() if _existing(outputDir, path)}
    files = [f'<a href="{_link(path)}">{_text(label)}</a>' for label, path in links.items()]
    if files:
        parts.append(f"<p>Files: {' · '.join(files)}</p>")
    parts += [f'<img src="{_link(path)}" alt="{_text(label)}">' for label, path in links.items()
              if str(path).lower().endswith(".png")]
    if summaries:
        parts += ["<h2>Per structure</h2>", _summaryTable(summaries, anchors)]
    parts.append("<h2>Cases, worst first</h2><ol>" + "".join(
        f'<li><a href="#{anchors[str(record.get("case"))]}">{_text(record.get("case"))}</a> '
        f'({_text(record.get("status"))})</li>' for record in ordered) + "</ol>")
    parts += [_caseSection(record, rowsByCase.get(str(record.get("case")), []), anchors[str(record.get("case"))],
                           outputDir) for record in ordered]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def writeCohortReport(records, outputDir, links=None):
    """Write report.html into outputDir (atomically); returns its path. links: see reportHtml (default: the cohort
    tables and plots that exist in outputDir)."""
    if links is None:
        links = {name: name for name in ("cohort.csv", "cohort.parquet", "summary.csv", "dice.png", "hd95.png")}
    return writeText(os.path.join(outputDir, REPORT_NAME), reportHtml(records, outputDir, links))


def writeCohortOutputs(records, outputDir):
    """The cohort-level outputs in one call: tables, plots, then the report linking them. Returns
    {"csv", "parquet", "summaryCsv", "dice", "hd95", "report"} paths."""
    paths = writeCohortTables(records, outputDir)
    paths.update(writeCohortPlots(cohortRows(records), outputDir))
    links = {"Cohort table (CSV)": "cohort.csv", "Cohort table (Parquet)": "cohort.parquet",
             "Summary per structure (CSV)": "summary.csv", "Dice plot": "dice.png", "HD95 plot": "hd95.png"}
    paths["report"] = writeCohortReport(records, outputDir, links)
    return paths

