"""MOOSE inside the child process, through its Python API (``moosez.moose``).

MOOSE is pointed at the models folder that AISegmentation owns (the parent's ``modelsDir``) before it runs. Before
anything heavy runs: the model must be in MOOSE's own list (``moosez.models.MODEL_METADATA``), every model of its
workflow (some crop with another model first) must be installed — or downloads allowed and the network reachable —
and a CT model's input must look like a CT in Hounsfield units. The input is named as MOOSE's convention asks
(``CT_<name>.nii.gz``: the modality, then the subject's name); the label names and SNOMED codes come from the model's
``organ_indices`` as MOOSE writes them. The device is passed to MOOSE's API (its command line has none).
Several models run in one ``moose()`` call (MOOSE loads and resamples once per model) and are merged into one label
map by LabelMerge (each model's values moved past the previous model's, in the order given; a structure name given
by two models refused before any network runs).
"""

import json
import os
import shutil

from ChildProtocol import UserError, downloadBlockedReason, packageVersion, writeJson
from ChildTorch import availableDevices, deviceName
from LabelMerge import mergeLabelMaps, requireDistinctNames

DOWNLOAD_HOST = ("github.com", 443)  # where MOOSE downloads most of its models from
CT_AIR_OR_FAT = -200.0  # a CT in Hounsfield units has voxels below this (air, lung, fat)
ANATOMY_CATEGORY = ["SCT", "123037004", "Anatomical Structure"]


def _versions():
    return {"moosez": packageVersion("moosez"), "nnunetv2": packageVersion("nnunetv2"),
            "torch": packageVersion("torch")}


def _modality(name):
    """The input modality of a model identifier, by MOOSE's naming rules (e.g. clin_pt_fdg_brain_v1 -> PT_FDG)."""
    from moosez.constants import ALLOWED_MODALITY_CONFIGURATIONS

    parts = name.split("_")
    modality = parts[1].upper() if len(parts) > 2 else ""
    subtypes = [subtype for subtype in ALLOWED_MODALITY_CONFIGURATIONS.get(modality, []) if subtype]
    if subtypes and parts[2].upper() in subtypes:
        return f"{modality}_{parts[2].upper()}"
    return modality


def _workflowModels(name):
    """The models a run of `name` uses (a cropping model first where MOOSE's workflow registry says so)."""
    from moosez.workflows import WORKFLOW_REGISTRY

    return [step["model"] for step in WORKFLOW_REGISTRY.get(name, [{"model": name}])]


def probe():
    """Versions, devices and MOOSE's own model list (name, modality, folder, URL, the models its workflow runs)."""
    from moosez.constants import KEY_FOLDER_NAME, KEY_URL
    from moosez.models import MODEL_METADATA

    models = [{"name": name, "modality": _modality(name), "folderName": entry[KEY_FOLDER_NAME], "url": entry[KEY_URL],
               "workflow": _workflowModels(name)} for name, entry in MODEL_METADATA.items()]
    return {"versions": _versions(), "devices": availableDevices(), "models": models}


def pointMooseAt(modelsDir):
    """Make MOOSE keep its models in modelsDir: its models folder (system.MODELS_DIRECTORY_PATH) and the default
    folder of models.Model, which took the former's value when moosez was imported."""
    from moosez import models, system

    defaults = models.Model.__init__.__defaults__
    if defaults != (system.MODELS_DIRECTORY_PATH,):
        raise RuntimeError(f"This moosez version ({packageVersion('moosez')}) keeps its models differently; "
                           f"AISegmentation supports the version of its requirements file")
    system.MODELS_DIRECTORY_PATH = modelsDir
    models.Model.__init__.__defaults__ = (modelsDir,)


def _installed(modelsDir, entry):
    """True when MOOSE would use the model folder as it is (its model_version.json names the model's URL)."""
    from moosez.constants import KEY_FOLDER_NAME, KEY_URL

    try:
        with open(os.path.join(modelsDir, entry[KEY_FOLDER_NAME], "model_version.json"), encoding="utf-8") as file:
            return json.load(file).get("url") == entry[KEY_URL]
    except (OSError, ValueError, AttributeError):
        return False


def requireModels(name, options, channel):
    from moosez.constants import KEY_FOLDER_NAME
    from moosez.models import MODEL_METADATA

    if name not in MODEL_METADATA:
        raise UserError(f"Unknown MOOSE model '{name}'; models: {', '.join(MODEL_METADATA)}")
    modelsDir = options["modelsDir"]
    missing = [model for model in _workflowModels(name) if not _installed(modelsDir, MODEL_METADATA[model])]
    if not missing:
        return
    folders = ", ".join(MODEL_METADATA[model][KEY_FOLDER_NAME] for model in missing)
    reason = downloadBlockedReason(options, DOWNLOAD_HOST)
    if reason is None:
        channel.log(f"MOOSE downloads model(s) {', '.join(missing)} into {modelsDir}")
        return
    raise UserError(f"MOOSE model '{name}' is not installed ({folders} not found in {modelsDir}) and {reason}. "
                    f"Run it once on a connected machine (or copy its model folder there), then run again.")


