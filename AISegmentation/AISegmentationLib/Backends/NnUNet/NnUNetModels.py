"""nnU-Net v2 trained model folders: validation with clear messages, and import from a zip file.

A model folder is nnU-Net's training output ``<trainer>__<plans>__<configuration>/`` holding ``dataset.json``,
``plans.json`` and ``fold_<f>/<checkpoint>.pth`` (f = 0, 1, ... or ``all``). Validation reads only these JSON files
and the folder listing (no torch), so it runs in Slicer's process before any child starts.
"""

import json
import os
import re
import shutil
from dataclasses import dataclass

from ..Child import SafeZip

FOLDER_NAME = re.compile(r"^(?P<trainer>[^_][^/\\]*?)__(?P<plans>[^/\\]+?)__(?P<configuration>[^/\\]+)$")
DEFAULT_CHECKPOINT = "checkpoint_final.pth"


@dataclass
class NnUNetModel:
    folder: str
    trainer: str
    plans: str
    configuration: str
    folds: list
    checkpoint: str
    labels: dict  # {label value: name}
    channels: list  # channel names in input order
    datasetName: str
    plansJson: dict

    @property
    def configurationPlans(self):
        return self.plansJson["configurations"][self.configuration]

    def description(self):
        datasetFolder = os.path.basename(os.path.dirname(self.folder))
        return f"{datasetFolder}/{os.path.basename(self.folder)} folds {','.join(map(str, self.folds))}"


def _readJson(path, what):
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except ValueError as error:
        raise ValueError(f"{what} '{path}' is not valid JSON ({error})") from None


def _findModelFolders(root, depth=3):
    """Folders under root (root included) that hold both dataset.json and plans.json."""
    found = []
    for current, folders, files in os.walk(root):
        if os.path.relpath(current, root).count(os.sep) >= depth:
            folders[:] = []
        if "dataset.json" in files and "plans.json" in files:
            found.append(current)
            folders[:] = []
    return sorted(found)


def _requireFiles(folder):
    if not os.path.isdir(folder):
        raise ValueError(f"nnU-Net model folder '{folder}' does not exist")
    missing = [name for name in ("dataset.json", "plans.json") if not os.path.isfile(os.path.join(folder, name))]
    if not missing:
        return
    nested = [path for path in _findModelFolders(folder) if path != folder]
    if nested:
        raise ValueError(f"'{folder}' is not an nnU-Net model folder, but it contains one: choose "
                         f"'{nested[0]}' (the <trainer>__<plans>__<configuration> folder)")
    raise ValueError(f"nnU-Net model folder '{folder}' lacks {' and '.join(missing)}; choose the "
                     f"<trainer>__<plans>__<configuration> folder of a trained model")


def _normalizeFolds(folds):
    if folds is None:
        return None
    if isinstance(folds, (str, int)):
        folds = [folds]
    normalized = []
    for fold in folds:
        text = str(fold).strip()
        if text != "all" and not text.isdigit():
            raise ValueError(f"Invalid fold '{fold}': use fold numbers (0, 1, ...) or 'all'")
        normalized.append("all" if text == "all" else int(text))
    if not normalized:
        raise ValueError("No folds given")
    return normalized


def _availableFolds(folder, checkpoint):
    folds = []
    for name in sorted(os.listdir(folder)):
        match = re.fullmatch(r"fold_(\d+|all)", name)
        if match and os.path.isfile(os.path.join(folder, name, checkpoint)):
            folds.append("all" if match.group(1) == "all" else int(match.group(1)))
    return folds


def _labels(datasetJson, path):
    labels = datasetJson.get("labels")
    if not isinstance(labels, dict) or "background" not in labels:
        raise ValueError(f"dataset.json '{path}' has no \"labels\" with a \"background\" entry")
    order = datasetJson.get("regions_class_order")
    named = [name for name in labels if name not in ("background", "ignore")]
    if order is not None:
        return {int(value): name for value, name in zip(order, named)}
    try:
        return {int(labels[name]): name for name in named}
    except (TypeError, ValueError):
        raise ValueError(f"dataset.json '{path}' has region labels but no \"regions_class_order\"") from None


