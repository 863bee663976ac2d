"""Environments made from desktop Slicer's Python run THAT Python, and can build source distributions.

Slicer's Linux python-real has no run path and needs ``libpython3.X.so`` — the name a distribution's
``libpython3.X-dev`` also provides — so without the launcher's library path the loader may take another libpython of
the same version and python-real starts as that other Python. The layouts (SlicerLikePython.py, whose docstring says
how each variant is made and which Slicer facts it models): libpython renamed (no other one can be found); under its
real name with this machine's ld cache deciding (present here when ``ldconfig -p`` lists it); under its real name
with another same-version libpython on the run path (present on every machine). The Logic that creates environments
runs in a plain Python pointing at python-real ("plain": the launcher beside it becomes the base) and inside the
Slicer-like Python under its launcher ("launcher": PYTHONHOME and the library path are inherited, as under
PythonSlicer). The slow tests install a source distribution built here (setuptools comes from the package index, as
for nnU-Net's ``acvl-utils``).
"""

import json
import os
import subprocess
import sys
import tarfile

import pytest

from AISegmentationLib.Backends.Environments import Environments, MakeEnvironment
from SlicerLikePython import buildSlicerLikePython, slicerLibraryName

MODULE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VARIANTS = [("renamed", "cache"), ("real", "cache"), ("real", "runPath")]
VARIANT_IDS = ["renamed", "real-ldcache", "real-runpath"]
MODES = ["plain", "launcher"]
IDENTITY = "import json, os, sys; print(json.dumps([sys.version, os.path.realpath(sys.base_prefix)]))"


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    built = {}

    def layout(libraryName, otherLibrary):
        key = (libraryName, otherLibrary)
        if key not in built:
            root = tmp_path_factory.mktemp(f"Slicer-{libraryName}-{otherLibrary}")
            try:
                built[key] = buildSlicerLikePython(str(root), libraryName, otherLibrary)
            except ValueError as error:  # e.g. no libpython3.X.so in this Python's library folder
                pytest.skip(str(error))
        return built[key]

    return layout


