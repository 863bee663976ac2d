"""TotalSegmentator inside the child process, through its Python API (``totalsegmentator.python_api``).

Before anything heavy runs: the task must be in TotalSegmentator's registry, a licensed task needs a license, and
the weights the run needs must be under ``$TOTALSEG_HOME_DIR/nnunet/results`` — when they are missing and downloads
are off (or there is no network), a clear error says what to import instead of a hanging download. Usage statistics
are switched off in TotalSegmentator's config.json unless the user opted in. ``sys.exit`` from the package (e.g. an
invalid license) becomes an error message.
"""

import csv
import glob
import os

from ChildProtocol import UserError, downloadBlockedReason, packageVersion, watchOutput, writeJson
from ChildTorch import availableDevices, deviceName
from LabelMerge import mergeLabelMaps

LICENSE_URL = "https://backend.totalsegmentator.com/license-academic/"
DOWNLOAD_HOST = ("github.com", 443)  # where TotalSegmentator downloads its open weights from
TERMINOLOGY_FIELDS = {"category": "SegmentedPropertyCategoryCodeSequence",
                      "type": "SegmentedPropertyTypeCodeSequence",
                      "typeModifier": "SegmentedPropertyTypeModifierCodeSequence",
                      "region": "AnatomicRegionSequence", "regionModifier": "AnatomicRegionModifierSequence"}


def _versions():
    return {"totalsegmentator": packageVersion("TotalSegmentator"), "nnunetv2": packageVersion("nnunetv2"),
            "torch": packageVersion("torch")}


def _modes(task):
    """{"default"|"fast"|"fastest": {"models": number of networks, "resample": spacing mm}} of a task."""
    from totalsegmentator.map_tasks_config import DEFAULT_CONFIG, TASK_CONFIGS

    raw = TASK_CONFIGS.get(task, {})
    modes = {}
    for mode, config in (raw.get("sub_modes") or {"default": raw}).items():
        merged = {**DEFAULT_CONFIG, **config}
        taskIds = merged.get("task_id")
        modes[mode] = {"models": len(taskIds) if isinstance(taskIds, list) else 1, "resample": merged.get("resample")}
    return modes


def probe():
    """Versions, devices and TotalSegmentator's own task registry (names, modality, license flag, classes)."""
    from totalsegmentator import registry

    tasks = [{"name": task, "modality": registry.task_modality(task),
              "licenseRequired": registry.requires_license(task),
              "classes": {str(value): name for value, name in registry.get_task_classes(task).items()},
              "modes": _modes(task)} for task in registry.TASKS]
    return {"versions": _versions(), "devices": availableDevices(), "tasks": tasks}


SWITCHES = {"robustCrop": "robust_crop", "removeSmallBlobs": "remove_small_blobs", "bodySeg": "body_seg",
            "forceSplit": "force_split", "higherOrderResampling": "higher_order_resampling"}


def _switches(options):
    """TotalSegmentator's keyword arguments of the switches that are on (the parent names only those)."""
    return {keyword: True for name, keyword in SWITCHES.items() if options.get(name)}


def _device(name):
    """TotalSegmentator's device names: gpu, gpu:N, cpu, mps."""
    return deviceName(name).replace("cuda", "gpu")


def _requireLicense(task, licenseNumber):
    from totalsegmentator.config import has_valid_license_offline, set_license_number, setup_totalseg
    from totalsegmentator.registry import requires_license

    if not requires_license(task):
        return
    setup_totalseg()
    if licenseNumber:
        set_license_number(licenseNumber, skip_validation=True)
    status, message = has_valid_license_offline()
    if status != "yes":
        raise UserError(f"TotalSegmentator task '{task}' requires a license ({message.strip()}). A license is free "
                        f"for non-commercial use ({LICENSE_URL}); give it as licenseNumber (--license on the command "
                        f"line).")


WORKER_COUNTS = ("num_processes_preprocessing", "num_processes_segmentation_export")


def predictInThisProcess():
    """TotalSegmentator hands nnU-Net one case at a time; nnU-Net's batch prediction would spawn a preprocessing
    worker and an export pool for it, each importing torch and nnU-Net again (seconds each, tens on a busy machine,
    per model run) to overlap work that one case does not have. Its sequential prediction does the same steps in
    this process (after TotalSegmentator's own patch of the predictor, which its import applies)."""
    import inspect

    import totalsegmentator.nnunet  # noqa: F401 - the import patches nnUNetPredictor: wrap the patched methods
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    batch, sequential = nnUNetPredictor.predict_from_files, nnUNetPredictor.predict_from_files_sequential
    accepted = set(inspect.signature(sequential).parameters)

    def predictFromFiles(self, source, output, *args, **keywords):
        rest = {name: value for name, value in keywords.items() if name not in WORKER_COUNTS}
        if args or rest.pop("num_parts", 1) != 1 or rest.pop("part_id", 0) != 0 or rest.keys() - accepted:
            return batch(self, source, output, *args, **keywords)
        if isinstance(output, str):
            os.makedirs(output, exist_ok=True)
        return sequential(self, source, output, **rest)

    nnUNetPredictor.predict_from_files = predictFromFiles


