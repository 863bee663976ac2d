"""TotalSegmentator backend, parent side: options, licence flag, its home folder and offline weights import.

TotalSegmentator keeps its config.json (licence, usage statistics switch) and its weights
(``nnunet/results/Dataset<NNN>_.../<trainer>__<plans>__<configuration>/fold_0/``) in the folder named by
``TOTALSEG_HOME_DIR``; AISegmentation points it at a folder it owns: ``$AISEGMENTATION_TOTALSEG_HOME_DIR`` or
``<user data folder>/AISegmentation/TotalSegmentator``. The task registry comes from the package itself (probed in
its environment, see ChildTotalSegmentator.probe); the run's own checks happen in the child.
"""

import glob
import json
import os
import re
import shutil

from ..Child import SafeZip
from ..Child.LabelMerge import requireDistinctNames
from ..Backend import Backend, PreparedRun, nnUNetChildVariables
from ..Environments.Environments import userDataDir
from ..Options import DEVICES, BackendAction, BackendOption, deviceOption

HOME_VARIABLE = "AISEGMENTATION_TOTALSEG_HOME_DIR"
OFFLINE_VARIABLE = "AISEGMENTATION_OFFLINE"
DATASET_FOLDER = re.compile(r"^Dataset\d{3}_")
MODE_SPACING = {"default": 1.5, "fast": 3.0, "fastest": 6.0}  # used when the registry does not say
DEFAULT_CLASSES = 118


def homeDir():
    return os.environ.get(HOME_VARIABLE) or os.path.join(userDataDir(), "TotalSegmentator")


def weightsDir(home=None):
    return os.path.join(home or homeDir(), "nnunet", "results")


def isOffline():
    return os.environ.get(OFFLINE_VARIABLE, "").lower() in ("1", "true", "yes", "on")


def hasLicense(home):
    try:
        with open(os.path.join(home, "config.json"), encoding="utf-8") as file:
            return bool(json.load(file).get("license_number"))
    except (OSError, ValueError):
        return False


def _weightsFolders(root, depth=3):
    """TotalSegmentator weights folders (Dataset<NNN>_*, holding */fold_*/checkpoint_final.pth) under root."""
    found = []
    for current, folders, _ in os.walk(root):
        if os.path.relpath(current, root).count(os.sep) >= depth:
            folders[:] = []
        if DATASET_FOLDER.match(os.path.basename(current)) and glob.glob(
                os.path.join(current, "*", "fold_*", "checkpoint_final.pth")):
            found.append(current)
            folders[:] = []
    return found


def importWeights(source, home=None):
    """Install TotalSegmentator weights from a downloaded zip or an unpacked folder; returns the dataset names."""
    source = os.fspath(source)
    target = weightsDir(home)
    os.makedirs(target, exist_ok=True)
    extracted = SafeZip.extractZipIntoNewFolder(source, target) if os.path.isfile(source) else None
    if extracted is None and not os.path.isdir(source):
        raise ValueError(f"TotalSegmentator weights '{source}' is neither a zip file nor a folder")
    try:
        folders = _weightsFolders(extracted or source)
        if not folders:
            raise ValueError(f"'{source}' holds no TotalSegmentator weights (a Dataset<NNN>_* folder with "
                             f"*/fold_*/checkpoint_final.pth)")
        for folder in folders:
            destination = os.path.join(target, os.path.basename(folder))
            if os.path.realpath(folder) == os.path.realpath(destination):
                continue  # already in place
            shutil.rmtree(destination, ignore_errors=True)
            if extracted:
                os.replace(folder, destination)
            else:
                shutil.copytree(folder, destination)
    finally:
        if extracted:
            shutil.rmtree(extracted, ignore_errors=True)
    return [os.path.basename(folder) for folder in folders]


