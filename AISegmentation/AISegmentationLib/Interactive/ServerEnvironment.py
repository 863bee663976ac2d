"""The isolated environment of the nnInteractive server that AISegmentation starts on this computer.

It is made exactly like a backend's (Backends/Environments/Environments.py: a virtual environment under the environments root,
uv, the PyTorch build for this machine: CUDA, MPS or CPU) from ``nninteractive-server-requirements.txt`` beside this
file, and only when asked (:func:`startCreateServerEnvironment`); nothing is installed at import time.
"""

import os

from ..Backends.Environments.Environments import MISSING, READY, EnvironmentManager

ENVIRONMENT_NAME = "nninteractive-server"
REQUIREMENTS_DIR = os.path.dirname(os.path.abspath(__file__))


def serverEnvironments(root=None):
    """The EnvironmentManager of the server environment (root: the backends' environments root by default)."""
    return EnvironmentManager(root, requirementsDir=REQUIREMENTS_DIR)


def serverEnvironmentDetails(root=None):
    """{"state": missing | installing | ready | broken, "message", "python", "versions", ...}."""
    return serverEnvironments(root).details(ENVIRONMENT_NAME)


def startCreateServerEnvironment(root=None, force=False):
    """A started job that creates (force: from scratch) or repairs the server environment."""
    return serverEnvironments(root).startJob(ENVIRONMENT_NAME, backendName="environment", force=force)


def serverPython(root=None):
    """The environment's Python; ValueError (with what to do) unless the environment is ready."""
    details = serverEnvironmentDetails(root)
    if details["state"] != READY:
        why = "not created yet" if details["state"] == MISSING else f"{details['state']}: {details['message']}"
        raise ValueError(f"The local nnInteractive server's environment is {why}. Create it first "
                         f"(logic.createInteractiveServerEnvironment(), the panel's 'Start local server', or "
                         f"`aisegmentation interactive-server start --create-environment`).")
    return details["python"]

