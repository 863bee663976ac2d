"""AISegmentation: classic and AI segmentation in one module panel (3D Slicer scripted module).

This file is the thin Qt/Slicer-application shell: module metadata, the parameter node, the widget (wiring only)
and the logic facade. Everything that computes lives in AISegmentationLib and runs headless too.
"""

from typing import Annotated

import slicer
import vtk
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
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from AISegmentationLib.Classic.LevelTracing import LevelTracing
from AISegmentationLib.Classic.Threshold import Threshold
from AISegmentationLib.Comparison import LabelMatching, SegmentComparison
from AISegmentationLib.Backends.AILogic import ENVIRONMENT_CHOICES
from AISegmentationLib.Logic import AISegmentationLogic as AISegmentationCoreLogic
from AISegmentationLib.SegmentEditing import showInputsInEditor
from AISegmentationLib.Training.TrainingSchedules import CONFIGURATIONS, PLAN_PRESETS, SCHEDULES
from AISegmentationWidgets.Ai import AiSection
from AISegmentationWidgets.Classic import ClassicSection
from AISegmentationWidgets.Comparison import ComparisonSection
from AISegmentationWidgets.Dicom import DicomSection
from AISegmentationWidgets.Interactive import InteractiveSection
from AISegmentationWidgets.Jobs import JobPoller
from AISegmentationWidgets.Train import TrainSection


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


# Choices and ranges come from the Lib, so the panel offers exactly what the Logic accepts. Slicer's GUI connectors
# (slicer/parameterNodeWrapper/guiConnectors.py) fill a combo box bound to a str only from a Choice annotation, refuse
# a ctkSliderWidget bound to an unbounded float, and give spin boxes without bounds a range of +-2^31 or +-inf
# (overriding the .ui): every bound field carries its choices or range (checked by test_slicer_binding.py).
AUTO_THRESHOLD_METHODS = list(Threshold.AUTO_THRESHOLD_METHODS)
LEVEL_TRACING_PLANES = [*LevelTracing.PLANES, "3D"]
COMPARISON_DEVICES = [device for device in SegmentComparison.DEVICES if device != "torch-cpu"]
AI_BACKENDS = AISegmentationCoreLogic.backendNames()  # the registry's: the first is the default
RUN_ON_CHOICES = ["this computer", "Dask cluster"]  # where the AI section runs a case (the cluster: by address)
TRAIN_PLAN_PRESETS = ["nnU-Net", *PLAN_PRESETS]  # nnU-Net's own plan, or a preset that shrinks it


