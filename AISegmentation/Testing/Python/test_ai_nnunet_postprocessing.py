"""An nnU-Net model's own post-processing (postprocessing.pkl): applied by default when the model folder has one and
named in the provenance, off on request, and a crafted pickle refused before anything of it runs."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import slicer
from DevTools.TinyModels import aiLogic, nnunetEnvironment, phantomVolume, segmentArrays, tinyModels  # noqa: F401
from DevTools.SyntheticImages import sceneSnapshot

pytestmark = pytest.mark.slow

WRITE_PICKLE = ("import pickle, sys; from nnunetv2.postprocessing.remove_connected_components import "
                "remove_all_but_largest_component_from_segmentation as f; "
                "pickle.dump(([f], [{'labels_or_regions': 1, 'background_label': 0}]), open(sys.argv[1], 'wb'))")


def components(mask):
    from scipy import ndimage

    return ndimage.label(mask)[1]


@pytest.fixture
def modelWithPostprocessing(aiLogic, tinyModels, tmp_path):
    folder = str(tmp_path / os.path.basename(tinyModels["phantomModel"]))
    shutil.copytree(tinyModels["phantomModel"], folder)
    python = aiLogic.backendEnvironmentDetails("nnunet")["python"]
    subprocess.run([python, "-c", WRITE_PICKLE, os.path.join(folder, "postprocessing.pkl")], check=True)
    return folder


def test_the_models_post_processing_keeps_the_largest_bright_region(aiLogic, modelWithPostprocessing):
    (volume,), truth = phantomVolume(aiLogic, seed=902)
    image = slicer.util.arrayFromVolume(volume)
    free = np.argwhere(truth == 0)
    corner = free[np.argmin(free.sum(axis=1))] + 2  # a bright cube far from the phantom's objects
    image[tuple(slice(c, c + 6) for c in corner)] = 800.0
    slicer.util.arrayFromVolumeModified(volume)
    plain = aiLogic.runBackend("nnunet", volume, modelFolders=[modelWithPostprocessing], device="cpu",
                               postprocessing=False)
    before = segmentArrays(aiLogic, plain, volume)["bright_sphere"]
    assert components(before) >= 2, "the cube should be a second bright region"
    processed = aiLogic.runBackend("nnunet", volume, modelFolders=[modelWithPostprocessing], device="cpu")
    after = segmentArrays(aiLogic, processed, volume)["bright_sphere"]
    assert components(after) == 1 and after.sum() < before.sum() and not (after & ~before).any()
    parameters = json.loads(processed.GetAttribute("AISegmentation.parameters"))
    assert parameters["postprocessing"].endswith("postprocessing.pkl")
    assert "postprocessing" not in json.loads(plain.GetAttribute("AISegmentation.parameters"))


def test_a_crafted_postprocessing_pickle_is_refused_unrun(aiLogic, modelWithPostprocessing, tmp_path):
    marker = tmp_path / "ran"
    with open(os.path.join(modelWithPostprocessing, "postprocessing.pkl"), "wb") as file:
        file.write(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    (volume,), _ = phantomVolume(aiLogic, seed=903)
    segmentation = aiLogic.createSegmentation(volume, "untouched")
    before = sceneSnapshot(aiLogic, segmentation)
    with pytest.raises(ValueError, match="names 'os.system'.*not one of nnU-Net's post-processing functions"):
        aiLogic.runBackend("nnunet", volume, segmentation, modelFolders=[modelWithPostprocessing], device="cpu")
    assert not marker.exists() and sceneSnapshot(aiLogic, segmentation) == before
