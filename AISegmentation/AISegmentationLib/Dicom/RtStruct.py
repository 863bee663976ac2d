"""DICOM RT Structure Sets (RTSTRUCT) of segments on a DICOM series, and back: pydicom for the data set, VTK for the
contours (no other library: see the README's "DICOM and PACS" for why rt-utils was not taken).

Writing: each segment becomes one ROI (name, display colour, its terminology type code in the RT ROI Identification
Code Sequence), each of its slices one or more CLOSED_PLANAR contours. A contour is the 0.5 iso-line of the
segment's binary slice (VTK's flying edges in 2D, joined into closed polylines): it runs half-way between the
voxel centres inside and outside, so filling it again at the voxel centres gives the same voxels back (holes are
contours of their own, filled by the even-odd rule as planning systems do). Every contour references the slice's
SOP instance; the structure set references the study, the series and the frame of reference.

Reading: an RTSTRUCT that references the series (frame of reference and series UIDs) gives each ROI back as a
mask on the series' grid: its contours are mapped to the series' voxel indices and filled slice by slice at the
voxel centres (vtkPolyDataToImageStencil, even-odd). Contour rasterisation is not exact in general (a planning
system draws contours anywhere); on what writeRtStruct wrote it gives the voxels back. The file is untrusted: point
counts, coordinates and the number of points are checked before anything is filled.

Label arrays and masks here are in the SourceSeries' KJI order (see DicomSeg).
"""

import datetime
import logging
import os

import numpy as np

from ..AtomicWrite import atomicOutput, requireWritableOutput
from ..Geometry import fillPolygons
from ..Segments import distinctColor
from .DicomSeg import SourceSeries, labelValuesOnSeries, readLabelsOnSeriesGrid

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
SLICE_TOLERANCE = 0.1  # of the slice spacing: how far off a slice's plane a contour point may lie
MAX_CONTOUR_POINTS = 20_000_000
PATIENT_STUDY_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
                          "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber")


# ---------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------

def writeRtStruct(labelmapPath, labelNames, dicomFolder, outputPath, seriesDescription="AISegmentation"):
    """RTSTRUCT of a label map file on the series in dicomFolder (one ROI per label value); returns outputPath.
    ValueError (nothing written) as for writeDicomSeg."""
    outputPath = requireWritableOutput(outputPath)
    series = SourceSeries(dicomFolder)
    labels = readLabelsOnSeriesGrid(labelmapPath, series)
    return writeRtStructArray(labels, labelNames, series, outputPath, seriesDescription,
                              what=f"Label map '{labelmapPath}'")


def writeRtStructArray(labels, labelNames, series, outputPath, seriesDescription="AISegmentation",
                       what="The segmentation"):
    """writeRtStruct for a label array in the series' KJI order; labelNames as for writeDicomSeg."""
    outputPath = requireWritableOutput(outputPath)
    values = labelValuesOnSeries(labels, series, what, "RTSTRUCT")
    names = {int(k): v for k, v in (labelNames or {}).items()}
    masks = []
    for value in values:
        entry = names.get(value)
        entry = dict(entry) if isinstance(entry, dict) else {"name": entry}
        entry["name"] = str(entry.get("name") or f"Label {value}")
        masks.append((entry, labels == value))
    return writeRtStructMasks(masks, series, outputPath, seriesDescription, what)


def writeRtStructMasks(masks, series, outputPath, seriesDescription="AISegmentation", what="The segmentation"):
    """The RTSTRUCT of [(entry {"name", optional "color", "type"}, boolean KJI mask)] (overlaps allowed)."""
    outputPath = requireWritableOutput(outputPath)
    if not masks:
        raise ValueError(f"{what} holds no structure: no RTSTRUCT to write")
    dataset = _structureSet(series, seriesDescription)
    for number, (entry, mask) in enumerate(masks, start=1):
        if tuple(mask.shape) != tuple(series.shape):
            raise ValueError(f"{what}: structure '{entry['name']}' has shape {tuple(mask.shape)}, the series "
                             f"{tuple(series.shape)}: nothing written")
        _addRoi(dataset, series, number, entry, mask)
    with atomicOutput(outputPath) as temporary:
        dataset.save_as(temporary, enforce_file_format=True)
    logging.info("RTSTRUCT of %d structures written to %s (series %s)", len(masks), outputPath,
                 series.seriesInstanceUid)
    return outputPath


