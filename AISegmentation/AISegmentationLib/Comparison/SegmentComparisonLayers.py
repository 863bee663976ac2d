"""Segments of two sides on one lattice, cut out pair by pair, for the comparison engine.

A side is a set of label layers: the shared labelmap layers of a segmentation node (vtkSegmentation keeps several
segments per layer, each by its label value) or one label-map volume. Each layer is read once, as a view of its
voxels, and placed on the reference geometry's lattice: when its geometry (and the transform between the sides) maps
its voxels onto reference voxels it is only offset, otherwise it is resampled (nearest neighbour) once. Every
segment's bounding box comes from one scipy.ndimage.find_objects pass per layer; a pair is compared on the union of
its two boxes, read slab by slab (SegmentComparison.compareMaskSlabs), so no segment is ever copied at full size.
Outside a box there is no voxel of the segment, and the engine treats outside the array as background: the metrics
are those of the full grid.
"""

import dataclasses
import logging

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from . import SegmentComparison

# A layer whose voxel coordinates map onto reference voxel coordinates within this (voxels) is only offset.
_LATTICE_TOLERANCE = 1e-4


@dataclasses.dataclass
class PlacedLayer:
    """Label voxels (KJI numpy view) whose [0, 0, 0] lies at ``offset`` (KJI) of the reference lattice."""

    labels: np.ndarray
    offset: tuple
    image: object = None  # the image that owns the voxels (kept alive with the view)
    boxes: dict = dataclasses.field(default_factory=dict)  # label value -> [(lo, hi)] on the reference lattice


@dataclasses.dataclass
class SideSegment:
    name: str
    layer: int  # index into Side.layers, or None for an empty segment
    labelValue: int


@dataclasses.dataclass
class Side:
    layers: list
    segments: dict  # key (segment ID or label value) -> SideSegment


def referenceGeometry(segmentationNode):
    """The reference image geometry of a segmentation (its common labelmap geometry when it has none)."""
    segmentation = segmentationNode.GetSegmentation()
    geometryString = segmentation.GetConversionParameter(
        slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName())
    if not geometryString:
        geometryString = segmentation.DetermineCommonLabelmapGeometry(slicer.vtkSegmentation.EXTENT_UNION_OF_SEGMENTS,
                                                                      None)
    geometry = slicer.vtkOrientedImageData()
    slicer.vtkSegmentationConverter.DeserializeImageGeometry(geometryString, geometry, False)
    return geometry


def geometrySpacing(geometry):
    """Spacing (mm) in array-axis (KJI) order."""
    return tuple(geometry.GetSpacing()[::-1])


def _matrixArray(matrix):
    return np.array([[matrix.GetElement(row, column) for column in range(4)] for row in range(4)])


def _imageToWorld(image):
    matrix = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(matrix)
    return _matrixArray(matrix)


def transformBetween(node, referenceTransformNode):
    """vtkGeneralTransform from the node's parent transform to the reference's (world to world)."""
    transform = vtk.vtkGeneralTransform()
    slicer.vtkMRMLTransformNode.GetTransformBetweenNodes(node.GetParentTransformNode(), referenceTransformNode,
                                                         transform)
    return transform


def _latticeOffset(image, geometry, transform):
    """Reference IJK of the image's IJK origin when its voxels are reference voxels, else None (different spacing,
    orientation, a sub-voxel shift, a non-linear transform)."""
    linear = vtk.vtkTransform()
    if not slicer.vtkMRMLTransformNode.IsGeneralTransformLinear(transform, linear):
        return None
    worldToWorld = _matrixArray(linear.GetMatrix())
    imageToReference = np.linalg.inv(_imageToWorld(geometry)) @ worldToWorld @ _imageToWorld(image)
    translation = imageToReference[:3, 3]
    rounded = np.round(translation)
    if (np.abs(imageToReference[:3, :3] - np.eye(3)).max() > _LATTICE_TOLERANCE
            or np.abs(translation - rounded).max() > _LATTICE_TOLERANCE):
        return None
    return rounded.astype(int)


def _voxelView(image):
    """KJI numpy view of a single-component image's voxels (no copy)."""
    scalars = image.GetPointData().GetScalars()
    if scalars.GetNumberOfComponents() != 1:
        raise ValueError(f"A label layer must have one component, got {scalars.GetNumberOfComponents()}")
    dimensions = image.GetDimensions()
    return numpy_support.vtk_to_numpy(scalars).reshape(dimensions[::-1])


