"""DICOM Segmentation objects (DICOM SEG) of a label map, referencing the DICOM series it was made from (highdicom).

writeDicomSeg writes a BINARY Segmentation Storage instance: one segment per label value present in the label map,
named from the label table, each with a segmented property category and type (the label's own DICOM codes when the
table gives them, else the generic SCT 85756007 "Tissue"), a display colour, and one algorithm identification
"AISegmentation" (family DCM 123110 "Artificial Intelligence") carrying the backend's name and version. Its frames
reference the source slices (per-frame derivation / source image sequences) and the series (Referenced Series
Sequence), so that Slicer, OHIF and PACS viewers show it on the series. The source label value of each segment is
kept in its Segment Description (0062,0006) as "label value <n>" (segment numbers are 1..n in label value order),
which readDicomSeg uses to give the label map back with its values.

Source series accepted: one series of single-frame CT Image Storage, MR Image Storage or PET Image Storage instances
(Enhanced multi-frame images are not read here), evenly spaced along the slice normal (DicomGeometry.checkSeries),
with what highdicom needs from them: the same StudyInstanceUID, SeriesInstanceUID, FrameOfReferenceUID, Rows,
Columns and ImageOrientationPatient, plus ImagePositionPatient and PixelSpacing; only their metadata is read (the
pixel data is never decoded, so any transfer syntax will do). When an anonymizer emptied SOPClassUID /
SOPInstanceUID in the data set, they are taken from the file meta (MediaStorageSOPClassUID / InstanceUID, which
DICOM Part 10 defines as equal); an empty StudyInstanceUID or SeriesInstanceUID is refused (a SEG must reference
them; TotalSegmentator's example CT series has them emptied).

Grid: the label map must hold exactly the series' voxel centres: the same sizes and spacings, axes along the
series' column, row and slice directions (each possibly reversed: a NIfTI written by dcm2niix flips the rows; a
volume that Slicer loaded from the folder does not), the same first voxel. Such a label map is only re-indexed;
any other grid is refused with a ValueError naming what differs, and nothing is written (nothing is resampled).
Label arrays here are in the series' KJI order: slices sorted along the slice normal (row direction x column
direction, ascending), then rows, then columns; for an axial series this is the order of the array of the volume
Slicer loads from the folder.
"""

import contextlib
import logging
import os
import re

import numpy as np

from ..AtomicWrite import atomicOutput, requireWritableOutput
from ..DicomGeometry import checkSeries, seriesFiles
from ..Segments import distinctColor

ACCEPTED_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.2": "CT Image Storage",
                        "1.2.840.10008.5.1.4.1.1.4": "MR Image Storage",
                        "1.2.840.10008.5.1.4.1.1.128": "PET Image Storage"}
GENERIC_CODE = ("SCT", "85756007", "Tissue")
LABEL_VALUE_DESCRIPTION = "label value {}"
LABEL_VALUE_PATTERN = re.compile(r"^label value (-?\d+)$")
DIRECTION_TOLERANCE = 1e-4
SPACING_TOLERANCE_FRACTION = 1e-4
POSITION_TOLERANCE_FRACTION = 0.01  # of the smallest spacing, at the first and the last voxel
DEFAULT_SERIES_NUMBER = 1000


# ---------------------------------------------------------------------------------------------------------------
# The source series
# ---------------------------------------------------------------------------------------------------------------

