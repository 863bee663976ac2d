"""MOOSE backend (PyPI ``moosez``), parent side: model choice, its home folder, devices (see ChildMoose for the run).

MOOSE keeps its trained models in ``models/nnunet_trained_models/<Dataset folder>/`` (each with the
``model_version.json`` that records the URL it came from); AISegmentation gives it a folder it owns, so models survive
a rebuilt environment: ``$AISEGMENTATION_MOOSE_HOME_DIR`` or ``<user data folder>/AISegmentation/MOOSE``. The model
list is the package's own (``moosez.models.MODEL_METADATA``, probed in its environment); before the environment
exists, the list of the pinned moosez version below stands in (a test checks that both agree).
"""

import glob
import json
import os

from ..Backend import Backend, PreparedRun, nnUNetChildVariables
from ..Child.LabelMerge import requireDistinctNames
from ..Environments.Environments import userDataDir
from ..Options import DEVICES, BackendOption, deviceOption

HOME_VARIABLE = "AISEGMENTATION_MOOSE_HOME_DIR"
OFFLINE_VARIABLE = "AISEGMENTATION_OFFLINE"
MODELS_SUBFOLDER = os.path.join("models", "nnunet_trained_models")
# moosez 3.2.2's MODEL_METADATA keys (the pinned version of moose-requirements.txt), in the package's order.
KNOWN_MODELS = (
    "clin_ct_body", "clin_ct_lungs", "clin_ct_organs", "clin_ct_ribs", "clin_ct_muscles", "clin_ct_peripheral_bones",
    "clin_ct_vertebrae", "clin_ct_cardiac", "clin_ct_digestive", "clin_ct_ALPACA", "clin_ct_PUMA", "clin_ct_PUMA4",
    "clin_ct_body_composition", "clin_ct_fast_organs", "clin_ct_fast_vertebrae", "clin_ct_fast_cardiac",
    "clin_ct_all_bones_v1", "clin_pt_fdg_brain_v1", "clin_ct_fat_old", "clin_ct_dental", "clin_ct_face",
    "clin_pt_fdg_face", "preclin_mr_all", "preclin_ct_legs", "clin_mr_FVM")
DEFAULT_MODEL = "clin_ct_organs"
MODEL_SPACING = 1.5  # mm, MOOSE's default network spacing when the plans are not at hand
DEFAULT_CLASSES = 30


def homeDir():
    return os.environ.get(HOME_VARIABLE) or os.path.join(userDataDir(), "MOOSE")


def modelsDir(home=None):
    """Where MOOSE's models are (and are downloaded to): <home>/models/nnunet_trained_models."""
    return os.path.join(home or homeDir(), MODELS_SUBFOLDER)


def isOffline():
    return os.environ.get(OFFLINE_VARIABLE, "").lower() in ("1", "true", "yes", "on")


def installedLabels(folder, entry):
    """The structure names of an installed model (its dataset.json's labels, background left out); none when the
    model (a probe entry; None before the environment exists) is not installed yet."""
    if not entry:
        return []
    for path in sorted(glob.glob(os.path.join(folder, glob.escape(entry["folderName"]), "*", "dataset.json"))):
        try:
            with open(path, encoding="utf-8") as file:
                labels = json.load(file).get("labels", {})
        except (OSError, ValueError, AttributeError):
            continue
        return [name for name, value in labels.items() if str(value) != "0"]
    return []


def modelModality(name):
    """The input MOOSE names for a model identifier (``clin_ct_organs`` -> "CT", ``clin_pt_fdg_brain_v1`` ->
    "PT_FDG"): the second part of the name, plus a subtype for PET (its naming convention)."""
    parts = name.split("_")
    if len(parts) < 3:
        raise ValueError(f"'{name}' is not a MOOSE model name (<clin|preclin>_<modality>_<region>)")
    modality = parts[1].upper()
    if modality == "PT":
        return f"PT_{parts[2].upper()}"
    return modality


