"""Real nnInteractive servers on 127.0.0.1 for the tests: environments, the tiny model, start and stop.

The first use creates the two server environments (DevTools/start_nninteractive_server.py ensure-env; the legacy one
is several GB and starts installing in the background at once) and the tiny model (DevTools/build_tiny_nninteractive.py
in the current server's environment). The current generation is the product's own managed server
(AISegmentationLib/Interactive/ManagedServer.py, its environment under $AISEGMENTATION_ENVIRONMENTS_DIR), here on the
CPU and, unless a key is given, without authentication. Caches: $AISEGMENTATION_ENVIRONMENTS_DIR,
$AISEGMENTATION_INTERACTIVE_ENVS_DIR (legacy) and $AISEGMENTATION_TINY_MODELS_DIR, by default under build/.
Set AISEGMENTATION_SKIP_INTERACTIVE_SERVERS=1 to skip the tests that need them (e.g. offline); CI does not set it.
"""

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

DEVTOOLS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(DEVTOOLS_DIR)
LAUNCHER = os.path.join(DEVTOOLS_DIR, "start_nninteractive_server.py")
BUILDER = os.path.join(DEVTOOLS_DIR, "build_tiny_nninteractive.py")
LOG_DIR = os.path.join(REPO_ROOT, "build", "interactive-logs")
GENERATIONS = ("current", "legacy")
READY_TIMEOUT = 300.0

_environments = {}
_lock = threading.Lock()


def skipWithoutServers():
    if os.environ.get("AISEGMENTATION_SKIP_INTERACTIVE_SERVERS") == "1":
        pytest.skip("AISEGMENTATION_SKIP_INTERACTIVE_SERVERS=1: real nnInteractive server tests skipped")


class EnvironmentBuild:
    """One ensure-env run of the launcher in the background; result() waits and returns the env's python."""

    def __init__(self, generation):
        os.makedirs(LOG_DIR, exist_ok=True)
        self.generation = generation
        self.logPath = os.path.join(LOG_DIR, f"env-{generation}-{os.getpid()}.log")
        self.started = time.time()
        self._log = open(self.logPath, "w", encoding="utf-8")
        self._process = subprocess.Popen([sys.executable, LAUNCHER, "ensure-env", "--generation", generation],
                                         stdout=subprocess.PIPE, stderr=self._log, text=True)
        self._python = None

    def result(self):
        if self._python is None:
            output, _ = self._process.communicate()
            self._log.close()
            if self._process.returncode != 0:
                raise RuntimeError(f"Creating the {self.generation} nnInteractive server environment failed; see "
                                   f"{self.logPath}:\n{_tail(self.logPath)}")
            self._python = output.strip().splitlines()[-1]
            logging.info("%s server environment ready after %.0f s", self.generation, time.time() - self.started)
        return self._python


def environment(generation):
    """The python of a server environment (creating it on first use; the legacy one starts with the first call)."""
    with _lock:
        for name in GENERATIONS:  # start both at once: the legacy download overlaps the current env and training
            if name not in _environments:
                _environments[name] = EnvironmentBuild(name)
        build = _environments[generation]
    return build.result()


def tinyModel():
    """Folder of the tiny nnInteractive model, built once with the current server's environment."""
    python = environment("current")
    logPath = os.path.join(LOG_DIR, f"tiny-model-{os.getpid()}.log")
    with open(logPath, "w", encoding="utf-8") as log:
        completed = subprocess.run([python, BUILDER], stdout=subprocess.PIPE, stderr=log, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"Building the tiny nnInteractive model failed; see {logPath}:\n{_tail(logPath)}")
    return completed.stdout.strip().splitlines()[-1]


def freePort():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """A real nnInteractive server of one generation on 127.0.0.1, in its own process group."""

    def __init__(self, generation, modelDir, apiKey=None, extraArguments=(), port=None):
        self.generation = generation
        self.port = port or freePort()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logPath = os.path.join(LOG_DIR, f"server-{generation}-{self.port}.log")
        self._managed = None
        if generation == "current":
            self._startManaged(modelDir, apiKey, extraArguments)
            return
        environmentVariables = dict(os.environ)
        environmentVariables.pop("NN_INTERACTIVE_API_KEY", None)
        if apiKey:
            environmentVariables["NN_INTERACTIVE_API_KEY"] = apiKey
        command = [environment(generation), LAUNCHER, "serve", "--generation", generation, "--model-dir", modelDir,
                   "--port", str(self.port)]
        if extraArguments:
            command += ["--"] + list(extraArguments)
        self._log = open(self.logPath, "w", encoding="utf-8")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=environmentVariables,
                                        start_new_session=True)
        self.waitReady()

    def _startManaged(self, modelDir, apiKey, extraArguments):
        from AISegmentationLib.Interactive.ManagedServer import ManagedServer

        if extraArguments:
            raise ValueError("The current server is the managed one: it takes no extra server arguments")
        os.makedirs(LOG_DIR, exist_ok=True)
        self._managed = ManagedServer(environment("current"), modelDir, "cpu", self.port, apiKey=apiKey or None,
                                      readyTimeout=READY_TIMEOUT, logPath=self.logPath)
        self._managed.start()
        self.process = self._managed.process

    def waitReady(self, timeout=READY_TIMEOUT):
        import requests

        path = "/healthz" if self.generation == "current" else "/openapi.json"
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"The {self.generation} server exited with {self.process.returncode}:\n"
                                   f"{_tail(self.logPath)}")
            try:
                if requests.get(self.url + path, timeout=2).status_code == 200:
                    return
            except requests.exceptions.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"The {self.generation} server did not start within {timeout:.0f} s:\n"
                           f"{_tail(self.logPath)}")

    def kill(self):
        """Stop the server abruptly (SIGKILL), as a crash would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self):
        if self._managed is not None:
            self._managed.stop()
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def log(self):
        return _tail(self.logPath, 200000)


def _tail(path, characters=4000):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()[-characters:]
    except OSError:
        return "(no log)"
