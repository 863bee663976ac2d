"""Entry point of the backend child process: ``python ChildWorker.py REQUEST.json`` or ``ChildWorker.py probe MODULE``.

MODULE is the path of a backend's child module (its ``childModule`` declaration, e.g. ``NnUNet/ChildNnUNet.py``): it
provides ``run(request, channel)`` and ``probe()``; the request names it as ``childModule``. ``probe environment`` is
the backend-neutral probe: the interpreter's prefixes and its installed distributions.

Runs in the backend's Python environment and imports only the standard library, the backend's own packages and
their numeric dependencies (numpy, SimpleITK, nibabel, torch) — never slicer. The request file names the backend,
its child module, the input NIfTI files (in channel order), the output label map and label-name JSON, and the options.
Exit codes: 0 success, 2 a user-fixable problem (ValueError), 3 out of memory, 1 any other failure; each failure
also sends an "error" message on the protocol channel (see ChildProtocol).
"""

import importlib
import os
import sys
import traceback


def _isOutOfMemory(error):
    return isinstance(error, MemoryError) or type(error).__name__ in ("OutOfMemoryError", "OutOfMemory") or (
        isinstance(error, RuntimeError) and "out of memory" in str(error).lower())


def _backendModule(path):
    """Import a backend's child module from its file; its folder joins the search path (also for spawned workers,
    which import it again by name)."""
    from ChildProtocol import UserError

    if not str(path).endswith(".py") or not os.path.isfile(path):
        raise UserError(f"No backend child module '{path}'")
    folder, fileName = os.path.split(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(fileName[:-3])


def _environmentProbe():
    """What any environment holds: prefixes, search path and the versions of its distributions."""
    from importlib import metadata

    versions = {distribution.metadata["Name"]: distribution.version for distribution in metadata.distributions()}
    return {"versions": versions, "prefix": sys.prefix, "basePrefix": sys.base_prefix, "path": sys.path}


def run(argv, channel):
    from ChildProtocol import UserError, readJson

    if len(argv) == 3 and argv[1] == "probe" and argv[2] == "environment":
        channel.result(**_environmentProbe())
        return 0
    if len(argv) == 3 and argv[1] == "probe":
        module = _backendModule(argv[2])
        channel.result(**module.probe())
        return 0
    if len(argv) != 2:
        raise UserError("Usage: ChildWorker.py REQUEST.json | ChildWorker.py probe MODULE.py|environment")
    request = readJson(argv[1])
    module = _backendModule(request["childModule"])
    channel.result(**module.run(request, channel))
    return 0


def _endWithParent():
    """End this process tree when the process that started the job is gone (a backend must not outlive Slicer).

    Watches $AISEGMENTATION_PARENT_PID (set by JobRunner: also right when a launcher such as PythonSlicer stands
    between the two), else the parent process; see ProcessTree."""
    sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # the package root
    import ProcessTree

    return ProcessTree.endWithStarter()


def main(argv):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from ChildProtocol import Channel, UserError

    _endWithParent()
    channel = Channel()
    try:
        return run(argv, channel)
    except UserError as error:
        channel.error("ValueError", str(error))
        return 2
    except SystemExit as error:  # e.g. TotalSegmentator's sys.exit(1) for a missing license
        channel.error("RuntimeError", f"The backend stopped with exit code {error.code}; see the log for its reason")
        return 1
    except BaseException as error:  # noqa: BLE001 - every failure must reach the caller as a message
        details = traceback.format_exc()
        sys.stderr.write(details)
        if _isOutOfMemory(error):
            channel.error("MemoryError", f"The backend ran out of memory: {error}", details)
            return 3
        channel.error("RuntimeError", f"{type(error).__name__}: {error}", details)
        return 1


if __name__ == "__main__":  # required: nnU-Net and TotalSegmentator start spawn pools that re-import this file
    sys.exit(main(sys.argv))
