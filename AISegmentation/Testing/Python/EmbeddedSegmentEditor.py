"""The parts of desktop Slicer's qMRMLSegmentEditorWidget that the module relies on, on real slicer-core objects.

qMRMLSegmentEditorWidget (Modules/Loadable/Segmentations/Widgets/qMRMLSegmentEditorWidget.cxx, Slicer 5.10.0) owns a
vtkSlicerSegmentEditorLogic (its private `Logic`, created in its constructor) with its own vtkSegmentationHistory, made
verbose in setMRMLScene() (line 1162: SetVerbose(true)). Its effects (paint, erase...) save their undo states through
that logic (`effect->setSegmentEditorLogic(d->Logic)`, line 511); its public slots saveStateForUndo(), undo() and
redo() call the logic's SaveStateForUndo(), Undo(), Redo() (lines 1978-1982, 2271-2282); setSegmentationNode() and
setSourceVolumeNode() forward to the logic (setSourceVolumeNode: lines 1358-1362). The module's own segment editor
logic works on the same segment editor node, as in the panel.
"""

import numpy as np
import slicer


class EmbeddedEditor:
    """qMRMLSegmentEditorWidget's logic, history and the slots the module calls."""

    def __init__(self, editorNode, segmentationNode=None, volumeNode=None):
        self.logic = slicer.vtkSlicerSegmentEditorLogic()
        self.logic.SetMRMLScene(editorNode.GetScene())
        self.logic.SetVerbose(True)  # as setMRMLScene() makes it
        self.errors = []
        self.logic.AddObserver("ErrorEvent", lambda caller, event, callData=None: self.errors.append(event))
        self.logic.SetSegmentEditorNode(editorNode)
        self.history = slicer.vtkSegmentationHistory()
        self.logic.SetSegmentationHistory(self.history)
        self.logic.SetMaximumNumberOfUndoStates(10)  # as the module's setMaximumNumberOfUndoStates(10)
        if segmentationNode is not None:
            self.setSegmentationNode(segmentationNode)
            self.setSourceVolumeNode(volumeNode)
            self.logic.UpdateAlignedSourceVolume()

    def segmentationNode(self):
        return self.logic.GetSegmentationNode()

    def setSegmentationNode(self, node):
        self.logic.SetSegmentationNode(node)
        # The logic hands the segmentation to its history when the segmentation node is modified
        # (vtkSlicerSegmentEditorLogic::ProcessMRMLNodesEvents); in the panel that happens before the first stroke.
        self.history.SetSegmentation(node.GetSegmentation() if node is not None else None)

    def sourceVolumeNode(self):
        return self.logic.GetSourceVolumeNode()

    def setSourceVolumeNode(self, node):
        self.logic.SetSourceVolumeNode(node)

    def saveStateForUndo(self):
        self.logic.SaveStateForUndo()

    def undo(self):
        self.logic.Undo()

    def redo(self):
        self.logic.Redo()

    def paint(self, segmentId, box):
        """A paint stroke as the Paint effect makes it: undo state in the widget's history, then the stroke."""
        from AISegmentationLib.Geometry import orientedImageFromArray

        aligned = self.logic.GetAlignedSourceVolume()
        stroke = np.zeros(aligned.GetDimensions()[::-1], np.uint8)
        stroke[box] = 1
        self.saveStateForUndo()
        self.logic.ModifySegmentByLabelmap(self.segmentationNode(), segmentId, orientedImageFromArray(stroke, aligned),
                                           slicer.vtkSlicerSegmentEditorLogic.ModificationModeAdd, False, False)
