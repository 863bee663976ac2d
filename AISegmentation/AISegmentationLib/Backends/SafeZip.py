"""Extracting model and weights zip files without letting a member escape the destination folder."""

import os
import shutil
import stat
import tempfile
import zipfile


def _requireSafeMember(info, destination):
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in name.split("/"):
        raise ValueError(f"Refusing zip member '{info.filename}': its path leaves the destination folder")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ValueError(f"Refusing zip member '{info.filename}': symbolic links are not allowed in model zips")
    target = os.path.realpath(os.path.join(destination, name))
    if os.path.commonpath([target, os.path.realpath(destination)]) != os.path.realpath(destination):
        raise ValueError(f"Refusing zip member '{info.filename}': its path leaves the destination folder")


def extractZip(zipPath, destination):
    """Extract every member of zipPath under destination (created); ValueError for an unsafe or unreadable zip.

    All members are checked before anything is written, so a bad zip leaves no partial extraction behind.
    """
    if not os.path.isfile(zipPath):
        raise ValueError(f"Zip file '{zipPath}' does not exist")
    try:
        archive = zipfile.ZipFile(zipPath)
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"'{zipPath}' is not a readable zip file ({error})") from None
    with archive:
        members = archive.infolist()
        for info in members:
            _requireSafeMember(info, destination)
        os.makedirs(destination, exist_ok=True)
        for info in members:
            archive.extract(info, destination)
    return destination


def extractZipIntoNewFolder(zipPath, parentFolder):
    """Extract into a new temporary folder under parentFolder (removed again on failure); returns that folder."""
    os.makedirs(parentFolder, exist_ok=True)
    folder = tempfile.mkdtemp(prefix=".import-", dir=parentFolder)
    try:
        return extractZip(zipPath, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