class SourceSeries:
    """The source series' instances (metadata only) sorted along the slice normal, and its voxel grid in LPS:
    origin (first voxel of the first slice), axes (3x3, columns: one step along I (columns), J (rows), K (slices)
    in mm), shape (K, J, I)."""

    def __init__(self, folder):
        import pydicom

        folder = os.fspath(folder)
        if not os.path.isdir(folder):
            raise ValueError(f"DICOM folder '{folder}' does not exist")
        stack = checkSeries(folder, seriesFiles(folder), acceptIrregularSpacing=True)
        if stack.irregularGaps():
            raise ValueError(f"DICOM folder '{folder}' is not evenly spaced ({stack.describeIrregularity()}): a label "
                             f"map on a regular grid cannot match its slices, so no DICOM SEG can be written")
        self.folder = folder
        self.datasets = []
        for path in stack.files:
            try:
                dataset = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception as error:  # InvalidDicomError, OSError, a malformed element
                raise ValueError(f"DICOM folder '{folder}': cannot read '{os.path.basename(path)}': {error}") from None
            self.datasets.append(_withSopUids(dataset, path))
        self._requireReferenceable()
        first = self.datasets[0]
        orientation = np.array([float(v) for v in first.ImageOrientationPatient])
        rowSpacing, columnSpacing = (float(v) for v in first.PixelSpacing)
        positions = np.array([[float(v) for v in d.ImagePositionPatient] for d in self.datasets])
        self.shape = (len(self.datasets), int(first.Rows), int(first.Columns))
        if len(positions) > 1:
            sliceStep = (positions[-1] - positions[0]) / (len(positions) - 1)
        else:
            sliceStep = stack.normal * float(first.get("SliceThickness") or 1.0)
        self.axes = np.column_stack([orientation[:3] * columnSpacing, orientation[3:] * rowSpacing, sliceStep])
        self.origin = positions[0]
        tolerance = POSITION_TOLERANCE_FRACTION * min(rowSpacing, columnSpacing, np.linalg.norm(sliceStep))
        expected = self.origin + np.outer(np.arange(len(positions)), sliceStep)
        if np.abs(expected - positions).max() > tolerance:
            raise ValueError(f"DICOM folder '{folder}': the slice positions do not lie on one line along the slices "
                             f"(a sheared or tilted series): a DICOM SEG cannot be written on this grid")

    def _requireReferenceable(self):
        uids = {(d.get("StudyInstanceUID", ""), d.get("SeriesInstanceUID", ""), d.get("FrameOfReferenceUID", ""))
                for d in self.datasets}
        if len(uids) > 1:
            raise ValueError(f"DICOM folder '{self.folder}': its images belong to {len(uids)} studies, series or "
                             f"frames of reference; a DICOM SEG references one series")
        study, series, frame = uids.pop()
        for name, value in (("StudyInstanceUID", study), ("SeriesInstanceUID", series),
                            ("FrameOfReferenceUID", frame)):
            if not str(value).strip():
                raise ValueError(f"DICOM folder '{self.folder}': the images have no {name} (an anonymizer emptied "
                                 f"it?); a DICOM SEG must reference the source study and series by their UIDs")
        sopClass = str(self.datasets[0].SOPClassUID)
        if sopClass not in ACCEPTED_SOP_CLASSES or any(str(d.SOPClassUID) != sopClass for d in self.datasets):
            raise ValueError(f"DICOM folder '{self.folder}': SOP class {sopClass} is not accepted for a DICOM SEG "
                             f"source; accepted: single-frame {', '.join(ACCEPTED_SOP_CLASSES.values())}")
        for dataset in self.datasets:
            missing = [name for name in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows",
                                         "Columns") if not dataset.get(name)]
            if missing or int(dataset.get("NumberOfFrames") or 1) != 1:
                raise ValueError(f"DICOM folder '{self.folder}': instance {dataset.SOPInstanceUID} is "
                                 f"{'missing ' + ', '.join(missing) if missing else 'a multi-frame image'}")

    @property
    def seriesInstanceUid(self):
        return str(self.datasets[0].SeriesInstanceUID)

    @property
    def sopInstanceUids(self):
        return [str(d.SOPInstanceUID) for d in self.datasets]

    def describe(self):
        return _describeGrid(self.shape[::-1], self.axes, self.origin)



def _highdicom():
    """highdicom, or a clear error: Slicer 5.12 and newer ship it; Slicer 5.10's pydicom 2.4.4 is too old for it and
    is never replaced (Resources/requirements.txt), so DICOM SEG needs Slicer 5.12 inside desktop Slicer."""
    try:
        import highdicom
    except ImportError:
        raise ValueError("DICOM SEG needs the highdicom package, which Slicer 5.12 and newer ship; Slicer 5.10's "
                         "pydicom 2.4.4 is too old for it and is not replaced. RTSTRUCT works without it.") from None
    return highdicom

def _withSopUids(dataset, path):
    """SOPClassUID / SOPInstanceUID from the file meta where the data set has them empty (see the docstring)."""
    meta = getattr(dataset, "file_meta", None)
    for name, metaName in (("SOPClassUID", "MediaStorageSOPClassUID"),
                           ("SOPInstanceUID", "MediaStorageSOPInstanceUID")):
        if str(dataset.get(name, "")).strip():
            continue
        value = str(meta.get(metaName, "")).strip() if meta is not None else ""
        if not value:
            raise ValueError(f"'{path}' has no {name} (nor {metaName} in its file meta)")
        logging.debug("%s: empty %s taken from the file meta's %s", path, name, metaName)
        setattr(dataset, name, value)
    return dataset


