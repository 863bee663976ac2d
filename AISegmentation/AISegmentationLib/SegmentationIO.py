"""Segmentations in and out: ``.seg.nrrd`` files, label-map images with a label name table, label-map export.

Label values: Slicer's label-map import keeps values 1..65535 as segment label values; it silently drops negative
values and cannot take very large ones (its histogram is allocated up to the largest value). Such values are
imported too: each gets an unused label value in 1..65535 and its segment keeps the source value in the tag
"AISegmentation.sourceLabelValue" and in its default name ("Label -3"); a label-map export writes the source values
back when they fit a 32-bit integer.
"""

import json
import logging
import os

import numpy as np
import slicer
import vtk

from .AtomicWrite import writeText
from .FileIntegrity import requireWholeImageFile
from .Segments import distinctColor
from .VolumeIO import _nodeIds, loadVolume, quietVtkErrors, removeNodesAddedSince, saveVolume, writeNode

SOURCE_LABEL_VALUE_TAG = "AISegmentation.sourceLabelValue"
MAX_DIRECT_LABEL_VALUE = 65535
INT32_RANGE = (-(2**31), 2**31 - 1)


def readLabelNames(source):
    """Label name table {int value: name} from a dict, a JSON file ({"1": "spleen", ...}) or "1=spleen,2=liver"."""
    if source is None:
        return {}
    if isinstance(source, dict):
        table = source
    elif os.path.isfile(os.fspath(source)):
        table = _readLabelNamesFile(os.fspath(source))
    elif str(source).lower().endswith(".json"):
        raise ValueError(f"Label names file '{source}' does not exist")
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


def _readLabelNamesFile(path):
    try:
        with open(path, encoding="utf-8") as file:
            table = json.load(file)
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"Label names file '{path}' is not valid JSON: {error}") from None
    except OSError as error:
        raise ValueError(f"Cannot read label names file '{path}': {error.strerror or error}") from None
    if not isinstance(table, dict):
        raise ValueError(f"Label names file '{path}' must hold a JSON object such as {{\"1\": \"spleen\"}}, "
                         f"not a {type(table).__name__}")
    return table


def loadSegmentation(runtime, path, name=None):
    """Load a segmentation file (.seg.nrrd, .nrrd, .vtm ...) into a new segmentation node."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"Segmentation file '{path}' does not exist")
    requireWholeImageFile(path)  # a regular file (never a FIFO: it would block), whole, within the size budget
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
    ({value: name}; unnamed labels get "Label <value>"). Label values are kept as the segments' label values
    (values outside 1..65535 get unused ones, their source value kept: see the module docstring)."""
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


def _remapUnsafeLabelValues(labelmapNode):
    """Give label values Slicer cannot import (negative, above 65535) unused values in 1..65535, in the (temporary)
    label map node itself. Returns {imported value: source value} for the remapped ones."""
    labels = slicer.util.arrayFromVolume(labelmapNode)
    values = np.unique(labels)
    unsafe = [v for v in values if v < 0 or v > MAX_DIRECT_LABEL_VALUE]
    if not unsafe and labels.dtype.itemsize <= 4 and np.issubdtype(labels.dtype, np.integer):
        return {}
    kept = {int(v) for v in values if 0 < v <= MAX_DIRECT_LABEL_VALUE}
    free = (value for value in range(1, MAX_DIRECT_LABEL_VALUE + 1) if value not in kept)
    mapping = {}
    for value in unsafe:
        target = next(free, None)
        if target is None:
            raise ValueError(f"Label map '{labelmapNode.GetName()}' has more distinct label values than a "
                             f"segmentation can hold ({MAX_DIRECT_LABEL_VALUE})")
        mapping[target] = int(value)
    lookup = np.array([0 if v == 0 else int(v) if 0 < v <= MAX_DIRECT_LABEL_VALUE else 0 for v in values], np.int64)
    for target, source in mapping.items():
        lookup[np.searchsorted(values, source)] = target
    remapped = lookup[np.searchsorted(values, labels)]
    slicer.util.updateVolumeFromArray(labelmapNode, remapped.astype(np.uint16))
    logging.warning("Label map '%s': label values %s are outside 1..%d; imported as label values %s (the source "
                    "value is kept in each segment's name and its '%s' tag)", labelmapNode.GetName(),
                    sorted(mapping.values()), MAX_DIRECT_LABEL_VALUE, sorted(mapping), SOURCE_LABEL_VALUE_TAG)
    return mapping


