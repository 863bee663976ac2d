"""The Train section: the course's pipeline on nnU-Net's own code (dataset from segmentations, plan, fit with
cross-validation, evaluate with our metrics); the long steps run as jobs, the trained model joins the AI section."""

import slicer
from slicer.i18n import tr as _

from .Section import PanelSection


class TrainSection(PanelSection):
    def __init__(self, widget, planPresets):
        """planPresets: the parameter node's choices for trainPlanPreset (nnU-Net's own plan first)."""
        super().__init__(widget)
        self._nnUNetPlan = planPresets[0]

    def setup(self):
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
            self.widget.jobs.requireNoJob()
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
            self.widget.jobs.requireNoJob()
            p = self._parameterNode
            preset = None if p.trainPlanPreset == self._nnUNetPlan else p.trainPlanPreset
            job = self.logic.startPlanTraining(p.trainProject, configurations=[p.trainConfiguration],
                                               planPreset=preset)
            self.widget.jobs.start(job, self._onTrainPlan, self._trainView())

    def _onTrainPlan(self, plan):
        for name, configuration in plan["configurations"].items():
            self._trainLog(_("Plan {name}: spacing {spacing} mm, patch {patch}, batch {batch}").format(
                name=name, spacing=configuration["spacing"], patch=configuration["patchSize"],
                batch=configuration["batchSize"]))

    def onTrainFit(self):
        with slicer.util.tryWithErrorDisplay(_("Training failed."), waitCursor=True):
            self.widget.jobs.requireNoJob()
            p = self._parameterNode
            job = self.logic.startFitModel(p.trainProject, configuration=p.trainConfiguration,
                                           schedule=p.trainSchedule, epochs=p.trainEpochs or None,
                                           **self._trainCluster())
            self.widget.jobs.start(job, self._onTrainFit, self._trainView())

    def _trainCluster(self):
        """{} here; the folds in parallel on the AI section's Dask cluster (a local one when no address is given)."""
        p = self._parameterNode
        if not p.trainOnCluster:
            return {}
        self.widget.ensureRuntimePackages(_("Training on a Dask cluster"))
        if not p.aiClusterAddress.strip():
            return {"scheduler": "local"}
        folder = p.aiClusterTlsFolder
        return {"scheduler": p.aiClusterAddress, "security": self.logic.clusterSecurity(folder) if folder else None}

    def _onTrainFit(self, fit):
        self._trainLog(_("Trained: {folds} ({schedule})").format(folds=", ".join(fit["trained"]),
                                                                 schedule=fit["scheduleName"]))

    def onTrainEvaluate(self):
        """nnU-Net's steps (best configuration, test split) run as a job: progress, log, Cancel; the comparisons,
        reports and registration follow when it ends (the poller's wait, on this thread: they use the scene)."""
        with slicer.util.tryWithErrorDisplay(_("Evaluation failed."), waitCursor=True):
            self.widget.jobs.requireNoJob()
            p = self._parameterNode
            job = self.logic.startEvaluateTraining(p.trainProject, p.trainModelName.strip() or None,
                                                   p.trainConfiguration)
            self.widget.jobs.start(job, self._onTrainEvaluate, self._trainView())

    def _onTrainEvaluate(self, evaluation):
        for row in evaluation["perFold"]:
            self._trainLog(_("Fold {fold} {structure}: Dice {dice:.4f}").format(
                fold=row["fold"], structure=row["structure"], dice=row["dice"]))
        self._trainLog(_("Model '{name}' is in the nnU-Net backend's list; reports in {folder}").format(
            name=evaluation["modelName"], folder=self._parameterNode.trainProject))

    def onTrainCancel(self):
        self.widget.jobs.cancel()
