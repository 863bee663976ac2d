"""nnU-Net v2 backend, parent side: model folders validated before anything runs (see ChildNnUNet for the run)."""

import glob
import math
import os

from ..Backend import Backend, PreparedRun, nnUNetChildVariables
from .NnUNetModels import DEFAULT_CHECKPOINT, requireEnsemble, validateModelFolder
from ..Options import DEVICES, BackendOption, deviceOption
from ..Jobs.MemoryEstimate import GIB
from .NnUNetTrainedModels import resolveModelFolder


class NnUNetBackend(Backend):
    name = "nnunet"
    title = "nnU-Net"
    help = "a trained nnU-Net v2 model (or an ensemble of several)"
    environmentName = "nnunet"
    packages = ("nnunetv2", "torch")
    childModule = "ChildNnUNet.py"
    maxInputs = None  # one volume per channel of the model (dataset.json channel_names)
    suggestions = ("crop the volume to the region of interest", "use fewer models in the ensemble",
                   "run on the CPU when the GPU memory is short")
    options = (
        BackendOption("modelFolders", "path", None, "trained model folder <trainer>__<plans>__<configuration> "
                      "or the name of a model trained here; several are ensembled", multiple=True, required=True,
                      flag="model", title="Model folders"),
        BackendOption("folds", "int", None, "folds to use: numbers and/or 'all' (default: every trained fold)",
                      minimum=0, multiple=True, keywords=("all",),
                      invalid="Invalid fold {value}: use fold numbers (0, 1, ...) or 'all'", perCase=True),
        BackendOption("checkpoint", "str", DEFAULT_CHECKPOINT, "checkpoint file name"),
        deviceOption(DEVICES),
        BackendOption("tta", "bool", True, "test-time augmentation (mirroring)", title="Test-time mirroring",
                      perCase=True),
        BackendOption("stepSize", "float", 0.5, "sliding-window step, fraction of the patch size", minimum=0.0,
                      maximum=1.0, minimumInclusive=False,
                      invalid="Step size must be in (0, 1] (fraction of the patch size), got {value}", perCase=True),
        BackendOption("postprocessing", "bool", True, "the model's own post-processing (postprocessing.pkl, from "
                      "nnUNetv2_determine_postprocessing) when its folder has one", title="Model's post-processing"),
        BackendOption("probabilities", "bool", False, "also return the class probabilities: a float volume per "
                      "class (NIfTI files beside the output on the command line); refused when they would not fit "
                      "in memory (voxels x classes x 4 bytes)", title="Probability maps"),
    )

    def prepare(self, context, modelFolders, folds=None, checkpoint=DEFAULT_CHECKPOINT, device="auto", tta=True,
                stepSize=0.5, postprocessing=True, probabilities=False):
        """Validate model folder(s) (several are ensembled); folds: None (all trained), a fold, "all" or a list.
        A cascade stage (3d_cascade_fullres) runs its low-resolution model first: the sibling folder of the
        configuration its plans name as previous stage, which must be there."""
        if not modelFolders:
            raise ValueError("No nnU-Net model folder given")
        models = [validateModelFolder(resolveModelFolder(folder), folds, checkpoint) for folder in modelFolders]
        requireEnsemble(models)
        previous = previousStage(models, checkpoint)
        configuration = resolvedConfiguration(models[0].plansJson, models[0].configuration)
        architecture = configuration.get("architecture", {}).get("arch_kwargs", {})
        parameters = {"modelFolders": [model.folder for model in models], "folds": [model.folds for model in models],
                      "checkpoint": checkpoint, "device": device, "tta": bool(tta), "stepSize": float(stepSize)}
        found = postprocessingFile(models[0].folder, models[0].folds) if len(models) == 1 else None
        if found and postprocessing:
            parameters["postprocessing"] = found  # said: the provenance names the file that was applied
        if previous is not None:
            parameters["previousStage"] = {"folder": previous.folder, "folds": previous.folds}
        if probabilities:
            parameters["probabilities"] = True
        return PreparedRun(
            childOptions={**parameters, "postprocessingFile": found if postprocessing else None},
            channels=models[0].channels,
            description=" + ".join(model.description() for model in models), parameters=parameters,
            labelNames={str(value): name for value, name in models[0].labels.items()},
            memoryModel={"networkSpacing": configuration["spacing"], "numClasses": len(models[0].labels) + 1,
                         "patchSize": configuration["patch_size"], "numChannels": len(models[0].channels),
                         "featuresPerStage": architecture.get("features_per_stage"), "models": len(models)})

    def estimateMemory(self, prepared, shapeKji, spacingKji):
        """The run's estimate plus, with probabilities, the maps themselves (voxels x classes x 4 bytes, kept by the
        child and again by the import): ValueError, before any process starts, when that alone exceeds the memory
        available."""
        estimate = super().estimateMemory(prepared, shapeKji, spacingKji)
        if not prepared.parameters.get("probabilities"):
            return estimate
        maps = math.prod(shapeKji) * (len(prepared.labelNames) + 1) * 4
        estimate.peakBytes += maps
        if estimate.availableBytes is not None and 2 * maps > estimate.availableBytes:
            raise ValueError(f"Probability maps of {len(prepared.labelNames) + 1} classes on {math.prod(shapeKji):,} "
                             f"voxels need {2 * maps / GIB:.1f} GiB (voxels x classes x 4 bytes, in the backend and "
                             f"again in the scene); {estimate.availableBytes / GIB:.1f} GiB is available. Crop the "
                             f"volume or run without probabilities")
        estimate.messages.append(f"Probability maps: {maps / GIB:.2f} GiB ({len(prepared.labelNames) + 1} classes x "
                                 f"{math.prod(shapeKji):,} voxels x 4 bytes)")
        return estimate

    def importExtras(self, scene, segmentationNode, reference, segmentIds, context):
        if not context["prepared"].parameters.get("probabilities"):
            return []
        from .ProbabilityImport import importProbabilities

        return importProbabilities(scene, segmentationNode, reference, context["request"])

    def childVariables(self, prepared, workDir):
        """nnU-Net reads its three folders from the environment even when it only predicts: the job's own."""
        return nnUNetChildVariables(prepared, workDir)


