"""MONAI Auto3DSeg models on the parent side: the catalog file, installed model folders and model zips.

A model is a zip holding ``model.pt`` (a dict with the network ``config`` and its ``state_dict``) and ``labels.csv``
(label values, segment names and DICOM/SNOMED codes), both in one folder of the zip. Catalog models are installed
under ``<home>/<id>/<version>/`` (home: ``$AISEGMENTATION_MONAI_MODELS_DIR`` or ``<user data folder>/AISegmentation/
MonaiAuto3DSeg``): downloaded by the backend's child after the user's consent (checksum checked), or imported from a
zip offline (:func:`importModelZip`, safe extraction). Nothing here imports torch.
"""

import json
import os
import re
import shutil
import zipfile

from ..Child import SafeZip
from ..Environments.Environments import userDataDir

HOME_VARIABLE = "AISEGMENTATION_MONAI_MODELS_DIR"
MODEL_FILE = "model.pt"
LABELS_FILE = "labels.csv"
MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
VERSION = re.compile(r"^\d+(\.\d+)*$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MODALITIES = ("CT", "MR", "PET", "US")
ENTRY_FIELDS = {"id": str, "title": str, "modality": str, "description": str, "license": str, "quick": bool,
                "inputs": list, "segmentNames": list, "versions": list}


def homeDir():
    return os.environ.get(HOME_VARIABLE) or os.path.join(userDataDir(), "MonaiAuto3DSeg")


def _requireEntry(entry, index):
    where = f"Model {index} ({entry.get('id', '?') if isinstance(entry, dict) else '?'})"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} of the catalog is not a table")
    for name, kind in ENTRY_FIELDS.items():
        if not isinstance(entry.get(name), kind):
            raise ValueError(f"{where}: field '{name}' is missing or not a {kind.__name__}")
    if not MODEL_ID.match(entry["id"]):
        raise ValueError(f"{where}: id must be lower-case letters, digits, '-' or '_'")
    if entry["modality"] not in MODALITIES:
        raise ValueError(f"{where}: modality '{entry['modality']}' is not one of {', '.join(MODALITIES)}")
    if not entry["inputs"] or not all(isinstance(name, str) and name for name in entry["inputs"]):
        raise ValueError(f"{where}: inputs must name at least one input volume")
    if len(set(entry["inputs"])) != len(entry["inputs"]):
        raise ValueError(f"{where}: input names repeat")
    if not entry["segmentNames"] or len(set(entry["segmentNames"])) != len(entry["segmentNames"]):
        raise ValueError(f"{where}: segmentNames must be a non-empty list of distinct names")
    if not entry["versions"]:
        raise ValueError(f"{where}: no versions")
    for version in entry["versions"]:
        _requireVersion(version, where)


def _requireVersion(version, where):
    if not isinstance(version, dict) or not VERSION.match(str(version.get("version", ""))):
        raise ValueError(f"{where}: a version lacks its number (e.g. \"1.0.0\")")
    url = version.get("url")
    if not isinstance(url, str) or not re.match(r"^https?://[^\s]+\.zip$", url):
        raise ValueError(f"{where}: version {version['version']} has no http(s) URL of a .zip")
    if "sha256" not in version or (version["sha256"] is not None and not SHA256.match(str(version["sha256"]))):
        raise ValueError(f"{where}: version {version['version']}: sha256 must be 64 lower-case hex digits or null "
                         f"(not published)")
    size = version.get("size")
    if "size" not in version or (size is not None and (not isinstance(size, int) or size <= 0)):
        raise ValueError(f"{where}: version {version['version']}: size must be a positive byte count or null")


def validateCatalog(data, source="the catalog"):
    """The list of model entries of a catalog's JSON data; ValueError naming the first bad entry."""
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise ValueError(f"{source} has no \"models\" list")
    ids = set()
    for index, entry in enumerate(data["models"]):
        _requireEntry(entry, index)
        if entry["id"] in ids:
            raise ValueError(f"{source} lists model '{entry['id']}' twice")
        ids.add(entry["id"])
    return data["models"]


def loadCatalog(path):
    """Validated model entries of a catalog file."""
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, ValueError) as error:
        raise ValueError(f"The MONAI Auto3DSeg model catalog '{path}' cannot be read ({error})") from None
    return validateCatalog(data, f"The model catalog '{path}'")


def catalogEntry(models, modelId):
    for entry in models:
        if entry["id"] == modelId:
            return entry
    raise ValueError(f"Unknown MONAI Auto3DSeg model '{modelId}'; models: {', '.join(e['id'] for e in models)}")


def installedFolder(home, entry, version=None):
    """Where a catalog model's version is installed (the folder may not exist)."""
    version = version or entry["versions"][0]["version"]
    return os.path.join(home, entry["id"], version)


def findModelFolder(folder):
    """The folder under folder (itself or a subfolder) holding both model.pt and labels.csv, or None."""
    if not os.path.isdir(folder):
        return None
    for current, _, files in os.walk(folder):
        if MODEL_FILE in files and LABELS_FILE in files:
            return current
    return None


def requireModelZip(path):
    """Check a model zip's table of contents (not its data): one folder with model.pt and labels.csv."""
    if not os.path.isfile(path):
        raise ValueError(f"MONAI Auto3DSeg model zip '{path}' does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ValueError(f"'{path}' is not a readable MONAI Auto3DSeg model zip ({error})") from None
    folders = {os.path.dirname(name) for name in names if os.path.basename(name) == MODEL_FILE}
    if not folders & {os.path.dirname(name) for name in names if os.path.basename(name) == LABELS_FILE}:
        raise ValueError(f"'{path}' is not a MONAI Auto3DSeg model zip: it needs {MODEL_FILE} and {LABELS_FILE} "
                         f"in one folder")
    return path


def requireModelSource(path):
    """("zip" or "folder", path) of a model given as a zip or an unpacked folder; ValueError when it is neither."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        found = findModelFolder(path)
        if found is None:
            raise ValueError(f"Folder '{path}' holds no MONAI Auto3DSeg model ({MODEL_FILE} and {LABELS_FILE})")
        return "folder", found
    return "zip", requireModelZip(path)


def importModelZip(zipPath, home, entry):
    """Install a downloaded zip of a catalog model (offline use) as its newest version; returns the folder."""
    requireModelZip(zipPath)
    target = installedFolder(home, entry)
    extracted = SafeZip.extractZipIntoNewFolder(zipPath, os.path.join(home, entry["id"]))
    try:
        if findModelFolder(extracted) is None:
            raise ValueError(f"'{zipPath}' holds no {MODEL_FILE} with {LABELS_FILE}")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(extracted, target)
    finally:
        shutil.rmtree(extracted, ignore_errors=True)
    return target
