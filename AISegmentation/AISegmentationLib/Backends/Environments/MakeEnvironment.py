"""``python MakeEnvironment.py FOLDER``: create a package-less virtual environment of THIS Python, usable on its own.

Run by the base Python (inside desktop Slicer: its ``PythonSlicer`` launcher); standard library only. Steps:

1. ``venv`` without pip (so no ``ensurepip``, which fails for desktop Slicer's python-real; packages come later
   from uv or pip). POSIX: symbolic links to the base interpreter; Windows: the venv launcher, named after the base
   (``Scripts\\python-real.exe`` for Slicer).
2. Make the environment's interpreter start without the launcher. Desktop Slicer's python-real finds neither its
   standard library (``lib/Python/lib/python3.X``: its compiled-in prefix does not exist) nor, on Linux, always its
   libpython without the variables the launcher sets. Tried in order, keeping the first that starts the
   interpreter in isolated mode (``-I``, as uv queries interpreters) AS THIS PYTHON — same ``sys.version``, same
   base prefixes (:func:`starts`): nothing; the folder of libpython in the library path; on POSIX, ``home`` in
   pyvenv.cfg set to ``<base home>/bin``, from where Python's own search finds the standard library under the base
   home. When none starts in isolated mode (Windows: the venv launcher needs ``home`` = the folder of
   python-real.exe), the environment needs ``PYTHONHOME`` = the base home at run time.
   "Starts" alone is not enough: Slicer's Linux python-real has no run path and needs ``libpython3.X.so``, the name
   a distribution's ``libpython3.X-dev`` also provides; without the library path the loader takes that one through
   the ld cache and the interpreter runs as the distribution's Python (``/usr``), not Slicer's.
3. Write what its interpreter needs at run time to ``aisegmentation-runtime.json`` and print it (one JSON line),
   with what builds of source distributions need (``buildVariables``, see Installer.buildVariables).
The base's site-packages stay out (``include-system-site-packages = false``).
"""

import json
import os
import subprocess
import sys
import sysconfig
import venv

RUNTIME_FILE = "aisegmentation-runtime.json"
# Left out when trying the new interpreter: what leaks packages in, and the library path a launcher may have set.
LEAKING = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONEXECUTABLE", "__PYVENV_LAUNCHER__",
           "LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH")


def environmentPython(folder, windows=None):
    """The interpreter of a virtual environment by layout (POSIX bin/, Windows Scripts\\, Slicer's python-real).

    windows: the layout to look for (default: this system's). The first name is returned when none exists."""
    windows = os.name == "nt" if windows is None else windows
    names = (["python.exe", "python-real.exe"] if windows else ["python", "python3", "python-real"])
    scripts = os.path.join(folder, "Scripts" if windows else "bin")
    for name in names:
        if os.path.isfile(os.path.join(scripts, name)):
            return os.path.join(scripts, name)
    return os.path.join(scripts, names[0])


def libraryFolders():
    """The folder holding this Python's shared libpython (POSIX; Windows finds its DLL beside the interpreter)."""
    if os.name == "nt":
        return []
    executableDir = os.path.dirname(os.path.realpath(sys.executable))
    candidates = [os.path.join(sys.base_prefix, "lib"), os.path.join(os.path.dirname(executableDir), "lib"),
                  sysconfig.get_config_var("LIBDIR") or ""]
    for folder in candidates:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        if any(name.startswith("libpython") and (".so" in name or name.endswith(".dylib")) for name in names):
            return [os.path.realpath(folder)]
    return []


def libraryVariables(folders):
    if not folders:
        return {}
    name = "DYLD_LIBRARY_PATH" if sys.platform == "darwin" else "LD_LIBRARY_PATH"
    return {name: os.pathsep.join(folders)}


IDENTITY_CODE = ("import encodings, json, os, sys; print(json.dumps([sys.version, os.path.realpath(sys.base_prefix), "
                 "os.path.realpath(sys.base_exec_prefix)]))")


def identity():
    """What makes this Python the base: its exact version and its installation (base prefixes, real paths)."""
    return [sys.version, os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix)]


def startedIdentity(python, variables, isolated=True):
    """The identity (see :func:`identity`) of the Python that `python` starts with these variables, or None."""
    env = {key: value for key, value in os.environ.items() if key not in LEAKING}
    env.update(variables)
    command = [python] + (["-I"] if isolated else []) + ["-c", IDENTITY_CODE]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    try:
        return json.loads(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else None
    except (ValueError, IndexError):
        return None


def describe(found):
    return "nothing (it does not start)" if found is None else f"Python {found[0].split()[0]} of {found[1]}"


def starts(python, variables, isolated=True, tried=None):
    """Whether `python` starts as THIS Python's installation, not merely whether it starts.

    A python-real without run path whose libpython (``libpython3.X.so``) the loader finds elsewhere — a
    distribution's ``libpython3.X-dev`` provides that name — starts as that other Python of the same version: its
    base prefix (and usually its exact version) differ. tried: a list that gets what started, for the message."""
    found = startedIdentity(python, variables, isolated)
    if tried is not None:
        tried.append(found)
    return found == identity()


def setHome(folder, home):
    path = os.path.join(folder, "pyvenv.cfg")
    with open(path, encoding="utf-8") as file:
        lines = file.read().splitlines()
    lines = [f"home = {home}" if line.split("=")[0].strip() == "home" else line for line in lines]
    with open(path, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")


def pipRunner():
    """pip's ``__pip-runner__.py`` of this Python (runs this pip in another interpreter), or None."""
    try:
        import pip
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(pip.__file__)), "__pip-runner__.py")
    return path if os.path.isfile(path) else None


def main(folder):
    folder = os.path.abspath(folder)
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt", clear=False).create(folder)
    python = environmentPython(folder)
    home = os.path.normpath(sys.base_prefix)
    runtime = {"python": python, "base": os.path.realpath(sys.executable), "home": home,
               "version": sys.version.split()[0], "libraryPath": [], "pythonHome": None, "homeChanged": False}
    tried = []
    if not starts(python, {}, tried=tried):
        runtime["libraryPath"] = libraryFolders()
        variables = libraryVariables(runtime["libraryPath"])
        if not starts(python, variables, tried=tried) and os.name != "nt":
            setHome(folder, os.path.join(home, "bin"))
            runtime["homeChanged"] = True
        if not starts(python, variables, tried=tried):
            runtime["pythonHome"] = home
            if not starts(python, dict(variables, PYTHONHOME=home), isolated=False, tried=tried):
                raise RuntimeError(f"The new environment's Python ({python}) does not start as the base Python "
                                   f"{sys.version.split()[0]} of {os.path.realpath(home)}, even with "
                                   f"PYTHONHOME={home}; it started: {', '.join(map(describe, tried))}")
    # Build environments of source distributions (uv makes them from the base's executable, home = its folder) find
    # the standard library as the environment did before its home was changed: not at all. They need PYTHONHOME.
    runtime["buildVariables"] = {"PYTHONHOME": home} if runtime["homeChanged"] else {}
    runtime["isolatedStart"] = runtime["pythonHome"] is None
    runtime["pipRunner"] = pipRunner()
    with open(os.path.join(folder, RUNTIME_FILE), "w", encoding="utf-8") as file:
        json.dump(runtime, file, indent=1)
    print(json.dumps(runtime), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("Usage: MakeEnvironment.py FOLDER\n")
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
