"""Image files from other people (web uploads, cohort manifests): a detached header reads only data beside it, a
decompression bomb is refused before it is inflated, a FIFO is never opened, a header is read in bounded time."""

import gzip
import os
import struct
import threading

import numpy as np
import pytest
import slicer

from AISegmentationLib import FileIntegrity
from AISegmentationLib import Manifest
from AISegmentationLib.Cohort import CohortRunner

SECRET = bytes(range(64))  # 4 x 4 x 4 voxels of uint8: what a forged header would read


@pytest.fixture
def secret(tmp_path):
    """A file outside the upload folder (the server's /etc/passwd, say), and the upload folder."""
    (tmp_path / "private").mkdir()
    path = tmp_path / "private" / "passwd.raw"
    path.write_bytes(SECRET)
    (tmp_path / "upload").mkdir()
    return path


def _mhd(path, dataFile, extra=""):
    path.write_text("ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementType = MET_UCHAR\n"
                    f"ElementSpacing = 1 1 1\n{extra}ElementDataFile = {dataFile}\n")
    return str(path)


def _nhdr(path, dataFile, extra=""):
    path.write_text(f"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 4 4 4\nencoding: raw\n{extra}"
                    f"data file: {dataFile}\n")
    return str(path)


def _forgedHeaders(secret, upload):
    relative = os.path.relpath(secret, upload)  # ../private/passwd.raw
    os.symlink(secret, upload / "link.raw")
    return [_mhd(upload / "absolute.mhd", str(secret)), _mhd(upload / "relative.mhd", relative),
            _mhd(upload / "link.mhd", "link.raw"), _nhdr(upload / "absolute.nhdr", str(secret)),
            _nhdr(upload / "relative.nhdr", relative), _nhdr(upload / "link.nhdr", "link.raw"),
            _withLines(_nhdr(upload / "list.nhdr", "LIST 2"), [str(secret)] * 4),
            _nhdr(upload / "pattern.nhdr", "../private/passwd%d.raw 1 4 1 2"),
            _withLines(_mhd(upload / "list.mhd", "LIST 2D"), [relative] * 4)]


def _withLines(path, lines):
    with open(path, "a", encoding="utf-8") as file:
        file.write("".join(line + "\n" for line in lines))
    return path


def test_an_uploaded_detached_header_never_reads_a_file_outside_its_folder(logic, secret, tmp_path):
    """What the web page does with an upload (its files written into one folder, then logic.loadVolume), and a
    label map import: refused with a clear message, nothing added to the scene."""
    upload = tmp_path / "upload"
    for number in range(1, 5):  # the pattern's files exist too: only their place is wrong
        (tmp_path / "private" / f"passwd{number}.raw").write_bytes(SECRET[:16])
    before = logic.scene.GetNumberOfNodes()
    for header in _forgedHeaders(secret, upload):
        with pytest.raises(ValueError, match="outside its own folder.*must lie beside its header"):
            logic.loadVolume(header)
        with pytest.raises(ValueError, match="outside its own folder"):
            logic.importLabelmap(header)
    assert logic.scene.GetNumberOfNodes() == before
    # beside its header (same folder or below) is fine
    (upload / "data").mkdir()
    (upload / "data" / "volume.raw").write_bytes(SECRET)
    for header in (_mhd(upload / "good.mhd", "data/volume.raw"), _nhdr(upload / "good.nhdr", "./data/volume.raw")):
        node = logic.loadVolume(header)
        assert bytes(np.asarray(slicer.util.arrayFromVolume(node)).ravel()) == SECRET


def test_a_manifest_case_with_a_forged_header_fails_and_its_outputs_never_hold_the_file(logic, secret, tmp_path):
    upload = tmp_path / "upload"
    image = _mhd(upload / "image.mhd", str(secret))
    prediction = _nhdr(upload / "prediction.nhdr", "../private/passwd.raw")
    (upload / "image_ok.raw").write_bytes(bytes(64))
    imageOk = _mhd(upload / "image_ok.mhd", "image_ok.raw")
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(f"case,image,prediction\nimage_out,{image},{imageOk}\nlabels_out,{imageOk},{prediction}\n")
    records = CohortRunner.runCasesInProcess(Manifest.readManifest(str(manifest)), str(tmp_path / "out"),
                                             ("volumes",), logic=logic)
    assert [record["status"] for record in records] == ["failed", "failed"]
    assert all("outside its own folder" in record["error"] for record in records), records
    for root, _folders, files in os.walk(tmp_path / "out"):
        for name in files:
            assert (os.path.join(root, name), open(os.path.join(root, name), "rb").read()) != SECRET


# Sizes -------------------------------------------------------------------------------------------------------------

def _niftiHeader(shape, datatype=2, bitpix=8):
    header = bytearray(352)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, *shape, 1, 1, 1, 1)
    struct.pack_into("<2h", header, 70, datatype, bitpix)
    struct.pack_into("<4f", header, 76, 1.0, 1.0, 1.0, 1.0)
    struct.pack_into("<f", header, 108, 352.0)
    header[344:348] = b"n+1\0"
    return bytes(header)


