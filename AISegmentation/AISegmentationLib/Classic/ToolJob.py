"""A classic tool that runs as a job (ClassicTool.job): compute on a worker thread with progress and cancel, the write
on the thread that calls job.wait() (the GUI thread in the panel, which polls it as it polls the AI runs)."""

from ..JobRunner import BackgroundJob


class ClassicToolJob(BackgroundJob):
    """job.done / progress / message / takeLogLines() / cancel() / wait() as the AI jobs; wait() writes the result
    (tool.write) and returns it, or raises the computation's error (JobCancelledError when cancelled)."""

    def __init__(self, tool, inputs, options):
        super().__init__(tool.title, [], finalize=self._write)
        self._tool, self._options = tool, options
        inputs.progress = self._setProgress
        inputs.cancelled = self._cancelRequested.is_set
        self._inputs = inputs

    def _run(self):
        self._setProgress(0.0, f"{self._tool.title}: starting")
        try:
            self.childResult = self._tool.compute(self._inputs, **self._options)
        except Exception as error:  # noqa: BLE001 - raised again, as it is, by wait()
            self._error = error

    def _write(self, job):
        return self._tool.write(self._inputs, self.childResult)
