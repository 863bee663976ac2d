"""TotalSegmentator: several tasks in one run merged into one segmentation, and its statistics table; the checks
that refuse a combination happen before any process starts (quick tests: no environment). The runs themselves, on
the tiny weights, are the slow tests at the end."""

import csv
import json
import os
import shutil
import sys

import numpy as np
import pytest

from AISegmentationLib.Backends import Registry
from AISegmentationLib.Backends.Backend import BackendContext
from AISegmentationLib.Backends.Options import validateOptions

BACKENDS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "AISegmentationLib", "Backends")
TASKS = [{"name": "total", "modality": "CT", "licenseRequired": False, "classes": {"1": "spleen", "2": "kidney_right"},
          "modes": {}},
         {"name": "body", "modality": "CT", "licenseRequired": False,
          "classes": {"1": "body_trunc", "2": "body_extremities"}, "modes": {}},
         {"name": "other", "modality": "CT", "licenseRequired": False, "classes": {"1": "spleen"}, "modes": {}}]


def prepare(**options):
    backend = Registry.getBackend("totalsegmentator")
    return backend.prepare(BackendContext({}, lambda: {"tasks": TASKS}), **validateOptions(backend.options, options))


@pytest.fixture
def child(monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(BACKENDS, "Child"))
    monkeypatch.syspath_prepend(os.path.join(BACKENDS, "TotalSegmentator"))
    import ChildTotalSegmentator

    yield ChildTotalSegmentator
    sys.modules.pop("ChildTotalSegmentator", None)


def test_several_tasks_are_one_run_with_their_names_in_the_provenance():
    prepared = prepare(task=["total", "body"], fast=True)
    assert prepared.childOptions["tasks"] == ["total", "body"] and prepared.parameters["task"] == ["total", "body"]
    assert prepared.description == "TotalSegmentator tasks 'total' + 'body' fast"
    assert prepare(task="total").parameters["task"] == "total"  # one task: recorded as before


@pytest.mark.parametrize("options, message", [
    ({"task": ["total", "other"]}, "tasks 'total' and 'other' both name a structure 'spleen'"),
    ({"task": ["total", "total"]}, "task\\(s\\) given twice"),
    ({"task": ["total", "body"], "roiSubset": ["spleen"]}, "roiSubset works with one TotalSegmentator task"),
    ({"task": ["total", "no_such_task"]}, "Unknown TotalSegmentator task 'no_such_task'"),
])
def test_incompatible_task_combinations_are_refused_before_the_run(options, message):
    with pytest.raises(ValueError, match=message):
        prepare(**options)


def test_a_refused_combination_starts_nothing(logic, monkeypatch, tmp_path):
    """The job runner is never reached and no job folder is made: the error comes from the option validation."""
    import tempfile

    from AISegmentationLib.Backends import AILogic

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    started = []
    monkeypatch.setattr(AILogic, "backendPython", lambda *arguments: started.append(arguments))
    volume = logic.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    with pytest.raises(ValueError, match="roiSubset works with one TotalSegmentator task"):
        logic.startBackend("totalsegmentator", volume, task=["total", "body"], roiSubset=["spleen"])
    with pytest.raises(ValueError, match="Unknown option\\(s\\) statistics for MOOSE"):
        logic.startBackend("moose", volume, statistics=True)  # a backend without statistics
    assert not started and not os.listdir(tmp_path)


def test_tasks_naming_one_structure_differently_are_refused_in_the_child_before_any_network(child):
    codes = {"type": ["SCT", "10200004", "Liver"], "category": ["SCT", "123037004", "Anatomical Structure"]}
    classes = {"a": {1: "liver"}, "b": {1: "hepar"}, "c": {1: "kidney"}}
    with pytest.raises(child.UserError, match="'a' and 'b' name one structure differently \\('liver' in 'a', "
                                              "'hepar' in 'b'\\)"):
        child.requireDistinctStructures(["a", "b"], classes.get, {"liver": codes, "hepar": codes})
    child.requireDistinctStructures(["a", "c"], classes.get, {"liver": codes})  # distinct: no error


def test_merged_label_map_moves_each_task_past_the_previous_and_keeps_names():
    from AISegmentationLib.Backends.Child.LabelMerge import mergeLabelMaps  # shared with MOOSE's several models

    first = np.array([[[0, 1, 2, 2]]])
    second = np.array([[[1, 1, 0, 2]]])
    merged, names = mergeLabelMaps([("total", first, {0: "background", 1: "spleen", 2: "kidney_right"}),
                                      ("body", second, {0: "background", 1: "body_trunc", 2: "body_extremities"})])
    assert merged.tolist() == [[[3, 3, 2, 4]]]  # the later task takes an overlapping voxel
    assert names == {1: ("total", "spleen"), 2: ("total", "kidney_right"), 3: ("body", "body_trunc"),
                     4: ("body", "body_extremities")}


