"""Runtime requirements inside Slicer: lower bounds only, installed only when missing, never replacing a package.

The install tests build a throwaway "Slicer-like" Python: a fresh virtual environment holding what Slicer 5.10
ships for requests and its dependencies (requests 2.32.3, urllib3 2.4.0, ...) and typing_extensions 4.14.0, and run
the real installer code in it (headless it uses ``python -m pip``; inside Slicer the same arguments go to
pip_ensure / pip_install). They need the configured package index.
"""

import json
import os
import subprocess
import sys

import pytest

MODULE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, MODULE_DIR)

from AISegmentationLib import RuntimeInstall, RuntimeRequirements  # noqa: E402

SHIPPED = ["requests", "urllib3", "certifi", "idna", "charset-normalizer", "typing-extensions"]

DRIVER = """
import json, sys
from AISegmentationLib import RuntimeInstall
action, path = sys.argv[1], sys.argv[2]
try:
    result = getattr(RuntimeInstall, action)(requirementsPath=path)
    print(json.dumps({"result": result}))
except (ValueError, RuntimeError) as error:
    print(json.dumps({"error": type(error).__name__, "message": str(error)}))
"""


def _slicerLikePython(folder):
    """A fresh venv (no system site-packages) with Slicer 5.10's versions of the packages named in SHIPPED."""
    venv = os.path.join(folder, "slicer-like")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = os.path.join(venv, "Scripts" if os.name == "nt" else "bin", "python")
    pins = [f"{name}=={RuntimeRequirements.SLICER_5_10_PACKAGES[name]}" for name in SHIPPED]
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins], check=True)
    return python


