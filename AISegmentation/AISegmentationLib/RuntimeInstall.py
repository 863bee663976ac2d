"""Installs the missing runtime requirements into the running Python, on request and after the user agreed.

Nothing is installed at import time or without a call to :func:`installRuntimeRequirements`. The installer is
looked up when called:

- Slicer 5.12 and later: ``slicer.packaging.pip_ensure(requirements, constraints=..., prompt_install=False,
  requester="AISegmentation")`` (our own ``confirm`` callback has already asked the user; pip_ensure's
  restart prompt stays on);
- Slicer 5.10: ``slicer.util.pip_install(["-c", constraints, *requirements])`` (the list form, so that a Windows
  path is not split by shlex; 5.10's pip_install has no constraints argument and asks nothing);
- no Slicer application (slicer-core, PythonSlicer, a plain Python): ``sys.executable -m pip install`` with the
  same arguments.

All three run pip in a child process and get the same two inputs: the missing requirement strings and a
constraints file that pins every installed distribution to its installed version. With those pins pip may add
packages but cannot upgrade, downgrade or replace one that is there (Slicer's requests, numpy, typing_extensions,
or another extension's packages); if the new packages cannot live with the installed versions pip fails before
it changes anything. This was preferred to ``--no-deps`` plus our own dependency walk: pip's resolver still picks
versions that fit (measured against Slicer 5.10's set: anyio 4.14.2 and pydantic 2.11.10 because Slicer ships
typing_extensions 4.14.0) and nothing has to re-implement dependency resolution. In Slicer's testing mode
pip_ensure (5.12+) installs nothing; on 5.10 the caller must not call the install in testing mode (this library does
not read the application object).
"""

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile

from . import RuntimeRequirements as Requirements

REQUESTER = "AISegmentation"


class InstallDeclinedError(RuntimeError):
    """The user did not agree to install the missing runtime requirements."""


def isSlicerApplication():
    """True inside the desktop Slicer application (not slicer-core, not PythonSlicer, not a plain Python)."""
    try:
        import slicer
    except ImportError:
        return False
    return hasattr(slicer, "app")


def _pipEnsureInstaller(requirements, constraintsPath):
    import slicer.packaging

    # skip_in_testing stays True: in Slicer's testing mode pip_ensure installs nothing and the check after it fails.
    slicer.packaging.pip_ensure(requirements, constraints=constraintsPath, prompt_install=False,
                                requester=REQUESTER, skip_in_testing=True)


def _pipInstallInstaller(requirements, constraintsPath):
    import slicer.util

    slicer.util.pip_install(["-c", constraintsPath, *requirements])


def _subprocessInstaller(requirements, constraintsPath):
    runPip(["install", "--progress-bar", "off", "-c", constraintsPath, *requirements])


def chooseInstaller():
    """(name, function(requirements, constraintsPath)) for the running Python; imports slicer only if present."""
    if not isSlicerApplication():
        return "python -m pip", _subprocessInstaller
    try:
        from slicer import packaging as slicerPackaging
    except ImportError:  # Slicer 5.10
        slicerPackaging = None
    if hasattr(slicerPackaging, "pip_ensure"):
        return "slicer.packaging.pip_ensure", _pipEnsureInstaller
    return "slicer.util.pip_install", _pipInstallInstaller


def pipPython():
    """The interpreter that runs pip for this Python: inside Slicer its launcher PythonSlicer, as Slicer does."""
    if isSlicerApplication():
        launcher = shutil.which("PythonSlicer")
        if launcher:
            return launcher
    return sys.executable


def runPip(arguments):
    """Runs ``pip <arguments>`` with this Python's pip in a child process; its output goes to the log."""
    command = [pipPython(), "-m", "pip", *arguments, "--disable-pip-version-check"]
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    logging.info("Running %s", " ".join(command))
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            creationflags=flags)
    if result.stdout.strip():
        logging.info("pip: %s", result.stdout.strip())
    if result.returncode != 0:
        lines = [line for line in result.stdout.splitlines() if line.strip() and not line.startswith("WARNING:")]
        tail = "\n".join(lines[-15:])
        raise RuntimeError(f"pip {arguments[0]} failed (exit status {result.returncode}); pip stops before changing "
                           f"anything when the new packages need other versions of installed ones:\n{tail}")
    return result.stdout


class _ConstraintsFile:
    """A temporary constraints file that pins every installed distribution (see module docstring)."""

    def __enter__(self):
        handle, self.path = tempfile.mkstemp(prefix="aisegmentation-constraints-", suffix=".txt")
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(Requirements.installedConstraints())
        return self.path

    def __exit__(self, *exc):
        os.remove(self.path)


def _missingOrRaise(requirementsPath):
    conflicts = Requirements.conflictMessages(requirementsPath)
    if conflicts:
        raise ValueError("\n".join(conflicts))
    return Requirements.missingRequirements(requirementsPath)


def missingRuntimeRequirements(requirementsPath=None):
    """Requirement strings to install (reads metadata only, no network). ValueError when one conflicts."""
    return _missingOrRaise(requirementsPath)


def planRuntimeInstall(requirementsPath=None):
    """[(name, version)] that pip would add, dependencies included; [] when nothing is missing.

    Runs ``pip install --dry-run`` with the same pins as the install (needs the package index, changes nothing):
    a RuntimeError here means the install would fail too. ValueError when a requirement conflicts.
    """
    missing = _missingOrRaise(requirementsPath)
    if not missing:
        return []
    with _ConstraintsFile() as constraintsPath, tempfile.TemporaryDirectory() as folder:
        reportPath = os.path.join(folder, "report.json")
        runPip(["install", "--dry-run", "--quiet", "--progress-bar", "off", "--report", reportPath,
                "-c", constraintsPath, *missing])
        with open(reportPath, encoding="utf-8") as f:
            report = json.load(f)
    return [(item["metadata"]["name"], item["metadata"]["version"]) for item in report.get("install", [])]


def installRuntimeRequirements(confirm=None, requirementsPath=None, installer=None):
    """Installs the missing runtime requirements; returns the requirement strings installed ([] if none missing).

    confirm(missing) -> bool is called first with the requirement strings (the panel shows a dialog, optionally
    with planRuntimeInstall()); False raises InstallDeclinedError and installs nothing. None means the caller
    already has the user's agreement. installer(requirements, constraintsPath) defaults to chooseInstaller().
    ValueError (nothing installed) when a requirement conflicts with an installed version; RuntimeError when the
    install fails or leaves something missing.
    """
    missing = _missingOrRaise(requirementsPath)
    if not missing:
        return []
    if confirm is not None and not confirm(list(missing)):
        raise InstallDeclinedError(f"Not installed (declined): {', '.join(missing)}")
    if installer is None:
        name, installer = chooseInstaller()
        logging.info("Installing %s with %s", ", ".join(missing), name)
    with _ConstraintsFile() as constraintsPath:
        try:
            installer(missing, constraintsPath)
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f"Installing {', '.join(missing)} failed: {error}") from None
    stillMissing = _missingOrRaise(requirementsPath)
    if stillMissing:
        raise RuntimeError(f"After the install these are still missing: {', '.join(stillMissing)}")
    return missing
