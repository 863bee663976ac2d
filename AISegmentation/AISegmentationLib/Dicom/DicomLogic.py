"""Segmentation nodes to and from DICOM: the area logic the facade (Logic.py) composes, as it composes CohortLogic.

    logic.exportDicomSeg(segmentationNode, "dicom/ct_series/", "out/seg.dcm")
    logic.exportRtStruct(segmentationNode, "dicom/ct_series/", "out/rtstruct.dcm")
    node = logic.loadSegmentation("out/seg.dcm", sourceSeries="dicom/ct_series/")   # a SEG or an RTSTRUCT

The source series is a DICOM series folder, or a volume node loaded from one. A segmentation is exported only when
its voxels lie on the series' grid (the same spacing and axes, voxel centres on the series' voxel centres; it may
cover only part of the series): nothing is resampled, a segmentation on another grid is refused with both grids
described and nothing is written. Segments are written in their order with their names, colours and terminology
(Slicer's TerminologyEntry tag); where segments overlap, the DICOM SEG gives a voxel to the later segment (one label
per voxel), the RTSTRUCT keeps every segment's own contours.

Loading: a DICOM SEG or an RTSTRUCT that references the series becomes a new segmentation node on the series'
grid, one segment per DICOM segment / ROI, with its name, colour and codes.
"""

import logging
import os

import numpy as np
import slicer

from . import DicomSeg, RtStruct

GRID_TOLERANCE_FRACTION = 1e-3  # of the spacing: directions, spacings and voxel-centre offsets


class DicomLogic:
    """DICOM SEG and RTSTRUCT in and out for the facade; see the module docstring."""

    def __init__(self, runtime):
        """runtime(): the facade's Runtime (scene, segmentations logic)."""
        self._runtime = runtime

    def exportDicomSeg(self, segmentationNode, sourceSeries, path, segmentIds=None,
                       seriesDescription="AISegmentation"):
        """Write the segments as a DICOM SEG referencing sourceSeries; returns path (see the module docstring)."""
        series, labels, entries = self._onSeriesGrid(segmentationNode, sourceSeries, segmentIds)
        algorithm = _algorithm(segmentationNode)
        return DicomSeg.writeDicomSegArray(labels, entries, series, path, seriesDescription, algorithm,
                                           what=f"Segmentation '{segmentationNode.GetName()}'")

    def exportRtStruct(self, segmentationNode, sourceSeries, path, segmentIds=None,
                       seriesDescription="AISegmentation"):
        """Write the segments as an RTSTRUCT on sourceSeries (contours per slice); returns path."""
        series, masks = self._masksOnSeriesGrid(segmentationNode, sourceSeries, segmentIds)
        return RtStruct.writeRtStructMasks(masks, series, path, seriesDescription,
                                           what=f"Segmentation '{segmentationNode.GetName()}'")

    def loadDicomSegmentation(self, path, sourceSeries, name=None):
        """A new segmentation node from a DICOM SEG or RTSTRUCT file on sourceSeries (its referenced series)."""
        path = os.fspath(path)
        kind = dicomSegmentationKind(path)
        if kind is None:
            raise ValueError(f"'{path}' is neither a DICOM SEG nor an RTSTRUCT")
        if sourceSeries is None:
            raise ValueError(f"Loading the {kind} '{path}' needs its referenced DICOM series: give its folder "
                             f"(sourceSeries=..., or --series on the command line)")
        from ..FileIntegrity import maxImageBytes

        if os.path.getsize(path) > maxImageBytes():  # read whole into memory: the image budget applies
            raise ValueError(f"'{path}' is larger than the image budget ({maxImageBytes()} bytes, "
                             "$AISEGMENTATION_MAX_IMAGE_BYTES)")
        series = seriesOf(sourceSeries)
        if kind == "SEG":
            _requireFramesWithinBudget(path, maxImageBytes())
            labels, entries = DicomSeg.readDicomSegEntries(path, series)
            masks = [(entries[value], labels == value) for value in sorted(entries)]
        else:
            masks = RtStruct.readRtStruct(path, series)
        return self._segmentationFromMasks(masks, series, name or _baseName(path))

    # ------------------------------------------------------------------------------------------------------------

    def _onSeriesGrid(self, segmentationNode, sourceSeries, segmentIds):
        series, masks = self._masksOnSeriesGrid(segmentationNode, sourceSeries, segmentIds)
        labels = np.zeros(series.shape, np.uint16)
        entries = {}
        for value, (entry, mask) in enumerate(masks, start=1):
            if np.any(labels[mask]):
                logging.warning("Segment '%s' overlaps earlier segments: in the DICOM SEG the overlap is its own",
                                entry["name"])
            labels[mask] = value
            entries[value] = entry
        return series, labels, entries

    def _masksOnSeriesGrid(self, segmentationNode, sourceSeries, segmentIds):
        if segmentationNode is None or not segmentationNode.IsA("vtkMRMLSegmentationNode"):
            raise ValueError("No segmentation given to export")
        series = seriesOf(sourceSeries)
        segmentation = segmentationNode.GetSegmentation()
        segmentIds = list(segmentIds or segmentation.GetSegmentIDs())
        if not segmentIds:
            raise ValueError(f"Segmentation '{segmentationNode.GetName()}' has no segment to export")
        geometry = seriesGeometryNode(self._runtime().scene, series)
        try:
            masks = []
            for segmentId in segmentIds:
                segment = segmentation.GetSegment(segmentId)
                if segment is None:
                    raise ValueError(f"Segmentation '{segmentationNode.GetName()}' has no segment '{segmentId}'")
                if _isEmpty(segmentationNode, segmentId):
                    continue
                requireOnSeriesGrid(segmentationNode, segmentId, series)
                mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, geometry)
                if mask is not None and np.any(mask):
                    masks.append((segmentEntry(segment), np.asarray(mask) != 0))
        finally:
            self._runtime().scene.RemoveNode(geometry)
        if not masks:
            raise ValueError(f"Segmentation '{segmentationNode.GetName()}' is empty on the series: nothing to export")
        return series, masks

    def _segmentationFromMasks(self, masks, series, name):
        from ..Backends.Jobs.ResultImport import terminologyEntry
        from ..Geometry import orientedImageFromArray, volumeImage

        scene = self._runtime().scene
        geometry = seriesGeometryNode(scene, series)
        node = None
        try:
            reference = volumeImage(geometry)
            node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
            node.CreateDefaultDisplayNodes()
            node.SetReferenceImageGeometryParameterFromVolumeNode(geometry)
            for entry, mask in masks:
                image = orientedImageFromArray(mask.astype(np.uint8), reference)
                color = [c / 255.0 for c in entry["color"]] if entry.get("color") else None
                segmentId = node.AddSegmentFromBinaryLabelmapRepresentation(image, entry["name"], color or
                                                                            [0.5, 0.5, 0.5])
                segment = node.GetSegmentation().GetSegment(segmentId)
                terminology = terminologyEntry(entry)
                if terminology:
                    segment.SetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), terminology)
        except Exception:
            if node is not None:
                scene.RemoveNode(node)
            raise
        finally:
            scene.RemoveNode(geometry)
        return node


