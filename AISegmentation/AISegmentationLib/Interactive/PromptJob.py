"""One nnInteractive prompt as a job: the server exchange on a worker thread, the write on the caller's thread.

The panel starts it and polls it with a timer, as it does the AI runs, so the GUI never waits on the network. The
scene is read before the job starts (InteractiveSession.preparePrompt) and written only by job.wait() on the thread
that calls it (finishPrompt); while the job runs, the segment editor refuses other writes (SegmentEditor.exclusive),
so nothing changes the target segment under the server's feet. A cancelled or failed prompt writes nothing.
"""

from ..JobRunner import BackgroundJob


class PromptJob(BackgroundJob):
    """job.done / progress / message / cancel() / wait() as the AI jobs; wait() returns the PromptResult."""

    def __init__(self, session, prepared, interaction, label, send, segmentEditor):
        super().__init__(f"nnInteractive {prepared.kind} prompt", [], finalize=self._write, cleanup=self._forget)
        self._session, self._prepared, self._send = session, prepared, send
        self._interaction, self._label = interaction, label
        self._segmentEditor = segmentEditor
        segmentEditor.beginExclusive(self.title)

    def _run(self):
        self._setProgress(5.0, f"Waiting for the nnInteractive server ({self._prepared.kind} prompt)")
        try:
            self._session.requireInteraction(self._interaction, self._label)
            self.childResult = self._session.exchangePrompt(self._prepared, self._send)
        except Exception as error:  # noqa: BLE001 - raised again, as it is, by wait()
            self._error = error

    def _write(self, job):
        self._segmentEditor.endExclusive()
        return self._session.finishPrompt(self._prepared, self.childResult)

    def _forget(self):
        """After the job (the cleanup runs in every case): when it failed or was cancelled, the server may hold a
        prompt that the segment does not, so the next prompt sends the segment again."""
        self._segmentEditor.endExclusive()
        if self.error is not None or self.state != "succeeded":
            self._session.forgetSegment()
