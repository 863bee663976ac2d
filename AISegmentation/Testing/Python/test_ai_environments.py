"""Backend environments created from a desktop-Slicer-like Python (launcher + python-real + PYTHONHOME).

The Slicer-like Python is built here from this machine's interpreter (SlicerLikePython.py). The environment tests
reach the package index (the configured one: pip's configuration of this machine applies to uv too) for one small
pure-Python package and for uv itself. This layout renames libpython, so no other libpython can stand in for it; the
variants with libpython under Slicer's name (another same-version libpython present or absent), the Logic run under
the launcher and a source distribution built from Slicer's Python are in test_environment_base_python.py.
"""

import os
import subprocess
import sys

import pytest

from AISegmentationLib.Backends.Environments import Environments, Installer
from SlicerLikePython import buildSlicerLikePython

TINY_REQUIREMENTS = "six==1.17.0\n"
MARKER_MODULE = "slicer_only_marker"


@pytest.fixture(scope="module")
def slicerPython(tmp_path_factory):
    layout = buildSlicerLikePython(str(tmp_path_factory.mktemp("Slicer-5.10")))
    with open(os.path.join(layout["sitePackages"], f"{MARKER_MODULE}.py"), "w", encoding="utf-8") as file:
        file.write("IN_SLICER = True\n")  # a package of Slicer's own Python that environments must not see
    return layout


def _clean():
    return {key: value for key, value in os.environ.items()
            if key not in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "LD_LIBRARY_PATH")}


def _run(command, env=None):
    return subprocess.run(command, capture_output=True, text=True, env=env or _clean(), check=False, timeout=300)


def test_slicer_like_python_needs_its_launcher_and_venv_fails_at_ensurepip(slicerPython, tmp_path):
    alone = _run([slicerPython["interpreter"], "-c", "import sys"])
    assert alone.returncode != 0
    withLibrary = _run([slicerPython["interpreter"], "-c", "import sys"],
                       dict(_clean(), LD_LIBRARY_PATH=os.path.join(slicerPython["home"], "lib")))
    assert withLibrary.returncode != 0 and "encodings" in withLibrary.stderr  # its compiled-in prefix is missing
    launched = _run([slicerPython["launcher"], "-c", f"import sys, pip, {MARKER_MODULE}; print(sys.prefix)"])
    assert launched.returncode == 0, launched.stderr
    assert os.path.realpath(launched.stdout.strip()) == os.path.realpath(slicerPython["home"])
    venv = _run([slicerPython["launcher"], "-m", "venv", str(tmp_path / "venv")])  # what AISegmentation did
    assert venv.returncode != 0 and "ensurepip" in venv.stdout + venv.stderr


def _tinyManager(tmp_path, installer="auto"):
    requirementsDir = tmp_path / "requirements"
    requirementsDir.mkdir()
    (requirementsDir / "tiny-requirements.txt").write_text(TINY_REQUIREMENTS)
    return Environments.EnvironmentManager(str(tmp_path / "environments"), requirementsDir=str(requirementsDir),
                                           installer=installer)


@pytest.mark.slow
@pytest.mark.parametrize("installer", ["auto", "pip"])
def test_environment_from_slicer_like_python_is_ready_and_isolated(slicerPython, tmp_path, monkeypatch,
                                                                   installer):
    monkeypatch.setenv(Environments.BASE_PYTHON_VARIABLE, slicerPython["interpreter"])  # its launcher is used
    monkeypatch.setenv("AISEGMENTATION_TORCH_BACKEND", "pypi")
    manager = _tinyManager(tmp_path, installer)
    assert manager.status("tiny") == "missing"
    manager.startJob("tiny", backendName="environment").wait(timeout=600)
    details = manager.details("tiny")
    assert details["state"] == "ready", details["message"]
    assert details["installer"].startswith("uv" if installer == "auto" else "pip")
    probe = manager.probe("tiny")
    assert probe["versions"].get("six") == "1.17.0" and "pip" not in probe["versions"]
    assert os.path.realpath(probe["prefix"]) == os.path.realpath(manager.folder("tiny"))
    assert os.path.realpath(probe["basePrefix"]) == os.path.realpath(slicerPython["home"])
    assert not any(os.path.realpath(path) == os.path.realpath(slicerPython["sitePackages"]) for path in probe["path"])
    python = details["python"]
    env = Environments.childEnvironment(True, python=python)
    seen = _run([python, "-c", f"import six, importlib.util; print(importlib.util.find_spec('{MARKER_MODULE}'))"],
                env)
    assert seen.returncode == 0 and seen.stdout.strip() == "None", seen.stderr
    assert Installer.uvExecutable(manager.root) is not None or installer == "pip"


