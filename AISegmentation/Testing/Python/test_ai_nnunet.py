"""nnU-Net v2 through the Logic: real inference with tiny models trained here, in an isolated environment that the
Logic creates (see TinyModels.py), plus model-folder validation, cancel, crash and undo."""

import os
import shutil
import zipfile

import numpy as np
import pytest
from DevTools.SyntheticImages import OBLIQUE_DIRECTIONS, dice, makeVolume, sceneSnapshot
from DevTools.TinyModels import (aiLogic, labelmapToWorld, nnunetEnvironment, phantomVolume,  # noqa: F401 - fixtures
                                 segmentArrays, tinyModels, volumeToWorld)

from AISegmentationLib.JobRunner import JobCancelledError
from BackendChecks import checkCancelEndsTheProcessTree, checkKilledChildIsAClearError, waitForStage

pytestmark = pytest.mark.slow

PHANTOM_LABELS = {"bright_sphere": 1, "dark_sphere": 2}


def _requirePhantomResult(aiLogic, segmentation, volume, truth, minimumDice=0.9):
    arrays = segmentArrays(aiLogic, segmentation, volume)
    assert set(arrays) == set(PHANTOM_LABELS)
    for name, value in PHANTOM_LABELS.items():
        assert dice(arrays[name], truth == value) >= minimumDice, name
    return arrays


def test_phantom_in_isolated_environment_dice_names_geometry_provenance(aiLogic, tinyModels):
    (volume,), truth = phantomVolume(aiLogic, seed=901, spacing=(1.0, 1.0, 1.0), origin=(12.5, -40.0, 7.25),
                                     directions=OBLIQUE_DIRECTIONS)
    progress = []
    segmentation = aiLogic.runNnUNet(volume, tinyModels["phantomModel"], device="cpu", environment="isolated",
                                     progressCallback=lambda p, m: progress.append((p, m)))
    _requirePhantomResult(aiLogic, segmentation, volume, truth)
    for segmentId in segmentation.GetSegmentation().GetSegmentIDs():
        np.testing.assert_allclose(labelmapToWorld(segmentation, segmentId), volumeToWorld(volume), atol=1e-6)
    assert segmentation.GetAttribute("AISegmentation.backend") == "nnU-Net"
    assert "Dataset990_AISegPhantom" in segmentation.GetAttribute("AISegmentation.model")
    assert '"nnunetv2": "2.8.1"' in segmentation.GetAttribute("AISegmentation.version")
    assert segmentation.GetAttribute("AISegmentation.device") == "cpu"
    assert segmentation.GetAttribute("AISegmentation.environment") == "isolated:nnunet"
    assert '"tta": true' in segmentation.GetAttribute("AISegmentation.parameters")
    assert segmentation.GetAttribute("AISegmentation.time")
    assert progress[-1][0] == 100 and any(message == "Predicting" for _, message in progress)


def test_fold_all_no_tta_step_size_and_ensemble_of_two_models(aiLogic, tinyModels):
    (volume,), truth = phantomVolume(aiLogic, seed=902)
    single = aiLogic.runNnUNet(volume, tinyModels["phantomModel"], folds="all", tta=False, stepSize=0.75,
                               device="cpu")
    _requirePhantomResult(aiLogic, single, volume, truth)
    assert '"folds": [["all"]]' in single.GetAttribute("AISegmentation.parameters")
    ensemble = aiLogic.runNnUNet(volume, [tinyModels["phantomModel"], tinyModels["secondPhantomModel"]], folds=[0],
                                 tta=False, device="cpu")
    _requirePhantomResult(aiLogic, ensemble, volume, truth)
    assert "Dataset992_AISegPhantomB" in ensemble.GetAttribute("AISegmentation.model")