def _structureSet(series, seriesDescription):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    source = series.datasets[0]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RT_STRUCTURE_SET_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    now = datetime.datetime.now()
    dataset.SpecificCharacterSet = "ISO_IR 192"
    dataset.SOPClassUID = RT_STRUCTURE_SET_STORAGE
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    for keyword in PATIENT_STUDY_KEYWORDS:
        setattr(dataset, keyword, source.get(keyword, ""))
    dataset.Modality = "RTSTRUCT"
    dataset.SeriesInstanceUID = generate_uid()
    dataset.SeriesNumber = 1001
    dataset.SeriesDescription = str(seriesDescription)[:64]
    dataset.Manufacturer = "AISegmentation"
    dataset.InstanceNumber = 1
    dataset.StructureSetLabel = str(seriesDescription)[:16]
    dataset.StructureSetDate = now.strftime("%Y%m%d")
    dataset.StructureSetTime = now.strftime("%H%M%S")
    images = Sequence()
    for item in series.datasets:
        image = Dataset()
        image.ReferencedSOPClassUID = item.SOPClassUID
        image.ReferencedSOPInstanceUID = item.SOPInstanceUID
        images.append(image)
    referencedSeries = Dataset()
    referencedSeries.SeriesInstanceUID = series.seriesInstanceUid
    referencedSeries.ContourImageSequence = images
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (retired), as is customary
    study.ReferencedSOPInstanceUID = source.StudyInstanceUID
    study.RTReferencedSeriesSequence = Sequence([referencedSeries])
    frame = Dataset()
    frame.FrameOfReferenceUID = source.FrameOfReferenceUID
    frame.RTReferencedStudySequence = Sequence([study])
    dataset.ReferencedFrameOfReferenceSequence = Sequence([frame])
    dataset.StructureSetROISequence = Sequence()
    dataset.ROIContourSequence = Sequence()
    dataset.RTROIObservationsSequence = Sequence()
    return dataset


def _code(code):
    from pydicom.dataset import Dataset

    parts = [str(p) for p in (code or [])]
    if len(parts) < 2 or not parts[0].strip() or not parts[1].strip():
        return None
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator = parts[1], parts[0]
    item.CodeMeaning = (parts[2] if len(parts) > 2 and parts[2].strip() else parts[1])[:64]
    return item


def _addRoi(dataset, series, number, entry, mask):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    roi = Dataset()
    roi.ROINumber = number
    roi.ReferencedFrameOfReferenceUID = series.datasets[0].FrameOfReferenceUID
    roi.ROIName = entry["name"][:64]
    roi.ROIGenerationAlgorithm = "AUTOMATIC"
    dataset.StructureSetROISequence.append(roi)
    contour = Dataset()
    contour.ReferencedROINumber = number
    color = entry.get("color") or [int(round(255 * c)) for c in distinctColor(number)]
    contour.ROIDisplayColor = [int(c) for c in color]
    contour.ContourSequence = Sequence(_contours(series, mask))
    dataset.ROIContourSequence.append(contour)
    observation = Dataset()
    observation.ObservationNumber = number
    observation.ReferencedROINumber = number
    observation.RTROIInterpretedType = "ORGAN"
    observation.ROIInterpreter = ""
    typeCode = _code(entry.get("type"))
    if typeCode is not None:
        observation.RTROIIdentificationCodeSequence = Sequence([typeCode])
    dataset.RTROIObservationsSequence.append(observation)


