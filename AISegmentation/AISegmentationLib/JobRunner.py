"""Background jobs made of child processes: progress, log, cancel, clear errors; no Qt, no slicer.

A :class:`BackgroundJob` runs its :class:`ProcessStep` commands one after the other in a driver thread. Each child
is the root of its own process tree (ProcessTree: a new session on POSIX; a hidden window, a new process group
and a kill-on-close Job object on Windows), so Cancel ends the whole tree: SIGTERM to the group, then SIGKILL after
a grace period; and the tree ends with this process (ProcessTree: death signal, parent watch in the worker,
atexit). Standard output carries JSON lines (see ChildProtocol) when ``protocol`` is set, standard error is the
log. A crash, a kill (including the out-of-memory killer) or a non-zero exit becomes a clear error for the
caller, whose process keeps running.

The GUI polls ``progress``, ``message``, ``takeLogLines()`` and ``done`` from a timer and calls ``wait()`` once done;
a script calls ``wait(progressCallback=..., cancelEvent=...)``. ``wait()`` runs the job's ``finalize`` (e.g. writing
the result into the scene) in the caller's thread, and ``cleanup`` (e.g. removing temp files) always runs.
"""

import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from . import ProcessTree

LOG = logging.getLogger("AISegmentation.Backends")
TQDM_LINE = re.compile(r"^\s*\d{1,3}%\|")
MAX_LOG_LINES = 5000


class JobCancelledError(RuntimeError):
    """The job was cancelled by the user; nothing was changed."""


@dataclass
class ProcessStep:
    """One child process of a job; its progress fills [start, end] percent of the job.

    command and env may be callables that return them when the step starts (for what an earlier step decides);
    command is evaluated first. env None: this process's environment. Every child also gets
    $AISEGMENTATION_PARENT_PID (this process), which a backend worker watches (ProcessTree.endWithStarter).
    """

    command: Union[list, Callable[[], list]]
    message: str
    start: float = 0.0
    end: float = 100.0
    env: Union[dict, Callable[[], dict], None] = None
    cwd: Optional[str] = None
    protocol: bool = False
    lineProgress: Optional[Callable[[str], Optional[float]]] = None  # log line -> fraction of this step, or None
    failureHint: str = ""


@dataclass
class _StepOutcome:
    returnCode: Optional[int] = None
    result: Optional[dict] = None
    error: Optional[dict] = None
    warnings: list = field(default_factory=list)


def _exitDescription(returnCode):
    if returnCode is not None and returnCode < 0:
        try:
            name = signal.Signals(-returnCode).name
        except ValueError:
            name = f"signal {-returnCode}"
        if -returnCode == getattr(signal, "SIGKILL", 9):
            return (f"was killed ({name}); when nobody cancelled it, the system most likely ran out of memory — "
                    f"try fast mode, a smaller (cropped) volume or fewer models")
        return f"crashed ({name})"
    return f"exited with code {returnCode}"