def test_two_channel_model_takes_volumes_in_dataset_json_channel_order(aiLogic, tinyModels):
    (t1, t2), truth = phantomVolume(aiLogic, seed=903, twoChannel=True)
    byName = aiLogic.runNnUNet({"T2": t2, "T1": t1}, tinyModels["twoChannelModel"], tta=False, device="cpu")
    assert dice(segmentArrays(aiLogic, byName, t1)["lesion"], truth == 1) >= 0.9
    swapped = aiLogic.runNnUNet([t2, t1], tinyModels["twoChannelModel"], tta=False, device="cpu")
    lesion = segmentArrays(aiLogic, swapped, t1).get("lesion", np.zeros_like(truth))
    assert dice(lesion, truth == 1) < 0.5  # the decoy in T1 is taken for the lesion: channel order matters
    with pytest.raises(ValueError, match=r"takes 2 input volume\(s\) \(T1, T2\), got 1"):
        aiLogic.startNnUNet(t1, tinyModels["twoChannelModel"])
    with pytest.raises(ValueError, match="No volume given for channel"):
        aiLogic.startNnUNet({"T1": t1}, tinyModels["twoChannelModel"])


def test_undo_restores_previous_segmentation_and_same_name_segment_is_replaced(aiLogic, tinyModels):
    (volume,), truth = phantomVolume(aiLogic, seed=904)
    segmentation = aiLogic.createSegmentation(volume, "edited")
    manual = aiLogic.addSegment(segmentation, "manual")
    corner = np.zeros(truth.shape, np.uint8)
    corner[:3, :3, :3] = 1
    aiLogic.writeLabelmapArray(segmentation, manual, volume, corner)
    stale = aiLogic.addSegment(segmentation, "dark_sphere")
    aiLogic.writeLabelmapArray(segmentation, stale, volume, corner[::-1, ::-1, ::-1])
    before = sceneSnapshot(aiLogic, segmentation)
    result = aiLogic.runNnUNet(volume, tinyModels["phantomModel"], segmentation, folds="all", tta=False,
                               device="cpu")
    assert result is segmentation
    arrays = segmentArrays(aiLogic, segmentation, volume)
    assert set(arrays) == {"manual", "bright_sphere", "dark_sphere"}
    assert dice(arrays["dark_sphere"], truth == 2) >= 0.9  # replaced, not added to
    assert np.array_equal(arrays["manual"], corner)
    aiLogic.undo(segmentation)
    assert sceneSnapshot(aiLogic, segmentation) == before


def _startLongRun(aiLogic, tinyModels, segmentation=None):
    """A run of the tiny model that lasts long enough to be interrupted (big volume, small steps, mirroring)."""
    rng = np.random.default_rng(5)
    volume = makeVolume(aiLogic, rng.normal(40, 25, (96, 160, 160)).astype(np.float32), name="big")
    job = aiLogic.startNnUNet(volume, tinyModels["phantomModel"], segmentation, folds=0, device="cpu", tta=True,
                              stepSize=0.1)
    return volume, waitForStage(job, "Predicting", settle=0.5)


def test_cancel_mid_run_ends_child_tree_within_5_s_and_leaves_segmentation_untouched(aiLogic, tinyModels):
    (volume,), _ = phantomVolume(aiLogic, seed=905)
    segmentation = aiLogic.createSegmentation(volume, "keep")
    aiLogic.addSegment(segmentation, "manual")
    big, job = _startLongRun(aiLogic, tinyModels)
    before = sceneSnapshot(aiLogic, segmentation)
    nodes = aiLogic.scene.GetNumberOfNodes()
    workDir = checkCancelEndsTheProcessTree(job)
    assert sceneSnapshot(aiLogic, segmentation) == before and aiLogic.scene.GetNumberOfNodes() == nodes
    assert not os.path.exists(workDir)


def test_cancel_through_event_of_blocking_call(aiLogic, tinyModels):
    import threading

    (volume,), _ = phantomVolume(aiLogic, seed=906)
    cancel = threading.Event()

    def cancelWhenPredicting(percent, message):
        if message == "Predicting":
            cancel.set()

    big = makeVolume(aiLogic, np.zeros((96, 160, 160), np.float32), name="big")
    with pytest.raises(JobCancelledError):
        aiLogic.runNnUNet(big, tinyModels["phantomModel"], folds=0, device="cpu", stepSize=0.1,
                          progressCallback=cancelWhenPredicting, cancelEvent=cancel)


