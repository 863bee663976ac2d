"""Folds in parallel on a Dask cluster (the cohort feature's, Cluster/ClusterConnection.py): one fold per worker.

:class:`ClusterFitJob` is a TrainingJob (progress, log, ``epochs``, ``onEpoch``, Cancel, ``wait``) whose thread
opens a LocalCluster on this computer (``scheduler="local"``: one worker per fold) or uses the scheduler at an
address (TLS beyond loopback and the user's consent, checked by the caller), then runs one :class:`FoldJob` per
fold: a RemoteJob (Cluster/RemoteJob.py) whose task is :func:`fitFoldOnWorker`, with ``resources={"GPU": 1}`` when
the device is "cuda" so that each fold takes a GPU worker of its own. On the worker the fold runs as here (the same
ChildTraining step in the worker's nnU-Net environment, RemoteWorker.runJobOnWorker) and its epochs come back as
events. The workers write into the project folder itself: on a cluster of other machines it must be on a file
system they share, at the same path.
"""

import logging
import time

from ..Cluster.RemoteJob import RemoteJob, workerFunction
from ..Cluster import ClusterConnection
from . import TrainingJobs
from .TrainingProject import TrainingProject

POLL_SECONDS = 0.2


class FoldJob(RemoteJob):
    """One fold on the cluster at `address`; its epochs go to onEpoch(record)."""

    def __init__(self, address, security, project, options, environment, onEpoch):
        super().__init__(f"Training fold {options['fold']}", address, security,
                         {"options": options, "environment": environment, "device": options.get("device")},
                         receive=self._receiveEpochs)
        self.project = project
        self._onEpochRecord = onEpoch
        self._seenEpochs = set()

    def _epoch(self, record):
        if record["epoch"] not in self._seenEpochs:
            self._seenEpochs.add(record["epoch"])
            self._safely(self._onEpochRecord, record)

    def _onEvent(self, event):
        message = event[1]
        if isinstance(message, dict) and "epoch" in message:
            self._epoch(message["epoch"])
        super()._onEvent(event)

    def _receiveEpochs(self, result):
        """The task's result lists every epoch: one whose event came after the result is not lost."""
        for record in result.get("epochs", ()):
            self._epoch(record)

    def _submitTask(self, client, topic, cancelName, jobId):
        resources = ClusterConnection.resourcesFor(self.submission["device"])
        self._setProgress(0.0, "Waiting for a Dask worker")
        return client.submit(workerFunction(__name__, "fitFoldOnWorker"), self.project, self.submission["options"],
                             self.submission["environment"], topic, cancelName, resources=resources or None,
                             pure=False, retries=0, key=f"aisegmentation-fold-{self.submission['options']['fold']}-"
                                                        f"{jobId}")


class ClusterFitJob(TrainingJobs.TrainingJob):
    """The folds of one fit, in parallel on a Dask cluster; see the module docstring."""

    def __init__(self, title, project, foldOptions, environment, scheduler, security=None, workers=None,
                 finalize=None, onEpoch=None):
        super().__init__(title, [], finalize=finalize, onEpoch=onEpoch)
        self.project = project
        self.foldOptions = foldOptions
        self.environment = environment
        self.scheduler = scheduler
        self.security = security
        self.workers = workers
        self.dashboard = None

    def _record(self, record):
        self._handleEvent({"type": "epoch", **record}, None, None)

    def _run(self):
        local = None
        address = self.scheduler
        if address == "local":
            resources = ClusterConnection.resourcesFor(self.foldOptions[0].get("device"))
            local = ClusterConnection.openLocalCluster(self.workers or len(self.foldOptions),
                                                       resources=resources or None)
            address = local[0].scheduler_address
            self.dashboard = ClusterConnection.dashboardLink(local[1])
        try:
            self._addLog(f"Training folds {[options['fold'] for options in self.foldOptions]} in parallel on the "
                         f"Dask cluster at {address}")
            jobs = [FoldJob(address, self.security, self.project, options, self.environment, self._record).start()
                    for options in self.foldOptions]
            self._follow(jobs)
        finally:
            if local is not None:
                local[1].close()
                local[0].close()

    def _follow(self, jobs):
        """Mirror the folds' progress and log until all ended; cancel them all on Cancel; the first failure is the
        job's error."""
        while True:
            if self._cancelRequested.is_set():
                for job in jobs:
                    job.cancel()
            for job in jobs:
                for line in job.takeLogLines():
                    self._addLog(f"[{job.title}] {line}")
            running = [job for job in jobs if not job.done]
            shown = running[0] if running else jobs[-1]
            self._setProgress(sum(job.progress for job in jobs) / len(jobs), f"{shown.title}: {shown.message}")
            if not running:
                break
            time.sleep(POLL_SECONDS)
        failed = [job for job in jobs if job.state == "failed"]
        if failed and not self._cancelRequested.is_set():
            error = failed[0].error
            self._error = type(error)(f"{failed[0].title}: {error}") if isinstance(error, (ValueError,
                                                                                          RuntimeError)) else error
        for job in jobs:
            self.messages.extend(message for message in job.messages if message not in self.messages)


def fitFoldOnWorker(projectFolder, options, environment, topic, cancelEventName):
    """Train one fold on this Dask worker (the worker's nnU-Net environment: `environment` as it sees it), sending
    its epochs, progress and log on `topic`; returns {"childResult", "messages", "epochs"}."""
    from ..Backends.Environments.Environments import EnvironmentManager
    from ..Cluster.RemoteWorker import runJobOnWorker

    project = TrainingProject(projectFolder)
    python, isolated = TrainingJobs.trainingPython(EnvironmentManager(), environment)
    workDir = TrainingJobs.newWorkDir()
    epochs = []
    step = TrainingJobs.trainingStep(project, options, python, isolated, f"Training fold {options['fold']}", workDir)
    job = TrainingJobs.trainingJob(f"Training fold {options['fold']}", [step], workDir, onEpoch=epochs.append)

    def forwardEpochs(send):
        count = len(epochs)
        for record in epochs[:count]:
            send({"epoch": record})
        del epochs[:count]

    logging.info("Dask worker: training fold %s of %s", options["fold"], projectFolder)
    runJobOnWorker(job, topic, cancelEventName, forwardEpochs)
    return {"childResult": job.childResult, "messages": list(job.messages), "epochs": job.epochs}
