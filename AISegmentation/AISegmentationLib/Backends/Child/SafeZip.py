"""Extracting model and weights zip files safely: no member escapes the destination folder, and no zip bomb fills it.

Limits (each can be given as an argument or an environment variable; defaults in parentheses):
- AISEGMENTATION_ZIP_MAX_BYTES (20 GiB): total uncompressed size of all members;
- AISEGMENTATION_ZIP_MAX_RATIO (200): uncompressed / compressed size, for each member and for the whole archive
  (members below 1 MiB are exempt one by one: small text files may compress very well and can do no harm);
- AISEGMENTATION_ZIP_MAX_MEMBERS (10000): number of members.
Real nnU-Net and TotalSegmentator model zips hold tens of members, a few GB at most, and compress by a factor of
1.1-1.3 (checkpoints) to about 6 (JSON, logs). The limits are checked from the central directory before anything is
written, and again while each member is streamed to disk, since a zip's headers can lie.
"""

import logging
import os
import shutil
import stat
import tempfile
import zipfile
import zlib

GIB = 1 << 30
DEFAULT_MAX_BYTES = 20 * GIB
DEFAULT_MAX_RATIO = 200.0
DEFAULT_MAX_MEMBERS = 10000
RATIO_FREE_BYTES = 1 << 20  # a member this small is never refused for its compression ratio alone
CHUNK = 1 << 20
ENVIRONMENT = {"maxBytes": "AISEGMENTATION_ZIP_MAX_BYTES", "maxRatio": "AISEGMENTATION_ZIP_MAX_RATIO",
               "maxMembers": "AISEGMENTATION_ZIP_MAX_MEMBERS"}
DEFAULTS = {"maxBytes": DEFAULT_MAX_BYTES, "maxRatio": DEFAULT_MAX_RATIO, "maxMembers": DEFAULT_MAX_MEMBERS}


class ZipLimits:
    """The limits one extraction runs under: arguments first, then environment variables, then the defaults."""

    def __init__(self, maxBytes=None, maxRatio=None, maxMembers=None):
        given = {"maxBytes": maxBytes, "maxRatio": maxRatio, "maxMembers": maxMembers}
        for name, value in given.items():
            source = f"argument {name}"
            if value is None and os.environ.get(ENVIRONMENT[name], "").strip():
                value, source = os.environ[ENVIRONMENT[name]].strip(), f"environment variable {ENVIRONMENT[name]}"
            if value is None:
                value = DEFAULTS[name]
            setattr(self, name, _positive(value, source, integer=name != "maxRatio"))

    def __repr__(self):
        return f"ZipLimits(maxBytes={self.maxBytes}, maxRatio={self.maxRatio:g}, maxMembers={self.maxMembers})"


def _positive(value, source, integer):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (number > 0 and number != float("inf")) or (integer and number != int(number)):
        kind = "a positive whole number" if integer else "a positive number"
        raise ValueError(f"The zip limit in {source} must be {kind}, got {value!r}")
    return int(number) if integer else number


def _size(count):
    return f"{count / GIB:.2f} GiB" if count >= GIB else f"{count / (1 << 20):.1f} MiB"


def _requireSafeMember(info, destination):
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in name.split("/") or "\0" in name:
        raise ValueError(f"Refusing zip member '{info.filename}': its path leaves the destination folder")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ValueError(f"Refusing zip member '{info.filename}': symbolic links are not allowed in model zips")
    target = os.path.realpath(os.path.join(destination, name))
    if os.path.commonpath([target, os.path.realpath(destination)]) != os.path.realpath(destination):
        raise ValueError(f"Refusing zip member '{info.filename}': its path leaves the destination folder")
    return target


def _ratioAllowance(compressedSize, limits):
    """The most bytes a member of this compressed size may expand to."""
    return max(RATIO_FREE_BYTES, int(compressedSize * limits.maxRatio))


