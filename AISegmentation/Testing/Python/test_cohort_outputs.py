"""The cohort's outputs from hand-built case records: the table (CSV and Parquet, typed), the summary per structure
(numpy's statistics on the same values), the Dice / HD95 plots, and the HTML report (every case, worst first,
errors, links, escaping)."""

import csv
import html.parser
import math
import os

import numpy as np
import pyarrow.csv
import pyarrow.parquet
import pytest
from PIL import Image

from AISegmentationLib.Reports import CohortPlots, CohortReport, CohortTable
from AISegmentationLib.Pictures.Overview import renderOverview

SCRIPT_CASE = "<script>alert('x')</script>"
ERROR = "Could not read 'case 4.nii.gz': unsupported or corrupt file <b>"


def _metric(name, dice, hd95, asd=1.5, hausdorff=None):
    return {"referenceSegment": name, "comparedSegment": name, "dice": dice, "jaccard": None if dice is None else
            dice / (2 - dice), "referenceVolume": 10.0, "comparedVolume": 11.0, "volumeDifference": 1.0,
            "hausdorff": hausdorff if hausdorff is not None else hd95, "hausdorff95": hd95,
            "averageSurfaceDistance": asd, "surfaceDice": 0.8, "note": ""}


def _record(case, metrics=(), volumes=(), status="done", error=None, overview=None, files=None):
    return {"case": case, "status": status, "error": error, "seconds": 12.5, "steps": ["segment", "compare"],
            "inputs": {"images": [f"{case}.nii.gz"], "reference": None, "dicom": False},
            "outputs": {"segmentation": None, "labelmap": None, "labels": None, "dicomSeg": None,
                        "overview": overview}, "files": files or {}, "metrics": list(metrics),
            "volumes": list(volumes), "backend": {"name": "nnunet"}}


@pytest.fixture
def records(tmp_path):
    """Five cases: good, medium (HD95 inf as a float), bad (Dice 0 with HD95 "inf" and a None distance), failed,
    and one without reference whose id holds a <script> tag; the good case has its overview PNG and files."""
    caseFolder = tmp_path / "cases" / "good"
    caseFolder.mkdir(parents=True)
    overview = renderOverview(np.zeros((4, 8, 8)), (1, 1, 1), [], str(caseFolder / "good_overview.png"))
    (caseFolder / "good.seg.nrrd").write_bytes(b"segmentation")
    good = _record("good", [_metric("liver", 0.95, 2.0), _metric("spleen", 0.9, 3.0)],
                   [{"segment": "liver", "labelValue": 1, "voxels": 1000, "volumeMl": 11.0}],
                   overview=os.path.relpath(overview, tmp_path),
                   files={"cases/good/good.seg.nrrd": {"size": 12, "sha256": "0" * 64}})
    medium = _record("medium", [_metric("liver", 0.7, 5.0), _metric("spleen", 0.8, math.inf)])
    bad = _record("bad", [_metric("liver", 0.2, 9.0), _metric("spleen", 0.0, "inf", asd=None, hausdorff="Infinity")])
    failed = _record("broken", status="failed", error=ERROR)
    noReference = _record(SCRIPT_CASE, volumes=[{"segment": "liver", "labelValue": 1, "voxels": 800,
                                                 "volumeMl": 8.8},
                                                {"segment": "kidney", "labelValue": 2, "voxels": 90,
                                                 "volumeMl": 0.99}])
    return [good, medium, bad, failed, noReference]


def test_rows_one_per_case_and_structure_infinite_distances_accepted(records):
    rows = CohortTable.cohortRows(records)
    assert [(r["case"], r["structure"]) for r in rows] == [
        ("good", "liver"), ("good", "spleen"), ("medium", "liver"), ("medium", "spleen"), ("bad", "liver"),
        ("bad", "spleen"), ("broken", None), (SCRIPT_CASE, "liver"), (SCRIPT_CASE, "kidney")]
    byKey = {(r["case"], r["structure"]): r for r in rows}
    assert byKey[("broken", None)]["error"] == ERROR and byKey[("broken", None)]["dice"] is None
    spleen = byKey[("bad", "spleen")]
    assert spleen["hausdorff95"] == math.inf and spleen["hausdorff"] == math.inf
    assert spleen["averageSurfaceDistance"] == math.inf  # None for a distance means infinite
    assert byKey[("medium", "spleen")]["hausdorff95"] == math.inf
    assert byKey[("good", "liver")]["segmentVolumeMl"] == 11.0 and byKey[("good", "liver")]["labelValue"] == 1
    assert byKey[(SCRIPT_CASE, "kidney")]["segmentVolumeMl"] == 0.99 and byKey[(SCRIPT_CASE, "kidney")]["dice"] is None
    counts = CohortTable.cohortCounts(records)
    assert counts == {"done": 4, "failed": 1, "total": 5, "infiniteDistances": 5}


