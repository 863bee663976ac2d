"""AI segmentation for AISegmentationLogic: TotalSegmentator and nnU-Net v2, run out of process (a mixin).

``AISegmentationAIMixin`` is mixed into ``AISegmentationLogic``, which provides ``scene``, ``segmentEditor`` and
``createSegmentation``. Each backend runs in a child process with a chosen Python: its own isolated environment
(created by :meth:`createBackendEnvironment`), or the current one. The input volume(s) go to a private temporary
folder as NIfTI; the child streams progress and its log; Cancel ends its whole process tree; any failure becomes a
clear ValueError / RuntimeError and leaves the segmentation untouched. The label map comes back validated (grid
identical to the input volume) and is written through Slicer's segment editor logic with ONE undo state, so
masking, overwrite mode and undo behave as in the Segment Editor; the segmentation node gets provenance attributes
``AISegmentation.backend``, ``.model``, ``.version``, ``.parameters``, ``.device``, ``.time``, ``.durationSeconds``
and ``.environment``.

Blocking calls (console, CLI)::

    segmentation = logic.runNnUNet(volume, "/models/Dataset001/nnUNetTrainer__nnUNetPlans__3d_fullres")
    segmentation = logic.runTotalSegmentator(ct, task="total", fast=True)

Non-blocking (GUI, polled from a QTimer; no Qt here)::

    job = logic.startTotalSegmentator(ct, fast=True)
    job.progress, job.message, job.takeLogLines(), job.done, job.cancel()
    segmentation = job.wait()   # once job.done: writes the result in the calling thread, or raises the error
"""

import datetime
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import weakref

import numpy as np
import slicer
import vtk

from . import Segments, VolumeIO
from .Backends import ResultImport, getBackend
from .Backends.TotalSegmentatorBackend import homeDir as totalSegmentatorHomeDir
from .Backends.TotalSegmentatorBackend import importWeights as importTotalSegmentatorWeights
from .Backends.Environments import READY, WORKER_SCRIPT, EnvironmentManager, childEnvironment, currentPython
from .Backends.JobRunner import BackgroundJob, ProcessStep
from .Backends.MemoryEstimate import estimateMemory
from .Backends.NnUNetModels import DEFAULT_CHECKPOINT, importModelZip, validateModelFolder
from .Geometry import orientedImageFromArray, sameGeometry
from .SegmentEditing import requireVolume

ATTRIBUTE_PREFIX = "AISegmentation."
LABEL_VALUE_TAG = "AISegmentation.labelValue"
SOURCE_TAG = "AISegmentation.source"
ENVIRONMENT_CHOICES = ("auto", "isolated", "current")


