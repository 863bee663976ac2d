"""AI segmentation, run out of process: the AI area logic that the facade (Logic.py) composes.

``AILogic`` serves every registered backend (Backends/Registry.py) with one API: ``startBackend(name, volumes,
**options)``, ``runBackend``, ``estimateBackendMemory``, and the declarations the panel and the CLI are built from
(``backendOptions(name)``, ``backendActions(name)``); ``runNnUNet``, ``startTotalSegmentator``... are shortcuts kept
for console users. Each backend runs in a child process with a chosen Python: its own isolated environment (created by
:meth:`createBackendEnvironment`), or the current one. The input volume(s) go to a private temporary folder as NIfTI;
the child streams progress and its log; Cancel ends its whole process tree; any failure becomes a clear ValueError /
RuntimeError and leaves the segmentation untouched. The label map comes back validated (grid identical to the input
volume) and is written through Slicer's segment editor logic with ONE undo state, so masking, overwrite mode and undo
behave as in the Segment Editor; the segmentation node gets provenance attributes ``AISegmentation.backend``,
``.model``, ``.version``, ``.parameters``, ``.device``, ``.time``, ``.durationSeconds`` and ``.environment``.

Blocking calls (console, CLI)::

    model = "/models/Dataset001/nnUNetTrainer__nnUNetPlans__3d_fullres"
    segmentation = logic.runBackend("nnunet", volume, modelFolders=[model])   # or logic.runNnUNet(volume, model)
    segmentation = logic.runTotalSegmentator(ct, task="total", fast=True)

Non-blocking (GUI, polled from a QTimer; no Qt here)::

    job = logic.startBackend("totalsegmentator", ct, fast=True)
    job.progress, job.message, job.takeLogLines(), job.done, job.cancel()
    segmentation = job.wait()   # once job.done: writes the result in the calling thread, or raises the error

On a Dask cluster (the same job interface; see Cluster/RemoteJob.py and Jobs/RemoteRun.py)::

    security = makeSecurity("ca.pem", "client-cert.pem", "client-key.pem")   # Cluster/ClusterConnection.py
    segmentation = logic.runBackend("nnunet", volume, cluster="tls://gpu-server:8786", clusterSecurity=security,
                                    modelFolders=[model], device="cuda")

The image leaves this computer only after consent per scheduler address (clusterConsentCallback, or
allowCluster(address)) and only over TLS unless the address is this computer's own; the worker runs the backend in
its own isolated environment. Model folders and weights are read where the run happens: give paths that the workers
see (a shared folder); the provenance's ``environment`` names the cluster, e.g. "dask:tls://gpu-server:8786/isolated:
nnunet".
"""

import importlib.util
import logging
import os
import shutil
import tempfile
import weakref

from .. import VolumeIO
from ..AtomicWrite import atomicOpen
from ..Consent import ConsentStore, hasConsent
from .Jobs.AIResultWriter import ResultWriter
from . import Registry
from .Environments.Environments import EnvironmentManager
from .Jobs.JobRequest import (ENVIRONMENT_CHOICES, backendContext, backendPython, childStep, inputFileName,  # noqa: F401
                         writeRequest)
from ..JobRunner import BackgroundJob
from .NnUNet.NnUNetModels import DEFAULT_CHECKPOINT, importModelZip, validateModelFolder
from .Options import validateOptions
from ..Geometry import sameGeometry, volumeImage
from ..SegmentEditing import requireVolume

TLS_FILES = ("ca.pem", "cert.pem", "key.pem")  # a TLS folder: the CA, this client's certificate and its key
NNUNET, TOTALSEGMENTATOR = "nnunet", "totalsegmentator"  # the backends of the console shortcuts


