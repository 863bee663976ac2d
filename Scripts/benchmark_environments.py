"""Install time of the backend environments: AISegmentation's installer (uv) against the former pip route.

Each environment is created in a fresh temporary root (removed afterwards), so nothing of an existing environment is
reused; the package caches (uv's, pip's) are what they are on this machine: run twice for warm-cache figures.
"uv" is EnvironmentManager.startJob (venv without pip, uv install, probe); "pip" is what AISegmentation did before
(``python -m venv`` with ensurepip, then ``pip install -r``, then the same probe).

    .venv/bin/python Scripts/benchmark_environments.py [--environments nnunet totalsegmentator] [--installers uv pip]
"""

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time

MODULE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "AISegmentation")
sys.path.insert(0, MODULE_DIR)

from AISegmentationLib.Backends import Registry  # noqa: E402
from AISegmentationLib.Backends.Environments import Environments  # noqa: E402


def createWithUv(name, root):
    manager = Environments.EnvironmentManager(root, installer="uv")
    start = time.time()
    manager.startJob(name).wait()
    return time.time() - start, manager.details(name)["versions"]


def createWithPip(name, root):
    folder = os.path.join(root, name)
    python = os.path.join(folder, "Scripts" if os.name == "nt" else "bin", "python")
    env = Environments.childEnvironment(True)
    start = time.time()
    commands = [[Environments.basePython(), "-m", "venv", folder],
                [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
                 "-r", Environments.requirementsFile(name)],
                [python, Environments.WORKER_SCRIPT, "probe", Registry.childModuleFor(name)]]
    for command in commands:
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.time() - start, {}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--environments", nargs="+", default=["nnunet", "totalsegmentator"])
    parser.add_argument("--installers", nargs="+", default=["uv", "pip"], choices=["uv", "pip"],
                        help="in this order; repeat one (uv uv pip) for a second, warm-cache run")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = {}
    for name in arguments.environments:
        for run, installer in enumerate(arguments.installers):
            root = tempfile.mkdtemp(prefix=f"benchmark-environment-{installer}-")
            try:
                seconds, _ = (createWithUv if installer == "uv" else createWithPip)(name, root)
            finally:
                shutil.rmtree(root, ignore_errors=True)
            results[(name, run)] = seconds
            logging.info("%-18s %-4s %7.1f s", name, installer, seconds)
    logging.info("\n%-18s %s", "environment", " ".join(f"{installer:>9}" for installer in arguments.installers))
    for name in arguments.environments:
        logging.info("%-18s %s", name, " ".join(f"{results[(name, run)]:7.1f} s"
                                                 for run in range(len(arguments.installers))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
