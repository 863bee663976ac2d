"""AISegmentation: classic and AI segmentation in one module panel (3D Slicer scripted module).

This file is the thin Qt/Slicer-application shell: module metadata, the parameter node, the widget (wiring only)
and the logic facade. Everything that computes lives in AISegmentationLib and runs headless too.
"""

import json
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

from AISegmentationLib.Classic import LevelTracing, Threshold
from AISegmentationLib.Comparison import LabelMatching, SegmentComparison
from AISegmentationLib.Backends.AILogic import ENVIRONMENT_CHOICES
from AISegmentationLib.Backends.JobRunner import JobCancelledError
from AISegmentationLib.Backends.Options import formatText, parseListText
from AISegmentationLib.Logic import AISegmentationLogic as AISegmentationCoreLogic
from AISegmentationLib.SegmentEditing import showInputsInEditor
from AISegmentationLib.Training.TrainingSchedules import CONFIGURATIONS, PLAN_PRESETS, SCHEDULES


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
    """Wiring only: parameter node <-> GUI, buttons -> Logic calls; errors shown with tryWithErrorDisplay."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.segmentEditorWidget = None
        self._effectFactory = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._shownSourceVolumeId = None
        self._growSession = None
        self._comparisonRows = None
        self._aiJob = None
        self._promptJob = None
        self._promptTimer = None
        self._comparisonCancelled = False
        self._aiJobFinished = None
        self._aiJobView = None
        self._aiTimer = None
        self._trainCancelEvent = None
        self._aiOptionEditors = {}
        self._shownAiOptions = None
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
        self.ui.redoButton.connect("clicked(bool)", self.onRedo)
        self.ui.comparisonReferenceSelector.connect(
            "currentNodeChanged(vtkMRMLNode*)", self.ui.comparisonReferenceSegmentSelector.setCurrentNode)
        self.ui.comparisonComparedSelector.connect(
            "currentNodeChanged(vtkMRMLNode*)", self.ui.comparisonComparedSegmentSelector.setCurrentNode)
        self._setupAi()
        self._setupInteractive()
        self._setupTrain()
        self.ui.compareButton.connect("clicked(bool)", self.onCompare)
        self.ui.exportComparisonCsvButton.connect("clicked(bool)", self.onExportComparisonCsv)
        self.ui.comparisonMapsButton.connect("clicked(bool)", self.onComparisonMaps)
        for widgetName, field in PATH_FIELDS.items():
            getattr(self.ui, widgetName).connect("currentPathChanged(QString)",
                                                 lambda path, field=field: self._onPathChanged(field, path))
        self.ui.loadDicomSegmentationButton.connect("clicked(bool)", self.onLoadDicomSegmentation)
        self.ui.saveDicomSegButton.connect("clicked(bool)", lambda: self.onSaveAsDicom("SEG"))
        self.ui.saveRtStructButton.connect("clicked(bool)", lambda: self.onSaveAsDicom("RTSTRUCT"))
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
        self.logic.stopInteractiveServer()
        if self._aiTimer is not None:
            self._aiTimer.stop()
        if self._aiJob is not None and not self._aiJob.done:
            self._aiJob.cancel()
        if self._promptTimer is not None:
            self._promptTimer.stop()
        if self._promptJob is not None:
            self._promptJob.cancel()

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
        self.onGrowCancel()
        self._comparisonCancelled = True  # a comparison running (its progress repaints the GUI) stops there
        if self._promptJob is not None:
            self._promptJob.cancel()
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

    def setParameterNode(self, inputParameterNode):
        if inputParameterNode is not None and inputParameterNode is self._parameterNode:
            return  # already connected (one connectGui per wrapper)
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._parameterNode = inputParameterNode
        self._shownSourceVolumeId = None
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._onParameterNodeModified()

    def _onParameterNodeModified(self, caller=None, event=None):
        """Keep the embedded segment editor and the threshold range in step with the selected inputs."""
        p = self._parameterNode
        if p is None:
            return
        if showInputsInEditor(self.segmentEditorWidget, p.segmentation, p.sourceVolume):
            self.ui.interactiveScribbleSegmentSelector.setCurrentNode(p.segmentation)
        if _nodeId(p.sourceVolume) != self._shownSourceVolumeId:
            self._shownSourceVolumeId = _nodeId(p.sourceVolume)
            self._showThresholdRange()
        if (p.aiBackend, p.aiOptions) != self._shownAiOptions:
            self._showAiOptions()
        for widgetName, field in PATH_FIELDS.items():
            if getattr(self.ui, widgetName).currentPath != getattr(p, field):
                getattr(self.ui, widgetName).currentPath = getattr(p, field)
        onCluster = p.aiRunOn == RUN_ON_CHOICES[1]
        self.ui.aiClusterAddressLineEdit.enabled = onCluster
        self.ui.aiClusterTlsFolderPathLineEdit.enabled = onCluster

    def _onThresholdRangeChanged(self, minimum, maximum):
        if self._parameterNode:
            self._parameterNode.thresholdMinimum, self._parameterNode.thresholdMaximum = minimum, maximum

    def _showThresholdRange(self):
        """Slider range = the source volume's intensity range (as the Threshold effect), then the saved values."""
        p = self._parameterNode
        scalarRange = self.logic.intensityRange(p.sourceVolume) if p.sourceVolume is not None else None
        if scalarRange is None:
            return  # keep the .ui's wide range: nothing is clamped before a volume is chosen
        self.ui.thresholdRangeWidget.setRange(*scalarRange)
        self.ui.thresholdRangeWidget.setValues(p.thresholdMinimum, p.thresholdMaximum)

    # Helpers --------------------------------------------------------------------------------------------------

    def _inputs(self):
        """(source volume, segmentation, selected segment ID); masking is the embedded segment editor's."""
        p = self._parameterNode
        return p.sourceVolume, p.segmentation, self.segmentEditorWidget.currentSegmentID()

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

    def onRedo(self):
        with slicer.util.tryWithErrorDisplay(_("Redo failed."), waitCursor=True):
            self.logic.redo(self._parameterNode.segmentation)

    # AI ---------------------------------------------------------------------------------------------------------

    def _setupAi(self):
        import qt

        self._aiTimer = qt.QTimer()
        self._aiTimer.setInterval(200)
        self._aiTimer.connect("timeout()", self._pollAiJob)
        self.ui.aiBackendComboBox.connect("currentTextChanged(QString)", self._showEnvironmentStatus)
        self.ui.aiInstallButton.connect("clicked(bool)", self.onAiInstall)
        self.ui.aiRunButton.connect("clicked(bool)", self.onAiRun)
        self.ui.aiCancelButton.connect("clicked(bool)", self.onAiCancel)
        self.logic.clusterConsentCallback = lambda address: slicer.util.confirmYesNoDisplay(
            _("Send the image to the Dask cluster at {address}? It is not on this computer.").format(address=address))

    def _onPathChanged(self, field, path):
        if self._parameterNode is not None and getattr(self._parameterNode, field) != path:
            setattr(self._parameterNode, field, path)

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
                backend=self.logic.backend(backend).title, folder=details.get("folder", ""))
            if not slicer.util.confirmOkCancelDisplay(question):
                return
            force = details["state"] == "broken"
            self._startAiJob(self.logic.startCreateBackendEnvironment(backend, force), self._showEnvironmentStatus)

    def _savedAiOptions(self):
        try:
            saved = json.loads(self._parameterNode.aiOptions or "{}")
        except ValueError:
            saved = {}
        return saved if isinstance(saved, dict) else {}

    def _showAiOptions(self):
        """One editor per option that the selected backend declares (Logic.backendOptions), with the saved values."""
        p = self._parameterNode
        layout = self.ui.aiOptionsPlaceholder.layout()
        while layout.rowCount():
            layout.removeRow(0)
        self._aiOptionEditors = {}
        self._shownAiOptions = (p.aiBackend, p.aiOptions)
        if not p.aiBackend:
            return
        saved = self._savedAiOptions().get(p.aiBackend, {})
        for option in self.logic.backendOptions(p.aiBackend):
            kind, editor = self._aiOptionEditor(option, saved.get(option.name, option.default))
            layout.addRow(option.label + ":", editor)
            self._aiOptionEditors[option.name] = (option, kind, editor)

    def _aiOptionEditor(self, option, value):
        """(kind, editor): a combo box (choices), check box (bool), spin box (a number with a default) or line edit."""
        import qt

        if option.choices:
            kind, editor = "choice", qt.QComboBox()
            editor.addItems([str(choice) for choice in option.choices])
            editor.currentText = str(value)
            editor.connect("currentTextChanged(QString)", self._saveAiOptions)
        elif option.type == "bool" and not option.multiple:
            kind, editor = "bool", qt.QCheckBox()
            editor.checked = bool(value)
            editor.connect("toggled(bool)", self._saveAiOptions)
        elif option.type in ("int", "float") and value is not None and not option.multiple and not option.keywords:
            kind, editor = "number", qt.QSpinBox() if option.type == "int" else qt.QDoubleSpinBox()
            if option.type == "float":
                editor.decimals = 3
                editor.singleStep = 0.05
            editor.minimum = option.minimum if option.minimum is not None else -1e9
            editor.maximum = option.maximum if option.maximum is not None else 1e9
            editor.value = value
            editor.suffix = f" {option.unit}" if option.unit else ""
            editor.connect("valueChanged(double)" if option.type == "float" else "valueChanged(int)",
                           self._saveAiOptions)
        else:
            kind, editor = "text", qt.QLineEdit(formatText(option, value))
            if option.secret:
                editor.echoMode = qt.QLineEdit.Password
            editor.connect("textChanged(QString)", self._saveAiOptions)
        editor.toolTip = option.help + (f" ({option.unit})" if option.unit else "")
        return kind, editor

    @staticmethod
    def _aiOptionValue(option, kind, editor):
        if kind == "choice":
            return next(choice for choice in option.choices if str(choice) == editor.currentText)
        if kind == "bool":
            return bool(editor.checked)
        if kind == "number":
            return editor.value
        return parseListText(option, editor.text)  # ValueError naming the option when the text is not valid

    def _aiOptionValues(self):
        """{option name: value} of the editors (ValueError for text that is not a valid value)."""
        return {name: self._aiOptionValue(*entry) for name, entry in self._aiOptionEditors.items()}

    def _saveAiOptions(self, *args):
        """Keep the editors' values (not secrets) in the parameter node, so that scenes save them."""
        p = self._parameterNode
        if p is None or not p.aiBackend:
            return
        saved = self._savedAiOptions()
        values = saved.get(p.aiBackend, {})
        for name, (option, kind, editor) in self._aiOptionEditors.items():
            if option.secret:
                continue
            try:
                values[name] = self._aiOptionValue(option, kind, editor)
            except ValueError:
                pass  # text being typed: the last valid value stays saved
        saved[p.aiBackend] = values
        text = json.dumps(saved, sort_keys=True)
        self._shownAiOptions = (p.aiBackend, text)  # the editors already show it: no rebuild
        p.aiOptions = text

    def onAiRun(self):
        with slicer.util.tryWithErrorDisplay(_("AI segmentation failed."), waitCursor=True):
            self._requireNoJob()
            volume, segmentation, _segmentId = self._inputs()
            p, options, cluster = self._parameterNode, self._aiOptionValues(), self._aiCluster()
            estimate = self.logic.estimateBackendMemory(p.aiBackend, volume, **options)
            if estimate.messages and not cluster and not slicer.util.confirmOkCancelDisplay(
                    estimate.summary() + "\n\n" + "\n".join(estimate.messages) + "\n\n" + _("Run anyway?")):
                return  # (on a cluster this computer's memory does not matter)
            job = self.logic.startBackend(p.aiBackend, volume, segmentation, p.aiEnvironment, **cluster, **options)
            self._startAiJob(job, self._onAiResult)

    def _aiCluster(self):
        """{} for this computer; the cluster's address and TLS settings (from the TLS folder) for a Dask cluster."""
        p = self._parameterNode
        if p.aiRunOn != RUN_ON_CHOICES[1]:
            return {}
        self._ensureRuntimePackages(_("Running on a Dask cluster"))
        folder = p.aiClusterTlsFolder
        return {"cluster": p.aiClusterAddress,
                "clusterSecurity": self.logic.clusterSecurity(folder) if folder else None}

    def _requireNoJob(self):
        if self._aiJob is not None and not self._aiJob.done:
            raise ValueError(_("A job is already running: wait for it or cancel it."))

    def _startAiJob(self, job, onFinished, view=None):
        """Poll `job` with the AI timer; view: (progress bar, log, buttons disabled meanwhile), the AI section's by
        default (the Train section passes its own)."""
        self._aiJob, self._aiJobFinished = job, onFinished
        self._aiJobView = view or (self.ui.aiProgressBar, self.ui.aiLogTextEdit,
                                   (self.ui.aiRunButton, self.ui.aiInstallButton))
        progressBar, log, buttons = self._aiJobView
        log.clear()
        progressBar.setValue(0)
        for button in buttons:
            button.enabled = False
        for message in job.messages:  # pre-flight warnings (memory)
            log.appendPlainText(_("Warning: {message}").format(message=message))
        self._aiTimer.start()

    def _pollAiJob(self):
        job = self._aiJob
        if job is None:
            self._aiTimer.stop()
            return
        progressBar, log, buttons = self._aiJobView
        progressBar.setValue(int(job.progress))
        progressBar.setFormat(f"{job.message} (%p%)")
        for line in job.takeLogLines():
            log.appendPlainText(line)
        if not job.done or self.logic.segmentEditor.busyWith:
            return  # (a comparison or a prompt running: its result is written when it has ended)
        self._aiTimer.stop()
        self._aiJob = None
        for button in buttons:
            button.enabled = True
        try:
            with slicer.util.tryWithErrorDisplay(_("AI job failed."), waitCursor=True):
                result = job.wait()  # writes the result (or raises the job's error) here, on the GUI thread
                self._aiJobFinished(result)
        finally:  # tryWithErrorDisplay re-raises: the status must be refreshed after a failure too
            self._showEnvironmentStatus()

    def _onAiResult(self, segmentationNode):
        if segmentationNode is not None:
            self._parameterNode.segmentation = segmentationNode

    def onAiCancel(self):
        if self._aiJob is not None:
            self._aiJob.cancel()

    # Train ------------------------------------------------------------------------------------------------------

    def _setupTrain(self):
        self.ui.trainDatasetButton.connect("clicked(bool)", self.onTrainDataset)
        self.ui.trainPlanButton.connect("clicked(bool)", self.onTrainPlan)
        self.ui.trainFitButton.connect("clicked(bool)", self.onTrainFit)
        self.ui.trainEvaluateButton.connect("clicked(bool)", self.onTrainEvaluate)
        self.ui.trainCancelButton.connect("clicked(bool)", self.onTrainCancel)

    def _trainView(self):
        return (self.ui.trainProgressBar, self.ui.trainLogTextEdit, (
            self.ui.trainDatasetButton, self.ui.trainPlanButton, self.ui.trainFitButton, self.ui.trainEvaluateButton))

    def _trainLog(self, line):
        self.ui.trainLogTextEdit.appendPlainText(line)

    def onTrainDataset(self):
        with slicer.util.tryWithErrorDisplay(_("Building the training dataset failed."), waitCursor=True):
            self._requireNoJob()
            p = self._parameterNode
            cases = list(self.ui.trainCasesSelector.checkedNodes())
            source = {"cases": cases} if cases or not p.trainManifest else {"manifest": p.trainManifest}
            dataset = self.logic.buildTrainingDataset(p.trainProject, numberOfFolds=p.trainFolds, **source)
            self._trainLog(_("{name}: {training} training and {test} test cases; labels {labels}").format(
                name=dataset["name"], training=len(dataset["training"]), test=len(dataset["test"]),
                labels=", ".join(dataset["labels"])))
            for message in dataset["messages"]:
                self._trainLog(_("Warning: {message}").format(message=message))

    def onTrainPlan(self):
        with slicer.util.tryWithErrorDisplay(_("Planning failed."), waitCursor=True):
            self._requireNoJob()
            p = self._parameterNode
            preset = None if p.trainPlanPreset == TRAIN_PLAN_PRESETS[0] else p.trainPlanPreset
            job = self.logic.startPlanTraining(p.trainProject, configurations=[p.trainConfiguration],
                                               planPreset=preset)
            self._startAiJob(job, self._onTrainPlan, self._trainView())

    def _onTrainPlan(self, plan):
        for name, configuration in plan["configurations"].items():
            self._trainLog(_("Plan {name}: spacing {spacing} mm, patch {patch}, batch {batch}").format(
                name=name, spacing=configuration["spacing"], patch=configuration["patchSize"],
                batch=configuration["batchSize"]))

    def onTrainFit(self):
        with slicer.util.tryWithErrorDisplay(_("Training failed."), waitCursor=True):
            self._requireNoJob()
            p = self._parameterNode
            job = self.logic.startFitModel(p.trainProject, configuration=p.trainConfiguration,
                                           schedule=p.trainSchedule, epochs=p.trainEpochs or None,
                                           **self._trainCluster())
            self._startAiJob(job, self._onTrainFit, self._trainView())

    def _trainCluster(self):
        """{} here; the folds in parallel on the AI section's Dask cluster (a local one when no address is given)."""
        p = self._parameterNode
        if not p.trainOnCluster:
            return {}
        self._ensureRuntimePackages(_("Training on a Dask cluster"))
        if not p.aiClusterAddress.strip():
            return {"scheduler": "local"}
        folder = p.aiClusterTlsFolder
        return {"scheduler": p.aiClusterAddress, "security": self.logic.clusterSecurity(folder) if folder else None}

    def _onTrainFit(self, fit):
        self._trainLog(_("Trained: {folds} ({schedule})").format(folds=", ".join(fit["trained"]),
                                                                 schedule=fit["scheduleName"]))

    def onTrainEvaluate(self):
        import threading

        with slicer.util.tryWithErrorDisplay(_("Evaluation failed."), waitCursor=True):
            self._requireNoJob()
            p = self._parameterNode
            self._trainCancelEvent = threading.Event()
            self.ui.trainLogTextEdit.clear()
            evaluation = self.logic.evaluateTraining(p.trainProject, p.trainModelName.strip() or None,
                                                     p.trainConfiguration, progressCallback=self._showTrainProgress,
                                                     cancelEvent=self._trainCancelEvent)
            for row in evaluation["perFold"]:
                self._trainLog(_("Fold {fold} {structure}: Dice {dice:.4f}").format(
                    fold=row["fold"], structure=row["structure"], dice=row["dice"]))
            self._trainLog(_("Model '{name}' is in the nnU-Net backend's list; reports in {folder}").format(
                name=evaluation["modelName"], folder=p.trainProject))

    def _showTrainProgress(self, percent, message):
        self.ui.trainProgressBar.setValue(int(percent))
        self.ui.trainProgressBar.setFormat(f"{message} (%p%)")
        slicer.app.processEvents()  # Cancel stays clickable

    def onTrainCancel(self):
        if self._trainCancelEvent is not None:
            self._trainCancelEvent.set()
        self.onAiCancel()

    # Interactive ------------------------------------------------------------------------------------------------

    def _setupInteractive(self):
        import qt

        self._promptTimer = qt.QTimer()
        self._promptTimer.setInterval(50)
        self._promptTimer.connect("timeout()", self._pollPromptJob)
        self.ui.interactiveTestButton.connect("clicked(bool)", self.onInteractiveTest)
        buttons = {"point": self.ui.interactivePointButton, "box": self.ui.interactiveBoxButton,
                   "lasso": self.ui.interactiveLassoButton, "scribble": self.ui.interactiveScribbleButton}
        for kind, button in buttons.items():
            button.connect("clicked(bool)", lambda checked=False, kind=kind: self.onInteractivePrompt(kind))
            button.toolTip = _("{tip} (shortcut while this module is shown: {key})").format(
                tip=button.toolTip, key=INTERACTIVE_SHORTCUTS[kind])
        self.ui.interactiveUndoButton.connect("clicked(bool)", self.onInteractiveUndo)
        self.ui.interactiveLocalServerButton.connect("clicked(bool)", self.onInteractiveLocalServer)
        self.ui.interactiveResetButton.connect("clicked(bool)", self.onInteractiveReset)
        self.logic.interactiveConsentCallback = lambda origin: slicer.util.confirmYesNoDisplay(
            _("Send the image to the nnInteractive server at {origin}? It is not on this computer.").format(
                origin=origin))

    def _installShortcuts(self):
        """Prompt shortcuts on the main window while the module is entered (see INTERACTIVE_SHORTCUTS)."""
        import qt

        self._removeShortcuts()
        for kind, key in INTERACTIVE_SHORTCUTS.items():
            shortcut = qt.QShortcut(qt.QKeySequence(key), slicer.util.mainWindow())
            shortcut.connect("activated()", lambda kind=kind: self.onInteractivePrompt(kind))
            self._shortcuts.append(shortcut)
        negative = qt.QShortcut(qt.QKeySequence(NEGATIVE_PROMPT_SHORTCUT), slicer.util.mainWindow())
        negative.connect("activated()", self.ui.interactiveNegativeCheckBox.toggle)
        self._shortcuts.append(negative)

    def _removeShortcuts(self):
        for shortcut in self._shortcuts:
            shortcut.setParent(None)  # a deleted shortcut takes its connection with it
            shortcut.deleteLater()
        self._shortcuts = []

    def _ensureRuntimePackages(self, purpose=None):
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

    def _interactiveServer(self):
        """Apply the panel's server URL and key (the key lives only in the widget, never in the scene); the local
        server's key stays in the Logic."""
        self._ensureRuntimePackages()
        local = self.logic.interactiveServerStatus()
        if local["state"] == "running" and local["url"] == self._parameterNode.interactiveServerUrl:
            return
        self.logic.useInteractiveServer(self._parameterNode.interactiveServerUrl,
                                        self.ui.interactiveApiKeyLineEdit.text or None)

    def onInteractiveTest(self):
        self._showLocalServerStatus()
        with slicer.util.tryWithErrorDisplay(_("Connection test failed."), waitCursor=True):
            self._interactiveServer()
            ok, message, _info = self.logic.testInteractiveConnection()
            (slicer.util.infoDisplay if ok else slicer.util.warningDisplay)(message)

    def onInteractivePrompt(self, kind):
        """A prompt runs as a job (the server exchange on a worker thread): the panel stays responsive, its writing
        controls are disabled until the result is written by _pollPromptJob."""
        with slicer.util.tryWithErrorDisplay(_("nnInteractive prompt failed."), waitCursor=True):
            if self._promptJob is not None:
                raise ValueError(_("A prompt is running: wait for its result."))
            self._interactiveServer()
            volume, segmentation, segmentId = self._inputs()
            session = self.logic.interactiveSession
            if (session.volumeNode, session.segmentationNode, session.segmentId) != (volume, segmentation, segmentId):
                self.logic.startInteractiveSegmentation(volume, segmentation, segmentId)
            p = self._parameterNode
            prompts = {"point": (p.interactivePoints, _("point list")), "box": (p.interactiveRoi, _("ROI")),
                       "lasso": (p.interactiveCurve, _("closed curve"))}
            details = {}
            if kind in prompts:
                prompt = self._requireNode(*prompts[kind])
            else:
                prompt, details = segmentation, {"scribbleSegmentId":
                                                 self.ui.interactiveScribbleSegmentSelector.currentSegmentID()}
            self._promptJob = self.logic.startInteractivePrompt(kind, prompt, not p.interactiveNegative, **details)
            self._setWritingControlsEnabled(False)
            self._promptTimer.start()

    def _pollPromptJob(self):
        job = self._promptJob
        if job is None or not job.done:
            return
        self._promptTimer.stop()
        self._promptJob = None
        self._setWritingControlsEnabled(True)
        with slicer.util.tryWithErrorDisplay(_("nnInteractive prompt failed."), waitCursor=True):
            job.wait()  # writes the result here, on the GUI thread (or raises the job's error)

    def _setWritingControlsEnabled(self, enabled):
        """While a long operation runs (a comparison, a prompt), nothing that writes can be pressed."""
        for widget in (self.ui.classicCollapsibleButton, self.ui.aiCollapsibleButton,
                       self.ui.interactiveCollapsibleButton, self.ui.compareCollapsibleButton,
                       self.ui.inputsCollapsibleButton, self.segmentEditorWidget):
            widget.enabled = enabled

    @staticmethod
    def _requireNode(node, what):
        if node is None:
            raise ValueError(_("Select or place a {what} first.").format(what=what))
        return node

    def onInteractiveLocalServer(self):
        """Start the local nnInteractive server (its environment and a model first, once the user agrees) or stop it;
        the long steps run as jobs like the AI runs."""
        with slicer.util.tryWithErrorDisplay(_("Local nnInteractive server failed."), waitCursor=True):
            if self.logic.interactiveServerStatus()["state"] in ("running", "starting"):
                self.logic.stopInteractiveServer()
                return self._showLocalServerStatus()
            if self._aiJob is not None and not self._aiJob.done:
                raise ValueError(_("A job is already running: wait for it or cancel it."))
            self._ensureRuntimePackages()
            again = lambda result: self.onInteractiveLocalServer()  # noqa: E731 - the next step after a job
            if self.logic.interactiveServerEnvironmentDetails()["state"] != "ready":
                if slicer.util.confirmOkCancelDisplay(_("The local nnInteractive server needs its own Python "
                                                        "environment (several GB, created once). Create it now?")):
                    self._startAiJob(self.logic.startCreateInteractiveServerEnvironment(), again)
                return
            if not self.logic.interactiveServerModels():
                if slicer.util.confirmYesNoDisplay(_(
                        "No nnInteractive model on this computer. Download the official model from huggingface.co "
                        "(several hundred MB; its license allows non-commercial use only)? "
                        "No: import a model folder.")):
                    return self._startAiJob(self.logic.startDownloadInteractiveServerModel(agree=True), again)
                import qt

                folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), _("nnInteractive model folder"))
                if not folder:
                    return
                self.logic.importInteractiveServerModel(folder)
            self._startAiJob(self.logic.startInteractiveServerJob(), self._showLocalServerStatus)

    def _showLocalServerStatus(self, *args):
        status = self.logic.interactiveServerStatus()
        running = status["state"] == "running"
        if running:
            self._parameterNode.interactiveServerUrl = status["url"]
        self.ui.interactiveLocalServerButton.text = _("Stop local server") if running else _("Start local server")
        self.ui.interactiveLocalServerLabel.text = status["message"]

    def onInteractiveUndo(self):
        with slicer.util.tryWithErrorDisplay(_("Undo failed."), waitCursor=True):
            self.logic.interactiveUndo()

    def onInteractiveReset(self):
        with slicer.util.tryWithErrorDisplay(_("Reset failed."), waitCursor=True):
            self.logic.interactiveReset()

    # Compare ----------------------------------------------------------------------------------------------------

    def onCompare(self):
        # Progress repaints the GUI (processEvents): no writing control can be pressed while it runs (the Logic
        # refuses writes meanwhile too), and closing the scene cancels it.
        self._setWritingControlsEnabled(False)
        self._comparisonCancelled = False
        try:
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
                    progressCallback=self._showComparisonProgress, match=p.comparisonMatch,
                    mapping=p.comparisonMapping or None, device=p.comparisonDevice, hausdorff95Mode=p.hausdorff95Mode,
                    surfaceDiceTolerance=p.surfaceDiceTolerance, hausdorffPercentile=p.hausdorffPercentile)
                self.ui.comparisonTableView.setMRMLTableNode(p.comparisonTable)
        finally:
            self._setWritingControlsEnabled(True)

    def _showComparisonProgress(self, fraction, message):
        self.ui.comparisonProgressBar.setValue(int(round(100 * fraction)))
        self.ui.comparisonProgressBar.setFormat(message)
        slicer.app.processEvents()
        if self._comparisonCancelled:
            raise JobCancelledError(_("The comparison was cancelled: the scene was closed."))

    def onExportComparisonCsv(self):
        import qt

        with slicer.util.tryWithErrorDisplay(_("Export failed."), waitCursor=False):
            if not self._comparisonRows:
                raise ValueError(_("Compute a comparison first."))
            path = qt.QFileDialog.getSaveFileName(None, _("Export comparison"), "comparison.csv", "CSV (*.csv)")
            if path:
                self.logic.saveComparisonCsv(self._comparisonRows, path)

    def onLoadDicomSegmentation(self):
        """A DICOM SEG or RTSTRUCT file on the source volume's DICOM series becomes the panel's segmentation."""
        import qt

        with slicer.util.tryWithErrorDisplay(_("Loading DICOM SEG / RTSTRUCT failed."), waitCursor=False):
            volume = self._requireNode(self._parameterNode.sourceVolume, _("source volume loaded from a DICOM series"))
            path = qt.QFileDialog.getOpenFileName(None, _("Load DICOM SEG / RTSTRUCT"), "",
                                                  "DICOM (*.dcm);;All files (*)")
            if path:
                self._parameterNode.segmentation = self.logic.loadSegmentation(path, sourceSeries=volume)

    def onSaveAsDicom(self, kind):
        """The segmentation as a DICOM SEG or RTSTRUCT referencing the source volume's DICOM series."""
        import qt

        with slicer.util.tryWithErrorDisplay(_("Saving as DICOM failed."), waitCursor=False):
            p = self._parameterNode
            segmentation = self._requireNode(p.segmentation, _("segmentation"))
            volume = self._requireNode(p.sourceVolume, _("source volume loaded from a DICOM series"))
            path = qt.QFileDialog.getSaveFileName(None, _("Save as DICOM {kind}").format(kind=kind),
                                                  f"{segmentation.GetName()}_{kind.lower()}.dcm", "DICOM (*.dcm)")
            if path:
                export = self.logic.exportDicomSeg if kind == "SEG" else self.logic.exportRtStruct
                export(segmentation, volume, path)

    def onComparisonMaps(self):
        """Error map (a segmentation, in the slice views) and surface-distance maps (models, in the 3D view)."""
        with slicer.util.tryWithErrorDisplay(_("Comparison maps failed."), waitCursor=True):
            p = self._parameterNode
            reference = self._requireNode(p.comparisonReference, _("reference segmentation"))
            compared = self._requireNode(p.comparisonCompared, _("compared segmentation"))
            mapping = p.comparisonMapping or None
            self.logic.comparisonErrorMap(reference, compared, match=p.comparisonMatch, mapping=mapping)
            self.logic.comparisonDistanceMap(reference, compared, match=p.comparisonMatch, mapping=mapping)


def _nodeId(node):
    return node.GetID() if node is not None else None


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
