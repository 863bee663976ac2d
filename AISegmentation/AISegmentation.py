"""AISegmentation: classic and AI segmentation in one module panel (3D Slicer scripted module).

This file is the thin Qt/Slicer-application shell: module metadata, the parameter node, the widget (wiring only)
and the logic facade. Everything that computes lives in AISegmentationLib and runs headless too.
"""

import logging
import os

import slicer
from slicer import vtkMRMLMarkupsFiducialNode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from AISegmentationLib.Logic import AISegmentationLogic as AISegmentationCoreLogic


class AISegmentation(ScriptedLoadableModule):
    """Module metadata."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("AI Segmentation")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = ["Segmentations", "Markups"]
        self.parent.contributors = ["AISegmentation developers"]
        self.parent.helpText = _(
            "Classic Segment Editor tools (threshold, level tracing, grow from seeds, islands) and AI segmentation "
            "in one panel. Every result is written through the Segment Editor logic, so masking, overwrite and "
            "undo behave as in the Segment Editor. See the README for console scripting.")
        self.parent.acknowledgementText = _("Built on 3D Slicer's segmentation infrastructure.")


@parameterNodeWrapper
class AISegmentationParameterNode:
    """Panel state, saved with the scene."""

    sourceVolume: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    thresholdMinimum: float = 200.0
    thresholdMaximum: float = 3071.0
    autoThresholdMethod: str = "Otsu"
    autoThresholdMode: str = "SET_LOWER_MAX"
    levelTracingSeed: vtkMRMLMarkupsFiducialNode
    levelTracingPlane: str = "IJ"
    seedLocalityFactor: float = 0.0
    minimumIslandSize: int = 1000
    maskMode: str = "everywhere"
    overwriteMode: str = "allSegments"
    intensityMaskEnabled: bool = False
    intensityMaskMinimum: float = -1000.0
    intensityMaskMaximum: float = 3000.0
    comparisonReference: vtkMRMLSegmentationNode
    comparisonCompared: vtkMRMLSegmentationNode
    compareAllSegments: bool = False
    comparisonDevice: str = "auto"
    hausdorff95Mode: str = "max"
    surfaceDiceTolerance: float = 2.0
    comparisonTable: vtkMRMLTableNode


class AISegmentationWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Wiring only: parameter node <-> GUI, buttons -> Logic calls; errors shown with tryWithErrorDisplay."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._growSession = None
        self._comparisonRows = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/AISegmentation.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = AISegmentationLogic()

        from AISegmentationLib import Threshold
        from AISegmentationLib.SegmentEditing import MASK_MODES, OVERWRITE_MODES

        self.ui.autoThresholdMethodComboBox.addItems(list(Threshold.AUTO_THRESHOLD_METHODS))
        self.ui.autoThresholdModeComboBox.addItems(list(Threshold.AUTO_THRESHOLD_MODES))
        self.ui.levelTracingPlaneComboBox.addItems(["IJ", "IK", "JK", "3D"])
        from AISegmentationLib import SegmentComparison

        self.ui.comparisonDeviceComboBox.addItems(["auto", "cpu", "cuda"])
        self.ui.hausdorff95ModeComboBox.addItems(list(SegmentComparison.HAUSDORFF95_MODES))
        self.ui.maskModeComboBox.addItems(list(MASK_MODES))
        self.ui.overwriteModeComboBox.addItems(list(OVERWRITE_MODES))

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.segmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", self._onSegmentationSelected)
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
        self.ui.undoButton.connect("clicked(bool)", self.onUndo)
        self.ui.comparisonReferenceSelector.connect(
            "currentNodeChanged(vtkMRMLNode*)", self.ui.comparisonReferenceSegmentSelector.setCurrentNode)
        self.ui.comparisonComparedSelector.connect(
            "currentNodeChanged(vtkMRMLNode*)", self.ui.comparisonComparedSegmentSelector.setCurrentNode)
        self.ui.compareButton.connect("clicked(bool)", self.onCompare)
        self.ui.exportComparisonCsvButton.connect("clicked(bool)", self.onExportComparisonCsv)
        self.initializeParameterNode()

    def cleanup(self):
        self.removeObservers()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event):
        self.onGrowCancel()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.sourceVolume:
            firstVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolume:
                self._parameterNode.sourceVolume = firstVolume

    def setParameterNode(self, inputParameterNode):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self._showThresholdRange()

    def _onSegmentationSelected(self, node):
        self.ui.segmentSelectorWidget.setCurrentNode(node)

    def _onThresholdRangeChanged(self, minimum, maximum):
        if self._parameterNode:
            self._parameterNode.thresholdMinimum, self._parameterNode.thresholdMaximum = minimum, maximum

    def _showThresholdRange(self):
        volume = self._parameterNode.sourceVolume
        if volume is not None and volume.GetImageData() is not None:
            self.ui.thresholdRangeWidget.setRange(*volume.GetImageData().GetScalarRange())
        self.ui.thresholdRangeWidget.setValues(self._parameterNode.thresholdMinimum,
                                               self._parameterNode.thresholdMaximum)

    # Helpers --------------------------------------------------------------------------------------------------

    def _inputs(self):
        """(source volume, segmentation, selected segment ID) with the panel's masking applied to the Logic."""
        p = self._parameterNode
        intensityRange = (p.intensityMaskMinimum, p.intensityMaskMaximum) if p.intensityMaskEnabled else None
        maskSegmentId = self.ui.segmentSelectorWidget.currentSegmentID() if p.maskMode == "insideSingleSegment" \
            else None
        self.logic.setMasking(p.maskMode, maskSegmentId, p.overwriteMode, intensityRange)
        return p.sourceVolume, p.segmentation, self.ui.segmentSelectorWidget.currentSegmentID()

    # Classic tools ----------------------------------------------------------------------------------------------

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
            self._showThresholdRange()

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
            self._inputs()
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

    def onUndo(self):
        with slicer.util.tryWithErrorDisplay(_("Undo failed."), waitCursor=True):
            self.logic.undo(self._parameterNode.segmentation)


    # Compare ----------------------------------------------------------------------------------------------------

    def onCompare(self):
        with slicer.util.tryWithErrorDisplay(_("Comparison failed."), waitCursor=True):
            p = self._parameterNode
            pairs = None
            if not p.compareAllSegments:
                referenceId = self.ui.comparisonReferenceSegmentSelector.currentSegmentID()
                comparedId = self.ui.comparisonComparedSegmentSelector.currentSegmentID()
                if not referenceId or not comparedId:
                    raise ValueError(_("Select a reference and a compared segment, or compare all segments."))
                pairs = [(referenceId, comparedId)]
            self._comparisonRows, p.comparisonTable = self.logic.compareSegmentations(
                p.comparisonReference, p.comparisonCompared, pairs, tableNode=p.comparisonTable,
                progressCallback=self._showComparisonProgress, device=p.comparisonDevice,
                hausdorff95Mode=p.hausdorff95Mode, surfaceDiceTolerance=p.surfaceDiceTolerance)
            self.ui.comparisonTableView.setMRMLTableNode(p.comparisonTable)

    def _showComparisonProgress(self, fraction, message):
        self.ui.comparisonProgressBar.setValue(int(round(100 * fraction)))
        self.ui.comparisonProgressBar.setFormat(message)
        slicer.app.processEvents()

    def onExportComparisonCsv(self):
        import qt

        with slicer.util.tryWithErrorDisplay(_("Export failed."), waitCursor=False):
            if not self._comparisonRows:
                raise ValueError(_("Compute a comparison first."))
            path = qt.QFileDialog.getSaveFileName(None, _("Export comparison"), "comparison.csv", "CSV (*.csv)")
            if path:
                from AISegmentationLib import SegmentComparisonMRML

                SegmentComparisonMRML.rowsToCsv(self._comparisonRows, path)