def postprocessingFile(folder, folds):
    """The model's postprocessing.pkl: in crossval_results_folds_<folds> (nnUNetv2_determine_postprocessing's place
    for these folds), else in the model folder itself, else the only crossval_results_folds_* one; None without."""
    candidates = [os.path.join(folder, f"crossval_results_folds_{'_'.join(map(str, folds))}", "postprocessing.pkl"),
                  os.path.join(folder, "postprocessing.pkl")]
    others = sorted(glob.glob(os.path.join(glob.escape(folder), "crossval_results_folds_*", "postprocessing.pkl")))
    for path in candidates + (others if len(others) == 1 else []):
        if os.path.isfile(path):
            return path
    return None


def resolvedConfiguration(plansJson, name):
    """A configuration of plans.json with what it inherits ("inherits_from", as nnU-Net's plans manager does)."""
    configurations = plansJson.get("configurations", {})
    configuration, seen = dict(configurations[name]), {name}
    while configuration.get("inherits_from"):
        parent = configuration.pop("inherits_from")
        if parent in seen or parent not in configurations:
            raise ValueError(f"plans.json: configuration '{name}' inherits from '{parent}', which is not there")
        seen.add(parent)
        configuration = {**configurations[parent], **configuration}
    return configuration


def previousStage(models, checkpoint):
    """The low-resolution model of a cascade stage (the sibling <trainer>__<plans>__<previous stage> folder,
    validated), None for a model without a previous stage; ValueError when it is missing or ensembled."""
    stages = [resolvedConfiguration(model.plansJson, model.configuration).get("previous_stage") for model in models]
    if not any(stages):
        return None
    if len(models) > 1:
        raise ValueError("A cascade model (configuration with a previous stage) cannot be ensembled here; give its "
                         "model folder alone")
    model = models[0]
    folder = os.path.join(os.path.dirname(model.folder), f"{model.trainer}__{model.plans}__{stages[0]}")
    if not os.path.isdir(folder):
        raise ValueError(f"Cascade model '{os.path.basename(model.folder)}' needs the prediction of its "
                         f"low-resolution stage '{stages[0]}', but '{folder}' is not there: put the trained "
                         f"{stages[0]} model folder beside it")
    return validateModelFolder(folder, None, checkpoint)
