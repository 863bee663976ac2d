"""A backend run on a Dask cluster, by scheduler address, with the interface of a local job.

:class:`RemoteJob` is a BackgroundJob (JobRunner.py): ``state``, ``done``, ``progress``, ``message``,
``takeLogLines()``, ``logLines()``, ``error``, ``messages``, ``cancel()``, ``wait(timeout, progressCallback,
cancelEvent)``, ``seconds`` and ``memoryEstimate`` mean what they mean for a local job, so the panel and the console
poll and wait on it with the same code. Instead of starting a child process its thread connects to the scheduler
(ClusterConnection.connectClient: TLS beyond loopback), sends the input files, submits the
``runBackendOnWorker`` of the submission's "worker" module (Backends/Jobs/RemoteRun.py; with ``resources={"GPU": 1}``
for a run on "cuda", so that only workers started with ``--resources GPU=1`` take it), mirrors the worker's progress
and log events, and hands the returned
files to ``receive`` before ``wait()`` imports them exactly as a local result (``finalize``).

Cancel sets the job's ``distributed.Event``: the worker ends the child's process tree and stops; a task still
waiting for a worker is cancelled at once. A backend failure on the worker is the ValueError / RuntimeError of a
local run; a worker that died (KilledWorker), a lost connection or a scheduler that refuses the client become a
clear error too, and nothing is written.
"""

import asyncio
import threading
import time
import uuid

from ..JobRunner import BackgroundJob
from .ClusterConnection import connectClient, resourcesFor

CANCEL_GRACE_SECONDS = 30.0  # how long a running worker task may take to stop after Cancel
POLL_SECONDS = 0.2


class RemoteJob(BackgroundJob):
    """See the module docstring. submission: {"backend", "options", "environment", "device", "inputs" (local NIfTI
    paths in channel order), "worker" (the module the worker imports: this package is on its PYTHONPATH)};
    receive(result): called in the job's thread with the worker's result dict."""

    def __init__(self, title, address, security, submission, receive, finalize=None, cleanup=None,
                 connectTimeout=None):
        super().__init__(title, [], finalize=finalize, cleanup=cleanup)
        self.address = address
        self.security = security
        self.submission = dict(submission)
        self.connectTimeout = connectTimeout
        self.workerPid = None  # the backend child's process ID on the worker's machine (once it runs)
        self.workerHost = None
        self.workerEnvironment = None
        self._receive = receive
        self._started = threading.Event()

    @property
    def pid(self):
        """None: the child runs on another machine (see workerPid)."""
        return None

    # Events from the worker (called on the client's event loop) -------------------------------------------------

    def _onEvent(self, event):
        _timestamp, message = event
        if not isinstance(message, dict):
            return
        self._started.set()
        for line in message.get("log", ()):
            self._addLog(str(line))
        if "progress" in message:
            self._setProgress(float(message["progress"]), message.get("message"))
        if "pid" in message:
            self.workerPid, self.workerHost = int(message["pid"]), message.get("host")
        if "environment" in message:
            self.workerEnvironment = str(message["environment"])

    # The job's thread ---------------------------------------------------------------------------------------------

    def _run(self):
        try:
            self._setProgress(0.0, f"Connecting to {self.address}")
            kwargs = {} if self.connectTimeout is None else {"timeout": self.connectTimeout}
            client = connectClient(self.address, self.security, **kwargs)
        except ValueError as error:
            self._error = error
            return
        except Exception as error:  # noqa: BLE001 - e.g. TLS settings without a client certificate
            self._error = ValueError(f"Could not connect to the Dask scheduler at '{self.address}': "
                                     f"{type(error).__name__}: {error}")
            return
        try:
            self._submitAndWait(client)
        finally:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - the connection may already be gone
                pass

    def _submitAndWait(self, client):
        from distributed import Event

        jobId = uuid.uuid4().hex
        topic, cancelName = f"aisegmentation-job-{jobId}", f"aisegmentation-cancel-{jobId}"
        try:
            client.subscribe_topic(topic, self._onEvent)
            cancel = Event(cancelName, client=client)
            future = self._submitTask(client, topic, cancelName, jobId)
            result = self._waitFor(future, cancel)
        except (Exception, asyncio.CancelledError) as error:  # noqa: BLE001 - every failure gets a clear message
            if not self._cancelRequested.is_set():
                self._error = self._clearError(error)
            return
        finally:
            try:
                client.unsubscribe_topic(topic)
            except Exception:  # noqa: BLE001
                pass
        if result is None or self._cancelRequested.is_set():
            return
        self.childResult = result.get("childResult")
        self.messages.extend(result.get("messages", ()))
        self._receive(result)

    def _submitTask(self, client, topic, cancelName, jobId):
        """Send the input files and submit the worker's task (a subclass submits another); returns its future."""
        submission = self.submission
        resources = resourcesFor(submission.get("device"))
        inputs = []
        for path in submission["inputs"]:
            with open(path, "rb") as file:
                inputs.append(client.scatter(file.read(), hash=False))
        self._addLog(f"Sent {len(inputs)} input volume(s) to the Dask cluster at {self.address}"
                     f"{' (needs a worker with ' + str(resources) + ')' if resources else ''}")
        self._setProgress(0.0, "Waiting for a Dask worker")
        return client.submit(workerFunction(submission["worker"]), submission["backend"], submission["options"],
                             submission["environment"], inputs, topic, cancelName, resources=resources or None,
                             pure=False, retries=0, key=f"aisegmentation-{submission['backend']}-{jobId}")

    def _waitFor(self, future, cancel):
        """The future's result, or None once cancelled (the worker told to stop; a waiting task cancelled)."""
        from distributed import TimeoutError as DaskTimeoutError

        cancelledAt = None
        while True:
            try:
                return future.result(timeout=POLL_SECONDS)
            except (DaskTimeoutError, TimeoutError):
                pass
            if not self._cancelRequested.is_set():
                continue
            if cancelledAt is None:
                cancelledAt = time.time()
                cancel.set()
                if not self._started.is_set():
                    future.cancel()  # still queued: nothing runs on a worker yet
                    return None
            if time.time() - cancelledAt > CANCEL_GRACE_SECONDS:
                future.cancel()
                return None

    def _clearError(self, error):
        """The error the caller sees for an exception from the cluster."""
        from distributed import KilledWorker

        if isinstance(error, (ValueError, RuntimeError)):
            return error  # the backend's own failure, worded as for a local run
        if isinstance(error, KilledWorker):
            return RuntimeError(f"{self.title}: the Dask worker running it died (out of memory, killed or its machine "
                                f"went away) and the scheduler gave the case up: {error}")
        name = type(error).__name__
        if isinstance(error, (OSError, asyncio.CancelledError)) or name in ("CommClosedError",
                                                                             "FutureCancelledError"):
            return RuntimeError(f"{self.title}: lost the connection to the Dask scheduler at {self.address} "
                                f"({name}: {error}); nothing was written")
        return RuntimeError(f"{self.title} failed on the Dask cluster at {self.address}: {name}: {error}")


def workerFunction(moduleName, functionName="runBackendOnWorker"):
    """The task's function: it imports moduleName (Backends/Jobs/RemoteRun) on the worker and calls its
    functionName. A local
    function is pickled by value, so the scheduler, which deserializes every task, needs no AISegmentation on its own
    path (only the workers do)."""
    def runOnWorker(*args):
        import importlib

        return getattr(importlib.import_module(moduleName), functionName)(*args)

    return runOnWorker
