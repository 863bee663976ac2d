"""The cases of a cohort: a CSV manifest or a folder laid out by convention.

CSV manifest (UTF-8, one row per case; relative paths are resolved against the CSV's folder):

    case,image,reference,options,prediction
    case01,images/case01_t1.nii.gz;images/case01_t2.nii.gz,labels/case01.nii.gz,"{""tta"": false}",
    case02,dicom/case02/,labels/case02.seg.nrrd,,

- ``case`` (required): the case id, unique (also ignoring upper and lower case: ``Case1`` and ``case1`` would share
  one folder on a case-insensitive file system), used as the name of its output folder (letters, digits, ``._-``).
- ``image`` (required): the image file(s), ``;``-separated in the model's channel order, or one DICOM series folder.
  ``dicomweb:STUDY_UID/SERIES_UID`` names a series on the DICOMweb server given with the run (batch --dicomweb).
- ``reference`` (optional): the reference segmentation (a label-map image, its names in ``<file>.labels.json`` when
  that exists, or a ``.seg.nrrd``) for the compare step.
- ``options`` (optional): a JSON object of backend options for this case, overriding the command's: only what a
  case may vary (options a backend declares ``perCase``: a task, a subset of structures, folds, the device), never
  paths to code or weights, environments or network switches (checked against the backend before anything runs).
- ``prediction`` (optional): an existing segmentation of this case (label map or ``.seg.nrrd``) taken as the
  case's result instead of running a backend (e.g. to evaluate another tool's outputs against references).

Folder convention (nnU-Net style):

    cohort/imagesTs/<case>_0000.nii.gz [<case>_0001.nii.gz ...]   images, one file per channel
    cohort/labelsTs/<case>.nii.gz                                 optional references
    cohort/<case>/                                                a DICOM series folder (any folder other than
                                                                  imagesTs / labelsTs), its reference in labelsTs

A malformed manifest (no ``case`` or ``image`` column, an empty or duplicate or unusable id, bad options JSON) is a
ValueError before anything runs; a missing image file is not: that case fails at run time and the others go on.
"""

import csv
import json
import os
import re

COLUMNS = ("case", "image", "reference", "options", "prediction")
IMAGE_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")
SEGMENTATION_EXTENSIONS = (".seg.nrrd",) + IMAGE_EXTENSIONS
CASE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
CHANNEL_PATTERN = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
IMAGES_FOLDER, LABELS_FOLDER = "imagesTs", "labelsTs"
CASE_CLASH = ("differ only in upper and lower case: their output folders would be one on a case-insensitive file "
              "system (Windows, macOS); give them distinct ids")


def case(caseId, images, reference=None, options=None, prediction=None, where=None):
    """One case as a plain dict (it travels to Dask workers): {"case", "images", "reference", "options",
    "prediction", "dicom", "where"} (where: the manifest row it comes from, for messages)."""
    images = [os.fspath(path) for path in images]
    return {"case": caseId, "images": images, "reference": os.fspath(reference) if reference else None,
            "options": dict(options or {}), "prediction": os.fspath(prediction) if prediction else None,
            "dicom": len(images) == 1 and os.path.isdir(images[0]), "where": where or f"case '{caseId}'"}


def readManifest(source):
    """The cases of a CSV manifest file or of a folder (see the module docstring), as a list of case dicts."""
    if source is None or not os.fspath(source).strip():
        raise ValueError("No cohort given: a CSV manifest or a folder of cases")
    source = os.path.abspath(os.fspath(source))
    if os.path.isdir(source):
        cases = _readFolder(source)
    elif os.path.isfile(source):
        cases = _readCsv(source)
    else:
        raise ValueError(f"Cohort manifest or folder '{source}' does not exist")
    if not cases:
        raise ValueError(f"The cohort '{source}' holds no cases")
    return requireDistinctCaseIds(cases, source)


def requireCaseId(caseId, where):
    if not CASE_ID_PATTERN.match(caseId or ""):
        raise ValueError(f"{where}: case id '{caseId}' is not usable as a folder name (letters, digits, '.', '_', "
                         "'-'; at most 128 characters, not starting with '.', '_' or '-')")
    return caseId


def requireDistinctCaseIds(cases, where="the cohort"):
    """The cases, unless two ids are equal ignoring upper and lower case (one folder on a case-insensitive file
    system: the second case would overwrite the first's outputs): ValueError naming both."""
    seen = {}
    for entry in cases:
        key = entry["case"].casefold()
        if key in seen:
            raise ValueError(f"{where}: case ids '{seen[key]['case']}' and '{entry['case']}' {CASE_CLASH}")
        seen[key] = entry
    return cases


