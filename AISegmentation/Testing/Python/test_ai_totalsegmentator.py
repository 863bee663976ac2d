"""TotalSegmentator through the Logic: the real ``totalsegmentator`` package, in its isolated environment, on the
real example CT, with the tiny phantom network placed in its weights layout (see DevTools/build_tiny_models.py).
The tiny network marks bright (bone-like) voxels as label 1 and dark (air-like) voxels as label 2, which
TotalSegmentator names after its class map ("spleen", "kidney_right"): anatomy is not the point, the code path is.
"""

import json
import os
import shutil
import time
import zipfile

import numpy as np
import pytest
from DevTools.TinyModels import (aiLogic, labelmapToWorld, nnunetEnvironment, segmentArrays, tinyModels,  # noqa: F401
                                 totalSegmentatorEnvironment, totalSegmentatorHome, volumeToWorld)

pytestmark = pytest.mark.slow

TINY_CLASSES = {"spleen", "kidney_right"}


@pytest.fixture
def exampleCt(aiLogic, sampleFile):
    return aiLogic.loadVolume(sampleFile("example_ct_sm.nii.gz"))


@pytest.fixture
def tsLogic(aiLogic, totalSegmentatorEnvironment, totalSegmentatorHome):
    aiLogic.totalSegmentatorHome = totalSegmentatorHome
    return aiLogic


def test_registry_tasks_with_license_flags_come_from_the_package(tsLogic):
    tasks = {task["name"]: task for task in tsLogic.totalSegmentatorTasks()}
    assert tasks["total"]["classes"]["1"] == "spleen" and not tasks["total"]["licenseRequired"]
    assert tasks["total"]["modes"]["fast"] == {"models": 1, "resample": 3.0}
    assert any(task["licenseRequired"] for task in tasks.values())
    with pytest.raises(ValueError, match="Unknown TotalSegmentator task 'no_such_task'; tasks: total"):
        tsLogic.startTotalSegmentator(None, task="no_such_task")


def test_total_fast_on_example_ct_names_geometry_provenance_no_usage_statistics(tsLogic, exampleCt):
    segmentation = tsLogic.runTotalSegmentator(exampleCt, task="total", fast=True, device="cpu")
    arrays = segmentArrays(tsLogic, segmentation, exampleCt)
    assert arrays and set(arrays) <= TINY_CLASSES
    assert all(array.any() for array in arrays.values())
    from AISegmentationLib.Segments import segmentTag

    for segmentId in segmentation.GetSegmentation().GetSegmentIDs():
        np.testing.assert_allclose(labelmapToWorld(segmentation, segmentId), volumeToWorld(exampleCt), atol=1e-6)
        segment = segmentation.GetSegmentation().GetSegment(segmentId)
        assert "SCT^" in segmentTag(segment, "TerminologyEntry")  # from the package's SNOMED mapping
        assert segmentTag(segment, "AISegmentation.labelValue") == {"spleen": "1", "kidney_right": "2"}[
            segment.GetName()]
    assert segmentation.GetAttribute("AISegmentation.backend") == "TotalSegmentator"
    assert '"totalsegmentator": "2.18.0"' in segmentation.GetAttribute("AISegmentation.version")
    assert segmentation.GetAttribute("AISegmentation.device") == "cpu"
    with open(os.path.join(tsLogic.totalSegmentatorHome, "config.json"), encoding="utf-8") as file:
        assert json.load(file)["send_usage_stats"] is False


def test_roi_subset_keeps_only_the_requested_structure(tsLogic, exampleCt):
    segmentation = tsLogic.runTotalSegmentator(exampleCt, task="total", fast=True, roiSubset=["spleen"],
                                               device="cpu")
    arrays = segmentArrays(tsLogic, segmentation, exampleCt)
    assert set(arrays) == {"spleen"} and arrays["spleen"].any()
    assert '"roiSubset": ["spleen"]' in segmentation.GetAttribute("AISegmentation.parameters")
    with pytest.raises(ValueError, match="roi_subset names not in task 'total': not_an_organ"):
        tsLogic.runTotalSegmentator(exampleCt, fast=True, roiSubset=["not_an_organ"], device="cpu")


def test_its_own_switches_run_and_are_recorded(tsLogic, exampleCt):
    """removeSmallBlobs and higherOrderResampling reach the real package (TotalSegmentator's own post-processing)."""
    segmentation = tsLogic.runBackend("totalsegmentator", exampleCt, fast=True, removeSmallBlobs=True,
                                      higherOrderResampling=True, device="cpu")
    arrays = segmentArrays(tsLogic, segmentation, exampleCt)
    assert arrays and set(arrays) <= TINY_CLASSES and all(array.any() for array in arrays.values())
    parameters = json.loads(segmentation.GetAttribute("AISegmentation.parameters"))
    assert parameters["removeSmallBlobs"] is True and parameters["higherOrderResampling"] is True