def checkMembers(zipPath, members, limits, destination):
    """ValueError unless the central directory's sizes keep within limits (and fit on the destination's disk)."""
    if len(members) > limits.maxMembers:
        raise ValueError(f"Refusing '{zipPath}': it has {len(members)} members, more than the limit of "
                         f"{limits.maxMembers} ({ENVIRONMENT['maxMembers']})")
    total = compressed = 0
    for info in members:
        if info.file_size > _ratioAllowance(info.compress_size, limits):
            raise ValueError(
                f"Refusing '{zipPath}': member '{info.filename}' expands from {_size(info.compress_size)} to "
                f"{_size(info.file_size)} (ratio above {limits.maxRatio:g}, {ENVIRONMENT['maxRatio']}): this looks "
                f"like a zip bomb, not a model")
        total += info.file_size
        compressed += info.compress_size
    if total > limits.maxBytes:
        raise ValueError(f"Refusing '{zipPath}': it expands to {_size(total)}, more than the limit of "
                         f"{_size(limits.maxBytes)} ({ENVIRONMENT['maxBytes']})")
    if total > _ratioAllowance(compressed, limits):
        raise ValueError(f"Refusing '{zipPath}': it expands from {_size(compressed)} to {_size(total)} (ratio above "
                         f"{limits.maxRatio:g}, {ENVIRONMENT['maxRatio']}): this looks like a zip bomb, not a model")
    free = shutil.disk_usage(_existingFolder(destination)).free
    if total > free:
        raise ValueError(f"Cannot extract '{zipPath}': it needs {_size(total)} and the disk of '{destination}' has "
                         f"{_size(free)} free")
    return total


def _existingFolder(path):
    path = os.path.abspath(path)
    while not os.path.isdir(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _copyMember(archive, info, target, limits, budget):
    """Stream one member to target; ValueError as soon as it outgrows its header, its ratio or the total budget."""
    allowed = min(info.file_size, _ratioAllowance(info.compress_size, limits), budget)
    written = 0
    with archive.open(info) as source, open(target, "wb") as output:
        while True:
            chunk = source.read(CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > allowed:
                raise ValueError(f"Refusing zip member '{info.filename}': it expands past the {_size(allowed)} its "
                                 f"header and the limits allow (the zip's headers are inconsistent or a bomb)")
            output.write(chunk)
    if written != info.file_size:
        raise ValueError(f"Zip member '{info.filename}' is damaged: {written} bytes instead of {info.file_size}")
    return written


def extractZip(zipPath, destination, maxBytes=None, maxRatio=None, maxMembers=None):
    """Extract every member of zipPath under destination (created); ValueError for an unsafe or unreadable zip.

    All members' paths and sizes are checked before anything is written; a zip that breaks a limit while it is
    extracted (lying headers) stops at once and what was written of it is removed.
    """
    limits = ZipLimits(maxBytes, maxRatio, maxMembers)
    if not os.path.isfile(zipPath):
        raise ValueError(f"Zip file '{zipPath}' does not exist")
    try:
        archive = zipfile.ZipFile(zipPath)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ValueError(f"'{zipPath}' is not a readable zip file ({error})") from None
    with archive:
        members = archive.infolist()
        targets = [_requireSafeMember(info, destination) for info in members]
        total = checkMembers(zipPath, members, limits, destination)
        os.makedirs(destination, exist_ok=True)
        logging.info("Extracting '%s': %d members, %s (%r)", zipPath, len(members), _size(total), limits)
        created = []
        try:
            budget = limits.maxBytes
            for info, target in zip(members, targets):
                if info.is_dir():
                    os.makedirs(target, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(target), exist_ok=True)
                created.append(target)
                budget -= _copyMember(archive, info, target, limits, budget)
        except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as error:
            _remove(created)
            raise ValueError(f"'{zipPath}' could not be extracted ({type(error).__name__}: {error})") from None
        except BaseException:
            _remove(created)
            raise
    return destination


def _remove(paths):
    for path in paths:
        try:
            os.remove(path)
        except OSError:
            pass


def extractZipIntoNewFolder(zipPath, parentFolder, **limits):
    """Extract into a new temporary folder under parentFolder (removed again on failure); returns that folder.

    limits: maxBytes, maxRatio, maxMembers (see extractZip)."""
    os.makedirs(parentFolder, exist_ok=True)
    folder = tempfile.mkdtemp(prefix=".import-", dir=parentFolder)
    try:
        return extractZip(zipPath, folder, **limits)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
