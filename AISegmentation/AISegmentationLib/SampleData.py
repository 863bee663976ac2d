"""Sample data: TotalSegmentator's public example images, fetched by URL at a fixed commit with SHA256 checks.

Files are looked up first in the folder named by ``AISEGMENTATION_DATA_DIR`` (an offline cache, e.g. a copy of
the examples; only files whose checksum matches are used), then in a writable download cache
(``AISEGMENTATION_CACHE_DIR``, default: the user cache folder), and downloaded with pooch otherwise. Inside desktop
Slicer before its runtime requirements are installed (no pooch yet; the self-test), a plain checksum-verified download
stands in, so that the sample data never needs an install.
"""

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.request

SOURCE_COMMIT = "0e65a448d557382b1e925276212b3bec7f5aff83"
BASE_URL = f"https://raw.githubusercontent.com/wasserth/TotalSegmentator/{SOURCE_COMMIT}/tests/reference_files/"
REGISTRY_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "Resources", "SampleData", "registry.txt")
DATA_DIR_VARIABLE = "AISEGMENTATION_DATA_DIR"
CACHE_DIR_VARIABLE = "AISEGMENTATION_CACHE_DIR"


def registry():
    """{relative file path: sha256} of the known sample files."""
    entries = {}
    with open(REGISTRY_FILE, encoding="utf-8") as file:
        for line in file:
            if line.strip() and not line.startswith("#"):
                path, sha256 = line.split()
                entries[path] = sha256
    return entries


def _cacheDir():
    if os.environ.get(CACHE_DIR_VARIABLE):
        return os.environ[CACHE_DIR_VARIABLE]
    try:
        import pooch
    except ImportError:
        return os.path.join(os.path.expanduser("~"), ".cache", "AISegmentation")
    return str(pooch.os_cache("AISegmentation"))


def fileSha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _retrieve(url, sha256, fileName):
    """pooch.retrieve when pooch is installed, else a download into the cache that keeps only a matching file."""
    try:
        import pooch
    except ImportError:
        pooch = None
    if pooch is not None:
        return pooch.retrieve(url, known_hash=f"sha256:{sha256}", fname=fileName, path=_cacheDir(), progressbar=False)
    target = os.path.join(_cacheDir(), fileName)
    if os.path.isfile(target) and fileSha256(target) == sha256:
        return target
    os.makedirs(_cacheDir(), exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=_cacheDir(), suffix=".part")
    try:
        with os.fdopen(handle, "wb") as file, urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310
            shutil.copyfileobj(response, file)
        if fileSha256(partial) != sha256:
            raise ValueError(f"SHA256 of the downloaded {fileName} does not match the registry")
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return target


def _fromOfflineCache(relativePath, sha256):
    dataDir = os.environ.get(DATA_DIR_VARIABLE)
    if not dataDir:
        return None
    candidate = os.path.join(dataDir, relativePath)
    if not os.path.isfile(candidate):
        return None
    if fileSha256(candidate) != sha256:
        logging.warning("Ignoring %s: its SHA256 does not match the registry", candidate)
        return None
    return candidate


def fetchSampleFile(relativePath):
    """Local path of a sample file (e.g. "example_ct.nii.gz"), checksum-verified."""
    entries = registry()
    if relativePath not in entries:
        raise ValueError(f"Unknown sample file '{relativePath}'; known: {', '.join(sorted(entries)[:10])}...")
    sha256 = entries[relativePath]
    cached = _fromOfflineCache(relativePath, sha256)
    if cached:
        return cached
    try:
        return _retrieve(BASE_URL + relativePath, sha256, relativePath.replace("/", "_"))
    except Exception as error:
        raise RuntimeError(
            f"Could not download sample file '{relativePath}' ({error}). Without network, set "
            f"{DATA_DIR_VARIABLE} to a folder that holds it.") from error


def fetchDicomSeries():
    """Local folder holding the example CT DICOM series (20 slices)."""
    paths = [fetchSampleFile(p) for p in registry() if p.startswith("example_ct_dicom/")]
    folders = {os.path.dirname(p) for p in paths}
    if len(folders) == 1 and all(os.path.basename(p).startswith("CT.") for p in paths):
        return folders.pop()
    # Downloaded files sit flat in the cache with a prefix: gather them in their own folder.
    folder = os.path.join(_cacheDir(), "example_ct_dicom")
    os.makedirs(folder, exist_ok=True)
    for path in paths:
        target = os.path.join(folder, os.path.basename(path).replace("example_ct_dicom_", ""))
        if not os.path.exists(target):
            shutil.copyfile(path, target)
    return folder