class AILogic:
    """AI backends for the facade; see the module docstring."""

    def __init__(self, scene, segmentEditor, createSegmentation):
        """scene(), segmentEditor(): the facade's current MRML scene and SegmentEditor (they change when the scene
        does); createSegmentation(volumeNode, name): a new segmentation node for a result."""
        self._scene = scene
        self._segmentEditor = segmentEditor
        self._createSegmentation = createSegmentation
        self._environments = None
        self._settings = {}
        self._clusterConsentStore = None
        #: callback(schedulerAddress) -> bool, asked before the first image goes to a Dask cluster on another machine
        self.clusterConsentCallback = None

    @property
    def scene(self):
        return self._scene()

    @property
    def segmentEditor(self):
        return self._segmentEditor()

    # Backends and their declarations ------------------------------------------------------------------------------

    @staticmethod
    def backendNames():
        """Names of the registered backends (the first is the panel's default)."""
        return Registry.backendNames()

    @staticmethod
    def aiBackendNames():
        return Registry.backendNames()

    @staticmethod
    def backend(name):
        """The backend's declarations (title, help, options, actions, devices, maxInputs...); ValueError if unknown."""
        return Registry.getBackend(name)

    @staticmethod
    def backendOptions(name):
        """The backend's option declarations (Options.BackendOption: name, type, default, choices, unit, help...)."""
        return tuple(Registry.getBackend(name).options)

    @staticmethod
    def backendActions(name):
        """What the backend does apart from a run (Options.BackendAction), e.g. importing weights."""
        return tuple(Registry.getBackend(name).actions)

    def backendSettings(self, name):
        """The backend's settings kept by this Logic (a dict; e.g. TotalSegmentator's "home")."""
        return self._settings.setdefault(Registry.getBackend(name).name, {})

    def _context(self, backend):
        return backendContext(backend, self.backendSettings(backend.name), self.aiEnvironments)

    def runBackendAction(self, name, action, value):
        """Run one of the backend's actions (backendActions(name)) with its argument; returns what it returns."""
        backend = Registry.getBackend(name)
        if action not in {declared.name for declared in backend.actions}:
            raise ValueError(f"{backend.title} has no action '{action}'; its actions: "
                             f"{', '.join(a.name for a in backend.actions) or 'none'}")
        return getattr(backend, action)(self._context(backend), value)

    # Environments ----------------------------------------------------------------------------------------------

    @property
    def aiEnvironments(self):
        """The EnvironmentManager (root: $AISEGMENTATION_ENVIRONMENTS_DIR or the user data folder); assignable."""
        if self._environments is None:
            self._environments = EnvironmentManager()
        return self._environments

    @aiEnvironments.setter
    def aiEnvironments(self, manager):
        self._environments = manager

    def backendEnvironmentStatus(self, name):
        """"missing", "installing", "ready" or "broken" for a backend's isolated environment."""
        return self.aiEnvironments.status(Registry.getBackend(name).environmentName)

    def backendEnvironmentDetails(self, name):
        """Status plus message, folder, Python, package versions and install seconds of a backend's environment."""
        return self.aiEnvironments.details(Registry.getBackend(name).environmentName)

    def startCreateBackendEnvironment(self, name, force=False):
        """Start creating (or repairing; force: from scratch) a backend's isolated environment; returns the job."""
        backend = Registry.getBackend(name)
        return self.aiEnvironments.startJob(backend.environmentName, backend.name, force)

    def createBackendEnvironment(self, name, force=False, progressCallback=None, cancelEvent=None):
        """Create or repair a backend's isolated environment (install of its pinned requirements); blocking.

        Installs only when called: never at import time. Returns backendEnvironmentDetails(name).
        """
        self.startCreateBackendEnvironment(name, force).wait(progressCallback=progressCallback,
                                                             cancelEvent=cancelEvent)
        return self.backendEnvironmentDetails(name)

    def removeBackendEnvironment(self, name):
        self.aiEnvironments.remove(Registry.getBackend(name).environmentName)

    # Any backend -----------------------------------------------------------------------------------------------

    def _prepare(self, name, options):
        backend = Registry.getBackend(name)
        validated = validateOptions(backend.options, options, backend.title)
        return backend, validated, backend.prepare(self._context(backend), **validated)

    def startBackend(self, name, volumes, segmentationNode=None, environment="auto", cluster=None,
                     clusterSecurity=None, **options):
        """Start backend `name` on volumes; returns the job (see the module docstring); validation errors raise now.

        volumes: one volume node, a list (in the model's channel order) or {channel name: volume}. segmentationNode:
        the segmentation to write into (segments of the same names are replaced; default: a new one). environment:
        "auto" (isolated when ready, else current), "isolated", "current" or a Python executable (on the worker for
        a cluster run). cluster: a Dask scheduler address ("tls://host:8786") to run on instead of this computer;
        clusterSecurity: its distributed.security.Security (Cluster.ClusterConnection.makeSecurity), required beyond
        loopback. options: those of backendOptions(name), checked against their declarations (type, choices, range)
        before anything runs.
        """
        backend, validated, prepared = self._prepare(name, options)
        volumes = self._orderedInputs(volumes, prepared.channels)
        remote = None
        if cluster is not None:
            remote = {"address": self.requireClusterConsent(cluster, clusterSecurity), "security": clusterSecurity,
                      "options": validated}
        return self._startBackendJob(backend, prepared, volumes, segmentationNode, environment, remote)

    def runBackend(self, name, volumes, segmentationNode=None, environment="auto", progressCallback=None,
                   cancelEvent=None, cluster=None, clusterSecurity=None, **options):
        """startBackend(...) and wait: returns the segmentation node. progressCallback(percent, message); setting
        the threading.Event cancelEvent cancels (JobCancelledError)."""
        job = self.startBackend(name, volumes, segmentationNode, environment, cluster, clusterSecurity, **options)
        return job.wait(progressCallback=progressCallback or _logProgress, cancelEvent=cancelEvent)

    def estimateBackendMemory(self, name, volumes, **options):
        """MemoryEstimate (peak bytes, messages with suggestions) of startBackend with the same arguments."""
        backend, _validated, prepared = self._prepare(name, options)
        return self._estimateMemory(backend, prepared, self._orderedInputs(volumes, prepared.channels)[0])

    @staticmethod
    def _estimateMemory(backend, prepared, volumeNode):
        return backend.estimateMemory(prepared, volumeNode.GetImageData().GetDimensions()[::-1],
                                      list(volumeNode.GetSpacing())[::-1])

    # Console shortcuts: nnU-Net ----------------------------------------------------------------------------------

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
        """startBackend("nnunet", ...): modelFolders: one trained model folder
        (``<trainer>__<plans>__<configuration>``) or several, ensembled by averaging their probabilities. folds: None
        (all trained folds), a fold number, "all" or a list. device: auto, cpu, cuda, mps. tta: test-time mirroring.
        stepSize: sliding-window step (fraction of the patch). volumeNodes, segmentationNode, environment: as for
        startBackend."""
        return self.startBackend(NNUNET, volumeNodes, segmentationNode, environment, modelFolders=modelFolders,
                                 folds=folds, checkpoint=checkpoint, device=device, tta=tta, stepSize=stepSize)

    def runNnUNet(self, *args, progressCallback=None, cancelEvent=None, **kwargs):
        """startNnUNet(...) and wait: returns the segmentation node (see runBackend)."""
        return self.startNnUNet(*args, **kwargs).wait(progressCallback=progressCallback or _logProgress,
                                                      cancelEvent=cancelEvent)

    def estimateNnUNetMemory(self, volumeNodes, modelFolders, **options):
        """MemoryEstimate of startNnUNet with the same arguments."""
        return self.estimateBackendMemory(NNUNET, volumeNodes, modelFolders=modelFolders, **options)

    # Console shortcuts: TotalSegmentator ---------------------------------------------------------------------------

    @property
    def totalSegmentatorHome(self):
        """TotalSegmentator's home (config.json, weights) that AISegmentation owns; assignable."""
        backend = Registry.getBackend(TOTALSEGMENTATOR)
        return backend.home(self._context(backend))

    @totalSegmentatorHome.setter
    def totalSegmentatorHome(self, folder):
        self.backendSettings(TOTALSEGMENTATOR)["home"] = os.fspath(folder) if folder else None

    def totalSegmentatorTasks(self):
        """TotalSegmentator's task registry from its environment: [{"name", "modality", "licenseRequired",
        "classes", "modes"}]; empty until the environment is created."""
        return self._context(Registry.getBackend(TOTALSEGMENTATOR)).probe().get("tasks", [])

    def importTotalSegmentatorWeights(self, source):
        """Install weights from a downloaded zip or folder (offline use); returns the imported dataset names."""
        return self.runBackendAction(TOTALSEGMENTATOR, "importWeights", source)

    def startTotalSegmentator(self, volumeNode, task="total", segmentationNode=None, fast=False, fastest=False,
                              roiSubset=None, device="auto", licenseNumber=None, allowDownload=True,
                              usageStatistics=False, environment="auto"):
        """startBackend("totalsegmentator", ...): task: a task of its registry (totalSegmentatorTasks()); fast (3 mm)
        / fastest (6 mm); roiSubset: class names to keep (the run is cropped to them); device: auto, cpu, cuda, mps;
        licenseNumber for licensed tasks; allowDownload: let TotalSegmentator download missing weights (never when
        offline, see $AISEGMENTATION_OFFLINE); usageStatistics: its anonymous statistics (off unless True)."""
        return self.startBackend(TOTALSEGMENTATOR, volumeNode, segmentationNode, environment, task=task, fast=fast,
                                 fastest=fastest, roiSubset=roiSubset, device=device, licenseNumber=licenseNumber,
                                 allowDownload=allowDownload, usageStatistics=usageStatistics)

    def runTotalSegmentator(self, *args, progressCallback=None, cancelEvent=None, **kwargs):
        """startTotalSegmentator(...) and wait: returns the segmentation node (see runBackend)."""
        return self.startTotalSegmentator(*args, **kwargs).wait(progressCallback=progressCallback or _logProgress,
                                                                cancelEvent=cancelEvent)

    def estimateTotalSegmentatorMemory(self, volumeNode, task="total", **options):
        """MemoryEstimate of startTotalSegmentator with the same arguments."""
        return self.estimateBackendMemory(TOTALSEGMENTATOR, volumeNode, task=task, **options)

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
        first = volumeImage(volumeNodes[0])
        for node in volumeNodes[1:]:
            if not sameGeometry(first, volumeImage(node)):
                raise ValueError(f"Input volumes '{volumeNodes[0].GetName()}' and '{node.GetName()}' do not share one "
                                 f"grid; resample them onto one volume first")
        return list(volumeNodes)

    def _startBackendJob(self, backend, prepared, volumes, segmentationNode, environment, remote=None):
        """The job of a prepared run: on this computer (a child process), or on the Dask cluster of `remote`
        ({"address", "security", "options"}); both save the inputs and the request alike and import the result with
        the same writer."""
        local = None if remote is not None else backendPython(backend, environment, self.aiEnvironments)
        reference = volumes[0]
        if segmentationNode is not None:
            self.segmentEditor.bind(segmentationNode, reference)  # a geometry mismatch is refused before running
        estimate = self._estimateMemory(backend, prepared, reference)
        for message in estimate.messages:
            logging.warning("%s: %s", backend.title, message)
        workDir = tempfile.mkdtemp(prefix="AISegmentation-")
        try:
            inputs = [VolumeIO.saveVolume(volume, os.path.join(workDir, inputFileName(index)))
                      for index, volume in enumerate(volumes)]
            request, requestPath = writeRequest(backend, prepared, workDir, inputs)
        except BaseException:
            shutil.rmtree(workDir, ignore_errors=True)
            raise
        context = {"backend": backend, "prepared": prepared, "request": request, "reference": reference,
                   "segmentationNode": segmentationNode, "environment": local[2] if local else None}
        writer = ResultWriter(self.scene, self.segmentEditor, self._createSegmentation)
        finish = {"finalize": lambda finished: writer.importResult(finished, context),
                  "cleanup": lambda: shutil.rmtree(workDir, ignore_errors=True)}
        if remote is None:
            job = BackgroundJob(backend.title, [childStep(backend, prepared, *local[:2], workDir, requestPath)],
                                **finish)
            where = local[2]
        else:
            job = self._remoteJob(backend, prepared, environment, remote, inputs, context, finish)
            where = f"the Dask cluster at {remote['address']}"
        job.memoryEstimate = estimate
        job.messages.extend(estimate.messages)
        weakref.finalize(job, shutil.rmtree, workDir, True)  # also when nobody ever waits for the job
        logging.info("%s: %s in %s (%s)", backend.title, prepared.description, where, estimate.summary())
        return job.start()

    @staticmethod
    def _remoteJob(backend, prepared, environment, remote, inputs, context, finish):
        from ..Cluster.RemoteJob import RemoteJob

        def receive(result):
            """The worker's files where the request names them, for the same import as a local result."""
            for key, name in (("labelmap", "outputLabelmap"), ("labels", "outputLabels")):
                with atomicOpen(context["request"][name], "wb") as file:
                    file.write(result[key])
            context["environment"] = f"dask:{remote['address']}/{result.get('environment', '')}"

        submission = {"backend": backend.name, "options": remote["options"], "environment": environment,
                      "device": prepared.childOptions.get("device"), "inputs": inputs,
                      "worker": f"{__package__}.Jobs.RemoteRun"}
        return RemoteJob(backend.title, remote["address"], remote["security"], submission, receive, **finish)

    # Dask clusters: consent and TLS ------------------------------------------------------------------------------

    @staticmethod
    def clusterSecurity(tlsFolder):
        """distributed.security.Security (TLS required) from a folder holding ca.pem (the CA that signed the
        scheduler's certificate), cert.pem and key.pem (this client's certificate and key); ValueError naming each
        missing file."""
        from ..Cluster.ClusterConnection import makeSecurity

        _requireDistributed()
        folder = os.fspath(tlsFolder)
        if not os.path.isdir(folder):
            raise ValueError(f"The TLS folder '{folder}' does not exist; it holds ca.pem, cert.pem and key.pem")
        return makeSecurity(*(os.path.join(folder, name) for name in TLS_FILES))

    def clusterConsentStore(self):
        """Where agreements to send images to a Dask cluster are remembered (shared with nnInteractive servers)."""
        if self._clusterConsentStore is None:
            self._clusterConsentStore = ConsentStore()
        return self._clusterConsentStore

    def setClusterConsentStore(self, store):
        """ConsentStore(path), or ConsentStore(None) to keep agreements in memory only."""
        self._clusterConsentStore = store

    def allowCluster(self, address):
        """Agree to send images to the Dask scheduler at address (remembered); returns the address as stored."""
        address = _clusterAddress(address)
        self.clusterConsentStore().allow(address)
        return address

    def revokeCluster(self, address):
        self.clusterConsentStore().revoke(_clusterAddress(address))

    def requireClusterConsent(self, address, security):
        """The address, once it is safe (TLS beyond loopback) and agreed to (the consent store or
        clusterConsentCallback); ValueError before anything is sent. Used for one case and for cohorts alike."""
        from ..Cluster.ClusterConnection import isLoopbackAddress, requireSecureAddress

        address = requireSecureAddress(_clusterAddress(address), security)
        callback = self.clusterConsentCallback
        if hasConsent(address, isLoopbackAddress(address), self.clusterConsentStore(),
                      (lambda destination: bool(callback(destination))) if callback is not None else None):
            return address
        raise ValueError(f"The image would be sent to the Dask cluster at {address}, on another machine, and you have "
                         f"not agreed to that yet. Nothing was sent. Agree when the panel asks, from Python with "
                         f"logic.allowCluster('{address}'), or on the command line by passing --scheduler.")


def _requireDistributed():
    if importlib.util.find_spec("distributed") is None:
        raise ValueError("Running on a Dask cluster needs the 'distributed' package in this Python: install the "
                         "runtime packages first (logic.installRuntimePackages(), or the panel asks)")


def _clusterAddress(address):
    """A scheduler address as consent stores it (stripped; ValueError when it is not one)."""
    from ..Cluster.ClusterConnection import isLoopbackAddress

    _requireDistributed()
    isLoopbackAddress(address)  # ValueError for what is not a scheduler address
    return address.strip()


def _logProgress(percent, message):
    logging.debug("%5.1f %% %s", percent, message)
