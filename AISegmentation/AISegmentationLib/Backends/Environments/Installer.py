"""The installer of backend environments: uv, obtained with the base Python's own pip; pip where uv cannot work.

Why uv: one binary wheel on PyPI (no compiler, no ensurepip, nothing installed into Slicer's Python), resolves and
installs the multi-GB backend sets several times faster than pip, and picks PyTorch's CUDA index with
``--torch-backend`` (see TorchSelection). It is installed once per uv version into
``<environments root>/.tools/uv-<version>`` with ``<base python> -m pip install --target`` (the base's pip, so a
hospital's pip configuration applies; Slicer ships pip), never into Slicer's site-packages.
uv reads no pip configuration: the base's ``pip config list`` is translated (PipConfig) so that uv installs from
exactly where pip would.

uv inspects an interpreter in isolated mode (``python -I``), where PYTHONHOME is ignored: it can install into an
environment only when the environment's interpreter starts on its own (MakeEnvironment arranges that on Linux and
macOS). Where it cannot (Windows with desktop Slicer's layout), the base's pip installs instead, run by the
environment's interpreter with PYTHONHOME set (pip's ``__pip-runner__``: it imports only pip from the base, never
the base's other packages).
"""

import glob
import os
import subprocess

from . import PipConfig
from ...ProcessTree import hiddenWindow

UV_VERSION = "0.13.9"
TOOLS_FOLDER = ".tools"
PIP_ARGUMENTS = ["--disable-pip-version-check", "--no-input"]


def uvFolder(root):
    return os.path.join(root, TOOLS_FOLDER, f"uv-{UV_VERSION}")


def uvExecutable(root):
    """The uv executable installed under root (pip --target puts scripts in bin/ or Scripts\\), or None."""
    folder = uvFolder(root)
    for pattern in ("bin/uv", "bin/uv.exe", "Scripts/uv.exe", "*/uv", "*/uv.exe"):
        for path in sorted(glob.glob(os.path.join(folder, pattern))):
            if os.path.isfile(path):
                return path
    return None


def uvInstallCommand(basePython, root):
    """The command that installs uv (pinned) with the base Python's pip into the private tools folder."""
    return [basePython, "-m", "pip", "install", *PIP_ARGUMENTS, "--progress-bar", "off", "--upgrade", "--target",
            uvFolder(root), f"uv=={UV_VERSION}"]


def pipOptions(basePython, env):
    """The base Python's pip configuration ({option: value}); {} when pip cannot tell."""
    try:
        result = subprocess.run([basePython, "-m", "pip", "config", "list"], env=env, capture_output=True, text=True,
                                timeout=120, check=False, **hiddenWindow())
    except (OSError, subprocess.SubprocessError):
        return {}
    return PipConfig.parsePipConfigList(result.stdout) if result.returncode == 0 else {}


def uvVariables(basePython, baseEnv, childEnv):
    """uv's environment: the pip configuration translated, no interpreter downloads, no progress bars."""
    variables = PipConfig.uvEnvironment(pipOptions(basePython, baseEnv), childEnv)
    variables.update({"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"})
    return variables


def buildVariables(runtime):
    """What uv's build environments of source distributions need from the base Python (MakeEnvironment's runtime).

    uv builds an sdist (nnU-Net's ``acvl-utils`` is one) in a fresh virtual environment made from the base's own
    executable, ``home`` = its folder (desktop Slicer: ``bin/python-real``). Where the environment's ``home`` had to
    be changed for its interpreter to find the standard library, such a build interpreter finds none ("No module
    named 'encodings'"): it gets ``PYTHONHOME`` = the base home, which uv passes on to the build. uv's own look at
    the target interpreter runs it isolated (``-I``) and ignores the variable."""
    if "buildVariables" in runtime:
        return dict(runtime["buildVariables"])
    return {"PYTHONHOME": runtime["home"]} if runtime.get("homeChanged") and runtime.get("home") else {}


def uvCommand(uv, python, requirements, torch):
    """uv's install command. ``--compile-bytecode`` as pip does by default: without it every child start compiles
    torch and its kin again wherever bytecode is not written (measured: importing torch + nnunetv2 took 68 s wall /
    18 s CPU without .pyc and 25.5 s / 6.4 s with them on a loaded 2-core machine)."""
    return [uv, "pip", "install", "--compile-bytecode", "--python", python, "-r", requirements, *torch["uvArguments"]]


def pipCommand(python, pipRunner, requirements, torch):
    """The base's pip run by the environment's interpreter (see the module docstring)."""
    return [python, pipRunner, "install", *PIP_ARGUMENTS, "--progress-bar", "off", "-r", requirements,
            *torch["pipArguments"]]


class PipProgress:
    """A rough fraction of a pip install from its log lines (pip does not announce its total)."""

    def __init__(self):
        self.collected = 0

    def __call__(self, line):
        if line.startswith("Collecting ") or line.startswith("Processing "):
            self.collected += 1
            return min(0.6, 0.01 * self.collected)
        if line.startswith("Installing collected packages"):
            return 0.7
        if line.startswith("Successfully installed"):
            return 0.95
        return None


class UvProgress:
    """The fraction of a uv install from its summary lines (resolved, prepared = downloaded, installed)."""

    STAGES = (("Resolved ", 0.2), ("Prepared ", 0.8), ("Installed ", 0.95), ("Audited ", 0.95))

    def __call__(self, line):
        for prefix, fraction in self.STAGES:
            if line.startswith(prefix):
                return fraction
        return None
