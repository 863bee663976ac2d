"""nnU-Net v2 backend, parent side: model folders validated before anything runs (see ChildNnUNet for the run)."""

import os

from .Backend import Backend, PreparedRun
from .NnUNetModels import DEFAULT_CHECKPOINT, requireEnsemble, validateModelFolder

DEVICES = ("auto", "cpu", "cuda", "mps")


def requireDevice(device):
    if device not in DEVICES:
        raise ValueError(f"Unknown device '{device}'; choose one of: {', '.join(DEVICES)}")
    return device


class NnUNetBackend(Backend):
    name = "nnunet"
    title = "nnU-Net"
    environmentName = "nnunet"
    packages = ("nnunetv2", "torch")
    suggestions = ("crop the volume to the region of interest", "use fewer models in the ensemble",
                   "run on the CPU when the GPU memory is short")

    def prepare(self, modelFolders, folds=None, checkpoint=DEFAULT_CHECKPOINT, device="auto", tta=True,
                stepSize=0.5):
        """Validate model folder(s) (several are ensembled); folds: None (all trained), a fold, "all" or a list."""
        if isinstance(modelFolders, (str, os.PathLike)):
            modelFolders = [modelFolders]
        if not modelFolders:
            raise ValueError("No nnU-Net model folder given")
        models = [validateModelFolder(folder, folds, checkpoint) for folder in modelFolders]
        requireEnsemble(models)
        requireDevice(device)
        if not 0.0 < float(stepSize) <= 1.0:
            raise ValueError(f"Step size must be in (0, 1] (fraction of the patch size), got {stepSize}")
        configuration = models[0].configurationPlans
        architecture = configuration.get("architecture", {}).get("arch_kwargs", {})
        parameters = {"modelFolders": [model.folder for model in models], "folds": [model.folds for model in models],
                      "checkpoint": checkpoint, "device": device, "tta": bool(tta), "stepSize": float(stepSize)}
        return PreparedRun(
            childOptions=dict(parameters), channels=models[0].channels,
            description=" + ".join(model.description() for model in models), parameters=parameters,
            labelNames={str(value): name for value, name in models[0].labels.items()},
            memoryModel={"networkSpacing": configuration["spacing"], "numClasses": len(models[0].labels) + 1,
                         "patchSize": configuration["patch_size"], "numChannels": len(models[0].channels),
                         "featuresPerStage": architecture.get("features_per_stage"), "models": len(models)})