def labelmapNodeToSegmentation(runtime, labelmapNode, labelNames, name, segmentationNode=None):
    """Import a label map volume node: Slicer keeps each label value as its segment's label value; segments are
    named from labelNames ({value: name}, "Label <value>" otherwise) and get distinct colours. Values outside
    1..65535 are imported under unused values (see the module's docstring), never dropped."""
    sourceValues = _remapUnsafeLabelValues(labelmapNode)
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
        sourceValue = sourceValues.get(value, value)
        if value in sourceValues:
            segment.SetTag(SOURCE_LABEL_VALUE_TAG, str(sourceValue))
        segment.SetName(labelNames.get(sourceValue, f"Label {sourceValue}"))
        segment.SetColor(*distinctColor(value))
    return segmentationNode


def saveSegmentation(segmentationNode, path):
    """Write a segmentation node to a .seg.nrrd file (names, colours, label values, tags are kept)."""
    path = os.fspath(path)
    if not path.lower().endswith((".seg.nrrd", ".nrrd")):
        raise ValueError(f"Segmentation files are written as .seg.nrrd, got '{path}'")
    return writeNode(slicer.vtkMRMLSegmentationStorageNode(), segmentationNode, path, "segmentation")


def _exportValue(segment, order):
    """The value a segment is exported with: its source label value (an imported negative or large value) when
    that fits a 32-bit label map, else its label value, else its 1-based order."""
    tag = vtk.reference("")
    try:
        source = int(str(tag)) if segment.GetTag(SOURCE_LABEL_VALUE_TAG, tag) else None
    except ValueError:
        source = None
    if source is not None and source != 0 and INT32_RANGE[0] <= source <= INT32_RANGE[1]:
        return source
    if source is not None:
        logging.warning("Segment '%s': its source label value %s does not fit a 32-bit label map; exported as %d",
                        segment.GetName(), source, segment.GetLabelValue())
    return segment.GetLabelValue() if segment.GetLabelValue() > 0 else order


def segmentationLabelArray(segmentationNode, referenceVolumeNode, segmentIds=None):
    """KJI label array on the reference volume's grid; each segment gets its label value (its source value for
    segments imported from negative or large values; its 1-based order when the value is shared or unset).
    The array is uint16 when every value fits, int32 otherwise. Returns (labels, {value: name})."""
    segmentation = segmentationNode.GetSegmentation()
    segmentIds = list(segmentIds or segmentation.GetSegmentIDs())
    shape = slicer.util.arrayFromVolume(referenceVolumeNode).shape
    values, used = [], set()
    for order, segmentId in enumerate(segmentIds, start=1):
        value = _exportValue(segmentation.GetSegment(segmentId), order)
        if value in used:
            value = max(used) + 1
        used.add(value)
        values.append(value)
    fitsUint16 = all(0 < value <= MAX_DIRECT_LABEL_VALUE for value in values)
    labels = np.zeros(shape, np.uint16 if fitsUint16 else np.int32)
    names = {}
    for segmentId, value in zip(segmentIds, values):
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, referenceVolumeNode)
        if mask is None:
            continue
        labels[mask != 0] = value
        names[value] = segmentation.GetSegment(segmentId).GetName()
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
    writeText(labelNamesPath(path), json.dumps({str(k): v for k, v in sorted(names.items())}, indent=1))
    return os.fspath(path), names


def labelNamesPath(labelmapPath):
    return os.fspath(labelmapPath) + ".labels.json"