def _describeGrid(sizeIjk, axes, origin):
    spacing = np.linalg.norm(axes, axis=0)
    directions = axes / spacing
    return (f"size {tuple(int(s) for s in sizeIjk)}, spacing {np.round(spacing, 4).tolist()} mm, first voxel (LPS) "
            f"{np.round(origin, 3).tolist()}, axes {np.round(directions.T, 4).tolist()}")


# ---------------------------------------------------------------------------------------------------------------
# The label map on the series' grid
# ---------------------------------------------------------------------------------------------------------------

def readLabelsOnSeriesGrid(labelmapPath, series):
    """The label map file's array re-indexed into the series' KJI order; ValueError when its grid is not the
    series' grid (see the module docstring) or its values are not whole numbers >= 0."""
    import SimpleITK as sitk

    labelmapPath = os.fspath(labelmapPath)
    if not os.path.isfile(labelmapPath):
        raise ValueError(f"Label map file '{labelmapPath}' does not exist")
    try:
        image = sitk.ReadImage(labelmapPath)
    except RuntimeError as error:
        raise ValueError(f"Cannot read the label map '{labelmapPath}': {str(error).strip()[:200]}") from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"Label map '{labelmapPath}' must be a 3D single-component image")
    size = np.array(image.GetSize())
    spacing = np.array(image.GetSpacing())
    axes = np.array(image.GetDirection()).reshape(3, 3) * spacing
    origin = np.array(image.GetOrigin())
    mapping = _axisMapping(axes, size, origin, series)
    if isinstance(mapping, str):
        raise ValueError(f"Label map '{labelmapPath}' is not on the grid of the DICOM series '{series.folder}': "
                         f"{mapping}. Label map: {_describeGrid(size, axes, origin)}; series: {series.describe()}. "
                         f"Resample it onto the series first; nothing was written")
    labels = _reindex(sitk.GetArrayFromImage(image), mapping)  # a copy: a view dies with the image
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.isfinite(labels)) or not np.all(np.mod(labels, 1) == 0):
            raise ValueError(f"'{labelmapPath}' is not a label map: it has non-integer voxel values")
        labels = labels.astype(np.int64)
    if labels.min() < 0:
        raise ValueError(f"Label map '{labelmapPath}' has negative label values ({int(labels.min())})")
    return labels


def _axisMapping(axes, size, origin, series):
    """[(series axis, sign)] for the label map's I, J, K axes, or a text saying why the grids differ."""
    seriesSize = np.array(series.shape[::-1])
    seriesSpacing = np.linalg.norm(series.axes, axis=0)
    mapping = []
    for m in range(3):
        length = np.linalg.norm(axes[:, m])
        cosines = series.axes.T @ axes[:, m] / (seriesSpacing * length)
        n = int(np.argmax(np.abs(cosines)))
        if abs(abs(cosines[n]) - 1) > DIRECTION_TOLERANCE or n in [a for a, _ in mapping]:
            return f"its axis {'IJK'[m]} is not along a column, row or slice direction of the series"
        if abs(length - seriesSpacing[n]) > SPACING_TOLERANCE_FRACTION * seriesSpacing[n]:
            return f"its spacing along {'IJK'[m]} is {length:g} mm, the series' {seriesSpacing[n]:g} mm"
        if size[m] != seriesSize[n]:
            return f"it has {size[m]} voxels along {'IJK'[m]}, the series {seriesSize[n]}"
        mapping.append((n, 1 if cosines[n] > 0 else -1))
    tolerance = POSITION_TOLERANCE_FRACTION * seriesSpacing.min()
    for corner in (np.zeros(3), size - 1):
        seriesIndex = np.zeros(3)
        for m, (n, sign) in enumerate(mapping):
            seriesIndex[n] = corner[m] if sign > 0 else seriesSize[n] - 1 - corner[m]
        distance = np.linalg.norm(origin + axes @ corner - (series.origin + series.axes @ seriesIndex))
        if distance > tolerance:
            return f"its voxels lie {distance:.3f} mm away from the series' voxels"
    return mapping


def _reindex(array, mapping):
    """KJI array of the label map -> the series' KJI order (a transpose and flips; no interpolation)."""
    labelAxisOf = {n: m for m, (n, _) in enumerate(mapping)}
    # numpy axis t holds ijk axis 2 - t on both sides
    reordered = np.transpose(array, [2 - labelAxisOf[2 - t] for t in range(3)])
    flips = tuple(2 - n for n, sign in mapping if sign < 0)
    return np.ascontiguousarray(np.flip(reordered, flips) if flips else reordered)


# ---------------------------------------------------------------------------------------------------------------
# Writing and reading
# ---------------------------------------------------------------------------------------------------------------