@parameterNodeWrapper
class AISegmentationParameterNode:
    """Panel state, saved with the scene. Masking (mask mode, overwrite, intensity range) is the embedded segment
    editor's own Masking section, stored in the segment editor node that the Logic writes with."""

    sourceVolume: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    thresholdMinimum: float = 200.0
    thresholdMaximum: float = 3071.0
    autoThresholdMethod: Annotated[str, Choice(AUTO_THRESHOLD_METHODS)] = "Otsu"
    autoThresholdMode: Annotated[str, Choice(list(Threshold.AUTO_THRESHOLD_MODES))] = "SET_LOWER_MAX"
    levelTracingSeed: vtkMRMLMarkupsFiducialNode
    levelTracingPlane: Annotated[str, Choice(LEVEL_TRACING_PLANES)] = "IJ"
    seedLocalityFactor: Annotated[float, WithinRange(0.0, 10.0)] = 0.0
    minimumIslandSize: Annotated[int, WithinRange(1, 100000000)] = 1000
    classicOptions: str = ""  # JSON {tool: {option: value}} of the generated classic tools' editors (not bound)
    comparisonReference: vtkMRMLSegmentationNode
    comparisonCompared: vtkMRMLSegmentationNode
    compareAllSegments: bool = False
    comparisonMatch: Annotated[str, Choice(list(LabelMatching.MATCH_MODES))] = "auto"
    comparisonDevice: Annotated[str, Choice(COMPARISON_DEVICES)] = "auto"
    hausdorff95Mode: Annotated[str, Choice(list(SegmentComparison.HAUSDORFF95_MODES))] = "max"
    surfaceDiceTolerance: Annotated[float, WithinRange(0.0, 100.0)] = 2.0
    hausdorffPercentile: Annotated[float, WithinRange(0.0, 100.0)] = 95.0
    comparisonMapping: str = ""  # a label mapping file (JSON / CSV) for both sides; "" is none (a path field)
    comparisonTable: vtkMRMLTableNode
    aiBackend: Annotated[str, Choice(AI_BACKENDS)] = AI_BACKENDS[0]
    aiEnvironment: Annotated[str, Choice(list(ENVIRONMENT_CHOICES))] = "auto"
    aiOptions: str = ""  # JSON {backend: {option: value}} of the editors built from the declarations (not bound)
    aiRunOn: Annotated[str, Choice(RUN_ON_CHOICES)] = RUN_ON_CHOICES[0]
    aiClusterAddress: str = ""
    # Path fields are str kept in step with their ctkPathLineEdit by the widget (PATH_FIELDS), not bound: Slicer's
    # path connector writes str(path), so an unset pathlib.Path field would show "." (guiConnectors.py, write()).
    aiClusterTlsFolder: str = ""  # ca.pem, cert.pem, key.pem; "" is none
    interactiveServerUrl: str = "http://127.0.0.1:1527"
    interactivePoints: vtkMRMLMarkupsFiducialNode
    interactiveRoi: vtkMRMLMarkupsROINode
    interactiveCurve: vtkMRMLMarkupsClosedCurveNode
    interactiveNegative: bool = False
    trainManifest: str = ""  # a manifest (CSV) or folder instead of segmentations in the scene (a path field)
    trainProject: str = ""  # the training project folder (a path field)
    trainFolds: Annotated[int, WithinRange(2, 10)] = 5
    trainConfiguration: Annotated[str, Choice(list(CONFIGURATIONS))] = "3d_fullres"
    trainPlanPreset: Annotated[str, Choice(TRAIN_PLAN_PRESETS)] = TRAIN_PLAN_PRESETS[0]
    trainSchedule: Annotated[str, Choice(list(SCHEDULES))] = "short-cpu"
    trainEpochs: Annotated[int, WithinRange(0, 10000)] = 0  # 0: the schedule's
    trainModelName: str = ""
    trainOnCluster: bool = False


# nnInteractive prompt shortcuts, active only while the module is entered (installed in enter(), removed in exit(), as
# Slicer's Segment Editor does). Shift+letter: the plain letters belong to slice views (b, f, g, t, v, r), Markups
# (s), the embedded segment editor (0-9, q, w, z, y, i) and other extensions' panels (test_slicer_binding.py).
# ctkPathLineEdit -> its str field of the parameter node (see the parameter node's path fields)
PATH_FIELDS = {"aiClusterTlsFolderPathLineEdit": "aiClusterTlsFolder",
               "comparisonMappingPathLineEdit": "comparisonMapping",
               "trainManifestPathLineEdit": "trainManifest", "trainProjectPathLineEdit": "trainProject"}

INTERACTIVE_SHORTCUTS = {"point": "Shift+P", "box": "Shift+B", "lasso": "Shift+L", "scribble": "Shift+S"}
NEGATIVE_PROMPT_SHORTCUT = "Shift+N"


class AISegmentationWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The module's widget: loads the .ui, composes one section object per panel section (AISegmentationWidgets/,
    wiring only), keeps the parameter node, the embedded segment editor and the module's lifecycle (enter/exit,
    scene close, cleanup); errors shown with tryWithErrorDisplay."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.segmentEditorWidget = None
        self.sections = []
        self.jobs = None
        self._effectFactory = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._shortcuts = []

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/AISegmentation.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = AISegmentationLogic()
        self._setupSegmentEditor()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.classic = ClassicSection(self)
        self.ai = AiSection(self, RUN_ON_CHOICES)
        self.interactive = InteractiveSection(self, INTERACTIVE_SHORTCUTS)
        self.train = TrainSection(self, TRAIN_PLAN_PRESETS)
        self.comparison = ComparisonSection(self)
        self.dicom = DicomSection(self)
        self.sections = [self.classic, self.ai, self.interactive, self.train, self.comparison, self.dicom]
        self.jobs = JobPoller(self.logic, self.ai.jobView, self.ai.showEnvironmentStatus)
        for section in self.sections:
            section.setup()
        self.ui.undoButton.connect("clicked(bool)", self.onUndo)
        self.ui.redoButton.connect("clicked(bool)", self.onRedo)
        for widgetName, field in PATH_FIELDS.items():
            getattr(self.ui, widgetName).connect("currentPathChanged(QString)",
                                                 lambda path, field=field: self._onPathChanged(field, path))
        self.initializeParameterNode()

    def _setupSegmentEditor(self):
        """Slicer's own segment editor (paint, erase, scissors, level tracing by hovering...) in the panel, on the
        segment editor node that the Logic writes with: one Masking section, seeds painted in place."""
        import qSlicerSegmentationsModuleWidgetsPythonQt

        self.segmentEditorWidget = qSlicerSegmentationsModuleWidgetsPythonQt.qMRMLSegmentEditorWidget()
        self.segmentEditorWidget.setMaximumNumberOfUndoStates(10)
        self.segmentEditorWidget.setMRMLSegmentEditorNode(self.logic.segmentEditor.editorNode)
        self.segmentEditorWidget.setMRMLScene(slicer.mrmlScene)
        self.segmentEditorWidget.setSegmentationNodeSelectorVisible(False)  # the Inputs section selects them
        self.segmentEditorWidget.setSourceVolumeNodeSelectorVisible(False)
        self.segmentEditorWidget.setSwitchToSegmentationsButtonVisible(False)
        # One undo history: the module's writes into the shown segmentation are undo states of this editor, whose
        # Undo/Redo (buttons, Z / Ctrl+Z) then step through paint strokes, tools and AI results alike.
        self.logic.segmentEditor.useUndoHistoryOf(self.segmentEditorWidget)
        self.ui.segmentEditorPlaceholder.layout().addWidget(self.segmentEditorWidget)
        # Effects registered after this widget was made (other extensions' modules are instantiated later) appear
        # when registered, as Slicer's Segment Editor module does (Modules/Scripted/SegmentEditor/SegmentEditor.py).
        self._effectFactory = slicer.qSlicerSegmentEditorEffectFactory.instance()
        self._effectFactory.connect("effectRegistered(QString)", self._onEffectRegistered)

    def _onEffectRegistered(self, effectName=None):
        self.segmentEditorWidget.updateEffectList()

    def cleanup(self):
        self.removeObservers()
        if self._effectFactory is not None:
            self._effectFactory.disconnect("effectRegistered(QString)", self._onEffectRegistered)
        self._removeShortcuts()
        for section in self.sections:
            section.cleanup()
        if self.jobs is not None:
            self.jobs.stop()

    def enter(self):
        self.initializeParameterNode()
        self.segmentEditorWidget.setMRMLSegmentEditorNode(self.logic.segmentEditor.editorNode)
        self.segmentEditorWidget.installKeyboardShortcuts()
        self._installShortcuts()

    def exit(self):
        self.segmentEditorWidget.setActiveEffect(None)
        self.segmentEditorWidget.uninstallKeyboardShortcuts()
        self.segmentEditorWidget.removeViewObservations()
        self._removeShortcuts()
        # The parameter node stays connected to the GUI while the module is hidden: reconnecting it on the next
        # enter() would add one more never-removed observer in Slicer 5.10 (see AISegmentationLogic.getParameterNode).

    def onSceneStartClose(self, caller, event):
        for section in self.sections:
            section.onSceneStartClose()  # grow-from-seeds preview, a running comparison or prompt
        self.setParameterNode(None)
        self.segmentEditorWidget.setSegmentationNode(None)
        self.segmentEditorWidget.removeViewObservations()

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()
            self.segmentEditorWidget.setMRMLSegmentEditorNode(self.logic.segmentEditor.editorNode)

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.sourceVolume:
            firstVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolume:
                self._parameterNode.sourceVolume = firstVolume

    @property
    def parameterNode(self):
        """The panel state the sections read and write (None while the scene closes)."""
        return self._parameterNode

    def setParameterNode(self, inputParameterNode):
        if inputParameterNode is not None and inputParameterNode is self._parameterNode:
            return  # already connected (one connectGui per wrapper)
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._parameterNode = inputParameterNode
        for section in self.sections:
            section.onParameterNodeReplaced()
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._onParameterNodeModified()

    def _onParameterNodeModified(self, caller=None, event=None):
        """Keep the embedded segment editor and each section (the threshold range, the AI options...) in step with
        the selected inputs."""
        p = self._parameterNode
        if p is None:
            return
        if showInputsInEditor(self.segmentEditorWidget, p.segmentation, p.sourceVolume):
            self.ui.interactiveScribbleSegmentSelector.setCurrentNode(p.segmentation)
        for section in self.sections:
            section.onParameterNodeModified(p)
        for widgetName, field in PATH_FIELDS.items():
            if getattr(self.ui, widgetName).currentPath != getattr(p, field):
                getattr(self.ui, widgetName).currentPath = getattr(p, field)

    def _onPathChanged(self, field, path):
        if self._parameterNode is not None and getattr(self._parameterNode, field) != path:
            setattr(self._parameterNode, field, path)

    def inputs(self):
        """(source volume, segmentation, selected segment ID); masking is the embedded segment editor's."""
        p = self._parameterNode
        return p.sourceVolume, p.segmentation, self.segmentEditorWidget.currentSegmentID()

    def onUndo(self):
        with slicer.util.tryWithErrorDisplay(_("Undo failed."), waitCursor=True):
            self.logic.undo(self._parameterNode.segmentation)

    def onRedo(self):
        with slicer.util.tryWithErrorDisplay(_("Redo failed."), waitCursor=True):
            self.logic.redo(self._parameterNode.segmentation)

    def _installShortcuts(self):
        """Prompt shortcuts on the main window while the module is entered (see INTERACTIVE_SHORTCUTS)."""
        import qt

        self._removeShortcuts()
        for kind, key in INTERACTIVE_SHORTCUTS.items():
            shortcut = qt.QShortcut(qt.QKeySequence(key), slicer.util.mainWindow())
            shortcut.connect("activated()", lambda kind=kind: self.interactive.onInteractivePrompt(kind))
            self._shortcuts.append(shortcut)
        negative = qt.QShortcut(qt.QKeySequence(NEGATIVE_PROMPT_SHORTCUT), slicer.util.mainWindow())
        negative.connect("activated()", self.ui.interactiveNegativeCheckBox.toggle)
        self._shortcuts.append(negative)

    def _removeShortcuts(self):
        for shortcut in self._shortcuts:
            shortcut.setParent(None)  # a deleted shortcut takes its connection with it
            shortcut.deleteLater()
        self._shortcuts = []

    def ensureRuntimePackages(self, purpose=None):
        """Install the runtime packages (nnInteractive's client, Dask's distributed) into Slicer's Python on first
        use, once the user agrees."""
        if not self.logic.missingRuntimePackages():
            return
        if slicer.app.testingEnabled():
            raise ValueError(_("AISegmentation's runtime packages are missing; tests never install them."))

        def confirm(missing):
            return slicer.util.confirmOkCancelDisplay(_(
                "{purpose} needs these packages in Slicer's Python: {packages}. Install them now? Nothing Slicer "
                "ships is upgraded or replaced.").format(purpose=purpose or _("nnInteractive"),
                                                         packages=", ".join(missing)))

        self.logic.installRuntimePackages(confirm)

    def setWritingControlsEnabled(self, enabled):
        """While a long operation runs (a comparison, a prompt), nothing that writes can be pressed."""
        for widget in (self.ui.classicCollapsibleButton, self.ui.aiCollapsibleButton,
                       self.ui.interactiveCollapsibleButton, self.ui.compareCollapsibleButton,
                       self.ui.inputsCollapsibleButton, self.segmentEditorWidget):
            widget.enabled = enabled


