"""Output files written atomically: to a temporary name in the target's own folder, renamed over the target once
complete. Whoever looks at the target (a user after Ctrl-C, a SIGTERM or a failed write) finds the previous file
or the complete new one, never a part of it.

    with atomicOutput("out/case.seg.nrrd") as temporary:   # out/case.tmp-aisegmentation-1a2b3c4d.seg.nrrd
        storageNode.SetFileName(temporary)
        storageNode.WriteData(node)

The temporary name keeps the target's extension (".seg.nrrd", ".nii.gz", ...) so that Slicer's writers choose the
same format. Formats that write a header plus a data file (.nhdr, .mhd) are written into a temporary folder beside
the target and moved out data file first, header (the target) last. A temporary name is one no user would choose:
the marker ``.tmp-aisegmentation-`` and 8 random hex digits before the extension (see isTemporaryName); whoever
cleans up after an interruption removes only such names, and only in the folders it writes.
"""

import contextlib
import logging
import os
import re
import secrets
import shutil

COMPOUND_EXTENSIONS = (".seg.nrrd", ".nii.gz", ".labels.json", ".mrk.json", ".seg.nhdr")
DETACHED_EXTENSIONS = (".nhdr", ".mhd", ".seg.nhdr")
TEMPORARY_MARKER = ".tmp-aisegmentation-"
TEMPORARY_DIGITS = 8
_TEMPORARY_NAME = re.compile(re.escape(TEMPORARY_MARKER) + r"[0-9a-f]{%d}(?:\.[A-Za-z0-9]+)*$" % TEMPORARY_DIGITS)


def splitExtension(fileName):
    """("case", ".seg.nrrd") for "case.seg.nrrd": the compound extensions Slicer's writers recognise stay whole."""
    lower = fileName.lower()
    for extension in COMPOUND_EXTENSIONS:
        if lower.endswith(extension) and len(fileName) > len(extension):
            return fileName[: -len(extension)], fileName[-len(extension):]
    return os.path.splitext(fileName)


def isTemporaryName(fileName):
    """True for the names atomicOutput gives its temporary files and folders (marker, 8 hex digits, extension)."""
    return _TEMPORARY_NAME.search(os.path.basename(os.fspath(fileName))) is not None


def requireWritableOutput(path):
    """ValueError unless the output file could be created: its folder exists or can be made, and is writable.
    Creates nothing (a command checks its outputs this way before a long computation)."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        raise ValueError(f"Output '{path}' is a folder, not a file name")
    folder = os.path.dirname(path)
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"Cannot create the output folder '{folder}': '{existing}' is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"Cannot write to the output folder '{existing}': permission denied")
    return path


def prepareOutputFolder(path):
    """Create the folder of an output file; ValueError naming the folder when it cannot be created."""
    path = requireWritableOutput(path)
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise ValueError(f"Cannot create the output folder '{folder}': {error.strerror or error}") from None
    return folder


@contextlib.contextmanager
def atomicOutput(path):
    """Yield a temporary path to write `path`'s content to; on success it replaces `path`, on any failure or
    interruption (KeyboardInterrupt, a signal turned into an exception) it is removed and `path` is untouched."""
    path = os.path.abspath(os.fspath(path))
    folder = prepareOutputFolder(path)
    base, extension = splitExtension(os.path.basename(path))
    detached = extension.lower() in DETACHED_EXTENSIONS
    temporary = _unusedName(folder, base, extension, detached)
    written = os.path.join(temporary, os.path.basename(path)) if detached else temporary
    try:
        if detached:
            os.mkdir(temporary)
        yield written
        if not os.path.isfile(written):
            raise ValueError(f"Could not write '{path}': the writer produced no file")
        if detached:
            _moveOut(temporary, folder, os.path.basename(path))
        else:
            _fsyncFile(temporary)
            os.replace(temporary, path)
        _fsyncFolder(folder)
    except OSError as error:
        raise ValueError(f"Could not write '{path}': {error.strerror or error}") from None
    finally:
        _removeQuietly(temporary)


@contextlib.contextmanager
def atomicOpen(path, mode="w", **openOptions):
    """open() for writing, atomically: the file object writes a temporary file that replaces `path` on success."""
    with atomicOutput(path) as temporary:
        with open(temporary, mode, **openOptions) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())


def writeText(path, text):
    """Write a text file (UTF-8) atomically; returns the path."""
    with atomicOpen(path, "w", encoding="utf-8") as file:
        file.write(text)
    return os.fspath(path)


def _unusedName(folder, base, extension, detached):
    while True:
        suffix = secrets.token_hex(TEMPORARY_DIGITS // 2)
        name = f"{'.' if detached else ''}{base}{TEMPORARY_MARKER}{suffix}{extension}"
        candidate = os.path.join(folder, name)
        if not os.path.lexists(candidate):
            return candidate


def _moveOut(temporaryFolder, folder, targetName):
    """Move a header + data file pair out of its temporary folder: data files first, the header (target) last."""
    names = sorted(os.listdir(temporaryFolder), key=lambda name: name == targetName)
    for name in names:
        _fsyncFile(os.path.join(temporaryFolder, name))
    for name in names:
        os.replace(os.path.join(temporaryFolder, name), os.path.join(folder, name))


def _fsyncFile(path):
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def _fsyncFolder(folder):
    if os.name == "nt":  # Windows cannot open a folder for fsync; its rename is durable enough
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _removeQuietly(path):
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)
    except OSError as error:
        logging.warning("Could not remove the temporary output '%s': %s", path, error)
