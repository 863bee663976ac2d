"""AI backends that run out of process, each a plugin: ``<Name>/`` holds its parent side (a Backend subclass that
declares its options, child module, child variables, memory model and devices), its child side and its requirements
file; Registry.py lists them (one line each).

Shared here, by concern: the interface (Backend.py, Options.py) and the registry; Jobs/ (a job's request, the
pre-flight memory estimate, the import and writing of its result);
Environments/ (isolated environments: making them, installing into them, pip configuration, the choice of torch);
Child/ (what runs in a backend's environment: the entry point ChildWorker.py, its protocol, torch devices, checkpoints,
postprocessing and safe zip extraction (the process tree is the package's ProcessTree.py) — these and the backends' child sides import only the standard
library, the backend's packages and numpy/SimpleITK/nibabel/torch, never slicer and never this package). A backend's own
helpers live in its folder (NnUNet/NnUNetModels.py, MonaiAuto3DSeg/MonaiModels.py). The AI area logic that the facade
composes (AILogic.py) sits here too, on the parent side.
"""

from .Registry import allBackends, backendNames, getBackend, registerBackend, unregisterBackend  # noqa: F401