def test_killed_child_gives_clear_error_and_segmentation_untouched(aiLogic, tinyModels):
    (volume,), _ = phantomVolume(aiLogic, seed=907)
    segmentation = aiLogic.createSegmentation(volume, "keep")
    aiLogic.addSegment(segmentation, "manual")
    big, job = _startLongRun(aiLogic, tinyModels)
    before = sceneSnapshot(aiLogic, segmentation)
    checkKilledChildIsAClearError(job)
    assert sceneSnapshot(aiLogic, segmentation) == before


def test_child_exiting_non_zero_gives_clear_error_and_logic_keeps_working(aiLogic, tinyModels, tmp_path):
    (volume,), truth = phantomVolume(aiLogic, seed=908)
    broken = tmp_path / "Dataset990_AISegPhantom" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    shutil.copytree(tinyModels["phantomModel"], broken)
    (broken / "fold_0" / "checkpoint_final.pth").write_bytes(b"not a checkpoint")
    nodes = aiLogic.scene.GetNumberOfNodes()
    # the child refuses the unreadable checkpoint as a user error (ValueError) naming it
    with pytest.raises((RuntimeError, ValueError), match="nnU-Net failed: .*damaged or not a PyTorch checkpoint"):
        aiLogic.runNnUNet(volume, str(broken), folds=0, tta=False, device="cpu")
    assert aiLogic.scene.GetNumberOfNodes() == nodes
    with pytest.raises(ValueError, match="Device 'cuda' is not available"):
        aiLogic.runNnUNet(volume, tinyModels["phantomModel"], folds=0, device="cuda")
    segmentation = aiLogic.runNnUNet(volume, tinyModels["phantomModel"], folds="all", tta=False, device="cpu")
    _requirePhantomResult(aiLogic, segmentation, volume, truth)


def test_bad_model_folders_give_clear_errors_before_anything_runs(aiLogic, tinyModels, tmp_path):
    (volume,), _ = phantomVolume(aiLogic, seed=909)
    model = tinyModels["phantomModel"]
    nodes = aiLogic.scene.GetNumberOfNodes()
    cases = {str(tmp_path / "nowhere"): "does not exist",
             os.path.dirname(model): "contains one: choose .*nnUNetTrainer__nnUNetPlans__3d_fullres"}
    renamed = tmp_path / "my_model"
    shutil.copytree(model, renamed)
    cases[str(renamed)] = "is not nnU-Net's '<trainer>__<plans>__<configuration>'"
    noPlans = tmp_path / "a" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    shutil.copytree(model, noPlans)
    os.remove(noPlans / "plans.json")
    cases[str(noPlans)] = "lacks plans.json"
    noFolds = tmp_path / "b" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    shutil.copytree(model, noFolds, ignore=shutil.ignore_patterns("fold_*"))
    cases[str(noFolds)] = r"no trained fold: no fold_\*/checkpoint_final.pth"
    wrongConfiguration = tmp_path / "c" / "nnUNetTrainer__nnUNetPlans__2d"
    shutil.copytree(model, wrongConfiguration)
    cases[str(wrongConfiguration)] = "Configuration '2d' .* is not in plans.json"
    badJson = tmp_path / "d" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    shutil.copytree(model, badJson)
    (badJson / "dataset.json").write_text("{not json")
    cases[str(badJson)] = "is not valid JSON"
    for folder, message in cases.items():
        with pytest.raises(ValueError, match=message):
            aiLogic.startNnUNet(volume, folder)
    with pytest.raises(ValueError, match="has no fold_3/checkpoint_final.pth; folds with that checkpoint: 0, all"):
        aiLogic.startNnUNet(volume, model, folds=3)
    with pytest.raises(ValueError, match="Invalid fold 'x'"):
        aiLogic.startNnUNet(volume, model, folds="x")
    with pytest.raises(ValueError, match="Invalid checkpoint name"):
        aiLogic.startNnUNet(volume, model, checkpoint="../x.pth")
    with pytest.raises(ValueError, match=r"no fold_\*/checkpoint_latest.pth found"):
        aiLogic.startNnUNet(volume, model, folds=0, checkpoint="checkpoint_latest.pth")
    with pytest.raises(ValueError, match="cannot be ensembled"):
        aiLogic.startNnUNet(volume, [model, tinyModels["twoChannelModel"]])
    with pytest.raises(ValueError, match="Step size must be in"):
        aiLogic.startNnUNet(volume, model, stepSize=0)
    assert aiLogic.scene.GetNumberOfNodes() == nodes


