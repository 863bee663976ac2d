"""Isolated Python environments, one per backend, that AISegmentation creates, owns and reports on.

Each environment is a virtual environment in ``<root>/<name>/`` with the backend's pinned requirements
(``<name>-requirements.txt`` in the backend's folder, found through the registry), so nothing a backend installs can
touch Slicer's own Python or another backend. ``<root>`` is ``$AISEGMENTATION_ENVIRONMENTS_DIR`` or ``<user data
folder>/AISegmentation/environments``. Nothing is installed at import time: only :meth:`EnvironmentManager.startJob`
installs, and the GUI calls it only after the user agrees.

Creation works when the only Python is desktop Slicer's (the ``PythonSlicer`` launcher running ``python-real``,
whose compiled-in prefix does not exist) and only the package index is reachable: the base Python makes a venv
without pip (MakeEnvironment: no ensurepip) that starts on its own as the base Python (checked: not another
installation's libpython of the same version), uv installs the packages (Installer: uv comes from the package
index through the base's own pip; the base's pip configuration applies; source distributions build with what the
base needs, Installer.buildVariables), with the PyTorch build for this machine (TorchSelection). What the
environment's interpreter needs at run time (library path, on Windows with Slicer's layout PYTHONHOME) is recorded in
the environment and given to every child (:func:`childEnvironment`).

States: ``missing`` (not created), ``installing`` (an installation is running), ``ready`` (installed from the current
requirements and its probe imported the backend), ``broken`` (failed or interrupted installation, changed
requirements, or its Python is gone; repair by creating it again). An environment that an earlier AISegmentation
created with pip (its state file names no installer) stays ready while its requirements are unchanged.
"""

import hashlib
import json
import os
import shutil
import sys
import time

from . import Installer, TorchSelection
from ...JobRunner import BackgroundJob, ProcessStep
from .MakeEnvironment import RUNTIME_FILE, environmentPython
from ...ProcessTree import processAlive

ENVIRONMENTS_VARIABLE = "AISEGMENTATION_ENVIRONMENTS_DIR"
BASE_PYTHON_VARIABLE = "AISEGMENTATION_BASE_PYTHON"
THREADS_VARIABLE = "AISEGMENTATION_BACKEND_THREADS"  # compute threads of a backend process (default: all cores)
STATE_FILE = "aisegmentation-environment.json"
PROBE_FILE = "aisegmentation-probe.json"
BACKENDS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER_SCRIPT = os.path.join(BACKENDS_DIR, "Child", "ChildWorker.py")
MAKE_SCRIPT = os.path.join(BACKENDS_DIR, "Environments", "MakeEnvironment.py")
MISSING, INSTALLING, READY, BROKEN = "missing", "installing", "ready", "broken"
INSTALLERS = ("auto", "uv", "pip")
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


def _requirementsFiles(requirementsDir=None):
    """{environment name: requirements file}: the registered backends' (each in its folder), or those of a folder
    of ``<name>-requirements.txt`` files."""
    if requirementsDir is None:
        from ..Registry import environmentRequirements  # the registry imports the backends, which import this

        return environmentRequirements()
    suffix = "-requirements.txt"
    return {name[: -len(suffix)]: os.path.join(requirementsDir, name) for name in os.listdir(requirementsDir)
            if name.endswith(suffix)}


def environmentNames(requirementsDir=None):
    """Names of the environments AISegmentation knows how to create (one requirements file each)."""
    return sorted(_requirementsFiles(requirementsDir))


def requirementsFile(name, requirementsDir=None):
    path = _requirementsFiles(requirementsDir).get(name)
    if path is None or not os.path.isfile(path):
        raise ValueError(f"Unknown backend environment '{name}'; known: "
                         f"{', '.join(environmentNames(requirementsDir))}")
    return path


def _insideDesktopSlicer():
    return hasattr(sys.modules.get("slicer"), "app")


def slicerLauncher(python):
    """Desktop Slicer's launcher beside a python-real interpreter (it cannot start alone), or python itself."""
    folder, name = os.path.split(os.fspath(python))
    if name.lower().startswith("python-real"):
        for launcher in ("PythonSlicer", "PythonSlicer.exe"):
            if os.path.isfile(os.path.join(folder, launcher)):
                return os.path.join(folder, launcher)
    return os.fspath(python)


def currentPython():
    """The Python of this process as a command (inside desktop Slicer: its PythonSlicer launcher)."""
    if _insideDesktopSlicer():
        return shutil.which("PythonSlicer") or slicerLauncher(sys.executable)
    return sys.executable


