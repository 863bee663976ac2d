"""nnInteractive model folders for the managed server: check, import from a folder (offline), download (consented).

A model folder is what ``nninteractive-server --model-dir`` loads: ``plans.json``, ``dataset.json`` and
``fold_<F>/checkpoint_final.pth`` (a pickled checkpoint: a model folder is code, take it only from whom you trust).
Models live in ``$AISEGMENTATION_INTERACTIVE_MODELS_DIR`` or ``<user data folder>/nninteractive-models/<name>/``.
The official weights (Hugging Face ``MIC-DKFZ/nnInteractive``, the model id ``nnInteractive_v1.0``; its license is
non-commercial) are downloaded only by :func:`startDownload`, which refuses to start without the user's agreement;
the download runs in the server environment (ServerDownload.py) with progress, Cancel, sizes and SHA256 checks.
"""

import os
import shutil
import tempfile

from ..Backends.Environments.Environments import childEnvironment, userDataDir
from ..JobRunner import BackgroundJob, ProcessStep

MODELS_VARIABLE = "AISEGMENTATION_INTERACTIVE_MODELS_DIR"
OFFICIAL_MODEL = "nnInteractive_v1.0"
OFFICIAL_SOURCE = "https://huggingface.co/MIC-DKFZ/nnInteractive"
DOWNLOAD_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ServerDownload.py")


def modelsRoot():
    return os.environ.get(MODELS_VARIABLE) or os.path.join(userDataDir(), "nninteractive-models")


def modelFold(folder):
    """The fold to serve ("0", "all", ...) of a model folder; ValueError when it is not an nnInteractive model."""
    folder = os.fspath(folder or "")
    if not os.path.isdir(folder):
        raise ValueError(f"'{folder}' is not a folder; choose an nnInteractive model folder (plans.json, fold_0/)")
    for required in ("plans.json", "dataset.json"):
        if not os.path.isfile(os.path.join(folder, required)):
            raise ValueError(f"'{folder}' is not an nnInteractive model folder: it has no {required}")
    folds = sorted(name[5:] for name in os.listdir(folder) if name.startswith("fold_")
                   and os.path.isfile(os.path.join(folder, name, "checkpoint_final.pth")))
    if not folds:
        raise ValueError(f"'{folder}' has no trained fold (fold_*/checkpoint_final.pth)")
    return "0" if "0" in folds else folds[0]


def localModels(root=None):
    """{name: folder} of the models imported or downloaded so far."""
    root = root or modelsRoot()
    found = {}
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        try:
            modelFold(os.path.join(root, name))
        except ValueError:
            continue
        found[name] = os.path.join(root, name)
    return found


def defaultModel(root=None):
    """The folder of the official model when present, else the only local model; ValueError with what to do."""
    models = localModels(root)
    if OFFICIAL_MODEL in models:
        return models[OFFICIAL_MODEL]
    if len(models) == 1:
        return next(iter(models.values()))
    if not models:
        raise ValueError("No nnInteractive model on this computer yet: download the official one "
                         "(logic.downloadInteractiveServerModel(agree=True), several hundred MB) or import a model folder "
                         "(logic.importInteractiveServerModel(folder))")
    raise ValueError(f"Several nnInteractive models on this computer ({', '.join(models)}): choose one (modelDir=)")


def importModel(source, name=None, root=None):
    """Copy a model folder into the model store (offline); returns its new folder. Nothing changes on error."""
    modelFold(source)
    name = name or os.path.basename(os.path.normpath(os.fspath(source)))
    if not name or name.startswith(".") or os.sep in name or (os.altsep and os.altsep in name):
        raise ValueError(f"'{name}' cannot be a model name")
    root = root or modelsRoot()
    target = os.path.join(root, name)
    if os.path.exists(target):
        raise ValueError(f"A model '{name}' exists already in {root}; remove it first or choose another name")
    os.makedirs(root, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{name}-", dir=root)
    try:
        shutil.copytree(source, os.path.join(staging, name), symlinks=False)
        os.replace(os.path.join(staging, name), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def startDownload(python, agree=False, modelId=OFFICIAL_MODEL, root=None, endpoint=None):
    """A started job that downloads an official model with the server environment's Python; result: its folder.

    agree: the user agreed to download it (from Hugging Face; non-commercial license); without it nothing starts.
    endpoint: another Hugging Face endpoint (a mirror); default the public hub."""
    if not agree:
        raise ValueError(f"Downloading the nnInteractive model '{modelId}' from {OFFICIAL_SOURCE} (several hundred MB; "
                         f"license: non-commercial use) needs your agreement: pass agree=True. Or import a model "
                         f"folder you already have (importInteractiveServerModel).")
    root = root or modelsRoot()
    os.makedirs(root, exist_ok=True)
    extra = {"HF_HUB_DISABLE_TELEMETRY": "1"}
    if endpoint:
        extra["HF_ENDPOINT"] = endpoint
    step = ProcessStep([python, DOWNLOAD_SCRIPT, "--model-id", modelId, "--root", root],
                       f"Downloading the nnInteractive model {modelId}", 0, 100, protocol=True,
                       env=childEnvironment(True, extra, python=python),
                       failureHint="Check the connection to huggingface.co, or import a model folder instead.")
    return BackgroundJob(f"nnInteractive model {modelId}", [step],
                         finalize=lambda job: job.childResult["folder"]).start()
