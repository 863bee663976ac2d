"""What every backend run is made of, wherever it runs: the Python that runs the child, the backend's context, the
request file the child reads and the child's process step.

Shared by the local path (AILogic, in Slicer's or the CLI's process) and the remote path (RemoteRun, in a Dask
worker's process), so both write the same ``request.json`` next to the input NIfTI files in the job's private
folder and start the same ChildWorker.py. Imports neither slicer nor Qt: a Dask worker has only the backend's
parent side and the standard library.
"""

import importlib.util
import json
import os

from ...AtomicWrite import writeText
from ..Backend import BackendContext
from ..Environments.Environments import READY, WORKER_SCRIPT, childEnvironment, currentPython
from ...JobRunner import ProcessStep

ENVIRONMENT_CHOICES = ("auto", "isolated", "current")
REQUEST_FILE = "request.json"
OUTPUT_LABELMAP = "labels.nii"
OUTPUT_LABELS = "labels.json"


def inputFileName(index):
    """File name of input volume `index` (channel order) in a job's folder."""
    return f"input_{index:04d}.nii"


def backendContext(backend, settings, environments):
    """BackendContext of a backend: its settings and the probe of its isolated environment in `environments` (an
    EnvironmentManager); a backend without an environment of its own probes as {}."""
    def probe():
        try:
            return environments.probe(backend.environmentName)
        except ValueError:
            return {}

    return BackendContext(settings, probe)


def backendPython(backend, environment, environments):
    """(python command, isolated?, label) for environment "auto", "isolated", "current" or a Python executable path;
    ValueError saying how to create the environment when it cannot run."""
    if environment not in ENVIRONMENT_CHOICES:
        if os.path.isfile(os.fspath(environment)):
            return os.fspath(environment), True, f"python:{environment}"
        raise ValueError(f"Unknown environment '{environment}'; choose {', '.join(ENVIRONMENT_CHOICES)} or give "
                         f"the path of a Python executable")
    details = None if environment == "current" else environments.details(backend.environmentName)
    if details is not None and details["state"] == READY:
        return details["python"], True, f"isolated:{backend.environmentName}"
    create = (f"create it with createBackendEnvironment('{backend.name}') (Install in the AI section, "
              f"--create-environment on the command line)")
    if environment == "isolated":
        raise ValueError(f"The isolated '{backend.environmentName}' environment is {details['state']} "
                         f"({details['message']}): {create}")
    missing = [package for package in backend.packages if importlib.util.find_spec(package) is None]
    if not missing:
        return currentPython(), False, "current"
    state = f" and its isolated '{backend.environmentName}' environment is {details['state']}" if details else ""
    raise ValueError(f"{backend.title} is not installed in the current Python ({', '.join(missing)} missing)"
                     f"{state}: {create}")


def writeRequest(backend, prepared, workDir, inputPaths):
    """Write the child's request.json into workDir (inputs: the NIfTI files in channel order, already there);
    returns (request, its path)."""
    request = {"backend": backend.name, "childModule": backend.childModulePath, "options": prepared.childOptions,
               "labelNames": prepared.labelNames, "inputs": [os.fspath(path) for path in inputPaths],
               "outputLabelmap": os.path.join(workDir, OUTPUT_LABELMAP),
               "outputLabels": os.path.join(workDir, OUTPUT_LABELS)}
    requestPath = os.path.join(workDir, REQUEST_FILE)
    writeText(requestPath, json.dumps(request))
    return request, requestPath


def childStep(backend, prepared, python, isolated, workDir, requestPath):
    """The ProcessStep that runs the backend's child (ChildWorker.py) on the request, in workDir."""
    variables = backend.childVariables(prepared, workDir)
    return ProcessStep([python, WORKER_SCRIPT, requestPath], f"Running {backend.title}",
                       env=childEnvironment(isolated, variables, python=python), cwd=workDir, protocol=True)
