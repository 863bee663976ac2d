"""The Classic tools section: threshold (range or an automatic method), level tracing, grow from seeds with its
preview, island clean-up (the .ui's controls), then one generated group box per other registered tool
(ClassicTools.py); every write goes through the Logic (masking, overwrite, one undo state)."""

import json

import slicer
from slicer.i18n import tr as _

from .ClassicTools import ToolBox, savedOptions
from .Section import PanelSection


def _nodeId(node):
    return node.GetID() if node is not None else None


class ClassicSection(PanelSection):
    def __init__(self, widget):
        super().__init__(widget)
        self._growSession = None
        self._shownSourceVolumeId = None
        self.toolBoxes = []

    def setup(self):
        self.ui.thresholdRangeWidget.connect("valuesChanged(double,double)", self._onThresholdRangeChanged)
        self.ui.thresholdApplyButton.connect("clicked(bool)", self.onThresholdApply)
        self.ui.autoThresholdButton.connect("clicked(bool)", self.onAutoThreshold)
        self.ui.levelTracingApplyButton.connect("clicked(bool)", self.onLevelTracingApply)
        self.ui.growInitializeButton.connect("clicked(bool)", self.onGrowInitialize)
        self.ui.growUpdateButton.connect("clicked(bool)", self.onGrowUpdate)
        self.ui.growApplyButton.connect("clicked(bool)", self.onGrowApply)
        self.ui.growCancelButton.connect("clicked(bool)", self.onGrowCancel)
        self.ui.keepLargestIslandButton.connect("clicked(bool)", self.onKeepLargestIsland)
        self.ui.removeSmallIslandsButton.connect("clicked(bool)", self.onRemoveSmallIslands)
        layout = self.ui.classicToolsPlaceholder.layout()
        for tool in self.logic.classicTools().values():
            if not tool.handMadeFronts:
                toolBox = ToolBox(self, tool)
                toolBox.build(layout)
                self.toolBoxes.append(toolBox)

    def savedToolOptions(self):
        """{tool: {option: value}} kept in the parameter node (saved with the scene)."""
        return savedOptions(self._parameterNode.classicOptions if self._parameterNode else "")

    def saveToolOptions(self, toolName, values):
        if self._parameterNode is None:
            return
        saved = self.savedToolOptions()
        saved[toolName] = values
        self._parameterNode.classicOptions = json.dumps(saved, sort_keys=True)

    def onParameterNodeModified(self, parameterNode):
        """The threshold range follows the source volume (once per volume, not on every change)."""
        if _nodeId(parameterNode.sourceVolume) != self._shownSourceVolumeId:
            self._shownSourceVolumeId = _nodeId(parameterNode.sourceVolume)
            self.showThresholdRange()

    def onParameterNodeReplaced(self):
        self._shownSourceVolumeId = None

    def onSceneStartClose(self):
        self.onGrowCancel()
        for toolBox in self.toolBoxes:
            toolBox.onCancelPreview()

    def _onThresholdRangeChanged(self, minimum, maximum):
        if self._parameterNode:
            self._parameterNode.thresholdMinimum, self._parameterNode.thresholdMaximum = minimum, maximum

    def showThresholdRange(self):
        """Slider range = the source volume's intensity range (as the Threshold effect), then the saved values."""
        p = self._parameterNode
        scalarRange = self.logic.intensityRange(p.sourceVolume) if p.sourceVolume is not None else None
        if scalarRange is None:
            return  # keep the .ui's wide range: nothing is clamped before a volume is chosen
        self.ui.thresholdRangeWidget.setRange(*scalarRange)
        self.ui.thresholdRangeWidget.setValues(p.thresholdMinimum, p.thresholdMaximum)

    def onThresholdApply(self):
        with slicer.util.tryWithErrorDisplay(_("Threshold failed."), waitCursor=True):
            volume, segmentation, segmentId = self._inputs()
            p = self._parameterNode
            self.logic.threshold(volume, segmentation, segmentId, p.thresholdMinimum, p.thresholdMaximum)

    def onAutoThreshold(self):
        with slicer.util.tryWithErrorDisplay(_("Automatic threshold failed."), waitCursor=True):
            p = self._parameterNode
            low, high = self.logic.autoThresholdRange(p.sourceVolume, p.autoThresholdMethod, p.autoThresholdMode,
                                                      (p.thresholdMinimum, p.thresholdMaximum))
            p.thresholdMinimum, p.thresholdMaximum = low, high
            self.showThresholdRange()

    def onLevelTracingApply(self):
        with slicer.util.tryWithErrorDisplay(_("Level tracing failed."), waitCursor=True):
            volume, segmentation, segmentId = self._inputs()
            seedNode = self._parameterNode.levelTracingSeed
            if seedNode is None or seedNode.GetNumberOfControlPoints() == 0:
                raise ValueError(_("Place a level tracing seed point (markups point list) on an edge first."))
            seed = seedNode.GetNthControlPointPositionWorld(seedNode.GetNumberOfControlPoints() - 1)
            self.logic.levelTrace(volume, segmentation, segmentId, seed, self._parameterNode.levelTracingPlane)

    def onGrowInitialize(self):
        with slicer.util.tryWithErrorDisplay(_("Grow from seeds failed."), waitCursor=True):
            volume, segmentation, _segmentId = self._inputs()
            self.onGrowCancel()
            self._growSession = self.logic.growFromSeeds(
                volume, segmentation, self.logic.visibleSegmentIds(segmentation),
                self._parameterNode.seedLocalityFactor)
            self.logic.showGrowFromSeedsPreview(self._growSession)

    def onGrowUpdate(self):
        with slicer.util.tryWithErrorDisplay(_("Grow from seeds update failed."), waitCursor=True):
            if self._growSession is None:
                raise ValueError(_("Initialize grow from seeds first."))
            self._growSession.seedLocalityFactor = self._parameterNode.seedLocalityFactor
            self._growSession.update()
            self.logic.showGrowFromSeedsPreview(self._growSession)

    def onGrowApply(self):
        with slicer.util.tryWithErrorDisplay(_("Applying grow from seeds failed."), waitCursor=True):
            if self._growSession is None:
                raise ValueError(_("Initialize grow from seeds first."))
            self._growSession.apply()
            self.onGrowCancel()

    def onGrowCancel(self):
        if self._growSession is not None:
            self._growSession.cancel()
            self.logic.removeGrowFromSeedsPreview()
            self._growSession = None

    def onKeepLargestIsland(self):
        with slicer.util.tryWithErrorDisplay(_("Island clean-up failed."), waitCursor=True):
            volume, segmentation, segmentId = self._inputs()
            self.logic.keepLargestIsland(volume, segmentation, segmentId)

    def onRemoveSmallIslands(self):
        with slicer.util.tryWithErrorDisplay(_("Island clean-up failed."), waitCursor=True):
            volume, segmentation, segmentId = self._inputs()
            self.logic.removeSmallIslands(volume, segmentation, segmentId, self._parameterNode.minimumIslandSize)