def _clean(**extra):
    """This process's environment without what a launcher or a virtual environment sets."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "PYTHONNOUSERSITE")}
    env.update(extra)
    return env


def _run(command, env, timeout=300):
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=timeout)


def _identity(python, env):
    result = _run([python, "-c", IDENTITY], env)
    return json.loads(result.stdout) if result.returncode == 0 else None


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_layout_variants_load_the_libpython_they_claim(layouts, variant):
    """What python-real alone runs: nothing (renamed), the ld cache's libpython, or the run path's."""
    layout = layouts(*variant)
    alone = _identity(layout["interpreter"], _clean())
    launched = _identity(layout["launcher"], _clean())
    assert launched is not None and launched[1] == os.path.realpath(layout["home"])
    if layout["otherLibrary"] is None:
        assert alone is None
    else:
        # Another Python of the same version (from the ld cache here: Debian's 3.11.2 of /usr), not Slicer's.
        assert alone is not None and alone[1] != os.path.realpath(layout["home"])
        assert alone[0].split(".")[:2] == launched[0].split(".")[:2]
    if variant[0] == "real":
        assert layout["libraryName"] == slicerLibraryName()
        assert os.path.isfile(os.path.join(layout["home"], "lib", slicerLibraryName()))


def _makeEnvironment(layout, mode, folder):
    """Run MakeEnvironment as Environments does: by the launcher (plain), or by python-real with the launcher's
    variables inherited (launcher); returns (runtime, the environment the Logic's children inherit)."""
    launcherVariables = {"PYTHONHOME": layout["home"], "PYTHONNOUSERSITE": "1",
                         "LD_LIBRARY_PATH": os.path.join(layout["home"], "lib")}
    inherited = _clean(**launcherVariables) if mode == "launcher" else _clean()
    base = layout["interpreter"] if mode == "launcher" else layout["launcher"]
    made = _run([base, MakeEnvironment.__file__, folder], inherited)
    assert made.returncode == 0, made.stderr
    return json.loads(made.stdout.strip().splitlines()[-1]), inherited


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_environment_runs_the_base_python_not_another_of_its_version(layouts, variant, mode, tmp_path):
    layout = layouts(*variant)
    folder = str(tmp_path / "env")
    runtime, inherited = _makeEnvironment(layout, mode, folder)
    home = os.path.realpath(layout["home"])
    python = MakeEnvironment.environmentPython(folder)
    # As uv and every child see it: the recorded run-time variables on top of what the Logic's process has.
    env = dict(inherited)
    env.pop("PYTHONHOME", None)
    for name, value in Environments.runtimeVariables(python).items():
        env[name] = value if name == "PYTHONHOME" or not env.get(name) else value + os.pathsep + env[name]
    for isolated in ([], ["-I"]):
        result = _run([python, *isolated, "-c", IDENTITY], env)
        assert result.returncode == 0, result.stderr
        version, basePrefix = json.loads(result.stdout)
        assert basePrefix == home, f"the environment runs the Python of {basePrefix}, not the base of {home}"
        assert version == _identity(layout["launcher"], _clean())[0]
    if layout["otherLibrary"] is not None:
        assert runtime["libraryPath"], "another libpython is found without the library path: it must be recorded"


def test_probe_refuses_a_python_of_another_installation(tmp_path):
    """starts() compares what started with this Python: one that starts, but from another prefix, is refused."""
    import sysconfig

    folder = str(tmp_path / "env")
    made = _run([sys.executable, MakeEnvironment.__file__, folder], _clean())
    assert made.returncode == 0, made.stderr
    python = MakeEnvironment.environmentPython(folder)
    assert MakeEnvironment.starts(python, {})
    other = tmp_path / "other"  # another installation of the same Python: its standard library, another prefix
    (other / "lib").mkdir(parents=True)
    os.symlink(sysconfig.get_paths()["stdlib"], other / "lib" / os.path.basename(sysconfig.get_paths()["stdlib"]))
    started = _run([python, "-c", IDENTITY], _clean(PYTHONHOME=str(other)))
    assert started.returncode == 0 and json.loads(started.stdout)[1] == str(other.resolve()), started.stderr
    assert not MakeEnvironment.starts(python, {"PYTHONHOME": str(other)}, isolated=False)
    assert MakeEnvironment.starts(python, {"PYTHONHOME": sys.base_prefix}, isolated=False)


def _tinySdist(folder):
    """A source distribution only (no wheel anywhere): uv or pip must build it with setuptools."""
    source = folder / "tinysdist-1.0"
    (source / "tinysdist").mkdir(parents=True)
    (source / "tinysdist" / "__init__.py").write_text("VALUE = 42\n")
    (source / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "tinysdist"\nversion = "1.0"\n')
    (source / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: tinysdist\nVersion: 1.0\n")
    archive = folder / "tinysdist-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="tinysdist-1.0")
    return archive


DRIVER = """
import json, os, subprocess, sys
sys.path.insert(0, sys.argv[1])
from AISegmentationLib.Backends.Environments import Environments
root, requirementsDir, installer, name = sys.argv[2:6]
manager = Environments.EnvironmentManager(root, requirementsDir=requirementsDir, installer=installer)
job = manager.startJob(name, backendName="environment")
try:
    job.wait(timeout=900)
except RuntimeError:  # a failed step: the state and its message say why
    pass
details = manager.details(name)
imported = subprocess.run([details["python"], "-c", "import tinysdist; print(tinysdist.VALUE)"], text=True,
                          capture_output=True, env=Environments.childEnvironment(True, python=details["python"]))
print(json.dumps({"details": details, "probe": manager.probe(name), "log": job.logLines(),
                  "imported": imported.stdout.strip() + imported.stderr, "base": Environments.basePython()}))
"""


@pytest.fixture(scope="module")
def environmentsRoot(tmp_path_factory):
    """One root for the module's environments (one each), so that uv is fetched once."""
    return str(tmp_path_factory.mktemp("environments"))


def _createFromSdist(layout, mode, installer, root, tmp_path):
    """Create an environment of the tiny sdist with the Logic run in mode; returns what the driver reports."""
    name = f"{os.path.basename(layout['root'])}-{mode}-{installer}"
    requirementsDir = tmp_path / "requirements"
    requirementsDir.mkdir()
    archive = _tinySdist(tmp_path)
    (requirementsDir / f"{name}-requirements.txt").write_text(f"tinysdist @ {archive.as_uri()}\n")
    env = _clean(AISEGMENTATION_TORCH_BACKEND="pypi")
    env.pop(Environments.BASE_PYTHON_VARIABLE, None)
    if mode == "plain":  # this test's Python runs the Logic; the base is python-real (its launcher is used)
        command = [sys.executable, "-c", DRIVER]
        env[Environments.BASE_PYTHON_VARIABLE] = layout["interpreter"]
    else:  # the Logic runs in the Slicer-like Python under its launcher, which sets PYTHONHOME and the library path
        command = [layout["launcher"], "-c", DRIVER]
    result = _run(command + [MODULE_DIR, root, str(requirementsDir), installer, name], env, timeout=1000)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_environment_from_slicer_python_builds_a_source_distribution(layouts, variant, mode, environmentsRoot,
                                                                     tmp_path):
    layout = layouts(*variant)
    report = _createFromSdist(layout, mode, "auto", environmentsRoot, tmp_path)
    details, probe = report["details"], report["probe"]
    log = "\n".join(report["log"])
    assert details["state"] == "ready", f"{details['message']}\n{log[-3000:]}"
    assert details["installer"].startswith("uv")
    assert report["base"] == (layout["interpreter"] if mode == "launcher" else layout["launcher"])
    assert "Built tinysdist" in log  # built here from the source distribution, not taken from a cache
    assert os.path.realpath(probe["basePrefix"]) == os.path.realpath(layout["home"])
    assert probe["versions"].get("tinysdist") == "1.0"
    assert report["imported"] == "42"


@pytest.mark.slow
def test_pip_installer_builds_a_source_distribution_from_slicer_python(layouts, environmentsRoot, tmp_path):
    layout = layouts("real", "runPath")
    report = _createFromSdist(layout, "plain", "pip", environmentsRoot, tmp_path)
    details, probe = report["details"], report["probe"]
    assert details["state"] == "ready", f"{details['message']}\n" + "\n".join(report["log"])[-3000:]
    assert details["installer"] == "pip"
    assert os.path.realpath(probe["basePrefix"]) == os.path.realpath(layout["home"])
    assert probe["versions"].get("tinysdist") == "1.0" and report["imported"] == "42"
