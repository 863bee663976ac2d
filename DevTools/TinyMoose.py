"""The tiny phantom nnU-Net installed as a MOOSE model, in MOOSE's own layout, for the MOOSE backend's tests.

MOOSE (moosez) finds a model by its entry in its metadata (``moosez.models.MODEL_METADATA``: a folder name and the
URL of its zip) and treats ``<models>/nnunet_trained_models/<folder name>/`` as installed when the folder's
``model_version.json`` names that URL (otherwise it deletes the folder and downloads again). So the tiny model is
installed exactly as MOOSE's own download would leave it — under a model name of the package's list, with the folder
name and URL that the package's metadata gives (read from the environment's probe) — and the real moosez code runs
end to end, offline. The phantom's labels are renamed after structures of MOOSE's SNOMED mapping (1: bright,
bone-like -> "skull"; 2: dark, air-like -> "trachea"), as a real MOOSE model names its labels.
"""

import json
import os
import shutil

import pytest

from .TinyModels import ensureEnvironment, tinyModels  # noqa: F401 - fixture used by mooseHome

TINY_MOOSE_MODEL = "clin_ct_organs"  # the backend's default model
TINY_MOOSE_LABELS = {"background": 0, "skull": 1, "trachea": 2}
TRAINER_FOLDER = "nnUNetTrainer__nnUNetPlans__3d_fullres"


@pytest.fixture(scope="session")
def mooseEnvironment():
    return ensureEnvironment("moose")


def installTinyMooseModel(home, phantomModel, modelEntry):
    """Place the phantom model (its fold "all") as MOOSE model `modelEntry` (a probe entry) under home."""
    folder = os.path.join(home, "models", "nnunet_trained_models", modelEntry["folderName"])
    configuration = os.path.join(folder, TRAINER_FOLDER)
    os.makedirs(configuration)
    for name in ("plans.json", "fold_all"):
        source = os.path.join(phantomModel, name)
        (shutil.copytree if os.path.isdir(source) else shutil.copyfile)(source, os.path.join(configuration, name))
    with open(os.path.join(phantomModel, "dataset.json"), encoding="utf-8") as file:
        dataset = json.load(file)
    dataset["labels"] = dict(TINY_MOOSE_LABELS)
    with open(os.path.join(configuration, "dataset.json"), "w", encoding="utf-8") as file:
        json.dump(dataset, file, indent=1)
    with open(os.path.join(folder, "model_version.json"), "w", encoding="utf-8") as file:
        json.dump({"url": modelEntry["url"]}, file)
    return folder


def mooseModelEntry(environment, name=TINY_MOOSE_MODEL):
    with open(os.path.join(environment["folder"], "aisegmentation-probe.json"), encoding="utf-8") as file:
        models = json.load(file)["models"]
    return next(entry for entry in models if entry["name"] == name)


@pytest.fixture
def mooseHome(mooseEnvironment, tinyModels, tmp_path):  # noqa: F811 - the fixture imported above
    """A MOOSE home of this test holding the tiny model as TINY_MOOSE_MODEL."""
    home = str(tmp_path / "moose")
    installTinyMooseModel(home, tinyModels["phantomModel"], mooseModelEntry(mooseEnvironment))
    return home
