"""AISegmentationLogic: the one Logic behind the module panel, the Slicer Python console and the command line.

It runs identically inside desktop Slicer and headless on PyPI ``slicer-core``; it imports no Qt. Every write into
a segment goes through :class:`SegmentEditing.SegmentEditor` (undo, masking, overwrite as in the Segment Editor).
Bad input raises ValueError with a message meant for the user, and leaves the scene unchanged.
"""

import os

import numpy as np
import slicer
import vtk

from . import RuntimeInstall, SegmentationIO, Segments, VolumeIO
from .Classic import Registry as ClassicRegistry
from .Classic.Threshold import Threshold
from .Classic.Tool import ToolInputs
from .Classic.ToolJob import ClassicToolJob
from .Comparison import ComparisonMaps, LabelmapComparison, SegmentComparison, SegmentComparisonMRML
from .Backends.AILogic import AILogic
from .Backends.Sequences.SequenceFrames import proxySequence
from .Backends.Sequences.SequenceRun import SequenceRun
from .Dicom.DicomLogic import DicomLogic, dicomSegmentationKind
from .Dicom.PacsLogic import PacsLogic
from .Geometry import orientedImageFromArray, requireInsideVolume
from .Interactive.InteractiveLogic import InteractiveLogic
from .Interactive.LocalServerLogic import LocalServerLogic
from .Runtime import getRuntime
from .Training.TrainingLogic import TrainingLogic
from .SegmentEditing import SegmentEditor, requireSegment, requireVolume
from .Options import validateOptions
from .Validation import countNonFinite, requireNumber, requirePoints, requireRange