def _contours(series, mask):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    items = []
    for k in np.flatnonzero(mask.any(axis=(1, 2))):
        rows, columns = np.nonzero(mask[k])
        j0, i0 = rows.min(), columns.min()
        crop = mask[k, j0:rows.max() + 1, i0:columns.max() + 1]
        for points in sliceContours(crop):
            ijk = np.column_stack([points[:, 0] + i0, points[:, 1] + j0, np.full(len(points), float(k))])
            lps = series.origin + ijk @ series.axes.T
            image = Dataset()
            image.ReferencedSOPClassUID = series.datasets[k].SOPClassUID
            image.ReferencedSOPInstanceUID = series.datasets[k].SOPInstanceUID
            item = Dataset()
            item.ContourImageSequence = Sequence([image])
            item.ContourGeometricType = "CLOSED_PLANAR"
            item.NumberOfContourPoints = len(lps)
            item.ContourData = [f"{v:.4f}" for v in lps.ravel()]
            items.append(item)
    return items


def sliceContours(mask):
    """Closed 0.5 iso-lines of a 2D binary mask (rows, columns) as arrays of (column, row) points."""
    import vtk
    from vtk.util import numpy_support

    padded = np.pad(mask.astype(np.uint8), 1)
    image = vtk.vtkImageData()
    image.SetDimensions(padded.shape[1], padded.shape[0], 1)
    image.SetOrigin(-1, -1, 0)
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(padded.ravel(), deep=1))
    edges = vtk.vtkFlyingEdges2D()
    edges.SetInputData(image)
    edges.SetValue(0, 0.5)
    stripper = vtk.vtkStripper()
    stripper.SetInputConnection(edges.GetOutputPort())
    stripper.JoinContiguousSegmentsOn()
    stripper.Update()
    output = stripper.GetOutput()
    if output.GetNumberOfPoints() == 0:
        return []
    points = numpy_support.vtk_to_numpy(output.GetPoints().GetData())[:, :2]
    contours, ids = [], vtk.vtkIdList()
    lines = output.GetLines()
    lines.InitTraversal()
    while lines.GetNextCell(ids):
        index = [ids.GetId(n) for n in range(ids.GetNumberOfIds())]
        if len(index) > 1 and index[0] == index[-1]:
            index = index[:-1]
        if len(index) >= 3:
            contours.append(points[index].astype(float))
    return contours


# ---------------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------------

def isRtStruct(dataset):
    return str(dataset.get("SOPClassUID", "")) == RT_STRUCTURE_SET_STORAGE or dataset.get("Modality") == "RTSTRUCT"


def readRtStruct(path, series):
    """[(entry {"name", "color", "type"}, boolean mask in the series' KJI order)] for each ROI of the RTSTRUCT file
    that has contours. ValueError when the file is no RTSTRUCT, references another series or frame of reference,
    or holds malformed contours."""
    import pydicom

    path = os.fspath(path)
    try:
        dataset = pydicom.dcmread(path)
    except Exception as error:  # InvalidDicomError, OSError, a malformed element
        raise ValueError(f"'{path}' is not a readable DICOM file: {error}") from None
    if not isRtStruct(dataset):
        raise ValueError(f"'{path}' is not a DICOM RT Structure Set (RTSTRUCT)")
    _requireReferences(path, dataset, series)
    names = {int(item.ROINumber): str(item.get("ROIName") or f"ROI {item.ROINumber}")
             for item in dataset.get("StructureSetROISequence", [])}
    types = {}
    for item in dataset.get("RTROIObservationsSequence", []):
        codes = item.get("RTROIIdentificationCodeSequence")
        if codes and "ReferencedROINumber" in item:
            code = codes[0]
            types[int(item.ReferencedROINumber)] = (str(code.get("CodingSchemeDesignator", "")),
                                                    str(code.get("CodeValue", "")), str(code.get("CodeMeaning", "")))
    inverse = np.linalg.inv(series.axes)
    budget = [MAX_CONTOUR_POINTS]
    results = []
    for item in dataset.get("ROIContourSequence", []):
        number = int(item.get("ReferencedROINumber", 0))
        entry = {"name": names.get(number, f"ROI {number}")}
        color = item.get("ROIDisplayColor")
        if color is not None and len(color) == 3:
            entry["color"] = [min(255, max(0, int(c))) for c in color]
        if number in types:
            entry["type"] = types[number]
        polygons = [_contourIndices(path, entry["name"], contour, series, inverse, budget)
                    for contour in item.get("ContourSequence", [])]
        polygons = [polygon for polygon in polygons if polygon is not None]
        if not polygons:
            logging.warning("RTSTRUCT '%s': structure '%s' has no contour on the series; skipped", path,
                            entry["name"])
            continue
        results.append((entry, fillPolygons(polygons, series.shape)))
    if not results:
        raise ValueError(f"RTSTRUCT '{path}' holds no structure with contours on the series")
    return results


