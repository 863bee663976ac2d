"""A Python laid out like desktop Slicer's, built from this machine's interpreter, for environment tests.

Desktop Slicer (Linux install tree) ships its interpreter as ``bin/python-real``; the standard library lies under
``lib/Python/lib/python3.X`` and libpython under ``lib/Python/lib``; the CTK launcher ``bin/PythonSlicer`` sets
``PYTHONHOME=<install>/lib/Python``, ``PYTHONNOUSERSITE=1`` and the library path, then runs python-real. The
interpreter's compiled-in prefix (the build machine's) does not exist on the user's machine, so python-real alone
cannot start. :func:`buildSlicerLikePython` reproduces that: a copy of this machine's interpreter and libpython whose
compiled-in prefix (also their run path) is patched to a missing path of the same length, the standard library
linked in (lib-dynload included; of site-packages only pip, which Slicer ships too), and a shell-script launcher.
POSIX with a shared libpython only (the layout of this workplace's machines).

Facts of Slicer 5.10's Linux package that the variants model (read in Slicer's and python-cmake-buildsystem's source):

- python-real has no run path: python-cmake-buildsystem installs it with ``install(TARGETS python ...)`` and no
  INSTALL_RPATH (``cmake/python/CMakeLists.txt``, the revision Slicer pins in ``SuperBuild/External_python.cmake``);
  ``CMake/SlicerBlockInstallPython.cmake`` copies it as ``bin/python-real`` and adds a run path on macOS only.
- libpython is named ``libpython3.X.so`` (``OUTPUT_NAME python3.X`` and no SOVERSION in
  ``cmake/libpython/CMakeLists.txt``, so that is also its SONAME and python-real's NEEDED entry) — the name a
  distribution's ``libpython3.X-dev`` provides too (Debian: ``/usr/lib/x86_64-linux-gnu/libpython3.11.so``).
  Without the launcher's library path the loader then takes another libpython of the same version when it can find
  one: python-real starts, but as that other installation's Python.

Variants (arguments of :func:`buildSlicerLikePython`):

- ``libraryName="renamed"`` (the default): python-real needs ``libpythonxxxx.so...``, a name no other installation
  has, so without the launcher's library path no libpython is found ("no other libpython").
- ``libraryName="real"``: python-real needs ``libpython3.X.so`` as Slicer's does. Whether the loader finds another
  one depends on ``otherLibrary``:
  ``"cache"`` — the ld cache (``/etc/ld.so.cache``) decides, as on a user's machine: present where ``ldconfig -p``
  lists ``libpython3.X.so`` (a distribution's dev package), absent elsewhere (:func:`cachedLibrary` tells which);
  ``"runPath"`` — python-real keeps the run path of this machine's installation, whose ``lib`` folder holds its
  own ``libpython3.X.so``: a same-version libpython (even the same build) that the loader finds without the library
  path, with another base prefix, on every machine. A run path is searched after ``LD_LIBRARY_PATH`` and before the
  ld cache, so with the launcher's library path Slicer's libpython still wins, as with the ld cache.
"""

import os
import shutil
import subprocess
import sysconfig

MISSING_PREFIX_STEM = "/missing-prefix"


def _missingPrefix(prefix):
    """A path of exactly len(prefix) characters that does not exist, ending like prefix.

    The last component is kept: linkers merge string tails, so e.g. the version string "3.11.7" may be the tail of
    the prefix "/opt/python/3.11.7" in the binary, and it must not change.
    """
    head, tail = os.path.split(prefix.rstrip("/"))
    for stem in (MISSING_PREFIX_STEM, "/m", "/q"):
        candidate = (stem + "-" * len(head))[: len(head)] + "/" + tail
        if len(head) > len(stem) and not os.path.exists(candidate) and len(candidate) == len(prefix):
            return candidate
    raise ValueError(f"Cannot make a missing path as long as the prefix '{prefix}'")


def _copyPatched(source, destination, replacements):
    """Copy a binary, replacing strings by others of the same length (so that its layout is unchanged)."""
    with open(source, "rb") as file:
        content = file.read()
    for old, new in replacements:
        if len(old) != len(new) or old.encode() not in content:
            raise ValueError(f"Cannot replace '{old}' in '{source}' (missing, or not the same length as '{new}')")
        content = content.replace(old.encode(), new.encode())
    with open(destination, "wb") as file:
        file.write(content)
    shutil.copymode(source, destination)


def _nameReplacement(old, new):
    """Replace the whole NUL-terminated string old (a NEEDED or SONAME entry) by new, padded with NULs."""
    if len(new) > len(old):
        raise ValueError(f"Cannot rename '{old}' to the longer '{new}' in place")
    return old + "\0", new + "\0" * (len(old) - len(new) + 1)


