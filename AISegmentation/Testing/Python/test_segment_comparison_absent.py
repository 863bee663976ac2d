"""Every structure of either side is a row: a reference structure the compared segmentation lacks (Dice 0, compared
volume 0, infinite distances, a note), a compared structure without a reference counterpart (reference volume 0,
a note); through the label-map files, the segmentation nodes, the CLI and the cohort (detected n of N cases).
Pairs that match fully keep the numbers an earlier version gave, to the last digit. Real data: TotalSegmentator's
example segmentation."""

import json
import math
import os

import numpy as np
import pytest
import SimpleITK as sitk

from AISegmentationLib.Cohort import CaseTask
from AISegmentationLib.Reports.CohortTable import cohortRows, summarizeByStructure
from AISegmentationLib.CommandLine.Main import main
from AISegmentationLib.Comparison import SegmentComparison

HERE = os.path.dirname(os.path.abspath(__file__))
BASELINE = os.path.join(HERE, "comparison_baseline_25bb7f9.json")
SPLEEN, EXTRA = 1, 200
ABSENT_COMPARED, ABSENT_REFERENCE = "absent from the compared segmentation", "absent from the reference segmentation"


def _withoutSpleen(sampleFile, folder):
    """example_seg.nii.gz without label 1 (the spleen) and with a compared-only label 200 (a small box in air):
    (reference path, compared path, reference array, compared array, voxel volume in mL)."""
    referencePath = sampleFile("example_seg.nii.gz")
    image = sitk.ReadImage(referencePath)
    reference = sitk.GetArrayFromImage(image)
    compared = reference.copy()
    compared[compared == SPLEEN] = 0
    compared[2:5, 2:6, 2:7] = EXTRA
    assert not np.any(reference[2:5, 2:6, 2:7])
    output = sitk.GetImageFromArray(compared)
    output.CopyInformation(image)
    comparedPath = str(folder / "without_spleen.nii.gz")
    sitk.WriteImage(output, comparedPath)
    return referencePath, comparedPath, reference, compared, float(np.prod(image.GetSpacing())) / 1000


def _checkAbsentRows(rows, reference, compared, voxelMl, spleenName="Label 1", extraName="Label 200"):
    byReference = {row["referenceSegment"]: row for row in rows if row["referenceSegment"] is not None}
    byCompared = {row["comparedSegment"]: row for row in rows if row["referenceSegment"] is None}
    labels = [value for value in np.unique(reference) if value]
    assert len(byReference) == len(labels) and list(byCompared) == [extraName]
    spleen = byReference[spleenName]
    assert spleen["comparedSegment"] is None
    result = spleen["result"]
    assert (result.dice, result.jaccard, result.comparedVolume) == (0.0, 0.0, 0.0)
    assert result.referenceVolume == pytest.approx(np.count_nonzero(reference == SPLEEN) * voxelMl, rel=1e-12)
    assert result.referenceVolume > 200  # the spleen: about 255 mL
    assert all(math.isinf(getattr(result, key)) for key in ("hausdorff", "hausdorff95", "averageSurfaceDistance"))
    assert ABSENT_COMPARED in result.note.lower()
    extra = byCompared[extraName]["result"]
    assert (extra.dice, extra.referenceVolume) == (0.0, 0.0)
    assert extra.comparedVolume == pytest.approx(np.count_nonzero(compared == EXTRA) * voxelMl, rel=1e-12)
    assert math.isinf(extra.hausdorff) and ABSENT_REFERENCE in extra.note.lower()


def test_label_map_files_give_a_row_to_a_structure_absent_from_either_side(logic, sampleFile, tmp_path):
    referencePath, comparedPath, reference, compared, voxelMl = _withoutSpleen(sampleFile, tmp_path)
    rows = logic.compareLabelmapFiles(referencePath, comparedPath, device="cpu")
    _checkAbsentRows(rows, reference, compared, voxelMl)
    liver = next(row["result"] for row in rows if row["referenceSegment"] == "Label 5")
    assert liver.dice == 1.0 and not liver.note


def test_segmentation_nodes_give_a_row_to_a_structure_absent_from_either_side(logic, sampleFile, tmp_path):
    referencePath, comparedPath, reference, compared, voxelMl = _withoutSpleen(sampleFile, tmp_path)
    referenceNode, comparedNode = logic.importLabelmap(referencePath), logic.importLabelmap(comparedPath)
    rows, table = logic.compareSegmentations(referenceNode, comparedNode, device="cpu")
    _checkAbsentRows(rows, reference, compared, voxelMl)
    assert table.GetNumberOfRows() == len(rows)
    titles = [table.GetTable().GetColumn(i).GetName() for i in range(table.GetTable().GetNumberOfColumns())]
    spleenRow = [row["referenceSegment"] for row in rows].index("Label 1")
    assert table.GetTable().GetValue(spleenRow, titles.index("Compared segment")).ToString() == ""


