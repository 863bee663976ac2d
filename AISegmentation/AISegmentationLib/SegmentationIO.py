"""Segmentations in and out: ``.seg.nrrd`` files, label-map images with a label name table, label-map export."""

import json
import logging
import os

import numpy as np
import slicer

from .Segments import distinctColor
from .VolumeIO import _nodeIds, loadVolume, quietVtkErrors, removeNodesAddedSince, saveVolume, writeNode


def readLabelNames(source):
    """Label name table {int value: name} from a dict, a JSON file ({"1": "spleen", ...}) or "1=spleen,2=liver"."""
    if source is None:
        return {}
    if isinstance(source, dict):
        table = source
    elif os.path.isfile(os.fspath(source)):
        with open(source, encoding="utf-8") as file:
            table = json.load(file)
    else:
        try:
            table = dict(item.split("=", 1) for item in str(source).split(",") if item.strip())
        except ValueError:
            raise ValueError(f"Label names must be a JSON file or 'value=name,...', got '{source}'") from None
    try:
        names = {int(value): str(name).strip() for value, name in table.items()}
    except (TypeError, ValueError):
        raise ValueError(f"Label name table keys must be integer label values, got {list(table)[:5]}") from None
    if 0 in names:
        raise ValueError("Label value 0 is background and cannot name a segment")
    return names


def loadSegmentation(runtime, path, name=None):
    """Load a segmentation file (.seg.nrrd, .nrrd, .vtm ...) into a new segmentation node."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Segmentation file '{path}' does not exist")
    _requireReadableImage(path)
    before = _nodeIds(runtime.scene)
    node = None
    try:
        with quietVtkErrors():
            node = runtime.segmentationsLogic.LoadSegmentationFromFile(path, True, name or "")
    except Exception as error:
        logging.debug("LoadSegmentationFromFile raised %s", error)
    if node is None:
        removeNodesAddedSince(runtime.scene, before)
        raise ValueError(f"Could not read a segmentation from '{path}': unsupported or corrupt file")
    return node


def _requireReadableImage(path):
    """Read the file with SimpleITK first: a corrupt NRRD can abort the process inside Slicer's reader, while
    SimpleITK raises an exception that we turn into a clear message."""
    import SimpleITK as sitk

    try:
        sitk.ReadImage(path)
    except RuntimeError as error:
        logging.debug("SimpleITK could not read %s: %s", path, error)
        raise ValueError(f"Could not read a segmentation from '{path}': unsupported or corrupt file") from None


def importLabelmap(runtime, path, labelNames=None, referenceVolumeNode=None, name=None):
    """New segmentation node from a label-map image: one segment per label value, named from labelNames
    ({value: name}; unnamed labels get "Label <value>"). Label values are kept as the segments' label values."""
    names = readLabelNames(labelNames)
    scene = runtime.scene
    before = _nodeIds(scene)
    labelmapNode = loadVolume(runtime, path, labelmap=True)
    try:
        labels = slicer.util.arrayFromVolume(labelmapNode)
        if not np.issubdtype(labels.dtype, np.integer) and not np.all(np.mod(labels, 1) == 0):
            raise ValueError(f"'{path}' is not a label map: it has non-integer voxel values")
        values = [int(v) for v in np.unique(labels) if v != 0]
        missing = sorted(set(names) - set(values))
        if missing:
            logging.warning("Label values %s named in the table are absent from %s", missing, path)
        segmentationNode = labelmapNodeToSegmentation(runtime, labelmapNode, names, name or labelmapNode.GetName())
        if referenceVolumeNode is not None:
            segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(referenceVolumeNode)
    except Exception:
        removeNodesAddedSince(scene, before)
        raise
    scene.RemoveNode(labelmapNode)
    return segmentationNode


