"""The tiny phantom nnU-Net installed as a MOOSE model, in MOOSE's own layout, for the MOOSE backend's tests.

MOOSE (moosez) finds a model by its entry in its metadata (``moosez.models.MODEL_METADATA``: a folder name and the
URL of its zip) and treats ``<models>/nnunet_trained_models/<folder name>/`` as installed when the folder's
``model_version.json`` names that URL (otherwise it deletes the folder and downloads again). So the tiny model is
installed exactly as MOOSE's own download would leave it — under a model name of the package's list, with the folder
name and URL that the package's metadata gives (read from the environment's probe) — and the real moosez code runs
end to end, offline. The phantom's labels are renamed after structures of MOOSE's SNOMED mapping (1: bright,
bone-like -> "skull"; 2: dark, air-like -> "trachea"), as a real MOOSE model names its labels.

A second model for runs of several models (TINY_MOOSE_SECOND_MODEL) is the same network with its output channels
reordered (PERMUTED_CHANNELS, in the checkpoint's segmentation layers: a few tensors, no training): its label 1 is
what the first model calls background ("body", everything but the spheres), its label 2 the dark sphere ("lung"),
and the bright sphere is its background. So the two models' predictions differ: the first's "skull" is the
second's background and survives a merge, while the dark sphere is predicted by both (the later model takes it).
"""

import json
import os
import shutil
import subprocess

import pytest

from .TinyModels import ensureEnvironment, tinyModels  # noqa: F401 - fixture used by mooseHome

TINY_MOOSE_MODEL = "clin_ct_organs"  # the backend's default model
TINY_MOOSE_LABELS = {"background": 0, "skull": 1, "trachea": 2}
TINY_MOOSE_SECOND_MODEL = "clin_ct_lungs"
TINY_MOOSE_SECOND_LABELS = {"background": 0, "body": 1, "lung": 2}
PERMUTED_CHANNELS = [1, 0, 2]  # new output channel i = the phantom model's channel PERMUTED_CHANNELS[i]
TRAINER_FOLDER = "nnUNetTrainer__nnUNetPlans__3d_fullres"
PERMUTE_SCRIPT = """
import glob, sys, torch
order = [int(item) for item in sys.argv[2].split(",")]
for path in glob.glob(sys.argv[1] + "/fold_all/*.pth"):
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    weights = checkpoint["network_weights"]
    for key in [key for key in weights if ".seg_layers." in key]:
        weights[key] = weights[key][order].clone()
    torch.save(checkpoint, path)
"""


@pytest.fixture(scope="session")
def mooseEnvironment():
    return ensureEnvironment("moose")


def installTinyMooseModel(home, phantomModel, modelEntry, labels=None):
    """Place the phantom model (its fold "all") as MOOSE model `modelEntry` (a probe entry) under home, its labels
    named `labels` (default TINY_MOOSE_LABELS)."""
    folder = os.path.join(home, "models", "nnunet_trained_models", modelEntry["folderName"])
    configuration = os.path.join(folder, TRAINER_FOLDER)
    os.makedirs(configuration)
    for name in ("plans.json", "fold_all"):
        source = os.path.join(phantomModel, name)
        (shutil.copytree if os.path.isdir(source) else shutil.copyfile)(source, os.path.join(configuration, name))
    with open(os.path.join(phantomModel, "dataset.json"), encoding="utf-8") as file:
        dataset = json.load(file)
    dataset["labels"] = dict(labels or TINY_MOOSE_LABELS)
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


@pytest.fixture(scope="session")
def permutedPhantomModel(mooseEnvironment, tinyModels, tmp_path_factory):  # noqa: F811
    """The phantom model with its output channels reordered (PERMUTED_CHANNELS), made once per session in the MOOSE
    environment's torch."""
    folder = str(tmp_path_factory.mktemp("permuted") / TRAINER_FOLDER)
    os.makedirs(folder)
    for name in ("plans.json", "dataset.json", "fold_all"):
        source = os.path.join(tinyModels["phantomModel"], name)
        (shutil.copytree if os.path.isdir(source) else shutil.copyfile)(source, os.path.join(folder, name))
    subprocess.run([mooseEnvironment["python"], "-c", PERMUTE_SCRIPT, folder, ",".join(map(str, PERMUTED_CHANNELS))],
                   check=True, timeout=600)
    return folder


@pytest.fixture
def twoMooseModelsHome(mooseEnvironment, tinyModels, permutedPhantomModel, tmp_path):  # noqa: F811
    """A MOOSE home holding the tiny model as TINY_MOOSE_MODEL and its permuted twin as TINY_MOOSE_SECOND_MODEL."""
    home = str(tmp_path / "moose-two")
    installTinyMooseModel(home, tinyModels["phantomModel"], mooseModelEntry(mooseEnvironment))
    installTinyMooseModel(home, permutedPhantomModel, mooseModelEntry(mooseEnvironment, TINY_MOOSE_SECOND_MODEL),
                          TINY_MOOSE_SECOND_LABELS)
    return home