def _labelEntry(labelNames, value):
    entry = (labelNames or {}).get(value)
    if isinstance(entry, dict):
        return dict(entry, name=str(entry.get("name") or f"Label {value}"))
    return {"name": str(entry) if entry not in (None, "") else f"Label {value}"}


def _codedConcept(code):
    from highdicom.sr import CodedConcept

    parts = list(code or [])
    if len(parts) >= 2 and all(str(p).strip() for p in parts[:2]):
        scheme, value = str(parts[0]), str(parts[1])
        meaning = str(parts[2]) if len(parts) > 2 and str(parts[2]).strip() else value
        return CodedConcept(value=value, scheme_designator=scheme, meaning=meaning[:64])
    return None


def _segmentDescriptions(values, labelNames, algorithmIdentification):
    hd = _highdicom()

    generic = _codedConcept(GENERIC_CODE)
    descriptions = []
    for number, value in enumerate(values, start=1):
        entry = _labelEntry(labelNames, value)
        rgb = entry.get("color")
        rgb = [int(c) for c in rgb] if rgb else [int(round(255 * c)) for c in distinctColor(value)]
        description = hd.seg.SegmentDescription(
            segment_number=number, segment_label=entry["name"][:64],
            segmented_property_category=_codedConcept(entry.get("category")) or generic,
            segmented_property_type=_codedConcept(entry.get("type")) or generic,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithmIdentification,
            display_color=hd.color.CIELabColor.from_rgb(*rgb))
        description.SegmentDescription = LABEL_VALUE_DESCRIPTION.format(value)
        descriptions.append(description)
    return descriptions


def _provenanceText(value):
    """Text of a provenance value: a table such as the backend's package versions as "name value, ..."."""
    if isinstance(value, dict):
        return ", ".join(f"{key} {_provenanceText(item)}" for key, item in sorted(value.items()))
    return "" if value is None else str(value)


def _algorithmIdentification(algorithm):
    hd = _highdicom()
    from pydicom.sr.codedict import codes

    algorithm = dict(algorithm or {})
    version = _provenanceText(algorithm.get("version")) or "unspecified"
    parameters = {str(key): _provenanceText(value) for key, value in algorithm.items() if value not in (None, "")}
    return hd.AlgorithmIdentificationSequence(name="AISegmentation", family=codes.cid7162.ArtificialIntelligence,
                                              version=version[:64], source=str(algorithm.get("name") or "")[:64]
                                              or None, parameters=parameters or None)


def writeDicomSeg(labelmapPath, labelNames, dicomFolder, outputPath, seriesDescription="AISegmentation",
                  algorithm=None, seriesNumber=DEFAULT_SERIES_NUMBER):
    """Write a DICOM SEG of the label map file that references the series in dicomFolder; returns outputPath.

    labelNames: {int value: name} or {int value: {"name", optional "category"/"type" codes (scheme, value,
    meaning), "color" (r, g, b 0..255)}} (a backend's label table). algorithm: optional {"name": backend,
    "version": text or {package: version}, more provenance} (a case record's "backend"): the algorithm
    identification's source, version and parameters.
    ValueError (nothing written) for a label map off the series' grid, a source the SEG cannot reference, or a
    label map without any label. The file appears complete or not at all.
    """
    outputPath = requireWritableOutput(outputPath)
    series = SourceSeries(dicomFolder)
    labels = readLabelsOnSeriesGrid(labelmapPath, series)
    return writeDicomSegArray(labels, labelNames, series, outputPath, seriesDescription, algorithm, seriesNumber,
                              what=f"Label map '{labelmapPath}'")


def labelValuesOnSeries(labels, series, what, kind):
    """The label array's values (> 0, sorted); ValueError (nothing written) for another shape than the series', no
    label, or negative values."""
    if tuple(labels.shape) != tuple(series.shape):
        raise ValueError(f"{what} has shape {tuple(labels.shape)}, the series {tuple(series.shape)}: nothing written")
    values = [int(v) for v in np.unique(labels) if v != 0]
    if not values:
        raise ValueError(f"{what} holds no label (all voxels are 0): no {kind} to write")
    if values[0] < 0:
        raise ValueError(f"{what} has negative label values ({values[0]}): no {kind} to write")
    return values