class AISegmentationLogic(ScriptedLoadableModuleLogic, AISegmentationCoreLogic):
    """The module logic: Slicer's scripted-module logic plus AISegmentationLib's Logic on the application scene.

    ScriptedLoadableModuleLogic.__init__ calls super().__init__(), which initializes AISegmentationCoreLogic (next in
    the method resolution order) once, on the application's scene.

    From the Python console: ``logic = slicer.util.getModuleLogic("AISegmentation")`` (or
    ``AISegmentation.AISegmentationLogic()``), then e.g. ``logic.threshold(volume, segmentation, segmentId, 200,
    3071)``.
    """

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self._parameterNodeWrapper = None

    def getParameterNode(self):
        """The panel state, one wrapper per parameter node: in Slicer 5.10 each wrapper's connectGui() adds a
        ModifiedEvent observer that disconnectGui() never removes (parameterNodeWrapper/wrapper.py,
        _connectParametersToGui; fixed in 5.12), so a new wrapper per enter() or scene close would add one each time."""
        node = super().getParameterNode()
        if self._parameterNodeWrapper is None or self._parameterNodeWrapper.parameterNode is not node:
            self._parameterNodeWrapper = AISegmentationParameterNode(node)
        return self._parameterNodeWrapper


class AISegmentationTest(ScriptedLoadableModuleTest):
    """Quick self-test tier, run inside desktop Slicer: drives the panel through its widgets on the sample CT, as
    Slicer's own module self-tests do. It needs no backend environment, no server, no pytest and nothing outside the
    installed module. The full tier is the headless pytest suite (Scripts/run_tests in a source checkout)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_PanelClassicToolsAndComparison()

    def test_PanelClassicToolsAndComparison(self):
        import numpy as np

        from AISegmentationLib import SampleData
        from AISegmentationLib.Demo import Demo

        self.delayDisplay("Loading the sample CT")
        slicer.util.selectModule("AISegmentation")
        widget = slicer.util.getModuleWidget("AISegmentation")
        logic = widget.logic
        ct = logic.loadVolume(SampleData.fetchSampleFile("example_ct.nii.gz"), "example_ct")
        segmentation = logic.createSegmentation(ct, "Self-test")
        parameters = logic.getParameterNode()
        parameters.sourceVolume = ct
        parameters.segmentation = segmentation
        self.assertEqual(widget.segmentEditorWidget.sourceVolumeNode().GetID(), ct.GetID())

        self.delayDisplay("Threshold through the panel")
        bone = logic.addSegment(segmentation, "bone")
        widget.segmentEditorWidget.setCurrentSegmentID(bone)
        low, high = Demo.BONE_RANGE_HU
        widget.ui.thresholdRangeWidget.setValues(low, high)
        self.assertEqual((parameters.thresholdMinimum, parameters.thresholdMaximum), (low, high))
        widget.ui.thresholdApplyButton.click()
        voxels = slicer.util.arrayFromVolume(ct)
        expected = int(np.count_nonzero((voxels >= low) & (voxels <= high)))
        self.assertEqual(int(logic.segmentArray(segmentation, bone, ct).sum()), expected)

        self.delayDisplay("Island clean-up, Undo and Redo through the panel")
        import scipy.ndimage

        components, _count = scipy.ndimage.label(logic.segmentArray(segmentation, bone, ct))  # 6-connected
        largest = int(np.bincount(components.ravel())[1:].max())
        widget.ui.keepLargestIslandButton.click()
        self.assertEqual(int(logic.segmentArray(segmentation, bone, ct).sum()), largest)
        widget.ui.undoButton.click()  # the embedded segment editor's history: the threshold result is back
        self.assertEqual(int(logic.segmentArray(segmentation, bone, ct).sum()), expected)
        widget.ui.redoButton.click()
        self.assertEqual(int(logic.segmentArray(segmentation, bone, ct).sum()), largest)
        parameters.minimumIslandSize = 100
        widget.ui.removeSmallIslandsButton.click()
        self.assertEqual(int(logic.segmentArray(segmentation, bone, ct).sum()), largest)  # one island, above 100

        self.delayDisplay("Automatic threshold through the panel")
        parameters.autoThresholdMethod, parameters.autoThresholdMode = "Otsu", "SET_LOWER_MAX"
        otsu = logic.autoThresholdRange(ct, "Otsu", "SET_LOWER_MAX",
                                        (parameters.thresholdMinimum, parameters.thresholdMaximum))
        widget.ui.autoThresholdButton.click()
        self.assertEqual((parameters.thresholdMinimum, parameters.thresholdMaximum), tuple(otsu))

        self.delayDisplay("Level tracing through the panel")
        traced = logic.addSegment(segmentation, "traced")
        widget.segmentEditorWidget.setCurrentSegmentID(traced)
        seed = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "level tracing seed")
        seed.AddControlPoint(*logic.loadMarkupsPoints(Demo.LIVER_SEEDS)[0])
        parameters.levelTracingSeed, parameters.levelTracingPlane = seed, "IJ"
        widget.ui.levelTracingApplyButton.click()
        tracedVoxels = int(logic.segmentArray(segmentation, traced, ct).sum())
        self.assertGreater(tracedVoxels, 0)
        self.assertLessEqual(tracedVoxels, voxels.shape[1] * voxels.shape[2])  # one axial slice at most
        segmentation.GetSegmentation().RemoveSegment(traced)
        slicer.mrmlScene.RemoveNode(seed)

        self.delayDisplay("Grow from seeds through the panel")
        segmentation.GetSegmentation().RemoveSegment(bone)
        liver = logic.addSegment(segmentation, "liver")
        other = logic.addSegment(segmentation, "other")
        for segmentId, seedsPath in ((liver, Demo.LIVER_SEEDS), (other, Demo.OTHER_SEEDS)):
            logic.paintSeeds(ct, segmentation, segmentId, logic.loadMarkupsPoints(seedsPath), Demo.SEED_RADIUS_MM)
        parameters.seedLocalityFactor = 0.0
        widget.ui.growInitializeButton.click()
        widget.ui.growApplyButton.click()
        liverVoxels = int(logic.segmentArray(segmentation, liver, ct).sum())
        self.assertGreater(liverVoxels, 20000)  # the demo's liver (Dice 0.9 against TotalSegmentator's) is ~50,000

        self.delayDisplay("Compare through the panel")
        parameters.comparisonReference = segmentation
        parameters.comparisonCompared = segmentation
        parameters.compareAllSegments = True
        widget.ui.compareButton.click()
        table = parameters.comparisonTable
        self.assertIsNotNone(table)
        self.assertEqual(table.GetNumberOfRows(), 2)
        diceColumn = next(c for c in range(table.GetNumberOfColumns()) if table.GetColumnName(c) == "Dice")
        self.assertAlmostEqual(float(table.GetCellText(0, diceColumn)), 1.0)
        self.delayDisplay("Test passed")