class AISegmentationAIMixin:
    """AI backends for the Logic; see the module docstring."""

    # Environments ----------------------------------------------------------------------------------------------

    @property
    def aiEnvironments(self):
        """The EnvironmentManager (root: $AISEGMENTATION_ENVIRONMENTS_DIR or the user data folder)."""
        if getattr(self, "_aiEnvironmentManager", None) is None:
            self._aiEnvironmentManager = EnvironmentManager()
        return self._aiEnvironmentManager

    @staticmethod
    def aiBackendNames():
        from .Backends import BACKENDS

        return list(BACKENDS)

    def backendEnvironmentStatus(self, name):
        """"missing", "installing", "ready" or "broken" for a backend's isolated environment."""
        return self.aiEnvironments.status(getBackend(name).environmentName)

    def backendEnvironmentDetails(self, name):
        """Status plus message, folder, Python, package versions and install seconds of a backend's environment."""
        return self.aiEnvironments.details(getBackend(name).environmentName)

    def startCreateBackendEnvironment(self, name, force=False):
        """Start creating (or repairing; force: from scratch) a backend's isolated environment; returns the job."""
        backend = getBackend(name)
        return self.aiEnvironments.startJob(backend.environmentName, backend.name, force)

    def createBackendEnvironment(self, name, force=False, progressCallback=None, cancelEvent=None):
        """Create or repair a backend's isolated environment (pip install of its pinned requirements); blocking.

        Installs only when called: never at import time. Returns backendEnvironmentDetails(name).
        """
        self.startCreateBackendEnvironment(name, force).wait(progressCallback=progressCallback,
                                                             cancelEvent=cancelEvent)
        return self.backendEnvironmentDetails(name)

    def removeBackendEnvironment(self, name):
        self.aiEnvironments.remove(getBackend(name).environmentName)

    def _backendPython(self, backend, environment):
        """(python command, isolated?, label) for "auto", "isolated", "current" or a Python executable path."""
        if environment not in ENVIRONMENT_CHOICES:
            if os.path.isfile(os.fspath(environment)):
                return os.fspath(environment), True, f"python:{environment}"
            raise ValueError(f"Unknown environment '{environment}'; choose {', '.join(ENVIRONMENT_CHOICES)} or give "
                             f"the path of a Python executable")
        details = self.aiEnvironments.details(backend.environmentName)
        if environment != "current" and details["state"] == READY:
            return details["python"], True, f"isolated:{backend.environmentName}"
        create = (f"create it with createBackendEnvironment('{backend.name}') (Install in the AI section, "
                  f"--create-environment on the command line)")
        if environment == "isolated":
            raise ValueError(f"The isolated '{backend.environmentName}' environment is {details['state']} "
                             f"({details['message']}): {create}")
        missing = [package for package in backend.packages if importlib.util.find_spec(package) is None]
        if not missing:
            return currentPython(), False, "current"
        raise ValueError(f"{backend.title} is not installed in the current Python ({', '.join(missing)} missing) "
                         f"and its isolated '{backend.environmentName}' environment is {details['state']}: {create}")

    # nnU-Net ---------------------------------------------------------------------------------------------------

    @staticmethod
    def validateNnUNetModel(modelFolder, folds=None, checkpoint=DEFAULT_CHECKPOINT):
        """The trained model in modelFolder (labels, channels, folds...); ValueError saying what is wrong."""
        return validateModelFolder(modelFolder, folds, checkpoint)

    @staticmethod
    def importNnUNetModel(zipPath, destinationFolder):
        """Extract a zipped trained model into destinationFolder/<zip name>/ (path-traversal safe).

        Returns the model folders found in the zip (validated)."""
        return importModelZip(zipPath, destinationFolder)

    def startNnUNet(self, volumeNodes, modelFolders, segmentationNode=None, folds=None,
                    checkpoint=DEFAULT_CHECKPOINT, device="auto", tta=True, stepSize=0.5, environment="auto"):
        """Start nnU-Net v2 inference; returns the job (see the module docstring); validation errors raise now.

        volumeNodes: one volume, a list in the model's channel order, or {channel name: volume}. modelFolders: one
        trained model folder (``<trainer>__<plans>__<configuration>``) or several, ensembled by averaging their
        probabilities. folds: None (all trained folds), a fold number, "all" or a list. device: auto, cpu, cuda,
        mps. tta: test-time mirroring. stepSize: sliding-window step (fraction of the patch). environment: "auto"
        (isolated when ready, else current), "isolated", "current" or a Python executable. segmentationNode: the
        segmentation to write into (segments named as in dataset.json are replaced; default: a new one).
        """
        backend = getBackend("nnunet")
        prepared = backend.prepare(modelFolders, folds, checkpoint, device, tta, stepSize)
        volumes = self._orderedInputs(volumeNodes, prepared.channels)
        return self._startBackendJob(backend, prepared, volumes, segmentationNode, environment)

    def runNnUNet(self, *args, progressCallback=None, cancelEvent=None, **kwargs):
        """startNnUNet(...) and wait: returns the segmentation node. progressCallback(percent, message);
        setting the threading.Event cancelEvent cancels (JobCancelledError)."""
        return self.startNnUNet(*args, **kwargs).wait(progressCallback=progressCallback or _logProgress,
                                                      cancelEvent=cancelEvent)

    # TotalSegmentator ------------------------------------------------------------------------------------------

    @property
    def totalSegmentatorHome(self):
        """TotalSegmentator's home (config.json, weights) that AISegmentation owns; assignable."""
        return getattr(self, "_totalSegmentatorHome", None) or totalSegmentatorHomeDir()

    @totalSegmentatorHome.setter
    def totalSegmentatorHome(self, folder):
        self._totalSegmentatorHome = os.fspath(folder) if folder else None

    def totalSegmentatorTasks(self):
        """TotalSegmentator's task registry from its environment: [{"name", "modality", "licenseRequired",
        "classes", "modes"}]; empty until the environment is created."""
        return self.aiEnvironments.probe(getBackend("totalsegmentator").environmentName).get("tasks", [])

    def importTotalSegmentatorWeights(self, source):
        """Install weights from a downloaded zip or folder (offline use); returns the imported dataset names."""
        return importTotalSegmentatorWeights(source, self.totalSegmentatorHome)

    def startTotalSegmentator(self, volumeNode, task="total", segmentationNode=None, fast=False, fastest=False,
                              roiSubset=None, device="auto", licenseNumber=None, allowDownload=True,
                              usageStatistics=False, environment="auto"):
        """Start TotalSegmentator; returns the job (see the module docstring); validation errors raise now.

        task: a task of its registry (totalSegmentatorTasks()); fast (3 mm) / fastest (6 mm); roiSubset: class
        names to keep (the run is cropped to them); device: auto, cpu, cuda, mps; licenseNumber for licensed
        tasks; allowDownload: let TotalSegmentator download missing weights (never when offline, see
        $AISEGMENTATION_OFFLINE); usageStatistics: TotalSegmentator's anonymous statistics (off unless True).
        """
        backend = getBackend("totalsegmentator")
        prepared = backend.prepare(task, fast, fastest, roiSubset, device, licenseNumber, allowDownload,
                                   usageStatistics, home=self.totalSegmentatorHome, tasks=self.totalSegmentatorTasks())
        volumes = self._orderedInputs(volumeNode, prepared.channels)
        return self._startBackendJob(backend, prepared, volumes, segmentationNode, environment)

    def runTotalSegmentator(self, *args, progressCallback=None, cancelEvent=None, **kwargs):
        """startTotalSegmentator(...) and wait: returns the segmentation node (see runNnUNet)."""
        return self.startTotalSegmentator(*args, **kwargs).wait(progressCallback=progressCallback or _logProgress,
                                                                cancelEvent=cancelEvent)

    # Pre-flight ------------------------------------------------------------------------------------------------

    def estimateNnUNetMemory(self, volumeNodes, modelFolders, **options):
        """MemoryEstimate (peak bytes, messages with suggestions) of startNnUNet with the same arguments."""
        backend = getBackend("nnunet")
        prepared = backend.prepare(modelFolders, **options)
        return self._estimateMemory(backend, prepared, self._orderedInputs(volumeNodes, prepared.channels)[0])

    def estimateTotalSegmentatorMemory(self, volumeNode, task="total", **options):
        """MemoryEstimate of startTotalSegmentator with the same arguments."""
        backend = getBackend("totalsegmentator")
        prepared = backend.prepare(task, home=self.totalSegmentatorHome, tasks=self.totalSegmentatorTasks(),
                                   **options)
        return self._estimateMemory(backend, prepared, self._orderedInputs(volumeNode, prepared.channels)[0])

    @staticmethod
    def _estimateMemory(backend, prepared, volumeNode):
        model = dict(prepared.memoryModel)
        spacing = list(volumeNode.GetSpacing())[::-1]
        for key in ("networkSpacing", "exportSpacing"):
            if key in model and any(value is None for value in model[key]):
                model[key] = spacing
        device = prepared.childOptions.get("device", "cpu")
        return estimateMemory(volumeNode.GetImageData().GetDimensions()[::-1], spacing,
                              device=device if device in ("cuda", "mps") else "cpu",
                              suggestions=backend.suggestions, **model)

    # Running a backend -----------------------------------------------------------------------------------------

    @staticmethod
    def _orderedInputs(volumeNodes, channels):
        """Volumes in the model's channel order from one volume, a list or {channel name or index: volume}."""
        if isinstance(volumeNodes, dict):
            byName = {str(key): node for key, node in volumeNodes.items()}
            missing = [name for index, name in enumerate(channels) if name not in byName and str(index) not in byName]
            if missing:
                raise ValueError(f"No volume given for channel(s) {', '.join(missing)}; the model takes "
                                 f"{', '.join(channels)}")
            volumeNodes = [byName.get(name, byName.get(str(index))) for index, name in enumerate(channels)]
        elif not isinstance(volumeNodes, (list, tuple)):
            volumeNodes = [volumeNodes]
        if len(volumeNodes) != len(channels):
            raise ValueError(f"The model takes {len(channels)} input volume(s) ({', '.join(channels)}), "
                             f"got {len(volumeNodes)}")
        for node in volumeNodes:
            requireVolume(node)
        first = _imageGeometry(volumeNodes[0])
        for node in volumeNodes[1:]:
            if not sameGeometry(first, _imageGeometry(node)):
                raise ValueError(f"Input volumes '{volumeNodes[0].GetName()}' and '{node.GetName()}' do not share one "
                                 f"grid; resample them onto one volume first")
        return list(volumeNodes)

    def _startBackendJob(self, backend, prepared, volumes, segmentationNode, environment):
        python, isolated, environmentLabel = self._backendPython(backend, environment)
        reference = volumes[0]
        if segmentationNode is not None:
            self.segmentEditor.bind(segmentationNode, reference)  # a geometry mismatch is refused before running
        estimate = self._estimateMemory(backend, prepared, reference)
        for message in estimate.messages:
            logging.warning("%s: %s", backend.title, message)
        workDir = tempfile.mkdtemp(prefix="AISegmentation-")
        try:
            request = {"backend": backend.name, "options": prepared.childOptions, "labelNames": prepared.labelNames,
                       "inputs": [VolumeIO.saveVolume(volume, os.path.join(workDir, f"input_{index:04d}.nii"))
                                  for index, volume in enumerate(volumes)],
                       "outputLabelmap": os.path.join(workDir, "labels.nii"),
                       "outputLabels": os.path.join(workDir, "labels.json")}
            requestPath = os.path.join(workDir, "request.json")
            with open(requestPath, "w", encoding="utf-8") as file:
                json.dump(request, file)
        except BaseException:
            shutil.rmtree(workDir, ignore_errors=True)
            raise
        variables = {"nnUNet_raw": workDir, "nnUNet_preprocessed": workDir, "nnUNet_results": workDir,
                     **prepared.environment}
        step = ProcessStep([python, WORKER_SCRIPT, requestPath], f"Running {backend.title}", env=childEnvironment(
            isolated, variables, python=python), cwd=workDir, protocol=True)
        context = {"backend": backend, "prepared": prepared, "request": request, "reference": reference,
                   "segmentationNode": segmentationNode, "environment": environmentLabel}
        job = BackgroundJob(backend.title, [step], finalize=lambda finished: self._importResult(finished, context),
                            cleanup=lambda: shutil.rmtree(workDir, ignore_errors=True))
        job.memoryEstimate = estimate
        job.messages.extend(estimate.messages)
        weakref.finalize(job, shutil.rmtree, workDir, True)  # also when nobody ever waits for the job
        logging.info("%s: %s in %s (%s)", backend.title, prepared.description, environmentLabel, estimate.summary())
        return job.start()

    # Importing the result --------------------------------------------------------------------------------------

    def _importResult(self, job, context):
        """Validate the child's label map fully, then write it (one undo state); the scene is unchanged on error."""
        reference, segmentationNode = context["reference"], context["segmentationNode"]
        for node, what in ((reference, "input volume"), (segmentationNode, "segmentation")):
            if node is not None and not self.scene.IsNodePresent(node):
                raise RuntimeError(f"The {what} was removed from the scene while the AI job ran")
        names = ResultImport.readLabelNames(context["request"]["outputLabels"])
        array = ResultImport.readLabelmap(context["request"]["outputLabelmap"], reference)
        present = ResultImport.presentLabels(array, names)
        backend, prepared = context["backend"], context["prepared"]
        created = segmentationNode is None
        if created:
            segmentationNode = self.createSegmentation(reference, backend.segmentationName(reference.GetName()))
        try:
            self._writeLabels(segmentationNode, reference, array, present, names, f"{backend.title}: "
                              f"{prepared.description}")
            self._setProvenance(segmentationNode, job, context)
        except BaseException:
            if created:
                self.scene.RemoveNode(segmentationNode)
            raise
        if not present:
            job.messages.append(f"{backend.title} found no structure in '{reference.GetName()}'")
        logging.info("%s: %d segment(s) written into '%s' in %.1f s", backend.title, len(present),
                     segmentationNode.GetName(), job.seconds)
        return segmentationNode

    def _writeLabels(self, segmentationNode, volumeNode, array, present, names, source):
        """One segment per label value (existing segments of the same name are replaced), one undo state.

        The undo state is saved before new segments are added, so one Undo removes them again; the labelmaps are
        written with the segment editor logic's ModifySegmentByLabelmap (mask and overwrite modes apply).
        """
        editor = self.segmentEditor
        aligned = editor.bind(segmentationNode, volumeNode)
        segmentation = segmentationNode.GetSegmentation()
        labelmaps = {}
        editor.editorLogic.SaveStateForUndo()
        try:
            for value in present:
                entry = names[value]
                segmentId = segmentation.GetSegmentIdBySegmentName(entry["name"])
                mask = array == value
                if segmentId:
                    labelmaps[segmentId] = orientedImageFromArray(mask.astype(np.uint8), aligned)
                else:
                    color = [channel / 255.0 for channel in entry["color"]] if entry.get("color") else None
                    segmentId = Segments.addSegment(segmentationNode, entry["name"], color)
                    labelmaps[segmentId] = _croppedLabelmap(mask, aligned)
                _tagSegment(segmentation.GetSegment(segmentId), value, entry, source)
            editor.modifySegments(segmentationNode, volumeNode, labelmaps, "set", saveUndoState=False)
        except BaseException:
            editor.editorLogic.Undo()  # back to the state saved above: added segments go, edits are reverted
            raise

    @staticmethod
    def _setProvenance(segmentationNode, job, context):
        info = (job.childResult or {}).get("info", {})
        prepared = context["prepared"]
        attributes = {"backend": context["backend"].title, "model": prepared.description,
                      "version": json.dumps(info.get("versions", {}), sort_keys=True),
                      "parameters": json.dumps(prepared.parameters, sort_keys=True),
                      "device": info.get("device", ""), "environment": context["environment"],
                      "time": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                      "durationSeconds": f"{job.seconds:.1f}"}
        for key, value in attributes.items():
            segmentationNode.SetAttribute(ATTRIBUTE_PREFIX + key, str(value))