def labelmapToSegmentation(runtime, labels, geometryVolumeNode, labelNames, name, segmentationNode=None):
    """Segments from a KJI label array on the geometry of geometryVolumeNode (one segment per nonzero value)."""
    labelmapNode = runtime.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", name + " labels")
    try:
        labelmapNode.CopyOrientation(geometryVolumeNode)
        slicer.util.updateVolumeFromArray(labelmapNode, np.ascontiguousarray(labels))
        return labelmapNodeToSegmentation(runtime, labelmapNode, labelNames, name, segmentationNode)
    finally:
        runtime.scene.RemoveNode(labelmapNode)


def labelmapNodeToSegmentation(runtime, labelmapNode, labelNames, name, segmentationNode=None):
    """Import a label map volume node: Slicer keeps each label value as its segment's label value; segments are
    named from labelNames ({value: name}, "Label <value>" otherwise) and get distinct colours."""
    if segmentationNode is None:
        segmentationNode = runtime.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
        segmentationNode.CreateDefaultDisplayNodes()
        segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(labelmapNode)
    segmentation = segmentationNode.GetSegmentation()
    before = set(segmentation.GetSegmentIDs())
    if not runtime.segmentationsLogic.ImportLabelmapToSegmentationNode(labelmapNode, segmentationNode):
        raise ValueError(f"Could not import label map '{labelmapNode.GetName()}' into a segmentation")
    for segmentId in [i for i in segmentation.GetSegmentIDs() if i not in before]:
        segment = segmentation.GetSegment(segmentId)
        value = segment.GetLabelValue()
        segment.SetName(labelNames.get(value, f"Label {value}"))
        segment.SetColor(*distinctColor(value))
    return segmentationNode


def saveSegmentation(segmentationNode, path):
    """Write a segmentation node to a .seg.nrrd file (names, colours, label values, tags are kept)."""
    path = os.fspath(path)
    if not path.lower().endswith((".seg.nrrd", ".nrrd")):
        raise ValueError(f"Segmentation files are written as .seg.nrrd, got '{path}'")
    return writeNode(slicer.vtkMRMLSegmentationStorageNode(), segmentationNode, path, "segmentation")


def segmentationLabelArray(segmentationNode, referenceVolumeNode, segmentIds=None):
    """KJI label array on the reference volume's grid; each segment gets its label value (or its 1-based order
    when the value is shared or unset). Returns (labels, {value: name})."""
    segmentation = segmentationNode.GetSegmentation()
    segmentIds = list(segmentIds or segmentation.GetSegmentIDs())
    shape = slicer.util.arrayFromVolume(referenceVolumeNode).shape
    labels = np.zeros(shape, np.uint16)
    names, used = {}, set()
    for order, segmentId in enumerate(segmentIds, start=1):
        segment = segmentation.GetSegment(segmentId)
        value = segment.GetLabelValue() if segment.GetLabelValue() > 0 else order
        if value in used:
            value = max(used) + 1
        used.add(value)
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, referenceVolumeNode)
        if mask is None:
            continue
        labels[mask != 0] = value
        names[value] = segment.GetName()
    return labels, names


def exportLabelmap(runtime, segmentationNode, referenceVolumeNode, path):
    """Write the segments as one label-map image on the reference volume's grid, plus a JSON label name table
    beside it (<path>.labels.json). Returns (path, {value: name})."""
    labels, names = segmentationLabelArray(segmentationNode, referenceVolumeNode)
    scene = runtime.scene
    labelmapNode = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", segmentationNode.GetName() + " labels")
    try:
        labelmapNode.CopyOrientation(referenceVolumeNode)
        slicer.util.updateVolumeFromArray(labelmapNode, labels)
        saveVolume(labelmapNode, path)
    finally:
        scene.RemoveNode(labelmapNode)
    with open(labelNamesPath(path), "w", encoding="utf-8") as file:
        json.dump({str(k): v for k, v in sorted(names.items())}, file, indent=1)
    return os.fspath(path), names


def labelNamesPath(labelmapPath):
    return os.fspath(labelmapPath) + ".labels.json"
