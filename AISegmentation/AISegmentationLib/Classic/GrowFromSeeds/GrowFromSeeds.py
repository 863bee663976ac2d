"""Grow from seeds, as Slicer's "Grow from seeds" effect: two or more seed segments grow into the image with
GrowCut; preview, incremental update when the seeds change, then apply (or cancel).

The computation is cropped to the seeds' extent plus a margin (10 % of the seed extent, at least 3 voxels; 20 %
when nothing masks the editable area, 50 % when a mask is used) like the effect, and uses ``vtkITKGrowCut`` when
this Slicer has it, otherwise ``vtkImageGrowCutSegment``.
"""

import logging
import time

import slicer
import vtk

from ...Geometry import arrayFromImage, binaryImage
from ...Runtime import vtkITK
from ...SegmentEditing import MASK_MODES, requireSegment
from ...Validation import requireNumber

MINIMUM_MARGIN_VOXELS = 3


def _growCutFilter():
    filterClass = getattr(vtkITK(), "vtkITKGrowCut", None) or slicer.vtkImageGrowCutSegment
    return filterClass()


class GrowFromSeedsSession:
    """One grow-from-seeds preview on a segmentation; see :meth:`AISegmentationLogic.growFromSeeds`."""

    def __init__(self, segmentEditor, segmentationNode, sourceVolumeNode, seedSegmentIds, seedLocalityFactor=0.0):
        if len(seedSegmentIds) < 2:
            raise ValueError(f"Grow from seeds needs at least two seed segments (got {len(seedSegmentIds)}): "
                             "one for the structure and one for its surroundings")
        if len(set(seedSegmentIds)) != len(seedSegmentIds):
            raise ValueError("Each seed segment may be listed only once")
        seedLocalityFactor = requireNumber("seedLocalityFactor", seedLocalityFactor, minimum=0)
        for segmentId in seedSegmentIds:
            requireSegment(segmentationNode, segmentId)
        self.segmentEditor = segmentEditor
        self.segmentationNode = segmentationNode
        self.sourceVolumeNode = sourceVolumeNode
        self.seedSegmentIds = list(seedSegmentIds)
        self._seedLocalityFactor = seedLocalityFactor
        self._seedIdArray = vtk.vtkStringArray()
        for segmentId in self.seedSegmentIds:
            self._seedIdArray.InsertNextValue(segmentId)
        self._geometry = None
        self._filter = None
        self._sourceExtent = None
        self.preview = None  # labelmap: value n+1 where seed segment n grew, on the cropped geometry
        self.lastComputationSeconds = None
        self.update()

    @property
    def seedLocalityFactor(self):
        """How strongly growth is kept near the seeds (GrowCut's distance penalty): a finite number >= 0; takes
        effect at the next update()."""
        return self._seedLocalityFactor

    @seedLocalityFactor.setter
    def seedLocalityFactor(self, value):
        self._seedLocalityFactor = requireNumber("seedLocalityFactor", value, minimum=0)

    # ----------------------------------------------------------------------------------------------------------

    def _requireNonEmptySeeds(self):
        empty = [self.segmentationNode.GetSegmentation().GetSegment(segmentId).GetName()
                 for segmentId in self.seedSegmentIds
                 if self._segmentIsEmpty(segmentId)]
        if empty:
            raise ValueError(f"Seed segment(s) {', '.join(repr(n) for n in empty)} are empty: paint seeds first")

    def _segmentIsEmpty(self, segmentId):
        labelmap = slicer.vtkOrientedImageData()
        self.segmentationNode.GetBinaryLabelmapRepresentation(segmentId, labelmap)
        return labelmap.IsEmpty() or labelmap.GetPointData().GetScalars() is None or \
            labelmap.GetScalarRange()[1] == 0

    def _maskIsUsed(self):
        node = self.segmentEditor.editorNode
        return node.GetSourceVolumeIntensityMask() or node.GetMaskMode() != MASK_MODES["everywhere"]

    def _seedExtentGeometry(self):
        geometryString = self.segmentationNode.GetSegmentation().DetermineCommonLabelmapGeometry(
            slicer.vtkSegmentation.EXTENT_UNION_OF_EFFECTIVE_SEGMENTS, self._seedIdArray)
        geometry = slicer.vtkOrientedImageData()
        slicer.vtkSegmentationConverter.DeserializeImageGeometry(geometryString, geometry, False)
        return geometry

    def _needsReinitialization(self, sourceImage):
        """True when the seeds came closer than the minimum margin to the border of the cropped region."""
        if self._geometry is None:
            return True
        seeds = self._seedExtentGeometry().GetExtent()
        current = self._geometry.GetExtent()
        whole = sourceImage.GetExtent()
        for axis in range(3):
            low, high = 2 * axis, 2 * axis + 1
            if current[low] != whole[low] and current[low] > seeds[low] - MINIMUM_MARGIN_VOXELS:
                return True
            if current[high] != whole[high] and current[high] < seeds[high] + MINIMUM_MARGIN_VOXELS:
                return True
        return False

    def _initialize(self, sourceImage):
        maskUsed = self._maskIsUsed()
        growthRatio = 0.5 if maskUsed else 0.2
        geometry = self._seedExtentGeometry()
        seeds, whole = geometry.GetExtent(), sourceImage.GetExtent()
        extent = []
        for axis in range(3):
            margin = int(max(MINIMUM_MARGIN_VOXELS, growthRatio * (seeds[2 * axis + 1] - seeds[2 * axis])))
            extent += [max(whole[2 * axis], seeds[2 * axis] - margin), min(whole[2 * axis + 1],
                                                                          seeds[2 * axis + 1] + margin)]
        geometry.SetExtent(extent)
        self._geometry = geometry

        clipper = vtk.vtkImageConstantPad()
        clipper.SetInputData(sourceImage)
        clipper.SetOutputWholeExtent(extent)
        clipper.Update()
        clippedSource = slicer.vtkOrientedImageData()
        clippedSource.ShallowCopy(clipper.GetOutput())
        clippedSource.CopyDirections(geometry)

        self._filter = _growCutFilter()
        self._filter.SetIntensityVolume(clippedSource)
        if maskUsed:
            self._filter.SetMaskVolume(self._editMask(clippedSource))
        logging.info("Grow from seeds: cropped to extent %s of %s (%s)", extent, whole, type(self._filter).__name__)

    def _editMask(self, clippedSource):
        node = self.segmentEditor.editorNode
        mask = slicer.vtkOrientedImageData()
        intensityMask = node.GetSourceVolumeIntensityMask()
        if not self.segmentationNode.GenerateEditMask(
                mask, node.GetMaskMode(), clippedSource, "", node.GetMaskSegmentID() or "",
                clippedSource if intensityMask else None,
                node.GetSourceVolumeIntensityMaskRange() if intensityMask else None):
            raise ValueError("Could not create the edit mask for grow from seeds")
        return mask

    def update(self):
        """Recompute the preview from the current seeds (incremental: reuses the filter while the crop fits)."""
        self._requireNonEmptySeeds()
        sourceImage = self.segmentEditor.bind(self.segmentationNode, self.sourceVolumeNode)
        self._sourceExtent = sourceImage.GetExtent()
        if self._needsReinitialization(sourceImage):
            self._initialize(sourceImage)
        seedLabels = slicer.vtkOrientedImageData()
        self.segmentationNode.GenerateMergedLabelmapForAllSegments(
            seedLabels, slicer.vtkSegmentation.EXTENT_UNION_OF_EFFECTIVE_SEGMENTS, self._geometry, self._seedIdArray)
        start = time.perf_counter()
        self._filter.SetDistancePenalty(self.seedLocalityFactor)
        self._filter.SetSeedLabelVolume(seedLabels)
        self._filter.Modified()
        self._filter.Update()
        self.lastComputationSeconds = time.perf_counter() - start
        preview = slicer.vtkOrientedImageData()
        preview.DeepCopy(self._filter.GetOutput())
        matrix = vtk.vtkMatrix4x4()
        seedLabels.GetImageToWorldMatrix(matrix)
        preview.SetImageToWorldMatrix(matrix)
        self.preview = preview
        logging.info("Grow from seeds computed in %.2f s", self.lastComputationSeconds)
        return preview

    def previewLabelmap(self, segmentId):
        """Binary labelmap of the region that seed segment segmentId grows into."""
        if self.preview is None:
            raise ValueError("Grow from seeds was cancelled or applied; start a new session")
        label = self.seedSegmentIds.index(segmentId) + 1
        result = binaryImage(self.preview, label)
        result.CopyDirections(self.preview)
        return result

    def previewArray(self, segmentId):
        """KJI 0/1 array of the region that seed segment segmentId grows into, on the source volume's grid."""
        padder = vtk.vtkImageConstantPad()
        padder.SetInputData(self.previewLabelmap(segmentId))
        padder.SetOutputWholeExtent(self._sourceExtent)
        padder.SetConstant(0)
        padder.Update()
        return arrayFromImage(padder.GetOutput()).copy()

    def apply(self):
        """Write the grown regions into their segments (one undo state), then end the session."""
        labelmaps = {segmentId: self.previewLabelmap(segmentId) for segmentId in self.seedSegmentIds}
        self.segmentEditor.modifySegments(self.segmentationNode, self.sourceVolumeNode, labelmaps, "set")
        self.cancel()

    def cancel(self):
        """Drop the preview; the segmentation is left as it was."""
        self.preview = None
        self._filter = None
        self._geometry = None
