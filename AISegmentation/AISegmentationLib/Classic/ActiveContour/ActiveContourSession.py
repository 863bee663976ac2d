"""An active contour preview on one segment, as grow from seeds' session: update() computes the contour from the
segment's current content, previewArray() shows it, apply() writes it into the segment (one undo state), cancel()
writes nothing."""

import logging
import time

import numpy as np
import slicer

from ...Geometry import arrayFromImage, croppedLabelmap
from ...SegmentEditing import requireSegment, requireVolume
from ...Validation import requireInteger, requireNumber
from ..Tool import requireFiniteVoxels
from . import ActiveContour

DEFAULTS = {"propagation": 0.0, "curvature": 1.0, "advection": 1.0, "iterations": 100, "edgeScaleMm": 2.0,
            "edgeStrength": None}
MAXIMUM_ITERATIONS = 100000


def validatedOptions(propagation=0.0, curvature=1.0, advection=1.0, iterations=100, edgeScaleMm=2.0,
                     edgeStrength=None):
    """The options as numbers, or a ValueError naming the first bad one."""
    options = {
        "propagation": requireNumber("propagation (expansion > 0, shrinking < 0)", propagation),
        "curvature": requireNumber("curvature (smoothness weight)", curvature, minimum=0),
        "advection": requireNumber("advection (attraction to edges)", advection, minimum=0),
        "iterations": requireInteger("iterations", iterations, 1, MAXIMUM_ITERATIONS),
        "edgeScaleMm": requireNumber("edgeScaleMm (gradient smoothing)", edgeScaleMm, minimum=0,
                                     minimumInclusive=False, unit="mm"),
        "edgeStrength": None if edgeStrength is None else requireNumber(
            "edgeStrength (gradient magnitude where the speed halves)", edgeStrength, minimum=0,
            minimumInclusive=False),
    }
    return options


class ActiveContourSession:
    """One geodesic active contour preview started from a segment; see ActiveContourTool."""

    def __init__(self, segmentEditor, segmentationNode, sourceVolumeNode, segmentId, **options):
        self.options = validatedOptions(**options)
        requireVolume(sourceVolumeNode)
        requireSegment(segmentationNode, segmentId)
        requireFiniteVoxels(sourceVolumeNode, "Active contour")
        self.segmentEditor = segmentEditor
        self.segmentationNode = segmentationNode
        self.sourceVolumeNode = sourceVolumeNode
        self.segmentId = segmentId
        self.seedSegmentIds = [segmentId]  # what the preview node shows (Logic.showClassicPreview)
        self.preview = None  # (KJI 0/1 array of the box, box) of the last update
        self.lastInfo = None
        self.lastComputationSeconds = None
        self._sourceImage = self._region = None
        self.update()

    def setOptions(self, **options):
        """Change options (validated; the others keep their values); they take effect at the next update()."""
        unknown = set(options) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"Unknown active contour option(s) {', '.join(sorted(unknown))}; known: "
                             f"{', '.join(DEFAULTS)}")
        self.options = validatedOptions(**{**self.options, **options})

    def _volumeRegion(self, sourceImage):
        """KJI slices of the volume's own voxels in the aligned source image (the segment editor pads that image to
        cover segments that reach beyond the volume)."""
        aligned, own = sourceImage.GetExtent(), self.sourceVolumeNode.GetImageData().GetExtent()
        return tuple(slice(own[2 * axis] - aligned[2 * axis], own[2 * axis + 1] - aligned[2 * axis] + 1)
                     for axis in (2, 1, 0))

    def _startMask(self, region):
        own = slicer.vtkOrientedImageData()
        self.segmentationNode.GetBinaryLabelmapRepresentation(self.segmentId, own)
        name = self.segmentationNode.GetSegmentation().GetSegment(self.segmentId).GetName()
        if own.IsEmpty() or own.GetPointData().GetScalars() is None or own.GetScalarRange()[1] == 0:
            raise ValueError(f"Segment '{name}' is empty: the active contour starts from a segment's content; "
                             "segment the structure roughly first")
        mask = self.segmentEditor.segmentLabelmapArray(self.segmentationNode, self.segmentId,
                                                       self.sourceVolumeNode)[region]
        if not mask.any():
            raise ValueError(f"Segment '{name}' lies outside volume '{self.sourceVolumeNode.GetName()}'")
        return mask

    def update(self):
        """Recompute the contour from the segment's current content and the current options."""
        sourceImage = self.segmentEditor.bind(self.segmentationNode, self.sourceVolumeNode)
        region = self._volumeRegion(sourceImage)
        mask = self._startMask(region)
        start = time.perf_counter()
        result, box, info = ActiveContour.activeContourArray(arrayFromImage(sourceImage)[region], mask,
                                                             sourceImage.GetSpacing(), **self.options)
        box = tuple((lo + part.start, hi + part.start) for (lo, hi), part in zip(box, region))
        self.lastComputationSeconds = time.perf_counter() - start
        self._sourceImage, self._region = sourceImage, region
        self.preview = (result, box)
        self.lastInfo = info
        logging.info("Active contour: %d iterations on box %s in %.2f s (edge strength %.3g)", info["iterations"], box,
                     self.lastComputationSeconds, info["edgeStrength"])
        return self.preview

    def _requireOpen(self):
        if self.preview is None:
            raise ValueError("The active contour was cancelled or applied; start a new one")

    def previewLabelmap(self, segmentId=None):
        """Binary labelmap (the contour's box) of the result."""
        self._requireOpen()
        result, box = self.preview
        return croppedLabelmap(self._sourceImage, box, result)

    def previewArray(self, segmentId=None):
        """KJI 0/1 array of the result on the source volume's grid."""
        self._requireOpen()
        result, box = self.preview
        full = np.zeros(self._sourceImage.GetDimensions()[::-1], np.uint8)
        full[tuple(slice(lo, hi) for lo, hi in box)] = result
        return full[self._region].copy()

    def apply(self):
        """Write the result into the segment ("set" within the contour's box, masking honoured, one undo state)."""
        labelmap = self.previewLabelmap()
        self.segmentEditor.modifySegments(self.segmentationNode, self.sourceVolumeNode, {self.segmentId: labelmap},
                                          "set")
        self.cancel()

    def cancel(self):
        """Drop the preview; the segmentation is left as it was."""
        self.preview = None
        self._sourceImage = self._region = None
