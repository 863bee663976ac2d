"""The headless command line as a child process, as Scripts/aisegmentation starts it:
``python -m AISegmentationLib.CommandLine`` with the module folder on the path."""

import os
import subprocess
import sys

MODULE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cliCommand(*args):
    return [sys.executable, "-m", "AISegmentationLib.CommandLine", *map(str, args)]


def cliEnvironment():
    return dict(os.environ, PYTHONPATH=os.pathsep.join([MODULE_DIR, *filter(None, [os.environ.get("PYTHONPATH")])]))


def runCli(*args):
    return subprocess.run(cliCommand(*args), capture_output=True, text=True, timeout=300, env=cliEnvironment())