def basePython():
    """Python used to create environments: $AISEGMENTATION_BASE_PYTHON (python-real: its launcher) or the current."""
    override = os.environ.get(BASE_PYTHON_VARIABLE)
    return slicerLauncher(override) if override else currentPython()


def startupEnvironment():
    """The environment for child processes: inside desktop Slicer the one Slicer was started with (without the
    launcher's library, Qt plugin and Python paths, as slicer.util.launchConsoleProcess does), else this one."""
    if _insideDesktopSlicer():
        import slicer.util

        return dict(slicer.util.startupEnvironment())
    return dict(os.environ)


def runtimeVariables(python):
    """What the interpreter of an AISegmentation environment needs to start (recorded by MakeEnvironment)."""
    folder = os.path.dirname(os.path.dirname(os.path.abspath(os.fspath(python))))
    try:
        with open(os.path.join(folder, RUNTIME_FILE), encoding="utf-8") as file:
            runtime = json.load(file)
    except (OSError, ValueError):
        return {}
    variables = {}
    if runtime.get("libraryPath"):
        name = "DYLD_LIBRARY_PATH" if sys.platform == "darwin" else "LD_LIBRARY_PATH"
        variables[name] = os.pathsep.join(runtime["libraryPath"])
    if runtime.get("pythonHome"):
        variables["PYTHONHOME"] = runtime["pythonHome"]
    return variables


