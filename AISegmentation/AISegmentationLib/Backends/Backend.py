"""The one interface every AI backend implements: a backend is a plugin (one folder plus one line in Registry.py).

A backend's folder ``Backends/<Name>/`` holds its parent side (a :class:`Backend` subclass, in this process: it
declares and validates), its child side (the module named by ``childModule``, run by ChildWorker.py in a separate
process, usually in the backend's own environment) and its requirements file (``<environmentName>-requirements.txt``,
what its isolated environment is created from).
"""

import os
import sys
from dataclasses import dataclass, field
from typing import Callable

from .Jobs.MemoryEstimate import estimateMemory
from .Options import DEVICES


def nnUNetChildVariables(prepared, workDir):
    """childVariables of a backend whose child runs nnU-Net, which reads its three folders from the environment even
    when it only predicts: the job's own (workDir), then the run's own variables."""
    return {"nnUNet_raw": workDir, "nnUNet_preprocessed": workDir, "nnUNet_results": workDir, **prepared.environment}


@dataclass
class PreparedRun:
    """A validated run: everything the job runner and the result import need, nothing executed yet."""

    childOptions: dict  # JSON-serializable options for the child module
    channels: list  # names of the input volumes expected, in order
    description: str  # the model, for the provenance tags
    parameters: dict  # the user's parameters, for the provenance tags (no secrets)
    labelNames: dict = None  # {value: name} when known before the run (sent to the child)
    environment: dict = field(default_factory=dict)  # extra variables for the child process
    memoryModel: dict = field(default_factory=dict)  # MemoryEstimate.estimateMemory keyword arguments


@dataclass
class BackendContext:
    """What the Logic lends a backend's parent side: its settings (kept per Logic, e.g. a home folder) and the
    probe of its isolated environment (what the package reported about itself when the environment was created)."""

    settings: dict = field(default_factory=dict)
    probe: Callable[[], dict] = dict


class Backend:
    """Base class; a subclass sets the declarations below and implements :meth:`prepare`."""

    name = ""  # key used by the Logic, the CLI and the panel ("nnunet")
    title = ""  # for people ("nnU-Net")
    help = ""  # one line for the CLI and the panel
    environmentName = ""  # its isolated environment, created from <environmentName>-requirements.txt in its folder
    packages = ()  # modules that must import in a Python that runs it (checked for environment="current")
    childModule = ""  # file of its child side in its folder ("ChildNnUNet.py"): run(request, channel), probe()
    options = ()  # Options.BackendOption declarations, in the order of the panel and the CLI
    actions = ()  # Options.BackendAction declarations (things done apart from a run, e.g. importing weights)
    devices = DEVICES  # the devices its "device" option offers
    maxInputs = 1  # input volumes a run takes at most (None: any number, e.g. one per model channel)
    suggestions = ()  # what helps when memory is short
    resources = ()  # data files in its folder besides its three parts (e.g. a model catalog)

    @property
    def folder(self):
        return os.path.dirname(os.path.abspath(sys.modules[type(self).__module__].__file__))

    @property
    def childModulePath(self):
        return os.path.join(self.folder, self.childModule)

    @property
    def requirementsPath(self):
        return os.path.join(self.folder, f"{self.environmentName}-requirements.txt")

    def prepare(self, context, **options):
        """Check the (declared, type-checked) options and describe the run as a :class:`PreparedRun`; ValueError
        with a clear message when they cannot work."""
        raise NotImplementedError

    def childVariables(self, prepared, workDir):
        """Environment variables of its child process (workDir: the job's private temporary folder)."""
        return dict(prepared.environment)

    def estimateMemory(self, prepared, shapeKji, spacingKji):
        """Its memory model: a MemoryEstimate of the run on a volume of this shape and spacing (array order).

        The default reads prepared.memoryModel (estimateMemory's arguments; without one: a plain two-class network
        on the volume's own grid)."""
        model = {"networkSpacing": list(spacingKji), "numClasses": 2,
                 "patchSize": [min(size, 128) for size in shapeKji], **prepared.memoryModel}
        for key in ("networkSpacing", "exportSpacing"):
            if key in model and any(value is None for value in model[key]):
                model[key] = list(spacingKji)
        device = prepared.childOptions.get("device", "cpu")
        return estimateMemory(shapeKji, spacingKji, device=device if device in ("cuda", "mps") else "cpu",
                              suggestions=self.suggestions, **model)

    def importExtras(self, scene, segmentationNode, reference, segmentIds, context):
        """Nodes a run gives besides its segments (e.g. a statistics table, probability volumes), made after the
        segments `segmentIds` were written (context: the job's, with "prepared" and "request"); referenced by the
        segmentation node. Default: none."""
        return []

    def segmentationName(self, volumeName):
        return f"{volumeName} {self.title}"
