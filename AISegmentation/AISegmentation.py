"""AISegmentation: classic and AI segmentation in one module panel (3D Slicer scripted module).

This file is the thin Qt/Slicer-application shell: module metadata, the parameter node, the widget (wiring only)
and the logic facade. Everything that computes lives in AISegmentationLib and runs headless too.
"""

import logging
import os

import slicer
from slicer import (
    vtkMRMLMarkupsClosedCurveNode,
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLMarkupsROINode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLTableNode,
)
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
    aiBackend: str = "totalsegmentator"
    aiEnvironment: str = "auto"
    aiDevice: str = "auto"
    totalSegmentatorTask: str = "total"
    aiFast: bool = True
    aiFastest: bool = False
    aiRoiSubset: str = ""
    nnUNetModelFolders: str = ""
    nnUNetFolds: str = ""
    nnUNetCheckpoint: str = "checkpoint_final.pth"
    aiTta: bool = True
    aiStepSize: float = 0.5
    interactiveServerUrl: str = "http://127.0.0.1:1527"
    interactivePoints: vtkMRMLMarkupsFiducialNode
    interactiveRoi: vtkMRMLMarkupsROINode
    interactiveCurve: vtkMRMLMarkupsClosedCurveNode
    interactiveNegative: bool = False


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
        self._aiJob = None
        self._aiJobFinished = None

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
        self._setupAi()
        self._setupInteractive()
        self.ui.compareButton.connect("clicked(bool)", self.onCompare)
        self.ui.exportComparisonCsvButton.connect("clicked(bool)", self.onExportComparisonCsv)
        self.initializeParameterNode()

    def cleanup(self):
        self.removeObservers()
        self._aiTimer.stop()
        if self._aiJob is not None and not self._aiJob.done:
            self._aiJob.cancel()

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


    # AI ---------------------------------------------------------------------------------------------------------

    def _setupAi(self):
        import qt

        self.ui.aiBackendComboBox.addItems(self.logic.aiBackendNames())
        self.ui.aiEnvironmentComboBox.addItems(["auto", "isolated", "current"])
        self.ui.aiDeviceComboBox.addItems(["auto", "cpu", "cuda", "mps"])
        self._aiTimer = qt.QTimer()
        self._aiTimer.setInterval(200)
        self._aiTimer.connect("timeout()", self._pollAiJob)
        self.ui.aiBackendComboBox.connect("currentTextChanged(QString)", self._showEnvironmentStatus)
        self.ui.aiInstallButton.connect("clicked(bool)", self.onAiInstall)
        self.ui.aiRunButton.connect("clicked(bool)", self.onAiRun)
        self.ui.aiCancelButton.connect("clicked(bool)", self.onAiCancel)
        self._showEnvironmentStatus()

    def _showEnvironmentStatus(self, *args):
        backend = self.ui.aiBackendComboBox.currentText
        if backend:
            self.ui.aiEnvironmentStatusLabel.text = self.logic.backendEnvironmentStatus(backend)

    def onAiInstall(self):
        with slicer.util.tryWithErrorDisplay(_("Environment installation failed."), waitCursor=False):
            backend = self._parameterNode.aiBackend
            details = self.logic.backendEnvironmentDetails(backend)
            question = _("Install {backend} and its pinned packages into its own Python environment in {folder}? "
                         "This downloads several hundred MB and does not touch Slicer's own packages.").format(
                backend=backend, folder=details.get("folder", ""))
            if not slicer.util.confirmOkCancelDisplay(question):
                return
            force = details["state"] == "broken"
            self._startAiJob(self.logic.startCreateBackendEnvironment(backend, force), self._showEnvironmentStatus)

    def _aiOptions(self):
        p = self._parameterNode
        if p.aiBackend == "nnunet":
            folders = [folder.strip() for folder in p.nnUNetModelFolders.split(";") if folder.strip()]
            folds = [fold.strip() for fold in p.nnUNetFolds.split(",") if fold.strip()]
            folds = None if not folds else ["all" if f == "all" else int(f) for f in folds]
            return dict(modelFolders=folders, folds=folds, checkpoint=p.nnUNetCheckpoint, device=p.aiDevice,
                        tta=p.aiTta, stepSize=p.aiStepSize)
        roiSubset = [name.strip() for name in p.aiRoiSubset.split(",") if name.strip()] or None
        return dict(task=p.totalSegmentatorTask, fast=p.aiFast, fastest=p.aiFastest, roiSubset=roiSubset,
                    device=p.aiDevice)

    def onAiRun(self):
        with slicer.util.tryWithErrorDisplay(_("AI segmentation failed."), waitCursor=True):
            if self._aiJob is not None and not self._aiJob.done:
                raise ValueError(_("A job is already running: wait for it or cancel it."))
            volume, segmentation, _segmentId = self._inputs()
            p, options = self._parameterNode, self._aiOptions()
            if p.aiBackend == "nnunet":
                estimate = self.logic.estimateNnUNetMemory(volume, **options)
            else:
                estimate = self.logic.estimateTotalSegmentatorMemory(volume, **options)
            if estimate.messages and not slicer.util.confirmOkCancelDisplay(
                    estimate.summary() + "\n\n" + "\n".join(estimate.messages) + "\n\n" + _("Run anyway?")):
                return
            start = self.logic.startNnUNet if p.aiBackend == "nnunet" else self.logic.startTotalSegmentator
            if p.aiBackend == "nnunet":
                job = start(volume, options.pop("modelFolders"), segmentation, environment=p.aiEnvironment, **options)
            else:
                job = start(volume, segmentationNode=segmentation, environment=p.aiEnvironment, **options)
            self._startAiJob(job, self._onAiResult)

    def _startAiJob(self, job, onFinished):
        self._aiJob, self._aiJobFinished = job, onFinished
        self.ui.aiLogTextEdit.clear()
        self.ui.aiProgressBar.setValue(0)
        self.ui.aiRunButton.enabled = False
        self._aiTimer.start()

    def _pollAiJob(self):
        job = self._aiJob
        if job is None:
            self._aiTimer.stop()
            return
        self.ui.aiProgressBar.setValue(int(job.progress))
        self.ui.aiProgressBar.setFormat(f"{job.message} (%p%)")
        for line in job.takeLogLines():
            self.ui.aiLogTextEdit.appendPlainText(line)
        if not job.done:
            return
        self._aiTimer.stop()
        self._aiJob = None
        self.ui.aiRunButton.enabled = True
        with slicer.util.tryWithErrorDisplay(_("AI job failed."), waitCursor=True):
            result = job.wait()  # writes the result (or raises the job's error) here, on the GUI thread
            self._aiJobFinished(result)
        self._showEnvironmentStatus()

    def _onAiResult(self, segmentationNode):
        if segmentationNode is not None:
            self._parameterNode.segmentation = segmentationNode

    def onAiCancel(self):
        if self._aiJob is not None:
            self._aiJob.cancel()

    # Interactive ------------------------------------------------------------------------------------------------

    def _setupInteractive(self):
        import qt

        self.ui.interactiveTestButton.connect("clicked(bool)", self.onInteractiveTest)
        prompts = [(self.ui.interactivePointButton, "point", "P"), (self.ui.interactiveBoxButton, "box", "B"),
                   (self.ui.interactiveLassoButton, "lasso", "L"),
                   (self.ui.interactiveScribbleButton, "scribble", "S")]
        self._interactiveShortcuts = []
        for button, kind, key in prompts:
            button.connect("clicked(bool)", lambda checked=False, kind=kind: self.onInteractivePrompt(kind))
            shortcut = qt.QShortcut(qt.QKeySequence(key), slicer.util.mainWindow())
            shortcut.connect("activated()", lambda kind=kind: self.onInteractivePrompt(kind))
            self._interactiveShortcuts.append(shortcut)
        negative = qt.QShortcut(qt.QKeySequence("N"), slicer.util.mainWindow())
        negative.connect("activated()", self.ui.interactiveNegativeCheckBox.toggle)
        self._interactiveShortcuts.append(negative)
        self.ui.interactiveUndoButton.connect("clicked(bool)", self.onInteractiveUndo)
        self.ui.interactiveResetButton.connect("clicked(bool)", self.onInteractiveReset)
        self.ui.segmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)",
                                             self.ui.interactiveScribbleSegmentSelector.setCurrentNode)
        self.logic.interactiveConsentCallback = lambda origin: slicer.util.confirmYesNoDisplay(
            _("Send the image to the nnInteractive server at {origin}? It is not on this computer.").format(
                origin=origin))

    def _interactiveServer(self):
        """Apply the panel's server URL and key (the key lives only in the widget, never in the scene)."""
        url, apiKey = self._parameterNode.interactiveServerUrl, self.ui.interactiveApiKeyLineEdit.text or None
        from AISegmentationLib.Interactive.Connection import normalizeUrl

        session = getattr(self.logic, "_interactiveSession", None)
        if session is None or session.settings.url != normalizeUrl(url) or session.settings.apiKey != apiKey:
            self.logic.setInteractiveServer(url, apiKey)

    def onInteractiveTest(self):
        with slicer.util.tryWithErrorDisplay(_("Connection test failed."), waitCursor=True):
            self._interactiveServer()
            ok, message, _info = self.logic.testInteractiveConnection()
            (slicer.util.infoDisplay if ok else slicer.util.warningDisplay)(message)

    def onInteractivePrompt(self, kind):
        with slicer.util.tryWithErrorDisplay(_("nnInteractive prompt failed."), waitCursor=True):
            self._interactiveServer()
            volume, segmentation, segmentId = self._inputs()
            session = self.logic.interactiveSession
            if (session.volumeNode, session.segmentationNode, session.segmentId) != (volume, segmentation, segmentId):
                self.logic.startInteractiveSegmentation(volume, segmentation, segmentId)
            p = self._parameterNode
            positive = not p.interactiveNegative
            if kind == "point":
                self.logic.interactivePoint(self._requireNode(p.interactivePoints, _("point list")), positive)
            elif kind == "box":
                self.logic.interactiveBox(self._requireNode(p.interactiveRoi, _("ROI")), positive)
            elif kind == "lasso":
                self.logic.interactiveLasso(self._requireNode(p.interactiveCurve, _("closed curve")), positive)
            else:
                scribbleId = self.ui.interactiveScribbleSegmentSelector.currentSegmentID()
                self.logic.interactiveScribble(segmentation, scribbleId, positive)

    @staticmethod
    def _requireNode(node, what):
        if node is None:
            raise ValueError(_("Select or place a {what} first.").format(what=what))
        return node

    def onInteractiveUndo(self):
        with slicer.util.tryWithErrorDisplay(_("Undo failed."), waitCursor=True):
            self.logic.interactiveUndo()

    def onInteractiveReset(self):
        with slicer.util.tryWithErrorDisplay(_("Reset failed."), waitCursor=True):
            self.logic.interactiveReset()

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
