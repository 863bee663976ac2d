"""The `slicer` namespace as desktop Slicer presents it, modelled on slicer-core (which puts every class into `slicer`
at import). Rules from Slicer 5.10.0's source (checked again for 5.12.0):

- Startup: `Base/Python/slicer/__init__.py` runs ``from <kit> import *`` for every entry of ``available_kits``, which
  `Base/Python/CMakeLists.txt` (lines 29-41, Slicer_PYTHON_MODULES_CONFIG) sets to mrml, vtkAddon,
  vtkSegmentationCore, qMRMLWidgetsPythonQt, logic and the qSlicerBase*PythonQt kits; `Base/Python/mrml.py` imports
  MRMLCLIPython, MRMLCorePython, MRMLDisplayableManagerPython and MRMLLogicPython, `Base/Python/slicer/logic.py`
  SlicerBaseLogicPython. Those are the only VTK classes in `slicer` when AISegmentation.py runs: modules are
  instantiated in name order (`Base/QTCore/qSlicerAbstractModuleFactoryManager.cxx`, instantiateModules() walks a
  QMap keyed by name) and "AISegmentation" sorts before every core module.
- Module instantiation: each loadable module's wrappers are imported into `slicer` by
  `qSlicerScriptedUtils::importModulePythonExtensions` (`Base/QTCore/qSlicerScriptedUtils.cxx` lines 120-125,
  called from `Base/QTCore/qSlicerLoadableModuleFactory.cxx` line 61): files matching vtkSlicer*ModuleLogicPython.*,
  vtkSlicer*ModuleMRMLPython.*, vtkSlicer*ModuleMRMLDisplayableManagerPython.*, vtkSlicer*ModuleVTKWidgetsPython.*.
- Never: vtkITK and vtkTeem are Python modules of their own (`Base/Python/vtkITK.py`, `Base/Python/vtkTeem.py`,
  listed in `Base/Python/CMakeLists.txt` lines 21-27 but not among the kits); Slicer's effects ``import vtkITK``
  (`SegmentEditorIslandsEffect.py` line 6, `SegmentEditorLevelTracingEffect.py` line 6,
  `SegmentEditorThresholdEffect.py` line 33, `SegmentEditorGrowFromSeedsEffect.py` line 109). vtkRemoteIO is in
  neither list either.

slicer-core names each class's library in its ``__module__`` (slicer_core.MRMLCore, slicer_core.vtkSlicer...), the
same libraries as Slicer's wrappers; the rules above are applied to those names.
"""

import contextlib
import fnmatch
import sys

import slicer

STARTUP = "startup"  # when AISegmentation.py is executed
INSTANTIATED = "instantiated"  # after every module was instantiated: when the widget and the logic are created

STARTUP_LIBRARIES = ("MRMLCLI", "MRMLCore", "MRMLDisplayableManager", "MRMLLogic", "vtkAddon", "vtkSegmentationCore",
                     "vtkSlicerBaseLogic")
MODULE_LIBRARY_PATTERNS = ("vtkSlicer*ModuleLogic", "vtkSlicer*ModuleMRML", "vtkSlicer*ModuleMRMLDisplayableManager",
                           "vtkSlicer*ModuleVTKWidgets")
OWN_MODULE_LIBRARIES = ("vtkITK", "vtkTeem")  # `import vtkITK`, never `slicer.vtkITK...`


def libraryOf(value):
    """The Slicer library a slicer-core class comes from (MRMLCore, vtkSlicerSegmentationsModuleLogic...), or None."""
    module = getattr(value, "__module__", None) or ""
    if not isinstance(value, type) or not module:
        return None
    name = module.split(".")[-1]
    return name[:-len("Python")] if name.endswith("Python") else name


def allowedAt(library, moment):
    if library in STARTUP_LIBRARIES:
        return True
    if moment == INSTANTIATED:
        return any(fnmatch.fnmatchcase(library, pattern) for pattern in MODULE_LIBRARY_PATTERNS)
    return False


def _allSlicerClasses():
    if not hasattr(_allSlicerClasses, "cache"):
        _allSlicerClasses.cache = {name: value for name, value in vars(slicer).items() if libraryOf(value)
                                   and not libraryOf(value).startswith(("util", "slicer"))}
    return _allSlicerClasses.cache


def classesAt(moment):
    """{name: class} that desktop Slicer's `slicer` holds at that moment."""
    return {name: value for name, value in _allSlicerClasses().items() if allowedAt(libraryOf(value), moment)}


def ownModule(name):
    """vtkITK / vtkTeem as desktop Slicer imports them: a top-level module of their own."""
    import importlib

    return importlib.import_module(f"slicer_core.{name}")


def apply(moment):
    """Make this process's `slicer` hold what desktop Slicer's holds at `moment`; vtkITK and vtkTeem become the
    top-level modules they are in desktop Slicer. Returns the names removed."""
    allowed = classesAt(moment)
    removed = []
    for name, value in _allSlicerClasses().items():
        if name in allowed:
            setattr(slicer, name, value)
        elif name in vars(slicer):
            delattr(slicer, name)
            removed.append(name)
    for name in OWN_MODULE_LIBRARIES:
        sys.modules[name] = ownModule(name)
    return removed


@contextlib.contextmanager
def namespaceAt(moment, restoreTo=INSTANTIATED):
    apply(moment)
    try:
        yield
    finally:
        apply(restoreTo)
