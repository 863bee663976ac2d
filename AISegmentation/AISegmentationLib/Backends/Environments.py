"""Isolated Python environments, one per backend, that AISegmentation creates, owns and reports on.

Each environment is a virtual environment in ``<root>/<name>/`` with the backend's pinned requirements
(``Resources/Backends/<name>-requirements.txt``), so nothing a backend installs can touch Slicer's own Python or
another backend. ``<root>`` is ``$AISEGMENTATION_ENVIRONMENTS_DIR`` or ``<user data folder>/AISegmentation/
environments``. Nothing is installed at import time: only :meth:`EnvironmentManager.startJob` installs, and the
GUI calls it only after the user agrees.

States: ``missing`` (not created), ``installing`` (an installation is running), ``ready`` (installed from the current
requirements and its probe imported the backend), ``broken`` (failed or interrupted installation, changed
requirements, or its Python is gone; repair by creating it again).
"""

import hashlib
import json
import os
import shutil
import sys
import time

from .JobRunner import BackgroundJob, ProcessStep

ENVIRONMENTS_VARIABLE = "AISEGMENTATION_ENVIRONMENTS_DIR"
BASE_PYTHON_VARIABLE = "AISEGMENTATION_BASE_PYTHON"
THREADS_VARIABLE = "AISEGMENTATION_BACKEND_THREADS"  # compute threads of a backend process (default: all cores)
STATE_FILE = "aisegmentation-environment.json"
PROBE_FILE = "aisegmentation-probe.json"
BACKENDS_DIR = os.path.dirname(os.path.abspath(__file__))
WORKER_SCRIPT = os.path.join(BACKENDS_DIR, "ChildWorker.py")
REQUIREMENTS_DIR = os.path.join(os.path.dirname(os.path.dirname(BACKENDS_DIR)), "Resources", "Backends")
MISSING, INSTALLING, READY, BROKEN = "missing", "installing", "ready", "broken"
# Variables that would make an isolated environment's Python see another installation's packages.
LEAKING_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONEXECUTABLE")


def userDataDir():
    """The per-user data folder of AISegmentation (platform convention)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Local")
    elif sys.platform == "darwin":
        base = os.path.join(os.path.expanduser("~"), "Library", "Application Support")
    else:
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "AISegmentation")


def environmentsRoot():
    return os.environ.get(ENVIRONMENTS_VARIABLE) or os.path.join(userDataDir(), "environments")


def environmentNames():
    """Names of the environments AISegmentation knows how to create (one requirements file each)."""
    suffix = "-requirements.txt"
    return sorted(name[: -len(suffix)] for name in os.listdir(REQUIREMENTS_DIR) if name.endswith(suffix))


def requirementsFile(name):
    path = os.path.join(REQUIREMENTS_DIR, f"{name}-requirements.txt")
    if not os.path.isfile(path):
        raise ValueError(f"Unknown backend environment '{name}'; known: {', '.join(environmentNames())}")
    return path


def currentPython():
    """The Python of this process as a command (inside desktop Slicer: its PythonSlicer launcher)."""
    if hasattr(sys.modules.get("slicer"), "app"):
        return shutil.which("PythonSlicer") or sys.executable
    return sys.executable


def basePython():
    """Python used to create environments: $AISEGMENTATION_BASE_PYTHON or the current one."""
    return os.environ.get(BASE_PYTHON_VARIABLE) or currentPython()


def childEnvironment(isolated, extra=None):
    """Environment variables for a backend child process (isolated: without variables that leak packages in)."""
    env = dict(os.environ)
    if isolated:
        for name in LEAKING_VARIABLES:
            env.pop(name, None)
        env["PYTHONNOUSERSITE"] = "1"
    env.update({"PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"})
    if os.environ.get(THREADS_VARIABLE):
        env.update({name: os.environ[THREADS_VARIABLE] for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    env.update(extra or {})
    return env


def _sha256(path):
    """SHA256 of a requirements file together with the files it includes with -r."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        content = file.read()
    digest.update(content)
    for line in content.decode("utf-8").splitlines():
        if line.startswith("-r "):
            digest.update(_sha256(os.path.join(os.path.dirname(path), line[3:].strip())).encode())
    return digest.hexdigest()


def _processAlive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


class _PipProgress:
    """A rough fraction of a pip install from its log lines (pip does not announce its total)."""

    def __init__(self):
        self.collected = 0

    def __call__(self, line):
        if line.startswith("Collecting ") or line.startswith("Processing "):
            self.collected += 1
            return min(0.6, 0.01 * self.collected)
        if line.startswith("Installing collected packages"):
            return 0.7
        if line.startswith("Successfully installed") or line.startswith("Requirement already satisfied"):
            return 0.95 if line.startswith("Successfully") else None
        return None