def writeDicomSegArray(labels, labelNames, series, outputPath, seriesDescription="AISegmentation", algorithm=None,
                       seriesNumber=DEFAULT_SERIES_NUMBER, what="The segmentation"):
    """writeDicomSeg for a label array already in the SourceSeries' KJI order (the one writer of DICOM SEG: the
    cohort's label map files and the Logic's segmentation nodes both come here)."""
    hd = _highdicom()
    from pydicom.uid import generate_uid

    outputPath = requireWritableOutput(outputPath)
    values = labelValuesOnSeries(labels, series, what, "DICOM SEG")
    names = {int(k): v for k, v in (labelNames or {}).items()}
    lookup = np.zeros(int(labels.max()) + 1, np.uint16)
    lookup[values] = np.arange(1, len(values) + 1)
    segmentNumbers = lookup[labels]
    segmentation = hd.seg.Segmentation(
        source_images=series.datasets, pixel_array=segmentNumbers,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=_segmentDescriptions(values, names, _algorithmIdentification(algorithm)),
        series_instance_uid=generate_uid(), series_number=int(seriesNumber), sop_instance_uid=generate_uid(),
        instance_number=1, manufacturer="AISegmentation", manufacturer_model_name="AISegmentation",
        software_versions=(_provenanceText((algorithm or {}).get("version")) or "unspecified")[:64],
        device_serial_number="0",
        content_description=str(seriesDescription)[:64], series_description=str(seriesDescription)[:64])
    with atomicOutput(outputPath) as temporary:
        segmentation.save_as(temporary, enforce_file_format=True)
    logging.info("DICOM SEG of %d segments written to %s (source series %s)", len(values), outputPath,
                 series.seriesInstanceUid)
    return outputPath


def readDicomSeg(path, dicomFolder):
    """(label array in the source series' KJI order, {value: name}) of a DICOM SEG of the series in dicomFolder.
    Segments written by writeDicomSeg get their source label values back; others their segment numbers.
    ValueError when the file is no Segmentation or does not reference that series."""
    labels, entries = readDicomSegEntries(path, SourceSeries(dicomFolder))
    return labels, {value: entry["name"] for value, entry in entries.items()}


def readDicomSegEntries(path, series):
    """readDicomSeg on a SourceSeries, with each segment's {"name", "color" (r, g, b 0..255), "category", "type"
    (scheme, value, meaning)} as writeDicomSeg takes them."""
    hd = _highdicom()

    path = os.fspath(path)
    try:
        segmentation = hd.seg.segread(path)
    except Exception as error:  # InvalidDicomError, a non-SEG data set, a malformed one
        raise ValueError(f"'{path}' is not a readable DICOM Segmentation: {error}") from None
    referenced = {str(item.SeriesInstanceUID) for item in segmentation.get("ReferencedSeriesSequence", [])}
    if series.seriesInstanceUid not in referenced:
        raise ValueError(f"DICOM SEG '{path}' does not reference the series in '{series.folder}' "
                         f"({series.seriesInstanceUid}); it references {sorted(referenced)}")
    values = {}
    for item in segmentation.SegmentSequence:
        match = LABEL_VALUE_PATTERN.match(str(item.get("SegmentDescription", "")))
        values[int(item.SegmentNumber)] = (int(match.group(1)) if match else int(item.SegmentNumber),
                                           _segmentEntry(item))
    try:
        numbers = segmentation.get_pixels_by_source_instance(
            source_sop_instance_uids=series.sopInstanceUids, combine_segments=True, relabel=False,
            assert_missing_frames_are_empty=True)
    except Exception as error:  # noqa: BLE001 - overlapping segments, frames of other instances, malformed data
        raise ValueError(f"DICOM SEG '{path}' cannot be read onto its series: {error}") from None
    largest = max((value for value, _ in values.values()), default=0)
    lookup = np.zeros(max(values, default=0) + 1, np.uint16 if largest <= 65535 else np.int64)
    for number, (value, _) in values.items():
        lookup[number] = value
    return lookup[numbers], {value: entry for value, entry in values.values()}


def _segmentEntry(item):
    """{"name", "color", "category", "type"} of a SegmentSequence item."""
    hd = _highdicom()

    entry = {"name": str(item.get("SegmentLabel") or f"Segment {item.SegmentNumber}")}
    lab = item.get("RecommendedDisplayCIELabValue")
    if lab is not None and len(lab) == 3:
        with contextlib.suppress(ValueError, TypeError):
            entry["color"] = [int(c) for c in hd.color.CIELabColor.from_dicom_value([int(v) for v in lab]).to_rgb()]
    for key, keyword in (("category", "SegmentedPropertyCategoryCodeSequence"),
                         ("type", "SegmentedPropertyTypeCodeSequence")):
        codes = item.get(keyword)
        if codes:
            code = codes[0]
            entry[key] = (str(code.get("CodingSchemeDesignator", "")), str(code.get("CodeValue", "")),
                          str(code.get("CodeMeaning", "")))
    return entry
