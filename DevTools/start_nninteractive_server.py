#!/usr/bin/env python3
"""Create the nnInteractive server environments and start a server by hand on this machine, on CPU.

Two server generations, each in its own virtual environment so that their pinned packages never meet Slicer's or
each other's:
  current  nninteractive-server (nnInteractive >= 2.5): the product's own environment "nninteractive-server"
           (AISegmentationLib/Interactive/ServerEnvironment.py, the one "Start local server" uses), under the
           environments root ($AISEGMENTATION_ENVIRONMENTS_DIR); `serve` runs it by hand, as a user would
           (nninteractive-server --device cpu --no-torch-compile), the baseline of the managed server
  legacy   nninteractive-slicer-server 0.3.2 (pins torch 2.8, nnunetv2 2.6.4, nnInteractive 1.0.1),
           requirements-interactive-legacy-server.txt, in $AISEGMENTATION_INTERACTIVE_ENVS_DIR (default
           build/interactive-envs); it hard-codes cuda:0 and downloads its weights into
           ./.nninteractive_weights/nnInteractive_v1.0/ - this launcher runs it on CPU from a local model folder.

    start_nninteractive_server.py ensure-env --generation legacy         # prints the environment's python
    start_nninteractive_server.py serve --generation current --model-dir DIR --port 1527 [-- extra server args]

Environments are rebuilt only when their requirements file changes. The API key of the current server is read from
NN_INTERACTIVE_API_KEY (never from the command line, where other users of the machine could read it). The server
binds 127.0.0.1 by default. This file uses only the standard library (and, for the current generation's
environment, AISegmentationLib) until it runs inside a server environment.
"""

import argparse
import contextlib
import fcntl
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import time
import venv

DEVTOOLS_DIR = os.path.dirname(os.path.abspath(__file__))
MODULE_DIR = os.path.join(os.path.dirname(DEVTOOLS_DIR), "AISegmentation")
GENERATIONS = ("current", "legacy")
REQUIREMENTS = {"legacy": os.path.join(DEVTOOLS_DIR, "requirements-interactive-legacy-server.txt")}
STAMP = ".aisegmentation-requirements.sha256"


def envsDir():
    return os.environ.get("AISEGMENTATION_INTERACTIVE_ENVS_DIR") or os.path.join(
        os.path.dirname(DEVTOOLS_DIR), "build", "interactive-envs")


def envFolder(generation):
    if generation == "current":
        return os.path.dirname(os.path.dirname(_productEnvironment().python(_productName())))
    return os.path.join(envsDir(), generation)


def envPython(generation):
    return os.path.join(envFolder(generation), "bin", "python")


def _productName():
    if MODULE_DIR not in sys.path:
        sys.path.insert(0, MODULE_DIR)
    from AISegmentationLib.Interactive.ServerEnvironment import ENVIRONMENT_NAME

    return ENVIRONMENT_NAME


def _productEnvironment():
    _productName()
    from AISegmentationLib.Interactive.ServerEnvironment import serverEnvironments

    return serverEnvironments()


