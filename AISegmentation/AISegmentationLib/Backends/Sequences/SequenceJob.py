"""A backend on every frame of a sequence, as one job with the interface of a backend job (the package's JobRunner.py):
``state``, ``done``, ``progress``, ``message``, ``takeLogLines()``, ``logLines()``, ``error``, ``messages``,
``cancel()``, ``wait(timeout, progressCallback, cancelEvent)``, ``seconds``; its ``result`` is (segmentation sequence
node, table node of the structures' volumes per frame) and ``browser`` the browser node that plays them.

Each frame runs as an ordinary backend job (its own child process, or a task on a Dask cluster). Everything that
touches the scene (a frame copied into a temporary volume node, its job started, which writes the frame's NIfTI, a
finished frame's segmentation imported into the output sequence) happens in :meth:`SequenceJob.advance`, on the thread
that made the job (the scene's: the panel's GUI thread, the console's, the command line's). Reading ``done`` or
``progress`` on that thread, and ``wait()``, advance it, so the panel polls a sequence like any other job. On this
computer one frame runs at a time; on a Dask cluster up to ``parallel`` frames at once (the scheduler spreads them over
its workers), imported in frame order. Cancel cancels the running frames (their process trees end, tasks still queued
are withdrawn) and starts no other. The segmentation sequence stays outside the scene until the last frame is in: a
cancelled or failed run leaves no node behind.
"""

import logging
import threading
import time

from ...JobRunner import JobCancelledError, JobLog

POLL_SECONDS = 0.1
CANCEL_WAIT_SECONDS = 60.0
ENDED = ("succeeded", "failed", "cancelled")


class _Frame:
    def __init__(self, number, value, job, volume):
        self.number, self.value, self.job, self.volume = number, value, job, volume