def test_current_environment_runs_or_says_how_to_install(aiLogic, tinyModels):
    import importlib.util

    (volume,), truth = phantomVolume(aiLogic, seed=910)
    if importlib.util.find_spec("nnunetv2") is None:
        with pytest.raises(ValueError, match=r"not installed in the current Python .*createBackendEnvironment"):
            aiLogic.startNnUNet(volume, tinyModels["phantomModel"], environment="current")
    else:
        segmentation = aiLogic.runNnUNet(volume, tinyModels["phantomModel"], folds="all", tta=False,
                                         environment="current")
        _requirePhantomResult(aiLogic, segmentation, volume, truth)


def test_import_model_zip_is_safe_against_path_traversal(aiLogic, tinyModels, tmp_path):
    model = tinyModels["phantomModel"]
    good = tmp_path / "phantom.zip"
    with zipfile.ZipFile(good, "w") as archive:
        for root, _, files in os.walk(model):
            for name in files:
                path = os.path.join(root, name)
                archive.write(path, os.path.join("Dataset990_AISegPhantom", os.path.relpath(path, model)).replace(
                    "Dataset990_AISegPhantom", "Dataset990_AISegPhantom/nnUNetTrainer__nnUNetPlans__3d_fullres", 1))
    folders = aiLogic.importNnUNetModel(str(good), str(tmp_path / "models"))
    assert len(folders) == 1 and aiLogic.validateNnUNetModel(folders[0]).labels == {1: "bright_sphere",
                                                                                    2: "dark_sphere"}
    with pytest.raises(ValueError, match="exists already"):
        aiLogic.importNnUNetModel(str(good), str(tmp_path / "models"))
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("model/dataset.json", "{}")
        archive.writestr("../../escaped.txt", "owned")
    with pytest.raises(ValueError, match="leaves the destination folder"):
        aiLogic.importNnUNetModel(str(evil), str(tmp_path / "other"))
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path.parent / "escaped.txt").exists()
    assert not os.listdir(tmp_path / "other")
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("readme.txt", "no model")
    with pytest.raises(ValueError, match="holds no nnU-Net model folder"):
        aiLogic.importNnUNetModel(str(empty), str(tmp_path / "other"))
    assert not os.listdir(tmp_path / "other")


def test_memory_estimate_for_phantom_is_small_and_huge_volume_warns(aiLogic, tinyModels):
    from AISegmentationLib.Backends.Jobs.MemoryEstimate import GIB, estimateMemory

    (volume,), _ = phantomVolume(aiLogic, seed=911)
    estimate = aiLogic.estimateNnUNetMemory(volume, tinyModels["phantomModel"], device="cpu")
    assert estimate.networkShape == (40, 40, 40) and estimate.peakBytes < 2 * GIB

    small = estimateMemory((32, 32, 32), (1, 1, 1), (1, 1, 1), 3, (32, 32, 32), availableBytes=16 * GIB)
    assert small.fits and small.messages == []
    huge = estimateMemory((600, 512, 512), (0.8, 0.8, 0.8), (1.5, 1.5, 1.5), 118, (128, 128, 128),
                          availableBytes=16 * GIB, suggestions=("use fast mode",))
    assert not huge.fits and "use fast mode" in huge.messages[0] and huge.peakBytes > 16 * GIB
    fast = estimateMemory((600, 512, 512), (0.8, 0.8, 0.8), (3, 3, 3), 118, (128, 128, 128),
                          exportSpacing=(3, 3, 3), availableBytes=16 * GIB)
    assert fast.peakBytes < huge.peakBytes / 5 and fast.fits
