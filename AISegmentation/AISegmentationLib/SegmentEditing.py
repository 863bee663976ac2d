"""The one place where AISegmentation writes into segments: Slicer's segment editor logic.

Classic tools and AI results alike go through :class:`SegmentEditor.modifySegments`, which saves an undo state and
calls ``vtkSlicerSegmentEditorLogic.ModifySegmentByLabelmap``, so mask mode, overwrite mode and the intensity mask
range behave exactly as in Slicer's Segment Editor.
"""

import contextlib
import logging
from collections.abc import Mapping

import numpy as np
import slicer

from .Geometry import arrayFromImage, orientedImageFromArray, sameGeometry, volumeGeometryDescription, volumeImage

class SlicerConstants(Mapping):
    """{name: value of a Slicer class constant}, read from `slicer` when a value is asked for, not at import.

    Inside desktop Slicer this module is imported when AISegmentation.py runs, before the Segmentations module is
    instantiated: `slicer` then holds the startup kits only (vtkMRMLSegmentationNode is in MRML Core), and
    vtkMRMLSegmentEditorNode / vtkSlicerSegmentEditorLogic arrive with the Segmentations module's wrappers. The names
    (keys) are known at import; the values only at first use."""

    def __init__(self, className, constants):
        self._className = className
        self._constants = constants

    def __getitem__(self, name):
        return getattr(getattr(slicer, self._className), self._constants[name])

    def __iter__(self):
        return iter(self._constants)

    def __len__(self):
        return len(self._constants)


MASK_MODES = SlicerConstants("vtkMRMLSegmentationNode", {
    "everywhere": "EditAllowedEverywhere",
    "insideAllSegments": "EditAllowedInsideAllSegments",
    "insideVisibleSegments": "EditAllowedInsideVisibleSegments",
    "outsideAllSegments": "EditAllowedOutsideAllSegments",
    "outsideVisibleSegments": "EditAllowedOutsideVisibleSegments",
    "insideSingleSegment": "EditAllowedInsideSingleSegment",
})

OVERWRITE_MODES = SlicerConstants("vtkMRMLSegmentEditorNode", {
    "allSegments": "OverwriteAllSegments",
    "visibleSegments": "OverwriteVisibleSegments",
    "none": "OverwriteNone",
})

MODIFICATION_MODES = SlicerConstants("vtkSlicerSegmentEditorLogic", {
    "set": "ModificationModeSet",
    "add": "ModificationModeAdd",
    "remove": "ModificationModeRemove",
    "removeAll": "ModificationModeRemoveAll",
})

EDITOR_NODE_SINGLETON_TAG = "AISegmentation"


def _choice(value, choices, what):
    if value not in choices:
        raise ValueError(f"Unknown {what} '{value}'; choose one of: {', '.join(choices)}")
    return choices[value]


def requireSegment(segmentationNode, segmentId):
    """The vtkSegment of segmentId, or a ValueError that lists the segments that exist."""
    if segmentationNode is None:
        raise ValueError("No segmentation node given")
    segment = segmentationNode.GetSegmentation().GetSegment(segmentId) if segmentId else None
    if segment is None:
        existing = list(segmentationNode.GetSegmentation().GetSegmentIDs())
        raise ValueError(f"Segmentation '{segmentationNode.GetName()}' has no segment '{segmentId}' "
                         f"(segments: {', '.join(existing) or 'none'})")
    return segment


def requireVolume(volumeNode, what="source volume"):
    if volumeNode is None or volumeNode.GetImageData() is None:
        raise ValueError(f"No {what} selected (or the volume has no image data)")
    if volumeNode.GetImageData().GetNumberOfScalarComponents() != 1:
        logging.warning("Volume '%s' has several components; only the first is used", volumeNode.GetName())
    return volumeNode


