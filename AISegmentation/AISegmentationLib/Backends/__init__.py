"""AI backends that run out of process: one interface (Backend.py), one job runner (JobRunner.py), isolated
environments (Environments.py), pre-flight memory estimate (MemoryEstimate.py).

Parent side (Slicer's process): ``<Name>Backend.py`` validates a run. Child side (the backend's own Python):
``ChildWorker.py`` runs ``Child<Name>.py``; those files import only the standard library, the backend's packages
and numpy/SimpleITK/nibabel/torch, never slicer, and never this package. Adding a backend = one ``<Name>Backend.py``
registered here + one ``Child<Name>.py`` registered in ChildWorker.BACKEND_MODULES + a requirements file in
Resources/Backends.
"""

from .NnUNetBackend import NnUNetBackend
from .TotalSegmentatorBackend import TotalSegmentatorBackend

BACKENDS = {backend.name: backend for backend in (NnUNetBackend(), TotalSegmentatorBackend())}


def getBackend(name):
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"Unknown AI backend '{name}'; choose one of: {', '.join(BACKENDS)}") from None
