"""The Interactive section: nnInteractive prompts (point, box, lasso, scribble; positive or negative) through a server
(a URL and key, or the local server this module manages); each prompt runs as a job, its result written on the GUI
thread."""

import slicer
from slicer.i18n import tr as _

from .Section import PanelSection, requireNode


class InteractiveSection(PanelSection):
    def __init__(self, widget, shortcuts):
        """shortcuts: {prompt kind: key} installed by the module widget while the module is entered (for tooltips)."""
        super().__init__(widget)
        self._shortcuts = shortcuts
        self._promptJob = None
        self._promptTimer = None

    def setup(self):
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
                tip=button.toolTip, key=self._shortcuts[kind])
        self.ui.interactiveUndoButton.connect("clicked(bool)", self.onInteractiveUndo)
        self.ui.interactiveLocalServerButton.connect("clicked(bool)", self.onInteractiveLocalServer)
        self.ui.interactiveResetButton.connect("clicked(bool)", self.onInteractiveReset)
        self.logic.interactiveConsentCallback = lambda origin: slicer.util.confirmYesNoDisplay(
            _("Send the image to the nnInteractive server at {origin}? It is not on this computer.").format(
                origin=origin))

    def onSceneStartClose(self):
        if self._promptJob is not None:
            self._promptJob.cancel()

    def cleanup(self):
        self.logic.stopInteractiveServer()
        if self._promptTimer is not None:
            self._promptTimer.stop()
        if self._promptJob is not None:
            self._promptJob.cancel()

    def _interactiveServer(self):
        """Apply the panel's server URL and key (the key lives only in the widget, never in the scene); the local
        server's key stays in the Logic."""
        self.widget.ensureRuntimePackages()
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
                prompt = requireNode(*prompts[kind])
            else:
                prompt, details = segmentation, {"scribbleSegmentId":
                                                 self.ui.interactiveScribbleSegmentSelector.currentSegmentID()}
            self._promptJob = self.logic.startInteractivePrompt(kind, prompt, not p.interactiveNegative, **details)
            self.widget.setWritingControlsEnabled(False)
            self._promptTimer.start()

    def _pollPromptJob(self):
        job = self._promptJob
        if job is None or not job.done:
            return
        self._promptTimer.stop()
        self._promptJob = None
        self.widget.setWritingControlsEnabled(True)
        with slicer.util.tryWithErrorDisplay(_("nnInteractive prompt failed."), waitCursor=True):
            job.wait()  # writes the result here, on the GUI thread (or raises the job's error)

    def onInteractiveLocalServer(self):
        """Start the local nnInteractive server (its environment and a model first, once the user agrees) or stop it;
        the long steps run as jobs like the AI runs."""
        with slicer.util.tryWithErrorDisplay(_("Local nnInteractive server failed."), waitCursor=True):
            if self.logic.interactiveServerStatus()["state"] in ("running", "starting"):
                self.logic.stopInteractiveServer()
                return self._showLocalServerStatus()
            self.widget.jobs.requireNoJob()
            self.widget.ensureRuntimePackages()
            again = lambda result: self.onInteractiveLocalServer()  # noqa: E731 - the next step after a job
            if self.logic.interactiveServerEnvironmentDetails()["state"] != "ready":
                if slicer.util.confirmOkCancelDisplay(_("The local nnInteractive server needs its own Python "
                                                        "environment (several GB, created once). Create it now?")):
                    self.widget.jobs.start(self.logic.startCreateInteractiveServerEnvironment(), again)
                return
            if not self.logic.interactiveServerModels():
                if slicer.util.confirmYesNoDisplay(_(
                        "No nnInteractive model on this computer. Download the official model from huggingface.co "
                        "(several hundred MB; its license allows non-commercial use only)? "
                        "No: import a model folder.")):
                    return self.widget.jobs.start(self.logic.startDownloadInteractiveServerModel(agree=True), again)
                import qt

                folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), _("nnInteractive model folder"))
                if not folder:
                    return
                self.logic.importInteractiveServerModel(folder)
            self.widget.jobs.start(self.logic.startInteractiveServerJob(), self._showLocalServerStatus)

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
