"""The surface-distance map of a case's worst structure, drawn for the cohort report.

After the compare step, the structure that both sides have with the lowest Dice is taken on the case's volume
grid (reference and compared mask, one segment each, so that only that surface is built), its compared surface is
coloured by the signed distance to the reference surface (Comparison/ComparisonMaps.py) and drawn to a PNG
(Pictures/ComparisonPictures.py). The report shows it in the case's section, cases worst first.
"""

import math

import slicer


def worstStructure(metrics):
    """The metric row (CaseTask.metricRow) of the structure both sides have with the lowest finite Dice, or None."""
    rows = [row for row in metrics if row.get("referenceSegment") and row.get("comparedSegment")
            and isinstance(row.get("dice"), (int, float)) and math.isfinite(row["dice"])]
    return min(rows, key=lambda row: row["dice"]) if rows else None


def _singleSegment(logic, volumeNode, mask, name):
    node = logic.createSegmentation(volumeNode, f"{name} (distance map)")
    segmentId = logic.addSegment(node, name)
    logic.writeLabelmapArray(node, segmentId, volumeNode, mask)
    return node


def _mask(node, segmentName, volumeNode):
    segmentId = node.GetSegmentation().GetSegmentIdBySegmentName(segmentName)
    if not segmentId:
        raise ValueError(f"Segmentation '{node.GetName()}' has no segment '{segmentName}'")
    return slicer.util.arrayFromSegmentBinaryLabelmap(node, segmentId, volumeNode)


def drawWorstDistanceMap(logic, volumeNode, referenceNode, comparedNode, metrics, path):
    """Draw the worst structure's distance map to path; returns (path, metric row), or (None, None) when no
    structure is on both sides. The temporary nodes are removed."""
    from ..Pictures.ComparisonPictures import renderDistanceMap

    row = worstStructure(metrics)
    if row is None:
        return None, None
    structure = row.get("structure") or row["referenceSegment"]
    made = []
    try:
        for node, name in ((referenceNode, row["referenceSegment"]), (comparedNode, row["comparedSegment"])):
            made.append(_singleSegment(logic, volumeNode, _mask(node, name, volumeNode), structure))
        models = logic.comparisonDistanceMap(*made)
        made += [model for _structure, model in models]
        if not models:
            return None, None
        return renderDistanceMap(structure, models[0][1], path), row
    finally:
        for node in made:
            logic.scene.RemoveNode(node)