class MooseBackend(Backend):
    """settings: "home" (its home folder, default homeDir()); its environment's probe gives the model list."""

    name = "moose"
    title = "MOOSE"
    help = "MOOSE (moosez): fast nnU-Net models, most of them for CT"
    environmentName = "moose"
    packages = ("moosez", "nnunetv2", "torch")
    childModule = "ChildMoose.py"
    suggestions = ("crop the volume to the region of interest", "use a fast model (clin_ct_fast_*)")
    options = (
        BackendOption("model", "str", DEFAULT_MODEL, "a model of MOOSE's list (most take a CT in Hounsfield units); "
                      "several (clin_ct_organs, clin_ct_ribs) run in one MOOSE call into one segmentation",
                      choices=KNOWN_MODELS, multiple=True, perCase=True),
        deviceOption(DEVICES),
        BackendOption("allowDownload", "bool", True, "let MOOSE download a missing model (never when "
                      "$AISEGMENTATION_OFFLINE is set)", flag="download"),
        BackendOption("checkModality", "bool", True, "refuse a volume that does not look like the model's "
                      "modality (a CT model needs Hounsfield units: some voxels below -200, air or fat)",
                      perCase=True),
    )

    @staticmethod
    def home(context):
        return os.path.abspath(context.settings.get("home") or homeDir())

    def prepare(self, context, model=DEFAULT_MODEL, device="auto", allowDownload=True, checkModality=True):
        """The models are checked against MOOSE's own list (probed in its environment) when the environment exists;
        several models: one input modality, no model twice, no structure name given by two installed models (a
        model downloaded by the run is checked in the child, before any network runs)."""
        names = [model] if isinstance(model, str) else list(model or [])
        if not names or not all(names):
            raise ValueError("No MOOSE model given")
        if len(set(names)) != len(names):
            raise ValueError(f"MOOSE model(s) given twice: {', '.join(names)}")
        probed = context.probe().get("models")
        entries = [self._modelEntry(name, probed) for name in names]
        modalities = [(entry or {}).get("modality") or modelModality(name) for name, entry in zip(names, entries)]
        if len(set(modalities)) > 1:
            raise ValueError(f"MOOSE models {', '.join(f'{n} ({m})' for n, m in zip(names, modalities))} take "
                             f"different inputs: one run segments one volume; run them separately")
        home = self.home(context)
        requireDistinctNames([(name, installedLabels(modelsDir(home), entry)) for name, entry in zip(names, entries)],
                             "MOOSE models")
        parameters = {"model": names[0] if len(names) == 1 else names, "device": device,
                      "allowDownload": bool(allowDownload), "checkModality": bool(checkModality)}
        environment = {"CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else {}  # CPU forced: no GPU is even seen
        childDevice = device
        if device.startswith("cuda:"):  # MOOSE takes no GPU index: only that GPU is visible, as "cuda"
            environment, childDevice = {"CUDA_VISIBLE_DEVICES": device.partition(":")[2]}, "cuda"
        return PreparedRun(
            childOptions={**parameters, "models": names, "device": childDevice, "modelsDir": modelsDir(home),
                          "modality": modalities[0], "offline": isOffline()},
            channels=[modalities[0]], description=f"MOOSE model{'s' if len(names) > 1 else ''} "
            f"{' + '.join(repr(name) for name in names)}", parameters=parameters,
            environment=environment,
            memoryModel={"networkSpacing": [MODEL_SPACING] * 3, "numClasses": DEFAULT_CLASSES + 1,
                         "exportSpacing": [None] * 3})  # patch: the volume's size up to 128 (Backend's default)

    def childVariables(self, prepared, workDir):
        """MOOSE runs nnU-Net, which reads its three folders from the environment: the job's own."""
        return nnUNetChildVariables(prepared, workDir)

    @staticmethod
    def _modelEntry(model, models):
        if not models:
            return None
        for entry in models:
            if entry["name"] == model:
                return entry
        raise ValueError(f"Unknown MOOSE model '{model}'; models: {', '.join(e['name'] for e in models)}")
