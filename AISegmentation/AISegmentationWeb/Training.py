"""Train panel: the course's pipeline from the page's segmentations (Training/ through the Logic): a dataset from
the checked segmentations (each on the volume it was made on), nnU-Net's plan (or the tiny one), a fit with a short
schedule as a job (progress, one row per epoch, Cancel keeps the last checkpoint). The project folder is a name
under one training folder on the server (AISEGMENTATION_WEB_TRAINING_DIR, default ~/AISegmentation-training): the
page never names other server paths. Evaluation and export are the panel's and the command line's."""

import asyncio
import logging
import os
import re
import time

from trame.widgets import html
from trame.widgets import vuetify3 as v3

from AISegmentationLib.JobRunner import JobCancelledError
from AISegmentationLib.Training.TrainingSchedules import PLAN_PRESETS

from .Layout import actionButton, dataAttributes

POLL_SECONDS = 0.5
NNUNET_PLAN = "nnU-Net's plan"
PROJECT_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")


def trainingRoot():
    return os.environ.get("AISEGMENTATION_WEB_TRAINING_DIR") or os.path.expanduser("~/AISegmentation-training")


def projectFolder(name):
    """The project folder of a name typed on the page; ValueError for anything but letters, digits, _ and -."""
    name = (name or "").strip()
    if not PROJECT_NAME.fullmatch(name):
        raise ValueError(f"Project name '{name}': use 1 to 40 letters, digits, '_' or '-'")
    return os.path.join(trainingRoot(), name)


def epochRow(record):
    return {"key": f"{record['fold']}-{record['epoch']}", "fold": record["fold"],
            "epoch": f"{record['epoch']}/{record['epochs']}", "trainLoss": f"{record['trainLoss']:.4f}",
            "validationLoss": f"{record['validationLoss']:.4f}",
            "pseudoDice": ", ".join(f"{value:.3f}" for value in record["pseudoDice"])}