def test_bad_record_values_are_refused_with_the_case_named(records):
    records[1]["metrics"][0]["dice"] = "n/a"
    with pytest.raises(ValueError, match="Case 'medium': dice must be a number"):
        CohortTable.cohortRows(records)
    with pytest.raises(ValueError, match="non-empty 'case'"):
        CohortTable.cohortRows([{"status": "done"}])


def test_csv_and_parquet_read_back_typed(records, tmp_path):
    paths = CohortTable.writeCohortTables(records, str(tmp_path))
    assert sorted(os.path.basename(p) for p in paths.values()) == ["cohort.csv", "cohort.parquet", "summary.csv"]
    columns = [name for name, _ in CohortTable.COLUMNS]
    parquet = pyarrow.parquet.read_table(paths["parquet"])
    assert parquet.column_names == columns and parquet.num_rows == 9
    types = {field.name: str(field.type) for field in parquet.schema}
    assert types["case"] == "string" and types["dice"] == "double" and types["hausdorff95"] == "double"
    assert types["labelValue"] == "int64" and types["voxels"] == "int64" and types["seconds"] == "double"
    table = parquet.to_pylist()
    assert table[5]["case"] == "bad" and table[5]["hausdorff95"] == math.inf and table[5]["dice"] == 0.0
    assert table[6]["error"] == ERROR and table[6]["dice"] is None and table[6]["structure"] is None
    assert table[7]["case"] == SCRIPT_CASE and table[7]["voxels"] == 800
    fromCsv = pyarrow.csv.read_csv(paths["csv"])
    assert fromCsv.column_names == columns and fromCsv.num_rows == 9
    assert str(fromCsv.schema.field("dice").type) == "double" and str(fromCsv.schema.field("voxels").type) == "int64"
    assert fromCsv.column("hausdorff95").to_pylist() == [row["hausdorff95"] for row in table]
    assert fromCsv.column("case").to_pylist() == [row["case"] for row in table]
    assert not [name for name in os.listdir(tmp_path) if ".tmp-" in name]


def test_summary_statistics_equal_numpy(records, tmp_path):
    rows = CohortTable.cohortRows(records)
    summaries = {s["structure"]: s for s in CohortTable.summarizeByStructure(rows)}
    assert sorted(summaries) == ["kidney", "liver", "spleen"]
    liverDice = np.array([0.95, 0.7, 0.2])
    stats = summaries["liver"]["metrics"]["dice"]
    q1, median, q3 = np.percentile(liverDice, [25, 50, 75])
    assert stats["n"] == 3 and stats["infinite"] == 0
    assert stats["median"] == pytest.approx(median) and stats["q1"] == pytest.approx(q1)
    assert stats["q3"] == pytest.approx(q3) and stats["mean"] == pytest.approx(liverDice.mean())
    assert (stats["min"], stats["max"]) == (0.2, 0.95)
    spleenHd95 = summaries["spleen"]["metrics"]["hausdorff95"]
    assert spleenHd95["n"] == 3 and spleenHd95["infinite"] == 2 and spleenHd95["median"] == 3.0
    assert summaries["liver"]["metrics"]["segmentVolumeMl"]["n"] == 2  # good (11 mL) and the case without reference
    assert [w["case"] for w in summaries["liver"]["worstCases"]] == ["bad", "medium", "good"]
    assert [w["case"] for w in summaries["spleen"]["worstCases"]] == ["bad", "medium", "good"]
    assert summaries["kidney"]["worstCases"] == [] and summaries["kidney"]["metrics"]["dice"]["n"] == 0
    paths = CohortTable.writeCohortTables(records, str(tmp_path))
    with open(paths["summaryCsv"], encoding="utf-8", newline="") as file:
        written = {(row["structure"], row["metric"]): row for row in csv.DictReader(file)}
    assert float(written[("liver", "dice")]["median"]) == pytest.approx(median)
    assert float(written[("liver", "dice")]["q3"]) == pytest.approx(q3)
    assert written[("liver", "dice")]["worstCases"].startswith("bad (0.200); medium (0.700)")
    assert written[("spleen", "hausdorff95")]["infinite"] == "2"
    assert ("kidney", "dice") not in written and ("kidney", "segmentVolumeMl") in written