def _configureTotalSegmentator(usageStatistics):
    from totalsegmentator.config import set_config_key, setup_totalseg

    setup_totalseg()
    set_config_key("send_usage_stats", bool(usageStatistics))
    set_config_key("statistics_disclaimer_shown", True)


def requiredWeightTasks(task, fast, fastest, roiSubset, robustCrop=False, bodySeg=False):
    """TotalSegmentator task IDs whose weights a run needs (its model(s) plus the crop model for roi_subset/crop:
    the 3 mm one with robustCrop; the body model for bodySeg)."""
    from totalsegmentator.python_api import get_task_config

    config = get_task_config(task, fast=fast, fastest=fastest, quiet=True)
    taskIds = list(config["task_id"]) if isinstance(config["task_id"], list) else [config["task_id"]]
    crop = config.get("crop")
    if crop is not None or roiSubset or config.get("cascade"):
        if config.get("crop_model") is not None:
            taskIds += requiredWeightTasks(config["crop_model"], False, False, None)
        elif crop is not None and any(name in ("body_trunc", "body_extremities") for name in crop):
            taskIds.append(300)
        else:
            taskIds.append(852 if task.endswith("_mr") else 297 if robustCrop else 298)
    elif bodySeg:
        taskIds.append(300)
    if task == "vertebrae_pp_refined":
        taskIds.append(305)
    return taskIds


def weightsFolder(taskId):
    from totalsegmentator.config import get_weights_dir
    from totalsegmentator.map_tasks_config import TASK_ID_WEIGHTS_CONFIGS

    info = TASK_ID_WEIGHTS_CONFIGS[taskId]
    return os.path.join(str(get_weights_dir()), info.get("rel_path") or "", info["foldername"])


def missingWeights(taskIds):
    missing = []
    for taskId in dict.fromkeys(taskIds):
        folder = weightsFolder(taskId)
        if not glob.glob(os.path.join(folder, "*", "fold_*", "checkpoint_final.pth")):
            missing.append(folder)
    return missing


def _requireWeights(task, options, channel):
    missing = missingWeights(requiredWeightTasks(task, options["fast"], options["fastest"], options["roiSubset"],
                                                 options.get("robustCrop"), options.get("bodySeg")))
    if not missing:
        return
    names = ", ".join(os.path.basename(path) for path in missing)
    reason = downloadBlockedReason(options, DOWNLOAD_HOST)
    if reason is None:
        channel.log(f"Downloading TotalSegmentator weights: {names}")
        return
    raise UserError(f"TotalSegmentator weights for task '{task}' are missing ({names} not found in "
                    f"{os.path.dirname(missing[0])}) and {reason}. Download the weights zip on a connected machine "
                    f"and import it (importTotalSegmentatorWeights / --import-weights), then run again.")


def terminologyByName():
    """{class name: {"color": [r, g, b], "category": [scheme, value, meaning], ...}} from the package's mapping."""
    import totalsegmentator

    path = os.path.join(os.path.dirname(totalsegmentator.__file__), "resources", "totalsegmentator_snomed_mapping.csv")
    if not os.path.isfile(path):
        return {}
    entries = {}
    with open(path, encoding="utf-8", newline="") as file:
        for row in csv.DictReader(file):
            entry = {key: [row.get(f"{prefix}.CodingSchemeDesignator", ""), row.get(f"{prefix}.CodeValue", ""),
                           row.get(f"{prefix}.CodeMeaning", "")] for key, prefix in TERMINOLOGY_FIELDS.items()}
            color = row.get("DicomRGBColor", "")
            if color.count(",") == 2:
                entry["color"] = [int(value) for value in color.split(",")]
            entries[row["Structure"]] = entry
    return entries


class _StageTracker:
    """Turns TotalSegmentator's printed steps into progress stages (tqdm fills each stage) within [start, end]."""

    def __init__(self, channel, cropping, start=10.0, end=96.0):
        self.channel = channel
        span = (end - start) / 86.0  # the stages of one task, scaled into its share of the run
        stages = [(10, 35, "Rough segmentation for cropping"), (40, 90, "Predicting")] if cropping else [
            (10, 90, "Predicting")]
        self.predictions = [(start + (a - 10) * span, start + (b - 10) * span, text) for a, b, text in stages]
        self.saving = (start + 80 * span, end)
        self.lines = []

    def __call__(self, line):
        self.lines = (self.lines + [line])[-20:]
        if line.startswith("Predicting") and self.predictions:
            self.channel.stage(*self.predictions.pop(0))
        elif line.startswith("Saving"):
            self.channel.stage(*self.saving, "Saving")


