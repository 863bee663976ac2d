"""Session fixtures for the AI tests: isolated backend environments created by the Logic, and tiny models.

Both are cached on disk and reused while valid: the environments under ``$AISEGMENTATION_ENVIRONMENTS_DIR`` and the
tiny models under ``$AISEGMENTATION_TINY_MODELS_DIR`` (defaults: ``output/test-cache/`` in the repository), so CI
can keep them between runs by pointing these variables at a cache folder. The models are built with
DevTools/build_tiny_models.py, run in the isolated "nnunet" environment (it has nnunetv2 and torch).
"""

import json
import os
import shutil
import subprocess
import time

import numpy as np
import pytest

from . import build_tiny_models  # numpy-only at import; it builds in the environment's Python

DEVTOOLS_DIR = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(DEVTOOLS_DIR)
CACHE = os.path.join(REPOSITORY, "output", "test-cache")


def _useCacheFolders():
    # One compute thread per backend process: tiny networks gain nothing from more, and on a 2-core machine
    # that is busy with other work, threads waiting for each other slow a run down several times.
    os.environ.setdefault("AISEGMENTATION_BACKEND_THREADS", "1")
    os.environ.setdefault("AISEGMENTATION_ENVIRONMENTS_DIR", os.path.join(CACHE, "environments"))
    os.environ.setdefault(build_tiny_models.DIRECTORY_VARIABLE, os.path.join(CACHE, "tiny_models"))


def ensureEnvironment(name):
    """Create the backend's isolated environment through the Logic (once; reused while it is ready)."""
    _useCacheFolders()
    from AISegmentationLib.Logic import AISegmentationLogic
    from AISegmentationLib.Runtime import getRuntime

    logic = AISegmentationLogic(getRuntime())
    if logic.backendEnvironmentStatus(name) != "ready":
        start = time.time()
        details = logic.createBackendEnvironment(name, force=logic.backendEnvironmentStatus(name) == "broken")
        print(f"\nCreated environment '{name}' in {time.time() - start:.0f} s: {details['versions']}")
    return logic.backendEnvironmentDetails(name)


@pytest.fixture(scope="session")
def nnunetEnvironment():
    return ensureEnvironment("nnunet")


@pytest.fixture(scope="session")
def totalSegmentatorEnvironment():
    return ensureEnvironment("totalsegmentator")


def buildTinyModels(python):
    """The manifest of the tiny models (paths), built once with nnU-Net's own planner and trainer."""
    _useCacheFolders()
    output = os.environ[build_tiny_models.DIRECTORY_VARIABLE]
    result = subprocess.run([python, os.path.join(DEVTOOLS_DIR, "build_tiny_models.py"), "--output", output],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"Building the tiny models failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    with open(os.path.join(output, "manifest.json"), encoding="utf-8") as file:
        return json.load(file)


@pytest.fixture(scope="session")
def tinyModels(nnunetEnvironment):
    return buildTinyModels(nnunetEnvironment["python"])


@pytest.fixture
def aiLogic(logic):
    """The test's Logic (fresh scene)."""
    return logic


@pytest.fixture
def totalSegmentatorHome(tinyModels, tmp_path):
    """A TotalSegmentator home of this test holding the tiny weights (its config.json is written by the run)."""
    home = tmp_path / "totalsegmentator"
    shutil.copytree(tinyModels["totalSegmentatorHome"], home)
    return str(home)


def phantomVolume(logic, seed, twoChannel=False, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0),
                  directions=None):
    """(volume nodes, truth KJI label array) of a new phantom case (a seed the models never saw)."""
    from .SyntheticImages import makeVolume

    channels, truth = build_tiny_models.phantomCase(seed, twoChannel=twoChannel)
    names = ["T1", "T2"] if twoChannel else ["phantom"]
    volumes = [makeVolume(logic, image, spacing, origin, directions, name=name)
               for image, name in zip(channels, names)]
    return volumes, truth


def segmentArrays(logic, segmentationNode, volumeNode):
    """{segment name: KJI 0/1 array on the volume's grid}."""
    segmentation = segmentationNode.GetSegmentation()
    return {segmentation.GetSegment(segmentId).GetName(): logic.segmentArray(segmentationNode, segmentId, volumeNode)
            for segmentId in segmentation.GetSegmentIDs()}


def labelmapToWorld(segmentationNode, segmentId):
    """4x4 image-to-world matrix of a segment's binary labelmap (index 0 based, whatever its extent)."""
    import slicer
    import vtk

    image = slicer.vtkOrientedImageData()
    segmentationNode.GetBinaryLabelmapRepresentation(segmentId, image)
    matrix = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def volumeToWorld(volumeNode):
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