def requirementsHash(generation):
    with open(REQUIREMENTS[generation], "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def isEnvReady(generation):
    if generation == "current":
        return _productEnvironment().status(_productName()) == "ready"
    stamp = os.path.join(envsDir(), generation, STAMP)
    try:
        with open(stamp, encoding="utf-8") as f:
            return f.read().strip() == requirementsHash(generation) and os.path.isfile(envPython(generation))
    except OSError:
        return False


@contextlib.contextmanager
def fileLock(path):
    """An exclusive lock on path (created), so that test runs sharing a work tree build each cache only once."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensureEnv(generation, log=None):
    """Create or update the virtual environment of one server generation; returns its python. Idempotent."""
    if isEnvReady(generation):
        return envPython(generation)
    with fileLock(os.path.join(envsDir(), f".{generation}.lock")):
        if isEnvReady(generation):
            return envPython(generation)
        if generation == "current":
            _productEnvironment().startJob(_productName(), backendName="environment").wait()
            return envPython(generation)
        return _createEnv(generation, log)


def _createEnv(generation, log):
    folder = os.path.join(envsDir(), generation)
    started = time.time()
    logging.info("Creating the %s nnInteractive server environment in %s", generation, folder)
    if not os.path.isfile(envPython(generation)):
        venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    python = envPython(generation)
    pip = [python, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run(pip + ["install", "--quiet", "-r", REQUIREMENTS[generation]], check=True, stdout=log, stderr=log)
    with open(os.path.join(folder, STAMP), "w", encoding="utf-8") as f:
        f.write(requirementsHash(generation))
    logging.info("The %s environment took %.0f s", generation, time.time() - started)
    return python


# Inside a server environment -------------------------------------------------------------------------------------

def serveCurrent(modelDir, host, port, extra):
    from nnInteractive.inference.server.main import main as serverMain

    threads = str(max(1, os.cpu_count() or 1))
    return serverMain(["--model-dir", modelDir, "--fold", "0", "--device", "cpu", "--no-torch-compile",
                       "--torch-n-threads", threads, "--host", host, "--port", str(port)] + extra)


def serveLegacy(modelDir, host, port, extra):
    """Run nninteractive-slicer-server unchanged, except: weights from modelDir, and the session on the CPU."""
    workDir = tempfile.mkdtemp(prefix="nninteractive-legacy-")
    weightsDir = os.path.join(workDir, ".nninteractive_weights")
    os.makedirs(weightsDir)
    os.symlink(os.path.abspath(modelDir), os.path.join(weightsDir, "nnInteractive_v1.0"))
    os.chdir(workDir)

    import huggingface_hub
    import torch
    from nnInteractive.inference import inference_session

    # The server calls snapshot_download at import; the weights are already in place and there is no network.
    huggingface_hub.snapshot_download = lambda *args, **kwargs: weightsDir
    baseSession = inference_session.nnInteractiveInferenceSession

    class CpuInferenceSession(baseSession):
        """The legacy server asks for cuda:0 and pinned memory; run on the CPU instead."""

        def __init__(self, *args, **kwargs):
            kwargs["device"] = torch.device("cpu")
            kwargs["use_pinned_memory"] = False
            super().__init__(*args, **kwargs)

    inference_session.nnInteractiveInferenceSession = CpuInferenceSession
    from nninteractive_slicer_server import main as server

    sys.argv = ["nninteractive-slicer-server", "--host", host, "--port", str(port)] + extra
    return server.main()


def serve(generation, modelDir, host, port, extra):
    if not os.path.isfile(os.path.join(modelDir, "plans.json")):
        raise SystemExit(f"'{modelDir}' is not an nnInteractive model folder (no plans.json)")
    if os.path.realpath(sys.prefix) != os.path.realpath(envFolder(generation)):
        python = ensureEnv(generation)
        command = [python, os.path.abspath(__file__), "serve", "--generation", generation, "--model-dir", modelDir,
                   "--host", host, "--port", str(port), "--"] + extra
        os.execv(python, command)
    if generation == "current":
        return serveCurrent(modelDir, host, port, extra)
    return serveLegacy(modelDir, host, port, extra)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    env = sub.add_parser("ensure-env", help="create or update a server environment; prints its python")
    env.add_argument("--generation", choices=GENERATIONS, required=True)
    run = sub.add_parser("serve", help="start a server (creates its environment first when needed)")
    run.add_argument("--generation", choices=GENERATIONS, required=True)
    run.add_argument("--model-dir", required=True, help="nnInteractive model folder (plans.json, fold_0/...)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=1527)
    run.add_argument("extra", nargs="*", help="after --: more arguments for the server")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.command == "ensure-env":
        print(ensureEnv(args.generation))
        return 0
    return serve(args.generation, args.model_dir, args.host, args.port, args.extra) or 0


if __name__ == "__main__":
    sys.exit(main())
