"""Access to the MRML scene and Slicer module logics, inside desktop Slicer or headless on slicer-core.

Inside desktop Slicer the application already owns the scene and the module logics: :func:`getRuntime` returns a
thin view of them. Outside (PyPI ``slicer-core``: tests, command line) it builds a working scene with the same
module logics, once, and makes ``slicer.mrmlScene`` / ``slicer.modules.<name>.logic()`` resolve so that
``slicer.util`` array helpers work.
"""

import logging
import types

import slicer

_headlessRuntime = None


def isDesktopSlicer():
    """True inside the desktop Slicer application (its slicer module carries the Qt application object)."""
    return hasattr(slicer, "app")


class SlicerRuntime:
    """The scene plus the module logics that AISegmentationLib uses."""

    def __init__(self, scene, applicationLogic, moduleLogics):
        self.scene = scene
        self.applicationLogic = applicationLogic
        self._moduleLogics = moduleLogics

    def moduleLogic(self, name):
        """Logic of a Slicer module by its module name (e.g. "Segmentations", "Volumes", "Markups")."""
        try:
            return self._moduleLogics[name]
        except KeyError:
            raise ValueError(f"Slicer module logic '{name}' is not available in this runtime") from None

    @property
    def segmentationsLogic(self):
        return self.moduleLogic("Segmentations")

    @property
    def volumesLogic(self):
        return self.moduleLogic("Volumes")

    @property
    def markupsLogic(self):
        return self.moduleLogic("Markups")


def _desktopRuntime():
    names = ["Segmentations", "Volumes", "SubjectHierarchy", "Models", "Data", "Markups", "Tables"]
    logics = {}
    for name in names:
        module = getattr(slicer.modules, name.lower(), None)
        if module is not None:
            logics[name] = module.logic()
    # The application logic, reached through a module logic (this library never touches the Qt application).
    return SlicerRuntime(slicer.mrmlScene, logics["Segmentations"].GetMRMLApplicationLogic(), logics)


# (module name, logic class) in the order that was seen to work on slicer-core; without the Data logic every labelmap
# helper call leaks a display node.
_HEADLESS_LOGICS = [
    ("Volumes", "vtkSlicerVolumesLogic"),
    ("Segmentations", "vtkSlicerSegmentationsModuleLogic"),
    ("SubjectHierarchy", "vtkSlicerSubjectHierarchyModuleLogic"),
    ("Models", "vtkSlicerModelsLogic"),
    ("Data", "vtkSlicerDataModuleLogic"),
    ("Markups", "vtkSlicerMarkupsLogic"),
    ("Tables", "vtkSlicerTablesLogic"),
]


def createHeadlessRuntime():
    """A new headless scene with its module logics; it becomes ``slicer.mrmlScene`` (tests use one each)."""
    global _headlessRuntime
    if isDesktopSlicer():
        raise RuntimeError("Inside desktop Slicer use getRuntime(): the application owns the scene")
    _headlessRuntime = _buildHeadlessRuntime()
    return _headlessRuntime


def _buildHeadlessRuntime():
    scene = slicer.vtkMRMLScene()
    appLogic = slicer.vtkSlicerApplicationLogic()
    appLogic.SetMRMLScene(scene)
    colorLogic = appLogic.GetColorLogic()
    colorLogic.SetMRMLScene(scene)
    colorLogic.AddDefaultColorNodes()
    appLogic.SetModuleLogic("Colors", colorLogic)
    logics = {"Colors": colorLogic}
    for name, className in _HEADLESS_LOGICS:
        moduleLogic = getattr(slicer, className)()
        moduleLogic.SetMRMLScene(scene)
        moduleLogic.SetMRMLApplicationLogic(appLogic)
        appLogic.SetModuleLogic(name, moduleLogic)
        logics[name] = moduleLogic
    _bindSlicerUtil(scene, logics)
    logging.debug("Headless Slicer runtime created on slicer-core")
    return SlicerRuntime(scene, appLogic, logics)


def _bindSlicerUtil(scene, logics):
    """Make slicer.util helpers (arrayFromVolume, arrayFromSegment..., getNode) resolve headless."""
    slicer.mrmlScene = scene
    if not hasattr(slicer, "modules"):
        slicer.modules = types.SimpleNamespace()
    for name, moduleLogic in logics.items():
        setattr(slicer.modules, name.lower(), types.SimpleNamespace(logic=(lambda l=moduleLogic: l)))


def adoptHeadlessRuntime(scene, applicationLogic, moduleLogics):
    """Make a scene built by another headless application (e.g. trame-slicer's SlicerApp, which owns its views) the
    runtime of this process. moduleLogics: {module name: logic} holding at least those of _HEADLESS_LOGICS."""
    global _headlessRuntime
    if isDesktopSlicer():
        raise RuntimeError("Inside desktop Slicer use getRuntime(): the application owns the scene")
    missing = [name for name, _ in _HEADLESS_LOGICS if name not in moduleLogics]
    if missing:
        raise ValueError(f"The adopted runtime lacks the module logics {', '.join(missing)}")
    _bindSlicerUtil(scene, moduleLogics)
    _headlessRuntime = SlicerRuntime(scene, applicationLogic, dict(moduleLogics))
    return _headlessRuntime


def getRuntime():
    """The runtime of this process: desktop Slicer's, or a headless one created on first use."""
    global _headlessRuntime
    if isDesktopSlicer():
        return _desktopRuntime()
    if _headlessRuntime is None:
        _headlessRuntime = _buildHeadlessRuntime()
    return _headlessRuntime


def vtkITK():
    """Slicer's vtkITK filters (threshold calculator, level tracing, island math, grow cut).

    Desktop Slicer never puts them into `slicer`: vtkITK is a module of its own (Base/Python/vtkITK.py) that Slicer's
    segment editor effects ``import vtkITK``. PyPI slicer-core has no top-level vtkITK; its classes are in
    slicer_core.vtkITK (and, there only, in `slicer`)."""
    try:
        import vtkITK as module
    except ImportError:
        from slicer_core import vtkITK as module
    return module
