"""Writing a server result into a segment: only the changed region, through Slicer's segment editor logic.

The segment becomes the result inside the changed box and stays as it is outside. Two cropped labelmaps go through
``vtkSlicerSegmentEditorLogic.ModifySegmentByLabelmap`` after one ``SaveStateForUndo``: "remove" where the result is
0 and "add" where it is 1. So mask mode, overwrite mode and the intensity range apply exactly as in the Segment Editor
(a prompt never erases a segment the user protected), and one undo reverts the whole prompt. ("set" with a cropped
labelmap would clear the segment outside the box, even with a modification extent.)
"""

import numpy as np
import slicer

from ..Geometry import croppedLabelmap
from ..SegmentEditing import requireSegment


def writeRegion(segmentEditor, segmentationNode, segmentId, volumeNode, region):
    """Make the segment equal to region.mask inside region.box (one undo state); returns True when written."""
    requireSegment(segmentationNode, segmentId)
    if region.isEmpty:
        return False
    aligned = segmentEditor.bind(segmentationNode, volumeNode)
    dimensions = aligned.GetDimensions()
    if not all(0 <= lo <= hi <= size for (lo, hi), size in zip(region.box, dimensions[::-1])):
        raise ValueError(f"Refusing to write the changed box {region.box}: it lies outside the volume's grid "
                         f"(KJI size {tuple(dimensions[::-1])})")
    mask = np.asarray(region.mask, np.uint8)
    logic = segmentEditor.editorLogic
    segmentEditor.saveStateForUndo(segmentationNode)
    segmentEditor.editorNode.SetSelectedSegmentID(segmentId)
    modes = slicer.vtkSlicerSegmentEditorLogic
    if not mask.all():
        logic.ModifySegmentByLabelmap(segmentationNode, segmentId, croppedLabelmap(aligned, region.box, 1 - mask),
                                      modes.ModificationModeRemove, False, False)
    if mask.any():
        logic.ModifySegmentByLabelmap(segmentationNode, segmentId, croppedLabelmap(aligned, region.box, mask),
                                      modes.ModificationModeAdd, False, False)
    segmentationNode.Modified()
    return True


def clearSegment(segmentEditor, segmentationNode, segmentId, volumeNode):
    """Empty the segment (within the editable area) with one undo state."""
    aligned = segmentEditor.bind(segmentationNode, volumeNode)
    empty = croppedLabelmap(aligned, ((0, 1), (0, 1), (0, 1)), np.zeros((1, 1, 1), np.uint8))
    segmentEditor.modifySegments(segmentationNode, volumeNode, {segmentId: empty}, "set")