def test_cli_prints_and_writes_the_absent_structures(sampleFile, tmp_path, capsys):
    referencePath, comparedPath, *_ = _withoutSpleen(sampleFile, tmp_path)
    jsonPath, csvPath = tmp_path / "rows.json", tmp_path / "rows.csv"
    assert main(["compare", referencePath, comparedPath, "--device", "cpu", "--json", str(jsonPath),
                 "--csv", str(csvPath)]) == 0
    printed = capsys.readouterr().out
    spleenLine = next(line for line in printed.splitlines() if line.startswith("Label 1 "))
    assert ABSENT_COMPARED in spleenLine.lower()
    assert any(line.startswith("- ") and "Label 200" in line for line in printed.splitlines())
    records = json.loads(jsonPath.read_text())
    spleen = next(record for record in records if record["referenceSegment"] == "Label 1")
    assert spleen["comparedSegment"] is None and spleen["dice"] == 0 and spleen["hausdorff95"] == "inf"
    assert any(record["referenceSegment"] is None and record["comparedSegment"] == "Label 200" for record in records)
    assert "Label 1,," in csvPath.read_text()


def test_cohort_counts_a_missed_structure_as_not_detected(logic, sampleFile, tmp_path):
    referencePath, comparedPath, *_ = _withoutSpleen(sampleFile, tmp_path)
    image = sampleFile("example_ct_sm.nii.gz")
    records = [CaseTask.runCase({"case": name, "images": [image], "reference": referencePath, "prediction": path},
                                str(tmp_path / "out"), steps=("compare",), logic=logic)
               for name, path in (("missed", comparedPath), ("found", referencePath))]
    assert [record["status"] for record in records] == ["done", "done"], records[0]["error"]
    spleen = next(entry for entry in records[0]["metrics"] if entry["referenceSegment"] == "Label 1")
    assert spleen["comparedSegment"] is None and spleen["dice"] == 0 and ABSENT_COMPARED in spleen["note"].lower()
    summaries = {summary["structure"]: summary for summary in summarizeByStructure(cohortRows(records))}
    assert (summaries["Label 1"]["detected"], summaries["Label 1"]["referenceCases"]) == (1, 2)
    assert summaries["Label 1"]["metrics"]["dice"]["mean"] == pytest.approx(0.5)  # the missed case counts
    assert summaries["Label 200"]["falsePositiveCases"] == 1
    assert summaries["Label 5"]["detected"] == summaries["Label 5"]["referenceCases"] == 2


def test_fully_matching_pairs_keep_the_numbers_of_the_earlier_version(tmp_path):
    """The baseline was recorded with the code of commit 25bb7f9 (ComparisonBaseline.py run in a worktree of it)."""
    from ComparisonBaseline import compareOutputs

    with open(BASELINE, encoding="utf-8") as file:
        baseline = json.load(file)
    current = compareOutputs(main, str(tmp_path))
    for key in ("labelmaps", "segmentations"):
        now = {(row["referenceSegment"], row["comparedSegment"]): row for row in current[key]}
        assert baseline[key] and len(now) > len(baseline[key])  # example_seg has labels example_seg_fast lacks
        for old in baseline[key]:
            new = now[(old["referenceSegment"], old["comparedSegment"])]
            assert {name: new[name] for name in old} == old
        added = [row for pair, row in now.items() if None in pair]
        assert added and all("absent from" in row["note"].lower() for row in added)


def test_absent_structure_result_matches_the_engine_on_an_empty_mask():
    """Oracle: the engine on a real mask against an all-empty one gives what the count-only row gives."""
    mask = np.zeros((9, 10, 11), bool)
    mask[2:6, 3:8, 4:9] = True
    spacing = (2.0, 0.7, 0.9)
    for absentFrom, pair in (("compared", (mask, np.zeros_like(mask))), ("reference", (np.zeros_like(mask), mask))):
        expected = SegmentComparison.compareMasks(*pair, spacing, device="cpu")
        result = SegmentComparison.absentStructureResult(int(mask.sum()), spacing, absentFrom, device="cpu")
        assert {k: v for k, v in result.asDict().items() if k != "note"} == \
            {k: v for k, v in expected.asDict().items() if k != "note"}
        assert result.note.endswith(expected.note) and f"absent from the {absentFrom}" in result.note.lower()
    with pytest.raises(ValueError, match="absentFrom"):
        SegmentComparison.absentStructureResult(3, spacing, "both")