def _readResult(inputPath, segmentationPath):
    """A task's label map (numpy, NIfTI axis order), validated: on exactly the input file's grid."""
    import nibabel
    import numpy as np

    result, source = nibabel.load(segmentationPath), nibabel.load(inputPath)
    if result.shape[:3] != source.shape[:3] or not np.allclose(result.affine, source.affine, atol=1e-3):
        raise RuntimeError(f"TotalSegmentator returned a label map on another grid ({result.shape}) than the input "
                           f"({source.shape})")
    return np.asanyarray(result.dataobj)


def _writeResult(inputPath, labels, outputPath):
    """The (merged) label map with exactly the input file's geometry."""
    import numpy as np
    import SimpleITK as sitk

    labels = labels.astype(np.uint8 if labels.max(initial=0) < 256 else np.uint16)
    image = sitk.GetImageFromArray(np.ascontiguousarray(labels.transpose(2, 1, 0)))
    image.CopyInformation(sitk.ReadImage(inputPath))
    sitk.WriteImage(image, outputPath, True)


def structureKey(entry):
    """What a terminology entry says a structure is (type, modifier, region, region modifier codes), or None."""
    codes = tuple(tuple(entry.get(field) or ("", "", ""))[:2] for field in ("type", "typeModifier", "region",
                                                                              "regionModifier"))
    return codes if codes[0][1] else None


def requireDistinctStructures(tasks, classesOf, terminology):
    """UserError when two tasks name one structure (same terminology codes) differently, or use one name."""
    seen = {}
    for task in tasks:
        for name in classesOf(task).values():
            for key in (("name", name), ("codes", structureKey(terminology.get(name, {})))):
                if key[1] is None:
                    continue
                other = seen.setdefault(key, (task, name))
                if other[0] != task:
                    what = (f"both name '{name}'" if key[0] == "name" else
                            f"name one structure differently ('{other[1]}' in '{other[0]}', '{name}' in '{task}')")
                    raise UserError(f"TotalSegmentator tasks '{other[0]}' and '{task}' {what}: one segmentation "
                                    f"cannot hold both; run them separately")


def _checkTask(task, options, registry):
    if task not in registry.TASKS:
        raise UserError(f"Unknown TotalSegmentator task '{task}'; tasks: {', '.join(registry.TASKS)}")
    unknown = sorted(set(options["roiSubset"] or []) - set(registry.get_task_classes(task).values()))
    if unknown:
        raise UserError(f"roi_subset names not in task '{task}': {', '.join(unknown)}")
    _requireLicense(task, options.get("licenseNumber"))


def _runTask(task, request, channel, device, bounds):
    from totalsegmentator.python_api import totalsegmentator

    options = request["options"]
    tracker = _StageTracker(channel, bool(options["roiSubset"]), *bounds)
    watchOutput(channel, tracker)
    channel.stage(bounds[0], bounds[0] + 1, f"Starting TotalSegmentator task '{task}'")
    rawOutput = os.path.join(os.path.dirname(request["outputLabelmap"]), f"totalsegmentator_{task}.nii.gz")
    try:
        totalsegmentator(request["inputs"][0], rawOutput, ml=True, task=task, fast=options["fast"],
                         fastest=options["fastest"], roi_subset=options["roiSubset"] or None, device=device,
                         quiet=False, nr_thr_resamp=1, nr_thr_saving=1, **_switches(options))
    except SystemExit as error:
        raise UserError(f"TotalSegmentator stopped (exit code {error.code}): {' / '.join(tracker.lines[-3:])}") \
            from None
    return _readResult(request["inputs"][0], rawOutput)


def run(request, channel):
    options = request["options"]
    tasks = options.get("tasks") or [options["task"]]
    channel.stage(0, 5, "Checking tasks, license and weights")
    from totalsegmentator import registry

    for task in tasks:
        _checkTask(task, options, registry)
    terminology = terminologyByName()
    requireDistinctStructures(tasks, registry.get_task_classes, terminology)
    _configureTotalSegmentator(options["usageStatistics"])
    for task in tasks:
        _requireWeights(task, options, channel)
    device = _device(options["device"])
    predictInThisProcess()  # after the quick checks: it imports torch and nnU-Net
    results, span = [], 86.0 / len(tasks)
    for index, task in enumerate(tasks):
        labels = _runTask(task, request, channel, device, (10 + span * index, 10 + span * (index + 1)))
        classes = registry.get_task_classes(task)
        if options["roiSubset"]:
            classes = {value: name for value, name in classes.items() if name in options["roiSubset"]}
        results.append((task, labels, classes))
    channel.stage(96, 100, "Writing result")
    merged, names = mergeLabelMaps(results)
    _writeResult(request["inputs"][0], merged, request["outputLabelmap"])
    writeJson(request["outputLabels"], {"labels": {str(value): {"name": name, **terminology.get(name, {})}
                                                   for value, (_task, name) in names.items()}})
    return {"info": {"versions": _versions(), "device": device, "task": tasks[0] if len(tasks) == 1 else tasks}}
