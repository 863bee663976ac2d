"""Segment comparison on MRML segmentations: one segment pair or all pairs of two segmentation nodes, results as a
table node and CSV. The metrics themselves come from the Slicer-free engine :mod:`SegmentComparison`.

Both segments are resampled (nearest neighbour) onto the reference segmentation's geometry, with the compared
segmentation's parent transform (relative to the reference's) applied, and the grid is padded so that neither
segment is cut off. Different spacing, extent, orientation and linear or non-linear transforms are thus handled.
"""

import csv
import logging

import numpy as np
import slicer
import vtk

from . import SegmentComparison
from .Geometry import arrayFromImage
from .SegmentEditing import requireSegment

# (column title, ComparisonResult attribute); units are in the titles.
TABLE_COLUMNS = [
    ("Dice", "dice"),
    ("Jaccard", "jaccard"),
    ("Reference volume (mL)", "referenceVolume"),
    ("Compared volume (mL)", "comparedVolume"),
    ("Volume difference (mL)", "volumeDifference"),
    ("Hausdorff (mm)", "hausdorff"),
    ("Hausdorff 95% (mm)", "hausdorff95"),
    ("Average surface distance (mm)", "averageSurfaceDistance"),
    ("Surface Dice", "surfaceDice"),
]


def _referenceGeometry(segmentationNode):
    geometryString = segmentationNode.GetSegmentation().GetConversionParameter(
        slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName())
    geometry = slicer.vtkOrientedImageData()
    if geometryString:
        slicer.vtkSegmentationConverter.DeserializeImageGeometry(geometryString, geometry, False)
    else:
        # No reference geometry: use the segmentation's common labelmap geometry.
        geometryString = segmentationNode.GetSegmentation().DetermineCommonLabelmapGeometry(
            slicer.vtkSegmentation.EXTENT_UNION_OF_SEGMENTS, None)
        slicer.vtkSegmentationConverter.DeserializeImageGeometry(geometryString, geometry, False)
    return geometry


def _segmentOnGeometry(segmentationNode, segmentId, geometry, referenceTransformNode):
    """Binary labelmap of a segment resampled onto geometry (padded so the segment fits), or None if empty."""
    labelmap = slicer.vtkOrientedImageData()
    segmentationNode.GetBinaryLabelmapRepresentation(segmentId, labelmap)
    if labelmap.IsEmpty() or labelmap.GetPointData().GetScalars() is None or labelmap.GetScalarRange()[1] == 0:
        return None
    transform = vtk.vtkGeneralTransform()
    slicer.vtkMRMLTransformNode.GetTransformBetweenNodes(
        segmentationNode.GetParentTransformNode(), referenceTransformNode, transform)
    resampled = slicer.vtkOrientedImageData()
    if not slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
            labelmap, geometry, resampled, False, True, transform):
        raise ValueError(f"Could not resample segment '{segmentId}' of '{segmentationNode.GetName()}'")
    return resampled


def _padToExtent(image, extent):
    padder = vtk.vtkImageConstantPad()
    padder.SetInputData(image)
    padder.SetOutputWholeExtent(extent)
    padder.SetConstant(0)
    padder.Update()
    return arrayFromImage(padder.GetOutput()) != 0


def segmentMasks(referenceNode, referenceSegmentId, comparedNode, comparedSegmentId):
    """(reference mask, compared mask, spacing in array-axis order) on the reference segmentation's grid."""
    requireSegment(referenceNode, referenceSegmentId)
    requireSegment(comparedNode, comparedSegmentId)
    geometry = _referenceGeometry(referenceNode)
    referenceTransform = referenceNode.GetParentTransformNode()
    images = [_segmentOnGeometry(node, segmentId, geometry, referenceTransform)
              for node, segmentId in ((referenceNode, referenceSegmentId), (comparedNode, comparedSegmentId))]
    present = [image for image in images if image is not None]
    if not present:
        shape = (1, 1, 1)
        return np.zeros(shape, bool), np.zeros(shape, bool), tuple(geometry.GetSpacing()[::-1])
    extent = list(present[0].GetExtent())
    for image in present[1:]:
        other = image.GetExtent()
        extent = [min(extent[i], other[i]) if i % 2 == 0 else max(extent[i], other[i]) for i in range(6)]
    shape = tuple(extent[2 * axis + 1] - extent[2 * axis] + 1 for axis in (2, 1, 0))
    masks = [np.zeros(shape, bool) if image is None else _padToExtent(image, extent) for image in images]
    return masks[0], masks[1], tuple(geometry.GetSpacing()[::-1])