def validateModelFolder(folder, folds=None, checkpoint=DEFAULT_CHECKPOINT):
    """The model in folder as an :class:`NnUNetModel`; ValueError saying exactly what is wrong otherwise."""
    folder = os.path.abspath(os.fspath(folder))
    _requireFiles(folder)
    match = FOLDER_NAME.match(os.path.basename(folder))
    if match is None:
        raise ValueError(f"Model folder name '{os.path.basename(folder)}' is not nnU-Net's "
                         f"'<trainer>__<plans>__<configuration>' (e.g. nnUNetTrainer__nnUNetPlans__3d_fullres)")
    if not checkpoint or os.path.basename(checkpoint) != checkpoint or not checkpoint.endswith(".pth"):
        raise ValueError(f"Invalid checkpoint name '{checkpoint}': give a file name such as {DEFAULT_CHECKPOINT}")
    datasetJson = _readJson(os.path.join(folder, "dataset.json"), "dataset.json")
    plansJson = _readJson(os.path.join(folder, "plans.json"), "plans.json")
    configuration = match.group("configuration")
    if configuration not in plansJson.get("configurations", {}):
        raise ValueError(f"Configuration '{configuration}' (from the folder name) is not in plans.json (it has: "
                         f"{', '.join(plansJson.get('configurations', {})) or 'none'})")
    channels = datasetJson.get("channel_names") or datasetJson.get("modality")
    if not isinstance(channels, dict) or not channels:
        raise ValueError(f"dataset.json in '{folder}' names no input channels (\"channel_names\")")
    available = _availableFolds(folder, checkpoint)
    requested = _normalizeFolds(folds)
    if not available:
        raise ValueError(f"Model folder '{folder}' has no trained fold: no fold_*/{checkpoint} found")
    missing = [fold for fold in requested or [] if fold not in available]
    if missing:
        raise ValueError(f"Model folder '{folder}' has no fold_{missing[0]}/{checkpoint}; folds with that "
                         f"checkpoint: {', '.join(map(str, available))}")
    return NnUNetModel(folder=folder, trainer=match.group("trainer"), plans=match.group("plans"),
                       configuration=configuration, folds=requested or available, checkpoint=checkpoint,
                       labels=_labels(datasetJson, folder),
                       channels=[channels[key] for key in sorted(channels, key=int)],
                       datasetName=plansJson.get("dataset_name") or datasetJson.get("name") or "", plansJson=plansJson)


def requireEnsemble(models):
    """Models to ensemble must predict the same labels from the same channels."""
    for model in models[1:]:
        if model.labels != models[0].labels:
            raise ValueError(f"Models cannot be ensembled: '{model.folder}' has labels {model.labels}, "
                             f"'{models[0].folder}' has {models[0].labels}")
        if model.channels != models[0].channels:
            raise ValueError(f"Models cannot be ensembled: '{model.folder}' takes channels {model.channels}, "
                             f"'{models[0].folder}' takes {models[0].channels}")


def importModelZip(zipPath, destinationRoot):
    """Extract a zipped trained model (safe against path traversal) into destinationRoot/<zip name>/.

    Returns the model folders found in it (each validated). Nothing is left behind when the zip is unsafe, holds no
    model or the destination exists already.
    """
    name = os.path.basename(os.fspath(zipPath))
    name = name[: -len(".zip")] if name.lower().endswith(".zip") else name
    destination = os.path.join(destinationRoot, name)
    if os.path.exists(destination):
        raise ValueError(f"'{destination}' exists already: remove it or choose another destination")
    extracted = SafeZip.extractZipIntoNewFolder(zipPath, destinationRoot)
    try:
        folders = _findModelFolders(extracted, depth=6)
        if not folders:
            raise ValueError(f"'{zipPath}' holds no nnU-Net model folder (dataset.json + plans.json + fold_*)")
        for folder in folders:
            validateModelFolder(folder)
        os.replace(extracted, destination)
    except BaseException:
        shutil.rmtree(extracted, ignore_errors=True)
        raise
    return [os.path.join(destination, os.path.relpath(folder, extracted)) for folder in folders]