def _png(path):
    with open(path, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(path).convert("L"), float)


def test_plots_are_pngs_that_show_the_data(records, tmp_path):
    rows = CohortTable.cohortRows(records)
    first = CohortPlots.writeCohortPlots(rows, str(tmp_path / "a"))
    assert sorted(os.path.basename(p) for p in first.values()) == ["dice.png", "hd95.png"]
    dice = _png(first["dice"])
    assert 200 <= dice.shape[0] <= 2000 and 400 <= dice.shape[1] <= 2000 and dice.std() > 5
    records[0]["metrics"][0]["dice"] = 0.05
    second = CohortPlots.writeCohortPlots(CohortTable.cohortRows(records), str(tmp_path / "b"))
    changed = _png(second["dice"])
    assert changed.shape == dice.shape and np.abs(changed - dice).sum() > 0
    many = [dict(row, structure=f"structure {i:02d}", dice=0.5 + i / 100) for i in range(40) for row in rows[:1]]
    tall = _png(CohortPlots.plotMetric(many, "dice", "Dice", str(tmp_path / "many.png")))
    assert tall.shape[0] > 2 * dice.shape[0]  # one line per structure: the figure grows with them
    values, infinite = CohortPlots._finiteByStructure(rows, "hausdorff95")
    assert infinite == 2 and sorted(values["spleen"]) == [3.0]
    assert CohortPlots.structureOrder(values, higherIsBetter=False) == ["spleen", "liver"]  # medians 3, 5
    diceValues, _ = CohortPlots._finiteByStructure(rows, "dice")
    assert CohortPlots.structureOrder(diceValues) == ["spleen", "liver"]  # medians 0.8, 0.7; kidney has no Dice
    assert CohortPlots.structureOrder({"allInfinite": [], "a": [9.0], "b": [1.0]}, higherIsBetter=False) == [
        "b", "a", "allInfinite"]


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text, self.links, self.sections, self.headings = [], [], [], [], []
        self.inHeading = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "h2" and self.sections and len(self.headings) < len(self.sections):
            self.inHeading = True
            self.headings.append("")
        self.links += [attrs[name] for name in ("href", "src") if attrs.get(name)]
        if tag == "section":
            self.sections.append(attrs["id"])

    def handle_endtag(self, tag):
        if tag == "h2":
            self.inHeading = False

    def handle_data(self, data):
        self.text.append(data)
        if self.inHeading:
            self.headings[-1] += data


def test_report_lists_every_case_worst_first_with_errors_and_links(records, tmp_path):
    records[0]["warnings"] = ["no DICOM SEG: <the series has no StudyInstanceUID>"]
    paths = CohortReport.writeCohortOutputs(records, str(tmp_path))
    assert os.path.isfile(paths["report"]) and os.path.basename(paths["report"]) == "report.html"
    page = _Page()
    with open(paths["report"], encoding="utf-8") as file:
        source = file.read()
    page.feed(source)
    text = "".join(page.text)
    for record in records:
        assert record["case"] in text
    assert ERROR in text  # the failed case's error, escaped in the source and whole in the text
    assert f"Warning: {records[0]['warnings'][0]}" in text  # a case's warnings are shown, escaped
    assert "script" not in page.tags and "<script>" not in source and "&lt;script&gt;" in source
    assert "<b>" not in source
    assert "4 done" in text and "1 failed" in text and "5 total" in text and "5 infinite distances" in text
    assert [h.split(" (")[0] for h in page.headings] == ["broken", "bad", "medium", "good", SCRIPT_CASE]
    assert page.headings[0] == "broken (failed, 12.5 s)"
    local = [link for link in page.links if not link.startswith("#")]
    assert "cases/good/good_overview.png" in local and "cases/good/good.seg.nrrd" in local
    assert {"dice.png", "hd95.png", "cohort.csv", "cohort.parquet", "summary.csv"} <= set(local)
    for link in local:
        assert os.path.isfile(tmp_path / link), link
    anchors = {link[1:] for link in page.links if link.startswith("#")}
    assert anchors == set(page.sections)
    assert [r["case"] for r in CohortReport.caseOrder(records)] == ["broken", "bad", "medium", "good", SCRIPT_CASE]