def _call(python, action, requirementsPath):
    environment = dict(os.environ, PYTHONPATH=MODULE_DIR)
    result = subprocess.run([python, "-c", DRIVER, action, requirementsPath], env=environment, check=True,
                            stdout=subprocess.PIPE, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _installed(python):
    code = "import importlib.metadata as m, json; print(json.dumps({d.metadata['Name'].lower().replace('_', '-'): " \
           "d.version for d in m.distributions()}))"
    return json.loads(subprocess.run([python, "-c", code], check=True, stdout=subprocess.PIPE, text=True).stdout)


def _requirementsFile(folder, name, lines):
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_installs_only_what_is_missing_and_keeps_slicers_versions(tmp_path):
    python = _slicerLikePython(str(tmp_path))
    before = _installed(python)
    # anyio's newest release needs typing_extensions>=4.16: pip must pick an older anyio, not upgrade Slicer's 4.14.
    path = _requirementsFile(str(tmp_path), "requirements.txt", ["requests>=2.32", "anyio>=4.0"])
    assert _call(python, "missingRuntimeRequirements", path) == {"result": ["anyio>=4.0"]}
    plan = _call(python, "planRuntimeInstall", path)["result"]
    assert [name for name, version in plan] == ["anyio"]
    assert _call(python, "installRuntimeRequirements", path) == {"result": ["anyio>=4.0"]}
    after = _installed(python)
    assert after["anyio"] == plan[0][1]
    assert {name: after[name] for name in before} == before, "an installed package was replaced"
    assert _call(python, "installRuntimeRequirements", path) == {"result": []}
    assert _installed(python) == after


@pytest.mark.slow
def test_never_replaces_an_installed_package(tmp_path):
    python = _slicerLikePython(str(tmp_path))
    before = _installed(python)
    # A lower bound above what Slicer ships: an error message, nothing installed (not even the missing one).
    path = _requirementsFile(str(tmp_path), "newer.txt", ["requests>=99", "anyio>=4.0"])
    answer = _call(python, "installRuntimeRequirements", path)
    assert answer["error"] == "ValueError"
    assert "requests>=99" in answer["message"] and "requests 2.32.3 ships with Slicer" in answer["message"]
    # A missing package whose only matching release needs a newer typing_extensions than the installed one:
    # pip is told to keep every installed version and fails before changing anything.
    path = _requirementsFile(str(tmp_path), "transitive.txt", ["anyio>=4.16"])
    answer = _call(python, "installRuntimeRequirements", path)
    assert answer["error"] == "RuntimeError"
    assert "typing-extensions==4.14.0" in answer["message"].lower()
    assert _installed(python) == before


def test_runtime_requirements_file_has_lower_bounds_that_slicer_5_10_meets():
    requirements = RuntimeRequirements.parseRequirementsFile()
    assert requirements, "Resources/requirements.txt lists nothing"
    for requirement in requirements:
        name = RuntimeRequirements.canonicalize_name(requirement.name)
        assert name not in RuntimeRequirements.NEVER_REQUIRED_PACKAGES, f"{requirement}: never list {name}"
        operators = {specifier.operator for specifier in requirement.specifier}
        assert operators == {">="}, f"{requirement}: only one lower bound ('>=') is allowed"
        shipped = RuntimeRequirements.SLICER_5_10_PACKAGES.get(name)
        if shipped:
            assert requirement.specifier.contains(shipped), f"{requirement}: Slicer 5.10 ships {name} {shipped}"
    assert "requests" in {requirement.name for requirement in requirements}


@pytest.mark.slow
def test_runtime_requirements_resolve_against_slicer_5_10_without_replacing_anything(tmp_path):
    """pip, for Slicer 5.10's Python 3.12 on Linux, with everything Slicer ships pinned: the file must resolve."""
    shipped = [f"{name}=={version}" for name, version in RuntimeRequirements.SLICER_5_10_PACKAGES.items()
               if name not in ("pip", "setuptools", "wheel")]
    constraints = _requirementsFile(str(tmp_path), "slicer-5.10.txt", shipped)
    report = os.path.join(str(tmp_path), "report.json")
    subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--disable-pip-version-check",
                    "--ignore-installed", "--target", os.path.join(str(tmp_path), "target"), "--python-version",
                    "3.12", "--implementation", "cp", "--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
                    "--platform", "manylinux2014_x86_64", "--report", report, "-c", constraints, "-r", constraints,
                    "-r", RuntimeRequirements.REQUIREMENTS_FILE], check=True)
    with open(report, encoding="utf-8") as f:
        chosen = {RuntimeRequirements.canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
                  for item in json.load(f)["install"]}
    for requirement in RuntimeRequirements.parseRequirementsFile():
        assert RuntimeRequirements.canonicalize_name(requirement.name) in chosen
    for name in RuntimeRequirements.SLICER_BUILT_PACKAGES | {"torch"}:
        assert name not in chosen, f"the runtime requirements pull {name} into Slicer's Python"


def test_requirements_file_refuses_pip_options_and_urls(tmp_path):
    for line in ["-r other.txt", "--index-url https://example.org/simple", "pooch @ https://example.org/p.whl",
                 "httpx[http2]>=0.28", "not a requirement!"]:
        path = _requirementsFile(str(tmp_path), "bad.txt", ["pooch>=1.9", line])
        with pytest.raises(ValueError, match="bad.txt:2"):
            RuntimeRequirements.parseRequirementsFile(path)


def test_outside_the_slicer_application_pip_runs_in_a_child_process():
    name, installer = RuntimeInstall.chooseInstaller()
    assert name == "python -m pip"
    assert RuntimeInstall.pipPython() == sys.executable


def test_decline_installs_nothing(tmp_path):
    path = _requirementsFile(str(tmp_path), "requirements.txt", ["aisegmentation-not-a-package>=1"])
    asked = []

    def installer(requirements, constraintsPath):
        raise AssertionError("installed although the user declined")

    with pytest.raises(RuntimeInstall.InstallDeclinedError):
        RuntimeInstall.installRuntimeRequirements(confirm=lambda missing: asked.append(missing) or False,
                                                  requirementsPath=path, installer=installer)
    assert asked == [["aisegmentation-not-a-package>=1"]]