class TrainingPanel:
    title, key = "Train", "train"

    def __init__(self, page):
        self.page = page
        self.job = None
        state, ctrl = page.state, page.ctrl
        state.trainCases, state.trainProject, state.trainFolds = [], "web-training", 2
        state.trainPresets, state.trainPreset = [NNUNET_PLAN, *PLAN_PRESETS], "tiny"
        state.trainEpochs, state.trainRunning, state.trainProgress = 1, False, 0.0
        state.trainMessage, state.trainLog, state.trainEpochRows = "", "", []
        ctrl.trainDataset = page.action("train dataset")(self.buildDataset)
        ctrl.trainPlan = page.action("train plan start")(self.plan)
        ctrl.trainFit = page.action("train fit start")(self.fit)
        ctrl.trainCancel = page.action("train cancel")(self.cancel)

    def buildUi(self):
        ctrl = self.page.ctrl
        v3.VSelect(label="Segmentations to train from", items=("segmentations",), v_model=("trainCases",),
                   multiple=True, chips=True, density="compact", hide_details=True, id="train-cases")
        with html.Div(classes="d-flex"):
            v3.VTextField(label="Project", v_model=("trainProject",), density="compact", hide_details=True,
                          id="train-project")
            v3.VTextField(label="Folds", v_model=("trainFolds",), type="number", density="compact",
                          hide_details=True, id="train-folds", style="max-width: 80px")
        with html.Div(classes="d-flex"):
            v3.VSelect(label="Plan", items=("trainPresets",), v_model=("trainPreset",), density="compact",
                       hide_details=True, id="train-preset")
            v3.VTextField(label="Epochs (short CPU schedule)", v_model=("trainEpochs",), type="number",
                          density="compact", hide_details=True, id="train-epochs")
        actionButton("Build dataset", ctrl.trainDataset, "train-dataset", disabled=("trainRunning",))
        actionButton("Plan", ctrl.trainPlan, "train-plan", disabled=("trainRunning",))
        actionButton("Fit", ctrl.trainFit, "train-fit", disabled=("trainRunning",))
        actionButton("Cancel", ctrl.trainCancel, "train-cancel", disabled=("!trainRunning",))
        v3.VProgressLinear(model_value=("trainProgress",), height=14, id="train-progress", classes="my-1",
                           color=("trainRunning ? 'primary' : 'success'",))
        html.Div("{{ trainMessage }}", id="train-message", classes="text-caption")
        with v3.VTable(density="compact", id="train-epochs-table"):
            with html.Thead(), html.Tr():
                for title in ("Fold", "Epoch", "Train loss", "Val. loss", "Pseudo-Dice"):
                    html.Th(title)
            with html.Tbody():
                with html.Tr(v_for="row in trainEpochRows", key="row.key", data_epoch=("row.key",),
                             **dataAttributes("data_epoch")):
                    for key in ("fold", "epoch", "trainLoss", "validationLoss", "pseudoDice"):
                        html.Td(f"{{{{ row.{key} }}}}")
        html.Pre("{{ trainLog }}", id="train-log", classes="text-caption",
                 style="max-height: 120px; overflow: auto; white-space: pre-wrap;")

    # Steps ---------------------------------------------------------------------------------------------------

    def _requireIdle(self):
        if self.job is not None and not self.job.done:
            raise ValueError("A training step is running: wait for it or cancel it")

    def buildDataset(self):
        self._requireIdle()
        state = self.page.state
        cases = [self.page.node(nodeId) for nodeId in state.trainCases or []]
        if not cases:
            raise ValueError("Check the segmentations to train from (each on the volume it was made on)")
        dataset = self.page.logic.buildTrainingDataset(projectFolder(state.trainProject), cases=cases,
                                                       numberOfFolds=int(state.trainFolds))
        lines = [f"{dataset['name']}: {len(dataset['training'])} training cases; labels "
                 f"{', '.join(dataset['labels'])}"] + [f"Warning: {message}" for message in dataset["messages"]]
        state.trainLog, state.trainMessage = "\n".join(lines), lines[0]

    def plan(self):
        self._requireIdle()
        state = self.page.state
        preset = None if state.trainPreset == NNUNET_PLAN else state.trainPreset
        job = self.page.logic.startPlanTraining(projectFolder(state.trainProject), planPreset=preset)
        self._follow(job, "train plan", self._planMessage)

    @staticmethod
    def _planMessage(plan):
        configuration = plan["configurations"]["3d_fullres"]
        return (f"Plan: spacing {configuration['spacing']} mm, patch {configuration['patchSize']}, batch "
                f"{configuration['batchSize']}")

    def fit(self):
        self._requireIdle()
        state = self.page.state
        epochs = int(state.trainEpochs)
        if epochs < 1:
            raise ValueError("Epochs: at least 1")
        job = self.page.logic.startFitModel(projectFolder(state.trainProject), schedule="short-cpu", epochs=epochs)
        state.trainEpochRows = []
        self._follow(job, "train fit", lambda fit: f"Trained: {', '.join(fit['trained'])} ({fit['scheduleName']})")

    def cancel(self):
        if self.job is None or self.job.done:
            raise ValueError("No training step to cancel")
        self.job.cancel()

    # Following a job -------------------------------------------------------------------------------------------

    def _follow(self, job, name, describe):
        self.job = job
        state = self.page.state
        state.trainRunning, state.trainProgress, state.trainMessage = True, 0.0, "Starting"
        state.trainLog = "\n".join(f"Warning: {message}" for message in job.messages)
        asyncio.get_event_loop().create_task(self._poll(job, name, describe, time.perf_counter()))

    def _showProgress(self, job, lines):
        state = self.page.state
        lines += job.takeLogLines()
        with state:
            state.trainProgress, state.trainMessage = float(job.progress), job.message
            state.trainLog = "\n".join(lines[-40:])
            if hasattr(job, "epochs") and len(job.epochs) != len(state.trainEpochRows):
                state.trainEpochRows = [epochRow(record) for record in list(job.epochs)]

    async def _poll(self, job, name, describe, start):
        """Progress, log and epochs until the job ends; then its result (finalized here, the server's thread)."""
        state, lines = self.page.state, []
        while not job.done:
            await asyncio.sleep(POLL_SECONDS)
            self._showProgress(job, lines)
        outcome = "ok"
        try:
            message = describe(job.wait())
        except Exception as error:  # noqa: BLE001 - a failed or cancelled step is shown, not raised
            outcome = "error"
            logging.getLogger("AISegmentationWeb").info("%s ended: %s", name, error)
            cancelled = isinstance(error, JobCancelledError)
            state.error = "" if cancelled else str(error)
            message = "Cancelled (the last epoch's checkpoint is kept: Fit resumes)" if cancelled else "Failed"
        self._showProgress(job, lines)
        with state:
            state.trainRunning, state.trainMessage = False, message
        self.page.finishAction(name, outcome, start)