def _requireReferences(path, dataset, series):
    frames = {str(item.get("FrameOfReferenceUID", "")) for item in dataset.get("ReferencedFrameOfReferenceSequence",
                                                                               [])}
    frames |= {str(item.get("ReferencedFrameOfReferenceUID", ""))
               for item in dataset.get("StructureSetROISequence", [])}
    frames.discard("")
    seriesFrame = str(series.datasets[0].FrameOfReferenceUID)
    if frames and seriesFrame not in frames:
        raise ValueError(f"RTSTRUCT '{path}' references the frame of reference {sorted(frames)}, not the series "
                         f"'{series.folder}' ({seriesFrame})")
    referencedSeries = {str(s.get("SeriesInstanceUID", ""))
                        for frame in dataset.get("ReferencedFrameOfReferenceSequence", [])
                        for study in frame.get("RTReferencedStudySequence", [])
                        for s in study.get("RTReferencedSeriesSequence", [])}
    referencedSeries.discard("")
    if referencedSeries and series.seriesInstanceUid not in referencedSeries:
        raise ValueError(f"RTSTRUCT '{path}' references the series {sorted(referencedSeries)}, not the one in "
                         f"'{series.folder}' ({series.seriesInstanceUid})")


def _contourIndices(path, name, contour, series, inverse, budget):
    """(slice index, Nx2 (column, row) continuous indices) of one contour, or None when it is no closed polygon on a
    slice of the series; ValueError for malformed data."""
    kind = str(contour.get("ContourGeometricType", "CLOSED_PLANAR"))
    data = contour.get("ContourData")
    if kind != "CLOSED_PLANAR" or data is None:
        logging.info("RTSTRUCT '%s', structure '%s': a %s contour is not filled", path, name, kind)
        return None
    try:
        points = np.asarray([float(v) for v in data], float)
    except (TypeError, ValueError):
        raise ValueError(f"RTSTRUCT '{path}', structure '{name}': contour data that are not numbers") from None
    count = int(contour.get("NumberOfContourPoints", len(points) // 3))
    if points.size % 3 or count != points.size // 3 or not np.all(np.isfinite(points)):
        raise ValueError(f"RTSTRUCT '{path}', structure '{name}': malformed contour data ({points.size} values for "
                         f"{count} points)")
    budget[0] -= count
    if budget[0] < 0:
        raise ValueError(f"RTSTRUCT '{path}' has more than {MAX_CONTOUR_POINTS} contour points")
    if count < 3:
        return None
    ijk = (points.reshape(-1, 3) - series.origin) @ inverse.T
    k = float(np.median(ijk[:, 2]))
    if np.abs(ijk[:, 2] - k).max() > SLICE_TOLERANCE or abs(k - round(k)) > SLICE_TOLERANCE:
        raise ValueError(f"RTSTRUCT '{path}', structure '{name}': a contour does not lie in a slice of the series "
                         f"(slice index {k:.2f}); it cannot be filled on this series")
    k = int(round(k))
    if not 0 <= k < series.shape[0]:
        logging.info("RTSTRUCT '%s', structure '%s': a contour lies outside the series' slices", path, name)
        return None
    return k, ijk[:, :2]