def dicomSegmentationKind(path):
    """"SEG", "RTSTRUCT" or None (not a DICOM file of either kind) from the file's header."""
    import pydicom

    path = os.fspath(path)
    if not os.path.isfile(path):
        return None
    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID", "Modality"])
    except Exception:  # noqa: BLE001 - not DICOM (InvalidDicomError), unreadable, malformed
        return None
    if str(dataset.get("SOPClassUID", "")) == "1.2.840.10008.5.1.4.1.1.66.4" or dataset.get("Modality") == "SEG":
        return "SEG"
    return "RTSTRUCT" if RtStruct.isRtStruct(dataset) else None


def _requireFramesWithinBudget(path, budget):
    """ValueError when a DICOM SEG's frames would decode (a byte per pixel) to more than budget bytes: compressed
    frames of an untrusted file are never decoded past the image budget."""
    import pydicom

    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Rows", "Columns", "NumberOfFrames"])
        rows, columns = int(header.get("Rows") or 0), int(header.get("Columns") or 0)
        frames = int(header.get("NumberOfFrames") or 1)
    except Exception as error:  # noqa: BLE001 - a malformed header
        raise ValueError(f"'{path}' is not a readable DICOM Segmentation: {error}") from None
    if rows * columns * frames > budget:
        raise ValueError(f"DICOM SEG '{path}' announces {frames} frames of {rows} x {columns} pixels, more than the "
                         f"image budget ({budget} bytes, $AISEGMENTATION_MAX_IMAGE_BYTES); nothing was loaded")


def seriesOf(sourceSeries):
    """SourceSeries of a DICOM series folder, or of a volume node loaded from one (its storage node's file)."""
    if isinstance(sourceSeries, DicomSeg.SourceSeries):
        return sourceSeries
    if hasattr(sourceSeries, "GetStorageNode"):
        storage = sourceSeries.GetStorageNode()
        fileName = storage.GetFileName() if storage is not None else _dicomDatabaseFile(sourceSeries)
        if not fileName or not os.path.isfile(fileName) or not _isDicomFile(fileName):
            raise ValueError(f"Volume '{sourceSeries.GetName()}' was not loaded from a DICOM series folder: give "
                             "the series' folder")
        sourceSeries = os.path.dirname(fileName)
    if not sourceSeries:
        raise ValueError("No source DICOM series given (a folder of the series' files)")
    return DicomSeg.SourceSeries(sourceSeries)


