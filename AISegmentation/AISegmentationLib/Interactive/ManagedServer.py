"""The nnInteractive server that AISegmentation starts on this computer ("Start local server"); no Qt, no slicer.

:class:`ManagedServer` starts the current ``nninteractive-server`` (ServeLocal.py) in its isolated environment
(ServerEnvironment.py) with a model folder (ServerModels.py):
- on 127.0.0.1 only, on a free port (or the one asked for: ValueError when it is taken), with a random API key that
  lives in this object's memory and the server's environment only: never on a command line, in the scene or a log;
- on the best device (``auto``: CUDA, MPS, else the CPU with a word about speed; or ``cpu``, ``cuda``, ``cuda:N``,
  ``mps``);
- ready once ``/healthz`` answers, the key is accepted, and the server's nnInteractive version fits this client's
  (:func:`checkVersions`, before any prompt);
- its whole process tree ends with :meth:`stop`, when Python exits, and when the starting process is killed (the
  server watches it: ProcessTree.py).
"""

import importlib.metadata
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from .. import ProcessTree
from ..Backends.Environments.Environments import childEnvironment
from .Connection import ServerSettings
from .Errors import InteractiveError
from .Protocol import probeServer
from .ServerModels import modelFold

LOG = logging.getLogger("AISegmentation.Interactive")
SERVE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ServeLocal.py")
HOST = "127.0.0.1"
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
ADDRESS_IN_USE = re.compile(r"address already in use|only one usage of each socket address|errno 98|errno 48",
                            re.IGNORECASE)
STARTING, RUNNING, STOPPED, FAILED = "starting", "running", "stopped", "failed"
NEW_KEY = object()  # ManagedServer's default: a fresh random API key


def requireDevice(device):
    text = str(device or "").strip().lower()
    if not DEVICE_PATTERN.match(text):
        raise ValueError(f"Unknown device '{device}': choose auto, cpu, cuda, cuda:N (e.g. cuda:1) or mps")
    return text


def freePort():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def requirePortFree(port):
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"Port {port!r} is not a port number (1-65535)")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            raise ValueError(f"Port {port} on {HOST} is in use by another program: choose another port, or leave the "
                             f"port empty to use a free one") from None
    return port


def clientVersion():
    try:
        return importlib.metadata.version("nninteractive-client")
    except importlib.metadata.PackageNotFoundError:
        return None


def _majorMinor(version):
    parts = re.findall(r"\d+", str(version or ""))
    return tuple(int(part) for part in parts[:2]) if len(parts) >= 2 else None


def checkVersions(client, server):
    """ValueError unless this client (nninteractive-client) and the server (nnInteractive) share major.minor, the
    versions whose wire protocol is the same; None (unknown) on either side is accepted with a log line."""
    if client is None or server is None:
        LOG.info("nnInteractive versions not compared (client %s, server %s)", client, server)
        return
    if _majorMinor(client) != _majorMinor(server):
        raise ValueError(f"This AISegmentation's nnInteractive client is version {client} but the server runs "
                         f"nnInteractive {server}: they must share the first two version numbers. Repair the server "
                         f"environment (it is then installed from AISegmentation's pinned requirements) or update "
                         f"the client (Resources/requirements.txt).")


