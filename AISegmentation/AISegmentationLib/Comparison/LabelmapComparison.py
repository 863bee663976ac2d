"""Comparison of two label-map files by label value (or by the names of label tables), without segmentation nodes.

Each file is read once into a temporary label-map volume node; its voxels are one layer of its side (see
:mod:`SegmentComparisonLayers`), placed on the reference label map's lattice (the compared one resampled, nearest
neighbour, only when its voxels are not reference voxels). Every nonzero value is a segment, named from the label
table or "Label <value>" as a label-map import names it; negative and large values are compared as they are. The
temporary nodes are removed afterwards.
"""

import logging

import numpy as np

from ..Geometry import volumeImage
from ..SegmentationIO import readLabelNames
from ..VolumeIO import _nodeIds, loadVolume, removeNodesAddedSince
from . import SegmentComparisonLayers
from .LabelMatching import matchStructures, readLabelMapping, resolveMatch
from .SegmentComparison import allLabelBoundingBoxes

def compareLabelmapFiles(runtime, referencePath, comparedPath, referenceLabels=None, comparedLabels=None,
                         match=None, progressCallback=None, mapping=None, **options):
    """Rows of compareSegmentations for two label-map images (NIfTI, NRRD, MHA). ``referenceLabels`` /
    ``comparedLabels``: name tables ({1: "spleen"}, JSON file or "1=a,2=b"); ``match``: "value", "name" or "auto"
    (the default: by name when both sides have a name table or a mapping is given, else by value); ``mapping``: a
    label mapping (LabelMatching.readLabelMapping: file, dict); options as SegmentComparison.compareMasks."""
    mapping = readLabelMapping(mapping)
    referenceNames, comparedNames = readLabelNames(referenceLabels), readLabelNames(comparedLabels)
    match = resolveMatch(match, bool(referenceNames), bool(comparedNames), mapping)
    scene = runtime.scene
    before = _nodeIds(scene)
    try:
        referenceNode = loadVolume(runtime, referencePath, labelmap=True)
        comparedNode = loadVolume(runtime, comparedPath, labelmap=True)
        geometry = volumeImage(referenceNode, shareVoxels=True)
        referenceTransform = referenceNode.GetParentTransformNode()
        sides = [_labelmapSide(node, names, geometry, referenceTransform, path) for node, names, path in
                 ((referenceNode, referenceNames, referencePath), (comparedNode, comparedNames, comparedPath))]
        pairs = matchStructures(*({value: (segment.name, value) for value, segment in side.segments.items()}
                                  for side in sides), match, mapping)
        if not pairs:
            raise ValueError(f"No labels to compare: '{referencePath}' and '{comparedPath}' are both empty")
        if all(None in pair[:2] for pair in pairs):
            logging.warning("No label %s in common between '%s' and '%s': every label is a row of its side only",
                            "values" if match == "value" else "names", referencePath, comparedPath)
        return SegmentComparisonLayers.compareSides(*sides, pairs, SegmentComparisonLayers.geometrySpacing(geometry),
                                                    progressCallback, **options)
    finally:
        removeNodesAddedSince(scene, before)


def _labelmapSide(volumeNode, names, geometry, referenceTransformNode, path):
    transform = SegmentComparisonLayers.transformBetween(volumeNode, referenceTransformNode)
    layer = SegmentComparisonLayers.placeImage(volumeImage(volumeNode, shareVoxels=True), geometry, transform,
                                               f"'{path}'")
    if layer is None:
        return SegmentComparisonLayers.Side([], {})
    if not np.issubdtype(layer.labels.dtype, np.integer):
        if not np.all(np.mod(layer.labels, 1) == 0):
            raise ValueError(f"'{path}' is not a label map: it has non-integer voxel values")
        layer.labels = layer.labels.astype(np.int64)
    boxes = allLabelBoundingBoxes(layer.labels)
    layer.boxes = {value: [(low + offset, high + offset) for (low, high), offset in zip(box, layer.offset)]
                   for value, box in boxes.items()}
    missing = sorted(set(names) - set(boxes))
    if missing:
        logging.warning("Label values %s named in the table are absent from %s", missing, path)
    segments = {value: SegmentComparisonLayers.SideSegment(names.get(value, f"Label {value}"), 0, value)
                for value in boxes}
    return SegmentComparisonLayers.Side([layer], segments)