def _imageGeometry(volumeNode):
    image = slicer.vtkOrientedImageData()
    image.SetExtent(volumeNode.GetImageData().GetExtent())
    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    image.SetGeometryFromImageToWorldMatrix(matrix)
    return image


def _croppedLabelmap(mask, referenceImage):
    """Binary oriented labelmap of mask cropped to its bounding box (a new segment needs no more)."""
    box = ResultImport.boundingBox(mask)
    extent = referenceImage.GetExtent()
    cropped = slicer.vtkOrientedImageData()
    cropped.SetExtent(extent[0] + box[2].start, extent[0] + box[2].stop - 1, extent[2] + box[1].start,
                      extent[2] + box[1].stop - 1, extent[4] + box[0].start, extent[4] + box[0].stop - 1)
    cropped.SetSpacing(referenceImage.GetSpacing())
    cropped.SetOrigin(referenceImage.GetOrigin())
    cropped.CopyDirections(referenceImage)
    return orientedImageFromArray(mask[box].astype(np.uint8), cropped)


def _tagSegment(segment, value, entry, source):
    segment.SetTag(LABEL_VALUE_TAG, str(value))
    segment.SetTag(SOURCE_TAG, source)
    terminology = ResultImport.terminologyEntry(entry)
    if terminology:
        segment.SetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), terminology)


def _logProgress(percent, message):
    logging.debug("%5.1f %% %s", percent, message)
