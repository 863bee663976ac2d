"""MONAI Auto3DSeg backend, parent side: the model catalog (models.json beside this file), consent to download,
offline zips (see ChildMonaiAuto3DSeg for the run and MonaiModels for model files).

settings: "home" (where catalog models are installed, default MonaiModels.homeDir()) and "catalog" (another catalog
file, e.g. a site's own mirror of the models).
"""

import os

from . import MonaiModels
from ..Backend import Backend, PreparedRun
from ..Options import DEVICES, BackendAction, BackendOption, deviceOption

OFFLINE_VARIABLE = "AISEGMENTATION_OFFLINE"
CATALOG_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models.json")
DEFAULT_MODEL = "abdominal-organs-3mm"
DEFAULT_PATCH = [96, 96, 96]


def _catalogIds():
    try:
        return tuple(entry["id"] for entry in MonaiModels.loadCatalog(CATALOG_FILE))
    except ValueError:
        return ()


def isOffline():
    return os.environ.get(OFFLINE_VARIABLE, "").lower() in ("1", "true", "yes", "on")


class MonaiAuto3DSegBackend(Backend):
    name = "monaiauto3dseg"
    title = "MONAI Auto3DSeg"
    help = "MONAI Auto3DSeg models (SegResNet: whole body, organs, brain, prostate MRI, BraTS...)"
    environmentName = "monaiauto3dseg"
    packages = ("monai", "torch", "nibabel", "SimpleITK")
    childModule = "ChildMonaiAuto3DSeg.py"
    resources = ("models.json",)
    maxInputs = 4
    suggestions = ("use a quick (3 mm) model", "crop the volume to the region of interest",
                   "run on the CPU when the GPU memory is short")
    options = (
        BackendOption("model", "str", DEFAULT_MODEL, "a model of the catalog (ignored when modelFile is given)",
                      choices=_catalogIds(), perCase=True),
        BackendOption("modelFile", "path", None, "a model zip (model.pt + labels.csv) or its unpacked folder: "
                      "offline use or your own model", title="Model file"),
        BackendOption("inputs", "str", None, "names of a model file's input volumes, in the model's order "
                      "(default: one volume)", multiple=True, perCase=True),
        BackendOption("allowDownload", "bool", False, "download a catalog model that is not installed yet "
                      "(checksum checked; never when $AISEGMENTATION_OFFLINE is set)", flag="download"),
        deviceOption(DEVICES),
        BackendOption("overlap", "float", 0.625, "overlap of the sliding windows (fraction of the window)",
                      minimum=0.0, maximum=0.95, perCase=True),
    )
    actions = (BackendAction("importModel", "install a catalog model from its downloaded zip (offline use); "
                             "give MODEL_ID=ZIP", "MODEL_ID=ZIP", "Installed model"),)

    @staticmethod
    def home(context):
        return os.path.abspath(context.settings.get("home") or MonaiModels.homeDir())

    @staticmethod
    def catalog(context):
        return MonaiModels.loadCatalog(context.settings.get("catalog") or CATALOG_FILE)

    def importModel(self, context, value):
        modelId, separator, zipPath = str(value).partition("=")
        if not separator or not zipPath:
            raise ValueError(f"Give the model and its zip as MODEL_ID=ZIP, got '{value}'")
        entry = MonaiModels.catalogEntry(self.catalog(context), modelId.strip())
        return [MonaiModels.importModelZip(os.path.abspath(zipPath.strip()), self.home(context), entry)]

    def prepare(self, context, model=DEFAULT_MODEL, modelFile=None, inputs=None, allowDownload=False, device="auto",
                overlap=0.625):
        """A model file (zip or folder) or a catalog model: installed, or downloaded by the child after consent."""
        parameters = {"device": device, "overlap": float(overlap)}
        childOptions = {"device": device, "overlap": float(overlap)}
        memoryModel = {"patchSize": DEFAULT_PATCH}
        if modelFile:
            kind, path = MonaiModels.requireModelSource(modelFile)
            channels = list(inputs or ["image"])
            childOptions["modelZip" if kind == "zip" else "modelFolder"] = path
            parameters.update(modelFile=path, inputs=channels)
            description = f"MONAI Auto3DSeg model file '{os.path.basename(path)}'"
        else:
            if inputs:
                raise ValueError("inputs names the volumes of a model file; a catalog model names its own")
            entry = MonaiModels.catalogEntry(self.catalog(context), model)
            version = entry["versions"][0]
            channels = list(entry["inputs"])
            folder = MonaiModels.findModelFolder(MonaiModels.installedFolder(self.home(context), entry))
            if folder is not None:
                childOptions["modelFolder"] = folder
            elif allowDownload and not isOffline():
                childOptions["download"] = {**version, "target": MonaiModels.installedFolder(self.home(context),
                                                                                            entry)}
            else:
                why = "downloads are off ($AISEGMENTATION_OFFLINE)" if isOffline() else "allowDownload is off"
                raise ValueError(f"MONAI Auto3DSeg model '{model}' (version {version['version']}) is not installed "
                                 f"and {why}: allow the download ({version['url']}) or import its zip with "
                                 f"importModel")
            parameters.update(model=model, version=version["version"], allowDownload=bool(allowDownload))
            description = f"MONAI Auto3DSeg '{entry['title']}' {version['version']}"
            memoryModel["numClasses"] = len(entry["segmentNames"]) + 1
            if entry.get("resolution"):
                memoryModel["networkSpacing"] = [float(entry["resolution"])] * 3
        memoryModel["numChannels"] = len(channels)
        return PreparedRun(childOptions=childOptions, channels=channels, description=description,
                           parameters=parameters, memoryModel=memoryModel)