class JobLog:
    """A job's log lines, kept to the last MAX_LOG_LINES, readable whole or as the lines added since the last take
    (a GUI log view); thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._lines, self._taken = [], 0

    def lines(self):
        with self._lock:
            return list(self._lines)

    def take(self):
        with self._lock:
            lines = self._lines[self._taken:]
            self._taken = len(self._lines)
            return lines

    def add(self, line):
        with self._lock:
            self._lines.append(line)
            if len(self._lines) > MAX_LOG_LINES:
                drop = len(self._lines) - MAX_LOG_LINES
                del self._lines[:drop]
                self._taken = max(0, self._taken - drop)


class BackgroundJob:
    """A sequence of child processes with progress, log, cancel and a result; see the module docstring."""

    def __init__(self, title, steps, finalize=None, cleanup=None, onFinished=None, gracePeriod=2.0):
        self.title = title
        self.steps = list(steps)
        self.messages = []  # pre-flight warnings and the like, shown to the user
        self._finalize = finalize
        self._cleanup = cleanup
        self._onFinished = onFinished
        self._gracePeriod = gracePeriod
        self._lock = threading.Lock()
        self._log = JobLog()
        self._progress = 0.0
        self._message = "Waiting"
        self._state = "pending"
        self._process = None
        self._cancelRequested = threading.Event()
        self._finished = threading.Event()
        self._thread = None
        self._error = None
        self._finalized = False
        self.childResult = None
        self.result = None
        self.startTime = None
        self.seconds = None

    # State ------------------------------------------------------------------------------------------------------

    @property
    def state(self):
        """pending, running, succeeded, failed or cancelled (succeeded once the child ended; see wait())."""
        return self._state

    @property
    def done(self):
        return self._finished.is_set()

    @property
    def progress(self):
        return self._progress

    @property
    def message(self):
        return self._message

    @property
    def pid(self):
        """Process ID of the running child (also its process group ID), or None."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def error(self):
        return self._error

    def logLines(self):
        return self._log.lines()

    def takeLogLines(self):
        """Log lines added since the previous call (for a GUI log view)."""
        return self._log.take()

    def _addLog(self, line):
        self._log.add(line)
        LOG.debug("%s: %s", self.title, line)

    def _setProgress(self, percent, message=None):
        self._progress = max(self._progress, min(100.0, float(percent)))
        if message:
            self._message = message

    # Running ----------------------------------------------------------------------------------------------------

    def start(self):
        if self._thread is not None:
            raise RuntimeError(f"Job '{self.title}' was already started")
        self._state = "running"
        self.startTime = time.time()
        self._thread = threading.Thread(target=self._drive, name=f"AISegmentation job {self.title}", daemon=True)
        self._thread.start()
        return self

    def _drive(self):
        try:
            self._run()
        except Exception as error:  # noqa: BLE001 - e.g. the Python of an environment is gone
            self._error = RuntimeError(f"{self.title}: could not run the backend process: {error}")
        finally:
            self.seconds = time.time() - self.startTime
            if self._cancelRequested.is_set():
                self._state, self._message = "cancelled", "Cancelled"
                self._error = JobCancelledError(f"{self.title} was cancelled")
            elif self._error is not None:
                self._state, self._message = "failed", "Failed"
            else:
                self._state, self._message = "succeeded", "Finished"
                self._setProgress(100.0)
            if self._onFinished is not None:
                self._safely(self._onFinished, self)
            if self._state != "succeeded":
                self._runCleanup()
            self._finished.set()

    def _run(self):
        """The job's work, in its thread: the steps one after the other (a subclass may run elsewhere, e.g. on a Dask
        worker); sets self._error on failure and self.childResult on success, and stops when cancel is requested."""
        for step in self.steps:
            if self._cancelRequested.is_set():
                break
            self._setProgress(step.start, step.message)
            outcome = self._runStep(step)
            if self._cancelRequested.is_set():
                break
            failure = self._failure(step, outcome)
            if failure is not None:
                self._error = failure
                break
            self.childResult = outcome.result
            self._setProgress(step.end)

    def _runStep(self, step):
        outcome = _StepOutcome()
        command = [str(part) for part in (step.command() if callable(step.command) else step.command)]
        env = dict(step.env() if callable(step.env) else (step.env if step.env is not None else os.environ))
        env[ProcessTree.PARENT_PID_VARIABLE] = str(os.getpid())  # the worker ends its tree when we are gone
        self._addLog(f"$ {' '.join(command)}")
        process = ProcessTree.startTree(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=env, cwd=step.cwd)
        self._process = process
        readers = [threading.Thread(target=self._readStdout, args=(process.stdout, step, outcome), daemon=True),
                   threading.Thread(target=self._readLog, args=(process.stderr, step), daemon=True)]
        for reader in readers:
            reader.start()
        while process.poll() is None:
            if self._cancelRequested.wait(0.05):
                self._terminate(process)
                break
        process.wait()
        ProcessTree.killTree(process, getattr(signal, "SIGKILL", None))  # leftovers (spawned workers) of the child
        ProcessTree.forget(process)
        for reader in readers:
            reader.join(timeout=2.0)
        outcome.returnCode = process.returncode
        return outcome

    def _readStdout(self, stream, step, outcome):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if not step.protocol:
                self._handleLogLine(line, step)
                continue
            try:
                event = json.loads(line)
            except ValueError:
                self._handleLogLine(line, step)
                continue
            self._handleEvent(event, step, outcome)
        stream.close()

    def _handleEvent(self, event, step, outcome):
        kind = event.get("type")
        if kind == "progress":
            self._setProgress(step.start + (step.end - step.start) * float(event["percent"]) / 100.0,
                              event.get("message"))
        elif kind == "log":
            self._addLog(event.get("message", ""))
        elif kind == "warning":
            outcome.warnings.append(event.get("message", ""))
            self.messages.append(event.get("message", ""))
            self._addLog("WARNING " + event.get("message", ""))
        elif kind == "result":
            outcome.result = event
        elif kind == "error":
            outcome.error = event
            self._addLog(f"ERROR {event.get('message')}")

    def _readLog(self, stream, step):
        pending = b""
        for chunk in iter(lambda: stream.read1(65536) if hasattr(stream, "read1") else stream.read(4096), b""):
            pending += chunk
            parts = re.split(rb"[\r\n]", pending)
            pending = parts.pop()
            for part in parts:
                self._handleLogLine(part.decode("utf-8", "replace").rstrip(), step)
        if pending:
            self._handleLogLine(pending.decode("utf-8", "replace").rstrip(), step)
        stream.close()

    def _handleLogLine(self, line, step):
        if not line.strip() or TQDM_LINE.match(line):
            return  # progress bars are progress, not log
        self._addLog(line)
        if step.lineProgress is not None:
            fraction = step.lineProgress(line)
            if fraction is not None:
                self._setProgress(step.start + (step.end - step.start) * fraction)

    def _failure(self, step, outcome):
        """The exception for a failed step, or None when it succeeded."""
        if outcome.error is not None:
            kind = outcome.error.get("kind")
            message = f"{self.title} failed: {outcome.error.get('message')}"
            if kind == "ValueError":
                return ValueError(message)
            if kind == "MemoryError":
                return RuntimeError(message + " — try fast mode, the CPU, or a smaller (cropped) volume")
            return RuntimeError(message)
        if outcome.returnCode == 0 and (outcome.result is not None or not step.protocol):
            return None
        tail = [line for line in self.logLines()[-8:] if not line.startswith("$ ")]
        detail = f" Last output: {' | '.join(tail[-4:])}" if tail else ""
        if outcome.returnCode == 0:
            return RuntimeError(f"{self.title}: the backend process ended without a result.{detail}")
        hint = f" {step.failureHint}" if step.failureHint else ""
        return RuntimeError(f"{self.title}: {step.message} — the process {_exitDescription(outcome.returnCode)}."
                            f"{hint}{detail}")

    # Cancel and wait --------------------------------------------------------------------------------------------

    def cancel(self):
        """Ask the job to stop: the child process tree is ended (SIGTERM, then SIGKILL after the grace period)."""
        if not self.done:
            self._addLog("Cancel requested")
            self._message = "Cancelling"
            self._cancelRequested.set()

    def _terminate(self, process):
        ProcessTree.killTree(process, getattr(signal, "SIGTERM", None))
        try:
            process.wait(timeout=self._gracePeriod)
        except subprocess.TimeoutExpired:
            ProcessTree.killTree(process, getattr(signal, "SIGKILL", None))

    def wait(self, timeout=None, progressCallback=None, cancelEvent=None):
        """Block until the job ends; then finalize in this thread and return its result, or raise its error.

        progressCallback(percent, message) is called from this thread; setting cancelEvent cancels the job.
        TimeoutError when timeout (seconds) passes first (the job keeps running). Ctrl-C in the waiting thread
        (KeyboardInterrupt, e.g. in the Python console) cancels the job, waits for its process tree to end and its
        cleanup to run, then re-raises: nothing keeps running and nothing is written.
        """
        try:
            self._waitForEnd(timeout, progressCallback, cancelEvent)
        except KeyboardInterrupt:
            self.cancel()
            self._finished.wait(self._gracePeriod + 10.0)
            self._runCleanup()
            raise
        if progressCallback is not None:
            progressCallback(self._progress, self._message)
        self._finish()
        if self._error is not None:
            raise self._error
        return self.result

    def _waitForEnd(self, timeout, progressCallback, cancelEvent):
        deadline = None if timeout is None else time.time() + timeout
        reported = None
        while not self._finished.wait(0.1):
            if cancelEvent is not None and cancelEvent.is_set():
                self.cancel()
            if progressCallback is not None and (self._progress, self._message) != reported:
                reported = (self._progress, self._message)
                progressCallback(*reported)
            if deadline is not None and time.time() > deadline:
                raise TimeoutError(f"{self.title} is still running")

    def _finish(self):
        with self._lock:
            if self._finalized:
                return
            self._finalized = True
        if self._error is None:
            try:
                if self._finalize is not None:
                    self.result = self._finalize(self)
            except Exception as error:  # noqa: BLE001 - the error is kept and re-raised by wait()
                self._error = error
                self._state = "failed"
            finally:
                self._runCleanup()

    def _runCleanup(self):
        cleanup, self._cleanup = self._cleanup, None
        if cleanup is not None:
            self._safely(cleanup)

    def _safely(self, function, *args):
        try:
            function(*args)
        except Exception as error:  # noqa: BLE001 - cleanup must never mask the job's own outcome
            LOG.warning("%s: %s", self.title, error)

