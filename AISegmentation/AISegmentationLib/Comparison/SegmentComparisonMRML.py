"""Segment comparison on MRML segmentations: one segment pair or all pairs of two segmentation nodes, results as a
table node and CSV. The metrics themselves come from the Slicer-free engine :mod:`SegmentComparison`.

Both sides are placed on the reference segmentation's geometry, with the compared segmentation's parent transform
(relative to the reference's) applied: each shared labelmap layer is read once and resampled (nearest neighbour,
padded so that no segment is cut off) only when its voxels are not reference voxels, so different spacing, extent,
orientation and linear or non-linear transforms are handled; each pair is compared on its own bounding box (see
:mod:`SegmentComparisonLayers`).
"""

import vtk

from ..SegmentEditing import requireSegment
from . import SegmentComparison, SegmentComparisonLayers
from .LabelMatching import matchStructures, readLabelMapping
from .Metrics import METRICS

# (column title, ComparisonResult attribute) of every declared metric; units are in the titles.
TABLE_COLUMNS = [(metric.columnTitle(), metric.key) for metric in METRICS]


def sides(referenceNode, referenceIds, comparedNode, comparedIds):
    """(reference Side, compared Side, spacing) on the reference segmentation's geometry (IDs of None skipped)."""
    referenceIds, comparedIds = _unique(referenceIds), _unique(comparedIds)
    geometry = SegmentComparisonLayers.referenceGeometry(referenceNode)
    referenceTransform = referenceNode.GetParentTransformNode()
    referenceSide = SegmentComparisonLayers.segmentationSide(referenceNode, referenceIds, geometry, referenceTransform)
    comparedSide = SegmentComparisonLayers.segmentationSide(comparedNode, comparedIds, geometry, referenceTransform)
    return referenceSide, comparedSide, SegmentComparisonLayers.geometrySpacing(geometry)


def segmentMasks(referenceNode, referenceSegmentId, comparedNode, comparedSegmentId):
    """(reference mask, compared mask, spacing in array-axis order) on the reference segmentation's lattice, cropped
    to the union of the two segments' bounding boxes (the metrics do not depend on the crop)."""
    requireSegment(referenceNode, referenceSegmentId)
    requireSegment(comparedNode, comparedSegmentId)
    referenceSide, comparedSide, spacing = sides(referenceNode, [referenceSegmentId], comparedNode,
                                                  [comparedSegmentId])
    reference, compared = SegmentComparisonLayers.pairMasks(referenceSide, referenceSegmentId, comparedSide,
                                                            comparedSegmentId)
    return reference, compared, spacing


def compareSegments(referenceNode, referenceSegmentId, comparedNode, comparedSegmentId, **options):
    """ComparisonResult of one segment pair; options as SegmentComparison.compareMasks (device, hausdorff95Mode...)."""
    reference, compared, spacing = segmentMasks(referenceNode, referenceSegmentId, comparedNode, comparedSegmentId)
    return SegmentComparison.compareMasks(reference, compared, spacing, **options)


def _segments(segmentationNode):
    segmentation = segmentationNode.GetSegmentation()
    segments = {segmentId: segmentation.GetSegment(segmentId) for segmentId in segmentation.GetSegmentIDs()}
    return {segmentId: (segment.GetName(), segment.GetLabelValue()) for segmentId, segment in segments.items()}


def matchSegments(referenceNode, comparedNode, match="auto", mapping=None, referenceNamed=True, comparedNamed=True):
    """[(reference segment ID, compared segment ID, structure name)]: every segment of either side, None for the side
    without it (reference order, then the compared-only ones). match: "value", "name" or "auto" (by name when both
    sides carry names: a segmentation does, a label map imported without a name table does not - say so with
    referenceNamed / comparedNamed); mapping: a label mapping (LabelMatching.readLabelMapping)."""
    return matchStructures(_segments(referenceNode), _segments(comparedNode), match, readLabelMapping(mapping),
                           referenceNamed, comparedNamed)


def matchSegmentsByName(referenceNode, comparedNode):
    """[(reference segment ID, compared segment ID)] by segment name (case-insensitive): every segment of either
    side, with None for the side without a segment of that name (reference order, then the compared-only ones)."""
    return [pair[:2] for pair in matchSegments(referenceNode, comparedNode, "name")]


def matchSegmentsByLabelValue(referenceNode, comparedNode):
    """[(reference segment ID, compared segment ID)] by label value: every segment of either side, with None for
    the side without a segment of that value (several compared segments of one value: the last is paired)."""
    return [pair[:2] for pair in matchSegments(referenceNode, comparedNode, "value")]


def compareSegmentations(referenceNode, comparedNode, pairs=None, progressCallback=None, match="auto", mapping=None,
                         **options):
    """Compare segment pairs: [(reference ID, compared ID)] or [(reference ID, compared ID, structure name)], either
    ID None for a structure that side lacks (default: :func:`matchSegments` with match and mapping). Returns rows:
    dicts with the segment names (None for the side without the structure), "structure" and the ComparisonResult
    under "result". progressCallback(fraction, message) is called before each pair."""
    if pairs is None:
        pairs = matchSegments(referenceNode, comparedNode, match, mapping)
    pairs = list(pairs)
    if not pairs:
        raise ValueError(f"No segments to compare: '{referenceNode.GetName()}' and '{comparedNode.GetName()}' have "
                         "none")
    for pair in pairs:
        referenceId, comparedId = pair[:2]
        if referenceId is None and comparedId is None:
            raise ValueError("A segment pair needs a reference or a compared segment, got (None, None)")
        if referenceId is not None:
            requireSegment(referenceNode, referenceId)
        if comparedId is not None:
            requireSegment(comparedNode, comparedId)
    referenceSide, comparedSide, spacing = sides(referenceNode, _unique(p[0] for p in pairs), comparedNode,
                                                  _unique(p[1] for p in pairs))
    return SegmentComparisonLayers.compareSides(referenceSide, comparedSide, pairs, spacing, progressCallback,
                                                **options)


def _unique(keys):
    return [key for key in dict.fromkeys(keys) if key is not None]


def _columnTitles(rows):
    tolerance = rows[0]["result"].surfaceDiceTolerance if rows else 2.0
    percentile = rows[0]["result"].hausdorffPercentile if rows else 95
    return (["Reference segment", "Compared segment"]
            + [metric.columnTitle(tolerance, percentile) for metric in METRICS]
            + ["Note", "Structure"])


def _rowValues(row):
    result = row["result"]
    return [row["referenceSegment"] or "", row["comparedSegment"] or ""] + [
        float(getattr(result, metric.key)) for metric in METRICS] + [result.note, row.get("structure") or ""]


def rowsToTableNode(scene, rows, tableNode=None, name="Segment comparison"):
    """Write comparison rows into a vtkMRMLTableNode (one row per pair, units in the column names)."""
    if tableNode is None:
        tableNode = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    table = tableNode.GetTable()
    table.Initialize()
    titles = _columnTitles(rows)
    for index, title in enumerate(titles):
        column = vtk.vtkStringArray() if index in (0, 1, len(titles) - 2, len(titles) - 1) else vtk.vtkDoubleArray()
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
    from ..CsvOutput import writeCsv

    return writeCsv(path, _columnTitles(rows), [_rowValues(row) for row in rows])
