"""nnU-Net cascade models (the low-resolution stage's prediction fed to 3d_cascade_fullres) and probability maps.

The tiny cascade pair is made from the phantom network in seconds: its 3d_lowres stage is the phantom network as it
is; its cascade stage is the same network whose first convolutions take the image plus one channel per foreground
label (nnU-Net's cascade input), with zero weights on the new channels. nnU-Net builds the cascade network with those
extra channels, so the run works only when the low-resolution prediction is really fed to it.
"""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from DevTools.TinyModels import aiLogic, nnunetEnvironment, phantomVolume, segmentArrays, tinyModels  # noqa: F401

from AISegmentationLib.Backends import Registry
from AISegmentationLib.Backends.Backend import BackendContext
from AISegmentationLib.Backends.Options import validateOptions

TRAINER = "nnUNetTrainer__nnUNetPlans__"
WIDEN_CHECKPOINT = """
import sys, torch
path, extra = sys.argv[1], int(sys.argv[2])
checkpoint = torch.load(path, map_location="cpu", weights_only=False)
weights = checkpoint["network_weights"]
for key, value in list(weights.items()):
    if value.ndim == 5 and value.shape[1] == 1 and key.endswith("weight"):
        weights[key] = torch.cat([value, torch.zeros((value.shape[0], extra, *value.shape[2:]))], 1)
checkpoint["init_args"]["configuration"] = "3d_cascade_fullres"
torch.save(checkpoint, path)
"""


def cascadeFolders(phantomModel, root, python=None):
    """(cascade folder, lowres folder) made from the phantom model under root; python widens the cascade's weights."""
    dataset = os.path.join(root, os.path.basename(os.path.dirname(phantomModel)))
    with open(os.path.join(phantomModel, "plans.json"), encoding="utf-8") as file:
        plans = json.load(file)
    plans["configurations"]["3d_lowres"] = dict(plans["configurations"]["3d_fullres"])
    plans["configurations"]["3d_cascade_fullres"] = {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"}
    folders = []
    for configuration in ("3d_cascade_fullres", "3d_lowres"):
        folder = os.path.join(dataset, TRAINER + configuration)
        os.makedirs(folder)
        for name in ("dataset.json", "fold_all"):
            source = os.path.join(phantomModel, name)
            (shutil.copytree if os.path.isdir(source) else shutil.copyfile)(source, os.path.join(folder, name))
        with open(os.path.join(folder, "plans.json"), "w", encoding="utf-8") as file:
            json.dump(plans, file)
        folders.append(folder)
    if python:
        subprocess.run([python, "-c", WIDEN_CHECKPOINT, os.path.join(folders[0], "fold_all", "checkpoint_final.pth"),
                        "2"], check=True)
    return folders


def prepare(**options):
    backend = Registry.getBackend("nnunet")
    return backend.prepare(BackendContext({}, dict), **validateOptions(backend.options, options))


@pytest.fixture
def cascade(tinyModels, tmp_path):
    return cascadeFolders(tinyModels["phantomModel"], str(tmp_path))


@pytest.mark.slow
def test_a_cascade_stage_names_its_low_resolution_model(cascade):
    prepared = prepare(modelFolders=[cascade[0]], folds=["all"])
    assert prepared.childOptions["previousStage"] == {"folder": cascade[1], "folds": ["all"]}
    assert prepared.memoryModel["networkSpacing"]  # inherited from 3d_fullres


@pytest.mark.slow
def test_a_cascade_stage_without_its_low_resolution_model_is_refused_before_any_process(cascade, aiLogic,
                                                                                       monkeypatch):
    from AISegmentationLib.Backends import AILogic

    shutil.rmtree(cascade[1])
    started = []
    monkeypatch.setattr(AILogic, "backendPython", lambda *arguments: started.append(arguments))
    (volume,), _ = phantomVolume(aiLogic, seed=5)
    with pytest.raises(ValueError, match="needs the prediction of its low-resolution stage '3d_lowres'"):
        aiLogic.startBackend("nnunet", volume, modelFolders=[cascade[0]], folds=["all"])
    assert not started


@pytest.mark.slow
def test_probability_maps_beyond_the_memory_are_refused_before_any_process(tinyModels, aiLogic):
    backend = Registry.getBackend("nnunet")
    prepared = prepare(modelFolders=[tinyModels["phantomModel"]], probabilities=True)
    estimate = backend.estimateMemory(prepared, (40, 40, 40), (1.0, 1.0, 1.0))
    assert "Probability maps: 0.00 GiB (3 classes x 64,000 voxels x 4 bytes)" in estimate.messages
    with pytest.raises(ValueError, match="Probability maps of 3 classes on 1,000,000,000,000 voxels need"):
        backend.estimateMemory(prepared, (10000, 10000, 10000), (1.0, 1.0, 1.0))


@pytest.mark.slow
def test_cascade_run_feeds_the_low_resolution_stage_and_returns_probabilities(aiLogic, tinyModels, tmp_path):
    python = aiLogic.backendEnvironmentDetails("nnunet")["python"]
    folders = cascadeFolders(tinyModels["phantomModel"], str(tmp_path), python)
    (volume,), truth = phantomVolume(aiLogic, seed=903)
    segmentation = aiLogic.runBackend("nnunet", volume, modelFolders=[folders[0]], folds=["all"], device="cpu",
                                      tta=False, probabilities=True)
    arrays = segmentArrays(aiLogic, segmentation, volume)
    bright = arrays["bright_sphere"].astype(bool)
    assert 2 * (bright & (truth == 1)).sum() / (bright.sum() + (truth == 1).sum()) > 0.8
    parameters = json.loads(segmentation.GetAttribute("AISegmentation.parameters"))
    assert parameters["previousStage"]["folder"] == folders[1]
    import slicer

    count = segmentation.GetNumberOfNodeReferences("AISegmentation.probabilities")
    maps = [segmentation.GetNthNodeReference("AISegmentation.probabilities", index) for index in range(count)]
    assert [node.GetAttribute("AISegmentation.probabilityOf") for node in maps] == ["background", "bright_sphere",
                                                                                    "dark_sphere"]
    stack = np.stack([slicer.util.arrayFromVolume(node) for node in maps])
    np.testing.assert_allclose(stack.sum(axis=0), 1.0, atol=1e-3)
    assert np.array_equal(stack.argmax(axis=0) == 1, bright)
    from AISegmentationLib.Backends.Jobs.ResultExtras import saveExtras

    paths = saveExtras(segmentation, str(tmp_path / "out.seg.nrrd"))
    assert [os.path.basename(path) for path in paths] == ["out.probabilities.background.nii.gz",
                                                          "out.probabilities.bright_sphere.nii.gz",
                                                          "out.probabilities.dark_sphere.nii.gz"]