class AISegmentationLogic(ScriptedLoadableModuleLogic, AISegmentationCoreLogic):
    """The module logic: Slicer's scripted-module logic plus AISegmentationLib's Logic on the application scene.

    From the Python console: ``logic = slicer.util.getModuleLogic("AISegmentation")`` (or
    ``AISegmentation.AISegmentationLogic()``), then e.g. ``logic.threshold(volume, segmentation, segmentId, 200,
    3071)``.
    """

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        AISegmentationCoreLogic.__init__(self)

    def getParameterNode(self):
        return AISegmentationParameterNode(super().getParameterNode())


class AISegmentationTest(ScriptedLoadableModuleTest):
    """Runs the same test bodies as the headless suite (AISegmentation/Testing/Python) inside desktop Slicer."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_AISegmentationSuite()

    def test_AISegmentationSuite(self):
        testDir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Testing", "Python")
        if not _hasPytest():
            slicer.util.pip_install("pytest")
        import pytest

        self.delayDisplay("Running the AISegmentation test suite on the application scene")
        exitCode = pytest.main(["-q", "-p", "no:cacheprovider", testDir])
        logging.info("AISegmentation test suite finished with exit code %s", exitCode)
        self.assertEqual(int(exitCode), 0)
        self.delayDisplay("Test passed")


def _hasPytest():
    try:
        import pytest  # noqa: F401
    except ImportError:
        return False
    return True