def _gzipBomb(path, header, dataBytes):
    with gzip.open(path, "wb", compresslevel=1) as file:
        file.write(header)
        zeros = bytes(1 << 22)
        for start in range(0, dataBytes, len(zeros)):
            file.write(zeros[: min(len(zeros), dataBytes - start)])
    return str(path)


def test_a_small_file_announcing_a_huge_volume_is_refused_from_its_header(logic, tmp_path):
    """1.5 KB of .nii.gz announcing 8 GiB of voxels (the data behind it is cut short): refused by the budget
    without inflating anything, where a plain check would inflate the stream first."""
    path = _gzipBomb(tmp_path / "huge.nii.gz", _niftiHeader((2048, 2048, 2048)), 1 << 20)
    assert os.path.getsize(path) < 5000
    with pytest.raises(ValueError, match=r"announces 8589934592 voxels \(8.00 GiB.*limit of 4.00 GiB"):
        logic.loadVolume(path)
    nrrd = tmp_path / "huge.nrrd"
    nrrd.write_bytes(b"NRRD0004\ntype: float\ndimension: 3\nsizes: 2048 2048 2048\nencoding: gzip\n\n"
                     + gzip.compress(bytes(1 << 16)))
    with pytest.raises(ValueError, match="limit of 4.00 GiB for one image"):
        logic.loadVolume(str(nrrd))


def test_a_decompression_bomb_is_refused_within_the_configured_budget(logic, tmp_path, monkeypatch):
    """A whole .nii.gz of 64 MiB of voxels (65 KB on disk) under an 8 MiB budget; and a stream that inflates far
    beyond what its (small) header announces: both refused with a clear message."""
    monkeypatch.setenv(FileIntegrity.MAX_IMAGE_BYTES_VARIABLE, str(8 << 20))
    bomb = _gzipBomb(tmp_path / "bomb.nii.gz", _niftiHeader((400, 400, 400)), 400 ** 3)
    assert os.path.getsize(bomb) < (1 << 20)
    with pytest.raises(ValueError, match=r"64000000 voxels.*AISEGMENTATION_MAX_IMAGE_BYTES"):
        logic.loadVolume(bomb)
    monkeypatch.delenv(FileIntegrity.MAX_IMAGE_BYTES_VARIABLE)
    trailing = _gzipBomb(tmp_path / "small.nii.gz", _niftiHeader((8, 8, 8)), 64 << 20)
    with pytest.raises(ValueError, match="inflates to more than the 1049440 bytes its header announces"):
        logic.loadVolume(trailing)
    monkeypatch.setenv(FileIntegrity.MAX_IMAGE_BYTES_VARIABLE, "lots")
    with pytest.raises(ValueError, match="AISEGMENTATION_MAX_IMAGE_BYTES must be a positive whole number"):
        logic.loadVolume(trailing)


# Non-regular files and headers -------------------------------------------------------------------------------------

def _inThread(function, seconds=20):
    outcome = {}

    def run():
        try:
            outcome["value"] = function()
        except Exception as error:  # noqa: BLE001 - the test looks at it
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    return thread, outcome


def _unblock(fifo):
    """Let a reader blocked on the FIFO go on (it reads an empty stream)."""
    try:
        handle = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(handle)
    except OSError:
        pass


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
@pytest.mark.parametrize("name, load", [("volume.nii.gz", "loadVolume"), ("segmentation.seg.nrrd", "loadSegmentation"),
                                        ("labels.nrrd", "importLabelmap")])
def test_a_fifo_is_refused_without_being_opened(logic, tmp_path, name, load):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    thread, outcome = _inThread(lambda: getattr(logic, load)(str(fifo)))
    if thread.is_alive():
        _unblock(fifo)
        thread.join(10)
        pytest.fail(f"{load} blocked on a FIFO")
    assert isinstance(outcome.get("error"), ValueError), outcome
    assert "is not a regular file (a FIFO, device or socket)" in str(outcome["error"])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_as_detached_data_file_is_refused(logic, tmp_path):
    os.mkfifo(tmp_path / "data.raw")
    thread, outcome = _inThread(lambda: logic.loadVolume(_mhd(tmp_path / "fifo.mhd", "data.raw")))
    if thread.is_alive():
        _unblock(tmp_path / "data.raw")
        pytest.fail("loadVolume blocked on a FIFO data file")
    assert "is not a regular file" in str(outcome.get("error")), outcome


def test_a_header_that_never_ends_is_refused_after_a_bounded_read(logic, tmp_path):
    path = tmp_path / "endless.nrrd"
    with open(path, "wb") as file:
        file.write(b"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 4 4 4\n")
        file.write((b"# " + b"x" * 1000 + b"\n") * 4000)  # 4 MB of header, no blank line
    with pytest.raises(ValueError, match=r"its header does not end within 1048576 bytes"):
        logic.loadVolume(str(path))
    mhd = tmp_path / "endless.mhd"
    mhd.write_bytes(b"ObjectType = Image\n" + b"Comment = " + b"x" * (2 << 20) + b"\n")
    with pytest.raises(ValueError, match="no ElementDataFile line within 1048576 bytes"):
        logic.loadVolume(str(mhd))