def _isDicomFile(path):
    """Whether path is a DICOM file (a NRRD beside a series' files is no slice of it)."""
    import pydicom

    try:
        pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception:  # noqa: BLE001 - not DICOM (InvalidDicomError), unreadable, malformed
        return False
    return True


def _dicomDatabaseFile(volumeNode):
    """The first instance's file of a volume that desktop Slicer's DICOM module loaded from its database (the
    database keeps each series in a folder of its own), or None."""
    uids = (volumeNode.GetAttribute("DICOM.instanceUIDs") or "").split()
    database = getattr(slicer, "dicomDatabase", None)
    return database.fileForInstance(uids[0]) if uids and database is not None else None


def _lpsToRas(matrix3):
    return np.diag([-1.0, -1.0, 1.0]) @ matrix3


def seriesGeometryNode(scene, series):
    """A scalar volume node (unsigned char, zeros) on the series' grid: IJK = columns, rows, slices."""
    import vtk

    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "__series_geometry__")
    matrix = vtk.vtkMatrix4x4()
    axes = _lpsToRas(series.axes)
    origin = _lpsToRas(series.origin)
    for row in range(3):
        for column in range(3):
            matrix.SetElement(row, column, axes[row, column])
        matrix.SetElement(row, 3, origin[row])
    node.SetIJKToRASMatrix(matrix)
    image = vtk.vtkImageData()
    image.SetDimensions(series.shape[2], series.shape[1], series.shape[0])
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    image.GetPointData().GetScalars().Fill(0)
    node.SetAndObserveImageData(image)
    return node


def _isEmpty(segmentationNode, segmentId):
    image = segmentationNode.GetBinaryLabelmapInternalRepresentation(segmentId)
    if image is None:
        return False
    extent = image.GetExtent()
    return extent[0] > extent[1] or extent[2] > extent[3] or extent[4] > extent[5]


def requireOnSeriesGrid(segmentationNode, segmentId, series):
    """ValueError (both grids described) unless the segment's binary labelmap voxels are voxels of the series."""
    import vtk

    image = segmentationNode.GetBinaryLabelmapInternalRepresentation(segmentId)
    if image is None:
        raise ValueError(f"Segmentation '{segmentationNode.GetName()}' is not stored as a binary labelmap; convert "
                         "it first (Segmentations module) to export it as DICOM")
    matrix = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(matrix)
    full = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    extent = image.GetExtent()
    axes = _lpsToRas(full[:3, :3])  # RAS <-> LPS is its own inverse
    first = _lpsToRas(full[:3, 3] + full[:3, :3] @ np.array(extent[::2], float))
    spacing = np.linalg.norm(series.axes, axis=0)
    problem = None
    for m in range(3):
        cosines = series.axes.T @ axes[:, m] / (spacing * max(np.linalg.norm(axes[:, m]), 1e-12))
        n = int(np.argmax(np.abs(cosines)))
        length = np.linalg.norm(axes[:, m])
        if abs(abs(cosines[n]) - 1) > GRID_TOLERANCE_FRACTION or abs(length - spacing[n]) > \
                GRID_TOLERANCE_FRACTION * spacing[n]:
            problem = f"its axis {'IJK'[m]} ({np.round(axes[:, m], 4).tolist()} mm) is no axis of the series"
            break
    if problem is None:
        index = np.linalg.solve(series.axes, first - series.origin)
        if np.abs(index - np.round(index)).max() > GRID_TOLERANCE_FRACTION * 10:
            problem = f"its voxel centres lie between the series' (index {np.round(index, 3).tolist()})"
    if problem:
        raise ValueError(f"Segmentation '{segmentationNode.GetName()}' is not on the grid of the DICOM series "
                         f"'{series.folder}': {problem}. Series: {series.describe()}. Resample it onto the series "
                         "first; nothing was written")


def segmentEntry(segment):
    """{"name", "color" (0..255), "category", "type"} of a segment (codes from its TerminologyEntry tag)."""
    import vtk

    entry = {"name": segment.GetName(), "color": [int(round(255 * c)) for c in segment.GetColor()]}
    tag = vtk.reference("")
    if segment.GetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), tag):
        fields = str(tag).split("~")
        for key, index in (("category", 1), ("type", 2)):
            code = fields[index].split("^") if len(fields) > index else []
            if len(code) >= 2 and code[0] and code[1]:
                entry[key] = tuple((code + [""])[:3])
    return entry


def _algorithm(segmentationNode):
    """The AI backend's provenance (name, version) for the SEG's algorithm identification, or None."""
    backend = segmentationNode.GetAttribute("AISegmentation.backend")
    if not backend:
        return None
    version = segmentationNode.GetAttribute("AISegmentation.version") or ""
    return {"name": backend, "version": version}


def _baseName(path):
    base = os.path.basename(path)
    return base[:-4] if base.lower().endswith(".dcm") else base
