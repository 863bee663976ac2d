"""A training project: the folder a user names, holding one dataset and everything trained from it.

    <project>/training.json                  what each step did (dataset, plan, fit, evaluate), rewritten atomically
    <project>/nnUNet_raw/DatasetNNN_Name/    imagesTr/ labelsTr/ [imagesTs/ labelsTs/] dataset.json
    <project>/nnUNet_preprocessed/...        nnU-Net's fingerprint, plans, preprocessed data, splits_final.json
    <project>/nnUNet_results/...             nnU-Net's trained folds (checkpoints, validation predictions)
    <project>/dataset-report.html            the dataset step's report
    <project>/evaluation/                    cross-validation and test-split tables, plots and reports

A project holds ONE dataset: a folder whose training.json or nnU-Net folders name another one is refused.
"""

import json
import os
import re

from ..AtomicWrite import writeText

STATE_FILE = "training.json"
RAW, PREPROCESSED, RESULTS = "nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"
DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,60}$")
DATASET_FOLDER = re.compile(r"^Dataset\d{3}_.+$")


def datasetFolderName(datasetId, name):
    """nnU-Net's DatasetNNN_Name; ValueError for an id outside 1..999 or a name nnU-Net would not accept."""
    if not isinstance(datasetId, int) or isinstance(datasetId, bool) or not 1 <= datasetId <= 999:
        raise ValueError(f"Dataset id must be a whole number from 1 to 999, got {datasetId!r}")
    if not DATASET_NAME.match(str(name)):
        raise ValueError(f"Dataset name {name!r} must be letters, digits, '_' or '-' (at most 61 characters)")
    return f"Dataset{datasetId:03d}_{name}"


class TrainingProject:
    """Paths and the recorded state of a project folder."""

    def __init__(self, folder):
        if isinstance(folder, TrainingProject):
            folder = folder.folder
        if not folder or not str(folder).strip():
            raise ValueError("No project folder given")
        self.folder = os.path.abspath(os.fspath(folder))
        if os.path.exists(self.folder) and not os.path.isdir(self.folder):
            raise ValueError(f"Project folder '{self.folder}' is a file")

    # State ------------------------------------------------------------------------------------------------------

    @property
    def statePath(self):
        return os.path.join(self.folder, STATE_FILE)

    def state(self):
        """The recorded state ({} for a new project); ValueError for a training.json that is not ours."""
        if not os.path.isfile(self.statePath):
            return {}
        try:
            with open(self.statePath, encoding="utf-8") as file:
                state = json.load(file)
        except (OSError, ValueError) as error:
            raise ValueError(f"'{self.statePath}' cannot be read as a training project: {error}") from None
        if not isinstance(state, dict) or "dataset" not in state:
            raise ValueError(f"'{self.statePath}' is not an AISegmentation training project")
        return state

    def saveState(self, state):
        os.makedirs(self.folder, exist_ok=True)
        writeText(self.statePath, json.dumps(state, indent=1, default=str))
        return state

    def updateState(self, **parts):
        state = self.state()
        state.update(parts)
        return self.saveState(state)

    def requireStep(self, step, before):
        """The recorded part of `step`; ValueError saying to run it first when it is missing."""
        part = self.state().get(step)
        if not part:
            raise ValueError(f"Project '{self.folder}' has no {step} step yet: run the {step} step before {before}")
        return part

    # Layout -----------------------------------------------------------------------------------------------------

    def nnUNetFolders(self):
        return {"nnUNet_raw": os.path.join(self.folder, RAW),
                "nnUNet_preprocessed": os.path.join(self.folder, PREPROCESSED),
                "nnUNet_results": os.path.join(self.folder, RESULTS)}

    def rawFolder(self, datasetName):
        return os.path.join(self.folder, RAW, datasetName)

    def preprocessedFolder(self, datasetName):
        return os.path.join(self.folder, PREPROCESSED, datasetName)

    def modelFolder(self, datasetName, configuration, trainer="nnUNetTrainer", plans="nnUNetPlans"):
        return os.path.join(self.folder, RESULTS, datasetName, f"{trainer}__{plans}__{configuration}")

    def evaluationFolder(self, *parts):
        return os.path.join(self.folder, "evaluation", *parts)

    def requireOwnDataset(self, datasetName):
        """ValueError when the folder holds another dataset (its training.json or an nnU-Net folder names one)."""
        recorded = (self.state().get("dataset") or {}).get("name")
        if recorded and recorded != datasetName:
            raise ValueError(f"Project folder '{self.folder}' holds another dataset ({recorded}); choose another "
                             f"folder for {datasetName}, or build {recorded} there")
        for sub in (RAW, PREPROCESSED, RESULTS):
            path = os.path.join(self.folder, sub)
            others = [name for name in (os.listdir(path) if os.path.isdir(path) else [])
                      if DATASET_FOLDER.match(name) and name != datasetName]
            if others:
                raise ValueError(f"Project folder '{self.folder}' holds another dataset ({sub}/{others[0]}); choose "
                                 f"another folder for {datasetName}")
        if os.path.isdir(self.folder) and not recorded:
            foreign = [name for name in os.listdir(self.folder) if not name.startswith(".")
                       and name not in (RAW, PREPROCESSED, RESULTS)]
            if foreign:
                raise ValueError(f"Project folder '{self.folder}' is not empty and is no training project (it holds "
                                 f"{foreign[0]}); choose an empty or new folder")

    def datasetName(self):
        return self.requireStep("dataset", "this step")["name"]
