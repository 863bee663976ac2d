"""The panel's one running job (an AI run, an environment installation, a training step, the local nnInteractive
server's set-up), polled on the GUI thread: progress, log lines, its buttons disabled meanwhile."""

import slicer
from slicer.i18n import tr as _


class JobPoller:
    """Polls one job at a time with a timer; the result is written (job.wait()) on the GUI thread when it has ended
    and no other writer (a comparison, a prompt) is busy."""

    def __init__(self, logic, defaultView, afterJob=None):
        """defaultView(): (progress bar, log, buttons disabled meanwhile); afterJob(): run after every job, also after
        a failure (e.g. refreshing an environment's status)."""
        import qt

        self.logic = logic
        self._defaultView = defaultView
        self._afterJob = afterJob
        self._job = None
        self._onFinished = None
        self._view = None
        self._timer = qt.QTimer()
        self._timer.setInterval(200)
        self._timer.connect("timeout()", self._poll)

    @property
    def running(self):
        return self._job is not None and not self._job.done

    def requireNoJob(self):
        if self.running:
            raise ValueError(_("A job is already running: wait for it or cancel it."))

    def start(self, job, onFinished, view=None):
        """Poll `job`; view: (progress bar, log, buttons disabled meanwhile), the default view (the AI section's)
        unless given (the Train section passes its own)."""
        self._job, self._onFinished = job, onFinished
        self._view = view or self._defaultView()
        progressBar, log, buttons = self._view
        log.clear()
        progressBar.setValue(0)
        for button in buttons:
            button.enabled = False
        for message in job.messages:  # pre-flight warnings (memory)
            log.appendPlainText(_("Warning: {message}").format(message=message))
        self._timer.start()

    def cancel(self):
        if self._job is not None:
            self._job.cancel()

    def stop(self):
        """Module cleanup: stop polling and cancel a job still running."""
        self._timer.stop()
        if self.running:
            self._job.cancel()

    def _poll(self):
        job = self._job
        if job is None:
            self._timer.stop()
            return
        progressBar, log, buttons = self._view
        progressBar.setValue(int(job.progress))
        progressBar.setFormat(f"{job.message} (%p%)")
        for line in job.takeLogLines():
            log.appendPlainText(line)
        if not job.done or self.logic.segmentEditor.busyWith:
            return  # (a comparison or a prompt running: its result is written when it has ended)
        self._timer.stop()
        self._job = None
        for button in buttons:
            button.enabled = True
        try:
            with slicer.util.tryWithErrorDisplay(_("AI job failed."), waitCursor=True):
                result = job.wait()  # writes the result (or raises the job's error) here, on the GUI thread
                self._onFinished(result)
        finally:  # tryWithErrorDisplay re-raises: the status must be refreshed after a failure too
            if self._afterJob is not None:
                self._afterJob()
