"""The metrics are declared once (Comparison/Metrics.py) and every front and output reads the declarations: the
engine's result, the table node, CSV and JSON, the printed table, the cohort table (CSV and Parquet), summary and
report, the plots and the web page. A declared metric cannot be dropped silently by any of them."""

import ast
import csv
import json
import math
import os

import numpy as np
import pytest

from AISegmentationLib.Cohort import CaseTask
from AISegmentationLib.Reports import CohortPlots, CohortReport, CohortTable
from AISegmentationLib.CommandLine.Main import main
from AISegmentationLib.Comparison import Metrics, SegmentComparison, SegmentComparisonMRML
from DevTools.SyntheticImages import ball, makeVolume

MODULE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPTION_FIELDS = ("note", "device", "hausdorff95Mode", "averageSurfaceDistanceMode", "surfaceDiceTolerance",
                 "hausdorffPercentile")


def test_the_declarations_are_complete_and_consistent():
    keys = [metric.key for metric in Metrics.METRICS]
    assert len(set(keys)) == len(keys) and tuple(keys) == Metrics.KEYS
    for metric in Metrics.METRICS:
        assert metric.title and metric.short and metric.unit in ("", "mm", "mL", "%") and metric.digits >= 0
        assert metric.better in (Metrics.HIGHER, Metrics.LOWER, Metrics.ZERO, None)
        assert set(metric.options) <= {"hausdorff95Mode", "averageSurfaceDistanceMode", "surfaceDiceTolerance",
                                       "hausdorffPercentile"}
    assert Metrics.metric("dice").format(math.inf) == "inf" and Metrics.metric("hausdorff").format(1.234) == "1.23"
    with pytest.raises(ValueError, match="Unknown comparison metric 'nope'.*dice"):
        Metrics.metric("nope")


def test_the_engine_result_has_exactly_the_declared_metrics():
    fields = [field.name for field in SegmentComparison.ComparisonResult.__dataclass_fields__.values()]
    assert tuple(fields) == Metrics.KEYS + OPTION_FIELDS
    mask = np.zeros((6, 7, 8), bool)
    mask[1:4, 2:5, 3:6] = True
    result = SegmentComparison.compareMasks(mask, np.roll(mask, 1, 0), (1, 1, 1), device="cpu")
    assert all(isinstance(getattr(result, key), float) for key in Metrics.KEYS)


def _rows(logic):
    shape = (16, 18, 20)
    volume = makeVolume(logic, np.zeros(shape, np.int16))
    reference, compared = logic.createSegmentation(volume, "reference"), logic.createSegmentation(volume, "compared")
    for node, center in ((reference, (8, 9, 10)), (compared, (8, 10, 10))):
        logic.writeLabelmapArray(node, logic.addSegment(node, "organ"), volume, ball(shape, center, (4, 5, 5)))
    return logic.compareSegmentations(reference, compared, device="cpu", surfaceDiceTolerance=1.5)


def test_table_node_csv_json_and_printed_table_carry_every_declared_metric(logic, tmp_path, capsys):
    rows, table = _rows(logic)
    titles = [table.GetTable().GetColumn(i).GetName() for i in range(table.GetTable().GetNumberOfColumns())]
    expected = [metric.columnTitle(1.5) for metric in Metrics.METRICS]
    assert titles[2:2 + len(expected)] == expected and "Surface Dice (1.5 mm)" in titles
    csvPath = logic.saveComparisonCsv(rows, str(tmp_path / "rows.csv"))
    with open(csvPath, encoding="utf-8") as file:
        header, line = list(csv.reader(file))[:2]
    assert header == titles
    for metric in Metrics.METRICS:
        assert float(line[header.index(metric.columnTitle(1.5))]) == getattr(rows[0]["result"], metric.key)
    SegmentComparisonMRML.rowsToCsv(rows, str(tmp_path / "again.csv"))
    references = [logic.saveSegmentation(node, str(tmp_path / f"{name}.seg.nrrd")) for name, node in
                  (("reference", logic.scene.GetFirstNodeByName("reference")),
                   ("compared", logic.scene.GetFirstNodeByName("compared")))]
    jsonPath = tmp_path / "rows.json"
    capsys.readouterr()
    assert main(["compare", *references, "--device", "cpu", "--json", str(jsonPath)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert all(metric.shortTitle() in printed[0] for metric in Metrics.shownMetrics())
    assert set(Metrics.KEYS) <= set(json.loads(jsonPath.read_text())[0])


def test_cohort_table_report_and_plots_carry_every_declared_metric(logic, tmp_path):
    rows, _table = _rows(logic)
    record = {"case": "one", "status": "done", "seconds": 1.0, "metrics": [CaseTask.metricRow(row) for row in rows]}
    assert set(Metrics.KEYS) <= set(record["metrics"][0])
    tableRows = CohortTable.cohortRows([record])
    assert all(tableRows[0][key] == pytest.approx(getattr(rows[0]["result"], key)) for key in Metrics.KEYS)
    assert set(Metrics.KEYS) <= {name for name, _ in CohortTable.COLUMNS}
    assert set(Metrics.KEYS) <= set(CohortTable.summarizeByStructure(tableRows)[0]["metrics"])
    assert [key for key, _, _ in CohortReport.CASE_METRICS] == list(Metrics.KEYS)
    html = CohortReport.reportHtml([record], str(tmp_path))
    assert all(metric.shortTitle() in html for metric in Metrics.METRICS)
    paths = CohortTable.writeCohortTables([record], str(tmp_path))
    import pyarrow.parquet as pq

    assert set(Metrics.KEYS) <= set(pq.read_schema(paths["parquet"]).names)
    assert {field for field, _ in CohortPlots.PLOTS.values()} <= set(Metrics.KEYS)


def test_the_web_page_reads_the_declarations():
    """The web front end's own environment (trame) is not here: its source must use the declarations, no list."""
    with open(os.path.join(MODULE_DIR, "AISegmentationWeb", "Comparison.py"), encoding="utf-8") as file:
        tree = ast.parse(file.read())
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert "shownMetrics" in names and "SHOWN" not in names and "TABLE_COLUMNS" not in names
    keys = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in Metrics.KEYS}
    assert keys == set()  # no metric named by hand