def compareSegments(referenceNode, referenceSegmentId, comparedNode, comparedSegmentId, **options):
    """ComparisonResult of one segment pair; options as SegmentComparison.compareMasks (device, hausdorff95Mode...)."""
    reference, compared, spacing = segmentMasks(referenceNode, referenceSegmentId, comparedNode, comparedSegmentId)
    return SegmentComparison.compareMasks(reference, compared, spacing, **options)


def matchSegmentsByName(referenceNode, comparedNode):
    """[(reference segment ID, compared segment ID)] for the segment names present in both (case-insensitive)."""
    compared = {}
    for segmentId in comparedNode.GetSegmentation().GetSegmentIDs():
        compared.setdefault(comparedNode.GetSegmentation().GetSegment(segmentId).GetName().strip().lower(), segmentId)
    pairs = []
    for segmentId in referenceNode.GetSegmentation().GetSegmentIDs():
        name = referenceNode.GetSegmentation().GetSegment(segmentId).GetName().strip().lower()
        if name in compared:
            pairs.append((segmentId, compared[name]))
    return pairs


def matchSegmentsByLabelValue(referenceNode, comparedNode):
    """[(reference segment ID, compared segment ID)] for the label values present in both."""
    compared = {comparedNode.GetSegmentation().GetSegment(i).GetLabelValue(): i
                for i in comparedNode.GetSegmentation().GetSegmentIDs()}
    return [(i, compared[referenceNode.GetSegmentation().GetSegment(i).GetLabelValue()])
            for i in referenceNode.GetSegmentation().GetSegmentIDs()
            if referenceNode.GetSegmentation().GetSegment(i).GetLabelValue() in compared]


def compareSegmentations(referenceNode, comparedNode, pairs=None, progressCallback=None, **options):
    """Compare segment pairs (default: matched by name). Returns rows: dicts with the segment names and the
    ComparisonResult under "result". progressCallback(fraction, message) is called before each pair."""
    pairs = matchSegmentsByName(referenceNode, comparedNode) if pairs is None else list(pairs)
    if not pairs:
        raise ValueError(f"No segment pairs to compare between '{referenceNode.GetName()}' and "
                         f"'{comparedNode.GetName()}' (no segment names in common)")
    rows = []
    for index, (referenceId, comparedId) in enumerate(pairs):
        referenceName = requireSegment(referenceNode, referenceId).GetName()
        comparedName = requireSegment(comparedNode, comparedId).GetName()
        if progressCallback:
            progressCallback(index / len(pairs), f"Comparing {referenceName} with {comparedName}")
        result = compareSegments(referenceNode, referenceId, comparedNode, comparedId, **options)
        rows.append({"referenceSegment": referenceName, "comparedSegment": comparedName, "result": result})
        logging.info("%s vs %s: Dice %.4f, HD95 %.2f mm", referenceName, comparedName, result.dice,
                     result.hausdorff95)
    if progressCallback:
        progressCallback(1.0, f"Compared {len(rows)} segment pairs")
    return rows


def _columnTitles(rows):
    tolerance = rows[0]["result"].surfaceDiceTolerance if rows else 2.0
    return ["Reference segment", "Compared segment"] + [
        f"Surface Dice ({tolerance:g} mm)" if attribute == "surfaceDice" else title
        for title, attribute in TABLE_COLUMNS] + ["Note"]


def _rowValues(row):
    result = row["result"]
    return [row["referenceSegment"], row["comparedSegment"]] + [
        float(getattr(result, attribute)) for _, attribute in TABLE_COLUMNS] + [result.note]


def rowsToTableNode(scene, rows, tableNode=None, name="Segment comparison"):
    """Write comparison rows into a vtkMRMLTableNode (one row per pair, units in the column names)."""
    if tableNode is None:
        tableNode = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    table = tableNode.GetTable()
    table.Initialize()
    titles = _columnTitles(rows)
    for index, title in enumerate(titles):
        column = vtk.vtkStringArray() if index in (0, 1, len(titles) - 1) else vtk.vtkDoubleArray()
        column.SetName(title)
        table.AddColumn(column)
    table.SetNumberOfRows(len(rows))
    for rowIndex, row in enumerate(rows):
        for columnIndex, value in enumerate(_rowValues(row)):
            table.SetValue(rowIndex, columnIndex, vtk.vtkVariant(value))
    tableNode.Modified()
    return tableNode


def rowsToCsv(rows, path):
    """Write comparison rows to a CSV file (same columns as the table node), atomically."""
    from .AtomicWrite import atomicOpen

    with atomicOpen(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(_columnTitles(rows))
        for row in rows:
            writer.writerow(_rowValues(row))
    return path