class TotalSegmentatorBackend(Backend):
    """settings: "home" (its home folder, default homeDir()); its environment's probe gives the task registry."""

    name = "totalsegmentator"
    title = "TotalSegmentator"
    help = "TotalSegmentator (its tasks, fast / fastest, roi_subset)"
    environmentName = "totalsegmentator"
    packages = ("totalsegmentator", "nnunetv2", "torch")
    childModule = "ChildTotalSegmentator.py"
    suggestions = ("use fast mode (3 mm) or fastest (6 mm)", "segment only some structures (roi_subset)",
                   "crop the volume to the region of interest")
    options = (
        BackendOption("task", "str", "total", "a task of TotalSegmentator's registry, e.g. total, total_mr, "
                      "lung_vessels; several (total, lung_vessels) run one after the other into one segmentation",
                      multiple=True, perCase=True),
        BackendOption("fast", "bool", False, "3 mm model", title="Fast (3 mm)", perCase=True),
        BackendOption("fastest", "bool", False, "6 mm model", title="Fastest (6 mm)", perCase=True),
        BackendOption("roiSubset", "str", None, "only these structures (the run is cropped to them)", multiple=True,
                      title="ROI subset", perCase=True),
        deviceOption(DEVICES),
        BackendOption("licenseNumber", "str", None, "license number for licensed tasks", flag="license",
                      secret=True),
        BackendOption("allowDownload", "bool", True, "let TotalSegmentator download missing weights (never when "
                      "$AISEGMENTATION_OFFLINE is set)", flag="download"),
        BackendOption("usageStatistics", "bool", False, "allow TotalSegmentator's anonymous usage statistics"),
        # TotalSegmentator's own switches (its command line's --robust_crop, --remove_small_blobs, --body_seg,
        # --force_split, --higher_order_resampling), passed through unchanged.
        BackendOption("robustCrop", "bool", False, "crop with the more robust 3 mm model instead of the 6 mm one (for "
                      "an ROI subset and the tasks that crop)", perCase=True),
        BackendOption("removeSmallBlobs", "bool", False, "remove connected components smaller than 0.2 mL from each "
                      "structure", perCase=True),
        BackendOption("bodySeg", "bool", False, "segment the body roughly first and crop the image to it (needs the "
                      "body model's weights)", title="Body segmentation crop", perCase=True),
        BackendOption("forceSplit", "bool", False, "process the image in 3 chunks (less memory; for large images)",
                      perCase=True),
        BackendOption("higherOrderResampling", "bool", False, "resample the segmentation with a higher-order "
                      "interpolation (smoother surfaces)", perCase=True),
        BackendOption("statistics", "bool", False, "a table of each structure's volume (mL) and mean / standard "
                      "deviation of the input's intensities in it (a table node; a CSV beside the output on the "
                      "command line)", perCase=True),
    )
    actions = (BackendAction("importWeights", "install weights from a downloaded zip or folder first (offline use)",
                             "ZIP_OR_FOLDER", "Imported weights"),)

    @staticmethod
    def home(context):
        return os.path.abspath(context.settings.get("home") or homeDir())

    def importWeights(self, context, source):
        return importWeights(source, self.home(context))

    def prepare(self, context, task="total", fast=False, fastest=False, roiSubset=None, device="auto",
                licenseNumber=None, allowDownload=True, usageStatistics=False, robustCrop=False,
                removeSmallBlobs=False, bodySeg=False, forceSplit=False, higherOrderResampling=False,
                statistics=False):
        """The tasks and licence are checked against TotalSegmentator's registry (probed in its environment);
        several tasks: their structures must not share a name (checked here from the class maps) nor terminology
        codes (checked in the child, from the package's mapping, before any network runs)."""
        tasks = [task] if isinstance(task, str) else list(task or [])
        if fast and fastest:
            raise ValueError("Choose fast or fastest, not both")
        if not tasks or not all(tasks):
            raise ValueError("No TotalSegmentator task given")
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"TotalSegmentator task(s) given twice: {', '.join(tasks)}")
        if len(tasks) > 1 and roiSubset:
            raise ValueError("roiSubset works with one TotalSegmentator task, not several: an ROI subset names the "
                             "structures of one task")
        if bodySeg and (roiSubset or any(name.endswith("_mr") for name in tasks)):
            raise ValueError("bodySeg (a body crop first) works only for CT tasks without an ROI subset: "
                             "TotalSegmentator would ignore it here (an ROI subset crops to its own structures)")
        roiSubset = list(roiSubset or [])
        home = self.home(context)
        entries = [self._taskEntry(name, context.probe().get("tasks")) for name in tasks]
        for name, entry in zip(tasks, entries):
            if entry is not None and entry.get("licenseRequired") and not licenseNumber and not hasLicense(home):
                raise ValueError(f"TotalSegmentator task '{name}' requires a license (free for non-commercial use: "
                                 f"https://backend.totalsegmentator.com/license-academic/); give it as licenseNumber")
        requireDistinctNames([(name, (entry or {}).get("classes", {}).values())
                              for name, entry in zip(tasks, entries)], "TotalSegmentator tasks")
        task, entry = tasks[0], max(entries, key=lambda item: len((item or {}).get("classes", {})))
        mode = "fast" if fast else "fastest" if fastest else "default"
        modeInfo = (entry or {}).get("modes", {}).get(mode) or (entry or {}).get("modes", {}).get("default") or {}
        spacing = modeInfo["resample"] if "resample" in modeInfo else MODE_SPACING[mode]  # None: native spacing
        spacing = list(spacing) if isinstance(spacing, (list, tuple)) else [spacing] * 3
        parameters = {"task": task if len(tasks) == 1 else tasks, "fast": bool(fast), "fastest": bool(fastest),
                      "roiSubset": roiSubset,
                      "device": device, "allowDownload": bool(allowDownload),
                      "usageStatistics": bool(usageStatistics)}
        switches = {"robustCrop": robustCrop, "removeSmallBlobs": removeSmallBlobs, "bodySeg": bodySeg,
                    "forceSplit": forceSplit, "higherOrderResampling": higherOrderResampling, "statistics": statistics}
        parameters.update({name: True for name, value in switches.items() if value})  # provenance: what was on
        models = modeInfo.get("models") or 1
        classes = len((entry or {}).get("classes", {})) or DEFAULT_CLASSES
        return PreparedRun(
            childOptions={**parameters, "tasks": tasks, "licenseNumber": licenseNumber, "offline": isOffline()},
            channels=["CT/MR"], description=f"TotalSegmentator task{'s' if len(tasks) > 1 else ''} "
            f"{' + '.join(repr(name) for name in tasks)}{' fast' if fast else ''}{' fastest' if fastest else ''}",
            parameters=parameters,
            environment={"TOTALSEG_HOME_DIR": home, "TOTALSEG_WEIGHTS_PATH": weightsDir(home)},
            memoryModel={"networkSpacing": spacing, "numClasses": -(-classes // models) + 1,
                         "patchSize": [128, 128, 128], "exportSpacing": spacing})

    def importExtras(self, scene, segmentationNode, reference, segmentIds, context):
        """The statistics table (statistics=True): each structure's volume and intensities, from the segments as
        written and the input volume."""
        if not context["prepared"].parameters.get("statistics"):
            return []
        from .StructureStatistics import addStatisticsTable

        return [addStatisticsTable(scene, segmentationNode, reference, segmentIds)]

    def childVariables(self, prepared, workDir):
        """TotalSegmentator runs nnU-Net, which reads its three folders from the environment: the job's own."""
        return nnUNetChildVariables(prepared, workDir)

    @staticmethod
    def _taskEntry(task, tasks):
        if not tasks:
            return None
        for entry in tasks:
            if entry["name"] == task:
                return entry
        raise ValueError(f"Unknown TotalSegmentator task '{task}'; tasks: {', '.join(e['name'] for e in tasks)}")
