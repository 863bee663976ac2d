"""Child side of the job protocol: JSON lines from the backend process to AISegmentation.

Runs in the backend's Python (the current one or an isolated environment): standard library only, never slicer.
The process's original standard output becomes a private channel that carries one JSON object per line::

    {"type": "progress", "percent": 42.0, "message": "Predicting"}
    {"type": "log", "message": "..."}
    {"type": "result", ...}            # once, on success
    {"type": "error", "kind": "ValueError" | "RuntimeError" | "MemoryError", "message": "..."}

Everything else that the process or its libraries print (print(), tqdm, worker processes) goes to standard error,
which the caller shows as the log. tqdm's "NN%|" updates there are turned into progress within the current stage.
"""

import importlib.metadata
import io
import json
import os
import re
import socket
import sys
import threading

TQDM_PERCENT = re.compile(r"(\d{1,3})%\|")


class UserError(ValueError):
    """A problem the user can fix (bad option, missing weights, missing license): reported without a traceback."""


class Channel:
    """The private message pipe (the original stdout) plus the current progress stage."""

    def __init__(self):
        sys.stdout.flush()
        self._stream = io.TextIOWrapper(os.fdopen(os.dup(1), "wb"), encoding="utf-8", line_buffering=True)
        os.dup2(2, 1)  # from now on fd 1 (print, C libraries, worker processes) writes to stderr
        sys.stdout = sys.stderr
        self._lock = threading.Lock()
        self._stage = (0.0, 100.0, "")
        self._lastPercent = -1.0

    def send(self, messageType, **fields):
        line = json.dumps({"type": messageType, **fields}, default=str)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def stage(self, start, end, message):
        """Enter a stage covering [start, end] percent of the job; tqdm bars now fill this range."""
        self._stage = (float(start), float(end), message)
        self.progress(start, message)

    def progress(self, percent, message=None):
        percent = round(float(percent), 1)
        if percent != self._lastPercent or message:
            self._lastPercent = percent
            self.send("progress", percent=percent, message=message or self._stage[2])

    def stageFraction(self, fraction):
        start, end, message = self._stage
        self.progress(start + (end - start) * min(max(fraction, 0.0), 1.0), message)

    def log(self, message):
        self.send("log", message=str(message))

    def warning(self, message):
        self.send("warning", message=str(message))

    def result(self, **fields):
        self.send("result", **fields)

    def error(self, kind, message, details=None):
        self.send("error", kind=kind, message=str(message), details=details)


class _ProgressWatcher(io.TextIOBase):
    """A text stream that passes everything to the real stderr and reports tqdm percentages to the channel."""

    def __init__(self, target, channel, onLine=None):
        self._target = target
        self._channel = channel
        self._onLine = onLine

    def write(self, text):
        self._target.write(text)
        for match in TQDM_PERCENT.finditer(text):
            self._channel.stageFraction(int(match.group(1)) / 100.0)
        if self._onLine is not None:
            for line in re.split(r"[\r\n]+", text):
                if line.strip():
                    self._onLine(line.strip())
        return len(text)

    def flush(self):
        self._target.flush()

    def isatty(self):
        return False

    @property
    def encoding(self):
        return getattr(self._target, "encoding", "utf-8")

    def fileno(self):
        return self._target.fileno()


def watchOutput(channel, onLine=None):
    """Route Python-level stdout/stderr through a watcher (tqdm -> progress; onLine(line) sees every line)."""
    realStderr = sys.__stderr__
    watcher = _ProgressWatcher(realStderr, channel, onLine)
    sys.stdout = watcher
    sys.stderr = watcher
    return watcher


def readJson(path):
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def writeJson(path, value):
    with open(path, "w", encoding="utf-8") as file:
        json.dump(value, file, indent=1)


def downloadBlockedReason(options, host):
    """None when the backend may download what it is missing (options "allowDownload" and not "offline", and host,
    a (name, port) pair, answers within 5 s); otherwise why not, for the user's message."""
    if not options["allowDownload"]:
        return "downloads are switched off"
    if options["offline"]:
        return "there is no network connection"
    try:
        socket.create_connection(host, timeout=5).close()
    except OSError:
        return "there is no network connection"
    return None


def packageVersion(distribution):
    """Installed version of a distribution in this environment, or None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
