"""Session fixtures for the MONAI Auto3DSeg tests: its isolated environment and the tiny SegResNetDS model zips.

The zips are built once with DevTools/build_tiny_monai.py in the "monaiauto3dseg" environment and cached under
``$AISEGMENTATION_TINY_MODELS_DIR/monai`` (see TinyModels.py for the cache folders).
"""

import json
import os
import subprocess

import pytest

from . import build_tiny_models
from .TinyModels import DEVTOOLS_DIR, _useCacheFolders, ensureEnvironment


@pytest.fixture(scope="session")
def monaiEnvironment():
    return ensureEnvironment("monaiauto3dseg")


def buildTinyMonaiModels(python):
    """{model name: {"path", "sha256", "size", "inputs", "segmentNames", "heldOutDice"}} of the tiny model zips."""
    _useCacheFolders()
    output = os.path.join(os.environ[build_tiny_models.DIRECTORY_VARIABLE], "monai")
    result = subprocess.run([python, os.path.join(DEVTOOLS_DIR, "build_tiny_monai.py"), "--output", output],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"Building the tiny MONAI models failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    with open(os.path.join(output, "manifest.json"), encoding="utf-8") as file:
        models = json.load(file)["models"]
    return {name: {**entry, "path": os.path.join(output, entry["file"])} for name, entry in models.items()}


@pytest.fixture(scope="session")
def tinyMonaiModels(monaiEnvironment):
    return buildTinyMonaiModels(monaiEnvironment["python"])