def childEnvironment(isolated, extra=None, python=None):
    """Environment variables for a backend child process.

    isolated: without variables that leak packages in, plus what the environment's interpreter `python` needs to
    start (see runtimeVariables); otherwise the startup environment (a PythonSlicer child sets its own paths).
    """
    env = startupEnvironment()
    if isolated:
        for name in LEAKING_VARIABLES:
            env.pop(name, None)
        env["PYTHONNOUSERSITE"] = "1"
        # The private environment's bytecode is written once (a user's PYTHONDONTWRITEBYTECODE is meant for their
        # own folders; environments made before --compile-bytecode would otherwise recompile on every start).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for name, value in (runtimeVariables(python) if python else {}).items():
            env[name] = value if name == "PYTHONHOME" or not env.get(name) else value + os.pathsep + env[name]
    env.update({"PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"})
    if os.environ.get(THREADS_VARIABLE):
        env.update({name: os.environ[THREADS_VARIABLE] for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    env.update(extra or {})
    return env


def baseEnvironment():
    """The environment for the base Python's own commands (making a venv, pip): never inside a virtualenv."""
    env = startupEnvironment()
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONSTARTUP"):
        env.pop(name, None)
    env.update({"PYTHONNOUSERSITE": "1", "PIP_REQUIRE_VIRTUALENV": "0", "PYTHONUNBUFFERED": "1",
                "PYTHONIOENCODING": "utf-8"})
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


class EnvironmentManager:
    """Create, inspect and remove the isolated backend environments under one root folder.

    requirementsDir: where ``<name>-requirements.txt`` files are (default: the registered backends' folders).
    installer: "auto" (uv, or pip where the environment's interpreter cannot start on its own; see Installer), "uv"
    or "pip".
    """

    def __init__(self, root=None, requirementsDir=None, installer="auto"):
        if installer not in INSTALLERS:
            raise ValueError(f"Unknown installer '{installer}'; choose {', '.join(INSTALLERS)}")
        self._root = root
        self.requirementsDir = requirementsDir
        self.installer = installer

    @property
    def root(self):
        return self._root or environmentsRoot()

    def requirements(self, name):
        return requirementsFile(name, self.requirementsDir)

    def folder(self, name):
        self.requirements(name)
        return os.path.join(self.root, name)

    def python(self, name):
        """The environment's interpreter (found by layout: bin/python, Scripts\\python.exe or python-real.exe)."""
        return environmentPython(self.folder(name))

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
        """{"name", "state", "message", "folder", "python", "versions", "seconds", "requirements", "installer",
        "torch"}."""
        state = self._readJson(name, STATE_FILE) or {}
        probe = self._readJson(name, PROBE_FILE) or {}
        info = {"name": name, "folder": self.folder(name), "python": self.python(name),
                "requirements": self.requirements(name), "versions": probe.get("versions", {}),
                "seconds": state.get("seconds"), "installer": state.get("installer"), "torch": state.get("torch")}
        info["state"], info["message"] = self._state(name, state)
        return info

    def _state(self, name, state):
        saved = state.get("state")
        if saved == INSTALLING:
            if processAlive(state.get("pid", -1)):
                return INSTALLING, "Installation in progress"
            return BROKEN, "An installation was interrupted; repair (create again) the environment"
        if not os.path.isfile(self.python(name)):
            if saved is None:
                return MISSING, f"Not created yet: createBackendEnvironment('{name}') installs it"
            return BROKEN, f"Its Python ({self.python(name)}) is missing; repair (create again) the environment"
        if saved == READY:
            if state.get("requirementsSha256") != _sha256(self.requirements(name)):
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

    def _installCommand(self, name, requirements, base, torch, used):
        """The package installation command, chosen once the environment exists (see Installer)."""
        python = self.python(name)
        runtime = self._readJson(name, RUNTIME_FILE) or {}
        useUv = self.installer == "uv" or (self.installer == "auto" and runtime.get("isolatedStart", True))
        if useUv:
            uv = Installer.uvExecutable(self.root)
            if uv is None:
                raise RuntimeError(f"uv is missing from {Installer.uvFolder(self.root)}")
            used.update(installer=f"uv {Installer.UV_VERSION}", step=Installer.UvProgress())
            return Installer.uvCommand(uv, python, requirements, torch)
        if not runtime.get("pipRunner"):
            raise RuntimeError(f"The base Python ({base}) has no pip to install packages with")
        used.update(installer="pip", step=Installer.PipProgress())
        return Installer.pipCommand(python, runtime["pipRunner"], requirements, torch)

    def startJob(self, name, backendName=None, force=False):
        """A started job that creates (force: from scratch) or repairs environment `name`.

        Its last step probes the environment with the child module of backend `backendName` (default: the backend
        whose environment `name` is), or with the backend-neutral probe when backendName is "environment"."""
        requirements = self.requirements(name)
        if backendName == "environment":
            probeTarget = "environment"
        else:
            from ..Registry import childModuleFor

            probeTarget = childModuleFor(backendName or name)
        if self.status(name) == INSTALLING:
            raise ValueError(f"Environment '{name}' is already being installed")
        folder = self.folder(name)
        if force:
            shutil.rmtree(folder, ignore_errors=True)
        base = basePython()
        torch = TorchSelection.torchForThisMachine()
        used = {"installer": None, "step": None}
        steps = []
        if not os.path.isfile(self.python(name)) or not os.path.isfile(os.path.join(folder, RUNTIME_FILE)):
            steps.append(ProcessStep([base, MAKE_SCRIPT, folder], f"Creating environment '{name}'", 0, 4,
                                     env=baseEnvironment()))
        if self.installer != "pip" and Installer.uvExecutable(self.root) is None:
            steps.append(ProcessStep(Installer.uvInstallCommand(base, self.root), "Getting the installer (uv)", 4, 8,
                                     env=baseEnvironment(), failureHint="Check the connection to the package index."))

        def installEnvironment():
            env = childEnvironment(True, python=self.python(name))
            if used["installer"] != "pip":
                env.update(Installer.uvVariables(base, baseEnvironment(), env))
                env.update(Installer.buildVariables(self._readJson(name, RUNTIME_FILE) or {}))
            return env

        def installCommand():
            return self._installCommand(name, requirements, base, torch, used)

        steps.append(ProcessStep(installCommand, f"Installing packages into '{name}' ({torch['reason']})", 8, 95,
                                 env=installEnvironment, lineProgress=lambda line: used["step"] and used["step"](line),
                                 failureHint="Check the network connection to the package index."))
        steps.append(ProcessStep(lambda: [self.python(name), WORKER_SCRIPT, "probe", probeTarget],
                                 f"Checking '{name}'", 95, 100, protocol=True,
                                 env=lambda: childEnvironment(True, python=self.python(name))))
        os.makedirs(folder, exist_ok=True)
        self._writeState(name, state=INSTALLING, pid=os.getpid(), started=time.time())

        def onFinished(job):
            common = {"seconds": round(job.seconds, 1), "installer": used["installer"], "torch": torch["reason"]}
            if job.state == "succeeded":
                with open(os.path.join(folder, PROBE_FILE), "w", encoding="utf-8") as file:
                    json.dump({key: value for key, value in (job.childResult or {}).items() if key != "type"}, file)
                self._writeState(name, state=READY, requirementsSha256=_sha256(requirements), finished=time.time(),
                                 **common)
            else:
                self._writeState(name, state=BROKEN, message=str(job.error), **common)

        return BackgroundJob(f"Environment '{name}'", steps, onFinished=onFinished).start()
