"""The scene of the web front end: trame-slicer's SlicerApp (scene, views, its segment editor) adopted as the
AISegmentation runtime, so that the Logic writes into the scene the page shows."""

import slicer

from AISegmentationLib.Runtime import adoptHeadlessRuntime

# Module logics the Logic uses that SlicerApp does not register itself.
_EXTRA_LOGICS = (("Models", "vtkSlicerModelsLogic"), ("Tables", "vtkSlicerTablesLogic"))
_LOGIC_NAMES = ("Colors", "Volumes", "Segmentations", "SubjectHierarchy", "Models", "Data", "Markups", "Tables")


def createSlicerScene():
    """(SlicerApp, runtime): trame-slicer's application objects and the Logic's runtime on the same scene."""
    from trame_slicer.core import SlicerApp

    slicerApp = SlicerApp()
    for name, className in _EXTRA_LOGICS:
        if slicerApp.app_logic.GetModuleLogic(name) is None:
            slicerApp.register_module_logic(getattr(slicer, className)(), logic_name=name)
    logics = {name: slicerApp.app_logic.GetModuleLogic(name) for name in _LOGIC_NAMES}
    runtime = adoptHeadlessRuntime(slicerApp.scene, slicerApp.app_logic, logics)
    return slicerApp, runtime
