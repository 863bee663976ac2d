"""nnU-Net v2 backend, parent side: model folders validated before anything runs (see ChildNnUNet for the run)."""

import glob
import os

from ..Backend import Backend, PreparedRun, nnUNetChildVariables
from .NnUNetModels import DEFAULT_CHECKPOINT, requireEnsemble, validateModelFolder
from ..Options import DEVICES, BackendOption, deviceOption
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
    )

    def prepare(self, context, modelFolders, folds=None, checkpoint=DEFAULT_CHECKPOINT, device="auto", tta=True,
                stepSize=0.5, postprocessing=True):
        """Validate model folder(s) (several are ensembled); folds: None (all trained), a fold, "all" or a list."""
        if not modelFolders:
            raise ValueError("No nnU-Net model folder given")
        models = [validateModelFolder(resolveModelFolder(folder), folds, checkpoint) for folder in modelFolders]
        requireEnsemble(models)
        configuration = models[0].configurationPlans
        architecture = configuration.get("architecture", {}).get("arch_kwargs", {})
        parameters = {"modelFolders": [model.folder for model in models], "folds": [model.folds for model in models],
                      "checkpoint": checkpoint, "device": device, "tta": bool(tta), "stepSize": float(stepSize)}
        found = postprocessingFile(models[0].folder, models[0].folds) if len(models) == 1 else None
        if found and postprocessing:
            parameters["postprocessing"] = found  # said: the provenance names the file that was applied
        return PreparedRun(
            childOptions={**parameters, "postprocessingFile": found if postprocessing else None},
            channels=models[0].channels,
            description=" + ".join(model.description() for model in models), parameters=parameters,
            labelNames={str(value): name for value, name in models[0].labels.items()},
            memoryModel={"networkSpacing": configuration["spacing"], "numClasses": len(models[0].labels) + 1,
                         "patchSize": configuration["patch_size"], "numChannels": len(models[0].channels),
                         "featuresPerStage": architecture.get("features_per_stage"), "models": len(models)})

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
