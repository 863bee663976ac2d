"""The ``interactive-server`` subcommand: the local nnInteractive server without Slicer's panel.

    aisegmentation interactive-server start [--device auto|cpu|cuda|cuda:N|mps] [--port N] [--model-dir DIR]
                                            [--create-environment] [--import-model DIR] [--download-model]
    aisegmentation interactive-server status
    aisegmentation interactive-server stop

``start`` stays in the foreground while the server runs (127.0.0.1, a free port, a random API key); it writes the key
to a file only its user can read (--key-file, default in the user data folder) for the clients that should use it,
and a state file that ``status`` and ``stop`` read. Ctrl-C, SIGTERM (``stop``) or the end of this process ends the
server's whole process tree. --download-model is the agreement to download the official model from Hugging Face.
Wired into Main.py with ``addInteractiveServerParser(commands)`` and ``COMMANDS["interactive-server"]``.
"""

import argparse
import json
import os
import signal
import sys
import time

from ..Backends.Environments.Environments import userDataDir
from ..ProcessTree import processAlive

STATE_FILE = "interactive-server.json"
KEY_FILE = "interactive-server.key"


def statePath():
    return os.path.join(userDataDir(), STATE_FILE)


def addInteractiveServerParser(commands):
    parser = commands.add_parser("interactive-server", help="start, stop or show the local nnInteractive server",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="serverAction", required=True)
    start = actions.add_parser("start", help="run the local nnInteractive server until Ctrl-C or `stop`")
    start.add_argument("--device", default="auto", help="auto (CUDA, MPS, else CPU), cpu, cuda, cuda:N or mps")
    start.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    start.add_argument("--model-dir", help="nnInteractive model folder (default: the downloaded or imported one)")
    start.add_argument("--import-model", metavar="DIR", help="copy this model folder into the model store first")
    start.add_argument("--download-model", action="store_true",
                       help="download the official model from Hugging Face first (non-commercial license); passing "
                            "it is the agreement")
    start.add_argument("--create-environment", action="store_true",
                       help="create (or repair) the server's isolated environment first")
    start.add_argument("--key-file", help=f"where to write the API key (default: <user data folder>/{KEY_FILE})")
    start.add_argument("--threads", type=int, help="CPU threads of the server (default: all cores)")
    actions.add_parser("status", help="show whether the local server runs, where, on which device")
    actions.add_parser("stop", help="stop the local server started by `interactive-server start`")


def runInteractiveServer(logic, args):
    {"start": _start, "status": _status, "stop": _stop}[args.serverAction](logic, args)


def _progress(percent, message):
    print(f"{percent:5.1f}% {message}", file=sys.stderr)


def _readState():
    try:
        with open(statePath(), encoding="utf-8") as file:
            state = json.load(file)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and processAlive(state.get("pid", -1)) else None


def _writePrivate(path, text):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    descriptor = os.open(path + ".part", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(path + ".part", path)


def _start(logic, args):
    running = _readState()
    if running:
        raise ValueError(f"A local nnInteractive server started by process {running['pid']} runs already at "
                         f"{running['url']}; stop it first (aisegmentation interactive-server stop)")
    if args.create_environment:
        logic.createInteractiveServerEnvironment(progressCallback=_progress)
    if args.import_model:
        print(f"Imported the model into {logic.importInteractiveServerModel(args.import_model)}")
    if args.download_model:
        print(f"Downloaded the model into {logic.downloadInteractiveServerModel(True, progressCallback=_progress)}")
    status = logic.startInteractiveServer(args.device, args.model_dir, args.port, args.threads, _progress)
    server = logic.managedInteractiveServer
    keyFile = os.path.abspath(args.key_file or os.path.join(userDataDir(), KEY_FILE))
    try:
        _writePrivate(keyFile, server.apiKey + "\n")
        _writePrivate(statePath(), json.dumps({"pid": os.getpid(), "url": status["url"], "keyFile": keyFile,
                                               "device": status["device"], "description": status["description"],
                                               "serverPid": status["pid"], "version": status["version"]}))
        print(f"nnInteractive server running at {status['url']} on {status['description']} (nnInteractive "
              f"{status['version']}, ready after {status['startSeconds']:.1f} s). API key in {keyFile} (readable by "
              f"you only). Ctrl-C or `aisegmentation interactive-server stop` ends it.", flush=True)
        _serve(logic)
    finally:
        logic.stopInteractiveServer()
        for path in (statePath(), keyFile):
            if os.path.isfile(path):
                os.remove(path)


def _serve(logic):
    """Until Ctrl-C / SIGTERM (a normal end: the server is stopped) or the server's own end (an error)."""
    from .Common import Terminated

    try:
        while True:
            status = logic.interactiveServerStatus()
            if status["state"] != "running":
                raise RuntimeError(status["message"])
            time.sleep(1.0)
    except (KeyboardInterrupt, Terminated):
        print("Stopping the nnInteractive server", file=sys.stderr)


def _status(logic, args):
    state = _readState()
    if state is None:
        print("The local nnInteractive server is not running")
        return
    import requests

    try:
        healthy = requests.get(state["url"] + "/healthz", timeout=3).status_code == 200
    except requests.exceptions.RequestException:
        healthy = False
    print(f"Running at {state['url']} on {state['description']} (nnInteractive {state['version']}, process "
          f"{state['pid']}, server process {state['serverPid']}); health check: {'ok' if healthy else 'NO ANSWER'}; "
          f"API key in {state['keyFile']}")


def _stop(logic, args, timeout=30.0):
    state = _readState()
    if state is None:
        print("The local nnInteractive server is not running")
        return
    os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while processAlive(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    if processAlive(state["pid"]):
        raise RuntimeError(f"Process {state['pid']} did not end within {timeout:.0f} s")
    print(f"Stopped the local nnInteractive server at {state['url']}")