def _readCsv(path):
    folder = os.path.dirname(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            header = [name.strip() for name in (reader.fieldnames or [])]
            rows = [{(key or "").strip(): (value or "").strip() if isinstance(value, str) else value
                     for key, value in row.items()} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"Could not read the cohort manifest '{path}': {error}") from None
    missing = [name for name in ("case", "image") if name not in header]
    if missing:
        raise ValueError(f"The cohort manifest '{path}' has no {' or '.join(repr(m) for m in missing)} column "
                         f"(its columns: {', '.join(header) or 'none'}; expected {', '.join(COLUMNS)})")
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise ValueError(f"The cohort manifest '{path}' has unknown column(s) {', '.join(unknown)}; its columns "
                         f"are {', '.join(COLUMNS)}")
    cases, seen = [], {}
    for line, row in enumerate(rows, start=2):
        if None in row:
            raise ValueError(f"{path}, line {line}: more fields than columns (quote a field holding a comma)")
        if not any(row.values()):
            continue
        where = f"{path}, line {line}"
        caseId = requireCaseId(row["case"], where)
        other, otherLine = seen.get(caseId.casefold(), (None, None))
        if other == caseId:
            raise ValueError(f"{where}: case id '{caseId}' appears twice (also on line {otherLine})")
        if other is not None:
            raise ValueError(f"{where}: case ids '{other}' (line {otherLine}) and '{caseId}' {CASE_CLASH}")
        seen[caseId.casefold()] = (caseId, line)
        images = [_resolve(folder, part.strip()) for part in row["image"].split(";") if part.strip()]
        if not images:
            raise ValueError(f"{where}: case '{caseId}' has no image")
        cases.append(case(caseId, images, _resolve(folder, row.get("reference")),
                          _parseOptions(row.get("options"), where, caseId), _resolve(folder, row.get("prediction")),
                          where=f"{where} (case '{caseId}')"))
    return cases


def _resolve(folder, path):
    if not path:
        return None
    if path.startswith("dicomweb:"):  # a series on the cohort's DICOMweb server (Dicom/PacsLogic.py), not a path
        return path
    path = os.path.expanduser(path)
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(folder, path))


def _parseOptions(text, where, caseId):
    if not text:
        return {}
    try:
        options = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: the options of case '{caseId}' are not valid JSON ({error.msg} at character "
                         f"{error.pos}): {text}") from None
    if not isinstance(options, dict):
        raise ValueError(f"{where}: the options of case '{caseId}' must be a JSON object "
                         f"({{\"name\": value}}), got {text}")
    return options


def _stripExtension(name, extensions):
    lower = name.lower()
    for extension in extensions:
        if lower.endswith(extension):
            return name[: -len(extension)]
    return None


def _readFolder(folder):
    references = {}
    labelsFolder = os.path.join(folder, LABELS_FOLDER)
    if os.path.isdir(labelsFolder):
        for name in sorted(os.listdir(labelsFolder)):
            caseId = _stripExtension(name, SEGMENTATION_EXTENSIONS)
            if caseId:
                references[caseId] = os.path.join(labelsFolder, name)
    channels = {}
    imagesFolder = os.path.join(folder, IMAGES_FOLDER)
    if os.path.isdir(imagesFolder):
        for name in sorted(os.listdir(imagesFolder)):
            stem = _stripExtension(name, IMAGE_EXTENSIONS)
            match = CHANNEL_PATTERN.match(stem or "")
            if not match:
                continue
            channels.setdefault(match["case"], {})[int(match["channel"])] = os.path.join(imagesFolder, name)
    cases = []
    for caseId, files in sorted(channels.items()):
        requireCaseId(caseId, imagesFolder)
        if sorted(files) != list(range(len(files))):
            raise ValueError(f"{imagesFolder}: case '{caseId}' has channels {sorted(files)}; they must be numbered "
                             "0000, 0001, ... without gaps")
        cases.append(case(caseId, [files[index] for index in sorted(files)], references.get(caseId)))
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name in (IMAGES_FOLDER, LABELS_FOLDER) or name.startswith(".") or not os.path.isdir(path):
            continue
        requireCaseId(name, folder)
        if name in channels:
            raise ValueError(f"{folder}: case '{name}' is both in {IMAGES_FOLDER} and a DICOM folder")
        cases.append(case(name, [path], references.get(name)))
    return cases
