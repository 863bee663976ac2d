"""The Watershed tool (edge-based): the segments given are the markers; the gradient magnitude of the source volume is
flooded from them and each segment receives its basin (within the editable area, one undo state)."""

import logging
import time

import numpy as np
import slicer

from ...Geometry import arrayFromImage, croppedLabelmap
from ...Options import Option
from ...SegmentEditing import requireSegment, requireVolume
from ..Tool import ClassicTool, requireFiniteVoxels
from . import Watershed


def segmentName(segmentationNode, segmentId):
    return segmentationNode.GetSegmentation().GetSegment(segmentId).GetName()


def volumeRegion(sourceImage, volumeNode):
    """KJI slices of the volume's own voxels in the aligned source image (the segment editor pads that image to
    cover segments that reach beyond the volume)."""
    aligned, own = sourceImage.GetExtent(), volumeNode.GetImageData().GetExtent()
    return tuple(slice(own[2 * axis] - aligned[2 * axis], own[2 * axis + 1] - aligned[2 * axis] + 1)
                 for axis in (2, 1, 0))


def markerArray(inputs, segmentId, region):
    """KJI 0/1 array of one marker segment on the volume's voxels (region of the aligned source image); ValueError
    when it is empty or lies outside the volume."""
    own = slicer.vtkOrientedImageData()
    inputs.segmentationNode.GetBinaryLabelmapRepresentation(segmentId, own)
    name = segmentName(inputs.segmentationNode, segmentId)
    if own.IsEmpty() or own.GetPointData().GetScalars() is None or own.GetScalarRange()[1] == 0:
        raise ValueError(f"Marker segment '{name}' is empty: paint seeds in it first")
    array = inputs.segmentEditor.segmentLabelmapArray(inputs.segmentationNode, segmentId, inputs.volumeNode)[region]
    if not array.any():
        raise ValueError(f"Marker segment '{name}' lies outside volume '{inputs.volumeNode.GetName()}': paint its "
                         "seeds inside the volume")
    return array


class WatershedTool(ClassicTool):
    name = "watershed"
    title = "Watershed"
    help = ("Edge-based: the seed segments (the visible segments in the panel, two or more: the structures and their "
            "surroundings) are markers that flood the source volume's gradient magnitude; each segment receives its "
            "basin. Object scale: the gradient's smoothing (larger = fewer, smoother edges).")
    options = (
        Option("objectScaleMm", "float", 2.0, "smoothing of the gradient magnitude (Gaussian sigma)", unit="mm",
               minimum=0.0, minimumInclusive=False, flag="object-scale", title="Object scale"),
    )
    needs = ("seedSegments",)

    def run(self, inputs, objectScaleMm=2.0, **ignored):
        """Flood from the markers and write each segment's basin ("set", one undo state); returns the seconds the
        watershed took."""
        segmentIds = list(inputs.seedSegmentIds)
        if len(segmentIds) < 2:
            raise ValueError(f"Watershed needs at least two marker segments (got {len(segmentIds)}): one for the "
                             "structure and one for its surroundings")
        if len(set(segmentIds)) != len(segmentIds):
            raise ValueError("Each marker segment may be listed only once")
        if not objectScaleMm > 0:
            raise ValueError(f"objectScaleMm (gradient smoothing) must be above 0 mm, got {objectScaleMm}")
        requireVolume(inputs.volumeNode)
        for segmentId in segmentIds:
            requireSegment(inputs.segmentationNode, segmentId)
        requireFiniteVoxels(inputs.volumeNode, "Watershed")
        sourceImage = inputs.segmentEditor.bind(inputs.segmentationNode, inputs.volumeNode)
        region = volumeRegion(sourceImage, inputs.volumeNode)
        markers = None
        for label, segmentId in enumerate(segmentIds, start=1):
            array = markerArray(inputs, segmentId, region)
            markers = np.zeros(array.shape, np.uint16) if markers is None else markers
            markers[array != 0] = label  # a later marker wins where two overlap
        start = time.perf_counter()
        labels, box = Watershed.watershedArray(arrayFromImage(sourceImage)[region], markers, sourceImage.GetSpacing(),
                                               objectScaleMm)
        seconds = time.perf_counter() - start
        box = tuple((lo + part.start, hi + part.start) for (lo, hi), part in zip(box, region))
        logging.info("Watershed of %d markers on box %s computed in %.2f s", len(segmentIds), box, seconds)
        labelmaps = {segmentId: croppedLabelmap(sourceImage, box, (labels == label).astype(np.uint8))
                     for label, segmentId in enumerate(segmentIds, start=1)}
        inputs.segmentEditor.modifySegments(inputs.segmentationNode, inputs.volumeNode, labelmaps, "set")
        return seconds
