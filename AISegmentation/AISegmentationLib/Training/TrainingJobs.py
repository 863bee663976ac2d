"""The training pipeline's child processes: ChildTraining.py run by the backends' ChildWorker.py in the "nnunet"
environment, as a :class:`TrainingJob` (a BackgroundJob: progress, log, Cancel ends the process tree, clear errors).

A TrainingJob also keeps the ``epoch`` messages of nnU-Net's trainer (``job.epochs``: fold, epoch, train and
validation loss, pseudo-Dice per structure, seconds) and calls ``onEpoch(record)`` for each, from its reader thread.
"""

import json
import os
import shutil
import tempfile

from ..AtomicWrite import writeText
from ..Backends import Registry
from ..Backends.Environments.Environments import WORKER_SCRIPT, childEnvironment
from ..Backends.Jobs.JobRequest import backendPython
from ..JobRunner import BackgroundJob, ProcessStep

CHILD_MODULE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ChildTraining.py")
NNUNET = "nnunet"


class TrainingJob(BackgroundJob):
    """A BackgroundJob that records nnU-Net's epochs."""

    def __init__(self, *args, onEpoch=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.epochs = []
        self._onEpoch = onEpoch

    def _handleEvent(self, event, step, outcome):
        if event.get("type") != "epoch":
            return super()._handleEvent(event, step, outcome)
        record = {key: value for key, value in event.items() if key != "type"}
        self.epochs.append(record)
        self._addLog(f"Fold {record['fold']} epoch {record['epoch']}/{record['epochs']}: train loss "
                     f"{record['trainLoss']:.4f}, validation loss {record['validationLoss']:.4f}, pseudo-Dice "
                     f"{record['pseudoDice']}, {record['seconds']:.1f} s")
        if self._onEpoch is not None:
            self._safely(self._onEpoch, record)
        return None


def trainingPython(environments, environment="auto"):
    """(python, isolated?) of the nnU-Net backend's environment; ValueError saying how to create it."""
    python, isolated, _label = backendPython(Registry.getBackend(NNUNET), environment, environments)
    return python, isolated


def childVariables(project, dataAugmentationProcesses=0):
    """nnU-Net's folders (the project's), one process for everything on a small machine, no torch.compile."""
    return {**project.nnUNetFolders(), "nnUNet_def_n_proc": "1", "nnUNet_n_proc_DA": str(dataAugmentationProcesses),
            "nnUNet_compile": "false"}


def newWorkDir():
    """A private temporary folder for a job's request files (removed by the job's cleanup)."""
    return tempfile.mkdtemp(prefix="AISegmentation-training-")


def trainingStep(project, options, python, isolated, message, workDir, start=0.0, end=100.0,
                 dataAugmentationProcesses=0):
    """A ProcessStep running ChildTraining with options (its "action" says what), request written when it starts."""
    def command():
        handle, path = tempfile.mkstemp(prefix=f"{options['action']}-", suffix=".json", dir=workDir)
        os.close(handle)
        writeText(path, json.dumps({"backend": "training", "childModule": CHILD_MODULE, "options": options}))
        return [python, WORKER_SCRIPT, path]

    variables = childVariables(project, dataAugmentationProcesses)
    return ProcessStep(command, message, start, end, env=lambda: childEnvironment(isolated, variables, python=python),
                       cwd=project.folder, protocol=True,
                       failureHint="the checkpoint of the last finished epoch is kept: run the step again to resume")


def trainingJob(title, steps, workDir, finalize=None, onEpoch=None):
    """A TrainingJob (not started yet) that removes workDir when it ends."""
    return TrainingJob(title, steps, finalize=finalize, onEpoch=onEpoch,
                       cleanup=lambda: shutil.rmtree(workDir, ignore_errors=True))