def placeImage(image, geometry, transform, what):
    """PlacedLayer of a label image (vtkOrientedImageData) on the geometry's lattice, or None when it is empty.

    Resampled (nearest neighbour, padded so that nothing is cut off) only when its voxels are not reference voxels.
    """
    if image is None or image.IsEmpty() or image.GetPointData().GetScalars() is None:
        return None
    ijkOffset = _latticeOffset(image, geometry, transform)
    if ijkOffset is None:
        logging.info("Resampling %s onto the reference geometry", what)
        resampled = slicer.vtkOrientedImageData()
        if not slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
                image, geometry, resampled, False, True, transform):
            raise ValueError(f"Could not resample {what} onto the reference geometry")
        image = resampled
        ijkOffset = _latticeOffset(image, geometry, vtk.vtkGeneralTransform())
        if ijkOffset is None or image.IsEmpty():
            raise ValueError(f"Could not place {what} on the reference geometry")
    extent = image.GetExtent()
    start = [ijkOffset[axis] + extent[2 * axis] for axis in range(3)]
    return PlacedLayer(_voxelView(image), tuple(start[::-1]), image)


def findBoxes(layer, labelValues):
    """Fill layer.boxes for these label values (one find_objects pass), on the reference lattice."""
    missing = [value for value in labelValues if value not in layer.boxes]
    if not missing:
        return
    for value, box in SegmentComparison.labelBoundingBoxes(layer.labels, missing).items():
        layer.boxes[value] = None if box is None else [(low + offset, high + offset) for (low, high), offset
                                                        in zip(box, layer.offset)]


def segmentationSide(segmentationNode, segmentIds, geometry, referenceTransformNode):
    """Side of the given segments of a segmentation node: its shared labelmap layers, each read once."""
    segmentation = segmentationNode.GetSegmentation()
    transform = transformBetween(segmentationNode, referenceTransformNode)
    labelmapName = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    if not segmentation.ContainsRepresentation(labelmapName):
        return _perSegmentSide(segmentationNode, segmentIds, geometry, transform)
    layers, layerIndices, segments = [], {}, {}
    for segmentId in segmentIds:
        segment = segmentation.GetSegment(segmentId)
        layerIndex = segmentation.GetLayerIndex(segmentId)
        if layerIndex not in layerIndices:
            image = segmentation.GetLayerDataObject(layerIndex)
            layers.append(placeImage(image, geometry, transform,
                                     f"layer {layerIndex} of '{segmentationNode.GetName()}'"))
            layerIndices[layerIndex] = len(layers) - 1
        placedIndex = layerIndices[layerIndex]
        segments[segmentId] = SideSegment(segment.GetName(), None if layers[placedIndex] is None else placedIndex,
                                          segment.GetLabelValue())
    _findAllBoxes(layers, segments)
    return Side(layers, segments)


def _perSegmentSide(segmentationNode, segmentIds, geometry, transform):
    """Side of a segmentation without a labelmap representation: each segment's labelmap converted on its own."""
    layers, segments = [], {}
    for segmentId in segmentIds:
        image = slicer.vtkOrientedImageData()
        segmentationNode.GetBinaryLabelmapRepresentation(segmentId, image)
        layer = placeImage(image, geometry, transform, f"segment '{segmentId}'")
        if layer is not None:
            layer.labels = (layer.labels != 0).view(np.uint8)  # a binary labelmap: any nonzero voxel is inside
        layers.append(layer)
        name = segmentationNode.GetSegmentation().GetSegment(segmentId).GetName()
        segments[segmentId] = SideSegment(name, None if layers[-1] is None else len(layers) - 1, 1)
    _findAllBoxes(layers, segments)
    return Side(layers, segments)


def _findAllBoxes(layers, segments):
    for index, layer in enumerate(layers):
        if layer is not None:
            findBoxes(layer, [s.labelValue for s in segments.values() if s.layer == index])


def _segmentBox(side, key):
    segment = side.segments[key]
    return None if segment.layer is None else side.layers[segment.layer].boxes[segment.labelValue]


def _maskOnRegion(side, key, region):
    """Boolean mask of a segment on region ([(lo, hi)] KJI on the reference lattice)."""
    mask = np.zeros([high - low for low, high in region], bool)
    segment = side.segments[key]
    if segment.layer is None:
        return mask
    layer = side.layers[segment.layer]
    source, target = [], []
    for axis, (low, high) in enumerate(region):
        start = max(low, layer.offset[axis])
        stop = min(high, layer.offset[axis] + layer.labels.shape[axis])
        if start >= stop:
            return mask
        source.append(slice(start - layer.offset[axis], stop - layer.offset[axis]))
        target.append(slice(start - low, stop - low))
    np.equal(layer.labels[tuple(source)], segment.labelValue, out=mask[tuple(target)])
    return mask


class _RegionMask:
    """A segment's mask on a region, read slab by slab (``[start:stop]`` along axis 0) for compareMaskSlabs."""

    def __init__(self, side, key, region):
        self.side, self.key, self.region = side, key, region
        self.shape = tuple(high - low for low, high in region)

    def __getitem__(self, index):
        start, stop, _ = index.indices(self.shape[0])
        low = self.region[0][0]
        return _maskOnRegion(self.side, self.key, [(low + start, low + stop)] + list(self.region[1:]))