class AISegmentationLogic:
    """Classic tools, comparison, I/O and undo on real Slicer MRML objects; the other areas are composed, typed
    attributes: ``ai`` (AILogic: AI backends, Dask consent), ``interactive`` (InteractiveLogic: nnInteractive),
    ``localServer`` (LocalServerLogic: the managed nnInteractive server), ``dicom`` (DicomLogic: DICOM SEG / RTSTRUCT),
    ``pacs`` (PacsLogic: DICOMweb) and ``training`` (TrainingLogic). The console's common calls of those areas are
    written out below as one-line methods (``logic.runBackend(...)`` is ``logic.ai.runBackend(...)``); the rest is
    reached through the area (``logic.training.planTraining(...)``). No name of the facade is generated."""

    def __init__(self, runtime=None):
        self.runtime = runtime or getRuntime()
        self._segmentEditor = SegmentEditor(self.scene)
        self.ai: AILogic = AILogic(lambda: self.scene, lambda: self.segmentEditor, self.createSegmentation)
        self.interactive: InteractiveLogic = InteractiveLogic(lambda: self.segmentEditor)
        self.localServer: LocalServerLogic = LocalServerLogic(self.interactive)
        self.dicom: DicomLogic = DicomLogic(lambda: self.runtime)
        self.pacs: PacsLogic = PacsLogic()
        self.training: TrainingLogic = TrainingLogic(lambda: self.runtime, lambda: self.ai.aiEnvironments,
                                                     self.loadSegmentation, self.importLabelmap,
                                                     self.ai.requireClusterConsent)
        self._previewNodeId = None

    @property
    def scene(self):
        return self.runtime.scene

    @property
    def segmentEditor(self):
        """The segment editor: its parameter node (a singleton) holds the masking settings."""
        if self._segmentEditor.scene is not self.scene:
            self._segmentEditor = SegmentEditor(self.scene)
        return self._segmentEditor

    # Runtime packages (inside desktop Slicer) ----------------------------------------------------------------------

    @staticmethod
    def missingRuntimePackages():
        """Requirements of Resources/requirements.txt not installed in this Python (ValueError: a package is there
        at a version below our bound, e.g. one that Slicer ships; it is never replaced)."""
        return RuntimeInstall.missingRuntimeRequirements()

    @staticmethod
    def installRuntimePackages(confirm=None):
        """Install the missing runtime packages (pip_ensure on Slicer >= 5.12, pip_install on 5.10, pip elsewhere),
        after confirm(missing) agrees; nothing installed is upgraded or downgraded. Returns what was installed."""
        return RuntimeInstall.installRuntimeRequirements(confirm=confirm)

    # I/O -------------------------------------------------------------------------------------------------------

    def loadVolume(self, path, name=None, acceptIrregularSpacing=False):
        """Volume from NRRD / NIfTI / MHA, or a DICOM series from a folder. An incomplete file or an unevenly spaced
        series is refused; acceptIrregularSpacing=True loads such a series resampled onto a regular grid (recorded
        in the node's "AISegmentation.irregularSpacing" attribute)."""
        return VolumeIO.loadVolume(self.runtime, path, name, acceptIrregularSpacing=acceptIrregularSpacing)

    def saveVolume(self, volumeNode, path):
        return VolumeIO.saveVolume(volumeNode, path)

    def loadSegmentation(self, path, name=None, sourceSeries=None):
        """Segmentation from a .seg.nrrd file, or from a DICOM SEG / RTSTRUCT file on its referenced series
        (sourceSeries: the series' folder or a volume node loaded from it)."""
        if dicomSegmentationKind(path):
            return self.dicom.loadDicomSegmentation(path, sourceSeries, name)
        return SegmentationIO.loadSegmentation(self.runtime, path, name)

    def importLabelmap(self, path, labelNames=None, referenceVolumeNode=None, name=None):
        """Segmentation from a label-map image and a name table ({1: "spleen", ...}, JSON file or "1=a,2=b")."""
        return SegmentationIO.importLabelmap(self.runtime, path, labelNames, referenceVolumeNode, name)

    def saveSegmentation(self, segmentationNode, path):
        return SegmentationIO.saveSegmentation(segmentationNode, path)

    def exportLabelmap(self, segmentationNode, referenceVolumeNode, path):
        """Label-map image (NIfTI, NRRD...) of all segments plus a <path>.labels.json name table."""
        requireVolume(referenceVolumeNode, "reference volume")
        return SegmentationIO.exportLabelmap(self.runtime, segmentationNode, referenceVolumeNode, path)

    def loadMarkupsPoints(self, path):
        """RAS coordinates (N x 3) of the control points in a Slicer markups file (.mrk.json, .fcsv)."""
        if not os.path.isfile(path):
            raise ValueError(f"Markups file '{path}' does not exist")
        before = VolumeIO._nodeIds(self.scene)
        with VolumeIO.quietVtkErrors():
            nodeId = self.runtime.markupsLogic.LoadMarkups(os.fspath(path), "seeds")
        node = self.scene.GetNodeByID(nodeId) if nodeId else None
        if node is None:
            VolumeIO.removeNodesAddedSince(self.scene, before)
            raise ValueError(f"Could not read markups from '{path}'")
        points = slicer.util.arrayFromMarkupsControlPoints(node, world=True)
        VolumeIO.removeNodesAddedSince(self.scene, before)
        return np.asarray(points, float)

    # Segments --------------------------------------------------------------------------------------------------

    def createSegmentation(self, volumeNode, name="Segmentation"):
        requireVolume(volumeNode)
        return Segments.createSegmentation(self.scene, volumeNode, name)

    def addSegment(self, segmentationNode, name, color=None):
        return Segments.addSegment(segmentationNode, name, color)

    def getOrAddSegment(self, segmentationNode, name, color=None):
        segmentId = segmentationNode.GetSegmentation().GetSegmentIdBySegmentName(name)
        return segmentId or self.addSegment(segmentationNode, name, color)

    def segmentArray(self, segmentationNode, segmentId, volumeNode):
        """KJI uint8 array (0/1) of a segment on the volume's grid."""
        requireSegment(segmentationNode, segmentId)
        return self.segmentEditor.segmentLabelmapArray(segmentationNode, segmentId, volumeNode)

    def segmentStatistics(self, segmentationNode, volumeNode):
        """Rows (name, label value, voxel count, volume mL) for every segment."""
        voxelVolumeMl = float(np.prod(volumeNode.GetSpacing())) / 1000.0
        rows = []
        segmentation = segmentationNode.GetSegmentation()
        for segmentId in segmentation.GetSegmentIDs():
            segment = segmentation.GetSegment(segmentId)
            count = int(self.segmentArray(segmentationNode, segmentId, volumeNode).sum())
            rows.append({"segment": segment.GetName(), "labelValue": segment.GetLabelValue(),
                         "voxels": count, "volumeMl": round(count * voxelVolumeMl, 3)})
        return rows

    def sequenceOfVolume(self, volumeNode):
        """The sequence node whose frame the volume shows (it is a sequence browser's proxy node), or None."""
        return proxySequence(self.scene, volumeNode)

    def startBackendOnSequence(self, name, sequence, outputName=None, **options):
        """The job of runBackendOnSequence (polled like a backend job; its result arrives on this thread)."""
        run = SequenceRun(lambda: self.scene, self.startBackend, self.estimateBackendMemory, self.segmentStatistics,
                          self.ai.requireClusterConsent)
        return run.start(name, sequence, outputName, **options)

    def runBackendOnSequence(self, name, sequence, progressCallback=None, cancelEvent=None, outputName=None,
                             **options):
        """Every frame of a sequence (a sequence node of volumes, or a list of volume nodes) through backend `name`
        with its options: (sequence node of one segmentation per frame, table node of the structures' volumes in mL
        per frame), played with the input by a browser node. Progress per frame; cancelEvent cancels the running
        frame and the rest; cluster="local" / an address spreads the frames over a Dask cluster
        (Backends/Sequences/SequenceRun)."""
        job = self.startBackendOnSequence(name, sequence, outputName, **options)
        return job.wait(progressCallback=progressCallback, cancelEvent=cancelEvent)

    # Masking and undo ------------------------------------------------------------------------------------------

    def setMasking(self, maskMode="everywhere", maskSegmentId=None, overwriteMode="allSegments",
                   intensityRange=None):
        """Editable area for every following write; see SegmentEditor.setMasking. intensityRange: finite
        (minimum, maximum) or None."""
        if intensityRange is not None:
            intensityRange = requireRange("intensityRange (editable intensity range)", intensityRange)
        self.segmentEditor.setMasking(maskMode, maskSegmentId, overwriteMode, intensityRange)

    def masking(self):
        return self.segmentEditor.masking()

    def canUndo(self, segmentationNode):
        return self.segmentEditor.canUndo(segmentationNode)

    def undo(self, segmentationNode):
        self.segmentEditor.undo(segmentationNode)

    def redo(self, segmentationNode):
        self.segmentEditor.redo(segmentationNode)

    def writeLabelmapArray(self, segmentationNode, segmentId, volumeNode, mask, mode="set"):
        """Write a KJI 0/1 array (the volume's grid) into a segment through the segment editor logic."""
        requireSegment(segmentationNode, segmentId)
        sourceImage = self.segmentEditor.bind(segmentationNode, volumeNode)
        mask = np.asarray(mask)
        if mask.shape != tuple(sourceImage.GetDimensions()[::-1]):
            raise ValueError(f"Mask shape {mask.shape} differs from the volume's {sourceImage.GetDimensions()[::-1]}")
        nonFinite = countNonFinite(mask)
        if nonFinite:
            raise ValueError(f"mask must hold finite values (0 outside, nonzero inside): {nonFinite} are NaN or "
                             "infinite")
        labelmap = orientedImageFromArray((mask != 0).astype(np.uint8), sourceImage)
        self.segmentEditor.modifySegment(segmentationNode, segmentId, volumeNode, labelmap, mode)

    # Classic tools (Classic/<Tool>/, Classic/Registry.py) ---------------------------------------------------------

    @staticmethod
    def classicTools():
        """{name: tool} of the registered classic tools (their declarations: title, help, options, needs...)."""
        return ClassicRegistry.allTools()

    def _classicInputs(self, volumeNode, segmentationNode, segmentId=None, seedSegmentIds=None, seedPoints=None,
                       volumes=None):
        return ToolInputs(self.segmentEditor, self.scene, volumeNode, segmentationNode, segmentId,
                          list(seedSegmentIds or []), seedPoints if seedPoints is not None else [], list(volumes or []))

    def _classicRequest(self, name, options):
        tool = ClassicRegistry.getTool(name)
        return tool, validateOptions(tool.options, options, tool.title)

    def runClassicTool(self, name, volumeNode, segmentationNode, segmentId=None, seedSegmentIds=None,
                       seedPoints=None, volumes=None, **options):
        """Run a classic tool by name with its declared options (validated; defaults filled in); a preview tool
        grows and applies at once, a job tool runs to its end here. Returns the tool's result."""
        tool, options = self._classicRequest(name, options)
        inputs = self._classicInputs(volumeNode, segmentationNode, segmentId, seedSegmentIds, seedPoints, volumes)
        if tool.job:
            return ClassicToolJob(tool, inputs, options).start().wait()
        return tool.run(inputs, **options)

    def startClassicTool(self, name, volumeNode, segmentationNode, segmentId=None, seedSegmentIds=None,
                         seedPoints=None, volumes=None, **options):
        """A job tool's run as a job (progress, cancel(), wait() writes the result on the calling thread)."""
        tool, options = self._classicRequest(name, options)
        if not tool.job:
            raise ValueError(f"{tool.title} is not a job tool: run it with runClassicTool")
        inputs = self._classicInputs(volumeNode, segmentationNode, segmentId, seedSegmentIds, seedPoints, volumes)
        return ClassicToolJob(tool, inputs, options).start()

    def startClassicPreview(self, name, volumeNode, segmentationNode, seedSegmentIds=None, segmentId=None,
                            seedPoints=None, volumes=None, **options):
        """A preview tool's session (update(), apply(), cancel()); show it with showClassicPreview."""
        tool, options = self._classicRequest(name, options)
        if not tool.preview:
            raise ValueError(f"{tool.title} has no preview: run it with runClassicTool")
        inputs = self._classicInputs(volumeNode, segmentationNode, segmentId, seedSegmentIds, seedPoints, volumes)
        return tool.startPreview(inputs, **options)

    def classicToolAction(self, name, action, volumeNode, segmentationNode=None, segmentId=None, **options):
        """A tool's action (e.g. threshold's autoRange): {option: new value} for the fronts' editors."""
        tool = ClassicRegistry.getTool(name)
        if action not in tool.actions:
            raise ValueError(f"{tool.title} has no action '{action}'; its actions: {', '.join(tool.actions) or 'none'}")
        return getattr(tool, action)(self._classicInputs(volumeNode, segmentationNode, segmentId), **options)

    # Threshold -------------------------------------------------------------------------------------------------

    def threshold(self, volumeNode, segmentationNode, segmentId, minimum, maximum):
        """Set the segment to the voxels with minimum <= intensity <= maximum (within the editable area).

        minimum and maximum must be finite; NaN and infinite voxels are never selected."""
        ClassicRegistry.getTool("threshold").run(self._classicInputs(volumeNode, segmentationNode, segmentId),
                                                 minimum=minimum, maximum=maximum)

    @staticmethod
    def intensityRange(volumeNode):
        """(minimum, maximum) of the finite intensities of a volume (the threshold slider's range), or None without
        image data (or without any finite voxel)."""
        if volumeNode is None or volumeNode.GetImageData() is None:
            return None
        return Threshold.finiteScalarRange(volumeNode.GetImageData())

    def autoThresholdRange(self, volumeNode, method="Otsu", mode="SET_LOWER_MAX", currentRange=None):
        """(minimum, maximum) from an automatic method (Threshold.AUTO_THRESHOLD_METHODS) and mode, computed on the
        finite voxels only (NaN and infinite voxels are ignored); currentRange: finite (minimum, maximum) or None."""
        if currentRange is not None:
            currentRange = requireRange("currentRange (threshold range to update)", currentRange)
        current = dict(zip(("minimum", "maximum"), currentRange)) if currentRange is not None else {}
        found = ClassicRegistry.getTool("threshold").autoRange(self._classicInputs(volumeNode, None), method, mode,
                                                                **current)
        return found["minimum"], found["maximum"]

    def autoThreshold(self, volumeNode, segmentationNode, segmentId, method="Otsu", mode="SET_LOWER_MAX",
                      currentRange=None):
        """Threshold with the range an automatic method gives (on the finite voxels); returns that range."""
        requireSegment(segmentationNode, segmentId)
        thresholdRange = self.autoThresholdRange(volumeNode, method, mode, currentRange)
        self.threshold(volumeNode, segmentationNode, segmentId, *thresholdRange)
        return thresholdRange

    # Level tracing ---------------------------------------------------------------------------------------------

    def levelTrace(self, volumeNode, segmentationNode, segmentId, seedRas, plane="IJ", mode="add"):
        """Level tracing at a seed on an edge (RAS): plane "IJ", "IK", "JK" (2D, on the slice through the seed)
        or "3D". The traced region is added to the segment (mode "set" replaces it). A volume with NaN or
        infinite voxels is refused."""
        inputs = self._classicInputs(volumeNode, segmentationNode, segmentId, seedPoints=seedRas)
        ClassicRegistry.getTool("level-trace").run(inputs, plane=plane, mode=mode)

    # Grow from seeds -------------------------------------------------------------------------------------------

    def paintSeeds(self, volumeNode, segmentationNode, segmentId, rasPoints, radiusMm=5.0):
        """Add spheres of radiusMm around RAS points to a (seed) segment. Points outside the volume are refused."""
        radiusMm = requireNumber("radiusMm (seed radius)", radiusMm, minimum=0, minimumInclusive=False, unit="mm")
        rasPoints = requirePoints("rasPoints (seed points, RAS)", rasPoints)
        requireSegment(segmentationNode, segmentId)
        sourceImage = self.segmentEditor.bind(segmentationNode, volumeNode)
        ijkPoints = requireInsideVolume(volumeNode, rasPoints, "Seed point")
        mask = _spheresMask(sourceImage.GetDimensions()[::-1], volumeNode.GetSpacing()[::-1], ijkPoints, radiusMm)
        labelmap = orientedImageFromArray(mask, sourceImage)
        self.segmentEditor.modifySegment(segmentationNode, segmentId, volumeNode, labelmap, "add")

    def growFromSeeds(self, volumeNode, segmentationNode, seedSegmentIds, seedLocalityFactor=0.0):
        """Start a grow-from-seeds preview; call .update() after changing seeds, then .apply() or .cancel().
        seedLocalityFactor: finite, >= 0. A volume with NaN or infinite voxels is refused."""
        inputs = self._classicInputs(volumeNode, segmentationNode, seedSegmentIds=seedSegmentIds)
        return ClassicRegistry.getTool("grow-from-seeds").startPreview(inputs, seedLocalityFactor)

    def visibleSegmentIds(self, segmentationNode):
        """IDs of the segments shown in views (the seeds of grow from seeds, as in the Segment Editor)."""
        if segmentationNode is None:
            raise ValueError("No segmentation node given")
        displayNode = segmentationNode.GetDisplayNode()
        ids = vtk.vtkStringArray()
        if displayNode is not None:
            displayNode.GetVisibleSegmentIDs(ids)
            return [ids.GetValue(i) for i in range(ids.GetNumberOfValues())]
        return list(segmentationNode.GetSegmentation().GetSegmentIDs())

    def showGrowFromSeedsPreview(self, session):
        """Show a grow-from-seeds preview (any classic tool's preview session) as a semi-transparent
        "<segmentation> preview" segmentation node."""
        self.removeGrowFromSeedsPreview()
        source = session.segmentationNode
        preview = self.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", source.GetName() + " preview")
        preview.CreateDefaultDisplayNodes()
        preview.GetDisplayNode().SetOpacity(0.6)
        preview.SetReferenceImageGeometryParameterFromVolumeNode(session.sourceVolumeNode)
        for segmentId in session.seedSegmentIds:
            segment = source.GetSegmentation().GetSegment(segmentId)
            previewId = Segments.addSegment(preview, segment.GetName(), segment.GetColor())
            slicer.util.updateSegmentBinaryLabelmapFromArray(
                session.previewArray(segmentId), preview, previewId, session.sourceVolumeNode)
        self._previewNodeId = preview.GetID()
        return preview

    def removeGrowFromSeedsPreview(self):
        node = self.scene.GetNodeByID(self._previewNodeId or "")
        if node is not None:
            self.scene.RemoveNode(node)
        self._previewNodeId = None

    showClassicPreview = showGrowFromSeedsPreview
    removeClassicPreview = removeGrowFromSeedsPreview

    # Islands ---------------------------------------------------------------------------------------------------

    def keepLargestIsland(self, volumeNode, segmentationNode, segmentId):
        inputs = self._classicInputs(volumeNode, segmentationNode, segmentId)
        ClassicRegistry.getTool("islands").run(inputs, operation="keepLargest")

    def removeSmallIslands(self, volumeNode, segmentationNode, segmentId, minimumSize):
        """Remove the islands of fewer than minimumSize voxels (a whole number >= 1) from a segment."""
        inputs = self._classicInputs(volumeNode, segmentationNode, segmentId)
        ClassicRegistry.getTool("islands").run(inputs, operation="removeSmall", minimumSize=minimumSize)

    # Comparison ------------------------------------------------------------------------------------------------

    def compareSegments(self, referenceNode, referenceSegmentId, comparedNode, comparedSegmentId, device="auto",
                        hausdorff95Mode="max", averageSurfaceDistanceMode="pooled", surfaceDiceTolerance=2.0,
                        hausdorffPercentile=95):
        """Dice, Jaccard, volumes, Hausdorff (max, 95 %), average surface distance and surface Dice of one segment
        pair (see SegmentComparison for the definitions), on the reference segment's geometry."""
        options = dict(device=device, hausdorff95Mode=hausdorff95Mode,
                       averageSurfaceDistanceMode=averageSurfaceDistanceMode,
                       surfaceDiceTolerance=surfaceDiceTolerance, hausdorffPercentile=hausdorffPercentile)
        SegmentComparison.validateComparisonOptions(options)
        return SegmentComparisonMRML.compareSegments(referenceNode, referenceSegmentId, comparedNode,
                                                     comparedSegmentId, **options)

    def compareSegmentations(self, referenceNode, comparedNode, pairs=None, tableNode=None, csvPath=None,
                             progressCallback=None, match="auto", mapping=None, **options):
        """Compare all segment pairs (every segment of either side a row, matched by match = "auto" | "name" |
        "value" through the label mapping file or dict, if any, unless pairs = [(referenceId, comparedId)] is given).

        Results go into a table node (created when not given) and optionally a CSV file. Returns (rows, tableNode).
        options: those of compareSegments, validated before anything is computed.
        """
        SegmentComparison.validateComparisonOptions(options)
        for node, what in ((referenceNode, "reference"), (comparedNode, "compared")):
            if node is None:
                raise ValueError(f"No {what} segmentation selected")
        with self._oneComparison():
            rows = SegmentComparisonMRML.compareSegmentations(referenceNode, comparedNode, pairs, progressCallback,
                                                              match, mapping, **options)
        tableNode = SegmentComparisonMRML.rowsToTableNode(self.scene, rows, tableNode)
        if csvPath:
            self.saveComparisonCsv(rows, csvPath)
        return rows, tableNode

    def compareLabelmapFiles(self, referencePath, comparedPath, referenceLabels=None, comparedLabels=None,
                             match=None, csvPath=None, progressCallback=None, mapping=None, **options):
        """Compare two label-map files label by label, without building segmentation nodes (no table node).

        Labels are paired by value, or by name when match="name" ("auto", the default: by name when both sides have
        a name table or a label mapping is given; tables as for importLabelmap); the compared map is resampled onto
        the reference's grid only when they differ.
        Returns the rows of compareSegmentations; optionally writes them to a CSV file.
        """
        SegmentComparison.validateComparisonOptions(options)
        with self._oneComparison():
            rows = LabelmapComparison.compareLabelmapFiles(self.runtime, referencePath, comparedPath, referenceLabels,
                                                           comparedLabels, match, progressCallback, mapping,
                                                           **options)
        if csvPath:
            self.saveComparisonCsv(rows, csvPath)
        return rows

    def _oneComparison(self):
        """One long operation at a time: while a comparison runs (the GUI repaints from progressCallback), a second
        comparison, a tool, an AI result or a prompt is refused with a message; the table is written after it."""
        return self.segmentEditor.exclusive("a comparison")

    @staticmethod
    def saveComparisonCsv(rows, path):
        """Write the rows of compareSegmentations to a CSV file (the table's columns); returns the path."""
        return SegmentComparisonMRML.rowsToCsv(rows, path)

    def comparisonErrorMap(self, referenceNode, comparedNode, pairs=None, match="auto", mapping=None):
        """A new segmentation: true positive / false positive / false negative voxels of every structure, for the
        slice views (pairs, match and mapping as for compareSegmentations; see ComparisonMaps)."""
        return ComparisonMaps.errorMapSegmentation(self.scene, referenceNode, comparedNode, pairs, match, mapping)

    def comparisonDistanceMap(self, referenceNode, comparedNode, pairs=None, match="auto", mapping=None, path=None):
        """[(structure, model node)]: each compared surface with its signed distance (mm) to the reference surface
        per point, colour-coded for the 3D view; path: also written as one .vtk / .vtp polydata file."""
        models = ComparisonMaps.distanceMapModels(self.scene, referenceNode, comparedNode, pairs, match, mapping)
        if path:
            ComparisonMaps.writeDistanceMap(models, path)
        return models

    # AI backends (Backends/AILogic.py) --------------------------------------------------------------------------

    @property
    def aiEnvironments(self):
        """See AILogic.aiEnvironments."""
        return self.ai.aiEnvironments

    @aiEnvironments.setter
    def aiEnvironments(self, value):
        self.ai.aiEnvironments = value

    @staticmethod
    def backendNames():
        """Names of the registered backends (the first is the panel's default) (AILogic.backendNames)."""
        return AILogic.backendNames()

    @staticmethod
    def aiBackendNames():
        """See AILogic.aiBackendNames."""
        return AILogic.aiBackendNames()

    @staticmethod
    def backend(name):
        """See AILogic.backend."""
        return AILogic.backend(name)

    @staticmethod
    def backendOptions(name):
        """See AILogic.backendOptions."""
        return AILogic.backendOptions(name)

    @staticmethod
    def backendActions(name):
        """See AILogic.backendActions."""
        return AILogic.backendActions(name)

    def backendSettings(self, name):
        """See AILogic.backendSettings."""
        return self.ai.backendSettings(name)

    def startBackend(self, name, volumes, segmentationNode=None, environment="auto", cluster=None,
                     clusterSecurity=None, **options):
        """See AILogic.startBackend."""
        return self.ai.startBackend(name, volumes, segmentationNode, environment, cluster, clusterSecurity, **options)

    def runBackend(self, name, volumes, segmentationNode=None, environment="auto", progressCallback=None,
                   cancelEvent=None, cluster=None, clusterSecurity=None, **options):
        """startBackend(...) and wait: returns the segmentation node (AILogic.runBackend)."""
        return self.ai.runBackend(name, volumes, segmentationNode, environment, progressCallback, cancelEvent, cluster,
                                  clusterSecurity, **options)

    def estimateBackendMemory(self, name, volumes, **options):
        """See AILogic.estimateBackendMemory."""
        return self.ai.estimateBackendMemory(name, volumes, **options)

    def runBackendAction(self, name, action, value):
        """See AILogic.runBackendAction."""
        return self.ai.runBackendAction(name, action, value)

    def backendEnvironmentStatus(self, name):
        """See AILogic.backendEnvironmentStatus."""
        return self.ai.backendEnvironmentStatus(name)

    def backendEnvironmentDetails(self, name):
        """See AILogic.backendEnvironmentDetails."""
        return self.ai.backendEnvironmentDetails(name)

    def startCreateBackendEnvironment(self, name, force=False):
        """See AILogic.startCreateBackendEnvironment."""
        return self.ai.startCreateBackendEnvironment(name, force)

    def createBackendEnvironment(self, name, force=False, progressCallback=None, cancelEvent=None):
        """See AILogic.createBackendEnvironment."""
        return self.ai.createBackendEnvironment(name, force, progressCallback, cancelEvent)

    def removeBackendEnvironment(self, name):
        """See AILogic.removeBackendEnvironment."""
        return self.ai.removeBackendEnvironment(name)

    @staticmethod
    def validateNnUNetModel(modelFolder, folds=None, checkpoint="checkpoint_final.pth"):
        """See AILogic.validateNnUNetModel."""
        return AILogic.validateNnUNetModel(modelFolder, folds, checkpoint)

    @staticmethod
    def importNnUNetModel(zipPath, destinationFolder):
        """See AILogic.importNnUNetModel."""
        return AILogic.importNnUNetModel(zipPath, destinationFolder)

    def startNnUNet(self, volumeNodes, modelFolders, segmentationNode=None, folds=None,
                    checkpoint="checkpoint_final.pth", device="auto", tta=True, stepSize=0.5, environment="auto"):
        """See AILogic.startNnUNet."""
        return self.ai.startNnUNet(volumeNodes, modelFolders, segmentationNode, folds, checkpoint, device, tta,
                                   stepSize, environment)

    def runNnUNet(self, *args, progressCallback=None, cancelEvent=None, **kwargs):
        """startNnUNet(...) and wait: returns the segmentation node (see runBackend) (AILogic.runNnUNet)."""
        return self.ai.runNnUNet(*args, progressCallback=progressCallback, cancelEvent=cancelEvent, **kwargs)

    def estimateNnUNetMemory(self, volumeNodes, modelFolders, **options):
        """MemoryEstimate of startNnUNet with the same arguments (AILogic.estimateNnUNetMemory)."""
        return self.ai.estimateNnUNetMemory(volumeNodes, modelFolders, **options)

    @property
    def totalSegmentatorHome(self):
        """See AILogic.totalSegmentatorHome."""
        return self.ai.totalSegmentatorHome

    @totalSegmentatorHome.setter
    def totalSegmentatorHome(self, value):
        self.ai.totalSegmentatorHome = value

    def totalSegmentatorTasks(self):
        """See AILogic.totalSegmentatorTasks."""
        return self.ai.totalSegmentatorTasks()

    def importTotalSegmentatorWeights(self, source):
        """See AILogic.importTotalSegmentatorWeights."""
        return self.ai.importTotalSegmentatorWeights(source)

    def startTotalSegmentator(self, volumeNode, task="total", segmentationNode=None, fast=False, fastest=False,
                              roiSubset=None, device="auto", licenseNumber=None, allowDownload=True,
                              usageStatistics=False, environment="auto"):
        """See AILogic.startTotalSegmentator."""
        return self.ai.startTotalSegmentator(volumeNode, task, segmentationNode, fast, fastest, roiSubset, device,
                                             licenseNumber, allowDownload, usageStatistics, environment)

    def runTotalSegmentator(self, *args, progressCallback=None, cancelEvent=None, **kwargs):
        """See AILogic.runTotalSegmentator."""
        return self.ai.runTotalSegmentator(*args, progressCallback=progressCallback, cancelEvent=cancelEvent, **kwargs)

    def estimateTotalSegmentatorMemory(self, volumeNode, task="total", **options):
        """MemoryEstimate of startTotalSegmentator with the same arguments (AILogic.estimateTotalSegmentatorMemory)."""
        return self.ai.estimateTotalSegmentatorMemory(volumeNode, task, **options)

    @property
    def clusterConsentCallback(self):
        """The attribute AILogic.clusterConsentCallback (read and assigned through the facade)."""
        return self.ai.clusterConsentCallback

    @clusterConsentCallback.setter
    def clusterConsentCallback(self, value):
        self.ai.clusterConsentCallback = value

    def setClusterConsentStore(self, store):
        """See AILogic.setClusterConsentStore."""
        return self.ai.setClusterConsentStore(store)

    def allowCluster(self, address):
        """See AILogic.allowCluster."""
        return self.ai.allowCluster(address)

    def revokeCluster(self, address):
        """See AILogic.revokeCluster."""
        return self.ai.revokeCluster(address)

    @staticmethod
    def clusterSecurity(tlsFolder):
        """See AILogic.clusterSecurity."""
        return AILogic.clusterSecurity(tlsFolder)

    # nnInteractive (Interactive/InteractiveLogic.py) ------------------------------------------------------------

    @property
    def interactiveConsentCallback(self):
        """The attribute InteractiveLogic.interactiveConsentCallback (read and assigned through the facade)."""
        return self.interactive.interactiveConsentCallback

    @interactiveConsentCallback.setter
    def interactiveConsentCallback(self, value):
        self.interactive.interactiveConsentCallback = value

    def setInteractiveServer(self, url, apiKey=None, protocol="auto", connectTimeout=5.0, readTimeout=120.0,
                             uploadTimeout=600.0, verifyTls=True):
        """See InteractiveLogic.setInteractiveServer."""
        return self.interactive.setInteractiveServer(url, apiKey, protocol, connectTimeout, readTimeout, uploadTimeout,
                                                     verifyTls)

    def useInteractiveServer(self, url, apiKey=None):
        """See InteractiveLogic.useInteractiveServer."""
        return self.interactive.useInteractiveServer(url, apiKey)

    @property
    def interactiveSession(self):
        """See InteractiveLogic.interactiveSession."""
        return self.interactive.interactiveSession

    def testInteractiveConnection(self):
        """See InteractiveLogic.testInteractiveConnection."""
        return self.interactive.testInteractiveConnection()

    def closeInteractiveSession(self):
        """See InteractiveLogic.closeInteractiveSession."""
        return self.interactive.closeInteractiveSession()

    def interactiveConsentStore(self):
        """See InteractiveLogic.interactiveConsentStore."""
        return self.interactive.interactiveConsentStore()

    def setInteractiveConsentStore(self, store):
        """See InteractiveLogic.setInteractiveConsentStore."""
        return self.interactive.setInteractiveConsentStore(store)

    def allowInteractiveServer(self, url=None):
        """See InteractiveLogic.allowInteractiveServer."""
        return self.interactive.allowInteractiveServer(url)

    def revokeInteractiveServer(self, url=None):
        """See InteractiveLogic.revokeInteractiveServer."""
        return self.interactive.revokeInteractiveServer(url)

    def startInteractiveSegmentation(self, volumeNode, segmentationNode, segmentId):
        """See InteractiveLogic.startInteractiveSegmentation."""
        return self.interactive.startInteractiveSegmentation(volumeNode, segmentationNode, segmentId)

    def startInteractiveFromSegment(self, volumeNode, segmentationNode, segmentId):
        """See InteractiveLogic.startInteractiveFromSegment."""
        return self.interactive.startInteractiveFromSegment(volumeNode, segmentationNode, segmentId)

    def interactivePoint(self, point, positive=True, controlPointIndex=-1):
        """See InteractiveLogic.interactivePoint."""
        return self.interactive.interactivePoint(point, positive, controlPointIndex)

    def interactiveBox(self, box, positive=True):
        """Box prompt: a markups ROI node, or two opposite RAS corners (InteractiveLogic.interactiveBox)."""
        return self.interactive.interactiveBox(box, positive)

    def interactiveLasso(self, polygon, positive=True):
        """See InteractiveLogic.interactiveLasso."""
        return self.interactive.interactiveLasso(polygon, positive)

    def interactiveScribble(self, scribble, scribbleSegmentId=None, positive=True):
        """See InteractiveLogic.interactiveScribble."""
        return self.interactive.interactiveScribble(scribble, scribbleSegmentId, positive)

    def startInteractivePrompt(self, kind, prompt, positive=True, **details):
        """See InteractiveLogic.startInteractivePrompt."""
        return self.interactive.startInteractivePrompt(kind, prompt, positive, **details)

    def interactiveUndo(self):
        """See InteractiveLogic.interactiveUndo."""
        return self.interactive.interactiveUndo()

    def interactiveReset(self, clearSegment=True):
        """See InteractiveLogic.interactiveReset."""
        return self.interactive.interactiveReset(clearSegment)

    # Managed nnInteractive server (Interactive/LocalServerLogic.py) ---------------------------------------------

    def interactiveServerEnvironmentDetails(self):
        """See LocalServerLogic.interactiveServerEnvironmentDetails."""
        return self.localServer.interactiveServerEnvironmentDetails()

    def startCreateInteractiveServerEnvironment(self, force=False):
        """See LocalServerLogic.startCreateInteractiveServerEnvironment."""
        return self.localServer.startCreateInteractiveServerEnvironment(force)

    def createInteractiveServerEnvironment(self, force=False, progressCallback=None, cancelEvent=None):
        """See LocalServerLogic.createInteractiveServerEnvironment."""
        return self.localServer.createInteractiveServerEnvironment(force, progressCallback, cancelEvent)

    @staticmethod
    def interactiveServerModels():
        """{name: folder} of the nnInteractive models on this computer (LocalServerLogic.interactiveServerModels)."""
        return LocalServerLogic.interactiveServerModels()

    @staticmethod
    def importInteractiveServerModel(folder, name=None):
        """See LocalServerLogic.importInteractiveServerModel."""
        return LocalServerLogic.importInteractiveServerModel(folder, name)

    def startDownloadInteractiveServerModel(self, agree=False, modelId="nnInteractive_v1.0"):
        """See LocalServerLogic.startDownloadInteractiveServerModel."""
        return self.localServer.startDownloadInteractiveServerModel(agree, modelId)

    def downloadInteractiveServerModel(self, agree=False, modelId="nnInteractive_v1.0", progressCallback=None,
                                       cancelEvent=None):
        """See LocalServerLogic.downloadInteractiveServerModel."""
        return self.localServer.downloadInteractiveServerModel(agree, modelId, progressCallback, cancelEvent)

    def startInteractiveServerJob(self, device="auto", modelDir=None, port=None, threads=None):
        """See LocalServerLogic.startInteractiveServerJob."""
        return self.localServer.startInteractiveServerJob(device, modelDir, port, threads)

    def startInteractiveServer(self, device="auto", modelDir=None, port=None, threads=None, progressCallback=None,
                               cancelEvent=None):
        """See LocalServerLogic.startInteractiveServer."""
        return self.localServer.startInteractiveServer(device, modelDir, port, threads, progressCallback, cancelEvent)

    def stopInteractiveServer(self):
        """See LocalServerLogic.stopInteractiveServer."""
        return self.localServer.stopInteractiveServer()

    def interactiveServerStatus(self):
        """See LocalServerLogic.interactiveServerStatus."""
        return self.localServer.interactiveServerStatus()

    @property
    def managedInteractiveServer(self):
        """The ManagedServer started here (or None) (LocalServerLogic.managedInteractiveServer)."""
        return self.localServer.managedInteractiveServer

    # DICOM SEG / RTSTRUCT (Dicom/DicomLogic.py) -----------------------------------------------------------------

    def exportDicomSeg(self, segmentationNode, sourceSeries, path, segmentIds=None,
                       seriesDescription="AISegmentation"):
        """See DicomLogic.exportDicomSeg."""
        return self.dicom.exportDicomSeg(segmentationNode, sourceSeries, path, segmentIds, seriesDescription)

    def exportRtStruct(self, segmentationNode, sourceSeries, path, segmentIds=None,
                       seriesDescription="AISegmentation"):
        """See DicomLogic.exportRtStruct."""
        return self.dicom.exportRtStruct(segmentationNode, sourceSeries, path, segmentIds, seriesDescription)

    def loadDicomSegmentation(self, path, sourceSeries, name=None):
        """See DicomLogic.loadDicomSegmentation."""
        return self.dicom.loadDicomSegmentation(path, sourceSeries, name)

    # DICOMweb (Dicom/PacsLogic.py) ------------------------------------------------------------------------------

    @property
    def dicomWebConsentCallback(self):
        """The attribute PacsLogic.dicomWebConsentCallback (read and assigned through the facade)."""
        return self.pacs.dicomWebConsentCallback

    @dicomWebConsentCallback.setter
    def dicomWebConsentCallback(self, value):
        self.pacs.dicomWebConsentCallback = value

    def setDicomWebConsentStore(self, store):
        """See PacsLogic.setDicomWebConsentStore."""
        return self.pacs.setDicomWebConsentStore(store)

    def allowDicomWeb(self, url):
        """See PacsLogic.allowDicomWeb."""
        return self.pacs.allowDicomWeb(url)

    def revokeDicomWeb(self, url):
        """See PacsLogic.revokeDicomWeb."""
        return self.pacs.revokeDicomWeb(url)

    def connectDicomWeb(self, url, credentialsFile=None, timeout=None, caBundle=None):
        """See PacsLogic.connectDicomWeb."""
        return self.pacs.connectDicomWeb(url, credentialsFile, timeout, caBundle)

    # Training (Training/TrainingLogic.py) -----------------------------------------------------------------------

    def trainModel(self, project, cases=None, manifest=None, configuration="3d_fullres", folds=None,
                   schedule="short-cpu", epochs=None, iterationsPerEpoch=None, planPreset=None, device="auto",
                   modelName=None, environment="auto", progressCallback=None, cancelEvent=None, scheduler=None,
                   security=None, workers=None, onEpoch=None, **datasetOptions):
        """See TrainingLogic.trainModel."""
        return self.training.trainModel(project, cases, manifest, configuration, folds, schedule, epochs,
                                        iterationsPerEpoch, planPreset, device, modelName, environment,
                                        progressCallback, cancelEvent, scheduler, security, workers, onEpoch,
                                        **datasetOptions)

    def buildTrainingDataset(self, project, cases=None, manifest=None, datasetId=501, datasetName=None,
                             channelNames=None, mapping=None, missingStructures="error", numberOfFolds=5,
                             testFraction=0.0, seed=0, overwrite=False):
        """See TrainingLogic.buildTrainingDataset."""
        return self.training.buildTrainingDataset(project, cases, manifest, datasetId, datasetName, channelNames,
                                                  mapping, missingStructures, numberOfFolds, testFraction, seed,
                                                  overwrite)

    def startPlanTraining(self, project, configurations=("3d_fullres",), planPreset=None, environment="auto"):
        """See TrainingLogic.startPlanTraining."""
        return self.training.startPlanTraining(project, configurations, planPreset, environment)

    def startFitModel(self, project, configuration="3d_fullres", folds=None, trainer="nnUNetTrainer",
                      schedule="short-cpu", epochs=None, iterationsPerEpoch=None, device="auto", environment="auto",
                      onEpoch=None, scheduler=None, security=None, workers=None):
        """See TrainingLogic.startFitModel."""
        return self.training.startFitModel(project, configuration, folds, trainer, schedule, epochs,
                                           iterationsPerEpoch, device, environment, onEpoch, scheduler, security,
                                           workers)

    def startEvaluateTraining(self, project, modelName=None, configuration="3d_fullres", bestConfiguration=True,
                              device="auto", environment="auto"):
        """See TrainingLogic.startEvaluateTraining."""
        return self.training.startEvaluateTraining(project, modelName, configuration, bestConfiguration, device,
                                                   environment)


def _spheresMask(shape, spacingKji, centersIjk, radiusMm):
    """uint8 KJI mask of balls of radiusMm (physical, per-axis spacing) around IJK centres."""
    mask = np.zeros(shape, np.uint8)
    spacing = np.asarray(spacingKji, float)
    radiusMm = min(radiusMm, float(np.linalg.norm(np.asarray(shape) * spacing)))  # beyond the diagonal: all of it
    reach = np.ceil(radiusMm / spacing).astype(int)
    for center in np.asarray(centersIjk)[:, ::-1]:
        low = np.maximum(center - reach, 0)
        high = np.minimum(center + reach + 1, shape)
        grid = np.ogrid[tuple(slice(lo, hi) for lo, hi in zip(low, high))]
        distance2 = sum(((axis - c) * s) ** 2 for axis, c, s in zip(grid, center, spacing))
        mask[tuple(slice(lo, hi) for lo, hi in zip(low, high))] |= (distance2 <= radiusMm ** 2).astype(np.uint8)
    return mask