def test_statistics_rows_volume_mean_std_and_border(logic):
    from AISegmentationLib.Backends.TotalSegmentator.StructureStatistics import structureRows

    intensities = np.arange(64, dtype=np.float32).reshape(4, 4, 4)
    inner = np.zeros((4, 4, 4), np.uint8)
    inner[1:3, 1:3, 1:3] = 1
    edge = np.zeros((4, 4, 4), np.uint8)
    edge[0, 0, :2] = 1
    rows = structureRows({"inner": (1, inner), "edge": (2, edge), "none": (3, np.zeros_like(inner))}, intensities,
                         (2.0, 1.0, 0.5))
    assert rows[0]["voxels"] == 8 and rows[0]["volumeMl"] == 0.008 and not rows[0]["touchesBorder"]
    assert rows[0]["mean"] == pytest.approx(intensities[1:3, 1:3, 1:3].mean())
    assert rows[0]["std"] == pytest.approx(intensities[1:3, 1:3, 1:3].std())
    assert rows[1]["touchesBorder"] and rows[1]["mean"] == 0.5
    assert rows[2]["voxels"] == 0 and np.isnan(rows[2]["mean"])


# The runs, on the tiny weights ------------------------------------------------------------------------------------

from DevTools.TinyModels import (aiLogic, nnunetEnvironment, phantomVolume, segmentArrays,  # noqa: E402,F401
                                 tinyModels, totalSegmentatorEnvironment, totalSegmentatorHome)

BODY_WEIGHTS = os.path.join("Dataset300_body_6mm_1559subj", "nnUNetTrainer__nnUNetPlans__3d_fullres")


@pytest.fixture
def tsLogic(aiLogic, totalSegmentatorEnvironment, totalSegmentatorHome):
    """The tiny network also placed as task "body" --fast (TotalSegmentator's Dataset300): two tasks to merge."""
    results = os.path.join(totalSegmentatorHome, "nnunet", "results")
    source = os.path.join(results, "Dataset297_TotalSegmentator_total_3mm_1559subj")
    shutil.copytree(os.path.join(source, os.listdir(source)[0]), os.path.join(results, BODY_WEIGHTS))
    aiLogic.totalSegmentatorHome = totalSegmentatorHome
    return aiLogic


@pytest.fixture
def exampleCt(aiLogic):
    """A 40^3 phantom CT (a few seconds per task; the example CT takes minutes on a busy 2-core machine)."""
    return phantomVolume(aiLogic, seed=7)[0][0]


@pytest.mark.slow
def test_two_tasks_in_one_run_are_one_segmentation_with_statistics(tsLogic, exampleCt, tmp_path):
    segmentation = tsLogic.runBackend("totalsegmentator", exampleCt, task=["total", "body"], fast=True,
                                      statistics=True, device="cpu")
    arrays = segmentArrays(tsLogic, segmentation, exampleCt)
    assert {"spleen", "kidney_right"} & set(arrays) and {"body_trunc", "body_extremities"} & set(arrays)
    from AISegmentationLib.Segments import segmentTag

    values = {segmentation.GetSegmentation().GetSegment(segmentId).GetName(): segmentTag(
        segmentation.GetSegmentation().GetSegment(segmentId), "AISegmentation.labelValue")
        for segmentId in segmentation.GetSegmentation().GetSegmentIDs()}
    assert all(int(values[name]) > 117 for name in ("body_trunc", "body_extremities") if name in values)
    assert json.loads(segmentation.GetAttribute("AISegmentation.parameters"))["task"] == ["total", "body"]
    table = segmentation.GetNodeReference("AISegmentation.statistics")
    assert table is not None and table.GetNumberOfRows() == len(arrays)
    from AISegmentationLib.Backends.Jobs.ResultExtras import saveExtras, tableRows

    rows = {row["structure"]: row for row in tableRows(table)}
    import slicer

    ct = slicer.util.arrayFromVolume(exampleCt)
    spacing = np.prod(exampleCt.GetSpacing()) / 1000.0
    for name, mask in arrays.items():
        assert rows[name]["voxels"] == int(mask.sum())
        assert rows[name]["volumeMl"] == pytest.approx(mask.sum() * spacing, abs=1e-3)
        assert rows[name]["mean"] == pytest.approx(ct[mask.astype(bool)].mean(), rel=1e-5)
    paths = saveExtras(segmentation, str(tmp_path / "ct.seg.nrrd"))
    assert paths == [str(tmp_path / "ct.statistics.csv")]
    with open(paths[0], encoding="utf-8") as file:
        assert {row["structure"] for row in csv.DictReader(file)} == set(arrays)