def test_licensed_task_without_license_is_a_clear_error(tsLogic, exampleCt):
    licensed = next(task["name"] for task in tsLogic.totalSegmentatorTasks() if task["licenseRequired"])
    nodes = tsLogic.scene.GetNumberOfNodes()
    with pytest.raises(ValueError, match=f"task '{licensed}' requires a license"):
        tsLogic.startTotalSegmentator(exampleCt, task=licensed)
    # With a malformed license number the check happens in the child, before TotalSegmentator could sys.exit.
    with pytest.raises(ValueError, match=f"task '{licensed}' requires a license .*Invalid license number"):
        tsLogic.runTotalSegmentator(exampleCt, task=licensed, licenseNumber="not-a-license", device="cpu")
    assert tsLogic.scene.GetNumberOfNodes() == nodes


def test_missing_weights_offline_is_a_clear_error_without_hanging(tsLogic, exampleCt, tmp_path, monkeypatch):
    tsLogic.totalSegmentatorHome = str(tmp_path / "empty-home")
    monkeypatch.setenv("AISEGMENTATION_OFFLINE", "1")
    start = time.time()
    with pytest.raises(ValueError, match=r"weights for task 'total' are missing \(Dataset297_TotalSegmentator_total"
                                         r"_3mm.*no network connection.*import it"):
        tsLogic.runTotalSegmentator(exampleCt, fast=True, device="cpu")
    assert time.time() - start < 60
    monkeypatch.delenv("AISEGMENTATION_OFFLINE")
    with pytest.raises(ValueError, match="Dataset298_TotalSegmentator_total_6mm.*downloads are switched off"):
        tsLogic.runTotalSegmentator(exampleCt, fastest=True, allowDownload=False, device="cpu")


def test_offline_weights_import_from_zip_then_fastest_runs(tsLogic, exampleCt, tinyModels, tmp_path):
    weights = os.path.join(tinyModels["totalSegmentatorHome"], "nnunet", "results",
                           "Dataset298_TotalSegmentator_total_6mm_1559subj")
    archive = tmp_path / "Dataset298_TotalSegmentator_total_6mm_1559subj.zip"
    with zipfile.ZipFile(archive, "w") as zipFile:
        for root, _, files in os.walk(weights):
            for name in files:
                path = os.path.join(root, name)
                zipFile.write(path, os.path.relpath(path, os.path.dirname(weights)))
    tsLogic.totalSegmentatorHome = str(tmp_path / "fresh-home")
    assert tsLogic.importTotalSegmentatorWeights(str(archive)) == ["Dataset298_TotalSegmentator_total_6mm_1559subj"]
    segmentation = tsLogic.runTotalSegmentator(exampleCt, fastest=True, device="cpu", allowDownload=False)
    assert set(segmentArrays(tsLogic, segmentation, exampleCt)) <= TINY_CLASSES
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zipFile:
        zipFile.writestr("/etc/owned", "x")
    with pytest.raises(ValueError, match="leaves the destination folder"):
        tsLogic.importTotalSegmentatorWeights(str(evil))
    (tmp_path / "not-weights").mkdir()
    with pytest.raises(ValueError, match="holds no TotalSegmentator weights"):
        tsLogic.importTotalSegmentatorWeights(str(tmp_path / "not-weights"))
    assert tsLogic.importTotalSegmentatorWeights(str(tmp_path / "fresh-home")) == [
        "Dataset298_TotalSegmentator_total_6mm_1559subj"]  # importing what is in place already changes nothing
    installed = tmp_path / "fresh-home" / "nnunet" / "results" / "Dataset298_TotalSegmentator_total_6mm_1559subj"
    assert installed.is_dir()
    shutil.rmtree(tmp_path / "fresh-home")


def test_memory_estimate_uses_the_task_resolution(tsLogic, exampleCt):
    fast = tsLogic.estimateTotalSegmentatorMemory(exampleCt, fast=True)
    default = tsLogic.estimateTotalSegmentatorMemory(exampleCt)
    assert fast.networkShape == exampleCt.GetImageData().GetDimensions()[::-1]  # example_ct_sm is 3 mm already
    assert default.networkShape[0] == 2 * fast.networkShape[0] and default.peakBytes > fast.peakBytes
