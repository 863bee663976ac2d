"""Segment comparison on MRML segmentation nodes: different geometries, transforms, batch table and CSV."""

import csv

import numpy as np
import pytest
import slicer
import vtk

from AISegmentationLib.Comparison import SegmentComparison
from DevTools.SyntheticImages import OBLIQUE_DIRECTIONS, ball, makeVolume


def _segmentation(logic, volume, masks, name):
    segmentation = logic.createSegmentation(volume, name)
    for segmentName, mask in masks.items():
        segmentId = logic.addSegment(segmentation, segmentName)
        logic.writeLabelmapArray(segmentation, segmentId, volume, mask)
    return segmentation


def test_same_grid_matches_the_engine_exactly(logic):
    shape = (30, 40, 50)
    reference, compared = ball(shape, (15, 20, 25), (8, 10, 12)), ball(shape, (16, 21, 24), (7, 11, 12))
    volume = makeVolume(logic, np.zeros(shape, np.int16), spacing=(0.8, 0.9, 2.5))
    referenceNode = _segmentation(logic, volume, {"organ": reference}, "reference")
    comparedNode = _segmentation(logic, volume, {"organ": compared}, "compared")
    result = logic.compareSegments(referenceNode, referenceNode.GetSegmentation().GetNthSegmentID(0),
                                   comparedNode, comparedNode.GetSegmentation().GetNthSegmentID(0), device="cpu")
    expected = SegmentComparison.compareMasks(reference, compared, (2.5, 0.9, 0.8), device="cpu")
    for field in ("dice", "jaccard", "referenceVolume", "comparedVolume", "hausdorff", "hausdorff95",
                  "averageSurfaceDistance", "surfaceDice"):
        assert getattr(result, field) == pytest.approx(getattr(expected, field), abs=1e-9), field


def test_compared_segmentation_on_another_grid_is_resampled_onto_the_reference(logic):
    # The same physical box, segmented on a fine axis-aligned grid and on a grid with twice the spacing and an
    # offset origin: a voxel-exact box on both gives Dice 1 after resampling.
    fine = makeVolume(logic, np.zeros((20, 20, 20), np.int16), spacing=(1, 1, 1), name="fine")
    coarse = makeVolume(logic, np.zeros((10, 10, 10), np.int16), spacing=(2, 2, 2), origin=(0.5, 0.5, 0.5),
                        name="coarse")
    fineMask = np.zeros((20, 20, 20), bool)
    fineMask[4:12, 6:14, 2:10] = True
    coarseMask = np.zeros((10, 10, 10), bool)
    coarseMask[2:6, 3:7, 1:5] = True
    referenceNode = _segmentation(logic, fine, {"box": fineMask}, "reference")
    comparedNode = _segmentation(logic, coarse, {"box": coarseMask}, "compared")
    rows, table = logic.compareSegmentations(referenceNode, comparedNode, device="cpu")
    assert len(rows) == 1 and rows[0]["result"].dice == pytest.approx(1.0)
    assert rows[0]["result"].comparedVolume == pytest.approx(fineMask.sum() / 1000.0)


def test_parent_transform_of_the_compared_segmentation_is_applied(logic):
    shape = (20, 24, 28)
    mask = ball(shape, (10, 12, 14), (5, 6, 7))
    volume = makeVolume(logic, np.zeros(shape, np.int16), spacing=(1.0, 1.0, 1.0), directions=OBLIQUE_DIRECTIONS)
    referenceNode = _segmentation(logic, volume, {"ball": mask}, "reference")
    comparedNode = _segmentation(logic, volume, {"ball": mask}, "compared")
    transform = logic.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    matrix = vtk.vtkMatrix4x4()
    matrix.SetElement(2, 3, 3.0)  # 3 mm towards superior
    transform.SetMatrixTransformToParent(matrix)
    comparedNode.SetAndObserveTransformNodeID(transform.GetID())
    result = logic.compareSegments(referenceNode, referenceNode.GetSegmentation().GetNthSegmentID(0),
                                   comparedNode, comparedNode.GetSegmentation().GetNthSegmentID(0), device="cpu")
    assert result.dice < 1.0
    assert result.hausdorff == pytest.approx(3.0, abs=1e-6)