def cachedLibrary(name):
    """The path the ld cache (``ldconfig -p``) gives for a library name, or None (no cache, or not in it)."""
    for ldconfig in ("/sbin/ldconfig", "/usr/sbin/ldconfig", shutil.which("ldconfig")):
        if ldconfig and os.path.isfile(ldconfig):
            result = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, check=False)
            for line in result.stdout.splitlines():
                if line.strip().split(" ", 1)[0] == name and "=>" in line:
                    return line.split("=>", 1)[1].strip()
            return None
    return None


def interpreterFiles():
    """(interpreter, libpython, prefix, version) of this machine's Python installation (from sysconfig)."""
    version = sysconfig.get_config_var("VERSION")
    interpreter = os.path.realpath(os.path.join(sysconfig.get_config_var("BINDIR"), f"python{version}"))
    library = os.path.join(sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME") or "")
    if not sysconfig.get_config_var("Py_ENABLE_SHARED") or not os.path.isfile(library):
        raise ValueError("This Python has no shared libpython; a Slicer-like layout needs one")
    return interpreter, library, sysconfig.get_config_var("prefix"), version


def slicerLibraryName(version=None):
    """libpython's name in Slicer's package: python-cmake-buildsystem's ``libpython3.X<abiflags>.so``."""
    version = version or sysconfig.get_config_var("VERSION")
    return f"libpython{version}{sysconfig.get_config_var('ABIFLAGS') or ''}.so"


LIBRARY_NAMES = ("renamed", "real")
OTHER_LIBRARIES = ("cache", "runPath")


def buildSlicerLikePython(root, libraryName="renamed", otherLibrary="cache"):
    """Build the layout under root (variants: see the module docstring).

    Returns {"root", "launcher", "interpreter", "home", "stdlib", "sitePackages", "prefix", "libraryName",
    "otherLibrary"}: otherLibrary is the libpython that python-real loads without the launcher's library path (None:
    none is found, so python-real alone does not start)."""
    if libraryName not in LIBRARY_NAMES or otherLibrary not in OTHER_LIBRARIES:
        raise ValueError(f"Unknown variant {libraryName!r}/{otherLibrary!r}: choose {LIBRARY_NAMES} and "
                         f"{OTHER_LIBRARIES}")
    interpreter, library, prefix, version = interpreterFiles()
    missing = _missingPrefix(prefix)
    home = os.path.join(root, "lib", "Python")
    stdlib = os.path.join(home, "lib", f"python{version}")
    for folder in (os.path.join(root, "bin"), stdlib):
        os.makedirs(folder, exist_ok=True)
    installedName = os.path.basename(library)
    if libraryName == "renamed":
        # A library name of our own, so that the loader cannot pick up another libpython of the same version.
        ownName = installedName.replace(version, "x" * len(version))
        nameReplacement, other = (installedName, ownName), None
    else:
        ownName = slicerLibraryName(version)
        nameReplacement = _nameReplacement(installedName, ownName)
        if otherLibrary == "runPath":
            other = os.path.join(os.path.dirname(library), ownName)
            if not os.path.isfile(other):
                raise ValueError(f"This Python's library folder has no '{ownName}' for the run-path variant")
        else:
            other = cachedLibrary(ownName)
    keepRunPath = libraryName == "real" and otherLibrary == "runPath"
    realInterpreter = os.path.join(root, "bin", "python-real")
    _copyPatched(interpreter, realInterpreter, [nameReplacement] + ([] if keepRunPath else [(prefix, missing)]))
    _copyPatched(library, os.path.join(home, "lib", ownName), [(prefix, missing), nameReplacement])
    realStdlib = sysconfig.get_paths()["stdlib"]
    for entry in os.listdir(realStdlib):
        if entry != "site-packages":
            os.symlink(os.path.join(realStdlib, entry), os.path.join(stdlib, entry))
    sitePackages = os.path.join(stdlib, "site-packages")
    os.makedirs(sitePackages)
    import pip

    os.symlink(os.path.dirname(pip.__file__), os.path.join(sitePackages, "pip"))
    launcher = os.path.join(root, "bin", "PythonSlicer")
    with open(launcher, "w", encoding="utf-8") as file:
        file.write('#!/bin/sh\n# Like the CTK launcher of desktop Slicer: home, no user site, library path.\n'
                   'here=$(cd "$(dirname "$0")" && pwd)\n'
                   'export PYTHONHOME="$here/../lib/Python"\nexport PYTHONNOUSERSITE=1\n'
                   'export LD_LIBRARY_PATH="$here/../lib/Python/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"\n'
                   'exec "$here/python-real" "$@"\n')
    os.chmod(launcher, 0o755)
    return {"root": root, "launcher": launcher, "interpreter": realInterpreter, "home": home, "stdlib": stdlib,
            "sitePackages": sitePackages, "prefix": missing, "libraryName": ownName, "otherLibrary": other}