class EnvironmentManager:
    """Create, inspect and remove the isolated backend environments under one root folder."""

    def __init__(self, root=None):
        self._root = root

    @property
    def root(self):
        return self._root or environmentsRoot()

    def folder(self, name):
        requirementsFile(name)
        return os.path.join(self.root, name)

    def python(self, name):
        folder = self.folder(name)
        if os.name == "nt":
            return os.path.join(folder, "Scripts", "python.exe")
        return os.path.join(folder, "bin", "python")

    def _readJson(self, name, fileName):
        path = os.path.join(self.folder(name), fileName)
        try:
            with open(path, encoding="utf-8") as file:
                return json.load(file)
        except (OSError, ValueError):
            return None

    def _writeState(self, name, **state):
        os.makedirs(self.folder(name), exist_ok=True)
        with open(os.path.join(self.folder(name), STATE_FILE), "w", encoding="utf-8") as file:
            json.dump(state, file, indent=1)

    def details(self, name):
        """{"name", "state", "message", "folder", "python", "versions", "seconds", "requirements"}."""
        state = self._readJson(name, STATE_FILE) or {}
        probe = self._readJson(name, PROBE_FILE) or {}
        info = {"name": name, "folder": self.folder(name), "python": self.python(name),
                "requirements": requirementsFile(name), "versions": probe.get("versions", {}),
                "seconds": state.get("seconds")}
        info["state"], info["message"] = self._state(name, state)
        return info

    def _state(self, name, state):
        saved = state.get("state")
        if saved == INSTALLING:
            if _processAlive(state.get("pid", -1)):
                return INSTALLING, "Installation in progress"
            return BROKEN, "An installation was interrupted; repair (create again) the environment"
        if not os.path.isfile(self.python(name)):
            if saved is None:
                return MISSING, f"Not created yet: createBackendEnvironment('{name}') installs it"
            return BROKEN, f"Its Python ({self.python(name)}) is missing; repair (create again) the environment"
        if saved == READY:
            if state.get("requirementsSha256") != _sha256(requirementsFile(name)):
                return BROKEN, "Its requirements changed (AISegmentation was updated); repair the environment"
            return READY, "Ready"
        if saved == BROKEN:
            return BROKEN, state.get("message") or "The last installation failed; repair the environment"
        return MISSING, f"Not created yet: createBackendEnvironment('{name}') installs it"

    def status(self, name):
        return self.details(name)["state"]

    def probe(self, name):
        """What the environment's probe reported (versions, devices, and e.g. TotalSegmentator's task registry)."""
        return self._readJson(name, PROBE_FILE) or {}

    def sizeBytes(self, name):
        total = 0
        for root, _, files in os.walk(self.folder(name)):
            for fileName in files:
                path = os.path.join(root, fileName)
                if not os.path.islink(path):
                    total += os.path.getsize(path)
        return total

    def remove(self, name):
        if self.status(name) == INSTALLING:
            raise ValueError(f"Environment '{name}' is being installed; cancel that first")
        shutil.rmtree(self.folder(name), ignore_errors=True)

    def startJob(self, name, backendName=None, force=False):
        """A started job that creates (force: from scratch) or repairs environment `name`."""
        requirements = requirementsFile(name)
        if self.status(name) == INSTALLING:
            raise ValueError(f"Environment '{name}' is already being installed")
        folder = self.folder(name)
        if force:
            shutil.rmtree(folder, ignore_errors=True)
        python = self.python(name)
        env = childEnvironment(isolated=True)
        steps = []
        if not os.path.isfile(python):
            steps.append(ProcessStep([basePython(), "-m", "venv", folder], f"Creating environment '{name}'", 0, 5,
                                     env=env))
        steps.append(ProcessStep([python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                                  "--progress-bar", "off", "-r", requirements],
                                 f"Installing packages into '{name}'", 5, 95, env=env, lineProgress=_PipProgress(),
                                 failureHint="Check the network connection to the package index."))
        steps.append(ProcessStep([python, WORKER_SCRIPT, "probe", backendName or name], f"Checking '{name}'", 95, 100,
                                 env=env, protocol=True))
        os.makedirs(folder, exist_ok=True)
        self._writeState(name, state=INSTALLING, pid=os.getpid(), started=time.time())

        def onFinished(job):
            if job.state == "succeeded":
                with open(os.path.join(folder, PROBE_FILE), "w", encoding="utf-8") as file:
                    json.dump({key: value for key, value in (job.childResult or {}).items() if key != "type"}, file)
                self._writeState(name, state=READY, requirementsSha256=_sha256(requirements),
                                 seconds=round(job.seconds, 1), finished=time.time())
            else:
                self._writeState(name, state=BROKEN, message=str(job.error), seconds=round(job.seconds, 1))

        return BackgroundJob(f"Environment '{name}'", steps, onFinished=onFinished).start()
