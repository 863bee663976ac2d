"""A job run in a Dask worker's task: :func:`runJobOnWorker` (a backend's run, Backends/Jobs/RemoteRun.py, and a
training fold, Training/ClusterFolds.py) and what RemoteJob (the client side, RemoteJob.py) hears from it.

Backends/Jobs/RemoteRun.runBackendOnWorker gets the input NIfTI files as bytes and the backend's validated options.
On the worker it
prepares the run again with the worker's own context (model folders, weights and environments as the worker sees
them), writes the inputs and ``request.json`` into a private temporary folder (JobRequest, as a local run does),
runs the same backend child (ChildWorker.py) in the worker's isolated environment (its EnvironmentManager:
``$AISEGMENTATION_ENVIRONMENTS_DIR`` of the worker) or the worker's current Python, through BackgroundJob, and
returns the label map and label JSON bytes with the child's result. The folder is removed whatever happens.

Progress, log lines and the child's process ID go back as Dask events on the job's topic
(``Worker.log_event`` -> ``Client.subscribe_topic``): the scheduler pushes them to the client as they come, with no
polling from the client and no shared state to clean up (a ``distributed.Queue`` would be polled and must be
drained). The client asks to stop by setting the job's ``distributed.Event``, which this function polls: the child's
whole process tree is then ended (BackgroundJob.cancel) and JobCancelledError is raised. The same happens when the
scheduler cancels or releases the task (the client cancelled its future, or went away).

Imports neither slicer nor Qt: a worker needs only ``distributed``, this package on its PYTHONPATH and the backends'
environments.
"""

import os
import time

from ..JobRunner import JobCancelledError

POLL_SECONDS = 0.25
MAX_LINES_PER_EVENT = 200


def publisher(topic):
    """send(message dict) on the job's topic, from the task's thread."""
    from distributed import get_worker

    worker = get_worker()

    def send(message):
        worker.log_event(topic, message)

    return send


def _forward(job, send, state):
    """Send what changed since the last call: progress and message, new log lines, the child's process ID."""
    lines = job.takeLogLines()
    for start in range(0, len(lines), MAX_LINES_PER_EVENT):
        send({"log": lines[start:start + MAX_LINES_PER_EVENT]})
    progress = (round(job.progress, 1), job.message)
    if progress != state.get("progress"):
        state["progress"] = progress
        send({"progress": progress[0], "message": progress[1]})
    pid = job.pid
    if pid is not None and pid != state.get("pid"):
        state["pid"] = pid
        send({"pid": pid, "host": os.uname().nodename if hasattr(os, "uname") else ""})


def _released(worker, key):
    """True when the scheduler no longer wants this task's result (its future was cancelled or released)."""
    task = worker.state.tasks.get(key)
    return task is None or task.state in ("cancelled", "released", "forgotten")


def runJobOnWorker(job, topic, cancelEventName, forward=None):
    """Start `job` (a BackgroundJob) in this Dask task, send its progress, log lines and process ID on `topic`
    (and whatever forward(send) sends, at each poll) until it ends, end it when the client sets the cancel event or
    the scheduler releases the task; raises the job's error (a RuntimeError once cancelled)."""
    from distributed import Event, get_worker

    worker = get_worker()
    key = worker.get_current_task()
    send = publisher(topic)
    cancel = Event(cancelEventName)
    job.start()
    state = {}
    while True:
        finished = job.done
        if not finished and (cancel.is_set() or _released(worker, key)):
            job.cancel()
        _forward(job, send, state)
        if forward is not None:
            forward(send)
        if finished:
            break
        time.sleep(POLL_SECONDS)
    try:
        job.wait()  # raises the job's error: the child's failure (ValueError, RuntimeError), or cancelled
    except JobCancelledError as error:  # built-in types only go back: the scheduler holds errors too
        raise RuntimeError(str(error)) from None
