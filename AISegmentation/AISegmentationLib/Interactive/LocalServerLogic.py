"""The local nnInteractive server as an area logic that the facade (AISegmentationLogic) composes.

    logic.createInteractiveServerEnvironment()            # once: the server's isolated environment (like a backend's)
    logic.importInteractiveServerModel(folder)             # offline; or downloadInteractiveServerModel(agree=True)
    logic.startInteractiveServer(device="auto")           # 127.0.0.1, free port, random key; prompts now go there
    logic.interactiveServerStatus()                        # state, URL, device, health, version
    logic.stopInteractiveServer()

startInteractiveServerJob() is the same start as a job for the panel (polled by a timer, cancellable). The server's
key goes straight to the interactive session (InteractiveLogic.setInteractiveServer): nothing writes it into the scene
or a log. A remote server is still set with setInteractiveServer(url, apiKey) as before.
"""

from ..JobRunner import BackgroundJob
from . import ServerEnvironment, ServerModels
from .ManagedServer import ManagedServer, requireDevice, requirePortFree


class ServerStartJob(BackgroundJob):
    """Waits, on a worker thread, until a launched ManagedServer is ready; wait() returns its status."""

    def __init__(self, server, onReady):
        super().__init__("Local nnInteractive server", [], finalize=lambda job: onReady(server))
        self.server = server

    def _run(self):
        self._setProgress(10.0, "Starting the local nnInteractive server (loading the model)")
        try:
            self.server.waitReady(self._cancelRequested, lambda text: self._setProgress(30.0, f"Starting: {text}"))
        except Exception as error:  # noqa: BLE001 - raised again, as it is, by wait()
            self._error = error
            return
        self._addLog(self.server.status()["message"])


class LocalServerLogic:
    """See the module docstring; interactive: the InteractiveLogic whose prompts go to the started server."""

    def __init__(self, interactive):
        self._interactive = interactive
        self._server = None
        #: environments root of the server environment (None: the backends' root)
        self.interactiveServerEnvironmentsRoot = None

    @property
    def managedInteractiveServer(self):
        """The ManagedServer started here (or None)."""
        return self._server

    # Environment and model -----------------------------------------------------------------------------------------

    def interactiveServerEnvironmentDetails(self):
        return ServerEnvironment.serverEnvironmentDetails(self.interactiveServerEnvironmentsRoot)

    def startCreateInteractiveServerEnvironment(self, force=False):
        return ServerEnvironment.startCreateServerEnvironment(self.interactiveServerEnvironmentsRoot, force)

    def createInteractiveServerEnvironment(self, force=False, progressCallback=None, cancelEvent=None):
        """Create or repair the server's isolated environment (blocking); returns its details."""
        self.startCreateInteractiveServerEnvironment(force).wait(progressCallback=progressCallback,
                                                                 cancelEvent=cancelEvent)
        return self.interactiveServerEnvironmentDetails()

    @staticmethod
    def interactiveServerModels():
        """{name: folder} of the nnInteractive models on this computer."""
        return ServerModels.localModels()

    @staticmethod
    def importInteractiveServerModel(folder, name=None):
        """Copy an nnInteractive model folder (plans.json, fold_0/checkpoint_final.pth) into the model store."""
        return ServerModels.importModel(folder, name)

    def startDownloadInteractiveServerModel(self, agree=False, modelId=ServerModels.OFFICIAL_MODEL):
        """A started job that downloads the official model (only with agree=True); its result is the folder."""
        if not agree:  # refuse before anything is looked up or started
            return ServerModels.startDownload(None, agree, modelId)
        return ServerModels.startDownload(ServerEnvironment.serverPython(self.interactiveServerEnvironmentsRoot),
                                          agree, modelId)

    def downloadInteractiveServerModel(self, agree=False, modelId=ServerModels.OFFICIAL_MODEL, progressCallback=None,
                                       cancelEvent=None):
        return self.startDownloadInteractiveServerModel(agree, modelId).wait(progressCallback=progressCallback,
                                                                             cancelEvent=cancelEvent)

    # Server --------------------------------------------------------------------------------------------------------

    def startInteractiveServerJob(self, device="auto", modelDir=None, port=None, threads=None):
        """Launch the server now and return a job that completes once it is ready (then prompts go to it)."""
        if self._server is not None and self._server.status()["state"] in ("running", "starting"):
            raise ValueError(f"The local nnInteractive server is running already ({self._server.url}); stop it first")
        requireDevice(device)
        if port:
            requirePortFree(port)
        python = ServerEnvironment.serverPython(self.interactiveServerEnvironmentsRoot)
        server = ManagedServer(python, modelDir or ServerModels.defaultModel(), device, port, threads=threads)
        self._server = server.launch()
        return ServerStartJob(server, self._useServer).start()

    def startInteractiveServer(self, device="auto", modelDir=None, port=None, threads=None, progressCallback=None,
                               cancelEvent=None):
        """Start the local server and send prompts there from now on (blocking); returns interactiveServerStatus().

        device: auto (CUDA, Apple MPS, else the CPU: slow), cpu, cuda, cuda:N or mps. modelDir: default the official
        model when downloaded, else the only imported one. port: default a free one."""
        job = self.startInteractiveServerJob(device, modelDir, port, threads)
        return job.wait(progressCallback=progressCallback, cancelEvent=cancelEvent)

    def _useServer(self, server):
        self._interactive.setInteractiveServer(server.url, server.apiKey, protocol="current")
        return server.status()

    def stopInteractiveServer(self):
        """Stop the local server (its whole process tree); its interactive session is closed. Idempotent."""
        server = self._server
        if server is None:
            return
        try:
            session = self._interactive.interactiveSession
        except ValueError:  # no server set
            session = None
        if session is not None and session.settings.url == server.url:
            self._interactive.closeInteractiveSession()
        server.stop()

    def interactiveServerStatus(self):
        """{"state": stopped | starting | running | failed, "url", "device", "description", "healthy", "version",
        "pid", "startSeconds", "message"} of the local server."""
        if self._server is None:
            return {"state": "stopped", "url": None, "device": None, "description": None, "pid": None,
                    "healthy": False, "version": None, "startSeconds": None, "message": "Not running"}
        return self._server.status()