class SequenceJob:
    """See the module docstring."""

    def __init__(self, title, scene, frames, startFrame, frameVolumes, finish, outputName, indexName="frame",
                 indexType=None, parallel=1, openCluster=None, onFrame=None):
        """frames: [(index value, volume node)]; startFrame(volume node, cluster address or None) -> a started
        backend job; frameVolumes(segmentation, volume) -> {structure: mL}; finish(output sequence, rows) -> (table,
        browser) once every frame is in; openCluster() -> (address, close()) run in a thread first (a LocalCluster);
        onFrame(index value, segmentation, volume) is called for each frame before its nodes leave the scene."""
        self.title = title
        self.messages = []
        self.result = None
        self.browser = None
        self.seconds = None
        self.memoryEstimate = None
        self._scene, self._frames = scene, list(frames)
        self._startFrame, self._frameVolumes, self._finish, self._onFrame = startFrame, frameVolumes, finish, onFrame
        self._parallel = max(1, int(parallel))
        self._owner = threading.current_thread()
        self._state, self._error = "running", None
        self._next, self._running, self._rows = 0, [], []
        self._log = JobLog()
        self._progress, self._message = 0.0, "Waiting"
        self._cancelRequested = threading.Event()
        self._startTime = time.time()
        self._output = scene.CreateNodeByClass("vtkMRMLSequenceNode")  # joins the scene when complete
        self._output.UnRegister(None)  # CreateNodeByClass's reference: Python's is the one kept
        self._output.SetName(outputName)
        self._output.SetIndexName(indexName)
        if indexType is not None:
            self._output.SetIndexType(indexType)
        self._cluster, self._address, self._clusterError, self._closer = None, None, None, None
        self._opener = None
        if openCluster is not None:
            self._opener = threading.Thread(target=self._openCluster, args=(openCluster,), daemon=True,
                                            name=f"AISegmentation {title}: Dask cluster")
            self._message = "Starting a Dask cluster on this computer"
            self._opener.start()

    # The job interface -------------------------------------------------------------------------------------------

    @property
    def state(self):
        """running, succeeded, failed or cancelled."""
        self.advance()
        return self._state

    @property
    def done(self):
        self.advance()
        return self._state in ENDED

    @property
    def progress(self):
        self.advance()
        return self._progress

    @property
    def message(self):
        return self._message

    @property
    def error(self):
        return self._error if self._state in ENDED else None

    @property
    def pid(self):
        """Process ID of the first running frame's child on this computer, or None."""
        frames = self.runningFrames()
        return frames[0][1].pid if frames else None

    @property
    def rows(self):
        """[(index value, {structure: mL})] of the frames imported so far, in frame order."""
        return list(self._rows)

    def runningFrames(self):
        """[(index value, backend job)] of the frames started and not yet imported, in frame order."""
        return [(frame.value, frame.job) for frame in list(self._running)]

    def logLines(self):
        return self._log.lines()

    def takeLogLines(self):
        return self._log.take()

    def cancel(self):
        """Cancel the running frames and start no other (the end comes with the next advance)."""
        if self._state not in ENDED and not self._cancelRequested.is_set():
            self._addLog("Cancel requested")
            self._message = "Cancelling"
            self._cancelRequested.set()

    def wait(self, timeout=None, progressCallback=None, cancelEvent=None):
        """Advance until every frame is in (returns (segmentation sequence, table)) or the run ended otherwise (raises
        its error: JobCancelledError after Cancel). TimeoutError when timeout (seconds) passes first. Ctrl-C cancels
        the running frames, waits for their ends, and re-raises."""
        deadline = None if timeout is None else time.time() + timeout
        reported = None
        try:
            while True:
                if cancelEvent is not None and cancelEvent.is_set():
                    self.cancel()
                self.advance()
                if progressCallback is not None and (self._progress, self._message) != reported:
                    reported = (self._progress, self._message)
                    progressCallback(*reported)
                if self._state in ENDED:
                    break
                if deadline is not None and time.time() > deadline:
                    raise TimeoutError(f"{self.title} is still running")
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            self.cancel()
            end = time.time() + CANCEL_WAIT_SECONDS
            while self._state not in ENDED and time.time() < end:
                self.advance()
                time.sleep(POLL_SECONDS)
            self._joinCloser()
            raise
        self._joinCloser()
        if self._error is not None:
            raise self._error
        return self.result

    # Advancing (on the scene's thread) ---------------------------------------------------------------------------

    def advance(self):
        """Start, follow and import frames; a no-op on any other thread than the one that made the job."""
        if threading.current_thread() is not self._owner or self._state in ENDED:
            return
        try:
            self._advance()
        except BaseException as error:  # noqa: BLE001 - a failure of ours ends the run like a frame's failure
            self._error = self._error or error
            self._cancelRequested.set()
            try:
                self._stopRunning()
            except Exception:  # noqa: BLE001 - the first error is the one reported
                self._end("failed")
            if not isinstance(error, Exception):
                raise  # KeyboardInterrupt, SystemExit: wait() and the caller handle them

    def _advance(self):
        if self._opener is not None and self._opener.is_alive():
            if self._cancelRequested.is_set():
                self._message = "Cancelling (the Dask cluster is still starting)"
            return
        if self._clusterError is not None and self._error is None:
            self._error = self._clusterError
        self._takeFrameLogs()
        if self._error is None and not self._cancelRequested.is_set():
            self._importFinished()
        if self._error is not None or self._cancelRequested.is_set():
            self._stopRunning()
            return
        while sum(not frame.job.done for frame in self._running) < self._parallel and self._next < len(self._frames):
            self._startNext()
            if self._error is not None:
                return self._advance()
        if not self._running and self._next == len(self._frames):
            self._complete()
            return
        self._showProgress()

    def _startNext(self):
        number, (value, frame) = self._next, self._frames[self._next]
        self._next += 1
        volume = self._scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", f"frame {value}")
        try:
            volume.Copy(frame)
            volume.SetName(f"{self.title} frame {value}")
            volume.SetHideFromEditors(True)
            job = self._startFrame(volume, self._address)
        except Exception as error:  # noqa: BLE001 - e.g. a frame that cannot be written
            self._scene.RemoveNode(volume)
            self._error = error
            return
        self.messages.extend(message for message in job.messages if message not in self.messages)
        self._running.append(_Frame(number, value, job, volume))

    def _importFinished(self):
        """The finished frames at the head of the queue (frame order), into the output sequence."""
        while self._running and self._running[0].job.done:
            frame = self._running.pop(0)
            segmentation = None
            try:
                segmentation = frame.job.wait()
                self._rows.append((frame.value, self._frameVolumes(segmentation, frame.volume)))
                if self._onFrame is not None:
                    self._onFrame(frame.value, segmentation, frame.volume)
                self._output.SetDataNodeAtValue(segmentation, frame.value)
                self._addLog(f"Frame {frame.value} ({frame.number + 1}/{len(self._frames)}) done")
            except Exception as error:  # noqa: BLE001 - the run ends with the frame's error (JobCancelledError too)
                self._error = _frameError(error, frame.value)
                return
            finally:
                for node in (segmentation, frame.volume):
                    if node is not None and node.GetScene() is self._scene:
                        self._scene.RemoveNode(node)

    def _stopRunning(self):
        """Cancel the running frames; once all ended, clean them up and end the run (failed or cancelled)."""
        for frame in self._running:
            frame.job.cancel()
        if any(not frame.job.done for frame in self._running):
            self._message = "Cancelling"
            return
        for frame in self._running:
            try:
                frame.job.wait()  # runs its cleanup; a frame that ended anyway is dropped too
            except Exception:  # noqa: BLE001 - cancelled or failed: nothing of it is kept
                pass
            result = frame.job.result
            for node in (result, frame.volume):
                if node is not None and hasattr(node, "GetScene") and node.GetScene() is self._scene:
                    self._scene.RemoveNode(node)
        self._running = []
        if self._error is None:
            done = len(self._rows)
            self._error = JobCancelledError(f"{self.title} was cancelled ({done} of {len(self._frames)} frames done; "
                                            "nothing was kept)")
        self._end("failed" if not isinstance(self._error, JobCancelledError) else "cancelled")

    def _complete(self):
        try:
            self._scene.AddNode(self._output)
            table, self.browser = self._finish(self._output, self._rows)
        except Exception as error:  # noqa: BLE001 - nothing half made stays
            if self._output.GetScene() is self._scene:
                self._scene.RemoveNode(self._output)
            self._error = error
            self._end("failed")
            return
        self.result = (self._output, table)
        self._progress, self._message = 100.0, f"{len(self._frames)} frames segmented"
        self._end("succeeded")

    def _end(self, state):
        self.seconds = round(time.time() - self._startTime, 1)
        if state != "succeeded":
            self._message = "Cancelled" if state == "cancelled" else f"Failed: {self._error}"
            self._output = None
        self._state = state
        self._addLog(f"{self.title}: {state} after {self.seconds} s")
        if self._cluster is not None:
            self._closer = threading.Thread(target=self._closeCluster, daemon=True,
                                            name=f"AISegmentation {self.title}: closing the Dask cluster")
            self._closer.start()

    # Progress and log ---------------------------------------------------------------------------------------------

    def _showProgress(self):
        count = len(self._frames)
        running = sum(frame.job.progress for frame in self._running)
        self._progress = max(self._progress, min(100.0, 100.0 * (len(self._rows) + running / 100.0) / count))
        if self._running:
            first = self._running[0]
            others = f" (+{len(self._running) - 1} more running)" if len(self._running) > 1 else ""
            self._message = f"Frame {first.value} ({first.number + 1}/{count}){others}: {first.job.message}"

    def _takeFrameLogs(self):
        for frame in self._running:
            for line in frame.job.takeLogLines():
                self._addLog(f"[frame {frame.value}] {line}")

    def _addLog(self, line):
        self._log.add(line)
        logging.debug("%s: %s", self.title, line)

    # A LocalCluster of our own ------------------------------------------------------------------------------------

    def _openCluster(self, openCluster):
        try:
            self._address, close = openCluster()
            self._cluster = close
            self._addLog(f"Frames run on the Dask cluster at {self._address}")
        except Exception as error:  # noqa: BLE001 - reported as the run's error
            self._clusterError = ValueError(f"Could not start a Dask cluster on this computer: {error}")

    def _closeCluster(self):
        try:
            self._cluster()
        except Exception as error:  # noqa: BLE001 - the run's outcome stands
            logging.warning("Closing the Dask cluster of %s: %s", self.title, error)

    def _joinCloser(self):
        if self._closer is not None:
            self._closer.join(timeout=CANCEL_WAIT_SECONDS)


def _frameError(error, value):
    """The frame's error, naming the frame (a cancel stays a JobCancelledError)."""
    if isinstance(error, JobCancelledError):
        return error
    if isinstance(error, (ValueError, RuntimeError)):
        return type(error)(f"Frame {value}: {error}")
    return error