class SegmentEditor:
    """Segment editor logic + its parameter node (masking settings) for one scene."""

    def __init__(self, scene):
        self.scene = scene
        self.editorNode = self._editorNode()
        self.editorLogic = slicer.vtkSlicerSegmentEditorLogic()
        self.editorLogic.SetMRMLScene(scene)
        self.editorLogic.SetSegmentEditorNode(self.editorNode)
        self.sharedUndoEditor = None
        self.busyWith = None  # the long operation running now (a comparison, a prompt): no write meanwhile

    def _editorNode(self):
        node = self.scene.GetSingletonNode(EDITOR_NODE_SINGLETON_TAG, "vtkMRMLSegmentEditorNode")
        if node is None:
            node = slicer.vtkMRMLSegmentEditorNode()
            node.SetSingletonTag(EDITOR_NODE_SINGLETON_TAG)
            node.SetName("AISegmentation segment editor")
            node = self.scene.AddNode(node)
        return node

    # Masking --------------------------------------------------------------------------------------------------

    def setMasking(self, maskMode="everywhere", maskSegmentId=None, overwriteMode="allSegments",
                   intensityRange=None):
        """Editable area as in the Segment Editor's "Masking" section.

        maskMode: everywhere, insideAllSegments, insideVisibleSegments, outsideAllSegments, outsideVisibleSegments
        or insideSingleSegment (then maskSegmentId names the segment); overwriteMode: allSegments, visibleSegments
        or none; intensityRange: (min, max) of source intensities that may be edited, or None for no limit.
        """
        mode = _choice(maskMode, MASK_MODES, "mask mode")
        overwrite = _choice(overwriteMode, OVERWRITE_MODES, "overwrite mode")
        if mode == slicer.vtkMRMLSegmentationNode.EditAllowedInsideSingleSegment and not maskSegmentId:
            raise ValueError("Mask mode 'insideSingleSegment' needs maskSegmentId")
        if intensityRange is not None and not intensityRange[0] <= intensityRange[1]:
            raise ValueError(f"Intensity range {tuple(intensityRange)} has minimum above maximum")
        self.editorNode.SetMaskMode(mode)
        self.editorNode.SetMaskSegmentID(maskSegmentId or "")
        self.editorNode.SetOverwriteMode(overwrite)
        self.editorNode.SetSourceVolumeIntensityMask(intensityRange is not None)
        if intensityRange is not None:
            self.editorNode.SetSourceVolumeIntensityMaskRange(float(intensityRange[0]), float(intensityRange[1]))

    def masking(self):
        """Current masking settings, in the names that setMasking takes."""
        node = self.editorNode
        return {
            "maskMode": next(k for k, v in MASK_MODES.items() if v == node.GetMaskMode()),
            "maskSegmentId": node.GetMaskSegmentID() or None,
            "overwriteMode": next(k for k, v in OVERWRITE_MODES.items() if v == node.GetOverwriteMode()),
            "intensityRange": tuple(node.GetSourceVolumeIntensityMaskRange())
            if node.GetSourceVolumeIntensityMask() else None,
        }

    # Binding and reading ----------------------------------------------------------------------------------------

    def bind(self, segmentationNode, sourceVolumeNode):
        """Point the editor at a segmentation and its source volume; returns the aligned source image.

        The segmentation's reference geometry must be the volume's (it is set from the volume when the
        segmentation has none yet); otherwise a ValueError explains the mismatch and nothing is changed.
        """
        requireVolume(sourceVolumeNode)
        if segmentationNode is None:
            raise ValueError("No segmentation node given")
        self._requireMatchingGeometry(segmentationNode, sourceVolumeNode)
        self.editorNode.SetAndObserveSegmentationNode(segmentationNode)
        self.editorNode.SetAndObserveSourceVolumeNode(sourceVolumeNode)
        self.editorLogic.SetSegmentationNode(segmentationNode)
        self.editorLogic.SetSourceVolumeNode(sourceVolumeNode)
        if not self.editorLogic.UpdateAlignedSourceVolume():
            raise ValueError(f"Could not align volume '{sourceVolumeNode.GetName()}' with segmentation "
                             f"'{segmentationNode.GetName()}'")
        return self.editorLogic.GetAlignedSourceVolume()

    def _requireMatchingGeometry(self, segmentationNode, volumeNode):
        geometryString = segmentationNode.GetSegmentation().GetConversionParameter(
            slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName())
        if not geometryString:
            segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(volumeNode)
            return
        segmentationGeometry = slicer.vtkOrientedImageData()
        slicer.vtkSegmentationConverter.DeserializeImageGeometry(geometryString, segmentationGeometry, False)
        volumeGeometry = volumeImage(volumeNode)
        if not sameGeometry(segmentationGeometry, volumeGeometry):
            raise ValueError(
                f"Segmentation '{segmentationNode.GetName()}' and volume '{volumeNode.GetName()}' have different "
                f"geometry (volume: {volumeGeometryDescription(volumeNode)}; segmentation: extent "
                f"{segmentationGeometry.GetExtent()}, spacing {tuple(round(s, 4) for s in segmentationGeometry.GetSpacing())}"
                f", origin {tuple(round(o, 3) for o in segmentationGeometry.GetOrigin())}). Use a segmentation made "
                f"for this volume, or set its geometry with SetReferenceImageGeometryParameterFromVolumeNode.")

    def segmentLabelmap(self, segmentationNode, segmentId, sourceVolumeNode):
        """Binary labelmap (oriented image, aligned with the source volume) of one segment."""
        requireSegment(segmentationNode, segmentId)
        aligned = self.bind(segmentationNode, sourceVolumeNode)
        labelmap = slicer.vtkOrientedImageData()
        segmentationNode.GetBinaryLabelmapRepresentation(segmentId, labelmap)
        result = orientedImageFromArray(np.zeros(aligned.GetDimensions()[::-1], np.uint8), aligned)
        if labelmap.GetPointData().GetScalars() is not None and not labelmap.IsEmpty():
            resampled = slicer.vtkOrientedImageData()
            slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
                labelmap, aligned, resampled, False, True)
            arrayFromImage(result)[:] = arrayFromImage(resampled) != 0
        return result

    def segmentLabelmapArray(self, segmentationNode, segmentId, sourceVolumeNode):
        """KJI uint8 0/1 array of one segment on the source volume's grid."""
        return arrayFromImage(self.segmentLabelmap(segmentationNode, segmentId, sourceVolumeNode)).copy()

    # Writing ---------------------------------------------------------------------------------------------------

    def modifySegments(self, segmentationNode, sourceVolumeNode, labelmaps, mode="set", saveUndoState=True):
        """Write {segmentId: oriented binary labelmap} with one undo state for the whole change.

        saveUndoState=False when the caller saved the undo state itself, before an earlier part of the same change
        (e.g. adding the segments), so that one Undo reverts all of it."""
        self.requireIdle()
        modification = _choice(mode, MODIFICATION_MODES, "modification mode")
        for segmentId in labelmaps:
            requireSegment(segmentationNode, segmentId)
        self.bind(segmentationNode, sourceVolumeNode)
        if saveUndoState:
            self.saveStateForUndo(segmentationNode)
        for segmentId, labelmap in labelmaps.items():
            self.editorNode.SetSelectedSegmentID(segmentId)
            self.editorLogic.ModifySegmentByLabelmap(segmentationNode, segmentId, labelmap, modification, False, False)
        segmentationNode.Modified()

    def modifySegment(self, segmentationNode, segmentId, sourceVolumeNode, labelmap, mode="set"):
        self.modifySegments(segmentationNode, sourceVolumeNode, {segmentId: labelmap}, mode)

    # Undo history -----------------------------------------------------------------------------------------------

    def useUndoHistoryOf(self, editorWidget):
        """Write undo states into an embedded segment editor's history instead of this logic's own.

        Desktop Slicer's qMRMLSegmentEditorWidget keeps its own vtkSlicerSegmentEditorLogic and undo history (its
        constructor; its Undo/Redo buttons and the Z / Ctrl+Z shortcuts it installs while shown act on that one).
        With the widget given here, every write into the segmentation the widget shows saves its state through the
        widget's public slot saveStateForUndo(), and undo()/redo() are the widget's: one history for paint strokes,
        tools and AI results. Writes into another segmentation keep this logic's own history. None: own history."""
        self.sharedUndoEditor = editorWidget

    def _sharedHistory(self, segmentationNode):
        widget = self.sharedUndoEditor
        if widget is None or segmentationNode is None:
            return None
        shown = widget.segmentationNode()
        return widget if shown is not None and shown.GetID() == segmentationNode.GetID() else None

    # One long operation at a time --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def exclusive(self, what):
        """No segment is written while `what` runs: a GUI that repaints during a long operation (progress, events)
        cannot re-enter a tool, an AI result or a prompt in the middle of it. The operation writes after it ends."""
        self.beginExclusive(what)
        try:
            yield
        finally:
            self.endExclusive()

    def beginExclusive(self, what):
        if self.busyWith is not None:
            raise ValueError(f"{self.busyWith[0].upper()}{self.busyWith[1:]} is already running: wait for it to finish "
                             f"or cancel it")
        self.busyWith = what

    def endExclusive(self):
        self.busyWith = None

    def requireIdle(self):
        if self.busyWith is not None:
            raise ValueError(f"{self.busyWith[0].upper()}{self.busyWith[1:]} is running: nothing was changed; try "
                             f"again when it has finished")

    def saveStateForUndo(self, segmentationNode):
        """Save the undo state before a change of segmentationNode (in the history that owns it)."""
        self.requireIdle()
        shared = self._sharedHistory(segmentationNode)
        if shared is not None:
            shared.saveStateForUndo()
        else:
            self.editorLogic.SaveStateForUndo()

    def canUndo(self, segmentationNode):
        if self._sharedHistory(segmentationNode) is not None:
            return True  # the embedded editor's history: its Undo button shows whether there is a state
        return self.editorLogic.GetSegmentationNode() is segmentationNode and self.editorLogic.CanUndo()

    def undo(self, segmentationNode):
        """Undo the last change of segmentationNode; ValueError when there is nothing to undo."""
        self.requireIdle()
        shared = self._sharedHistory(segmentationNode)
        if shared is not None:
            shared.undo()
            return
        if not self.canUndo(segmentationNode):
            raise ValueError(f"Nothing to undo in segmentation '{segmentationNode.GetName()}'")
        self.editorLogic.Undo()

    def redo(self, segmentationNode):
        self.requireIdle()
        shared = self._sharedHistory(segmentationNode)
        if shared is not None:
            shared.redo()
            return
        if self.editorLogic.GetSegmentationNode() is not segmentationNode or not self.editorLogic.CanRedo():
            raise ValueError(f"Nothing to redo in segmentation '{segmentationNode.GetName()}'")
        self.editorLogic.Redo()


def _nodeId(node):
    return node.GetID() if node is not None else None


def showInputsInEditor(editorWidget, segmentationNode, sourceVolumeNode):
    """Point an embedded segment editor (qMRMLSegmentEditorWidget) at the panel's segmentation and source volume.

    The source volume is given only once a segmentation is set: vtkSlicerSegmentEditorLogic::SetSourceVolumeNode
    refuses it before with an error in the log (the widget's logic is verbose), and the panel's parameter node
    changes often. Returns True when the editor's segmentation changed."""
    segmentationChanged = _nodeId(segmentationNode) != _nodeId(editorWidget.segmentationNode())
    if segmentationChanged:
        editorWidget.setSegmentationNode(segmentationNode)
    if segmentationNode is not None and _nodeId(sourceVolumeNode) != _nodeId(editorWidget.sourceVolumeNode()):
        editorWidget.setSourceVolumeNode(sourceVolumeNode)
    return segmentationChanged