def _pairRegion(referenceSide, referenceKey, comparedSide, comparedKey):
    """Union of the two segments' bounding boxes, or None when both are empty."""
    boxes = [box for box in (_segmentBox(referenceSide, referenceKey), _segmentBox(comparedSide, comparedKey))
             if box is not None]
    if not boxes:
        return None
    return [(min(box[axis][0] for box in boxes), max(box[axis][1] for box in boxes)) for axis in range(3)]


def pairMasks(referenceSide, referenceKey, comparedSide, comparedKey):
    """(reference mask, compared mask) on the union of the two segments' bounding boxes (1 voxel when both are
    empty)."""
    region = _pairRegion(referenceSide, referenceKey, comparedSide, comparedKey)
    if region is None:
        return np.zeros((1, 1, 1), bool), np.zeros((1, 1, 1), bool)
    return _maskOnRegion(referenceSide, referenceKey, region), _maskOnRegion(comparedSide, comparedKey, region)


def pairRegionMasks(referenceSide, referenceKey, comparedSide, comparedKey):
    """(region [(lo, hi)] KJI on the reference lattice, reference mask, compared mask) on the union of the two
    segments' bounding boxes; a key of None (the side lacks the structure) is an empty mask; None when both are
    empty."""
    boxes = [_segmentBox(side, key) for side, key in ((referenceSide, referenceKey), (comparedSide, comparedKey))
             if key is not None]
    boxes = [box for box in boxes if box is not None]
    if not boxes:
        return None
    region = [(min(box[axis][0] for box in boxes), max(box[axis][1] for box in boxes)) for axis in range(3)]
    masks = [np.zeros([high - low for low, high in region], bool) if key is None else _maskOnRegion(side, key, region)
             for side, key in ((referenceSide, referenceKey), (comparedSide, comparedKey))]
    return region, masks[0], masks[1]


def _pairMaskSlabs(referenceSide, referenceKey, comparedSide, comparedKey):
    region = _pairRegion(referenceSide, referenceKey, comparedSide, comparedKey)
    if region is None:
        return np.zeros((1, 1, 1), bool), np.zeros((1, 1, 1), bool)
    return _RegionMask(referenceSide, referenceKey, region), _RegionMask(comparedSide, comparedKey, region)


def segmentVoxels(side, key):
    """Voxel count of a segment (read on its bounding box only)."""
    box = _segmentBox(side, key)
    return 0 if box is None else int(np.count_nonzero(_maskOnRegion(side, key, box)))


def _segmentName(side, key):
    return None if key is None else side.segments[key].name


def compareSides(referenceSide, comparedSide, pairs, spacing, progressCallback=None, **options):
    """Rows (dicts: referenceSegment, comparedSegment names, "structure", "result": ComparisonResult) of the key
    pairs ((reference key, compared key) or (reference key, compared key, structure name); the structure defaults to
    the reference segment's name, else the compared one's).

    A key of None is a structure the side does not have: its row holds the metrics of an empty mask there (from the
    other segment's voxel count alone, nothing else is computed) and its name is None."""
    rows = []
    for index, pair in enumerate(pairs):
        referenceKey, comparedKey = pair[:2]
        referenceName = _segmentName(referenceSide, referenceKey)
        comparedName = _segmentName(comparedSide, comparedKey)
        structure = pair[2] if len(pair) > 2 else referenceName if referenceName is not None else comparedName
        if progressCallback:
            progressCallback(index / len(pairs), f"Comparing {referenceName} with {comparedName}")
        if referenceKey is None or comparedKey is None:
            present, key = (referenceSide, referenceKey) if comparedKey is None else (comparedSide, comparedKey)
            result = SegmentComparison.absentStructureResult(segmentVoxels(present, key), spacing,
                                                             "compared" if comparedKey is None else "reference",
                                                             **options)
            logging.info("%s: %s", referenceName or comparedName, result.note)
        else:
            reference, compared = _pairMaskSlabs(referenceSide, referenceKey, comparedSide, comparedKey)
            result = SegmentComparison.compareMaskSlabs(reference, compared, spacing, **options)
            SegmentComparison.releaseFreedMemory()
            logging.info("%s vs %s: Dice %.4f, HD95 %.2f mm", referenceName, comparedName, result.dice,
                         result.hausdorff95)
        rows.append({"referenceSegment": referenceName, "comparedSegment": comparedName, "structure": structure,
                     "result": result})
    if progressCallback:
        progressCallback(1.0, f"Compared {len(rows)} segment pairs")
    return rows
