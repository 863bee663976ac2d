"""The registry of AI backends: adding a backend = its folder ``Backends/<Name>/`` plus one line in BACKENDS.

Each line names a Backend subclass as ``"<Folder>.<module>.<class>"`` (imported on first use). The first backend is
the panel's default. :func:`registerBackend` adds one at run time (a backend that lives outside this folder, e.g. in
a test); it is not needed for the backends listed here.
"""

import importlib

BACKENDS = (
    "TotalSegmentator.TotalSegmentatorBackend.TotalSegmentatorBackend",
    "NnUNet.NnUNetBackend.NnUNetBackend",
    "MonaiAuto3DSeg.MonaiAuto3DSegBackend.MonaiAuto3DSegBackend",
    "Moose.MooseBackend.MooseBackend",
)

_extra = {}  # name -> backend registered at run time
_listed = None  # name -> backend of BACKENDS, once imported


def _listedBackends():
    global _listed
    if _listed is None:
        backends = {}
        for entry in BACKENDS:
            moduleName, className = entry.rsplit(".", 1)
            backend = getattr(importlib.import_module(f"{__package__}.{moduleName}"), className)()
            backends[backend.name] = backend
        _listed = backends
    return _listed


def allBackends():
    """{name: backend instance}, in registry order (registered ones last)."""
    return {**_listedBackends(), **_extra}


def backendNames():
    return list(allBackends())


def getBackend(name):
    backends = allBackends()
    if name not in backends:
        raise ValueError(f"Unknown AI backend '{name}'; choose one of: {', '.join(backends)}")
    return backends[name]


def registerBackend(backendClass):
    """Add a Backend subclass (or instance) at run time; returns the instance. ValueError when the name is taken."""
    backend = backendClass() if isinstance(backendClass, type) else backendClass
    if not backend.name or backend.name in allBackends():
        raise ValueError(f"A backend named '{backend.name}' is already registered (or the name is empty)")
    _extra[backend.name] = backend
    return backend


def unregisterBackend(name):
    """Remove a backend added with registerBackend."""
    _extra.pop(name, None)


def environmentRequirements():
    """{environment name: requirements file} of the registered backends (those whose folder holds one)."""
    import os

    found = {}
    for backend in allBackends().values():
        if backend.environmentName and os.path.isfile(backend.requirementsPath):
            found.setdefault(backend.environmentName, backend.requirementsPath)
    return found


def childModuleFor(name):
    """The child module file of the backend `name`, or of the backend whose environment is `name`."""
    backends = allBackends()
    if name in backends:
        return backends[name].childModulePath
    for backend in backends.values():
        if backend.environmentName == name:
            return backend.childModulePath
    raise ValueError(f"Unknown AI backend '{name}'; choose one of: {', '.join(backends)}")
