"""AI backends that run out of process, each a plugin: ``<Name>/`` holds its parent side (a Backend subclass that
declares its options, child module, child variables, memory model and devices), its child side and its requirements
file; Registry.py lists them (one line each).

Shared here: the interface (Backend.py, Options.py), the job runner (JobRunner.py, ProcessTree.py), isolated
environments (Environments.py, MakeEnvironment.py, Installer.py, PipConfig.py, TorchSelection.py), the child's entry
point and protocol (ChildWorker.py, ChildProtocol.py, ChildTorch.py: these and the backends' child sides import only
the standard library, the backend's packages and numpy/SimpleITK/nibabel/torch, never slicer and never this package),
the pre-flight memory estimate (MemoryEstimate.py), result import (ResultImport.py), safe zip extraction (SafeZip.py)
and nnU-Net model folders (NnUNetModels.py). The AI area logic that the facade composes (AILogic.py) and the writer of
a job's result into a segmentation (AIResultWriter.py) sit here too, on the parent side.
"""

from .Registry import allBackends, backendNames, getBackend, registerBackend, unregisterBackend  # noqa: F401
