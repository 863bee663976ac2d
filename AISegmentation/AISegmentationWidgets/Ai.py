"""The AI section: a backend, its options (editors built from the backend's declarations, Logic.backendOptions), its
environment, where it runs (this computer or a Dask cluster), Run / Cancel with progress and log."""

import json

import slicer
from slicer.i18n import tr as _

from .OptionEditors import optionEditor, optionValue
from .Section import PanelSection


class AiSection(PanelSection):
    def __init__(self, widget, runOnChoices):
        """runOnChoices: the parameter node's choices for aiRunOn (this computer first, then a Dask cluster)."""
        super().__init__(widget)
        self._runOnCluster = runOnChoices[1]
        self._aiOptionEditors = {}
        self._shownAiOptions = None

    def setup(self):
        self.ui.aiBackendComboBox.connect("currentTextChanged(QString)", self.showEnvironmentStatus)
        self.ui.aiInstallButton.connect("clicked(bool)", self.onAiInstall)
        self.ui.aiRunButton.connect("clicked(bool)", self.onAiRun)
        self.ui.aiCancelButton.connect("clicked(bool)", self.onAiCancel)
        self._setupEveryFrame()
        self.logic.clusterConsentCallback = lambda address: slicer.util.confirmYesNoDisplay(
            _("Send the image to the Dask cluster at {address}? It is not on this computer.").format(address=address))

    def jobView(self):
        """Where a job started from this section shows its progress and log, and which buttons wait for it."""
        return (self.ui.aiProgressBar, self.ui.aiLogTextEdit, (self.ui.aiRunButton, self.ui.aiInstallButton))

    def onParameterNodeModified(self, parameterNode):
        p = parameterNode
        if (p.aiBackend, p.aiOptions) != self._shownAiOptions:
            self._showAiOptions()
        onCluster = p.aiRunOn == self._runOnCluster
        self.ui.aiClusterAddressLineEdit.enabled = onCluster
        self.ui.aiClusterTlsFolderPathLineEdit.enabled = onCluster
        self.everyFrameCheckBox.visible = self.logic.sequenceOfVolume(p.sourceVolume) is not None

    def showEnvironmentStatus(self, *args):
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
            self.widget.jobs.start(self.logic.startCreateBackendEnvironment(backend, force),
                                   self.showEnvironmentStatus)

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
            kind, editor = optionEditor(option, saved.get(option.name, option.default), self._saveAiOptions)
            layout.addRow(option.label + ":", editor)
            self._aiOptionEditors[option.name] = (option, kind, editor)

    def _aiOptionValues(self):
        """{option name: value} of the editors (ValueError for text that is not a valid value)."""
        return {name: optionValue(*entry) for name, entry in self._aiOptionEditors.items()}

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
                values[name] = optionValue(option, kind, editor)
            except ValueError:
                pass  # text being typed: the last valid value stays saved
        saved[p.aiBackend] = values
        text = json.dumps(saved, sort_keys=True)
        self._shownAiOptions = (p.aiBackend, text)  # the editors already show it: no rebuild
        p.aiOptions = text

    def onAiRun(self):
        with slicer.util.tryWithErrorDisplay(_("AI segmentation failed."), waitCursor=True):
            self.widget.jobs.requireNoJob()
            volume, segmentation, _segmentId = self._inputs()
            p, options, cluster = self._parameterNode, self._aiOptionValues(), self._aiCluster()
            estimate = self.logic.estimateBackendMemory(p.aiBackend, volume, **options)
            if estimate.messages and not cluster and not slicer.util.confirmOkCancelDisplay(
                    estimate.summary() + "\n\n" + "\n".join(estimate.messages) + "\n\n" + _("Run anyway?")):
                return  # (on a cluster this computer's memory does not matter)
            sequence = self.logic.sequenceOfVolume(volume) if self.everyFrameCheckBox.checked else None
            if sequence is not None:  # one segmentation per frame, into a new segmentation sequence
                job = self.logic.startBackendOnSequence(p.aiBackend, sequence, environment=p.aiEnvironment,
                                                        **cluster, **options)
                self.widget.jobs.start(job, lambda result: self._onSequenceResult(job, result))
                return
            job = self.logic.startBackend(p.aiBackend, volume, segmentation, p.aiEnvironment, **cluster, **options)
            self.widget.jobs.start(job, self._onAiResult)

    def _setupEveryFrame(self):
        """"Every frame of its sequence", shown when the source volume is a sequence browser's proxy node (it shows
        one frame of a sequence): Run then segments every frame into a segmentation sequence played with it."""
        import qt

        self.everyFrameCheckBox = qt.QCheckBox(_("Every frame of its sequence"))
        self.everyFrameCheckBox.toolTip = _("The source volume shows one frame of a sequence: segment every frame "
                                            "(progress per frame, Cancel between and within frames) into a "
                                            "segmentation sequence that its browser plays with the volumes")
        self.everyFrameCheckBox.visible = False
        self.ui.aiButtonsRow.layout().insertWidget(0, self.everyFrameCheckBox)

    def _onSequenceResult(self, job, result):
        """Show the proxy segmentation of the new segmentation sequence (desktop Slicer's Sequences logic made it)."""
        segmentations, _table = result
        proxy = job.browser.GetProxyNode(segmentations) if job.browser is not None else None
        if proxy is not None and proxy.IsA("vtkMRMLSegmentationNode"):
            self._parameterNode.segmentation = proxy

    def _aiCluster(self):
        """{} for this computer; the cluster's address and TLS settings (from the TLS folder) for a Dask cluster."""
        p = self._parameterNode
        if p.aiRunOn != self._runOnCluster:
            return {}
        self.widget.ensureRuntimePackages(_("Running on a Dask cluster"))
        folder = p.aiClusterTlsFolder
        return {"cluster": p.aiClusterAddress,
                "clusterSecurity": self.logic.clusterSecurity(folder) if folder else None}

    def _onAiResult(self, segmentationNode):
        if segmentationNode is not None:
            self._parameterNode.segmentation = segmentationNode

    def onAiCancel(self):
        self.widget.jobs.cancel()