class ManagedServer:
    """One nnInteractive server process started by this process; see the module docstring."""

    def __init__(self, python, modelDir, device="auto", port=None, apiKey=NEW_KEY, threads=None, readyTimeout=300.0,
                 torchCompile=False, logPath=None):
        """apiKey: NEW_KEY (a random one), a key, or None (no authentication: only for tests). logPath: keep the
        server's log there (default: a private temporary folder removed by stop())."""
        self.device = requireDevice(device)
        self.fold = modelFold(modelDir)
        self.modelDir = os.path.abspath(os.fspath(modelDir))
        if not python or not os.path.isfile(python):
            raise ValueError(f"The server environment's Python '{python}' does not exist")
        self.python = python
        self.requestedPort = None if port in (None, 0, "") else requirePortFree(port)
        self.__apiKey = secrets.token_urlsafe(32) if apiKey is NEW_KEY else (apiKey or None)
        self.threads = threads
        self.readyTimeout = float(readyTimeout)
        self.torchCompile = bool(torchCompile)
        self.state = STOPPED
        self.error = None
        self.info = {}
        self.serverVersion = None
        self.port = None
        self.process = None
        self.startSeconds = None
        self._runDir = None
        self._keptLog = os.path.abspath(logPath) if logPath else None
        self._lock = threading.Lock()

    # What the caller needs -----------------------------------------------------------------------------------------

    @property
    def url(self):
        return f"http://{HOST}:{self.port}" if self.port else None

    @property
    def apiKey(self):
        return self.__apiKey

    def settings(self, **timeouts):
        return ServerSettings(self.url, self.__apiKey, protocol="current", **timeouts)

    def __repr__(self):
        return f"ManagedServer({self.url!r}, state={self.state!r}, device={self.info.get('device', self.device)!r})"

    # Start ---------------------------------------------------------------------------------------------------------

    def launch(self):
        """Start the process (in the calling thread); waitReady() completes the start."""
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                raise ValueError(f"The local nnInteractive server is running already at {self.url}")
            self.port = self.requestedPort or freePort()
            self._runDir = tempfile.mkdtemp(prefix="aisegmentation-nninteractive-")
            os.chmod(self._runDir, 0o700)
            command = [self.python, SERVE_SCRIPT, "--model-dir", self.modelDir, "--fold", self.fold, "--device",
                       self.device, "--port", str(self.port), "--info-file", self._infoPath]
            if self.threads:
                command += ["--threads", str(int(self.threads))]
            if self.torchCompile:
                command.append("--torch-compile")
            extra = {ProcessTree.PARENT_PID_VARIABLE: str(os.getpid()), "NN_INTERACTIVE_API_KEY": self.__apiKey or ""}
            env = childEnvironment(True, extra, python=self.python)
            if not self.__apiKey:
                env.pop("NN_INTERACTIVE_API_KEY")
            self.state, self.error, self.info, self.startSeconds = STARTING, None, {}, None
            self._started = time.perf_counter()
            with open(self.logPath, "wb") as log:
                self.process = ProcessTree.startTree(
                    command, deathSignal=threading.current_thread() is threading.main_thread(),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
            LOG.info("Starting the local nnInteractive server on %s (device %s, model %s)", self.url, self.device,
                     self.modelDir)
        return self

    @property
    def logPath(self):
        if self._keptLog:
            return self._keptLog
        return os.path.join(self._runDir, "server.log") if self._runDir else None

    @property
    def _infoPath(self):
        return os.path.join(self._runDir, "device.json")

    def waitReady(self, cancelEvent=None, progressCallback=None):
        """Wait until the server answers with its key and a version that fits; RuntimeError / ValueError otherwise
        (the server is stopped then). A port taken meanwhile by another program: started once more on another."""
        try:
            self._waitHealthy(cancelEvent, progressCallback)
        except RuntimeError as error:
            if self.requestedPort is None and ADDRESS_IN_USE.search(self.logTail()):
                LOG.info("Port %s was taken meanwhile; starting on another port", self.port)
                self.stop()
                self.launch()
                self._waitHealthy(cancelEvent, progressCallback)
            else:
                raise error
        try:
            info = probeServer(self.settings(readTimeout=30.0))
            self.serverVersion = info.details.get("inference_session_version")
            checkVersions(clientVersion(), self.serverVersion)
        except (ValueError, InteractiveError) as error:
            self._fail(error)
            raise
        self.info = self._readInfo()
        self.startSeconds = time.perf_counter() - self._started
        self.state = RUNNING
        LOG.info("Local nnInteractive server ready at %s after %.1f s on %s", self.url, self.startSeconds,
                 self.info.get("description", "?"))
        return self

    def start(self, cancelEvent=None, progressCallback=None):
        return self.launch().waitReady(cancelEvent, progressCallback)

    def _waitHealthy(self, cancelEvent, progressCallback):
        import requests

        deadline = time.monotonic() + self.readyTimeout
        while True:
            if self.process.poll() is not None:
                self._fail(RuntimeError(f"The local nnInteractive server ended while starting "
                                        f"({_exitText(self.process.returncode)}). Its log ends with:\n"
                                        f"{self.logTail()}"))
                raise self.error
            if cancelEvent is not None and cancelEvent.is_set():
                self._fail(RuntimeError("Starting the local nnInteractive server was cancelled"))
                raise self.error
            if time.monotonic() > deadline:
                self._fail(RuntimeError(f"The local nnInteractive server did not answer within "
                                        f"{self.readyTimeout:.0f} s. Its log ends with:\n{self.logTail()}"))
                raise self.error
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.exceptions.RequestException:
                pass
            if progressCallback is not None:
                progressCallback(self._readInfo().get("description") or "Loading the model")
            time.sleep(0.25)

    def _readInfo(self):
        try:
            with open(self._infoPath, encoding="utf-8") as file:
                return json.load(file)
        except (OSError, ValueError, TypeError):
            return {}

    def _fail(self, error):
        tail = self.logTail()
        self.stop()
        self.state, self.error = FAILED, error
        self._failedLog = tail

    def logTail(self, characters=3000):
        if self.logPath is None or not os.path.isfile(self.logPath):
            return getattr(self, "_failedLog", "")
        with open(self.logPath, encoding="utf-8", errors="replace") as file:
            return file.read()[-characters:]

    # Status and stop -----------------------------------------------------------------------------------------------

    def healthy(self, timeout=2.0):
        import requests

        if self.process is None or self.process.poll() is not None:
            return False
        try:
            return requests.get(self.url + "/healthz", timeout=timeout).status_code == 200
        except requests.exceptions.RequestException:
            return False

    def status(self):
        """{"state", "url", "device", "description", "pid", "healthy", "version", "startSeconds", "message"}."""
        if self.state in (RUNNING, STARTING) and (self.process is None or self.process.poll() is not None):
            self.state, self.error = FAILED, RuntimeError(
                f"The local nnInteractive server ended ({_exitText(self.process.returncode)})")
        healthy = self.state == RUNNING and self.healthy()
        if self.state == RUNNING:
            message = (f"Running at {self.url} on {self.info.get('description', self.info.get('device', '?'))}"
                       + ("" if healthy else " — it does not answer its health check"))
        elif self.state == STARTING:
            message = f"Starting at {self.url}"
        elif self.state == FAILED:
            message = f"Failed: {self.error}"
        else:
            message = "Not running"
        return {"state": self.state, "url": self.url if self.state != STOPPED else None,
                "device": self.info.get("device"), "description": self.info.get("description"),
                "pid": self.process.pid if self.state in (RUNNING, STARTING) else None, "healthy": healthy,
                "version": self.serverVersion, "startSeconds": self.startSeconds, "message": message}

    def stop(self, gracePeriod=5.0):
        """End the server's whole process tree (SIGTERM, then SIGKILL); idempotent."""
        process = self.process
        if process is not None:
            if process.poll() is None:
                ProcessTree.killTree(process, getattr(signal, "SIGTERM", None))
                try:
                    process.wait(gracePeriod)
                except subprocess.TimeoutExpired:
                    pass
            ProcessTree.killTree(process, getattr(signal, "SIGKILL", None))
            process.wait()
            ProcessTree.forget(process)
        if self._runDir:
            shutil.rmtree(self._runDir, ignore_errors=True)
            self._runDir = None
        if self.state != FAILED:
            self.state = STOPPED
        return self


def _exitText(code):
    if code is not None and code < 0:
        return f"signal {-code}"
    return f"exit code {code}"