def test_environment_python_is_found_by_layout(tmp_path):
    from AISegmentationLib.Backends.Environments.MakeEnvironment import environmentPython

    scripts = tmp_path / "env" / "Scripts"
    scripts.mkdir(parents=True)
    assert environmentPython(str(tmp_path / "env"), windows=True) == str(scripts / "python.exe")  # missing: default
    (scripts / "python-real.exe").write_bytes(b"")  # a venv of desktop Slicer's python-real.exe
    assert environmentPython(str(tmp_path / "env"), windows=True) == str(scripts / "python-real.exe")
    (scripts / "python.exe").write_bytes(b"")
    assert environmentPython(str(tmp_path / "env"), windows=True) == str(scripts / "python.exe")
    posix = tmp_path / "posix" / "bin"
    posix.mkdir(parents=True)
    (posix / "python-real").write_bytes(b"")
    assert environmentPython(str(tmp_path / "posix"), windows=False) == str(posix / "python-real")


def test_base_python_is_the_launcher_beside_python_real(slicerPython, monkeypatch):
    monkeypatch.setenv(Environments.BASE_PYTHON_VARIABLE, slicerPython["interpreter"])
    assert Environments.basePython() == slicerPython["launcher"]
    monkeypatch.setenv(Environments.BASE_PYTHON_VARIABLE, sys.executable)
    assert Environments.basePython() == sys.executable


def test_pip_configuration_becomes_uv_settings():
    from AISegmentationLib.Backends.Environments.PipConfig import parsePipConfigList, uvEnvironment

    text = ("global.index-url='https://mirror.hospital.example/simple'\n"
            "global.extra-index-url='file:///opt/pypi/simple file:///opt/more/simple'\n"
            "global.find-links='/opt/wheels'\ninstall.find-links='/srv/wheels /opt/wheels'\n"
            "global.constraint='/etc/pip/constraints.txt'\nglobal.trusted-host='mirror.hospital.example'\n"
            ":env:.cert='/etc/ssl/bundle.crt'\nglobal.cert='/ignored.crt'\nglobal.proxy='http://proxy:3128'\n"
            ":env:.timeout='60'\n")
    options = parsePipConfigList(text)
    assert options["find-links"] == "/srv/wheels /opt/wheels" and options["cert"] == "/etc/ssl/bundle.crt"
    variables = uvEnvironment(options, {"HTTP_PROXY": "http://already:1"})
    assert variables == {"UV_DEFAULT_INDEX": "https://mirror.hospital.example/simple",
                         "UV_INDEX": "file:///opt/pypi/simple file:///opt/more/simple",
                         "UV_FIND_LINKS": "/srv/wheels,/opt/wheels", "UV_INDEX_STRATEGY": "unsafe-best-match",
                         "UV_CONSTRAINT": "/etc/pip/constraints.txt", "UV_INSECURE_HOST": "mirror.hospital.example",
                         "SSL_CERT_FILE": "/etc/ssl/bundle.crt", "HTTPS_PROXY": "http://proxy:3128",
                         "UV_HTTP_TIMEOUT": "60"}
    assert uvEnvironment(parsePipConfigList("")) == {}