def test_batch_by_name_writes_a_table_node_and_csv(logic, tmp_path):
    shape = (24, 30, 36)
    volume = makeVolume(logic, np.zeros(shape, np.int16), spacing=(1.5, 1.0, 1.0))
    a, b = ball(shape, (12, 10, 10), (5, 5, 5)), ball(shape, (12, 20, 26), (5, 5, 5))
    referenceNode = _segmentation(logic, volume, {"Liver": a, "spleen": b, "only in reference": ball(shape, (4, 4, 4), (2, 2, 2))}, "reference")
    comparedNode = _segmentation(logic, volume, {"spleen": np.roll(b, 2, axis=2), "liver": a, "extra": ball(shape, (20, 25, 4), (2, 2, 2))}, "compared")
    csvPath = tmp_path / "comparison.csv"
    progress = []
    rows, table = logic.compareSegmentations(referenceNode, comparedNode, csvPath=str(csvPath), device="cpu",
                                             progressCallback=lambda f, m: progress.append(f))
    assert [(r["referenceSegment"], r["comparedSegment"]) for r in rows] == [
        ("Liver", "liver"), ("spleen", "spleen"), ("only in reference", None), (None, "extra")]
    assert rows[2]["result"].dice == 0.0 and "absent from the compared" in rows[2]["result"].note.lower()
    assert rows[3]["result"].referenceVolume == 0.0 and rows[3]["result"].comparedVolume > 0
    assert table.GetNumberOfRows() == 4
    assert table.GetTable().GetColumnByName("Hausdorff 95% (mm)") is not None
    assert table.GetTable().GetColumnByName("Surface Dice (2 mm)") is not None
    assert table.GetTable().GetValueByName(0, "Dice").ToDouble() == pytest.approx(1.0)
    assert table.GetTable().GetValueByName(1, "Hausdorff (mm)").ToDouble() == pytest.approx(3.0)  # 2 voxels of 1.5 mm
    with open(csvPath) as file:
        lines = list(csv.reader(file))
    assert lines[0][:3] == ["Reference segment", "Compared segment", "Dice"] and len(lines) == 5
    assert progress[0] == 0.0 and progress[-1] == 1.0


def test_empty_and_missing_segments(logic):
    shape = (10, 10, 10)
    volume = makeVolume(logic, np.zeros(shape, np.int16))
    mask = np.zeros(shape, bool)
    mask[3:6, 3:6, 3:6] = True
    referenceNode = _segmentation(logic, volume, {"a": mask}, "reference")
    comparedNode = logic.createSegmentation(volume, "compared")
    empty = logic.addSegment(comparedNode, "a")
    result = logic.compareSegments(referenceNode, referenceNode.GetSegmentation().GetNthSegmentID(0),
                                   comparedNode, empty, device="cpu")
    assert result.dice == 0.0 and result.hausdorff == float("inf") and result.note
    with pytest.raises(ValueError, match="no segment"):
        logic.compareSegments(referenceNode, "nope", comparedNode, empty)
    other = logic.createSegmentation(volume, "other")
    logic.addSegment(other, "unrelated")
    rows, _table = logic.compareSegmentations(referenceNode, other)  # no name in common: every segment a row
    assert [(row["referenceSegment"], row["comparedSegment"]) for row in rows] == [("a", None), (None, "unrelated")]
    with pytest.raises(ValueError, match="No segments to compare"):
        logic.compareSegmentations(logic.createSegmentation(volume, "none"), logic.createSegmentation(volume, "no"))
    with pytest.raises(ValueError, match="No compared segmentation"):
        logic.compareSegmentations(referenceNode, None)


def test_a_comparison_started_while_one_runs_is_refused_and_the_first_completes(logic):
    """The panel repaints from the progress callback (processEvents), where a second click on Compare would start a
    second comparison inside the first: the Logic refuses it with a clear message."""
    shape = (20, 20, 20)
    volume = makeVolume(logic, np.zeros(shape, np.int16))
    masks = {"a": ball(shape, (10, 10, 10), (5, 5, 5)), "b": ball(shape, (9, 10, 10), (4, 5, 6))}
    reference = _segmentation(logic, volume, masks, "reference")
    compared = _segmentation(logic, volume, masks, "compared")
    refusals = []

    def progress(fraction, message):
        with pytest.raises(ValueError, match="already running") as refusal:
            logic.compareSegmentations(reference, compared)
        refusals.append(str(refusal.value))

    rows, table = logic.compareSegmentations(reference, compared, progressCallback=progress)
    assert len(rows) == 2 and table.GetNumberOfRows() == 2
    assert len(refusals) == 3  # before each pair and at the end
    rows, _table = logic.compareSegmentations(reference, compared)  # and it can run again afterwards
    assert [row["result"].dice for row in rows] == [1.0, 1.0]