def checkModality(image, modality, name):
    """A CT model refuses a volume without a voxel below -200 (not in Hounsfield units: MR, PET, a mask...)."""
    import SimpleITK as sitk

    if modality != "CT":
        return
    statistics = sitk.MinimumMaximumImageFilter()
    statistics.Execute(image)
    if statistics.GetMinimum() >= CT_AIR_OR_FAT:
        raise UserError(f"MOOSE model '{name}' takes a CT in Hounsfield units, but this volume's values "
                        f"({statistics.GetMinimum():g} to {statistics.GetMaximum():g}) have no air or fat below "
                        f"{CT_AIR_OR_FAT:g}: it does not look like a CT. Choose a CT volume (or switch off "
                        f"checkModality for a CT cropped inside soft tissue).")


def _readResult(source, segmentationPath, name):
    """A model's label map (numpy, KJI), validated: MOOSE wrote it on the input's grid."""
    import numpy as np
    import SimpleITK as sitk

    result = sitk.ReadImage(segmentationPath)
    sameGrid = (result.GetSize() == source.GetSize()
                and np.allclose(result.GetSpacing(), source.GetSpacing(), rtol=1e-4, atol=1e-4)
                and np.allclose(result.GetOrigin(), source.GetOrigin(), atol=1e-3)
                and np.allclose(result.GetDirection(), source.GetDirection(), atol=1e-4))
    if not sameGrid:
        raise RuntimeError(f"MOOSE model '{name}' returned a label map on another grid ({result.GetSize()}) than "
                           f"the input ({source.GetSize()})")
    return sitk.GetArrayFromImage(result)


def _writeResult(source, labels, outputPath):
    """The (merged) label map with exactly the input's geometry."""
    import numpy as np
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(labels.astype(np.uint8 if labels.max(initial=0) < 256 else np.uint16))
    image.CopyInformation(source)
    sitk.WriteImage(image, outputPath, True)


def requireDistinctLabels(names):
    """Several models: each loaded (MOOSE downloads a missing one here) and refused when two name one structure
    alike, before any network runs."""
    from moosez import models, system

    manager = system.OutputManager(False, False)
    groups = [(name, [label for value, label in models.Model(name, manager).organ_indices.items() if int(value)])
              for name in names]  # moosez keeps "background" among its organ indices
    requireDistinctNames(groups, "MOOSE models", UserError)


def labelTable(model, folder):
    """{value: {"name", "type", "category"}} from the organ indices MOOSE writes for the model (names, SNOMED)."""
    model.organ_indices_to_json(folder)
    with open(os.path.join(folder, f"{model.multilabel_prefix}organ_indices.json"), encoding="utf-8") as file:
        indices = json.load(file)["organ_indices"]
    labels = {}
    for value, entry in indices.items():
        labels[str(value)] = {"name": entry["name"]}
        snomed = entry.get("SNOMED") or {}
        if snomed.get("ID"):
            labels[str(value)].update(type=["SCT", str(snomed["ID"]), snomed.get("name", "")],
                                      category=list(ANATOMY_CATEGORY))
    return labels


def _prepareInput(request, names, options):
    """The input checked (count, modality) and copied under MOOSE's naming (<modality>_<name>) into its folder."""
    import SimpleITK as sitk

    if len(request["inputs"]) != 1:
        raise UserError(f"MOOSE model '{names[0]}' takes one {options['modality']} volume, got "
                        f"{len(request['inputs'])}")
    source = sitk.ReadImage(request["inputs"][0])
    if options["checkModality"]:
        for name in names:
            checkModality(source, _modality(name), name)
    workDir = os.path.join(os.path.dirname(request["outputLabelmap"]), "moose")
    os.makedirs(workDir, exist_ok=True)
    extension = ".nii.gz" if request["inputs"][0].endswith(".gz") else ".nii"
    inputPath = os.path.join(workDir, f"{_modality(names[0])}_volume{extension}")
    shutil.copyfile(request["inputs"][0], inputPath)
    return source, inputPath, workDir


def run(request, channel):
    options = request["options"]
    names = options.get("models") or [options["model"]]
    channel.stage(0, 5, "Checking the model(s) and the input")
    import moosez

    pointMooseAt(options["modelsDir"])
    for name in names:
        requireModels(name, options, channel)
    source, inputPath, workDir = _prepareInput(request, names, options)
    if len(names) > 1:
        requireDistinctLabels(names)
    device = deviceName(options["device"])
    channel.stage(5, 92, f"Segmenting with MOOSE model{'s' if len(names) > 1 else ''} {', '.join(names)} on {device}")
    outputs, models = moosez.moose(inputPath, names if len(names) > 1 else names[0], workDir, device)
    byName = {model.model_identifier: (output, model) for output, model in zip(outputs, models)}
    missing = [name for name in names if name not in byName]
    if missing:
        raise UserError(f"MOOSE model(s) {', '.join(missing)} found nothing to segment: the structure the workflow "
                        f"crops to is not in the volume's field of view")
    channel.stage(92, 100, "Writing result")
    results, tables = [], {}
    for name in names:  # merged in the order given (MOOSE runs them in its own order)
        output, model = byName[name]
        tables[name] = labelTable(model, workDir)
        results.append((name, _readResult(source, output, name),
                        {int(value): entry["name"] for value, entry in tables[name].items()}))
    merged, values = mergeLabelMaps(results)
    _writeResult(source, merged, request["outputLabelmap"])
    entries = {(name, entry["name"]): entry for name, table in tables.items() for entry in table.values()}
    labels = {str(value): entries[source] for value, source in values.items()}
    writeJson(request["outputLabels"], {"labels": labels})
    return {"info": {"versions": _versions(), "device": device, "model": names[0] if len(names) == 1 else names,
                     "modelFolder": [byName[name][1].directory for name in names] if len(names) > 1 else
                     byName[names[0]][1].directory}}
