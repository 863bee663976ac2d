"""Reading and writing volumes through Slicer's storage nodes (NRRD, NIfTI, MHA, DICOM series folder)."""

import contextlib
import logging
import os

import slicer
import vtk

from .AtomicWrite import atomicOutput
from .DicomGeometry import checkSeries, resampleOntoRegularGrid, seriesFiles
from .FileIntegrity import requireWholeImageFile

VOLUME_EXTENSIONS = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")
LABELMAP_LOADING_OPTION = 1  # AddArchetypeVolume loadingOptions bit 0: label map


def _nodeIds(scene):
    return {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}


def removeNodesAddedSince(scene, nodeIdsBefore):
    """Remove every node added to the scene after nodeIdsBefore was taken (keeps a failed load from leaving junk)."""
    for nodeId in _nodeIds(scene) - nodeIdsBefore:
        node = scene.GetNodeByID(nodeId)
        if node is not None:
            scene.RemoveNode(node)


@contextlib.contextmanager
def quietVtkErrors():
    """Silence VTK's own error printing while we try to read a file (we report failures ourselves)."""
    warnings = vtk.vtkObject.GetGlobalWarningDisplay()
    verbosity = vtk.vtkLogger.GetCurrentVerbosityCutoff()
    vtk.vtkObject.GlobalWarningDisplayOff()
    vtk.vtkLogger.SetStderrVerbosity(vtk.vtkLogger.VERBOSITY_OFF)
    try:
        yield
    finally:
        vtk.vtkObject.SetGlobalWarningDisplay(warnings)
        vtk.vtkLogger.SetStderrVerbosity(verbosity)


def loadVolume(runtime, path, name=None, labelmap=False, acceptIrregularSpacing=False):
    """Load a scalar volume (or a label map volume) from a file, or a DICOM series from a folder.

    A file must be whole (all the voxel data its header announces; see FileIntegrity); a DICOM series must be one
    series of evenly spaced slices (see DicomGeometry) unless acceptIrregularSpacing is True: then it is resampled
    onto a regular grid and the node's "AISegmentation.irregularSpacing" attribute says so.
    Raises ValueError with the reason when the path is missing, unreadable, incomplete or uneven; the scene is left
    unchanged then.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"Volume file or folder '{path}' does not exist")
    name = name or _baseName(path)
    scene = runtime.scene
    before = _nodeIds(scene)
    fileList = vtk.vtkStringArray()
    archetype = path
    stack = None
    if os.path.isdir(path):
        stack = checkSeries(path, seriesFiles(path), acceptIrregularSpacing)
        archetype = stack.files[0]
        for fileName in stack.files:
            fileList.InsertNextValue(fileName)
    else:
        requireWholeImageFile(path)
    node = None
    try:
        with quietVtkErrors():
            node = _addArchetypeVolume(runtime.volumesLogic, archetype, name,
                                       LABELMAP_LOADING_OPTION if labelmap else 0, fileList)
    except Exception as error:  # a VTK reader can raise on a malformed header
        logging.debug("AddArchetypeVolume raised %s", error)
    if node is None or node.GetImageData() is None or node.GetImageData().GetNumberOfPoints() == 0:
        removeNodesAddedSince(scene, before)
        raise ValueError(f"Could not read a volume from '{path}': unsupported or corrupt file")
    if stack is not None:
        try:
            resampleOntoRegularGrid(node, stack)
        except Exception:
            removeNodesAddedSince(scene, before)
            raise
    logging.info("Loaded volume '%s' %s from %s", node.GetName(), node.GetImageData().GetDimensions(), path)
    return node


def _addArchetypeVolume(volumesLogic, archetype, name, loadingOptions, fileList):
    """vtkSlicerVolumesLogic.AddArchetypeVolume with a message collection where it takes one (slicer-core 5.13);
    slicer-core 5.11 (the one trame-slicer supports, for the web front end) has only the four-argument form."""
    try:
        return volumesLogic.AddArchetypeVolume(archetype, name, loadingOptions, fileList,
                                               slicer.vtkMRMLMessageCollection())
    except TypeError:  # "no overloads ... take 5 arguments"
        return volumesLogic.AddArchetypeVolume(archetype, name, loadingOptions, fileList)


def writeNode(storageNode, node, path, what):
    """Write a node with a (compressing) storage node, creating the folder; the file appears complete or not at
    all (written to a temporary name beside it, then renamed). ValueError when writing fails."""
    path = os.fspath(path)
    with atomicOutput(path) as temporary:
        storageNode.SetFileName(temporary)
        storageNode.SetUseCompression(True)
        with quietVtkErrors():
            written = storageNode.WriteData(node)
        if not written:
            raise ValueError(f"Could not write {what} '{node.GetName()}' to '{path}'")
    return path


def saveVolume(volumeNode, path):
    """Write a volume node (NRRD, NIfTI, MHA by file extension)."""
    return writeNode(slicer.vtkMRMLVolumeArchetypeStorageNode(), volumeNode, path, "volume")


def _baseName(path):
    base = os.path.basename(os.path.normpath(path))
    for extension in (".seg.nrrd",) + VOLUME_EXTENSIONS:
        if base.lower().endswith(extension):
            return base[: -len(extension)]
    return base
