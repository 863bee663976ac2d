"""A Python laid out like desktop Slicer's, built from this machine's interpreter, for environment tests.

Desktop Slicer (Linux install tree) ships its interpreter as ``bin/python-real``; the standard library lies under
``lib/Python/lib/python3.X`` and libpython under ``lib/Python/lib``; the CTK launcher ``bin/PythonSlicer`` sets
``PYTHONHOME=<install>/lib/Python``, ``PYTHONNOUSERSITE=1`` and the library path, then runs python-real. The
interpreter's compiled-in prefix (the build machine's) does not exist on the user's machine, so python-real alone
cannot start. :func:`buildSlicerLikePython` reproduces that: a copy of this machine's interpreter and libpython whose
compiled-in prefix (also their run path) is patched to a missing path of the same length, the standard library
linked in (lib-dynload included; of site-packages only pip, which Slicer ships too), and a shell-script launcher.
POSIX with a shared libpython only (the layout of this workplace's machines).
"""

import os
import shutil
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


def interpreterFiles():
    """(interpreter, libpython, prefix, version) of this machine's Python installation (from sysconfig)."""
    version = sysconfig.get_config_var("VERSION")
    interpreter = os.path.realpath(os.path.join(sysconfig.get_config_var("BINDIR"), f"python{version}"))
    library = os.path.join(sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME") or "")
    if not sysconfig.get_config_var("Py_ENABLE_SHARED") or not os.path.isfile(library):
        raise ValueError("This Python has no shared libpython; a Slicer-like layout needs one")
    return interpreter, library, sysconfig.get_config_var("prefix"), version


def buildSlicerLikePython(root):
    """Build the layout under root; returns {"root", "launcher", "interpreter", "home", "stdlib", "prefix"}."""
    interpreter, library, prefix, version = interpreterFiles()
    missing = _missingPrefix(prefix)
    home = os.path.join(root, "lib", "Python")
    stdlib = os.path.join(home, "lib", f"python{version}")
    for folder in (os.path.join(root, "bin"), stdlib):
        os.makedirs(folder, exist_ok=True)
    # A library name of our own, so that the loader cannot pick up a system libpython of the same version instead.
    libraryName = os.path.basename(library)
    ownName = libraryName.replace(version, "x" * len(version))
    replacements = [(prefix, missing), (libraryName, ownName)]
    realInterpreter = os.path.join(root, "bin", "python-real")
    _copyPatched(interpreter, realInterpreter, replacements)
    _copyPatched(library, os.path.join(home, "lib", ownName), replacements)
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
            "sitePackages": sitePackages, "prefix": missing}
