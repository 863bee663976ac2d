"""The nnU-Net backend's list of models trained here (Training/): a name per model folder, with its provenance.

The list is a JSON file (``trained-models.json``) in ``$AISEGMENTATION_MODELS_DIR`` (default: the user data folder's
``models``), rewritten atomically. A registered name can stand wherever a model folder is asked for
(``runBackend("nnunet", volume, modelFolders=["MyLiver"])``, ``segment nnunet --model MyLiver``); an existing path
always wins over a name.
"""

import json
import os
import re

from ...AtomicWrite import writeText
from ..Environments.Environments import userDataDir

MODELS_VARIABLE = "AISEGMENTATION_MODELS_DIR"
LIST_FILE = "trained-models.json"
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")


def modelsFolder():
    return os.environ.get(MODELS_VARIABLE) or os.path.join(userDataDir(), "models")


def _listPath():
    return os.path.join(modelsFolder(), LIST_FILE)


def trainedModels():
    """{name: {"folder", "provenance"}} of the registered models whose folder still exists."""
    path = _listPath()
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as file:
            models = json.load(file)
    except (OSError, ValueError) as error:
        raise ValueError(f"The trained-model list '{path}' cannot be read: {error}") from None
    return {name: entry for name, entry in models.items() if os.path.isdir(entry.get("folder", ""))}


def registerModel(name, folder, provenance):
    """Add (or replace) a model under name; returns its entry."""
    if not MODEL_NAME.match(str(name)):
        raise ValueError(f"Model name {name!r} must be letters, digits, '.', '_' or '-'")
    models = trainedModels()
    models[name] = {"folder": os.path.abspath(os.fspath(folder)), "provenance": provenance}
    os.makedirs(modelsFolder(), exist_ok=True)
    writeText(_listPath(), json.dumps(models, indent=1, default=str))
    return models[name]


def resolveModelFolder(folderOrName):
    """The folder of a registered model name; anything else (an existing path first) is returned unchanged."""
    text = os.fspath(folderOrName)
    if os.path.exists(text) or not MODEL_NAME.match(text):
        return text
    entry = trainedModels().get(text)
    return entry["folder"] if entry else text
