"""A backend's run on a Dask worker: the function a worker runs for Cluster/RemoteJob.py (see the docstring of
Cluster/RemoteWorker.py for the events and the cancel). Imports neither slicer nor Qt."""

import os
import shutil
import tempfile

from ...AtomicWrite import atomicOpen
from ...Cluster.RemoteWorker import publisher, runJobOnWorker
from ...JobRunner import BackgroundJob
from .. import Registry
from ..Environments.Environments import EnvironmentManager
from .JobRequest import backendContext, backendPython, childStep, inputFileName, writeRequest


def runBackendOnWorker(backendName, options, environment, inputs, topic, cancelEventName):
    """Run backend `backendName` with `options` on `inputs` (NIfTI bytes, channel order) on this Dask worker.

    environment: "auto", "isolated", "current" or a Python executable on the worker. Returns {"labelmap": bytes,
    "labels": bytes, "childResult": dict, "environment": label, "seconds": float, "messages": [str]}; raises the
    ValueError / RuntimeError of a local run (a RuntimeError saying it was cancelled once the job's cancel event is
    set).
    """
    send = publisher(topic)
    backend = Registry.getBackend(backendName)
    environments = EnvironmentManager()
    prepared = backend.prepare(backendContext(backend, {}, environments), **options)
    python, isolated, label = backendPython(backend, environment, environments)
    workDir = tempfile.mkdtemp(prefix="AISegmentation-worker-")
    try:
        paths = []
        for index, data in enumerate(inputs):
            path = os.path.join(workDir, inputFileName(index))
            with atomicOpen(path, "wb") as file:
                file.write(data)
            paths.append(path)
        request, requestPath = writeRequest(backend, prepared, workDir, paths)
        job = BackgroundJob(backend.title, [childStep(backend, prepared, python, isolated, workDir, requestPath)])
        send({"environment": label})
        runJobOnWorker(job, topic, cancelEventName)
        with open(request["outputLabelmap"], "rb") as file:
            labelmap = file.read()
        with open(request["outputLabels"], "rb") as file:
            labels = file.read()
        return {"labelmap": labelmap, "labels": labels, "childResult": job.childResult, "environment": label,
                "seconds": job.seconds, "messages": list(job.messages)}
    finally:
        shutil.rmtree(workDir, ignore_errors=True)
